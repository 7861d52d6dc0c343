"""Matplotlib figures for the report and the notebooks, one per question first, then details.

Every figure: constrained layout (no clipped label), units on every axis, one colour per mode that
is the same in every figure (:func:`mode_color`), small multiples by OS, and a panel title that
says when its numbers come from a FreeBSD fixture or model rather than a measurement. Figures only
draw numbers the analysis functions computed.
"""
from __future__ import annotations

import zlib

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tracer.analysis.requires import NOT_MEASURED  # noqa: E402
from tracer.base.schema import ROLES  # noqa: E402

ROLE_COLORS = {"submit": "#4c72b0", "wait": "#55a868", "status": "#c44e52", "result": "#8172b2", "other": "#999999"}
# one colour per mode, fixed, so a mode looks the same in every figure and every report
MODE_COLORS = {"aio-poll": "#1f77b4", "aio-suspend": "#ff7f0e", "waitcomplete": "#8c564b", "kevent": "#9467bd",
               "kevent-error": "#e377c2", "reap": "#d62728", "libaio": "#2ca02c", "io_uring": "#17becf",
               "io_uring-sqpoll": "#bcbd22"}
_SPARE = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1",
          "#636363", "#6baed6", "#fd8d3c", "#74c476", "#9e9ac8"]
MARKERS = "osD^vP*Xh<>"


def mode_color(mode: str) -> str:
    """The colour of ``mode`` (a fixed table; a mode not in it gets a stable colour from its name)."""
    return MODE_COLORS.get(str(mode)) or _SPARE[zlib.crc32(str(mode).encode()) % len(_SPARE)]


def _source_note(frame: pd.DataFrame) -> str:
    sources = sorted(set(frame["source"].dropna()) & set(NOT_MEASURED)) if "source" in frame else []
    return "; ".join(sources)


def _panels(frame: pd.DataFrame, n_rows_per_panel: int = 1, width: float = 6.0, height: float = 4.0,
            ncols_extra: int = 1):
    """One panel per OS (small multiples, side by side); returns (fig, [(os, sub-frame, axes)])."""
    oses = [o for o in ("Linux", "FreeBSD") if o in set(frame["os"])] + \
        sorted(set(frame["os"].dropna()) - {"Linux", "FreeBSD"})
    fig, axes = plt.subplots(ncols_extra, len(oses), figsize=(width * len(oses), height * ncols_extra),
                             layout="constrained", squeeze=False)
    return fig, [(o, frame[frame["os"] == o], axes[:, i]) for i, o in enumerate(oses)]


def _panel_title(ax, os_name: str, frame: pd.DataFrame, what: str = "") -> None:
    note = _source_note(frame)
    ax.set_title(f"{os_name}{': ' + what if what else ''}", fontsize=10, loc="left", pad=20 if note else 6)
    if note:  # prominent, on the panel itself: never read as a measurement
        ax.text(0.0, 1.015, note.upper(), transform=ax.transAxes, ha="left", va="bottom", fontsize=8,
                color="#b00020", weight="bold")


def _yerr(mean: pd.Series, lo: pd.Series, hi: pd.Series, mn: pd.Series, mx: pd.Series) -> np.ndarray:
    """Error bar half-lengths: the 95% interval where there is one, else the range (min, max)."""
    low = lo.where(lo.notna(), mn).fillna(mean)
    high = hi.where(hi.notna(), mx).fillna(mean)
    return np.vstack([(mean - low).clip(lower=0).to_numpy(float), (high - mean).clip(lower=0).to_numpy(float)])


def _mode_legend(fig, modes: list[str], extra: list | None = None) -> None:
    """One legend for the whole figure, outside the panels: one entry per mode, in its colour."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=mode_color(m), marker="s", linestyle="-", label=m) for m in modes]
    fig.legend(handles=handles + (extra or []), loc="outside lower center", fontsize=8,
               ncol=max(1, min(len(handles) + len(extra or []), int(fig.get_figwidth() / 1.25))), frameon=False)


def _pick_series(frame: pd.DataFrame, per_mode: int = 1) -> pd.DataFrame:
    """At most ``per_mode`` configurations (``series``) per mode: the ones with the most points,
    measured before not measured, so a panel stays readable; all are in the headline tables."""
    keep = []
    for _, g in frame.groupby("mode", sort=False):
        sizes = g.groupby("series", sort=False)["n"].sum().sort_values(ascending=False, kind="stable")
        keep += list(sizes.index[:per_mode])
    return frame[frame["series"].isin(keep)]


def _ordered_modes(frame: pd.DataFrame) -> list[str]:
    from tracer.view.headline import mode_rank

    return sorted(set(frame["mode"].dropna().astype(str)), key=lambda m: (mode_rank(m), m))


def _log_axis(axis, lo: float, hi: float) -> None:
    """Readable log ticks: 1-2-5 steps over up to two decades, decades beyond; plain numbers."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    decades = np.log10(max(hi, 1e-9)) - np.log10(max(lo, 1e-9))
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 2.5 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def amplification_by_reap_batch(summary: pd.DataFrame) -> plt.Figure:
    """Question 1: total syscalls per I/O against reap batch, small multiples by OS, one colour per
    mode (one configuration per mode: the one run at the most reap batches), interval bars over
    repetitions (the range below three runs), the mode's floor dashed."""
    from tracer.view.headline import short_configurations

    tot = summary[summary["metric"] == "total_per_io"].copy()
    floor = summary[summary["metric"] == "total_floor"]
    tot["series"] = short_configurations(tot, without_reap_batch=True)[0].to_numpy() if len(tot) else []
    tot["series"] = tot["mode"].astype(str) + "|" + tot["series"]
    fig, panels = _panels(tot, width=5.4, height=4.2)
    for os_name, d, (ax,) in panels:
        d = _pick_series(d)
        label, common = short_configurations(d, without_reap_batch=True)
        d = d.assign(label=label.to_numpy())
        modes = _ordered_modes(d)
        for i, mode in enumerate(modes):
            g = d[d["mode"] == mode].sort_values("reap_batch")
            rb = g["reap_batch"].astype(float).to_numpy()
            dodge = 2 ** (0.07 * (i - (len(modes) - 1) / 2))  # side by side at one reap batch (log axis)
            ax.errorbar(rb * dodge, g["mean"], yerr=_yerr(g["mean"], g["ci_low"], g["ci_high"], g["min"], g["max"]),
                        color=mode_color(mode), marker="o", capsize=3, linewidth=1.6)
            fl = _floor_for(floor, g)
            ax.plot(rb * dodge, fl, linestyle="--", color=mode_color(mode), alpha=0.7, linewidth=1)
        ticks = sorted(set(d["reap_batch"].astype(int)))
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlim(min(ticks) / 1.7, max(ticks) * 1.7)
        ax.set_ylim(0, max(1.0, float(d["mean"].max()) * 1.25))
        ax.set_xlabel("reap batch (completions asked of each wait call)")
        ax.set_ylabel("syscalls per I/O (all threads)")
        _panel_title(ax, os_name, d, common)
    from matplotlib.lines import Line2D

    _mode_legend(fig, _ordered_modes(tot), [Line2D([], [], color="grey", linestyle="--", label="floor")])
    fig.suptitle("Syscalls per I/O against reap batch\n(bars: 95% CI over runs, or range below 3 runs)",
                 fontsize=10)
    return fig


def _floor_for(floor: pd.DataFrame, g: pd.DataFrame) -> np.ndarray:
    """The floor rows matching ``g``'s configurations, in ``g``'s order."""
    from tracer.analysis.compare import CONFIG_COLUMNS

    keys = [c for c in CONFIG_COLUMNS if c in g.columns and c in floor.columns]
    m = g[keys].astype(str).merge(floor.assign(**{k: floor[k].astype(str) for k in keys})[[*keys, "mean"]],
                                  on=keys, how="left")
    return m["mean"].to_numpy(float)


def attribution_share(summary: pd.DataFrame, runs: pd.DataFrame) -> plt.Figure:
    """Question 2: share of blocks charged to a thread that did not submit, one bar per mode x
    configuration, small multiples by OS, each bar labelled with the thread charged most. Where an
    OS has runs with a separate reaper thread only those are drawn (with one thread the submitter
    is trivially the one charged, unless a helper is)."""
    from tracer.view.headline import mode_rank, short_configurations

    d = summary[summary["metric"] == "share_not_submitter"].copy()
    split_os = set(d[d["threads"] == "split"]["os"])
    d = d[~d["os"].isin(split_os) | (d["threads"] == "split")]
    d = d[d["backend"] != "none"] if "backend" in d else d
    d["_rank"] = d["mode"].map(lambda m: mode_rank(str(m)))
    rows = max(d.groupby("os").size().max() if len(d) else 1, 1)
    fig, panels = _panels(d, width=5.6, height=max(2.4, 0.3 * rows + 1.5))
    for os_name, g, (ax,) in panels:
        label, common = short_configurations(g)
        g = g.assign(label=label.to_numpy()).sort_values(["_rank", "label"])
        y = np.arange(len(g))[::-1]
        ax.barh(y, 100 * g["mean"], color=[mode_color(m) for m in g["mode"]], height=0.7,
                xerr=100 * _yerr(g["mean"], g["ci_low"], g["ci_high"], g["min"], g["max"]), capsize=2)
        for yi, share, name in zip(y, g["mean"], _charged(g, runs)):
            ax.text(100 * share + 2, yi, name, va="center", ha="left", fontsize=7)
        ax.set_yticks(y, [f"{m}  {c}".strip() for m, c in zip(g["mode"], g["label"])], fontsize=7)
        ax.set_xlim(0, 135)  # room for the thread name right of a full bar
        ax.set_xticks([0, 25, 50, 75, 100])
        ax.set_xlabel("charged to a non-submitter (% of blocks)")
        _panel_title(ax, os_name, g, common)
    _mode_legend(fig, _ordered_modes(d))
    fig.suptitle("Who is charged for the block I/O\n(text: the thread charged most)", fontsize=10)
    return fig


def _charged(g: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    from tracer.analysis.compare import CONFIG_COLUMNS
    from tracer.view.headline import _runs_of

    out = []
    for _, r in g.iterrows():
        match = _runs_of(runs, {k: r[k] for k in CONFIG_COLUMNS if k in r.index})
        vals = match["charged_thread"].dropna() if "charged_thread" in match else []
        out.append(str(vals.iloc[0]) if len(vals) else "")
    return out


def _ecdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step points of the empirical CDF, starting at 0, so a series of one value is a visible step."""
    v = np.sort(values)
    return np.concatenate([[v[0]], v]), np.concatenate([[0.0], np.arange(1, v.size + 1) / v.size])


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs) -> np.ndarray:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cw = np.cumsum(w)
    if cw[-1] <= 0:
        return np.full(len(qs), np.nan)
    return np.array([v[min(np.searchsorted(cw, q * cw[-1]), v.size - 1)] for q in qs])


def free_timing_overview(lags: pd.DataFrame, alive: pd.DataFrame) -> plt.Figure:
    """Question 3, per OS: the free lag as an ECDF (one line per mode, repetitions pooled, every
    series drawn, a single value as a visible step) and the jobs alive as a time-weighted
    distribution per mode (box: quartiles, whiskers: 5th-95th percentile, | mean, x maximum)."""
    from tracer.view.headline import short_configurations

    lags = lags.assign(series=lags["mode"].astype(str) + "|" + short_configurations(lags)[0].to_numpy(),
                       n=1)
    oses = [o for o in ("Linux", "FreeBSD") if o in set(lags["os"])] + \
        sorted(set(lags["os"].dropna()) - {"Linux", "FreeBSD"})
    n_modes = max(lags[lags["os"] == o]["mode"].nunique() for o in oses)
    box_h = max(2.0, 0.32 * n_modes + 1.2)
    fig, axes = plt.subplots(2, len(oses), figsize=(5.6 * len(oses), 4.0 + box_h), layout="constrained",
                             squeeze=False, gridspec_kw={"height_ratios": [4.0, box_h]})
    for i, os_name in enumerate(oses):
        ax, bx = axes[0, i], axes[1, i]
        d = _pick_series(lags[lags["os"] == os_name])
        label, common = short_configurations(d.drop_duplicates("run_id"))
        modes = _ordered_modes(d)
        for j, mode in enumerate(modes):
            g = d[d["mode"] == mode]
            x, y = _ecdf(np.maximum(g["free_lag_ns"].to_numpy(float), 1.0) / 1000)
            # earlier modes drawn wider, so a line hidden under a later one still shows as its outline
            ax.plot(x, y, drawstyle="steps-post", color=mode_color(mode), linewidth=1.5 + 0.7 * (len(modes) - 1 - j))
            ax.plot(x[-1:], y[-1:], "o", color=mode_color(mode), markersize=4)
        ax.set_xscale("log")
        lag_us = np.maximum(d["free_lag_ns"].to_numpy(float), 1.0) / 1000
        _log_axis(ax.xaxis, float(lag_us.min()), float(lag_us.max()))
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("free lag: kernel completion to release of its state (µs, log scale)")
        ax.set_ylabel("fraction of I/Os released")
        _panel_title(ax, os_name, d, common)
        runs = set(d["run_id"])
        a = alive[alive["run_id"].isin(runs)] if len(alive) else alive
        _occupancy(bx, a, os_name)
    _mode_legend(fig, _ordered_modes(lags))
    fig.suptitle("How long kernel state outlives the I/O,\nand how many jobs hold it at once", fontsize=10)
    return fig


def _occupancy(ax, alive: pd.DataFrame, os_name: str) -> None:
    if not len(alive):
        ax.set_axis_off()
        return
    stats, colors = [], []
    for mode in _ordered_modes(alive):
        vals, weights = [], []
        for _, run in alive[alive["mode"] == mode].groupby("run_id", sort=False):
            t = run["t_ns"].to_numpy(float)
            if t.size >= 2:
                vals.append(run["alive"].to_numpy(float)[:-1])
                weights.append(np.diff(t))
        if not vals:
            continue
        v, w = np.concatenate(vals), np.concatenate(weights)
        q5, q25, q50, q75, q95 = weighted_quantiles(v, w, [0.05, 0.25, 0.5, 0.75, 0.95])
        stats.append({"label": mode, "med": q50, "q1": q25, "q3": q75, "whislo": q5, "whishi": q95,
                      "mean": float((v * w).sum() / w.sum()), "fliers": [v.max()]})
        colors.append(mode_color(mode))
    if not stats:
        ax.set_axis_off()
        return
    pos = np.arange(len(stats))[::-1]
    boxes = ax.bxp(stats, positions=pos, orientation="horizontal", patch_artist=True, showmeans=True,
                   widths=0.6, flierprops=dict(marker="x", markersize=6),
                   meanprops=dict(marker="|", markeredgecolor="black", markersize=12),
                   medianprops=dict(color="black"))
    for patch, c in zip(boxes["boxes"], colors):
        patch.set_facecolor(c)
    top = max(s["fliers"][0] for s in stats)
    limits = alive["limit"].dropna().unique() if "limit" in alive else []
    note = ""
    for lim in limits:
        if lim <= top * 3:
            ax.axvline(lim, color="#b00020", linestyle=":", label=f"per-process limit {int(lim)}")
        else:
            note = f" (limit {int(lim)} per process, off the scale)"
    ax.set_xlim(0, max([top, *(lim for lim in limits if lim <= top * 3)]) * 1.15)
    ax.set_yticks(pos, [s["label"] for s in stats], fontsize=8)
    ax.set_xlabel("kernel jobs alive (submitted, not released), weighted by time")
    ax.set_title(f"{os_name}: jobs alive{note}", fontsize=10, loc="left")


def run_label(row: pd.Series | dict) -> str:
    """Short label of a run: ``<os> <mode> <configuration>`` (+ ``*lossy*``)."""
    from tracer.view.headline import configuration

    r = dict(row)
    return f"{r.get('os') or '?'} {r.get('mode')} {configuration(r)}" + (" *lossy*" if r.get("lossy") else "")


def _title(ax, text: str, frame: pd.DataFrame) -> None:
    sources = set(frame["source"].dropna()) if "source" in frame else set()
    shown = [lab for lab in NOT_MEASURED if lab in sources]
    if shown:
        text += f"\n[{'; '.join(shown)}" + ("; mixed with measurements]" if len(sources) > len(shown) else "]")
    if "lossy" in frame and frame["lossy"].any():
        text += "\n(* tracer reported losses: counts are lower bounds)"
    ax.set_title(text, fontsize=10)


def _limit_lines(ax, frame: pd.DataFrame) -> None:
    """Dotted red line at each FreeBSD per-process AIO job limit in ``frame["limit"]`` (if any)."""
    limits = frame["limit"].dropna().unique() if "limit" in frame else []
    for lim in limits:
        ax.axhline(lim, color="red", linestyle=":", label=f"vfs.aio.max_aio_queue_per_proc = {int(lim)}")


def amplification_bars(role_rows: pd.DataFrame) -> plt.Figure:
    """Stacked syscalls per I/O by role, one bar per run, with the mode's floor as a black tick."""
    wide = role_rows[role_rows["role"].isin(ROLES)].copy()
    wide["label"] = wide.apply(run_label, axis=1)
    pivot = wide.pivot_table(index="label", columns="role", values="per_io", aggfunc="mean", sort=False)
    pivot = pivot.reindex(columns=[r for r in ROLES if r in pivot.columns])
    floors = role_rows[role_rows["role"] == "total"].assign(label=lambda d: d.apply(run_label, axis=1)) \
        .groupby("label", sort=False)["floor_per_io"].mean()
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(pivot) + 3), 4.8), layout="constrained")
    bottom = np.zeros(len(pivot))
    x = np.arange(len(pivot))
    for role in pivot.columns:
        vals = pivot[role].fillna(0).to_numpy()
        ax.bar(x, vals, bottom=bottom, label=role, color=ROLE_COLORS.get(role))
        bottom += vals
    ax.scatter(x, floors.reindex(pivot.index).to_numpy(), marker="_", s=400, color="black", zorder=3,
               label="theoretical floor")
    ax.set_xticks(x, pivot.index, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("syscalls per I/O (all threads, in window)")
    ax.set_xlabel("run (OS, mode, depth q, submit batch b, reap batch r)")
    _title(ax, "Syscall amplification by role", role_rows)
    top = np.nanmax([bottom.max(), np.nanmax(floors.to_numpy(dtype=float)) if len(floors) else 0.0])
    ax.set_ylim(0, top * 1.1 if top > 0 else 1.0)  # autoscale stopped at the first bar series
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: never over a bar
    return fig


def attribution_bars(per_thread: pd.DataFrame) -> plt.Figure:
    """Submitted vs charged, per thread of each run (threads with neither omitted), one panel per
    rusage unit (``charge_unit``: Linux 512-byte blocks, FreeBSD block I/O operations; never mixed
    on one axis). When some runs have a separate reaper thread (threads=split), only those are
    drawn: with one thread the submitter is trivially the one charged."""
    d = per_thread[(per_thread["submitted_blocks"] > 0) | (per_thread["charged_blocks"].fillna(0) > 0)].copy()
    split = d["threads"] == "split"
    if split.any():
        d = d[split]
    d["label"] = d.apply(lambda r: f"{run_label(r)}\n{r['thread_role']} {r['tid']}", axis=1)
    units = list(dict.fromkeys(d["charge_unit"])) or ["512-byte blocks"]
    widths = [max(3.0, 0.6 * int((d["charge_unit"] == u).sum()) + 2) for u in units]
    fig, axes = plt.subplots(1, len(units), figsize=(max(6, sum(widths)), 5), squeeze=False,
                             gridspec_kw={"width_ratios": widths}, layout="constrained")
    for ax, unit in zip(axes[0], units):
        g = d[d["charge_unit"] == unit]
        x = np.arange(len(g))
        how = "I/Os, one operation each" if unit == "block I/O operations" else "I/Os x bytes / 512"
        ax.bar(x - 0.2, g["submitted_blocks"], width=0.4, label=f"submitted ({how})")
        ax.bar(x + 0.2, g["charged_blocks"].fillna(0), width=0.4, label="charged (ru_inblock+ru_oublock)")
        ax.set_xticks(x, g["label"], rotation=70, ha="right", fontsize=6)
        top = float(max(g["submitted_blocks"].max(), g["charged_blocks"].fillna(0).max(), 1))
        ax.set_ylim(0, top * 1.35)  # room for the legend above the bars
        ax.set_ylabel(unit)
        ax.set_xlabel("thread (run, thread role, tid)")
        ax.legend(fontsize=7, loc="upper center")
    _title(axes[0][0], "Per-thread rusage attribution: who is charged for the I/O"
           + (" (submitter + reaper runs)" if split.any() else ""), d)
    fig.suptitle(axes[0][0].get_title(), fontsize=10)  # spans every unit's panel
    axes[0][0].set_title("")
    return fig


def latency_bars(lat: pd.DataFrame) -> plt.Figure:
    """p50 and p99 per latency stage and run (us)."""
    d = lat.copy()
    d["label"] = d.apply(run_label, axis=1)
    stages = list(dict.fromkeys(d["stage"]))
    labels = list(dict.fromkeys(d["label"]))
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(labels) + 3), 4.8), layout="constrained")
    width = 0.8 / max(len(stages), 1)
    x = np.arange(len(labels))
    for i, stage in enumerate(stages):
        g = d[d["stage"] == stage].groupby("label")[["p50", "p99"]].mean().reindex(labels)
        ax.bar(x + i * width, g["p50"] / 1000, width=width, label=f"{stage} p50")
        ax.scatter(x + i * width, g["p99"] / 1000, marker="v", color="black", s=12)
    ax.set_xticks(x + width * (len(stages) - 1) / 2, labels, rotation=60, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("latency from submit (us; bar p50, triangle p99)")
    ax.set_xlabel("run")
    _title(ax, "Latency by stage", d)
    ax.legend(fontsize=7)
    return fig


def probe_effect_bars(summary: pd.DataFrame) -> plt.Figure:
    """IOPS of each configuration under the tracer (solid) and without it (hatched), one colour per
    mode, with interval bars: the probe effect at a glance."""
    from tracer.view.headline import _sort_key, configuration, mode_rank

    d = summary[summary["metric"] == "iops"].copy()
    d["configuration"] = d.drop(columns=["backend"]).apply(configuration, axis=1)
    d["traced"] = d["backend"] != "none"
    d["_rank"] = d["mode"].map(lambda m: mode_rank(str(m)))
    d["_key"] = d.apply(_sort_key, axis=1)
    d = d.iloc[sorted(range(len(d)), key=lambda i: (d["os"].iat[i], d["_rank"].iat[i], d["_key"].iat[i]))]
    labels = list(dict.fromkeys(zip(d["os"], d["mode"], d["configuration"])))
    fig, ax = plt.subplots(figsize=(8.5, max(2.8, 0.42 * len(labels) + 1.4)), layout="constrained")
    y = np.arange(len(labels))[::-1]
    for traced, off, hatch in ((True, 0.2, None), (False, -0.2, "//")):
        g = d[d["traced"] == traced].drop_duplicates(["os", "mode", "configuration"]) \
            .set_index(["os", "mode", "configuration"]).reindex(labels)
        ax.barh(y + off, g["mean"].fillna(0) / 1000, height=0.38, color=[mode_color(m) for _, m, _ in labels],
                hatch=hatch, edgecolor="white" if hatch is None else "black", linewidth=0.4,
                xerr=_yerr(g["mean"], g["ci_low"], g["ci_high"], g["min"], g["max"]) / 1000, capsize=2,
                label="traced" if traced else "untraced")
    ax.set_yticks(y, [f"{o} {m}  {c}" for o, m, c in labels], fontsize=7)
    ax.set_xlabel("thousand I/Os per second")
    ax.legend(fontsize=8, loc="lower right")
    _title(ax, "Throughput traced and untraced (hatched): the probe effect", d)
    return fig

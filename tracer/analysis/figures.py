"""Matplotlib figures for the notebooks and the report: every one has a title, units and labelled
axes, and says when its data come from FreeBSD fixtures rather than measurements. Figures only
draw numbers the analysis functions computed."""
from __future__ import annotations


import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tracer.analysis.requires import NOT_MEASURED  # noqa: E402
from tracer.schema import ROLES  # noqa: E402

ROLE_COLORS = {"submit": "#4c72b0", "wait": "#55a868", "status": "#c44e52", "result": "#8172b2", "other": "#999999"}


def run_label(row: pd.Series | dict) -> str:
    """Short label of a run: ``<os> <mode> q<depth> b<batch> r<reap_batch>`` (+ ``*`` when lossy)."""
    r = dict(row)
    label = f"{r.get('os') or '?'} {r.get('mode')} q{r.get('depth')} b{r.get('batch')} r{r.get('reap_batch')}"
    if r.get("os") == "FreeBSD" and r.get("kernel"):
        label += " D33271" if "D33271" in str(r["kernel"]) else " stock"
    if r.get("threads") == "split":
        label += " split"
    if r.get("direct") is True or str(r.get("direct")) == "True":
        label += " O_DIRECT"
    return label + (" *lossy*" if r.get("lossy") else "")


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
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(pivot) + 3), 4.8))
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
    fig.tight_layout()
    return fig


def amplification_vs_reap_batch(role_rows: pd.DataFrame) -> plt.Figure:
    """Total syscalls per I/O against reap batch, one line per (OS, mode, depth), floor dashed."""
    tot = role_rows[role_rows["role"] == "total"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    keys = ["os", "mode", "depth", "threads", "direct", "op"]
    groups = list(tot.groupby(keys, dropna=False, sort=False))
    # configurations run at several reap batches show the trend; single points only if nothing else
    if any(g["reap_batch"].nunique() > 1 for _, g in groups):
        groups = [(k, g) for k, g in groups if g["reap_batch"].nunique() > 1]
    for key, g in groups:
        k = dict(zip(keys, key))
        g = g.groupby("reap_batch", as_index=False)[["per_io", "floor_per_io"]].mean().sort_values("reap_batch")
        label = f"{k['os']} {k['mode']} q{k['depth']} {k['op']}" + (" split" if k["threads"] == "split" else "") \
            + (" O_DIRECT" if k["direct"] is True else "")
        line, = ax.plot(g["reap_batch"], g["per_io"], marker="o", label=label)
        ax.plot(g["reap_batch"], g["floor_per_io"], linestyle="--", color=line.get_color(), alpha=0.6)
    ax.set_xscale("log", base=2)
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("reap batch (completions per wait call)")
    ax.set_ylabel("syscalls per I/O (total; dashed = floor)")
    _title(ax, "How amplification falls as the reap batch grows", tot)
    ax.legend(fontsize=7)
    fig.tight_layout()
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
                             gridspec_kw={"width_ratios": widths})
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
    fig.tight_layout()
    return fig


def free_lag_histogram(hists: pd.DataFrame) -> plt.Figure:
    """Log2 histograms of completion -> release lag, one line per configuration (repetitions
    pooled: I/O counts per bucket summed over the runs of that configuration)."""
    d = hists.assign(label=hists.apply(run_label, axis=1))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label, g in d.groupby("label", sort=False):
        pooled = g.groupby("lo_ns", as_index=False)["count"].sum().sort_values("lo_ns")
        runs = g["run_id"].nunique()
        ax.step(np.maximum(pooled["lo_ns"], 1) / 1000, pooled["count"], where="post",
                label=label + (f" ({runs} runs)" if runs > 1 else ""))
    ax.set_xscale("log")
    ax.set_xlabel("kernel completion -> release of kernel state (us, log2 buckets)")
    ax.set_ylabel("I/Os (summed over repetitions)")
    _title(ax, "Async-free timing: distribution", hists)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def occupancy_bars(pct: pd.DataFrame) -> plt.Figure:
    """Kernel jobs alive per configuration (from :func:`free_timing.percentiles`): time-weighted
    mean and maximum, and the completed-but-unreleased part, against FreeBSD's per-process limit."""
    d = pct.assign(label=pct.apply(run_label, axis=1))
    g = d.groupby("label", sort=False)[["mean_alive", "max_alive", "mean_completed_unreleased",
                                         "max_completed_unreleased"]].mean()
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(g) + 3), 4.8))
    x = np.arange(len(g))
    ax.bar(x - 0.2, g["mean_alive"], width=0.4, label="alive, time-weighted mean")
    ax.bar(x + 0.2, g["mean_completed_unreleased"], width=0.4, label="completed but not released, mean")
    ax.scatter(x - 0.2, g["max_alive"], marker="_", s=200, color="black", label="alive, max", zorder=3)
    ax.scatter(x + 0.2, g["max_completed_unreleased"], marker="_", s=200, color="grey",
               label="completed not released, max", zorder=3)
    _limit_lines(ax, pct)
    ax.set_xticks(x, g.index, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("kernel jobs (per process)")
    ax.set_xlabel("run configuration")
    _title(ax, "AIO slot occupancy: jobs holding kernel state", pct)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def jobs_alive_plot(alive: pd.DataFrame, max_runs: int = 4) -> plt.Figure:
    """Jobs alive (submitted, not released) over time for the first run of at most ``max_runs``
    configurations, with FreeBSD's per-process limit."""
    firsts = alive.drop_duplicates("run_id")
    firsts = firsts.assign(label=firsts.apply(run_label, axis=1)).drop_duplicates("label").head(max_runs)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for run_id, label in zip(firsts["run_id"], firsts["label"]):
        g = alive[alive["run_id"] == run_id]
        ax.step(g["t_ns"] / 1e6, g["alive"], where="post", label=label, linewidth=0.8)
    _limit_lines(ax, alive)
    ax.set_xlabel("time since first submit (ms)")
    ax.set_ylabel("kernel jobs alive (submitted, not released)")
    _title(ax, "AIO slot occupancy over time", alive)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def latency_bars(lat: pd.DataFrame) -> plt.Figure:
    """p50 and p99 per latency stage and run (us)."""
    d = lat.copy()
    d["label"] = d.apply(run_label, axis=1)
    stages = list(dict.fromkeys(d["stage"]))
    labels = list(dict.fromkeys(d["label"]))
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(labels) + 3), 4.8))
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
    fig.tight_layout()
    return fig


def iops_bars(runs: pd.DataFrame) -> plt.Figure:
    """IOPS and CPU per I/O per run."""
    d = runs.copy()
    d["label"] = d.apply(run_label, axis=1)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(d) + 3), 4.5))
    x = np.arange(len(d))
    ax.bar(x, d["iops"] / 1000, color="#4c72b0")
    ax.set_ylabel("thousand I/O per second (traced)")
    ax.set_xticks(x, d["label"], rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("run")
    ax2 = ax.twinx()
    ax2.plot(x, d["cpu_ns_per_io"] / 1000, "o", color="#c44e52")
    ax2.set_ylabel("CPU per I/O (us, red dots)")
    _title(ax, "Throughput and CPU per I/O (under tracing)", d)
    fig.tight_layout()
    return fig

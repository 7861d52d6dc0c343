"""The answers at a glance: one table per question, one row per OS x mode x configuration, the
mean over repetitions with its interval (or range), in units a storage engineer reads.

:data:`QUESTIONS` says which metrics (from :data:`tracer.analysis.compare.METRICS`) answer which
question; :func:`table` turns :func:`compare.summarize` output into that table, generic over
metrics, so a new metric or mode is one entry here and needs no change in the page or the CLI.
:func:`probe_effect` pairs each traced configuration with the same configuration run untraced
(backend ``none``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from tracer.view import fmt
from tracer.analysis.compare import CONFIG_COLUMNS, METRICS
from tracer.base.schema import ROLES

ROW_KEYS = ("os", "mode", "configuration", "source")


@dataclass(frozen=True)
class Question:
    key: str
    title: str
    lead: str
    metrics: dict[str, str]  # metric -> column header
    text: dict[str, str] = field(default_factory=dict)  # per-run text column -> header (first run's)
    needs: str = ""  # the metric a row must have to be shown


QUESTIONS: tuple[Question, ...] = (
    Question("amplification", "1. Syscall amplification",
             "System calls per I/O inside the measurement window, all threads, by role; the floor is "
             "the fewest a mode can make at this depth and batch; 'under REAP' is a projection for "
             "FreeBSD legacy-mode runs (tracer/analysis/reap_projection.py), not a measurement.",
             {**{f"{r}_per_io": r for r in ROLES}, "total_per_io": "total", "total_floor": "floor",
              "reap_projected_per_io": "under REAP (projected)"},
             needs="total_per_io"),
    Question("attribution", "2. Per-thread rusage attribution",
             "Share of the I/O charged (ru_inblock + ru_oublock: 512-byte blocks on Linux, block I/O "
             "operations on FreeBSD) to a thread that did not submit it, and the thread charged most.",
             {"share_not_submitter": "charged to a non-submitter"}, {"charged_thread": "thread charged most"},
             needs="share_not_submitter"),
    Question("free_timing", "3. Async-free timing",
             "Time from the kernel completing an I/O to the release of its kernel state (free lag), "
             "and kernel jobs alive at once against the per-process limit.",
             {"free_lag_p50_ns": "free lag p50", "free_lag_p99_ns": "free lag p99",
              "mean_alive": "jobs alive, mean", "max_alive": "jobs alive, max"},
             {"limit": "limit", "release_point": "released at"}, needs="free_lag_p50_ns"),
)
BASICS = Question("basics", "Throughput and latency, traced and untraced",
                  "IOPS and the latency the program observed (submit to learning of the completion), "
                  "under the tracer and without it: the difference is the probe effect.",
                  {"iops": "IOPS", "observed_p50_ns": "latency p50", "observed_p99_ns": "latency p99",
                   "cpu_ns_per_io": "CPU per I/O"}, needs="iops")

KNOWN_MODE_ORDER = ("aio-poll", "aio-suspend", "waitcomplete", "kevent", "kevent-error", "reap", "libaio",
                    "io_uring", "io_uring-sqpoll")


def config_parts(r: pd.Series | dict) -> list[str]:
    """The configuration of a row apart from OS and mode, as words: op, depth, submit batch, reap
    batch, lio, threads, O_DIRECT, FreeBSD kernel variant, tracer, counts only."""
    r = dict(r)

    def given(k):
        v = r.get(k)
        return v is not None and not fmt.missing(v) and v != "-" and v != ""

    parts = [str(r.get("op")), f"q{r.get('depth')}", f"b{r.get('batch')}", f"r{r.get('reap_batch')}"]
    if str(r.get("submit")) == "lio":
        parts.append("lio")
    parts.append("split" if r.get("threads") == "split" else "single")
    if r.get("direct") is True or str(r.get("direct")) == "True":
        parts.append("O_DIRECT")
    if given("kernel_variant"):
        parts.append(str(r["kernel_variant"]))
    if given("backend"):
        parts.append("untraced" if r["backend"] == "none" else f"({r['backend']})")
    if r.get("counts_only") is True or str(r.get("counts_only")) == "True":
        parts.append("counts only")
    return parts


def configuration(r: pd.Series | dict) -> str:
    """The part of a row's configuration that is not OS or mode: 'read q32 b1 r8 split O_DIRECT'."""
    return " ".join(p for p in config_parts(r) if p != "single")


def short_configurations(frame: pd.DataFrame, without_reap_batch: bool = False) -> tuple[pd.Series, str]:
    """Per row, only the configuration words that vary across ``frame`` (for legends and axis
    labels), and the words common to every row (for a subtitle); ``without_reap_batch`` when the
    reap batch is on the x axis."""
    def words(r):
        ps = config_parts(r)
        return [p for p in ps if p != ps[3]] if without_reap_batch else ps

    parts = frame.apply(words, axis=1)
    if not len(parts):
        return pd.Series(dtype=str), ""
    common = set.intersection(*(set(p) for p in parts))
    first = parts.iloc[0]
    short = parts.map(lambda ps: " ".join(p for p in ps if p not in common))
    return short, " ".join(p for p in first if p in common and p != "single")


def mode_rank(mode: str) -> int:
    return KNOWN_MODE_ORDER.index(mode) if mode in KNOWN_MODE_ORDER else len(KNOWN_MODE_ORDER)


def _with_keys(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["configuration"] = out.apply(configuration, axis=1)
    out["_rank"] = out["mode"].map(lambda m: mode_rank(str(m)))
    return out


def table(summary: pd.DataFrame, runs: pd.DataFrame, q: Question) -> pd.DataFrame:
    """One row per OS x mode x configuration that has ``q.needs``: ``os``, ``mode``,
    ``configuration``, ``source``, ``n``, ``lossy``, and per metric ``<metric>`` (formatted mean)
    and ``<metric>__spread`` (interval or range, '' with one run), per text column its value in
    the configuration's first run. Empty frame when no run answers the question."""
    s = summary[summary["metric"].isin(list(q.metrics))]
    if q.key != BASICS.key and "backend" in s.columns:
        s = s[s["backend"] != "none"]  # untraced runs answer only the basics (the probe effect)
    if s.empty or q.needs not in set(s["metric"]):
        return pd.DataFrame()
    s = _with_keys(s)
    keys = [c for c in CONFIG_COLUMNS if c in s.columns]
    rows = []
    for key, g in s.groupby(keys, sort=False, dropna=False):
        by_metric = g.set_index("metric")
        if q.needs not in by_metric.index:
            continue
        first = g.iloc[0]
        row = {"os": first["os"], "mode": first["mode"], "configuration": first["configuration"],
               "source": first["source"], "n": int(by_metric["n"].max()), "lossy": bool(g["lossy"].any()),
               "_rank": first["_rank"], "_key": _sort_key(first)}
        for m in q.metrics:
            if m in by_metric.index:
                r = by_metric.loc[m]
                row[m] = fmt.value(r["mean"], METRICS[m])
                row[m + "__spread"] = fmt.spread(r["n"], r["ci_low"], r["ci_high"], r["min"], r["max"], METRICS[m])
            else:
                row[m], row[m + "__spread"] = fmt.BLANK, fmt.BLANK
        match = _runs_of(runs, dict(zip(keys, key)))
        for col in q.text:
            vals = match[col].dropna() if col in match.columns else pd.Series(dtype=object)
            v = vals.iloc[0] if len(vals) else None
            row[col] = fmt.count(v) if isinstance(v, (int, float, np.number)) else ("" if v is None else str(v))
        rows.append(row)
    out = pd.DataFrame(rows)
    order = sorted(range(len(out)), key=lambda i: (str(out.at[i, "os"]), out.at[i, "_rank"], str(out.at[i, "mode"]),
                                                    out.at[i, "_key"]))
    return out.iloc[order].drop(columns=["_rank", "_key"]).reset_index(drop=True)


def _sort_key(r) -> tuple:
    """Numbers as numbers (reap batch 8 before 32), then the rest of the configuration as text."""
    def num(k):
        try:
            return float(r.get(k))
        except (TypeError, ValueError):
            return float("inf")

    return (str(r.get("threads")), num("depth"), num("batch"), num("reap_batch"), configuration(r))


def _runs_of(runs: pd.DataFrame, config: dict) -> pd.DataFrame:
    mask = pd.Series(True, index=runs.index)
    for k, v in config.items():
        if k in runs.columns:
            col = runs[k].astype("object").where(runs[k].notna(), "-")
            mask &= col.astype(str) == str(v)
    return runs[mask]


def probe_effect(summary: pd.DataFrame) -> pd.DataFrame:
    """Traced beside untraced (backend ``none``) for every configuration run both ways: ``os``,
    ``mode``, ``configuration`` (without the backend), ``backend``, then per basic metric the
    traced and untraced means (formatted) and ``iops_ratio`` (traced / untraced, e.g. '0.62')."""
    s = summary[summary["metric"].isin(list(BASICS.metrics))]
    if s.empty or "backend" not in s.columns:
        return pd.DataFrame()
    s = s.assign(configuration=s.drop(columns=["backend"]).apply(configuration, axis=1))
    untraced = s[s["backend"] == "none"]
    traced = s[s["backend"] != "none"]
    keys = ["os", "mode", "configuration", "source"]
    rows = []
    for key, g in traced.groupby([*keys, "backend"], sort=False):
        u = untraced
        for k, v in zip(keys, key):
            u = u[u[k].astype(str) == str(v)]
        if u.empty:
            continue  # run only under a tracer (or a FreeBSD fixture/model): no probe effect to show
        row = {**dict(zip([*keys, "backend"], key)), "_rank": mode_rank(str(key[1])), "n": int(g["n"].max()),
               "_key": _sort_key(g.iloc[0])}
        tm, um = g.set_index("metric")["mean"], u.set_index("metric")["mean"]
        for m in BASICS.metrics:
            row[f"{m}__traced"] = fmt.value(tm.get(m), METRICS[m])
            row[f"{m}__untraced"] = fmt.value(um.get(m), METRICS[m])
        t_iops, u_iops = tm.get("iops"), um.get("iops")
        row["iops_ratio"] = fmt.num(t_iops / u_iops) if not fmt.missing(u_iops) and u_iops else fmt.BLANK
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    out = pd.DataFrame(rows)
    order = sorted(range(len(out)), key=lambda i: (str(out.at[i, "os"]), out.at[i, "_rank"], str(out.at[i, "mode"]),
                                                    out.at[i, "_key"]))
    return out.iloc[order].drop(columns=["_rank", "_key"]).reset_index(drop=True)

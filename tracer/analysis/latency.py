"""Latency and throughput: the basics every I/O tool reports, from the same bundle.

Latencies, per I/O, all from ``submit_ns`` (CLOCK_MONOTONIC just before the submit call):

* ``submit``: duration of the submit-role syscalls in the window (``syscalls.dur_ns``), i.e. what
  fio calls slat; NaN when the tracer gives no durations;
* ``complete``: kernel completion (``kernel_done_ns``) - submit: the device and kernel part;
* ``observed``: the program learned of the completion (``fetched_ns``) - submit: fio's clat/lat;
* ``freed``: kernel job state released (``freed_ns``) - submit (FreeBSD with dtrace).

Throughput: ``iops`` and ``mb_per_s`` over the measurement window, ``cpu_ns_per_io`` = user +
system time of every thread in the workload's thread record / I/Os.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tracer.analysis.amplification import io_count
from tracer.analysis.free_timing import percentile_row
from tracer.analysis.requires import requires, with_provenance

STAGES = {"complete": "kernel_done_ns", "observed": "fetched_ns", "freed": "freed_ns"}


@requires(tables={"ios": ("submit_ns", ("fetched_ns", "kernel_done_ns", "freed_ns"))})
def percentiles(model: Any) -> pd.DataFrame:
    """One row per stage (submit, complete, observed, freed) that the bundle has: ``stage``,
    ``n``, ``mean``, ``p50``, ``p90``, ``p99``, ``p99_9``, ``max`` (all ns)."""
    ios = model.ios
    rows = []
    if model.has("syscalls", "dur_ns") and model.has("syscalls", "role"):
        sc = model.syscalls
        sub = sc[(sc["role"] == "submit") & sc["in_window"].fillna(False).astype(bool)]
        if len(sub) and sub["dur_ns"].notna().any():
            rows.append({"stage": "submit", **percentile_row(sub["dur_ns"])})
    for stage, col in STAGES.items():
        if col in ios.columns and ios[col].notna().any():
            lat = ios[col].astype("float64") - ios["submit_ns"].astype("float64")
            rows.append({"stage": stage, **percentile_row(lat)})
    return with_provenance(pd.DataFrame(rows), model)


def _elapsed_ns(model: Any) -> float:
    window = getattr(model, "window", None)
    if window and window[0] is not None and window[1] is not None and window[1] > window[0]:
        return float(window[1] - window[0])
    summary = getattr(model, "summary", None) or {}
    if summary.get("elapsed_ns"):
        return float(summary["elapsed_ns"])
    ios = model.ios
    return float(ios["fetched_ns"].max() - ios["submit_ns"].min())


@requires(tables={"ios": ("submit_ns", "bytes")})
def throughput(model: Any) -> pd.DataFrame:
    """One row: ``ios``, ``errors`` (result < 0), ``elapsed_ns``, ``iops``, ``mb_per_s`` (MiB/s),
    ``cpu_ns_per_io`` (threads' utime + stime / I/Os; NaN without a thread record)."""
    ios = io_count(model)
    elapsed = _elapsed_ns(model)
    nbytes = float(model.ios["bytes"].sum())
    errors = int((model.ios["result"] < 0).sum()) if "result" in model.ios.columns else 0
    cpu = np.nan
    threads = getattr(model, "threads", None)
    if threads is not None and len(threads) and {"utime_ns", "stime_ns"} <= set(threads.columns):
        t = threads[["utime_ns", "stime_ns"]].astype("float64")
        cpu = float(t.where(t >= 0).sum().sum()) / ios if ios else np.nan
    row = {"ios": ios, "errors": errors, "elapsed_ns": elapsed,
           "iops": ios / (elapsed / 1e9) if elapsed > 0 else np.nan,
           "mb_per_s": nbytes / (1 << 20) / (elapsed / 1e9) if elapsed > 0 else np.nan,
           "cpu_ns_per_io": cpu}
    return with_provenance(pd.DataFrame([row]), model)

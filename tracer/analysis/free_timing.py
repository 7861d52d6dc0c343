"""Async-free timing: from kernel completion of an I/O to the release of its kernel state.

Per I/O, ``free_lag_ns = release_ns - kernel_done_ns``. What "release" is depends on what the
bundle can see (column ``release_point``, per mode in the registry's ``release`` column, tracer.base.modes):

* FreeBSD (dtrace): ``job_free`` = ``aio_free_entry`` freeing the ``struct kaiocb``. Stock modes
  free at ``aio_return``/``aio_waitcomplete``, so the lag includes the program's reap delay; with
  ``AIO_KEVENT_FLAG_REAP`` (D33144) the kernel frees at completion, so the lag is ~0.
* Linux io_uring: kernel completion = the ``io_uring_complete`` tracepoint (CQE posted); the CQE
  slot is released when the program advances the CQ head, which it does right after the reap its
  own record times (no per-I/O probe).
* Linux libaio: kernel completion = the block completion of the I/O's sector (O_DIRECT only;
  offset -> sector through the file's extents); released = the return of the ``io_getevents`` that
  harvested it (its io_event ring slot is freed), from the trace (tracer.model).
* Linux glibc POSIX AIO: the request is user-space state (glibc's ``struct requestlist``); "kernel"
  completion = the return of the helper thread's ``pread``/``pwrite`` at the I/O's offset; release
  = the ``aio_return`` the workload's record times. The label says so: nothing in the kernel is freed.

Jobs alive over time (:func:`jobs_alive`) counts per-process kernel jobs between submit and
release, against FreeBSD's ``vfs.aio.max_aio_queue_per_proc`` (256 by default): a completed but
unreaped job still holds its slot, which is where EAGAIN cliffs come from.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tracer.base import modes
from tracer.analysis.requires import provenance, requires, with_provenance

MAX_AIO_QUEUE_PER_PROC = 256  # FreeBSD vfs.aio.max_aio_queue_per_proc default (MAX_AIO_QUEUE_PER_PROC)
PERCENTILES = (50, 90, 99, 99.9)

FREEBSD_RELEASE = modes.release_point("reap", modes.FREEBSD)  # aio_complete -> aio_free_entry, every FreeBSD mode
REAP_OBSERVED = ("job_done", "reap observed by the workload")


def release_point(model: Any) -> tuple[str, str]:
    """(kernel completion point, release point) this bundle's free timing measures."""
    p = provenance(model)
    if p["os"] == modes.FREEBSD and model.has("ios", "freed_ns"):
        return FREEBSD_RELEASE
    if p["os"] == modes.FREEBSD:  # no job_free events (ktrace, truss): the reap is the release seen
        return REAP_OBSERVED
    if modes.release_point(p["mode"], p["os"]):  # Linux: libaio's freed_ns is its io_getevents
        return modes.release_point(p["mode"], p["os"])
    if model.has("ios", "freed_ns"):
        return ("job_done", "job_free")
    return modes.release_point(p["mode"], p["os"]) or REAP_OBSERVED


def _release_ns(model: Any) -> pd.Series:
    ios = model.ios
    freed = ios["freed_ns"] if "freed_ns" in ios.columns else pd.Series(np.nan, index=ios.index)
    fetched = ios["fetched_ns"] if "fetched_ns" in ios.columns else pd.Series(np.nan, index=ios.index)
    return freed.astype("float64").fillna(fetched.astype("float64")) if model.has("ios", "freed_ns") \
        else fetched.astype("float64")


@requires(tables={"ios": ("id", "submit_ns", "kernel_done_ns", ("freed_ns", "fetched_ns"))})
def per_io(model: Any) -> pd.DataFrame:
    """One row per I/O with both ends seen: ``id``, ``op``, ``kernel_done_ns``, ``release_ns``,
    ``free_lag_ns`` (release - kernel completion, ns), ``release_point``."""
    ios = model.ios
    out = pd.DataFrame({"id": ios["id"], "op": ios.get("op"),
                        "kernel_done_ns": ios["kernel_done_ns"].astype("float64"),
                        "release_ns": _release_ns(model)})
    out = out.dropna(subset=["kernel_done_ns", "release_ns"])
    out["free_lag_ns"] = out["release_ns"] - out["kernel_done_ns"]
    done, released = release_point(model)
    out["release_point"] = f"{done} -> {released}"
    return with_provenance(out.reset_index(drop=True), model)


def percentile_row(values: pd.Series, prefix: str = "") -> dict[str, float]:
    """n, mean, p50, p90, p99, p99_9 and max of ``values`` (ns), NaN when empty."""
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype="float64")
    row = {f"{prefix}n": int(v.size)}
    if v.size == 0:
        row.update({f"{prefix}{k}": np.nan for k in ("mean", "p50", "p90", "p99", "p99_9", "max")})
        return row
    qs = np.percentile(v, PERCENTILES)
    row.update({f"{prefix}mean": float(v.mean()), f"{prefix}p50": qs[0], f"{prefix}p90": qs[1],
                f"{prefix}p99": qs[2], f"{prefix}p99_9": qs[3], f"{prefix}max": float(v.max())})
    return row


@requires(tables={"ios": ("id", "submit_ns", "kernel_done_ns", ("freed_ns", "fetched_ns"))})
def percentiles(model: Any) -> pd.DataFrame:
    """One row: free-lag percentiles in ns (``n``, ``mean``, ``p50``...``max``) and ``release_point``,
    plus from :func:`jobs_alive`: ``max_alive``, ``max_completed_unreleased``, their time-weighted
    means ``mean_alive`` and ``mean_completed_unreleased`` (jobs), and ``limit``."""
    lag = per_io(model)
    row = percentile_row(lag["free_lag_ns"])
    row["release_point"] = lag["release_point"].iloc[0] if len(lag) else " -> ".join(release_point(model))
    alive = jobs_alive(model)
    row["max_alive"] = int(alive["alive"].max()) if len(alive) else 0
    row["max_completed_unreleased"] = int(alive["completed_unreleased"].max()) if len(alive) else 0
    row["mean_alive"] = time_weighted_mean(alive, "alive")
    row["mean_completed_unreleased"] = time_weighted_mean(alive, "completed_unreleased")
    row["limit"] = MAX_AIO_QUEUE_PER_PROC if provenance(model)["os"] == "FreeBSD" else np.nan
    return with_provenance(pd.DataFrame([row]), model)


def time_weighted_mean(alive: pd.DataFrame, column: str) -> float:
    """Mean of a :func:`jobs_alive` step column over time (each value weighted by how long it held)."""
    if len(alive) < 2:
        return float("nan")
    dt = np.diff(alive["t_ns"].to_numpy(dtype="float64"))
    total = dt.sum()
    return float((alive[column].to_numpy(dtype="float64")[:-1] * dt).sum() / total) if total > 0 else float("nan")


def log2_histogram(values: pd.Series) -> pd.DataFrame:
    """Log2 buckets of ``values`` (ns): ``lo_ns``, ``hi_ns`` (exclusive), ``count`` (DTrace
    quantize / bcc style); values <= 0 fall in the [0, 1) bucket."""
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype="float64")
    if v.size == 0:
        return pd.DataFrame({"lo_ns": [], "hi_ns": [], "count": []})
    exp = np.where(v >= 1, np.floor(np.log2(np.maximum(v, 1))) + 1, 0).astype(int)
    counts = np.bincount(exp)
    idx = np.arange(counts.size)
    lo = np.where(idx == 0, 0, 2.0 ** (idx - 1))
    hi = 2.0 ** idx
    out = pd.DataFrame({"lo_ns": lo, "hi_ns": hi, "count": counts})
    first, last = np.flatnonzero(counts)[[0, -1]]
    return out.iloc[first:last + 1].reset_index(drop=True)


@requires(tables={"ios": ("id", "submit_ns", ("freed_ns", "fetched_ns"))})
def jobs_alive(model: Any) -> pd.DataFrame:
    """Step timeline of kernel jobs alive: one row per change, ``t_ns`` (since the first submit),
    ``alive`` (submitted, not yet released) and ``completed_unreleased`` (kernel done, not yet
    released), plus ``limit`` (FreeBSD's 256; NaN on Linux, where no such per-process cap exists)."""
    ios = model.ios
    submit = ios["submit_ns"].astype("float64")
    release = _release_ns(model)
    done = ios["kernel_done_ns"].astype("float64") if "kernel_done_ns" in ios.columns \
        else pd.Series(np.nan, index=ios.index)
    ok = submit.notna() & release.notna()
    submit, release, done = submit[ok].to_numpy(), release[ok].to_numpy(), done[ok].to_numpy()
    if submit.size == 0:
        return pd.DataFrame({"t_ns": [], "alive": [], "completed_unreleased": [], "limit": []})
    has_done = ~np.isnan(done)
    t = np.concatenate([submit, release, done[has_done], release[has_done]])
    d_alive = np.concatenate([np.ones(submit.size), -np.ones(release.size), np.zeros(2 * has_done.sum())])
    d_cu = np.concatenate([np.zeros(2 * submit.size), np.ones(has_done.sum()), -np.ones(has_done.sum())])
    # at equal times apply releases before submits so a slot reused at once does not count twice
    order = np.lexsort((d_alive + d_cu, t))
    frame = pd.DataFrame({"t_ns": t[order] - submit.min(), "alive": np.cumsum(d_alive[order]).astype(int),
                          "completed_unreleased": np.cumsum(d_cu[order]).astype(int)})
    frame = frame.groupby("t_ns", sort=True).last().reset_index()
    frame["limit"] = MAX_AIO_QUEUE_PER_PROC if provenance(model)["os"] == "FreeBSD" else np.nan
    return frame


@requires(tables={"ios": ("id", "submit_ns", ("freed_ns", "fetched_ns"))})
def alive_timeline(model: Any) -> pd.DataFrame:
    """:func:`jobs_alive` with the provenance columns (for plots over many runs)."""
    return with_provenance(jobs_alive(model), model)


@requires(tables={"ios": ("id", "submit_ns", "kernel_done_ns", ("freed_ns", "fetched_ns"))})
def histogram(model: Any) -> pd.DataFrame:
    """:func:`log2_histogram` of the free lag, with ``release_point`` and provenance columns."""
    lag = per_io(model)
    hist = log2_histogram(lag["free_lag_ns"])
    hist["release_point"] = " -> ".join(release_point(model))
    return with_provenance(hist, model)


KERNEL_HISTOGRAMS = {"libaio": "@libaio_free_lag_ns"}  # mode -> in-kernel free-lag histogram map


@requires(tables={"aggregates": ("map", "count")})
def kernel_histogram(model: Any) -> pd.DataFrame:
    """The free-lag histogram an aggregate bundle computed in the kernel (libbpf backend, libaio:
    block completion -> the io_getevents return that harvests it), in :func:`log2_histogram`'s
    shape: ``lo_ns``, ``hi_ns``, ``count``, ``release_point`` and provenance. Empty when the mode
    has no in-kernel histogram (io_uring's CQ head and glibc's aio_return are user-space stores)."""
    mode = provenance(model)["mode"]
    agg = model.aggregates
    rows = agg[(agg["kind"] == "hist") & (agg["map"] == KERNEL_HISTOGRAMS.get(mode, ""))]
    out = pd.DataFrame({"lo_ns": rows["lo"].astype("float64").to_numpy(),
                        "hi_ns": rows["hi"].astype("float64").to_numpy() + 1,
                        "count": rows["count"].astype("int64").to_numpy()})
    out = out.sort_values("lo_ns").reset_index(drop=True)
    out["release_point"] = " -> ".join(release_point(model))
    return with_provenance(out, model)


def histogram_percentile(hist: pd.DataFrame, q: float) -> float:
    """The ``q`` percentile (0-100) of a log2 histogram, as the upper edge of the bucket holding it
    (an upper bound: that is all a histogram knows)."""
    if len(hist) == 0 or hist["count"].sum() == 0:
        return float("nan")
    cum = hist["count"].cumsum().to_numpy()
    i = int(np.searchsorted(cum, q / 100 * cum[-1]))
    return float(hist["hi_ns"].iloc[min(i, len(hist) - 1)])

"""Per-thread rusage attribution: which thread is charged for block I/O, and did it ask for it?

Everything is counted in the OS's rusage unit (column ``charge_unit``, tracer.model.RUSAGE_UNITS):
Linux ``ru_inblock``/``ru_oublock`` are 512-byte blocks, FreeBSD's are block I/O OPERATIONS (one per
buffer, read-ahead included: vfs_bio.c; btodb(nbytes) only on the aio_qbio raw-device path). The
two are never mixed or converted. The ``*_blocks`` columns hold amounts in ``charge_unit``.

Per thread, SUBMITTED (the workload record: the I/Os whose ``submit_tid`` is that thread; Linux:
their bytes / 512; FreeBSD: their count, one operation per I/O that reaches the device) against
CHARGED, taken from the best source the bundle has (column ``charge_source``):

1. ``traced``: kernel-side ``ru_charge`` events (FreeBSD: the thread that ran ``kern_aio_return``
   or, with D33271, the submitter), a0 = inblock, a1 = oublock;
2. ``rusage``: the workload's own ``getrusage(RUSAGE_THREAD)`` delta, for its own threads
   (thread roles main, submitter, reaper, both);
3. ``proc_io``: ``/proc/<pid>/task/<tid>/io`` read_bytes + write_bytes / 512, for threads the
   workload does not run itself (glibc AIO helpers, ``iou-wrk``, ``iou-sqp``): Linux only.

``share_not_submitter`` = charges to threads that submitted nothing / all charges (a ratio, so
unit-free). Stock FreeBSD charges the reaping thread (share near 1 with threads=split), D33271 the
submitter (share 0). On Linux it depends on the engine: libaio and io_uring inline issue charge
the submitter, glibc POSIX AIO its helper thread, io_uring punts its ``iou-wrk`` worker.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tracer.analysis.requires import requires, with_provenance
from tracer.model import RUSAGE_UNITS, rusage_unit

BLOCK_BYTES = 512  # Linux's rusage block
OWN_ROLES = ("main", "submitter", "reaper", "both")


def _traced_block_starts(model: Any) -> pd.DataFrame | None:
    """Linux: 512-byte blocks of the block requests each thread started inside the window, like
    the workload's rusage (``blk_queue`` events, or an aggregate bundle's in-kernel @blk_bytes per
    thread, counted in the window by the libbpf backend); None when the trace has neither."""
    ev = getattr(model, "events", None)
    if ev is not None and len(ev) and "ev" in ev.columns:
        bq = ev[ev["ev"] == "blk_queue"]
        window = getattr(model, "window", None)
        if window is not None:  # reads outside it (Python importing after the run) are not the I/O's
            ts = bq["ts_ns"].astype("float64")
            bq = bq[(ts >= window[0]) & (ts <= window[1])]
        if len(bq):
            return (bq.assign(traced_blocks=bq["a2"].astype("int64") / BLOCK_BYTES)
                      .groupby("tid")["traced_blocks"].sum().reset_index())
    agg = getattr(model, "aggregates", None)
    if agg is not None and len(agg) and (agg["map"] == "@blk_bytes").any():
        rows = agg[agg["map"] == "@blk_bytes"]
        return pd.DataFrame({"tid": pd.to_numeric(rows["key"]).astype("int64").to_numpy(),
                             "traced_blocks": rows["value"].astype("float64").to_numpy() / BLOCK_BYTES})
    return None


def _traced_charges(model: Any) -> pd.DataFrame | None:
    ev = getattr(model, "events", None)
    if ev is None or len(ev) == 0 or "ev" not in ev.columns:
        return None
    ch = ev[ev["ev"] == "ru_charge"]
    window = getattr(model, "window", None)
    if window is not None:  # not the REAP availability probe's read, nor anything else outside the run
        ch = ch[(ch["ts_ns"].astype("float64") >= window[0]) & (ch["ts_ns"].astype("float64") <= window[1])]
    if ch.empty:
        return None
    return (ch.assign(traced_blocks=ch["a0"].astype("int64") + ch["a1"].astype("int64"))
              .groupby("tid")["traced_blocks"].sum().reset_index())


def _nonneg(series: pd.Series) -> pd.Series:
    s = pd.to_numeric(series, errors="coerce").astype("float64")
    return s.where(s >= 0)


@requires(tables={"ios": ("submit_tid", "bytes"), "threads": ("tid", "role")})
def by_thread(model: Any) -> pd.DataFrame:
    """One row per thread: ``tid``, ``thread``, ``thread_role``, ``submitted_ios``,
    ``submitted_blocks``, ``reaped_ios``, ``rusage_blocks``, ``proc_io_blocks``, ``traced_blocks``,
    ``charged_blocks``, ``charge_source``, ``charged_not_submitted`` (charged > 0, submitted 0),
    ``charge_unit``. Amounts are in ``charge_unit`` (see the module doc)."""
    unit = rusage_unit((getattr(model, "manifest", None) or {}).get("os"))
    freebsd = unit == RUSAGE_UNITS["FreeBSD"]
    ios = model.ios
    io_ops = ios[ios["op"].isin(["read", "write"])] if "op" in ios.columns else ios
    sub = (io_ops.groupby("submit_tid").agg(submitted_ios=("bytes", "size"), submitted_bytes=("bytes", "sum"))
                 .rename_axis("tid").reset_index())
    reaped = (ios.groupby("reap_tid").size().rename("reaped_ios").rename_axis("tid").reset_index()
              if "reap_tid" in ios.columns else pd.DataFrame(columns=["tid", "reaped_ios"]))
    th = model.threads.drop_duplicates("tid").copy()
    th["rusage_blocks"] = _nonneg(th["inblock"]).add(_nonneg(th["oublock"]), fill_value=np.nan) \
        if {"inblock", "oublock"} <= set(th.columns) else np.nan
    if {"io_read_bytes", "io_write_bytes"} <= set(th.columns):
        th["proc_io_blocks"] = (_nonneg(th["io_read_bytes"]).add(_nonneg(th["io_write_bytes"]), fill_value=np.nan)
                                / BLOCK_BYTES)
    else:
        th["proc_io_blocks"] = np.nan
    th = th.rename(columns={"name": "thread", "role": "thread_role"})[
        ["tid", "thread", "thread_role", "rusage_blocks", "proc_io_blocks"]]
    out = th.merge(sub, on="tid", how="outer").merge(reaped, on="tid", how="outer")
    traced = _traced_charges(model)  # FreeBSD ru_charge: the kernel's own charge, used as the charge
    started = traced if traced is not None else _traced_block_starts(model)  # Linux: blocks started
    out = out.merge(started, on="tid", how="outer") if started is not None else out.assign(traced_blocks=np.nan)
    out["thread"] = out["thread"].fillna("(not in thread record)")
    out["thread_role"] = out["thread_role"].fillna("other")
    for col in ("submitted_ios", "submitted_bytes", "reaped_ios"):
        out[col] = out[col].fillna(0).astype("int64")
    # FreeBSD counts operations: an I/O is (at least) one; its size does not matter.
    out["submitted_blocks"] = (out["submitted_ios"].astype("float64") if freebsd
                               else out["submitted_bytes"] / BLOCK_BYTES)
    if freebsd:
        out["proc_io_blocks"] = np.nan  # /proc/<pid>/task/<tid>/io is Linux's, in bytes
    own = out["thread_role"].isin(OWN_ROLES)
    if traced is not None:
        out["charged_blocks"], out["charge_source"] = out["traced_blocks"].fillna(0.0), "traced"
    else:
        primary = out["rusage_blocks"].where(own, out["proc_io_blocks"])
        secondary = out["proc_io_blocks"].where(own, out["rusage_blocks"])
        out["charged_blocks"] = primary.fillna(secondary)
        out["charge_source"] = np.select(
            [primary.notna() & own, primary.notna(), secondary.notna() & own, secondary.notna()],
            ["rusage", "proc_io", "proc_io", "rusage"], default="unknown")
    out["charged_not_submitted"] = (out["charged_blocks"].fillna(0) > 0) & (out["submitted_blocks"] == 0)
    cols = ["tid", "thread", "thread_role", "submitted_ios", "submitted_blocks", "reaped_ios",
            "rusage_blocks", "proc_io_blocks", "traced_blocks", "charged_blocks", "charge_source",
            "charged_not_submitted", "charge_unit"]
    out["charge_unit"] = unit
    return with_provenance(out[cols].sort_values("tid").reset_index(drop=True), model)


OWN_LABELS = {"submitter": "submitter", "reaper": "reaper", "both": "submitter (also reaps)", "main": "main"}


def charged_label(thread: pd.Series) -> str:
    """Who a thread is, for people: the workload's own threads by role, helpers by name
    (glibc AIO helper, iou-wrk, iou-sqp, aiod)."""
    return OWN_LABELS.get(str(thread["thread_role"])) or str(thread["thread"])


def summarize(per_thread: pd.DataFrame) -> pd.DataFrame:
    """One row per run from :func:`by_thread` rows: ``submitted_blocks``, ``charged_blocks`` (in
    ``charge_unit``), ``share_not_submitter`` (0..1), ``charged_thread_role`` (role holding most charged blocks)
    and ``verdict`` (a sentence)."""
    rows = []
    for run_id, g in per_thread.groupby("run_id", sort=False):
        charged = g["charged_blocks"].fillna(0)
        total = float(charged.sum())
        not_sub = float(charged[g["submitted_blocks"] == 0].sum())
        share = not_sub / total if total > 0 else np.nan
        top = g.loc[charged.idxmax()] if total > 0 else None
        top_role = top["thread_role"] if top is not None else None
        if total == 0:
            verdict = "no blocks charged to any thread (page-cache hits or untraced worker)"
        elif share < 0.05:
            verdict = f"submitter charged ({top_role} {top['thread']})"
        else:
            verdict = f"{share:.0%} charged to threads that did not submit (mostly {top_role} {top['thread']})"
        first = g.iloc[0]
        rows.append({"run_id": run_id, "submitted_blocks": float(g["submitted_blocks"].sum()),
                     "charged_blocks": total, "charge_unit": g["charge_unit"].iloc[0],
                     "share_not_submitter": share, "charged_thread_role": top_role,
                     "charged_thread": None if top is None else charged_label(top), "verdict": verdict,
                     **{c: first[c] for c in ("os", "kernel", "backend", "mode", "op", "depth", "threads", "direct",
                                              "source", "lossy", "loss_note") if c in g.columns}})
    return pd.DataFrame(rows)


@requires(tables={"threads": ("tid", "role"), "syscalls": ("tid", "role")})
def charged_by_syscall_role(model: Any) -> pd.DataFrame:
    """Attribution without a per-I/O record (a foreign program: capture -- CMD / -p PID): one row
    per thread with ``submit_calls`` (its submit-role syscalls in the window), ``charged_blocks``
    (``ru_charge`` events where traced, else /proc task io read+write bytes / 512) and
    ``charged_not_submitted`` (charged > 0 while it made no submit call). Threads that submit
    through a library without a syscall (glibc POSIX AIO) make no submit call at all: then every
    charged thread is "not submitted" (see :func:`share_not_submitting`)."""
    th = model.threads.drop_duplicates("tid").copy()
    sc = model.syscalls
    sc = sc[sc["in_window"]] if "in_window" in sc.columns else sc
    calls = sc[sc["role"] == "submit"].groupby("tid").size().rename("submit_calls").rename_axis("tid").reset_index()
    traced = _traced_charges(model)
    out = th.rename(columns={"name": "thread", "role": "thread_role"})[["tid", "thread", "thread_role"]]
    out = out.merge(calls, on="tid", how="outer")
    if traced is not None:
        out = out.merge(traced, on="tid", how="outer")
        out["charged_blocks"], out["charge_source"] = out["traced_blocks"].fillna(0.0), "traced"
    else:
        proc = th[["tid"]].assign(charged_blocks=(_nonneg(th["io_read_bytes"]).add(
            _nonneg(th["io_write_bytes"]), fill_value=np.nan) / BLOCK_BYTES).to_numpy())
        out = out.merge(proc, on="tid", how="left")
        out["charge_source"] = np.where(out["charged_blocks"].notna(), "proc_io", "unknown")
    out["thread"] = out["thread"].fillna("(not in thread record)")
    out["thread_role"] = out["thread_role"].fillna("other")
    out["submit_calls"] = out["submit_calls"].fillna(0).astype("int64")
    out["charged_not_submitted"] = (out["charged_blocks"].fillna(0) > 0) & (out["submit_calls"] == 0)
    cols = ["tid", "thread", "thread_role", "submit_calls", "charged_blocks", "charge_source", "charged_not_submitted"]
    return with_provenance(out[cols].sort_values("tid").reset_index(drop=True), model)


def share_not_submitting(rows: pd.DataFrame) -> float:
    """Of the blocks charged in :func:`charged_by_syscall_role` rows, the share charged to threads
    that made no submit call (NaN when nothing was charged)."""
    charged = rows["charged_blocks"].fillna(0)
    total = float(charged.sum())
    return float(charged[rows["submit_calls"] == 0].sum()) / total if total > 0 else float("nan")

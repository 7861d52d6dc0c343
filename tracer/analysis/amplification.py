"""Syscall amplification: system calls per I/O, by role and by thread, beside each mode's floor.

Counted inside the measurement window (``syscalls.in_window``) over ALL threads of the process
(glibc AIO helper threads, io_uring ``iou-wrk``/``iou-sqp`` workers included: the trace is per
process, not per thread), divided by the I/Os the run did.

Theoretical floor (:func:`theoretical_floor`): the fewest syscalls per I/O a mode can make, by
role, when every call does the most work it can (after anchors.md D.5 and DESIGN.md's modes
table); the terms per mode are the ``floor`` column of the mode registry (tracer.base.modes). ``b`` = submit batch (``lio``/``io_submit``/``io_uring_enter`` carry b I/Os; POSIX modes
with ``submit=single`` pay 1 call per I/O), ``D`` = depth: one wait call can return at most D
completions (``io_getevents(min_nr=r, nr=D)``, ``kevent(nevents=D)``, ``aio_suspend`` over D
aiocbs). The reap batch ``r`` is the *minimum* a wait returns, so measured waits per I/O lie
between the floor 1/D and 1/r; as r grows towards D the measurement is pushed onto the floor.

=============== ========= ======== ========= ========= =========================================
mode            submit    wait     status    result    notes
=============== ========= ======== ========= ========= =========================================
aio-poll (FB)   1 or 1/b  0        1         1         >= 1 aio_error that sees the completion
aio-suspend(FB) 1 or 1/b  1/D      1         1         aio_suspend per wake + aio_error+aio_return
waitcomplete    1 or 1/b  1        0         0         aio_waitcomplete returns the result
kevent          1 or 1/b  1/D      0         1         kevent per batch + aio_return per I/O
kevent-error    1 or 1/b  1/D      1         1         + aio_error per I/O
reap (D33144)   1 or 1/b  1/D      0         0         result in kev.data, job freed at completion
aio-* (glibc)   0         0        0         0         other = 1: the helper thread's pread/pwrite
libaio          1/b       1/D      0         0         result in io_event
io_uring        1/b       0        0         0         waits ride on the submit enter (min_complete)
io_uring-sqpoll 0         0        0         0         SQ polled by a kernel thread, CQ in memory
=============== ========= ======== ========= ========= =========================================

glibc's aio_error/aio_return/aio_suspend are memory reads and futexes in user space, so the
Linux POSIX floor is the one pread/pwrite per I/O its helper makes (role ``other``). Writes with
fsync add one fsync call per run, which is below the resolution of a per-I/O floor.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tracer.base import modes
from tracer.analysis.requires import provenance, requires, with_provenance
from tracer.base.schema import ROLES



def theoretical_floor(mode: str, os_name: str, batch: int = 1, depth: int = 1,
                      submit: str = "single") -> dict[str, float]:
    """Fewest syscalls per I/O for ``mode`` on ``os_name``, by role and ``total`` (see the module
    docstring): ``batch`` I/Os per submit call, at most ``depth`` completions per wait call."""
    b, d = max(int(batch or 1), 1), max(int(depth or 1), 1)
    value = {"1": 1.0, "1/b": 1 / b, "1/D": 1 / d, "1|1/b": 1 / b if submit == "lio" else 1.0}
    floor = dict.fromkeys(ROLES, 0.0)
    floor.update({role: value[term] for role, term in modes.floor_terms(mode, os_name).items()})
    floor["total"] = sum(floor[k] for k in ROLES)
    return floor


def io_count(model: Any) -> int:
    """Data I/Os the run did (reads and writes; a final fsync is not one): the workload record's
    rows, else its summary's count; for a foreign program, the I/Os its kernel and syscall events
    show (``model.io_total``, from ``model.io_source``: tracer.model.foreign_io_counts)."""
    if getattr(model, "foreign", False):
        return int(getattr(model, "io_total", 0) or 0)
    ios = getattr(model, "ios", None)
    if ios is not None and len(ios):
        # op is unknown (NA) without the workload's record (FreeBSD's standalone binary writes none):
        # such an I/O is a data I/O, not the final fsync
        return int((ios["op"] != "fsync").fillna(True).sum()) if "op" in ios.columns else int(len(ios))
    return int((getattr(model, "summary", None) or {}).get("ios") or 0)


def _windowed(model: Any) -> pd.DataFrame:
    sc = model.syscalls
    return sc[sc["in_window"].fillna(False).astype(bool)]


WINDOW_MAPS = ("@window_syscalls", "window_syscalls")  # bpftrace aiotrace-agg.bt / dtrace aiotrace-agg.d
COUNTS = {"syscalls": ("name", "role", "tid", "in_window")}
AGG_COUNTS = {"aggregates": ("map", "key", "value")}


def window_counts(model: Any) -> pd.DataFrame:
    """Syscalls in the measurement window per (``tid``, ``name``, ``role``): ``syscalls``. From the
    per-call table when the bundle has one, else from an aggregate bundle's in-kernel counts
    (``@window_syscalls[tid, nr]`` / ``window_syscalls tid name``: counts only, no durations;
    io_uring_enter counts as submit there, as the call's to_submit is not kept)."""
    if model.has("syscalls", "name"):
        sc = _windowed(model).assign(role=lambda d: d["role"].fillna("other"))
        return sc.groupby(["tid", "name", "role"], observed=True).size().rename("syscalls").reset_index()
    from tracer.base.errors import AnalysisError
    from tracer.model import roles

    agg = model.aggregates
    rows = agg[agg["map"].isin(WINDOW_MAPS)] if agg is not None and len(agg) else None
    if rows is None or rows.empty:
        raise AnalysisError("no per-call trace and no in-window syscall counts in this bundle")
    keys = rows["key"].astype(str).str.split(",", n=1, expand=True)
    os_name = (getattr(model, "manifest", None) or {}).get("os") or "Linux"
    names = keys[1].str.strip()
    if os_name == "Linux":
        from tracer.data import linux_syscall_names

        table = linux_syscall_names()
        names = names.map(lambda v: table.get(int(v), f"nr{v}") if str(v).isdigit() else v)
    out = pd.DataFrame({"tid": pd.to_numeric(keys[0], errors="coerce").astype("Int64").to_numpy(),
                        "name": names.astype("string").to_numpy(),
                        "syscalls": rows["value"].astype("int64").to_numpy()})
    out["role"] = roles(out["name"], pd.Series(1, index=out.index), os_name).to_numpy()
    return out.groupby(["tid", "name", "role"], observed=True)["syscalls"].sum().reset_index()


def _floor_for(model: Any) -> dict[str, float]:
    p = provenance(model)
    try:
        return theoretical_floor(p["mode"], p["os"], p["batch"] or 1, p["depth"] or 1, p["submit"] or "single")
    except ValueError:
        return {**dict.fromkeys(ROLES, np.nan), "total": np.nan}


@requires(tables=COUNTS, or_tables=[AGG_COUNTS])
def by_role(model: Any) -> pd.DataFrame:
    """One row per role plus ``total``: ``syscalls`` (count in window), ``ios``, ``per_io``
    (syscalls / I/O) and ``floor_per_io`` (the mode's theoretical floor), ``excess_per_io``.
    Aggregate bundles give the same rows from in-kernel counts (``counts_only`` says so)."""
    ios = io_count(model)
    counts = window_counts(model).groupby("role")["syscalls"].sum()
    counts = counts.reindex(list(ROLES), fill_value=0)
    floor = _floor_for(model)
    out = pd.DataFrame({"role": list(ROLES) + ["total"],
                        "syscalls": [int(counts[r]) for r in ROLES] + [int(counts.sum())]})
    out["ios"] = ios
    out["per_io"] = out["syscalls"] / ios if ios else np.nan
    out["floor_per_io"] = [floor[r] for r in out["role"]]
    out["excess_per_io"] = out["per_io"] - out["floor_per_io"]
    return with_provenance(out, model)


@requires(tables=COUNTS, or_tables=[AGG_COUNTS])
def by_thread(model: Any) -> pd.DataFrame:
    """One row per (thread, role): ``tid``, ``thread`` (name), ``thread_role`` (from the workload's
    thread record: main/submitter/reaper/helper/iou-wrk...), ``role``, ``syscalls``, ``per_io``."""
    ios = io_count(model)
    grouped = window_counts(model).groupby(["tid", "role"], observed=True)["syscalls"].sum().reset_index()
    grouped["tid"] = grouped["tid"].astype("int64")
    threads = getattr(model, "threads", None)
    if threads is not None and len(threads) and "tid" in threads.columns:
        names = threads[["tid", "name", "role"]].rename(columns={"name": "thread", "role": "thread_role"})
        names = names.drop_duplicates("tid")
        grouped = grouped.merge(names, on="tid", how="left")
    else:
        grouped["thread"], grouped["thread_role"] = pd.NA, pd.NA
    grouped["thread"] = grouped["thread"].fillna("(not in thread record)")
    grouped["thread_role"] = grouped["thread_role"].fillna("other")
    grouped["per_io"] = grouped["syscalls"] / ios if ios else np.nan
    grouped = grouped[["tid", "thread", "thread_role", "role", "syscalls", "per_io"]]
    return with_provenance(grouped.sort_values(["tid", "role"]).reset_index(drop=True), model)


@requires(tables={"syscalls": ("name", "role", "in_window")})
def by_syscall(model: Any) -> pd.DataFrame:
    """One row per syscall name in the window: ``name``, ``role``, ``syscalls``, ``threads``
    (``tids``: distinct threads that made it), ``per_io``, ``dur_ns_mean`` (NaN when durations are unknown)."""
    ios = io_count(model)
    sc = _windowed(model).assign(role=lambda d: d["role"].fillna("other"))
    dur = sc["dur_ns"] if "dur_ns" in sc.columns else pd.Series(np.nan, index=sc.index)
    out = (sc.assign(dur_ns=dur).groupby(["name", "role"], observed=True)
             .agg(syscalls=("tid", "size"), tids=("tid", "nunique"), dur_ns_mean=("dur_ns", "mean"))
             .reset_index())
    out["per_io"] = out["syscalls"] / ios if ios else np.nan
    out = out.sort_values("syscalls", ascending=False).reset_index(drop=True)
    return with_provenance(out[["name", "role", "syscalls", "tids", "per_io", "dur_ns_mean"]], model)


def role_matrix(role_rows: pd.DataFrame) -> pd.DataFrame:
    """Pivot many bundles' :func:`by_role` rows into one row per run: ``<role>_per_io`` and
    ``<role>_floor`` columns, plus the provenance columns (for the sweep table and figures)."""
    from tracer.analysis.requires import PROVENANCE_COLUMNS

    keys = [c for c in PROVENANCE_COLUMNS if c in role_rows.columns]
    wide = role_rows.pivot_table(index="run_id", columns="role", values=["per_io", "floor_per_io"],
                                 aggfunc="first")
    wide.columns = [f"{role}_{'per_io' if v == 'per_io' else 'floor'}" for v, role in wide.columns]
    meta = role_rows[keys].drop_duplicates("run_id").set_index("run_id")
    return meta.join(wide).reset_index()

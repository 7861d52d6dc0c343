"""Small model tables built in tests, typed exactly as tracer.base.schema.MODEL_TABLES says.

These are test inputs for the analyses (a run of N I/Os whose syscalls we lay out by hand, so
the expected syscalls per I/O are known), never results shown to anyone.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tracer.base.schema import MODEL_TABLES


def typed(table: str, rows: dict | pd.DataFrame | None = None) -> pd.DataFrame:
    """A frame with exactly MODEL_TABLES[table]'s columns and dtypes (missing columns null)."""
    spec = MODEL_TABLES[table]
    src = pd.DataFrame(rows if rows is not None else {})
    n = len(src)
    out = {}
    for col, dtype in spec.items():
        if col in src.columns:
            out[col] = src[col]
        else:
            out[col] = pd.Series([pd.NA] * n)
        pd_dtype = {"int64": "Int64", "bool": "boolean", "string": "string"}.get(dtype, dtype)
        out[col] = out[col].astype(pd_dtype if out[col].isna().any() else dtype.replace("string", "string"))
    return pd.DataFrame(out)


@dataclass
class Frames:
    """Implements the tracer.model.Model interface over given frames."""
    events: pd.DataFrame = field(default_factory=lambda: typed("events"))
    syscalls: pd.DataFrame = field(default_factory=lambda: typed("syscalls"))
    ios: pd.DataFrame = field(default_factory=lambda: typed("ios"))
    threads: pd.DataFrame = field(default_factory=lambda: typed("threads"))
    unparsed: pd.DataFrame = field(default_factory=lambda: typed("unparsed"))
    losses: dict = field(default_factory=lambda: {"dropped_events": 0, "unparsed_lines": 0, "messages": []})
    manifest: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    window: tuple | None = None

    def has(self, table: str, *columns: str) -> bool:
        frame = getattr(self, table)
        if frame is None or len(frame) == 0:
            return False
        return all(c in frame.columns and frame[c].notna().any() for c in columns)


def make_run(mode: str = "kevent", os_name: str = "FreeBSD", n: int = 64, reap_batch: int = 8,
             batch: int = 1, threads: str = "split", charge: str = "reaper", dropped: int = 0,
             fixture: bool = True, run_id: str | None = None) -> Frames:
    """A FreeBSD-like run: n 4 KiB reads submitted by tid 101, reaped by tid 102 (split) or 101.

    Per I/O: one aio_read (submit); per reap_batch I/Os: one kevent (wait); per I/O one
    aio_return (result) for kevent modes, none for reap. Plus 3 'other' syscalls in the window
    and 5 outside it. Kernel completes each I/O 50 us after submit; it is reaped 25 us later and
    freed at reap (legacy) or at completion (reap). ru_charge goes to the reaper or submitter."""
    submitter, reaper = 101, (102 if threads == "split" else 101)
    ids = np.arange(n)
    submit_ns = 1_000_000 + ids * 10_000
    done_ns = submit_ns + 50_000
    fetched_ns = done_ns + 25_000
    freed_ns = done_ns if mode == "reap" else fetched_ns
    ios = typed("ios", {"id": ids, "op": ["read"] * n, "offset": ids * 4096, "bytes": [4096] * n,
                        "submit_ns": submit_ns.astype(float), "kernel_done_ns": done_ns.astype(float),
                        "notified_ns": fetched_ns.astype(float), "fetched_ns": fetched_ns.astype(float),
                        "freed_ns": freed_ns.astype(float), "result": [4096] * n,
                        "submit_tid": [submitter] * n, "reap_tid": [reaper] * n})
    # (tid, name, role, enter_ns, in_window); calls of one thread never overlap (1 us each)
    rows = []
    for i in ids:
        rows.append((submitter, "aio_read", "submit", submit_ns[i], True))
        if mode in ("kevent", "kevent-error"):
            rows.append((reaper, "aio_return", "result", fetched_ns[i], True))
        if mode == "kevent-error":
            rows.append((reaper, "aio_error", "status", fetched_ns[i] + 1200, True))
    for k in range(n // reap_batch):
        rows.append((reaper, "kevent", "wait", fetched_ns[k * reap_batch] - 1500, True))
    rows += [(101, "write", "other", 100_000 + 2000 * j, True) for j in range(3)]
    rows += [(101, "openat", "other", 100 + 2000 * j, False) for j in range(5)]
    sc = pd.DataFrame(rows, columns=["tid", "name", "role", "enter_ns", "in_window"])
    sc["pid"], sc["exit_ns"], sc["dur_ns"] = 100, sc["enter_ns"] + 1000, 1000.0
    sc["ret"], sc["err"], sc["a0"], sc["a1"], sc["a2"] = 0, 0, 0, 0, 0
    charged_tid = reaper if charge == "reaper" else submitter
    # rusage units (tracer.model.RUSAGE_UNITS): a 4 KiB read is 8 blocks on Linux, 1 operation on FreeBSD
    per_io = 1 if os_name == "FreeBSD" else 4096 // 512
    blocks = n * per_io
    thread_rows = {"tid": [101, 102] if threads == "split" else [101],
                   "name": ["submitter", "reaper"] if threads == "split" else ["main"],
                   "role": ["submitter", "reaper"] if threads == "split" else ["both"]}
    th = pd.DataFrame(thread_rows)
    th["inblock"] = np.where(th["tid"] == charged_tid, blocks, 0)
    th["oublock"] = 0
    th["utime_ns"], th["stime_ns"], th["nvcsw"], th["nivcsw"] = 1000, 2000, 0, 0
    th["io_read_bytes"], th["io_write_bytes"] = -1, -1
    ev = typed("events", {"ts_ns": fetched_ns.astype("uint64"), "pid": [100] * n, "tid": [charged_tid] * n,
                          "ev": ["ru_charge"] * n, "name": ["ru_charge"] * n, "id": ids,
                          "a0": [per_io] * n, "a1": [0] * n, "a2": [0] * n, "ret": [0] * n, "err": [0] * n,
                          "line": ids + 1})
    manifest = {"run_id": run_id or f"test-{mode}-{reap_batch}-{charge}", "os": os_name, "backend": "dtrace",
                "fixture": fixture, "spec": {"mode": mode, "op": "read", "depth": 32, "batch": batch,
                                             "reap_batch": reap_batch, "threads": threads, "submit": "single",
                                             "direct": True},
                "losses": {"dropped_events": dropped, "messages": []}}
    return Frames(events=ev, syscalls=typed("syscalls", sc), ios=ios, threads=typed("threads", th),
                  losses={"dropped_events": dropped, "unparsed_lines": 0,
                          "messages": [f"{dropped} drops on CPU 0"] if dropped else []},
                  manifest=manifest, summary={"ios": n, "elapsed_ns": int(fetched_ns[-1] - submit_ns[0])},
                  window=(float(submit_ns[0]), float(fetched_ns[-1])))

"""The libbpf backend's binary records (raw/events.bin): one ``numpy.frombuffer``, no Python per record.

File: ``AIOTBPF1``, u32 record size, u32 number of kinds, then ``struct aiot_record``
(dscripts/linux/aiotrace-bpf.h, :data:`RECORD_DTYPE` below). Records become rows
of the event-line schema (tracer.base.schema.EVENT_FIELDS) with the same meanings as the bpftrace
per-event script, except:

* ``sys_enter`` of a positioned read/write (pread64, pwrite64, preadv, pwritev, preadv2, pwritev2)
  carries the file offset (argument 3) in ``id``: that is how glibc's POSIX AIO helper calls are
  joined to the workload's I/Os (see tracer.model).
* ``blk_queue``/``blk_done`` carry the request pointer in ``id`` (the kernel-side join key).

``ev`` and ``name`` are categoricals (a few distinct values over millions of rows). A file whose
length is not a whole number of records has a truncated last record: it is counted as a loss and
an unparsed row. ``line`` is the record's 1-based index.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tracer.base.errors import ParseError
from tracer.parse.base import ParseResult, empty_events, unparsed_frame
from tracer.parse.events import linux_syscall_names

POSITIONED_IO = (17, 18, 295, 296, 327, 328)  # pread64 pwrite64 preadv pwritev preadv2 pwritev2

# raw/events.bin, as the consumer (dscripts/linux/aiotrace-bpf.c) writes it: a 16-byte header,
# then struct aiot_record (dscripts/linux/aiotrace-bpf.h) after struct aiot_record
MAGIC = b"AIOTBPF1"
HEADER_BYTES = 16  # magic, u32 record size, u32 kinds
KINDS = ("sys_enter", "sys_exit", "job_queue", "job_done", "blk_queue", "blk_done",  # enum aiot_kind
         "window_start", "window_stop")
BLK_NAMES = ("block_io_start", "block_bio_frontmerge", "block_bio_backmerge")  # enum aiot_blk_sub
RECORD_DTYPE = np.dtype([("ts_ns", "<u8"), ("pid", "<u4"), ("tid", "<u4"), ("kind", "<u4"), ("sub", "<u4"),
                         ("id", "<i8"), ("a0", "<i8"), ("a1", "<i8"), ("a2", "<i8"), ("a3", "<i8"),
                         ("ret", "<i8")])


def records(data: bytes) -> tuple[np.ndarray, int]:
    """(structured array of whole records, bytes of a truncated tail). ValueError on a bad header."""
    if data[:8] != MAGIC:
        raise ValueError("not an aiotrace-bpf record file (no AIOTBPF1 magic)")
    size, kinds = np.frombuffer(data, dtype="<u4", count=2, offset=8)
    if size != RECORD_DTYPE.itemsize or kinds != len(KINDS):
        raise ValueError(f"record size {size} / {kinds} kinds; this aiotrace reads "
                         f"{RECORD_DTYPE.itemsize} / {len(KINDS)} (rebuild the consumer)")
    body = len(data) - HEADER_BYTES
    n = body // RECORD_DTYPE.itemsize
    return np.frombuffer(data, dtype=RECORD_DTYPE, count=n, offset=HEADER_BYTES), body - n * RECORD_DTYPE.itemsize


def events_from_records(rec: np.ndarray) -> pd.DataFrame:
    """Records -> events frame (tracer.base.schema columns + line), vectorized."""
    if len(rec) == 0:
        return empty_events()
    kind = rec["kind"].astype(np.int64)
    sub = rec["sub"].astype(np.int64)
    ret = rec["ret"]
    is_sys = kind <= 1
    # name: syscall name per nr, tracepoint name otherwise -> one code per row into a small table
    nrs = np.unique(sub[is_sys])
    table = linux_syscall_names()
    names = [table.get(f"nr{n}", f"nr{n}") for n in nrs]
    fixed = ["io_uring_submit_req", "io_uring_complete", *BLK_NAMES, "block_rq_complete",
             "aiotrace_probe_window_start", "aiotrace_probe_window_stop", "block_io_done"]
    code = np.empty(len(rec), dtype=np.int64)
    code[is_sys] = np.searchsorted(nrs, sub[is_sys])
    base = len(names)
    code[kind == 2] = base
    code[kind == 3] = base + 1
    blk_q = kind == 4
    code[blk_q] = base + 2 + np.clip(sub[blk_q], 0, len(BLK_NAMES) - 1)
    code[kind == 5] = np.where(sub[kind == 5] == 1, base + 5 + len(BLK_NAMES), base + 2 + len(BLK_NAMES))
    code[kind == 6] = base + 3 + len(BLK_NAMES)
    code[kind == 7] = base + 4 + len(BLK_NAMES)
    cats = names + fixed
    uniq = list(dict.fromkeys(cats))  # a syscall could share a tracepoint's name: merge codes
    remap = np.array([uniq.index(c) for c in cats], dtype=np.int64)
    name = pd.Categorical.from_codes(remap[code], categories=uniq)
    ev = pd.Categorical.from_codes(np.clip(kind, 0, len(KINDS) - 1), categories=list(KINDS))

    is_exit = kind == 1
    failed = (ret < 0) & (ret > -4096)
    out_ret = np.where(is_exit | (kind == 3), np.where(failed, -1, ret), 0)
    err = np.where((is_exit | (kind == 3)) & failed, -ret, 0)
    err = np.where(kind == 5, -ret, err)
    enter = kind == 0
    ident = np.where(enter & np.isin(sub, POSITIONED_IO), rec["a3"], rec["id"])
    ident = np.where((kind == 4) | (kind == 5), rec["a3"], np.where(enter, ident, np.where(kind == 1, 0, ident)))
    return pd.DataFrame({
        "ts_ns": rec["ts_ns"], "pid": rec["pid"].astype(np.int64), "tid": rec["tid"].astype(np.int64),
        "ev": ev, "name": name, "id": ident.astype(np.int64),
        "a0": rec["a0"], "a1": rec["a1"], "a2": np.where(kind == 1, 0, rec["a2"]),
        "ret": out_ret.astype(np.int64), "err": err.astype(np.int64),
        "line": np.arange(1, len(rec) + 1, dtype=np.int64)}, copy=False)


def parse_libbpf(data: bytes) -> ParseResult:
    try:
        rec, tail = records(data)
    except ValueError as exc:  # unusable input: one clear line
        raise ParseError(str(exc)) from None
    events = events_from_records(rec)
    unparsed, losses = [], {"dropped_events": 0, "messages": []}
    if tail:
        unparsed.append((len(rec) + 1, f"{tail} bytes", "truncated last record"))
        losses = {"dropped_events": 1, "messages": [f"truncated last record ({tail} of "
                                                     f"{rec.dtype.itemsize} bytes)"]}
    return ParseResult("libbpf", len(rec) + (1 if tail else 0), events, unparsed_frame(unparsed),
                       {"event": len(events)}, losses)

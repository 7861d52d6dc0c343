"""kdump(1) text (FreeBSD; OpenBSD and DragonFly lines parse too), freebsd-facts.md §5.1.

Line: ``pid [tid] comm [timestamps...] [cpu] TYPE  [ABI  ]rest`` where -H adds the tid, -T/-E/-R
add ``sec.frac`` columns (v1 records 9 digits, v0 6), -c a CPU column, -A ``F64``-style ABI.
DragonFly prints ``pid:lwp``. Records:

* ``CALL  name(args)`` -> sys_enter (a0..a2 from the first three hex/decimal arguments; ``-S``'s
  ``name[num]`` is reduced to the name; ``id`` = the aiocb for aio_* calls that take one).
* ``RET   name value[/0xhex]``, ``-1 errno N text``, ``RESTART``, ``JUSTRETURN`` -> sys_exit.
  aio_error's ``36/0x24`` is a VALUE (EINPROGRESS as the answer), never an errno.
* ``STRU  struct kevent[] = { {...}\\n             {...} }``: elements continue on following lines
  that start with 13 spaces and no comma. Each EVFILT_AIO element of a kevent *eventlist* ->
  job_notify (name kevent, id = ident = the user aiocb, ret = data, a1 = flags, a2 = udata, err =
  data when EV_ERROR is set). A changelist (the CALL's nchanges > 0, printed first) is not a
  notification.
* NAMI, GIO (+ its data dump lines), PSIG, CSW, USER, SCTL, CAP, PFLT, PRET, ARGS/ENV (OpenBSD),
  other STRU: counted by kind. ``Events dropped.``: a loss.
Timestamps: -T (epoch) -> clock "realtime"; -E -> "relative"; -R deltas are summed -> "relative";
none -> clock "none" (ts_ns = line number, ordering only).

Speed: the C scanner (tracer/parse/scan.c) reads CALL/RET records with numeric arguments, the other
record types and continuation lines into per-line columns; this module's reader does the rest
(kevent structs, symbolic arguments, drops, unknown lines); rows are built in one vectorized pass.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracer.parse import scan
from tracer.parse.base import (Collector, Lines, ParseResult, count_lines, ends_truncated, seconds_ns, to_int,
                               type_events)
from tracer.parse.truss import SYMBOLS, arg_int  # kdump prints the same symbols as truss

_TYPES = r"CALL|RET|NAMI|GIO|PSIG|CSW|USER|STRU|SCTL|CAP|PFLT|PRET|ARGS|ENV|EMUL|UNKNOWN\(\d+\)"
LINE = re.compile(r"^\s*(?P<pid>\d+)(?::(?P<lwp>\d+))?\s+(?:(?P<tid>\d+)\s+)?(?P<comm>\S(?:.*?\S)?)\s+"
                  r"(?P<ts>(?:-?\d+\.\d+\s+)*)(?:(?P<cpu>\d+)\s+)?(?P<type>" + _TYPES + r")(?:\s+(?P<abi>[FLU](?:64|32|00))(?=\s))?"
                  r"(?:\s+(?P<rest>.*?))?\s*$")
DROPPED = re.compile(r"^\s*(\d+)(?::\d+)?\s+(?:\d+\s+)?\S.*?\s+Events dropped\.\s*$")
CALL = re.compile(r"^(?P<name>[A-Za-z_0-9.]*)(?:\[(?P<num>\d+)\])?\((?P<args>.*)\)$")
RET = re.compile(r"^(?P<name>[A-Za-z_0-9.]*)(?:\[(?P<num>\d+)\])?\s+(?P<val>.*)$")
RET_ERR = re.compile(r"^-1 errno (-?\d+)(?: .*)?$")
RET_VAL = re.compile(r"^(-?\d+|0x[0-9a-fA-F]+)(?:/(0x[0-9a-fA-F]+))?$")
KEV = re.compile(r"\{ ident=(?P<ident>[^,]+), filter=(?P<filter>[^,]+), flags=(?P<flags>[^,]+), "
                 r"fflags=(?P<fflags>[^,]+), data=(?P<data>[^,]+), udata=(?P<udata>[^ ]+) \}")
TS = re.compile(r"(-?)(\d+)\.(\d+)")
# aio calls whose argument 0 (or 1 for aio_cancel/aio_fsync) is the user aiocb
AIOCB_ARG0 = {"aio_read", "aio_write", "aio_readv", "aio_writev", "aio_error", "aio_return", "aio_mlock",
              "compat6.aio_read", "compat6.aio_write", "compat6.aio_error", "compat6.aio_return"}
AIOCB_ARG1 = {"aio_cancel", "aio_fsync"}
EV_ERROR = 0x4000


def ts_ns(text: str) -> int:
    m = TS.fullmatch(text)
    sign, sec, frac = m.groups()
    v = seconds_ns(sec, frac)
    return -v if sign else v


def parse_kdump(data: bytes) -> ParseResult:
    c = Collector("kdump")
    lines = Lines(data)
    n = len(lines)
    cols = scan.scan("kdump", data, n, SYMBOLS)
    last = n - 1 if ends_truncated(data) else -1
    _python_reads_flagged_groups(cols)
    records = np.flatnonzero(np.isin(cols.kind, (scan.CALL, scan.RET, scan.TYPE, scan.KEVSTRU)))
    state = _State(first_record=int(records[0]) if len(records) else n)
    prev = -2
    for i in np.flatnonzero(cols.kind == 0).tolist():
        if i != prev + 1:
            state.close_stru()  # a record read in C came between
        prev = i
        _read_line(c, cols, state, i, lines[i], i == last)
    state.close_stru()
    k = cols.kind
    c.count("record", int(np.isin(k, (scan.CALL, scan.RET, scan.KEVSTRU)).sum()))
    c.count("continuation", int((k == scan.CONT).sum()))
    if "aux" in cols.names:
        for vc in pc.value_counts(cols.names["aux"][1]).to_pylist():  # other record types, counted by type
            c.count(vc["values"].lower(), int(vc["counts"]))
    result = c.result(count_lines(data))
    result.events, result.clock = _events(cols, state)
    return result


def _python_reads_flagged_groups(cols: scan.LineColumns) -> None:
    """A struct kevent[] group the C scanner could not read whole (an element split over lines, a
    number beyond 64 bits, a line it leaves to Python inside) goes back to the Python reader:
    the record line and its continuation lines, and the C notes of that record are dropped."""
    flagged = np.flatnonzero((cols.kind == scan.KEVSTRU) & (cols.has_ret == 2))
    if not len(flagged):
        return
    for i in flagged.tolist():
        cols.kind[i] = 0
        j = i + 1
        while j < cols.n and cols.kind[j] in (scan.CONT, 0):
            cols.kind[j] = 0
            j += 1
    if cols.notes:
        keep = ~np.isin(cols.notes[0], flagged)
        cols.notes = tuple(a[keep] for a in cols.notes)


class _State:
    """What the Python reader carries from line to line: kevent structs (their element lines
    continue on following lines) and whether a record has been seen (continuation lines)."""

    def __init__(self, first_record: int):
        self.first_record = first_record
        self.open: list | None = None  # [line index, pid, tid, tkind, ts, text] of a struct kevent[] record
        self.strus: list[tuple] = []  # (line index, pid, tid, tkind, ts) of the records read here
        self.notes: list[tuple] = []  # (line index, ident, data, err, udata, flags) of their AIO elements

    def close_stru(self) -> None:
        if self.open is not None:
            i, pid, tid, tk, ts, text = self.open
            self.strus.append((i, pid, tid, tk, ts))
            for m in KEV.finditer(text):
                if m["filter"] not in ("EVFILT_AIO", "EVFILT_LIO"):
                    continue
                flags = to_int(m["flags"].split("<")[0]) or 0
                data_v = to_int(m["data"]) or 0
                self.notes.append((i, to_int(m["ident"]) or 0, data_v, data_v if flags & EV_ERROR else 0,
                                   to_int(m["udata"]) or 0, flags))
            self.open = None


def _read_line(c: Collector, cols: scan.LineColumns, st: _State, i: int, raw: str, truncated: bool) -> None:
    ln = i + 1
    cols.kind[i] = scan.DONE
    s = c.plain_line(ln, raw, truncated)
    if s is None:
        return
    m = LINE.match(raw)
    if m is None:
        if DROPPED.match(raw):
            st.close_stru()
            c.count("dropped")
            c.loss(1, s)
            return
        if raw[:1].isspace() and i > st.first_record:
            c.count("continuation")
            if st.open is not None and raw.startswith(" " * 13):
                st.open[5] += " " + s
            return
        c.bad(ln, raw, "not a kdump record (an annotation or elision in the text?)")
        return
    st.close_stru()
    st.first_record = min(st.first_record, i)
    pid = int(m["pid"])
    tid = int(m["lwp"] or m["tid"] or 0) or pid
    kind = m["type"].strip()
    rest = (m["rest"] or "").strip()
    stamps = [ts_ns(t) for t in m["ts"].split()] if m["ts"] else []
    if not all(-(1 << 63) <= v < (1 << 63) for v in (pid, tid, *stamps[:1])) or len(stamps) > 127:
        c.bad(ln, raw, "a number out of the 64-bit range (time, pid, tid, argument or value)")
        return
    if kind == "CALL":
        cm = CALL.match(rest)
        if cm is None:
            c.bad(ln, raw, "CALL record without name(args)")
            return
        name = cm["name"] or f"[{cm['num']}]"
        args = cm["args"].split(",") if cm["args"] else []
        a = [arg_int(x) for x in args[:3]] + [0] * (3 - min(len(args), 3))
        cols.id[i] = a[0] if name in AIOCB_ARG0 else (a[1] if name in AIOCB_ARG1 else 0)
        cols.a0[i], cols.a1[i], cols.a2[i] = a
        kind_code = scan.CALL
    elif kind == "RET":
        rm = RET.match(rest)
        if rm is None:
            c.bad(ln, raw, "RET record without name and value")
            return
        name = rm["name"] or f"[{rm['num']}]"
        val = rm["val"].strip()
        em, vm = RET_ERR.match(val), RET_VAL.match(val)
        if val == "RESTART":
            ret, err = -1, -1  # ERESTART: the call is restarted
        elif val == "JUSTRETURN":
            ret, err = 0, -2  # EJUSTRETURN
        elif em:
            ret, err = -1, int(em.group(1))
        elif vm:
            ret, err = to_int(vm.group(1)), 0
        else:
            c.bad(ln, raw, "RET value not understood")
            return
        if not -(1 << 63) <= err < (1 << 63):
            c.bad(ln, raw, "a number out of the 64-bit range (time, pid, tid, argument or value)")
            return
        cols.ret[i], cols.err[i], cols.has_ret[i] = ret, err, 1
        kind_code = scan.RET
    elif kind == "STRU" and rest.startswith("struct kevent"):
        st.open = [i, pid, tid, len(stamps), stamps[0] if stamps else 0, rest]
        c.count("record")
        return
    else:
        c.count(kind.lower())
        return
    cols.kind[i] = kind_code
    cols.pid[i], cols.tid[i], cols.tkind[i] = pid, tid, len(stamps)
    cols.ts[i] = stamps[0] if stamps else 0
    cols.set_name("name", i, name)


def _events(cols: scan.LineColumns, st: _State) -> tuple[pd.DataFrame, str]:
    """sys_enter (CALL), sys_exit (RET) and job_notify (kevent eventlist elements) rows, and the clock."""
    rec = np.flatnonzero(np.isin(cols.kind, (scan.CALL, scan.RET)))
    is_call = cols.kind[rec] == scan.CALL
    names = cols.strings("name", rec)
    line_no = rec.astype(np.int64) + 1
    zeros = np.zeros(len(rec), np.int64)
    frame = pd.DataFrame({
        "pid": cols.pid[rec], "tid": cols.tid[rec], "ev": np.where(is_call, "sys_enter", "sys_exit"),
        "name": scan.string_series(names), "id": np.where(is_call, cols.id[rec], 0),
        "a0": np.where(is_call, cols.a0[rec], 0), "a1": np.where(is_call, cols.a1[rec], 0),
        "a2": np.where(is_call, cols.a2[rec], 0), "ret": np.where(is_call, 0, cols.ret[rec]),
        "err": np.where(is_call, 0, cols.err[rec]), "line": line_no, "_tk": cols.tkind[rec], "_t": cols.ts[rec],
        "_order": zeros})
    notes = _kevent_notes(cols, st, rec, is_call, names)
    df = pd.concat([frame, notes], ignore_index=True) if len(notes) else frame
    df = df.sort_values(["line", "_order"], kind="stable").reset_index(drop=True)
    df["ts_ns"], clock = _clock(df["_tk"].to_numpy(), df["_t"].to_numpy(), df["line"].to_numpy())
    return type_events(df.drop(columns=["_tk", "_t", "_order"])), clock


def _kevent_notes(cols, st: _State, rec: np.ndarray, is_call: np.ndarray, names) -> pd.DataFrame:
    """job_notify rows of the struct kevent[] records that are eventlists. A changelist (the kevent
    CALL's nchanges > 0) is printed first: a struct is a changelist when the thread's previous
    kevent CALL / RET / struct kevent[] is a kevent CALL with nchanges > 0."""
    c_stru = np.flatnonzero(cols.kind == scan.KEVSTRU)
    def col(c_values, k):
        return np.concatenate((c_values, np.asarray([s[k] for s in st.strus], dtype=np.int64))).astype(np.int64)

    stru = pd.DataFrame({"line": col(c_stru, 0), "pid": col(cols.pid[c_stru], 1), "tid": col(cols.tid[c_stru], 2),
                         "_tk": col(cols.tkind[c_stru].astype(np.int64), 3), "_t": col(cols.ts[c_stru], 4)})
    if not len(stru):
        return pd.DataFrame()
    kev_call = is_call & pc.is_in(names, value_set=pa.array(["kevent", "compat11.kevent"])).to_numpy(
        zero_copy_only=False)
    relevant = kev_call | ~is_call
    ev = pd.DataFrame({"line": rec[relevant], "tid": cols.tid[rec[relevant]],
                       "changes": np.where(kev_call[relevant], cols.a2[rec[relevant]], -1), "stru": False})
    allr = pd.concat([ev, pd.DataFrame({"line": stru["line"], "tid": stru["tid"], "changes": -1, "stru": True})],
                     ignore_index=True).sort_values("line", kind="stable")
    allr["prev_changes"] = allr.groupby("tid")["changes"].shift(1).fillna(-1)
    changelist = set(allr.loc[allr["stru"] & (allr["prev_changes"] > 0), "line"].tolist())
    c_notes = cols.notes if cols.notes else tuple(np.zeros(0, np.int64) for _ in range(6))
    py = [np.asarray(x, dtype=np.int64) for x in zip(*st.notes)] if st.notes else [np.zeros(0, np.int64)] * 6
    nl, ident, data_v, kerr, udata, flags = (np.concatenate((a, b)) for a, b in zip(c_notes, py))
    keep = ~np.isin(nl, list(changelist))
    nl, ident, data_v, kerr, udata, flags = (a[keep] for a in (nl, ident, data_v, kerr, udata, flags))
    order = np.argsort(nl, kind="stable")
    nl, ident, data_v, kerr, udata, flags = (a[order] for a in (nl, ident, data_v, kerr, udata, flags))
    at = stru.set_index("line").loc[nl]
    return pd.DataFrame({"pid": at["pid"].to_numpy(), "tid": at["tid"].to_numpy(), "ev": "job_notify",
                         "name": "kevent", "id": ident, "a0": 0, "a1": flags, "a2": udata, "ret": data_v, "err": kerr,
                         "line": nl + 1, "_tk": at["_tk"].to_numpy(), "_t": at["_t"].to_numpy(), "_order": 1})


def _clock(tk: np.ndarray, first: np.ndarray, line_no: np.ndarray) -> tuple[np.ndarray, str]:
    """ts_ns of every row from its first timestamp column; returns (ts, clock kind). -T epoch ->
    realtime; -E (never decreasing) -> relative; -R deltas (decreasing somewhere) -> summed."""
    has = tk > 0
    if not has.any():
        return line_no.astype(np.int64), "none"  # ts = line number: order only
    known = first[has]
    if known.max() > 100_000_000 * 1_000_000_000:  # > ~3 years since the epoch: -T absolute time
        clock = "realtime"
    elif np.all(np.diff(known) >= 0):
        clock = "relative"
    else:
        return np.maximum(np.cumsum(np.where(has, first, 0)), 0), "relative"
    # a row without a timestamp takes the previous row's (0 before the first)
    src = np.maximum.accumulate(np.where(has, np.arange(len(has)), -1))
    values = np.where(src >= 0, first[np.maximum(src, 0)], 0)
    return np.maximum(values, 0).astype(np.int64), clock

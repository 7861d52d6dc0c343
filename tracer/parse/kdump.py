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
"""
from __future__ import annotations

import re

from tracer.parse.base import Collector, ParseResult, count_lines, seconds_ns, to_int
from tracer.parse.truss import SYMBOLS, arg_int  # noqa: F401  kdump prints the same symbols as truss; SYMBOLS stays importable here

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
    stamps: list[tuple[int, list[int]]] = []  # row index -> raw timestamp columns
    last_kind = None  # kind of the previous record (for continuation lines)
    stru_buf: list | None = None  # [line_no, pid, tid, ts_cols, text] of an open struct kevent[] record
    kevent_pending: dict[int, int] = {}  # tid -> nchanges of its open kevent CALL (changelist STRU first)

    def flush_stru():
        nonlocal stru_buf
        if stru_buf is None:
            return
        ln, pid, tid, cols, text = stru_buf
        stru_buf = None
        is_changelist = kevent_pending.get(tid, 0) > 0
        if is_changelist:
            kevent_pending[tid] = 0
            return
        for m in KEV.finditer(text):
            if m["filter"] not in ("EVFILT_AIO", "EVFILT_LIO"):
                continue
            flags = to_int(m["flags"].split("<")[0]) or 0
            data_v = to_int(m["data"]) or 0
            stamps.append((len(c.rows), cols))
            c.event(0, pid, tid, "job_notify", "kevent", to_int(m["ident"]) or 0, 0, flags,
                    to_int(m["udata"]) or 0, data_v, data_v if flags & EV_ERROR else 0, ln)

    for ln, raw, _ in c.each_line(data):
        m = LINE.match(raw)
        if m is None:
            if DROPPED.match(raw):
                flush_stru()
                c.count("dropped")
                c.loss(1, raw.strip())
                continue
            if raw[:1].isspace() and last_kind is not None:
                c.count("continuation")
                if stru_buf is not None and raw.startswith(" " * 13):
                    stru_buf[4] += " " + raw.strip()
                continue
            c.bad(ln, raw, "not a kdump record (an annotation or elision in the text?)")
            continue
        flush_stru()
        pid = int(m["pid"])
        tid = int(m["lwp"] or m["tid"] or 0) or pid
        kind = m["type"].strip()
        rest = (m["rest"] or "").strip()
        cols = [ts_ns(t) for t in m["ts"].split()] if m["ts"] else []
        last_kind = kind
        if kind == "CALL":
            cm = CALL.match(rest)
            if cm is None:
                c.bad(ln, raw, "CALL record without name(args)")
                continue
            name = cm["name"] or f"[{cm['num']}]"
            args = [a for a in cm["args"].split(",")] if cm["args"] else []
            a = [arg_int(x) for x in args[:3]] + [0] * (3 - min(len(args), 3))
            ident = a[0] if name in AIOCB_ARG0 else (a[1] if name in AIOCB_ARG1 else 0)
            if name in ("kevent", "compat11.kevent"):
                kevent_pending[tid] = a[2]
            stamps.append((len(c.rows), cols))
            c.event(0, pid, tid, "sys_enter", name, ident, a[0], a[1], a[2], 0, 0, ln)
            c.count("record")
        elif kind == "RET":
            rm = RET.match(rest)
            if rm is None:
                c.bad(ln, raw, "RET record without name and value")
                continue
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
                continue
            kevent_pending.pop(tid, None)
            stamps.append((len(c.rows), cols))
            c.event(0, pid, tid, "sys_exit", name, 0, 0, 0, 0, ret, err, ln)
            c.count("record")
        elif kind == "STRU" and rest.startswith("struct kevent"):
            stru_buf = [ln, pid, tid, cols, rest]
            c.count("record")
        else:
            c.count(kind.lower())
    flush_stru()
    c.clock = _apply_clock(c, stamps)
    return c.result(count_lines(data))


def _apply_clock(c: Collector, stamps: list[tuple[int, list[int]]]) -> str:
    """Fill ts_ns of every row from its timestamp columns; returns the clock kind."""
    if not stamps or not any(cols for _, cols in stamps):
        for idx, _ in stamps:
            c.rows[idx] = (c.rows[idx][11], *c.rows[idx][1:])  # ts = line number: order only
        return "none"
    first = [cols[0] if cols else None for _, cols in stamps]
    known = [v for v in first if v is not None]
    if max(known) > 100_000_000 * 1_000_000_000:  # > ~3 years since the epoch: -T absolute time
        clock = "realtime"
        values = first
    elif all(b >= a for a, b in zip(known, known[1:])):
        clock, values = "relative", first  # -E: elapsed since the first record
    else:
        clock, total, values = "relative", 0, []  # -R: deltas to the previous record
        for v in first:
            total += v or 0
            values.append(total)
    prev = 0
    for (idx, _), v in zip(stamps, values):
        v = prev if v is None else v
        prev = v
        c.rows[idx] = (max(int(v), 0), *c.rows[idx][1:])
    return clock

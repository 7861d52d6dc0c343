"""truss(1) text (FreeBSD; the Solaris -c summary too), freebsd-facts.md §5.2.

Line: ``[pid[ tid]: ][-d time ][-D duration ]name(args)<tabs> = N (0xN)`` or `` ERR#n 'text'``,
`` ERESTART``, `` EJUSTRETURN``, or nothing (a call that ends the thread). The line is printed at
syscall exit, so with -d the time is the exit time and the entry is exit - duration (-D).
One time column is -d when it never decreases, else -D (durations only: clock "none").
Each syscall line -> sys_enter + sys_exit. Decoded arguments:

* aiocb ``{ fd,offset,buf,nbytes,LIO_x,{ sigevent } }`` (aio_read/aio_write/aio_error/aio_return,
  aio_waitcomplete's returned aiocb): ``id`` = the aiocb's buffer pointer -- truss prints the
  aiocb's contents, not its address, and the workload keeps one buffer per aiocb slot, so the
  buffer identifies the slot the way the aiocb address does in kdump and dtrace.
* kevent eventlists ``{ ident,EVFILT_AIO,flags,fflags,data,udata ... }`` -> job_notify per AIO event
  (ret = data; id = the aiocb's buffer when a following aio_error/aio_return of the same thread shows
  which buffer that aiocb address holds, else the ident, the user aiocb address).
* getrusage's ``{ u=,s=,in=N,out=M }`` -> the sys_exit row carries a0 = in (ru_inblock), a1 = out.
* ``<new thread N>``, ``<thread N exited>``, ``<new process>``, ``process exit, rval = N``,
  ``process killed, signal = N``, ``SIGNAL N (NAME)...``: counted.
* ``-c`` summary (``syscall seconds calls errors``, rule, totals, Solaris ``sys totals:``,
  ``usr time:``, ``elapsed:``) -> ParseResult.summary.
"""
from __future__ import annotations

import re

from tracer.parse.base import Collector, ParseResult, count_lines, seconds_ns, to_int

PREFIX = re.compile(r"^\s*(?:(?P<pid>\d+)(?: +(?P<tid>\d+))?: )?(?P<ts>(?:\d+\.\d{9} ){0,2})(?P<body>.*)$")
RESULT = re.compile(r"\s(?:= (?P<val>-?\d+) \((?P<hex>0x[0-9a-fA-F]+)\)|ERR#(?P<errno>\d+) '(?P<text>.*)'"
                    r"|(?P<special>ERESTART|EJUSTRETURN))\s*$")
CALL = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z_0-9.#]*)\((?P<args>.*)\)\s*$")
OTHER = re.compile(r"^(<new thread \d+>|<thread \d+ exited>|<new process>|process exit, rval = \d+|"
                   r"process killed, signal = \d+( \(core dumped\))?|SIGNAL \d+ \(\w+\).*)$")
SUMMARY_HEAD = re.compile(r"^syscall\s+seconds\s+calls\s+errors\s*$")
SUMMARY_ROW = re.compile(r"^(?P<name>[A-Za-z_][\w.#]*)\s+(?P<sec>\d*\.\d+)\s+(?P<calls>\d+)(?:\s+(?P<err>\d+))?\s*$")
SUMMARY_TAIL = re.compile(r"^(\s*-+\s+-+\s+-+\s*|\s*(sys totals:)?\s*\d*\.\d+\s+\d+\s+\d+\s*|(usr time|elapsed):\s+\d*\.\d+\s*)$")
AIOCB = re.compile(r"^\{ (-?\d+),(-?\d+),(0x[0-9a-fA-F]+|NULL|0),(\d+),(\w+),")
RUSAGE = re.compile(r"in=(-?\d+),out=(-?\d+)")
TS = re.compile(r"(\d+)\.(\d{9})")
AIOCB_CALLS = {"aio_read", "aio_write", "aio_error", "aio_return", "aio_cancel", "aio_fsync", "aio_mlock",
               "aio_waitcomplete"}
SYMBOLS = {"LIO_NOWAIT": 0, "LIO_WAIT": 1, "RUSAGE_SELF": 0, "RUSAGE_THREAD": 1, "RUSAGE_CHILDREN": -1,
           "AT_FDCWD": -100, "NULL": 0}


def split_args(text: str) -> list[str]:
    """Top-level comma split (braces, brackets, parentheses and quoted strings nest)."""
    out, depth, cur, quote, esc = [], 0, [], False, False
    for ch in text:
        if quote:
            cur.append(ch)
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                quote = False
            continue
        if ch == '"':
            quote = True
        elif ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return [a.strip() for a in out] if text.strip() else []


def arg_int(tok: str) -> int:
    """A syscall argument as truss/kdump print it -> int: a number, or a known symbol (else 0)."""
    v = to_int(tok)
    return v if v is not None else SYMBOLS.get(tok.strip(), 0)


def _aiocb_buf(arg: str) -> int:
    m = AIOCB.match(arg)
    return (to_int(m.group(3)) or 0) if m else 0


def _ts(text: str) -> int:
    sec, frac = TS.fullmatch(text).groups()
    return seconds_ns(sec, frac)


def parse_truss(data: bytes) -> ParseResult:
    c = Collector("truss")
    pending: list[tuple] = []  # (line, pid, tid, times, name, a, ident, ret, err, extra events, exit a0/a1)
    in_summary = False
    for ln, raw, s in c.each_line(data):
        if SUMMARY_HEAD.match(s):
            in_summary = True
            c.count("summary")
            continue
        if in_summary:
            m = SUMMARY_ROW.match(s)
            if m:
                c.summary_rows.append({"syscall": m["name"], "seconds": float(m["sec"]), "calls": int(m["calls"]),
                                       "errors": int(m["err"] or 0)})
                c.count("summary")
                continue
            if SUMMARY_TAIL.match(raw):
                c.count("summary")
                continue
            in_summary = False
        p = PREFIX.match(raw)
        pid = int(p["pid"]) if p["pid"] else 0
        tid = int(p["tid"]) if p["tid"] else pid
        times = [_ts(t) for t in p["ts"].split()]
        body = p["body"]
        if OTHER.match(body.strip()):
            c.count("thread_process_signal")
            continue
        r = RESULT.search(body)
        call_text = body[:r.start()] if r else body
        cm = CALL.match(call_text.rstrip())
        if cm is None:
            c.bad(ln, raw, "not a truss syscall, thread, signal or summary line")
            continue
        name = cm["name"]
        args = split_args(cm["args"])
        a = [arg_int(x) for x in args[:3]] + [0] * max(0, 3 - len(args))
        ident = 0
        notes: list[tuple] = []
        exit_a = (0, 0)
        if name in AIOCB_CALLS:
            pos = 1 if name in ("aio_cancel", "aio_fsync") else 0
            if len(args) > pos:
                ident = _aiocb_buf(args[pos])
                a[pos] = ident
        elif name in ("kevent", "compat11.kevent") and len(args) >= 4 and r and r["val"] is not None:
            a = [arg_int(args[0]), 0, arg_int(args[2])]
            evlist = args[3].strip()
            if evlist.startswith("{") and evlist.endswith("}"):
                for kev in evlist[1:-1].split():
                    f = kev.split(",")
                    if len(f) == 6 and f[1] in ("EVFILT_AIO", "EVFILT_LIO"):
                        data_v = arg_int(f[4])
                        err = data_v if "EV_ERROR" in f[2] else 0
                        notes.append((to_int(f[0]) or 0, data_v, err, arg_int(f[5])))
        elif name == "getrusage" and len(args) >= 2:
            m = RUSAGE.search(args[1])
            if m:
                exit_a = (int(m.group(1)), int(m.group(2)))
        if r is None:
            ret, err = None, 0  # the call ended the thread/process: no return
        elif r["val"] is not None:
            ret, err = int(r["val"]), 0
        elif r["errno"] is not None:
            ret, err = -1, int(r["errno"])
        else:
            ret, err = -1, (-1 if r["special"] == "ERESTART" else -2)
        pending.append((ln, pid, tid, times, name, a, ident, ret, err, notes, exit_a))
        c.count("record")
    # clock: two columns = -d then -D; one column = -d if it never decreases, else -D
    n_cols = max((len(x[3]) for x in pending), default=0)
    firsts = [x[3][0] for x in pending if x[3]]
    is_d = n_cols == 2 or (n_cols == 1 and all(b >= a for a, b in zip(firsts, firsts[1:])))
    c.clock = "relative" if (n_cols and is_d) else "none"
    # A kevent's ident is the aiocb ADDRESS, but aio_* calls are keyed by the aiocb's BUFFER (truss prints
    # the contents). The kevent modes then call aio_error/aio_return on each returned aiocb, in event
    # order, in the same thread: that order gives address -> buffer, so notifications join their I/O.
    buf_of: dict[int, int] = {}
    due: dict[int, list] = {}
    for _, _, tid, _, name, _, ident, _, _, notes, _ in pending:
        if notes:  # the loop may call kevent() again before the aio_return calls of the first batch
            due.setdefault(tid, []).extend(n[0] for n in notes)
        elif name in ("aio_error", "aio_return") and due.get(tid) and ident:
            buf_of.setdefault(due[tid][0], ident)
            if name == "aio_return":
                due[tid].pop(0)
    for ln, pid, tid, times, name, a, ident, ret, err, notes, exit_a in pending:
        if c.clock == "none":
            t_exit = t_enter = ln
        else:
            t_exit = times[0] if times else 0
            t_enter = t_exit - (times[1] if len(times) == 2 else 0)
        c.event(t_enter, pid, tid, "sys_enter", name, ident, a[0], a[1], a[2], 0, 0, ln)
        if ret is not None:
            exit_id = ident if name != "aio_waitcomplete" or ret >= 0 else 0
            c.event(t_exit, pid, tid, "sys_exit", name, exit_id, exit_a[0], exit_a[1], 0, ret, err, ln)
        for ident_k, data_v, kerr, udata in notes:
            c.event(t_exit, pid, tid, "job_notify", name, buf_of.get(ident_k, ident_k), 0, 0, udata, data_v, kerr, ln)
    return c.result(count_lines(data))

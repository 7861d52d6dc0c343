"""truss(1) text: FreeBSD (freebsd-facts.md §5.2) and illumos/Solaris.

Line: ``[pid[ tid]: ][-d time ][-D duration ]name(args)<tabs> = N (0xN)`` or `` ERR#n 'text'``,
`` ERESTART``, `` EJUSTRETURN``, or nothing (a call that ends the thread). Solaris: ``pid/lwp: ``
or ``/lwp: `` prefixes, time columns of any precision, ``= N``, ``= N [M]``, ``Err#n ENAME``;
its detail lines (``timeout:``, ``argv:``, ``siginfo:``, ``Received signal #N``) are counted as
``detail``, a ``(sleeping...)`` line (printed again when the call returns) as ``sleeping``;
``kaio(AIOWRITE, fd, buf, n, off, resultp)``: name ``kaio``, a0 = the subcode's number.
dtruss (DTraceToolkit, macOS): its ``PID/LWP [RELATIVE] [ELAPSD] [CPU] SYSCALL(args) = return``
header (counted) names the µs columns of the rows that follow; ``= ret errno`` results. The line is printed at
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

Speed: the C scanner (tracer/parse/scan.c) reads the common syscall lines into per-line columns;
this module's reader does the rest (kevent, getrusage, symbols, Solaris forms, every other line);
the event rows are built from the columns in one vectorized pass.
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

# FreeBSD "pid[ tid]: ", Solaris "pid/lwp: " or "/lwp: " (truss -f, threads)
PREFIX = re.compile(r"^\s*(?:(?:(?P<pid>\d+)(?:/(?P<lwp>\d+)| +(?P<tid>\d+))?|/(?P<lwp2>\d+)):\s+)?"
                    r"(?P<ts>(?:\d+\.\d+\s+)*)(?P<body>.*)$")
# FreeBSD "= N (0xN)", "ERR#n 'text'"; Solaris "= N", "= N [M]" (second return value), "= 0xN", "Err#n ENAME"
RESULT = re.compile(r"\s(?:= (?P<val>-?\d+) \((?P<hex>0x[0-9a-fA-F]+)\)|ERR#(?P<errno>\d+) '(?P<text>.*)'"
                    r"|= (?P<sval>-?\d+|0x[0-9a-fA-F]+)(?: \[[^\]]*\])?|Err#(?P<serrno>\d+) (?P<ename>E[A-Z0-9]+)"
                    r"|= (?P<dval>-?\d+|0x[0-9a-fA-F]+) (?P<derr>-?\d+)"  # dtruss: "= return errno"
                    r"|(?P<special>ERESTART|EJUSTRETURN))\s*$")
# dtruss (DTraceToolkit, macOS): "PID/LWP [RELATIVE] [ELAPSD] [CPU] SYSCALL(args) = return" header, then
# rows "pid/lwp:  [µs columns] name(args)  = ret errno"
DTRUSS_HEAD = re.compile(r"^\s*(?:PID/(?:LWP|THRD)|PID)?\s*(?P<cols>(?:(?:RELATIVE|ELAPSD|CPU)\s+)*)SYSCALL\(args\)"
                         r"\s+= return\s*$")
US_COLUMNS = re.compile(r"^(\d+\s+)+")
CALL = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z_0-9.#]*)\((?P<args>.*)\)\s*$")
OTHER = re.compile(r"^(<new thread \d+>|<thread \d+ exited>|<new process>|process exit, rval = \d+|"
                   r"process killed, signal = \d+( \(core dumped\))?|SIGNAL \d+ \(\w+\).*)$")
# Solaris detail lines under a call or signal (timeout: of kaio AIOWAIT, argv:/envp: of exec, siginfo:)
DETAIL = re.compile(r"^(Received signal #\d+|Incurred fault #\d+|Stopped by signal #\d+|siginfo: |sigmask|"
                    r"timeout: |argv: |envp: |\*\*\* )")
ARGC = re.compile(r"\s+argc$")  # Solaris execve(...)  argc = N
SUMMARY_HEAD = re.compile(r"^syscall\s+seconds\s+calls\s+errors\s*$")
SUMMARY_ROW = re.compile(r"^(?P<name>[A-Za-z_][\w.#]*)\s+(?P<sec>\d*\.\d+)\s+(?P<calls>\d+)(?:\s+(?P<err>\d+))?\s*$")
SUMMARY_TAIL = re.compile(r"^(\s*-+\s+-+\s+-+\s*|\s*(sys totals:)?\s*\d*\.\d+\s+\d+\s+\d+\s*|(usr time|elapsed):\s+\d*\.\d+\s*)$")
AIOCB = re.compile(r"^\{ (-?\d+),(-?\d+),(0x[0-9a-fA-F]+|NULL|0),(\d+),(\w+),")
RUSAGE = re.compile(r"in=(-?\d+),out=(-?\d+)")
AIOCB_CALLS = {"aio_read", "aio_write", "aio_error", "aio_return", "aio_cancel", "aio_fsync", "aio_mlock",
               "aio_waitcomplete"}
# FreeBSD symbols truss prints for the arguments aiotrace reads, and illumos kaio(2) subcodes
# (usr/src/uts/common/sys/aio.h: AIOREAD 0, AIOWRITE 1, AIOWAIT 2, ...).
SYMBOLS = {"AIOREAD": 0, "AIOWRITE": 1, "AIOWAIT": 2, "AIOCANCEL": 3, "AIONOTIFY": 4, "AIOINIT": 5, "AIOSTART": 6,
           "AIOLIO": 7, "AIOSUSPEND": 8, "AIOERROR": 9, "AIOLIOWAIT": 10, "AIOAREAD": 11, "AIOAWRITE": 12,
           "AIOFSYNC": 20, "AIOWAITN": 21, "AIOLIO64": 13, "AIOSUSPEND64": 14, "AIOERROR64": 15, "AIOLIOWAIT64": 16,
           "AIOAREAD64": 17, "AIOAWRITE64": 18, "AIOCANCEL64": 19, "AIOFSYNC64": 22,
           "LIO_NOWAIT": 0, "LIO_WAIT": 1, "RUSAGE_SELF": 0, "RUSAGE_THREAD": 1, "RUSAGE_CHILDREN": -1,
           "AT_FDCWD": -100, "NULL": 0}


_SPECIAL = re.compile(r'[{}\[\]()",\\]')


def split_args(text: str) -> list[str]:
    """Top-level comma split (braces, brackets, parentheses and quoted strings nest). Jumps from
    one bracket, quote or comma to the next instead of visiting every character."""
    if not text.strip():
        return []
    out, depth, start, quote, esc_at = [], 0, 0, False, -1
    for m in _SPECIAL.finditer(text):
        ch, pos = m.group(), m.start()
        if quote:
            if ch == "\\" and esc_at != pos:
                esc_at = pos + 1  # the next character is escaped
            elif ch == '"' and esc_at != pos:
                quote = False
            continue
        if ch == '"':
            quote = True
        elif ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(text[start:pos].strip())
            start = pos + 1
    out.append(text[start:].strip())
    return out


def arg_int(tok: str) -> int:
    """A syscall argument as truss/kdump print it -> int: a number, or a known symbol (else 0)."""
    v = to_int(tok)
    return v if v is not None else SYMBOLS.get(tok.strip(), 0)


def _aiocb_buf(arg: str) -> int:
    m = AIOCB.match(arg)
    return (to_int(m.group(3)) or 0) if m else 0


def parse_truss(data: bytes) -> ParseResult:
    c = Collector("truss")
    lines = Lines(data)
    n = len(lines)
    cols = scan.scan("truss", data, n, SYMBOLS)
    last = n - 1 if ends_truncated(data) else -1
    extra = _Extra()
    in_summary, prev = False, -2
    for i in np.flatnonzero(cols.kind == 0).tolist():
        if i != prev + 1:
            in_summary = False  # a syscall line (read in C) came between: any summary has ended
        prev = i
        in_summary = _read_line(c, cols, extra, i, lines[i], i == last, in_summary)
    c.count("record", int((cols.kind == scan.CALL).sum()))
    c.count("thread_process_signal", int((cols.kind == scan.TYPE).sum()))
    result = c.result(count_lines(data))
    result.events, result.clock = _events(cols, extra)
    return result


class _Extra:
    """What only the Python reader finds: kevent notifications and getrusage's blocks."""

    def __init__(self):
        self.notes: list[tuple[int, int, int, int, int]] = []  # (line index, ident, data, err, udata)
        self.exit_a: dict[int, tuple[int, int]] = {}  # line index -> (ru_inblock, ru_oublock)
        self.dtruss: list[str] | None = None  # the µs columns a dtruss header announced


def _read_line(c: Collector, cols: scan.LineColumns, extra: _Extra, i: int, raw: str, truncated: bool,
               in_summary: bool) -> bool:
    """The Python reader of one line: fills its columns (a syscall) or counts/reports it.
    Returns whether a -c summary table is open."""
    ln = i + 1
    cols.kind[i] = scan.DONE
    s = c.plain_line(ln, raw, truncated)
    if s is None:
        return in_summary
    if SUMMARY_HEAD.match(s):
        c.count("summary")
        return True
    if in_summary:
        m = SUMMARY_ROW.match(s)
        if m:
            c.summary_rows.append({"syscall": m["name"], "seconds": float(m["sec"]), "calls": int(m["calls"]),
                                   "errors": int(m["err"] or 0)})
            c.count("summary")
            return True
        if SUMMARY_TAIL.match(raw):
            c.count("summary")
            return True
    h = DTRUSS_HEAD.match(raw)
    if h:
        extra.dtruss = h["cols"].split()
        c.count("header")
        return False
    p = PREFIX.match(raw)
    body = p["body"].strip()
    dtruss_times: list[int] = []
    if extra.dtruss:  # dtruss -d/-e/-o: integer µs columns before the call
        cm_us = US_COLUMNS.match(body)
        if cm_us and len(cm_us.group(0).split()) == len(extra.dtruss):
            vals = dict(zip(extra.dtruss, (int(v) * 1000 for v in cm_us.group(0).split())))
            body = body[cm_us.end():]
            dtruss_times = [vals["RELATIVE"], vals.get("ELAPSD", 0)] if "RELATIVE" in vals else []
    if OTHER.match(body):
        c.count("thread_process_signal")
        return False
    if DETAIL.match(body):
        c.count("detail")  # Solaris: a detail line of the call or signal above it
        return False
    if body.endswith("(sleeping...)"):
        c.count("sleeping")  # Solaris prints the call again, complete, when it returns
        return False
    r = RESULT.search(body)
    call_text = body[:r.start()] if r else body
    cm = CALL.match(ARGC.sub("", call_text.rstrip()))
    if cm is None:
        c.bad(ln, raw, "not a truss syscall, thread, signal or summary line")
        return False
    name = cm["name"]
    args = split_args(cm["args"])
    a = [arg_int(x) for x in args[:3]] + [0] * max(0, 3 - len(args))
    ident = 0
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
                    extra.notes.append((i, to_int(f[0]) or 0, data_v, data_v if "EV_ERROR" in f[2] else 0,
                                        arg_int(f[5])))
    elif name == "getrusage" and len(args) >= 2:
        m = RUSAGE.search(args[1])
        if m:
            extra.exit_a[i] = (int(m.group(1)), int(m.group(2)))
    if r is None:
        ret, err = None, 0  # the call ended the thread/process: no return
    elif r["val"] is not None:
        ret, err = int(r["val"]), 0
    elif r["sval"] is not None:
        ret, err = to_int(r["sval"]), 0
    elif r["dval"] is not None:
        ret, err = to_int(r["dval"]), int(r["derr"])
    elif r["errno"] is not None or r["serrno"] is not None:
        ret, err = -1, int(r["errno"] or r["serrno"])
    else:
        ret, err = -1, (-1 if r["special"] == "ERESTART" else -2)
    times = [seconds_ns(*t.split(".")) for t in p["ts"].split()]
    if p["lwp"] or p["lwp2"]:
        # Solaris: a second column is -D (since the LWP's previous event) or -E (time in the call),
        # which the text cannot tell apart: only the -d time is used, as the exit time
        times = times[:1]
    if dtruss_times:
        times = dtruss_times  # RELATIVE (at return) and ELAPSD (in the call), µs -> ns
    pid = int(p["pid"]) if p["pid"] else 0
    tid = int(p["lwp"] or p["tid"] or p["lwp2"] or 0) or pid
    if len(times) > 2 or not all(-(1 << 63) <= v < (1 << 63) for v in (pid, tid, ret or 0, err, *a, *times)):
        c.bad(ln, raw, "a number out of the 64-bit range (time, pid, tid, argument or value)"
              if len(times) <= 2 else "more than two time columns")
        extra.notes = [x for x in extra.notes if x[0] != i]
        extra.exit_a.pop(i, None)
        return False
    cols.kind[i] = scan.CALL
    cols.pid[i], cols.tid[i], cols.id[i] = pid, tid, ident
    cols.tkind[i] = len(times)
    if times:
        cols.ts[i] = times[0]
    if len(times) == 2:
        cols.dur[i] = times[1]
    cols.a0[i], cols.a1[i], cols.a2[i] = a
    cols.set_name("name", i, name)
    if ret is not None:
        cols.has_ret[i], cols.ret[i] = 1, ret
        if err:
            cols.set_name("aux", i, str(err))
    return False


def _events(cols: scan.LineColumns, extra: _Extra) -> tuple[pd.DataFrame, str]:
    """sys_enter/sys_exit (+ job_notify) rows from the line columns, vectorized; and the clock.
    One time column is -d when it never decreases, else -D (durations only: clock "none")."""
    rec = np.flatnonzero(cols.kind == scan.CALL)
    line_no = rec.astype(np.int64) + 1
    tk, ts, dur = cols.tkind[rec], cols.ts[rec], cols.dur[rec]
    n_cols = int(tk.max(initial=0))
    firsts = ts[tk >= 1]
    is_d = n_cols == 2 or (n_cols == 1 and bool(np.all(np.diff(firsts) >= 0)))
    clock = "relative" if (n_cols and is_d) else "none"
    if clock == "none":
        t_exit = t_enter = line_no
    else:
        t_exit = np.where(tk >= 1, ts, 0)
        t_enter = t_exit - np.where(tk == 2, dur, 0)
    names = cols.strings("name", rec)
    err = cols.codes("aux", rec, int)
    ids, pid, tid, ret = cols.id[rec], cols.pid[rec], cols.tid[rec], cols.ret[rec]
    has_ret = cols.has_ret[rec] == 1
    ea0, ea1 = cols.x0[rec].copy(), cols.x1[rec].copy()  # getrusage's in/out (C reader)
    for i, (rin, rout) in extra.exit_a.items():
        k = np.searchsorted(rec, i)
        ea0[k], ea1[k] = rin, rout
    is_wc = pc.equal(names, "aio_waitcomplete").to_numpy(zero_copy_only=False)
    exit_id = np.where(is_wc & (ret < 0), 0, ids)
    zeros = np.zeros(len(rec), np.int64)
    name_s = scan.string_series(names)
    parts = [_rows(np.ones(len(rec), bool), t_enter, pid, tid, "sys_enter", name_s, ids, cols.a0[rec],
                   cols.a1[rec], cols.a2[rec], zeros, zeros, line_no, 0),
             _rows(has_ret, t_exit, pid, tid, "sys_exit", name_s, exit_id, ea0, ea1, zeros, ret, err, line_no, 1)]
    notes = _notes(cols, extra)
    if len(notes[0]):
        nl, ident, data_v, kerr, udata = notes
        k = np.searchsorted(rec, nl)
        buf_of = _kevent_buffers(rec, names, ids, tid, nl, ident)
        nid = np.array([buf_of.get(int(x), int(x)) for x in ident], dtype=np.int64)
        m = np.ones(len(nl), bool)
        nz = np.zeros(len(nl), np.int64)
        parts.append(_rows(m, np.asarray(t_exit)[k] if clock != "none" else line_no[k], pid[k], tid[k], "job_notify",
                           name_s.iloc[k].reset_index(drop=True), nid, nz, nz, udata, data_v, kerr, line_no[k], 2))
    df = pd.concat(parts, ignore_index=True).sort_values(["line", "_order"], kind="stable")
    return type_events(df.drop(columns="_order").reset_index(drop=True)), clock


def _rows(mask, ts, pid, tid, ev, names, id_, a0, a1, a2, ret, err, line_no, order) -> pd.DataFrame:
    return pd.DataFrame({"ts_ns": np.asarray(ts)[mask], "pid": pid[mask], "tid": tid[mask], "ev": ev,
                         "name": names[mask].reset_index(drop=True) if len(names) == len(mask) else names,
                         "id": id_[mask], "a0": a0[mask], "a1": a1[mask], "a2": a2[mask], "ret": ret[mask],
                         "err": err[mask], "line": line_no[mask], "_order": order})


def _notes(cols: scan.LineColumns, extra: _Extra) -> tuple[np.ndarray, ...]:
    """The kevent AIO events of the C scanner and of the Python reader, in line order:
    (line index, ident, data, err, udata) arrays."""
    py = [np.asarray(x, dtype=np.int64) for x in zip(*extra.notes)] if extra.notes else \
        [np.zeros(0, np.int64)] * 5
    c_notes = cols.notes[:5] if cols.notes else [np.zeros(0, np.int64)] * 5
    merged = [np.concatenate((a, b)) for a, b in zip(c_notes, py)]
    order = np.argsort(merged[0], kind="stable")
    return tuple(a[order] for a in merged)


def _kevent_buffers(rec: np.ndarray, names, ids: np.ndarray, tid: np.ndarray, note_line: np.ndarray,
                    note_ident: np.ndarray) -> dict[int, int]:
    """aiocb address -> buffer. A kevent's ident is the aiocb ADDRESS, but aio_* calls are keyed
    by the aiocb's BUFFER (truss prints the contents). The kevent modes then call aio_error/aio_return
    on each returned aiocb, in event order, in the same thread: that order gives address -> buffer,
    so notifications join their I/O."""
    by_line: dict[int, list[int]] = {}
    for i, ident in zip(note_line.tolist(), note_ident.tolist()):
        by_line.setdefault(i, []).append(ident)
    is_er = pc.is_in(names, value_set=pa.array(["aio_error", "aio_return"])).to_numpy(zero_copy_only=False)
    ret_rows = pc.equal(names, "aio_return").to_numpy(zero_copy_only=False)
    want = np.flatnonzero(is_er | np.isin(rec, list(by_line)))
    buf_of: dict[int, int] = {}
    due: dict[int, list] = {}
    for k in want.tolist():
        t = int(tid[k])
        if int(rec[k]) in by_line:  # the loop may call kevent() again before the first batch's aio_return
            due.setdefault(t, []).extend(by_line[int(rec[k])])
        elif due.get(t) and ids[k]:
            buf_of.setdefault(due[t][0], int(ids[k]))
            if ret_rows[k]:
                due[t].pop(0)
    return buf_of

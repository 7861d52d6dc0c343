"""strace(1) text: -f/-ff (``[pid N]`` or bare ``PID`` prefixes; -ff -o files have none), -t/-tt/-ttt,
-r (alone: deltas, summed; beside -t: ``(+ delta)`` skipped), -T, -y/-yy, -X, -i, -n, -k, -e, -c tables.

* ``name(args) = ret [ERRNO (text)] [<dur>]`` -> sys_enter at the line's time and sys_exit at
  time + duration (-T; 0 without it). ``ret`` ``?`` (exit calls) gives no sys_exit.
* ``name(args <unfinished ...>`` -> sys_enter; the same thread's ``<... name resumed>rest) = ret``
  -> sys_exit at that line's time (the resumed line is printed at return).
* ``--- SIGxxx {...} ---``, ``+++ exited with N +++``/``+++ killed by SIG +++``,
  ``strace: Process N attached[ with M threads]``/``detached``: counted.
* ``-c`` tables (``% time seconds usecs/call calls errors syscall``, rules, ``total``; decimal
  commas of non-English locales accepted) -> ParseResult.summary.
a0..a2 are the first three arguments when numeric (``3</path>`` -y decorations and -X verbose
``/* NAME */`` comments dropped), else 0. -i ``[address]`` and -n ``[number]`` columns are skipped;
-k's `` > frame`` lines are counted as ``backtrace``.
Clock: -ttt epoch -> "realtime"; -t/-tt time of day -> "wallclock" (ns since midnight); none ->
"none" (ts_ns = line number).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa

from tracer.parse import scan
from tracer.parse.base import (Collector, Lines, ParseResult, count_lines, ends_truncated, seconds_ns, to_int,
                               type_events)
from tracer.parse.truss import split_args

PREFIX = re.compile(r"^\s*(?:\[pid\s+(?P<pid1>\d+)\]\s+|(?P<pid2>\d+)\s+)?"
                    r"(?:(?P<epoch>\d+\.\d+)\s+|(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)(?:\.(?P<frac>\d+))?\s+"
                    r"(?:\(\+\s*\d+\.\d+\)\s+)?)?"
                    r"(?:\[\s*(?:\d+|[0-9a-fA-F?]{8,})\]\s+)*"  # -n "[  3] " syscall number, -i "[00007f..] " address
                    r"(?P<body>.*)$")
BACKTRACE = re.compile(r"^ > \S")  # -k: one line per stack frame under the call
COMPLETE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z_0-9]*)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+|0x[0-9a-fA-F]+|\?)"
                      r"(?:<[^>]*>)?(?:\s+(?P<errno>E[A-Z0-9_]+)\s+\((?P<etext>.*?)\))?(?P<extra>\s+\(.*?\))?"
                      r"(?:\s+<(?P<dur>\d+\.\d+)>)?\s*$")
# "<detached ...>": the call was in progress when strace detached (-p, then SIGINT): an entry
# without an exit, like "<unfinished ...>" that is never resumed
UNFINISHED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z_0-9]*)\((?P<args>.*?)\s*<(?:unfinished|detached) \.\.\.>\s*$")
RESUMED = re.compile(r"^<\.\.\. (?P<name>[A-Za-z_][A-Za-z_0-9]*) resumed>(?P<rest>.*?)\s+=\s+"
                     r"(?P<ret>-?\d+|0x[0-9a-fA-F]+|\?)(?:<[^>]*>)?(?:\s+(?P<errno>E[A-Z0-9_]+)\s+\((?P<etext>.*?)\))?"
                     r"(?P<extra>\s+\(.*?\))?(?:\s+<(?P<dur>\d+\.\d+)>)?\s*$")
SIGNAL = re.compile(r"^--- SIG\w+ .*---$|^--- stopped by SIG\w+ ---$")
EXIT = re.compile(r"^\+\+\+ (exited with -?\d+|killed by SIG\w+( \(core dumped\))?) \+\+\+$")
MESSAGE = re.compile(r"^strace: (Process \d+ (attached|detached|suspended)( with \d+ threads)?|.*)$")
C_HEAD = re.compile(r"^% time\s+seconds\s+usecs/call\s+calls\s+errors\s+syscall(\s+\S+)?\s*$")
C_RULE = re.compile(r"^-+( +-+)+\s*$")
C_ROW = re.compile(r"^\s*(?P<pct>\d+[.,]\d+)\s+(?P<sec>\d+[.,]\d+)\s+(?:(?P<usecs>\d+)\s+)?(?P<calls>\d+)\s+"
                   r"(?:(?P<err>\d+)\s+)?(?P<name>[A-Za-z_]\w*)\s*$")
ARG = re.compile(r"^(-?(?:0x[0-9a-fA-F]+|\d+))(?:<.*>|\s+/\*.*\*/)?$")  # 3</path> (-y), -100 /* AT_FDCWD */ (-X verbose)
RELATIVE_LIMIT_NS = 100_000_000 * 1_000_000_000  # sec.frac below ~3 years: -r deltas, not -ttt epoch times
# errno names -> numbers for the ones AIO analyses care about (others keep -1 as "some errno")
ERRNO = {"EPERM": 1, "ENOENT": 2, "EINTR": 4, "EIO": 5, "EBADF": 9, "EAGAIN": 11, "ENOMEM": 12, "EFAULT": 14,
         "EBUSY": 16, "EEXIST": 17, "EINVAL": 22, "ENOSPC": 28, "ESPIPE": 29, "ENOSYS": 38, "ETIMEDOUT": 110,
         "EINPROGRESS": 115, "ECANCELED": 125, "ERESTARTSYS": 512, "ERESTARTNOINTR": 513,
         "ERESTARTNOHAND": 514, "ERESTART_RESTARTBLOCK": 516}


def _arg(tok: str) -> int:
    tok = tok.strip()
    m = ARG.match(tok)
    v = to_int(m.group(1)) if m else None
    return v if v is not None else (-100 if tok == "AT_FDCWD" else 0)


def _args3(text: str) -> list[int]:
    args = split_args(text)
    return [_arg(x) for x in args[:3]] + [0] * max(0, 3 - len(args))


def _fnum(text: str) -> float:
    return float(text.replace(",", "."))


def parse_strace(data: bytes) -> ParseResult:
    c = Collector("strace")
    lines = Lines(data)
    n = len(lines)
    cols = scan.scan("strace", data, n)
    last = n - 1 if ends_truncated(data) else -1
    for i in np.flatnonzero(cols.kind == 0).tolist():
        _read_line(c, cols, i, lines[i], i == last)
    k = cols.kind
    c.count("record", int(np.isin(k, (scan.CALL, scan.UNFINISHED, scan.RESUMED)).sum()))
    c.count("signal", int((k == scan.SIGNAL).sum()))
    c.count("exit", int((k == scan.EXIT).sum()))
    result = c.result(count_lines(data))
    result.events, result.clock = _events(cols)
    return result


def _read_line(c: Collector, cols: scan.LineColumns, i: int, raw: str, truncated: bool) -> None:
    """The Python reader of one line the C scanner left (or every line, without it): fills the
    line's columns, or counts/reports the line itself (kind DONE)."""
    ln = i + 1
    cols.kind[i] = scan.DONE
    s = c.plain_line(ln, raw, truncated)
    if s is None:
        return
    if BACKTRACE.match(raw):
        c.count("backtrace")
        return
    if C_HEAD.match(s) or C_RULE.match(s):
        c.count("summary")
        return
    m = C_ROW.match(s)
    if m:
        c.summary_rows.append({"syscall": m["name"], "seconds": _fnum(m["sec"]), "calls": int(m["calls"]),
                               "errors": int(m["err"] or 0), "percent": _fnum(m["pct"])})
        c.count("summary")
        return
    p = PREFIX.match(s)
    body = p["body"]
    if SIGNAL.match(body):
        c.count("signal")
        return
    if EXIT.match(body):
        c.count("exit")
        return
    if MESSAGE.match(body):
        c.count("strace_message")
        return
    cm, um, rm = COMPLETE.match(body), None, None
    if cm is None:
        um = UNFINISHED.match(body)
        if um is None:
            rm = RESUMED.match(body)
    m = cm or um or rm
    if m is None:
        c.bad(ln, raw, "not strace output (program output mixed in, or an unknown line)")
        return
    pid = int(p["pid1"] or p["pid2"] or 0)
    if p["epoch"]:
        sec, _, frac = p["epoch"].partition(".")
        tkind, ts = 1, seconds_ns(sec, frac)
    elif p["h"]:
        tkind, ts = 2, seconds_ns(str((int(p["h"]) * 60 + int(p["m"])) * 60 + int(p["s"])), p["frac"] or "")
    else:
        tkind, ts = 0, 0
    a = _args3(m["args"]) if rm is None else [0, 0, 0]
    ret = to_int(m["ret"]) if um is None and m["ret"] != "?" else None
    dur = seconds_ns(*m["dur"].split(".")) if cm is not None and cm["dur"] else -1
    if not all(-(1 << 63) <= v < (1 << 63) for v in (pid, ts, dur, *a)):
        c.bad(ln, raw, "a number out of the 64-bit range (time, pid, tid, argument or value)")
        return
    cols.kind[i] = scan.CALL if cm else (scan.UNFINISHED if um else scan.RESUMED)
    cols.pid[i], cols.tkind[i], cols.ts[i], cols.dur[i] = pid, tkind, ts, dur
    cols.a0[i], cols.a1[i], cols.a2[i] = a
    cols.set_name("name", i, m["name"])
    if ret is not None:
        cols.has_ret[i], cols.ret[i] = 1, ret
        if m["errno"]:
            cols.set_name("aux", i, m["errno"])


def _events(cols: scan.LineColumns) -> tuple[pd.DataFrame, str]:
    """sys_enter/sys_exit rows from the line columns, and the clock, in one vectorized pass."""
    k = cols.kind
    rec = np.flatnonzero(np.isin(k, (scan.CALL, scan.UNFINISHED, scan.RESUMED)))
    tk = cols.tkind[rec]
    line_no = rec.astype(np.int64) + 1
    ts = cols.ts[rec].copy()
    timed = set(np.unique(tk).tolist()) - {0}
    if not timed:
        clock = "none"
    elif timed == {1}:
        # sec.frac is -ttt (epoch) or -r (delta to the previous syscall): deltas stay small
        if ts[tk == 1].max(initial=0) < RELATIVE_LIMIT_NS:
            clock = "relative"
            ts[tk == 1] = np.cumsum(ts[tk == 1])
        else:
            clock = "realtime"
    else:
        clock = "wallclock"
    ts = np.where(tk == 0, line_no, ts)
    kr = k[rec]
    enter = kr != scan.RESUMED
    exit_ = (kr != scan.UNFINISHED) & (cols.has_ret[rec] == 1)
    names = cols.strings("name", rec)
    err = cols.codes("aux", rec, lambda name: ERRNO.get(name, -1))
    dur = np.where((kr == scan.CALL) & (cols.dur[rec] >= 0), cols.dur[rec], 0)
    pid = cols.pid[rec]
    zeros = np.zeros(len(rec), np.int64)
    parts = []
    for mask, ev, t, a0, a1, a2, ret, e, order in (
            (enter, "sys_enter", ts, cols.a0[rec], cols.a1[rec], cols.a2[rec], zeros, zeros, 0),
            (exit_, "sys_exit", ts + dur, zeros, zeros, zeros, cols.ret[rec], err, 1)):
        parts.append(pd.DataFrame({
            "ts_ns": t[mask], "pid": pid[mask], "tid": pid[mask], "ev": ev, "name": scan.string_series(names.filter(pa.array(mask))),
            "id": 0, "a0": a0[mask], "a1": a1[mask], "a2": a2[mask], "ret": ret[mask], "err": e[mask],
            "line": line_no[mask], "_order": order}))
    df = pd.concat(parts, ignore_index=True).sort_values(["line", "_order"], kind="stable")
    df = df.drop(columns="_order").reset_index(drop=True)
    return type_events(df), clock


def _ret(m: re.Match) -> tuple[int, int]:
    ret = to_int(m["ret"]) or 0
    if m["errno"]:
        return ret, ERRNO.get(m["errno"], -1)  # -1: an errno this table does not name
    return ret, 0

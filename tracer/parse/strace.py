"""strace(1) text: -f (``[pid N]`` or bare ``PID`` prefixes), -t/-tt/-ttt, -T, -y, and -c tables.

* ``name(args) = ret [ERRNO (text)] [<dur>]`` -> sys_enter at the line's time and sys_exit at
  time + duration (-T; 0 without it). ``ret`` ``?`` (exit calls) gives no sys_exit.
* ``name(args <unfinished ...>`` -> sys_enter; the same thread's ``<... name resumed>rest) = ret``
  -> sys_exit at that line's time (the resumed line is printed at return).
* ``--- SIGxxx {...} ---``, ``+++ exited with N +++``/``+++ killed by SIG +++``,
  ``strace: Process N attached[ with M threads]``/``detached``: counted.
* ``-c`` tables (``% time seconds usecs/call calls errors syscall``, rules, ``total``; decimal
  commas of non-English locales accepted) -> ParseResult.summary.
a0..a2 are the first three arguments when numeric (``3</path>`` -y decorations dropped), else 0.
Clock: -ttt epoch -> "realtime"; -t/-tt time of day -> "wallclock" (ns since midnight); none ->
"none" (ts_ns = line number).
"""
from __future__ import annotations

import re

from tracer.parse.base import Collector, ParseResult, count_lines, seconds_ns, to_int
from tracer.parse.truss import split_args

PREFIX = re.compile(r"^\s*(?:\[pid\s+(?P<pid1>\d+)\]\s+|(?P<pid2>\d+)\s+)?"
                    r"(?:(?P<epoch>\d+\.\d+)\s+|(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)(?:\.(?P<frac>\d+))?\s+)?(?P<body>.*)$")
COMPLETE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z_0-9]*)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+|0x[0-9a-fA-F]+|\?)"
                      r"(?:<[^>]*>)?(?:\s+(?P<errno>E[A-Z0-9_]+)\s+\((?P<etext>.*?)\))?(?P<extra>\s+\(.*?\))?"
                      r"(?:\s+<(?P<dur>\d+\.\d+)>)?\s*$")
UNFINISHED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z_0-9]*)\((?P<args>.*?)\s*<unfinished \.\.\.>\s*$")
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
DECOR = re.compile(r"<[^<>]*>$")
# errno names -> numbers for the ones AIO analyses care about (others keep -1 as "some errno")
ERRNO = {"EPERM": 1, "ENOENT": 2, "EINTR": 4, "EIO": 5, "EBADF": 9, "EAGAIN": 11, "ENOMEM": 12, "EFAULT": 14,
         "EBUSY": 16, "EEXIST": 17, "EINVAL": 22, "ENOSPC": 28, "ESPIPE": 29, "ENOSYS": 38, "ETIMEDOUT": 110,
         "EINPROGRESS": 115, "ECANCELED": 125, "ERESTARTSYS": 512, "ERESTARTNOINTR": 513,
         "ERESTARTNOHAND": 514, "ERESTART_RESTARTBLOCK": 516}


def _arg(tok: str) -> int:
    tok = DECOR.sub("", tok.strip())
    v = to_int(tok)
    return v if v is not None else (-100 if tok == "AT_FDCWD" else 0)


def _args3(text: str) -> list[int]:
    args = split_args(text)
    return [_arg(x) for x in args[:3]] + [0] * max(0, 3 - len(args))


def _fnum(text: str) -> float:
    return float(text.replace(",", "."))


def parse_strace(data: bytes) -> ParseResult:
    c = Collector("strace")
    kinds = set()
    for ln, raw, s in c.each_line(data):
        if C_HEAD.match(s) or C_RULE.match(s):
            c.count("summary")
            continue
        m = C_ROW.match(s)
        if m:
            c.summary_rows.append({"syscall": m["name"], "seconds": _fnum(m["sec"]), "calls": int(m["calls"]),
                                   "errors": int(m["err"] or 0), "percent": _fnum(m["pct"])})
            c.count("summary")
            continue
        p = PREFIX.match(s)
        pid = int(p["pid1"] or p["pid2"] or 0)
        if p["epoch"]:
            sec, _, frac = p["epoch"].partition(".")
            ts, kind = seconds_ns(sec, frac), "realtime"
        elif p["h"]:
            ts = seconds_ns(str((int(p["h"]) * 60 + int(p["m"])) * 60 + int(p["s"])), p["frac"] or "")
            kind = "wallclock"
        else:
            ts, kind = ln, "none"
        body = p["body"]
        if SIGNAL.match(body):
            c.count("signal")
            continue
        if EXIT.match(body):
            c.count("exit")
            continue
        if MESSAGE.match(body):
            c.count("strace_message")
            continue
        kinds.add(kind)
        cm = COMPLETE.match(body)
        if cm:
            dur = int(round(float(cm["dur"]) * 1e9)) if cm["dur"] else 0
            a = _args3(cm["args"])
            c.event(ts, pid, pid, "sys_enter", cm["name"], 0, a[0], a[1], a[2], 0, 0, ln)
            if cm["ret"] != "?":
                ret, err = _ret(cm)
                c.event(ts + dur, pid, pid, "sys_exit", cm["name"], 0, 0, 0, 0, ret, err, ln)
            c.count("record")
            continue
        um = UNFINISHED.match(body)
        if um:
            a = _args3(um["args"])
            c.event(ts, pid, pid, "sys_enter", um["name"], 0, a[0], a[1], a[2], 0, 0, ln)
            c.count("record")
            continue
        rm = RESUMED.match(body)
        if rm:
            if rm["ret"] != "?":
                ret, err = _ret(rm)
                c.event(ts, pid, pid, "sys_exit", rm["name"], 0, 0, 0, 0, ret, err, ln)
            c.count("record")
            continue
        c.bad(ln, raw, "not strace output (program output mixed in, or an unknown line)")
    timed = kinds - {"none"}
    c.clock = "none" if not timed else ("realtime" if timed == {"realtime"} else "wallclock")
    return c.result(count_lines(data))


def _ret(m: re.Match) -> tuple[int, int]:
    ret = to_int(m["ret"]) or 0
    if m["errno"]:
        return ret, ERRNO.get(m["errno"], -1)  # -1: an errno this table does not name
    return ret, 0

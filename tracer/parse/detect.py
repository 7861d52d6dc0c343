"""Guess a trace file's format from its first lines (cheap: reads at most 64 KiB)."""
from __future__ import annotations

import json
import re

from tracer.base.errors import ParseError
from tracer.base.schema import EVENT_TAG, HEADER_TAG

_KDUMP = re.compile(r"^\s*\d+(:\d+)?( +\d+)? +\S.*?\s(CALL|RET |NAMI|GIO |PSIG|CSW |USER|STRU|SCTL|CAP |PFLT|PRET)  ")
_STRACE = re.compile(r"^(\[pid +\d+\] |\d+ +)?(\d+[:.]\d[\d:.]* )?([a-z_0-9]+\(|--- SIG|\+\+\+ |<\.\.\. )")
_STRACE_C = re.compile(r"^% time +seconds +usecs/call +calls +errors +syscall")
_TRUSS = re.compile(r"^(\s*\d+( +\d+)?: )?(-?\d+\.\d{9} )*[a-z_0-9.]+\(.*\)\s+(= -?\d+ \(0x[0-9a-f]+\)|ERR#\d+ '|ERESTART|EJUSTRETURN)")
_TRUSS_C = re.compile(r"^syscall +seconds +calls +errors")
_DTRACE = re.compile(r"^(dtrace: |CPU +ID +FUNCTION:NAME|(Tracing|Sampling)\.\.\. Hit Ctrl-C)")
_DTRUSS = re.compile(r"^\s*(PID/(LWP|THRD)\s+.*SYSCALL\(args\)\s+= return|\d+/(0x)?[0-9a-f]+:\s+(\d+\s+)*"
                     r"[a-z_0-9]+\(.*\)\s+= \S+ -?\d+)\s*$")
_SOLARIS_DETAIL = re.compile(r"^\d*/\d+:\s+(timeout|argv|envp|siginfo): ")  # truss detail lines
_PRINTA_ROW = re.compile(r"^ {2,}[A-Za-z_][^\t]*?\S {2,}-?\d+\s*$")  # "  bash      12": key, then its value
_COLUMN_HEAD = re.compile(r"^\s*[A-Z%][A-Z0-9%_()/.:#-]+(?:\s+(?:[A-Z%][A-Za-z0-9%_()/.:#-]*|\([a-z%/]+\)))+\s*$")
_DTRACE_FRAME = re.compile(r"^\s+[^\s`]+`\S")  # module`function of a stack()/ustack() key
_SOLARIS_TRUSS = re.compile(r"^(\d*/\d+:\s+)?(\d+\.\d+\s+)*[a-z_0-9]+\(.*\)\s+(= -?\d+( \[0x[0-9a-fA-F]+\])?|Err#\d+ E[A-Z0-9]+)\s*$")
_BPFTRACE = re.compile(r"^(Attaching \d+ probes|Attached \d+ probes|@[A-Za-z_0-9]*(\[.*\])?: |Lost \d+ events)")


def detect_format(head: bytes) -> str:
    """'events' | 'bpftrace' | 'dtrace' | 'kdump' | 'truss' | 'strace'; ParseError if none fits."""
    if head[:8] == b"AIOTBPF1":  # the libbpf backend's binary records
        return "libbpf"
    text = head[:65536].decode("utf-8", errors="replace")
    lines = [ln.rstrip("\r") for ln in text.split("\n")[:400]]
    if any(ln.startswith(HEADER_TAG + "\t") or ln.startswith(EVENT_TAG + "\t") for ln in lines):
        return "events"
    stripped = [ln.strip() for ln in lines if ln.strip()]
    if not stripped:
        raise ParseError("empty trace: no lines to detect a format from")
    if stripped[0].startswith("{"):
        try:
            obj = json.loads(stripped[0])
            if isinstance(obj, dict) and "type" in obj:
                return "bpftrace"
        except ValueError:
            pass
    score = {"kdump": 0, "truss": 0, "strace": 0, "dtrace": 0, "bpftrace": 0}
    for ln in lines:
        if _KDUMP.match(ln):
            score["kdump"] += 2
        if _TRUSS.match(ln) or _TRUSS_C.match(ln.strip()) or _SOLARIS_DETAIL.match(ln) or _DTRUSS.match(ln) or ln.strip().startswith("<new thread") \
                or ln.strip().startswith("process exit, rval"):
            score["truss"] += 2
        if _STRACE_C.match(ln.strip()) or ("<unfinished ...>" in ln) or ("resumed>" in ln):
            score["strace"] += 2
        elif _STRACE.match(ln.strip()) and re.search(r"\) += (-?\d+|\?|0x[0-9a-f]+)", ln):
            score["strace"] += 1
        if _DTRACE.match(ln.strip()) or "------------- Distribution -------------" in ln:
            score["dtrace"] += 2
        elif _DTRACE_FRAME.match(ln) or _COLUMN_HEAD.match(ln) or _PRINTA_ROW.match(ln):
            score["dtrace"] += 1  # a stack frame, a DTraceToolkit column header, a default printa row
        if _SOLARIS_TRUSS.match(ln) and ("\t" in ln or "Err#" in ln or re.match(r"^\d*/\d+:", ln)):
            score["truss"] += 2  # Solaris truss pads the result with tabs; errors read Err#N ENAME
        if _BPFTRACE.match(ln):
            score["bpftrace"] += 2
    best = max(score, key=score.get)
    if score[best] == 0:
        raise ParseError("unrecognised trace format (not event lines, bpftrace, dtrace, kdump, truss or strace)")
    return best

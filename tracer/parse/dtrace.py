"""dtrace(1) output other than event lines (freebsd-facts.md §5.3): what aiotrace-agg.d prints and
what any user's script prints on FreeBSD, illumos/Solaris and macOS.

Record kinds (ParseResult.aggregates rows: kind, map, key, value, values, lo, hi, count, text, line):

* ``printa``: ``A<TAB>map<TAB>keys...<TAB>value`` (aiotrace-agg.d), and default or user-format
  printa rows: the value is the line's last integer, the keys what precedes it (split on 2+
  spaces); ``values`` lists the trailing run of integers (one per aggregation when one printa
  prints several; for ``@[pid] = count()`` it is key and value).
* ``stack``: aggregations keyed by ``stack()``/``ustack()``/``jstack()``: indented frames
  (``module`function+0xoff``, ``0xaddr``, Java ``pkg/Class.method(sig)``; frames may hold spaces),
  blank lines allowed inside (``stack(), ustack()`` keys), closed by the value line. key = frames
  joined by ``;`` (a blank line inside becomes ``;--;``), prefixed by a non-frame key line
  (``@[execname, ustack()]``) when there is one. A histogram under a stack key gets the stack as key.
* ``hist``: quantize/lquantize/llquantize (``value ---- Distribution ---- count`` header, ``@``
  bars, ``< base`` / ``>= limit`` rows) under the key line(s) printed before the header (string,
  numeric, several keys, stacks); ``H<TAB>map<TAB>key`` (aiotrace-agg.d) names map and key.
* ``pack``: ``-x aggpack`` rows under a ``key min .---. max | count`` header.
* ``probe``: the default ``CPU ID FUNCTION:NAME`` rows (with what trace()/printf() printed).
* ``columns``: DTraceToolkit-style column output: a header of upper-case column names
  (``PID COMM BYTES``, hotkernel's ``FUNCTION COUNT PCNT`` or ``-m``'s ``MODULE COUNT PCNT``) then
  rows; map = the header, key = the row's whitespace-separated fields joined by ``,``, value = its
  first integer field from the right (NaN when none).
* ``printf``: any other text (``-q`` output is free text): kept, counted as ``printf``.

Counted, never lost: banners and every ``dtrace:`` line (drops of every kind are losses; ``error on
enabled probe`` lines, also wrapped after ``):``, are ``probe_error``; any other ``dtrace: ...`` is a
``dtrace_message``), ``^C``, DTraceToolkit's ``Tracing... Hit Ctrl-C to end.`` (``banner``), a pasted shell command line (``# ./hotkernel -m``:
``prompt``), and the
elision marks of abridged output (``...``, ``[...]``, ``(snip)``: ``elision``).

Speed: every line is classified at once with pyarrow's RE2 kernels; one Python pass walks the
class codes to track which key a histogram row or a stack belongs to, and histogram rows (the
bulk of aggregation output) are converted to numbers in bulk.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracer.parse import messages
from tracer.parse.base import ELISION, Collector, aggregates_frame, ParseResult, count_lines, split_lines
from tracer.parse.events import events_into

DIST_HEAD = re.compile(r"^\s*value\s+-+ Distribution -+\s+count\s*$")
DIST_ROW_RX = r"^\s*(?P<label>-?\d+|< ?-?\d+|>= ?-?\d+)\s+(?P<bar>[|@ ]*\|[@ ]*)\s+(?P<count>-?\d+)\s*$"
PACK_HEAD = re.compile(r"^\s*key\s+min\s+\.-+\.\s+max\s+\|\s+count\s*$")
PACK_ROW = re.compile(r"^\s*(?P<key>\S+)\s+(?P<min><\s*-?\d+|-?\d+)\s+:\s(?P<bars>.*?)\s*:\s+(?P<max>>=\s*-?\d+|-?\d+)\s+\|\s+(?P<count>-?\d+)\s*$")
DEFAULT_HEAD = re.compile(r"^CPU\s+ID\s+FUNCTION:NAME\s*$")
DEFAULT_ROW = re.compile(r"^\s*(?P<cpu>\d+)\s+(?P<id>\d+)\s+(?P<fn>\S*:\S+)(?: (?P<text>.*))?$")
AGG_ROW = re.compile(r"^\s+\S.*\s(-?\d+)\s*$")
# a stack frame: module`function[+0xoff] (function names may hold spaces: C++/Rust signatures),
# a bare address, or a jstack Java frame
FRAME_RX = r"^\s+(?:[^\s`][^`]*`\S.*|0x[0-9a-fA-F]+|[A-Za-z_$][\w$]*(?:[/.][\w$<>]+)+\(.*\)\S*)\s*$"
VALUES_RX = r"^\s+-?\d+(?:\s+-?\d+)*\s*$"
TRAILING_INTS = re.compile(r"(?:\s+-?\d+)+(?P<pct>\s+\d+(?:\.\d+)?%)?\s*$")  # hotkernel: `COUNT  PCNT%`
_COL = r"(?:[A-Z%][A-Z0-9%_()/.:#-]*|\([a-z%/]+\))"
COLUMN_HEAD = re.compile(rf"^\s*[A-Z%][A-Z0-9%_()/.:#-]*(?:\s+{_COL})+\s*$")
PROMPT = re.compile(r"^[#$] +(\./|/|dtrace\b|sudo\b|\w+\.d\b|\w+ -)")
TOOLKIT_BANNER = re.compile(r"^(Tracing|Sampling)\b.*(Ctrl-C|\.\.\.).*$")

# line classes, computed in bulk
(OTHER, BLANK, EVENT, HIST_ROW, FRAME, VALUES) = range(6)


def agg_value(text: str) -> int | None:
    """An aggregation value as dtrace prints it (int64 or uint64, decimal) -> int, or None when it
    is not a number or lies outside what a 64-bit aggregation can hold (never wrapped)."""
    t = text.strip()
    if not re.fullmatch(r"-?\d+", t):
        return None
    v = int(t)
    return v if -(1 << 63) <= v < (1 << 64) else None


def _value_row(**row) -> dict:
    """An aggregation row; values a float64 cannot hold exactly keep their digits in ``text``."""
    v = row["value"]
    if abs(v) > (1 << 53):
        row["text"] = str(v)
    row["value"] = float(v)
    return row


def _bound(label: str) -> tuple[float, float]:
    label = label.replace(" ", "")
    if label.startswith("<"):
        return float("-inf"), float(label[1:])
    if label.startswith(">="):
        return float(label[2:]), float("inf")
    v = float(label)
    return v, v


def _classify(lines: list[str]) -> np.ndarray:
    """One class code per line (pyarrow RE2 kernels over all lines at once)."""
    arr = pa.array(lines, pa.string())
    codes = np.full(len(lines), OTHER, dtype=np.int8)
    for code, rx in ((FRAME, FRAME_RX), (VALUES, VALUES_RX), (HIST_ROW, DIST_ROW_RX), (EVENT, r"^E\t"),
                     (BLANK, r"^\s*$")):  # later ones win
        hit = pc.match_substring_regex(arr, rx).to_numpy(zero_copy_only=False)
        if code == FRAME:  # `unix`cpu_halt   12345[  0.1%]` is a printa row of @[func(arg0)], not a frame
            hit &= ~pc.match_substring_regex(arr, r"\s-?\d+(\s+\d+(\.\d+)?%)?\s*$").to_numpy(zero_copy_only=False)
        codes[hit] = code
    return codes


def _hist_rows(lines: list[str], idx: list[int], keys: list[tuple[str, str]]) -> pd.DataFrame:
    """Histogram rows at ``idx`` (0-based) -> frame, labels and counts converted in bulk."""
    arr = pa.array([lines[i] for i in idx], pa.string())
    parts = pc.extract_regex(arr, DIST_ROW_RX)
    label = pc.replace_substring(parts.field("label"), " ", "")
    below = pc.starts_with(label, "<").to_numpy(zero_copy_only=False)
    above = pc.starts_with(label, ">=").to_numpy(zero_copy_only=False)
    num = pc.cast(pc.replace_substring_regex(label, r"^(<|>=)", ""), pa.float64()).to_numpy(zero_copy_only=False)
    lo = np.where(below, -np.inf, num)
    hi = np.where(above, np.inf, num)
    counts = pc.cast(parts.field("count"), pa.int64()).to_numpy(zero_copy_only=False)
    return pd.DataFrame({"kind": "hist", "map": [k[0] for k in keys], "key": [k[1] for k in keys], "lo": lo, "hi": hi,
                         "count": counts, "line": np.asarray(idx, dtype=np.int64) + 1})


def parse_dtrace(data: bytes) -> ParseResult:
    c = Collector("dtrace")
    lines = split_lines(data)
    codes = _classify(lines).tolist()
    n = len(lines)
    truncated_at = n - 1 if data and not data.endswith(b"\n") else -1
    key, hist_map = None, ""  # the key (and map) of the histogram that follows
    in_dist = in_pack = False
    stack: list[str] | None = None  # frames of an open stack key ("--" marks a blank line inside)
    stack_prefix = ""  # a non-frame key line printed before the frames
    columns: str | None = None  # the open column header
    prev_probe_error_wrapped = False
    event_lines: list[int] = []
    hist_idx: list[int] = []
    hist_keys: list[tuple[str, str]] = []

    def close_stack():
        nonlocal stack, stack_prefix
        if stack is not None:  # frames never followed by a value: still a record, without value
            c.agg_rows.append(dict(kind="stack", map="", key=_stack_key(stack_prefix, stack), line=stack_line))
        stack, stack_prefix = None, ""

    stack_line = 0
    for i in range(n):
        code = codes[i]
        ln = i + 1
        if code == HIST_ROW and in_dist and i != truncated_at:
            hist_idx.append(i)
            hist_keys.append((hist_map, key or ""))
            c.count("aggregation")
            continue
        raw = lines[i]
        if i == truncated_at:
            c.bad(ln, raw, "truncated last line (no newline at end of file)")
            c.loss(1, f"truncated last line {ln}")
            continue
        if code == EVENT:
            event_lines.append(ln)
            continue
        if code == BLANK:
            c.count("blank")
            in_dist = in_pack = False
            columns = None
            if stack is not None and stack[-1:] != ["--"]:
                stack.append("--")
            continue
        if code == FRAME:
            if stack is None:
                stack, stack_line = [], ln
            stack.append(raw.strip())
            c.count("aggregation")
            continue
        if stack is not None and code == VALUES:
            vals = raw.split()
            v = agg_value(vals[-1])
            if v is None:
                c.bad(ln, raw, "aggregation value outside the 64-bit range")
            else:
                c.agg_rows.append(_value_row(kind="stack", map="", key=_stack_key(stack_prefix, stack), value=v,
                                             values=",".join(vals), line=ln))
                c.count("aggregation")
            stack, stack_prefix = None, ""
            continue
        s = raw.strip()
        if stack is not None and DIST_HEAD.match(raw):  # a histogram keyed by a stack
            key, in_dist = _stack_key(stack_prefix, stack), True
            stack, stack_prefix = None, ""
            c.count("aggregation")
            continue
        close_stack()
        wrapped, prev_probe_error_wrapped = prev_probe_error_wrapped, False
        if s.startswith("dtrace:") or s == "^C" or raw.startswith("AIOTRACE\t"):
            hit = messages.classify(raw.rstrip())
            kind, dropped = hit if hit is not None else ("dtrace_message", 0)
            c.count(kind)
            if kind in messages.LOSS_KINDS:
                c.loss(dropped, raw)
            prev_probe_error_wrapped = kind == "probe_error" and s.endswith("):")
            continue
        if wrapped:
            c.count("probe_error")  # the reason of an error line wrapped after "):"
            continue
        if ELISION.match(s):
            c.count("elision")
            continue
        if PROMPT.match(raw):
            c.count("prompt")  # the shell command line pasted above an output
            continue
        if TOOLKIT_BANNER.match(s):
            c.count("banner")
            continue
        if s.startswith("AIOTRACE-AGG\t"):
            c.count("header")
            continue
        if raw.startswith("A\t"):
            f = raw.split("\t")
            v = agg_value(f[-1]) if len(f) >= 3 else None
            if v is None:
                c.bad(ln, raw, "printa row without a 64-bit numeric value")
                continue
            c.agg_rows.append(_value_row(kind="printa", map=f[1], key=",".join(f[2:-1]), value=v, line=ln))
            c.count("aggregation")
            continue
        if raw.startswith("H\t"):
            f = raw.split("\t")
            hist_map, key = (f[1] if len(f) > 1 else ""), ",".join(f[2:])
            c.count("aggregation")
            continue
        if DIST_HEAD.match(raw):
            in_dist = True
            c.count("aggregation")
            continue
        in_dist = False
        if PACK_HEAD.match(raw):
            in_pack = True
            c.count("aggregation")
            continue
        if in_pack:
            m = PACK_ROW.match(raw)
            if m:
                c.agg_rows.append(dict(kind="pack", map=hist_map, key=m["key"], lo=_bound(m["min"])[0],
                                       hi=_bound(m["max"])[1], count=int(m["count"]), line=ln))
                c.count("aggregation")
                continue
            in_pack = False
        if DEFAULT_HEAD.match(s):
            c.count("header")
            columns = None
            continue
        m = DEFAULT_ROW.match(raw)
        if m and (not AGG_ROW.match(raw) or m["fn"].count(":") == 1):
            c.agg_rows.append(dict(kind="probe", map=m["fn"], key=m["cpu"], text=(m["text"] or "").strip(), line=ln))
            c.count("probe_output")
            continue
        j = _next_nonblank(codes, i)
        if j is not None and (DIST_HEAD.match(lines[j]) or PACK_HEAD.match(lines[j])):
            key = s  # the key line(s) of a histogram
            c.count("aggregation")
            continue
        if j is not None and codes[j] == FRAME and code != VALUES:
            stack, stack_prefix, stack_line = [], s, ln  # @[execname, ustack()]: the key before the frames
            c.count("aggregation")
            continue
        if COLUMN_HEAD.match(raw):
            columns = " ".join(s.split())
            c.count("header")
            continue
        if columns is not None:
            fields = s.split()
            ints = [agg_value(f) for f in fields]
            v = next((x for x in reversed(ints) if x is not None), None)
            row = dict(kind="columns", map=columns, key=",".join(fields), text=s, line=ln)
            c.agg_rows.append(_value_row(**row, value=v) if v is not None else row)
            c.count("columns")
            continue
        tail = TRAILING_INTS.search(raw)
        if tail and tail.start() > 0 or code == VALUES:
            head = raw[:tail.start()].strip() if tail else ""
            vals = tail.group(0).split() if tail else s.split()
            pct = vals.pop() if tail and tail["pct"] else None
            v = agg_value(vals[-1])
            if v is None:
                c.bad(ln, raw, "aggregation value outside the 64-bit range")
                continue
            keys = re.split(r"\s{2,}", head) if head else []
            keys += vals[:-1]
            row = dict(kind="printa", map="", key=",".join(keys), value=v, values=",".join(vals), line=ln)
            c.agg_rows.append(_value_row(**row, **({"text": pct} if pct else {})))
            c.count("aggregation")
            continue
        c.agg_rows.append(dict(kind="printf", map="", key="", text=raw, line=ln))
        c.count("printf")
    close_stack()
    result = c.result(count_lines(data))
    if hist_idx:
        result.aggregates = aggregates_frame([c.agg_rows, _hist_rows(lines, hist_idx, hist_keys)])
    events_into(result, data, event_lines)
    result.clock = "monotonic"
    return result


def _next_nonblank(codes: list[int], i: int) -> int | None:
    """Index of the first non-blank line among the next two, or None."""
    for j in range(i + 1, min(i + 3, len(codes))):
        if codes[j] != BLANK:
            return j
    return None


def _stack_key(prefix: str, frames: list[str]) -> str:
    while frames and frames[-1] == "--":
        frames = frames[:-1]
    key = ";".join(frames)
    return f"{prefix};{key}" if prefix else key

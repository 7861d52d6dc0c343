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

from tracer.parse import messages, scan
from tracer.parse.base import ELISION, Collector, Lines, ParseResult, aggregates_frame, count_lines, line_array
from tracer.parse.events import events_into

# (a number of 19 or more digits is no histogram row's: it would not fit int64)
DIST_ROW_RX = (r"^\s*(?P<label>-?\d{1,18}|< ?-?\d{1,18}|>= ?-?\d{1,18})\s+(?P<bar>[|@ ]*\|[@ ]*)\s+"
               r"(?P<count>-?\d{1,18})\s*$")
PACK_ROW_RX = (r"^\s*(?P<key>\S+)\s+(?P<min><\s*-?\d{1,18}|-?\d{1,18})\s+:\s(?P<bars>.*?)\s*:\s+"
               r"(?P<max>>=\s*-?\d{1,18}|-?\d{1,18})\s+\|\s+(?P<count>-?\d{1,18})\s*$")
HEAD_RX = r"^\s*value\s+-+ Distribution -+\s+count\s*$|^\s*key\s+min\s+\.-+\.\s+max\s+\|\s+count\s*$"
DEFAULT_HEAD = re.compile(r"^CPU\s+ID\s+FUNCTION:NAME\s*$")
DEFAULT_ROW = re.compile(r"^\s*(?P<cpu>\d+)\s+(?P<id>\d+)\s+(?P<fn>\S*:\S+)(?: (?P<text>.*))?$")
AGG_ROW = re.compile(r"^\s+\S.*\s(-?\d+)\s*$")
# a stack frame: module`function[+0xoff] (function names may hold spaces: C++/Rust signatures),
# a bare address, or a jstack Java frame
FRAME_RX = r"^\s+(?:[^\s`][^`]*`\S.*|0x[0-9a-fA-F]+|[A-Za-z_$][\w$]*(?:[/.][\w$<>]+)+\(.*\)\S*)\s*$"
VALUES_RX = r"^\s+-?\d+(?:\s+-?\d+)*\s*$"
TRAILING_INTS = re.compile(r"(?:\s+-?\d+)+(?P<pct>\s+\d+(?:\.\d+)?%)?\s*$")  # hotkernel: `COUNT  PCNT%`
# a column header: an upper-case first name, then names that start upper-case (STATE FDNUM Time Filename,
# KB/s, %CPU) or a unit in parentheses (TIME (ns))
_COL = r"(?:[A-Z%][A-Za-z0-9%_()/.:#-]*|\([a-z%/]+\))"
COLUMN_HEAD = re.compile(rf"^\s*[A-Z%][A-Z0-9%_()/.:#-]+(?:\s+{_COL})+\s*$")
PROMPT = re.compile(r"^\s*[#$] +(\./|/|dtrace\b|sudo\b|\w+\.d\b|\w+ -)")
TOOLKIT_BANNER = re.compile(r"^(Tracing|Sampling)\b.*(Ctrl-C|\.\.\.).*$")

# line classes, computed in bulk
(OTHER, BLANK, EVENT, HIST_ROW, FRAME, VALUES, PACK_ROW, HEAD) = range(8)


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


def _classify(arr: pa.Array) -> np.ndarray:
    """One class code per line. Cheap substring tests pick the candidates of each class, and only
    those go through that class's regex (pyarrow RE2 kernels, no Python call per line)."""
    def hits(a, rx):
        return pc.match_substring_regex(a, rx).to_numpy(zero_copy_only=False)

    def hits_at(idx, rx):  # the regex over lines idx: on the whole array when they are most of it (no copy)
        if len(idx) * 2 > len(arr):
            return hits(arr, rx)[idx]
        return hits(arr.take(idx), rx)

    codes = np.full(len(arr), OTHER, dtype=np.int8)
    bar = pc.match_substring(arr, "|").to_numpy(zero_copy_only=False)
    idx = np.flatnonzero(bar)
    if len(idx):
        hist = hits_at(idx, DIST_ROW_RX)
        codes[idx[hist]] = HIST_ROW
        idx = idx[~hist]  # aggpack rows (`key  min : bars : max | count`) and their `key min .-. max` header
        if len(idx):
            sub = arr.take(idx)
            codes[idx[hits(sub, PACK_ROW_RX)]] = PACK_ROW
            codes[idx[hits(sub, HEAD_RX)]] = HEAD
    idx = np.flatnonzero(pc.match_substring(arr, " Distribution ").to_numpy(zero_copy_only=False))
    if len(idx):
        codes[idx[hits(arr.take(idx), HEAD_RX)]] = HEAD
    maybe_frame = ~bar & (pc.match_substring(arr, "`").to_numpy(zero_copy_only=False)
                          | pc.match_substring(arr, "(").to_numpy(zero_copy_only=False)
                          | hits(arr, r"^\s+0x"))
    idx = np.flatnonzero(maybe_frame)
    if len(idx):
        sub = arr.take(idx)
        # `unix`cpu_halt   12345[  0.1%]` is a printa row of @[func(arg0)], not a frame
        frame = hits(sub, FRAME_RX) & ~hits(sub, r"\s-?\d+(\s+\d+(\.\d+)?%)?\s*$|^\s*[#$] ")  # not a shell prompt
        codes[idx[frame]] = FRAME
    idx = np.flatnonzero(codes == OTHER)
    if len(idx):
        codes[idx[hits(arr.take(idx), VALUES_RX)]] = VALUES
    codes[pc.starts_with(arr, "E\t").to_numpy(zero_copy_only=False)] = EVENT
    blank = pc.or_(pc.utf8_is_space(arr), pc.equal(pc.utf8_length(arr), 0))
    codes[blank.to_numpy(zero_copy_only=False)] = BLANK
    return codes


def _block_rows(codes: np.ndarray, row: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask, head): rows of class ``row`` in an unbroken run that starts right after a header
    line (HEAD), and for each line the index of the last line of another class before it."""
    idx = np.arange(len(codes))
    other = codes != row
    head = np.maximum.accumulate(np.where(other, idx, -1))  # last non-row line at or before i
    head = np.where(other, -1, head)
    ok = ~other & (head >= 0)
    ok[ok] = codes[head[ok]] == HEAD
    return ok, head


def _bound_arrays(label: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Histogram labels (``16``, ``< 0``, ``>= 40``) -> (lo, hi) float arrays, in bulk."""
    label = pc.replace_substring(label, " ", "")
    below = pc.starts_with(label, "<").to_numpy(zero_copy_only=False)
    above = pc.starts_with(label, ">=").to_numpy(zero_copy_only=False)
    num = pc.cast(pc.replace_substring_regex(label, r"^(<|>=)", ""), pa.float64()).to_numpy(zero_copy_only=False)
    return np.where(below, -np.inf, num), np.where(above, np.inf, num)


def _block_frame(rows_of, idx: np.ndarray, heads: np.ndarray, head_keys: dict, kind: str,
                 known: dict | None = None) -> pd.DataFrame:
    """Histogram (kind "hist") or aggpack ("pack") rows at ``idx`` -> frame, converted in bulk;
    map and key come from the header each row follows. ``rows_of(idx)``: those lines as an arrow
    array; ``known``: label kind/number and count the C classifier already read, per line."""
    uniq, which = np.unique(heads, return_inverse=True)
    labels = [head_keys.get(h, ("", "")) for h in uniq.tolist()]
    n = len(idx)
    if kind == "hist":
        lo, hi, counts = np.empty(n), np.empty(n), np.empty(n, np.int64)
        have = known["mask"][idx] if known is not None else np.zeros(n, bool)
        if have.any():
            at = idx[have]
            lk, num = known["label_kind"][at], known["label"][at].astype(np.float64)
            lo[have] = np.where(lk == 1, -np.inf, num)
            hi[have] = np.where(lk == 2, np.inf, num)
            counts[have] = known["count"][at]
        if (~have).any():
            rows = rows_of(idx[~have])
            lo[~have], hi[~have] = _bound_arrays(pc.extract_regex(rows, r"^\s*(?P<label>(?:< ?|>= ?)?-?\d+)").field("label"))
            counts[~have] = pc.cast(pc.extract_regex(rows, r"(?P<count>-?\d+)\s*$").field("count"),
                                    pa.int64()).to_numpy(zero_copy_only=False)
        names = _by_code(which, [k for _, k in labels])
    else:
        parts = pc.extract_regex(rows_of(idx), PACK_ROW_RX)
        lo = _bound_arrays(parts.field("min"))[0]
        hi = _bound_arrays(parts.field("max"))[1]
        counts = pc.cast(parts.field("count"), pa.int64()).to_numpy(zero_copy_only=False)
        names = scan.string_series(parts.field("key"))
    maps = _by_code(which, [m for m, _ in labels])
    return pd.DataFrame({"kind": scan.string_series(pa.repeat(pa.scalar(kind, pa.large_string()), n)) if n else kind,
                         "map": maps, "key": names, "lo": lo, "hi": hi, "count": pd.array(counts, dtype="Int64"),
                         "line": idx.astype(np.int64) + 1})


def _by_code(codes: np.ndarray, values: list[str]) -> pd.Series:
    """values[codes[i]] for every i, as an arrow string Series (no Python object per row)."""
    return scan.string_series(pc.take(pa.array(values, pa.large_string()), pa.array(codes)))


def parse_dtrace(data: bytes) -> ParseResult:
    c = Collector("dtrace")
    lines = Lines(data)
    n = len(lines)
    known = None
    fast = scan.classify("dtrace", data, n)
    if fast is not None:  # the C classifier; the lines it leaves go through the arrow one
        codes_np = fast.kind.copy()
        punt = np.flatnonzero(codes_np == -1)
        if len(punt):
            codes_np[punt] = _classify(pa.array([lines[i] for i in punt.tolist()], pa.large_string()))
        known = {"mask": fast.kind == HIST_ROW, "label_kind": fast.a0, "label": fast.a1, "count": fast.ret}

        def rows_of(idx):
            return pa.array([lines[i] for i in idx.tolist()], pa.large_string())

        def texts(idx):
            return [lines[i] for i in idx.tolist()]
    else:
        arr = line_array(data)
        codes_np = _classify(arr)

        def rows_of(idx):
            return arr.take(pa.array(idx))

        def texts(idx):
            return arr.take(pa.array(idx)).to_pylist()
    truncated_at = n - 1 if data and not data.endswith(b"\n") else -1
    hist_ok, hist_head = _block_rows(codes_np, HIST_ROW)
    pack_ok, pack_head = _block_rows(codes_np, PACK_ROW)
    bulk = hist_ok | pack_ok
    if truncated_at >= 0:
        bulk[truncated_at] = hist_ok[truncated_at] = pack_ok[truncated_at] = False
    codes = codes_np.tolist()
    head_keys: dict[int, tuple[str, str]] = {}  # header line index -> (map, key) of its rows
    key, hist_map = None, ""  # the key (and map) of the histogram that follows
    stack: list[str] | None = None  # frames of an open stack key ("--" marks a blank line inside)
    stack_prefix = ""  # a non-frame key line printed before the frames
    columns: str | None = None  # the open column header
    prev_probe_error_wrapped = False
    event_lines: list[int] = []

    def close_stack():
        nonlocal stack, stack_prefix
        if stack is not None:  # frames never followed by a value: still a record, without value
            c.agg_rows.append(dict(kind="stack", map="", key=_stack_key(stack_prefix, stack), line=stack_line))
        stack, stack_prefix = None, ""

    stack_line = 0
    c.count("aggregation", int(bulk.sum()))
    others = np.flatnonzero(~bulk)
    for i, raw in zip(others.tolist(), texts(others)):
        code = codes[i]
        ln = i + 1
        if i == truncated_at:
            c.bad(ln, raw, "truncated last line (no newline at end of file)")
            c.loss(1, f"truncated last line {ln}")
            continue
        if code == EVENT:
            event_lines.append(ln)
            continue
        if code == BLANK:
            c.count("blank")
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
        if stack is not None and code == HEAD:  # a histogram keyed by a stack
            key = _stack_key(stack_prefix, stack)
            head_keys[i] = (hist_map, key)
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
        if code == HEAD:  # value/Distribution/count or aggpack's key/min/max/count
            head_keys[i] = (hist_map, key or "")
            c.count("aggregation")
            continue
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
        if j is not None and codes[j] == HEAD:
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
    blocks = [_block_frame(rows_of, np.flatnonzero(ok), head[ok], head_keys, kind, known)
              for kind, ok, head in (("hist", hist_ok, hist_head), ("pack", pack_ok, pack_head)) if ok.any()]
    if blocks:
        result.aggregates = aggregates_frame([c.agg_rows, *blocks])
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

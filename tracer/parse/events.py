"""The event-line format (tracer.base.schema): pyarrow's C CSV reader over the event lines.

No Python call per event line: numpy finds line boundaries, the ``E<TAB>`` tag and the tab count
of every line at once; the (few) other lines -- the ``AIOTRACE`` header, tracer banners, ``Lost N
events``, drop reports, blank lines -- go through :mod:`tracer.parse.messages` and are counted or
kept as unparsed rows with their line numbers. The event lines are handed to pyarrow as one
buffer with fixed column types. Only when pyarrow rejects that buffer (a corrupted number, invalid
UTF-8) does a per-line fallback find the bad rows.

``nr<N>`` syscall names (bpftrace's raw_syscalls tracepoints) are mapped to names through
tracer/data/linux_x86_64_syscalls.tsv.
"""
from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

import tracer.data
from tracer.parse import messages
from tracer.parse.base import ParseResult, empty_events, unparsed_frame
from tracer.base.schema import EVENT_FIELDS, EVENT_KINDS, EVENT_TAG, FIELD_NAMES

N_TABS = len(EVENT_FIELDS)  # tabs in an event line: tag + fields
_ARROW_TYPES = {"uint64": pa.uint64(), "int64": pa.int64(), "string": pa.string()}


@lru_cache(maxsize=1)
def linux_syscall_names() -> dict[str, str]:
    """{"nr0": "read", ...}: the names event lines carry for raw_syscalls (tracer.data's table)."""
    return {f"nr{n}": name for n, name in tracer.data.linux_syscall_names().items()}


def map_syscall_names(names: pd.Series) -> pd.Series:
    """Replace nr<N> by the syscall name (unknown numbers stay nr<N>); vectorized over unique names."""
    table = linux_syscall_names()
    cat = names.astype("category")
    mapped = [table.get(c, c) for c in cat.cat.categories]
    if len(set(mapped)) != len(mapped):  # a name and its nr<N> both present: merge categories
        return names.map(lambda v: table.get(v, v)).astype("string")
    return cat.cat.rename_categories(mapped).astype("string")


def line_index(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) byte offsets of every line (end excludes the newline)."""
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [len(buf)]))
    if len(buf) == 0 or buf[-1] == 10:  # no text after the last newline: no extra line
        starts, ends = starts[:-1], ends[:-1]
    return starts, ends


def parse_events(data: bytes, fmt: str = "events") -> ParseResult:
    """Parse event-line output (bpftrace or dtrace per-event scripts)."""
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    buf = np.frombuffer(data, dtype=np.uint8)
    starts, ends = line_index(buf)
    n_lines = len(starts)
    if n_lines == 0:
        return ParseResult(fmt, 0, empty_events(), unparsed_frame([]), {})
    nonempty = ends > starts
    first = np.zeros(n_lines, dtype=np.uint8)
    second = np.zeros(n_lines, dtype=np.uint8)
    first[nonempty] = buf[starts[nonempty]]
    has2 = (ends - starts) >= 2
    second[has2] = buf[starts[has2] + 1]
    is_event = (first == ord(EVENT_TAG)) & (second == 9)
    truncated = bool(len(data)) and data[-1:] != b"\n"
    if truncated and is_event[-1]:
        is_event[-1] = False  # a last line without newline may have lost digits: a counted loss
    # Tagged lines are checked for their field count by pyarrow (the common case: all fine);
    # only when it skipped some do we count tabs per line to find which.
    tagged = np.flatnonzero(is_event)
    first_try = _read_tagged(data, tagged, np.flatnonzero(~is_event), truncated, starts, ends)
    if first_try is None:
        tab_pos = np.flatnonzero(buf == 9)
        tabs = np.searchsorted(tab_pos, ends[tagged]) - np.searchsorted(tab_pos, starts[tagged])
        is_event[tagged[tabs != N_TABS]] = False
    ev_lines = np.flatnonzero(is_event)

    counts: dict[str, int] = {}
    unparsed: list[tuple[int, str, str]] = []
    dropped, loss_messages, extra_losses = 0, [], {}
    others = np.flatnonzero(~is_event)
    for i in others:
        text = data[starts[i]:ends[i]].decode("utf-8", errors="replace")
        if truncated and i == n_lines - 1:
            unparsed.append((int(i) + 1, text[:500], "truncated last line (no newline at end of file)"))
            dropped += 1
            loss_messages.append(f"truncated last line {i + 1}")
            continue
        hit = messages.classify(text)
        if hit is None:
            reason = ("event line with a wrong field count" if text.startswith(EVENT_TAG + "\t")
                      else "not an event line nor a known tracer message")
            unparsed.append((int(i) + 1, text[:500], reason))
            continue
        kind, n = hit
        counts[kind] = counts.get(kind, 0) + 1
        if kind in messages.LOSS_KINDS:
            dropped += n
            if len(loss_messages) < 100:
                loss_messages.append(text.strip())
    if first_try is not None:
        events, bad = first_try
    else:
        events, bad = _read_event_lines(data, starts[ev_lines], ends[ev_lines], ev_lines + 1, False)
    unparsed.extend(bad)
    counts["event"] = len(events)
    if counts.get("emitted"):
        arrived = events["ev"].value_counts().to_dict() if len(events) else {}
        excess = 0
        for kind, n, got in messages.emitted_mismatch(messages.emitted_counts(data), arrived):
            dropped += max(n - got, 0)
            excess += max(got - n, 0)
            loss_messages.append(messages.mismatch_message(kind, n, got))
        if excess:
            extra_losses["excess_lines"] = excess
    unparsed.sort()
    return ParseResult(fmt, n_lines, events, unparsed_frame(unparsed), counts,
                       {"dropped_events": dropped, "messages": loss_messages, **extra_losses})


def _read_tagged(data: bytes, tagged: np.ndarray, untagged: np.ndarray, truncated: bool, starts, ends):
    """Fast path: pyarrow over the whole buffer, skipping untagged lines itself. None when a tagged
    line had a wrong field count (pyarrow skipped it), so the caller must find which."""
    if truncated or len(tagged) == 0:
        return None
    if not data.isascii():
        try:  # pyarrow's skip handler decodes the rows it skips: keep invalid UTF-8 away from it
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if any(data[starts[i]:ends[i]].count(b"\t") == N_TABS for i in untagged):
        return None  # an untagged line pyarrow would take for a row: copy the event lines out instead
    out = _read_event_lines(data, starts[tagged], ends[tagged], tagged + 1, True)
    return None if out is _SKIPPED else out


def _arrow_types():
    return {"tag": pa.string(), **{f.name: _ARROW_TYPES[f.dtype] for f in EVENT_FIELDS}}


def _map_names_arrow(names: pa.ChunkedArray) -> pa.ChunkedArray:
    """nr<N> -> syscall name in arrow (a lookup over the few distinct names, then a take)."""
    uniq = pc.unique(names).to_pylist()
    table = linux_syscall_names()
    keys = [u for u in uniq if u in table]
    if not keys:
        return names
    idx = pc.index_in(names, value_set=pa.array(keys))
    mapped = pc.take(pa.array([table[k] for k in keys]), idx)
    return pc.if_else(pc.is_null(idx), names, mapped)


def _to_frame(table: pa.Table, line_no: np.ndarray) -> tuple[pd.DataFrame, list]:
    """Arrow rows -> events frame: unknown kinds become unparsed, names mapped, line numbers set."""
    bad = []
    known = pc.is_in(table["ev"], value_set=pa.array(sorted(EVENT_KINDS)))
    if not pc.all(known).as_py():
        mask = np.asarray(known.to_numpy(zero_copy_only=False), dtype=bool)
        for ln, kind in zip(line_no[~mask], np.asarray(table["ev"].to_pylist(), dtype=object)[~mask]):
            bad.append((int(ln), str(kind), "unknown event kind"))
        table = table.filter(pa.array(mask))
        line_no = line_no[mask]
    table = table.set_column(table.schema.get_field_index("name"), "name", _map_names_arrow(table["name"]))
    # ev and name: a few distinct values over millions of rows -> categoricals (1 byte a row, not ~20)
    for col in ("ev", "name"):
        table = table.set_column(table.schema.get_field_index(col), col, pc.dictionary_encode(table[col]))
    df = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    df["line"] = line_no.astype("int64")
    return df, bad


_SKIPPED = object()  # pyarrow skipped a tagged line: its field count is wrong


def _read_event_lines(data: bytes, starts: np.ndarray, ends: np.ndarray, line_no: np.ndarray, whole: bool):
    """Event lines -> typed frame via pyarrow; falls back per line only if pyarrow refuses."""
    if len(starts) == 0:
        return empty_events(), []
    if whole:
        blob = data
    else:  # one contiguous buffer of the event lines: slices between runs of other lines
        breaks = np.flatnonzero(starts[1:] != ends[:-1] + 1) + 1
        run_starts = np.concatenate(([0], breaks))
        run_ends = np.concatenate((breaks, [len(starts)]))
        blob = b"".join(data[starts[a]:ends[b - 1]] + b"\n" for a, b in zip(run_starts, run_ends))
    names = ["tag", *FIELD_NAMES]
    try:
        table = pacsv.read_csv(
            io.BytesIO(blob),
            read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, double_quote=False,
                                             escape_char=False, newlines_in_values=False, ignore_empty_lines=True,
                                             invalid_row_handler=(lambda row: "skip") if whole else None),
            convert_options=pacsv.ConvertOptions(column_types=_arrow_types(), include_columns=list(FIELD_NAMES),
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
        if table.num_rows != len(starts):
            if whole:
                return _SKIPPED
            raise pa.ArrowInvalid("row count mismatch")
    except (pa.ArrowInvalid, pa.ArrowException):
        return _fallback(data, starts, ends, line_no)
    return _to_frame(table, line_no)


def _fallback(data: bytes, starts, ends, line_no):
    """Per-line parse of event lines after pyarrow refused the buffer: keeps the good ones."""
    rows, bad, good_lines = [], [], []
    for s, e, ln in zip(starts, ends, line_no):
        raw = data[s:e]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad.append((int(ln), raw.decode("utf-8", errors="replace")[:500], "invalid UTF-8 in an event line"))
            continue
        parts = text.split("\t")[1:]
        if len(parts) != len(EVENT_FIELDS):
            bad.append((int(ln), text[:500], "event line with a wrong field count"))
            continue
        try:
            vals = [int(p) if f.dtype != "string" else p for f, p in zip(EVENT_FIELDS, parts)]
            if vals[0] < 0 or vals[0] >= 1 << 64 or any(
                    not -(1 << 63) <= v < 1 << 63 for f, v in zip(EVENT_FIELDS[1:], vals[1:]) if f.dtype == "int64"):
                raise ValueError("number out of range")
        except ValueError as exc:
            bad.append((int(ln), text[:500], f"bad field in an event line: {exc}"))
            continue
        rows.append(vals)
        good_lines.append(int(ln))
    cols = list(zip(*rows)) if rows else [[] for _ in EVENT_FIELDS]
    table = pa.table({f.name: pa.array(list(c), type=_ARROW_TYPES[f.dtype]) for f, c in zip(EVENT_FIELDS, cols)})
    df, bad2 = _to_frame(table, np.asarray(good_lines, dtype=np.int64))
    return df, bad + bad2


def events_into(result: ParseResult, data: bytes, event_lines: list[int]) -> None:
    """Parse the event lines (``E<TAB>...``, 1-based numbers ``event_lines``) met inside another
    format's output with the event-line parser, and put its events and unparsed rows into
    ``result`` under the original line numbers."""
    if not event_lines:
        return
    raw = data.replace(b"\r\n", b"\n").split(b"\n")
    ev = parse_events(b"\n".join(raw[n - 1] for n in event_lines) + b"\n")
    ev.events["line"] = [event_lines[n - 1] for n in ev.events["line"]]
    result.events = ev.events
    result.counts["event"] = len(ev.events)
    for ln_, text, reason in ev.unparsed.itertuples(index=False):
        result.unparsed.loc[len(result.unparsed)] = (event_lines[ln_ - 1], text, reason)

"""The event-line format (tracer.schema): pyarrow's C CSV reader over the event lines.

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
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from tracer.parse import messages
from tracer.parse.base import (EVENT_COLUMNS, ParseResult, empty_events, type_events, unparsed_frame)
from tracer.schema import EVENT_FIELDS, EVENT_KINDS, EVENT_TAG, FIELD_NAMES

N_TABS = len(EVENT_FIELDS)  # tabs in an event line: tag + fields
_ARROW_TYPES = {"uint64": pa.uint64(), "int64": pa.int64(), "string": pa.string()}
SYSCALLS_TSV = Path(__file__).resolve().parent.parent / "data" / "linux_x86_64_syscalls.tsv"


@lru_cache(maxsize=1)
def linux_syscall_names() -> dict[str, str]:
    """{"nr0": "read", ...} from tracer/data/linux_x86_64_syscalls.tsv."""
    table = pd.read_csv(SYSCALLS_TSV, sep="\t", comment="#", dtype={"nr": int, "name": str})
    return {f"nr{n}": name for n, name in zip(table["nr"], table["name"])}


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
    tabs_cum = np.concatenate(([0], np.cumsum(buf == 9)))
    tabs = tabs_cum[ends] - tabs_cum[starts]
    padded = np.concatenate((buf, [0, 0]))
    is_event = (padded[starts] == ord(EVENT_TAG)) & (padded[starts + 1] == 9) & (tabs == N_TABS)
    truncated = bool(len(data)) and data[-1:] != b"\n"
    if truncated and is_event[-1]:
        is_event[-1] = False  # a last line without newline is kept only if complete: check below
    ev_lines = np.flatnonzero(is_event)

    counts: dict[str, int] = {}
    unparsed: list[tuple[int, str, str]] = []
    dropped, loss_messages = 0, []
    for i in np.flatnonzero(~is_event):
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

    events, bad = _read_event_lines(data, starts[ev_lines], ends[ev_lines], ev_lines + 1)
    unparsed.extend(bad)
    if len(events):
        known = events["ev"].isin(list(EVENT_KINDS))
        if not known.all():
            for ln, text in zip(events.loc[~known, "line"], events.loc[~known, "ev"]):
                unparsed.append((int(ln), str(text), "unknown event kind"))
            events = events[known].reset_index(drop=True)
        events["name"] = map_syscall_names(events["name"])
    counts["event"] = len(events)
    unparsed.sort()
    return ParseResult(fmt, n_lines, events, unparsed_frame(unparsed), counts,
                       {"dropped_events": dropped, "messages": loss_messages})


def _read_event_lines(data: bytes, starts: np.ndarray, ends: np.ndarray, line_no: np.ndarray):
    """Event lines -> typed frame via pyarrow; falls back per line only if pyarrow refuses."""
    if len(starts) == 0:
        return empty_events(), []
    # One contiguous buffer of the event lines: slices between runs of non-event lines.
    breaks = np.flatnonzero(starts[1:] != ends[:-1] + 1) + 1
    run_starts = np.concatenate(([0], breaks))
    run_ends = np.concatenate((breaks, [len(starts)]))
    chunks = [data[starts[a]:ends[b - 1]] + b"\n" for a, b in zip(run_starts, run_ends)]
    blob = b"".join(chunks)
    names = ["tag", *FIELD_NAMES]
    types = {"tag": pa.string(), **{f.name: _ARROW_TYPES[f.dtype] for f in EVENT_FIELDS}}
    try:
        table = pacsv.read_csv(
            io.BytesIO(blob),
            read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, double_quote=False,
                                             escape_char=False, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(FIELD_NAMES),
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
        if table.num_rows != len(starts):
            raise pa.ArrowInvalid("row count mismatch")
    except (pa.ArrowInvalid, pa.ArrowException):
        return _fallback(data, starts, ends, line_no)
    df = table.to_pandas()
    for f in EVENT_FIELDS:
        if f.dtype == "string":
            df[f.name] = df[f.name].astype("string")
    df["line"] = line_no.astype("int64")
    return df, []


def _fallback(data: bytes, starts, ends, line_no):
    """Per-line parse of event lines after pyarrow refused the buffer: keeps the good ones."""
    rows, bad = [], []
    for s, e, ln in zip(starts, ends, line_no):
        raw = data[s:e]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad.append((int(ln), raw.decode("utf-8", errors="replace")[:500], "invalid UTF-8 in an event line"))
            continue
        parts = text.split("\t")[1:]
        try:
            vals = [int(p) if f.dtype != "string" else p for f, p in zip(EVENT_FIELDS, parts)]
            if any(f.dtype == "string" and v == "" for f, v in zip(EVENT_FIELDS, vals)):
                raise ValueError("empty text field")
            if vals[0] < 0 or vals[0] >= 1 << 64 or any(
                    not -(1 << 63) <= v < 1 << 63 for f, v in zip(EVENT_FIELDS[1:], vals[1:]) if f.dtype == "int64"):
                raise ValueError("number out of range")
        except ValueError as exc:
            bad.append((int(ln), text[:500], f"bad field in an event line: {exc}"))
            continue
        rows.append((*vals, int(ln)))
    df = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    return type_events(df), bad

"""What every parser returns, and the helpers they share.

A parser turns one trace file into a :class:`ParseResult`: an ``events`` table in the event-line
schema (tracer.base.schema.EVENT_FIELDS plus ``line``, the 1-based input line that produced the row),
an ``unparsed`` table (line, text, reason), the losses the tracer reported, and ``counts``: how
many input lines went to each kind of known non-event message (banners, drop reports, blank
lines, aggregation printouts, continuation lines...). Every input line lands in exactly one place:

    lines == counts["event"] + sum(other counts) + len(unparsed)

Text formats that describe syscalls (strace, kdump, truss) are turned into the same event kinds
(``sys_enter``/``sys_exit`` pairs, ``job_notify`` for AIO completions returned by ``kevent``,
``ru_charge`` for rusage read by truss), so the model is built the same way from any backend.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tracer.base.errors import ParseError
from tracer.base.schema import EVENT_FIELDS, FIELD_NAMES, MODEL_TABLES

FORMATS = ("events", "dtrace", "bpftrace", "kdump", "truss", "strace", "libbpf")
EVENT_COLUMNS = (*FIELD_NAMES, "line")
# The marks people put in abridged output (``...``, ``[...]``, ``....``, ``(snip)``): counted as
# "elision" by every text parser, so a shared excerpt is not mistaken for unknown tool output.
ELISION = re.compile(r"^\s*(\.{3,}|\[\.{3}\]|\[?\(?\s*snip(ped)?\s*\)?\]?|<snip>|\u2026)\s*$", re.I)
_INT_FIELDS = tuple(f.name for f in EVENT_FIELDS if f.dtype in ("int64", "uint64"))


@dataclass
class ParseResult:
    """One parsed trace file. ``aggregates`` holds aggregation output (one row per key/bucket)."""
    format: str
    lines: int
    events: pd.DataFrame
    unparsed: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    losses: dict = field(default_factory=lambda: {"dropped_events": 0, "messages": []})
    aggregates: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None  # -c tables (strace, truss): syscall, seconds, calls, errors
    # What ts_ns means: "monotonic" (event lines), "realtime" (epoch: strace -ttt, kdump -T),
    # "relative" (since tracer start: truss -d, kdump -E), "wallclock" (time of day: strace -t/-tt,
    # ns since midnight), "none" (no timestamps: ts_ns is the line number, for ordering only).
    clock: str = "monotonic"

    @property
    def records(self) -> int:
        """Rows produced: events plus aggregation rows plus summary rows."""
        return len(self.events) + (0 if self.aggregates is None else len(self.aggregates)) + \
            (0 if self.summary is None else len(self.summary))

    def accounted_lines(self) -> int:
        return sum(self.counts.values()) + len(self.unparsed)


# Aggregation/record rows of dtrace and bpftrace output (ParseResult.aggregates), always these columns.
AGG_TYPES = {"kind": "string", "map": "string", "key": "string", "value": "float64", "values": "string",
             "lo": "float64", "hi": "float64", "count": "Int64", "text": "string", "line": "int64"}


def aggregates_frame(parts: list[pd.DataFrame | list[dict]]) -> pd.DataFrame | None:
    """Row dicts and/or frames -> one frame with every AGG_TYPES column, in line order (None if empty)."""
    frames = [pd.DataFrame(p) if isinstance(p, list) else p for p in parts if len(p)]
    if not frames:
        return None
    frames = [_agg_columns(f) for f in frames]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df = df[list(AGG_TYPES)]
    for col, typ in AGG_TYPES.items():
        if str(df[col].dtype) == ("str" if typ == "string" else typ) or str(df[col].dtype) == typ:
            continue  # already of that type (bulk-built columns)
        if typ == "Int64":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
        elif typ == "float64":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        elif typ == "string":
            df[col] = df[col].astype("string")
    return df.sort_values("line", kind="stable").reset_index(drop=True)


def _agg_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Add the AGG_TYPES columns ``df`` lacks, already typed and empty (NA), without a Python
    object per row."""
    import pyarrow as pa

    n = len(df)
    for col, typ in AGG_TYPES.items():
        if col in df.columns:
            continue
        if typ == "string":
            df[col] = pd.Series(pd.arrays.ArrowStringArray(pa.nulls(n, pa.large_string())), index=df.index)
        elif typ == "Int64":
            df[col] = pd.Series(pd.arrays.IntegerArray(np.zeros(n, np.int64), np.ones(n, bool)), index=df.index)
        else:
            df[col] = np.nan
    return df


def empty_events() -> pd.DataFrame:
    return events_frame([])


def events_frame(rows: list[tuple]) -> pd.DataFrame:
    """Event rows (tuples in EVENT_COLUMNS order) -> typed DataFrame."""
    df = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    return type_events(df)


def type_events(df: pd.DataFrame) -> pd.DataFrame:
    for f in EVENT_FIELDS:
        if f.dtype == "string":
            df[f.name] = df[f.name].astype("string")
        elif f.dtype == "uint64":
            df[f.name] = pd.to_numeric(df[f.name]).astype("uint64") if len(df) else df[f.name].astype("uint64")
        else:
            df[f.name] = df[f.name].astype(f.dtype)
    df["line"] = df["line"].astype("int64")
    return df


def unparsed_frame(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(MODEL_TABLES["unparsed"]))
    return df.astype({"line": "int64", "text": "string", "reason": "string"})


def read_bytes(path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ParseError(f"cannot read trace: {exc.strerror}", str(path)) from None


def split_lines(data: bytes) -> list[str]:
    """Decode (invalid UTF-8 bytes become U+FFFD) and split; CRLF and a missing final newline are fine."""
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


class Lines:
    """The lines of ``data`` by index, decoded only when asked for (as split_lines decodes them):
    the bulk parsers need the text of their rare lines only."""

    def __init__(self, data: bytes):
        import numpy as np

        self.data = data
        nl = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        self.starts = np.concatenate(([0], nl + 1))
        self.ends = np.concatenate((nl, [len(data)]))
        if len(data) == 0 or data.endswith(b"\n"):
            self.starts, self.ends = self.starts[:-1], self.ends[:-1]

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> str:
        text = self.data[self.starts[i]:self.ends[i]].decode("utf-8", errors="replace")
        return text[:-1] if text.endswith("\r") else text


def line_array(data: bytes):
    """Every line of ``data`` as one pyarrow string array (newline and a CR before it dropped),
    built over the bytes without a Python object per line: what the bulk classifiers run on.
    Invalid UTF-8 is replaced (U+FFFD) first, as split_lines does. Length == count_lines(data)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not data.isascii():
        try:  # arrow's own UTF-8 check, no Python str built
            pa.Array.from_buffers(pa.large_string(), 1, [None, pa.py_buffer(np.array([0, len(data)], np.int64)),
                                                         pa.py_buffer(data)]).validate(full=True)
        except pa.ArrowInvalid:
            data = data.decode("utf-8", errors="replace").encode("utf-8")
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl + 1))
    if len(data) == 0 or data.endswith(b"\n"):
        starts = starts[:-1]
    offsets = np.concatenate((starts, [len(data)])).astype(np.int64)
    arr = pa.Array.from_buffers(pa.large_string(), len(starts), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    arr = pc.utf8_rtrim(arr, characters="\n")
    return pc.utf8_rtrim(arr, characters="\r") if b"\r" in data else arr


def count_lines(data: bytes) -> int:
    """Lines in the file: newlines, plus one for a final line without a newline."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def ends_truncated(data: bytes) -> bool:
    return bool(data) and not data.endswith(b"\n")


class Collector:
    """Line-by-line bookkeeping for the text parsers: events, counts per message kind, unparsed."""

    def __init__(self, fmt: str):
        self.fmt = fmt
        self.clock = "none"
        self.rows: list[tuple] = []
        self.unparsed: list[tuple[int, str, str]] = []
        self.counts: dict[str, int] = {}
        self.dropped = 0
        self.messages: list[str] = []
        self.agg_rows: list[dict] = []
        self.summary_rows: list[dict] = []
        self.lines: list[str] = []  # the input lines, once each_line has split them

    def count(self, kind: str, n: int = 1) -> None:
        if n:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def event(self, ts_ns, pid, tid, ev, name, id_=0, a0=0, a1=0, a2=0, ret=0, err=0, line=0) -> None:
        self.rows.append((int(ts_ns), int(pid), int(tid), ev, name, int(id_), int(a0), int(a1), int(a2),
                          int(ret), int(err), int(line)))

    def each_line(self, data: bytes, lines: list[str] | None = None,
                  skip_blank: bool = True) -> Iterator[tuple[int, str, str]]:
        """Yield (line_no, raw, stripped) for each line of ``data`` (``lines``: its split_lines, if
        the parser already has them). Handled here once for every text parser: a last line without
        a newline (the tracer was cut off mid-write) -> unparsed plus a loss; a blank line -> counted
        as "blank" unless ``skip_blank`` is False (parsers whose state a blank line resets); an
        elision mark of abridged output -> counted as "elision"."""
        lines = split_lines(data) if lines is None else lines
        self.lines = lines
        last = len(lines) - 1 if ends_truncated(data) else -1
        for i, raw in enumerate(lines):
            stripped = self.plain_line(i + 1, raw, i == last, skip_blank)
            if stripped is not None:
                yield i + 1, raw, stripped

    def plain_line(self, line_no: int, raw: str, truncated: bool, skip_blank: bool = True) -> str | None:
        """The stripped text of a line the caller must read, or None when it is accounted for here:
        a cut-off last line (unparsed plus a loss), a blank line ("blank", unless ``skip_blank`` is
        False), an elision mark of abridged output ("elision"). One place for every text reader."""
        if truncated:
            self.bad(line_no, raw, "truncated last line (no newline at end of file)")
            self.loss(1, f"truncated last line {line_no}")
            return None
        stripped = raw.strip()
        if skip_blank and not stripped:
            self.count("blank")
            return None
        if stripped[:1] in ".[(<\u2026" and ELISION.match(stripped):
            self.count("elision")
            return None
        return stripped

    def bad(self, line_no: int, text: str, reason: str) -> None:
        self.unparsed.append((line_no, text[:500], reason))

    def _in_range_rows(self) -> list[tuple]:
        """The event rows whose numbers fit the schema (ts_ns uint64, the rest int64). A line that
        produced an out-of-range number (a pid of 30 digits) is moved, whole, to unparsed: its
        "record" count goes down by one, so every line stays accounted for exactly once."""
        def fits(r: tuple) -> bool:
            return 0 <= r[0] < (1 << 64) and all(-(1 << 63) <= v < (1 << 63) for v in (*r[1:3], *r[5:11]))

        bad_lines = {r[11] for r in self.rows if not fits(r)}
        if not bad_lines:
            return self.rows
        for ln in sorted(bad_lines):
            self.count("record", -1)
            text = self.lines[ln - 1] if 0 < ln <= len(self.lines) else ""
            self.bad(ln, text, "a number out of the 64-bit range (time, pid, tid, argument or value)")
        return [r for r in self.rows if r[11] not in bad_lines]

    def loss(self, n: int, message: str) -> None:
        self.dropped += int(n)
        if len(self.messages) < 100:
            self.messages.append(message.strip())

    def result(self, n_lines: int) -> ParseResult:
        rows = self._in_range_rows()
        agg = aggregates_frame([self.agg_rows])
        summ = pd.DataFrame(self.summary_rows) if self.summary_rows else None
        return ParseResult(self.fmt, n_lines, events_frame(rows), unparsed_frame(self.unparsed), dict(self.counts),
                           {"dropped_events": self.dropped, "messages": self.messages}, agg, summ, self.clock)


def clamp64(v: int) -> int:
    """Keep a value inside int64 (pointers above 2^63 wrap as C's (long long) cast does)."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= (1 << 63) else v


def seconds_ns(sec: str, frac: str = "") -> int:
    """Decimal seconds as printed (``sec``.``frac``, any number of fraction digits) -> ns;
    digits past the ninth are dropped, as the tracers' own rounding is unknown."""
    return int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])


_NUM = re.compile(r"^-?(0x[0-9a-fA-F]+|\d+)$")


def to_int(text: str) -> int | None:
    """A C-style number (decimal or 0x hex) -> int, or None."""
    t = text.strip()
    if t.isdigit() and t.isascii():
        return clamp64(int(t))
    if not _NUM.match(t):
        return None
    return clamp64(int(t, 16) if "x" in t else int(t, 10))


def sorted_events(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["ts_ns", "line"], kind="stable").reset_index(drop=True)


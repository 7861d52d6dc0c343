"""What every parser returns, and the helpers they share.

A parser turns one trace file into a :class:`ParseResult`: an ``events`` table in the event-line
schema (tracer.schema.EVENT_FIELDS plus ``line``, the 1-based input line that produced the row),
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

import pandas as pd

from tracer.errors import ParseError
from tracer.schema import EVENT_FIELDS, FIELD_NAMES, MODEL_TABLES

FORMATS = ("events", "dtrace", "bpftrace", "kdump", "truss", "strace", "libbpf")
EVENT_COLUMNS = (*FIELD_NAMES, "line")
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

    def count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n

    def event(self, ts_ns, pid, tid, ev, name, id_=0, a0=0, a1=0, a2=0, ret=0, err=0, line=0) -> None:
        self.rows.append((int(ts_ns), int(pid), int(tid), ev, name, int(id_), int(a0), int(a1), int(a2),
                          int(ret), int(err), int(line)))

    def each_line(self, data: bytes, lines: list[str] | None = None,
                  skip_blank: bool = True) -> Iterator[tuple[int, str, str]]:
        """Yield (line_no, raw, stripped) for each line of ``data`` (``lines``: its split_lines, if
        the parser already has them). Handled here once for every text parser: a last line without
        a newline (the tracer was cut off mid-write) -> unparsed plus a loss; a blank line -> counted
        as "blank" unless ``skip_blank`` is False (parsers whose state a blank line resets)."""
        lines = split_lines(data) if lines is None else lines
        last = len(lines) - 1 if ends_truncated(data) else -1
        for i, raw in enumerate(lines):
            ln = i + 1
            if i == last:
                self.bad(ln, raw, "truncated last line (no newline at end of file)")
                self.loss(1, f"truncated last line {ln}")
                continue
            stripped = raw.strip()
            if skip_blank and not stripped:
                self.count("blank")
                continue
            yield ln, raw, stripped

    def bad(self, line_no: int, text: str, reason: str) -> None:
        self.unparsed.append((line_no, text[:500], reason))

    def loss(self, n: int, message: str) -> None:
        self.dropped += int(n)
        if len(self.messages) < 100:
            self.messages.append(message.strip())

    def result(self, n_lines: int) -> ParseResult:
        rows = [r for r in self.rows if all(-(1 << 63) <= v < (1 << 64) for v in (r[0], *r[5:11]))]
        agg = pd.DataFrame(self.agg_rows) if self.agg_rows else None
        summ = pd.DataFrame(self.summary_rows) if self.summary_rows else None
        return ParseResult(self.fmt, n_lines, events_frame(rows), unparsed_frame(self.unparsed), dict(self.counts),
                           {"dropped_events": self.dropped, "messages": self.messages}, agg, summ, self.clock)


def events_into(result: ParseResult, data: bytes, event_lines: list[int]) -> None:
    """Parse the event lines (``E<TAB>...``, 1-based numbers ``event_lines``) met inside another
    format's output with the event-line parser, and put its events and unparsed rows into
    ``result`` under the original line numbers."""
    from tracer.parse.events import parse_events

    if not event_lines:
        return
    raw = data.replace(b"\r\n", b"\n").split(b"\n")
    ev = parse_events(b"\n".join(raw[n - 1] for n in event_lines) + b"\n")
    ev.events["line"] = [event_lines[n - 1] for n in ev.events["line"]]
    result.events = ev.events
    result.counts["event"] = len(ev.events)
    for ln_, text, reason in ev.unparsed.itertuples(index=False):
        result.unparsed.loc[len(result.unparsed)] = (event_lines[ln_ - 1], text, reason)


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
    if not _NUM.match(t):
        return None
    return clamp64(int(t, 16) if "x" in t else int(t, 10))


def sorted_events(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["ts_ns", "line"], kind="stable").reset_index(drop=True)


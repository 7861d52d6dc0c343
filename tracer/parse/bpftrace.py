"""bpftrace output other than event lines: text, or ``-f json`` (NDJSON with blank lines).

Text: ``Attaching N probes...``/``Attached N probes``, ``Lost N events`` (a loss), warnings (the
harmless RLIMIT_MEMLOCK one included), ``^C``; maps ``@name: v``, ``@name[key]: v``,
``@name[k1, k2]: v``; ``hist``/``lhist`` blocks (``@name:`` or ``@name[key]:`` then
``[lo, hi)  count |@@@|`` rows, ``[0]``, ``(..., lo)``, ``[hi, ...]``, K/M/G suffixes). Any other
text is printf output (counted and kept as a ``printf`` row: bpftrace printf text is free-form),
except event lines (``E<TAB>...``), which are parsed as events.
JSON: ``attached_probes``, ``printf``, ``map`` (scalar, keyed, tuple keys ``"dd,13125"``),
``hist`` (plain or keyed), ``stats``, ``time``, ``lost_events`` (a loss), ``join``; blank lines.
Rows go to ParseResult.aggregates: kind (printf|scalar|map|hist), map, key, value, lo, hi, count,
text, line.
"""
from __future__ import annotations

import json
import re

from tracer.parse import messages
from tracer.parse.base import Collector, ParseResult, count_lines, ends_truncated, split_lines
from tracer.parse.events import events_into

MAP = re.compile(r"^(?P<map>@[A-Za-z_0-9]*)(?:\[(?P<key>.*)\])?: (?P<value>-?\d+)\s*$")
HIST_HEAD = re.compile(r"^(?P<map>@[A-Za-z_0-9]*)(?:\[(?P<key>.*)\])?:\s*$")
BUCKET = re.compile(r"^(?P<label>\[[^\]\)]*[\]\)]|\(\.\.\., [^\)]*\))\s+(?P<count>\d+)\s+\|[@ ]*\|\s*$")
SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


def _num(tok: str) -> float:
    tok = tok.strip()
    if tok == "...":
        return float("nan")
    m = re.fullmatch(r"(-?\d+)([KMGTP]?)", tok)
    return float(int(m.group(1)) * SUFFIX[m.group(2)]) if m else float("nan")


def _bucket(label: str) -> tuple[float, float]:
    inner = label[1:-1]
    if label.startswith("(...,"):
        return float("-inf"), _num(inner.split(",")[1])
    parts = [p.strip() for p in inner.split(",")]
    if len(parts) == 1:
        v = _num(parts[0])
        return v, v
    lo, hi = _num(parts[0]), _num(parts[1])
    return lo, (float("inf") if parts[1] == "..." else hi)


def parse_bpftrace(data: bytes) -> ParseResult:
    lines = split_lines(data)
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if first.startswith("{"):
        return _parse_json(data, lines)
    return _parse_text(data, lines)


def _parse_text(data: bytes, lines: list[str]) -> ParseResult:
    c = Collector("bpftrace")
    c.clock = "monotonic"
    hist: tuple[str, str] | None = None
    event_lines = []
    for ln, raw, _ in c.each_line(data, lines, skip_blank=False):
        if raw.startswith("E\t"):
            event_lines.append(ln)
            continue
        if hist is not None:
            m = BUCKET.match(raw.strip())
            if m:
                lo, hi = _bucket(m["label"])
                c.agg_rows.append(dict(kind="hist", map=hist[0], key=hist[1], lo=lo, hi=hi, count=int(m["count"]),
                                       line=ln))
                c.count("aggregation")
                continue
            hist = None
        hit = messages.classify(raw)
        if hit is not None and hit[0] != "header":
            c.count(hit[0])
            if hit[0] in messages.LOSS_KINDS:
                c.loss(hit[1], raw)
            continue
        m = MAP.match(raw)
        if m:
            c.agg_rows.append(dict(kind="map" if m["key"] is not None else "scalar", map=m["map"],
                                   key=m["key"] or "", value=int(m["value"]), line=ln))
            c.count("aggregation")
            continue
        m = HIST_HEAD.match(raw)
        if m:
            hist = (m["map"], m["key"] or "")
            c.count("aggregation")
            continue
        c.agg_rows.append(dict(kind="printf", map="", key="", text=raw, line=ln))
        c.count("printf")
    result = c.result(count_lines(data))
    events_into(result, data, event_lines)
    return result


class _Shape(Exception):
    """A JSON record whose values are not of the types bpftrace writes."""


def _number(v) -> float:
    """A JSON number, or the decimal string bpftrace writes for an integer a double cannot hold."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise _Shape(f"value {v!r} is not a number")
    try:
        return float(v)
    except (ValueError, OverflowError):
        raise _Shape(f"value {v!r} is not a number") from None


def _count(v) -> int:
    n = _number(v)
    if n != n or n < 0 or n >= 2 ** 63 or n != int(n):
        raise _Shape(f"count {v!r} is not a non-negative integer")
    return int(n)


def _keyed(body, what: str):
    """{map name: value} -> (name, value) pairs (every data-carrying record has this shape)."""
    if not isinstance(body, dict):
        raise _Shape(f"{what} data is not an object")
    return body.items()


def _json_map(rows, body, ln):
    for name, val in _keyed(body, "map"):
        if isinstance(val, dict):
            for k, v in val.items():
                rows.append(dict(kind="map", map=name, key=str(k), value=_number(v), line=ln))
        else:
            rows.append(dict(kind="scalar", map=name, key="", value=_number(val), line=ln))


def _buckets(rows, name, key, buckets, ln):
    if not isinstance(buckets, list):
        raise _Shape("histogram buckets are not a list")
    for b in buckets:
        if not isinstance(b, dict):
            raise _Shape("a histogram bucket is not an object")
        lo = _number(b["min"]) if "min" in b else float("-inf")
        hi = _number(b["max"]) if "max" in b else float("inf")
        rows.append(dict(kind="hist", map=name, key=key, lo=lo, hi=hi, count=_count(b.get("count", 0)), line=ln))


def _json_hist(rows, body, ln):
    for name, val in _keyed(body, "hist"):
        if isinstance(val, dict):
            for k, buckets in val.items():
                _buckets(rows, name, str(k), buckets, ln)
        else:
            _buckets(rows, name, "", val, ln)


def _stat_row(rows, name, key, s, ln):
    if not isinstance(s, dict):
        raise _Shape("stats value is not an object")
    rows.append(dict(kind="stats", map=name, key=key, value=_number(s.get("total", 0)), count=_count(s.get("count", 0)),
                     text=json.dumps(s), line=ln))


def _json_stats(rows, body, ln):
    for name, val in _keyed(body, "stats"):
        if isinstance(val, dict) and not {"count", "average", "total"} & set(val):
            for k, s in val.items():
                _stat_row(rows, name, str(k), s, ln)
        else:
            _stat_row(rows, name, "", val, ln)


def _json_tseries(rows, body, ln):
    for name, val in _keyed(body, "tseries"):
        groups = val.items() if isinstance(val, dict) else [("", val)]
        for k, points in groups:
            if not isinstance(points, list):
                raise _Shape("tseries points are not a list")
            for pt in points:
                if not isinstance(pt, dict):
                    raise _Shape("a tseries point is not an object")
                rows.append(dict(kind="tseries", map=name, key=str(k), lo=_number(pt.get("interval_start", 0)),
                                 value=_number(pt.get("value", 0)), line=ln))


def _json_text(kind):
    def handler(rows, body, ln):
        rows.append(dict(kind=kind, map="", key="", text=body if isinstance(body, str) else json.dumps(body), line=ln))
    return handler


# record type -> handler(rows, data, line); "value" is print() of a non-map value. Records without
# "data" (lost_events, attached_probes, errors) are handled in _parse_json. bpftrace src/output/json.cpp.
JSON_RECORDS = {"map": _json_map, "hist": _json_hist, "stats": _json_stats, "tseries": _json_tseries,
                "printf": _json_text("printf"), "time": _json_text("time"), "cat": _json_text("cat"),
                "join": _json_text("join"), "syscall": _json_text("syscall"), "value": _json_text("value"),
                "benchmark_results": _json_text("benchmark_results")}
JSON_ERRORS = ("helper_error", "runtime_error", "print_error")


def _parse_json(data: bytes, lines: list[str]) -> ParseResult:
    """NDJSON records: both the old form (``{"type": "lost_events", "data": {"events": N}}``) and
    the newer one (``{"type": "lost_events", "count": N}``); numbers may be decimal strings."""
    c = Collector("bpftrace")
    c.clock = "monotonic"
    c.lines = lines
    truncated = ends_truncated(data)
    for i, raw in enumerate(lines):
        ln = i + 1
        if not raw.strip():
            c.count("blank")
            continue
        if truncated and i == len(lines) - 1:
            c.bad(ln, raw, "truncated last line (no newline at end of file)")
            c.loss(1, f"truncated last line {ln}")
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            c.bad(ln, raw, "not a bpftrace JSON record")
            continue
        kind = obj.get("type") if isinstance(obj, dict) else None
        if not isinstance(kind, str):
            c.bad(ln, raw, "JSON without a record type")
            continue
        body = obj.get("data")
        rows: list[dict] = []
        try:
            if kind in ("lost_events", "attached_probes"):
                if "count" in obj:
                    n = _count(obj["count"])
                elif isinstance(body, dict):
                    n = _count(body.get("events" if kind == "lost_events" else "probes", 0))
                else:
                    raise _Shape(f"{kind} without a count")
                if kind == "lost_events":
                    c.loss(n, f"Lost {n} events")
                c.count("lost" if kind == "lost_events" else "attach")
                continue
            if kind in JSON_ERRORS:
                c.count("runtime_error")
                c.messages.append(str(obj.get("msg", kind))[:200])
                continue
            handler = JSON_RECORDS.get(kind)
            if handler is None:
                c.bad(ln, raw, f"unknown bpftrace JSON record type {kind[:40]!r}")
                continue
            handler(rows, body, ln)
        except (_Shape, KeyError) as exc:
            c.bad(ln, raw, f"bpftrace {kind[:40]} record with unexpected values: {exc}")
            continue
        c.agg_rows.extend(rows)
        c.count(kind if kind in ("printf", "time", "join", "syscall", "cat", "value", "benchmark_results")
                else "aggregation")
    return c.result(count_lines(data))

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


def _parse_json(data: bytes, lines: list[str]) -> ParseResult:
    c = Collector("bpftrace")
    c.clock = "monotonic"
    truncated = ends_truncated(data)
    for i, raw in enumerate(lines):
        ln = i + 1
        if not raw.strip():
            c.count("blank")
            continue
        try:
            obj = json.loads(raw)
            kind, body = obj["type"], obj.get("data")
        except (ValueError, KeyError, TypeError):
            reason = "truncated last line (no newline at end of file)" if truncated and i == len(lines) - 1 \
                else "not a bpftrace JSON record"
            c.bad(ln, raw, reason)
            if reason.startswith("truncated"):
                c.loss(1, f"truncated last line {ln}")
            continue
        if kind == "attached_probes":
            c.count("attach")
        elif kind == "lost_events":
            n = int((body or {}).get("events", 0))
            c.count("lost")
            c.loss(n, f"Lost {n} events")
        elif kind == "printf":
            c.agg_rows.append(dict(kind="printf", map="", key="", text=str(body), line=ln))
            c.count("printf")
        elif kind == "map" and isinstance(body, dict):
            for name, val in body.items():
                if isinstance(val, dict):
                    for k, v in val.items():
                        c.agg_rows.append(dict(kind="map", map=name, key=str(k), value=_val(v), line=ln))
                else:
                    c.agg_rows.append(dict(kind="scalar", map=name, key="", value=_val(val), line=ln))
            c.count("aggregation")
        elif kind == "hist" and isinstance(body, dict):
            for name, val in body.items():
                groups = val.items() if isinstance(val, dict) else [("", val)]
                for k, buckets in groups:
                    for b in buckets or []:
                        c.agg_rows.append(dict(kind="hist", map=name, key=str(k), lo=float(b.get("min", float("-inf"))),
                                               hi=float(b.get("max", float("inf"))), count=int(b.get("count", 0)),
                                               line=ln))
            c.count("aggregation")
        elif kind in ("stats", "time", "join", "syscall", "helper_error", "value"):
            c.agg_rows.append(dict(kind=kind, map="", key="", text=json.dumps(body), line=ln))
            c.count(kind)
        else:
            c.bad(ln, raw, f"unknown bpftrace JSON record type {kind!r}")
    return c.result(count_lines(data))


def _val(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")

"""dtrace(1) output other than event lines (freebsd-facts.md §5.3): what aiotrace-agg.d prints
(``AIOTRACE-AGG`` header, ``A<TAB>map<TAB>keys...<TAB>value`` printa rows, ``H<TAB>map<TAB>key`` +
a quantize block), plus anything dtrace prints by default:

* banners (``dtrace: script|description '...' matched N probes``), drop reports of every kind,
  ``dtrace: error on enabled probe ...`` (a line wrapped after ``):`` is joined), ``^C``;
* printa/aggregation blocks: ``  key  key  value`` rows (columns split on 2+ spaces);
* quantize and lquantize histograms (``value  ---- Distribution ---- count`` header, ``@`` bars,
  ``< base`` / ``>= limit`` rows, the key on its own line before the header), and aggpack rows
  (``key  min .---. max | count`` header, one packed row per key);
* the default ``CPU ID FUNCTION:NAME`` header and its rows (with whatever trace() printed).

Every row goes to ParseResult.aggregates: kind (scalar|printa|hist|pack|probe), map, key, value,
lo, hi, count, text, line. Event lines (``E<TAB>...``) in the same stream are parsed as events.
"""
from __future__ import annotations

import re

from tracer.parse import messages
from tracer.parse.base import Collector, ParseResult, count_lines, split_lines, to_int
from tracer.parse.events import events_into

DIST_HEAD = re.compile(r"^\s*value\s+-+ Distribution -+\s+count\s*$")
DIST_ROW = re.compile(r"^\s*(?P<label>-?\d+|< -?\d+|>= -?\d+)\s+(?P<bar>[|@ ]*\|[@ ]*)\s+(?P<count>-?\d+)\s*$")
PACK_HEAD = re.compile(r"^\s*key\s+min\s+\.-+\.\s+max\s+\|\s+count\s*$")
PACK_ROW = re.compile(r"^\s*(?P<key>\S+)\s+(?P<min><\s*-?\d+|-?\d+)\s+:\s(?P<bars>.*?)\s*:\s+(?P<max>>=\s*-?\d+|-?\d+)\s+\|\s+(?P<count>-?\d+)\s*$")
DEFAULT_HEAD = re.compile(r"^CPU\s+ID\s+FUNCTION:NAME\s*$")
DEFAULT_ROW = re.compile(r"^\s*(?P<cpu>\d+)\s+(?P<id>\d+)\s+(?P<fn>\S*:\S+)(?: (?P<text>.*))?$")
AGG_ROW = re.compile(r"^\s+\S.*\s(-?\d+)\s*$")


def _bound(label: str) -> tuple[float, float]:
    label = label.replace(" ", "")
    if label.startswith("<"):
        return float("-inf"), float(label[1:])
    if label.startswith(">="):
        return float(label[2:]), float("inf")
    v = float(label)
    return v, v


def parse_dtrace(data: bytes) -> ParseResult:
    c = Collector("dtrace")
    lines = split_lines(data)
    key = None  # the key line before a histogram
    hist_map = ""
    in_dist = in_pack = False
    last_kind = None
    event_lines = []
    for ln, raw, s in c.each_line(data, lines, skip_blank=False):
        kind = None
        if raw.startswith("E\t"):
            event_lines.append(ln)
            continue
        hit = messages.classify(raw.rstrip())
        if hit is not None and hit[0] != "blank":
            kind, n = hit
            c.count(kind)
            if kind in messages.LOSS_KINDS:
                c.loss(n, raw)
            last_kind = kind
            continue
        if not s:
            c.count("blank")
            in_dist = in_pack = False
            last_kind = "blank"
            continue
        if last_kind == "probe_error" and lines[ln - 2].rstrip().endswith("):"):
            c.count("probe_error")  # the reason, wrapped onto its own line
            last_kind = None
            continue
        last_kind = None
        if s.startswith("AIOTRACE-AGG\t"):
            c.count("header")
            continue
        if raw.startswith("A\t"):
            f = raw.split("\t")
            v = to_int(f[-1]) if len(f) >= 3 else None
            if v is None:
                c.bad(ln, raw, "printa row without a numeric value")
                continue
            c.agg_rows.append(dict(kind="printa", map=f[1], key=",".join(f[2:-1]), value=v, line=ln))
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
        if in_dist:
            m = DIST_ROW.match(raw)
            if m:
                lo, hi = _bound(m["label"])
                c.agg_rows.append(dict(kind="hist", map=hist_map, key=key, lo=lo, hi=hi,
                                       count=int(m["count"]), line=ln))
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
            continue
        m = DEFAULT_ROW.match(raw)
        if m and not AGG_ROW.match(raw) or (m and m["fn"].count(":") == 1 and ":" in m["fn"]):
            c.agg_rows.append(dict(kind="probe", map=m["fn"], key=m["cpu"], text=(m["text"] or "").strip(), line=ln))
            c.count("probe_output")
            continue
        nxt = next((ln2 for ln2 in lines[ln:ln + 2] if ln2.strip()), "")
        if DIST_HEAD.match(nxt) or (PACK_HEAD.match(nxt) if nxt else False):
            key = s
            c.count("aggregation")
            continue
        row = AGG_ROW.match(raw)
        if row and raw.startswith(" "):
            # The value is the trailing integer; the keys are what precedes it, split on 2+ spaces.
            head = s[:len(s) - len(row.group(1))].rstrip()
            keys = re.split(r"\s{2,}", head) if head else []
            c.agg_rows.append(dict(kind="printa", map="", key=",".join(keys), value=int(row.group(1)), line=ln))
            c.count("aggregation")
            continue
        c.bad(ln, raw, "not dtrace output (an elision or annotation in the text?)")
    result = c.result(count_lines(data))
    events_into(result, data, event_lines)
    result.clock = "monotonic"
    return result

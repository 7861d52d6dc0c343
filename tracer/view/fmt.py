"""Numbers for people: thousands separators, µs/ms where they read better than ns, a mean with
its interval (or its range below three repetitions), blanks for what is not known. Used by the
HTML report, `compare`, `summary` and the demo's table, so one number reads the same everywhere."""
from __future__ import annotations

import math
from typing import Any

BLANK = ""


def missing(v: Any) -> bool:
    try:
        return v is None or (isinstance(v, float) and math.isnan(v)) or v is math.nan or bool(v != v)
    except (TypeError, ValueError):
        return False


def count(v: Any) -> str:
    """Integer with thousands separators: 25675 -> '25,675'."""
    return BLANK if missing(v) else f"{float(v):,.0f}"


def num(v: Any, digits: int = 3) -> str:
    """A ratio-like number with ``digits`` significant figures, separators above 1,000."""
    if missing(v):
        return BLANK
    v = float(v)
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{max(digits - 1 - int(math.floor(math.log10(abs(v)))), 0)}f}"


def duration(ns: Any) -> str:
    """ns -> '812 ns', '12.5 µs', '3.21 ms', '1.50 s'."""
    if missing(ns):
        return BLANK
    v = float(ns)
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(v) >= scale:
            return f"{num(v / scale)} {unit}"
    return f"{v:,.0f} ns"


def share(v: Any) -> str:
    """0..1 -> '37 %'."""
    return BLANK if missing(v) else f"{100 * float(v):.0f} %"


def jobs(v: Any) -> str:
    """A job count: '16' when whole (a maximum), '2.69' when a time-weighted mean."""
    if missing(v):
        return BLANK
    return count(v) if float(v).is_integer() else num(v)


FORMATTERS = {"syscalls/I/O": num, "I/O/s": count, "ns": duration, "jobs": jobs,
              "fraction": share, "ratio": num}


def value(v: Any, unit: str) -> str:
    return FORMATTERS.get(unit, num)(v)


def spread(n: Any, lo: Any, hi: Any, mn: Any, mx: Any, unit: str) -> str:
    """The uncertainty to print under a mean: '95% CI a – b' from three repetitions, 'range a – b'
    with two, '' with one (no interval from fewer than three runs)."""
    if missing(n) or int(n) < 2:
        return BLANK
    if int(n) < 3:
        return BLANK if missing(mn) else f"range {value(mn, unit)} – {value(mx, unit)}"
    return BLANK if missing(lo) else f"95% CI {value(lo, unit)} – {value(hi, unit)}"

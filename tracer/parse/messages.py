"""Tracer side lines that are not events: banners, drop reports, warnings. Shared by the
event-line parser (bpftrace/dtrace print them into the same stream) and the dtrace/bpftrace
parsers. Each known line is a counted message kind; drops add to ``dropped_events``."""
from __future__ import annotations

import re

from tracer.base.schema import HEADER_TAG

# (kind, regex, group holding a drop count or None). Order matters only for overlaps.
_PATTERNS: tuple[tuple[str, re.Pattern, int | None], ...] = tuple(
    (kind, re.compile(rx), grp) for kind, rx, grp in (
        ("header", rf"^{HEADER_TAG}\t", None),
        ("blank", r"^\s*$", None),
        # bpftrace
        ("attach", r"^Attaching \d+ probes?\.\.\.$", None),
        ("attach", r"^Attached \d+ probes?$", None),
        ("lost", r"^Lost (\d+) events?$", 1),
        ("warning", r"^(ERROR|WARNING): .*RLIMIT_MEMLOCK", None),
        ("warning", r"^WARNING: ", None),
        ("interrupt", r"^\^C$", None),
        # strace (stderr, prefixed with its argv[0]): attach/detach notices are not losses
        ("attach", r"^\S*strace: Process \d+ (attached|detached)( with \d+ threads)?$", None),
        # aiotrace-events.bt's exit trailer: lines of each kind the kernel side printed
        ("emitted", r"^@emitted\[\w+\]: \d+$", None),
        # dtrace (stderr, prefix "dtrace: ")
        ("banner", r"^dtrace: (script|description) '.*' matched \d+ probes?$", None),
        ("drop", r"^dtrace: (\d+) drops? on CPU \d+$", 1),
        ("drop", r"^dtrace: (\d+) aggregation drops? on CPU \d+$", 1),
        ("drop", r"^dtrace: (\d+) dynamic variable drops?( with non-empty (dirty|rinsing) list)?$", 1),
        ("drop", r"^dtrace: (\d+) speculative drops?$", 1),
        ("drop", r"^dtrace: (\d+) failed speculations?( \(.*\))?$", 1),
        ("drop", r"^dtrace: (\d+) (jstack|ustack)\(\)(/ustack\(\))? string table overflows?$", 1),
        ("drop", r"^dtrace: (\d+) jstack\(\)/ustack\(\) string table overflows?$", 1),
        ("drop", r"^dtrace: (\d+) errors? in ERROR probe enabling$", 1),
        ("probe_error", r"^dtrace: error on enabled probe ID \d+ \(ID \d+: [^)]*\):", None),
        ("probe_error", r"^dtrace: (\d+) errors? on CPU \d+$", None),
        ("dtrace_message", r"^dtrace: .+$", None),  # any other diagnostic: counted, never lost
    ))

LOSS_KINDS = ("lost", "drop")


def classify(line: str) -> tuple[str, int] | None:
    """(kind, dropped count) for a known side line, else None."""
    for kind, rx, grp in _PATTERNS:
        m = rx.match(line)
        if m:
            return kind, (int(m.group(grp)) if grp else 0)
    return None


_EMITTED = re.compile(rb"^@emitted\[(\w+)\]: (\d+)$", re.M)


def emitted_counts(data: bytes) -> dict[str, int]:
    """The ``@emitted[<ev>]: N`` trailer of a per-event bpftrace trace: lines of each event kind
    the kernel side printed. Empty when the trace has none (dtrace, older scripts)."""
    return {m.group(1).decode(): int(m.group(2)) for m in _EMITTED.finditer(data)}


def emitted_mismatch(emitted: dict[str, int], arrived: dict[str, int]) -> list[tuple[str, int, int]]:
    """(kind, emitted, arrived) for every kind whose arrived line count differs from what the kernel
    side printed: fewer (output bpftrace lost without a "Lost N events" line) or more (duplicated
    lines: a trace concatenated or replayed twice)."""
    kinds = sorted(set(emitted) | {k for k in arrived if emitted})
    return [(k, emitted.get(k, 0), arrived.get(k, 0)) for k in kinds if arrived.get(k, 0) != emitted.get(k, 0)]


def mismatch_message(kind: str, emitted: int, arrived: int) -> str:
    if arrived < emitted:
        return f"{kind}: {emitted} lines printed in the kernel, {arrived} arrived ({emitted - arrived} lost silently)"
    return f"{kind}: {emitted} lines printed in the kernel, {arrived} arrived ({arrived - emitted} more than printed: duplicated lines)"


MISSING_TRAILER = ("no @emitted trailer: bpftrace stopped before printing its exit maps, so lines lost "
                   "silently cannot be counted (losses unknown)")

"""Every loss a bundle's tracer reported, read in one place (capture at the end of a run, the model
when it loads a bundle): the trace through its own parser (``Lost N events``, dtrace drops, kdump
``Events dropped.``, bpftrace JSON ``lost_events``, the ``@emitted`` trailer), and the tracer's
stderr line by line through :func:`tracer.parse.messages.classify`.

Rules beyond the parsers' own:
- a bpftrace per-event trace without its ``@emitted`` trailer (bpftrace killed before its exit
  maps) has *unknown* losses, never zero: ``unknown`` is set and a message says why;
- strace reports problems only as free text on stderr: every stderr line that is not an
  attach/detach notice is a warning message (no count).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tracer.parse import messages

STDERR_FREE_TEXT_IS_WARNING = ("strace",)  # backends whose stderr has no other kind of line
# backends whose stderr may report drops ("Lost N events", "dtrace: N drops"); None: unknown (a bare file)
STDERR_DROP_REPORTERS = ("bpftrace", "dtrace", None)
STDERR_MESSAGE_KINDS = ("probe_error",)  # not counted as drops, but kept as loss messages
MAX_MESSAGES = 100


@dataclass
class LossReport:
    dropped_events: int = 0
    excess_lines: int = 0  # more lines of a kind arrived than the kernel side printed
    unknown: bool = False  # the trace cannot say what it lost (no trailer)
    messages: list[str] = field(default_factory=list)

    def add(self, message: str, dropped: int = 0) -> None:
        self.dropped_events += int(dropped)
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(message.strip())

    @property
    def any(self) -> bool:
        return bool(self.dropped_events or self.excess_lines or self.unknown or self.messages)


def stderr_losses(path: Path, backend: str | None, report: LossReport | None = None) -> LossReport:
    """Loss lines of a tracer's stderr (drops, lost events, probe errors; strace's warnings)."""
    report = report or LossReport()
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return report
    for line in text.splitlines():
        line = line.rstrip("\r")
        if not line.strip():
            continue
        hit = messages.classify(line)
        if hit is not None and hit[0] in messages.LOSS_KINDS and backend in STDERR_DROP_REPORTERS:
            report.add(line, hit[1])
        elif hit is not None and hit[0] in STDERR_MESSAGE_KINDS:
            report.add(line)
        elif backend in STDERR_FREE_TEXT_IS_WARNING and (hit is None or hit[0] != "attach"):
            report.add(line)
    return report


def trace_losses(result, backend: str | None, flavour: str | None,
                 report: LossReport | None = None) -> LossReport:
    """Losses in a parsed trace (``ParseResult``), plus the missing-trailer rule."""
    report = report or LossReport()
    losses = getattr(result, "losses", None) or {}
    report.dropped_events += int(losses.get("dropped_events") or 0)
    report.excess_lines += int(losses.get("excess_lines") or 0)
    for m in losses.get("messages") or []:
        if len(report.messages) < MAX_MESSAGES:
            report.messages.append(str(m))
    counts = getattr(result, "counts", None) or {}
    if backend == "bpftrace" and flavour == "events" and getattr(result, "format", "") == "events" \
            and not counts.get("emitted"):
        report.unknown = True
        report.messages.append(messages.MISSING_TRAILER)
    return report


def bundle_losses(trace: Path | None, fmt: str, stderr: Path | None, backend: str | None,
                  flavour: str | None, cache: bool = True) -> tuple[LossReport, object | None]:
    """(losses, parse result) of a bundle's raw trace and tracer stderr. A trace that cannot be
    parsed at all is itself a loss (message), and the result is None."""
    from tracer.base.errors import ParseError
    from tracer.parse import parse_file

    report, result = LossReport(), None
    if trace is not None and Path(trace).is_file():
        try:
            result = parse_file(trace, fmt or "auto", cache=cache)
        except ParseError as exc:
            report.unknown = True
            report.add(f"trace unreadable: {exc}")
        else:
            trace_losses(result, backend, flavour, report)
    elif trace is not None:
        report.unknown = True
        report.add(f"no trace file {Path(trace).name}")
    if stderr is not None:
        stderr_losses(stderr, backend, report)
    return report, result

"""Declare what an analysis needs; refuse a bundle that lacks it before any work is done.

LISA's ``@requires_events`` in our terms: an analysis names the model tables and columns it reads
(and the trace event kinds it needs). ``@requires`` checks them on the model passed as the first
argument and raises :class:`tracer.base.errors.AnalysisError` with one sentence naming the bundle, the
analysis and exactly what is missing. A column entry may be a tuple of alternatives: any one of
them non-null is enough (e.g. ``("freed_ns", "fetched_ns")``).

Every analysis result also carries provenance and loss columns (:func:`provenance`), so a number
from a bundle whose tracer lost events is flagged next to the number, never silently.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from tracer.base.errors import AnalysisError

FIXTURE_LABEL = "FreeBSD fixture (not a measurement)"
MODEL_LABEL = "FreeBSD semantics model (not a measurement)"  # aiotrace simulate (tracer.simulate)
MEASURED_LABEL = "measured"
NOT_MEASURED = (FIXTURE_LABEL, MODEL_LABEL)
ColumnSpec = "str | tuple[str, ...]"


@dataclass(frozen=True)
class Requirements:
    """What an analysis reads: {table: [column or (alternatives...)]} and event kinds."""
    tables: dict[str, tuple] = field(default_factory=dict)
    events: tuple[str, ...] = ()
    any_events: tuple[str, ...] = ()  # at least one of these kinds
    alternatives: tuple["Requirements", ...] = ()  # any one of these satisfied instead is enough

    def missing(self, model: Any) -> list[str]:
        """Human-readable list of what ``model`` lacks (empty when it has everything)."""
        out = self._missing(model)
        if out and any(not alt.missing(model) for alt in self.alternatives):
            return []
        return out

    def _missing(self, model: Any) -> list[str]:
        out: list[str] = []
        for table, columns in self.tables.items():
            frame = getattr(model, table, None)
            if frame is None or len(frame) == 0:
                out.append(f"table '{table}' (empty or absent)")
                continue
            for col in columns:
                alts = (col,) if isinstance(col, str) else tuple(col)
                if not any(_has_column(model, table, c) for c in alts):
                    out.append(f"{table}.{'|'.join(alts)}")
        kinds = _event_kinds(model) if (self.events or self.any_events) else set()
        out += [f"event '{e}'" for e in self.events if e not in kinds]
        if self.any_events and not kinds.intersection(self.any_events):
            out.append("one of events " + ", ".join(f"'{e}'" for e in self.any_events))
        return out


def _has_column(model: Any, table: str, column: str) -> bool:
    has = getattr(model, "has", None)
    if callable(has):
        return bool(has(table, column))
    frame = getattr(model, table, None)
    return frame is not None and column in frame.columns and bool(frame[column].notna().any())


def _event_kinds(model: Any) -> set[str]:
    events = getattr(model, "events", None)
    if events is None or len(events) == 0 or "ev" not in events.columns:
        return set()
    return set(events["ev"].dropna().unique().tolist())


def bundle_name(model: Any) -> str:
    manifest = getattr(model, "manifest", None) or {}
    return str(manifest.get("run_id") or getattr(model, "path", None) or "bundle")


def requires(tables: dict[str, Sequence] | None = None, events: Iterable[str] = (),
             any_events: Iterable[str] = (), or_tables: Iterable[dict[str, Sequence]] = ()) -> Callable:
    """Decorator: the wrapped function's first argument is a model; check it first. ``or_tables``:
    other sets of tables any one of which will do instead (e.g. aggregate counts for syscalls)."""
    alts = tuple(Requirements({t: tuple(c) for t, c in alt.items()}) for alt in or_tables)
    req = Requirements({t: tuple(c) for t, c in (tables or {}).items()}, tuple(events), tuple(any_events), alts)

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def checked(model, *args, **kwargs):
            missing = req.missing(model)
            if missing:
                raise AnalysisError(f"{fn.__name__} cannot run on {bundle_name(model)}: it lacks "
                                    + ", ".join(missing))
            return fn(model, *args, **kwargs)

        checked.requirements = req  # type: ignore[attr-defined]
        return checked

    return wrap


def can_run(fn: Callable, model: Any) -> tuple[bool, str]:
    """(True, "") when ``fn``'s requirements hold on ``model``, else (False, what is missing)."""
    req: Requirements | None = getattr(fn, "requirements", None)
    if req is None:
        return True, ""
    missing = req.missing(model)
    return (not missing, ", ".join(missing))


def loss_note(model: Any) -> str:
    """'' when the bundle reported no loss, else a short note ('1260 events dropped; 3 unparsed lines')."""
    losses = getattr(model, "losses", None) or {}
    manifest = getattr(model, "manifest", None) or {}
    dropped = int(losses.get("dropped_events") or manifest.get("losses", {}).get("dropped_events") or 0)
    unparsed = int(losses.get("unparsed_lines") or 0)
    parts = []
    if losses.get("unknown") or manifest.get("losses", {}).get("unknown"):
        parts.append("losses unknown (the tracer's own count is missing)")
    if dropped:
        parts.append(f"{dropped} events dropped")
    excess = int(losses.get("excess_lines") or manifest.get("losses", {}).get("excess_lines") or 0)
    if excess:
        parts.append(f"{excess} duplicated lines")
    if unparsed:
        parts.append(f"{unparsed} unparsed lines")
    if not parts and (losses.get("messages") or []):
        parts.append(f"{len(losses['messages'])} tracer loss messages")
    return "; ".join(parts)


def provenance(model: Any) -> dict[str, Any]:
    """Columns every result row carries: which run, what spec, measured or fixture, losses."""
    manifest = getattr(model, "manifest", None) or {}
    spec = manifest.get("spec") or (getattr(model, "summary", None) or {}).get("spec") or {}
    note = loss_note(model)
    target = manifest.get("target") or {}
    if target.get("kind") in ("command", "pid") and not spec.get("mode"):
        # a foreign program: its name stands where the workload's mode would
        spec = {"mode": target.get("label") or (f"pid {target.get('pid')}" if target.get("kind") == "pid"
                                                else " ".join(target.get("argv") or [])[:32])}
    return {
        "run_id": bundle_name(model),
        "os": manifest.get("os"),
        "kernel": manifest.get("kernel"),
        "kernel_variant": kernel_variant(manifest),
        "backend": manifest.get("backend"),
        "mode": spec.get("mode"),
        "op": spec.get("op"),
        "depth": spec.get("depth"),
        "batch": spec.get("batch"),
        "reap_batch": spec.get("reap_batch"),
        "threads": spec.get("threads"),
        "submit": spec.get("submit"),
        "direct": spec.get("direct"),
        "source": source_label(manifest),
        "counts_only": manifest.get("flavour") == "aggregate",
        "lossy": bool(note),
        "loss_note": note,
    }


def kernel_variant(manifest: dict) -> str:
    """The kernel patches that change what is measured: 'D33144+D33271', 'D33271' or 'stock' on
    FreeBSD (from the manifest's kernel string); '' elsewhere (the kernel version is in ``kernel``)."""
    if manifest.get("os") != "FreeBSD":
        return ""
    kernel = str(manifest.get("kernel") or "")
    patches = [d for d in ("D33144", "D33271") if d in kernel]
    return "+".join(patches) or "stock"


def source_label(manifest: dict) -> str:
    """What a bundle's numbers are: a measurement, or a FreeBSD fixture / semantics model (never
    to be shown as a measurement)."""
    if manifest.get("fixture"):
        return FIXTURE_LABEL
    model = manifest.get("model")
    if model:  # aiotrace simulate writes {"label": MODEL_LABEL, "kernel": ...}
        return model.get("label", MODEL_LABEL) if isinstance(model, dict) else MODEL_LABEL
    return MEASURED_LABEL


PROVENANCE_COLUMNS = tuple(provenance(object()).keys())


def with_provenance(frame: pd.DataFrame, model: Any) -> pd.DataFrame:
    """Append the provenance columns (constant per bundle) to ``frame``."""
    out = frame.copy()
    for key, value in provenance(model).items():
        out[key] = value
    return out


# Figures a foreign program (capture -- CMD / -p PID) cannot have, and why: it has no aiotrace
# workload record (per-I/O submit/complete times, submitting thread, verified bytes) and no spec.
FOREIGN_UNAVAILABLE: tuple[tuple[str, str], ...] = (
    ("per-I/O latency (submit -> observed)", "needs the workload's per-I/O submit and completion times"),
    ("async-free timing per I/O", "needs I/O identities the workload reuses (its per-I/O record)"),
    ("attribution to the submitting thread", "needs the per-I/O submitting thread; charged blocks "
     "per thread (/proc task io) are shown instead"),
    ("theoretical floor", "needs the completion mode, depth and batch the program used"),
    ("data verification", "only aiotrace's workload checks every block it reads"),
)


def unavailable_figures(model: Any) -> list[dict[str, str]]:
    """What a report must say is not available for this bundle (instead of an empty table): one
    ``{"figure", "why"}`` per figure. Empty for aiotrace's own workload."""
    manifest = getattr(model, "manifest", None) or {}
    if (manifest.get("target") or {}).get("kind") not in ("command", "pid"):
        return []
    return [{"figure": f, "why": w} for f, w in FOREIGN_UNAVAILABLE]

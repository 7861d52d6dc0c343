"""Projected REAP saving: the syscalls per I/O that the I/Os of a legacy FreeBSD run would need
under D33144's REAP mode, beside what the run measured.

Trace an application on a stock kernel (modes kevent, kevent-error, aio-poll, aio-suspend,
waitcomplete), and this says what REAP would save it. The projection keeps everything the run did
except what REAP changes (D33144: the result comes back in ``kev.data`` and the job is freed at
completion, macdice/freebsd @33a47467 ``filt_aio``/``aio_bio_done_notify``):

* submit: unchanged (the same ``aio_read``/``aio_write``/``lio_listio`` calls, each now carrying
  ``SIGEV_KEVENT`` with ``AIO_KEVENT_FLAG_REAP``);
* status, result: 0. The ``aio_error`` and ``aio_return`` calls are removed (``aio_waitcomplete``
  returned the result inside its wait, so it is a wait here);
* wait: 1/B, one ``kevent`` per batch of B completions, where B is the reap batch the run OBSERVED
  (completions learned per reaping call: the ``reap`` probe's batch size, else events per
  ``kevent`` return, else the spec's reap batch; see :func:`observed_reap_batch`). The
  run's own waits (``aio_suspend`` per wake, one ``aio_waitcomplete`` per I/O, ``kevent`` per
  batch) are replaced by these; aio-poll, which never waits, gains them;
* other: unchanged (getrusage, the workload's writes, ...).

One ``kqueue()`` per process is not counted: it is outside the window. The figure is a projection
from a measured (or fixture/model) run, never a measurement, and says so in ``source_note``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tracer.base import modes
from tracer.analysis.amplification import _windowed, io_count
from tracer.analysis.requires import provenance, requires, with_provenance
from tracer.base.schema import ROLES

LEGACY_FREEBSD_MODES = modes.LEGACY_FREEBSD_MODES  # every FreeBSD mode but reap (tracer.base.modes)
PROJECTION_LABEL = "projection for REAP (not a measurement)"
COLUMNS = ["role", "syscalls", "ios", "measured_per_io", "reap_per_io", "saved_per_io",
           "observed_reap_batch", "batch_source", "source_note"]


def applies_to(model: Any) -> bool:
    """True for a FreeBSD bundle of a legacy completion mode (the ones REAP would replace)."""
    p = provenance(model)
    return p["os"] == "FreeBSD" and p["mode"] in LEGACY_FREEBSD_MODES


def observed_reap_batch(model: Any) -> tuple[float, str]:
    """(B, source): completions the program learned of per reaping call, averaged over the run.
    From the workload's ``reap`` probe (each reaped I/O reports the size n of its call's batch,
    so calls = sum(1/n)); else, in the kevent modes, the events per ``kevent`` return in the
    window; else the spec's reap batch (the minimum the engine waits for)."""
    ev = getattr(model, "events", None)
    if ev is not None and len(ev) and "ev" in ev.columns:
        sizes = pd.to_numeric(ev.loc[ev["ev"] == "reap", "a0"], errors="coerce")
        sizes = sizes[sizes > 0]
        if len(sizes):
            return len(sizes) / float((1.0 / sizes).sum()), "reap probe (batch size per call)"
    sc = _windowed(model)
    if "ret" in sc.columns:
        got = pd.to_numeric(sc.loc[(sc["name"] == "kevent") & (sc["role"] == "wait"), "ret"], errors="coerce")
        got = got[got > 0]
        if len(got):
            return float(got.mean()), "kevent returns (events per call)"
    rb = provenance(model)["reap_batch"]
    return float(rb or 1), "spec reap_batch (no observation in the trace)"


@requires(tables={"syscalls": ("name", "role", "tid", "in_window"), "ios": ("id",)},
          any_events=("sys_enter", "sys_exit"))
def projected_reap(model: Any) -> pd.DataFrame:
    """One row per role plus ``total``: ``syscalls`` (measured, in window), ``ios``,
    ``measured_per_io``, ``reap_per_io`` (the projection), ``saved_per_io`` (measured - projected),
    ``observed_reap_batch`` and ``batch_source``, ``source_note``. Empty (same columns) for a bundle
    that is not a legacy-mode FreeBSD run (:func:`applies_to`)."""
    if not applies_to(model):
        return with_provenance(pd.DataFrame(columns=COLUMNS), model)
    ios = io_count(model)
    counts = _windowed(model)["role"].fillna("other").value_counts().reindex(list(ROLES), fill_value=0)
    measured = counts.astype("float64") / ios if ios else counts.astype("float64") * np.nan
    batch, source = observed_reap_batch(model)
    reap = {"submit": measured["submit"], "wait": 1.0 / max(batch, 1.0), "status": 0.0, "result": 0.0,
            "other": measured["other"]}
    out = pd.DataFrame({"role": list(ROLES) + ["total"],
                        "syscalls": [int(counts[r]) for r in ROLES] + [int(counts.sum())]})
    out["ios"] = ios
    out["measured_per_io"] = [float(measured[r]) for r in ROLES] + [float(measured.sum())]
    out["reap_per_io"] = [float(reap[r]) for r in ROLES] + [float(sum(reap.values()))]
    out["saved_per_io"] = out["measured_per_io"] - out["reap_per_io"]
    out["observed_reap_batch"] = batch
    out["batch_source"] = source
    source_label = provenance(model)["source"]
    out["source_note"] = f"{PROJECTION_LABEL}, from a run that is {source_label}"
    return with_provenance(out[COLUMNS], model)

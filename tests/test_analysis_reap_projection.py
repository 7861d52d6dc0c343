"""Projected REAP saving from legacy-mode FreeBSD bundles (issue 10). The fixture bundles are
hand-written (and will be regenerated from the kernel-semantics model), so these tests assert
relations that must hold on any such bundle, not numbers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis_frames import make_run, typed
from tracer.analysis import compare, reap_projection
from tracer.base.errors import AnalysisError

FREEBSD = Path(__file__).parent / "data" / "freebsd"


def events(kinds, a0=None):
    """Event rows of the given kinds (other fields zero), typed as the model's events table."""
    n = len(kinds)
    z = [0] * n
    return typed("events", {"ts_ns": np.arange(n, dtype="uint64"), "pid": z, "tid": z, "ev": kinds, "name": kinds,
                            "id": list(range(n)), "a0": a0 or z, "a1": z, "a2": z, "ret": z, "err": z,
                            "line": list(range(1, n + 1))})


@pytest.fixture(scope="module")
def freebsd_models():
    models = compare.load_models([FREEBSD])
    assert models
    return models


def test_every_legacy_bundle_gets_a_projection_that_drops_status_and_result(freebsd_models):
    legacy = [m for m in freebsd_models if reap_projection.applies_to(m)]
    assert {m.manifest["spec"]["mode"] for m in legacy} == set(reap_projection.LEGACY_FREEBSD_MODES)
    for m in legacy:
        p = reap_projection.projected_reap(m).set_index("role")
        name = m.manifest["run_id"]
        assert p.at["status", "reap_per_io"] == 0 and p.at["result", "reap_per_io"] == 0, name
        assert p.at["submit", "reap_per_io"] == p.at["submit", "measured_per_io"], name
        assert p.at["other", "reap_per_io"] == p.at["other", "measured_per_io"], name
        batch = p["observed_reap_batch"].iloc[0]
        assert batch >= 1 and p.at["wait", "reap_per_io"] == pytest.approx(1 / batch), name
        roles = ["submit", "wait", "status", "result", "other"]
        assert p.at["total", "reap_per_io"] == pytest.approx(p.loc[roles, "reap_per_io"].sum())
        assert p.at["total", "measured_per_io"] == pytest.approx(p.loc[roles, "measured_per_io"].sum())
        # what goes: every aio_error and aio_return, and the waits beyond one per batch
        saved = p.at["total", "saved_per_io"]
        removed = p.at["status", "measured_per_io"] + p.at["result", "measured_per_io"]
        assert saved == pytest.approx(removed + p.at["wait", "measured_per_io"] - 1 / batch), name
        assert p.at["total", "reap_per_io"] <= p.at["total", "measured_per_io"], name
        assert (p["source_note"].str.contains("not a measurement")).all()


def test_projection_of_a_kevent_run_predicts_the_measured_reap_run_of_the_same_shape(freebsd_models):
    """kevent and reap differ only in aio_return (and REAP's completion path), so the projection
    from a kevent bundle must land on what the reap bundle of the same backend and threads did."""
    def key(m):
        s = m.manifest["spec"]
        return (m.manifest["backend"], s["threads"], s["depth"], s["reap_batch"], s["submit"])

    reap = {key(m): m for m in freebsd_models if m.manifest["spec"]["mode"] == "reap"}
    pairs = [(m, reap[key(m)]) for m in freebsd_models
             if m.manifest["spec"]["mode"] == "kevent" and key(m) in reap]
    assert pairs
    for kev, rp in pairs:
        projected = reap_projection.projected_reap(kev).set_index("role")
        measured = compare.run_metrics(rp)
        for role in ("submit", "status", "result"):
            assert projected.at[role, "reap_per_io"] == pytest.approx(measured[f"{role}_per_io"]), \
                (role, kev.manifest["run_id"], rp.manifest["run_id"])
        # The bundles are runs of the FreeBSD semantics model: a kevent() returns what is queued when
        # it looks, so how many completions one call reaps varies from run to run; the projection
        # assumes one call per observed batch, the reap run shows what its calls did. "other" (the
        # workload's getrusage calls) depends on whether the reaper's first one lands in the window.
        assert 0 < measured["wait_per_io"] <= 1 and projected.at["wait", "reap_per_io"] <= 1


def test_not_applicable_bundles_give_an_empty_table(freebsd_models):
    reap = [m for m in freebsd_models if m.manifest["spec"]["mode"] == "reap"]
    assert reap and all(len(reap_projection.projected_reap(m)) == 0 for m in reap)
    linux = make_run("libaio", os_name="Linux", fixture=False)
    linux.events = events(["sys_enter", "sys_exit"])
    out = reap_projection.projected_reap(linux)
    assert len(out) == 0 and "reap_per_io" in out.columns


def test_observed_batch_comes_from_the_reap_probe_else_kevent_returns_else_the_spec():
    m = make_run("kevent", n=64, reap_batch=8)
    m.events = events(["reap"] * 6, a0=[4, 4, 4, 4, 2, 2])
    batch, source = reap_projection.observed_reap_batch(m)
    assert batch == pytest.approx(6 / (4 * 0.25 + 2 * 0.5)) and "probe" in source  # one call of 4, one of 2
    m.events = events(["sys_enter"])
    sc = m.syscalls.copy()
    sc.loc[sc["name"] == "kevent", "ret"] = 5
    m.syscalls = sc
    batch, source = reap_projection.observed_reap_batch(m)
    assert batch == 5 and "kevent" in source
    m.syscalls = sc.assign(ret=0)
    assert reap_projection.observed_reap_batch(m) == (8.0, "spec reap_batch (no observation in the trace)")


def test_projection_declares_what_it_needs():
    m = make_run("kevent")
    m.syscalls = typed("syscalls")
    with pytest.raises(AnalysisError, match="projected_reap"):
        reap_projection.projected_reap(m)
    assert reap_projection.projected_reap.requirements.any_events == ("sys_enter", "sys_exit")


def test_compare_shows_the_projection_beside_the_measured_total(freebsd_models):
    kevent = [m for m in freebsd_models if m.manifest["spec"]["mode"] == "kevent"]
    row = compare.run_metrics(kevent[0])
    assert np.isfinite(row["reap_projected_per_io"]) and row["reap_projected_per_io"] < row["total_per_io"]
    reap = [m for m in freebsd_models if m.manifest["spec"]["mode"] == "reap"]
    assert np.isnan(compare.run_metrics(reap[0])["reap_projected_per_io"])

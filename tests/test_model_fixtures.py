"""The FreeBSD fixture bundles (hand-written, NOT measurements) produce the syscalls, ios, rusage
and threads each mode and kernel must give. Expectations come from the modes table of
DESIGN.md and freebsd-facts.md §3-4, not from the parser's output."""
from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest

from conftest import REPO
from tracer.model import load_bundle

FIXTURES = REPO / "tests" / "data" / "freebsd"
BUNDLES = sorted(p.parent for p in FIXTURES.glob("*/*/manifest.json"))
N, REAP_BATCH = 16, 4
WAIT = {"aio-poll": 0, "aio-suspend": N // REAP_BATCH, "waitcomplete": N, "kevent": N // REAP_BATCH,
        "kevent-error": N // REAP_BATCH, "reap": N // REAP_BATCH}
STATUS = {"aio-suspend": N, "kevent-error": N}  # aio-poll: N plus the EINPROGRESS polls
RESULT = {"aio-poll": N, "aio-suspend": N, "kevent": N, "kevent-error": N, "waitcomplete": 0, "reap": 0}


def _gen():
    spec = importlib.util.spec_from_file_location("gen_fixtures", FIXTURES / "gen_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_mode_backend_and_kernel_is_there():
    names = {(b.parent.name, b.name) for b in BUNDLES}
    for mode in WAIT:
        for variant in ("dtrace-split-d33271", "ktrace-single", "truss-split-d33271"):
            assert any(m == mode and v.startswith(variant) for m, v in names), (mode, variant)
        if mode != "reap":  # reap needs the D33144 tree, which carries D33271
            assert (mode, "dtrace-split-stock") in names and (mode, "dtrace-single-stock") in names


@pytest.fixture(scope="module")
def models():
    return {b: load_bundle(b, cache=False) for b in BUNDLES}


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda b: f"{b.parent.name}/{b.name}")
def test_fixture_model(bundle, models):
    m = models[bundle]
    mode, (backend, threads, kernel) = bundle.parent.name, bundle.name.split("-")
    assert m.manifest["fixture"] is True and m.manifest["os"] == "FreeBSD"
    assert len(m.unparsed) == 0 and m.lines == m.manifest["raw"]["lines"]
    sc = m.syscalls[m.syscalls["in_window"]]
    roles = sc["role"].value_counts()
    assert roles.get("submit", 0) == N and roles.get("wait", 0) == WAIT[mode]
    assert roles.get("result", 0) == RESULT[mode]
    if mode == "aio-poll":
        assert roles.get("status", 0) > N
        pending = sc[(sc["name"] == "aio_error") & (sc["ret"] == 36)]
        assert len(pending) == roles["status"] - N and (pending["err"] == 0).all()  # 36 is a value
    else:
        assert roles.get("status", 0) == STATUS.get(mode, 0)
    assert (sc["dur_ns"] > 0).all() and sc["tid"].isin([100101, 100102]).all()
    submit_tids = set(sc.loc[sc["role"] == "submit", "tid"])
    wait_tids = set(sc.loc[sc["role"] == "wait", "tid"])
    assert submit_tids == {100101}
    assert wait_tids <= ({100102} if threads == "split" else {100101})
    ios = m.ios
    assert ios["id"].tolist() == list(range(N)) and (ios["result"] == 4096).all()
    assert ios["fetched_ns"].notna().all() and (ios["fetched_ns"] > ios["submit_ns"]).all()
    if backend == "dtrace":
        assert m.has("ios", "kernel_done_ns", "notified_ns", "freed_ns")
        assert (ios["kernel_done_ns"] > ios["submit_ns"]).all()
        assert (ios["notified_ns"] >= ios["kernel_done_ns"]).all()
        lag = ios["freed_ns"] - ios["kernel_done_ns"]
        if mode in ("reap", "waitcomplete"):
            assert (lag < 2_000).all()  # freed at completion (reap) / inside the blocking wait
        else:
            # freed inside an aio_return call (stock and D33271 alike: no REAP flag)
            ret = m.syscalls[m.syscalls["name"] == "aio_return"].sort_values("enter_ns")
            k = np.searchsorted(ret["enter_ns"].to_numpy(), ios["freed_ns"].to_numpy()) - 1
            assert (k >= 0).all() and (ios["freed_ns"].to_numpy() <= ret["exit_ns"].to_numpy()[k]).all()
            assert (lag > 0).all() and (ios["freed_ns"] <= ios["fetched_ns"]).all()
        ru = m.events[m.events["ev"] == "ru_charge"]
        assert ru["a0"].sum() == N * 8
        if kernel == "stock":
            assert set(ru["name"]) <= {"aio_return", "aio_waitcomplete"} and set(ru["tid"]) == set(ios["reap_tid"])
        else:
            assert set(ru["name"]) == {"aio_complete"} and set(ru["tid"]) == {100101}
    else:
        assert not m.has("ios", "kernel_done_ns") and not m.has("ios", "freed_ns")
        if backend == "ktrace" and mode in ("kevent", "kevent-error", "reap"):
            assert m.has("ios", "notified_ns")  # from the struct kevent[] STRU records
            assert (ios["notified_ns"] < ios["fetched_ns"]).all()
    charged = 100101 if (kernel == "d33271" or threads == "single") else 100102
    th = m.threads.set_index("tid")
    assert th.loc[charged, "inblock"] == N * 8 and th["inblock"].sum() == N * 8
    if backend == "truss":  # the workload's own getrusage(RUSAGE_THREAD) calls, decoded by truss
        ru_calls = m.syscalls[m.syscalls["name"] == "getrusage"]
        assert len(ru_calls) == (4 if threads == "split" else 2)


def test_clocks_line_up_across_backends(models):
    gen = _gen()
    by = {(b.parent.name, b.name): models[b] for b in BUNDLES}
    for mode in ("kevent", "waitcomplete"):
        dt, kd = by[(mode, "dtrace-single-stock")], by[(mode, "ktrace-single-stock")]
        a = dt.syscalls[dt.syscalls["name"] == "aio_read"]["enter_ns"].to_numpy()
        b = kd.syscalls[kd.syscalls["name"] == "aio_read"]["enter_ns"].to_numpy()
        assert np.array_equal(a - b, np.full(N, gen.DTRACE_OFFSET_NS))  # kdump -T moved to CLOCK_MONOTONIC
        tr, dts = by[(mode, "truss-split-d33271")], by[(mode, "dtrace-split-d33271")]
        a = dts.syscalls[dts.syscalls["name"] == "aio_read"]["exit_ns"].to_numpy()
        b = tr.syscalls[tr.syscalls["name"] == "aio_read"]["exit_ns"].to_numpy()
        assert np.array_equal(a - b, np.full(N, gen.DTRACE_OFFSET_NS))  # truss -d moved by its origin
        # the workload's record is moved onto the DTrace clock by the sync event
        assert np.allclose(dt.ios["submit_ns"] - kd.ios["submit_ns"], gen.DTRACE_OFFSET_NS)


@pytest.mark.parametrize("variant", [("kevent", "ktrace", "single", "stock"), ("reap", "truss", "split", "d33271"),
                                     ("aio-poll", "dtrace", "split", "stock")])
def test_committed_fixtures_are_what_the_generator_writes(variant):
    gen = _gen()
    mode, backend, threads, kernel = variant
    acts = gen.simulate(mode, threads, kernel)
    text = {"ktrace": lambda: gen.kdump_text(acts), "truss": lambda: gen.truss_text(acts, mode),
            "dtrace": lambda: gen.dtrace_events(acts, kernel)}[backend]()
    bundle = FIXTURES / mode / f"{backend}-{threads}-{kernel}"
    raw = json.loads((bundle / "manifest.json").read_text())["raw"]["trace"]
    assert (bundle / raw).read_text() == text


def test_loading_a_bundle_twice_parses_once(tmp_path, monkeypatch):
    import tracer.parse as parse_pkg

    bundle = tmp_path / "b"
    shutil.copytree(FIXTURES / "kevent" / "ktrace-single-stock", bundle, ignore=shutil.ignore_patterns("*-v*"))
    calls = []
    real = parse_pkg.parse_bytes
    monkeypatch.setattr(parse_pkg, "parse_bytes", lambda data, fmt: calls.append(fmt) or real(data, fmt))
    first = load_bundle(bundle)
    second = load_bundle(bundle)
    assert calls == ["kdump"]
    assert list((bundle / "cache").glob("*-kdump-v*/events.parquet"))
    assert first.syscalls.equals(second.syscalls) and first.ios.equals(second.ios)
    (bundle / "raw" / "kdump.txt").write_text((bundle / "raw" / "kdump.txt").read_text() + "\n")
    load_bundle(bundle)
    assert calls == ["kdump", "kdump"]  # new content, new key

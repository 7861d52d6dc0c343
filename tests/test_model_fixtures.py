"""The FreeBSD fixture bundles: runs of the FreeBSD semantics model (NOT measurements) rendered as the
dtrace event lines, kdump and truss text FreeBSD's tracers print (tests/data/freebsd/gen_fixtures.py,
tracer/freebsd_render.py). Each mode and kernel must give the syscalls, ios, rusage and threads the
modes table of DESIGN.md and vfs_aio.c say; the text must follow truss's and kdump's printers."""
from __future__ import annotations

import importlib.util
import re
import shutil

import pandas as pd
import pytest

from conftest import REPO
from tracer.analysis.requires import MODEL_LABEL, provenance
from tracer.model import load_bundle

FIXTURES = REPO / "tests" / "data" / "freebsd"
BUNDLES = sorted(p.parent for p in FIXTURES.glob("*/*/manifest.json"))
N, REAP_BATCH = 16, 4
RESULT = {"aio-poll": N, "aio-suspend": N, "kevent": N, "kevent-error": N, "waitcomplete": 0, "reap": 0}
STATUS = {"aio-suspend": None, "kevent-error": N, "kevent": 0, "waitcomplete": 0, "reap": 0, "aio-poll": None}


def _gen():
    spec = importlib.util.spec_from_file_location("gen_fixtures", FIXTURES / "gen_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _raw(bundle):
    m = load_bundle(bundle, cache=False)
    return (bundle / m.manifest["raw"]["trace"]).read_text()


def test_every_mode_backend_and_kernel_is_there():
    names = {(b.parent.name, b.name) for b in BUNDLES}
    for mode in RESULT:
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
    assert m.manifest["model"]["label"] == MODEL_LABEL and provenance(m)["source"] == MODEL_LABEL
    assert m.manifest["os"] == "FreeBSD" and m.manifest["fixture"] is False
    assert len(m.unparsed) == 0 and m.lines == m.manifest["raw"]["lines"]
    sc = m.syscalls[m.syscalls["in_window"]]
    roles = sc["role"].value_counts()
    assert roles.get("submit", 0) == N and roles.get("result", 0) == RESULT[mode]
    if STATUS[mode] is None:
        assert roles.get("status", 0) >= N
    else:
        assert roles.get("status", 0) == STATUS[mode]
    if mode == "aio-poll":
        pending = sc[(sc["name"] == "aio_error") & (sc["ret"] == 36)]
        assert (pending["err"] == 0).all()  # EINPROGRESS is aio_error's VALUE, not an errno
    if mode == "waitcomplete":
        assert roles.get("wait", 0) == N
    if mode in ("kevent", "kevent-error", "reap"):
        assert 1 <= roles.get("wait", 0) <= N
    assert (sc["dur_ns"] >= 0).all()
    ios = m.ios
    sub_tid = int(m.threads.loc[m.threads["role"].isin(["submitter", "both"]), "tid"].iloc[0])
    assert set(sc.loc[sc["role"] == "submit", "tid"]) == {sub_tid}
    assert ios["id"].tolist() == list(range(N)) and (ios["result"] == 4096).all()
    assert ios["fetched_ns"].notna().all() and (ios["fetched_ns"] > ios["submit_ns"]).all()
    if backend == "dtrace":
        assert m.has("ios", "kernel_done_ns", "notified_ns", "freed_ns")
        assert (ios["kernel_done_ns"] > ios["submit_ns"]).all()
        assert (ios["notified_ns"] >= ios["kernel_done_ns"]).all() and (ios["freed_ns"] >= ios["notified_ns"]).all()
        assert (ios["fetched_ns"] >= ios["kernel_done_ns"]).all()
        ev = m.events
        ru = ev[(ev["ev"] == "ru_charge") & (ev["ts_ns"] >= m.window[0]) & (ev["ts_ns"] <= m.window[1])]
        charged = ru[ru["a0"] > 0]
        assert charged["a0"].sum() == N  # one block operation per 4 KiB read (FreeBSD counts operations)
        if kernel == "stock":
            assert set(charged["name"]) <= {"aio_return", "aio_waitcomplete"}
            assert set(charged["tid"]) == set(ios["reap_tid"])
        else:
            assert set(charged["name"]) == {"aio_complete"} and set(charged["tid"]) == {sub_tid}
    elif mode in ("kevent", "kevent-error") or (mode == "reap" and backend == "ktrace"):
        # kdump: STRU struct kevent[] idents; truss: joined through the aio_return that follows
        assert m.has("ios", "notified_ns") and ios["notified_ns"].notna().all()
        assert (ios["notified_ns"] <= ios["fetched_ns"]).all()
    charged_role = "both" if threads == "single" else ("submitter" if kernel == "d33271" else "reaper")
    th = m.threads.set_index("role")
    assert th.loc[charged_role, "inblock"] == N


def test_truss_notifications_join_their_io():
    """The truss parser keyed aio_* calls by the aiocb's buffer but kevents by the aiocb address,
    so notified_ns never joined a truss bundle."""
    for mode in ("kevent", "kevent-error"):
        m = load_bundle(FIXTURES / mode / "truss-split-d33271", cache=False)
        assert m.ios["notified_ns"].notna().all(), mode


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda b: f"{b.parent.name}/{b.name}")
def test_committed_text_is_what_the_printers_render_from_the_model_record(bundle):
    gen = _gen()
    m = load_bundle(bundle, cache=False)
    records = pd.read_parquet(bundle / "raw" / "model-records.parquet")
    clocks = m.manifest["clocks"]
    assert clocks["realtime_minus_monotonic_ns"] == gen.REALTIME_MINUS_MONOTONIC_NS
    _, _, text = gen.render(m.manifest["backend"], records, m.manifest["workload_pid"],
                            clocks["trace_origin_monotonic_ns"])
    assert _raw(bundle) == text


def test_kdump_text_follows_kdump_and_ktrace_defaults():
    for mode, name in (("kevent", "ktrace-single-stock"), ("kevent-error", "ktrace-single-stock"),
                       ("reap", "ktrace-single-d33271")):
        text = _raw(FIXTURES / mode / name)
        assert " CSW " not in text  # ktrace -t cstu records no context switches
        stru = [l for l in text.splitlines() if "STRU  struct kevent[]" in l]
        data = "0x1000" if mode == "reap" else "0"  # REAP: the byte count; else the error, 0
        assert stru and all(f"flags=0x8010<EV_ONESHOT|EV_EOF>, fflags=0, data={data}," in l for l in stru)
        assert re.search(r"RET   kevent \d+(/0x[0-9a-f]+)?$", text, re.M)


def test_truss_text_follows_truss():
    reap = _raw(FIXTURES / "reap" / "truss-split-d33271")
    # the REAP flag is EV_FLAG2 == EV_ERROR; libsysdecode's table has EV_ERROR, not EV_FLAG2
    assert "sigev_notify_kevent_flags=EV_ERROR" in reap
    kev = [l for l in reap.splitlines() if " kevent(" in l]
    # NULL changelist is print_pointer's 0x0; the REAP knote is EV_ONESHOT (forced) with EV_EOF;
    # data is %#jx (the byte count); udata is the slot pointer the mode stored, not the ident
    for line in kev:
        m = re.search(r"kevent\((\d+),0x0,0,\{ (.*) \},(\d+),\{ \d+\.\d{9} \}\)", line)
        assert m, line
        for ev in m.group(2).split(" "):
            ident, filt, flags, fflags, data, udata = ev.split(",")
            assert (filt, flags, fflags, data) == ("EVFILT_AIO", "EV_ONESHOT|EV_EOF", "0", "0x1000") and udata != ident
    legacy = _raw(FIXTURES / "kevent" / "truss-split-d33271")
    assert "sigev_notify_kevent_flags=EV_ONESHOT" in legacy and ",EV_ONESHOT|EV_EOF,0,0," in legacy
    for text in (reap, legacy):
        for line in text.splitlines():
            call = line.split(") ")[0] + ")" if ") = " in line or ") ERR#" in line else line
            head = call.rstrip("\t")
            tabs = len(call) - len(head)
            assert tabs == max(0, 6 - len(head) // 8), line  # print_syscall pads to column 48 only
        assert ",LIO_READ,{ sigev_notify=" in text  # the opcode mode_posix.c stored in the user aiocb


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

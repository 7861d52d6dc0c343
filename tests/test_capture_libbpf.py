"""The libbpf backend: real captures of every Linux mode, per-event and aggregate, against the
workload's own counts (syscalls by role, I/Os, per-thread blocks), the free timing of every Linux
mode, and the record format (C header vs numpy dtype, parser on synthetic records: no root)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, need, ok_workload_bundle
from tracer.base import modes
from tracer.analysis import amplification, attribution, free_timing
from tracer.capture import libbpf
from tracer.capture import manifest as mf
from tracer.capture.backends import BACKENDS
from tracer.capture.runner import run_capture
from tracer.base.errors import ParseError
from tracer.model import load_bundle
from tracer.parse import parse_bytes
from tracer.base.spec import LINUX_MODES, RunSpec

COUNT = 2000
HEADER = REPO / "dscripts" / "linux" / "aiotrace-bpf.h"


def libbpf_missing() -> str | None:
    ok, why = BACKENDS["libbpf"].available()
    return None if ok else why


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """One O_DIRECT capture per (mode, flavour), depth 32, batch 8/8."""
    if libbpf_missing():
        return {}
    tmp = tmp_path_factory.mktemp("libbpf")
    out = {}
    for mode in LINUX_MODES:
        spec = RunSpec(mode=mode, depth=32, batch=8, reap_batch=8, count=COUNT, direct=True,
                       file=str(tmp / "data.dat"), file_size=16 << 20)
        for flavour in ("events", "aggregate"):
            out[(mode, flavour)] = run_capture(spec, BACKENDS["libbpf"], "requested", flavour,
                                               tmp / "runs").bundle
    return out


@pytest.fixture
def bpf():
    missing = libbpf_missing()
    need(missing is None, f"the libbpf backend ({missing})")


def _ok(bundles, key):
    m, summary = ok_workload_bundle(bundles[key], COUNT)
    return m, summary, load_bundle(bundles[key])


def _roles(model) -> dict[str, int]:
    rows = amplification.by_role(model)
    return dict(zip(rows["role"], rows["syscalls"]))


def check_roles(roles: dict[str, int], mode: str, summary: dict) -> None:
    """In-window syscalls by role against the workload's own call counters."""
    if mode == "libaio":  # every io_submit / io_getevents enters the kernel
        assert roles["submit"] == summary["submit_calls"] and roles["wait"] == summary["wait_calls"]
    elif mode == "io_uring":  # liburing may skip the enter of a wait whose CQEs already arrived
        assert roles["submit"] == summary["submit_calls"]
        assert roles["wait"] <= summary["wait_calls"]
    elif mode == "io_uring-sqpoll":  # the SQ thread submits: no submit enters needed
        assert roles["submit"] <= summary["submit_calls"]
    else:  # glibc POSIX AIO: aio_* are library calls; the helper makes one pread64 per I/O
        assert roles["submit"] == roles["wait"] == roles["status"] == roles["result"] == 0
        assert roles["other"] >= COUNT


def check_blocks(model) -> None:
    """Block requests started per thread (traced) against what the kernel charged the threads
    (rusage of the workload's threads, /proc/<tid>/io of glibc's helpers)."""
    rows = attribution.by_thread(model)
    traced = rows["traced_blocks"].fillna(0)
    # 4 KiB O_DIRECT reads; within 1%: a request merged into another (attempt_merge) has no bio event
    assert traced.sum() == pytest.approx(8 * COUNT, rel=0.01)
    top = rows.loc[traced.idxmax()]
    assert top["charged_blocks"] == pytest.approx(top["traced_blocks"], abs=64), rows.to_string()


@pytest.mark.parametrize("mode", LINUX_MODES)
def test_per_event_capture_agrees_with_the_workload(bundles, bpf, mode):
    m, summary, model = _ok(bundles, (mode, "events"))
    assert m["raw"]["trace"] == "raw/events.bin" and m["raw"]["format"] == "libbpf"
    assert m["backend_version"].startswith("aiotrace-bpf ") and m["exit"] == {"workload": 0, "tracer": 0}
    stats = libbpf.stats((bundles[(mode, "events")] / "raw" / "tracer.stdout").read_text())
    ev = model.events
    assert stats["dropped"] == 0 and stats["records"] == len(ev)
    kinds = ev["ev"].value_counts()
    assert kinds["window_start"] == kinds["window_stop"] == 1
    assert all(kinds.get(k, 0) == n for k, n in stats["emitted"].items()), (kinds, stats)
    if mode.startswith("io_uring"):
        assert kinds["job_queue"] == kinds["job_done"] == COUNT
    check_roles(_roles(model), mode, summary)
    if mode.startswith("aio-"):  # one helper pread64 per I/O, at the I/O's offset (id)
        helper = model.syscalls[model.syscalls["helper_io"] & model.syscalls["in_window"]]
        assert len(helper) == COUNT
        assert sorted(helper["id"]) == sorted(model.ios["offset"])
    # O_DIRECT: every read is in a block request (adjacent reads may merge), every request completes
    # (a request merged into another completes with it: within 1%), inside the window: Python may
    # read files it imports after the run
    lo, hi = model.window
    win = ev[(ev["ts_ns"].astype("float64") >= lo) & (ev["ts_ns"].astype("float64") <= hi)]
    started = win[(win["ev"] == "blk_queue") & (win["name"] == "block_io_start")]
    assert len(started) == pytest.approx(COUNT, rel=0.01)
    assert 0.99 * len(started) <= (win["ev"] == "blk_done").sum() <= len(started)
    check_blocks(model)


@pytest.mark.parametrize("mode", LINUX_MODES)
def test_aggregate_capture_agrees_with_the_workload(bundles, bpf, mode):
    m, summary, model = _ok(bundles, (mode, "aggregate"))
    assert m["raw"]["trace"] == "raw/agg.json" and m["raw"]["format"] == "bpftrace"
    assert model.events.empty  # nothing per event left the kernel
    agg = model.aggregates
    maps = set(agg["map"])
    assert {"@syscalls", "@window_syscalls", "@blk_started", "@blk_bytes", "@window_start_ns"} <= maps
    value = agg.set_index("map")["value"]
    assert value["@window_planned_ios"] == value["@window_completed_ios"] == COUNT
    if mode.startswith("io_uring"):  # (submissions are not traced in this flavour: the record has them)
        assert agg[agg["map"] == "@iou_completed"]["value"].sum() == COUNT
        assert "@iou_submitted" not in maps
    check_roles(_roles(model), mode, summary)
    check_blocks(model)


def test_program_costs_count_every_hook_run(bpf, tmp_path, monkeypatch):
    """AIOTRACE_BPF_STATS=1: the consumer times each BPF program; io_uring_complete runs once per
    CQE, and the window uprobes once each."""
    monkeypatch.setenv("AIOTRACE_BPF_STATS", "1")
    spec = RunSpec(mode="io_uring", depth=32, batch=8, reap_batch=8, count=COUNT, direct=False,
                   file=str(tmp_path / "data.dat"), file_size=16 << 20)
    bundle = run_capture(spec, BACKENDS["libbpf"], "requested", "aggregate", tmp_path / "runs").bundle
    assert mf.read_manifest(bundle)["status"] == "ok"
    costs = libbpf.program_costs((bundle / "raw" / "tracer.stdout").read_text())
    assert costs["on_iou_complete"][0] == COUNT and costs["on_iou_complete"][1] > 0
    assert costs["on_window_start"][0] == costs["on_window_stop"][0] == 1
    assert costs["on_sys_enter"][0] >= COUNT // 8  # at least the workload's own io_uring_enter calls
    assert libbpf.program_costs("AIOTRACE-BPF\tready\n") == {}


@pytest.mark.parametrize("mode", LINUX_MODES)
def test_free_timing_has_rows_for_every_linux_mode(bundles, bpf, mode):
    _, _, model = _ok(bundles, (mode, "events"))
    lag = free_timing.per_io(model)
    assert len(lag) >= 0.99 * COUNT  # libaio: a completion merged into another request has no sector
    assert (lag["free_lag_ns"] >= 0).all()
    done, released = free_timing.release_point(model)
    assert (done, released) == modes.release_point(mode, "Linux")
    if mode.startswith("aio-"):
        assert "user-space state" in released


def test_libaio_aggregate_free_lag_histogram_is_computed_in_the_kernel(bundles, bpf):
    _, _, model = _ok(bundles, ("libaio", "aggregate"))
    hist = free_timing.kernel_histogram(model)
    assert hist["count"].sum() >= 0.99 * COUNT
    assert (hist["lo_ns"] < hist["hi_ns"]).all()
    # the per-event capture of the same run shape sees the same order of magnitude
    _, _, per_event = _ok(bundles, ("libaio", "events"))
    p50 = free_timing.percentiles(per_event)["p50"].iloc[0]
    assert free_timing.histogram_percentile(hist, 50) / 16 <= p50 <= free_timing.histogram_percentile(hist, 50) * 16


# ---------------------------------------------------------------------------- no root needed

def test_record_layout_matches_the_c_header():
    text = HEADER.read_text()
    body = re.search(r"struct aiot_record \{(.*?)\};", text, re.S).group(1)
    fields = re.findall(r"__([su])(\d+) (\w+);", body)
    want = [(n, f"<{'u' if s == 'u' else 'i'}{int(b) // 8}") for s, b, n in fields]
    got = [(n, libbpf.RECORD_DTYPE.fields[n][0].str) for n in libbpf.RECORD_DTYPE.names]
    assert got == want
    kinds = re.search(r"enum aiot_kind \{(.*?)\};", text, re.S).group(1)
    names = [k.lower() for k in re.findall(r"AIOT_(\w+) = \d+", kinds) if k != "KINDS"]
    assert tuple(names) == libbpf.KINDS


def _file(rows: list[dict], tail: bytes = b"") -> bytes:
    rec = np.zeros(len(rows), dtype=libbpf.RECORD_DTYPE)
    for i, r in enumerate(rows):
        for k, v in r.items():
            rec[i][k] = v
    head = libbpf.MAGIC + np.array([libbpf.RECORD_DTYPE.itemsize, len(libbpf.KINDS)], "<u4").tobytes()
    return head + rec.tobytes() + tail


def test_parser_turns_records_into_schema_events():
    data = _file([
        {"ts_ns": 10, "pid": 7, "tid": 8, "kind": 0, "sub": 17, "a0": 3, "a1": 99, "a2": 4096, "a3": 8192},
        {"ts_ns": 11, "pid": 7, "tid": 8, "kind": 1, "sub": 17, "ret": -11},
        {"ts_ns": 12, "pid": 7, "tid": 8, "kind": 3, "id": 5, "a0": 1234, "ret": 4096},
        {"ts_ns": 13, "pid": 7, "tid": 0, "kind": 5, "sub": 1, "a1": 2048, "a3": 77, "ret": -10},
        {"ts_ns": 14, "pid": 7, "tid": 8, "kind": 6, "a0": 2000},
    ])
    res = parse_bytes(data, "auto")
    ev = res.events
    assert res.format == "libbpf" and res.lines == 5 and res.unparsed.empty
    assert list(ev["ev"].astype(str)) == ["sys_enter", "sys_exit", "job_done", "blk_done", "window_start"]
    assert list(ev["name"].astype(str)) == ["pread64", "pread64", "io_uring_complete", "block_io_done",
                                            "aiotrace_probe_window_start"]
    assert ev["id"].tolist() == [8192, 0, 5, 77, 0]  # pread64 offset; user_data; request pointer
    assert ev["ret"].tolist()[:3] == [0, -1, 4096] and ev["err"].tolist()[:4] == [0, 11, 0, 10]
    assert ev["line"].tolist() == [1, 2, 3, 4, 5]


def test_parser_counts_a_truncated_record_as_a_loss():
    res = parse_bytes(_file([{"ts_ns": 1, "kind": 0}], tail=b"\x01" * 20), "libbpf")
    assert len(res.events) == 1 and res.losses["dropped_events"] == 1
    assert res.unparsed["reason"].tolist() == ["truncated last record"]
    with pytest.raises(ParseError, match="AIOTBPF1"):
        parse_bytes(b"NOTBPF00" + b"\0" * 8, "libbpf")

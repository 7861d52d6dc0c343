"""Real captures on Linux: every mode in both bpftrace flavours, and strace, each checked against the
workload's own record. The tracer must see exactly the submit and reap calls the workload says it
made (its uprobes), and for io_uring and libaio exactly its io_uring_enter / io_submit /
io_getevents syscalls inside the measurement window."""
from __future__ import annotations

import json
import os
import platform
import re
from collections import Counter
from pathlib import Path

import pytest

from conftest import REPO, ok_workload_bundle, tracing_missing
from tracer.capture.backends import BACKENDS
from tracer.capture.runner import run_capture
from tracer.parse import parse_bytes
from tracer.base.spec import LINUX_MODES, RunSpec

COUNT = 2000
SYSCALL_NR = {name: int(nr) for nr, name in (
    line.split("\t") for line in (REPO / "tracer/data/linux_x86_64_syscalls.tsv").read_text().splitlines()
    if line and not line.startswith(("#", "nr\t")))}
# syscall -> (lower, upper) bounds as sums of the workload's own counters. libaio is exact: every
# io_submit/io_getevents (non-zero timeout) enters the kernel. io_uring: each submit enters, but
# liburing's io_uring_wait_cqes returns without entering when the CQEs arrived meanwhile.
EXACT = {"io_uring": {"io_uring_enter": (("submit_calls",), ("submit_calls", "wait_calls"))},
         "libaio": {"io_submit": (("submit_calls",), ("submit_calls",)),
                    "io_getevents": (("wait_calls",), ("wait_calls",))}}


def check_counts(counts: dict[str, int], mode: str, summary: dict) -> None:
    for name, (low, high) in EXACT.get(mode, {}).items():
        lo, hi = sum(summary[c] for c in low), sum(summary[c] for c in high)
        assert lo <= counts.get(name, 0) <= hi, (name, counts.get(name, 0), lo, hi)


def spec_for(mode: str, tmp: Path) -> RunSpec:
    return RunSpec(mode=mode, depth=32, batch=32, count=COUNT, file=str(tmp / f"{mode}.dat"), file_size=8 << 20)


def _capture(tmp: Path, mode: str, backend: str, flavour: str) -> Path:
    res = run_capture(spec_for(mode, tmp), BACKENDS[backend], "requested", flavour, tmp / "runs")
    return res.bundle


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[tuple[str, str, str], Path]:
    """One capture per (mode, backend, flavour), shared by the tests below (bpftrace starts in ~1-3 s)."""
    if tracing_missing():
        return {}
    tmp = tmp_path_factory.mktemp("captures")
    out = {}
    for mode in LINUX_MODES:
        for flavour in ("events", "aggregate"):
            out[(mode, "bpftrace", flavour)] = _capture(tmp, mode, "bpftrace", flavour)
    for mode in EXACT:
        out[(mode, "strace", "events")] = _capture(tmp, mode, "strace", "events")
    return out


def _get(bundles, tracing, key) -> tuple[dict, dict, Path]:
    m, summary = ok_workload_bundle(bundles[key], COUNT)
    return m, summary, bundles[key]


def agg_maps(path: Path) -> dict[str, object]:
    maps = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            if rec["type"] in ("map", "hist"):
                maps.update(rec["data"])
    return maps


def _sum(map_, nr: int | None = None) -> int:
    """Sum a map keyed by tid or by "tid,nr" (only keys whose nr matches)."""
    if isinstance(map_, int):
        return map_
    return sum(v for k, v in (map_ or {}).items() if nr is None or int(k.split(",")[1]) == nr)


@pytest.mark.parametrize("mode", LINUX_MODES)
def test_per_event_capture_agrees_with_the_workload(bundles, tracing, mode):
    m, summary, bundle = _get(bundles, tracing, (mode, "bpftrace", "events"))
    assert m["raw"] == {"trace": "raw/events.txt", "format": "events", "stderr": "raw/tracer.stderr",
                        "lines": m["raw"]["lines"]}
    assert m["backend_version"].startswith("bpftrace v") and m["exit"] == {"workload": 0, "tracer": 0}
    assert m["os"] == "Linux" and m["kernel"] == platform.release() and m["cpus"] == os.cpu_count()
    assert m["features"]["reap_supported"] is False and "n/a on Linux" in m["features"]["reap_detail"]
    assert isinstance(m["features"]["o_direct"], bool) and m["fs"]["type"] and m["fs"]["path"].endswith(f"{mode}.dat")
    assert m["spec"] == spec_for(mode, Path(m["fs"]["path"]).parent).to_dict() and m["released_at_monotonic_ns"]
    # the parser layer reads the trace; every line must be an event or a known message
    parsed = parse_bytes((bundle / "raw" / "events.txt").read_bytes(), "events")
    assert parsed.unparsed.empty and parsed.lines == m["raw"]["lines"] and parsed.losses["dropped_events"] == 0
    ev = parsed.events
    kinds = ev["ev"].value_counts()
    assert kinds["window_start"] == kinds["window_stop"] == 1
    # the submit probe fires once per batch with a0 = I/Os in it; the reap probe once per I/O
    assert ev.loc[ev["ev"] == "submit", "a0"].sum() == COUNT and kinds["reap"] == COUNT
    if mode in EXACT:  # one submit call per batch (POSIX modes count one aio_read per I/O)
        assert kinds["submit"] == summary["submit_calls"]
    start = int(ev.loc[ev["ev"] == "window_start", "ts_ns"].iloc[0])
    stop = int(ev.loc[ev["ev"] == "window_stop", "ts_ns"].iloc[0])
    enters = ev[(ev["ev"] == "sys_enter") & (ev["ts_ns"] >= start) & (ev["ts_ns"] <= stop)]
    check_counts(Counter(str(n) for n in enters["name"]), mode, summary)


@pytest.mark.parametrize("mode", LINUX_MODES)
def test_aggregate_capture_agrees_with_the_workload(bundles, tracing, mode):
    m, summary, bundle = _get(bundles, tracing, (mode, "bpftrace", "aggregate"))
    assert m["raw"]["trace"] == "raw/agg.json" and m["raw"]["format"] == "bpftrace" and m["flavour"] == "aggregate"
    maps = agg_maps(bundle / "raw" / "agg.json")
    assert _sum(maps["@probe_submitted_ios"]) == COUNT
    if mode in EXACT:
        assert _sum(maps["@probe_submit_calls"]) == summary["submit_calls"]
    assert _sum(maps["@probe_reaped_ios"]) == _sum(maps["@window_completed_ios"]) == COUNT
    check_counts({name: _sum(maps["@window_syscalls"], SYSCALL_NR[name]) for name in EXACT.get(mode, {})},
                 mode, summary)


_STRACE_LINE = re.compile(r"^(\d+)\s+(\d+\.\d+) (\w+)\(")


@pytest.mark.parametrize("mode", sorted(EXACT))
def test_strace_capture_agrees_with_the_workload(bundles, tracing, mode):
    m, summary, bundle = _get(bundles, tracing, (mode, "strace", "events"))
    # strace -ttt stamps are wall clock: move the workload's CLOCK_MONOTONIC window onto it
    offset_s = m["clocks"]["realtime_minus_monotonic_ns"] / 1e9
    start, stop = summary["window"]["start_ns"] / 1e9 + offset_s, summary["window"]["stop_ns"] / 1e9 + offset_s
    calls = Counter()
    for line in (bundle / "raw" / "strace.txt").read_text().splitlines():
        mt = _STRACE_LINE.match(line)
        if mt and start <= float(mt.group(2)) <= stop:
            calls[mt.group(3)] += 1
    check_counts(calls, mode, summary)

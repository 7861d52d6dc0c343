"""The Chrome trace-event export: valid JSON, every flow has both ends, tracks are monotonic,
slices on a thread nest."""
import json
from collections import defaultdict

import pytest

from analysis_frames import make_run
from tracer.view import export_perfetto


def check_structure(doc: dict) -> dict:
    """Assert the structural rules Perfetto's JSON importer relies on; return counts by phase."""
    events = doc["traceEvents"]
    phases = defaultdict(int)
    for e in events:
        phases[e["ph"]] += 1
        assert "pid" in e or e["ph"] == "M"
        if e["ph"] != "M":
            assert isinstance(e["ts"], float) and e["ts"] >= 0
    # flows: each id has exactly one start and one finish, the finish not before the start
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e["ph"] == "f"}
    assert starts.keys() == ends.keys() and len(starts) == phases["s"] == phases["f"]
    assert all(ends[i]["ts"] >= starts[i]["ts"] and ends[i].get("bp") == "e" for i in starts)
    # every track's timestamps are monotonic in file order
    last = {}
    for e in events:
        if e["ph"] == "M":
            continue
        track = (e["ph"] in "be", e.get("pid"), e.get("tid"), e.get("id") if e["ph"] in "be" else None)
        assert e["ts"] >= last.get(track, -1), f"track {track} goes back in time at {e}"
        last[track] = e["ts"]
    # complete slices on one thread nest (no partial overlap)
    by_tid = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            by_tid[e["tid"]].append((e["ts"], -(e["ts"] + e["dur"]), e["ts"] + e["dur"]))
    for tid, slices in by_tid.items():
        stack = []
        for start, _, end in sorted(slices):
            while stack and stack[-1] <= start + 1e-9:
                stack.pop()
            assert not stack or end <= stack[-1] + 1e-9, f"thread {tid}: slice [{start}, {end}] overlaps its parent"
            stack.append(end)
    # async begin/end pair per I/O id and name
    opened = defaultdict(int)
    for e in events:
        if e["ph"] == "b":
            opened[(e["id"], e["name"])] += 1
        elif e["ph"] == "e":
            opened[(e["id"], e["name"])] -= 1
    assert all(v == 0 for v in opened.values())
    return dict(phases)


@pytest.mark.parametrize("mode,threads", [("kevent", "split"), ("reap", "single")])
def test_export_structure(tmp_path, mode, threads):
    m = make_run(mode, threads=threads, n=40, reap_batch=8)
    path = export_perfetto.export(m, tmp_path / "trace.json")
    doc = json.loads(path.read_text())
    phases = check_structure(doc)
    assert phases["s"] == 40  # one flow per I/O
    assert phases["X"] >= len(m.syscalls)
    assert phases["C"] > 0
    flow = next(e for e in doc["traceEvents"] if e["ph"] == "f")
    assert flow["tid"] == (102 if threads == "split" else 101)
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    assert any("reaper" in n for n in names) or threads == "single"
    assert "FreeBSD fixture (not a measurement)" in doc["traceEvents"][0]["args"]["name"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_markers_stay_inside_or_between_syscalls():
    """A submit stamp just before its syscall makes a marker that ends where the syscall starts."""
    m = make_run("kevent", n=4, reap_batch=4)
    m.syscalls.loc[m.syscalls["name"] == "aio_read", "enter_ns"] += 300
    m.syscalls.loc[m.syscalls["name"] == "aio_read", "exit_ns"] += 300
    check_structure({"traceEvents": export_perfetto.trace_events(m)})


def test_submit_and_reap_markers_of_one_thread_do_not_overlap():
    """strace timestamps are coarse (1 us): a reap recorded 300 ns after a submit on the same thread,
    with no syscall boundary between them, must not give two overlapping marker slices."""
    m = make_run("kevent", threads="single", n=8, reap_batch=4)
    ios = m.ios
    ios.loc[1:, "fetched_ns"] = ios["submit_ns"].shift(-1).loc[1:] + 300  # each reap just after the next submit
    ios["fetched_ns"] = ios["fetched_ns"].fillna(ios["submit_ns"] + 5000)
    ios["reap_tid"] = ios["submit_tid"]
    m.syscalls = m.syscalls.iloc[0:0]  # no boundary to clamp against: only the markers themselves
    doc = {"traceEvents": export_perfetto.trace_events(m)}
    check_structure(doc)
    marks = sorted((e["ts"], e["ts"] + e["dur"]) for e in doc["traceEvents"]
                   if e["ph"] == "X" and e["name"] in ("submit", "reap"))
    assert len([s for s, _ in marks]) > len(ios)  # both labels present
    assert all(a_end <= b_start + 1e-9 for (_, a_end), (b_start, _) in zip(marks, marks[1:]))

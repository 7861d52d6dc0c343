"""Syscall amplification on model tables laid out by hand (tests/analysis_frames.py)."""
import pandas as pd
import pytest

from analysis_frames import make_run, typed
from tracer.analysis import amplification
from tracer.base.errors import AnalysisError


def roles(frame):
    return frame.set_index("role")


def test_kevent_pays_one_aio_return_per_io_and_one_kevent_per_reap_batch():
    r = roles(amplification.by_role(make_run("kevent", n=64, reap_batch=8)))
    assert r.at["submit", "per_io"] == 1.0
    assert r.at["wait", "per_io"] == pytest.approx(1 / 8)
    assert r.at["result", "per_io"] == 1.0
    assert r.at["wait", "floor_per_io"] == pytest.approx(1 / 32)  # one kevent can return depth (32) events
    assert r.at["total", "syscalls"] == 64 + 8 + 64 + 3  # the 5 calls outside the window are not counted


def test_reap_mode_needs_no_result_calls():
    r = roles(amplification.by_role(make_run("reap", n=64, reap_batch=16)))
    assert r.at["result", "syscalls"] == 0 and r.at["status", "syscalls"] == 0
    assert r.at["wait", "per_io"] == pytest.approx(1 / 16)
    assert r.at["total", "floor_per_io"] == pytest.approx(1 + 1 / 32)


def test_amplification_falls_with_reap_batch():
    totals = [roles(amplification.by_role(make_run("kevent", n=64, reap_batch=rb))).at["wait", "per_io"]
              for rb in (1, 8, 32)]
    assert totals == sorted(totals, reverse=True) and totals[0] == 1.0


def test_by_thread_counts_every_thread_including_ones_outside_the_thread_record():
    m = make_run("kevent", threads="split")
    helper = typed("syscalls", {"tid": [999] * 4, "pid": [100] * 4, "name": ["pread64"] * 4, "role": ["other"] * 4,
                                "enter_ns": [2e6] * 4, "exit_ns": [2e6] * 4, "dur_ns": [0.0] * 4, "ret": [0] * 4,
                                "err": [0] * 4, "a0": [0] * 4, "a1": [0] * 4, "a2": [0] * 4, "in_window": [True] * 4})
    m.syscalls = pd.concat([m.syscalls, helper], ignore_index=True)
    t = amplification.by_thread(m)
    row = t[t["tid"] == 999].iloc[0]
    assert row["thread"] == "(not in thread record)" and row["syscalls"] == 4
    assert set(t["tid"]) == {101, 102, 999}
    assert t[(t["tid"] == 102) & (t["role"] == "result")]["syscalls"].iloc[0] == 64


def test_by_syscall_names_and_counts():
    s = amplification.by_syscall(make_run("kevent-error", n=32, reap_batch=4)).set_index("name")
    assert s.at["aio_error", "syscalls"] == 32 and s.at["aio_error", "role"] == "status"
    assert s.at["kevent", "per_io"] == pytest.approx(1 / 4)


@pytest.mark.parametrize("mode,os_name,b,depth,expected", [
    ("libaio", "Linux", 8, 4, {"submit": 1 / 8, "wait": 1 / 4, "total": 1 / 8 + 1 / 4}),
    ("io_uring", "Linux", 4, 32, {"submit": 1 / 4, "wait": 0.0, "total": 1 / 4}),
    ("io_uring-sqpoll", "Linux", 1, 1, {"total": 0.0}),
    ("aio-suspend", "Linux", 1, 8, {"other": 1.0, "total": 1.0}),
    ("aio-poll", "FreeBSD", 1, 1, {"status": 1.0, "result": 1.0, "total": 3.0}),
    ("waitcomplete", "FreeBSD", 1, 8, {"wait": 1.0, "result": 0.0, "total": 2.0}),
    ("kevent-error", "FreeBSD", 1, 8, {"total": 1 + 1 / 8 + 2}),
])
def test_theoretical_floor(mode, os_name, b, depth, expected):
    floor = amplification.theoretical_floor(mode, os_name, b, depth)
    for k, v in expected.items():
        assert floor[k] == pytest.approx(v)


def test_lio_submit_floor_is_per_batch():
    assert amplification.theoretical_floor("reap", "FreeBSD", 16, 16, submit="lio")["submit"] == pytest.approx(1 / 16)


def test_missing_syscalls_is_refused_before_any_work():
    m = make_run()
    m.syscalls = typed("syscalls")
    with pytest.raises(AnalysisError, match=r"by_role cannot run on test-kevent-8-reaper: it lacks table 'syscalls'"):
        amplification.by_role(m)


def test_lossy_bundle_flags_every_row():
    out = amplification.by_role(make_run(dropped=17))
    assert out["lossy"].all() and (out["loss_note"] == "17 events dropped").all()
    assert not amplification.by_role(make_run())["lossy"].any()


def test_fixture_rows_say_they_are_not_measurements():
    assert (amplification.by_role(make_run(fixture=True))["source"] == "FreeBSD fixture (not a measurement)").all()
    assert (amplification.by_role(make_run(fixture=False))["source"] == "measured").all()


def test_io_count_counts_ios_of_unknown_op_as_data_ios():
    """A FreeBSD capture has no workload record (the standalone binary writes none), so the model's
    ios come from the trace with op unknown: they are data I/Os, not the final fsync."""
    from analysis_frames import make_run
    from tracer.analysis.amplification import io_count

    m = make_run("kevent", n=16)
    m.ios = m.ios.assign(op=pd.array([pd.NA] * 15 + ["fsync"], dtype="string"))
    assert io_count(m) == 15

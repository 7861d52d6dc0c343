"""Async-free timing and latency on hand-laid model tables."""
import numpy as np
import pandas as pd
import pytest

from analysis_frames import make_run
from tracer.analysis import free_timing, latency
from tracer.base.errors import AnalysisError


def test_reap_frees_at_completion_and_kevent_at_aio_return():
    reap = free_timing.percentiles(make_run("reap")).iloc[0]
    kev = free_timing.percentiles(make_run("kevent")).iloc[0]
    assert reap["p50"] == 0 and reap["max"] == 0
    assert kev["p50"] == 25_000 and kev["release_point"] == "aio_complete (job_done) -> aio_free_entry (job_free)"
    assert kev["limit"] == 256


def test_jobs_alive_counts_overlapping_jobs():
    # submits every 10 us, each alive 75 us (kevent): 8 at once, 3 of them completed; reap frees at
    # completion (50 us): 5 at once, none completed and unreleased
    kev = free_timing.jobs_alive(make_run("kevent"))
    assert kev["alive"].max() == 8 and kev["completed_unreleased"].max() == 3
    alive = free_timing.jobs_alive(make_run("reap"))
    assert alive["alive"].max() == 5 and alive["completed_unreleased"].max() == 0
    assert alive["alive"].iloc[-1] == 0 and (alive["alive"] >= 0).all()


def test_linux_falls_back_to_the_reap_the_workload_observed():
    m = make_run("io_uring", os_name="Linux", fixture=False)
    m.ios["freed_ns"] = np.nan
    lag = free_timing.per_io(m)
    assert (lag["free_lag_ns"] == 25_000).all()
    assert lag["release_point"].iloc[0] == "io_uring_complete (CQE posted) -> CQ head advanced (the workload's reap)"
    assert np.isnan(free_timing.percentiles(m).iloc[0]["limit"])


def test_free_timing_needs_kernel_completion_times():
    m = make_run()
    m.ios["kernel_done_ns"] = np.nan
    with pytest.raises(AnalysisError, match="ios.kernel_done_ns"):
        free_timing.per_io(m)


def test_log2_histogram_buckets():
    h = free_timing.log2_histogram(pd.Series([0, 1, 3, 4, 1000]))
    assert list(zip(h["lo_ns"], h["hi_ns"], h["count"]))[:4] == [(0, 1, 1), (1, 2, 1), (2, 4, 1), (4, 8, 1)]
    assert h["count"].sum() == 5 and h.iloc[-1]["lo_ns"] == 512


def test_latency_stages_and_throughput():
    m = make_run("kevent", n=64)
    lat = latency.percentiles(m).set_index("stage")
    assert list(lat.index) == ["submit", "complete", "observed", "freed"]
    assert lat.at["complete", "p50"] == 50_000 and lat.at["observed", "p99"] == 75_000
    tp = latency.throughput(m).iloc[0]
    assert tp["ios"] == 64 and tp["iops"] == pytest.approx(64 / (m.window[1] - m.window[0]) * 1e9)
    assert tp["cpu_ns_per_io"] == pytest.approx(2 * 3000 / 64)


def test_time_weighted_occupancy():
    alive = pd.DataFrame({"t_ns": [0.0, 10.0, 30.0], "alive": [2, 4, 0], "completed_unreleased": [0, 1, 0]})
    assert free_timing.time_weighted_mean(alive, "alive") == pytest.approx(100 / 30)
    row = free_timing.percentiles(make_run("reap")).iloc[0]
    assert 0 < row["mean_alive"] <= row["max_alive"] == 5 and row["mean_completed_unreleased"] == 0

"""The C workload engine, run for real: every Linux completion mode, one thread and
submitter+reaper, page cache and O_DIRECT, reads verified, writes and write+fsync, and the
per-I/O and per-thread records it writes."""
from __future__ import annotations

import json
import os
import platform

import numpy as np
import pandas as pd
import pytest

from tracer.base.errors import SpecError, WorkloadError
from tracer.base.schema import IO_RECORD_COLUMNS, THREAD_RECORD_COLUMNS
from workloads import driver
from tracer.base.spec import LINUX_MODES, POSIX_MODES, RunSpec

pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="Linux modes")

COUNT = 2000
SUMMARY_KEYS = {"mode", "os", "spec", "pid", "ios", "errors", "verified", "elapsed_ns", "iops", "mb_per_s",
                "latency_ns", "cpu_ns_per_io", "window", "threads", "features", "submit_calls", "wait_calls"}


@pytest.fixture(scope="module")
def datafile(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("data") / "engine.dat")


def spec_for(datafile: str, mode: str, **kw) -> RunSpec:
    base = dict(mode=mode, count=COUNT, depth=32, batch=8, reap_batch=8, file=datafile, file_size=8 << 20)
    base.update(kw)
    return RunSpec(**base)


def check_record(rec_dir, spec: RunSpec, summary: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Columns, dtypes and the invariants every correct run satisfies."""
    ios = pd.read_parquet(rec_dir / "ios.parquet")
    threads = pd.read_parquet(rec_dir / "threads.parquet")
    on_disk = json.loads((rec_dir / "summary.json").read_text())
    assert list(ios.columns) == list(IO_RECORD_COLUMNS)
    assert list(threads.columns) == list(THREAD_RECORD_COLUMNS)
    for col, dtype in IO_RECORD_COLUMNS.items():
        assert str(ios[col].dtype) == str(pd.Series([], dtype=dtype).dtype), col
    assert on_disk["ios"] == summary["ios"] and on_disk["mode"] == spec.mode
    n = spec.count + (1 if spec.op == "write-fsync" else 0)
    assert len(ios) == n == summary["ios"]
    assert np.array_equal(np.sort(ios["id"].to_numpy()), np.arange(n, dtype=np.uint64))
    data = ios[ios["op"] != "fsync"]
    assert (data["op"] == ("read" if spec.op == "read" else "write")).all()
    assert (data["result"] == spec.bs).all() and (data["bytes"] == spec.bs).all()
    assert (data["offset"] % spec.bs == 0).all() and (data["offset"] < spec.file_size).all()
    assert (ios["submit_ns"] > 0).all() and (ios["submit_ns"] <= ios["complete_ns"]).all()
    w = summary["window"]
    assert (ios["submit_ns"] >= w["start_ns"]).all() and (ios["complete_ns"] <= w["stop_ns"]).all()
    own = threads[threads["role"].isin(["both", "submitter", "reaper"])]
    if spec.threads == "split":
        sub = own[own["role"] == "submitter"]["tid"].tolist()
        reap = own[own["role"] == "reaper"]["tid"].tolist()
        assert len(sub) == 1 and len(reap) == 1 and sub != reap
        assert (ios["submit_tid"] == sub[0]).all() and (ios["reap_tid"] == reap[0]).all()
    else:
        assert own["role"].tolist() == ["both"]
        tid = own["tid"].iloc[0]
        assert (ios["submit_tid"] == tid).all() and (ios["reap_tid"] == tid).all()
    assert (own[["inblock", "oublock", "utime_ns", "stime_ns", "nvcsw", "nivcsw"]] >= 0).all().all()
    assert (own["io_read_bytes"] >= 0).all()  # /proc/self/task/<tid>/io was read
    return ios, threads


@pytest.mark.parametrize("direct", [False, True], ids=["pagecache", "direct"])
@pytest.mark.parametrize("threads", ["single", "split"])
@pytest.mark.parametrize("mode", LINUX_MODES)
def test_every_linux_mode_reads_verified_with_records(datafile, tmp_path, mode, threads, direct):
    spec = spec_for(datafile, mode, threads=threads, direct=direct)
    summary = driver.run(spec, record=tmp_path / "rec")
    assert SUMMARY_KEYS <= set(summary)
    assert summary["verified"] is True and summary["errors"] == 0 and summary["verify"] == "data+completion"
    assert summary["iops"] > 0 and summary["latency_ns"]["p50"] <= summary["latency_ns"]["max"]
    assert summary["features"] == {"reap_supported": False, "o_direct": direct}
    check_record(tmp_path / "rec", spec, summary)
    if mode in ("libaio", "io_uring", "io_uring-sqpoll"):
        assert summary["submit_calls"] == COUNT // 8  # one call per batch of 8
    else:
        assert summary["submit_calls"] == COUNT and summary["result_calls"] == COUNT  # aio_read + aio_return each
    if mode == "libaio":
        assert 0 < summary["wait_calls"] <= COUNT // 8  # io_getevents(min_nr=8) reaps >= 8 per call


@pytest.mark.parametrize("threads", ["single", "split"])
@pytest.mark.parametrize("mode", LINUX_MODES)
def test_writes_then_fsync_complete_once_and_keep_the_file_verifiable(datafile, tmp_path, mode, threads):
    spec = spec_for(datafile, mode, op="write-fsync", threads=threads, count=500)
    summary = driver.run(spec, record=tmp_path / "rec")
    assert summary["verified"] and summary["verify"] == "completion"
    ios, _ = check_record(tmp_path / "rec", spec, summary)
    fsync = ios[ios["op"] == "fsync"]
    assert len(fsync) == 1 and fsync["id"].iloc[0] == 500 and fsync["result"].iloc[0] == 0
    # the fsync is submitted only after every write completed
    assert fsync["submit_ns"].iloc[0] >= ios[ios["op"] == "write"]["complete_ns"].max()
    # written blocks carry their offsets: a sequential read of the whole file still verifies
    again = driver.run(spec_for(datafile, "libaio", pattern="seq", count=(8 << 20) // 4096))
    assert again["verified"]


@pytest.mark.parametrize("mode", ["aio-poll", "aio-suspend"])
def test_lio_listio_submits_one_call_per_batch(datafile, mode):
    s = driver.run(spec_for(datafile, mode, submit="lio", op="write", count=1000))
    assert s["verified"] and s["submit_calls"] == 1000 // 8 and s["result_calls"] == 1000


def test_duration_runs_until_the_deadline(datafile):
    s = driver.run(spec_for(datafile, "io_uring", duration=0.2, count=1))
    assert s["ios"] > 1000 and s["verified"]
    assert 0.19e9 <= s["elapsed_ns"] < 1.5e9


def test_sequential_offsets_walk_the_file_in_order(datafile, tmp_path):
    spec = spec_for(datafile, "io_uring", pattern="seq", count=300, batch=1, reap_batch=1, depth=1)
    driver.run(spec, record=tmp_path / "rec")
    ios = pd.read_parquet(tmp_path / "rec" / "ios.parquet").sort_values("id")
    assert ios["offset"].tolist() == [i * 4096 for i in range(300)]


def test_same_seed_same_offsets_other_seed_other_offsets(datafile, tmp_path):
    offs = []
    for i, seed in enumerate([7, 7, 8]):
        driver.run(spec_for(datafile, "libaio", seed=seed, count=200), record=tmp_path / f"r{i}")
        offs.append(pd.read_parquet(tmp_path / f"r{i}" / "ios.parquet").sort_values("id")["offset"].tolist())
    assert offs[0] == offs[1] != offs[2]


def test_corrupt_block_fails_the_run_naming_the_io(tmp_path):
    path = tmp_path / "corrupt.dat"
    spec = RunSpec(mode="io_uring", file=str(path), file_size=1 << 20, count=256, pattern="seq", depth=4)
    driver.run(spec)  # creates the file
    with open(path, "r+b") as f:  # block 3 gets block 0's stamps: a misdirected read
        f.seek(3 * 4096)
        f.write(np.arange(0, 4096, 8, dtype=np.uint64).tobytes())
    with pytest.raises(WorkloadError, match=r"I/O 3 \(read at offset 12288\) returned the data of offset 0"):
        driver.run(spec, record=tmp_path / "rec")
    assert not (tmp_path / "rec").exists()


def test_split_threads_charge_direct_reads_to_the_submitter_for_libaio(datafile):
    s = driver.run(spec_for(datafile, "libaio", threads="split", direct=True))
    roles = {t["role"]: t for t in s["threads"]}
    # linux-notes 3: io_submit issues the block I/O in the submitting thread
    assert roles["submitter"]["inblock"] >= COUNT * 8 * 0.9 and roles["reaper"]["inblock"] == 0


def test_posix_modes_show_the_glibc_helper_thread(datafile):
    s = driver.run(spec_for(datafile, "aio-suspend", threads="split", direct=True))
    helpers = [t for t in s["threads"] if t["role"] == "helper"]
    assert helpers and sum(t["io_read_bytes"] for t in helpers) >= COUNT * 4096 * 0.9


def test_record_dir_that_exists_is_refused_before_any_io(datafile, tmp_path):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "x").write_text("x")
    with pytest.raises(SpecError, match="already exists"):
        driver.run(spec_for(datafile, "libaio"), record=tmp_path / "rec")


def test_lio_is_refused_for_modes_without_it(datafile):
    with pytest.raises(SpecError, match="POSIX AIO modes"):
        driver.run(spec_for(datafile, "libaio", submit="lio"))
    assert set(POSIX_MODES) >= {"aio-poll", "aio-suspend"}


def test_existing_foreign_file_is_refused(tmp_path):
    path = tmp_path / "foreign.dat"
    path.write_bytes(os.urandom(1 << 20))
    with pytest.raises(SpecError, match="not an aiotrace data file"):
        driver.run(RunSpec(mode="libaio", file=str(path), file_size=1 << 20, count=10))

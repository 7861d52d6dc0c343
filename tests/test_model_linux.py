"""The model from Linux traces: pairing of entries and exits, io_uring_enter roles, the window,
io_uring user_data reused across I/Os, a bundle built by hand the way capture writes it, strace."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tracer.model import build_model, load_bundle, model_from_trace
from tracer.parse import parse_bytes
from tracer.base.schema import HEADER_LINE, MODEL_TABLES

PID, T = 50, 10


def E(ts, ev, name, id_=0, a0=0, a1=0, a2=0, ret=0, err=0, tid=T):
    return f"E\t{ts}\t{PID}\t{tid}\t{ev}\t{name}\t{id_}\t{a0}\t{a1}\t{a2}\t{ret}\t{err}"


def io_uring_trace() -> str:
    rows = [
        E(100, "sys_exit", "nr0", ret=3),  # in progress at attach: an exit without entry
        E(150, "sync", "aiotrace_probe_sync", a0=140),
        E(200, "window_start", "aiotrace_probe_window_start", a0=3),
        E(300, "sys_enter", "nr426", a0=4, a1=2, a2=0),  # submit 2
        E(310, "job_queue", "io_uring_submit_req", 0xAA, -5, 22),
        E(320, "job_queue", "io_uring_submit_req", 0xBB, -6, 22),
        E(400, "sys_exit", "nr426", ret=2),
        E(500, "submit", "aiotrace_probe_submit", 0, 2),
        E(600, "job_done", "io_uring_complete", 0xAA, ret=4096),
        E(700, "sys_enter", "nr426", a0=4, a1=0, a2=1),  # wait only
        E(650, "job_done", "io_uring_complete", 0xBB, ret=4096),
        E(800, "sys_exit", "nr426", ret=0),
        E(810, "reap", "aiotrace_probe_reap", 0, 2, ret=4096),
        E(820, "reap", "aiotrace_probe_reap", 1, 2, ret=4096),
        E(900, "sys_enter", "nr426", a0=4, a1=1, a2=1),  # submit 1, the user_data 0xAA again
        E(910, "job_queue", "io_uring_submit_req", 0xAA, -5, 22),
        E(950, "job_done", "io_uring_complete", 0xAA, ret=-1, err=5),
        E(990, "sys_exit", "nr426", ret=1),
        E(995, "submit", "aiotrace_probe_submit", 2, 1),
        E(1000, "reap", "aiotrace_probe_reap", 2, 1, ret=-5),
        E(1100, "window_stop", "aiotrace_probe_window_stop", a0=3),
        E(1200, "sys_enter", "nr231", a0=0),  # exit_group: never returns
    ]
    return "Attaching 13 probes...\n" + HEADER_LINE + "\n" + "\n".join(rows) + "\n\n\n"


def test_io_uring_model_from_event_lines():
    result = parse_bytes(io_uring_trace().encode(), "events")
    m = build_model(result, {"os": "Linux", "workload_pid": PID, "spec": {"mode": "io_uring"}}, {}, None, None)
    sc = m.syscalls
    assert list(sc.columns[:len(MODEL_TABLES["syscalls"])]) == list(MODEL_TABLES["syscalls"])
    ring = sc[sc["name"] == "io_uring_enter"]
    assert ring["role"].tolist() == ["submit", "wait", "submit"]
    assert ring["dur_ns"].tolist() == [100.0, 100.0, 90.0] and ring["ret"].tolist() == [2, 0, 1]
    assert ring["in_window"].all()
    read = sc[sc["name"] == "read"].iloc[0]
    assert np.isnan(read["enter_ns"]) and read["exit_ns"] == 100 and not read["in_window"]
    ex = sc[sc["name"] == "exit_group"].iloc[0]
    assert np.isnan(ex["exit_ns"]) and pd.isna(ex["ret"]) and not ex["in_window"]
    assert m.window == (200.0, 1100.0)
    ios = m.ios.set_index("id")
    assert ios.index.tolist() == [0, 1, 2]
    assert ios["kernel_done_ns"].tolist() == [600.0, 650.0, 950.0]  # 0xAA's second life is I/O 2
    assert ios["fetched_ns"].tolist() == [810.0, 820.0, 1000.0] and ios["submit_ns"].tolist() == [500.0, 500.0, 995.0]
    assert ios["result"].tolist() == [4096, 4096, -5]
    assert m.threads["tid"].tolist() == [T]


def _bundle(tmp_path, trace: str, raw_name: str, fmt: str, backend: str, extra_manifest=None):
    b = tmp_path / "run"
    (b / "raw").mkdir(parents=True)
    (b / "record").mkdir()
    (b / "raw" / raw_name).write_text(trace)
    (b / "raw" / "tracer.stderr").write_text(
        "ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK for bpftrace.\nLost 7 events\n")
    manifest = {"schema": "aiotrace.manifest/1", "os": "Linux", "backend": backend, "workload_pid": PID,
                "spec": {"mode": "io_uring"}, "raw": {"trace": f"raw/{raw_name}", "format": fmt},
                "losses": {"dropped_events": 0, "messages": []}, "fixture": False, **(extra_manifest or {})}
    (b / "manifest.json").write_text(json.dumps(manifest))
    rec = pd.DataFrame({"id": [0, 1, 2], "op": ["read"] * 3, "offset": [0, 4096, 8192], "bytes": [4096] * 3,
                        "submit_ns": [290, 290, 890], "complete_ns": [805, 815, 999], "result": [4096, 4096, -5],
                        "submit_tid": [T] * 3, "reap_tid": [T] * 3})
    rec.astype({"id": "uint64", "submit_ns": "uint64", "complete_ns": "uint64"}).to_parquet(b / "record" / "ios.parquet")
    th = pd.DataFrame({"tid": [T, 11], "name": ["main", "helper"], "role": ["both", "other"], "inblock": [8, 0],
                       "oublock": [0, 0], "utime_ns": [1, 1], "stime_ns": [2, 2], "nvcsw": [0, 0], "nivcsw": [0, 0],
                       "io_read_bytes": [4096, 0], "io_write_bytes": [0, 0]})
    th.to_parquet(b / "record" / "threads.parquet")
    (b / "record" / "summary.json").write_text(json.dumps({"pid": PID, "window": {"start_ns": 0, "stop_ns": 10}}))
    return b


def test_bundle_joins_the_record_and_counts_stderr_losses(tmp_path):
    m = load_bundle(_bundle(tmp_path, io_uring_trace(), "events.txt", "events", "bpftrace"))
    assert m.ios["submit_ns"].tolist() == [290.0, 290.0, 890.0]  # the record's, same clock on Linux
    assert m.ios["kernel_done_ns"].tolist() == [600.0, 650.0, 950.0]
    assert m.losses == {"dropped_events": 7, "unparsed_lines": 0, "messages": ["Lost 7 events"]}
    assert m.threads["tid"].tolist() == [T, 11] and m.threads.loc[0, "inblock"] == 8
    assert m.has("ios", "kernel_done_ns") and not m.has("ios", "freed_ns") and m.has("threads", "inblock")
    assert m.window == (200.0, 1100.0)  # the probe events win over the summary's window


def test_strace_bundle_uses_the_realtime_offset(tmp_path):
    trace = ("50 1700000000.000001 io_submit(0x7f00, 1, [{aio_data=0}]) = 1 <0.000010>\n"
             "51 1700000000.000020 io_getevents(0x7f00, 1, 8, [{data=0, res=4096}], NULL) = 1 <0.000005>\n"
             "51 1700000000.000030 pread64(3</f>, \"\"..., 4096, 0) = 4096 <0.000002>\n")
    b = _bundle(tmp_path, trace, "strace.txt", "strace", "strace",
                {"clocks": {"realtime_minus_monotonic_ns": 1_700_000_000_000_000_000 - 1_000_000},
                 "spec": {"mode": "aio-suspend"}})
    m = load_bundle(b)
    sc = m.syscalls.set_index("name")
    assert sc.loc["io_submit", "role"] == "submit" and sc.loc["io_getevents", "role"] == "wait"
    assert sc.loc["io_submit", "enter_ns"] == 1_001_000 and sc.loc["io_submit", "dur_ns"] == 10_000
    assert sc.loc["pread64", "helper_io"] and sc.loc["pread64", "role"] == "other"
    assert m.losses["dropped_events"] == 0  # tracer.stderr is only read for bpftrace/dtrace


def test_model_from_a_bare_trace_file(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text(io_uring_trace())
    m = model_from_trace(p)
    assert m.format == "events" and len(m.ios) == 3 and (tmp_path / "t.txt.aiotrace-cache").is_dir()

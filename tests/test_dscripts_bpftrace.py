"""The Linux bpftrace scripts, run for real (root + tracefs + bpftrace: the `tracing` fixture).

Each run starts a process held at the start handshake (tracer/base/spec.py READY_LINE), attaches
bpftrace by pid with the exact command line of tracer.dscripts.bpftrace_argv, waits for the
script's ready line, releases the process and reads everything bpftrace printed. Every line
must be accounted for: an event line with the schema's field count and a known kind, the header,
bpftrace's "Attaching N probes..." banner, or a blank line (bpftrace prints those at exit).

Targets: a fixture shared object built here from tests/data/dscripts_probe_fixture.c (exports
the workload's probe functions and does a known number of O_DIRECT preads and io_uring reads), and
the real workload (workloads._engine) once it is built.
"""
from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import REPO, need
from tracer import dscripts
from tracer.base import schema
from tracer.data import linux_syscall_names
from tracer.base.spec import READY_LINE, RELEASE_WORD, RunSpec

FIXTURE_C = REPO / "tests" / "data" / "dscripts_probe_fixture.c"
N_PREADS = 40
N_URING = 8
SYNC_NS = 123456789012345

DRIVER = """
import ctypes, os, sys
lib = ctypes.CDLL(sys.argv[1])
print("AIOTRACE-READY pid=%d" % os.getpid(), flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit(3)
rc = lib.fixture_run(sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4]), ctypes.c_uint64(int(sys.argv[5])))
print("fixture rc=%d" % rc, flush=True)
sys.exit(0 if rc in (0, 1) else 4)
"""


@dataclass
class TracedRun:
    stdout: list[str]
    stderr: str
    target_stdout: str
    tracer_rc: int
    target_rc: int
    events: list[list[str]] = field(default_factory=list)

    def of(self, ev: str, name: str | None = None) -> list[list[str]]:
        return [e for e in self.events if e[4] == ev and (name is None or e[5] == name)]


def _reader(stream, sink: queue.Queue) -> None:
    for line in stream:
        sink.put(line)
    sink.put(None)


def run_traced(flavour: str, target_argv: list[str], probe_object: Path, timeout_s: float = 30.0) -> TracedRun:
    """Start target_argv (held at READY), attach bpftrace, release, collect. Nothing left running."""
    target = subprocess.Popen(target_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    tracer = None
    try:
        ready = target.stdout.readline()
        prefix = READY_LINE.split("{")[0]
        assert ready.startswith(prefix), f"target did not report ready: {ready!r} {target.stderr.read()!r}"
        pid = int(ready.strip()[len(prefix):])
        argv = dscripts.bpftrace_argv(flavour, pid, probe_object)
        env = {**os.environ, **dscripts.bpftrace_env(flavour)}
        tracer = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_reader, args=(tracer.stdout, lines), daemon=True).start()
        out: list[str] = []
        deadline = time.monotonic() + timeout_s
        while True:  # wait for the ready line before releasing the target
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"bpftrace ended before it was ready: {tracer.stderr.read()}"
            out.append(line.rstrip("\n"))
            if dscripts.is_ready_line("Linux", flavour, line):
                break
        target.stdin.write(RELEASE_WORD + "\n")
        target.stdin.flush()
        target_out, _ = target.communicate(timeout=timeout_s)
        tracer.wait(timeout=timeout_s)  # -p: bpftrace exits by itself when the pid exits
        while (line := lines.get(timeout=timeout_s)) is not None:
            out.append(line.rstrip("\n"))
        return TracedRun(out, tracer.stderr.read(), target_out, tracer.returncode, target.returncode)
    finally:
        for proc in (target, tracer):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def account_event_lines(run: TracedRun) -> None:
    """Every stdout line is an event (right field count, known kind, integer columns), the header,
    the attach banner or blank; fills run.events."""
    for line in run.stdout:
        if line.startswith(schema.EVENT_TAG + "\t"):
            fields = line.split("\t")
            assert len(fields) == 1 + len(schema.EVENT_FIELDS), line
            assert fields[4] in schema.EVENT_KINDS, line
            for f, text in zip(schema.EVENT_FIELDS, fields[1:]):
                if f.dtype != "string":
                    int(text)
            run.events.append(fields)
        else:
            assert line == schema.HEADER_LINE or line == "" or (line.startswith("Attaching ") and line.endswith(" probes...")) \
                or re.fullmatch(r"@emitted\[\w+\]: \d+", line), f"unaccounted line: {line!r}"
    assert run.stdout.count(schema.HEADER_LINE) == 1


@pytest.fixture(scope="module")
def fixture_object(tmp_path_factory) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    need(cc is not None, "a C compiler (gcc)")
    need(Path("/usr/include/liburing.h").exists() and Path("/usr/include/x86_64-linux-gnu/sys/sdt.h").exists()
         or Path("/usr/include/sys/sdt.h").exists(), "liburing-dev and systemtap-sdt-dev headers")
    out = tmp_path_factory.mktemp("fixture") / "libaiotrace_fixture.so"
    subprocess.run([cc, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(out), str(FIXTURE_C), "-luring"], check=True)
    return out


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "fixture.dat"
    with open(path, "wb") as f:
        f.write(os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
    return path


def fixture_argv(so: Path, data: Path) -> list[str]:
    return [sys.executable, "-c", DRIVER, str(so), str(data), str(N_PREADS), str(N_URING), str(SYNC_NS)]


def test_events_script_traces_syscalls_io_uring_block_and_probe_functions(tracing, fixture_object, data_file):
    run = run_traced("events", fixture_argv(fixture_object, data_file), fixture_object)
    assert run.target_rc == 0 and run.tracer_rc == 0, run.stderr
    account_event_lines(run)
    assert "Lost" not in run.stderr
    pid = run.events[0][2]
    nr = {name: n for n, name in linux_syscall_names().items()}

    # Workload probes: one window, one sync carrying the workload's value, a submit and reap per I/O.
    (start,), (stop,), (sync,) = run.of("window_start"), run.of("window_stop"), run.of("sync")
    assert start[7] == stop[7] == str(N_PREADS + N_URING) and sync[7] == str(SYNC_NS)
    assert len(run.of("submit")) == len(run.of("reap")) == N_PREADS + N_URING
    assert [int(e[6]) for e in run.of("reap")] == list(range(N_PREADS + N_URING))
    assert all(e[10] == "4096" for e in run.of("reap")), "every read returns 4096 bytes"
    assert {e[7] for e in run.of("submit")} == {"1"}, "uint32 count is masked to 32 bits"

    # Syscalls inside the window, by number: the preads, one io_uring_enter per io_uring read, close(-1).
    t0, t1 = int(start[1]), int(stop[1])
    inside = [e for e in run.events if t0 <= int(e[1]) <= t1 and e[4] in ("sys_enter", "sys_exit")]
    enters = [e[5] for e in inside if e[4] == "sys_enter"]
    assert enters.count(f"nr{nr['pread64']}") == N_PREADS
    assert enters.count(f"nr{nr['io_uring_enter']}") >= N_URING
    bad_close = [e for e in inside if e[4] == "sys_exit" and e[5] == f"nr{nr['close']}" and e[10] == "-1"]
    assert len(bad_close) == 1 and bad_close[0][11] == "9", "close(-1) -> ret -1, errno EBADF"
    assert all(e[2] == pid for e in run.events if e[4] != "blk_done"), "only the traced pid"

    # io_uring requests: queued and completed with the user_data the fixture set.
    queued = {int(e[6]) for e in run.of("job_queue", "io_uring_submit_req")}
    done = {int(e[6]): e for e in run.of("job_done", "io_uring_complete")}
    assert queued == set(done) == set(range(1000, 1000 + N_URING))
    assert all(e[10] == "4096" and e[11] == "0" for e in done.values())

    # Block requests: O_DIRECT reads start in the traced thread, complete joined by (dev, sector).
    if "fixture rc=0" in run.target_stdout:
        blk_q, blk_d = run.of("blk_queue"), run.of("blk_done")
        assert len(blk_q) >= N_PREADS + N_URING
        assert {(e[7], e[8]) for e in blk_d} <= {(e[7], e[8]) for e in blk_q}
        # Completions are joined by (dev, sector). In this mixed pread + io_uring run some 10-20% of
        # the started requests show no joined completion (not seen with fio alone; cause not yet
        # found, see the script's TRAPS), so this checks the join, not completeness.
        assert 0 < sum(int(e[9]) for e in blk_d) <= sum(int(e[9]) for e in blk_q)

        assert all(e[3] == start[3] for e in blk_q), "block I/O attributed to the submitting thread"
    # The exit trailer counts, per kind, the lines the kernel side printed; any shortfall in what
    # arrived is a loss the parser reports (bpftrace itself does not).
    from tracer.parse import messages
    from tracer.parse.events import parse_events
    data = ("\n".join(run.stdout) + "\n").encode()
    emitted = messages.emitted_counts(data)
    arrived = {}
    for e in run.events:
        arrived[e[4]] = arrived.get(e[4], 0) + 1
    assert set(arrived) <= set(emitted) and all(arrived[k] <= emitted[k] for k in arrived), (emitted, arrived)
    assert emitted["reap"] == N_PREADS + N_URING
    parsed = parse_events(data)
    assert parsed.losses["dropped_events"] == sum(emitted[k] - arrived.get(k, 0) for k in emitted)


def test_aggregate_script_counts_match_the_fixture(tracing, fixture_object, data_file):
    run = run_traced("aggregate", fixture_argv(fixture_object, data_file), fixture_object)
    assert run.target_rc == 0 and run.tracer_rc == 0, run.stderr
    maps: dict[str, object] = {}
    for line in run.stdout:
        if not line.strip():
            continue  # bpftrace -f json prints bare blank lines at exit
        rec = json.loads(line)
        assert rec["type"] in ("attached_probes", "printf", "map", "hist"), rec
        if rec["type"] in ("map", "hist"):
            maps.update(rec["data"])
    nr = {name: n for n, name in linux_syscall_names().items()}
    tid_pread = {k: v for k, v in maps["@window_syscalls"].items() if k.endswith(f",{nr['pread64']}")}
    assert sum(tid_pread.values()) == N_PREADS and len(tid_pread) == 1
    assert sum(maps["@probe_submit_calls"].values()) == N_PREADS + N_URING
    assert sum(maps["@probe_submitted_ios"].values()) == N_PREADS + N_URING
    assert sum(maps["@probe_reaped_ios"].values()) == N_PREADS + N_URING
    assert maps["@window_planned_ios"] == maps["@window_completed_ios"] == N_PREADS + N_URING
    assert maps["@sync_workload_ns"] == SYNC_NS
    assert sum(maps["@iou_submitted"].values()) == sum(maps["@iou_completed"].values()) == N_URING
    assert sum(b["count"] for b in maps["@iou_ns"]) == N_URING
    assert sum(maps["@syscall_errors"].values()) >= 1  # close(-1)
    pread_hist = maps["@syscall_ns"][str(nr["pread64"])]
    assert sum(b["count"] for b in pread_hist) == N_PREADS
    assert all(b["min"] <= b["max"] for b in pread_hist)


def _engine_object() -> Path | None:
    """The engine extension, once both it and `python -m workloads` exist."""
    spec = importlib.util.find_spec("workloads._engine")
    if importlib.util.find_spec("workloads.__main__") is None:
        return None
    return Path(spec.origin).resolve() if spec and spec.origin else None


@pytest.mark.parametrize("flavour", ["events", "aggregate"])
def test_scripts_trace_the_real_workload_held_by_pid(tracing, flavour, tmp_path):
    engine = _engine_object()
    need(engine is not None, "the workload engine (workloads._engine, built by pip install -e .)")
    spec = RunSpec(mode="io_uring", count=2000, depth=16, batch=8, reap_batch=4, file=str(tmp_path / "w.dat"),
                   file_size=4 << 20)
    argv = [sys.executable, "-m", "workloads", *spec.to_args(), "--hold", "--json"]
    run = run_traced(flavour, argv, engine)
    assert run.target_rc == 0 and run.tracer_rc == 0, (run.stderr, run.target_stdout[-2000:])
    summary = json.loads(run.target_stdout[run.target_stdout.index("{"):])
    nr = {name: n for n, name in linux_syscall_names().items()}
    if flavour == "events":
        account_event_lines(run)
        assert len(run.of("reap")) == summary["ios"] == spec.count
        assert sum(int(e[7]) for e in run.of("submit")) == spec.count
        assert len(run.of("window_start")) == len(run.of("window_stop")) == 1
        assert len(run.of("job_done", "io_uring_complete")) >= spec.count
    else:
        maps = {}
        for line in run.stdout:
            if line.strip():
                rec = json.loads(line)
                if rec["type"] in ("map", "hist"):
                    maps.update(rec["data"])
        assert sum(maps["@probe_reaped_ios"].values()) == summary["ios"] == spec.count
        enters = sum(v for k, v in maps["@window_syscalls"].items() if k.endswith(f",{nr['io_uring_enter']}"))
        assert enters >= 1

"""Capture orchestration and its faults, for real: a real strace attached to a real process that
speaks the workload's handshake (a small stand-in written here, so these tests do not depend on
the C engine), Ctrl-C delivered to a real `aiotrace capture` process, a crashing workload, a
tracer that is missing, refused, or killed mid-run. Every case must keep a bundle with a status."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, need, tracing_missing
from tracer.capture import manifest as mf
from tracer.capture.backends import BACKENDS, Backend
from tracer.capture.bundle import PARTIAL_SUFFIX
from tracer.capture.runner import Timeouts, run_capture
from tracer.base.spec import RunSpec

# Speaks tracer/base/spec.py's handshake: READY line, then waits for the release word. STANDIN selects
# a behaviour; --count N makes N getppid() calls, so a trace must hold exactly N of them.
STANDIN = r'''
import json, os, sys, time
args = sys.argv[1:]
count = int(args[args.index("--count") + 1])
if "--hold" in args:
    print("AIOTRACE-READY pid=%d" % os.getpid(), flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit(3)
behaviour = os.environ.get("STANDIN", "ok")
if behaviour == "crash":
    sys.stderr.write("stand-in: crashing on purpose\n"); sys.stderr.flush()
    os.kill(os.getpid(), 9)
if behaviour == "sleep":
    print("stand-in: released", flush=True)
    time.sleep(120)
for _ in range(count):
    os.getppid()
if "--json" in args:
    print(json.dumps({"pid": os.getpid(), "submit_calls": count, "wait_calls": 0}), flush=True)
else:  # like the standalone C binary (workloads/main.c): one key=value summary line
    print("mode=stand-in ios=%d submit_calls=%d wait_calls=0 pid=%d" % (count, count, os.getpid()), flush=True)
sys.exit(int(os.environ.get("STANDIN_EXIT", "0")))
'''


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("standin") / "standin.py"
    path.write_text(STANDIN)
    path.chmod(0o755)
    return path


@pytest.fixture
def standin_env(standin, monkeypatch):
    monkeypatch.setenv("AIOTRACE_WORKLOAD_CMD", f"{sys.executable} {standin}")
    return standin


def _spec(count=200, **kw) -> RunSpec:
    return RunSpec(mode="io_uring", count=count, **kw)


def _only_bundle(out: Path) -> Path:
    entries = list(out.iterdir())
    assert len(entries) == 1 and not entries[0].name.endswith(PARTIAL_SUFFIX), entries
    return entries[0]


def _cli(args, env=None, **kw):
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "tracer.cli", "capture", *args], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_strace_attaches_before_release_and_sees_every_call(strace_bin, standin_env, tmp_path):
    res = run_capture(_spec(count=500), BACKENDS["strace"], "requested", "events", tmp_path)
    assert res.status == "ok", res.reason
    bundle = _only_bundle(tmp_path)
    m = mf.read_manifest(bundle)
    trace = (bundle / m["raw"]["trace"]).read_text().splitlines()
    assert sum(" getppid()" in line for line in trace) == 500  # nothing ran before the tracer attached
    assert m["exit"] == {"workload": 0, "tracer": 0} and m["attach"] == "pid"
    assert m["command"][1][:2] == [strace_bin, "-f"] and m["command"][1][-2:] == ["-p", str(m["workload_pid"])]
    assert m["raw"]["lines"] == len(trace) and m["losses"]["messages"] == []
    assert json.loads((bundle / "record" / "summary.json").read_text())["submit_calls"] == 500


def test_crashed_workload_keeps_bundle_with_reason(strace_bin, standin_env, tmp_path):
    proc = _cli(["--backend", "strace", "--mode", "io_uring", "--count", "10", "--out", str(tmp_path)],
                env={"STANDIN": "crash"})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    bundle = _only_bundle(tmp_path)
    assert out == "" and f"(bundle kept: {bundle})" in err  # a failed capture names its bundle only in the error
    assert len(err.strip().splitlines()[-1:]) == 1
    m = mf.read_manifest(bundle)
    assert m["status"] == "failed" and "SIGKILL" in m["reason"] and m["exit"]["workload"] == -9
    assert "crashing on purpose" in m["reason"]
    assert "aiotrace: error: capture failed" in err


def test_missing_tracer_keeps_bundle_and_stops_the_held_workload(standin_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AIOTRACE_STRACE", str(tmp_path / "no-such-strace"))
    res = run_capture(_spec(), BACKENDS["strace"], "requested", "events", tmp_path / "runs")
    assert res.status == "failed" and "cannot start strace" in res.reason and "No such file" in res.reason
    m = mf.read_manifest(_only_bundle(tmp_path / "runs"))
    assert m["exit"]["tracer"] is None and m["exit"]["workload"] == 3  # EOF at the handshake: no I/O done
    assert m["released_at_monotonic_ns"] is None


def test_bpf_refused_keeps_bundle_with_bpftrace_error(tracing, tmp_path):
    """bpftrace really run without CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN (dropped from the bounding set):
    the kernel refuses its maps; the bundle says so and the held workload does no I/O."""
    cmd = ["setpriv", "--bounding-set=-bpf,-perfmon,-sys_admin", sys.executable, "-m", "tracer.cli",
           "capture", "--backend", "bpftrace", "--mode", "io_uring", "--count", "10", "--file-size", "1M",
           "--file", str(tmp_path / "w.dat"), "--out", str(tmp_path / "runs")]
    proc = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    bundle = _only_bundle(tmp_path / "runs")
    assert proc.stdout == "" and f"(bundle kept: {bundle})" in proc.stderr
    m = mf.read_manifest(bundle)
    assert m["status"] == "failed" and "bpftrace exited with status 1 before attaching" in m["reason"]
    # which error depends on what bpftrace tries first (BTF, maps): its ERROR line is the reason
    assert "ERROR:" in m["reason"] and "RLIMIT_MEMLOCK" not in m["reason"] and m["exit"]["workload"] == 3


def _wait_for(predicate, timeout_s=30.0, what=""):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _children(pid: int) -> dict[int, str]:
    kids = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        if ppid == pid:
            kids[int(stat.parent.name)] = comm
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_stops_workload_and_tracer_and_keeps_interrupted_bundle(strace_bin, standin_env, tmp_path, sig):
    proc = _cli(["--backend", "strace", "--mode", "io_uring", "--out", str(tmp_path)], env={"STANDIN": "sleep"})
    _wait_for(lambda: any((p / "raw" / "workload.stdout").exists() and "released" in
                          (p / "raw" / "workload.stdout").read_text() for p in tmp_path.iterdir()),
              what="the stand-in to be released")
    # while it runs, only the hidden partial directory exists
    assert [p.name.endswith(PARTIAL_SUFFIX) for p in tmp_path.iterdir()] == [True]
    kids = _children(proc.pid)
    assert sorted(kids.values()) == ["python3", "strace"] or len(kids) == 2, kids
    proc.send_signal(sig)
    time.sleep(0.01)
    proc.send_signal(sig)  # an impatient second Ctrl-C must not lose the bundle
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    bundle = _only_bundle(tmp_path)
    assert out.strip().splitlines()[-1] == str(bundle)
    m = mf.read_manifest(bundle)
    assert m["status"] == "interrupted" and f"received {sig.name} while the workload ran" in m["reason"]
    assert m["exit"]["workload"] != 0 and m["exit"]["tracer"] is not None
    assert not any(_alive(pid) for pid in kids)  # nothing left running


def test_tracer_killed_mid_run_fails_the_capture_and_stops_the_workload(strace_bin, standin_env, tmp_path):
    proc = _cli(["--backend", "strace", "--mode", "io_uring", "--out", str(tmp_path)], env={"STANDIN": "sleep"})
    _wait_for(lambda: any((p / "raw" / "workload.stdout").exists() and "released" in
                          (p / "raw" / "workload.stdout").read_text() for p in tmp_path.iterdir()),
              what="the stand-in to be released")
    kids = _children(proc.pid)
    strace_pid = next(pid for pid, comm in kids.items() if comm == "strace")
    t0 = time.monotonic()
    os.kill(strace_pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 30  # did not wait out the stand-in's 120 s sleep
    assert proc.returncode == 2
    m = mf.read_manifest(_only_bundle(tmp_path))
    assert m["status"] == "failed" and "strace was killed by SIGKILL while the workload ran" in m["reason"]
    assert not any(_alive(pid) for pid in kids)


def _silent_tracer(tmp_path) -> Path:
    fake = tmp_path / "silent-tracer"  # answers -V, then never reports an attachment
    fake.write_text('#!/bin/sh\n[ "$1" = -V ] && { echo "silent-tracer 1.0"; exit 0; }\nexec sleep 30\n')
    fake.chmod(0o755)
    return fake


def test_tracer_that_never_attaches_times_out_and_the_workload_does_no_io(standin_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AIOTRACE_STRACE", str(_silent_tracer(tmp_path)))
    res = run_capture(_spec(), BACKENDS["strace"], "requested", "events", tmp_path / "runs",
                      timeouts=Timeouts(attach_s=1.0, stop_s=(1.0, 1.0, 1.0)))
    assert res.status == "failed" and "did not report its probes attached within 1 s" in res.reason
    m = res.manifest
    assert m["exit"]["workload"] == 3 and m["released_at_monotonic_ns"] is None  # EOF at the handshake
    assert m["exit"]["tracer"] == -signal.SIGINT and m["backend_version"] == "silent-tracer 1.0"


def test_ctrl_c_while_attaching_never_releases_the_workload(standin_env, tmp_path):
    proc = _cli(["--backend", "strace", "--mode", "io_uring", "--out", str(tmp_path / "runs")],
                env={"AIOTRACE_STRACE": str(_silent_tracer(tmp_path))})
    _wait_for(lambda: any((p / "raw" / "tracer.stderr").exists() for p in (tmp_path / "runs").glob(".*")),
              what="the tracer to start")
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    m = mf.read_manifest(_only_bundle(tmp_path / "runs"))
    assert m["status"] == "interrupted" and m["reason"] == "capture received SIGINT before the workload was released"
    assert m["exit"]["workload"] == 3 and m["released_at_monotonic_ns"] is None


def _wrapping_strace(tmp_path) -> Backend:
    """The FreeBSD ("wrap") flow exercised on Linux: strace starts the workload itself, like
    ktrace/truss/dtrace -c do, and a post-processor turns its file into the trace (like kdump)."""
    def build(b, ctx):
        return [[b.program(), "-f", "-o", str(ctx.raw_dir / "strace.out"), *ctx.workload_argv],
                ["sed", "-n", "p", str(ctx.raw_dir / "strace.out")]]
    return dataclasses.replace(BACKENDS["strace"], attach="wrap", build=build)


@pytest.mark.parametrize("exit_code", [0, 1])
def test_wrap_backends_start_the_workload_and_post_process(strace_bin, standin, tmp_path, monkeypatch, exit_code):
    monkeypatch.setenv("STANDIN_EXIT", str(exit_code))
    workload = [sys.executable, str(standin), "--count", "300"]
    res = run_capture(_spec(), _wrapping_strace(tmp_path), "requested", "events", tmp_path / "runs",
                      workload_argv=workload)
    m = res.manifest
    assert m["attach"] == "wrap" and m["command"][0][-len(workload):] == workload and m["command"][1][0] == "sed"
    trace = (res.bundle / m["raw"]["trace"]).read_text()
    assert trace.count(" getppid()") == 300 and m["exit"]["post"] == [0]
    summary = json.loads((res.bundle / "record" / "summary.json").read_text())
    assert summary == {"mode": "stand-in", "ios": 300, "submit_calls": 300, "wait_calls": 0, "pid": summary["pid"]}
    assert m["workload_pid"] == summary["pid"] and (res.bundle / "raw" / "workload.stdout").read_text().startswith("mode=")
    if exit_code == 0:
        assert res.status == "ok" and m["exit"]["tracer"] == 0
    else:  # strace passes the workload's status on: the only sign of a failed workload
        assert res.status == "failed" and "strace exited with status 1" in res.reason


@pytest.fixture(scope="module")
def lossy_bundles(tmp_path_factory):
    """Per-event bpftrace with a one-page ring (BPFTRACE_PERF_RB_PAGES=1 exported by the user):
    a burst of io_uring events overflows it, and bpftrace prints "Lost N events"."""
    if tracing_missing():
        return None
    tmp = tmp_path_factory.mktemp("lossy")
    env = {**os.environ, "PYTHONPATH": str(REPO), "BPFTRACE_PERF_RB_PAGES": "1"}
    out = {}
    for allow in (False, True):
        # 60000 I/Os: with 20000 the one-page ring occasionally kept up and nothing was lost.
        args = ["--backend", "bpftrace", "--mode", "io_uring", "--depth", "32", "--batch", "32", "--count", "60000",
                "--file", str(tmp / "w.dat"), "--file-size", "8M", "--out", str(tmp / str(allow))]
        proc = subprocess.run([sys.executable, "-m", "tracer.cli", "capture", *args] + (["--allow-loss"] if allow else []),
                              env=env, capture_output=True, text=True, timeout=120)
        out[allow] = (proc, _only_bundle(tmp / str(allow)))
    return out


@pytest.mark.parametrize("allow", [False, True])
def test_lost_events_fail_the_capture_unless_allowed(tracing, lossy_bundles, allow):
    proc, bundle = lossy_bundles[allow]
    m = mf.read_manifest(bundle)
    assert m["tracer_env"]["BPFTRACE_PERF_RB_PAGES"] == "1"
    assert m["losses"]["dropped_events"] > 0 and m["losses"]["allowed"] is allow
    assert m["losses"]["messages"][0].startswith("bpftrace: Lost ") and len(m["losses"]["messages"]) <= 51
    if allow:
        assert proc.stdout.strip().splitlines() == [str(bundle)]
    else:
        assert proc.stdout == "" and f"(bundle kept: {bundle})" in proc.stderr
    if allow:
        assert proc.returncode == 0 and m["status"] == "ok" and "accepted with --allow-loss" in m["reason"]
    else:
        assert proc.returncode == 2 and m["status"] == "failed" and "events lost" in m["reason"]
        assert "rerun with --allow-loss" in proc.stderr


def _without_tracefs(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `aiotrace capture ARGS` in a private mount namespace where tracefs is unmounted and
    cannot be mounted again (an empty read-only /sys/kernel: capture mounts tracefs when it can,
    tests/test_tracefs.py)."""
    script = ("umount /sys/kernel/debug/tracing 2>/dev/null; umount /sys/kernel/tracing || exit 99; "
              "mount -t tmpfs -o ro,size=4k tmpfs /sys/kernel || exit 99; exec \"$@\"")
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-m", "tracer.cli", "capture",
                           "--mode", "libaio", "--count", "200", "--file", str(tmp_path / "w.dat"), "--file-size",
                           "1M", "--out", str(tmp_path / "runs"), *args],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)


def test_without_tracefs_bpftrace_fails_with_the_fix_and_auto_uses_strace(tracing, strace_bin, tmp_path):
    proc = _without_tracefs(["--backend", "bpftrace"], tmp_path)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    m = mf.read_manifest(proc.stderr.rsplit("(bundle kept: ", 1)[1].split(")")[0])
    assert m["status"] == "failed" and "tracepoint not found" in m["reason"]
    assert "mount -t tracefs nodev /sys/kernel/tracing" in m["reason"]
    assert "`mount -t tracefs nodev /sys/kernel/tracing` failed" in proc.stderr  # it tried, and says so
    proc = _without_tracefs([], tmp_path)  # --backend auto
    assert proc.returncode == 0, proc.stderr
    m = mf.read_manifest(proc.stdout.strip().splitlines()[-1])
    assert m["status"] == "ok" and m["backend"] == "strace" and "tracefs is not mounted" in m["backend_reason"]
    assert Path("/sys/kernel/tracing/available_events").exists()  # the machine's own mount is untouched


def _in_small_tmpfs(args: list[str], tmp_path: Path, options: str, env: dict) -> subprocess.CompletedProcess:
    """`aiotrace capture ARGS` in a private mount namespace, --out on a tmpfs mounted with OPTIONS."""
    need(os.geteuid() == 0 and shutil.which("unshare") is not None, "root and unshare (private tmpfs mounts)")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = f"mount -t tmpfs -o {options} tmpfs {mnt} || exit 99; exec \"$@\""
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-m", "tracer.cli", "capture",
                           *args, "--out", str(mnt / "runs")],
                          env={**os.environ, "PYTHONPATH": str(REPO), **env}, capture_output=True, text=True,
                          timeout=120)


def test_read_only_output_is_one_line_naming_path_and_errno(standin, tmp_path):
    proc = _in_small_tmpfs(["--backend", "strace", "--mode", "io_uring", "--count", "10"], tmp_path, "ro",
                           {"AIOTRACE_WORKLOAD_CMD": f"{sys.executable} {standin}"})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"aiotrace: error: cannot create output directory {tmp_path / 'mnt' / 'runs'}: "
        "Read-only file system (EROFS)"]


def test_full_disk_names_the_partial_bundle_and_prints_nothing_on_stdout(strace_bin, standin, tmp_path):
    proc = _in_small_tmpfs(["--backend", "strace", "--mode", "io_uring", "--count", "50000"], tmp_path, "size=256k",
                           {"AIOTRACE_WORKLOAD_CMD": f"{sys.executable} {standin}"})
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("aiotrace: error: cannot write ") and "No space left on device (ENOSPC)" in last
    assert "manifest.json" in last and last.endswith(".partial") and str(tmp_path / "mnt" / "runs" / ".") in last
    assert "Traceback" not in proc.stderr


SLOW_STRACE = r"""#!/bin/sh
[ "$1" = -V ] && { echo "slow-strace 1.0"; exit 0; }
out=""; pid=""
while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift;; -p) pid="$2"; shift;; esac; shift; done
: > "$out"
echo "strace: Process $pid attached" >&2
trap 'exit 0' INT
while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
: > "$out.workload-exited"
while :; do sleep 0.02; done
"""


def test_a_single_sigint_while_stopping_the_tracer_is_noted_not_called_again(standin_env, tmp_path, monkeypatch):
    """The workload has finished; capture waits for the tracer to exit by itself when one SIGINT
    arrives. The run is complete, so the bundle stays ok, and the reason says when the signal came
    (not "while the workload ran", not "again")."""
    import threading
    fake = tmp_path / "slow-strace"
    fake.write_text(SLOW_STRACE)
    fake.chmod(0o755)
    monkeypatch.setenv("AIOTRACE_STRACE", str(fake))
    runs = tmp_path / "runs"

    def send_sigint_when_the_workload_exited():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if list(runs.glob(".*/raw/strace.txt.workload-exited")):
                time.sleep(0.1)
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    sender = threading.Thread(target=send_sigint_when_the_workload_exited, daemon=True)
    sender.start()
    res = run_capture(_spec(count=50), BACKENDS["strace"], "requested", "events", runs,
                      timeouts=Timeouts(self_exit_s=3.0, stop_s=(5.0, 1.0, 1.0)))
    sender.join(timeout=5)
    m = res.manifest
    assert m["status"] == "ok" and m["exit"]["workload"] == 0 and m["exit"]["tracer"] == 0
    assert m["reason"] == "SIGINT received while the capture was stopping the tracer (noted; the capture went on " \
                          "writing the bundle)"


def test_interrupted_workload_keeps_its_record_and_summary(strace_bin, tmp_path):
    """Ctrl-C in the middle of a real workload run: capture stops the workload with SIGINT, the
    engine ends the run like a reached count (in-flight I/Os reaped), and the record so far is
    written: ios.parquet, threads.parquet and a summary that says it was interrupted."""
    need(bool(list((REPO / "workloads").glob("_engine*.so"))), "workloads/_engine*.so (built by pip install -e .)")
    runs = tmp_path / "runs"
    proc = _cli(["--backend", "strace", "--mode", "io_uring", "--duration", "120", "--file", str(tmp_path / "w.dat"),
                 "--file-size", "4M", "--out", str(runs)])
    _wait_for(lambda: any(p.stat().st_size > 200_000 for p in runs.glob(".*/raw/strace.txt")), timeout_s=90,
              what="the workload to be released and doing I/O")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    bundle = _only_bundle(runs)
    m = mf.read_manifest(bundle)
    assert m["status"] == "interrupted" and m["reason"].startswith("capture received SIGINT while the workload ran")
    assert m["exit"]["workload"] == 128 + signal.SIGINT  # exited by itself after writing its record
    summary = json.loads((bundle / "record" / "summary.json").read_text())
    assert summary["interrupted"] == "SIGINT" and summary["ios"] > 0 and m["summary"] == "record/summary.json"
    import pandas as pd
    ios = pd.read_parquet(bundle / "record" / "ios.parquet")
    assert len(ios) == summary["ios"] and (ios["result"] == 4096).all()

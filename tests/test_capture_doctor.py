"""`aiotrace doctor` and backend selection, on this machine and with privileges really dropped."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO
from tracer.capture import backends, doctor
from tracer.capture.backends import choose_backend, effective_caps

DROP_BPF = ["setpriv", "--bounding-set=-bpf,-perfmon,-sys_admin"]


def _doctor(prefix=(), *args):
    return subprocess.run([*prefix, sys.executable, "-m", "tracer.cli", "doctor", "--json", *args],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)


def test_effective_caps_reads_the_capeff_mask():
    caps = effective_caps("Name:\tx\nCapEff:\t000001fffeffffff\n")
    assert caps == {"CAP_SYS_PTRACE": True, "CAP_SYS_ADMIN": True, "CAP_SYS_RESOURCE": False,
                    "CAP_PERFMON": True, "CAP_BPF": True}
    assert effective_caps("CapEff:\t0000000000000000\n")["CAP_BPF"] is False


def test_doctor_reports_every_check_with_a_fix_for_each_miss(tracing):
    proc = _doctor()
    report = json.loads(proc.stdout)
    libbpf_ok = backends.BACKENDS["libbpf"].available()[0]
    assert proc.returncode == 0 and report["can_capture"]
    assert report["auto_backend"] == ("libbpf" if libbpf_ok else "bpftrace")
    names = {c["name"]: c for c in report["checks"]}
    assert names["bpf"]["ok"] and names["tracefs"]["ok"] and names["tracer bpftrace"]["ok"]
    # the libbpf backend says what it needs and how to get each
    assert "libbpf-dev" in names["libbpf build"]["detail"] and "/sys/kernel/btf/vmlinux" in names["libbpf build"]["detail"]
    assert names["tracer libbpf"]["ok"] == libbpf_ok
    assert names["REAP (AIO_KEVENT_FLAG_REAP)"]["ok"] is None and "n/a on Linux" in names["REAP (AIO_KEVENT_FLAG_REAP)"]["detail"]
    assert report["backends"]["bpftrace"]["version"].startswith("bpftrace v")
    assert all(c["fix"] for c in report["checks"] if c["ok"] is False)


def test_doctor_and_auto_fall_back_to_strace_when_bpf_is_refused(tracing, strace_bin, tmp_path):
    report = json.loads(_doctor(DROP_BPF).stdout)
    names = {c["name"]: c for c in report["checks"]}
    assert names["bpf"]["ok"] is False and "ERROR" in names["bpf"]["detail"] and "CAP_BPF" in names["bpf"]["fix"]
    assert names["privileges"]["ok"] is False and report["auto_backend"] == "strace" and report["can_capture"]
    proc = subprocess.run([*DROP_BPF, sys.executable, "-m", "tracer.cli", "capture", "--dry-run", "--mode", "libaio",
                           "--out", "runs"], env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    first = proc.stdout.splitlines()[0]
    assert "--backend strace (auto: libbpf unusable (CapEff lacks CAP_SYS_ADMIN" in first, first
    assert "bpftrace unusable (CapEff lacks CAP_SYS_ADMIN" in first, first


def test_missing_tracefs_names_the_mount_command(tracing, monkeypatch, tmp_path):
    monkeypatch.setattr(backends, "TRACEFS", tmp_path / "tracing")
    monkeypatch.setattr(doctor, "TRACEFS", tmp_path / "tracing")
    ok, why = backends.BACKENDS["bpftrace"].available()
    assert not ok and f"mount -t tracefs nodev {tmp_path / 'tracing'}" in why
    backend, reason = choose_backend("auto", "Linux")
    if backends.BACKENDS["libbpf"].available()[0]:  # BTF tracepoints attach without tracefs
        assert backend.name == "libbpf"
    else:
        assert backend.name == "strace" and "tracefs is not mounted" in reason
    checks = {c["name"]: c for c in doctor.diagnose()["checks"]}
    assert checks["tracefs"]["fix"] == f"mount -t tracefs nodev {tmp_path / 'tracing'}"
    assert checks["tracer bpftrace"]["fix"] == f"mount -t tracefs nodev {tmp_path / 'tracing'}"


def test_auto_capture_falls_back_to_strace_and_records_why(tracing, strace_bin, tmp_path):
    from tracer.capture import manifest as mf

    proc = subprocess.run([*DROP_BPF, sys.executable, "-m", "tracer.cli", "capture", "--mode", "libaio", "--count", "500",
                           "--file", str(tmp_path / "w.dat"), "--file-size", "1M", "--out", str(tmp_path / "runs")],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    m = mf.read_manifest(proc.stdout.strip().splitlines()[-1])
    assert m["status"] == "ok" and m["backend"] == "strace" and m["raw"]["format"] == "strace"
    assert m["backend_reason"].startswith("auto: libbpf unusable (CapEff lacks CAP_SYS_ADMIN")
    assert "bpftrace unusable (CapEff lacks CAP_SYS_ADMIN" in m["backend_reason"]
    assert "strace: /" in m["backend_reason"] and "usable" in m["backend_reason"]

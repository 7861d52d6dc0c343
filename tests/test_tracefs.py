"""capture, doctor and demo mount tracefs when it is missing and they run as root, and say so;
without root they print the exact command."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, need
from tracer import cli
from tracer.capture import tracefs
from tracer.base.errors import CaptureError

# In a private mount namespace the tracefs mount is unmounted for this process tree only.
UNMOUNTED = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f'umount {tracefs.TRACEFS} 2>/dev/null; grep -q " {tracefs.TRACEFS} tracefs" /proc/mounts && exit 99; '
             'exec "$@"', "sh"]


def in_namespace_without_tracefs(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    need(os.geteuid() == 0 and shutil.which("unshare") is not None, "root and unshare (a private mount namespace)")
    r = subprocess.run([*UNMOUNTED, sys.executable, "-m", "tracer.cli", *args], cwd=REPO, capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode != 99, "could not unmount tracefs inside the namespace"
    return r


def test_doctor_as_root_mounts_tracefs_and_says_so():
    r = in_namespace_without_tracefs("doctor")
    assert f"aiotrace: mounted tracefs at {tracefs.TRACEFS} ({tracefs.MOUNT_COMMAND})" in r.stderr, r.stderr
    tracefs_line = next(l for l in r.stdout.splitlines() if "] tracefs" in l)
    assert "[ok  ]" in tracefs_line and "mounted" in tracefs_line


@pytest.mark.slow
@pytest.mark.tracing
def test_capture_as_root_mounts_tracefs_then_captures_with_bpftrace(tracing, tmp_path):
    r = in_namespace_without_tracefs("capture", "--backend", "bpftrace", "-m", "io_uring", "-n", "200",
                                     "--file", str(tmp_path / "d.dat"), "--file-size", "1M", "--out", str(tmp_path / "runs"))
    assert f"aiotrace: mounted tracefs at {tracefs.TRACEFS}" in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "runs").is_dir() and r.stdout.strip().startswith(str(tmp_path / "runs"))


def test_without_root_the_exact_command_is_printed_and_nothing_is_mounted(monkeypatch):
    calls, said = [], []
    monkeypatch.setattr(tracefs, "mounted", lambda *a: False)
    monkeypatch.setattr(tracefs.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(tracefs.subprocess, "run", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(tracefs.platform, "system", lambda: "Linux")
    assert tracefs.ensure_mounted(said.append) is False
    assert calls == []
    assert said == [f"tracefs is not mounted at {tracefs.TRACEFS} and bpftrace needs it; "
                    "as root run: sudo mount -t tracefs nodev /sys/kernel/tracing"]


def test_a_failed_mount_is_reported_with_its_reason(monkeypatch):
    said = []
    monkeypatch.setattr(tracefs, "mounted", lambda *a: False)
    monkeypatch.setattr(tracefs.os, "geteuid", lambda: 0)
    monkeypatch.setattr(tracefs.platform, "system", lambda: "Linux")
    monkeypatch.setattr(tracefs.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 32, "", "mount: permission denied"))
    assert tracefs.ensure_mounted(said.append) is False
    assert said == [f"tracefs is not mounted at {tracefs.TRACEFS} and `{tracefs.MOUNT_COMMAND}` failed: "
                    "mount: permission denied"]


@pytest.mark.parametrize("argv", [["demo", "--out", "{tmp}/demo"],
                                  ["capture", "-m", "libaio", "--out", "{tmp}/runs", "--file", "{tmp}/d.dat"]])
def test_demo_and_capture_try_tracefs_before_choosing_a_backend(monkeypatch, tmp_path, capsys, argv):
    order = []
    monkeypatch.setattr(tracefs, "ensure_mounted", lambda log: order.append("tracefs"))

    def choose(*a, **k):
        order.append("choose")
        raise CaptureError("stop here")
    monkeypatch.setattr("tracer.capture.backends.choose_backend", choose)
    monkeypatch.setattr("tracer.capture.cli.choose_backend", choose)
    assert cli.main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert order == ["tracefs", "choose"] and "stop here" in capsys.readouterr().err

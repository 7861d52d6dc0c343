"""`python -m workloads`, `aiotrace run` and `aiotrace modes` as a user (or capture) runs them:
the --hold handshake, JSON output, and bad input giving one line, exit != 0, nothing written."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import need
from tracer.base.spec import ALL_MODES, FREEBSD_MODES, LINUX_MODES, READY_LINE

REPO = Path(__file__).resolve().parent.parent
AIOTRACE = [sys.executable, "-m", "tracer.cli"]
WORKLOAD = [sys.executable, "-m", "workloads"]


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture(scope="module")
def datafile(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("cli") / "cli.dat")


def small(datafile: str, mode: str = "io_uring", *extra: str) -> list[str]:
    return ["--mode", mode, "--count", "500", "--file", datafile, "--file-size", "4M", *extra]


def test_hold_waits_for_go_then_runs_and_prints_json_last(datafile, tmp_path):
    p = subprocess.Popen(WORKLOAD + small(datafile) + ["--hold", "--json", "--record", str(tmp_path / "rec")],
                         cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline().rstrip("\n")
    assert first == READY_LINE.format(pid=p.pid)
    assert not (tmp_path / "rec").exists()  # nothing happens before the release
    out, err = p.communicate("go\n", timeout=60)
    assert p.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["pid"] == p.pid and summary["ios"] == 500 and summary["verified"]
    assert sorted(os.listdir(tmp_path / "rec")) == ["ios.parquet", "summary.json", "threads.parquet"]


@pytest.mark.parametrize("stdin", ["", "stop\n"], ids=["eof", "other-word"])
def test_hold_without_go_exits_3_without_io(datafile, tmp_path, stdin):
    r = run(WORKLOAD + small(datafile) + ["--hold", "--json", "--record", str(tmp_path / "rec")], input=stdin)
    assert r.returncode == 3
    assert r.stdout.startswith("AIOTRACE-READY pid=") and len(r.stdout.strip().splitlines()) == 1
    assert not (tmp_path / "rec").exists() and not list(tmp_path.iterdir())


def test_aiotrace_run_json_has_the_summary_keys(datafile):
    r = run(AIOTRACE + ["run", *small(datafile, "libaio", "--threads", "split"), "--json"])
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["mode"] == "libaio" and s["ios"] == 500 and s["verified"] is True
    assert set(s["latency_ns"]) == {"p50", "p90", "p99", "p99_9", "max"}
    assert {t["role"] for t in s["threads"]} >= {"submitter", "reaper"}


def test_aiotrace_run_prints_a_table(datafile):
    r = run(AIOTRACE + ["run", *small(datafile, "aio-suspend")])
    assert r.returncode == 0, r.stderr
    assert "IOPS" in r.stdout and "aio-suspend" in r.stdout


def test_modes_json_lists_every_mode_with_a_reason_when_missing():
    r = run(AIOTRACE + ["modes", "--json"])
    assert r.returncode == 0, r.stderr
    rows = {row["mode"]: row for row in json.loads(r.stdout)}
    assert set(rows) == set(ALL_MODES)
    for mode in LINUX_MODES:
        if rows[mode]["available"]:
            assert rows[mode]["reason"] == ""
        else:
            assert rows[mode]["reason"]  # e.g. io_uring disabled by sysctl
    for mode in set(FREEBSD_MODES) - set(LINUX_MODES):
        assert not rows[mode]["available"] and "FreeBSD-only" in rows[mode]["reason"]


BAD = {
    "depth-0": (["--depth", "0"], "--depth 0 is out of range"),
    "batch-over-depth": (["--depth", "4", "--batch", "8"], "submit batch 8 must be between 1 and depth 4"),
    "reap-batch-over-depth": (["--depth", "4", "--reap-batch", "5"], "reap batch 5"),
    "freebsd-mode": (["--mode", "reap"], "FreeBSD-only"),
    "unwritable-path": (["--file", "/nonexistent-dir/x.dat"], "cannot create /nonexistent-dir/x.dat"),
    "proc-path": (["--file", "/proc/aiotrace.dat"], "cannot create /proc/aiotrace.dat"),
}
# io_setup refuses a context larger than fs.aio-max-nr with EAGAIN: the kernel's queue limit.
_AIO_MAX = int(Path("/proc/sys/fs/aio-max-nr").read_text()) if Path("/proc/sys/fs/aio-max-nr").exists() else 0
if 0 < _AIO_MAX < 1 << 20:
    BAD["queue-limit"] = (["--mode", "libaio", "--depth", str(_AIO_MAX + 1)], "EAGAIN")


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_nonzero_and_writes_nothing(datafile, tmp_path, case):
    extra, expect = BAD[case]
    rec = tmp_path / "rec"
    r = run(WORKLOAD + small(datafile) + extra + ["--record", str(rec)])
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aiotrace: error: ") and expect in lines[0], lines
    assert r.stdout == ""
    assert not rec.exists() and not list(tmp_path.iterdir())


def _in_private_mount(script: str) -> subprocess.CompletedProcess:
    return run(["unshare", "-m", "sh", "-c", script])


def test_filesystem_refusing_o_direct_is_named(tmp_path):
    need(os.geteuid() == 0 and shutil.which("unshare") is not None, "root and unshare (to mount ramfs)")
    mnt = tmp_path / "ramfs"
    mnt.mkdir()
    cmd = " ".join(WORKLOAD + ["--mode", "libaio", "--count", "10", "--file", f"{mnt}/x.dat", "--file-size", "1M",
                               "--direct", "--record", str(tmp_path / "rec")])
    r = _in_private_mount(f"mount -t ramfs none {mnt} && {cmd}")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == f"aiotrace: error: the filesystem holding {mnt}/x.dat refuses O_DIRECT " \
                               "(open: Invalid argument)"
    assert not (tmp_path / "rec").exists()


def test_block_size_below_the_logical_block_size_is_refused_with_o_direct(tmp_path):
    need(os.geteuid() == 0 and all(shutil.which(t) for t in ("unshare", "losetup", "mkfs.ext4")),
         "root, unshare, losetup and mkfs.ext4 (a 4096-byte-sector loop device)")
    img, mnt = tmp_path / "lbs.img", tmp_path / "mnt"
    mnt.mkdir()
    cmd = " ".join(WORKLOAD + ["--mode", "io_uring", "--count", "10", "--bs", "2048", "--file", f"{mnt}/x.dat",
                               "--file-size", "1M", "--direct"])
    script = (f"truncate -s 16M {img} && L=$(losetup --sector-size 4096 -f --show {img}) && "
              f"mkfs.ext4 -q -F $L && mount $L {mnt} && {{ {cmd}; rc=$?; umount {mnt}; losetup -d $L; exit $rc; }}")
    r = _in_private_mount(script)
    if r.returncode != 2 and "losetup" in r.stderr:
        need(False, f"a loop device ({r.stderr.strip()})")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().endswith(
        f"block size 2048 is not a multiple of the logical block size 4096 that O_DIRECT needs on {mnt}/x.dat")

"""The data file: the default lives in the user's cache directory, a file that is not aiotrace's
is never written (not even grown), and --no-verify reads an existing file or disk device."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, need
from tracer.base.errors import SpecError
from workloads import driver
from tracer.base.spec import RunSpec, default_data_file

AIOTRACE = [sys.executable, "-m", "tracer.cli"]


def digest(path) -> tuple[int, str, int]:
    st = os.stat(path)
    return st.st_size, hashlib.sha256(open(path, "rb").read()).hexdigest(), st.st_mtime_ns


def test_default_data_file_is_under_xdg_cache_home_not_the_cwd(tmp_path):
    cwd, cache = tmp_path / "cwd", tmp_path / "cache"
    cwd.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(REPO)}
    r = subprocess.run(AIOTRACE + ["run", "-m", "io_uring", "-n", "100", "--file-size", "1M", "--json"],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["spec"]["file"] == str(cache / "aiotrace" / "aiotrace.dat")
    assert (cache / "aiotrace" / "aiotrace.dat").stat().st_size == 1 << 20
    assert list(cwd.iterdir()) == []


def test_default_data_file_falls_back_to_home_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_file() == str(tmp_path / ".cache" / "aiotrace" / "aiotrace.dat")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # not absolute: ignored, as the XDG spec says
    assert default_data_file() == str(tmp_path / ".cache" / "aiotrace" / "aiotrace.dat")
    assert RunSpec(mode="libaio").file == default_data_file()


def test_explicit_relative_file_keeps_its_meaning(tmp_path):
    r = subprocess.run(AIOTRACE + ["run", "-m", "io_uring", "-n", "50", "--file", "mine.dat", "--file-size", "1M"],
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "c")},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "mine.dat").stat().st_size == 1 << 20 and not (tmp_path / "c").exists()


@pytest.mark.parametrize("content", [b"hello world\n", b"\0" * 4096, os.urandom(1 << 16)],
                         ids=["text", "zeros-multiple-of-8", "random"])
@pytest.mark.parametrize("op", ["read", "write"])
def test_a_foreign_file_is_refused_before_anything_is_written(tmp_path, content, op):
    path = tmp_path / "users.dat"
    path.write_bytes(content)
    before = digest(path)
    with pytest.raises(SpecError, match="not an aiotrace data file"):
        driver.run(RunSpec(mode="libaio", op=op, file=str(path), file_size=1 << 20, count=10))
    assert digest(path) == before  # not grown to --file-size, not touched


def test_an_aiotrace_file_smaller_than_file_size_is_still_extended(tmp_path):
    path = tmp_path / "ours.dat"
    driver.run(RunSpec(mode="libaio", file=str(path), file_size=1 << 20, count=10))
    driver.run(RunSpec(mode="libaio", file=str(path), file_size=2 << 20, count=10))
    assert path.stat().st_size == 2 << 20


def test_no_verify_reads_an_existing_file_read_only(tmp_path):
    path = tmp_path / "users.bin"
    path.write_bytes(os.urandom(1 << 20))
    before = digest(path)
    s = driver.run(RunSpec(mode="io_uring", file=str(path), file_size=1 << 20, count=200, verify=False))
    assert s["ios"] == 200 and s["errors"] == 0 and s["verify"] == "completion"
    assert digest(path)[:2] == before[:2]
    with pytest.raises(SpecError, match="writes are refused to a file aiotrace did not create"):
        driver.run(RunSpec(mode="io_uring", op="write", file=str(path), file_size=1 << 20, count=10, verify=False))
    with pytest.raises(SpecError, match="less than --file-size"):
        driver.run(RunSpec(mode="io_uring", file=str(path), file_size=2 << 20, count=10, verify=False))
    with pytest.raises(SpecError, match="does not exist"):
        driver.run(RunSpec(mode="io_uring", file=str(tmp_path / "nope"), file_size=1 << 20, verify=False))
    assert digest(path)[:2] == before[:2]


def test_no_verify_may_write_to_aiotraces_own_file(tmp_path):
    path = tmp_path / "ours.dat"
    driver.run(RunSpec(mode="libaio", file=str(path), file_size=1 << 20, count=10))
    s = driver.run(RunSpec(mode="libaio", op="write", file=str(path), file_size=1 << 20, count=50, verify=False))
    assert s["ios"] == 50


def test_capture_and_run_share_the_no_verify_option(tmp_path):
    path = tmp_path / "users.bin"
    path.write_bytes(os.urandom(1 << 20))
    r = subprocess.run(AIOTRACE + ["capture", "--backend", "strace", "-m", "libaio", "--file", str(path),
                                   "--no-verify", "--file-size", "1M", "--dry-run", "--out", str(tmp_path / "runs")],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert any("--no-verify" in line and "-m workloads" in line for line in r.stdout.splitlines())
    assert RunSpec(mode="libaio", verify=False).to_args()[-1] == "--no-verify"
    assert "--no-verify" not in RunSpec(mode="libaio").to_args()  # unchanged command lines by default


@pytest.fixture
def loop_device(tmp_path):
    """An 8 MiB loop device over a file of random bytes (root and losetup)."""
    need(os.geteuid() == 0 and shutil.which("losetup") is not None, "root and losetup (a loop device)")
    backing = tmp_path / "disk.img"
    backing.write_bytes(os.urandom(8 << 20))
    r = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True)
    need(r.returncode == 0, f"a free loop device ({r.stderr.strip()})")
    dev = r.stdout.strip()
    yield dev, backing
    subprocess.run(["losetup", "-d", dev], check=False)


@pytest.mark.parametrize("direct", [False, True], ids=["buffered", "o_direct"])
def test_no_verify_reads_a_block_device_and_refuses_writes(loop_device, direct):
    dev, backing = loop_device
    before = hashlib.sha256(backing.read_bytes()).hexdigest()
    s = driver.run(RunSpec(mode="libaio", file=dev, file_size=4 << 20, count=300, direct=direct, verify=False))
    assert s["ios"] == 300 and s["errors"] == 0 and s["verify"] == "completion"
    with pytest.raises(SpecError, match="is a device, not an aiotrace data file: read it with --no-verify"):
        driver.run(RunSpec(mode="libaio", file=dev, file_size=4 << 20, count=10))
    with pytest.raises(SpecError, match="writes are refused to a device"):
        driver.run(RunSpec(mode="libaio", op="write", file=dev, file_size=4 << 20, count=10, verify=False))
    with pytest.raises(SpecError, match="holds 8388608 bytes, less than --file-size 16777216"):
        driver.run(RunSpec(mode="libaio", file=dev, file_size=16 << 20, count=10, verify=False))
    assert hashlib.sha256(backing.read_bytes()).hexdigest() == before

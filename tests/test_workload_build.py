"""The engine as built artefacts: the FreeBSD cross-build (compiled and linked with Zig, as
`make freebsd-check` does), the Linux standalone program, and the probe points tracers use."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import need, zig_available
from workloads import elfcheck
from tracer.base.spec import FREEBSD_MODES, PROBE_FUNCTIONS, USDT_PROVIDER

REPO = Path(__file__).resolve().parent.parent
W = REPO / "workloads"
LINUX_SOURCES = ["main.c", "engine.c", "mode_posix.c", "mode_libaio.c", "mode_uring.c"]


@pytest.fixture(scope="module")
def freebsd_binary(tmp_path_factory) -> Path:
    need(zig_available(), "the ziglang package (pip install -e '.[test]')")
    need(shutil.which("make") is not None, "make")
    out = tmp_path_factory.mktemp("fbsd") / "aiotrace-workload.x86_64-freebsd"
    r = subprocess.run(["make", "-s", "freebsd-build", f"PY={sys.executable}", f"FREEBSD_OUT={out}"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def test_freebsd_build_is_a_linked_freebsd_executable(freebsd_binary):
    info = elfcheck.read_elf(str(freebsd_binary))
    assert info.machine == 62  # EM_X86_64
    assert info.interpreter == "/libexec/ld-elf.so.1"
    assert info.freebsd_version is not None and info.freebsd_version >= 1200000


def test_freebsd_build_carries_every_freebsd_mode_and_the_reap_refusal(freebsd_binary):
    blob = freebsd_binary.read_bytes()
    for mode in FREEBSD_MODES:
        assert b"\0" + mode.encode() + b"\0" in blob, mode
    # the run-time REAP probe: EINVAL at aio_read with the flag refuses the mode, no fallback
    assert b"this kernel refused AIO_KEVENT_FLAG_REAP (sigev_notify_kevent_flags=0x%x) with EINVAL" in blob
    for name in PROBE_FUNCTIONS.values():
        assert name.encode() + b"\0" in blob  # symbol names for dtrace's pid provider
    src = (W / "mode_freebsd_reap.c").read_text()
    assert "#define AIO_KEVENT_FLAG_REAP 0x4000" in src and "e == EINVAL" in src


def test_elfcheck_tells_linux_from_freebsd():
    info = elfcheck.read_elf(str(Path(sys.executable).resolve()))  # this Linux Python
    assert info.machine == 62 and info.freebsd_version is None and info.interpreter != "/libexec/ld-elf.so.1"


@pytest.fixture(scope="module")
def linux_binary(tmp_path_factory) -> Path:
    need(shutil.which("cc") is not None, "a C compiler")
    out = tmp_path_factory.mktemp("linux") / "aiotrace-workload"
    r = subprocess.run(["cc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out),
                        *[str(W / s) for s in LINUX_SOURCES], "-luring", "-laio", "-lpthread"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


def test_linux_standalone_program_runs_and_verifies(linux_binary, tmp_path):
    r = subprocess.run([str(linux_binary), "--modes"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.splitlines()[0].startswith("aio-poll\t")
    r = subprocess.run([str(linux_binary), "--mode", "libaio", "--count", "1000", "--batch", "4",
                        "--reap-batch", "4", "--file", str(tmp_path / "d.dat"), "--file-size", "2M",
                        "--threads", "split"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    first = dict(kv.split("=", 1) for kv in r.stdout.splitlines()[0].split())
    assert first["ios"] == "1000" and first["verified"] == "1" and first["submit_calls"] == "250"


def test_linux_standalone_hold_exits_3_on_eof(linux_binary, tmp_path):
    r = subprocess.run([str(linux_binary), "--mode", "io_uring", "--count", "10", "--file", str(tmp_path / "d.dat"),
                        "--file-size", "1M", "--hold"], input="", capture_output=True, text=True, timeout=30)
    assert r.returncode == 3 and r.stdout.startswith("AIOTRACE-READY pid=")


def _engine_so() -> Path:
    from workloads import _engine  # type: ignore[attr-defined]
    return Path(_engine.__file__)


def test_probe_functions_are_exported_symbols():
    import ctypes

    lib = ctypes.CDLL(str(_engine_so()))
    for name in PROBE_FUNCTIONS.values():
        assert hasattr(lib, name), name


def test_usdt_probes_are_in_the_extension():
    need(any(Path(d, "sys/sdt.h").exists() for d in ("/usr/include", "/usr/include/x86_64-linux-gnu")),
         "sys/sdt.h (systemtap-sdt-dev)")
    need(shutil.which("readelf") is not None, "readelf")
    notes = subprocess.run(["readelf", "-n", str(_engine_so())], capture_output=True, text=True).stdout
    for probe in PROBE_FUNCTIONS:
        assert f"Provider: {USDT_PROVIDER}\n    Name: {probe}\n" in notes, probe


def _function_body(path: Path, name: str) -> str:
    """The text of a C function's body (from its signature line to the closing brace at column 0)."""
    text = path.read_text()
    start = re.search(rf"^static .*[ *]{name}\(", text, re.M).start()
    return text[text.index("{", start):text.index("\n}\n", start) + 2]


def test_reap_mode_needs_no_aio_return():
    reap = _function_body(W / "mode_freebsd_reap.c", "reap_event")
    assert "aio_return" not in reap and "aio_error" not in reap and "_calls++" not in reap
    assert "EV_ERROR" in reap and "kev->data" in reap
    kevent = _function_body(W / "mode_freebsd_kevent.c", "kq_event")
    assert "aio_return(" in kevent and "aio_error(" not in kevent
    kevent_error = _function_body(W / "mode_freebsd_kevent.c", "kq_error_event")
    assert "aio_error(" in kevent_error and "aio_return(" in kevent_error


def test_freebsd_modes_compile_when_the_headers_define_the_reap_flag(tmp_path):
    need(zig_available(), "the ziglang package")
    r = subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", "x86_64-freebsd", "-std=c11", "-O2",
                        "-Wall", "-Wextra", "-Werror", "-DAIO_KEVENT_FLAG_REAP=0x4000", "-c",
                        str(W / "mode_freebsd_reap.c"), "-o", str(tmp_path / "reap.o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr

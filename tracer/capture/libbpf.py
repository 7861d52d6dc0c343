"""The ``libbpf`` capture backend: a CO-RE BPF program on BTF-typed tracepoints, no uprobe at all.

==========  =======  ======  =========================================================================
backend     OS       attach  how
==========  =======  ======  =========================================================================
libbpf      Linux    pid     ``aiotrace-bpf -p PID -f events|aggregate -o raw/FILE`` (the consumer
                             dscripts/linux/aiotrace-bpf.c, built with the BPF object
                             dscripts/linux/aiotrace.bpf.c on first use); ready when it prints
                             ``AIOTRACE-BPF<TAB>ready`` (every program attached); exits by itself
                             when the workload is gone, after a last drain of the ring buffer
==========  =======  ======  =========================================================================

Per-event: fixed 72-byte records (:data:`RECORD_DTYPE`, the C ``struct aiot_record``) from a BPF
ring buffer drained by polling into ``raw/events.bin``; :mod:`tracer.parse.libbpf` reads them with
one ``numpy.frombuffer``. Aggregate: only in-kernel counts and log2 histograms, written at exit as
``raw/agg.json`` in bpftrace's ``-f json`` shape (the same map names as aiotrace-agg.bt), so the
bpftrace parser reads both. Nothing runs per I/O in user space and there is no per-I/O uprobe:
the workload is held at its handshake (READY) while the program attaches and released once it is
attached; its window is marked by two uprobes on aiotrace_probe_window_start/stop (one hit each
per run); its own record (record/ios.parquet) holds the per-I/O submit and completion times.

Losses: the kernel side counts records it could not reserve in a full ring (``dropped``); the
consumer prints that count at exit and it goes into the manifest's losses. The emitted counts per
kind are compared with the records that arrived.

Build: clang -target bpf, bpftool (vmlinux.h from /sys/kernel/btf/vmlinux, then the skeleton),
cc with -lbpf -lelf -lz; cached under workloads/out/libbpf/<hash of the sources>/.
``AIOTRACE_AIOTRACE_BPF=/path`` replaces the consumer binary. ``AIOTRACE_BPF_STATS=1`` runs it
with ``-s``: the kernel times every BPF program run, and raw/tracer.stdout ends with each
program's runs and total run time (:func:`program_costs`; bench/bench_capture.py prints them per
I/O). The timing itself costs two clock reads per run, so leave it off for real captures.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import struct
import subprocess
from pathlib import Path


from tracer.capture.backends import Backend, Context, Losses, effective_caps
from tracer.base.errors import CaptureError
from tracer.parse.libbpf import BLK_NAMES, HEADER_BYTES, KINDS, MAGIC, RECORD_DTYPE  # noqa: F401 (the file's layout)

REPO = Path(__file__).resolve().parents[2]
SRC_DIR = REPO / "dscripts" / "linux"
SOURCES = ("aiotrace.bpf.c", "aiotrace-bpf.h", "aiotrace-bpf.c")
BUILD_ROOT = REPO / "workloads" / "out" / "libbpf"
BINARY = "aiotrace-bpf"
VMLINUX_BTF = Path("/sys/kernel/btf/vmlinux")
# Debian packages that provide the build tools and libraries (Makefile SYS_PKGS has them).
PACKAGES = ("clang", "llvm", "libbpf-dev", "bpftool", "libelf-dev", "zlib1g-dev")
RING_MB = 64  # BPF ring buffer: about 930k records, drained every 2 ms (1 s at 1 M records/s)

READY = "AIOTRACE-BPF\tready"
STATS = re.compile(r"^AIOTRACE-BPF\tstats\trecords=(\d+)\tdropped=(\d+)\temitted=([\d,]+)\tlag_unmatched=(\d+)",
                   re.M)
RAW = {"events": ("libbpf", "events.bin"), "aggregate": ("bpftrace", "agg.json")}


# ---------------------------------------------------------------------------- build

def _source_hash() -> str:
    h = hashlib.sha256()
    for name in SOURCES:
        h.update(name.encode() + b"\0" + (SRC_DIR / name).read_bytes())
    return h.hexdigest()[:16]


def missing_tools() -> list[str]:
    """Build tools or headers absent on this machine (with the Debian package that has each)."""
    out = []
    for tool, pkg in (("clang", "clang"), ("bpftool", "bpftool"), ("cc", "gcc")):
        if _which(tool) is None:
            out.append(f"{tool} ({pkg})")
    for header, pkg in (("/usr/include/bpf/libbpf.h", "libbpf-dev"), ("/usr/include/libelf.h", "libelf-dev"),
                        ("/usr/include/zlib.h", "zlib1g-dev")):
        if not Path(header).exists():
            out.append(f"{header} ({pkg})")
    return out


def _which(tool: str) -> str | None:
    # bpftool lives in /usr/sbin, which a non-root PATH may lack
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/local/sbin")


def built_binary() -> Path:
    """Where the consumer for the current sources lives (it may not be built yet)."""
    return BUILD_ROOT / _source_hash() / BINARY


def build(force: bool = False) -> Path:
    """Build (or reuse) the BPF object, its skeleton and the consumer; return the consumer's path.
    Raises CaptureError naming what is missing or which step failed."""
    out = built_binary()
    if out.exists() and not force:
        return out
    missing = missing_tools()
    if missing:
        raise CaptureError("cannot build the libbpf backend: missing " + ", ".join(missing)
                           + f"; install: apt-get install {' '.join(PACKAGES)}")
    if not VMLINUX_BTF.exists():
        raise CaptureError(f"cannot build the libbpf backend: no kernel BTF at {VMLINUX_BTF} "
                           "(needs a kernel built with CONFIG_DEBUG_INFO_BTF=y)")
    work = out.parent.with_name(out.parent.name + f".tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in SOURCES:
        shutil.copy2(SRC_DIR / name, work / name)
    bpftool = _which("bpftool")
    steps = [
        ([bpftool, "btf", "dump", "file", str(VMLINUX_BTF), "format", "c"], "vmlinux.h"),
        ([_which("clang"), "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I.", "-c", "aiotrace.bpf.c",
          "-o", "aiotrace.bpf.o"], None),
        ([bpftool, "gen", "skeleton", "aiotrace.bpf.o", "name", "aiotrace_bpf"], "aiotrace.skel.h"),
        ([_which("cc"), "-O2", "-Wall", "-Werror", "-I.", "aiotrace-bpf.c", "-o", BINARY, "-lbpf", "-lelf", "-lz"],
         None),
    ]
    for argv, stdout_file in steps:
        res = subprocess.run(argv, cwd=work, capture_output=True)
        if res.returncode != 0:
            msg = (res.stderr or res.stdout).decode(errors="replace").strip().splitlines()
            raise CaptureError(f"building the libbpf backend failed at `{' '.join(map(str, argv[:3]))} ...`: "
                               + (msg[0] if msg else f"exit status {res.returncode}"))
        if stdout_file:
            (work / stdout_file).write_bytes(res.stdout)
    shutil.rmtree(out.parent, ignore_errors=True)
    os.replace(work, out.parent)  # complete or absent: never a half-built cache entry
    return out


def program() -> str | None:
    """The consumer binary: the AIOTRACE_AIOTRACE_BPF override, else the cached build (built now
    when the tools are there), else None."""
    override = os.environ.get("AIOTRACE_AIOTRACE_BPF")
    if override:
        return override if os.access(override, os.X_OK) else None
    if built_binary().exists():
        return str(built_binary())
    if missing_tools() or not VMLINUX_BTF.exists():
        return None
    try:
        return str(build())
    except CaptureError:
        return None


def check() -> tuple[bool, str]:
    """What the machine lacks for this backend, beyond the binary ('' when nothing)."""
    if not VMLINUX_BTF.exists():
        return False, f"no kernel BTF at {VMLINUX_BTF} (CO-RE needs CONFIG_DEBUG_INFO_BTF=y)"
    caps = effective_caps()
    if caps and not (caps["CAP_SYS_ADMIN"] or (caps["CAP_BPF"] and caps["CAP_PERFMON"])):
        return False, "CapEff lacks CAP_SYS_ADMIN and CAP_BPF+CAP_PERFMON (BPF would be refused)"
    return True, ""


def requirements() -> list[str]:
    """What `aiotrace doctor` prints for this backend: each need and how to get it."""
    return [
        f"packages: {' '.join(PACKAGES)} (apt-get install {' '.join(PACKAGES)}; `make setup` does it as root)",
        f"kernel BTF: {VMLINUX_BTF} (kernel built with CONFIG_DEBUG_INFO_BTF=y; Debian kernels have it)",
        "root, or CAP_BPF+CAP_PERFMON; tracefs is NOT needed (BTF tracepoints attach without it)",
        f"built on first use into {BUILD_ROOT.relative_to(REPO)}/<source hash>/ "
        "(or `python -m tracer.capture.libbpf --build`)",
    ]


# ---------------------------------------------------------------------------- backend ops

def build_argv(b: Backend, ctx: Context) -> list[list[str]]:
    if ctx.pid is None:
        raise CaptureError("libbpf attaches by pid: no workload pid")
    exe = program()
    if exe is None:
        raise CaptureError("the libbpf consumer is not built: " + "; ".join(requirements()[:1]))
    argv = [exe, "-p", str(ctx.pid), "-f", ctx.flavour, "-o", str(ctx.raw_dir / RAW[ctx.flavour][1]),
            "-r", str(RING_MB)]
    if ctx.raw_dir.is_dir():
        write_extents(ctx.raw_dir, ctx.workload_argv)
    if ctx.engine_so is not None:  # the two window uprobes (one hit each per run)
        argv += ["-u", str(ctx.engine_so)]
    if ctx.flavour == "aggregate" and _workload_option(ctx.workload_argv, "--mode") == "libaio":
        argv.append("-l")  # the libaio free-lag histogram (block completion -> io_getevents)
    if os.environ.get("AIOTRACE_BPF_STATS") == "1":
        argv.append("-s")
    return [argv]


PROG_LINE = re.compile(r"^AIOTRACE-BPF\tprog\t(\w+)\truns=(\d+)\trun_ns=(\d+)$", re.M)


def program_costs(stdout_text: str) -> dict[str, tuple[int, int]]:
    """{BPF program: (runs, total run ns)} from the consumer's stdout under ``-s`` (else empty).
    Runs count every hit of the hook, other processes' included (each returns at the pid test)."""
    return {m.group(1): (int(m.group(2)), int(m.group(3))) for m in PROG_LINE.finditer(stdout_text)}


def _workload_option(argv: list[str], option: str) -> str | None:
    """The value of ``--option V`` or ``--option=V`` in the workload's argv (None if absent)."""
    for i, word in enumerate(argv):
        if word == option and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(option + "="):
            return word.split("=", 1)[1]
    return None


def ready(flavour: str, stdout: Path, stderr: Path) -> bool:
    try:
        return READY in stdout.read_text(errors="replace")
    except FileNotFoundError:
        return False


def stats(stdout_text: str) -> dict | None:
    """The consumer's exit line: records, dropped, emitted per kind, lag_unmatched."""
    m = STATS.search(stdout_text)
    if not m:
        return None
    emitted = [int(x) for x in m.group(3).split(",")]
    return {"records": int(m.group(1)), "dropped": int(m.group(2)),
            "emitted": dict(zip(KINDS, emitted)), "lag_unmatched": int(m.group(4))}


def scan_losses(trace: Path, stderr: Path, losses: Losses) -> None:
    raw = trace.parent
    try:
        text = (raw / "tracer.stdout").read_text(errors="replace")
    except FileNotFoundError:
        text = ""
    st = stats(text)
    if st is None:
        losses.add("libbpf: the consumer printed no stats line (stopped early?): losses unknown")
    elif st["dropped"]:
        losses.add(f"libbpf: ring buffer full, {st['dropped']} records dropped in the kernel", st["dropped"])
    if st is not None and trace.suffix == ".bin" and trace.exists():
        n = (trace.stat().st_size - HEADER_BYTES) // RECORD_DTYPE.itemsize
        if n != st["records"]:
            losses.add(f"libbpf: consumer wrote {st['records']} records, file holds {n}",
                       max(st["records"] - n, 0))
    for line in _head(stderr).splitlines():  # the consumer is silent unless something is wrong
        if line.strip():
            losses.add(f"libbpf: {line.strip()}")


def _head(path: Path, limit: int = 1 << 20) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


# ---------------------------------------------------------------------------- file extents

FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 1
_FIEMAP_HEAD = struct.Struct("=QQIIII")  # fm_start, fm_length, fm_flags, fm_mapped_extents, fm_extent_count, res
_FIEMAP_EXTENT = struct.Struct("=QQQQQIIII")  # logical, physical, length, res64[2], flags, res[3]


def file_extents(path: str, max_extents: int = 4096) -> dict:
    """The data file's extents (FIEMAP) and the device they are on, so block events (disk dev,
    512-byte sector) can be joined to file offsets: sector = (physical + offset - logical) / 512
    + the partition's start sector."""
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        buf = bytearray(_FIEMAP_HEAD.size + _FIEMAP_EXTENT.size * max_extents)
        _FIEMAP_HEAD.pack_into(buf, 0, 0, 0xFFFFFFFFFFFFFFFF, FIEMAP_FLAG_SYNC, 0, max_extents, 0)
        fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
    finally:
        os.close(fd)
    n = _FIEMAP_HEAD.unpack_from(buf, 0)[3]
    ext = [_FIEMAP_EXTENT.unpack_from(buf, _FIEMAP_HEAD.size + i * _FIEMAP_EXTENT.size)[:3] for i in range(n)]
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    sysdev = Path(f"/sys/dev/block/{major}:{minor}")
    start = int((sysdev / "start").read_text()) if (sysdev / "start").exists() else 0
    disk = sysdev.resolve().parent if (sysdev / "partition").exists() else sysdev.resolve()
    try:
        dmaj, dmin = (int(x) for x in (disk / "dev").read_text().split(":"))
    except (OSError, ValueError):
        dmaj, dmin = major, minor
    return {"file": path, "dev": (dmaj << 20) | dmin, "partition_start_sector": start,
            "extents": [{"logical": a, "physical": b, "length": c} for a, b, c in ext]}


def write_extents(raw: Path, workload_argv: list[str]) -> None:
    """raw/extents.json for the workload's data file (the model joins libaio's block completions
    to I/Os with it). Taken when the tracer is built: the held workload has created its file."""
    path = _workload_option(workload_argv, "--file")
    if path is None or not os.path.exists(path):
        return
    try:
        data = file_extents(path)
    except OSError:
        return  # no FIEMAP on this filesystem: block events stay unjoined to I/Os
    tmp = raw / "extents.json.part"
    tmp.write_text(json.dumps(data))
    os.replace(tmp, raw / "extents.json")


def version() -> str | None:
    exe = program()
    if exe is None:
        return None
    try:
        out = subprocess.run([_which("bpftool") or "bpftool", "version"], capture_output=True, text=True, timeout=10)
        libbpf = re.search(r"libbpf v([\d.]+)", out.stdout)
    except (OSError, subprocess.TimeoutExpired):
        libbpf = None
    return f"aiotrace-bpf {_source_hash()} (libbpf {libbpf.group(1) if libbpf else 'unknown'}, kernel {platform.release()})"


if __name__ == "__main__":  # python -m tracer.capture.libbpf --build
    import sys
    try:
        print(build(force="--force" in sys.argv))
    except CaptureError as exc:
        print(f"aiotrace: {exc}", file=sys.stderr)
        sys.exit(2)

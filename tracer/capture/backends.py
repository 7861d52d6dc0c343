"""Capture backends: one table of operations per tracer, the way fio's engines fill ``ioengine_ops``.

==========  =======  ======  =========================================================================
backend     OS       attach  how
==========  =======  ======  =========================================================================
bpftrace    Linux    pid     ``dscripts/linux/aiotrace-{events,agg}.bt -p PID``; stdout is the trace;
                             ready when the script's BEGIN line (``AIOTRACE...``) appears, which
                             bpftrace prints only after every probe is attached; stopped with SIGINT
                             (maps print at exit)
strace      Linux    pid     ``strace -f -ttt -T -y -o raw/strace.txt -p PID``; ``-f -p`` attaches
                             every existing thread (strace 6.1 prints ``Process N attached with M
                             threads``) and follows new ones; exits by itself when the workload does
dtrace      FreeBSD  wrap    ``dtrace -q -x ... -s dscripts/freebsd/*.d -c 'WORKLOAD'``: dtrace starts
                             the workload stopped, enables the probes, then lets it run
ktrace      FreeBSD  wrap    ``ktrace -i -t cstu+ -f raw/ktrace.out WORKLOAD``, then
                             ``kdump -H -T -s -f raw/ktrace.out > raw/kdump.txt``
truss       FreeBSD  wrap    ``truss -f -H -D -d -o raw/truss.txt WORKLOAD``
==========  =======  ======  =========================================================================

"wrap" backends start the workload themselves, so nothing can happen before tracing starts; the
workload then runs without ``--hold``. On FreeBSD the workload is the standalone binary
``workloads/out/aiotrace-workload.x86_64-freebsd`` (the Zig cross build of the same C engine; the
cffi extension is Linux-only here), given the same options as ``python -m workloads``.

Each binary can be replaced with ``AIOTRACE_<NAME>=/path`` (``AIOTRACE_BPFTRACE``,
``AIOTRACE_STRACE``, ``AIOTRACE_DTRACE``, ``AIOTRACE_KTRACE``, ``AIOTRACE_KDUMP``, ``AIOTRACE_TRUSS``).
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tracer.base.errors import CaptureError

REPO = Path(__file__).resolve().parents[2]
FREEBSD_WORKLOAD = REPO / "workloads" / "out" / "aiotrace-workload.x86_64-freebsd"
TRACEFS = Path("/sys/kernel/tracing")

# ktrace trace points: c = CALL/RET, s = PSIG (AIO completion signals), t = STRU, u = USER (utrace
# records), + = ktrace's default set (DEF_POINTS). The `struct kevent[]` STRU records need
# KTRFAC_STRUCT_ARRAY: DEF_POINTS holds it (usr.bin/ktrace/ktrace.h, fel1x-developer/freebsd-src
# @2d614aa), while 't' selects it only in some versions (KTRFAC_STRUCT alone at fel1x @2d614aa,
# STRUCT|STRUCT_ARRAY at freebsd/freebsd-src @0325afa, usr.bin/ktrace/subr.c), so '+' is what
# guarantees it. The letters repeat parts of '+' to say what the parser relies on.
KTRACE_POINTS = "cstu+"
# BPFTRACE_PERF_RB_PAGES for per-event runs: 4096 pages = 16 MiB per CPU (a power of two, as
# bpftrace requires); the default 64 pages loses events at io_uring rates.
PERF_RB_PAGES = 4096
BPFTRACE_HARMLESS = ("couldn't set RLIMIT_MEMLOCK",)


@dataclass
class Context:
    """What a backend needs to build its command lines for one capture."""

    flavour: str  # "events" | "aggregate"
    raw_dir: Path  # <bundle>/raw
    workload_argv: list[str]
    pid: int | None = None  # the held workload's pid ("pid" attach)
    engine_so: Path | None = None  # shared object defining the workload's probe functions
    target: str = "workload"  # "workload" | "command" | "pid" (tracer.capture.target)
    extra_pids: list[int] = field(default_factory=list)  # descendants of pid alive at attach (pid target)


MAX_LOSS_MESSAGES = 50  # a lossy per-event run prints thousands of "Lost N events" lines


@dataclass
class Losses:
    dropped_events: int = 0
    messages: list[str] = field(default_factory=list)
    more_messages: int = 0  # counted, not kept, beyond MAX_LOSS_MESSAGES

    def add(self, message: str, dropped: int = 0) -> None:
        self.dropped_events += dropped
        if len(self.messages) < MAX_LOSS_MESSAGES:
            self.messages.append(message.rstrip("\n"))
        else:
            self.more_messages += 1

    def as_messages(self) -> list[str]:
        extra = [f"... and {self.more_messages} more loss messages"] if self.more_messages else []
        return self.messages + extra

    @property
    def any(self) -> bool:
        return self.dropped_events > 0 or bool(self.messages)


@dataclass(frozen=True)
class Backend:
    """The operations table of one tracer."""

    name: str
    os_name: str  # the OS it runs on: "Linux" | "FreeBSD"
    binary: str  # default program name, looked up on PATH (AIOTRACE_<NAME> overrides)
    attach: str  # "pid" | "wrap"
    raw_file: Callable[..., str]  # (flavour, tracer argv) -> file name under raw/
    raw_format: Callable[[str], str]  # flavour -> manifest raw.format
    stdout_is_trace: bool  # the tracer's stdout is the trace (else it writes the file itself)
    build: Callable[["Backend", Context], list[list[str]]]  # tracer argv, then post-processors
    ready: Callable[[str, Path, Path], bool]  # (flavour, stdout file, stderr file) -> probes attached?
    # an optional extra loss reader (trace file, stderr file, losses); the common one is
    # tracer.parse.losses, which reads every format's loss lines
    scan_losses: Callable[[Path, Path, Losses], None] | None = None
    traces_foreign: bool = False  # can trace -- COMMAND / -p PID (ctx.target), not only the workload
    version_argv: tuple[str, ...] = ("--version",)
    env: Callable[[Context], dict[str, str]] = lambda ctx: {}
    needs_root: bool = True
    self_exits: bool = False  # exits by itself when the workload does (else SIGINT it)
    # Backends whose program is built, not installed (libbpf): where it is, what else the machine
    # needs ((ok, why)), and its version line.
    locate: Callable[[], str | None] | None = None
    check: Callable[[], tuple[bool, str]] | None = None
    describe_version: Callable[[], str | None] | None = None

    def program(self, name: str | None = None) -> str | None:
        """Absolute path of the binary (or of a helper such as kdump), or None if missing."""
        name = name or self.binary
        if self.locate is not None and name == self.binary:
            return self.locate()
        override = os.environ.get(f"AIOTRACE_{name.upper()}")
        if override:
            return override if os.access(override, os.X_OK) else None
        return shutil.which(name)

    def available(self) -> tuple[bool, str]:
        """Can this machine run the backend? (ok, reason or what was found)."""
        if platform.system() != self.os_name:
            return False, f"{self.name} is a {self.os_name} backend; this is {platform.system()}"
        if self.check is not None:
            ok, why = self.check()
            if not ok:
                return False, why
        path = self.program()
        if path is None:
            return False, f"{self.binary} not found on PATH (or AIOTRACE_{self.binary.upper()})"
        if self.needs_root and os.geteuid() != 0:
            return False, f"{self.name} needs root (euid is {os.geteuid()})"
        if self.name == "bpftrace":
            if not (TRACEFS / "available_events").exists():
                return False, f"tracefs is not mounted at {TRACEFS} (fix: mount -t tracefs nodev {TRACEFS})"
            caps = effective_caps()
            if caps and not (caps["CAP_SYS_ADMIN"] or (caps["CAP_BPF"] and caps["CAP_PERFMON"])):
                return False, "CapEff lacks CAP_SYS_ADMIN and CAP_BPF+CAP_PERFMON (BPF would be refused)"
        return True, f"{path} usable"

    def version(self) -> str | None:
        """The tracer's version line, or None when it cannot be run."""
        if self.describe_version is not None:
            return self.describe_version()
        path = self.program()
        if path is None:
            return None
        if not self.version_argv:  # ktrace/truss have no version flag: they are the base system's
            return f"{self.name} (FreeBSD {platform.release()})"
        try:
            out = subprocess.run([path, *self.version_argv], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        lines = (out.stdout + out.stderr).strip().splitlines()
        return lines[0].strip() if lines else None

    def commands(self, ctx: Context) -> list[list[str]]:
        return self.build(self, ctx)

    def trace_path(self, ctx: Context, argv: list[str]) -> Path:
        return ctx.raw_dir / self.raw_file(ctx.flavour, argv)


CAPS = {"CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24, "CAP_PERFMON": 38, "CAP_BPF": 39}


def effective_caps(status_text: str | None = None) -> dict[str, bool]:
    """Capabilities that matter to tracers, from /proc/self/status CapEff (a hex bit mask);
    {} where there is no such file (FreeBSD)."""
    if status_text is None:
        try:
            status_text = Path("/proc/self/status").read_text()
        except OSError:
            return {}
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            mask = int(line.split()[1], 16)
            return {name: bool(mask >> bit & 1) for name, bit in CAPS.items()}
    return {}


def _exe(backend: Backend, name: str | None = None) -> str:
    """The binary to put in argv: the AIOTRACE_<NAME> override as given, else its resolved path,
    else the bare name (a run then fails to start it and says so; dry runs print the name)."""
    name = name or backend.binary
    if backend.os_name != platform.system():  # a dry run for another OS: its own binary names
        return name
    return os.environ.get(f"AIOTRACE_{name.upper()}") or backend.program(name) or name


def _dscripts():
    try:
        from tracer import dscripts
    except ImportError as exc:
        raise CaptureError(f"tracer.dscripts is not available: {exc}") from None
    return dscripts


def _head(path: Path, limit: int = 65536) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


# ---------------------------------------------------------------------------- bpftrace

def _bpftrace_build(b: Backend, ctx: Context) -> list[list[str]]:
    if ctx.target != "workload":  # any program: aiotrace-proc.bt, only pids as parameters
        if ctx.flavour != "events":
            raise CaptureError("--aggregate traces only aiotrace's workload for now; "
                               "a command or pid is traced per event (drop --aggregate)")
        if ctx.pid is None:
            raise CaptureError("bpftrace needs the pid of the program to trace")
        return [list(_dscripts().bpftrace_proc_argv(ctx.pid, ctx.extra_pids, bpftrace=_exe(b)))]
    if ctx.pid is None or ctx.engine_so is None:
        raise CaptureError("bpftrace needs the workload pid and its engine shared object")
    return [list(_dscripts().bpftrace_argv(ctx.flavour, ctx.pid, str(ctx.engine_so), bpftrace=_exe(b)))]


def _bpftrace_env(ctx: Context) -> dict[str, str]:
    env = dict(_dscripts().bpftrace_env(ctx.flavour))
    if ctx.flavour == "events":  # at least PERF_RB_PAGES per CPU (a power of two)
        env["BPFTRACE_PERF_RB_PAGES"] = str(max(PERF_RB_PAGES, int(env.get("BPFTRACE_PERF_RB_PAGES", "0"))))
    for name in env:  # a value the user exported wins (and is recorded in the manifest)
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _bpftrace_ready(flavour: str, stdout: Path, stderr: Path) -> bool:
    # The scripts print their header from BEGIN, which bpftrace runs only after attaching every
    # probe; "Attaching N probes..." / attached_probes come BEFORE attaching (tracer.dscripts).
    ds = _dscripts()
    return any(ds.is_ready_line("Linux", flavour, line) for line in _head(stdout).splitlines())


def _raw(os_name: str, what: int):
    """dscripts.RAW_FORMATS (os, flavour) -> (format, file name): what=0 format, 1 file."""
    return lambda flavour, *argv: _dscripts().RAW_FORMATS[(os_name, flavour)][what]


# ---------------------------------------------------------------------------- strace

def _strace_build(b: Backend, ctx: Context) -> list[list[str]]:
    if ctx.pid is None:
        raise CaptureError("strace attaches by pid: no workload pid")
    # -f with -p attaches all existing threads and follows new ones; -ttt wall-clock seconds
    # (manifest clocks.realtime_minus_monotonic_ns aligns them); -T time in syscall; -y fd paths.
    # No -q: the "Process N attached" lines on stderr are the ready signal.
    # A pid target's descendants alive at attach get their own -p (later forks are followed by -f).
    pids = [ctx.pid, *ctx.extra_pids]
    return [[_exe(b), "-f", "-ttt", "-T", "-y", "-o", str(ctx.raw_dir / "strace.txt"),
             *[w for p in pids for w in ("-p", str(p))]]]


# strace prefixes its messages with argv[0] ("/usr/bin/strace: Process 6340 attached")
_STRACE_ATTACHED = re.compile(r"^\S*strace: Process \d+ attached", re.M)


def _strace_ready(flavour: str, stdout: Path, stderr: Path) -> bool:
    return bool(_STRACE_ATTACHED.search(_head(stderr)))


# ---------------------------------------------------------------------------- dtrace

def _dtrace_build(b: Backend, ctx: Context) -> list[list[str]]:
    # dtrace_argv refuses command words with blanks: dtrace -c splits its string without quoting
    if ctx.target == "pid":  # dtrace -p: grabs the running process (libdtrace dtrace_proc_grab)
        argv = list(_dscripts().dtrace_argv(ctx.flavour, pid=ctx.pid, dtrace=_exe(b), foreign=True))
    else:
        argv = list(_dscripts().dtrace_argv(ctx.flavour, command=list(ctx.workload_argv), dtrace=_exe(b),
                                               foreign=ctx.target != "workload"))
    # -o keeps the trace apart from the workload's own stdout (dtrace -c children share it)
    argv[1:1] = ["-o", str(ctx.raw_dir / _dscripts().RAW_FORMATS[("FreeBSD", ctx.flavour)][1])]
    return [argv]


# ---------------------------------------------------------------------------- ktrace + kdump

def _ktrace_build(b: Backend, ctx: Context) -> list[list[str]]:
    out = str(ctx.raw_dir / "ktrace.out")
    # ktrace -p PID enables tracing of a running process and returns at once; the capture ends it
    # with ktrace -c -p PID (clear that process's trace points) before kdump reads the file.
    start = [_exe(b), "-i", "-t", KTRACE_POINTS, "-f", out, "-p", str(ctx.pid)] if ctx.target == "pid" \
        else [_exe(b), "-i", "-t", KTRACE_POINTS, "-f", out, *ctx.workload_argv]
    stop = [[_exe(b), "-c", "-p", str(ctx.pid)]] if ctx.target == "pid" else []
    return [
        start, *stop,
        # -H thread ids, -T absolute timestamps, -s no I/O data dumps
        [_exe(b, "kdump"), "-H", "-T", "-s", "-f", out],
    ]


# ---------------------------------------------------------------------------- truss

def _truss_build(b: Backend, ctx: Context) -> list[list[str]]:
    # -f follow forks, -H thread ids, -D time in each syscall, -d time since start
    target = ["-p", str(ctx.pid)] if ctx.target == "pid" else list(ctx.workload_argv)
    return [[_exe(b), "-f", "-H", "-D", "-d", "-o", str(ctx.raw_dir / "truss.txt"), *target]]


def _always_ready(flavour: str, stdout: Path, stderr: Path) -> bool:
    return True  # wrap backends start the workload themselves


BACKENDS: dict[str, Backend] = {
    "bpftrace": Backend(
        name="bpftrace", os_name="Linux", binary="bpftrace", attach="pid",
        raw_file=_raw("Linux", 1), raw_format=_raw("Linux", 0),
        stdout_is_trace=True, build=_bpftrace_build, ready=_bpftrace_ready, env=_bpftrace_env,
        traces_foreign=True),
    "strace": Backend(
        name="strace", os_name="Linux", binary="strace", attach="pid",
        raw_file=lambda fl, argv: "strace.txt", raw_format=lambda fl: "strace",
        stdout_is_trace=False, build=_strace_build, ready=_strace_ready, version_argv=("-V",), needs_root=False, self_exits=True,
        traces_foreign=True),
    "dtrace": Backend(
        name="dtrace", os_name="FreeBSD", binary="dtrace", attach="wrap",
        raw_file=_raw("FreeBSD", 1), raw_format=_raw("FreeBSD", 0),
        stdout_is_trace=False, build=_dtrace_build, ready=_always_ready, version_argv=("-V",), self_exits=True, traces_foreign=True),
    "ktrace": Backend(
        name="ktrace", os_name="FreeBSD", binary="ktrace", attach="wrap",
        raw_file=lambda fl, argv: "kdump.txt", raw_format=lambda fl: "kdump",
        stdout_is_trace=False, build=_ktrace_build, ready=_always_ready, version_argv=(), needs_root=False, self_exits=True,
        traces_foreign=True),
    "truss": Backend(
        name="truss", os_name="FreeBSD", binary="truss", attach="wrap",
        raw_file=lambda fl, argv: "truss.txt", raw_format=lambda fl: "truss",
        stdout_is_trace=False, build=_truss_build, ready=_always_ready, version_argv=(), needs_root=False, self_exits=True,
        traces_foreign=True),
}


def _libbpf():
    from tracer.capture import libbpf  # imports this module: load it on first use
    return libbpf


# libbpf: the consumer is built from dscripts/linux/ on first use (tracer/capture/libbpf.py)
BACKENDS["libbpf"] = Backend(
    name="libbpf", os_name="Linux", binary="aiotrace-bpf", attach="pid",
    raw_file=lambda flavour, *argv: _libbpf().RAW[flavour][1], raw_format=lambda flavour: _libbpf().RAW[flavour][0],
    stdout_is_trace=False, build=lambda b, ctx: _libbpf().build_argv(b, ctx),
    ready=lambda *a: _libbpf().ready(*a), scan_losses=lambda *a: _libbpf().scan_losses(*a), self_exits=True,
    locate=lambda: _libbpf().program(), check=lambda: _libbpf().check(), describe_version=lambda: _libbpf().version())
AUTO_ORDER = {"Linux": ("libbpf", "bpftrace", "strace"), "FreeBSD": ("dtrace", "ktrace")}
AGGREGATE_BACKENDS = ("libbpf", "bpftrace", "dtrace")  # the others have no in-kernel aggregation


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise CaptureError(f"unknown backend '{name}' (known: auto, {', '.join(BACKENDS)})") from None


def choose_backend(requested: str, os_name: str | None = None, foreign: bool = False) -> tuple[Backend, str]:
    """Resolve ``auto`` (or check an explicit name). Returns (backend, why). ``foreign``: the target
    is -- COMMAND / -p PID, so only backends that trace any program qualify."""
    os_name = os_name or platform.system()
    if requested != "auto":
        return get_backend(requested), "requested"
    order = AUTO_ORDER.get(os_name)
    if order is None:
        raise CaptureError(f"no capture backend for {os_name} (aiotrace captures on Linux and FreeBSD)")
    refused = []
    for name in order:
        if foreign and not BACKENDS[name].traces_foreign:
            continue  # e.g. libbpf: its windows and joins are the workload's
        ok, why = BACKENDS[name].available()
        if ok:
            prefix = f"auto: {'; '.join(refused)}; " if refused else "auto: "
            return BACKENDS[name], f"{prefix}{name}: {why}"
        refused.append(f"{name} unusable ({why})")
    # nothing usable: return the first choice so the capture records why it failed
    return BACKENDS[order[0]], "auto: " + "; ".join(refused)

"""`aiotrace capture` orchestration: target + tracer -> run bundle, as a :class:`CaptureSession`.

Steps ("pid" attach, the Linux backends):
  start    make ``<out>/.<run-id>.partial``; start the target held at its handshake, in its own
           session (a terminal's Ctrl-C reaches only capture, which stops things in order): the
           workload (``python -m workloads <spec> --hold --record ... --json``) or a user's command
           (``python -m tracer.capture.launch -- CMD``, which execs it on release). A ``-p PID``
           target is checked (exists, not a kernel thread, not aiotrace's own ancestor, ours to trace).
  attach   start the tracer on that pid; poll until it says its probes are attached (backend ``ready``)
  release  write the release word (a pid target runs already); sample /proc task io from here
  wait     until the target exits, ``--duration`` passes (the window is cut, the manifest says why)
           or the tracer dies
  stop     the target first if it is ours (SIGINT, bounded waits, SIGTERM, SIGKILL), so the tracer
           sees its end; then the tracer; then post-processors (kdump)
  finish   read every loss (tracer.parse.losses), assemble the manifest (manifest.assemble), rename
"wrap" backends (FreeBSD) start the target themselves: start and attach collapse into starting the tracer.

Every path out of :func:`run_capture` (tracer missing, refused, died; target crashed; Ctrl-C, SIGTERM
or SIGHUP) still writes the manifest with a status and reason and renames the bundle; when even the
manifest cannot be written (a full disk), the error names the partial bundle.
"""
from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tracer.capture import manifest as mf
from tracer.capture.manifest import _version  # noqa: F401  (tracer.simulate imports it from here)
from tracer.capture.backends import FREEBSD_WORKLOAD, Backend, Context, Losses
from tracer.capture.bundle import Bundle
from tracer.capture.launch import CANNOT_EXEC
from tracer.capture.target import (Target, TaskIoSampler, check_pid, descendants, launcher_argv, pid_alive,
                                   resolve_command)
from tracer.dscripts import PROC_EXTRA_PIDS
from tracer.base.errors import CaptureError
from tracer.parse.losses import bundle_losses
from tracer.base.spec import READY_LINE, RELEASE_WORD, RunSpec

READY_RE = re.compile("^" + re.escape(READY_LINE).replace(re.escape("{pid}"), r"(\d+)") + r"\s*$")
READY_TIMEOUT_S = 180.0  # the workload may first create its data file
ATTACH_TIMEOUT_S = 90.0  # bpftrace compiles and attaches ~20 probes in 1-3 s; be generous
QUIET_S, QUIET_MAX_S = 0.3, 5.0  # let a per-event stream drain before SIGINT
STOP_WAITS_S = (60.0, 5.0, 5.0)  # after SIGINT, SIGTERM, SIGKILL
POLL_S = 0.02


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM reached capture (a KeyboardInterrupt, so one arriving before the bundle
    exists still ends the CLI as "aiotrace: interrupted", exit 130)."""


@dataclass
class Timeouts:
    ready_s: float = READY_TIMEOUT_S
    attach_s: float = ATTACH_TIMEOUT_S
    stop_s: tuple[float, float, float] = STOP_WAITS_S
    self_exit_s: float = 10.0  # a tracer that exits with its target (strace): how long to let it


@dataclass
class CaptureResult:
    bundle: Path
    manifest: dict
    status: str
    reason: str | None
    losses: Losses = field(default_factory=Losses)


def workload_argv_linux(spec: RunSpec, record_dir: Path) -> list[str]:
    """``<python> -m workloads <spec> --hold --record DIR --json`` (DESIGN.md).

    ``AIOTRACE_WORKLOAD_CMD`` (a shell-quoted command) replaces ``<python> -m workloads``: the
    tests use it to run a small stand-in that speaks the same handshake."""
    prefix = shlex.split(os.environ["AIOTRACE_WORKLOAD_CMD"]) if os.environ.get("AIOTRACE_WORKLOAD_CMD") \
        else [sys.executable, "-m", "workloads"]
    return [*prefix, *spec.to_args(), "--hold", "--record", str(record_dir), "--json"]


def workload_argv_freebsd(spec: RunSpec, record_dir: Path) -> list[str]:
    """The standalone FreeBSD binary (workloads/main.c) with the same spec options and no handshake:
    the tracer starts it. It has no --record/--json: its stdout (raw/workload.stdout) ends with one
    ``key=value`` summary line, which capture copies to record/summary.json."""
    return [str(FREEBSD_WORKLOAD), *spec.to_args()]


def _summary_from_kv(text: str) -> dict | None:
    """The standalone binary's ``key=value ...`` summary line (its last such line), numbers parsed."""
    for line in reversed(text.splitlines()):
        pairs = [tok.split("=", 1) for tok in line.split() if "=" in tok]
        if len(pairs) >= 3:
            out = {}
            for k, v in pairs:
                for cast in (int, float):
                    try:
                        out[k] = cast(v)
                        break
                    except ValueError:
                        continue
                else:
                    out[k] = v
            return out
    return None


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _workload_env() -> dict[str, str]:
    """Make ``python -m workloads`` importable whatever the caller's cwd."""
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def engine_object(pid: int) -> Path:
    """The shared object mapped by ``pid`` that defines the workload's probe functions.

    Read from /proc/PID/maps of the held workload (everything is loaded before READY), so the
    path is exactly what the uprobes must attach to, whatever the build directory."""
    from tracer.base.spec import PROBE_FUNCTIONS

    symbol = PROBE_FUNCTIONS["submit"].encode()
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError as exc:
        raise CaptureError(f"cannot read /proc/{pid}/maps: {exc.strerror}") from None
    paths = []
    for line in maps.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/") and ".so" in parts[5]:
            if parts[5] not in paths:
                paths.append(parts[5])
    workloads_dir = str(Path(__file__).resolve().parents[2] / "workloads")
    ordered = [p for p in paths if p.startswith(workloads_dir)] + \
              [p for p in paths if not p.startswith(("/usr/", "/lib", workloads_dir))]
    for p in ordered:
        try:
            if os.path.getsize(p) < (256 << 20) and symbol in Path(p).read_bytes():
                return Path(p)
        except OSError:
            continue
    raise CaptureError(f"workload pid {pid} maps no shared object defining {symbol.decode()}")


class _Pump(threading.Thread):
    """Copy the workload's stdout to raw/workload.stdout and catch its READY line."""

    def __init__(self, stream: IO[bytes], sink: Path):
        super().__init__(daemon=True)
        self.stream, self.sink = stream, sink
        self.ready = threading.Event()
        self.pid: int | None = None
        self.lines: list[str] = []

    def run(self) -> None:
        with open(self.sink, "wb") as out:
            for raw in iter(self.stream.readline, b""):
                out.write(raw)
                out.flush()
                text = raw.decode("utf-8", "replace")
                self.lines.append(text)
                if self.pid is None:
                    m = READY_RE.match(text.strip())
                    if m:
                        self.pid = int(m.group(1))
                        self.ready.set()
        self.ready.set()  # EOF: wake the waiter either way


def _terminate(proc: subprocess.Popen | None, first: int, waits: tuple[float, ...]) -> str | None:
    """Send ``first``, then SIGTERM, then SIGKILL, waiting ``waits[i]`` after each.
    Returns a note when a harder signal than ``first`` was needed."""
    if proc is None or proc.poll() is not None:
        return None
    sigs = [first, signal.SIGTERM, signal.SIGKILL]
    for i, (sig, wait_s) in enumerate(zip(sigs, waits)):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            return None
        try:
            proc.wait(timeout=wait_s)
            return None if i == 0 else f"needed {signal.Signals(sig).name} to stop pid {proc.pid}"
        except subprocess.TimeoutExpired:
            continue
    proc.wait()
    return f"pid {proc.pid} survived SIGKILL waits"


def _wait_quiet(path: Path, proc: subprocess.Popen) -> None:
    """Wait until ``path`` stops growing for QUIET_S (at most QUIET_MAX_S)."""
    deadline = time.monotonic() + QUIET_MAX_S
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline and proc.poll() is None:
        size = path.stat().st_size if path.exists() else 0
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= QUIET_S:
            return
        time.sleep(0.05)


def _tail(path: Path, n: int = 3, skip: tuple[str, ...] = ()) -> str:
    try:
        lines = [l.strip() for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    lines = [l for l in lines if not any(s in l for s in skip)]
    return " | ".join(lines[-n:])


def _tracer_error(path: Path) -> str:
    """The tracer's own error lines (bpftrace "ERROR: ..."), else its last lines."""
    try:
        lines = [l.strip() for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return "no message"
    lines = [l for l in lines if "RLIMIT_MEMLOCK" not in l]
    errors = [l for l in lines if l.startswith(("ERROR", "error", "dtrace: failed", "dtrace: could not"))]
    return " | ".join(errors[:2] or lines[-3:]) or "no message"


def _exit_code(proc: subprocess.Popen | None) -> int | None:
    return None if proc is None else proc.returncode


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not start"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _summary_from_stdout(lines: list[str]) -> dict | None:
    """The JSON summary the workload prints after its READY line (--json)."""
    text = "".join(l for l in lines if not READY_RE.match(l.strip())).strip()
    start = text.find("{")
    if start < 0:
        return None
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


class _SignalGuard:
    """Turns the first SIGINT/SIGTERM/SIGHUP into Interrupted while the target runs. Once the session
    is stopping (``stopping`` set: the target has exited, or a first signal arrived) later ones are
    only noted, so nothing can abandon a bundle half-written. SIGHUP (terminal or ssh closed) is
    handled like SIGINT; it also stops log output, which has nowhere to go. Handlers are restored
    on exit; off the main thread it does nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.stopping = False
        self.received: list[str] = []  # every signal, in order
        self.late: list[tuple[str, str]] = []  # (signal, phase) of those only noted
        self.phase = "starting"
        self.hangup = False
        self.old: dict = {}

    def _handler(self, signum, frame):
        name = signal.Signals(signum).name
        self.hangup = self.hangup or signum == signal.SIGHUP
        self.received.append(name)
        if self.stopping:
            self.late.append((name, self.phase))
            return
        self.stopping = True  # only one Interrupted per capture
        raise Interrupted(name)

    def __enter__(self) -> "_SignalGuard":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)

    def late_note(self) -> str | None:
        """One sentence on signals that arrived while stopping (None when none did): "again" only
        when an earlier signal had already been received."""
        if not self.late:
            return None
        first_raised = len(self.received) > len(self.late)
        parts = [f"{name} received{' again' if first_raised or i else ''} {PHASE_WORDS.get(phase, phase)}"
                 for i, (name, phase) in enumerate(self.late)]
        return "; ".join(dict.fromkeys(parts)) + " (noted; the capture went on writing the bundle)"


PHASE_WORDS = {
    "starting": "before the workload was released",
    "attaching": "before the workload was released",
    "running": "while the workload ran",
    "stopping": "while the capture was stopping the tracer",
}


class CaptureSession:
    """One capture, in explicit steps: :meth:`start` (bundle; the target held at its handshake),
    :meth:`attach` (the tracer, until it says its probes are attached), :meth:`release` (the target
    runs), :meth:`wait` (until it ends, the --duration passes, or the tracer dies), :meth:`stop`
    (target then tracer, then post-processors) and :meth:`finish` (losses, manifest, rename).
    :meth:`run` does them in order; whatever happens, finish still writes the bundle."""

    def __init__(self, target: Target, backend: Backend, backend_reason: str, flavour: str, out_dir: Path,
                 allow_loss: bool = False, *, spec: RunSpec | None = None, timeouts: Timeouts | None = None,
                 log=None, guard: _SignalGuard | None = None):
        self.target, self.backend, self.backend_reason = target, backend, backend_reason
        self.flavour, self.out_dir, self.allow_loss, self.spec = flavour, Path(out_dir), allow_loss, spec
        self.timeouts = timeouts or Timeouts()
        self._log = log or (lambda msg: None)
        self.guard = guard or _SignalGuard()
        self.status, self.reason = "ok", None
        self.notes: list[str] = []  # facts the manifest's target record carries (window cut...)
        self.window_cut: str | None = None
        self.bundle: Bundle | None = None
        self.workload: subprocess.Popen | None = None  # our own child (workload, launcher, wrap tracer)
        self.tracer: subprocess.Popen | None = None
        self.pump: _Pump | None = None
        self.sampler: TaskIoSampler | None = None
        self.ctx: Context | None = None
        self.commands: list[list[str]] = []
        self.post_cmds: list[list[str]] = []
        self.post_exit: list[int | None] = []
        self.tracer_env: dict[str, str] = {}
        self.trace_path: Path | None = None
        self.target_pid: int | None = None
        self.released_ns: int | None = None
        self.files: list[IO] = []
        self.losses = Losses()
        self.started_at, self.t0 = _utc_now(), time.monotonic()
        self.clocks = {"realtime_minus_monotonic_ns": time.time_ns() - time.monotonic_ns()}

    # -- helpers
    def log(self, msg: str) -> None:
        if self.guard.hangup:
            return  # the terminal is gone
        try:
            self._log(msg)
        except OSError:
            pass

    def fail(self, why: str) -> None:
        if self.status == "ok":
            self.status, self.reason = "failed", why

    @property
    def raw(self) -> Path:
        return self.bundle.path / "raw"

    @property
    def record(self) -> Path:
        return self.bundle.path / "record"

    def _target_alive(self) -> bool:
        if self.workload is not None:
            return self.workload.poll() is None
        return self.target_pid is not None and pid_alive(self.target_pid)

    def _start_held(self, argv: list[str], env: dict[str, str] | None, what: str) -> None:
        wl_err = open(self.raw / "workload.stderr", "wb"); self.files.append(wl_err)
        try:
            self.workload = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=wl_err,
                                             env=env, start_new_session=True)
        except OSError as exc:
            raise CaptureError(f"cannot start the {what} ({argv[0]}): {exc.strerror}") from None
        self.pump = _Pump(self.workload.stdout, self.raw / "workload.stdout")
        self.pump.start()
        deadline = time.monotonic() + self.timeouts.ready_s
        while not self.pump.ready.wait(POLL_S):
            if time.monotonic() > deadline:
                raise CaptureError(f"{what} printed no READY line within {self.timeouts.ready_s:.0f} s")
        if self.pump.pid is None:
            self.workload.wait()
            raise CaptureError(f"{what} {_describe_exit(self.workload.returncode)} before its READY line: "
                               f"{_tail(self.raw / 'workload.stderr') or 'no message'}")
        self.target_pid = self.ctx.pid = self.pump.pid
        self.log(f"{what} pid {self.target_pid} held at its handshake")

    # -- 1. start
    def start(self) -> None:
        t, b = self.target, self.backend
        if t.foreign and not b.traces_foreign:
            raise CaptureError(f"backend {b.name} traces only aiotrace's workload, not -- COMMAND or -p PID")
        self.bundle = Bundle.create(self.out_dir, self.spec.mode if t.kind == "workload" else t.label, b.name)
        if t.kind == "workload" and not t.argv:
            t.argv = workload_argv_linux(self.spec, self.record) if b.attach == "pid" \
                else workload_argv_freebsd(self.spec, self.record)
        self.ctx = Context(flavour=self.flavour, raw_dir=self.raw, workload_argv=list(t.argv), target=t.kind)
        self.trace_path = self.raw / b.raw_file(self.flavour, [])
        if t.kind == "pid":
            self.guard.phase = "attaching"
            check_pid(t.pid, b.needs_root)
            self.target_pid = self.ctx.pid = t.pid
            kids = descendants(t.pid)
            self.ctx.extra_pids = kids
            if len(kids) > PROC_EXTRA_PIDS and b.name == "bpftrace":
                self.notes.append(f"{len(kids)} descendants alive at attach; bpftrace follows the first "
                                  f"{PROC_EXTRA_PIDS} and every later fork")
            return
        if t.kind == "command" and resolve_command(t.argv[0]) is None:
            raise CaptureError(f"command not found: {t.argv[0]}")
        if b.attach != "pid":
            return  # the wrapping tracer starts it
        self.guard.phase = "attaching"
        if t.kind == "workload":
            self.commands.append(list(t.argv))
            self._start_held(t.argv, _workload_env(), "workload")
            if b.name in ("bpftrace", "libbpf"):  # their uprobes attach to the engine object
                self.ctx.engine_so = engine_object(self.target_pid)
        else:
            argv = launcher_argv(t.argv)
            self.commands.append(argv)
            self._start_held(argv, _workload_env(), "command")

    # -- 2. attach
    def attach(self) -> None:
        b = self.backend
        cmds = b.commands(self.ctx)
        tracer_argv, self.post_cmds = cmds[0], cmds[1:]
        self.trace_path = self.raw / b.raw_file(self.flavour, tracer_argv)
        self.commands += cmds
        self.tracer_env = b.env(self.ctx)
        # a wrapping tracer's stdout is the workload's (ktrace execs it; truss and dtrace -c share it)
        out_path = self.trace_path if b.stdout_is_trace else \
            self.raw / ("workload.stdout" if b.attach == "wrap" else "tracer.stdout")
        tr_out = open(out_path, "wb"); self.files.append(tr_out)
        tr_err = open(self.raw / "tracer.stderr", "wb"); self.files.append(tr_err)
        self.log("tracer: " + " ".join(tracer_argv))
        try:
            self.tracer = subprocess.Popen(tracer_argv, stdin=subprocess.DEVNULL, stdout=tr_out, stderr=tr_err,
                                           env={**os.environ, **self.tracer_env}, start_new_session=True)
        except OSError as exc:
            raise CaptureError(f"cannot start {b.name} ({tracer_argv[0]}): {exc.strerror}") from None
        if b.attach == "wrap":
            self.workload = self.tracer
            return
        deadline = time.monotonic() + self.timeouts.attach_s
        stdout_file = self.trace_path if b.stdout_is_trace else self.raw / "tracer.stdout"
        what = "workload" if self.target.kind == "workload" else \
            ("command" if self.target.kind == "command" else f"pid {self.target_pid}")
        while not b.ready(self.flavour, stdout_file, self.raw / "tracer.stderr"):
            if self.tracer.poll() is not None:
                usable, why = b.available()  # name the machine's problem when there is one
                raise CaptureError(f"{b.name} {_describe_exit(self.tracer.returncode)} before attaching: "
                                   f"{_tracer_error(self.raw / 'tracer.stderr')}" + ("" if usable else f" ({why})"))
            if not self._target_alive():
                raise CaptureError(f"{what} {_describe_exit(_exit_code(self.workload)) if self.workload else 'exited'}"
                                   " while the tracer attached")
            if time.monotonic() > deadline:
                raise CaptureError(f"{b.name} did not report its probes attached within "
                                   f"{self.timeouts.attach_s:.0f} s")
            time.sleep(POLL_S)

    # -- 3. release
    def release(self) -> None:
        if self.target.foreign and self.target_pid is not None and platform.system() == "Linux":
            self.sampler = TaskIoSampler(self.target_pid)
            self.sampler.baseline()
            self.sampler.start()
        self.released_ns = time.monotonic_ns()
        self.guard.phase = "running"
        if self.backend.attach == "wrap" or self.target.kind == "pid":
            self.log(f"{self.backend.name} attached" + (f" to pid {self.target_pid}" if self.target_pid else ""))
            return
        self.log(f"{self.backend.name} attached; releasing the {self.target.kind}")
        try:
            self.workload.stdin.write((RELEASE_WORD + "\n").encode())
            self.workload.stdin.close()
        except BrokenPipeError:
            pass

    # -- 4. wait for the end of the window
    def wait(self) -> None:
        b, t = self.backend, self.target
        end = None if not t.duration_s else time.monotonic() + t.duration_s
        while self._target_alive():
            if b.attach == "pid" and self.tracer.poll() is not None and self._target_alive():
                raise CaptureError(f"{b.name} {_describe_exit(self.tracer.returncode)} while the {t.kind} ran: "
                                   f"{_tracer_error(self.raw / 'tracer.stderr')}")
            if end is not None and time.monotonic() >= end:
                self.window_cut = f"--duration {t.duration_s:g} s elapsed"
                if t.kind == "command":
                    self.window_cut += "; the command was stopped with SIGINT"
                    _terminate(self.workload, signal.SIGINT, (5.0, 5.0, 5.0))
                return
            time.sleep(0.05)
        self.guard.stopping, self.guard.phase = True, "stopping"  # the run is complete: signals are noted
        if t.kind == "pid":
            self.window_cut = f"pid {self.target_pid} exited after " \
                              f"{(time.monotonic_ns() - self.released_ns) / 1e9:.2f} s of the window"
        elif t.kind == "command" and t.duration_s:
            self.notes.append("the command exited before --duration elapsed")
        if self.workload is not None and b.attach == "pid":
            code = self.workload.returncode
            if t.kind == "workload" and code != 0:
                self.fail(f"workload {_describe_exit(code)}: {_tail(self.raw / 'workload.stderr') or 'no message'}")
            elif t.kind == "command" and code in (CANNOT_EXEC,):
                self.fail(f"command {_describe_exit(code)}: {_tail(self.raw / 'workload.stderr') or 'no message'}")
            elif t.kind == "command" and code != 0:
                self.notes.append(f"the command {_describe_exit(code)}")

    # -- 5. stop: the target first (if ours), so the tracer sees its end; then the tracer
    def stop(self) -> None:
        self.guard.stopping = True
        if self.guard.phase != "starting" and self.guard.phase != "attaching":
            self.guard.phase = "stopping"
        b = self.backend
        stopped_by_sigint = False
        if self.workload is not None and self.workload.poll() is None and self.workload is not self.tracer:
            if self.released_ns is None and self.workload.stdin is not None:
                try:
                    self.workload.stdin.close()  # EOF at the handshake: exits 3 without I/O
                except OSError:
                    pass
                try:
                    self.workload.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            _terminate(self.workload, signal.SIGINT, (5.0, 5.0, 5.0))
        if self.workload is self.tracer and self.tracer is not None and self.tracer.poll() is None:
            _terminate(self.tracer, signal.SIGINT, self.timeouts.stop_s)  # wrap: the tracer owns the workload
        if self.tracer is not None and self.tracer.poll() is None and b.attach == "pid":
            if b.self_exits and not self._target_alive() and self.released_ns is not None:
                try:
                    self.tracer.wait(timeout=self.timeouts.self_exit_s)
                except subprocess.TimeoutExpired:
                    pass
            elif b.stdout_is_trace and self.released_ns is not None and not self._target_alive():
                _wait_quiet(self.trace_path, self.tracer)  # (a live pid target keeps it growing)
            note = _terminate(self.tracer, signal.SIGINT, self.timeouts.stop_s)
            if note:
                self.losses.add(f"{b.name}: {note} (output may be incomplete)")
            else:
                stopped_by_sigint = True
        # strace detaches on our SIGINT and then dies of it: that exit is ours, not a fault
        ours = stopped_by_sigint and self.tracer is not None and self.tracer.returncode == -signal.SIGINT
        if self.tracer is not None and self.tracer.returncode not in (0, None) and self.released_ns is not None \
                and not ours:
            why = f"{b.name} {_describe_exit(self.tracer.returncode)}: {_tracer_error(self.raw / 'tracer.stderr')}"
            if b.attach == "wrap":
                self.fail(why)  # for wrap backends this is also how a crashed workload shows
            else:
                self.losses.add(why)
        if self.pump is not None:
            self.pump.join(timeout=5)
        if self.sampler is not None:
            self.sampler.stop()
        if self.released_ns is not None and self.tracer is not None:
            self._post_process()

    def _post_process(self) -> None:
        """Post-processors (kdump) write their stdout as the trace file."""
        for argv in self.post_cmds:
            with open(self.trace_path, "wb") as out, open(self.raw / f"{Path(argv[0]).name}.stderr", "wb") as err:
                try:
                    self.post_exit.append(subprocess.run(argv, stdout=out, stderr=err).returncode)
                except OSError as exc:
                    self.post_exit.append(None)
                    self.fail(f"cannot run {argv[0]}: {exc.strerror}")
            if self.post_exit[-1] not in (0, None):
                self.fail(f"{argv[0]} exited with status {self.post_exit[-1]}")

    def interrupted(self, name: str) -> None:
        """A first SIGINT/SIGTERM/SIGHUP while the target ran (or before). For a pid capture it is
        how the user ends the window: the bundle stays ok."""
        if self.target.kind == "pid" and self.guard.phase == "running":
            self.window_cut = f"{name} received: the window ended there (the process keeps running)"
            return
        self.status = "interrupted"
        if self.target.kind == "pid":  # before the window opened
            self.reason = f"capture received {name} while the tracer attached to pid {self.target_pid}"
        else:
            what = "the workload" if self.target.kind == "workload" else "the command"
            self.reason = f"capture received {name} " + PHASE_WORDS.get(self.guard.phase, "").replace("the workload", what)
        self.log(self.reason)

    # -- 6. finish: losses, summary, manifest, rename
    def finish(self) -> CaptureResult:
        self.guard.stopping = True
        for fh in self.files:
            try:
                fh.close()
            except OSError as exc:
                self.fail(f"cannot write {fh.name}: {exc.strerror} ({errno.errorcode.get(exc.errno, exc.errno)})")
        raw = self.raw
        if self.sampler is not None:
            try:
                self.sampler.write(raw / "task_io.tsv")
            except OSError as exc:
                self.fail(f"cannot write {raw / 'task_io.tsv'}: {exc.strerror} ({errno.errorcode.get(exc.errno, '?')})")
        # cache=False: the bundle has no manifest yet, so a cache would land beside the trace in raw/
        report, _ = bundle_losses(self.trace_path if self.released_ns is not None else None,
                                  self.backend.raw_format(self.flavour), raw / "tracer.stderr",
                                  self.backend.name, self.flavour, cache=False)
        for m in report.messages:
            self.losses.add(f"{self.backend.name}: {m}" if not m.startswith(self.backend.name) else m)
        self.losses.dropped_events += report.dropped_events
        if self.backend.scan_losses is not None:  # a backend's own extra reader (optional hook)
            self.backend.scan_losses(self.trace_path, raw / "tracer.stderr", self.losses)
        if self.losses.any and self.status == "ok":
            what = f"{self.losses.dropped_events} events lost" if self.losses.dropped_events else \
                ("losses unknown" if report.unknown else
                 (f"{report.excess_lines} duplicated lines" if report.excess_lines else "tracer warnings"))
            if self.allow_loss:
                self.reason = f"{what} ({'; '.join(self.losses.messages[:3])}); accepted with --allow-loss"
            else:
                self.status, self.reason = "failed", \
                    f"{what}: {'; '.join(self.losses.messages[:3])} (rerun with --allow-loss to accept)"
        try:
            summary = self._summary() if self.target.kind == "workload" else None
        except OSError as exc:  # a full disk: the manifest may still fit, and says why
            summary = None
            self.fail(f"cannot write {exc.filename or self.record}: {exc.strerror} "
                      f"({errno.errorcode.get(exc.errno, exc.errno)})")
        manifest = mf.assemble(self, summary, report)
        note = self.guard.late_note()
        if note:
            manifest["reason"] = (manifest["reason"] + "; " if manifest["reason"] else "") + note
        try:
            mf.write_manifest(self.bundle.path, manifest)
            final = self.bundle.finish()
        except OSError as exc:
            raise CaptureError(self._unwritable(exc)) from None
        return CaptureResult(final, manifest, manifest["status"], manifest["reason"], self.losses)

    def _unwritable(self, exc: OSError) -> str:
        where = exc.filename or self.bundle.path / "manifest.json"
        code = errno.errorcode.get(exc.errno, str(exc.errno))
        return (f"cannot write {where}: {exc.strerror} ({code}); the capture's partial bundle, without "
                f"a manifest, is {self.bundle.path}")

    def _summary(self) -> dict | None:
        summary_path = self.record / "summary.json"
        summary = None
        if summary_path.exists():
            try:
                summary = json.loads(summary_path.read_text())
            except (OSError, json.JSONDecodeError):
                summary = None
        else:
            if self.pump is not None:
                summary = _summary_from_stdout(self.pump.lines)
            elif (self.raw / "workload.stdout").exists():
                summary = _summary_from_kv((self.raw / "workload.stdout").read_text(errors="replace"))
            if summary is not None:
                summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        if self.target_pid is None and summary and isinstance(summary.get("pid"), int):
            self.target_pid = summary["pid"]
        return summary

    # -- all steps
    def run(self) -> CaptureResult:
        try:
            try:
                self.start()
                self.attach()
                self.release()
                self.wait()
            except Interrupted as exc:
                self.interrupted(str(exc))
            except CaptureError as exc:
                self.fail(str(exc))
            except OSError as exc:  # our own files: a full disk, a read-only directory
                self.fail(f"cannot write {exc.filename or self.out_dir}: {exc.strerror} "
                          f"({errno.errorcode.get(exc.errno, exc.errno)})")
            except Exception as exc:  # a bug here must not lose the bundle: record it and go on
                if self.bundle is None:
                    raise
                self.fail(f"capture error {type(exc).__name__}: {exc}")
            if self.bundle is None:  # nothing could be made: no bundle to finish
                raise CaptureError(self.reason or "no bundle was made")
            try:
                self.stop()
            except Interrupted as exc:  # only before `stopping` was set: treat as the first one
                self.interrupted(str(exc))
                self.stop()
            except CaptureError as exc:
                self.fail(str(exc))
            except OSError as exc:
                self.fail(f"cannot write: {exc.strerror} ({errno.errorcode.get(exc.errno, exc.errno)})")
        finally:
            self.guard.stopping = True
        return self.finish()


def run_capture(spec: RunSpec | None, backend: Backend, backend_reason: str, flavour: str, out_dir: Path,
                allow_loss: bool = False, *, workload_argv: list[str] | None = None,
                target: Target | None = None, timeouts: Timeouts | None = None, log=None) -> CaptureResult:
    """Run one capture and return its finished bundle. ``target`` is aiotrace's workload (default,
    from ``spec``), a command or a pid (tracer.capture.target). Never raises for target or tracer
    faults: those become the bundle's status. Raises CaptureError only when no bundle can be made
    (or finished: the message names the partial one)."""
    target = target or Target("workload", argv=list(workload_argv or []))
    with _SignalGuard() as guard:
        session = CaptureSession(target, backend, backend_reason, flavour, out_dir, allow_loss, spec=spec,
                                 timeouts=timeouts, log=log, guard=guard)
        return session.run()



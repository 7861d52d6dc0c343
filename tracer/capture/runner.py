"""`aiotrace capture` orchestration: workload + tracer -> run bundle.

Sequence ("pid" attach, the Linux backends):
  1. make ``<out>/.<run-id>.partial``; start ``python -m workloads <spec> --hold --record ... --json``
     in its own session (a terminal's Ctrl-C reaches only capture, which stops things in order)
  2. read its READY line (pid), start the tracer on that pid, poll until the tracer says its probes
     are attached (backend ``ready``), then write the release word to the workload's stdin
  3. wait for the workload; stop the tracer (SIGINT, bounded waits, then SIGTERM, SIGKILL)
  4. scan for losses, write manifest.json, rename the directory to ``<out>/<run-id>``.
"wrap" backends (FreeBSD) start the workload themselves: steps 1-2 collapse into starting the tracer.

Every path out of :func:`run_capture` (tracer missing, refused, died; workload crashed; Ctrl-C or
SIGTERM) still writes the manifest with a status and reason and renames the bundle.
"""
from __future__ import annotations

import datetime as _dt
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
from tracer.capture.backends import FREEBSD_WORKLOAD, Backend, Context, Losses
from tracer.capture.bundle import Bundle
from tracer.capture.probe import filesystem_of, probe_features
from tracer.errors import CaptureError
from workloads.spec import READY_LINE, RELEASE_WORD, RunSpec

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
    from workloads.spec import PROBE_FUNCTIONS

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


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    n = 0
    with open(path, "rb") as fh:
        while block := fh.read(8 << 20):
            n += block.count(b"\n")
    return n


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
    """Turns the first SIGINT/SIGTERM into Interrupted; once ``cleaning_up`` is set, later ones
    (a second Ctrl-C while bpftrace prints its maps) are only noted, so nothing can abandon a
    bundle half-written. Handlers are restored on exit; off the main thread it does nothing."""

    def __init__(self):
        self.cleaning_up = False
        self.late: list[str] = []
        self.old: dict = {}

    def _handler(self, signum, frame):
        name = signal.Signals(signum).name
        if self.cleaning_up:
            self.late.append(name)
            return
        self.cleaning_up = True  # only one Interrupted per capture
        raise Interrupted(name)

    def __enter__(self) -> "_SignalGuard":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)


def run_capture(spec: RunSpec, backend: Backend, backend_reason: str, flavour: str, out_dir: Path,
                allow_loss: bool = False, *, workload_argv: list[str] | None = None,
                timeouts: Timeouts | None = None, log=None) -> CaptureResult:
    """Run one capture and return its finished bundle. Never raises for workload or tracer faults:
    those become the bundle's status. Raises CaptureError only when no bundle can be made."""
    with _SignalGuard() as guard:
        return _run_capture(spec, backend, backend_reason, flavour, out_dir, allow_loss, workload_argv,
                            timeouts, log, guard)


def _run_capture(spec: RunSpec, backend: Backend, backend_reason: str, flavour: str, out_dir: Path,
                 allow_loss: bool, workload_argv: list[str] | None, timeouts: Timeouts | None, log,
                 guard: _SignalGuard) -> CaptureResult:
    timeouts = timeouts or Timeouts()
    log = log or (lambda msg: None)
    bundle = Bundle.create(out_dir, spec.mode, backend.name)
    raw, record = bundle.path / "raw", bundle.path / "record"
    if workload_argv is None:
        workload_argv = workload_argv_linux(spec, record) if backend.attach == "pid" \
            else workload_argv_freebsd(spec, record)
    started_at, t0 = _utc_now(), time.monotonic()
    clocks = {"realtime_minus_monotonic_ns": time.time_ns() - time.monotonic_ns()}
    commands: list[list[str]] = [list(workload_argv)] if backend.attach == "pid" else []
    status, reason = "ok", None
    losses = Losses()
    workload = tracer = None
    pump: _Pump | None = None
    released_ns: int | None = None
    tracer_env: dict[str, str] = {}
    trace_path = raw / backend.raw_file(flavour, [])
    post_exit: list[int | None] = []
    workload_pid: int | None = None
    files: list[IO] = []

    def fail(why: str) -> None:
        nonlocal status, reason
        if status == "ok":
            status, reason = "failed", why

    try:
        try:
            ctx = Context(flavour=flavour, raw_dir=raw, workload_argv=list(workload_argv))
            wl_stderr = open(raw / "workload.stderr", "wb"); files.append(wl_stderr)
            tr_stderr_path = raw / "tracer.stderr"
            if backend.attach == "pid":
                # 1. the workload, held at its handshake
                try:
                    workload = subprocess.Popen(workload_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                stderr=wl_stderr, env=_workload_env(), start_new_session=True)
                except OSError as exc:
                    raise CaptureError(f"cannot start the workload ({workload_argv[0]}): {exc.strerror}") from None
                pump = _Pump(workload.stdout, raw / "workload.stdout")
                pump.start()
                deadline = time.monotonic() + timeouts.ready_s
                while not pump.ready.wait(POLL_S):
                    if time.monotonic() > deadline:
                        raise CaptureError(f"workload printed no READY line within {timeouts.ready_s:.0f} s")
                if pump.pid is None:
                    workload.wait()
                    raise CaptureError(f"workload {_describe_exit(workload.returncode)} before its READY line: "
                                       f"{_tail(raw / 'workload.stderr') or 'no message'}")
                workload_pid = ctx.pid = pump.pid
                log(f"workload pid {workload_pid} held at its handshake")
                if backend.name in ("bpftrace", "libbpf"):  # their uprobes attach to the engine object
                    ctx.engine_so = engine_object(workload_pid)
            # 2. the tracer
            cmds = backend.commands(ctx)
            tracer_argv, post_cmds = cmds[0], cmds[1:]
            trace_path = raw / backend.raw_file(flavour, tracer_argv)
            commands += cmds
            tracer_env = backend.env(ctx)
            # a wrapping tracer's stdout is the workload's (ktrace execs it; truss and dtrace -c share it)
            tr_out_path = trace_path if backend.stdout_is_trace else \
                raw / ("workload.stdout" if backend.attach == "wrap" else "tracer.stdout")
            tr_out = open(tr_out_path, "wb"); files.append(tr_out)
            tr_err = open(tr_stderr_path, "wb"); files.append(tr_err)
            log("tracer: " + " ".join(tracer_argv))
            try:
                tracer = subprocess.Popen(tracer_argv, stdin=subprocess.DEVNULL, stdout=tr_out, stderr=tr_err,
                                          env={**os.environ, **tracer_env}, start_new_session=True)
            except OSError as exc:
                raise CaptureError(f"cannot start {backend.name} ({tracer_argv[0]}): {exc.strerror}") from None
            if backend.attach == "wrap":
                workload = tracer
            else:
                deadline = time.monotonic() + timeouts.attach_s
                stdout_file = trace_path if backend.stdout_is_trace else raw / "tracer.stdout"
                while not backend.ready(flavour, stdout_file, tr_stderr_path):
                    if tracer.poll() is not None:
                        usable, why = backend.available()  # name the machine's problem when there is one
                        raise CaptureError(f"{backend.name} {_describe_exit(tracer.returncode)} before attaching: "
                                           f"{_tracer_error(tr_stderr_path)}" + ("" if usable else f" ({why})"))
                    if workload.poll() is not None:
                        raise CaptureError(f"workload {_describe_exit(workload.returncode)} while the tracer attached")
                    if time.monotonic() > deadline:
                        raise CaptureError(f"{backend.name} did not report its probes attached within "
                                           f"{timeouts.attach_s:.0f} s")
                    time.sleep(POLL_S)
                log(f"{backend.name} attached; releasing the workload")
                released_ns = time.monotonic_ns()
                try:
                    workload.stdin.write((RELEASE_WORD + "\n").encode())
                    workload.stdin.close()
                except BrokenPipeError:
                    pass
            # 3. run to the end; a tracer dying meanwhile makes the run worthless: stop it
            while workload.poll() is None:
                if backend.attach == "pid" and tracer.poll() is not None and workload.poll() is None:
                    raise CaptureError(f"{backend.name} {_describe_exit(tracer.returncode)} while the workload ran: "
                                       f"{_tracer_error(tr_stderr_path)}")
                time.sleep(0.05)
            if backend.attach == "pid":
                if workload.returncode != 0:
                    fail(f"workload {_describe_exit(workload.returncode)}: "
                         f"{_tail(raw / 'workload.stderr') or 'no message'}")
                if backend.self_exits:
                    try:
                        tracer.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        pass
                elif backend.stdout_is_trace:
                    _wait_quiet(trace_path, tracer)
                note = _terminate(tracer, signal.SIGINT, timeouts.stop_s)
                if note:
                    losses.add(f"{backend.name}: {note} (output may be incomplete)")
            if tracer.returncode != 0:
                why = f"{backend.name} {_describe_exit(tracer.returncode)}: " \
                      f"{_tracer_error(tr_stderr_path)}"
                if backend.attach == "wrap":
                    fail(why)  # for wrap backends this is also how a crashed workload shows
                else:
                    losses.add(why)
            # post-processors (kdump) write their stdout as the trace file
            for argv in post_cmds:
                with open(trace_path, "wb") as out, open(raw / f"{Path(argv[0]).name}.stderr", "wb") as err:
                    try:
                        post_exit.append(subprocess.run(argv, stdout=out, stderr=err).returncode)
                    except OSError as exc:
                        post_exit.append(None)
                        fail(f"cannot run {argv[0]}: {exc.strerror}")
                if post_exit[-1] not in (0, None):
                    fail(f"{argv[0]} exited with status {post_exit[-1]}")
        except Interrupted as exc:
            status, reason = "interrupted", f"capture received {exc} " + (
                "before the workload was released" if released_ns is None and backend.attach == "pid"
                else "while the workload ran")
            log(reason)
        except CaptureError as exc:
            fail(str(exc))
        except Exception as exc:  # a bug here must not lose the bundle: record it and go on
            fail(f"capture error {type(exc).__name__}: {exc}")
        # 4. stop whatever still runs, in order: the workload first, so the tracer sees its end
        guard.cleaning_up = True
        if workload is not None and workload.poll() is None:
            if backend.attach == "pid" and released_ns is None:
                try:
                    workload.stdin.close()  # EOF at the handshake: exits 3 without I/O
                except OSError:
                    pass
                try:
                    workload.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            _terminate(workload, signal.SIGINT, (5.0, 5.0, 5.0))
        if tracer is not None and tracer.poll() is None:
            note = _terminate(tracer, signal.SIGINT, timeouts.stop_s)
            if note:
                losses.add(f"{backend.name}: {note} (output may be incomplete)")
        if pump is not None:
            pump.join(timeout=5)
    finally:
        guard.cleaning_up = True
        for fh in files:
            fh.close()

    # losses, summary, manifest
    backend.scan_losses(trace_path, raw / "tracer.stderr", losses)
    if losses.any and status == "ok":
        what = f"{losses.dropped_events} events lost" if losses.dropped_events else "tracer warnings"
        if allow_loss:
            reason = f"{what} ({'; '.join(losses.messages[:3])}); accepted with --allow-loss"
        else:
            status, reason = "failed", f"{what}: {'; '.join(losses.messages[:3])} (rerun with --allow-loss to accept)"
    summary_path = record / "summary.json"
    summary = None
    if summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text())
        except (OSError, json.JSONDecodeError):
            summary = None
    else:
        if pump is not None:
            summary = _summary_from_stdout(pump.lines)
        elif (raw / "workload.stdout").exists():
            summary = _summary_from_kv((raw / "workload.stdout").read_text(errors="replace"))
        if summary is not None:
            summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if workload_pid is None and summary and isinstance(summary.get("pid"), int):
        workload_pid = summary["pid"]
    features = probe_features(spec.file)  # can O_DIRECT work on that fs; can REAP exist on this OS
    features["o_direct_used"] = spec.direct
    workload_reap = (summary or {}).get("features", {}).get("reap_supported") if isinstance(summary, dict) else None
    if workload_reap is None and summary:
        workload_reap = {1: True, 0: False}.get(summary.get("reap_supported"))  # standalone binary: 1/0/-1
    # only FreeBSD workloads test the flag (in reap mode); on Linux the summary says False by definition
    if workload_reap is not None and platform.system() == "FreeBSD":
        features["reap_supported"] = bool(workload_reap)
        features["reap_detail"] = ("the running kernel accepted" if workload_reap else "the running kernel refused") + \
            " AIO_KEVENT_FLAG_REAP (tested by the workload at run time)"
    uname = platform.uname()
    manifest = {
        "schema": mf.SCHEMA, "run_id": bundle.run_id, "os": uname.system, "kernel": uname.release,
        "machine": uname.machine, "cpus": os.cpu_count() or 1, "hostname": uname.node,
        "backend": backend.name, "backend_reason": backend_reason, "backend_version": backend.version(),
        "flavour": flavour, "command": commands, "tracer_env": tracer_env, "attach": backend.attach,
        "spec": spec.to_dict(), "features": features, "fs": filesystem_of(spec.file), "clocks": clocks,
        "started_at": started_at, "ended_at": _utc_now(), "duration_s": round(time.monotonic() - t0, 3),
        "released_at_monotonic_ns": released_ns,
        "exit": {"workload": _exit_code(workload), "tracer": _exit_code(tracer),
                 **({"post": post_exit} if post_exit else {})},
        "status": status, "reason": reason,
        "losses": {"dropped_events": losses.dropped_events, "messages": losses.as_messages(), "allowed": allow_loss},
        "raw": {"trace": bundle.rel(trace_path), "format": backend.raw_format(flavour),
                "stderr": "raw/tracer.stderr", "lines": _count_lines(trace_path)},
        "workload_pid": workload_pid, "tracer_pid": tracer.pid if tracer is not None else None,
        "summary": "record/summary.json" if summary_path.exists() else None,
        "fixture": False, "aiotrace_version": _version(),
    }
    if guard.late:
        manifest["reason"] = (reason + "; " if reason else "") + \
            f"{', '.join(guard.late)} received again while stopping (ignored until the bundle was written)"
    mf.write_manifest(bundle.path, manifest)
    final = bundle.finish()
    return CaptureResult(final, manifest, status, manifest["reason"], losses)


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("aiotrace")
    except Exception:  # not installed (PYTHONPATH runs)
        from tracer import __version__  # type: ignore[attr-defined]
        return str(__version__)

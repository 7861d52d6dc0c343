"""What a capture traces: aiotrace's own workload, a command the user names, or a running pid.

==========  ===========================================  ==========================================
kind        started by                                   stopped by capture
==========  ===========================================  ==========================================
workload    capture: ``python -m workloads ... --hold``  yes (it ends by itself; SIGINT on Ctrl-C)
            (Linux) or the tracer (FreeBSD, "wrap")
command     capture: ``python -m tracer.capture.launch   yes: at --duration, on Ctrl-C, or it ends
            -- CMD`` held at the same handshake, then    by itself
            exec'd (Linux); the tracer (FreeBSD "wrap":
            ``dtrace -c``, ``ktrace CMD``, ``truss CMD``)
pid         already running; the tracer attaches to it   never: capture only detaches (at
            (and to its descendants alive at attach)     --duration, on Ctrl-C, or when it exits)
==========  ===========================================  ==========================================

A foreign program (command, pid) has no workload record: the model counts its I/Os from kernel
and syscall events and names its threads by their comm (tracer.model). On Linux the per-thread
``/proc/<pid>/task/<tid>/io`` counters are sampled while it runs, and completed by each thread's
taskstats exit counters (:class:`TaskIoSampler`), for rusage attribution.
"""
from __future__ import annotations

import os
import pwd
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tracer.base.errors import CaptureError

PF_KTHREAD = 0x00200000  # include/linux/sched.h: the task is a kernel thread
TASK_IO_FIELDS = ("rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes", "cancelled_write_bytes")
SAMPLE_S = 0.05  # fio reaps its exited job process within ~tens of ms: sample faster than that


@dataclass
class Target:
    kind: str  # "workload" | "command" | "pid"
    argv: list[str] = field(default_factory=list)  # workload argv, or the user's command
    pid: int | None = None  # the pid to attach to (kind "pid")
    duration_s: float | None = None  # end the window after this long (command, pid)
    name: str | None = None  # what reports call it (--label); default: the program and its first words

    @property
    def foreign(self) -> bool:
        return self.kind != "workload"

    @property
    def label(self) -> str:
        """The run id's middle part: the spec's mode for the workload, else the program's name."""
        if self.kind == "pid":
            name = comm_of(self.pid) if self.pid else ""
        else:
            name = Path(self.argv[0]).name if self.argv else ""
        name = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")[:24]
        return name or self.kind

    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.kind == "pid":
            return f"{comm_of(self.pid) or 'pid'} (pid {self.pid})"
        text = " ".join([Path(self.argv[0]).name, *self.argv[1:]])
        return text if len(text) <= 32 else text[:31] + "…"

    def manifest(self) -> dict:
        return {"kind": self.kind, "argv": list(self.argv) if self.kind == "command" else None,
                "pid": self.pid, "duration_s": self.duration_s, "label": self.display_name()}


def command_target(argv: list[str], duration_s: float | None = None, name: str | None = None) -> Target:
    if not argv:
        raise CaptureError("no command after --")
    return Target("command", argv=list(argv), duration_s=duration_s, name=name)


def resolve_command(argv0: str) -> str | None:
    """The executable that execvp would run for ``argv0``, or None."""
    import shutil
    if "/" in argv0:
        return argv0 if os.path.isfile(argv0) and os.access(argv0, os.X_OK) else None
    return shutil.which(argv0)


def _stat_fields(pid: int) -> tuple[str, list[str]]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()


def comm_of(pid: int, tid: int | None = None) -> str:
    path = f"/proc/{pid}/task/{tid}/comm" if tid else f"/proc/{pid}/comm"
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = _stat_fields(pid)[1][0]
    except (OSError, ValueError, IndexError):
        return False
    return state not in ("Z", "X")


def check_pid(pid: int, needs_root: bool) -> str:
    """Refuse a pid this user cannot trace, naming why; return its comm."""
    if pid <= 0:
        raise CaptureError(f"-p {pid}: a pid is a positive integer")
    if pid in ancestors(os.getpid()):
        raise CaptureError(f"-p {pid}: that is aiotrace itself or one of its parents (the shell that "
                           "started it): tracing it would trace aiotrace too")
    try:
        comm, fields = _stat_fields(pid)
    except FileNotFoundError:
        raise CaptureError(f"-p {pid}: no such process") from None
    except OSError as exc:
        raise CaptureError(f"-p {pid}: cannot read /proc/{pid}/stat: {exc.strerror}") from None
    if fields[0] in ("Z", "X"):
        raise CaptureError(f"-p {pid}: process {pid} ({comm}) has already exited (a zombie)")
    if int(fields[6]) & PF_KTHREAD:
        raise CaptureError(f"-p {pid}: {comm} is a kernel thread: it makes no system calls to trace")
    uid = process_uid(pid)
    if os.geteuid() != 0:
        if needs_root:
            raise CaptureError(f"-p {pid}: this backend needs root (euid is {os.geteuid()})")
        if uid is not None and uid != os.getuid():
            raise CaptureError(f"-p {pid}: process {pid} ({comm}) belongs to {_user(uid)}, not to you "
                               f"({_user(os.getuid())}): tracing another user's process needs root")
    return comm


def ancestors(pid: int) -> list[int]:
    """``pid`` and every parent up to (not including) pid 0."""
    out = []
    while pid > 0 and pid not in out:
        out.append(pid)
        try:
            pid = int(_stat_fields(pid)[1][1])
        except (OSError, ValueError, IndexError):
            break
    return out


def process_uid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _user(uid: int) -> str:
    try:
        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def descendants(pid: int) -> list[int]:
    """Processes below ``pid`` now (from /proc/<pid>/task/<tid>/children), depth first."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            for k in kids:
                if k not in out:
                    out.append(k)
                    todo.append(k)
    return out


def read_task_io(pid: int, tid: int) -> dict[str, int] | None:
    try:
        text = Path(f"/proc/{pid}/task/{tid}/io").read_text()
    except OSError:
        return None
    vals = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in TASK_IO_FIELDS:
            vals[key] = int(value)
    return vals


class TaskIoSampler(threading.Thread):
    """Per-thread ``/proc/<pid>/task/<tid>/io`` and comm of the target and its descendants over
    the window. ``baseline()`` marks the window start; each thread's figures are its final
    counters minus its baseline (zero for threads born later).

    Final counters come from two places: a sample every SAMPLE_S, and, where the kernel allows
    (root, CONFIG_TASKSTATS), the taskstats message each thread's exit sends
    (tracer.capture.taskstats). Without the listener a thread that exits loses what it did after
    its last sample (fio's job process can do all its reads between two samples); the file's
    header says which case a bundle is in. Exit counters are rounded down to whole KiB, so each
    field keeps the larger of the last sample and the exit value."""

    def __init__(self, root_pid: int, listen_exits: bool = True):
        super().__init__(daemon=True)
        self.root = root_pid
        self.first: dict[tuple[int, int], dict[str, int]] = {}
        self.last: dict[tuple[int, int], dict[str, int]] = {}
        self.comm: dict[tuple[int, int], str] = {}
        self.seen_ns: dict[tuple[int, int], list[int]] = {}
        self.exited: set[tuple[int, int]] = set()
        self.pids: set[int] = {root_pid}  # the target's processes seen so far
        self.based = False
        self._stop_event = threading.Event()
        self.listener, self.listener_note = None, "not asked for"
        if listen_exits:
            from tracer.capture.taskstats import open_listener
            self.listener, self.listener_note = open_listener()

    def _record(self, key: tuple[int, int], vals: dict[str, int], now: int, comm: str) -> None:
        if key not in self.first:
            self.first[key] = vals if not self.based else dict.fromkeys(TASK_IO_FIELDS, 0)
            self.seen_ns[key] = [now, now]
        prev = self.last.get(key)
        self.last[key] = vals if prev is None else {f: max(prev.get(f, 0), vals.get(f, 0)) for f in TASK_IO_FIELDS}
        self.seen_ns[key][1] = now
        if comm:
            self.comm[key] = comm

    def _drain_exits(self, now: int) -> None:
        if self.listener is None:
            return
        for ex in self.listener.drain():
            pid = ex.tgid if ex.tgid is not None else next((p for p, t in self.last if t == ex.tid), None)
            # a process born and gone between two samples is ours when its parent is
            if pid is None or (pid not in self.pids and ex.ppid not in self.pids):
                continue
            self.pids.add(pid)
            self._record((pid, ex.tid), ex.io, now, ex.comm)
            self.exited.add((pid, ex.tid))

    def sample(self) -> None:
        now = time.monotonic_ns()
        self._drain_exits(now)
        for pid in [self.root, *descendants(self.root)]:
            self.pids.add(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    tid = int(task.name)
                except ValueError:
                    continue
                if (pid, tid) in self.exited:
                    continue
                vals = read_task_io(pid, tid)
                if vals is None:
                    continue
                self._record((pid, tid), vals, now, comm_of(pid, tid))

    def baseline(self) -> None:
        """Start of the window: what each live thread had done so far is not counted."""
        if self.listener is not None:
            self.listener.drain()  # threads that exited before the window are not the window's
        self.first.clear()
        self.last.clear()
        self.sample()
        self.based = True

    def run(self) -> None:
        while not self._stop_event.wait(SAMPLE_S):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)
        self.sample()
        if self.listener is not None:
            self.listener.close()

    def header(self) -> str:
        if self.listener is None:
            how = (f"sampled every {SAMPLE_S} s, so a thread that exited may miss its last {SAMPLE_S} s "
                   f"(no taskstats exit listener: {self.listener_note})")
        else:
            how = (f"sampled every {SAMPLE_S} s plus each thread's taskstats exit counters, so threads "
                   "that exited are complete")
            if self.listener.dropped:
                how += f"; {self.listener.dropped} exit message batch(es) overran the socket buffer"
        return f"# /proc/<pid>/task/<tid>/io over the capture window (final - baseline); {how}"

    def write(self, path: Path) -> None:
        cols = ("pid", "tid", "comm", "first_ns", "last_ns", *TASK_IO_FIELDS)
        lines = [self.header(), "\t".join(cols)]
        for key in sorted(self.last):
            first, last = self.first.get(key, {}), self.last[key]
            vals = [max(last.get(f, 0) - first.get(f, 0), 0) for f in TASK_IO_FIELDS]
            comm = self.comm.get(key, "").replace("\t", " ")
            lines.append("\t".join(map(str, (*key, comm, *self.seen_ns[key], *vals))))
        path.write_text("\n".join(lines) + "\n")


def launcher_argv(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "tracer.capture.launch", "--", *argv]

"""The completion-mode registry: every fact about a mode in one row.

Base layer: imports nothing from aiotrace but ``tracer.base.schema``'s role names, so ``workloads/``
(spec, driver), the capture layer, the model and the analyses all read it. Adding a mode means one
C file (``workloads/mode_*.c`` plus its entry in engine.c's ``all_modes``) and one row here;
``tests/test_modes.py`` checks the two agree.

A row holds, per mode:

* ``oses``: where the C engine builds it (engine.c's ``#if`` blocks around ``all_modes``);
* ``posix``: it submits with aio_read/aio_write per I/O (or lio_listio batches);
* ``lio``: ``--submit lio`` is allowed (every POSIX mode);
* ``roles``: per OS, the syscalls this mode makes that have a role (submit, wait, status, result;
  anything else is ``other``); the model's role table is their union per OS
  (io_uring_enter is ``wait`` when it submits nothing: see ``tracer.model.roles``);
* ``floor``: per OS, the fewest syscalls per I/O by role, as terms of ``b`` (submit batch) and
  ``D`` (depth): ``"1"``, ``"1/b"``, ``"1/D"``, or ``"1|1/b"`` (1 per I/O, 1/b with ``--submit lio``);
  roles not named are 0 (tracer.analysis.amplification's docstring explains each row);
* ``release``: per OS, (kernel completion point, release point) a full trace of the mode sees
  (tracer.analysis.free_timing);
* ``frees_at_completion``: the kernel frees the job at completion (D33144's REAP), so there is
  nothing left to reap; every other mode holds it until aio_return/aio_waitcomplete;
* ``needs``: why the mode may be unavailable on an OS where it builds (the C ``available`` hook
  checks it at run time; ``aiotrace modes`` prints the C side's exact reason).
"""
from __future__ import annotations

from dataclasses import dataclass

LINUX, FREEBSD = "Linux", "FreeBSD"

# FreeBSD submit syscalls of every POSIX mode, old ABIs included (ktrace/truss name them so).
FREEBSD_SUBMIT = ("aio_read", "aio_write", "aio_readv", "aio_writev", "lio_listio", "aio_fsync",
                  "compat6.aio_read", "compat6.aio_write", "compat6.lio_listio")
_FB_SUBMIT = dict.fromkeys(FREEBSD_SUBMIT, "submit")
_FB_STATUS = {"aio_error": "status", "compat6.aio_error": "status"}
_FB_RESULT = {"aio_return": "result", "compat6.aio_return": "result"}
_FB_KEVENT = {"kevent": "wait", "compat11.kevent": "wait"}

# Where a FreeBSD job is completed and freed: aio_complete() and aio_free_entry() in
# sys/kern/vfs_aio.c (the dscripts' job_done / job_free probes).
_FB_RELEASE = ("aio_complete (job_done)", "aio_free_entry (job_free)")
# Linux release points (tracer.model._linux_free_points joins them with no per-I/O probe).
_URING_RELEASE = ("io_uring_complete (CQE posted)", "CQ head advanced (the workload's reap)")
_LIBAIO_RELEASE = ("block completion of the I/O's sector", "io_getevents return that harvested it (ring slot freed)")
_GLIBC_RELEASE = ("glibc helper pread/pwrite return", "aio_return (user-space state, no kernel object)")


@dataclass(frozen=True)
class Mode:
    name: str
    oses: tuple[str, ...]
    posix: bool
    lio: bool
    roles: dict[str, dict[str, str]]
    floor: dict[str, dict[str, str]]
    release: dict[str, tuple[str, str]]
    needs: str = ""
    summary: str = ""
    frees_at_completion: bool = False  # the kernel frees the job when it completes (REAP), not at the reap


MODES: tuple[Mode, ...] = (
    Mode("aio-poll", (LINUX, FREEBSD), posix=True, lio=True,
         roles={LINUX: {}, FREEBSD: {**_FB_SUBMIT, **_FB_STATUS, **_FB_RESULT}},
         floor={LINUX: {"other": "1"}, FREEBSD: {"submit": "1|1/b", "status": "1", "result": "1"}},
         release={LINUX: _GLIBC_RELEASE, FREEBSD: _FB_RELEASE},
         summary="poll aio_error until a request is done, then aio_return"),
    Mode("aio-suspend", (LINUX, FREEBSD), posix=True, lio=True,
         roles={LINUX: {}, FREEBSD: {**_FB_SUBMIT, "aio_suspend": "wait", **_FB_STATUS, **_FB_RESULT}},
         floor={LINUX: {"other": "1"},
                FREEBSD: {"submit": "1|1/b", "wait": "1/D", "status": "1", "result": "1"}},
         release={LINUX: _GLIBC_RELEASE, FREEBSD: _FB_RELEASE},
         summary="aio_suspend over the in-flight aiocbs, then aio_error + aio_return"),
    Mode("libaio", (LINUX,), posix=False, lio=False,
         roles={LINUX: {"io_submit": "submit", "io_getevents": "wait", "io_pgetevents": "wait"}},
         floor={LINUX: {"submit": "1/b", "wait": "1/D"}},
         release={LINUX: _LIBAIO_RELEASE},
         needs="an io context (io_setup; fs.aio-max-nr not exhausted)",
         summary="io_submit batches, io_getevents(min_nr=r)"),
    Mode("io_uring", (LINUX,), posix=False, lio=False,
         roles={LINUX: {"io_uring_enter": "submit"}},
         floor={LINUX: {"submit": "1/b"}},
         release={LINUX: _URING_RELEASE},
         needs="io_uring_setup allowed (kernel >= 5.1, kernel.io_uring_disabled=0)",
         summary="io_uring_enter submits and waits in one call"),
    Mode("io_uring-sqpoll", (LINUX,), posix=False, lio=False,
         roles={LINUX: {"io_uring_enter": "submit"}},
         floor={LINUX: {}},
         release={LINUX: _URING_RELEASE},
         needs="io_uring_setup with IORING_SETUP_SQPOLL allowed",
         summary="a kernel thread polls the SQ; completions read from the CQ in memory"),
    Mode("waitcomplete", (FREEBSD,), posix=True, lio=True,
         roles={FREEBSD: {**_FB_SUBMIT, "aio_waitcomplete": "wait"}},
         floor={FREEBSD: {"submit": "1|1/b", "wait": "1"}},
         release={FREEBSD: _FB_RELEASE},
         summary="aio_waitcomplete returns one completed aiocb and its result"),
    Mode("kevent", (FREEBSD,), posix=True, lio=True,
         roles={FREEBSD: {**_FB_SUBMIT, **_FB_KEVENT, **_FB_RESULT}},
         floor={FREEBSD: {"submit": "1|1/b", "wait": "1/D", "result": "1"}},
         release={FREEBSD: _FB_RELEASE},
         summary="SIGEV_KEVENT completions from kevent, then aio_return"),
    Mode("kevent-error", (FREEBSD,), posix=True, lio=True,
         roles={FREEBSD: {**_FB_SUBMIT, **_FB_KEVENT, **_FB_STATUS, **_FB_RESULT}},
         floor={FREEBSD: {"submit": "1|1/b", "wait": "1/D", "status": "1", "result": "1"}},
         release={FREEBSD: _FB_RELEASE},
         summary="kevent, then aio_error and aio_return per I/O"),
    Mode("reap", (FREEBSD,), posix=True, lio=True,
         roles={FREEBSD: {**_FB_SUBMIT, **_FB_KEVENT}},
         floor={FREEBSD: {"submit": "1|1/b", "wait": "1/D"}},
         release={FREEBSD: _FB_RELEASE},
         needs="a kernel with D33144 (AIO_KEVENT_FLAG_REAP); a stock kernel refuses it with EINVAL",
         frees_at_completion=True,
         summary="kevent carries the result in kev.data; the kernel frees the job at completion"),
)

BY_NAME: dict[str, Mode] = {m.name: m for m in MODES}
ALL_MODES: tuple[str, ...] = tuple(BY_NAME)
OSES: tuple[str, ...] = (LINUX, FREEBSD)


def modes_for(os_name: str) -> tuple[str, ...]:
    """Modes the engine builds on ``os_name``, in registry order (the C table's order)."""
    return tuple(m.name for m in MODES if os_name in m.oses)


LINUX_MODES = modes_for(LINUX)
FREEBSD_MODES = modes_for(FREEBSD)
POSIX_MODES = tuple(m.name for m in MODES if m.posix)
# FreeBSD modes that hold a completed job until the program reaps it (what REAP would change)
LEGACY_FREEBSD_MODES = tuple(m.name for m in MODES if FREEBSD in m.oses and not m.frees_at_completion)
LIO_MODES = tuple(m.name for m in MODES if m.lio)


def get(name: str) -> Mode:
    """The row of mode ``name``; KeyError when there is none."""
    return BY_NAME[name]


def role_map(os_name: str) -> dict[str, str]:
    """syscall -> role for traces of ``os_name`` (Linux's for an unknown OS): the union of its modes' roles."""
    os_name = os_name if os_name in OSES else LINUX
    out: dict[str, str] = {}
    for m in MODES:
        for name, role in m.roles.get(os_name, {}).items():
            if out.setdefault(name, role) != role:
                raise AssertionError(f"mode {m.name} gives {name} role {role}, another mode {out[name]}")
    return out


def _os_of(mode: Mode, os_name: str | None) -> str:
    if os_name in mode.oses:
        return os_name
    if len(mode.oses) == 1:  # e.g. a bare trace without an OS: the mode says which
        return mode.oses[0]
    raise ValueError(f"mode {mode.name!r} differs by OS and the OS is {os_name!r}")


def floor_terms(name: str, os_name: str | None) -> dict[str, str]:
    """The row's floor terms for ``os_name`` (see the module docstring); ValueError if unknown."""
    mode = BY_NAME.get(name)
    if mode is None:
        raise ValueError(f"no floor known for mode {name!r}")
    return mode.floor[_os_of(mode, os_name)]


def release_point(name: str, os_name: str | None) -> tuple[str, str] | None:
    """(kernel completion point, release point) of ``name`` on ``os_name``; None when unknown."""
    mode = BY_NAME.get(name)
    if mode is None:
        return None
    try:
        return mode.release[_os_of(mode, os_name)]
    except ValueError:
        return None


def unavailable_reason(name: str, os_name: str) -> str:
    """Why ``name`` cannot run on ``os_name`` from the registry alone ('' when it builds there;
    the C side's ``available`` hook may still refuse it for ``needs``)."""
    mode = BY_NAME.get(name)
    if mode is None:
        return f"unknown mode '{name}' (known: {', '.join(ALL_MODES)})"
    if os_name in mode.oses:
        return ""
    return f"{'/'.join(mode.oses)}-only mode (this is {os_name})"

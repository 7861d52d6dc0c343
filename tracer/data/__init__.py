"""Reference data kept in the repo, each file with its source in its header.

- ``freebsd_syscalls.tsv``: FreeBSD amd64 syscall number -> name (with compat names such as
  ``compat11.kevent``, valid for a range of FreeBSD versions).
- ``freebsd_vfs_aio_functions.txt``: functions of sys/kern/vfs_aio.c, their linkage and whether an
  fbt probe can be relied on (``kept``) or the function may be inlined (``may-inline``).
- ``linux_x86_64_syscalls.tsv``: Linux x86_64 syscall number -> name, generated from the UAPI
  header by ``python -m tracer.data.gen_linux_syscalls``.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
FREEBSD_SYSCALLS_TSV = DATA_DIR / "freebsd_syscalls.tsv"
FREEBSD_VFS_AIO_FUNCTIONS = DATA_DIR / "freebsd_vfs_aio_functions.txt"
LINUX_SYSCALLS_TSV = DATA_DIR / "linux_x86_64_syscalls.tsv"


def _rows(path: Path) -> list[dict[str, str]]:
    """Rows of a tab-separated file whose '#' lines are comments and whose first other line is the header."""
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


@dataclass(frozen=True)
class FreeBSDSyscall:
    nr: int
    name: str
    freebsd: str  # all | <=11 | >=12 | >=13 | >=14
    notes: str

    def valid_on(self, major: int) -> bool:
        """True when FreeBSD `major` (e.g. 14) gives number `nr` this name."""
        if self.freebsd == "all":
            return True
        op, ver = self.freebsd[:2], int(self.freebsd[2:])
        return major <= ver if op == "<=" else major >= ver


@lru_cache(maxsize=None)
def freebsd_syscalls() -> tuple[FreeBSDSyscall, ...]:
    """Every row of freebsd_syscalls.tsv (one number may appear twice, for different versions)."""
    return tuple(FreeBSDSyscall(int(r["nr"]), r["name"], r["freebsd"], r["notes"] or "")
                 for r in _rows(FREEBSD_SYSCALLS_TSV))


def freebsd_syscall_names(major: int | None = None) -> dict[int, str]:
    """Number -> name on FreeBSD `major` (newest names when None: 363 = compat11.kevent, 560 = kevent)."""
    out: dict[int, str] = {}
    for sc in freebsd_syscalls():
        if sc.valid_on(major if major is not None else 99):
            out[sc.nr] = sc.name
    return out


@lru_cache(maxsize=None)
def vfs_aio_functions() -> dict[str, dict[str, str]]:
    """Function name -> {"linkage": global|static, "probe": kept|may-inline, "notes": ...}."""
    return {r["function"]: {"linkage": r["linkage"], "probe": r["probe"], "notes": r["notes"] or ""}
            for r in _rows(FREEBSD_VFS_AIO_FUNCTIONS)}


UNISTD_H = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")  # what the TSV is generated from


@lru_cache(maxsize=None)
def linux_syscall_names() -> dict[int, str]:
    """Linux x86_64 syscall number -> name (numbers newer than the generating header are absent).
    Read from linux_x86_64_syscalls.tsv, or, if that file is missing, straight from the kernel
    header it is generated from; {} when neither exists."""
    if LINUX_SYSCALLS_TSV.is_file():
        return {int(r["nr"]): r["name"] for r in _rows(LINUX_SYSCALLS_TSV)}
    if UNISTD_H.is_file():
        from tracer.data.gen_linux_syscalls import parse_unistd
        return parse_unistd(UNISTD_H.read_text())
    return {}

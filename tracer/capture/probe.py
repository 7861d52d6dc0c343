"""Machine facts recorded in a bundle's manifest and shown by `aiotrace doctor`: the filesystem
a file lives on, whether O_DIRECT really works there, and whether REAP can exist on this OS."""
from __future__ import annotations

import mmap
import os
import platform
import subprocess
import tempfile
from pathlib import Path

BLOCK = 4096


def filesystem_of(path: str | os.PathLike) -> dict:
    """``{path, type, mountpoint, source}`` of the filesystem holding ``path`` (or, when it does not
    exist yet, its directory). Linux: /proc/self/mountinfo; elsewhere: ``df -T``."""
    p = Path(path).absolute()
    probe = p if p.exists() else p.parent
    probe = Path(os.path.realpath(probe))
    info = {"path": str(p), "type": None, "mountpoint": None, "source": None}
    mountinfo = Path("/proc/self/mountinfo")
    if mountinfo.exists():
        best = None
        for line in mountinfo.read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(fields) < 5 or len(rfields) < 2:
                continue
            mnt = fields[4].replace("\\040", " ")
            if str(probe) == mnt or str(probe).startswith(mnt.rstrip("/") + "/"):
                if best is None or len(mnt) >= len(best[0]):  # last, longest mount wins (stacked mounts)
                    best = (mnt, rfields[0], rfields[1])
        if best:
            info.update(mountpoint=best[0], type=best[1], source=best[2])
        return info
    try:  # FreeBSD: df -T prints "Filesystem Type ... Mounted on"
        out = subprocess.run(["df", "-T", str(probe)], capture_output=True, text=True, timeout=10).stdout
        rows = out.strip().splitlines()
        if len(rows) >= 2:
            cols = rows[-1].split()
            info.update(source=cols[0], type=cols[1], mountpoint=cols[-1])
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


def o_direct_works(path: str | os.PathLike) -> tuple[bool | None, str]:
    """Try a real O_DIRECT open and one aligned transfer on the filesystem of ``path``.

    Reads the file when it exists (no change to it), else writes and removes a scratch file in
    its directory. Returns (works, detail); works is None when it could not be tried."""
    flag = getattr(os, "O_DIRECT", None)
    if flag is None:
        return None, "this OS has no O_DIRECT"
    p = Path(path).absolute()
    buf = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT wants
    try:
        if p.is_file() and p.stat().st_size >= BLOCK:
            fd = os.open(p, os.O_RDONLY | flag)
            try:
                n = os.preadv(fd, [buf], 0)
            finally:
                os.close(fd)
            return True, f"O_DIRECT open + {n}-byte aligned read of {p} worked"
        directory = p.parent if p.parent.is_dir() else Path.cwd()
        fd, name = tempfile.mkstemp(prefix=".aiotrace-odirect-", dir=directory)
        os.close(fd)
        try:
            fd = os.open(name, os.O_RDWR | flag)
            try:
                n = os.pwritev(fd, [buf], 0)
            finally:
                os.close(fd)
        finally:
            os.unlink(name)
        return True, f"O_DIRECT open + {n}-byte aligned write in {directory} worked"
    except OSError as exc:
        return False, f"O_DIRECT failed on {p if p.exists() else p.parent}: {exc.strerror} (errno {exc.errno})"
    finally:
        buf.close()


def reap_support() -> tuple[bool, str]:
    """REAP (AIO_KEVENT_FLAG_REAP, FreeBSD review D33144) can only exist on a FreeBSD kernel; there
    the workload detects it by submitting one I/O with the flag (EINVAL on stock kernels)."""
    if platform.system() != "FreeBSD":
        return False, f"AIO_KEVENT_FLAG_REAP is a FreeBSD kqueue flag (D33144); n/a on {platform.system()}"
    return False, "not probed by capture: the workload tests it at run time (its summary features win)"


def probe_features(path: str | os.PathLike) -> dict:
    reap, reap_detail = reap_support()
    odirect, odirect_detail = o_direct_works(path)
    return {"reap_supported": reap, "reap_detail": reap_detail, "o_direct": odirect, "o_direct_detail": odirect_detail}

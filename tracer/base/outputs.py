"""Writing a command's output: checked before the work starts, written under a temp name and
renamed, and any OSError (read-only directory, full disk) turned into one OutputError line that
names the path and the errno."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tracer.base.errors import OutputError, writing


def check_writable(target: str | os.PathLike, *, is_dir: bool = False) -> Path:
    """Refuse early (before any run or parse) an output whose directory cannot take a file:
    creates and removes a probe file next to ``target`` (inside it when ``is_dir`` and it exists).
    Returns ``target`` as a Path."""
    target = Path(target)
    where = target if is_dir and target.is_dir() else target.parent
    existing = where
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot write {target}: {existing} is not a directory")
    probe = existing / f".aiotrace-write-probe-{os.getpid()}"
    with writing(target):
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    return target


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` for a temp name beside ``path``, then rename it to ``path``; on any
    failure the temp file is removed, an OSError becomes an OutputError naming ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with writing(path):
            write(tmp)
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path

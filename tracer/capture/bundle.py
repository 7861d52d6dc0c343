"""Run bundle directories: ids, a temp name while a capture runs, one rename when it is complete.

Layout (see /work/shared/DESIGN.md and tracer.capture.manifest for manifest.json)::

    <out>/<run-id>/manifest.json
                   raw/<trace file>, raw/tracer.stderr, raw/workload.stdout, raw/workload.stderr
                   record/ (the workload's own ios.parquet, threads.parquet, summary.json)
                   cache/  (parser Parquet cache)

While a capture runs its directory is ``<out>/.<run-id>.partial``: a reader globbing
``<out>/*/manifest.json`` never sees a half-written bundle. The temp directory is made with
``mkdir`` (fails if it exists) and the final name must not exist either, so two captures
never share a directory, even started in the same second.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import time
from pathlib import Path

from tracer.base.errors import CaptureError

PARTIAL_SUFFIX = ".partial"
RUN_ID_RE = re.compile(r"^(\d{8}T\d{6}Z)-([a-z0-9_-]+)-([a-z]+)-([0-9a-f]{6})$")
SUBDIRS = ("raw", "record", "cache")


def _why(exc: OSError) -> str:
    """``Read-only file system (EROFS)``: the message and the errno's name."""
    return f"{exc.strerror} ({errno.errorcode.get(exc.errno, exc.errno)})"


def make_run_id(mode: str, backend: str, when: float | None = None) -> str:
    """``<UTC YYYYmmddTHHMMSSZ>-<mode>-<backend>-<6 hex>``; the 6 hex digits are random."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if when is None else when))
    return f"{stamp}-{mode}-{backend}-{secrets.token_hex(3)}"


class Bundle:
    """One capture's directory. Create with :meth:`create`, fill ``path``, then :meth:`finish`."""

    def __init__(self, out_dir: Path, run_id: str, path: Path):
        self.out_dir, self.run_id, self.path = out_dir, run_id, path
        self.final_path = out_dir / run_id
        self.finished = False

    @classmethod
    def create(cls, out_dir: Path | str, mode: str, backend: str, tries: int = 8) -> "Bundle":
        """Make ``<out>/.<run-id>.partial`` (and raw/, record/, cache/) under a fresh run id."""
        out = Path(out_dir).absolute()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaptureError(f"cannot create output directory {exc.filename or out}: {_why(exc)}") from None
        if not out.is_dir():
            raise CaptureError(f"output path {out} is not a directory")
        for _ in range(tries):
            run_id = make_run_id(mode, backend)
            tmp = out / f".{run_id}{PARTIAL_SUFFIX}"
            if (out / run_id).exists():
                continue
            try:
                tmp.mkdir()  # atomic: fails if another capture made it first
            except FileExistsError:
                continue
            except OSError as exc:
                raise CaptureError(f"cannot create bundle directory in {out}: {_why(exc)}") from None
            try:
                for sub in SUBDIRS:
                    (tmp / sub).mkdir()
            except OSError as exc:
                shutil.rmtree(tmp, ignore_errors=True)  # nothing worth keeping was written
                raise CaptureError(f"cannot create {exc.filename}: {_why(exc)}") from None
            return cls(out, run_id, tmp)
        raise CaptureError(f"could not find a free run id in {out} after {tries} tries")

    def finish(self) -> Path:
        """Rename the temp directory to its final name; refuse to replace anything there."""
        if self.finished:
            return self.final_path
        if not (self.path / "manifest.json").is_file():
            raise CaptureError(f"bundle {self.path} has no manifest.json; not renaming it")
        # rename(2) would silently replace an empty directory, so check first; the run id's
        # random part makes a race here a 1 in 16M event within one second.
        if self.final_path.exists():
            raise CaptureError(f"bundle directory {self.final_path} already exists; keeping {self.path}")
        os.rename(self.path, self.final_path)
        self.path = self.final_path
        self.finished = True
        return self.final_path

    def discard(self) -> None:
        """Remove an unfinished temp directory (used only when nothing worth keeping was written)."""
        if not self.finished and self.path.name.endswith(PARTIAL_SUFFIX):
            shutil.rmtree(self.path, ignore_errors=True)

    def rel(self, path: Path) -> str:
        """``path`` relative to the bundle root, as stored in the manifest."""
        return str(Path(path).relative_to(self.path))

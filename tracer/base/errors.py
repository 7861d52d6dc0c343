"""One error type per layer; the CLI turns any of them into a one-line message and exit 2."""
from __future__ import annotations

import errno
from contextlib import contextmanager


class AiotraceError(Exception):
    """Base: a problem with the user's input or machine, not a bug."""


class SpecError(AiotraceError):
    """A run spec that cannot run (depth 0, batch > depth, unsupported mode...)."""


class WorkloadError(AiotraceError):
    """The workload failed: I/O error, lost/duplicated completion, verification failure."""


class CaptureError(AiotraceError):
    """A tracer could not attach, died, or lost events."""


class ParseError(AiotraceError):
    """A trace that cannot be parsed; names file, line number and reason."""

    def __init__(self, reason: str, path: str | None = None, line: int | None = None):
        self.reason, self.path, self.line = reason, path, line
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(f"{where}{reason}")


class AnalysisError(AiotraceError):
    """A bundle that lacks the tables or events an analysis needs."""


class OutputError(AiotraceError):
    """An output that cannot be written (read-only directory, full disk): names the path and errno."""

    @classmethod
    def of(cls, path, exc: OSError) -> "OutputError":
        return cls(f"cannot write {path}: {describe_oserror(exc, with_path=False)}")


def describe_oserror(exc: OSError, with_path: bool = True) -> str:
    """'PATH: strerror (ENAME)' for an OSError, the errno named so users can search for it."""
    name = errno.errorcode.get(exc.errno or 0, "")
    text = (exc.strerror or str(exc)) + (f" ({name})" if name else "")
    path = exc.filename if with_path else None
    return f"{path}: {text}" if path else text


@contextmanager
def writing(path):
    """Turn any OSError raised while writing ``path`` into an OutputError naming it."""
    try:
        yield
    except OSError as exc:
        raise OutputError.of(path, exc) from None

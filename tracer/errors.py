"""One error type per layer; the CLI turns any of them into a one-line message and exit 2."""


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

"""The run spec: what one workload run does. Shared by `aiotrace run`, `capture` and `sweep`."""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from dataclasses import dataclass, field

import click

from tracer.base.errors import SpecError
# Mode facts live in the registry (tracer.base.modes); these names are kept for importers.
from tracer.base.modes import ALL_MODES, FREEBSD_MODES, LINUX_MODES, LIO_MODES, POSIX_MODES  # noqa: F401

OPS = ("read", "write", "write-fsync")
PATTERNS = ("rand", "seq")
THREADS = ("single", "split")  # split: a submitter thread and a separate reaper thread
SUBMITS = ("single", "lio")

# Names of the workload's probe functions (non-inlined C, uprobe/pid-provider targets) and its
# USDT probes (provider "aiotrace"). dscripts/ and the capture layer use exactly these.
PROBE_FUNCTIONS = {
    "window_start": "aiotrace_probe_window_start",  # (uint64 planned_ios)
    "window_stop": "aiotrace_probe_window_stop",  # (uint64 completed_ios)
    "submit": "aiotrace_probe_submit",  # (uint64 first_id, uint32 count, int64 ret)
    "reap": "aiotrace_probe_reap",  # (uint64 id, int64 result, uint32 batch)
    "sync": "aiotrace_probe_sync",  # (uint64 monotonic_ns)
}
USDT_PROVIDER = "aiotrace"

# Start handshake: with --hold the workload loads everything, opens its file, then prints
# READY_LINE.format(pid=...) on stdout (flushed) and blocks until a line arrives on stdin.
# "go\n" releases it; EOF or anything else makes it exit 3 without doing I/O.
def default_data_file() -> str:
    """Where the data file lives when --file is not given: ``$XDG_CACHE_HOME/aiotrace/aiotrace.dat``,
    or ``~/.cache/aiotrace/aiotrace.dat`` when XDG_CACHE_HOME is unset or not absolute (XDG Base
    Directory spec). Never the current directory. The directory is made on first use (driver.prepare)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return str(root / "aiotrace" / "aiotrace.dat")


U32, U64 = (1 << 32) - 1, (1 << 64) - 1
OFF_MAX = (1 << 63) - 1  # off_t: the file size and every offset
MAX_DURATION_S = U64 / 1e9 / 2  # duration_ns is a uint64; half its range keeps now + duration in it

READY_LINE = "AIOTRACE-READY pid={pid}"
RELEASE_WORD = "go"


@dataclass(frozen=True)
class RunSpec:
    mode: str
    op: str = "read"
    depth: int = 32  # I/Os in flight at most
    batch: int = 1  # I/Os per submit call
    reap_batch: int = 1  # minimum completions per wait call
    bs: int = 4096  # block size, bytes
    count: int = 10000  # I/Os to do (ignored when duration is set)
    duration: float | None = None  # seconds; overrides count
    file: str = field(default_factory=lambda: default_data_file())  # see default_data_file()
    file_size: int = 64 << 20
    direct: bool = False  # O_DIRECT
    pattern: str = "rand"
    seed: int = 1
    threads: str = "single"
    submit: str = "single"
    verify: bool = True  # reads check the data's offset stamps; False: any existing file or device, read-only
    extra: dict = field(default_factory=dict)

    def validate(self, os_modes: tuple[str, ...] | None = None) -> "RunSpec":
        if self.mode not in ALL_MODES:
            raise SpecError(f"unknown mode '{self.mode}' (known: {', '.join(ALL_MODES)})")
        if os_modes is not None and self.mode not in os_modes:
            raise SpecError(f"mode '{self.mode}' is not available on this OS (available: {', '.join(os_modes)})")
        if self.op not in OPS:
            raise SpecError(f"unknown op '{self.op}' (known: {', '.join(OPS)})")
        # The C engine holds these in fixed-width fields (engine.h struct aiot_spec): refuse what
        # does not fit before anything runs, instead of an OverflowError from cffi mid-start.
        for name, value, low, high in (("--depth", self.depth, 1, U32), ("--batch", self.batch, 1, U32),
                                       ("--reap-batch", self.reap_batch, 1, U32), ("--bs", self.bs, 512, U32),
                                       ("--count", self.count, 1, U64), ("--seed", self.seed, 0, U64),
                                       ("--file-size", self.file_size, 512, OFF_MAX)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(f"{name} must be an integer, got {value!r}")
            if not low <= value <= high:
                raise SpecError(f"{name} {value} is out of range ({low} to {high})")
        if self.duration is not None and not (isinstance(self.duration, (int, float))
                                              and math.isfinite(self.duration) and 0 < self.duration <= MAX_DURATION_S):
            raise SpecError(f"--duration must be a positive number of seconds up to {MAX_DURATION_S:.0f}, "
                            f"got {self.duration!r}")
        if self.batch < 1 or self.batch > self.depth:
            raise SpecError(f"submit batch {self.batch} must be between 1 and depth {self.depth}")
        if self.reap_batch < 1 or self.reap_batch > self.depth:
            raise SpecError(f"reap batch {self.reap_batch} must be between 1 and depth {self.depth}")
        if self.bs < 512 or self.bs % 512:
            raise SpecError(f"block size {self.bs} must be a positive multiple of 512")
        if self.file_size < self.bs:
            raise SpecError(f"file size {self.file_size} is smaller than one block ({self.bs})")
        if self.pattern not in PATTERNS:
            raise SpecError(f"unknown pattern '{self.pattern}' (known: {', '.join(PATTERNS)})")
        if self.threads not in THREADS:
            raise SpecError(f"unknown threads '{self.threads}' (known: {', '.join(THREADS)})")
        if self.submit not in SUBMITS:
            raise SpecError(f"unknown submit '{self.submit}' (known: {', '.join(SUBMITS)})")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise SpecError(f"unknown run spec keys: {', '.join(sorted(unknown))}")
        return cls(**d)

    def to_args(self) -> list[str]:
        """The CLI options that reproduce this spec (for `python -m workloads` and dry runs)."""
        args = ["--mode", self.mode, "--op", self.op, "--depth", str(self.depth),
                "--batch", str(self.batch), "--reap-batch", str(self.reap_batch),
                "--bs", str(self.bs), "--file", self.file, "--file-size", str(self.file_size),
                "--pattern", self.pattern, "--seed", str(self.seed),
                "--threads", self.threads, "--submit", self.submit]
        args += ["--duration", str(self.duration)] if self.duration is not None else ["--count", str(self.count)]
        args.append("--direct" if self.direct else "--no-direct")
        if not self.verify:
            args.append("--no-verify")
        return args


def _size(text: str) -> int:
    """Parse 4096, 4k, 64M, 1G (binary units)."""
    t = str(text).strip().lower().removesuffix("b").removesuffix("i")
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if mult > 1 else t) * mult
    except ValueError:
        raise SpecError(f"not a size: {text!r}") from None
    if not math.isfinite(value) or value != int(value):
        raise SpecError(f"not a whole number of bytes: {text!r}")
    return int(value)


# click options for every RunSpec field: field -> (parameter declarations, keyword arguments).
# `run`, `capture` and `simulate` take them all; `sweep` takes all but the fields it sweeps
# (it has list options for those), so defaults and help are written once, here.
SPEC_OPTIONS: dict[str, tuple[tuple[str, ...], dict]] = {
    "mode": (("--mode", "-m"), dict(required=True, type=click.Choice(ALL_MODES), help="completion mode")),
    "op": (("--op",), dict(type=click.Choice(OPS), default="read", show_default=True)),
    "depth": (("--depth", "-q"), dict(type=int, default=32, show_default=True, help="I/Os in flight at most")),
    "batch": (("--batch", "-b"), dict(type=int, default=1, show_default=True, help="I/Os per submit call")),
    "reap_batch": (("--reap-batch", "-r"), dict(type=int, default=1, show_default=True,
                                               help="minimum completions per wait")),
    "bs": (("--bs",), dict(type=str, default="4k", show_default=True, help="block size")),
    "count": (("--count", "-n"), dict(type=int, default=10000, show_default=True, help="I/Os to do")),
    "duration": (("--duration",), dict(type=float, default=None, help="seconds to run (overrides --count)")),
    "file": (("--file", "-f", "file"), dict(type=str, default=lambda: default_data_file(),
                                            show_default="$XDG_CACHE_HOME/aiotrace/aiotrace.dat",
                                            help="data file (created with offset stamps), or with --no-verify an "
                                                 "existing file or disk device")),
    "file_size": (("--file-size",), dict(type=str, default="64M", show_default=True)),
    "direct": (("--direct/--no-direct",), dict(default=False, show_default=True, help="O_DIRECT")),
    "pattern": (("--pattern",), dict(type=click.Choice(PATTERNS), default="rand", show_default=True)),
    "seed": (("--seed",), dict(type=int, default=1, show_default=True)),
    "threads": (("--threads",), dict(type=click.Choice(THREADS), default="single", show_default=True,
                                     help="single: one thread submits and reaps; split: submitter + reaper threads")),
    "submit": (("--submit",), dict(type=click.Choice(SUBMITS), default="single", show_default=True,
                                   help="single: aio_read/aio_write per I/O; lio: lio_listio batches (POSIX modes)")),
    "verify": (("--verify/--no-verify",), dict(default=True, show_default=True,
                                               help="check every read's data; --no-verify reads any existing file "
                                                    "or device, read-only")),
}


def spec_options(func=None, *, skip: tuple[str, ...] = ()):
    """click options for every RunSpec field but ``skip``; the command receives them as keyword
    arguments and builds the spec with spec_from_options(**kwargs). ``@spec_options`` or
    ``@spec_options(skip=(...))``."""
    unknown = set(skip) - set(SPEC_OPTIONS)
    if unknown:
        raise ValueError(f"spec_options(skip=...): no such spec field {sorted(unknown)}")

    def decorate(f):
        for name in reversed([n for n in SPEC_OPTIONS if n not in skip]):
            decls, kw = SPEC_OPTIONS[name]
            f = click.option(*decls, **kw)(f)
        return f
    return decorate(func) if func is not None else decorate


SPEC_OPTION_NAMES = tuple(SPEC_OPTIONS)


def spec_from_options(**kw) -> RunSpec:
    """Build and validate a RunSpec from spec_options() keyword arguments (extra keys ignored)."""
    d = {k: kw[k] for k in SPEC_OPTION_NAMES if k in kw}
    for key, option in (("bs", "--bs"), ("file_size", "--file-size")):
        try:
            d[key] = _size(d.get(key, {"bs": "4k", "file_size": "64M"}[key]))
        except SpecError as exc:
            raise SpecError(f"{option}: {exc}") from None
    return RunSpec(**d).validate()

"""Python side of the workload: check the spec against this OS, open the file, optionally
hold for a tracer, run the C engine (GIL released), and turn its in-memory record into the
summary dict and, with a record directory, ios.parquet + threads.parquet + summary.json.

Nothing here runs per I/O: the record is copied out of the engine's chunks once, at the end.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import platform
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from tracer.base.errors import OutputError, SpecError, WorkloadError
from tracer.base.outputs import check_writable
from tracer.base.schema import IO_RECORD_COLUMNS, THREAD_RECORD_COLUMNS
from tracer.base import modes as mode_registry
from tracer.base.spec import ALL_MODES, LIO_MODES, READY_LINE, RELEASE_WORD, RunSpec, default_data_file

OP_CODES = {"read": 0, "write": 1, "write-fsync": 1}
OP_NAMES = np.array(["read", "write", "fsync"], dtype=object)
DEFAULT_LOST_TIMEOUT_S = 10.0


class NotReleased(Exception):
    """The --hold handshake ended without the release word (EOF or another line)."""


ENGINE_MODULE = "workloads._engine"
MODEL_MODULE = "workloads._fbsd_model"  # the same engine + FreeBSD modes on the FreeBSD semantics model
_engine_module = ENGINE_MODULE


@contextlib.contextmanager
def engine_module(name: str):
    """Run the driver's functions on another build of the engine (``aiotrace simulate``: MODEL_MODULE)."""
    global _engine_module
    old, _engine_module = _engine_module, name
    try:
        yield
    finally:
        _engine_module = old


def engine():
    """The compiled cffi module in use: (ffi, lib). WorkloadError when it is not built."""
    try:
        mod = importlib.import_module(_engine_module)
    except ImportError as exc:
        raise WorkloadError(f"the workload engine is not built ({exc}); run `pip install -e .` "
                            "(needs liburing-dev and libaio-dev on Linux)") from None
    return mod.ffi, mod.lib


def compiled_modes() -> list[str]:
    """Modes built into the engine for this OS, in table order."""
    ffi, lib = engine()
    names = []
    i = 0
    while (p := lib.aiot_mode_name(i)) != ffi.NULL:
        names.append(ffi.string(p).decode())
        i += 1
    return names


def mode_status(only: tuple[str, ...] = ALL_MODES) -> list[dict]:
    """Every known mode (or those in `only`) with whether it runs here and, if not, why.
    Probing is real: it sets up (and tears down) a context of each mode."""
    ffi, lib = engine()
    built = compiled_modes()
    system = "FreeBSD" if _engine_module == MODEL_MODULE else platform.system()
    rows = []
    for mode in only:
        if mode not in built:
            rows.append({"mode": mode, "available": False,
                         "reason": mode_registry.unavailable_reason(mode, system)
                         or f"mode '{mode}' is not built into this engine"})
            continue
        reason = ffi.new("char[]", 256)
        ok = bool(lib.aiot_mode_available(mode.encode(), reason, 256))
        rows.append({"mode": mode, "available": ok, "reason": "" if ok else ffi.string(reason).decode()})
    return rows


def available_modes() -> tuple[str, ...]:
    return tuple(r["mode"] for r in mode_status() if r["available"])


def check_spec(spec: RunSpec) -> None:
    """OS-level checks beyond RunSpec.validate(): the mode runs here, options fit the mode."""
    spec.validate()
    row = mode_status((spec.mode,))[0]
    if not row["available"]:
        raise SpecError(f"mode '{spec.mode}' cannot run here: {row['reason']}")
    if spec.submit == "lio" and spec.mode not in LIO_MODES:
        raise SpecError(f"--submit lio applies to the POSIX AIO modes ({', '.join(LIO_MODES)}), not '{spec.mode}'")


def check_record_dir(record: str | os.PathLike | None) -> Path | None:
    if record is None:
        return None
    path = Path(record)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise SpecError(f"record directory {path} already exists and is not empty")
    if not path.parent.exists():
        raise SpecError(f"record directory's parent {path.parent} does not exist")
    check_writable(path)
    return path


@dataclass
class Prepared:
    spec: RunSpec
    fd: int


def prepare(spec: RunSpec) -> Prepared:
    """Create or check the data file and open it the way the spec says."""
    ffi, lib = engine()
    if spec.file == default_data_file():  # the default lives in the user's cache directory
        try:
            Path(spec.file).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpecError(f"cannot create the data file's directory {Path(spec.file).parent}: {exc.strerror} "
                            "(set XDG_CACHE_HOME or pass --file)") from None
    fd = ffi.new("int *")
    msg = ffi.new("char[]", 512)
    rc = lib.aiot_prepare_file(os.fsencode(spec.file), spec.file_size, int(spec.direct), spec.bs,
                               int(spec.op != "read"), int(spec.verify), fd, msg, 512)
    if rc != 0:
        raise SpecError(ffi.string(msg).decode(errors="replace"))
    return Prepared(spec, fd[0])


def hold(stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> None:
    """The start handshake: announce readiness, wait for the release word."""
    stdout = stdout or sys.stdout
    stdin = stdin or sys.stdin
    stdout.write(READY_LINE.format(pid=os.getpid()) + "\n")
    stdout.flush()
    line = stdin.readline()
    if line.strip() != RELEASE_WORD:
        raise NotReleased("EOF" if line == "" else f"got {line.strip()!r} instead of {RELEASE_WORD!r}")


def _record_dtype(ffi) -> np.dtype:
    fields = ["id", "offset", "bytes", "submit_ns", "complete_ns", "result", "submit_tid", "reap_tid", "op", "done"]
    types = ["<u8", "<i8", "<i8", "<u8", "<u8", "<i8", "<i8", "<i8", "<i4", "<i4"]
    offsets = [ffi.offsetof("struct aiot_io_record", f) for f in fields]
    return np.dtype({"names": fields, "formats": types, "offsets": offsets,
                     "itemsize": ffi.sizeof("struct aiot_io_record")})


def _ios_frame(ffi, res) -> pd.DataFrame:
    dtype = _record_dtype(ffi)
    parts = []
    left = res.n_records
    for c in range(res.n_chunks):
        n = min(left, res.chunk_size)
        buf = ffi.buffer(res.chunks[c], n * dtype.itemsize)
        parts.append(np.frombuffer(buf, dtype=dtype).copy())
        left -= n
    arr = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    # The engine already failed the run on a lost or duplicated completion; check the record too.
    bad = np.flatnonzero((arr["done"] != 1) | (arr["id"] != np.arange(len(arr), dtype=np.uint64)))
    if len(bad):
        i = int(bad[0])
        raise WorkloadError(f"record of I/O {i} is inconsistent: completed {int(arr['done'][i])} times, "
                            f"id {int(arr['id'][i])}")
    df = pd.DataFrame({
        "id": arr["id"], "op": OP_NAMES[arr["op"]] if len(arr) else np.array([], dtype=object),
        "offset": arr["offset"], "bytes": arr["bytes"], "submit_ns": arr["submit_ns"],
        "complete_ns": arr["complete_ns"], "result": arr["result"],
        "submit_tid": arr["submit_tid"], "reap_tid": arr["reap_tid"],
    })
    return df.astype(IO_RECORD_COLUMNS)


def _threads_frame(ffi, res) -> pd.DataFrame:
    rows = []
    for i in range(res.n_threads):
        t = res.threads[i]
        rows.append({
            "tid": t.tid, "name": ffi.string(t.name).decode(errors="replace"),
            "role": ffi.string(t.role).decode(), "inblock": t.inblock, "oublock": t.oublock,
            "utime_ns": t.utime_ns, "stime_ns": t.stime_ns, "nvcsw": t.nvcsw, "nivcsw": t.nivcsw,
            "io_read_bytes": t.io_read_bytes, "io_write_bytes": t.io_write_bytes,
        })
    return pd.DataFrame(rows, columns=list(THREAD_RECORD_COLUMNS)).astype(THREAD_RECORD_COLUMNS)


def _percentiles_ns(lat: np.ndarray) -> dict:
    if len(lat) == 0:
        return {"p50": None, "p90": None, "p99": None, "p99_9": None, "max": None}
    p = np.percentile(lat, [50, 90, 99, 99.9])
    return {"p50": float(p[0]), "p90": float(p[1]), "p99": float(p[2]), "p99_9": float(p[3]),
            "max": float(lat.max())}


def summarize(spec: RunSpec, res, ios: pd.DataFrame, threads: pd.DataFrame, os_name: str | None = None) -> dict:
    """The summary object (`aiotrace run --json`, record/summary.json).

    Call counts are the workload's own (library calls it made, not traced syscalls):
    submit_calls = aio_read/aio_write/aio_fsync/lio_listio/io_submit/io_uring_submit calls;
    wait_calls = calls that learn of completions (aio_error polls in aio-poll, aio_suspend,
    io_getevents, io_uring waits that entered the kernel, kevent, aio_waitcomplete);
    status_calls = aio_error calls after a wake-up (aio-suspend, kevent-error);
    result_calls = aio_return calls. Latency is complete_ns - submit_ns of data I/Os;
    cpu_ns_per_io is RUSAGE_SELF user+system time over the window (every thread, including
    glibc helpers and io_uring workers) divided by completed I/Os."""
    elapsed_ns = int(res.stop_ns - res.start_ns)
    data = ios[ios["op"] != "fsync"]
    lat = (data["complete_ns"].to_numpy(np.int64) - data["submit_ns"].to_numpy(np.int64))
    secs = elapsed_ns / 1e9 if elapsed_ns > 0 else float("nan")
    n = int(res.ios)
    reap = {-1: None, 0: False, 1: True}[res.reap_supported]
    os_name = os_name or platform.system()
    if os_name == "Linux":
        reap = False  # Linux has no AIO_KEVENT_FLAG_REAP at all
    return {
        "mode": spec.mode,
        "os": os_name,
        "kernel": platform.release(),
        "spec": spec.to_dict(),
        "pid": os.getpid(),
        "ios": n,
        "errors": int(res.errors),
        "verified": bool(res.verified),
        "verify": "data+completion" if spec.op == "read" and spec.verify else "completion",
        "elapsed_ns": elapsed_ns,
        "iops": n / secs if n else 0.0,
        "mb_per_s": float(data["bytes"].sum()) / secs / 1e6 if n else 0.0,
        "latency_ns": _percentiles_ns(lat),
        "cpu_ns_per_io": (res.self_utime_ns + res.self_stime_ns) / n if n else None,
        "cpu": {"utime_ns": int(res.self_utime_ns), "stime_ns": int(res.self_stime_ns),
                "inblock": int(res.self_inblock), "oublock": int(res.self_oublock)},
        "window": {"start_ns": int(res.start_ns), "stop_ns": int(res.stop_ns)},
        "threads": threads.astype(object).where(threads.notna(), None).to_dict(orient="records"),
        "threads_dropped": int(res.threads_dropped),
        "features": {"reap_supported": reap, "o_direct": bool(spec.direct)},
        "submit_calls": int(res.submit_calls),
        "wait_calls": int(res.wait_calls),
        "status_calls": int(res.status_calls),
        "result_calls": int(res.result_calls),
        "submit_calls_per_io": res.submit_calls / n if n else None,
        "wait_calls_per_io": res.wait_calls / n if n else None,
    }


def write_record(path: Path, ios: pd.DataFrame, threads: pd.DataFrame, summary: dict) -> None:
    """Write ios.parquet, threads.parquet and summary.json under a temp name, then rename."""
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        ios.to_parquet(tmp / "ios.parquet", index=False)
        threads.to_parquet(tmp / "threads.parquet", index=False)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
        if path.exists():
            path.rmdir()  # an empty directory made by the caller
        os.rename(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError.of(path, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def run(spec: RunSpec, *, record: str | os.PathLike | None = None, hold_for_tracer: bool = False,
        stdin: IO[str] | None = None, stdout: IO[str] | None = None, before_run=None,
        os_name: str | None = None) -> dict:
    """Run one workload. Returns the summary dict; raises SpecError (refused before any
    I/O), WorkloadError (the run failed: the message names the I/O), NotReleased.
    ``before_run`` is called where a tracer attaches (after the handshake, just before the engine
    runs); ``aiotrace simulate`` starts the model's record there."""
    check_spec(spec)
    record_dir = check_record_dir(record)
    ffi, lib = engine()
    prepared = prepare(spec)
    try:
        if hold_for_tracer:
            hold(stdin, stdout)
        if before_run is not None:
            before_run()
        cspec = ffi.new("struct aiot_spec *")
        mode = ffi.new("char[]", spec.mode.encode())
        cspec.mode = mode
        cspec.op = OP_CODES[spec.op]
        cspec.fsync_at_end = int(spec.op == "write-fsync")
        cspec.depth, cspec.batch, cspec.reap_batch, cspec.bs = spec.depth, spec.batch, spec.reap_batch, spec.bs
        cspec.count = spec.count
        cspec.duration_ns = int(spec.duration * 1e9) if spec.duration else 0
        cspec.file_size = spec.file_size
        cspec.direct = int(spec.direct)
        cspec.random = int(spec.pattern == "rand")
        cspec.seed = spec.seed
        cspec.split = int(spec.threads == "split")
        cspec.lio = int(spec.submit == "lio")
        cspec.verify = int(spec.verify)
        cspec.lost_timeout_ns = int(float(spec.extra.get("lost_timeout_s", DEFAULT_LOST_TIMEOUT_S)) * 1e9)
        res = ffi.new("struct aiot_result *")
        status = lib.aiot_run(cspec, prepared.fd, res)  # cffi releases the GIL for the call
    finally:
        os.close(prepared.fd)
    try:
        message = ffi.string(res.message).decode(errors="replace")
        if status == 1:
            raise SpecError(message)
        if status != 0:
            raise WorkloadError(message)
        ios = _ios_frame(ffi, res)
        threads = _threads_frame(ffi, res)
        interrupted = int(getattr(res, "interrupted", 0))  # the FreeBSD model's result has no such field
    finally:
        lib.aiot_result_free(res)
    summary = summarize(spec, res, ios, threads, os_name)
    if interrupted:  # a stop signal ended the run early: the record so far is kept, and says so
        summary["interrupted"] = signal.Signals(interrupted).name
    if record_dir is not None:
        summary["record"] = str(record_dir)
        write_record(record_dir, ios, threads, summary)
    return summary

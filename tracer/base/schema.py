"""The event-line contract between dscripts/ and tracer.parse, and the model's tables.

Defined once here. Every per-event script in dscripts/ prints:

  * one header line, first:   ``AIOTRACE<TAB>v1<TAB>ts_ns<TAB>pid<TAB>...`` (the field names), then
  * event lines:              ``E<TAB>ts_ns<TAB>pid<TAB>tid<TAB>ev<TAB>name<TAB>id<TAB>a0<TAB>a1<TAB>a2<TAB>ret<TAB>err``

Every event line has exactly ``len(EVENT_FIELDS) + 1`` tab-separated fields (the leading
``E`` tag plus the fields below), so a C CSV reader parses them at full speed and any other
line a tracer prints (banners, drop reports, aggregation output) is recognisable by its tag.

Timestamps are nanoseconds of CLOCK_MONOTONIC (bpftrace ``nsecs``, DTrace ``timestamp``; the
workload uses ``clock_gettime(CLOCK_MONOTONIC)`` and emits a ``sync`` event to align them).
"""
from __future__ import annotations

from dataclasses import dataclass

EVENT_VERSION = "v1"
EVENT_TAG = "E"
HEADER_TAG = "AIOTRACE"


@dataclass(frozen=True)
class Field:
    name: str
    dtype: str  # pandas/numpy dtype name
    printf: str  # the conversion a script must use for this field (bpftrace and D agree)
    doc: str


# Order is the on-line order. 64-bit values use %llu/%lld: bpftrace's %d truncates to 32 bits.
EVENT_FIELDS: tuple[Field, ...] = (
    Field("ts_ns", "uint64", "%llu", "monotonic timestamp, ns"),
    Field("pid", "int64", "%d", "process id (TGID on Linux)"),
    Field("tid", "int64", "%d", "thread id (Linux tid, FreeBSD lwpid); kernel threads keep their own"),
    Field("ev", "string", "%s", "event kind, one of EVENT_KINDS"),
    Field("name", "string", "%s", "syscall name, probe name, or 'nr<N>' when only the number is known"),
    Field("id", "int64", "%lld", "I/O identity: workload I/O id, or user aiocb address (FreeBSD ujob), or io_uring user_data; 0 if none"),
    Field("a0", "int64", "%lld", "argument 0, meaning per EVENT_KINDS"),
    Field("a1", "int64", "%lld", "argument 1"),
    Field("a2", "int64", "%lld", "argument 2"),
    Field("ret", "int64", "%lld", "return value (sys_exit, reap result); 0 otherwise"),
    Field("err", "int64", "%d", "errno (0 = none)"),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in EVENT_FIELDS)
EVENT_PRINTF = EVENT_TAG + "\t" + "\t".join(f.printf for f in EVENT_FIELDS) + "\\n"
HEADER_LINE = HEADER_TAG + "\t" + EVENT_VERSION + "\t" + "\t".join(FIELD_NAMES)

# ev -> meaning of (id, a0, a1, a2, ret). Scripts may only print these kinds.
EVENT_KINDS: dict[str, str] = {
    "sys_enter": "syscall entry; name = syscall; a0..a2 = first arguments",
    "sys_exit": "syscall return; name = syscall; ret = value (-1 on error), err = errno",
    "window_start": "workload probe: measurement window opens; a0 = planned I/O count",
    "window_stop": "workload probe: measurement window closes; a0 = I/Os completed",
    "submit": "workload probe after a submit batch: id = first I/O id, a0 = count, ret = submit call result",
    "reap": "workload probe per reaped I/O: id = I/O id, ret = result (bytes or -errno), a0 = reap batch size",
    "sync": "workload clock sync: a0 = workload CLOCK_MONOTONIC ns at the probe",
    "job_queue": "kernel job queued (FreeBSD fbt aio_aqueue/aio_queue_file): id = ujob, a0 = kaiocb",
    "job_start": "kernel job starts executing (aio_process_rw; aio_process_sync for aio_fsync in the FreeBSD model): id = ujob, a0 = kaiocb",
    "job_done": "kernel job complete (aio_complete; Linux io_uring_complete/block_rq_complete): id = ujob or user_data, a0 = kaiocb, ret = status, err = error",
    "job_notify": "completion posted (aio_bio_done_notify / filt_aio): id = ujob, a0 = kaiocb",
    "job_free": "kernel job state released (aio_free_entry): id = ujob, a0 = kaiocb",
    "blk_queue": "block I/O queued in submitting context: a0 = dev, a1 = sector, a2 = bytes",
    "blk_done": "block I/O complete (IRQ context, tid meaningless): a0 = dev, a1 = sector, a2 = bytes",
    "ru_charge": "rusage charged to thread tid: a0 = inblock delta, a1 = oublock delta, id = ujob",
}

# Syscall roles used by the amplification analysis.
ROLES = ("submit", "wait", "status", "result", "other")

# Columns of the workload's own record (written once at the end, Parquet).
IO_RECORD_COLUMNS: dict[str, str] = {
    "id": "uint64",  # I/O id, assigned in submission order from 0
    "op": "string",  # read | write | fsync
    "offset": "int64",
    "bytes": "int64",  # requested bytes
    "submit_ns": "uint64",  # CLOCK_MONOTONIC just before the submit call
    "complete_ns": "uint64",  # when the program learned of the completion
    "result": "int64",  # bytes transferred, or -errno
    "submit_tid": "int64",
    "reap_tid": "int64",
}

THREAD_RECORD_COLUMNS: dict[str, str] = {
    "tid": "int64",
    "name": "string",
    "role": "string",  # main | submitter | reaper | both | helper | iou-wrk | iou-sqp | other
    "inblock": "int64",  # getrusage(RUSAGE_THREAD) after - before (own threads only)
    "oublock": "int64",
    "utime_ns": "int64",
    "stime_ns": "int64",
    "nvcsw": "int64",
    "nivcsw": "int64",
    "io_read_bytes": "int64",  # /proc/self/task/<tid>/io read_bytes (Linux), -1 elsewhere
    "io_write_bytes": "int64",
}

# Model tables (tracer.model) and their columns.
MODEL_TABLES: dict[str, dict[str, str]] = {
    "events": {**{f.name: f.dtype for f in EVENT_FIELDS}, "line": "int64"},
    "syscalls": {
        "tid": "int64", "pid": "int64", "name": "string", "role": "string",
        "enter_ns": "float64", "exit_ns": "float64", "dur_ns": "float64",
        "ret": "int64", "err": "int64", "a0": "int64", "a1": "int64", "a2": "int64",
        "in_window": "bool",
    },
    "ios": {
        "id": "int64", "op": "string", "offset": "int64", "bytes": "int64",
        "submit_ns": "float64", "kernel_done_ns": "float64", "notified_ns": "float64",
        "fetched_ns": "float64", "freed_ns": "float64", "result": "int64",
        "submit_tid": "int64", "reap_tid": "int64",
    },
    "threads": {**THREAD_RECORD_COLUMNS},
    "unparsed": {"line": "int64", "text": "string", "reason": "string"},
}

"""`aiotrace simulate`: run a FreeBSD completion mode on the FreeBSD kernel-semantics model.

The workload engine and the FreeBSD mode files, unchanged, are built against the user-space model
of FreeBSD's AIO + kqueue (``workloads/fbsd_model``, module ``workloads._fbsd_model``) and run by
the same driver as ``aiotrace run``. The model records what ``dscripts/freebsd/aiotrace-events.d``
(plus ``aiotrace-ru-d33271.d`` on the d33144 kernel) would print for the run: every AIO/kqueue/
getrusage system call per thread, kernel job queue/start/complete/notify/free, rusage charges and
the workload's probes. This module writes them as event lines (``tracer.base.schema``) into a normal run
bundle (``raw/events.txt``, ``record/``, ``manifest.json``), so the same parser, model, analyses
and report read it. Every bundle says MODEL_LABEL: a model, never a measurement.

Record -> event line (fields of tracer.base.schema.EVENT_FIELDS; ``a`` = the record's a[0..7]):

    sys_enter   name, id = aiocb, a0..a2 = a[0..2] (the call's first arguments)
    sys_exit    name, id = aiocb (aio_waitcomplete: the one it returned), ret, err (FreeBSD errno)
    job_queue   aio_aqueue: id = ujob, a0 = kaiocb, a1 = type, ret 0 / -1, err
    job_start   aio_process_rw | aio_process_sync (aiod thread): id, a0 = kaiocb, a1 = nbytes
    job_done    aio_complete (aiod thread): id, a0 = kaiocb, a1 = inblock, a2 = outblock, ret, err
    job_notify  aio_bio_done_notify (a0 = kaiocb) | filt_aio (a0 = kaiocb, a1 = hint)
    job_free    aio_free_entry: id, a0 = kaiocb, a1 = inblock, a2 = outblock
    ru_charge   aio_return | aio_waitcomplete (stock: the caller's td_ru delta) | aio_complete
                (D33271: tid = the submitting thread): id, a0 = inblock, a1 = oublock
    probes      window_start, window_stop, submit, reap, sync as the D script's pid-provider clauses
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tracer.base.errors import SpecError, WorkloadError
from tracer.base.schema import HEADER_LINE
from tracer.base.spec import FREEBSD_MODES, RunSpec

MODEL_LABEL = "FreeBSD semantics model (not a measurement)"
KERNELS = {
    "stock": "stock FreeBSD (upstream sys/kern/vfs_aio.c, kern_event.c)",
    "d33144": "FreeBSD with D33144 (AIO_KEVENT_FLAG_REAP) and D33271 (rusage to the submitter), "
              "macdice/freebsd @33a47467",
}
RULES_SOURCE = "workloads/fbsd_model/fbsd_model.c"

# record kinds and names: workloads/fbsd_model/fbsd_model.h (same order)
KINDS = ("sys_enter", "sys_exit", "job_queue", "job_start", "job_done", "job_notify", "job_free", "ru_charge",
         "probe", "aiocb", "timespec", "kevent", "rusage", "list_member")
NAMES = ("aio_read", "aio_write", "lio_listio", "aio_error", "aio_return", "aio_suspend", "aio_fsync",
         "aio_waitcomplete", "aio_cancel", "kqueue", "kevent", "getrusage", "aio_aqueue", "aio_process_rw",
         "aio_process_sync", "aio_complete", "aio_bio_done_notify", "filt_aio", "aio_free_entry",
         "window_start", "window_stop", "submit", "reap", "sync")
EVENT_KINDS = ("sys_enter", "sys_exit", "job_queue", "job_start", "job_done", "job_notify", "job_free",
               "ru_charge", "probe")


@dataclass
class ModelRun:
    bundle: Path
    summary: dict
    records: pd.DataFrame


def records_frame(ffi, lib) -> pd.DataFrame:
    """The model's record as a DataFrame: ts_ns, tid, kind, name, id, a0..a7, ret, err, aiod."""
    out = ffi.new("const struct fbsdm_rec **")
    n = lib.fbsdm_records(out)
    size = ffi.sizeof("struct fbsdm_rec")
    fields = [("ts_ns", "<u8"), ("tid", "<i8"), ("kind", "<i4"), ("name", "<i4"), ("id", "<i8"),
              ("a", "<i8", (8,)), ("ret", "<i8"), ("err", "<i4"), ("aiod", "<i4")]
    dtype = np.dtype(fields)
    if dtype.itemsize != size:
        raise WorkloadError(f"model record size {size} != {dtype.itemsize}: rebuild the extension")
    arr = np.frombuffer(ffi.buffer(out[0], n * size), dtype=dtype).copy() if n else np.zeros(0, dtype)
    frame = pd.DataFrame({"ts_ns": arr["ts_ns"], "tid": arr["tid"],
                          "kind": np.array(KINDS, dtype=object)[arr["kind"]] if n else np.array([], object),
                          "name": np.array(NAMES, dtype=object)[arr["name"]] if n else np.array([], object),
                          "id": arr["id"], "ret": arr["ret"], "err": arr["err"], "aiod": arr["aiod"]})
    for i in range(8):
        frame[f"a{i}"] = arr["a"][:, i] if n else np.array([], "int64")
    return frame.sort_values("ts_ns", kind="stable").reset_index(drop=True)


def event_lines(recs: pd.DataFrame, pid: int) -> list[str]:
    """The records as aiotrace-events.d event lines (without the header), in time order."""
    r = recs[recs["kind"].isin(EVENT_KINDS)]
    lines = []
    for row in r.itertuples(index=False):
        k, name = row.kind, row.name
        id_, a0, a1, a2, ret, err = row.id, row.a0, row.a1, row.a2, row.ret, row.err
        if k == "probe":
            k = name
            name = f"aiotrace_probe_{name}"
            if k == "submit":
                id_, a0, a1, a2, ret, err = row.a0, row.a1 & 0xFFFFFFFF, 0, 0, row.a2, 0
            elif k == "reap":
                id_, a0, a1, a2, ret, err = row.a0, row.a2 & 0xFFFFFFFF, 0, 0, row.a1, 0
            else:
                id_, a0, a1, a2, ret, err = 0, row.a0, 0, 0, 0, 0
        elif k == "sys_exit":
            a0 = a1 = a2 = 0
        elif k == "job_queue":
            a2 = 0
        elif k == "job_start":
            a2 = 0
        elif k in ("job_notify",) and name == "aio_bio_done_notify":
            a1 = a2 = 0
        elif k == "ru_charge":
            a2, ret, err = 0, 0, 0
        lines.append(f"E\t{row.ts_ns}\t{pid}\t{row.tid}\t{k}\t{name}\t{id_}\t{a0}\t{a1}\t{a2}\t{ret}\t{err}")
    return lines


def _utc(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="milliseconds")


def simulate(spec: RunSpec, kernel: str, out_dir: Path | str, queue_per_proc: int = 256,
             record_limit: int = 0) -> ModelRun:
    """Run ``spec`` on the model of ``kernel`` and write a run bundle under ``out_dir``.

    Raises SpecError (one line) when the mode cannot run on that kernel (``reap`` on ``stock``),
    WorkloadError when the run itself fails (a lost or duplicated completion names the I/O).
    The model keeps at most ``record_limit`` records (0: 1 Mi), like a tracer's buffer; events
    beyond it are counted in the manifest's losses, so the bundle says it is lossy."""
    from tracer.capture import manifest as mf
    from tracer.capture.bundle import Bundle
    from tracer.capture.probe import filesystem_of
    from tracer.capture.manifest import _version
    from workloads import driver

    if kernel not in KERNELS:
        raise SpecError(f"unknown kernel '{kernel}' (known: {', '.join(KERNELS)})")
    if spec.mode not in FREEBSD_MODES:
        raise SpecError(f"mode '{spec.mode}' is not a FreeBSD mode (FreeBSD modes: {', '.join(FREEBSD_MODES)})")
    spec.validate()
    bundle = Bundle.create(out_dir, spec.mode, "model")
    try:
        with driver.engine_module(driver.MODEL_MODULE):
            ffi, lib = driver.engine()
            if lib.fbsdm_configure(kernel.encode(), int(queue_per_proc)) != 0:
                raise SpecError(f"the model does not know kernel '{kernel}'")
            lib.fbsdm_record_limit(int(record_limit))
            started = time.time()
            try:
                summary = driver.run(spec, record=bundle.path / "record", os_name="FreeBSD",
                                     before_run=lambda: lib.fbsdm_record(1))
            except SpecError as exc:
                raise SpecError(f"{MODEL_LABEL}, kernel {kernel}: {exc}") from None
            except WorkloadError as exc:
                raise WorkloadError(f"{MODEL_LABEL}, kernel {kernel}: {exc}") from None
            finally:
                lib.fbsdm_record(0)
            recs = records_frame(ffi, lib)
            lost = int(lib.fbsdm_records_lost())
            pid = int(lib.fbsdm_pid())
        ended = time.time()
        lines = [HEADER_LINE, *event_lines(recs, pid)]
        (bundle.path / "raw" / "events.txt").write_text("\n".join(lines) + "\n")
        (bundle.path / "raw" / "tracer.stderr").write_text("")
        (bundle.path / "raw" / "workload.stderr").write_text("")
        summary["kernel"] = f"{MODEL_LABEL}: {kernel}"
        summary["model"] = {"label": MODEL_LABEL, "kernel": kernel}
        summary.pop("record", None)
        (bundle.path / "record" / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
        reap = summary.get("features", {}).get("reap_supported")
        manifest = {
            "schema": mf.SCHEMA, "run_id": bundle.run_id, "os": "FreeBSD",
            "kernel": f"{MODEL_LABEL}: {KERNELS[kernel]}", "machine": platform.machine(),
            "cpus": os.cpu_count() or 1, "hostname": platform.node(), "backend": "model",
            "backend_reason": "aiotrace simulate", "backend_version": f"aiotrace FreeBSD semantics model ({RULES_SOURCE})",
            "flavour": "events",
            "command": [["aiotrace", "simulate", "--kernel", kernel, *spec.to_args()]],
            "tracer_env": {}, "attach": "pid", "spec": spec.to_dict(),
            "features": {"reap_supported": bool(reap) if reap is not None else (kernel == "d33144"),
                         "reap_detail": f"{MODEL_LABEL}: the {kernel} kernel "
                                        + ("accepts" if kernel == "d33144" else "refuses") + " AIO_KEVENT_FLAG_REAP",
                         "o_direct": None, "o_direct_detail": "not modelled", "o_direct_used": spec.direct},
            "fs": filesystem_of(spec.file), "clocks": {}, "started_at": _utc(started), "ended_at": _utc(ended),
            "duration_s": round(ended - started, 3), "released_at_monotonic_ns": None,
            "exit": {"workload": 0, "tracer": 0}, "status": "ok",
            "reason": f"the model's record dropped {lost} events" if lost else None,
            "losses": {"dropped_events": lost, "allowed": False,
                       "messages": [f"FreeBSD semantics model: record full, {lost} events dropped"] if lost else []},
            "raw": {"trace": "raw/events.txt", "format": "events", "stderr": "raw/tracer.stderr",
                    "lines": len(lines)},
            "workload_pid": pid, "tracer_pid": None, "summary": "record/summary.json", "fixture": False,
            "aiotrace_version": _version(),
            "model": {"label": MODEL_LABEL, "kernel": kernel, "kernel_source": KERNELS[kernel],
                      "rules": RULES_SOURCE, "max_aio_queue_per_proc": int(queue_per_proc),
                      "rusage_units": "FreeBSD ru_inblock/ru_oublock: block I/O operations (one per job in the model)"},
        }
        mf.write_manifest(bundle.path, manifest)
        final = bundle.finish()
    except BaseException:
        bundle.discard()
        raise
    return ModelRun(final, summary, recs)


"""Run a matrix of captures (modes x depths x batches x reap batches x repetitions), resumably.

One bundle per run under ``<out>/``; the index ``<out>/sweep.json`` (schema ``aiotrace.sweep/1``)
is rewritten atomically after every run, so an interrupted sweep resumes where it stopped: a run
whose entry says ``ok`` and whose bundle still exists is not run again. Combinations the run spec
refuses (reap batch above depth...) are recorded as ``skipped`` with the reason, not run.

``sweep.json``::

    {"schema": "aiotrace.sweep/1", "created_at": ..., "updated_at": ..., "backend": "auto",
     "base_spec": {RunSpec fields shared by all runs}, "matrix": {"modes": [...], "depths": [...],
     "batches": [...], "reap_batches": [...], "repeat": N},
     "runs": [{"key": "io_uring-q32-b1-r8-0", "mode": ..., "depth": ..., "batch": ...,
               "reap_batch": ..., "rep": 0, "status": "ok|failed|interrupted|skipped|pending",
               "bundle": "<run-id>" (relative to out), "reason": str|null}, ...]}
"""
from __future__ import annotations

import datetime as _dt
import itertools
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from tracer.base.errors import AiotraceError, AnalysisError, OutputError, SpecError, writing
from tracer.base.outputs import atomic_write
from tracer.base.spec import RunSpec

SCHEMA = "aiotrace.sweep/1"
INDEX = "sweep.json"
MATRIX_FIELDS = ("mode", "depth", "batch", "reap_batch")  # varied per run, not part of base_spec


def run_key(mode: str, depth: int, batch: int, reap_batch: int, rep: int) -> str:
    return f"{mode}-q{depth}-b{batch}-r{reap_batch}-{rep}"


def plan(base: RunSpec, modes, depths, batches, reap_batches, repeat: int) -> list[dict[str, Any]]:
    """The matrix as index entries (status ``pending`` or ``skipped`` with the spec's reason)."""
    if repeat < 1:
        raise SpecError(f"--repeat must be at least 1, got {repeat}")
    runs = []
    for mode, depth, batch, reap, rep in itertools.product(modes, depths, batches, reap_batches, range(repeat)):
        entry = {"key": run_key(mode, depth, batch, reap, rep), "mode": mode, "depth": depth, "batch": batch,
                 "reap_batch": reap, "rep": rep, "status": "pending", "bundle": None, "reason": None}
        try:
            replace(base, mode=mode, depth=depth, batch=batch, reap_batch=reap).validate()
        except SpecError as exc:
            entry.update(status="skipped", reason=str(exc))
        runs.append(entry)
    return runs


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_index(out: Path, index: dict) -> None:
    """Write sweep.json atomically (temp file, fsync, rename)."""
    index["updated_at"] = _now()

    def write(tmp: Path) -> None:
        with open(tmp, "w") as fh:
            json.dump(index, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
    atomic_write(out / INDEX, write)


def load_index(out: Path) -> dict | None:
    path = out / INDEX
    if not path.exists():
        return None
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise AnalysisError(f"{path}: not JSON ({exc}); move it away to start a new sweep") from None
    if index.get("schema") != SCHEMA:
        raise AnalysisError(f"{path}: schema {index.get('schema')!r}, expected {SCHEMA!r}")
    return index


def merge(existing: dict | None, base: RunSpec, backend: str, runs: list[dict], matrix: dict) -> dict:
    """The index to execute: previous entries kept (by key) when their base spec matches."""
    base_dict = {k: v for k, v in base.to_dict().items() if k not in MATRIX_FIELDS}
    if existing is not None and existing.get("base_spec") != base_dict:
        raise AnalysisError("the sweep directory holds a sweep of a different spec "
                            f"({', '.join(k for k in base_dict if existing.get('base_spec', {}).get(k) != base_dict[k])} "
                            "differ); use another --out")
    old = {r["key"]: r for r in (existing or {}).get("runs", [])}
    merged = [old.get(r["key"], r) if r["status"] != "skipped" else r for r in runs]
    keys = {r["key"] for r in merged}
    merged += [r for k, r in old.items() if k not in keys]  # keep runs of an earlier, wider matrix
    return {"schema": SCHEMA, "created_at": (existing or {}).get("created_at", _now()), "backend": backend,
            "base_spec": base_dict, "matrix": matrix, "runs": merged}


def todo(index: dict, out: Path) -> list[dict]:
    """Entries still to run: not skipped, and not ok with their bundle present."""
    return [r for r in index["runs"] if r["status"] != "skipped"
            and not (r["status"] == "ok" and r.get("bundle") and (out / r["bundle"] / "manifest.json").is_file())]


def capture_one(spec: RunSpec, backend: str, out: Path) -> tuple[str, str | None, str | None]:
    """Run one capture through the capture layer; returns (status, bundle name, reason)."""
    import platform

    from tracer.capture.backends import choose_backend
    from tracer.capture.runner import run_capture

    chosen, why = choose_backend(backend, platform.system())
    result = run_capture(spec, chosen, why, "events", out)
    return result.status, result.bundle.name, result.reason


def run_sweep(base: RunSpec, modes, depths, batches, reap_batches, repeat: int, out: Path | str,
              backend: str = "auto", runner: Callable[[RunSpec, str, Path], tuple] = capture_one,
              progress: bool = True, log: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) the matrix into ``out``; returns the final index."""
    out = Path(out)
    matrix = {"modes": list(modes), "depths": list(depths), "batches": list(batches),
              "reap_batches": list(reap_batches), "repeat": repeat}
    runs = plan(base, modes, depths, batches, reap_batches, repeat)
    created = not out.exists()
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
    index = merge(load_index(out), base, backend, runs, matrix)
    try:
        write_index(out, index)
    except OutputError:
        if created:  # leave no empty sweep directory behind (e.g. a full disk)
            shutil.rmtree(out, ignore_errors=True)
        raise
    pending = todo(index, out)
    log = log or (lambda msg: None)
    done = len([r for r in index["runs"] if r["status"] != "skipped"]) - len(pending)
    if done:
        log(f"resuming: {done} runs already done, {len(pending)} to go")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  disable=not progress, transient=False) as bar:
        task = bar.add_task("sweep", total=len(pending))
        for entry in pending:
            bar.update(task, description=f"sweep {entry['key']}")
            spec = replace(base, mode=entry["mode"], depth=entry["depth"], batch=entry["batch"],
                           reap_batch=entry["reap_batch"])
            try:
                status, bundle, reason = runner(spec, backend, out)
            except KeyboardInterrupt:
                entry.update(status="interrupted", reason="interrupted by the user")
                write_index(out, index)
                raise
            except AiotraceError as exc:
                status, bundle, reason = "failed", None, str(exc)
            entry.update(status=status, bundle=bundle, reason=reason)
            write_index(out, index)
            if status == "interrupted":
                raise KeyboardInterrupt
            if status != "ok":
                log(f"{entry['key']}: {status}: {reason}")
            bar.advance(task)
    return index


def untraced_one(spec: RunSpec, backend: str, out: Path) -> tuple[str, str | None, str | None]:
    """Run one workload WITHOUT a tracer and keep it as a bundle (backend ``none``, its record and
    summary, no trace), so the report can set untraced IOPS and latency beside the traced ones.
    The same runner signature as :func:`capture_one` (``backend`` is ignored)."""
    import datetime as dt
    import platform
    import time

    from tracer.capture.bundle import Bundle
    from tracer.capture.manifest import SCHEMA, write_manifest
    from tracer.capture.probe import probe_features
    from tracer.base.errors import WorkloadError
    from workloads import driver

    bundle = Bundle.create(out, spec.mode, "none")
    started, t0 = dt.datetime.now(dt.timezone.utc), time.monotonic()
    status, reason, summary = "ok", None, {}
    try:
        summary = driver.run(spec, record=bundle.path / "record" / "run")
    except WorkloadError as exc:
        status, reason = "failed", str(exc)
    except KeyboardInterrupt:
        status, reason = "interrupted", "interrupted by the user"
    run_dir = bundle.path / "record" / "run"
    if run_dir.is_dir():  # the driver wants a new directory: move its files up into record/
        for f in run_dir.iterdir():
            os.replace(f, bundle.path / "record" / f.name)
        run_dir.rmdir()
    uname = platform.uname()
    try:
        from importlib.metadata import version

        aiotrace_version = version("aiotrace")
    except Exception:  # noqa: BLE001 - not installed as a package: the manifest still says so
        aiotrace_version = "unknown"
    manifest = {
        "schema": SCHEMA, "run_id": bundle.run_id, "os": platform.system(), "kernel": uname.release,
        "machine": uname.machine, "cpus": os.cpu_count() or 1, "hostname": uname.node, "backend": "none",
        "backend_reason": "untraced run (aiotrace demo: the probe effect)", "backend_version": None,
        "flavour": "events", "command": [], "tracer_env": {}, "attach": "wrap", "spec": spec.to_dict(),
        "features": probe_features(spec.file), "fs": {}, "clocks": {}, "started_at": started.isoformat(),
        "ended_at": dt.datetime.now(dt.timezone.utc).isoformat(), "duration_s": time.monotonic() - t0,
        "released_at_monotonic_ns": None, "exit": {"workload": 0 if status == "ok" else 1, "tracer": None},
        "status": status, "reason": reason,
        "losses": {"dropped_events": 0, "messages": [], "allowed": False},
        "raw": {"trace": None, "format": "events", "stderr": None, "lines": 0},
        "workload_pid": os.getpid(), "tracer_pid": None,
        "summary": "record/summary.json" if (bundle.path / "record" / "summary.json").is_file() else None,
        "fixture": False, "aiotrace_version": aiotrace_version,
    }
    write_manifest(bundle.path, manifest)
    final = bundle.finish()
    if status == "interrupted":
        raise KeyboardInterrupt
    return status, final.name, reason

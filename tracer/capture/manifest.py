"""The run bundle manifest: schema ``aiotrace.manifest/1`` and its writer.

``manifest.json`` is the one file that makes a bundle self-describing. Every key is always
present (``null`` when not known); readers check ``schema`` first.

=====================  ===========  ==========================================================
key                    type         meaning
=====================  ===========  ==========================================================
schema                 str          ``"aiotrace.manifest/1"``
run_id                 str          ``<UTC YYYYmmddTHHMMSSZ>-<mode>-<backend>-<6 hex>``; the bundle
                                    directory's name
os                     str          ``"Linux"`` | ``"FreeBSD"`` (``platform.system()``)
kernel                 str          kernel release (``uname -r``)
machine                str          ``uname -m`` (``x86_64``, ``amd64``)
cpus                   int          online CPUs (``os.cpu_count()``)
hostname               str          ``uname -n``
backend                str          ``libbpf`` | ``bpftrace`` | ``strace`` | ``dtrace`` | ``ktrace`` | ``truss`` | ``none`` |
                                    ``model`` (``aiotrace simulate``: the FreeBSD semantics model)
backend_reason         str          why this backend: ``"requested"`` or what ``auto`` found
backend_version        str|null     the tracer's own version line (``bpftrace v0.17.0``)
flavour                str          ``"events"`` (one line per event) | ``"aggregate"`` (in-kernel
                                    counts printed at exit)
command                list[list]   every command run, in order, as argv lists: the workload, the
                                    tracer, and any post-processor (kdump); exactly as run, so their
                                    bundle paths name the temporary ``.<run-id>.partial`` directory
tracer_env             dict         environment variables set for the tracer
                                    (``BPFTRACE_PERF_RB_PAGES``)
attach                 str          ``"pid"`` (workload held at its handshake, tracer attached by
                                    pid, then released) | ``"wrap"`` (the tracer starts the workload)
spec                   dict         the RunSpec (``tracer.base.spec.RunSpec.to_dict()``)
features               dict         ``reap_supported`` (bool: the workload's run-time test of
                                    AIO_KEVENT_FLAG_REAP when it made one, else false with the reason:
                                    n/a off FreeBSD), ``reap_detail`` (str), ``o_direct`` (bool|null:
                                    a real O_DIRECT open + aligned read/write worked on the file's
                                    filesystem), ``o_direct_detail`` (str), ``o_direct_used`` (bool:
                                    the spec asked for O_DIRECT)
fs                     dict         filesystem of the workload file: ``path`` (absolute),
                                    ``type`` (ext4, tmpfs, zfs...), ``mountpoint``, ``source``
clocks                 dict         ``realtime_minus_monotonic_ns`` sampled at start, to place strace's
                                    ``-ttt`` wall-clock stamps on CLOCK_MONOTONIC
started_at             str          ISO 8601 UTC, when capture started the workload
ended_at               str          ISO 8601 UTC, when the tracer had stopped
duration_s             float        ended_at - started_at, seconds
released_at_monotonic_ns int|null   CLOCK_MONOTONIC when the workload was released (pid attach)
exit                   dict         ``workload`` and ``tracer``: exit status (int; negative = killed by
                                    that signal; null = never started), plus ``post`` for kdump
status                 str          ``"ok"`` | ``"failed"`` | ``"interrupted"``
reason                 str|null     why not ok (one sentence); for ok with accepted losses, says so
losses                 dict         ``dropped_events`` (int, events the tracer reported lost),
                                    ``messages`` (list of str: every loss or warning line seen:
                                    ``Lost N events``, ``dtrace: N drops on CPU 1``, ``Events
                                    dropped.``, strace warnings, non-zero tracer exits),
                                    ``allowed`` (bool: ``--allow-loss`` given)
raw                    dict         ``trace``: bundle-relative path of the tracer's output
                                    (``raw/events.txt``...), ``format``: ``events`` | ``bpftrace`` |
                                    ``strace`` | ``kdump`` | ``truss`` | ``dtrace`` | ``libbpf``
                                    (binary records), ``stderr``: ``raw/tracer.stderr``; ``lines``:
                                    lines in the trace file (records for ``libbpf``)
workload_pid           int|null     the workload's pid (its READY line, else its summary)
tracer_pid             int|null     the tracer's pid
summary                str|null     ``record/summary.json`` when the workload wrote its summary
fixture                bool         true ONLY for hand-written FreeBSD fixture bundles: never a
                                    measurement
aiotrace_version       str          the package version that wrote the bundle
target                 dict         (optional; every capture writes it) what was traced: ``kind``
                                    (``workload`` | ``command`` | ``pid``), ``argv`` (the user's
                                    command, only ever run as argv), ``pid``, ``duration_s``,
                                    ``window_cut`` (str|null: why the window ended early: --duration,
                                    the pid exited, a signal), ``notes`` (list of str), ``task_io``
                                    (``raw/task_io.tsv``: per-thread /proc io counters, Linux foreign
                                    programs). A foreign program has no workload record: ``spec`` is
                                    ``{}`` and ``summary`` null.
model                  dict         ONLY in ``aiotrace simulate`` bundles: ``label`` ("FreeBSD semantics
                                    model (not a measurement)"), ``kernel`` (stock | d33144),
                                    ``rules`` (the model's source); such a bundle is never a measurement
=====================  ===========  ==========================================================

``losses`` may also hold ``excess_lines`` (int: more lines of a kind arrived than bpftrace's
``@emitted`` trailer says were printed) and ``unknown`` (bool: the trace cannot say what it lost).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tracer.base.errors import CaptureError

SCHEMA = "aiotrace.manifest/1"
BACKENDS = ("libbpf", "bpftrace", "strace", "dtrace", "ktrace", "truss", "none", "model")
FLAVOURS = ("events", "aggregate")
STATUSES = ("ok", "failed", "interrupted")
RAW_FORMATS = ("events", "bpftrace", "strace", "kdump", "truss", "dtrace", "libbpf")

# key -> allowed Python types (None means the key may be null)
KEYS: dict[str, tuple] = {
    "schema": (str,), "run_id": (str,), "os": (str,), "kernel": (str,), "machine": (str,),
    "cpus": (int,), "hostname": (str,), "backend": (str,), "backend_reason": (str,),
    "backend_version": (str, type(None)), "flavour": (str,), "command": (list,),
    "tracer_env": (dict,), "attach": (str,), "spec": (dict,), "features": (dict,), "fs": (dict,),
    "clocks": (dict,), "started_at": (str,), "ended_at": (str,), "duration_s": (float, int),
    "released_at_monotonic_ns": (int, type(None)), "exit": (dict,), "status": (str,),
    "reason": (str, type(None)), "losses": (dict,), "raw": (dict,),
    "workload_pid": (int, type(None)), "tracer_pid": (int, type(None)),
    "summary": (str, type(None)), "fixture": (bool,), "aiotrace_version": (str,),
}


OPTIONAL_KEYS: dict[str, tuple[type, ...]] = {"target": (dict,), "model": (dict,)}


def assemble(session, summary: dict | None, loss_report) -> dict[str, Any]:
    """The manifest of a finished :class:`tracer.capture.runner.CaptureSession` (every key above)."""
    import platform
    import time

    from tracer.capture.probe import filesystem_of, probe_features

    s, b = session, session.backend
    spec = s.spec.to_dict() if (s.spec is not None and s.target.kind == "workload") else {}
    if spec:
        features = probe_features(s.spec.file)  # can O_DIRECT work on that fs; can REAP exist on this OS
        features["o_direct_used"] = s.spec.direct
        fs = filesystem_of(s.spec.file)
    else:
        features, fs = {}, {}
    workload_reap = (summary or {}).get("features", {}).get("reap_supported") if isinstance(summary, dict) else None
    if workload_reap is None and summary:
        workload_reap = {1: True, 0: False}.get(summary.get("reap_supported"))  # standalone binary: 1/0/-1
    # only FreeBSD workloads test the flag (in reap mode); on Linux the summary says False by definition
    if workload_reap is not None and platform.system() == "FreeBSD":
        features["reap_supported"] = bool(workload_reap)
        features["reap_detail"] = ("the running kernel accepted" if workload_reap else "the running kernel refused") + \
            " AIO_KEVENT_FLAG_REAP (tested by the workload at run time)"
    uname = platform.uname()
    trace = s.trace_path
    raw = s.bundle.path / "raw"
    summary_path = s.bundle.path / "record" / "summary.json"
    losses = {"dropped_events": s.losses.dropped_events, "messages": s.losses.as_messages(), "allowed": s.allow_loss}
    if loss_report.excess_lines:
        losses["excess_lines"] = loss_report.excess_lines
    if loss_report.unknown:
        losses["unknown"] = True
    target = {**s.target.manifest(), "window_cut": s.window_cut, "notes": list(s.notes),
              "task_io": "raw/task_io.tsv" if (raw / "task_io.tsv").exists() else None}
    return {
        "schema": SCHEMA, "run_id": s.bundle.run_id, "os": uname.system, "kernel": uname.release,
        "machine": uname.machine, "cpus": os.cpu_count() or 1, "hostname": uname.node,
        "backend": b.name, "backend_reason": s.backend_reason, "backend_version": b.version(),
        "flavour": s.flavour, "command": s.commands, "tracer_env": s.tracer_env, "attach": b.attach,
        "spec": spec, "features": features, "fs": fs, "clocks": s.clocks,
        "started_at": s.started_at, "ended_at": _utc_now(), "duration_s": round(time.monotonic() - s.t0, 3),
        "released_at_monotonic_ns": s.released_ns,
        "exit": {"workload": None if s.workload is None else s.workload.returncode,
                 "tracer": None if s.tracer is None else s.tracer.returncode,
                 **({"post": s.post_exit} if s.post_exit else {})},
        "status": s.status, "reason": s.reason, "losses": losses,
        "raw": {"trace": s.bundle.rel(trace), "format": b.raw_format(s.flavour),
                "stderr": "raw/tracer.stderr", "lines": _count_lines(trace, b.raw_format(s.flavour))},
        "workload_pid": s.target_pid, "tracer_pid": s.tracer.pid if s.tracer is not None else None,
        "summary": "record/summary.json" if summary_path.exists() else None,
        "fixture": False, "aiotrace_version": _version(), "target": target,
    }


def _utc_now() -> str:
    import datetime as _dt
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _count_lines(path: Path, fmt: str = "") -> int:
    if not Path(path).exists():
        return 0
    if fmt == "libbpf":  # binary: its records are its lines
        from tracer.parse import libbpf
        return max(Path(path).stat().st_size - libbpf.HEADER_BYTES, 0) // libbpf.RECORD_DTYPE.itemsize
    n = 0
    with open(path, "rb") as fh:
        while block := fh.read(8 << 20):
            n += block.count(b"\n")
    return n


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("aiotrace")
    except Exception:  # not installed (PYTHONPATH runs)
        from tracer import __version__  # type: ignore[attr-defined]
        return str(__version__)


def validate_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """Check a manifest against the schema above; return it, or raise CaptureError naming the key."""
    if manifest.get("schema") != SCHEMA:
        raise CaptureError(f"manifest schema is {manifest.get('schema')!r}, expected {SCHEMA!r}")
    missing = [k for k in KEYS if k not in manifest]
    if missing:
        raise CaptureError(f"manifest lacks keys: {', '.join(missing)}")
    for key, types in KEYS.items():
        value = manifest[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise CaptureError(f"manifest key {key!r} has type {type(manifest[key]).__name__}")
    for key, allowed in (("backend", BACKENDS), ("flavour", FLAVOURS), ("status", STATUSES)):
        if manifest[key] not in allowed:
            raise CaptureError(f"manifest {key} {manifest[key]!r} is not one of {', '.join(allowed)}")
    if manifest["raw"].get("format") not in RAW_FORMATS:
        raise CaptureError(f"manifest raw.format {manifest['raw'].get('format')!r} is not one of {', '.join(RAW_FORMATS)}")
    if "model" in manifest and not (isinstance(manifest["model"], dict) and manifest["model"].get("label")):
        raise CaptureError("manifest key 'model' must be a dict with a label")
    if not all(isinstance(c, list) and all(isinstance(t, str) for t in c) for c in manifest["command"]):
        raise CaptureError("manifest command must be a list of argv lists of strings")
    for key, types in OPTIONAL_KEYS.items():
        if key in manifest and not isinstance(manifest[key], types):
            raise CaptureError(f"manifest key {key!r} has type {type(manifest[key]).__name__}")
    for k in ("dropped_events", "messages", "allowed"):
        if k not in manifest["losses"]:
            raise CaptureError(f"manifest losses lacks {k!r}")
    return manifest


def write_manifest(bundle_dir: Path, manifest: dict[str, Any]) -> Path:
    """Validate and write ``manifest.json`` atomically (temp file, fsync, rename). Returns its path."""
    validate_manifest(manifest)
    path = Path(bundle_dir) / "manifest.json"
    tmp = path.with_name(".manifest.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_manifest(bundle_dir: Path) -> dict[str, Any]:
    """Read and validate a bundle's manifest."""
    path = Path(bundle_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise CaptureError(f"{bundle_dir}: not a run bundle (no manifest.json)") from None
    except json.JSONDecodeError as exc:
        raise CaptureError(f"{path}: not JSON: {exc}") from None
    return validate_manifest(manifest)

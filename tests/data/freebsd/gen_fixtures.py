#!/usr/bin/env python3
"""gen_fixtures.py  Write the FreeBSD fixture run bundles from runs of the FreeBSD semantics model.

USAGE:   python tests/data/freebsd/gen_fixtures.py      (from the repository root; rewrites the bundles;
         needs the model extension: pip install -e .)

WHAT:    FreeBSD cannot run here. Each bundle is one `aiotrace simulate` run (tracer/simulate.py: the
         workload engine and the FreeBSD mode files, unchanged, on the user-space model of FreeBSD's
         AIO + kqueue rules, workloads/fbsd_model) of 16 reads of 4 KiB, depth 8, reap batch 4, one
         aio_read per I/O, rendered as the text each FreeBSD tracer prints for it:
           dtrace  raw/events.txt  the D scripts' event lines, as the model writes them
           ktrace  raw/kdump.txt   `kdump -H -T` of `ktrace -t cstu+` (tracer/freebsd_render.py)
           truss   raw/truss.txt   `truss -f -H -d -D` (tracer/freebsd_render.py)
         The model's own record is kept as raw/model-records.parquet, so a test re-renders it and
         compares (the runs themselves are not deterministic: thread ids, addresses, timing).
         Kernels: stock, and d33271 = the D33144 tree with D33271 (the model's d33144 kernel).
OUTPUT:  tests/data/freebsd/<mode>/<backend>-<threads>-<kernel>/ (run-bundle layout), manifest.json with
         "model": {"label": "FreeBSD semantics model (not a measurement)", ...}: NOT measurements.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
N, DEPTH, REAP_BATCH, BS = 16, 8, 4, 4096
REALTIME_MINUS_MONOTONIC_NS = 1_795_920_000_000_000_000  # the kdump -T clock of the rendering
MODES = ("aio-poll", "aio-suspend", "waitcomplete", "kevent", "kevent-error", "reap")
# reap exists only on the D33144 tree: its stock variants are made on d33271
VARIANTS = list(dict.fromkeys(
    (mode, backend, threads, "d33271" if mode == "reap" else kernel)
    for mode in MODES
    for backend, threads, kernel in (("dtrace", "split", "stock"), ("dtrace", "split", "d33271"),
                                     ("dtrace", "single", "stock"), ("ktrace", "single", "stock"),
                                     ("truss", "split", "d33271"))))
TRACER_ARGV = {
    "ktrace": ["ktrace", "-i", "-t", "cstu+", "-f", "raw/ktrace.out", "WORKLOAD"],
    "truss": ["truss", "-f", "-H", "-D", "-d", "-o", "raw/truss.txt", "WORKLOAD"],
}


def render(backend: str, records, pid: int, origin_ns: int) -> tuple[str, str, str]:
    """(bundle-relative trace path, raw format, text) of one backend for a model record."""
    from tracer.freebsd_render import kdump_text, truss_text
    from tracer.base.schema import HEADER_LINE
    from tracer.simulate import event_lines

    if backend == "ktrace":
        return "raw/kdump.txt", "kdump", kdump_text(records, pid, REALTIME_MINUS_MONOTONIC_NS)
    if backend == "truss":
        return "raw/truss.txt", "truss", truss_text(records, pid, origin_ns)
    return "raw/events.txt", "events", "\n".join([HEADER_LINE, *event_lines(records, pid)]) + "\n"


def write_bundle(mode: str, backend: str, threads: str, kernel: str, data_file: str) -> Path:
    from tracer.capture.manifest import write_manifest
    from tracer.simulate import simulate
    from tracer.base.spec import RunSpec

    spec = RunSpec(mode=mode, depth=DEPTH, reap_batch=REAP_BATCH, count=N, bs=BS, file=data_file,
                   file_size=1 << 20, threads=threads)
    bundle = HERE / mode / f"{backend}-{threads}-{kernel}"
    with tempfile.TemporaryDirectory() as tmp:
        run = simulate(spec, "d33144" if kernel == "d33271" else "stock", tmp)
        if bundle.exists():
            shutil.rmtree(bundle)
        shutil.copytree(run.bundle, bundle, ignore=shutil.ignore_patterns("cache"))
    (bundle / "cache").mkdir()
    (bundle / "cache" / ".keep").write_text("")
    manifest = json.loads((bundle / "manifest.json").read_text())
    pid = int(manifest["workload_pid"])
    records = run.records
    records.to_parquet(bundle / "raw" / "model-records.parquet", index=False)
    origin = int(records["ts_ns"].min()) - 1_000_000
    trace, fmt, text = render(backend, records, pid, origin)
    if trace != "raw/events.txt":
        (bundle / "raw" / "events.txt").unlink()
    (bundle / trace).write_text(text)
    manifest.update(
        backend=backend, backend_reason=f"rendered from the model's record as {backend} prints it",
        raw={"trace": trace, "format": fmt, "stderr": "raw/tracer.stderr", "lines": text.count("\n")},
        clocks={"realtime_minus_monotonic_ns": REALTIME_MINUS_MONOTONIC_NS, "trace_origin_monotonic_ns": origin},
        run_id=f"model-{mode}-{backend}-{threads}-{kernel}")
    if backend in TRACER_ARGV:
        manifest["command"] = manifest["command"] + [TRACER_ARGV[backend]]
    manifest["model"] = {**manifest["model"], "rendered_as": backend, "records": "raw/model-records.parquet",
                         "generator": "tests/data/freebsd/gen_fixtures.py"}
    (bundle / "manifest.json").unlink()
    write_manifest(bundle, manifest)
    return bundle


def main() -> None:
    sys.path.insert(0, str(REPO))
    for mode in MODES:
        if (HERE / mode).exists():
            shutil.rmtree(HERE / mode)
    with tempfile.TemporaryDirectory() as tmp:
        data_file = str(Path(tmp) / "aiotrace.dat")
        for v in VARIANTS:
            print(write_bundle(*v, data_file).relative_to(HERE))


if __name__ == "__main__":
    main()

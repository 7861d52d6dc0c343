#!/usr/bin/env python3
"""Scale: time and peak memory to build the model and run every analysis on 1 M and 10 M events.

USAGE:   python bench/bench_scale.py [--smoke] [--sizes 1000000,10000000] [--json OUT]
         python bench/bench_scale.py --child BUNDLE     (internal: measures one bundle)
INPUT:   a run bundle written by a vectorized generator (numpy columns -> pyarrow CSV writer),
         in the real event-line format of dscripts/linux/aiotrace-events.bt for an io_uring run
         at depth 32, submit and reap batch 8, in the order a real capture prints them:
           submit probe, sys_enter io_uring_enter, 8 x job_queue, 8 x job_done, sys_exit,
           8 x reap probe                                     (27 lines per 8 I/Os)
         with a banner, the header, sync + window_start/stop probes, consistent pid/tid, I/O ids
         in submission order, user_data addresses reused per slot (as io_uring does), and the
         matching record/ios.parquet, threads.parquet, summary.json and manifest.json.
MEASURE: each size in a fresh child process: load_bundle(cache=False) (parse + model), then
         every analysis of tracer.analysis (amplification by role/thread/syscall, attribution,
         free timing per I/O/percentiles/histogram/jobs alive, latency percentiles/throughput,
         the compare metrics); wall time of each phase (time.perf_counter) and the child's peak
         RSS (VmHWM), which includes the interpreter and imports (reported separately as the baseline).
FIELDS:  events, trace MB, parse+model s, analyses s, total s, peak RSS MiB, ns/event, and the
         largest/smallest ratio of each (linear growth = the event ratio).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import PY, REPO, md_table  # noqa: E402

BATCH = 8
DEPTH = 32
LINES_PER_BATCH = 3 + 3 * BATCH  # submit, sys_enter, sys_exit + queue/done/reap per I/O
PID = 4242
FD = 4
SQE_BASE = 94901351745248  # user_data = address of the slot's request, reused per slot
SQE_STRIDE = 216
LINE_NS = 6000  # spacing of consecutive lines, close to a real capture (~6 us per event)
T0_NS = 3_322_196_000_000
NR_IO_URING_ENTER = 426


def _ios_for(events: int) -> int:
    return max(BATCH, (events // LINES_PER_BATCH) * BATCH)


def write_bundle(root: Path, events: int) -> tuple[Path, int, int]:
    """Write a run bundle of about ``events`` event lines under ``root``.
    Returns (bundle path, event lines written, I/Os)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from tracer.base.schema import FIELD_NAMES, HEADER_LINE

    n_ios = _ios_for(events)
    n_batches = n_ios // BATCH
    ids = np.arange(n_ios, dtype=np.int64)
    addr = SQE_BASE + (ids % DEPTH) * SQE_STRIDE
    kaddr = -131385391363072 + (ids % DEPTH) * 512
    # one block of LINES_PER_BATCH rows per batch; column values by position inside the block
    pos_ev = (["submit", "sys_enter"] + ["job_queue"] * BATCH + ["job_done"] * BATCH + ["sys_exit"]
              + ["reap"] * BATCH)
    pos_name = (["aiotrace_probe_submit", f"nr{NR_IO_URING_ENTER}"] + ["io_uring_submit_req"] * BATCH
                + ["io_uring_complete"] * BATCH + [f"nr{NR_IO_URING_ENTER}"] + ["aiotrace_probe_reap"] * BATCH)
    L = LINES_PER_BATCH
    n_body = n_batches * L
    b = np.repeat(np.arange(n_batches, dtype=np.int64), L)  # batch of each row
    k = np.tile(np.arange(L, dtype=np.int64), n_batches)  # position of each row in its block
    io_in_batch = np.where(k < 2, 0, np.where(k < 2 + BATCH, k - 2, np.where(k < 2 + 2 * BATCH, k - 2 - BATCH,
                                                                               np.where(k == 2 + 2 * BATCH, 0, k - 3 - 2 * BATCH))))
    io = b * BATCH + io_in_batch
    is_q = (k >= 2) & (k < 2 + BATCH)
    is_d = (k >= 2 + BATCH) & (k < 2 + 2 * BATCH)
    is_r = k > 2 + 2 * BATCH
    zeros = np.zeros(n_body, dtype=np.int64)
    ts = T0_NS + 10 * LINE_NS + np.arange(n_body, dtype=np.int64) * LINE_NS
    col_id = np.where(is_q | is_d, addr[io], np.where(is_r | (k == 0), io, 0))
    a0 = np.where(k == 0, BATCH, np.where(k == 1, FD, np.where(is_q | is_d, kaddr[io], np.where(is_r, BATCH, 0))))
    a1 = np.where(k == 1, BATCH, np.where(is_q, 22, 0))
    ret = np.where((k == 0) | (k == 2 + 2 * BATCH), BATCH, np.where(is_d | is_r, 4096, 0))
    ev_codes = np.array([list(dict.fromkeys(pos_ev)).index(e) for e in pos_ev])[k]
    name_codes = np.array([list(dict.fromkeys(pos_name)).index(e) for e in pos_name])[k]
    table = pa.table({
        "tag": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n_body, dtype=np.int8)), pa.array(["E"])),
        "ts_ns": ts, "pid": np.full(n_body, PID), "tid": np.full(n_body, PID),
        "ev": pa.DictionaryArray.from_arrays(pa.array(ev_codes.astype(np.int8)), pa.array(list(dict.fromkeys(pos_ev)))),
        "name": pa.DictionaryArray.from_arrays(pa.array(name_codes.astype(np.int8)),
                                               pa.array(list(dict.fromkeys(pos_name)))),
        "id": col_id, "a0": a0, "a1": a1, "a2": zeros, "ret": ret, "err": zeros,
    })
    bundle = root / f"scale-{events}"
    if bundle.exists():
        shutil.rmtree(bundle)
    (bundle / "raw").mkdir(parents=True)
    (bundle / "record").mkdir()
    window_start = int(ts[0] - LINE_NS)
    window_stop = int(ts[-1] + LINE_NS)
    trace = bundle / "raw" / "events.txt"
    with open(trace, "wb") as f:
        f.write(b"Attaching 13 probes...\n" + HEADER_LINE.encode() + b"\n")
        f.write(f"E\t{window_start - 2 * LINE_NS}\t{PID}\t{PID}\tsync\taiotrace_probe_sync\t0\t{window_start - 2 * LINE_NS - 6000}\t0\t0\t0\t0\n".encode())
        f.write(f"E\t{window_start}\t{PID}\t{PID}\twindow_start\taiotrace_probe_window_start\t0\t{n_ios}\t0\t0\t0\t0\n".encode())
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none",
                                                     batch_size=1 << 16))
        f.write(f"E\t{window_stop}\t{PID}\t{PID}\twindow_stop\taiotrace_probe_window_stop\t0\t{n_ios}\t0\t0\t0\t0\n\n\n".encode())
    n_lines = n_body + 3
    assert list(table.column_names[1:]) == list(FIELD_NAMES)

    # the workload's own record for the same I/Os
    submit_ns = ts[(k == 0)].repeat(BATCH) + LINE_NS
    complete_ns = ts[is_r]
    rng = np.random.default_rng(1)
    pd.DataFrame({
        "id": ids.astype(np.uint64), "op": pd.Series(["read"] * n_ios, dtype="string"),
        "offset": rng.integers(0, (64 << 20) // 4096, n_ios) * 4096, "bytes": np.full(n_ios, 4096, dtype=np.int64),
        "submit_ns": submit_ns.astype(np.uint64), "complete_ns": complete_ns.astype(np.uint64),
        "result": np.full(n_ios, 4096, dtype=np.int64), "submit_tid": np.full(n_ios, PID, dtype=np.int64),
        "reap_tid": np.full(n_ios, PID, dtype=np.int64),
    }).to_parquet(bundle / "record" / "ios.parquet", index=False)
    pd.DataFrame([{"tid": PID, "name": "python", "role": "both", "inblock": 0, "oublock": 0,
                   "utime_ns": 1000 * n_ios, "stime_ns": 2000 * n_ios, "nvcsw": 0, "nivcsw": 0,
                   "io_read_bytes": 0, "io_write_bytes": 0}]).astype(
        {"name": "string", "role": "string"}).to_parquet(bundle / "record" / "threads.parquet", index=False)
    elapsed = window_stop - window_start
    spec = {"mode": "io_uring", "op": "read", "depth": DEPTH, "batch": BATCH, "reap_batch": BATCH, "bs": 4096,
            "count": n_ios, "duration": None, "file": "bench.dat", "file_size": 64 << 20, "direct": False,
            "pattern": "rand", "seed": 1, "threads": "single", "submit": "single", "extra": {}}
    summary = {"mode": "io_uring", "os": "Linux", "spec": spec, "pid": PID, "ios": n_ios, "errors": 0,
               "verified": True, "elapsed_ns": elapsed, "iops": n_ios / (elapsed / 1e9), "mb_per_s": 0.0,
               "latency_ns": {}, "cpu_ns_per_io": 0.0, "window": {"start_ns": window_start, "stop_ns": window_stop},
               "threads": [], "features": {"reap_supported": False, "o_direct": False},
               "submit_calls": n_batches, "wait_calls": 0}
    (bundle / "record" / "summary.json").write_text(json.dumps(summary))
    manifest = {"schema": "aiotrace.manifest/1", "os": "Linux", "kernel": os.uname().release,
                "machine": os.uname().machine, "cpus": os.cpu_count(), "backend": "bpftrace",
                "backend_version": "bpftrace v0.17.0", "flavour": "events", "command": [], "spec": spec,
                "features": {"reap_supported": False, "o_direct": False}, "fs": "ext4",
                "started_at": "", "ended_at": "", "exit": {"workload": 0, "tracer": 0}, "status": "ok",
                "reason": "generated by bench/bench_scale.py (synthetic, real event-line format)",
                "losses": {"dropped_events": 0, "messages": []},
                "raw": {"trace": "raw/events.txt", "format": "events", "lines": n_lines + 4},
                "workload_pid": PID, "fixture": False}
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return bundle, n_lines, n_ios


def peak_rss_mib() -> float:
    """This process's peak RSS in MiB: VmHWM of /proc/self/status (Linux), which starts afresh at
    exec; ru_maxrss would carry the parent's peak across fork+exec. ru_maxrss elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(bundle: Path) -> dict:
    """Measure one bundle in this (fresh) process; returns the timings and peak RSS."""
    rss_start = peak_rss_mib()
    from tracer.analysis import amplification, attribution, compare, free_timing, latency
    from tracer.analysis.requires import can_run
    from tracer.model import load_bundle

    rss_imports = peak_rss_mib()
    t0 = time.perf_counter()
    model = load_bundle(bundle, cache=False)
    t_model = time.perf_counter() - t0
    analyses = [amplification.by_role, amplification.by_thread, amplification.by_syscall, attribution.by_thread,
                free_timing.per_io, free_timing.percentiles, free_timing.histogram, free_timing.jobs_alive,
                latency.percentiles, latency.throughput, compare.run_metrics]
    per, skipped = {}, []
    t1 = time.perf_counter()
    for fn in analyses:
        ok, missing = can_run(fn, model)
        if not ok:
            skipped.append(f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}: {missing}")
            continue
        ta = time.perf_counter()
        fn(model)
        per[f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"] = time.perf_counter() - ta
    t_an = time.perf_counter() - t1
    return {"events": int(len(model.events)), "syscalls": int(len(model.syscalls)), "ios": int(len(model.ios)),
            "unparsed": int(model.losses.get("unparsed_lines", 0)), "model_s": t_model, "analyses_s": t_an,
            "per_analysis_s": per, "skipped": skipped,
            "peak_rss_mib": peak_rss_mib(), "rss_before_mib": rss_start, "rss_after_imports_mib": rss_imports}


def measure(sizes: list[int], workdir: Path | None = None) -> list[dict]:
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="aiotrace-bench-scale-")) if own else workdir
    rows = []
    try:
        for n in sizes:
            tg = time.perf_counter()
            bundle, n_lines, n_ios = write_bundle(root, n)
            gen_s = time.perf_counter() - tg
            mb = (bundle / "raw" / "events.txt").stat().st_size / 1e6
            r = subprocess.run([PY, str(Path(__file__).resolve()), "--child", str(bundle)], capture_output=True,
                               text=True, timeout=1200, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
            if r.returncode != 0:
                raise RuntimeError(f"scale child failed for {n} events:\n{r.stderr[-3000:]}")
            res = json.loads(r.stdout.strip().splitlines()[-1])
            if res["events"] < n_lines:
                raise RuntimeError(f"model has {res['events']} events, the trace {n_lines} event lines")
            row = {"target_events": n, "event_lines": n_lines, "ios": n_ios, "trace_mb": mb, "generate_s": gen_s, **res}
            rows.append(row)
            print(f"  {n_lines:,} events ({mb:.0f} MB): model {res['model_s']:.1f} s, analyses {res['analyses_s']:.1f} s, "
                  f"peak RSS {res['peak_rss_mib']:.0f} MiB", flush=True)
            shutil.rmtree(bundle, ignore_errors=True)
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
    return rows


def markdown(rows: list[dict]) -> str:
    header = ["events", "trace MB", "I/Os", "parse + model s", "analyses s", "total s", "ns/event", "peak RSS MiB"]
    body = []
    for r in rows:
        total = r["model_s"] + r["analyses_s"]
        body.append([f"{r['event_lines']:,}", f"{r['trace_mb']:.0f}", f"{r['ios']:,}", f"{r['model_s']:.2f}",
                     f"{r['analyses_s']:.2f}", f"{total:.2f}", f"{total / r['event_lines'] * 1e9:.0f}",
                     f"{r['peak_rss_mib']:.0f}"])
    out = md_table(header, body)
    if len(rows) >= 2:
        lo, hi = rows[0], rows[-1]
        ev = hi["event_lines"] / lo["event_lines"]
        t = (hi["model_s"] + hi["analyses_s"]) / (lo["model_s"] + lo["analyses_s"])
        base = lo["rss_after_imports_mib"]
        mem = (hi["peak_rss_mib"] - base) / max(lo["peak_rss_mib"] - base, 1e-9)
        out += (f"\n\nLargest/smallest: events x{ev:.2f}, time x{t:.2f}, peak RSS above the interpreter+imports "
                f"baseline ({base:.0f} MiB) x{mem:.2f} (linear = x{ev:.2f}).")
        skipped = sorted({s for r in rows for s in r["skipped"]})
        if skipped:
            out += " Analyses that refused this bundle (not timed): " + "; ".join(skipped) + "."
    return out


def run(smoke: bool = False, sizes: list[int] | None = None) -> dict:
    sizes = sizes or ([20_000, 40_000] if smoke else [1_000_000, 10_000_000])
    rows = measure(sizes)
    return {"rows": rows, "markdown": markdown(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--sizes", type=str, default=None, help="comma-separated event counts")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child)))
        return
    res = run(a.smoke, [int(s) for s in a.sizes.split(",")] if a.sizes else None)
    print(res["markdown"])
    if a.json:
        a.json.write_text(json.dumps(res["rows"], indent=1))


if __name__ == "__main__":
    main()

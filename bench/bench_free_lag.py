#!/usr/bin/env python3
"""Free lag per Linux mode: kernel completion -> release of the per-I/O state, captured with the
libbpf backend (per-event, no per-I/O uprobe), O_DIRECT random reads, depth 32, submit/reap batch
1/1 and 8/8.

USAGE:   python bench/bench_free_lag.py [--smoke] [--count N] [--json OUT]
SIDES:   one `aiotrace capture --backend libbpf` per (mode, batch); tracer.analysis.free_timing
         over each bundle. Release points (tracer/base/modes.py): libaio block completion -> the
         io_getevents return that harvested it; glibc POSIX AIO helper pread return -> aio_return
         (user-space state); io_uring CQE posted -> CQ head advanced (the workload's reap).
FIELDS:  n I/Os joined, p50, p99 and max free lag in microseconds, the release point, losses.
NOTE:    one run per row on a shared 2-vCPU VM: the tails move with the machine's load.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import md_table  # noqa: E402


def run(count: int = 20_000, smoke: bool = False) -> dict:
    from tracer.analysis import free_timing
    from tracer.capture.backends import BACKENDS
    from tracer.capture.runner import run_capture
    from tracer.model import load_bundle
    from tracer.base.spec import LINUX_MODES, RunSpec

    ok, why = BACKENDS["libbpf"].available()
    if not ok:
        return {"rows": [], "markdown": f"libbpf backend unusable here: {why}"}
    count = 500 if smoke else count
    tmp = Path(tempfile.mkdtemp(prefix="aiotrace-bench-freelag-"))
    rows = []
    try:
        for mode in LINUX_MODES:
            for batch in (1, 8):
                spec = RunSpec(mode=mode, depth=32, batch=batch, reap_batch=batch, count=count, direct=True,
                               file=str(tmp / "data.dat"), file_size=64 << 20)
                res = run_capture(spec, BACKENDS["libbpf"], "requested", "events", tmp / "runs")
                model = load_bundle(res.bundle)
                p = free_timing.percentiles(model).iloc[0]
                rows.append({"mode": mode, "batch": batch, "n": int(p["n"]), "p50_us": p["p50"] / 1e3,
                             "p99_us": p["p99"] / 1e3, "max_us": p["max"] / 1e3,
                             "release_point": p["release_point"], "status": res.status,
                             "dropped": int(model.losses.get("dropped_events") or 0)})
                print(f"  {mode} {batch}/{batch}: n {rows[-1]['n']} p50 {rows[-1]['p50_us']:.1f} us "
                      f"p99 {rows[-1]['p99_us']:.1f} us", flush=True)
                shutil.rmtree(res.bundle, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    header = ["mode", "submit/reap batch", "I/Os joined", "p50 us", "p99 us", "max us", "from -> to", "lost"]
    body = [[r["mode"], f"{r['batch']}/{r['batch']}", f"{r['n']:,}", f"{r['p50_us']:.1f}", f"{r['p99_us']:.1f}",
             f"{r['max_us']:.1f}", r["release_point"], str(r["dropped"])] for r in rows]
    return {"rows": rows, "markdown": md_table(header, body)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    res = run(a.count, a.smoke)
    print(res["markdown"])
    if a.json:
        a.json.write_text(json.dumps(res["rows"], indent=1))


if __name__ == "__main__":
    main()

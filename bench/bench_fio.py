#!/usr/bin/env python3
"""Workload against fio: the same engine, file, block size, depth and batching.

USAGE:   python bench/bench_fio.py [--smoke] [--reps N] [--json OUT]
SIDES:   ours = `python -m workloads --mode M` (the C engine, data verified on every read);
         fio  = `fio --ioengine=E --thread --invalidate=0` (page cache kept: fio would drop it).
PAIRS:   io_uring/io_uring, libaio/libaio (submit batch 1 + reap 1, and 8 + 8), aio-suspend and
         aio-poll against fio's posixaio (glibc POSIX AIO, one aio_read per I/O on both sides).
FIELDS:  IOPS of each side as each tool reports it over its own I/O phase (median [min–max] of
         alternating repetitions), the ratio ours/fio per repetition pair, and syscalls per I/O of
         each side counted by bpftrace (raw_syscalls:sys_enter, every thread of the process)
         in a run of N I/Os minus a run of 1 I/O, divided by N-1 (startup cancels out); ours also
         counts its own submit+wait calls.
NOTE:    fio's batching knobs: iodepth_batch_submit = our --batch, iodepth_batch_complete_min =
         our --reap-batch. fio's posixaio ignores batching (it has no lio_listio path).
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (PY, Stats, alternate, bench_main, count_syscalls, ensure_data_file, have_bpftrace,  # noqa: E402
                    md_table, paired_ratios, run_workload, top_syscalls)


@dataclass(frozen=True)
class Pair:
    ours_mode: str
    fio_engine: str
    batch: int
    reap_batch: int
    ios: int  # I/Os per timed run
    depth: int = 32
    bs: int = 4096

    @property
    def label(self) -> str:
        return f"{self.ours_mode} vs fio {self.fio_engine}, depth {self.depth}, batch {self.batch}/{self.reap_batch}"


FULL_PAIRS = (
    Pair("io_uring", "io_uring", 1, 1, 1_000_000),
    Pair("io_uring", "io_uring", 8, 8, 1_000_000),
    Pair("libaio", "libaio", 1, 1, 1_000_000),
    Pair("libaio", "libaio", 8, 8, 1_000_000),
    Pair("aio-suspend", "posixaio", 1, 1, 300_000),
    Pair("aio-poll", "posixaio", 1, 1, 300_000),
)
SMOKE_PAIRS = (Pair("io_uring", "io_uring", 8, 8, 1000),)


def ours_args(p: Pair, ios: int, data: Path) -> list[str]:
    return ["--mode", p.ours_mode, "--depth", str(p.depth), "--batch", str(p.batch),
            "--reap-batch", str(p.reap_batch), "--bs", str(p.bs), "--count", str(ios),
            "--file", str(data), "--file-size", str(data.stat().st_size), "--no-direct"]


def fio_args(p: Pair, ios: int, data: Path) -> list[str]:
    return ["fio", "--name=bench", f"--filename={data}", "--rw=randread", f"--bs={p.bs}",
            f"--ioengine={p.fio_engine}", f"--iodepth={p.depth}",
            f"--iodepth_batch_submit={p.batch}", f"--iodepth_batch_complete_min={p.reap_batch}",
            f"--size={data.stat().st_size}", f"--io_size={ios * p.bs}", "--thread", "--invalidate=0",
            "--randrepeat=1", "--norandommap", "--output-format=json"]


def fio_iops(args: list[str], cpu_ns_per_io: list[float]) -> float:
    """fio's IOPS; appends its CPU ns per I/O (usr_cpu + sys_cpu, in % of the job's runtime,
    from getrusage(RUSAGE_THREAD) of the job thread: glibc's POSIX AIO helper threads are not in it)."""
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"fio failed: {' '.join(args)}\n{r.stderr[-1500:]}")
    job = json.loads(r.stdout[r.stdout.index("{"):])["jobs"][0]
    ios = int(job["read"]["total_ios"])
    cpu_ns_per_io.append((job["usr_cpu"] + job["sys_cpu"]) / 100 * job["read"]["runtime"] * 1e6 / max(ios, 1))
    return float(job["read"]["iops"])


def ours_iops(args: list[str], cpu_ns_per_io: list[float], posix_calls_per_io: list[float]) -> float:
    """Our IOPS over the workload's window; appends its CPU ns per I/O (RUSAGE_SELF: every thread)
    and, for the POSIX modes, its own count of aio_error + aio_suspend calls per I/O (untraced:
    uprobes on glibc would slow each call and change how many completions a scan finds)."""
    s = run_workload(args)
    if not s.get("verified", True) or s.get("errors"):
        raise RuntimeError(f"workload run did not verify: {s.get('errors')} errors")
    cpu_ns_per_io.append(float(s["cpu_ns_per_io"]))
    if s["mode"] in ("aio-suspend", "aio-poll"):
        posix_calls_per_io.append((s.get("status_calls", 0) + s["wait_calls"]) / max(s["ios"], 1))
    return float(s["iops"])


def syscalls_per_io(p: Pair, data: Path, ios: int) -> dict:
    """bpftrace counts of a run of ``ios`` I/Os minus a run of 1 I/O, per I/O, for both sides."""
    out: dict = {}
    for side in ("ours", "fio"):
        def cmd(n: int) -> list[str]:
            if side == "ours":
                return [PY, "-m", "workloads", *ours_args(p, n, data), "--json"]
            return [*fio_args(p, n, data)]
        cmd_full = cmd(ios)
        if side == "fio":
            cmd_full[0] = _which("fio")
        base_cmd = cmd(1)
        if side == "fio":
            base_cmd[0] = _which("fio")
        total_n, by_nr_n, stdout_n = count_syscalls(cmd_full)
        total_1, by_nr_1, _ = count_syscalls(base_cmd)
        delta = {k: (by_nr_n.get(k, 0) - by_nr_1.get(k, 0)) / (ios - 1) for k in set(by_nr_n) | set(by_nr_1)}
        out[side] = {"per_io": (total_n - total_1) / (ios - 1), "top": top_syscalls(delta)}
        if side == "ours":
            summary = json.loads(stdout_n[stdout_n.index("{"):])
            out[side]["own_calls_per_io"] = (summary["submit_calls"] + summary["wait_calls"]) / summary["ios"]
    return out


def _which(name: str) -> str:
    import shutil

    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found")
    return path


def run(smoke: bool = False, reps: int = 5) -> dict:
    """Measure every pair; returns {"rows": [...], "markdown": str}."""
    data = ensure_data_file()
    pairs = SMOKE_PAIRS if smoke else FULL_PAIRS
    reps = 2 if smoke else reps
    count_ok = have_bpftrace()
    rows = []
    for p in pairs:
        cpu: dict[str, list[float]] = {"ours": [], "fio": []}
        posix_calls: list[float] = []
        stats = alternate({"ours": lambda: ours_iops(ours_args(p, p.ios, data), cpu["ours"], posix_calls),
                           "fio": lambda: fio_iops(fio_args(p, p.ios, data), cpu["fio"])}, reps)
        ratio = paired_ratios(stats["ours"], stats["fio"])
        sc = syscalls_per_io(p, data, min(p.ios, 200_000)) if count_ok else None
        rows.append({"pair": p.label, "ours_mode": p.ours_mode, "fio_engine": p.fio_engine,
                     "batch": p.batch, "reap_batch": p.reap_batch, "depth": p.depth, "ios": p.ios,
                     "reps": reps, "ours_iops": stats["ours"].values, "fio_iops": stats["fio"].values,
                     "ours_cpu_ns_per_io": cpu["ours"], "fio_cpu_ns_per_io": cpu["fio"],
                     "ours_posix_calls_per_io": posix_calls,
                     "ratio": ratio.values, "syscalls": sc})
        print(f"  {p.label}: ours {stats['ours'].fmt(',.0f')} fio {stats['fio'].fmt(',.0f')} "
              f"ratio {ratio.fmt('.2f')}" + (f" syscalls/IO ours {sc['ours']['per_io']:.3f} fio {sc['fio']['per_io']:.3f}" if sc else ""),
              flush=True)
    return {"rows": rows, "markdown": markdown(rows, count_ok)}


def markdown(rows: list[dict], counted: bool) -> str:
    header = ["ours vs fio (depth, submit/reap batch)", "ours IOPS", "fio IOPS", "IOPS ratio ours/fio",
              "CPU ns/IO ours", "CPU ns/IO fio",
              "syscalls/IO ours", "syscalls/IO fio", "ours: own submit+wait calls/IO", "dominant syscalls/IO ours; fio",
              "ours untraced: aio_error (status) + aio_suspend/poll (wait) calls/IO"]
    body = []
    for r in rows:
        sc = r["syscalls"]
        body.append([
            f"{r['ours_mode']} vs {r['fio_engine']} ({r['depth']}, {r['batch']}/{r['reap_batch']})",
            Stats(r["ours_iops"]).fmt(",.0f"), Stats(r["fio_iops"]).fmt(",.0f"), Stats(r["ratio"]).fmt(".2f"),
            Stats(r["ours_cpu_ns_per_io"]).fmt(",.0f"),
            Stats(r["fio_cpu_ns_per_io"]).fmt(",.0f") + (" (job thread only)" if r["fio_engine"] == "posixaio" else ""),
            f"{sc['ours']['per_io']:.3f}" if sc else "n/a", f"{sc['fio']['per_io']:.3f}" if sc else "n/a",
            f"{sc['ours']['own_calls_per_io']:.3f}" if sc else "n/a",
            f"{sc['ours']['top']}; {sc['fio']['top']}" if sc else "n/a",
            Stats(r["ours_posix_calls_per_io"]).fmt(".2f") if r["ours_posix_calls_per_io"] else "-"])
    note = "" if counted else "\n\nSyscall counts need root, bpftrace and tracefs: not measured in this run."
    return md_table(header, body) + note


def main() -> None:
    bench_main(__doc__, run, default_reps=5)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Capture overhead: the workload untraced, then under `aiotrace capture` with the libbpf backend
(aggregate and per-event), per-event bpftrace and strace -f, in every Linux mode (io_uring batched
8/8 at 200k page-cache I/Os is the issue-12 target case).

USAGE:   python bench/bench_capture.py [--smoke] [--reps N] [--json OUT]
SIDES:   untraced = `python -m workloads ... --json`; the others = `aiotrace capture --backend B
         [--aggregate]` (the real tool: workload held at its handshake, tracer attached by pid,
         then released), each run into a temporary bundle directory that is removed afterwards.
FIELDS:  IOPS as the workload measures it over its window (the same clock in every condition),
         median [min–max] over alternating repetitions; slowdown = untraced IOPS / traced IOPS of
         the repetition pair (1.0 = no cost, 10 = ten times slower); trace lines and lost events
         from the bundle's manifest.
NOTE:    strace stops the workload at every syscall (ptrace): glibc POSIX AIO makes about three
         syscalls per I/O in its helper thread and futexes, so the posix counts are kept small.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import PY, REPO, Stats, alternate, bench_main, ensure_data_file, have_bpftrace, md_table, run_workload  # noqa: E402

CONDITIONS = ("untraced", "libbpf-aggregate", "libbpf-events", "bpftrace-events", "strace")


@dataclass(frozen=True)
class Case:
    mode: str
    batch: int
    reap_batch: int
    ios: dict  # condition -> I/O count (strace needs fewer to stay within the time budget)
    depth: int = 32

    @property
    def label(self) -> str:
        return f"{self.mode} (depth {self.depth}, batch {self.batch}/{self.reap_batch})"


def _ios(n: int, strace: int | None = None) -> dict:
    return {**dict.fromkeys(CONDITIONS, n), "strace": strace or n}


FULL_CASES = (
    Case("io_uring", 8, 8, _ios(200_000)),
    Case("io_uring-sqpoll", 8, 8, _ios(200_000)),
    Case("libaio", 8, 8, _ios(200_000)),
    Case("aio-poll", 1, 1, _ios(30_000)),
    Case("aio-suspend", 1, 1, _ios(30_000)),
)
SMOKE_CASES = (Case("io_uring", 8, 8, dict.fromkeys(CONDITIONS, 1000)),)


def spec_args(c: Case, ios: int, data: Path) -> list[str]:
    return ["--mode", c.mode, "--depth", str(c.depth), "--batch", str(c.batch), "--reap-batch", str(c.reap_batch),
            "--count", str(ios), "--file", str(data), "--file-size", str(data.stat().st_size), "--no-direct"]


def capture_once(args: list[str], backend: str, aggregate: bool, bpf_stats: bool = False) -> tuple[float, dict]:
    """One `aiotrace capture`; returns (workload IOPS, manifest facts). ``bpf_stats``: the libbpf
    consumer times each BPF program (AIOTRACE_BPF_STATS=1); facts["program_costs"] has them."""
    out = Path(tempfile.mkdtemp(prefix="aiotrace-bench-cap-"))
    try:
        # --allow-loss: a tracer warning (strace's "ptrace_syscall_info.op == 2") or a loss must not
        # abort the whole benchmark; the bundle's status and lost events go into the table instead
        cmd = [PY, "-m", "tracer.cli", "capture", "--backend", backend, "--allow-loss", "--out", str(out), *args]
        if aggregate:
            cmd.append("--aggregate")
        env = {**os.environ, "PYTHONPATH": str(REPO), **({"AIOTRACE_BPF_STATS": "1"} if bpf_stats else {})}
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"capture failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
        bundle = Path(r.stdout.strip().splitlines()[-1])
        if not bundle.is_absolute():
            bundle = REPO / bundle
        manifest = json.loads((bundle / "manifest.json").read_text())
        summary = json.loads((bundle / "record" / "summary.json").read_text())
        facts = {"status": manifest.get("status"), "trace_lines": (manifest.get("raw") or {}).get("lines"),
                 "dropped_events": (manifest.get("losses") or {}).get("dropped_events", 0)}
        if bpf_stats:
            from tracer.capture.libbpf import program_costs
            facts["program_costs"] = program_costs((bundle / "raw" / "tracer.stdout").read_text())
        return float(summary["iops"]), facts
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run(smoke: bool = False, reps: int = 5) -> dict:
    data = ensure_data_file()
    cases = SMOKE_CASES if smoke else FULL_CASES
    reps = 1 if smoke else reps
    from tracer.capture.backends import BACKENDS
    libbpf_ok = BACKENDS["libbpf"].available()[0]
    conditions = tuple(c for c in CONDITIONS if (have_bpftrace() or not c.startswith("bpftrace"))
                       and (libbpf_ok or not c.startswith("libbpf")))
    rows, costs = [], []
    for c in cases:
        facts: dict[str, list] = {k: [] for k in conditions}

        def side(cond: str):
            def go() -> float:
                args = spec_args(c, c.ios[cond], data)
                if cond == "untraced":
                    return float(run_workload(args)["iops"])
                backend = cond.split("-")[0]
                iops, f = capture_once(args, backend, cond.endswith("-aggregate"))
                facts[cond].append(f)
                return iops
            return go

        stats = alternate({cond: side(cond) for cond in conditions}, reps)
        base = stats["untraced"]
        for cond in conditions:
            slowdown = Stats([b / t for b, t in zip(base.values, stats[cond].values) if t])
            rows.append({"case": c.label, "mode": c.mode, "condition": cond, "ios": c.ios[cond], "reps": reps,
                         "iops": stats[cond].values, "slowdown": slowdown.values, "facts": facts[cond]})
            print(f"  {c.label} {cond}: IOPS {stats[cond].fmt(',.0f')} slowdown x{slowdown.fmt('.2f')}", flush=True)
        for cond in (x for x in conditions if x.startswith("libbpf")):
            # one more run, timed by the kernel: what each BPF program costs per I/O (the timing
            # adds two clock reads per run, so these runs are not in the slowdown above)
            _, f = capture_once(spec_args(c, c.ios[cond], data), "libbpf", cond.endswith("-aggregate"), bpf_stats=True)
            costs.append({"case": c.label, "condition": cond, "ios": c.ios[cond], "programs": f["program_costs"]})
            print(f"  {c.label} {cond}: BPF ns per I/O {sum(ns for _, ns in f['program_costs'].values()) / c.ios[cond]:.0f}",
                  flush=True)
    return {"rows": rows, "costs": costs, "markdown": markdown(rows, conditions) + cost_markdown(costs)}


def cost_markdown(costs: list[dict]) -> str:
    """Per case and libbpf flavour: each program's runs per I/O, ns per run and ns per I/O."""
    if not costs:
        return ""
    body = []
    for c in costs:
        total = sum(ns for _, ns in c["programs"].values()) / c["ios"]
        for name, (runs, ns) in sorted(c["programs"].items(), key=lambda kv: -kv[1][1]):
            if ns / c["ios"] < 1:
                continue
            body.append([c["case"], c["condition"], name, f"{runs / c['ios']:.3f}", f"{ns / runs:,.0f}",
                         f"{ns / c['ios']:,.0f}"])
        body.append([c["case"], c["condition"], "**all programs**", "", "", f"**{total:,.0f}**"])
    return ("\n\nWhat each BPF program costs (one extra run per case with the kernel's BPF run-time "
            "statistics on; ns per run include the statistics' own two clock reads; runs count every "
            "hit of the hook, other processes' too):\n\n"
            + md_table(["case", "flavour", "program", "runs per I/O", "ns per run", "ns per I/O"], body))


def markdown(rows: list[dict], conditions: tuple[str, ...]) -> str:
    header = ["mode", "condition", "I/Os", "IOPS (workload's window)", "slowdown vs untraced (x)",
              "trace lines (records)", "lost events"]
    body = []
    for r in rows:
        lines = [f.get("trace_lines") for f in r["facts"] if f.get("trace_lines") is not None]
        lost = sum(int(f.get("dropped_events") or 0) for f in r["facts"])
        body.append([r["case"], r["condition"], f"{r['ios']:,}", Stats(r["iops"]).fmt(",.0f"),
                     Stats(r["slowdown"]).fmt(".2f"),
                     f"{int(Stats(lines).median):,}" if lines else "-",
                     "-" if r["condition"] == "untraced" else str(lost)])
    note = "" if "bpftrace-events" in conditions else "\n\nbpftrace needs root and tracefs: not measured in this run."
    return md_table(header, body) + note


def main() -> None:
    bench_main(__doc__, run, default_reps=5)


if __name__ == "__main__":
    main()

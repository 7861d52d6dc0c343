"""Shared pieces of the benchmarks: where they run (machine/kernel/date header), how the two
sides of a comparison alternate over repetitions, the median/min/max summary, and the small
runners every benchmark needs (the workload as a child process, bpftrace syscall counts).

Nothing here asserts a speed: benchmarks print ratios measured side by side in one run.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
BENCH_DIR = REPO / "bench"
# One data file for every benchmark: the workload creates it (each 8-byte word holds its offset,
# so our reads verify), fio reads the same bytes. Kept between runs: creating 64 MiB costs time.
DATA_DIR = Path(os.environ.get("AIOTRACE_BENCH_DIR", Path(tempfile.gettempdir()) / "aiotrace-bench"))
DATA_FILE = DATA_DIR / "bench.dat"
DATA_FILE_SIZE = 64 << 20


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "not available"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "not available"


def machine_info() -> dict[str, str]:
    """Machine, kernel, date and tool versions for the results header."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    distro = platform.system()
    try:
        rel = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        distro = rel.get("PRETTY_NAME", distro).strip('"')
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs ({cpu}), {mem_gib:.0f} GiB RAM",
        "os": distro,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "fio": _first_line(["fio", "--version"]),
        "bpftrace": _first_line(["bpftrace", "--version"]),
        "strace": _first_line(["strace", "-V"]),
    }


@dataclass
class Stats:
    """Median, min and max of repeated measurements (unit is the caller's)."""
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def min(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def max(self) -> float:
        return max(self.values) if self.values else float("nan")

    def fmt(self, spec: str = ".2f") -> str:
        """``median [min–max]``."""
        if not self.values:
            return "n/a"
        return f"{self.median:{spec}} [{self.min:{spec}}–{self.max:{spec}}]"


def alternate(sides: dict[str, Callable[[], float]], reps: int) -> dict[str, Stats]:
    """Run every side ``reps`` times, alternating the order each repetition (A B, B A, A B...),
    so slow drift (page cache, the other core's load) does not favour one side."""
    names = list(sides)
    out = {n: Stats() for n in names}
    for r in range(reps):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            out[n].values.append(float(sides[n]()))
    return out


def paired_ratios(num: Stats, den: Stats) -> Stats:
    """Per-repetition ratios num[i]/den[i] (the pairs ran back to back)."""
    return Stats([a / b for a, b in zip(num.values, den.values) if b])


def ensure_data_file() -> Path:
    """Create the shared data file with the workload (it writes the self-describing pattern)."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    if not DATA_FILE.exists() or DATA_FILE.stat().st_size != DATA_FILE_SIZE:
        run_workload(["--mode", "io_uring", "--count", "1", "--file", str(DATA_FILE),
                      "--file-size", str(DATA_FILE_SIZE)])
    # read it once so every page-cache run starts with the whole file cached
    with open(DATA_FILE, "rb") as f:
        while f.read(1 << 20):
            pass
    return DATA_FILE


def run_workload(args: list[str], timeout: float = 300) -> dict:
    """`python -m workloads <args> --json` untraced; returns its summary JSON."""
    cmd = [PY, "-m", "workloads", *args, "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    if r.returncode != 0:
        raise RuntimeError(f"workload failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return json.loads(r.stdout[r.stdout.index("{"):])


def have_bpftrace() -> bool:
    """bpftrace present and usable as root with tracefs mounted (raw_syscalls tracepoint)."""
    return (shutil.which("bpftrace") is not None and os.geteuid() == 0
            and Path("/sys/kernel/tracing/events/raw_syscalls").exists())


COUNT_SCRIPT = "tracepoint:raw_syscalls:sys_enter /pid == cpid/ { @[args->id] = count(); }"


def count_syscalls(cmd: list[str], timeout: float = 300) -> tuple[int, dict[int, int], str]:
    """Run ``cmd`` under ``bpftrace -c`` and count every syscall entry of its process (all its
    threads: ``pid`` is the TGID). Returns (total, {syscall nr: count}, the child's stdout).
    bpftrace -c splits its command on single spaces, so no argument may contain a space."""
    if any(" " in a or not a for a in cmd):
        raise ValueError(f"bpftrace -c cannot pass arguments with spaces: {cmd}")
    with tempfile.NamedTemporaryFile(prefix="aiotrace-bench-count-", suffix=".json") as out:
        # -o: bpftrace's own output goes to a file; the child's stdout stays on ours
        full = ["bpftrace", "-f", "json", "-o", out.name, "-c", " ".join(cmd), "-e", COUNT_SCRIPT]
        r = subprocess.run(full, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
        counts: dict[int, int] = {}
        for line in Path(out.name).read_text().splitlines():
            if not line.strip():
                continue  # bpftrace 0.17 prints bare empty lines at exit
            obj = json.loads(line)
            if obj.get("type") == "map":
                for _name, m in obj["data"].items():
                    counts.update({int(k): int(v) for k, v in m.items()})
    if r.returncode != 0 or not counts:
        raise RuntimeError(f"bpftrace count failed ({r.returncode}): {' '.join(full)}\n{r.stderr[-1500:]}")
    child_out = r.stdout.splitlines()
    return sum(counts.values()), counts, "\n".join(child_out)


def syscall_name(nr: int) -> str:
    """x86-64 syscall name (tracer/data/linux_x86_64_syscalls.tsv), else ``nr<N>``."""
    from tracer.data import linux_syscall_names
    return linux_syscall_names().get(nr, f"nr{nr}")


def top_syscalls(delta: dict[int, float], n: int = 3) -> str:
    """``io_uring_enter 0.125, futex 0.01`` for the largest per-I/O counts."""
    items = sorted(((v, k) for k, v in delta.items() if v > 0.0005), reverse=True)[:n]
    return ", ".join(f"{syscall_name(k)} {v:.3f}" for v, k in items)


def bench_main(doc: str, run: Callable[[bool, int], dict], default_reps: int) -> None:
    """The command line every side-by-side benchmark shares: --smoke, --reps, --json."""
    import argparse
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny configuration (seconds)")
    ap.add_argument("--reps", type=int, default=default_reps)
    ap.add_argument("--json", type=Path, default=None, help="write the raw measurements here")
    a = ap.parse_args()
    res = run(a.smoke, a.reps)
    print(res["markdown"])
    if a.json:
        a.json.write_text(json.dumps(res["rows"], indent=1))


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    v = fn()
    return time.perf_counter() - t0, v


def human(n: float) -> str:
    """1234567 -> 1.23M."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


def kv_text(d: dict[str, str]) -> str:
    return "\n".join(f"- **{k}**: {v}" for k, v in d.items())


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")

#!/usr/bin/env python3
"""`make bench`: every benchmark in one run, then bench/results.md, bench/results.json and
bench/results.png, and the results block of bench/README.md.

USAGE:   python bench/run_all.py [--smoke] [--only fio,capture,free-lag,parsers,scale] [--out DIR]
ORDER:   workload vs fio, capture overhead, parsers (bench/bench_parsers.py, run as a child),
         scale. Each section prints ratios measured side by side in this run (alternating
         repetitions, median [min–max]); nothing here is a pass/fail threshold.
BUDGET:  about 10 minutes on 2 cores (15 at most); --smoke runs each in seconds (the test).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import BENCH_DIR, PY, REPO, Stats, kv_text, machine_info  # noqa: E402

SECTIONS = ("fio", "capture", "free-lag", "parsers", "scale")
README_START = "<!-- results:start (written by bench/run_all.py) -->"
README_END = "<!-- results:end -->"


def run_parsers(smoke: bool) -> dict:
    """bench/bench_parsers.py (owned by the parser layer) as a child; its table and JSON rows."""
    with tempfile.NamedTemporaryFile(prefix="aiotrace-bench-parsers-", suffix=".json") as tmp:
        cmd = [PY, str(BENCH_DIR / "bench_parsers.py"), "--json", tmp.name, *(["--smoke"] if smoke else [])]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO)
        if r.returncode != 0:
            raise RuntimeError(f"bench_parsers.py failed ({r.returncode}):\n{r.stderr[-2000:]}")
        rows = json.loads(Path(tmp.name).read_text())
    table = "\n".join(line for line in r.stdout.splitlines() if line.startswith("|"))
    for line in r.stderr.splitlines():
        print(f"  {line}", flush=True)
    return {"rows": rows, "markdown": table}


def run_section(name: str, smoke: bool) -> dict:
    if name == "fio":
        import bench_fio
        return bench_fio.run(smoke)
    if name == "capture":
        import bench_capture
        return bench_capture.run(smoke)
    if name == "free-lag":
        import bench_free_lag
        return bench_free_lag.run(smoke=smoke)
    if name == "parsers":
        return run_parsers(smoke)
    if name == "scale":
        import bench_scale
        return bench_scale.run(smoke)
    raise ValueError(name)


TITLES = {
    "fio": "1. Workload vs fio (same engine, file, block size 4 KiB, depth, batching; page cache, random reads)",
    "capture": "2. Capture overhead (`aiotrace capture`, workload IOPS over its window; slowdown = untraced / traced)",
    "free-lag": "2b. Free lag per Linux mode (libbpf per-event capture, O_DIRECT, depth 32, batch 1/1 and 8/8)",
    "parsers": "3. Parsers (MB/s and records/s beside a plain pyarrow CSV read of the same bytes; event lines vs typed pyarrow CSV; strace vs PyPI strace-parser)",
    "scale": "4. Scale (build the model + run every analysis, fresh process per size)",
}


def ratio_lines(results: dict) -> list[str]:
    """One line per ratio measured, for the summary at the top of results.md."""
    out = []
    for r in results.get("fio", {}).get("rows", []):
        sc = r.get("syscalls")
        extra = f"; syscalls/IO {sc['ours']['per_io']:.3f} vs {sc['fio']['per_io']:.3f}" if sc else ""
        out.append(f"- IOPS ours/fio, {r['ours_mode']} vs fio {r['fio_engine']} (depth {r['depth']}, batch "
                   f"{r['batch']}/{r['reap_batch']}): **{Stats(r['ratio']).fmt('.2f')}**{extra}")
    for r in results.get("capture", {}).get("rows", []):
        if r["condition"] != "untraced":
            out.append(f"- capture slowdown, {r['case']}, {r['condition']}: **x{Stats(r['slowdown']).fmt('.2f')}**")
    for r in results.get("parsers", {}).get("rows", []):
        if r.get("ratio"):
            what = "our time / pyarrow read_csv time" if r["format"] == "events" else f"{r['reference']} time / our time"
            out.append(f"- parser {r['format']}: {what} **{Stats(r['ratio']).fmt('.2f')}** "
                       f"({Stats(r['mb_per_s']).fmt('.1f')} MB/s)")
        if r.get("csv_ratio"):
            out.append(f"- parser {r['format']}: {Stats(r['mb_per_s']).fmt('.1f')} MB/s beside a plain pyarrow CSV read "
                       f"of the same bytes at {Stats(r['csv_mb_per_s']).fmt('.1f')} MB/s: our time / its time "
                       f"**{Stats(r['csv_ratio']).fmt('.2f')}**")
    rows = results.get("scale", {}).get("rows", [])
    if len(rows) >= 2:
        lo, hi = rows[0], rows[-1]
        t = (hi["model_s"] + hi["analyses_s"]) / (lo["model_s"] + lo["analyses_s"])
        out.append(f"- scale {hi['event_lines']:,}/{lo['event_lines']:,} events (x{hi['event_lines'] / lo['event_lines']:.2f}): "
                   f"time **x{t:.2f}**, peak RSS x{hi['peak_rss_mib'] / lo['peak_rss_mib']:.2f}")
    return out


def write_markdown(results: dict, info: dict, elapsed_s: dict, smoke: bool) -> str:
    parts = ["# aiotrace benchmarks" + (" (smoke configuration: not a measurement)" if smoke else ""), "",
             kv_text(info), f"- **bench wall time**: {sum(elapsed_s.values()):.0f} s ("
             + ", ".join(f"{k} {v:.0f} s" for k, v in elapsed_s.items()) + ")", "",
             "## Every ratio", "", *ratio_lines(results), ""]
    for name in SECTIONS:
        if name in results:
            parts += [f"## {TITLES[name]}", "", results[name]["markdown"], ""]
        elif name in elapsed_s:
            parts += [f"## {TITLES[name]}", "", "not run", ""]
    return "\n".join(parts)


def plot(results: dict, path: Path, info: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    fig.suptitle(f"aiotrace benchmarks: {info['machine']}, kernel {info['kernel']}, {info['date']}", fontsize=10)

    def bars(ax, labels, stats_list, title, ylabel, ref=None, log=False):
        med = [s.median for s in stats_list]
        lo = [s.median - s.min for s in stats_list]
        hi = [s.max - s.median for s in stats_list]
        ax.bar(range(len(labels)), med, yerr=[lo, hi], capsize=3, color="#4c72b0")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        if ref is not None:
            ax.axhline(ref, color="grey", lw=1, ls="--")
        if log:
            ax.set_yscale("log")

    fio_rows = results.get("fio", {}).get("rows", [])
    if fio_rows:
        bars(axes[0][0], [f"{r['ours_mode']}/{r['fio_engine']} {r['batch']}/{r['reap_batch']}" for r in fio_rows],
             [Stats(r["ratio"]) for r in fio_rows], "IOPS ours / fio (median, min–max)", "ratio", ref=1.0)
    cap = [r for r in results.get("capture", {}).get("rows", []) if r["condition"] != "untraced"]
    if cap:  # grouped: one group per mode, one colour per capture condition
        ax = axes[0][1]
        modes = list(dict.fromkeys(r["mode"] for r in cap))
        conds = list(dict.fromkeys(r["condition"] for r in cap))
        width = 0.8 / len(conds)
        colors = ("#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974")
        for j, cond in enumerate(conds):
            rows = {r["mode"]: Stats(r["slowdown"]) for r in cap if r["condition"] == cond}
            xs = [i + (j - (len(conds) - 1) / 2) * width for i, m in enumerate(modes) if m in rows]
            st = [rows[m] for m in modes if m in rows]
            ax.bar(xs, [x.median for x in st], width, label=cond, color=colors[j % len(colors)],
                   yerr=[[x.median - x.min for x in st], [x.max - x.median for x in st]], capsize=2)
        ax.set_xticks(range(len(modes)), modes, rotation=20, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.axhline(1.0, color="grey", lw=1, ls="--")
        ax.set_title("capture slowdown vs untraced (x, log; median, min–max)", fontsize=10)
        ax.set_ylabel("untraced IOPS / traced IOPS")
        ax.legend(fontsize=7, loc="upper left", ncol=2)
    prs = results.get("parsers", {}).get("rows", [])
    if prs:
        bars(axes[1][0], [r["format"] for r in prs], [Stats(r["mb_per_s"]) for r in prs], "parser throughput", "MB/s")
    sc = results.get("scale", {}).get("rows", [])
    if sc:
        ax = axes[1][1]
        ev = [r["event_lines"] / 1e6 for r in sc]
        ax.plot(ev, [r["model_s"] + r["analyses_s"] for r in sc], "o-", label="model + analyses (s)")
        ax.plot(ev, [r["model_s"] for r in sc], "s--", label="parse + model (s)")
        ax.set_xlabel("events (millions)")
        ax.set_ylabel("seconds")
        ax2 = ax.twinx()
        ax2.plot(ev, [r["peak_rss_mib"] / 1024 for r in sc], "^:", color="#c44e52", label="peak RSS (GiB)")
        ax2.set_ylabel("peak RSS, GiB")
        ax.set_title("scale: cost vs events", fontsize=10)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    for ax in axes.flat:
        if not ax.has_data():
            ax.set_axis_off()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)


def _jsonable(obj):
    if isinstance(obj, Stats):
        return obj.values
    raise TypeError(type(obj))


def update_readme(readme: Path, block: str) -> None:
    """Replace the results block of bench/README.md (between the markers) with ``block``."""
    if not readme.is_file():
        return
    text = readme.read_text()
    pat = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pat.search(text):
        return
    new = pat.sub(lambda _m: README_START + "\n" + block.strip() + "\n" + README_END, text)
    tmp = readme.with_suffix(".md.tmp")
    tmp.write_text(new)
    tmp.replace(readme)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny configurations (seconds); writes to --out")
    ap.add_argument("--only", type=str, default=",".join(SECTIONS))
    ap.add_argument("--out", type=Path, default=None, help="directory for results.* (default: bench/)")
    a = ap.parse_args()
    only = [s for s in a.only.split(",") if s]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        print(f"run_all: error: unknown section(s) {', '.join(sorted(unknown))} (known: {', '.join(SECTIONS)})",
              file=sys.stderr)
        return 2
    out = a.out or BENCH_DIR
    out.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    print("\n".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    results, elapsed = {}, {}
    for name in SECTIONS:
        if name not in only:
            continue
        print(f"== {TITLES[name]}", flush=True)
        t0 = time.perf_counter()
        results[name] = run_section(name, a.smoke)
        elapsed[name] = time.perf_counter() - t0
        print(results[name]["markdown"], flush=True)
        print(f"   ({elapsed[name]:.0f} s)", flush=True)
    md = write_markdown(results, info, elapsed, a.smoke)
    for fname, text in (("results.md", md + "\n"),
                        ("results.json", json.dumps({"info": info, "elapsed_s": elapsed,
                                                     **{k: v["rows"] for k, v in results.items()}},
                                                    indent=1, default=_jsonable) + "\n")):
        tmp = out / (fname + ".tmp")
        tmp.write_text(text)
        tmp.replace(out / fname)
    plot(results, out / "results.png", info)
    if out.resolve() == BENCH_DIR.resolve() and not a.smoke and set(only) == set(SECTIONS):
        update_readme(BENCH_DIR / "README.md", md.split("\n", 1)[1])
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'results.png'} "
          f"(total {sum(elapsed.values()):.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`aiotrace demo` (`make demo`): a small traced sweep of every Linux mode, then the report.

With the best available backend (bpftrace when usable, else strace):
  1. amplification sweep: every mode that runs here, page-cache random 4 KiB reads, depth 32,
     submit batch 1, reap batch 1, 8 and 32;
  2. attribution sweep: O_DIRECT reads with a separate reaper thread (threads=split), reap batch 8,
     where the block I/O is real and the thread the kernel charges shows;
then `aiotrace report` over both. It prints a per-mode summary (syscalls per I/O by reap batch,
who is charged, whether every I/O was verified) and, last on stdout, the path of index.html.
Re-running resumes the sweeps (finished runs are kept) and rebuilds the report.
"""
from __future__ import annotations

import json
import platform
from dataclasses import replace
from pathlib import Path

import click


def _parse_ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"--reap-batches must be comma-separated integers, got {text!r}") from None


@click.command()
@click.option("--out", default="aiotrace-demo", show_default=True, type=click.Path(file_okay=False),
              help="directory for the sweeps, the data file and the report")
@click.option("--count", "-n", type=int, default=2000, show_default=True, help="I/Os per run")
@click.option("--reap-batches", default="1,8,32", show_default=True, help="reap batches of the amplification sweep")
@click.option("--repeat", type=int, default=1, show_default=True, help="repetitions per configuration")
@click.option("--attribution/--no-attribution", default=True, show_default=True,
              help="also run the O_DIRECT submitter+reaper sweep")
@click.option("--backend", default="auto", show_default=True, help="auto: bpftrace if usable, else strace")
@click.option("--file", "-f", "file", default=None, help="data file (default: <out>/demo.dat; O_DIRECT needs a "
              "filesystem that supports it, not tmpfs)")
@click.option("--file-size", default="64M", show_default=True)
def demo(out: str, count: int, reap_batches: str, repeat: int, attribution: bool, backend: str,
         file: str | None, file_size: str) -> None:
    """Sweep every Linux completion mode under a tracer, then write the report; print its path."""
    from tracer.analysis.report import build_report
    from tracer.analysis.sweep import run_sweep
    from tracer.capture import tracefs
    from tracer.capture.backends import choose_backend
    from tracer.errors import CaptureError, SpecError, writing
    from tracer.outputs import check_writable
    from workloads import driver
    from workloads.spec import LINUX_MODES, spec_from_options

    if platform.system() != "Linux":
        raise SpecError(f"aiotrace demo captures on Linux; this is {platform.system()} "
                        "(on FreeBSD run `aiotrace sweep` with the FreeBSD modes)")
    reaps = _parse_ints(reap_batches)
    if not reaps:
        raise click.BadParameter("--reap-batches is empty")
    root = Path(out)
    # Every number is checked before any tracer or workload starts (the mode is set below).
    base = spec_from_options(mode=LINUX_MODES[0], count=count, depth=max(32, max(reaps)), batch=1, reap_batch=1,
                             file=file or str((root / "demo.dat").absolute()), file_size=file_size)
    check_writable(root, is_dir=True)
    log = lambda msg: click.echo(f"aiotrace: {msg}", err=True)  # noqa: E731
    if backend in ("auto", "bpftrace"):
        tracefs.ensure_mounted(log)  # before choosing: auto picks bpftrace only with tracefs
    chosen, why = choose_backend(backend, "Linux")
    if not chosen.available()[0]:
        raise CaptureError(f"no usable tracer: {why}")
    status = driver.mode_status(LINUX_MODES)
    modes = [r["mode"] for r in status if r["available"]]
    if not modes:
        raise SpecError("no completion mode runs here: " + "; ".join(f"{r['mode']}: {r['reason']}" for r in status))
    with writing(root):
        root.mkdir(parents=True, exist_ok=True)
    skipped = [f"{r['mode']} ({r['reason']})" for r in status if not r["available"]]
    log(f"demo: backend {chosen.name} ({why}); modes {', '.join(modes)}"
        + (f"; not available here: {', '.join(skipped)}" if skipped else ""))
    base = replace(base, mode=modes[0])
    sweeps = [root / "amplification"]
    log(f"sweep 1/{1 + attribution}: syscall amplification, page-cache reads, reap batch {reap_batches}")
    run_sweep(base, modes, [base.depth], [1], reaps, repeat, sweeps[0], backend=chosen.name, log=log)
    if attribution:
        sweeps.append(root / "attribution")
        log("sweep 2/2: rusage attribution, O_DIRECT reads, submitter + reaper threads, reap batch 8")
        run_sweep(replace(base, direct=True, threads="split"), modes, [base.depth], [1], [min(8, base.depth)],
                  repeat, sweeps[1], backend=chosen.name, log=log)
    log("report: executing the notebooks")
    index = build_report(sweeps, root / "report", log=log)
    _print_summary(index.parent, modes, sweeps)
    click.echo(f"aiotrace: demo report: {index}", err=True)
    click.echo(str(index))


def _print_summary(report_dir: Path, modes: list[str], sweeps: list[Path]) -> None:
    """Per mode, from the report's own tables: syscalls per I/O (total) at each reap batch, the
    thread charged for O_DIRECT reads, and whether the workload verified every I/O."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from tracer.analysis.compare import bundle_paths

    verified: dict[str, bool] = {}
    for bundle in bundle_paths(sweeps):
        summary = json.loads((bundle / "record" / "summary.json").read_text())
        verified[summary["mode"]] = verified.get(summary["mode"], True) and bool(summary.get("verified"))
    roles = pd.read_csv(report_dir / "tables" / "amplification_by_role.csv")
    total = roles[(roles["role"] == "total") & (roles["threads"] == "single")]
    per_reap = total.groupby(["mode", "reap_batch"])["per_io"].mean()
    reaps = sorted(total["reap_batch"].unique())
    attribution_csv = report_dir / "tables" / "attribution_summary.csv"
    verdicts = {}
    if attribution_csv.exists():
        att = pd.read_csv(attribution_csv)
        att = att[(att["threads"] == "split") & (att["direct"] == True)]  # noqa: E712
        verdicts = dict(zip(att["mode"], att["verdict"]))
    table = Table(title="aiotrace demo: syscalls per I/O (all threads, traced window) and who is charged")
    table.add_column("mode")
    for r in reaps:
        table.add_column(f"syscalls/IO r={r}", justify="right")
    table.add_column("O_DIRECT split: charged")
    table.add_column("verified")
    for mode in modes:
        cells = [f"{per_reap.get((mode, r), float('nan')):.3f}" for r in reaps]
        table.add_row(mode, *cells, verdicts.get(mode, "-"), "yes" if verified.get(mode) else "NO")
    Console(width=160).print(table)

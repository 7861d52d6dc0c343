"""`aiotrace sweep`, `report`, `compare` and `export`."""
from __future__ import annotations

import platform
from pathlib import Path

import click

from tracer.errors import AnalysisError, SpecError
from tracer.outputs import atomic_write, check_writable
from tracer.modes import LINUX_MODES, modes_for
from workloads.spec import OPS, PATTERNS, SUBMITS, THREADS, default_data_file, spec_from_options


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise click.BadParameter(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise click.BadParameter(f"{what} is empty")
    return values


@click.command()
@click.option("--modes", default=",".join(LINUX_MODES), show_default=True, help="comma-separated completion modes")
@click.option("--depths", default="32", show_default=True, help="comma-separated queue depths")
@click.option("--batches", default="1", show_default=True, help="comma-separated submit batches")
@click.option("--reap-batches", default="1,8,32", show_default=True, help="comma-separated reap batches")
@click.option("--repeat", default=3, show_default=True, type=int, help="repetitions of each configuration")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="sweep directory (resumed if it exists)")
@click.option("--backend", default="auto", show_default=True, help="capture backend (auto: bpftrace, else strace)")
@click.option("--op", type=click.Choice(OPS), default="read", show_default=True)
@click.option("--bs", default="4k", show_default=True)
@click.option("--count", "-n", type=int, default=2000, show_default=True, help="I/Os per run")
@click.option("--file", "-f", "file", default=lambda: default_data_file(),
              show_default="$XDG_CACHE_HOME/aiotrace/aiotrace.dat")
@click.option("--file-size", default="64M", show_default=True)
@click.option("--direct/--no-direct", default=False, show_default=True, help="O_DIRECT")
@click.option("--pattern", type=click.Choice(PATTERNS), default="rand", show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--threads", type=click.Choice(THREADS), default="single", show_default=True)
@click.option("--submit", type=click.Choice(SUBMITS), default="single", show_default=True)
def sweep(modes, depths, batches, reap_batches, repeat, out, backend, **spec_kw):
    """Capture every combination (modes x depths x batches x reap batches x repeat), one bundle per
    run; resumes an interrupted sweep in the same --out."""
    from tracer.analysis.sweep import run_sweep
    from tracer.capture.backends import choose_backend

    mode_list = [m for m in modes.replace(" ", "").split(",") if m]
    os_modes = modes_for(platform.system())
    bad = [m for m in mode_list if m not in os_modes]
    if not mode_list or bad:
        raise SpecError(f"--modes: {', '.join(bad) or 'none given'} not available on {platform.system()} "
                        f"(available: {', '.join(os_modes)})")
    depth_l, batch_l, reap_l = _ints(depths, "--depths"), _ints(batches, "--batches"), _ints(reap_batches, "--reap-batches")
    base = spec_from_options(mode=mode_list[0], depth=max(depth_l), batch=1, reap_batch=1, **spec_kw)
    # The backend is checked once here, not by each of the runs.
    chosen, why = choose_backend(backend, platform.system())
    if chosen.os_name != platform.system():
        raise SpecError(f"--backend {backend}: runs on {chosen.os_name}, this is {platform.system()}")
    usable, detail = chosen.available()
    if not usable:
        raise SpecError(f"--backend {backend}: {chosen.name} cannot capture here: {detail} (see `aiotrace doctor`)")
    check_writable(out, is_dir=True)
    index = run_sweep(base, mode_list, depth_l, batch_l, reap_l, repeat, Path(out), backend=backend,
                      log=lambda msg: click.echo(f"aiotrace: {msg}", err=True))
    counts: dict[str, int] = {}
    for r in index["runs"]:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    click.echo(f"aiotrace: sweep {', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}", err=True)
    click.echo(str(Path(out) / "sweep.json"))
    if counts.get("failed"):
        click.get_current_context().exit(1)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="report directory")
def report(paths, out):
    """Execute the notebooks over bundles or sweeps; write index.html, figures (PNG) and tables (CSV, JSON)."""
    from tracer.analysis.report import build_report
    from tracer.errors import writing

    check_writable(out)  # the report is built beside it, then renamed
    with writing(out):
        index = build_report(paths, out, log=lambda msg: click.echo(f"aiotrace: {msg}", err=True))
    click.echo(str(index))


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--metric", "metrics", multiple=True, help="metrics to show (default: syscalls per I/O by role, IOPS, latency)")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="also write the tidy table as CSV")
def compare(paths, metrics, csv_path):
    """Side-by-side table of bundles or sweeps: mean and 95% interval over repetitions."""
    from rich.console import Console
    from rich.table import Table

    from tracer.analysis import compare as cmp

    if csv_path:
        check_writable(csv_path)
    models = cmp.load_models(paths, note=lambda msg: click.echo(f"aiotrace: note: {msg}", err=True))
    if not models:
        raise AnalysisError("no run bundles under " + ", ".join(paths))
    summary = cmp.summarize(cmp.runs_table(models))
    if csv_path:
        atomic_write(csv_path, lambda tmp: summary.to_csv(tmp, index=False))
    wanted = list(metrics) or ["submit_per_io", "wait_per_io", "status_per_io", "result_per_io", "other_per_io",
                               "total_per_io", "total_floor", "reap_projected_per_io", "iops", "observed_p50_ns", "share_not_submitter",
                               "free_lag_p50_ns"]
    unknown = [m for m in wanted if m not in cmp.METRICS]
    if unknown:
        raise AnalysisError(f"unknown metric(s) {', '.join(unknown)} (known: {', '.join(cmp.METRICS)})")
    def config(r) -> str:
        return (f"{r['os']} {r['mode']} {r['op']} q{r['depth']} b{r['batch']} r{r['reap_batch']}"
                + (" split" if r["threads"] == "split" else "") + (" O_DIRECT" if r["direct"] is True else ""))

    summary = summary.assign(config=summary.apply(config, axis=1))
    configs = list(dict.fromkeys(summary["config"]))
    table = Table(title="aiotrace compare: mean [95% CI] over repetitions (n)", show_lines=False)
    table.add_column("metric")
    for c in configs:
        table.add_column(c, justify="right", overflow="fold")
    for metric in wanted:
        cells = []
        for c in configs:
            row = summary[(summary["config"] == c) & (summary["metric"] == metric)]
            if row.empty:
                cells.append("-")
                continue
            r = row.iloc[0]
            fmt = (lambda v: f"{v:.3f}") if abs(r["mean"]) < 100 else (lambda v: f"{v:,.0f}")
            text = fmt(r["mean"]) + (f" [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]" if r["n"] > 1 else "") + f" ({r['n']})"
            cells.append(text + (" LOSSY" if r["lossy"] else ""))
        table.add_row(f"{metric} ({cmp.METRICS[metric]})", *cells)
    console = Console()
    console.print(table)
    sources = set(summary["source"]) if "source" in summary else set()
    from tracer.analysis.requires import NOT_MEASURED
    for label in NOT_MEASURED:
        if label in sources:
            console.print(f"Columns with FreeBSD modes come from a {label}.")
    from tracer.analysis.requires import unavailable_figures
    foreign = [m for m in models if unavailable_figures(m)]
    if foreign:  # say which figures a foreign program cannot have, instead of leaving '-' unexplained
        console.print(f"{len(foreign)} column(s) trace a program other than aiotrace's workload: its I/Os are "
                      "counted from kernel and syscall events over its I/O window; not available: "
                      + "; ".join(f"{u['figure']} ({u['why']})" for u in unavailable_figures(foreign[0])) + ".")
    if "reap_projected_per_io" in wanted and (summary["metric"] == "reap_projected_per_io").any():
        console.print("reap_projected_per_io: the syscalls per I/O the same I/Os would need under REAP "
                      "(aio_error/aio_return removed, one kevent per observed reap batch), a projection "
                      "beside the measured total_per_io, not a measurement (tracer/analysis/reap_projection.py).")


@click.command()
@click.option("--perfetto", "bundle", required=True, type=click.Path(exists=True, file_okay=False),
              help="run bundle to export as Chrome trace-event JSON (ui.perfetto.dev)")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="output .json")
def export(bundle, output):
    """Export a bundle as Chrome trace-event JSON: syscall slices per thread, an async track per I/O,
    flow arrows from submitting to reaping thread."""
    from tracer.analysis.export_perfetto import export as do_export
    from tracer.model import load_bundle

    check_writable(output)
    path = do_export(load_bundle(bundle), output)
    click.echo(str(path))

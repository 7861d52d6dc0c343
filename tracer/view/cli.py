"""`aiotrace report`, `compare`, `export` and `summary`."""
from __future__ import annotations


import click

from tracer.base.errors import AnalysisError
from tracer.base.outputs import atomic_write, check_writable


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="report directory")
@click.option("--notebooks/--no-notebooks", default=True, show_default=True,
              help="also execute the four notebooks into <out>/notebooks/ (slower)")
def report(paths, out, notebooks):
    """Write <out>/index.html (the answers first, figures embedded) with figures/ and tables/."""
    from tracer.view.report import NOTEBOOKS, build_report
    from tracer.base.errors import writing

    check_writable(out)  # the report is built beside it, then renamed
    with writing(out):
        index = build_report(paths, out, notebooks=NOTEBOOKS if notebooks else (),
                             log=lambda msg: click.echo(f"aiotrace: {msg}", err=True))
    click.echo(str(index))


DEFAULT_METRICS = ("submit_per_io", "wait_per_io", "status_per_io", "result_per_io", "other_per_io", "total_per_io",
                   "total_floor", "reap_projected_per_io", "iops", "observed_p50_ns", "observed_p99_ns", "share_not_submitter",
                   "free_lag_p50_ns")
LABELS = {"total_floor": "floor syscalls/I/O", "reap_projected_per_io": "REAP projected syscalls/I/O", "iops": "IOPS", "observed_p50_ns": "latency p50",
          "observed_p99_ns": "latency p99", "complete_p50_ns": "device latency p50", "cpu_ns_per_io": "CPU per I/O",
          "free_lag_p50_ns": "free lag p50", "free_lag_p99_ns": "free lag p99", "mean_alive": "jobs alive mean",
          "max_alive": "jobs alive max", "share_not_submitter": "charged to non-submitter"}


def metric_label(m: str) -> str:
    return LABELS.get(m) or m.replace("_per_io", " syscalls/I/O")


def _cell(r, side: str, unit: str) -> str:
    from tracer.view import fmt

    text = fmt.value(r[f"mean_{side}"], unit)
    spread = fmt.spread(r[f"n_{side}"], r[f"ci_low_{side}"], r[f"ci_high_{side}"], r[f"min_{side}"], r[f"max_{side}"], unit)
    return f"{text}\n[dim]{spread.replace('95% CI ', '')}[/] " if spread else text


def _ratio_cell(r) -> str:
    from tracer.view import fmt

    if fmt.missing(r["ratio"]):
        return "-"
    if not fmt.missing(r["ratio_low"]):
        return f"×{fmt.num(r['ratio'])}\n[dim]{fmt.num(r['ratio_low'])} – {fmt.num(r['ratio_high'])}[/]"
    if min(r["n_a"], r["n_b"]) > 1:
        return f"×{fmt.num(r['ratio'])}\n[dim]range {fmt.num(r['ratio_min'])} – {fmt.num(r['ratio_max'])}[/]"
    return f"×{fmt.num(r['ratio'])}"


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--metric", "metrics", multiple=True, help="metrics to show (default: syscalls per I/O by role, IOPS, latency...)")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="also write the table as CSV")
@click.option("--wide", is_flag=True, help="use the terminal's full width (default: fit 100 columns)")
def compare(paths, metrics, csv_path, wide):
    """Compare bundles or sweeps. With two paths A B: per metric, A, B and the change B/A, with a 95%
    bootstrap interval (n >= 3 runs on each side) or the range (n = 2). With one or more: every
    configuration side by side, mean and 95% interval over repetitions (range below 3)."""
    from rich.console import Console
    from rich.table import Table

    from tracer.analysis import compare as cmp
    from tracer.view import fmt
    from tracer.view.headline import configuration
    from tracer.analysis.requires import NOT_MEASURED

    if csv_path:
        check_writable(csv_path)
    wanted = list(metrics) or list(DEFAULT_METRICS)
    unknown = [m for m in wanted if m not in cmp.METRICS]
    if unknown:
        raise AnalysisError(f"unknown metric(s) {', '.join(unknown)} (known: {', '.join(cmp.METRICS)})")
    console = Console(width=None if wide else min(100, Console().width or 100), soft_wrap=False)
    sides, models = [], []
    for p in (paths if len(paths) == 2 else [paths]):
        ok, not_ok = cmp.select_bundles([p] if isinstance(p, str) else p,
                                        note=lambda msg: click.echo(f"aiotrace: note: {msg}", err=True))
        for r in not_ok.itertuples():
            console.print(f"[yellow]not counted[/]: {r.run_id}: {r.status}" + (f" ({r.reason})" if r.reason else ""))
        if not ok:
            raise AnalysisError("no run bundles with status ok under " + (p if isinstance(p, str) else ", ".join(p)))
        from tracer.model import load_bundle

        side_models = [load_bundle(b) for b in ok]
        models += side_models
        sides.append(cmp.runs_table(side_models))
    if len(sides) == 2:
        a, b = sides
        ch = cmp.change(a, b, wanted)
        if ch.empty:
            raise AnalysisError("A and B share no configuration to compare (see `aiotrace compare A` and `compare B`)")
        keys, differ = cmp.matching_keys(a, b)
        if csv_path:
            _write_csv(ch, csv_path)
        def what(side):  # the configurations on one side, e.g. 'Linux fio io_uring' beside 'Linux io_uring read q32 ...'
            return "; ".join(sorted({f"{r['os']} {r['mode']} {configuration(r)}".strip() for r in side.to_dict("records")}))

        console.print(f"[bold]A[/] = {paths[0]}  ({len(a)} runs: {what(a)})\n"
                      f"[bold]B[/] = {paths[1]}  ({len(b)} runs: {what(b)})"
                      + (f"\nA and B differ in: {', '.join(differ)}" if differ else ""))
        for cfg, g in ch.groupby([k for k in keys if k in ch.columns], sort=False) if keys else [((), ch)]:
            row = dict(zip(keys, cfg if isinstance(cfg, tuple) else (cfg,)))
            title = f"{row.get('os', '')} {row.get('mode', '')} {configuration(row)}".strip()
            table = Table(title=title, title_justify="left", show_lines=False)
            table.add_column("metric", no_wrap=True)
            table.add_column(f"A (n={int(g['n_a'].max())})", justify="right")
            table.add_column(f"B (n={int(g['n_b'].max())})", justify="right")
            table.add_column("B/A [95% CI]", justify="right")
            for r in g.to_dict("records"):
                table.add_row(metric_label(r["metric"]), _cell(r, "a", r["unit"]), _cell(r, "b", r["unit"]),
                              _ratio_cell(r) + (" [red]LOSSY[/]" if r["lossy"] else ""))
            console.print(table)
        sources = (set(a["source"]) | set(b["source"])) & set(NOT_MEASURED)
    else:
        runs = sides[0]
        summary = cmp.summarize(runs)
        if csv_path:
            _write_csv(summary, csv_path)
        from tracer.view.headline import short_configurations

        summary = summary.assign(config=summary.apply(lambda r: f"{r['os']} {r['mode']} {configuration(r)}", axis=1))
        firsts = summary.drop_duplicates("config")
        short, common = short_configurations(firsts)
        n_runs = summary.groupby("config")["n"].max()
        heads = {c: f"{r['os']} {r['mode']}\n{s}\n(n={n_runs[c]})".replace("\n\n", "\n")
                 for c, r, s in zip(firsts["config"], firsts.to_dict("records"), short)}
        table = Table(title=f"aiotrace compare ({common}): mean over repetitions; 95% CI (n >= 3) or range (n = 2)",
                      title_justify="left")
        table.add_column("metric", no_wrap=True)
        for c in heads:
            table.add_column(heads[c], justify="right", overflow="fold")
        for metric in wanted:
            cells = []
            for c in heads:
                row = summary[(summary["config"] == c) & (summary["metric"] == metric)]
                if row.empty:
                    cells.append("-")
                    continue
                r = row.iloc[0]
                spread = fmt.spread(r["n"], r["ci_low"], r["ci_high"], r["min"], r["max"], r["unit"])
                cells.append(fmt.value(r["mean"], r["unit"]) + (f"\n[dim]{spread.replace('95% CI ', '')}[/]" if spread else "")
                             + (" [red]LOSSY[/]" if r["lossy"] else ""))
            table.add_row(metric_label(metric), *cells)
        console.print(table)
        sources = set(runs["source"]) & set(NOT_MEASURED)
    for label in sorted(sources):
        console.print(f"[bold red]Columns with FreeBSD modes come from a {label}.[/]")
    from tracer.analysis.requires import unavailable_figures

    foreign = [m for m in models if unavailable_figures(m)]
    if foreign:  # say which figures a foreign program cannot have, instead of leaving '-' unexplained
        console.print(f"{len(foreign)} column(s) trace a program other than aiotrace's workload: its I/Os are "
                      "counted from kernel and syscall events over its I/O window; not available: "
                      + "; ".join(f"{u['figure']} ({u['why']})" for u in unavailable_figures(foreign[0])) + ".")
    if any(m == "reap_projected_per_io" for m in wanted) and any(
            (side.get("reap_projected_per_io") is not None and side["reap_projected_per_io"].notna().any())
            for side in sides):
        console.print("reap projected: the syscalls per I/O the same I/Os would need under REAP "
                      "(aio_error/aio_return removed, one kevent per observed reap batch), a projection "
                      "beside the measured total, not a measurement (tracer/analysis/reap_projection.py).")


def _write_csv(frame, path) -> None:
    """Write ``frame`` as CSV under a temporary name, then rename (never half-written)."""
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


@click.command()
@click.option("--perfetto", "bundle", required=True, type=click.Path(exists=True, file_okay=False),
              help="run bundle to export as Chrome trace-event JSON (ui.perfetto.dev)")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="output .json")
def export(bundle, output):
    """Export a bundle as Chrome trace-event JSON: syscall slices per thread, an async track per I/O,
    flow arrows from submitting to reaping thread."""
    from tracer.view.export_perfetto import export as do_export
    from tracer.model import load_bundle

    check_writable(output)
    path = do_export(load_bundle(bundle), output)
    click.echo(str(path))


@click.command()
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
def summary(bundle):
    """One bundle at a glance, like `strace -c`: the three answers, then calls, errors and time per
    syscall and per thread in the measurement window."""
    from tracer.view.summary import print_summary
    from tracer.model import load_bundle

    print_summary(load_bundle(bundle))

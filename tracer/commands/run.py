"""`aiotrace run` (one untraced workload) and `aiotrace modes` (what runs here, and why not)."""
from __future__ import annotations

import json

import click

from tracer.base.spec import spec_from_options, spec_options


@click.command()
@spec_options
@click.option("--record", "record", type=click.Path(file_okay=False), default=None,
              help="write ios.parquet, threads.parquet, summary.json into this new directory")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def run(record: str | None, as_json: bool, **options) -> None:
    """Run one workload untraced and print its summary."""
    from workloads import driver
    from workloads.report import print_summary

    spec = spec_from_options(**options)
    print_summary(driver.run(spec, record=record), as_json)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print the list as JSON")
def modes(as_json: bool) -> None:
    """List the completion modes this OS and kernel support, and why the others cannot run."""
    from workloads import driver

    rows = driver.mode_status()
    if as_json:
        click.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="completion modes")
    t.add_column("mode")
    t.add_column("runs here")
    t.add_column("reason")
    for r in rows:
        t.add_row(r["mode"], "yes" if r["available"] else "no", r["reason"])
    Console().print(t)

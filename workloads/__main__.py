"""`python -m workloads [spec options] [--hold] [--record DIR] [--json]`: one workload run.

This is the command line `aiotrace capture` wraps (see the run bundle layout): with --hold
it prints the READY line after opening its file and waits for the release word on stdin;
EOF or anything else exits 3 without doing I/O. Bad input: one line on stderr, exit 2.
"""
from __future__ import annotations

import signal
import sys

import click

from tracer.base.errors import AiotraceError
from tracer.base.spec import spec_from_options, spec_options

EXIT_NOT_RELEASED = 3


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@spec_options
@click.option("--hold", is_flag=True, help="print the READY line and wait for 'go' on stdin before any I/O")
@click.option("--record", "record", type=click.Path(file_okay=False), default=None,
              help="write ios.parquet, threads.parquet, summary.json into this new directory")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def main(hold: bool, record: str | None, as_json: bool, **options) -> None:
    """Run one instrumented workload (no tracer)."""
    from workloads import driver
    from workloads.report import print_summary

    spec = spec_from_options(**options)
    try:
        summary = driver.run(spec, record=record, hold_for_tracer=hold)
    except driver.NotReleased as exc:
        click.echo(f"aiotrace: not released ({exc}); no I/O done", err=True)
        sys.exit(EXIT_NOT_RELEASED)
    print_summary(summary, as_json)
    if summary.get("interrupted"):  # the record was written; the exit status says the run was cut short
        sys.exit(128 + int(getattr(signal.Signals, summary["interrupted"])))


def entry() -> int:
    try:
        main.main(standalone_mode=False, prog_name="python -m workloads")
    except AiotraceError as exc:
        click.echo(f"aiotrace: error: {exc}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(entry())

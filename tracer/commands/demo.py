"""`aiotrace demo`: run every completion mode this machine supports, untraced, and compare.

Until the capture and report layers land this is what `make demo` shows: one table with
IOPS, MB/s, latency, CPU per I/O, and the submit and wait calls per I/O each mode made
(counted by the workload itself), plus whether every I/O was verified.
"""
from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--count", "-n", type=int, default=20000, show_default=True, help="I/Os per mode")
@click.option("--depth", "-q", type=int, default=32, show_default=True)
@click.option("--batch", "-b", type=int, default=8, show_default=True)
@click.option("--reap-batch", "-r", type=int, default=8, show_default=True)
@click.option("--op", type=click.Choice(["read", "write", "write-fsync"]), default="read", show_default=True)
@click.option("--direct/--no-direct", default=False, show_default=True, help="O_DIRECT")
@click.option("--threads", type=click.Choice(["single", "split"]), default="single", show_default=True)
@click.option("--file", "-f", "file", default=".aiotrace-cache/demo.dat", show_default=True,
              help="data file (created and filled when absent)")
@click.option("--file-size", default="64M", show_default=True)
def demo(count: int, depth: int, batch: int, reap_batch: int, op: str, direct: bool, threads: str,
         file: str, file_size: str) -> None:
    """Run every available completion mode once and print a comparison table."""
    from rich.console import Console
    from rich.table import Table

    from tracer.errors import AiotraceError
    from workloads import driver
    from workloads.report import fmt_ns
    from workloads.spec import spec_from_options

    import sys

    Path(file).parent.mkdir(parents=True, exist_ok=True)
    console = Console(width=None if sys.stdout.isatty() else 132)
    status = driver.mode_status()
    table = Table(title=f"{op} bs=4k depth={depth} batch={batch} reap_batch={reap_batch} "
                        f"threads={threads} direct={direct} count={count}")
    for col in ("mode", "IOPS", "MB/s", "p50", "p99", "CPU/IO", "submit/IO", "wait/IO", "verified"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for row in status:
        mode = row["mode"]
        if not row["available"]:
            if "only mode" not in row["reason"]:
                table.add_row(mode, "-", "-", "-", "-", "-", "-", "-", f"[yellow]{row['reason']}[/]")
            continue
        spec = spec_from_options(mode=mode, op=op, depth=depth, batch=batch, reap_batch=reap_batch, bs="4k",
                                 count=count, file=file, file_size=file_size, direct=direct,
                                 pattern="rand", seed=1, threads=threads, submit="single")
        try:
            s = driver.run(spec)
        except AiotraceError as exc:
            table.add_row(mode, "-", "-", "-", "-", "-", "-", "-", f"[red]{exc}[/]")
            continue
        n = s["ios"] or 1
        table.add_row(mode, f"{s['iops']:,.0f}", f"{s['mb_per_s']:,.1f}", fmt_ns(s["latency_ns"]["p50"]),
                      fmt_ns(s["latency_ns"]["p99"]), fmt_ns(s["cpu_ns_per_io"]),
                      f"{s['submit_calls'] / n:.3f}", f"{s['wait_calls'] / n:.3f}",
                      "[green]yes[/]" if s["verified"] else "[red]NO[/]")
    console.print(table)
    console.print("Calls are counted by the workload: submit = aio_read/aio_write/lio_listio/io_submit/"
                  "io_uring_submit; wait = aio_error polls (aio-poll), aio_suspend, io_getevents, "
                  "io_uring waits that entered the kernel.")

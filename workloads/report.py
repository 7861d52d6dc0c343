"""Printing a workload summary: JSON, or a short rich table."""
from __future__ import annotations

import json

import click


def fmt_ns(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e3:
        return f"{v / 1e3:.1f} us"
    return f"{v:.0f} ns"


def print_summary(summary: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    s = summary["spec"]
    lat = summary["latency_ns"]
    n = summary["ios"] or 1
    head = (f"{summary['mode']} {s['op']} bs={s['bs']} depth={s['depth']} batch={s['batch']} "
            f"reap_batch={s['reap_batch']} threads={s['threads']} direct={s['direct']}")
    t = Table(title=head, show_header=False)
    t.add_row("I/Os", f"{summary['ios']} (errors {summary['errors']}, verified {summary['verified']})")
    t.add_row("IOPS", f"{summary['iops']:,.0f}")
    t.add_row("MB/s", f"{summary['mb_per_s']:,.1f}")
    t.add_row("latency p50/p90/p99/p99.9/max",
              " / ".join(fmt_ns(lat[k]) for k in ("p50", "p90", "p99", "p99_9", "max")))
    t.add_row("CPU per I/O", fmt_ns(summary["cpu_ns_per_io"]))
    t.add_row("calls per I/O", f"submit {summary['submit_calls'] / n:.3f}  wait {summary['wait_calls'] / n:.3f}  "
              f"status {summary['status_calls'] / n:.3f}  result {summary['result_calls'] / n:.3f}")
    console = Console()
    console.print(t)
    th = Table(title="threads (rusage deltas for own threads; /proc io for all; blank: not known)")
    for col in ("tid", "name", "role", "inblock", "oublock", "utime", "stime", "io read", "io write"):
        th.add_column(col, justify="left" if col in ("name", "role") else "right")

    def known(v) -> str:  # the engine writes -1 where a value cannot be known for that thread
        return "" if v is None or v < 0 else f"{v:,}"

    helper = "glibc AIO helper" if summary["mode"].startswith("aio-") else "helper"
    for r in summary["threads"]:
        name = helper if r["role"] == "helper" else r["name"]  # helpers inherit the submitter's name
        th.add_row(str(r["tid"]), name, r["role"], known(r["inblock"]), known(r["oublock"]),
                   fmt_ns(r["utime_ns"]) if r["utime_ns"] >= 0 else "",
                   fmt_ns(r["stime_ns"]) if r["stime_ns"] >= 0 else "",
                   known(r["io_read_bytes"]), known(r["io_write_bytes"]))
    console.print(th)

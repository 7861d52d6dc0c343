"""`aiotrace simulate`: a FreeBSD mode on the FreeBSD kernel-semantics model -> a run bundle."""
from __future__ import annotations

import click

from tracer.base.spec import spec_from_options, spec_options


@click.command()
@click.option("--kernel", type=click.Choice(["stock", "d33144"]), required=True,
              help="stock FreeBSD, or the D33144 tree (REAP) with D33271 (rusage to the submitter)")
@spec_options
@click.option("--out", "out", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="directory the run bundle is written into")
@click.option("--max-aio-queue-per-proc", "queue_per_proc", type=int, default=256, show_default=True,
              help="the model's vfs.aio.max_aio_queue_per_proc")
def simulate(kernel: str, out: str, queue_per_proc: int, **options) -> None:
    """Run a FreeBSD completion mode on the FreeBSD semantics model (NOT a measurement).

    The workload engine and the FreeBSD mode files run unchanged against a user-space model of
    FreeBSD's AIO + kqueue (workloads/fbsd_model); the bundle's kernel-side record is written in the
    D scripts' event-line format and labelled "FreeBSD semantics model (not a measurement)"."""
    from tracer.simulate import MODEL_LABEL, simulate as run_model

    spec = spec_from_options(**options)
    result = run_model(spec, kernel, out, queue_per_proc)
    s = result.summary
    click.echo(f"{MODEL_LABEL}: kernel {kernel}, mode {spec.mode}: {s['ios']} I/Os, verified={s['verified']}; "
               f"bundle {result.bundle}")

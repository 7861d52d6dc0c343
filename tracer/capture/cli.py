"""`aiotrace capture` and `aiotrace doctor`."""
from __future__ import annotations

import json
import os
import platform
import shlex
from pathlib import Path

import click

from tracer.capture.backends import (AGGREGATE_BACKENDS, BACKENDS, REPO, Backend, Context, choose_backend)
from tracer.capture.bundle import make_run_id
from tracer.errors import CaptureError
from workloads.spec import FREEBSD_MODES, LINUX_MODES, RunSpec, spec_from_options, spec_options

OS_MODES = {"Linux": LINUX_MODES, "FreeBSD": FREEBSD_MODES}
PID_PLACEHOLDER = 4194303  # a valid pid_max-1 value, printed as $PID in dry runs


def _check(spec: RunSpec, backend: Backend, flavour: str) -> None:
    spec.validate(OS_MODES[backend.os_name])
    if flavour == "aggregate" and backend.name not in AGGREGATE_BACKENDS:
        raise CaptureError(f"backend {backend.name} has no aggregate flavour "
                           f"(aggregating backends: {', '.join(AGGREGATE_BACKENDS)})")


def _render(argv: list[str], env: dict[str, str] | None = None, relative_to: Path | None = None) -> str:
    tokens = []
    for t in argv:
        if t == str(PID_PLACEHOLDER):
            tokens.append("$PID")
            continue
        if relative_to is not None:  # repository paths, also inside dtrace's -c string
            t = t.replace(str(relative_to) + "/", "")
        tokens.append(shlex.quote(t))
    prefix = [f"{k}={shlex.quote(v)}" for k, v in sorted((env or {}).items())]
    return " ".join(prefix + tokens)


def dry_run_lines(spec: RunSpec, backend: Backend, why: str, flavour: str, out: Path) -> list[str]:
    """The exact command lines a capture would run, as shell lines ('#' lines are comments)."""
    from tracer.capture import runner

    run_id = make_run_id(spec.mode, backend.name)
    bundle = out / run_id
    raw, record = bundle / "raw", bundle / "record"
    lines = [f"# aiotrace capture --backend {backend.name} ({why}), flavour {flavour}: dry run, nothing was run",
             f"# bundle: {bundle} (a real capture writes it as {out}/.{run_id}.partial and renames it when complete)"]
    if backend.attach == "wrap":
        argv = runner.workload_argv_freebsd(spec, record)
        ctx = Context(flavour=flavour, raw_dir=raw, workload_argv=argv)
        cmds = backend.commands(ctx)
        lines.append(f"# {backend.os_name}, from the repository root: the tracer starts the workload "
                     f"({os.path.relpath(argv[0], REPO)}, the Zig cross build of the C engine)")
        lines.append(f"mkdir -p {shlex.quote(str(raw))} {shlex.quote(str(record))}")
        trace = backend.trace_path(ctx, cmds[0])
        lines.append(_render(cmds[0], backend.env(ctx), REPO))
        for post in cmds[1:]:
            lines.append(_render(post, None, REPO) + " > " + shlex.quote(str(trace)))
        return lines
    argv = runner.workload_argv_linux(spec, record)
    engine = sorted((REPO / "workloads").glob("_engine*.so"))
    ctx = Context(flavour=flavour, raw_dir=raw, workload_argv=argv, pid=PID_PLACEHOLDER,
                  engine_so=engine[0] if engine else Path("<engine .so mapped by the workload>"))
    cmds = backend.commands(ctx)
    trace = backend.trace_path(ctx, cmds[0])
    lines.append("# 1. start the workload held at its handshake; it prints 'AIOTRACE-READY pid=N' (N is $PID below)")
    lines.append(f"mkdir -p {shlex.quote(str(raw))} {shlex.quote(str(record))}")
    lines.append(_render(argv))
    lines.append("# 2. attach the tracer; wait until it reports its probes attached, then type 'go' into the workload")
    redirect = f" > {shlex.quote(str(trace))}" if backend.stdout_is_trace else ""
    lines.append(_render(cmds[0], backend.env(ctx)) + redirect + f" 2> {shlex.quote(str(raw / 'tracer.stderr'))}")
    for post in cmds[1:]:
        lines.append(_render(post))
    if not backend.self_exits:
        lines.append(f"# 3. when the workload exits, stop {backend.name} with SIGINT (it prints its maps at exit)")
    return lines


@click.command()
@click.option("--backend", type=click.Choice(["auto", *BACKENDS]), default="auto", show_default=True,
              help="tracer; auto: libbpf else bpftrace else strace (Linux), dtrace else ktrace (FreeBSD)")
@click.option("--aggregate", is_flag=True, help="in-kernel counts and histograms printed at exit (low overhead)")
@click.option("--out", "out", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="directory that receives the run bundle")
@spec_options
@click.option("--dry-run", is_flag=True, help="print the exact command lines and exit")
@click.option("--allow-loss", is_flag=True, help="keep a capture whose tracer lost events as ok")
def capture(backend: str, aggregate: bool, out: str, dry_run: bool, allow_loss: bool, **spec_kw):
    """Run the workload under a tracer and write a run bundle; print its path last."""
    spec = spec_from_options(**spec_kw)
    flavour = "aggregate" if aggregate else "events"
    os_name = platform.system()
    chosen, why = choose_backend(backend, os_name)
    if backend == "auto" and aggregate and chosen.name not in AGGREGATE_BACKENDS:
        raise CaptureError(f"--aggregate needs {' or '.join(AGGREGATE_BACKENDS)}, and {why}")
    _check(spec, chosen, flavour)
    if dry_run:
        for line in dry_run_lines(spec, chosen, why, flavour, Path(out)):
            click.echo(line)
        return
    if chosen.os_name != os_name:
        raise CaptureError(f"backend {chosen.name} runs on {chosen.os_name}, this is {os_name} "
                           "(--dry-run prints its command lines)")
    from tracer.capture.runner import run_capture

    result = run_capture(spec, chosen, why, flavour, Path(out), allow_loss,
                         log=lambda msg: click.echo(f"aiotrace: {msg}", err=True))
    m = result.manifest
    click.echo(f"aiotrace: {result.status}: {chosen.name}/{flavour} {spec.mode}, {m['raw']['lines']} trace lines, "
               f"{m['duration_s']:.2f} s" + (f"; {result.reason}" if result.reason else ""), err=True)
    click.echo(str(result.bundle))
    # tracer.cli.main turns these into "aiotrace: interrupted" (exit 130) and
    # "aiotrace: error: ..." (exit 2); the bundle path is already the last line on stdout
    if result.status == "interrupted":
        raise click.exceptions.Abort()
    if result.status != "ok":
        raise CaptureError(f"capture {result.status}: {result.reason} (bundle kept: {result.bundle})")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def doctor(as_json: bool):
    """What this machine can capture, and the exact fix for each missing piece."""
    from tracer.capture.doctor import diagnose, render

    report = diagnose()
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        click.echo(render(report))
    if not report["can_capture"]:
        raise CaptureError("this machine cannot capture with any backend (fixes above)")

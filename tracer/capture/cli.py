"""`aiotrace capture` and `aiotrace doctor`."""
from __future__ import annotations

import json
import os
import platform
import shlex
from pathlib import Path

import click

from tracer.capture import tracefs
from tracer.capture.backends import (AGGREGATE_BACKENDS, BACKENDS, REPO, Backend, Context, choose_backend)
from tracer.capture.bundle import make_run_id
from tracer.errors import CaptureError
from tracer.modes import modes_for
from workloads.spec import RunSpec, spec_from_options, spec_options

PID_PLACEHOLDER = 4194303  # a valid pid_max-1 value, printed as $PID in dry runs


def _check(spec: RunSpec, backend: Backend, flavour: str) -> None:
    spec.validate(modes_for(backend.os_name))
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


def dry_run_lines(spec: RunSpec | None, backend: Backend, why: str, flavour: str, out: Path,
                  target=None) -> list[str]:
    """The exact command lines a capture would run, as shell lines ('#' lines are comments; every
    path in them is shell-quoted, so no part of --out can become a line of its own)."""
    from tracer.capture import runner
    from tracer.capture.target import launcher_argv

    kind = target.kind if target is not None else "workload"
    label = spec.mode if spec is not None else target.label
    run_id = make_run_id(label, backend.name)
    bundle = out / run_id
    raw, record = bundle / "raw", bundle / "record"
    q = lambda p: shlex.quote(str(p))  # noqa: E731
    what = {"workload": "the workload", "command": "the command", "pid": f"pid {target.pid if target else ''}"}[kind]
    lines = [f"# aiotrace capture --backend {backend.name} ({why}), flavour {flavour}, {what}: dry run, nothing was run",
             f"# bundle: {q(bundle)} (a real capture writes it as {q(out / ('.' + run_id + '.partial'))} "
             "and renames it when complete)"]
    if kind == "pid":
        ctx = Context(flavour=flavour, raw_dir=raw, workload_argv=[], pid=target.pid, target="pid",
                      extra_pids=[])
        cmds = backend.commands(ctx)
        trace = backend.trace_path(ctx, cmds[0])
        lines.append(f"# attach to the running pid {target.pid} (and, on Linux, its descendants alive then); "
                     "detach at --duration, Ctrl-C or its exit; the process is never stopped")
        lines.append(f"mkdir -p {q(raw)}")
        redirect = f" > {q(trace)}" if backend.stdout_is_trace else ""
        rel = REPO if backend.os_name == "FreeBSD" else None  # the run kit runs from the repository root
        lines.append(_render(cmds[0], backend.env(ctx), rel) + redirect + f" 2> {q(raw / 'tracer.stderr')}")
        for i, post in enumerate(cmds[1:]):
            last = i == len(cmds) - 2
            lines.append(_render(post, None, REPO) + (f" > {q(trace)}" if last else ""))
        return lines
    if backend.attach == "wrap":
        argv = runner.workload_argv_freebsd(spec, record) if kind == "workload" else list(target.argv)
        ctx = Context(flavour=flavour, raw_dir=raw, workload_argv=argv, target=kind)
        cmds = backend.commands(ctx)
        if kind == "workload":
            lines.append(f"# {backend.os_name}, from the repository root: the tracer starts the workload "
                         f"({os.path.relpath(argv[0], REPO)}, the Zig cross build of the C engine)")
        else:
            lines.append(f"# {backend.os_name}: the tracer starts the command (its words are argv, never program text)")
        lines.append(f"mkdir -p {q(raw)} {q(record)}")
        trace = backend.trace_path(ctx, cmds[0])
        lines.append(_render(cmds[0], backend.env(ctx), REPO))
        for post in cmds[1:]:
            lines.append(_render(post, None, REPO) + " > " + q(trace))
        return lines
    argv = runner.workload_argv_linux(spec, record) if kind == "workload" else launcher_argv(list(target.argv))
    engine = sorted((REPO / "workloads").glob("_engine*.so"))
    ctx = Context(flavour=flavour, raw_dir=raw, workload_argv=argv, pid=PID_PLACEHOLDER, target=kind,
                  engine_so=engine[0] if engine else Path("<engine .so mapped by the workload>"))
    cmds = backend.commands(ctx)
    trace = backend.trace_path(ctx, cmds[0])
    held = "the workload" if kind == "workload" else "the command, held by aiotrace's launcher (it execs it on release)"
    lines.append(f"# 1. start {held}; it prints 'AIOTRACE-READY pid=N' (N is $PID below)")
    lines.append(f"mkdir -p {q(raw)} {q(record)}")
    lines.append(_render(argv))
    lines.append(f"# 2. attach the tracer; wait until it reports its probes attached, then type 'go' into {held.split(',')[0]}")
    redirect = f" > {q(trace)}" if backend.stdout_is_trace else ""
    lines.append(_render(cmds[0], backend.env(ctx)) + redirect + f" 2> {q(raw / 'tracer.stderr')}")
    for post in cmds[1:]:
        lines.append(_render(post))
    if not backend.self_exits:
        lines.append(f"# 3. when {held.split(',')[0]} exits, stop {backend.name} with SIGINT (it prints its maps at exit)")
    return lines


@click.command(context_settings={"allow_interspersed_args": False})
@click.option("--backend", type=click.Choice(["auto", *BACKENDS]), default="auto", show_default=True,
              help="tracer; auto: libbpf (the workload) else bpftrace else strace (Linux), dtrace else ktrace (FreeBSD)")
@click.option("--aggregate", is_flag=True, help="in-kernel counts and histograms printed at exit (low overhead)")
@click.option("--out", "out", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="directory that receives the run bundle")
@click.option("--pid", "-p", "pid", type=int, default=None,
              help="trace this running process (and its children) instead of the workload; ends at "
                   "--duration, Ctrl-C, or its exit")
@click.option("--label", default=None, help="name of a traced command or pid in reports (default: the program "
              "and its first words)")
@spec_options
@click.option("--dry-run", is_flag=True, help="print the exact command lines and exit")
@click.option("--allow-loss", is_flag=True, help="keep a capture whose tracer lost events as ok")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def capture(backend: str, aggregate: bool, out: str, pid: int | None, label: str | None, dry_run: bool,
            allow_loss: bool, command: tuple[str, ...], **spec_kw):
    """Run the workload (or `-- COMMAND ARGS...`, or attach to `-p PID`) under a tracer and write a
    run bundle; print its path on stdout when the capture is ok (or interrupted)."""
    flavour = "aggregate" if aggregate else "events"
    os_name = platform.system()
    target = _target(command, pid, spec_kw, label)
    spec = spec_from_options(**spec_kw) if target is None else None
    check_out_path(out)
    log = lambda msg: _echo(f"aiotrace: {msg}", err=True)  # noqa: E731
    if not dry_run and os_name == "Linux" and backend in ("auto", "bpftrace"):
        tracefs.ensure_mounted(log)  # before choosing: auto picks bpftrace only with tracefs
    chosen, why = choose_backend(backend, os_name, foreign=target is not None)
    if backend == "auto" and aggregate and chosen.name not in AGGREGATE_BACKENDS:
        raise CaptureError(f"--aggregate needs {' or '.join(AGGREGATE_BACKENDS)}, and {why}")
    if spec is not None:
        _check(spec, chosen, flavour)
    elif flavour == "aggregate":
        raise CaptureError("--aggregate traces only aiotrace's workload for now; a command or pid is "
                           "traced per event (drop --aggregate)")
    if dry_run:
        for line in dry_run_lines(spec, chosen, why, flavour, Path(out), target=target):
            click.echo(line)
        return
    if chosen.os_name != os_name:
        raise CaptureError(f"backend {chosen.name} runs on {chosen.os_name}, this is {os_name} "
                           "(--dry-run prints its command lines)")
    from tracer.capture.runner import run_capture
    if target is not None and target.kind == "pid":
        from tracer.capture.target import check_pid
        check_pid(target.pid, chosen.needs_root)  # refused before any bundle is made

    result = run_capture(spec, chosen, why, flavour, Path(out), allow_loss, target=target, log=log)
    m = result.manifest
    what = spec.mode if spec is not None else " ".join(shlex.quote(w) for w in (target.argv or [f"pid {target.pid}"]))
    cut = (m.get("target") or {}).get("window_cut")
    line = (f"aiotrace: {result.status}: {chosen.name}/{flavour} {what}, {m['raw']['lines']} trace lines, "
            f"{m['duration_s']:.2f} s" + (f"; {result.reason}" if result.reason else "") +
            (f"; window cut: {cut}" if cut else ""))
    # tracer.cli.main turns these into "aiotrace: interrupted" (exit 130) and "aiotrace: error: ..."
    # (exit 2). A failed capture prints nothing on stdout, so `B=$(aiotrace capture ...)` never
    # names a failed bundle; its path is in the error line.
    if result.status == "failed":
        raise CaptureError(f"capture failed: {result.reason} (bundle kept: {result.bundle})")
    _echo(line, err=True)
    _echo(str(result.bundle))
    if result.status == "interrupted":
        raise click.exceptions.Abort()


def _echo(text: str, err: bool = False) -> None:
    """click.echo that survives a closed terminal (SIGHUP: the bundle is written either way)."""
    try:
        click.echo(text, err=err)
    except OSError:
        pass


def _target(command: tuple[str, ...], pid: int | None, spec_kw: dict, label: str | None = None):
    """The foreign target (command or pid), or None for the workload. Refuses mixtures."""
    from tracer.capture.target import Target, command_target

    duration = spec_kw.get("duration")
    if command and pid is not None:
        raise CaptureError("give either -p PID or -- COMMAND, not both")
    if not command and pid is None:
        if label is not None:
            raise CaptureError("--label names a traced command or pid; the workload is named by its spec")
        if not spec_kw.get("mode"):
            raise CaptureError("--mode is required to run the workload (or trace -- COMMAND ARGS... / -p PID)")
        return None
    if spec_kw.get("mode"):
        raise CaptureError("--mode describes aiotrace's workload; a command or pid is traced as it is")
    if duration is not None and not (0 < duration < float("inf")):
        raise CaptureError(f"--duration must be a positive number of seconds, got {duration}")
    if label is not None and (not label.strip() or any(ord(c) < 32 for c in label)):
        raise CaptureError(f"--label {label!r}: give a non-empty name without control characters")
    if pid is not None:
        return Target("pid", pid=pid, duration_s=duration, name=label)
    return command_target(list(command), duration, label)


def check_out_path(out: str) -> None:
    """Refuse control characters in --out: the path is printed in comments and command lines."""
    bad = [c for c in out if ord(c) < 32 or ord(c) == 127]
    if bad:
        raise CaptureError(f"--out {out!r} holds a control character ({bad[0]!r}); choose a plain path")


for _param in capture.params:  # --mode is required for the workload only (checked in _target)
    if _param.name == "mode":
        _param.required = False
        _param.help = "completion mode (the workload; not with -- COMMAND or -p PID)"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def doctor(as_json: bool):
    """What this machine can capture, and the exact fix for each missing piece."""
    from tracer.capture.doctor import diagnose, render

    tracefs.ensure_mounted(lambda msg: click.echo(f"aiotrace: {msg}", err=True))
    report = diagnose()
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        click.echo(render(report))
    if not report["can_capture"]:
        raise CaptureError("this machine cannot capture with any backend (fixes above)")


def _spec_options_but_mode(func):
    """spec_options without --mode (the kit runs every FreeBSD mode)."""
    holder = spec_options(lambda **kw: None)
    params = [p for p in holder.__click_params__ if p.name != "mode"]
    func.__click_params__ = getattr(func, "__click_params__", []) + params
    return func


@click.command("freebsd-kit")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="directory to write (must not exist or be empty)")
@_spec_options_but_mode
def freebsd_kit(out: str, **spec_kw):
    """Write a self-contained run kit to copy to a FreeBSD host: the cross-built workload, the D
    scripts and run.sh (host checks, then every mode x backend, with capture's command lines)."""
    from tracer.capture.kit import build_kit

    path = build_kit(out, **spec_kw)
    click.echo(f"aiotrace: FreeBSD run kit written; on the host run: sh {path}/run.sh", err=True)
    click.echo(str(path))

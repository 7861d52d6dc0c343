"""`aiotrace capture`, `sweep`, `doctor` and `freebsd-kit`."""
from __future__ import annotations

import json
import platform
import shlex
from pathlib import Path

import click

from tracer.capture import tracefs
from tracer.capture.backends import AGGREGATE_BACKENDS, BACKENDS, Backend, choose_backend
from tracer.capture.dryrun import dry_run_lines
from tracer.base.errors import CaptureError, SpecError
from tracer.base.modes import LINUX_MODES, modes_for
from tracer.base.outputs import check_writable
from tracer.base.spec import RunSpec, spec_from_options, spec_options

def _check(spec: RunSpec, backend: Backend, flavour: str) -> None:
    spec.validate(modes_for(backend.os_name))
    if flavour == "aggregate" and backend.name not in AGGREGATE_BACKENDS:
        raise CaptureError(f"backend {backend.name} has no aggregate flavour "
                           f"(aggregating backends: {', '.join(AGGREGATE_BACKENDS)})")


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


SWEPT = ("mode", "depth", "batch", "reap_batch")  # sweep's list options replace these spec options


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
@spec_options(skip=SWEPT)
def sweep(modes, depths, batches, reap_batches, repeat, out, backend, **spec_kw):
    """Capture every combination (modes x depths x batches x reap batches x repeat), one bundle per
    run; resumes an interrupted sweep in the same --out."""
    from tracer.capture.sweep import run_sweep

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

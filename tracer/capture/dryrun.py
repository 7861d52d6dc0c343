"""`capture --dry-run`: the exact command lines a capture would run, for a user to read or to run
by hand (and the FreeBSD run kit's scripts, tracer.capture.kit)."""
from __future__ import annotations

import os
import shlex
from pathlib import Path

from tracer.base.spec import RunSpec
from tracer.capture.backends import REPO, Backend, Context
from tracer.capture.bundle import make_run_id

PID_PLACEHOLDER = 4194303  # a valid pid_max-1 value, printed as $PID in dry runs



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

"""`aiotrace demo` (`make demo`): a small traced sweep of every Linux mode, then the report.

With the best available backend (bpftrace when usable, else strace):
  1. amplification sweep: every mode that runs here, random 4 KiB reads with O_DIRECT when the
     data file's filesystem allows it (so completions wait for the device and the reap batch
     matters; page-cache reads complete inline and stay flat), depth 32, submit batch 1, reap
     batch 1, 8 and 32;
  2. attribution sweep: O_DIRECT reads with a separate reaper thread (threads=split), reap batch 8,
     where the block I/O is real and the thread the kernel charges shows;
  3. every configuration of both sweeps again WITHOUT a tracer, so the report sets untraced IOPS
     and latency beside the traced ones (the probe effect);
then the report over all of them. It prints the three headline tables and, last on stdout, the
path of index.html. Re-running resumes the sweeps (finished runs are kept) and rebuilds the report.
"""
from __future__ import annotations

import json
import platform
from dataclasses import replace
from pathlib import Path

import click


def _parse_ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"--reap-batches must be comma-separated integers, got {text!r}") from None


@click.command()
@click.option("--out", default="aiotrace-demo", show_default=True, type=click.Path(file_okay=False),
              help="directory for the sweeps, the data file and the report")
@click.option("--count", "-n", type=int, default=2000, show_default=True, help="I/Os per run")
@click.option("--reap-batches", default="1,8,32", show_default=True, help="reap batches of the amplification sweep")
@click.option("--repeat", type=int, default=1, show_default=True, help="repetitions per configuration")
@click.option("--attribution/--no-attribution", default=True, show_default=True,
              help="also run the O_DIRECT submitter+reaper sweep")
@click.option("--backend", default="auto", show_default=True, help="auto: bpftrace if usable, else strace")
@click.option("--file", "-f", "file", default=None, help="data file (default: <out>/demo.dat; O_DIRECT needs a "
              "filesystem that supports it, not tmpfs)")
@click.option("--file-size", default="64M", show_default=True)
@click.option("--untraced/--no-untraced", default=True, show_default=True,
              help="also run every configuration without a tracer (the probe effect)")
@click.option("--notebooks/--no-notebooks", default=False, show_default=True,
              help="also execute the four notebooks into the report (slower)")
def demo(out: str, count: int, reap_batches: str, repeat: int, attribution: bool, backend: str,
         file: str | None, file_size: str, untraced: bool, notebooks: bool) -> None:
    """Sweep every Linux completion mode under a tracer, then write the report; print its path."""
    from tracer.view.report import NOTEBOOKS, build_report
    from tracer.capture.sweep import run_sweep, untraced_one
    from tracer.capture import tracefs
    from tracer.capture.backends import choose_backend
    from tracer.base.errors import CaptureError, SpecError, writing
    from tracer.base.outputs import check_writable
    from workloads import driver
    from tracer.base.spec import LINUX_MODES, spec_from_options

    if platform.system() != "Linux":
        raise SpecError(f"aiotrace demo captures on Linux; this is {platform.system()} "
                        "(on FreeBSD run `aiotrace sweep` with the FreeBSD modes)")
    reaps = _parse_ints(reap_batches)
    if not reaps:
        raise click.BadParameter("--reap-batches is empty")
    root = Path(out)
    # Every number is checked before any tracer or workload starts (the mode is set below).
    base = spec_from_options(mode=LINUX_MODES[0], count=count, depth=max(32, max(reaps)), batch=1, reap_batch=1,
                             file=file or str((root / "demo.dat").absolute()), file_size=file_size)
    check_writable(root, is_dir=True)
    log = lambda msg: click.echo(f"aiotrace: {msg}", err=True)  # noqa: E731
    if backend in ("auto", "bpftrace"):
        tracefs.ensure_mounted(log)  # before choosing: auto picks bpftrace only with tracefs
    chosen, why = choose_backend(backend, "Linux")
    if not chosen.available()[0]:
        raise CaptureError(f"no usable tracer: {why}")
    status = driver.mode_status(LINUX_MODES)
    modes = [r["mode"] for r in status if r["available"]]
    if not modes:
        raise SpecError("no completion mode runs here: " + "; ".join(f"{r['mode']}: {r['reason']}" for r in status))
    with writing(root):
        root.mkdir(parents=True, exist_ok=True)
    skipped = [f"{r['mode']} ({r['reason']})" for r in status if not r["available"]]
    log(f"demo: backend {chosen.name} ({why}); modes {', '.join(modes)}"
        + (f"; not available here: {', '.join(skipped)}" if skipped else ""))
    base = replace(base, mode=modes[0])
    direct, detail = _o_direct(base.file)
    log(f"O_DIRECT: {'yes' if direct else 'no, page-cache reads (the reap batch will matter little)'} ({detail})")
    amp = replace(base, direct=direct)
    att = replace(base, direct=direct, threads="split")
    plans = [("amplification", amp, reaps, "syscall amplification, " + ("O_DIRECT" if direct else "page-cache")
              + f" reads, reap batch {reap_batches}")]
    if attribution:
        plans.append(("attribution", att, [min(8, base.depth)], "rusage attribution, "
                      + ("O_DIRECT" if direct else "page-cache") + " reads, submitter + reaper threads, reap batch 8"))
    sweeps = []
    for i, (name, spec, rb, what) in enumerate(plans, 1):
        log(f"sweep {i}/{len(plans)}: {what}")
        run_sweep(spec, modes, [base.depth], [1], rb, repeat, root / name, backend=chosen.name, log=log)
        sweeps.append(root / name)
    if untraced:
        for name, spec, rb, what in plans:
            log(f"untraced: {name} configurations again without a tracer (the probe effect)")
            run_sweep(spec, modes, [base.depth], [1], rb, repeat, root / f"{name}-untraced", backend="none",
                      runner=untraced_one, log=log)
            sweeps.append(root / f"{name}-untraced")
    log("report: " + ("executing the notebooks" if notebooks else "writing index.html (notebooks: --notebooks)"))
    index = build_report(sweeps, root / "report", notebooks=NOTEBOOKS if notebooks else (), log=log)
    _print_summary(sweeps)
    click.echo(f"aiotrace: demo report: {index}", err=True)
    click.echo(str(index))


def _o_direct(path: str) -> tuple[bool, str]:
    from tracer.capture.probe import o_direct_works

    works, detail = o_direct_works(path)
    return bool(works), detail


def _print_summary(sweeps: list[Path]) -> None:
    """The report's three headline tables (and the probe effect) in the terminal, then whether the
    workload verified every I/O of every run."""
    from tracer.analysis.compare import select_bundles

    print_headlines(sweeps)
    ok, not_ok = select_bundles(sweeps)
    unverified = [b.name for b in ok
                  if not json.loads((b / "record" / "summary.json").read_text()).get("verified")]
    click.echo(f"verified: {len(ok) - len(unverified)} of {len(ok)} runs checked every I/O's bytes"
               + (f"; NOT verified: {', '.join(unverified)}" if unverified else "")
               + (f"; {len(not_ok)} run(s) not ok (listed in the report)" if len(not_ok) else ""))


def print_headlines(paths, console=None) -> None:
    """Print the headline tables of the status-ok bundles under ``paths`` (mean; interval below)."""
    from rich.console import Console
    from rich.table import Table

    from tracer.view import headline
    from tracer.view.report import Study

    console = console or Console(width=160)
    study = Study.load([str(p) for p in paths])
    for q in headline.QUESTIONS:
        t = study.headline(q.key)
        if not len(t):
            continue
        metrics = {m: h for m, h in q.metrics.items() if (t[m] != "").any()}  # none of these runs has it: omit
        text = {c: h for c, h in q.text.items() if c != "release_point"}  # a sentence: in the page only
        table = Table(title=q.title, title_justify="left")
        for h in ("OS", "mode", "configuration", "n", *metrics.values(), *text.values()):
            table.add_column(h, justify="right" if h not in ("OS", "mode", "configuration") else "left")
        for r in t.to_dict("records"):
            note = "" if r["source"] == "measured" else f" [red]{r['source']}[/]"
            table.add_row(r["os"], r["mode"], r["configuration"] + note + (" [yellow]LOSSY[/]" if r["lossy"] else ""),
                          str(r["n"]), *(r[m] for m in metrics), *(r[c] for c in text))
        console.print(table)
    pe = headline.probe_effect(study.summary)
    if len(pe):
        table = Table(title="Traced and untraced: the probe effect", title_justify="left")
        for h in ("mode", "configuration", "tracer", "IOPS traced", "IOPS untraced", "traced/untraced",
                  "p50 traced", "p50 untraced"):
            table.add_column(h, justify="left" if h in ("mode", "configuration", "tracer") else "right")
        for r in pe.to_dict("records"):
            table.add_row(r["mode"], r["configuration"], r["backend"], r["iops__traced"], r["iops__untraced"],
                          r["iops_ratio"], r["observed_p50_ns__traced"], r["observed_p50_ns__untraced"])
        console.print(table)

"""`aiotrace summary BUNDLE`: one bundle in the terminal, in the spirit of `strace -c`.

:func:`by_syscall` and :func:`by_thread` are pure functions over the model (the window's calls,
errors and time); :func:`print_summary` lays them out with rich, after the three headline numbers.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tracer.analysis.requires import requires

COLUMNS = ["calls", "errors", "time_ns", "per_call_ns", "time_share"]


def _window(model: Any) -> pd.DataFrame:
    sc = model.syscalls
    sc = sc[sc["in_window"].fillna(False).astype(bool)]
    failed = sc["err"].fillna(0).astype("int64").ne(0) | sc["ret"].fillna(0).astype("int64").lt(0)
    return sc.assign(failed=failed.to_numpy(), dur=sc["dur_ns"].astype("float64"))


def _table(sc: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    g = sc.groupby(keys, observed=True, dropna=False).agg(calls=("failed", "size"), errors=("failed", "sum"),
                                                           time_ns=("dur", "sum"), timed=("dur", "count"))
    g["time_ns"] = g["time_ns"].where(g["timed"] > 0)  # no durations (untimed trace): blank, not 0
    g["per_call_ns"] = g["time_ns"] / g["timed"].where(g["timed"] > 0)
    total = g["time_ns"].sum(min_count=1)
    g["time_share"] = g["time_ns"] / total if total and not np.isnan(total) else np.nan
    return g.drop(columns="timed").reset_index().sort_values(["time_ns", "calls"], ascending=False, na_position="last")


@requires(tables={"syscalls": ("name", "role", "in_window")})
def by_syscall(model: Any) -> pd.DataFrame:
    """One row per syscall name in the window: ``name``, ``role``, ``calls``, ``errors`` (returned
    an error), ``time_ns`` (summed enter->exit; NaN when the trace has no durations),
    ``per_call_ns``, ``time_share`` (0..1), sorted by time then calls."""
    return _table(_window(model), ["name", "role"]).reset_index(drop=True)


@requires(tables={"syscalls": ("name", "tid", "in_window")})
def by_thread(model: Any) -> pd.DataFrame:
    """One row per thread in the window: ``tid``, ``thread`` (display name: submitter, reaper,
    glibc AIO helper, iou-wrk...), ``calls``, ``errors``, ``time_ns``, ``per_call_ns``, ``time_share``."""
    out = _table(_window(model), ["tid"])
    th = model.threads[["tid", "name"]].drop_duplicates("tid").rename(columns={"name": "thread"}) \
        if len(model.threads) else pd.DataFrame({"tid": [], "thread": []})
    out = out.merge(th, on="tid", how="left")
    out["thread"] = out["thread"].fillna("(not in thread record)")
    return out[["tid", "thread", *COLUMNS]].reset_index(drop=True)


def print_summary(model: Any, console=None) -> None:
    """Print the bundle's identity, the three headline numbers, then the strace -c style tables."""
    from rich.console import Console
    from rich.table import Table

    from tracer.analysis import amplification, attribution, free_timing
    from tracer.view import fmt
    from tracer.view.headline import configuration
    from tracer.analysis.requires import NOT_MEASURED, can_run, loss_note, provenance

    console = console or Console(width=100)
    p = provenance(model)
    man, summ = model.manifest, model.summary
    console.print(f"[bold]{p['run_id']}[/]  {p['os']} {p['mode']} {configuration(p)}")
    status = man.get("status", "?")
    console.print(f"status {status}" + (f" ({man.get('reason')})" if man.get("reason") else "")
                  + f"; {fmt.count(amplification.io_count(model))} I/Os"
                  + ("; every I/O verified" if summ.get("verified") else "; NOT verified" if summ else ""))
    if p["source"] in NOT_MEASURED:
        console.print(f"[bold red]{p['source']}[/]")
    note = loss_note(model)
    if note:
        console.print(f"[bold yellow]LOSSY[/]: {note}: counts are lower bounds")
    head = Table(title="The three answers", title_justify="left", show_header=False)
    head.add_column(no_wrap=True)
    head.add_column()
    if can_run(amplification.by_role, model)[0]:
        roles = amplification.by_role(model).set_index("role")
        parts = ", ".join(f"{r} {fmt.num(roles.at[r, 'per_io'])}" for r in roles.index
                          if r != "total" and roles.at[r, "syscalls"] > 0)
        head.add_row("syscalls per I/O", f"{fmt.num(roles.at['total', 'per_io'])} (floor "
                     f"{fmt.num(roles.at['total', 'floor_per_io'])}){': ' + parts if parts else ''}")
    else:
        head.add_row("syscalls per I/O", "[dim]not in this bundle[/]")
    if can_run(attribution.by_thread, model)[0]:
        a = attribution.summarize(attribution.by_thread(model)).iloc[0]
        head.add_row("charged to a non-submitter", f"{fmt.share(a['share_not_submitter'])}"
                     + (f", most to {a['charged_thread']}" if a.get("charged_thread") else ""))
    else:
        head.add_row("charged to a non-submitter", "[dim]not in this bundle[/]")
    if can_run(free_timing.percentiles, model)[0]:
        f = free_timing.percentiles(model).iloc[0]
        head.add_row("free lag", f"p50 {fmt.duration(f['p50'])}, p99 {fmt.duration(f['p99'])}; jobs alive mean "
                     f"{fmt.num(f['mean_alive'])}, max {fmt.count(f['max_alive'])}"
                     + (f" (limit {fmt.count(f['limit'])})" if not fmt.missing(f["limit"]) else ""))
    else:
        head.add_row("free lag", "[dim]not in this bundle[/]")
    console.print(head)
    if not can_run(by_syscall, model)[0]:
        console.print("[dim]No per-call trace in this bundle (untraced or counts only).[/]")
        return
    for title, frame, first in (("By syscall (measurement window)", by_syscall(model), ("name", "role")),
                                ("By thread", by_thread(model), ("thread", "tid"))):
        t = Table(title=title, title_justify="left")
        for col, head_text in (("time_share", "% time"), ("time_ns", "time"), ("per_call_ns", "per call"),
                               ("calls", "calls"), ("errors", "errors")):
            t.add_column(head_text, justify="right")
        for c in first:
            t.add_column(c)
        for r in frame.to_dict("records"):
            t.add_row(fmt.share(r["time_share"]).replace(" %", ""), fmt.duration(r["time_ns"]),
                      fmt.duration(r["per_call_ns"]), fmt.count(r["calls"]), fmt.count(r["errors"]) if r["errors"] else "",
                      *(str(r[c]) for c in first))
        tot = frame[["calls", "errors"]].sum()
        t.add_row("100", fmt.duration(frame["time_ns"].sum(min_count=1)), "", fmt.count(tot["calls"]),
                  fmt.count(tot["errors"]) if tot["errors"] else "", "total", "", end_section=True)
        console.print(t)

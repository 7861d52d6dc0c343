"""Many bundles -> one tidy table, with 95% confidence intervals over repetitions.

:func:`run_metrics` reduces one bundle to one row of headline numbers (syscalls per I/O by role
and their floors, IOPS, CPU per I/O, latency percentiles, free lag, attribution share), each only
when the bundle has what it needs. :func:`tidy` melts many such rows into long form and
:func:`summarize` groups repetitions of the same configuration (os, backend, mode, op, depth,
batch, reap batch, threads, submit, direct, source): ``n``, ``mean``, ``std``, ``ci_low``,
``ci_high`` (Student t, 95%, from a table: scipy is not a dependency), and ``lossy`` (any run in
the group had tracer losses). Below three repetitions the interval is NaN and
``min``/``max`` (the range) stand in for it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from tracer.analysis import amplification, attribution, free_timing, latency, reap_projection
from tracer.analysis.requires import PROVENANCE_COLUMNS, can_run, provenance
from tracer.base.errors import AnalysisError
from tracer.base.schema import ROLES

CONFIG_COLUMNS = ("os", "backend", "mode", "op", "depth", "batch", "reap_batch", "threads", "submit",
                  "direct", "kernel_variant", "source", "counts_only")
MIN_N_CI = 3  # repetitions needed for an interval; below, the range is shown
# two-sided 95% Student t quantiles t(0.975, df)
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
         18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
         26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}
# headline metrics: name -> unit (for tables and axis labels)
METRICS: dict[str, str] = {
    **{f"{r}_per_io": "syscalls/I/O" for r in (*ROLES, "total")},
    "total_floor": "syscalls/I/O", "iops": "I/O/s", "cpu_ns_per_io": "ns", "observed_p50_ns": "ns",
    "observed_p99_ns": "ns", "complete_p50_ns": "ns", "free_lag_p50_ns": "ns", "free_lag_p99_ns": "ns",
    "mean_alive": "jobs", "max_alive": "jobs", "share_not_submitter": "fraction",
    "reap_projected_per_io": "syscalls/I/O, projected for REAP",
}
# per-run text columns carried beside the metrics (not averaged): the thread charged, the limit
TEXT_COLUMNS = ("charged_thread", "release_point")


def t975(df: int) -> float:
    """Two-sided 95% t quantile for ``df`` degrees of freedom (table lookup, conservative
    between rows; 1.960 beyond 120)."""
    if df < 1:
        return float("nan")
    if df in _T975:
        return _T975[df]
    if df > 120:
        return 1.960
    return _T975[max(k for k in _T975 if k < df)]  # the smaller tabulated df: a wider interval


def run_metrics(model: Any) -> dict[str, Any]:
    """One row of headline numbers for one bundle (NaN where the bundle cannot tell)."""
    row: dict[str, Any] = dict(provenance(model))
    row.update({m: np.nan for m in METRICS})
    if can_run(amplification.by_role, model)[0]:
        try:
            roles = amplification.by_role(model).set_index("role")
        except AnalysisError:  # an aggregate bundle without in-window counts
            roles = None
    else:
        roles = None
    if roles is not None:
        for r in (*ROLES, "total"):
            row[f"{r}_per_io"] = roles.at[r, "per_io"]
        row["total_floor"] = roles.at["total", "floor_per_io"]
    if can_run(reap_projection.projected_reap, model)[0]:
        proj = reap_projection.projected_reap(model)
        if len(proj):
            row["reap_projected_per_io"] = proj.set_index("role").at["total", "reap_per_io"]
    if can_run(latency.throughput, model)[0]:
        tp = latency.throughput(model).iloc[0]
        row["iops"], row["cpu_ns_per_io"] = tp["iops"], tp["cpu_ns_per_io"]
    elif getattr(model, "foreign", False) and model.window and model.window[1] > model.window[0]:
        # a foreign program: I/Os from kernel/syscall events over its I/O window (tracer.model._io_window)
        row["iops"] = (model.io_total or 0) / ((model.window[1] - model.window[0]) / 1e9)
    if can_run(latency.percentiles, model)[0]:
        lat = latency.percentiles(model).set_index("stage")
        if "observed" in lat.index:
            row["observed_p50_ns"], row["observed_p99_ns"] = lat.at["observed", "p50"], lat.at["observed", "p99"]
        if "complete" in lat.index:
            row["complete_p50_ns"] = lat.at["complete", "p50"]
    row.update(dict.fromkeys(TEXT_COLUMNS, None))
    row["limit"] = np.nan
    if can_run(free_timing.percentiles, model)[0]:
        ft = free_timing.percentiles(model).iloc[0]
        row["free_lag_p50_ns"], row["free_lag_p99_ns"] = ft["p50"], ft["p99"]
        row["mean_alive"], row["max_alive"], row["limit"] = ft["mean_alive"], ft["max_alive"], ft["limit"]
        row["release_point"] = ft["release_point"]
    if can_run(attribution.by_thread, model)[0]:
        att = attribution.summarize(attribution.by_thread(model)).iloc[0]
        row["share_not_submitter"] = att["share_not_submitter"]
        row["charged_thread"] = att.get("charged_thread") or att["charged_thread_role"]
    return row


def runs_table(models: Iterable[Any]) -> pd.DataFrame:
    """One row per bundle (see :func:`run_metrics`)."""
    return pd.DataFrame([run_metrics(m) for m in models])


def tidy(runs: pd.DataFrame) -> pd.DataFrame:
    """Long form: provenance columns, ``metric``, ``unit``, ``value`` (one row per run and metric)."""
    keys = [c for c in PROVENANCE_COLUMNS if c in runs.columns]
    metrics = [m for m in METRICS if m in runs.columns]
    long = runs.melt(id_vars=keys, value_vars=metrics, var_name="metric", value_name="value")
    long["unit"] = long["metric"].map(METRICS)
    return long.dropna(subset=["value"]).reset_index(drop=True)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Group repetitions of one configuration: ``n``, ``mean``, ``std``, ``ci_low``, ``ci_high``
    (95% t interval of the mean), ``lossy`` (any run lossy), per metric."""
    long = tidy(runs)
    if long.empty:
        return pd.DataFrame(columns=[*CONFIG_COLUMNS, "metric", "unit", "n", "mean", "std", "ci_low", "ci_high",
                                     "min", "max", "lossy"])
    keys = [c for c in CONFIG_COLUMNS if c in long.columns]
    filled = long.assign(**{k: long[k].astype("object").where(long[k].notna(), "-") for k in keys})
    g = filled.groupby([*keys, "metric", "unit"], sort=False)
    out = g["value"].agg(n="count", mean="mean", std="std", min="min", max="max").reset_index()
    out["lossy"] = g["lossy"].any().to_numpy()
    # no interval below three repetitions: t(0.975, 1) = 12.7 makes a two-run "interval" meaningless
    half = out.apply(lambda r: t975(int(r["n"]) - 1) * r["std"] / np.sqrt(r["n"]) if r["n"] >= MIN_N_CI else np.nan,
                     axis=1)
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    return out[[*keys, "metric", "unit", "n", "mean", "std", "ci_low", "ci_high", "min", "max", "lossy"]]


def bundle_paths(paths: Iterable[str | Path], note: Callable[[str], None] | None = None) -> list[Path]:
    """Expand bundle or sweep directories into bundle directories (a sweep: its sweep.json
    index, else every bundle (``manifest.json``) at any depth below it, e.g. tests/data/freebsd).
    A manifest.json below a directory that is not aiotrace's is skipped, with ``note`` told why.
    Raises AnalysisError for a path that is neither."""
    from tracer.model import is_bundle

    note = note or (lambda msg: None)
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "manifest.json").is_file():
            out.append(p)
        elif (p / "sweep.json").is_file():
            index = json.loads((p / "sweep.json").read_text())
            out += [p / r["bundle"] for r in index.get("runs", []) if r.get("bundle") and r.get("status") == "ok"]
        elif p.is_dir() and any(p.rglob("manifest.json")):
            # Partial bundles (".<id>.partial") are hidden directories: never read them.
            found = sorted(m.parent for m in p.rglob("manifest.json")
                           if not any(part.startswith(".") for part in m.relative_to(p).parts))
            for b in found:
                if is_bundle(b):
                    out.append(b)
                else:
                    note(f"skipped {b / 'manifest.json'}: not an aiotrace run bundle manifest")
        else:
            raise AnalysisError(f"{p}: neither a run bundle (manifest.json), a sweep (sweep.json), "
                                "nor a directory with bundles below it")
    return out


NOT_OK_COLUMNS = ["bundle", "run_id", "status", "reason"]


def select_bundles(paths: Iterable[str | Path], note: Callable[[str], None] | None = None
                   ) -> tuple[list[Path], pd.DataFrame]:
    """Split the bundles under ``paths`` into those whose manifest says ``status: ok`` (the only
    ones measured, averaged or plotted) and the others: one row each with ``bundle``, ``run_id``,
    ``status`` (failed, interrupted, unreadable...) and ``reason``, to be listed, never averaged in.
    A ``manifest.json`` that is not a run manifest (not JSON, not an object) is listed as
    ``not a bundle``."""
    from tracer.base.errors import ParseError
    from tracer.model import read_manifest

    paths = [Path(p) for p in paths]
    ok, others = [], []
    for bundle in bundle_paths(paths, note):
        try:
            manifest = read_manifest(bundle)
        except ParseError as exc:
            if bundle in paths:  # named on the command line: say what is wrong with it
                raise
            others.append({"bundle": str(bundle), "run_id": bundle.name, "status": "not a bundle",
                           "reason": str(exc)})
            continue
        status = manifest.get("status")
        if status == "ok":
            ok.append(bundle)
        else:
            others.append({"bundle": str(bundle), "run_id": str(manifest.get("run_id") or bundle.name),
                           "status": str(status or "unknown"), "reason": str(manifest.get("reason") or "")})
    return ok, pd.DataFrame(others, columns=NOT_OK_COLUMNS)


def load_models(paths: Iterable[str | Path], note: Callable[[str], None] | None = None) -> list[Any]:
    """The model of every status-ok bundle under ``paths`` (see :func:`select_bundles`), each
    built once per process and cached on disk (tracer.model.load_bundle)."""
    from tracer.model import load_bundle

    ok, _ = select_bundles(paths, note)
    return [load_bundle(p) for p in ok]


# --------------------------------------------------------------------------- A versus B

def _interval(values: np.ndarray) -> tuple[float, float]:
    """95% Student-t interval of the mean of ``values`` (NaN below n=2)."""
    n = len(values)
    if n < MIN_N_CI:
        return (np.nan, np.nan)
    half = t975(n - 1) * values.std(ddof=1) / np.sqrt(n)
    return (values.mean() - half, values.mean() + half)


def ratio_interval(a: np.ndarray, b: np.ndarray, resamples: int = 4000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of mean(b) / mean(a), resampling the runs of each side
    independently (NaN when either side has fewer than 3 runs, or mean(a) can be 0)."""
    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    if len(a) < MIN_N_CI or len(b) < MIN_N_CI:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    ma = a[rng.integers(0, len(a), (resamples, len(a)))].mean(axis=1)
    mb = b[rng.integers(0, len(b), (resamples, len(b)))].mean(axis=1)
    if (ma == 0).any():
        return (np.nan, np.nan)
    lo, hi = np.percentile(mb / ma, [2.5, 97.5])
    return (float(lo), float(hi))


def matching_keys(a: pd.DataFrame, b: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Configuration columns to pair A's runs with B's (the ones A and B share values of), and
    the ones that differ wholesale between A and B (what the comparison is about)."""
    keys, differ = [], []
    for c in CONFIG_COLUMNS:
        if c not in a.columns or c not in b.columns:
            continue
        va, vb = set(a[c].astype(str)), set(b[c].astype(str))
        (differ if va.isdisjoint(vb) else keys).append(c)
    return keys, differ


def change(a: pd.DataFrame, b: pd.DataFrame, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """Per paired configuration and metric, B against A from two :func:`runs_table` frames:
    ``config`` (the shared values), ``metric``, ``unit``, ``n_a``, ``mean_a``, ``ci_low_a``,
    ``ci_high_a``, ``min_a``, ``max_a``, the same for b, ``ratio`` (mean_b / mean_a), ``ratio_low``,
    ``ratio_high`` (bootstrap 95%, both n >= 3), ``ratio_min``/``ratio_max`` (the range of b/a over
    the runs, shown instead below n = 3), ``lossy``. Only status-ok runs are in the frames."""
    wanted = [m for m in (metrics or METRICS) if m in a.columns and m in b.columns]
    keys, _ = matching_keys(a, b)
    fa = a.assign(**{k: a[k].astype(str) for k in keys})
    fb = b.assign(**{k: b[k].astype(str) for k in keys})
    rows = []
    groups_b = dict(iter(fb.groupby(keys, sort=False))) if keys else {(): fb}
    for key, ga in (fa.groupby(keys, sort=False) if keys else [((), fa)]):
        gb = groups_b.get(key)
        if gb is None:
            continue
        key = key if isinstance(key, tuple) else (key,)
        config = dict(zip(keys, key))
        for m in wanted:
            va, vb = ga[m].dropna().to_numpy(float), gb[m].dropna().to_numpy(float)
            if not len(va) or not len(vb):
                continue
            row = {**config, "metric": m, "unit": METRICS[m]}
            for side, v in (("a", va), ("b", vb)):
                lo, hi = _interval(v)
                row.update({f"n_{side}": len(v), f"mean_{side}": v.mean(), f"ci_low_{side}": lo,
                            f"ci_high_{side}": hi, f"min_{side}": v.min(), f"max_{side}": v.max()})
            row["ratio"] = vb.mean() / va.mean() if va.mean() != 0 else np.nan
            row["ratio_low"], row["ratio_high"] = ratio_interval(va, vb)
            ratios = np.divide.outer(vb, va[va != 0]) if (va != 0).any() else np.array([np.nan])
            finite = ratios[np.isfinite(ratios)]
            row["ratio_min"], row["ratio_max"] = (float(finite.min()), float(finite.max())) if finite.size else (np.nan, np.nan)
            row["lossy"] = bool(ga["lossy"].any() or gb["lossy"].any())
            rows.append(row)
    return pd.DataFrame(rows)

"""`aiotrace report`: one self-contained page that answers the three questions, plus the notebooks.

    <out>/index.html              the answers first: one headline table per question (rows OS x mode
                                  x configuration, mean and interval over repetitions), one figure
                                  per question, then the details, then an appendix (bundle paths,
                                  runs not counted). Figures are embedded as PNG: the file can be
                                  mailed or attached to a review on its own.
    <out>/figures/*.png           every figure
    <out>/tables/*.csv, *.json    every table (raw numbers, ns)
    <out>/notebooks/<name>.ipynb  the four notebooks executed over the same bundles (with --notebooks)
    <out>/notebooks/<name>.html   each one as HTML with its code

Only bundles whose manifest says ``status: ok`` are measured; failed or interrupted ones are listed
with their status and reason, never averaged in. Each bundle's model is built once (and cached,
tracer.model.load_bundle). The report is built in ``<out>.partial-<pid>`` and renamed into place.

:class:`Study` and :class:`Outputs` are what the notebooks call too; no number is computed in a
notebook or in the page, only in the analysis modules.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from tracer.view import fmt
from tracer.analysis.requires import FIXTURE_LABEL, MODEL_LABEL, NOT_MEASURED, bundle_name, can_run
from tracer.base.errors import AnalysisError

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = ("overview", "syscall_amplification", "rusage_attribution", "async_free_timing")
KERNEL_NAME = "aiotrace-python"
FIGURE_DPI = 110


def default_bundles() -> list[str]:
    """What a notebook opened with no parameter shows: the FreeBSD bundles shipped in the repo."""
    return [str(REPO / "tests" / "data" / "freebsd")]


def default_out_dir(name: str) -> Path:
    """Where a notebook run without ``out_dir`` writes: $XDG_CACHE_HOME/aiotrace/notebooks/<name>."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "aiotrace" / "notebooks" / name


def as_paths(bundles: Any) -> list[str]:
    """A notebook's ``bundles`` parameter: one path (str or Path), a list of them, or None
    (the FreeBSD data in the repo)."""
    if bundles is None or (isinstance(bundles, (list, tuple)) and not bundles):
        return default_bundles()
    if isinstance(bundles, (str, os.PathLike)):
        return [str(bundles)]
    return [str(b) for b in bundles]


class Outputs:
    """Where a notebook or the report saves its figures (PNG) and tables (CSV + JSON)."""

    def __init__(self, out_dir: str | Path | None, name: str = "notebook", show: bool = True):
        self.root = Path(out_dir) if out_dir else default_out_dir(name)
        self.show = show
        (self.root / "figures").mkdir(parents=True, exist_ok=True)
        (self.root / "tables").mkdir(parents=True, exist_ok=True)

    def table(self, frame: pd.DataFrame, name: str) -> pd.DataFrame:
        frame.to_csv(self.root / "tables" / f"{name}.csv", index=False)
        frame.to_json(self.root / "tables" / f"{name}.json", orient="records", indent=1, default_handler=str)
        return frame

    def figure(self, fig, name: str) -> bytes:
        """Save ``fig`` as figures/<name>.png, close it, show it inline (in a notebook); returns the PNG."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=FIGURE_DPI)
        plt.close(fig)
        png = buf.getvalue()
        (self.root / "figures" / f"{name}.png").write_bytes(png)
        if self.show:
            from IPython.display import Image, display

            display(Image(data=png, format="png"))
        return png


def collect(models: Iterable[Any], fn: Callable, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run analysis ``fn`` on every model that has what it needs; returns (results concatenated,
    skipped: run_id, analysis, missing)."""
    frames, skipped = [], []
    for m in models:
        ok, missing = can_run(fn, m)
        if ok:
            try:
                frames.append(fn(m, **kwargs))
            except AnalysisError as exc:  # what the declared requirements could not foresee
                skipped.append({"run_id": bundle_name(m), "analysis": fn.__name__, "missing": str(exc)})
        else:
            skipped.append({"run_id": bundle_name(m), "analysis": fn.__name__, "missing": missing})
    frames = [f for f in frames if len(f)]
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return result, pd.DataFrame(skipped, columns=["run_id", "analysis", "missing"])


@dataclass
class Study:
    """The status-ok bundles under some paths, their models (each built once), the per-run
    metrics and their summary over repetitions; the bundles not counted, with status and reason."""
    paths: list[str]
    bundles: list[Path]
    not_ok: pd.DataFrame
    models: list[Any]
    runs: pd.DataFrame
    summary: pd.DataFrame
    cache: dict = field(default_factory=dict)

    @classmethod
    def load(cls, paths: Any) -> "Study":
        from tracer.analysis import compare
        from tracer.model import load_bundle

        paths = as_paths(paths)
        ok, not_ok = compare.select_bundles(paths)
        models = [load_bundle(p) for p in ok]
        runs = compare.runs_table(models) if models else pd.DataFrame()
        summary = compare.summarize(runs) if len(runs) else compare.summarize(pd.DataFrame(columns=["lossy"]))
        return cls(paths, [p.resolve() for p in ok], not_ok, models, runs, summary)

    def collect(self, fn: Callable) -> tuple[pd.DataFrame, pd.DataFrame]:
        """:func:`collect` over this study's models, computed once per analysis."""
        if fn.__name__ + fn.__module__ not in self.cache:
            self.cache[fn.__name__ + fn.__module__] = collect(self.models, fn)
        return self.cache[fn.__name__ + fn.__module__]

    def headline(self, key: str) -> pd.DataFrame:
        from tracer.view import headline

        q = {q.key: q for q in (*headline.QUESTIONS, headline.BASICS)}[key]
        return headline.table(self.summary, self.runs, q) if len(self.runs) else pd.DataFrame()

    def note(self) -> str:
        return sources_note(self.runs, self.not_ok)

    def figure(self, key: str):
        """The figure answering question ``key`` (amplification, attribution, free_timing), or
        the probe-effect figure (basics); None when no run answers it."""
        from tracer.view import figures
        from tracer.analysis import free_timing

        s = self.summary
        if key == "amplification" and (s["metric"] == "total_per_io").any():
            return figures.amplification_by_reap_batch(s)
        if key == "attribution" and (s["metric"] == "share_not_submitter").any():
            return figures.attribution_share(s, self.runs)
        if key == "free_timing":
            lags, _ = self.collect(free_timing.per_io)
            alive, _ = self.collect(free_timing.alive_timeline)
            if len(lags):
                return figures.free_timing_overview(lags, alive)
        if key == "basics" and (s["metric"] == "iops").any() and (s["backend"] == "none").any():
            return figures.probe_effect_bars(s)
        return None


# The D33144 tree's own bug (macdice/freebsd @33a47467, sys/kern/vfs_aio.c aio_bio_done_notify):
# in REAP mode it calls aio_free_entry(job) and then writes job->td, i.e. freed memory.
D33144_UAF_WARNING = (
    "WARNING, D33144 tree (macdice/freebsd @33a47467): in REAP mode aio_bio_done_notify calls "
    "aio_free_entry(job), which returns the kaiocb to its UMA zone, and then reads job->td to drop "
    "td_aio_count and writes job->td = NULL: a use-after-free. Under load `reap` on that kernel may "
    "corrupt kernel memory; treat its figures as suspect until the patch is fixed")


def d33144_reap_in(runs: pd.DataFrame) -> bool:
    return runs is not None and len(runs) > 0 and any(runs_d33144_reap(r) for r in runs.to_dict("records"))


def runs_d33144_reap(prov: dict[str, Any]) -> bool:
    """True for a FreeBSD REAP run: REAP exists only on the D33144 tree, and only REAP jobs take
    the aio_free_entry path in aio_bio_done_notify."""
    return prov.get("os") == "FreeBSD" and prov.get("mode") == "reap"


def sources_note(runs: pd.DataFrame | Iterable[Any], not_ok: pd.DataFrame | None = None, warnings: bool = True) -> str:
    """A sentence saying which runs are measured, which are FreeBSD fixtures or model output (not
    measurements), which lost events, which bundles were not counted, and (``warnings``) the D33144
    tree's use-after-free when a REAP run is among them. ``runs``: per-run rows (Study.runs) or models."""
    if not isinstance(runs, pd.DataFrame):
        from tracer.analysis.requires import provenance

        runs = pd.DataFrame([provenance(m) for m in runs])
    if runs is None or runs.empty:
        parts = ["No status-ok runs"]
    else:
        parts = []
        measured = runs[~runs["source"].isin(NOT_MEASURED)]
        if len(measured):
            parts.append(f"{len(measured)} run(s) measured on {', '.join(sorted(set(measured['os'].dropna())))}")
        n_fix = int((runs["source"] == FIXTURE_LABEL).sum())
        if n_fix:
            parts.append(f"{n_fix} run(s) are a {FIXTURE_LABEL}: hand-written FreeBSD fixture bundles that show "
                         "what the analyses compute, not measurements of a FreeBSD kernel")
        n_model = int((runs["source"] == MODEL_LABEL).sum())
        if n_model:
            parts.append(f"{n_model} run(s) come from the {MODEL_LABEL}: `aiotrace simulate` ran the FreeBSD modes "
                         "against a user-space model of FreeBSD's AIO and kqueue rules (stock and D33144/D33271 "
                         "kernels, workloads/fbsd_model); they show what those rules imply, not what a FreeBSD "
                         "kernel measures")
        if warnings and d33144_reap_in(runs):
            parts.append(D33144_UAF_WARNING)
        lossy = runs[runs["lossy"]]
        if len(lossy):
            parts.append("tracer losses in " + "; ".join(f"{r.run_id} ({r.loss_note})" for r in lossy.itertuples()))
    if not_ok is not None and len(not_ok):
        parts.append(f"{len(not_ok)} bundle(s) not counted (status not ok: "
                     + ", ".join(f"{n} {s}" for s, n in not_ok["status"].value_counts().items()) + "; see the appendix)")
    return ". ".join(parts) + "."


def _kernelspec_dir(root: Path) -> Path:
    """A kernelspec for this interpreter under ``root/kernels/<KERNEL_NAME>``; returns ``root``."""
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
           "MPLBACKEND": "Agg"}
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--IPKernelApp.log_level=CRITICAL"],
        "display_name": f"aiotrace ({sys.executable})", "language": "python", "env": env}))
    return root


def execute_notebook(name: str, params: dict, out_nb: Path, cwd: Path) -> None:
    """Execute notebooks/<name>.ipynb with papermill into ``out_nb``."""
    import papermill as pm

    with tempfile.TemporaryDirectory(prefix="aiotrace-kernel-") as kdir:
        old = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(_kernelspec_dir(Path(kdir))), old]))
        try:
            pm.execute_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"), str(out_nb), parameters=params,
                                kernel_name=KERNEL_NAME, cwd=str(cwd), progress_bar=False, log_output=False)
        except pm.PapermillExecutionError as exc:
            raise AnalysisError(f"notebook {name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}") from None
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


def _html(nb, exclude_input: bool) -> str:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=exclude_input, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    return body


def _detail_sections(study: Study, out: Outputs) -> list[str]:
    """Everything after the answers: probe effect, by syscall, per thread, latency, skipped analyses."""
    from tracer.analysis import amplification, attribution, latency
    from tracer.view import figures, headline, page

    html_parts = ['<section class="details" id="details"><h2>Details</h2>']
    pe = headline.probe_effect(study.summary) if len(study.runs) else pd.DataFrame()
    basics = study.headline("basics")
    if len(pe) or len(basics):
        html_parts.append(f"<h3>{html.escape(headline.BASICS.title)}</h3><p class='lead'>{html.escape(headline.BASICS.lead)}</p>")
        if len(pe):
            cols = {"os": "OS", "mode": "mode", "configuration": "configuration", "backend": "tracer", "n": "runs"}
            for m, h in headline.BASICS.metrics.items():
                cols[f"{m}__traced"], cols[f"{m}__untraced"] = f"{h} traced", f"{h} untraced"
            cols["iops_ratio"] = "IOPS traced / untraced"
            html_parts.append(page.plain_table(pe, cols, numeric=[c for c in cols if "__" in c or c in ("n", "iops_ratio")]))
        else:
            html_parts.append(page.headline_table(basics, headline.BASICS.metrics, {}, "basics", _colors(basics),
                                                  css_class="detail"))
        fig = study.figure("basics")
        if fig is not None:
            html_parts.append(_figure_html(out, fig, "probe_effect", "detail-figure", "basics",
                                           "IOPS traced and untraced per configuration (95% CI or range)."))
    calls, _ = study.collect(amplification.by_syscall)
    if len(calls):
        out.table(calls, "amplification_by_syscall")
        c = calls.assign(configuration=calls.apply(headline.configuration, axis=1))
        g = (c.groupby(["os", "mode", "configuration", "source", "name", "role"], sort=False)
               .agg(per_io=("per_io", "mean"), dur=("dur_ns_mean", "mean"), runs=("run_id", "nunique")).reset_index())
        g = g[g["per_io"] >= 0.01].sort_values(["os", "mode", "configuration", "per_io"], ascending=[True, True, True, False])
        g["per_io"], g["dur"] = g["per_io"].map(fmt.num), g["dur"].map(fmt.duration)
        html_parts.append("<h3>Which system calls, per I/O</h3><p class='lead'>Calls per I/O in the window "
                          "(≥ 0.01), mean over the runs of each configuration, and their mean duration.</p>")
        html_parts.append(page.plain_table(g, {"os": "OS", "mode": "mode", "configuration": "configuration",
                                              "name": "syscall", "role": "role", "per_io": "calls per I/O",
                                              "dur": "mean duration", "runs": "runs", "source": "source"},
                                           numeric=["per_io", "dur", "runs"], limit=80, csv_name="amplification_by_syscall"))
    roles, _ = study.collect(amplification.by_role)
    if len(roles):
        out.table(roles, "amplification_by_role")
        html_parts.append(_figure_html(out, figures.amplification_bars(roles), "amplification_by_role", "detail-figure",
                                       "amplification", "Syscalls per I/O by role, one bar per run; black tick: the floor."))
    per_thread, _ = study.collect(attribution.by_thread)
    if len(per_thread):
        out.table(per_thread, "attribution_by_thread")
        out.table(attribution.summarize(per_thread), "attribution_summary")
        t = per_thread[(per_thread["submitted_blocks"] > 0) | (per_thread["charged_blocks"].fillna(0) > 0)].copy()
        t["configuration"] = t.apply(headline.configuration, axis=1)
        for col in ("submitted_blocks", "charged_blocks", "submitted_ios", "reaped_ios"):
            t[col] = t[col].map(fmt.count)
        html_parts.append("<h3>Submitted and charged, per thread</h3><p class='lead'>In the OS's rusage unit "
                          "(512-byte blocks on Linux, block I/O operations on FreeBSD); charge source: traced "
                          "kernel charges, the thread's own rusage, or /proc task io.</p>")
        html_parts.append(page.plain_table(t, {"os": "OS", "mode": "mode", "configuration": "configuration",
                                              "run_id": "run", "thread": "thread", "tid": "tid",
                                              "submitted_ios": "I/Os submitted", "reaped_ios": "I/Os reaped",
                                              "submitted_blocks": "submitted", "charged_blocks": "charged",
                                              "charge_unit": "unit", "charge_source": "charge source",
                                              "source": "source"},
                                           numeric=["submitted_ios", "reaped_ios", "submitted_blocks", "charged_blocks"],
                                           limit=60, csv_name="attribution_by_thread"))
    lat, _ = study.collect(latency.percentiles)
    if len(lat):
        out.table(lat, "latency")
        c = lat.assign(configuration=lat.apply(headline.configuration, axis=1))
        g = (c.groupby(["os", "mode", "configuration", "source", "stage"], sort=False)[["p50", "p99", "max"]]
               .mean().reset_index())
        for col in ("p50", "p99", "max"):
            g[col] = g[col].map(fmt.duration)
        html_parts.append("<h3>Latency by stage</h3><p class='lead'>From submit to: the submit call's return "
                          "(submit), kernel completion (complete), the program learning of it (observed), release "
                          "of kernel state (freed); mean over runs of each percentile.</p>")
        html_parts.append(page.plain_table(g, {"os": "OS", "mode": "mode", "configuration": "configuration",
                                              "stage": "stage", "p50": "p50", "p99": "p99", "max": "max",
                                              "source": "source"}, numeric=["p50", "p99", "max"], limit=80,
                                           csv_name="latency"))
    skipped = pd.concat([study.collect(f)[1] for f in (amplification.by_role, attribution.by_thread, latency.percentiles)]
                        + [study.collect(_free_timing_fn())[1]], ignore_index=True)
    if len(skipped):
        lines = "".join(f"<li><b>{html.escape(a)}</b>: {n} run(s), e.g. {html.escape(str(g['run_id'].iloc[0]))} "
                        f"lacks {html.escape(str(g['missing'].iloc[0]))}</li>"
                        for (a, n), g in ((k, g) for k, g in skipped.groupby(["analysis", skipped.groupby('analysis')['run_id'].transform('size')])))
        html_parts.append(f"<h3>Analyses some runs cannot answer</h3><ul>{lines}</ul>")
    html_parts.append("</section>")
    return html_parts


def _free_timing_fn():
    from tracer.analysis import free_timing

    return free_timing.percentiles


def _colors(frame: pd.DataFrame) -> dict[str, str]:
    from tracer.view.figures import mode_color

    return {m: mode_color(m) for m in frame["mode"].dropna().unique()} if "mode" in frame else {}


def _figure_html(out: Outputs, fig, name: str, css_class: str, question: str, caption: str) -> str:
    from tracer.view import page

    png = out.figure(fig, name)
    return (f"<figure>{page.png_img(png, caption, css_class, question)}"
            f"<figcaption>{html.escape(caption)} (<code>figures/{name}.png</code>)</figcaption></figure>")


def write_page(study: Study, out_dir: Path, notebooks: Iterable[str] = ()) -> Path:
    """Write ``out_dir``/index.html (and its figures/ and tables/) for ``study``."""
    from tracer.view import headline, page

    out = Outputs(out_dir, show=False)
    out.table(study.runs, "runs")
    if len(study.summary):
        out.table(study.summary, "comparison")
    sections = ['<section id="answers"><h2>The answers</h2>']
    for q in headline.QUESTIONS:
        t = study.headline(q.key)
        sections.append(f'<h3 id="q-{q.key}">{html.escape(q.title)}</h3><p class="lead">{html.escape(q.lead)}</p>')
        if len(t):
            out.table(t, f"headline_{q.key}")
            sections.append(page.headline_table(t, q.metrics, q.text, q.key, _colors(t)))
        else:
            sections.append(f'<p class="muted" data-question="{q.key}">No run in these bundles can answer this '
                            "(see “Analyses some runs cannot answer” in the details).</p>")
    sections.append("</section><section id='figures'><h2>Figures</h2>")
    captions = {"amplification": "Question 1: syscalls per I/O against reap batch, per OS; dashed: the floor.",
                "attribution": "Question 2: share of blocks charged to a thread that did not submit.",
                "free_timing": "Question 3: free lag ECDF and jobs alive (time-weighted distribution)."}
    for q in headline.QUESTIONS:
        fig = study.figure(q.key)
        if fig is not None:
            sections.append(f'<h3>{html.escape(q.title)}</h3>'
                            + _figure_html(out, fig, f"headline_{q.key}", "headline-figure", q.key, captions[q.key]))
    sections.append("</section>")
    sections += _detail_sections(study, out)
    appendix = ['<section id="appendix"><h2>Appendix</h2>']
    if len(study.not_ok):
        appendix.append("<h3>Runs not counted</h3><p class='lead'>Bundles whose capture did not end with status ok: "
                        "listed, never measured or averaged in.</p>")
        appendix.append(page.plain_table(study.not_ok, {"run_id": "run", "status": "status", "reason": "reason",
                                                        "bundle": "bundle"}, limit=200))
    listing = "".join(f"<li class='path'>{html.escape(str(b))}</li>" for b in study.bundles)
    appendix.append(f"<details><summary>{len(study.bundles)} bundle(s) measured (paths)</summary><ul>{listing}</ul></details>")
    if notebooks:
        appendix.append("<p>The notebooks, executed over the same bundles, with their code: "
                        + ", ".join(f"<a href='notebooks/{n}.html'>{n}</a>" for n in notebooks) + ".</p>")
    appendix.append("<p class='muted'>Raw numbers (ns, unrounded): <code>tables/*.csv</code> and "
                    "<code>tables/*.json</code>.</p></section>")
    labels = sorted(set(study.runs["source"]) & set(NOT_MEASURED)) if len(study.runs) else []
    banners = [("Rows marked " + " / ".join(labels) + " are NOT measurements: they show what aiotrace computes "
                "for FreeBSD, which it cannot run here.") if labels else "",
               D33144_UAF_WARNING + "." if d33144_reap_in(study.runs) else ""]
    index = Path(out_dir) / "index.html"
    index.write_text(page.page("aiotrace report", sources_note(study.runs, study.not_ok, warnings=False), banners,
                               sections + appendix))
    return index


def build_report(paths: Iterable[str | Path], out: str | Path, notebooks: Iterable[str] | None = NOTEBOOKS,
                 log: Callable[[str], None] | None = None) -> Path:
    """Write the report over the bundles under ``paths`` to ``out``; returns index.html."""
    import nbformat

    log = log or (lambda msg: None)
    paths = [str(p) for p in paths]
    study = Study.load(paths)
    if not study.bundles:
        raise AnalysisError("no run bundles with status ok under " + ", ".join(map(str, paths))
                            + (f" ({len(study.not_ok)} not ok: "
                               + "; ".join(f"{r.run_id}: {r.status}" for r in study.not_ok.head(3).itertuples()) + ")"
                               if len(study.not_ok) else ""))
    out = Path(out).resolve()
    if out.exists() and not (out / "index.html").exists() and any(out.iterdir()):
        raise AnalysisError(f"{out} exists and is not an aiotrace report; choose another --out")
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        notebooks = tuple(notebooks or ())
        if notebooks:
            (tmp / "notebooks").mkdir()
        for name in notebooks:
            log(f"executing notebook {name}")
            out_nb = tmp / "notebooks" / f"{name}.ipynb"
            execute_notebook(name, {"bundles": [str(b) for b in study.bundles], "out_dir": str(tmp)}, out_nb, tmp)
            nb = nbformat.read(str(out_nb), as_version=4)
            (tmp / "notebooks" / f"{name}.html").write_text(_html(nb, exclude_input=False))
        log("writing index.html")
        write_page(study, tmp, notebooks)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "index.html"


def show_headline(study: Study, key: str) -> pd.DataFrame:
    """In a notebook: display question ``key``'s headline table as the report shows it; returns it."""
    from IPython.display import HTML, Markdown, display

    from tracer.view import headline, page

    q = {q.key: q for q in (*headline.QUESTIONS, headline.BASICS)}[key]
    t = study.headline(key)
    display(Markdown(f"**{q.title}.** {q.lead}"))
    if len(t):
        display(HTML(f"<style>{page.CSS.replace('body{', '.x{')}</style>"
                     + page.headline_table(t, q.metrics, q.text, key, _colors(t))))
    else:
        display(Markdown("_No run in these bundles can answer this._"))
    return t


def show_table(frame: pd.DataFrame, columns: dict[str, str], numeric: Iterable[str] = (), limit: int = 40) -> None:
    """In a notebook: display already formatted values as the report's detail tables do."""
    from IPython.display import HTML, display

    from tracer.view import page

    display(HTML(page.plain_table(frame, columns, numeric=numeric, limit=limit)))

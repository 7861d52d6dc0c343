"""`aiotrace report`: execute the notebooks with papermill over bundles or sweeps, and write

    <out>/index.html              every notebook, executed, inputs hidden (nbconvert HTML, figures embedded)
    <out>/notebooks/<name>.ipynb  the executed notebooks, inputs kept
    <out>/notebooks/<name>.html   each one as HTML with its inputs
    <out>/figures/*.png           every figure
    <out>/tables/*.csv, *.json    every table

The report is built in ``<out>.partial-<pid>`` and renamed into place when complete. Notebooks run
in a kernel of the current interpreter (a kernelspec written to a private JUPYTER_PATH entry), so
the report works in a fresh venv without any `jupyter kernelspec install`.

The helpers below (:func:`collect`, :class:`Outputs`) are what the notebooks call; no number is
computed in a notebook, only here and in the analysis modules.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from tracer.analysis.requires import FIXTURE_LABEL, MODEL_LABEL, bundle_name, can_run
from tracer.errors import AnalysisError

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = ("overview", "syscall_amplification", "rusage_attribution", "async_free_timing")
KERNEL_NAME = "aiotrace-python"


class Outputs:
    """Where a notebook saves its figures (PNG) and tables (CSV + JSON)."""

    def __init__(self, out_dir: str | Path):
        self.root = Path(out_dir)
        (self.root / "figures").mkdir(parents=True, exist_ok=True)
        (self.root / "tables").mkdir(parents=True, exist_ok=True)

    def table(self, frame: pd.DataFrame, name: str) -> pd.DataFrame:
        frame.to_csv(self.root / "tables" / f"{name}.csv", index=False)
        frame.to_json(self.root / "tables" / f"{name}.json", orient="records", indent=1, default_handler=str)
        return frame

    def figure(self, fig, name: str):
        fig.savefig(self.root / "figures" / f"{name}.png", dpi=110)
        return fig


def collect(models: Iterable[Any], fn: Callable, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run analysis ``fn`` on every model that has what it needs; returns (results concatenated,
    skipped: run_id, analysis, missing)."""
    frames, skipped = [], []
    for m in models:
        ok, missing = can_run(fn, m)
        if ok:
            frames.append(fn(m, **kwargs))
        else:
            skipped.append({"run_id": bundle_name(m), "analysis": fn.__name__, "missing": missing})
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return result, pd.DataFrame(skipped, columns=["run_id", "analysis", "missing"])


def first_per_configuration(models: Iterable[Any], limit: int | None = None) -> list[Any]:
    """The first model of each configuration (same provenance apart from run id and losses), at
    most ``limit`` of them: for per-run plots that would be unreadable with every repetition."""
    from tracer.analysis.compare import CONFIG_COLUMNS
    from tracer.analysis.requires import provenance

    seen, out = set(), []
    for m in models:
        p = provenance(m)
        key = tuple(str(p.get(c)) for c in (*CONFIG_COLUMNS, "kernel"))
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out[:limit] if limit else out


# The D33144 tree's own bug (macdice/freebsd @33a47467, sys/kern/vfs_aio.c aio_bio_done_notify):
# in REAP mode it calls aio_free_entry(job) and then writes job->td, i.e. freed memory.
D33144_UAF_WARNING = (
    "WARNING, D33144 tree (macdice/freebsd @33a47467): in REAP mode aio_bio_done_notify calls "
    "aio_free_entry(job), which returns the kaiocb to its UMA zone, and then reads job->td to drop "
    "td_aio_count and writes job->td = NULL: a use-after-free. Under load `reap` on that kernel may "
    "corrupt kernel memory; treat its figures as suspect until the patch is fixed")


def runs_d33144_reap(prov: dict[str, Any]) -> bool:
    """True for a FreeBSD REAP run: REAP exists only on the D33144 tree, and only REAP jobs take
    the aio_free_entry path in aio_bio_done_notify."""
    return prov.get("os") == "FreeBSD" and prov.get("mode") == "reap"


def sources_note(models: Iterable[Any]) -> str:
    """A sentence saying which runs are fixtures, which are measured, and which lost events."""
    from tracer.analysis.requires import provenance

    prov = pd.DataFrame([provenance(m) for m in models])
    if prov.empty:
        return "No runs."
    parts = []
    n_fix = int((prov["source"] == FIXTURE_LABEL).sum())
    if n_fix:
        parts.append(f"{n_fix} run(s) are a {FIXTURE_LABEL}: hand-written FreeBSD fixture bundles that show "
                     "what the analyses compute, not measurements of a FreeBSD kernel")
    n_model = int((prov["source"] == MODEL_LABEL).sum())
    if n_model:
        parts.append(f"{n_model} run(s) come from the {MODEL_LABEL}: `aiotrace simulate` ran the FreeBSD modes "
                     "against a user-space model of FreeBSD's AIO and kqueue rules (stock and D33144/D33271 "
                     "kernels, workloads/fbsd_model); they show what those rules imply, not what a FreeBSD "
                     "kernel measures")
    if n_fix + n_model < len(prov):
        parts.append(f"{len(prov) - n_fix - n_model} run(s) measured on {', '.join(sorted(set(prov['os'].dropna())))}")
    if any(runs_d33144_reap(row) for row in prov.to_dict("records")):
        parts.append(D33144_UAF_WARNING)
    lossy = prov[prov["lossy"]]
    if len(lossy):
        parts.append("tracer losses in " + "; ".join(f"{r.run_id} ({r.loss_note})" for r in lossy.itertuples()))
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


def _index_notebook(executed: list[Path], bundles: list[Path], note: str):
    import nbformat

    index = nbformat.v4.new_notebook()
    listing = "\n".join(f"- `{b}`" for b in bundles)
    index.cells.append(nbformat.v4.new_markdown_cell(
        "# aiotrace report\n\n" + note + "\n\n**Bundles**\n\n" + listing +
        "\n\nExecuted notebooks with their code: `notebooks/`; figures: `figures/*.png`; tables: "
        "`tables/*.csv` and `tables/*.json`."))
    for path in executed:
        nb = nbformat.read(str(path), as_version=4)
        index.cells.extend(c for c in nb.cells if "parameters" not in c.get("metadata", {}).get("tags", [])
                           and "injected-parameters" not in c.get("metadata", {}).get("tags", []))
    index.metadata = nbformat.read(str(executed[0]), as_version=4).metadata if executed else index.metadata
    return index


def build_report(paths: Iterable[str | Path], out: str | Path, notebooks: Iterable[str] = NOTEBOOKS,
                 log: Callable[[str], None] | None = None) -> Path:
    """Execute the notebooks over the bundles under ``paths``; write the report to ``out``."""
    import nbformat

    from tracer.analysis.compare import bundle_paths, load_models

    log = log or (lambda msg: None)
    bundles = [p.resolve() for p in bundle_paths(paths)]
    if not bundles:
        raise AnalysisError("no run bundles with status ok under " + ", ".join(map(str, paths)))
    note = sources_note(load_models(bundles))
    out = Path(out).resolve()
    if out.exists() and not (out / "index.html").exists() and any(out.iterdir()):
        raise AnalysisError(f"{out} exists and is not an aiotrace report; choose another --out")
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "notebooks").mkdir(parents=True)
    try:
        executed = []
        for name in notebooks:
            log(f"executing {name}")
            out_nb = tmp / "notebooks" / f"{name}.ipynb"
            execute_notebook(name, {"bundles": [str(b) for b in bundles], "out_dir": str(tmp)}, out_nb, tmp)
            nb = nbformat.read(str(out_nb), as_version=4)
            (tmp / "notebooks" / f"{name}.html").write_text(_html(nb, exclude_input=False))
            executed.append(out_nb)
        (tmp / "index.html").write_text(_html(_index_notebook(executed, bundles, note), exclude_input=True))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "index.html"

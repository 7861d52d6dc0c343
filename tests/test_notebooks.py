"""The notebooks, run for real: each one on a fresh kernel with nbclient, once as a newcomer opens
it (no parameter: the FreeBSD bundles shipped in the repo) and once with one path string; and the
report executing all four with papermill over every FreeBSD fixture bundle, whose tables must show
what the FreeBSD side is about (REAP against the legacy modes, stock against D33271)."""
from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from conftest import REPO
from tracer.view import report
from tracer.analysis.requires import MODEL_LABEL
from tracer.base.errors import AnalysisError

FIXTURES = REPO / "tests" / "data" / "freebsd"


def test_stored_notebooks_have_no_outputs_and_a_parameters_cell():
    for name in report.NOTEBOOKS:
        nb = nbformat.read(str(REPO / "notebooks" / f"{name}.ipynb"), as_version=4)
        nbformat.validate(nb)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and "bundles = None" in tagged[0].source and "out_dir = None" in tagged[0].source
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name} has stored outputs"


def test_notebook_parameters_take_one_path_or_a_list():
    assert report.as_paths("/a/b") == ["/a/b"] and report.as_paths(["/a", Path("/b")]) == ["/a", "/b"]
    assert report.as_paths(None) == report.as_paths([]) == [str(FIXTURES)]


def _run(name: str, bundles: str | None, cwd: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.read(str(REPO / "notebooks" / f"{name}.ipynb"), as_version=4)
    if bundles is not None:  # what papermill -p bundles PATH injects: one string
        nb.cells.insert(2, nbformat.v4.new_code_cell(f"bundles = {bundles!r}"))
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


@pytest.mark.slow
def test_every_notebook_runs_on_a_fresh_kernel_with_no_parameter_and_with_one_path(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))  # the kernels inherit it: default out_dir lands here
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    one = str(FIXTURES / "reap")
    jobs = [(name, b) for name in report.NOTEBOOKS for b in (None, one)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(lambda job: (job, _run(job[0], job[1], cwd)), jobs))
    for (name, bundles), nb in done:
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"], (name, bundles)
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert images, (name, bundles)
        text = json.dumps([o.get("data", {}).get("text/html", "") for o in outputs])
        assert MODEL_LABEL in text, (name, bundles)
        if bundles is not None:
            assert "aio-poll" not in text, name  # the one path was read as one path, not its characters
    assert list(cwd.iterdir()) == []  # nothing written to the current directory
    for name in report.NOTEBOOKS:
        assert list((cache / "aiotrace" / "notebooks" / name / "figures").glob("*.png")), name


def test_report_refuses_a_directory_without_bundles(tmp_path):
    with pytest.raises(AnalysisError, match="neither a run bundle"):
        report.build_report([tmp_path], tmp_path / "report")
    assert not (tmp_path / "report").exists()


@pytest.fixture(scope="module")
def built_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report"
    r = subprocess.run([sys.executable, "-m", "tracer.cli", "report", str(FIXTURES), "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return out, Path(r.stdout.strip())


def test_report_writes_page_notebooks_figures_and_tables(built_report):
    out, index = built_report
    assert index == out / "index.html"
    html = index.read_text()
    for text in ("Syscall amplification", "Per-thread rusage attribution", "Async-free timing", MODEL_LABEL):
        assert text in html, text
    assert html.count('<img class="headline-figure"') == 3 and "data:image/png;base64," in html
    for name in ("headline_amplification", "headline_attribution", "headline_free_timing", "amplification_by_role"):
        assert (out / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    for name in ("runs", "amplification_by_role", "attribution_summary", "comparison", "headline_amplification"):
        assert len(pd.read_csv(out / "tables" / f"{name}.csv")) > 0, name
        assert isinstance(json.loads((out / "tables" / f"{name}.json").read_text()), list)
    for name in report.NOTEBOOKS:
        nb = nbformat.read(str(out / "notebooks" / f"{name}.ipynb"), as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"], name
        assert [o for o in outputs if "image/png" in o.get("data", {})], name
        assert (out / "notebooks" / f"{name}.html").exists()
    assert not list(out.parent.glob(".*.partial-*"))


def test_report_shows_reap_against_every_legacy_freebsd_mode(built_report):
    out, _ = built_report
    roles = pd.read_csv(out / "tables" / "amplification_by_role.csv")
    assert (roles["source"] == MODEL_LABEL).all()
    assert {"reap", "kevent", "aio-poll", "aio-suspend", "waitcomplete", "kevent-error"} <= set(roles["mode"])
    per_mode = roles[roles["role"] == "result"].groupby("mode")["per_io"].max()
    assert per_mode["reap"] == 0  # D33144: the result is in kev.data, no aio_return
    assert per_mode["kevent"] >= 1.0  # stock SIGEV_KEVENT: one aio_return per I/O
    runs = pd.read_csv(out / "tables" / "runs.csv")
    lag = runs.groupby("mode")["free_lag_p50_ns"].max()
    assert lag["reap"] < lag["kevent"]  # REAP frees at completion, stock waits for aio_return
    assert (runs["limit"].dropna() == 256).all()
    head = pd.read_csv(out / "tables" / "headline_free_timing.csv")
    assert head.set_index("mode").loc["reap", "free_lag_p50_ns"].iloc[0].endswith((" ns", " µs", " ms"))


def test_report_shows_stock_freebsd_charging_the_reaper_and_d33271_the_submitter(built_report):
    out, _ = built_report
    summary = pd.read_csv(out / "tables" / "attribution_summary.csv")
    split = summary[(summary["os"] == "FreeBSD") & (summary["threads"] == "split")]
    stock = split[~split["kernel"].str.contains("D33271")]
    patched = split[split["kernel"].str.contains("D33271")]
    assert len(stock) and len(patched)
    assert (stock["share_not_submitter"] == 1.0).all() and (stock["charged_thread"] == "reaper").all()
    assert (patched["share_not_submitter"] == 0.0).all() and (patched["charged_thread"] == "submitter").all()
    head = pd.read_csv(out / "tables" / "headline_attribution.csv")
    stock_rows = head[head["configuration"].str.contains("split") & head["configuration"].str.contains("stock")]
    assert (stock_rows["share_not_submitter"] == "100 %").all() and (stock_rows["charged_thread"] == "reaper").all()

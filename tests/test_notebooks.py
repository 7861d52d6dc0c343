"""The notebooks and the report, run for real: one report over a small fresh Linux sweep (io_uring,
libaio, aio-suspend; 2000 I/Os each, captured with bpftrace or strace) plus every FreeBSD fixture
bundle. One papermill run of the four notebooks keeps this inside its budget (under 4 minutes).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from conftest import REPO, need, tracing_missing
from tracer.analysis import report
from tracer.analysis.requires import MODEL_LABEL
from tracer.errors import AnalysisError

FIXTURES = REPO / "tests" / "data" / "freebsd"
LINUX_MODES = ("io_uring", "libaio", "aio-suspend")
FIGURES = ("overview_latency", "amplification_by_role", "amplification_vs_reap_batch", "attribution_by_thread",
           "free_timing_occupancy",
           "free_timing_histogram", "jobs_alive")


def fixture_bundles() -> list[Path]:
    return sorted(p.parent for p in FIXTURES.glob("*/manifest.json")) + \
        sorted(p.parent for p in FIXTURES.glob("*/*/manifest.json"))


def test_stored_notebooks_have_no_outputs_and_a_parameters_cell():
    for name in report.NOTEBOOKS:
        nb = nbformat.read(str(REPO / "notebooks" / f"{name}.ipynb"), as_version=4)
        nbformat.validate(nb)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and "bundles = []" in tagged[0].source, name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name} has stored outputs"


def test_report_refuses_a_directory_without_bundles(tmp_path):
    with pytest.raises(AnalysisError, match="neither a run bundle"):
        report.build_report([tmp_path], tmp_path / "report")
    assert not (tmp_path / "report").exists()


@pytest.fixture(scope="module")
def linux_sweep(tmp_path_factory):
    from tracer.analysis.sweep import run_sweep
    from workloads.spec import RunSpec

    missing = tracing_missing()
    backend = "bpftrace" if missing is None else "strace"
    need(missing is None or shutil.which("strace") is not None, missing or "strace")
    out = tmp_path_factory.mktemp("sweep")
    base = RunSpec(mode=LINUX_MODES[0], count=2000, file=str(out / "data.dat"), file_size=16 << 20)
    index = run_sweep(base, LINUX_MODES, [32], [1], [8], 1, out / "runs", backend=backend, progress=False)
    assert [r["status"] for r in index["runs"]] == ["ok"] * len(LINUX_MODES), index["runs"]
    return out / "runs"


@pytest.fixture(scope="module")
def built_report(linux_sweep, tmp_path_factory):
    fixtures = fixture_bundles()
    need(bool(fixtures), f"FreeBSD fixture bundles under {FIXTURES}")
    out = tmp_path_factory.mktemp("report") / "report"
    index = report.build_report([linux_sweep, *fixtures], out)
    return out, index, fixtures


def test_report_writes_html_figures_and_tables(built_report):
    out, index, _ = built_report
    html = index.read_text()
    for text in ("Syscall amplification", "Per-thread rusage attribution", "Async-free timing", MODEL_LABEL,
                 *LINUX_MODES):
        assert text in html, text
    for name in FIGURES:
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    for name in ("runs", "amplification_by_role", "attribution_summary", "free_timing", "comparison"):
        assert len(pd.read_csv(out / "tables" / f"{name}.csv")) > 0, name
        assert isinstance(json.loads((out / "tables" / f"{name}.json").read_text()), list)
    for name in report.NOTEBOOKS:
        nb = nbformat.read(str(out / "notebooks" / f"{name}.ipynb"), as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors, name
        assert (out / "notebooks" / f"{name}.html").exists()
    assert not list(out.parent.glob(".*.partial-*"))


def test_report_amplification_on_fresh_linux_captures(built_report):
    out, _, _ = built_report
    roles = pd.read_csv(out / "tables" / "amplification_by_role.csv")
    linux = roles[roles["os"] == "Linux"].pivot_table(index="mode", columns="role", values="per_io")
    assert set(linux.index) == set(LINUX_MODES)
    assert (roles[roles["os"] == "Linux"]["source"] == "measured").all()
    # each engine pays at least its floor: libaio/io_uring one submit call per I/O (batch 1), glibc AIO
    # one pread per I/O in its helper thread (role other)
    assert linux.loc["libaio", "submit"] >= 1.0 and linux.loc["io_uring", "submit"] >= 1.0
    assert linux.loc["aio-suspend", "other"] >= 1.0 and linux.loc["aio-suspend", "submit"] == 0
    threads = pd.read_csv(out / "tables" / "amplification_by_thread.csv")
    posix = threads[(threads["mode"] == "aio-suspend") & (threads["os"] == "Linux")]
    assert posix["tid"].nunique() >= 2  # the glibc helper thread's calls are counted


def test_report_shows_reap_against_every_legacy_freebsd_mode(built_report):
    out, _, fixtures = built_report
    roles = pd.read_csv(out / "tables" / "amplification_by_role.csv")
    fb = roles[roles["os"] == "FreeBSD"]
    assert (fb["source"] == MODEL_LABEL).all()  # the fixtures are runs of the FreeBSD semantics model
    modes = set(fb["mode"])
    assert {"reap", "kevent", "aio-poll", "aio-suspend", "waitcomplete", "kevent-error"} <= modes
    per_mode = fb[fb["role"] == "result"].groupby("mode")["per_io"].max()
    assert per_mode["reap"] == 0  # D33144: the result is in kev.data, no aio_return
    assert per_mode["kevent"] >= 1.0  # stock SIGEV_KEVENT: one aio_return per I/O
    free = pd.read_csv(out / "tables" / "free_timing.csv")
    lag = free[free["os"] == "FreeBSD"].groupby("mode")["p50"].max()
    assert lag["reap"] < lag["kevent"]  # REAP frees at completion, stock waits for aio_return
    assert (free[free["os"] == "FreeBSD"]["limit"] == 256).all()


def test_report_shows_stock_freebsd_charging_the_reaper_and_d33271_the_submitter(built_report):
    out, _, _ = built_report
    summary = pd.read_csv(out / "tables" / "attribution_summary.csv")
    split = summary[(summary["os"] == "FreeBSD") & (summary["threads"] == "split")]
    stock = split[~split["kernel"].str.contains("D33271")]
    patched = split[split["kernel"].str.contains("D33271")]
    assert len(stock) and len(patched)
    assert (stock["share_not_submitter"] == 1.0).all() and (stock["charged_thread_role"] == "reaper").all()
    assert (patched["share_not_submitter"] == 0.0).all() and (patched["charged_thread_role"] == "submitter").all()


def test_perfetto_export_of_fresh_captures(linux_sweep, tmp_path):
    """`aiotrace export --perfetto` on each real bundle: valid JSON, flows paired, tracks monotonic."""
    from test_export_perfetto import check_structure
    from tracer.analysis.compare import bundle_paths

    for bundle in bundle_paths([linux_sweep]):
        out = tmp_path / f"{bundle.name}.json"
        result = subprocess.run([sys.executable, "-m", "tracer.cli", "export", "--perfetto", str(bundle), "-o", str(out)],
                                capture_output=True, text=True, cwd=REPO, timeout=120)
        assert result.returncode == 0, result.stderr
        phases = check_structure(json.loads(out.read_text()))
        assert phases["s"] == 2000 and phases["X"] > 2000 and phases["b"] >= 2000, (bundle.name, phases)

"""The report as users see it: the page in headless Chromium (demo bundles and FreeBSD bundles),
only status-ok runs counted, numbers formatted for people, `compare A B`, `summary`, the model
built once per bundle, the figures drawing every series."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis_frames import make_run
from browser import chromium_missing, inspect
from conftest import IN_CI, REPO, need, tracing_missing
from tracer.analysis import compare
from tracer.view import fmt, headline, report
from tracer.analysis.requires import FIXTURE_LABEL, MODEL_LABEL

FIXTURES = REPO / "tests" / "data" / "freebsd"
AIOTRACE = [sys.executable, "-m", "tracer.cli"]
SCREENS = Path(os.environ.get("AIOTRACE_SCREENSHOTS", "")) if os.environ.get("AIOTRACE_SCREENSHOTS") else None


def _cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(AIOTRACE + [str(a) for a in args], cwd=kw.pop("cwd", REPO), capture_output=True,
                          text=True, timeout=kw.pop("timeout", 600), **kw)


# ------------------------------------------------------------------ the page, in a real browser

@pytest.fixture(scope="module")
def freebsd_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("fbreport") / "report"
    return report.build_report([FIXTURES], out, notebooks=())


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`aiotrace demo`, small: every Linux mode traced at reap batch 1 and 8 (O_DIRECT where the
    filesystem allows), the split-thread attribution runs, and all of them untraced."""
    missing = tracing_missing()
    need(missing is None or shutil.which("strace") is not None, missing or "strace")
    root = tmp_path_factory.mktemp("demo")
    r = _cli("demo", "--count", "400", "--reap-batches", "1,8", "--out", root / "demo",
             "--file", root / "demo" / "demo.dat", "--file-size", "4M")
    assert r.returncode == 0, r.stderr
    return root / "demo", r


def _check_page(index: Path, screenshot: Path, questions=None) -> dict:
    """``questions``: the ones these bundles can answer (default: all three); for the others the
    page must say so in place of the table."""
    need(chromium_missing() is None, chromium_missing() or "")
    seen = inspect(index, screenshot)
    questions = questions or [q.key for q in headline.QUESTIONS]
    assert not seen["console"], seen["console"]
    assert seen["imgs"] and all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in seen["imgs"]), seen["imgs"]
    for q in headline.QUESTIONS:
        if q.key not in questions:
            assert q.title in seen["text"] and "No run in these bundles can answer this" in seen["text"]
            continue
        tables = [t for t in seen["tables"] if t["q"] == q.key]
        figs = [f for f in seen["figs"] if f["q"] == q.key]
        assert tables and tables[0]["rows"] > 0, (q.key, seen["tables"])
        assert figs, (q.key, seen["figs"])
    headline_items = [t["pos"] for t in seen["tables"]] + [f["pos"] for f in seen["figs"]]
    assert seen["details_pos"] > max(headline_items)  # the answers come before any detail
    assert max(t["pos"] for t in seen["tables"]) < min(f["pos"] for f in seen["figs"])  # tables, then figures
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if SCREENS:
        SCREENS.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, SCREENS / screenshot.name)
        shutil.copy(screenshot.with_name(screenshot.stem + "-top.png"), SCREENS / (screenshot.stem + "-top.png"))
    text = seen["text"]
    assert "nan" not in text.split() and "NaN" not in text and "-1 " not in text
    assert "e+0" not in text and "rows ×" not in text  # no raw pandas output
    return seen


def test_freebsd_report_in_chromium(freebsd_report, tmp_path):
    seen = _check_page(freebsd_report, tmp_path / "freebsd-report.png")
    text = seen["text"]
    html = freebsd_report.read_text()
    assert html.index(str(FIXTURES)) > html.index('id="appendix"')  # paths only in the appendix
    assert MODEL_LABEL.upper() in text.upper().split("THE ANSWERS")[0]  # the banner, before any number
    assert "reaper" in text and "submitter" in text and " µs" in text
    assert "IOPS traced / untraced" not in text  # no untraced partner: no probe-effect table


def test_demo_report_in_chromium(demo_run, tmp_path):
    out, r = demo_run
    runs = compare.runs_table(compare.load_models([out]))
    # free timing on Linux needs each I/O's kernel completion joined to it (not in every capture backend)
    answered = [q.key for q in headline.QUESTIONS if runs[q.needs].notna().any()]
    assert {"amplification", "attribution"} <= set(answered)
    seen = _check_page(out / "report" / "index.html", tmp_path / "demo-report.png", answered)
    assert "untraced" in seen["text"] and "IOPS traced / untraced" in seen["text"]


def test_demo_prints_the_headline_tables_and_the_report_path(demo_run):
    from workloads import driver

    out, r = demo_run
    running = [m["mode"] for m in driver.mode_status() if m["available"]]
    table = r.stdout.split("1. Syscall amplification")[1].split("2. Per-thread")[0]
    for mode in running:
        assert f" {mode} " in table, r.stdout
    verified = [line for line in r.stdout.splitlines() if line.startswith("verified:")]
    assert verified and "NOT verified" not in verified[0], r.stdout
    assert r.stdout.strip().splitlines()[-1] == str(out / "report" / "index.html")


def test_demo_sweeps_reap_batch_with_o_direct_and_runs_each_configuration_untraced(demo_run):
    out, _ = demo_run
    ok, not_ok = compare.select_bundles([out / "amplification", out / "amplification-untraced"])
    assert len(not_ok) == 0
    manifests = [json.loads((b / "manifest.json").read_text()) for b in ok]
    traced = {(m["spec"]["mode"], m["spec"]["reap_batch"]) for m in manifests if m["backend"] != "none"}
    untraced = {(m["spec"]["mode"], m["spec"]["reap_batch"]) for m in manifests if m["backend"] == "none"}
    assert traced == untraced and {rb for _, rb in traced} == {1, 8}
    if manifests[0]["features"].get("o_direct"):
        assert all(m["spec"]["direct"] for m in manifests)
    # each io_getevents returns at least reap-batch completions (but the last few): waits per I/O
    # stay under 1/r. (Whether the total then falls with r depends on the device: on this project's
    # VM completions already arrive in bunches at r=1, so libaio's total stays near 1.03.)
    runs = compare.runs_table(compare.load_models([out / "amplification"]))
    libaio = runs[runs["mode"] == "libaio"]
    assert len(libaio) == 2
    for r in libaio.itertuples():
        assert r.wait_per_io <= 1 / r.reap_batch + 4 / 400, (r.reap_batch, r.wait_per_io)


# ------------------------------------------------------------------ only status-ok runs count

def _copy_bundle(src: Path, dst: Path, status: str, reason: str | None) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model-*", "*-v*"))
    man = json.loads((dst / "manifest.json").read_text())
    man.update(status=status, reason=reason, run_id=dst.name)
    (dst / "manifest.json").write_text(json.dumps(man))
    return dst


def test_report_and_compare_count_only_status_ok_bundles(tmp_path):
    src = FIXTURES / "kevent" / "dtrace-single-stock"
    runs = tmp_path / "runs"
    _copy_bundle(src, runs / "a-ok", "ok", None)
    _copy_bundle(src, runs / "b-interrupted", "interrupted", "SIGINT while the workload ran")
    _copy_bundle(src, runs / "c-failed", "failed", "bpftrace exited with status 1")
    _copy_bundle(src, runs / "d-failed", "failed", "the workload was killed by SIGKILL")
    ok, not_ok = compare.select_bundles([runs])
    assert [p.name for p in ok] == ["a-ok"]
    assert sorted(zip(not_ok["run_id"], not_ok["status"])) == [
        ("b-interrupted", "interrupted"), ("c-failed", "failed"), ("d-failed", "failed")]
    study = report.Study.load([runs])
    assert len(study.runs) == 1 and "3 bundle(s) not counted" in study.note()
    assert (study.summary["n"] == 1).all()  # nothing else averaged in
    index = report.build_report([runs], tmp_path / "report", notebooks=())
    html = index.read_text()
    appendix = html.split('id="appendix"')[1]
    for reason in ("SIGINT while the workload ran", "bpftrace exited with status 1", "killed by SIGKILL"):
        assert reason in appendix and reason not in html.split('id="appendix"')[0]
    assert len(pd.read_csv(tmp_path / "report" / "tables" / "runs.csv")) == 1
    r = _cli("compare", runs)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("not counted") == 3 and "(n=1)" in r.stdout


def test_a_manifest_that_is_not_a_run_manifest_is_skipped_with_a_note(tmp_path):
    shutil.copytree(next(FIXTURES.glob("reap/*/manifest.json")).parent, tmp_path / "good")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text("[1, 2]")
    notes = []
    ok, not_ok = compare.select_bundles([tmp_path], note=notes.append)
    assert [p.name for p in ok] == ["good"] and not len(not_ok) and "other" in notes[0]


# ------------------------------------------------------------------ numbers for people

def test_numbers_are_formatted_for_people():
    assert fmt.duration(1.247012e7) == "12.5 ms" and fmt.duration(812) == "812 ns"
    assert fmt.duration(28_800) == "28.8 µs" and fmt.duration(float("nan")) == ""
    assert fmt.count(25675.3) == "25,675" and fmt.count(None) == ""
    assert fmt.num(1.0317) == "1.03" and fmt.num(0.125) == "0.125" and fmt.share(0.371) == "37 %"
    assert fmt.spread(1, np.nan, np.nan, 5, 5, "I/O/s") == ""
    assert fmt.spread(2, np.nan, np.nan, 25000, 26351, "I/O/s") == "range 25,000 – 26,351"
    assert fmt.spread(3, 1.0, 1.1, 0.9, 1.2, "syscalls/I/O") == "95% CI 1.00 – 1.10"


def test_below_three_repetitions_there_is_a_range_and_no_interval():
    runs = compare.runs_table([make_run("kevent", run_id=f"r{i}") for i in range(2)])
    runs["iops"] = [25000.0, 26351.0]
    row = compare.summarize(runs).set_index("metric").loc["iops"]
    assert row["n"] == 2 and np.isnan(row["ci_low"]) and (row["min"], row["max"]) == (25000.0, 26351.0)
    table = headline.table(compare.summarize(runs), runs, headline.BASICS)
    assert table.loc[0, "iops"] == "25,676" and table.loc[0, "iops__spread"] == "range 25,000 – 26,351"


# ------------------------------------------------------------------ compare A B

def test_change_between_two_sweeps_with_a_known_difference():
    a = compare.runs_table([make_run("kevent", reap_batch=8, run_id=f"a{i}") for i in range(4)])
    b = compare.runs_table([make_run("kevent", reap_batch=1, run_id=f"b{i}") for i in range(4)])
    a["iops"], b["iops"] = [100.0, 104.0, 96.0, 100.0], [200.0, 212.0, 188.0, 200.0]
    keys, differ = compare.matching_keys(a, b)
    assert differ == ["reap_batch"] and "mode" in keys
    ch = compare.change(a, b).set_index("metric")
    assert ch.at["wait_per_io", "ratio"] == pytest.approx(8.0)  # 1/1 wait per I/O against 1/8
    assert ch.at["result_per_io", "ratio"] == pytest.approx(1.0)
    iops = ch.loc["iops"]
    assert iops["ratio"] == pytest.approx(2.0) and iops["n_a"] == 4 and iops["n_b"] == 4
    assert iops["ratio_low"] < 2.0 < iops["ratio_high"] and iops["ratio_low"] > 1.5  # excludes "no change"
    two = compare.change(a.head(2), b.head(2)).set_index("metric").loc["iops"]
    assert np.isnan(two["ratio_low"]) and two["ratio_min"] == pytest.approx(200 / 104) and two["ratio_max"] == pytest.approx(212 / 100)


def test_compare_cli_a_b_shows_the_change_and_fits_100_columns():
    r = _cli("compare", FIXTURES / "kevent", FIXTURES / "reap", env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    assert "A and B differ in: mode" in r.stdout and "B/A" in r.stdout
    # the same numbers compare.change computes, formatted: REAP needs no aio_return (x0) and fewer calls
    a = compare.runs_table(compare.load_models([FIXTURES / "kevent"]))
    b = compare.runs_table(compare.load_models([FIXTURES / "reap"]))
    ch = compare.change(a, b).set_index("metric")
    total = ch.loc[["total_per_io"]].iloc[0]
    line = next(x for x in lines if x.startswith("│ total syscalls/I/O"))
    assert fmt.num(total["mean_a"]) in line and fmt.num(total["mean_b"]) in line
    assert f"×{fmt.num(total['ratio'])}" in line and total["ratio"] < 1
    result = next(x for x in lines if x.startswith("│ result syscalls/I/O"))
    assert "×0" in result.split("│")[4]
    assert MODEL_LABEL in r.stdout
    wide = _cli("compare", "--wide", FIXTURES / "kevent", env={**os.environ, "COLUMNS": "220"})
    assert wide.returncode == 0 and max(len(x) for x in wide.stdout.splitlines()) > 100


# ------------------------------------------------------------------ summary BUNDLE

def test_summary_of_one_bundle_like_strace_c():
    from tracer.analysis import amplification
    from tracer.view import summary
    from tracer.model import load_bundle

    bundle = FIXTURES / "kevent" / "dtrace-split-stock"
    r = _cli("summary", bundle)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    m = load_bundle(bundle)
    roles = amplification.by_role(m).set_index("role")
    assert f"{fmt.num(roles.at['total', 'per_io'])} (floor {fmt.num(roles.at['total', 'floor_per_io'])})" in out
    assert "100 %, most to reaper" in out and "p50 " in out  # stock FreeBSD: the reaper is charged
    calls = {line.split("│")[6].strip(): line for line in out.splitlines() if line.count("│") >= 8}
    assert {"kevent", "aio_read", "aio_return", "total"} <= set(calls)
    expected = summary.by_syscall(m).set_index("name")["calls"]
    assert f"│ {fmt.count(expected['aio_return']):>5} │" in calls["aio_return"]
    assert f"│ {fmt.count(expected.sum()):>5} │" in calls["total"]
    assert MODEL_LABEL in out and "nan" not in out
    bad = _cli("summary", REPO / "tests")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


# ------------------------------------------------------------------ the model, built once

def test_each_bundle_model_is_built_once_and_cached(tmp_path):
    from tracer import model

    bundle = shutil.copytree(FIXTURES / "kevent" / "dtrace-split-stock", tmp_path / "b",
                             ignore=shutil.ignore_patterns("model-*"))
    before = model.BUILDS["count"]
    m1 = model.load_bundle(bundle)
    m2 = model.load_bundle(bundle)
    assert m1 is m2 and model.BUILDS["count"] == before + 1
    model._MEMO.clear()  # a new process: the Parquet cache answers
    m3 = model.load_bundle(bundle)
    assert model.BUILDS["count"] == before + 1
    for t in ("events", "syscalls", "ios", "threads"):
        pd.testing.assert_frame_equal(getattr(m1, t), getattr(m3, t))
    entry = next((bundle / "cache").glob("model-*"))
    (entry / "model.json").write_text("{")  # corrupt: rebuilt and replaced, not re-parsed forever
    model._MEMO.clear()
    model.load_bundle(bundle)
    assert model.BUILDS["count"] == before + 2 and json.loads((entry / "model.json").read_text())
    model._MEMO.clear()
    model.load_bundle(bundle)
    assert model.BUILDS["count"] == before + 2


def test_report_builds_each_model_once(tmp_path):
    from tracer import model

    shutil.copytree(FIXTURES / "reap", tmp_path / "reap", ignore=shutil.ignore_patterns("model-*"))
    before = model.BUILDS["count"]
    report.build_report([tmp_path / "reap"], tmp_path / "report", notebooks=())
    assert model.BUILDS["count"] - before == len(list((tmp_path / "reap").glob("*/manifest.json")))


# ------------------------------------------------------------------ threads and figures

def test_threads_are_named_by_role_and_unknowns_are_blank():
    from tracer.model import thread_names

    th = pd.DataFrame({"tid": [1, 2, 3, 4, 5], "name": ["submitter", "submitter", "iou-wrk-7", "?", pd.NA],
                       "role": ["submitter", "helper", "iou-wrk", "reaper", "other"]})
    assert list(thread_names(th, "Linux", "aio-suspend")) == ["submitter", "glibc AIO helper", "iou-wrk",
                                                             "reaper", "other"]
    assert thread_names(th, "FreeBSD", "kevent")[1] == "aiod"
    from tracer.model import load_bundle

    m = load_bundle(FIXTURES / "kevent" / "dtrace-split-stock")
    assert not (m.threads.select_dtypes("number") == -1).any().any()
    assert m.threads["name"].notna().all()


def test_workload_names_its_threads_submitter_and_reaper(tmp_path):
    from workloads import driver
    from tracer.base.spec import RunSpec

    try:
        driver.engine()
    except Exception as exc:  # noqa: BLE001
        need(False, f"the built engine ({exc})")
    comm = Path("/proc/self/task") / str(threading.get_native_id()) / "comm"
    before = comm.read_text()
    summary = driver.run(RunSpec(mode="aio-suspend", count=64, depth=8, threads="split",
                                 file=str(tmp_path / "d.dat"), file_size=1 << 20))
    names = {t["role"]: t["name"] for t in summary["threads"]}
    assert names["submitter"] == "submitter" and names["reaper"] == "reaper"
    assert comm.read_text() == before  # the calling thread's name is restored


def test_free_lag_figure_draws_every_series_even_a_single_value():
    from tracer.view import figures

    rows = []
    for mode, lag in (("kevent", [28_000.0, 30_000.0, 36_000.0]), ("reap", [1_200.0]), ("waitcomplete", [1_200.0])):
        for i, v in enumerate(lag):
            rows.append({"run_id": mode, "os": "FreeBSD", "mode": mode, "op": "read",
                         "depth": 8, "batch": 1, "reap_batch": 4, "threads": "single", "submit": "single",
                         "direct": True, "kernel_variant": "stock", "backend": "dtrace", "counts_only": False,
                         "source": FIXTURE_LABEL, "free_lag_ns": v, "id": i})
    lags = pd.DataFrame(rows)
    fig = figures.free_timing_overview(lags, pd.DataFrame())
    ax = fig.axes[0]
    drawn = {line.get_color() for line in ax.get_lines() if len(line.get_xdata()) >= 2}
    assert {figures.mode_color(m) for m in ("kevent", "reap", "waitcomplete")} <= drawn
    assert len(set(figures.MODE_COLORS.values())) == len(figures.MODE_COLORS)  # one colour per mode


def test_ci_machine_has_chromium():
    if IN_CI:
        assert chromium_missing() is None, chromium_missing()
    else:
        need(chromium_missing() is None, chromium_missing() or "")


def test_perfetto_export_of_fresh_captures(demo_run, tmp_path):
    """`aiotrace export --perfetto` on each real traced bundle: valid JSON, flows paired, tracks
    monotonic, every thread named (no 'nan')."""
    from test_export_perfetto import check_structure

    out, _ = demo_run
    ok, _ = compare.select_bundles([out / "amplification"])
    for bundle in ok[:3]:
        path = tmp_path / f"{bundle.name}.json"
        r = _cli("export", "--perfetto", bundle, "-o", path, timeout=120)
        assert r.returncode == 0, r.stderr
        trace = json.loads(path.read_text())
        phases = check_structure(trace)
        assert phases["s"] == 400 and phases["X"] > 400 and phases["b"] >= 400, (bundle.name, phases)
        names = [e["args"]["name"] for e in trace["traceEvents"] if e.get("name") == "thread_name"] \
            if isinstance(trace, dict) else [e["args"]["name"] for e in trace if e.get("name") == "thread_name"]
        assert names and not any(n.startswith("nan") for n in names), names
        assert any(n.startswith("submitter") for n in names), names


def test_aggregate_bundles_feed_amplification_marked_counts_only():
    """The low-overhead flavour prints @window_syscalls[tid, nr] counts at exit, no per-call lines:
    amplification comes from those counts, and every row says counts_only."""
    from analysis_frames import Frames
    from tracer.analysis import amplification

    n = 100
    ios = pd.DataFrame({"id": range(n), "op": ["read"] * n, "bytes": [4096] * n, "submit_tid": [7] * n,
                        "submit_ns": [float(i) for i in range(n)], "fetched_ns": [i + 1e3 for i in range(n)]})
    m = Frames(ios=ios, manifest={"os": "Linux", "flavour": "aggregate", "run_id": "agg",
                                  "spec": {"mode": "libaio", "depth": 32, "batch": 1, "reap_batch": 8}})
    # io_submit (209) once per I/O, io_getevents (208) once per 8, futex (202) 3 times
    m.aggregates = pd.DataFrame({"kind": "map", "map": ["@window_syscalls"] * 3 + ["@syscalls"],
                                 "key": ["7,209", "8,208", "8,202", "7,209"], "value": [100.0, 13.0, 3.0, 999.0]})
    roles = amplification.by_role(m).set_index("role")
    assert roles.at["submit", "per_io"] == 1.0 and roles.at["wait", "per_io"] == 0.13
    assert roles.at["other", "syscalls"] == 3 and roles.at["total", "syscalls"] == 116
    assert roles["counts_only"].all()
    assert headline.configuration(compare.run_metrics(m)).endswith("counts only")

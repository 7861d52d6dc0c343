"""The benchmarks in their tiny "smoke" configuration: each module runs end to end (real fio,
real captures, real parsers, a generated bundle) and produces the table rows and ratio columns
bench/results.md is made of. No timing is asserted: speed belongs in `make bench`."""
from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pytest

from conftest import need, tracing_missing

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))


# Each benchmark's smoke result is computed once per module and shared, so any test (including
# the results-file one) can run on its own, in any order.
@pytest.fixture(scope="module")
def fio_result():
    need(tracing_missing() is None, tracing_missing() or "")
    import bench_fio
    return bench_fio.run(smoke=True)


@pytest.fixture(scope="module")
def capture_result():
    need(tracing_missing() is None, tracing_missing() or "")
    import bench_capture
    return bench_capture.run(smoke=True)


@pytest.fixture(scope="module")
def parsers_result():
    import run_all
    return run_all.run_parsers(smoke=True)


@pytest.fixture(scope="module")
def scale_result():
    import bench_scale
    return bench_scale.run(smoke=True)


def _finite_positive(values) -> bool:
    return bool(values) and all(math.isfinite(v) and v > 0 for v in values)


def test_fio_smoke_compares_same_engine_and_counts_syscalls(tracing, fio_result):
    need(shutil.which("fio") is not None, "fio")
    res = fio_result
    (row,) = res["rows"]
    assert (row["ours_mode"], row["fio_engine"], row["batch"], row["reap_batch"]) == ("io_uring", "io_uring", 8, 8)
    assert len(row["ours_iops"]) == len(row["fio_iops"]) == len(row["ratio"]) == row["reps"] == 2
    assert _finite_positive(row["ratio"])
    assert row["ratio"] == pytest.approx([o / f for o, f in zip(row["ours_iops"], row["fio_iops"])])
    # batch 8 on both sides: io_uring_enter once per 8 I/Os; the engine's own count says the same
    sc = row["syscalls"]
    assert 0.1 < sc["ours"]["per_io"] < 0.5 and 0.1 < sc["fio"]["per_io"] < 0.5, sc
    assert sc["ours"]["own_calls_per_io"] == pytest.approx(0.125, abs=0.01)
    assert "io_uring_enter" in sc["ours"]["top"] and "io_uring_enter" in sc["fio"]["top"]
    header = res["markdown"].splitlines()[0]
    for col in ("IOPS ratio ours/fio", "syscalls/IO ours", "syscalls/IO fio"):
        assert col in header
    assert res["markdown"].count("\n| io_uring vs io_uring (32, 8/8) |") == 1


def test_capture_smoke_has_every_condition_and_slowdown(tracing, capture_result):
    need(shutil.which("strace") is not None, "strace")
    import bench_capture

    res = capture_result
    conds = [r["condition"] for r in res["rows"]]
    assert conds == list(bench_capture.CONDITIONS)
    for r in res["rows"]:
        assert _finite_positive(r["iops"]) and _finite_positive(r["slowdown"])
        if r["condition"] == "untraced":
            assert r["slowdown"] == [1.0]
        else:
            assert r["facts"][0]["status"] == "ok" and r["facts"][0]["trace_lines"] > 0
    lines = res["markdown"].split("\n\n")[0].splitlines()
    assert "slowdown vs untraced (x)" in lines[0]
    assert len(lines) == 2 + len(bench_capture.CONDITIONS)
    # what each BPF program costs: one timed run per libbpf flavour, every CQE hook run counted
    assert [c["condition"] for c in res["costs"]] == ["libbpf-aggregate", "libbpf-events"]
    for c in res["costs"]:
        assert c["programs"]["on_iou_complete"][0] == c["ios"] and c["programs"]["on_iou_complete"][1] > 0
    assert res["markdown"].count("**all programs**") == 2


def test_free_lag_smoke_has_a_row_per_linux_mode_and_batch():
    from tracer.capture.backends import BACKENDS
    from tracer.base.spec import LINUX_MODES
    ok, why = BACKENDS["libbpf"].available()
    need(ok, f"the libbpf backend ({why})")
    import bench_free_lag

    res = bench_free_lag.run(smoke=True)
    assert [(r["mode"], r["batch"]) for r in res["rows"]] == [(m, b) for m in LINUX_MODES for b in (1, 8)]
    for r in res["rows"]:
        assert r["status"] == "ok" and r["dropped"] == 0 and r["n"] >= 0.95 * 500
        assert 0 <= r["p50_us"] <= r["p99_us"] <= r["max_us"]
    assert res["markdown"].count("\n|") == 1 + len(res["rows"])


def test_parsers_smoke_reports_every_format_and_both_references(parsers_result):
    res = parsers_result
    formats = [r["format"] for r in res["rows"]]
    assert {"events", "strace", "kdump", "truss", "dtrace"} <= set(formats)
    by = {r["format"]: r for r in res["rows"]}
    assert _finite_positive(by["events"]["ratio"]) and by["events"]["reference"] == "pyarrow read_csv"
    assert _finite_positive(by["strace"]["ratio"]) and by["strace"]["reference"] == "strace-parser"
    assert all(_finite_positive(r["mb_per_s"]) for r in res["rows"])
    assert all(_finite_positive(r["csv_mb_per_s"]) and _finite_positive(r["csv_ratio"]) for r in res["rows"])
    assert res["markdown"].startswith("| format |") and "ratio" in res["markdown"].splitlines()[0]


def test_scale_smoke_builds_the_model_of_every_generated_event(scale_result):
    import bench_scale

    res = scale_result
    rows = res["rows"]
    assert [r["target_events"] for r in rows] == [20_000, 40_000]
    for r in rows:
        assert r["events"] >= r["event_lines"] and r["unparsed"] == 0 and not r["skipped"]
        assert r["ios"] > 0 and r["ios"] % bench_scale.BATCH == 0
        # every analysis ran, each timed
        assert len(r["per_analysis_s"]) == 11 and r["peak_rss_mib"] > r["rss_after_imports_mib"] > 0
    assert "Largest/smallest: events x2.00" in res["markdown"]


def test_results_files_carry_every_ratio(tmp_path, tracing, fio_result, capture_result, parsers_result,
                                        scale_result):
    RESULTS = {"fio": fio_result, "capture": capture_result, "parsers": parsers_result, "scale": scale_result}
    import run_all
    from common import machine_info

    info = machine_info()
    md = run_all.write_markdown(RESULTS, info, {k: 1.0 for k in RESULTS}, smoke=True)
    for key in ("machine", "kernel", "date"):
        assert f"**{key}**: {info[key]}" in md
    ratios = run_all.ratio_lines(RESULTS)
    assert sum("IOPS ours/fio" in x for x in ratios) == 1
    import bench_capture
    assert sum("capture slowdown" in x for x in ratios) == len(bench_capture.CONDITIONS) - 1
    csv = [x for x in ratios if x.startswith("- parser ") and "beside a plain pyarrow CSV read" in x]
    assert sum(x.startswith("- parser ") for x in ratios) - len(csv) == 2  # events vs pyarrow, strace vs strace-parser
    assert len(csv) == len(parsers_result["rows"])  # every format beside the plain CSV read of its bytes
    assert sum(x.startswith("- scale ") for x in ratios) == 1
    png = tmp_path / "results.png"
    run_all.plot(RESULTS, png, info)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

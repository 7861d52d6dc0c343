"""Comparison over repetitions and the sweep index."""
import json
from pathlib import Path

import numpy as np
import pytest

from analysis_frames import make_run
from tracer.analysis import compare
from tracer.capture import sweep
from tracer.base.errors import AnalysisError
from tracer.base.spec import RunSpec


def test_t_table():
    assert compare.t975(1) == 12.706 and compare.t975(30) == 2.042
    assert compare.t975(35) == 2.042 and compare.t975(500) == 1.960 and np.isnan(compare.t975(0))


def test_summary_interval_over_repetitions():
    runs = compare.runs_table([make_run("kevent", run_id=f"r{i}") for i in range(3)])
    runs["iops"] = [1.0, 2.0, 3.0]
    s = compare.summarize(runs)
    row = s[s["metric"] == "iops"].iloc[0]
    assert row["n"] == 3 and row["mean"] == 2.0 and row["std"] == 1.0
    assert row["ci_low"] == pytest.approx(2 - 4.303 / np.sqrt(3)) and row["ci_high"] == pytest.approx(2 + 4.303 / np.sqrt(3))


def test_summary_keeps_configurations_apart_and_flags_losses():
    ms = [make_run("kevent", reap_batch=1, run_id="a"), make_run("kevent", reap_batch=8, run_id="b", dropped=3)]
    s = compare.summarize(compare.runs_table(ms))
    wait = s[s["metric"] == "wait_per_io"].set_index("reap_batch")
    assert wait.at[1, "mean"] == 1.0 and wait.at[8, "mean"] == 0.125
    assert not wait.at[1, "lossy"] and wait.at[8, "lossy"] and np.isnan(wait.at[8, "ci_low"])


def test_bundle_paths_refuses_what_is_not_a_bundle(tmp_path):
    with pytest.raises(AnalysisError, match="neither a run bundle"):
        compare.bundle_paths([tmp_path])


def _fake_bundle_runner(calls, fail_key=None):
    """Stands in for the capture layer in tests of the index logic: makes a directory with a
    manifest.json per run, as capture does."""
    def run(spec, backend, out):
        key = sweep.run_key(spec.mode, spec.depth, spec.batch, spec.reap_batch, 0)
        calls.append(spec)
        name = f"b{len(calls)}-{spec.mode}-r{spec.reap_batch}"
        (out / name).mkdir()
        (out / name / "manifest.json").write_text("{}")
        if fail_key and key.startswith(fail_key):
            raise KeyboardInterrupt
        return "ok", name, None
    return run


def test_sweep_skips_invalid_combinations_and_resumes(tmp_path):
    base = RunSpec(mode="io_uring", count=10)
    calls = []
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(base, ["io_uring", "libaio"], [8], [1], [1, 4, 16], 1, tmp_path,
                        runner=_fake_bundle_runner(calls, fail_key="libaio-q8-b1-r4"), progress=False)
    index = json.loads((tmp_path / "sweep.json").read_text())
    status = {r["key"]: r["status"] for r in index["runs"]}
    assert status["io_uring-q8-b1-r16-0"] == "skipped" and status["libaio-q8-b1-r4-0"] == "interrupted"
    assert sum(s == "ok" for s in status.values()) == 3
    calls2 = []
    index = sweep.run_sweep(base, ["io_uring", "libaio"], [8], [1], [1, 4, 16], 1, tmp_path,
                            runner=_fake_bundle_runner(calls2), progress=False)
    assert [(c.mode, c.reap_batch) for c in calls2] == [("libaio", 4)]
    assert all(r["status"] in ("ok", "skipped") for r in index["runs"])
    assert len(compare.bundle_paths([tmp_path])) == 4


def test_sweep_refuses_a_directory_of_another_spec(tmp_path):
    sweep.run_sweep(RunSpec(mode="io_uring", count=10), ["io_uring"], [8], [1], [1], 1, tmp_path,
                    runner=_fake_bundle_runner([]), progress=False)
    with pytest.raises(AnalysisError, match="count differ"):
        sweep.run_sweep(RunSpec(mode="io_uring", count=20), ["io_uring"], [8], [1], [1], 1, tmp_path,
                        runner=_fake_bundle_runner([]), progress=False)


def test_bundle_paths_finds_nested_bundles_and_skips_partial_ones(tmp_path):
    from tracer.analysis.compare import bundle_paths
    fixtures = Path(__file__).parent / "data" / "freebsd"
    found = bundle_paths([fixtures])
    assert len(found) == len(list(fixtures.rglob("manifest.json"))) > 6
    real_manifest = next(fixtures.rglob("manifest.json")).read_text()
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "manifest.json").write_text(real_manifest)
    (tmp_path / ".x.partial").mkdir()
    (tmp_path / ".x.partial" / "manifest.json").write_text(real_manifest)
    assert bundle_paths([tmp_path]) == [tmp_path / "a" / "b"]

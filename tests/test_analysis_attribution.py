"""Per-thread rusage attribution on hand-laid model tables."""
import numpy as np
import pandas as pd
import pytest

from analysis_frames import make_run, typed
from tracer.analysis import attribution
from tracer.base.errors import AnalysisError


def test_stock_freebsd_charges_the_reaper():
    per = attribution.by_thread(make_run("kevent", threads="split", charge="reaper", n=64))
    s = attribution.summarize(per).iloc[0]
    assert s["share_not_submitter"] == 1.0 and s["charged_thread_role"] == "reaper"
    reaper = per.set_index("tid").loc[102]
    assert reaper["submitted_blocks"] == 0 and reaper["charged_blocks"] == 64  # one operation per read
    assert reaper["charged_not_submitted"] and reaper["charge_source"] == "traced"


def test_d33271_charges_the_submitter():
    per = attribution.by_thread(make_run("reap", threads="split", charge="submitter", n=64))
    s = attribution.summarize(per).iloc[0]
    assert s["share_not_submitter"] == 0.0 and s["verdict"].startswith("submitter charged")
    sub = per.set_index("tid").loc[101]
    assert sub["submitted_blocks"] == sub["charged_blocks"] == 64  # FreeBSD: operations, not bytes / 512


def test_linux_helper_thread_charged_through_proc_io():
    """glibc AIO: the helper thread (not run by the workload) does the pread; its /proc io counts."""
    m = make_run("aio-suspend", os_name="Linux", threads="split", charge="submitter", n=10, fixture=False)
    m.events = typed("events")  # no ru_charge on Linux
    th = m.threads.copy()
    th["inblock"] = [0, 0]
    th["io_read_bytes"] = [0, 0]
    helper = typed("threads", {"tid": [555], "name": ["python"], "role": ["helper"], "inblock": [-1],
                               "oublock": [-1], "utime_ns": [0], "stime_ns": [0], "nvcsw": [-1], "nivcsw": [-1],
                               "io_read_bytes": [40960], "io_write_bytes": [0]})
    m.threads = pd.concat([th, helper], ignore_index=True)
    per = attribution.by_thread(m).set_index("tid")
    assert per.at[555, "charge_source"] == "proc_io" and per.at[555, "charged_blocks"] == 80
    assert per.at[101, "charge_source"] == "rusage" and per.at[101, "charged_blocks"] == 0
    assert attribution.summarize(per.reset_index()).iloc[0]["share_not_submitter"] == 1.0


def test_no_charge_anywhere_says_so():
    m = make_run("kevent", n=8)
    m.events = typed("events")
    m.threads = m.threads.assign(inblock=0, oublock=0)
    s = attribution.summarize(attribution.by_thread(m)).iloc[0]
    assert np.isnan(s["share_not_submitter"]) and "no blocks charged" in s["verdict"]


def test_attribution_needs_a_thread_record():
    m = make_run()
    m.threads = typed("threads")
    with pytest.raises(AnalysisError, match="table 'threads'"):
        attribution.by_thread(m)


def test_rusage_units_are_per_os_and_never_bytes_over_512_on_freebsd():
    """Issue 10, defect 6: FreeBSD ru_inblock counts block I/O operations (vfs_bio.c: one per buffer,
    read-ahead included), so the submitted side is the I/O count, not bytes / 512; Linux stays in
    512-byte blocks. The unit is a column of every row and of the summary."""
    from tracer.model import RUSAGE_UNITS

    fb = attribution.by_thread(make_run("kevent", os_name="FreeBSD", threads="split", n=32))
    assert set(fb["charge_unit"]) == {RUSAGE_UNITS["FreeBSD"]} == {"block I/O operations"}
    sub = fb.set_index("tid").loc[101]
    assert sub["submitted_blocks"] == sub["submitted_ios"] == 32
    assert sub["submitted_blocks"] != 32 * 4096 / 512
    assert fb["proc_io_blocks"].isna().all()
    lx = attribution.by_thread(make_run("libaio", os_name="Linux", threads="split", charge="submitter", n=32,
                                        fixture=False))
    assert set(lx["charge_unit"]) == {"512-byte blocks"}
    assert lx.set_index("tid").loc[101, "submitted_blocks"] == 32 * 4096 / 512
    both = attribution.summarize(pd.concat([fb, lx], ignore_index=True))
    assert set(both["charge_unit"]) == {"block I/O operations", "512-byte blocks"}


def test_freebsd_fixture_bundles_are_attributed_in_operations():
    """On every FreeBSD bundle (whatever its numbers): submitted = I/O count, unit = operations."""
    from pathlib import Path

    from tracer.analysis.compare import load_models

    models = load_models([Path(__file__).parent / "data" / "freebsd"])
    assert models
    for m in models:
        per = attribution.by_thread(m)
        assert set(per["charge_unit"]) == {"block I/O operations"}, m.manifest.get("run_id")
        assert (per["submitted_blocks"] == per["submitted_ios"]).all()
        assert m.rusage_unit == "block I/O operations"


def test_attribution_figure_labels_each_unit(tmp_path):
    from tracer.view import figures

    fb = attribution.by_thread(make_run("kevent", os_name="FreeBSD", threads="split", n=16))
    lx = attribution.by_thread(make_run("libaio", os_name="Linux", threads="split", charge="submitter", n=16,
                                        fixture=False))
    fig = figures.attribution_bars(pd.concat([fb, lx], ignore_index=True))
    labels = {ax.get_ylabel() for ax in fig.axes}
    assert labels == {"block I/O operations", "512-byte blocks"}, labels
    fig.savefig(tmp_path / "attribution.png")

"""Every FreeBSD completion mode, run through `aiotrace simulate` on the FreeBSD kernel-semantics model
(workloads/fbsd_model: NOT a measurement) on both kernels, across threads single/split, reap batch
1/4/32 and submit single/lio. The expectations are the modes' floors (DESIGN.md modes table) and
the kernels' rusage rules (vfs_aio.c kern_aio_return vs D33271's aio_complete), not the model's
output."""
from __future__ import annotations

import itertools

import pytest

from conftest import need_module  # (also puts the repository on sys.path)
from tracer.model import load_bundle
from tracer.base.spec import RunSpec

need_module("workloads._fbsd_model", "the FreeBSD model extension (pip install -e .)")

from tracer.base.errors import SpecError  # noqa: E402
from tracer.simulate import MODEL_LABEL, simulate  # noqa: E402

N, DEPTH, BS, LIO_BATCH = 64, 32, 4096, 8
MODES = ("aio-poll", "aio-suspend", "waitcomplete", "kevent", "kevent-error", "reap")
RUNS = [(mode, kernel) for mode in MODES for kernel in ("stock", "d33144") if (mode, kernel) != ("reap", "stock")]
VARIANTS = list(itertools.product(("single", "split"), (1, 4, 32), ("single", "lio")))
# calls per I/O of each role that the mode needs, exactly (None: not fixed by the mode)
RESULT = {"aio-poll": 1, "aio-suspend": 1, "waitcomplete": 0, "kevent": 1, "kevent-error": 1, "reap": 0}
STATUS = {"aio-poll": None, "aio-suspend": None, "waitcomplete": 0, "kevent": 0, "kevent-error": 1, "reap": 0}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fbsd-model") / "aiotrace.dat")


def _spec(mode, threads, reap_batch, submit, data_file, **kw):
    return RunSpec(mode=mode, depth=DEPTH, reap_batch=reap_batch, count=N, bs=BS, file=data_file,
                   file_size=1 << 20, threads=threads, submit=submit,
                   batch=LIO_BATCH if submit == "lio" else 1, **kw)


@pytest.mark.parametrize("mode,kernel", RUNS, ids=lambda v: str(v))
def test_every_freebsd_mode_runs_on_the_model_at_its_floor(mode, kernel, data_file, tmp_path):
    for threads, reap_batch, submit in VARIANTS:
        where = f"{mode}/{kernel}/{threads}/r{reap_batch}/{submit}"
        run = simulate(_spec(mode, threads, reap_batch, submit, data_file), kernel, tmp_path)
        m = load_bundle(run.bundle, cache=False)
        assert m.manifest["model"]["label"] == MODEL_LABEL and MODEL_LABEL in m.manifest["kernel"]
        assert m.summary["model"]["label"] == MODEL_LABEL and len(m.unparsed) == 0, where
        # every I/O verified exactly once: the engine's record, and one queued + one freed kernel job each
        assert m.summary["verified"] is True and m.summary["ios"] == N, where
        assert sorted(m.ios["id"]) == list(range(N)) and (m.ios["result"] == BS).all(), where
        ev = m.events
        w0, w1 = m.window
        inside = ev[(ev["ts_ns"] >= w0) & (ev["ts_ns"] <= w1)]
        for kind in ("job_queue", "job_done", "job_free"):
            assert (inside["ev"] == kind).sum() == N, (where, kind)
        # the kernel side joins to the right I/O: queued, done, freed in that order, fetched after done
        ios = m.ios
        assert (ios["kernel_done_ns"] >= ios["submit_ns"]).all() and (ios["freed_ns"] >= ios["kernel_done_ns"]).all()
        assert (ios["fetched_ns"] >= ios["kernel_done_ns"]).all(), where
        # syscalls per I/O by role (traced, in the window)
        sc = m.syscalls[m.syscalls["in_window"]]
        roles = sc["role"].value_counts().reindex(["submit", "wait", "status", "result"], fill_value=0)
        assert roles["submit"] == (N if submit == "single" else N // LIO_BATCH), where
        assert roles["result"] == RESULT[mode] * N, where
        if STATUS[mode] is not None:
            assert roles["status"] == STATUS[mode] * N, where
        else:
            assert roles["status"] >= N, where  # at least one aio_error per I/O
        if mode == "waitcomplete":
            assert roles["wait"] == N, where  # one completion per call
        if mode in ("kevent", "kevent-error", "reap"):
            kev = sc[sc["name"] == "kevent"]
            assert 1 <= roles["wait"] <= N and (kev["ret"] >= 1).all(), where  # each call reaps >= 1
            assert kev["ret"].sum() == N, where  # and no completion twice (EV_ONESHOT / REAP)
        if mode == "reap":
            assert not sc["name"].isin(["aio_return", "aio_error"]).any(), where
        # rusage: stock charges whoever reaps (aio_return/aio_waitcomplete), D33271 the submitter at completion
        ru = inside[inside["ev"] == "ru_charge"]
        charged = ru[ru["a0"] + ru["a1"] > 0]
        assert charged["a0"].sum() == N, where  # one block operation per 4 KiB read in the model
        if kernel == "stock":
            assert set(charged["name"]) <= {"aio_return", "aio_waitcomplete"}, where
            assert set(charged["tid"]) == set(ios["reap_tid"]), where
        else:
            assert set(charged["name"]) == {"aio_complete"} and set(charged["tid"]) == set(ios["submit_tid"]), where
        th = m.threads.set_index("role")
        expect_role = ("both" if threads == "single" else ("reaper" if kernel == "stock" else "submitter"))
        assert th.loc[expect_role, "inblock"] == N and th["inblock"].sum() == N, where


def test_reap_on_the_stock_kernel_is_refused_in_one_line(data_file, tmp_path, capsys):
    from tracer.cli import main

    rc = main(["simulate", "--kernel", "stock", "-m", "reap", "-n", "8", "-f", data_file, "--file-size", "1M",
               "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "AIO_KEVENT_FLAG_REAP" in err and "EINVAL" in err and MODEL_LABEL in err
    assert not any((tmp_path / "runs").glob("*"))  # nothing half-written
    with pytest.raises(SpecError, match="lacks review D33144"):
        simulate(_spec("reap", "single", 1, "single", data_file), "stock", tmp_path)


def test_kevent_modes_deliver_each_completion_once_at_reap_batch_4(data_file, tmp_path):
    """Defect 4: with level-triggered EVFILT_AIO knotes (flags 0), kqueue_scan re-queues each
    delivered knote until aio_return frees the job, so the loop's second kevent() of a batch
    returned the same completions again ("duplicated completion")."""
    for mode in ("kevent", "kevent-error"):
        run = simulate(_spec(mode, "split", 4, "single", data_file), "stock", tmp_path)
        m = load_bundle(run.bundle, cache=False)
        kev = m.events[(m.events["ev"] == "job_notify") & (m.events["name"] == "filt_aio")]
        assert m.summary["verified"] and len(m.ios) == N
        # ONESHOT knotes are never asked again at scan time (hint 0): only KNOTE's call (hint 1)
        assert (kev["a1"] == 1).all() and len(kev) == N


def test_reap_ios_join_their_own_kernel_events_not_the_probe_s(data_file, tmp_path):
    """Defect 5: the REAP availability probe's aio_read is traced (it runs after the tracer
    attached), so numbering queue markers from 0 gave I/O k the kernel times of I/O k+1."""
    run = simulate(_spec("reap", "single", 1, "single", data_file, ), "d33144", tmp_path)
    m = load_bundle(run.bundle, cache=False)
    q = m.events[m.events["ev"] == "job_queue"]
    assert len(q) == N + 1 and q["ts_ns"].iloc[0] < m.window[0]  # the probe is in the trace, before the window
    ios = m.ios
    assert ios["kernel_done_ns"].notna().all() and (ios["kernel_done_ns"] >= ios["submit_ns"]).all()
    assert (ios["notified_ns"] <= ios["fetched_ns"]).all() and (ios["freed_ns"] <= ios["fetched_ns"]).all()
    assert m.summary["wait_calls"] == int((m.syscalls["in_window"] & (m.syscalls["name"] == "kevent")).sum())


def test_the_reap_probe_s_rusage_charge_is_not_the_run_s(data_file, tmp_path):
    """The availability probe's read is charged (D33271: to the submitter) before the window opens;
    the attribution counts only the run's own blocks."""
    from tracer.analysis import attribution

    run = simulate(_spec("reap", "split", 4, "single", data_file), "d33144", tmp_path)
    m = load_bundle(run.bundle, cache=False)
    ru = m.events[m.events["ev"] == "ru_charge"]
    assert ru["a0"].sum() > N  # the probe's charge is in the trace
    summary = attribution.summarize(attribution.by_thread(m)).iloc[0]
    assert summary["charged_blocks"] == N and summary["share_not_submitter"] == 0.0


def test_a_full_model_record_drops_events_and_says_so(data_file, tmp_path):
    """Like a tracer's buffer: beyond its limit the model drops events and the bundle is lossy
    (aio-poll spinning on aio_error under load makes millions of calls)."""
    from tracer.analysis.requires import provenance

    run = simulate(_spec("aio-poll", "single", 1, "single", data_file), "stock", tmp_path, record_limit=200)
    m = load_bundle(run.bundle, cache=False)
    assert m.manifest["losses"]["dropped_events"] > 0 and m.losses["dropped_events"] > 0
    assert "record full" in m.manifest["losses"]["messages"][0] and provenance(m)["lossy"]
    assert m.summary["verified"]  # the run itself is whole; only its trace is not

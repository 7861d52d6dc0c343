"""Run bundles and the manifest schema: ids, temp-then-rename, never two captures in one directory."""
from __future__ import annotations

import json
import threading

import pytest

from tracer.capture import manifest as mf
from tracer.capture.bundle import PARTIAL_SUFFIX, RUN_ID_RE, Bundle, make_run_id
from tracer.capture.probe import filesystem_of, o_direct_works
from tracer.base.errors import CaptureError


def test_run_id_has_utc_stamp_mode_backend_and_random_suffix():
    run_id = make_run_id("io_uring", "bpftrace", when=0)
    m = RUN_ID_RE.match(run_id)
    assert m and m.group(1) == "19700101T000000Z" and m.group(2) == "io_uring" and m.group(3) == "bpftrace"
    assert len({make_run_id("libaio", "strace", when=0) for _ in range(50)}) == 50


def test_bundle_lives_under_a_hidden_partial_name_until_finished(tmp_path):
    b = Bundle.create(tmp_path / "runs", "libaio", "strace")
    assert b.path.name == f".{b.run_id}{PARTIAL_SUFFIX}"
    assert sorted(p.name for p in b.path.iterdir()) == ["cache", "raw", "record"]
    assert list((tmp_path / "runs").glob("*/manifest.json")) == []
    with pytest.raises(CaptureError, match="no manifest.json"):
        b.finish()  # nothing goes under a final name until complete
    (b.path / "manifest.json").write_text("{}")
    final = b.finish()
    assert final == tmp_path / "runs" / b.run_id and final.is_dir() and not any(
        p.name.endswith(PARTIAL_SUFFIX) for p in (tmp_path / "runs").iterdir())


def test_two_captures_never_share_a_directory(tmp_path):
    bundles, errors = [], []

    def make():
        try:
            bundles.append(Bundle.create(tmp_path, "io_uring", "bpftrace"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(16)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and len({b.path for b in bundles}) == 16


def test_finish_refuses_to_replace_an_existing_bundle(tmp_path):
    b = Bundle.create(tmp_path, "io_uring", "strace")
    (b.path / "manifest.json").write_text("{}")
    b.final_path.mkdir()  # someone else's (empty) directory: rename(2) would silently replace it
    with pytest.raises(CaptureError, match="already exists"):
        b.finish()
    assert (b.path / "manifest.json").exists()


def test_unwritable_out_dir_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CaptureError, match="not a directory|cannot create"):
        Bundle.create(tmp_path / "file", "io_uring", "strace")


def _manifest(**over):
    m = {
        "schema": mf.SCHEMA, "run_id": "20260101T000000Z-io_uring-strace-abcdef", "os": "Linux",
        "kernel": "6.18", "machine": "x86_64", "cpus": 2, "hostname": "h", "backend": "strace",
        "backend_reason": "requested", "backend_version": "strace -- version 6.1", "flavour": "events",
        "command": [["strace", "-p", "1"]], "tracer_env": {}, "attach": "pid", "spec": {"mode": "io_uring"},
        "features": {}, "fs": {}, "clocks": {}, "started_at": "t", "ended_at": "t", "duration_s": 0.5,
        "released_at_monotonic_ns": None, "exit": {"workload": 0, "tracer": 0}, "status": "ok", "reason": None,
        "losses": {"dropped_events": 0, "messages": [], "allowed": False},
        "raw": {"trace": "raw/strace.txt", "format": "strace"}, "workload_pid": 1, "tracer_pid": 2,
        "summary": None, "fixture": False, "aiotrace_version": "0.1.0",
    }
    m.update(over)
    return m


def test_manifest_schema_documents_every_key_it_checks():
    for key in mf.KEYS:
        assert f"\n{key} " in mf.__doc__, f"{key} is not documented in the manifest docstring table"


def test_manifest_round_trips_and_rejects_bad_values(tmp_path):
    mf.write_manifest(tmp_path, _manifest())
    assert mf.read_manifest(tmp_path)["backend"] == "strace"
    assert json.loads((tmp_path / "manifest.json").read_text())["schema"] == "aiotrace.manifest/1"
    for bad, match in ((dict(status="done"), "status"), (dict(cpus=True), "cpus"),
                       (dict(raw={"trace": "x", "format": "csv"}), "raw.format"),
                       (dict(command=["strace -p 1"]), "argv lists"), (dict(schema="v0"), "schema")):
        with pytest.raises(CaptureError, match=match):
            mf.validate_manifest(_manifest(**bad))
    m = _manifest()
    del m["losses"]
    with pytest.raises(CaptureError, match="lacks keys: losses"):
        mf.validate_manifest(m)
    assert not list(tmp_path.glob(".manifest*.tmp"))


def test_filesystem_and_o_direct_probes_are_real(tmp_path):
    fs = filesystem_of(tmp_path / "not-yet.dat")
    assert fs["type"] and fs["mountpoint"] and fs["path"].endswith("not-yet.dat")
    works, detail = o_direct_works(tmp_path / "not-yet.dat")
    assert works in (True, False) and ("O_DIRECT" in detail)
    assert list(tmp_path.iterdir()) == []  # the scratch file is gone

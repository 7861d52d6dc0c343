"""Bad input, for every subcommand: one line `aiotrace: error: ...`, exit 2, no traceback, nothing
half-written. Covers numbers the C engine cannot hold, click's own usage errors, outputs that
cannot be written (read-only directory, full disk), bad manifests and cache entries."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, need
from tracer import cli

FIXTURE = REPO / "tests" / "data" / "freebsd" / "kevent" / "dtrace-single-stock"


def one_line_error(capsys, argv: list[str], expect: str) -> str:
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc == 2, (argv, out, err)
    # progress lines ("aiotrace: executing ...") may come first; the error is one line, the last
    assert lines and lines[-1].startswith("aiotrace: error: "), lines
    assert all(l.startswith("aiotrace: ") and "error" not in l for l in lines[:-1]), lines
    assert expect in lines[-1], lines[-1]
    assert "Traceback" not in err and out == ""
    return lines[-1]


@pytest.fixture
def bundle(tmp_path) -> Path:
    """A private copy of a fixture bundle (its cache is written)."""
    dst = tmp_path / "bundle"
    shutil.copytree(FIXTURE, dst)
    for entry in (dst / "cache").glob("*"):  # entries other tests (or older parsers) left in tests/data
        if entry.name != ".keep":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return dst


# -- every subcommand ------------------------------------------------------------------------

# One case of input the command itself refuses (beyond an unknown option), per subcommand.
BAD_VALUE = {
    "run": (["-m", "libaio", "--seed", "-5"], "--seed -5 is out of range"),
    "modes": (["extra-argument"], "unexpected extra argument"),
    "capture": (["-m", "libaio", "--bs", "inf", "--dry-run"], "--bs: not a whole number of bytes"),
    "doctor": (["extra-argument"], "unexpected extra argument"),
    "freebsd-kit": (["--out", "{tmp}/kit", "--depth", "0"], "--depth 0 is out of range"),
    "simulate": (["--kernel", "stock", "-m", "kevent", "--seed", "-5", "--out", "{tmp}/sim"], "--seed -5 is out of range"),
    "parse": (["/dev/null"], "is a character device"),
    "summary": (["{tmp}"], "not a run bundle"),
    "sweep": (["--backend", "foo", "--out", "{tmp}/s"], "unknown backend 'foo'"),
    "report": (["{tmp}", "--out", "{tmp}/r"], "neither a run bundle"),
    "compare": (["{tmp}"], "neither a run bundle"),
    "export": (["--perfetto", "{tmp}", "-o", "{tmp}/x.json"], "not a run bundle"),
    "demo": (["--count", "0", "--out", "{tmp}/d"], "--count 0 is out of range"),
}


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_subcommand_gives_one_line_and_exit_2_for_an_unknown_option(capsys, command):
    one_line_error(capsys, [command, "--no-such-option"], "No such option")


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_subcommand_gives_one_line_and_exit_2_for_a_bad_value(capsys, tmp_path, command):
    if command not in BAD_VALUE:
        pytest.fail(f"add a bad-value case for the new subcommand {command!r} to BAD_VALUE")
    args, expect = BAD_VALUE[command]
    one_line_error(capsys, [command, *[a.format(tmp=tmp_path) for a in args]], expect)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_click_usage_error_is_one_line(capsys):
    line = one_line_error(capsys, ["run", "-m", "bogus"], "'bogus' is not one of")
    assert "aiotrace run" in line and "--help" in line
    # click lists the choices of a missing option on several lines: folded into one
    one_line_error(capsys, ["simulate", "-m", "reap"], "Missing option '--kernel'. Choose from: stock, d33144")


# -- numbers the C side cannot hold, checked before any tracer or workload starts ---------------

@pytest.mark.parametrize("args,expect", [
    (["--seed", "-5"], "--seed -5 is out of range"),
    (["--bs", "inf"], "--bs: not a whole number of bytes: 'inf'"),
    (["--bs", "nan"], "--bs: not a whole number of bytes"),
    (["--file-size", "1e30"], "--file-size 1000000000000000019884624838656 is out of range"),
    (["--duration", "nan"], "--duration must be a positive number"),
    (["--duration", "inf"], "--duration must be a positive number"),
    (["-q", "1099511627776"], "--depth 1099511627776 is out of range (1 to 4294967295)"),
    (["-n", str(2 ** 70)], f"--count {2 ** 70} is out of range"),
    (["-q", "0"], "--depth 0 is out of range"),
])
@pytest.mark.parametrize("command", ["run", "capture"])
def test_numbers_the_engine_cannot_hold_are_refused_up_front(capsys, tmp_path, monkeypatch, command, args, expect):
    monkeypatch.chdir(tmp_path)
    started = []
    monkeypatch.setattr("tracer.capture.runner.run_capture", lambda *a, **k: started.append(a))
    monkeypatch.setattr("workloads.driver.run", lambda *a, **k: started.append(a))
    one_line_error(capsys, [command, "-m", "libaio", "--file", str(tmp_path / "d.dat"), *args], expect)
    assert started == [] and list(tmp_path.iterdir()) == []


def test_sweep_validates_the_backend_before_any_run(capsys, tmp_path, monkeypatch):
    runs = []
    monkeypatch.setattr("tracer.capture.sweep.capture_one", lambda *a: runs.append(a))
    one_line_error(capsys, ["sweep", "--backend", "foo", "--out", str(tmp_path / "s")], "unknown backend 'foo'")
    assert runs == [] and not (tmp_path / "s").exists()


# -- outputs that cannot be written ---------------------------------------------------------------

def _mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory nobody can write into: a read-only tmpfs as root (root ignores modes), else mode 0555."""
    path = tmp_path / "ro"
    if os.geteuid() == 0:
        _mount_tmpfs(path, "ro,size=64k")
        yield path
        subprocess.run(["umount", str(path)], check=False)
    else:
        path.mkdir()
        path.chmod(0o555)
        yield path
        path.chmod(0o755)


@pytest.fixture
def full_dir(tmp_path):
    """A directory on a filesystem with no space left (a 16 KiB tmpfs filled up; needs root)."""
    need(os.geteuid() == 0, "root (mount a tiny tmpfs)")
    path = tmp_path / "full"
    _mount_tmpfs(path, "size=16k")
    with open(path / "filler", "wb") as fh:
        try:
            fh.write(b"\0" * (1 << 20))
        except OSError:
            pass
    yield path
    subprocess.run(["umount", str(path)], check=False)


def _output_cases(base: Path, bundle: Path, data: Path) -> dict[str, tuple[list[str], Path]]:
    return {
        "export -o": (["export", "--perfetto", str(bundle), "-o", str(base / "x.json")], base / "x.json"),
        "compare --csv": (["compare", str(bundle), "--csv", str(base / "x.csv")], base / "x.csv"),
        "run --record": (["run", "-m", "aio-poll", "-n", "50", "--file", str(data), "--file-size", "1M",
                          "--record", str(base / "rec")], base / "rec"),
        "sweep --out": (["sweep", "--modes", "aio-poll", "--backend", "strace", "--out", str(base / "sw")], base / "sw"),
        "report --out": (["report", str(bundle), "--out", str(base / "rep")], base / "rep"),
    }


@pytest.mark.parametrize("case", ["export -o", "compare --csv", "run --record", "sweep --out", "report --out"])
@pytest.mark.parametrize("where", ["readonly", "full"])
def test_unwritable_output_is_one_line_naming_path_and_errno(capsys, request, tmp_path, bundle, case, where):
    if case == "sweep --out":
        need(shutil.which("strace") is not None, "strace")
    base = request.getfixturevalue("readonly_dir" if where == "readonly" else "full_dir")
    argv, target = _output_cases(base, bundle, tmp_path / "d.dat")[case]
    line = one_line_error(capsys, argv, f"cannot write {target}")
    assert ("EROFS" in line or "EACCES" in line) if where == "readonly" else "ENOSPC" in line
    assert sorted(p.name for p in base.iterdir()) == ([] if where == "readonly" else ["filler"])


@pytest.mark.parametrize("case", ["export -o", "compare --csv", "run --record"])
def test_disk_filling_up_mid_write_leaves_nothing_half_written(capsys, monkeypatch, tmp_path, bundle, case):
    """The early check passes, then the write itself fails with ENOSPC."""
    def enospc(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr("json.dump", enospc)  # export
    monkeypatch.setattr(pd.DataFrame, "to_csv", enospc)  # compare --csv
    monkeypatch.setattr(pd.DataFrame, "to_parquet", enospc)  # run --record
    out = tmp_path / "out"
    out.mkdir()
    argv, target = _output_cases(out, bundle, tmp_path / "d.dat")[case]
    line = one_line_error(capsys, argv, f"cannot write {target}")
    assert "ENOSPC" in line and list(out.iterdir()) == []


# -- bundles, manifests and cache entries ---------------------------------------------------------

@pytest.mark.parametrize("content,expect", [("{not json", "unreadable JSON"), ("[1, 2]", "not a JSON object (a JSON list)"),
                                            ('{"name": "web app"}', "not an aiotrace manifest")])
@pytest.mark.parametrize("command", ["parse", "compare", "export"])
def test_a_bad_manifest_is_one_line_in_parse_compare_and_export(capsys, tmp_path, bundle, content, expect, command):
    (bundle / "manifest.json").write_text(content)
    argv = {"parse": ["parse", str(bundle)], "compare": ["compare", str(bundle)],
            "export": ["export", "--perfetto", str(bundle), "-o", str(tmp_path / "x.json")]}[command]
    one_line_error(capsys, argv, expect)


def test_compare_skips_an_unrelated_manifest_below_a_directory_with_a_note(capsys, tmp_path, bundle):
    other = tmp_path / "webapp"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"name": "web app", "icons": []}))
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "manifest.json").write_text("[]")
    assert cli.main(["compare", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert f"aiotrace: note: skipped {other / 'manifest.json'}: not an aiotrace run bundle manifest" in err
    assert "list/manifest.json" in err and "kevent" in out


@pytest.mark.parametrize("kind", ["fifo", "devnull", "missing"])
def test_parse_names_what_a_non_file_is(capsys, tmp_path, kind):
    path = {"fifo": tmp_path / "pipe", "devnull": Path("/dev/null"), "missing": tmp_path / "nope"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    expect = {"fifo": "is a FIFO (named pipe), not a trace file", "devnull": "is a character device, not a trace file",
              "missing": "no such file"}[kind]
    one_line_error(capsys, ["parse", str(path)], expect)


def _cache_entry(bundle: Path) -> Path:
    from tracer.model import load_bundle
    load_bundle(bundle)
    entries = [p for p in (bundle / "cache").iterdir() if not p.name.startswith((".", "model-"))]
    assert len(entries) == 1, entries
    return entries[0]


def test_a_meta_json_lacking_keys_is_reparsed_not_a_keyerror(bundle):
    from tracer.parse import parse_file
    entry = _cache_entry(bundle)
    (entry / "meta.json").write_text(json.dumps({"format": "dtrace"}))
    trace = bundle / json.loads((bundle / "manifest.json").read_text())["raw"]["trace"]
    first = parse_file(trace)
    assert first.cached is False and len(first.events) > 0
    assert parse_file(trace).cached is True  # the entry was replaced


def test_a_corrupt_cache_entry_is_replaced_after_one_reparse(bundle):
    from tracer.parse import parse_file
    entry = _cache_entry(bundle)
    (entry / "events.parquet").write_bytes(b"not parquet")
    trace = bundle / json.loads((bundle / "manifest.json").read_text())["raw"]["trace"]
    assert parse_file(trace).cached is False
    again = parse_file(trace)
    assert again.cached is True and len(again.events) > 0
    assert [p.name for p in (bundle / "cache").iterdir() if not p.name.startswith((".", "model-"))] == [entry.name]
    assert not [p for p in (bundle / "cache").iterdir() if p.name.startswith(".") and p.name != ".keep"]

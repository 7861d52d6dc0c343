"""`aiotrace freebsd-kit`: the kit's run.sh passes `sh -n` and shellcheck, its command lines are
`aiotrace capture --dry-run`'s, and run end to end (FreeBSD tools replaced by stubs that replay
the FreeBSD fixture traces) it writes bundles that the model, compare and report read."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import need, zig_available
from tracer.capture import kit
from tracer.capture.manifest import read_manifest
from tracer.cli import cli

FREEBSD = Path(__file__).parent / "data" / "freebsd"
SPEC = ["--depth", "8", "--reap-batch", "4", "--count", "16", "--file-size", "4M", "--direct"]


@pytest.fixture(scope="module")
def kit_dir(tmp_path_factory):
    need(zig_available() or kit.FREEBSD_WORKLOAD.is_file(), "the ziglang package (pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("kit") / "fbsd-kit"
    r = CliRunner().invoke(cli, ["freebsd-kit", "--out", str(out), *SPEC])
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1] == str(out)
    return out


def test_kit_holds_the_workload_scripts_and_a_template_per_run(kit_dir):
    from workloads import elfcheck

    assert elfcheck.read_elf(str(kit_dir / kit.WORKLOAD_REL)).freebsd_version is not None
    assert {p.name for p in (kit_dir / "dscripts" / "freebsd").glob("*.d")} == {
        "aiotrace-events.d", "aiotrace-agg.d", "aiotrace-ru-d33271.d"}
    assert len(list((kit_dir / "templates").glob("*.manifest.json"))) == 6 * 3
    assert os.access(kit_dir / "run.sh", os.X_OK)


def test_run_sh_is_posix_sh_and_shellcheck_clean(kit_dir):
    r = subprocess.run(["sh", "-n", str(kit_dir / "run.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    need(shutil.which("shellcheck"), "shellcheck (Debian package shellcheck; make sysdeps)")
    r = subprocess.run(["shellcheck", "-s", "sh", str(kit_dir / "run.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def _kit_block(script: str, mode: str, backend: str) -> list[str]:
    block = script.split(f"# {mode} x {backend}\n", 1)[1].split("\n\n", 1)[0]
    lines = [ln.strip() for ln in block.splitlines()]
    start = lines.index(f"begin_run {mode} {backend}") + 1
    cmds = [ln for ln in lines[start:] if not ln.startswith(("rc=", "end_run", "else", "fi", "say", "}"))]
    return [c.replace(kit.WRAP_REDIRECT.strip(), "").replace(kit.POST_STDERR.strip(), "").rstrip() for c in cmds]


@pytest.mark.parametrize("backend", kit.KIT_BACKENDS)
@pytest.mark.parametrize("mode", ["aio-poll", "kevent", "reap"])
def test_kit_command_lines_are_capture_dry_run_lines(kit_dir, mode, backend):
    r = CliRunner().invoke(cli, ["capture", "--backend", backend, "-m", mode, *SPEC, "--dry-run", "--out", "runs"])
    assert r.exit_code == 0, r.output
    dry = r.output.splitlines()
    bundle = next(ln for ln in dry if ln.startswith("# bundle: ")).split()[2]
    expected = [ln for ln in dry if not ln.startswith(("#", "mkdir "))]
    got = [c.replace(kit.PARTIAL_VAR, bundle) for c in _kit_block((kit_dir / "run.sh").read_text(), mode, backend)]
    assert got == expected


def test_kit_refuses_a_non_empty_out_and_leaves_nothing_behind(tmp_path):
    out = tmp_path / "kit"
    out.mkdir()
    (out / "x").write_text("")
    r = CliRunner().invoke(cli, ["freebsd-kit", "--out", str(out)])
    assert r.exit_code != 0 and "not an empty directory" in str(r.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kit"]


# ---- end to end with stub FreeBSD tools --------------------------------------------------------

STUB_TOOLS = {
    "uname": """case "$1" in -s) echo FreeBSD;; -r) echo 14.1-RELEASE;; -m) echo amd64;; -n) echo fbsd-host;;
-sr) echo FreeBSD 14.1-RELEASE;; *) echo FreeBSD fbsd-host 14.1-RELEASE GENERIC amd64;; esac""",
    "sysctl": """case "$*" in "-n hw.ncpu") echo 2;; "-n vfs.aio.max_aio_queue_per_proc") echo 256;;
"-n kern.boottime") echo "{ sec = 1764547200, usec = 250000 } Mon Dec  1 00:00:00 2026";;
vfs.aio) echo "vfs.aio.max_aio_queue_per_proc: 256"; echo "vfs.aio.max_aio_per_proc: 32";; *) exit 1;; esac""",
    "kldstat": "exit 0",
    "kldload": "exit 0",
    # replay the fixture of the mode named in the command line
    "dtrace": """case "$1" in -l) exit 0;; -e) exit 1;; -V) echo "dtrace: Sun D 1.13"; exit 0;; esac
out=""; cmd=""
while [ $# -gt 0 ]; do case "$1" in -o) out=$2; shift;; -c) cmd=$2; shift;; esac; shift; done
mode=$(echo "$cmd" | sed 's/.*--mode \\([a-z-]*\\).*/\\1/')
cp "$(ls "$FIXTURES/$mode"/dtrace-*/raw/events.txt | head -n 1)" "$out"
echo "mode=$mode ios=16 pid=4242 reap_supported=$STUB_REAP"
""",
    "ktrace": """out=""; while [ $# -gt 0 ]; do case "$1" in -f) out=$2; shift;; --mode) mode=$2; shift;; esac; shift; done
echo "$mode" > "$out"; echo "mode=$mode ios=16 pid=4243 reap_supported=$STUB_REAP\"""",
    "kdump": """while [ $# -gt 0 ]; do case "$1" in -f) f=$2; shift;; esac; shift; done
cat "$(ls "$FIXTURES/$(cat "$f")"/ktrace-*/raw/kdump.txt | head -n 1)\"""",
    "truss": """out=""; while [ $# -gt 0 ]; do case "$1" in -o) out=$2; shift;; --mode) mode=$2; shift;; esac; shift; done
cp "$(ls "$FIXTURES/$mode"/truss-*/raw/truss.txt | head -n 1)" "$out"; echo "mode=$mode ios=16 pid=4244 reap_supported=$STUB_REAP\"""",
}
STUB_WORKLOAD = """if [ "$1" = --modes ]; then
  if [ "$STUB_REAP" = 1 ]; then printf 'reap\\tyes\\n'; else printf 'reap\\tno\\tthis kernel refuses AIO_KEVENT_FLAG_REAP (EINVAL): it lacks review D33144\\n'; fi
fi"""


def _stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize("reap", [0, 1])
def test_run_sh_writes_bundles_that_the_model_and_report_read(kit_dir, tmp_path, reap):
    work = tmp_path / "kit"
    shutil.copytree(kit_dir, work)
    _stub(work / kit.WORKLOAD_REL, STUB_WORKLOAD)  # the FreeBSD binary cannot run here
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STUB_TOOLS.items():
        _stub(bin_dir / name, body)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FIXTURES": str(FREEBSD), "STUB_REAP": str(reap)}
    r = subprocess.run(["sh", str(work / "run.sh"), "runs"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    out = work / "runs"
    bundles = sorted(p for p in out.iterdir() if (p / "manifest.json").is_file())
    assert not list((out / ".failed").iterdir()), r.stderr
    assert len(bundles) == (6 if reap else 5) * 3, r.stderr
    assert ("REAP: the running kernel refused" in r.stderr) == (not reap)
    for b in bundles:
        m = read_manifest(b)  # validates against the schema
        assert re.fullmatch(rf"\d{{8}}T\d{{6}}Z-{m['spec']['mode']}-{m['backend']}-[0-9a-f]{{6}}", b.name)
        assert m["run_id"] == b.name and m["status"] == "ok" and m["fixture"] is False and m["kit"] is True
        assert m["features"]["reap_supported"] is bool(reap)
        assert all(f"/.{b.name}.partial/raw/" in " ".join(c) for c in m["command"][:1])
        assert m["raw"]["lines"] > 0 and json.loads((b / "record" / "summary.json").read_text())["ios"] == 16
    from tracer.analysis import compare

    models = compare.load_models([out])
    rows = compare.runs_table(models)
    assert len(rows) == len(bundles) and rows["total_per_io"].notna().all()

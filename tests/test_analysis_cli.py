"""The analysis commands refuse bad input with one line and exit 2, writing nothing."""
import subprocess
import sys

import pytest

from conftest import REPO


def aiotrace(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tracer.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=120)


@pytest.mark.parametrize("args,message", [
    (["report", "{tmp}", "--out", "{tmp}/r"], "neither a run bundle"),
    (["compare", "{tmp}"], "neither a run bundle"),
    (["sweep", "--modes", "reap", "--out", "{tmp}/s"], "--modes: reap not available on Linux"),
    (["sweep", "--modes", "io_uring", "--reap-batches", "1,x", "--out", "{tmp}/s"], "comma-separated integers"),
    (["sweep", "--modes", "io_uring", "--repeat", "0", "--out", "{tmp}/s"], "--repeat must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = aiotrace(*[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2, result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len([l for l in lines if "error" in l.lower()]) == 1
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()

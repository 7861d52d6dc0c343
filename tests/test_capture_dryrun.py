"""`aiotrace capture --dry-run`: the exact command lines, checked token by token (the FreeBSD ones
are what a FreeBSD user runs by hand), the refusals, and that user strings never reach program text."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, need
from tracer import dscripts
from tracer.capture.bundle import RUN_ID_RE
from tracer.capture.backends import AGGREGATE_BACKENDS, BACKENDS, FREEBSD_WORKLOAD, KTRACE_POINTS, Context
from tracer.base.errors import CaptureError
from tracer.base.spec import RunSpec

WORKLOAD_REL = str(FREEBSD_WORKLOAD.relative_to(REPO))


def dry(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracer.cli", "capture", "--dry-run", "--out", "runs", *args],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=60, cwd=cwd)


def commands(proc: subprocess.CompletedProcess) -> tuple[Path, list[list[str]]]:
    """(bundle dir, shell-split command lines) of a dry run; '#' lines are comments."""
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    bundle = Path(lines[1].split()[2])  # "# bundle: runs/<id> (...)"
    return bundle, [shlex.split(l) for l in lines if l and not l.startswith("#") and not l.startswith("mkdir ")]


SPEC_ARGS = ["--mode", "kevent", "--depth", "16", "--batch", "8", "--count", "5000", "--file", "data/aio.dat"]
SPEC = RunSpec(mode="kevent", depth=16, batch=8, count=5000, file="data/aio.dat")


def test_ktrace_dry_run_is_ktrace_then_kdump(tmp_path):
    bundle, cmds = commands(dry("--backend", "ktrace", *SPEC_ARGS, cwd=tmp_path))
    m = RUN_ID_RE.match(bundle.name)
    assert bundle.parent == Path("runs") and m and m.group(2, 3) == ("kevent", "ktrace")
    out = f"{bundle}/raw/ktrace.out"
    assert cmds == [
        ["ktrace", "-i", "-t", KTRACE_POINTS, "-f", out, WORKLOAD_REL, *SPEC.to_args()],
        ["kdump", "-H", "-T", "-s", "-f", out, ">", f"{bundle}/raw/kdump.txt"],
    ]
    assert KTRACE_POINTS.endswith("+") and set("cstu") <= set(KTRACE_POINTS)  # + brings KTRFAC_STRUCT_ARRAY
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_truss_dry_run(tmp_path):
    bundle, cmds = commands(dry("--backend", "truss", *SPEC_ARGS, cwd=tmp_path))
    assert cmds == [["truss", "-f", "-H", "-D", "-d", "-o", f"{bundle}/raw/truss.txt", WORKLOAD_REL, *SPEC.to_args()]]


@pytest.mark.parametrize("flavour,script,raw,opts", [
    ("events", "dscripts/freebsd/aiotrace-events.d", "events.txt",
     ["bufsize=32m", "switchrate=20hz", "dynvarsize=16m", "strsize=32"]),
    ("aggregate", "dscripts/freebsd/aiotrace-agg.d", "agg.txt",
     ["bufsize=4m", "switchrate=10hz", "dynvarsize=16m", "aggsize=4m", "strsize=32"]),
])
def test_dtrace_dry_run(tmp_path, flavour, script, raw, opts):
    extra = ["--aggregate"] if flavour == "aggregate" else []
    bundle, cmds = commands(dry("--backend", "dtrace", *extra, *SPEC_ARGS, cwd=tmp_path))
    xs = [f"-x {o}" for o in opts]
    expected = ["dtrace", "-o", f"{bundle}/raw/{raw}", "-q", *" ".join(xs).split(),
                "-c", " ".join([WORKLOAD_REL, *SPEC.to_args()]), "-s", script]
    assert cmds == [expected]
    assert (REPO / script).is_file()


def test_linux_dry_runs_show_the_held_workload_and_the_attach(tmp_path):
    bundle, cmds = commands(dry("--backend", "bpftrace", "--mode", "io_uring", "--count", "100", cwd=tmp_path))
    workload, tracer = cmds
    assert workload[1:3] == ["-m", "workloads"] and workload[3:-4] == RunSpec(mode="io_uring", count=100).to_args()
    assert workload[-4:] == ["--hold", "--record", f"{bundle}/record", "--json"]
    n_env = next(i for i, t in enumerate(tracer) if not re.match(r"^[A-Z_]+=", t))
    env = dict(t.split("=", 1) for t in tracer[:n_env])
    pages = int(env["BPFTRACE_PERF_RB_PAGES"])
    assert pages >= 1024 and pages & (pages - 1) == 0  # bpftrace wants a power of two
    argv = tracer[n_env:]
    assert Path(argv[0]).name == "bpftrace" and argv[1:5] == ["-B", "line", "-p", "$PID"]
    assert argv[5] == str(dscripts.SCRIPTS[("Linux", "events")]) and argv[6] == "$PID"
    assert argv[-4:-2] == ["2>", f"{bundle}/raw/tracer.stderr"] and argv[-2:] == [">", f"{bundle}/raw/events.txt"] \
        or argv[-4:] == [">", f"{bundle}/raw/events.txt", "2>", f"{bundle}/raw/tracer.stderr"]
    _, cmds = commands(dry("--backend", "strace", "--mode", "libaio", cwd=tmp_path))
    assert cmds[1][1:9] == ["-f", "-ttt", "-T", "-y", "-o", cmds[1][6], "-p", "$PID"] and cmds[1][6].endswith("/raw/strace.txt")


@pytest.mark.parametrize("args,message", [
    (["--backend", "strace", "--aggregate", "--mode", "libaio"], "strace has no aggregate flavour"),
    (["--backend", "ktrace", "--mode", "io_uring"], "mode 'io_uring' is not available on this OS"),
    (["--backend", "bpftrace", "--mode", "reap"], "mode 'reap' is not available"),
    (["--backend", "dtrace", "--mode", "kevent", "--file", "my data.dat"], "without blanks"),
])
def test_refusals_are_one_line_errors(tmp_path, args, message):
    proc = dry(*args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stdout == "" and not (tmp_path / "runs").exists()


def test_freebsd_backend_refuses_to_run_on_linux(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tracer.cli", "capture", "--backend", "truss", "--mode", "aio-poll",
                           "--out", "runs"], env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2 and "backend truss runs on FreeBSD, this is Linux" in proc.stderr
    assert not (tmp_path / "runs").exists()


HOSTILE = 'x"};system("id");printf("%s\\n",$1)}{/*\'`$(id)'


def _program_texts(argv: list[str]) -> list[str]:
    """Everything a tracer compiles: script files named in argv, and -e/-n program arguments."""
    texts = []
    for i, tok in enumerate(argv):
        if tok.endswith((".bt", ".d")) and Path(tok).is_file():
            texts.append(Path(tok).read_text())
        if tok in ("-e", "-n") and i + 1 < len(argv):
            texts.append(argv[i + 1])
    return texts


@pytest.mark.parametrize("name,flavour", [(n, "events") for n in sorted(BACKENDS)] +
                         [(n, "aggregate") for n in AGGREGATE_BACKENDS])
def test_hostile_file_value_never_reaches_program_text(tmp_path, name, flavour):
    backend = BACKENDS[name]
    spec = RunSpec(mode="aio-poll", file=HOSTILE + "\n}")
    workload = [str(FREEBSD_WORKLOAD), *spec.to_args()]
    engine = sorted((REPO / "workloads").glob("_engine*.so"))
    ctx = Context(flavour=flavour, raw_dir=tmp_path / "raw", workload_argv=workload, pid=4242,
                  engine_so=engine[0] if engine else None)
    if name == "bpftrace":
        need(bool(engine), "workloads/_engine*.so (built by pip install -e .)")
    if name == "dtrace":  # the newline is a blank: dtrace -c would split it, so it is refused outright
        with pytest.raises(CaptureError, match="without blanks"):
            backend.commands(ctx)
        ctx.workload_argv = [str(FREEBSD_WORKLOAD), *RunSpec(mode="aio-poll", file=HOSTILE).to_args()]
    argv = backend.commands(ctx)[0]
    texts = _program_texts(argv)
    assert texts or name in ("strace", "ktrace", "truss", "libbpf")
    if name == "libbpf":  # a compiled program: the value can only be an argv element, and is not one
        assert not any(HOSTILE in t for t in argv)
    for text in texts:
        assert HOSTILE not in text and 'system("id")' not in text
    if name == "bpftrace":  # only the pid and the validated .so path follow the script
        assert argv[-2:] == ["4242", str(engine[0])] and not any(HOSTILE in t for t in argv)
    if name in ("ktrace", "truss"):  # the value is one argv element of the workload, never re-parsed
        assert argv[-len(workload):] == workload


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_dry_run_bundle_comment_lines_quote_out_so_piping_to_a_shell_runs_nothing_extra(backend, tmp_path):
    out = str(tmp_path / "a b;touch PWNED")
    proc = subprocess.run([sys.executable, "-m", "tracer.cli", "capture", "--backend", backend, "--mode",
                           "io_uring" if BACKENDS[backend].os_name == "Linux" else "kevent", "--dry-run",
                           "--out", out], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    bundle_line = next(l for l in proc.stdout.splitlines() if l.startswith("# bundle: "))
    path = shlex.split(bundle_line[len("# bundle: "):])[0]
    assert path.startswith(out + "/") and shlex.quote(path) in bundle_line
    # every line is a comment or a command whose words shlex splits with --out intact
    for line in proc.stdout.splitlines():
        if not line.startswith("#"):
            assert all("PWNED" not in w or w.startswith(out) for w in shlex.split(line)), line


@pytest.mark.parametrize("bad", ["runs\nrm -rf x", "runs\rx", "runs\x1b[2J"])
def test_dry_run_refuses_control_characters_in_out(bad):
    proc = subprocess.run([sys.executable, "-m", "tracer.cli", "capture", "--mode", "io_uring", "--dry-run",
                           "--out", bad], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "control character" in proc.stderr

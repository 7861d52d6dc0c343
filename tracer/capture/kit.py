"""`aiotrace freebsd-kit --out DIR`: a self-contained directory to copy to a FreeBSD host.

    DIR/run.sh                                       POSIX sh, base system tools only
    DIR/workloads/out/aiotrace-workload.x86_64-freebsd   the Zig cross build (make freebsd-build)
    DIR/dscripts/freebsd/*.d                         the D scripts
    DIR/templates/<mode>-<backend>.manifest.json     manifest.json of each run, @KEY@ filled by run.sh
    DIR/README.txt

``sh run.sh [OUT]`` (as root for dtrace) first checks the host: FreeBSD, dtrace loadable and its fbt
probes present (``kldstat``/``kldload``, ``dtrace -l -n``), REAP supported or not (the workload's
``--modes`` runs its one-read REAP probe on a scratch file), the ``vfs.aio`` sysctls. Then it runs
every mode x backend (dtrace, ktrace+kdump, truss) and writes one run bundle per run under OUT
(default ``runs``), in the layout ``aiotrace capture`` writes, which ``aiotrace report OUT`` reads
back on any machine. A failed run's bundle goes to ``OUT/.failed/`` (hidden: never read).

The command lines come from :func:`tracer.capture.dryrun.dry_run_lines`, the function behind
``aiotrace capture --dry-run``, with the bundle path replaced by the shell variable ``$P``: they are
the same commands, by construction and by test. The kit runs inside DIR, as capture runs inside the
repository, so the relative paths (workloads/out/..., dscripts/freebsd/...) are the same too.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tracer import dscripts
from tracer.capture.backends import FREEBSD_WORKLOAD, REPO, Context, get_backend
from tracer.base.errors import CaptureError
from tracer.base.spec import FREEBSD_MODES, RunSpec, spec_from_options

KIT_BACKENDS = ("dtrace", "ktrace", "truss")
BUNDLE_SENTINEL = Path("/AIOTRACE_KIT_OUT")  # stands for OUT in the generated lines
RUN_ID_SENTINEL = "AIOTRACE_KIT_RUN"
PARTIAL_VAR = '"$P"'  # the run's .partial bundle directory in run.sh
WORKLOAD_REL = os.path.relpath(FREEBSD_WORKLOAD, REPO)
# What the script appends to the tracer line (capture writes the same files, tracer/capture/runner.py)
WRAP_REDIRECT = ' > "$P"/raw/workload.stdout 2> "$P"/raw/tracer.stderr'
POST_STDERR = ' 2> "$P"/raw/kdump.stderr'


def kit_specs(**spec_kw) -> list[RunSpec]:
    """One spec per FreeBSD mode, with the given spec options (validated like capture's)."""
    specs = []
    for mode in FREEBSD_MODES:
        spec = spec_from_options(mode=mode, **spec_kw)
        spec.validate(FREEBSD_MODES)
        specs.append(spec)
    return specs


def capture_lines(spec: RunSpec, backend_name: str) -> list[str]:
    """The command lines of ``aiotrace capture --backend NAME --dry-run`` for `spec`, with the
    bundle directory written as ``"$P"`` (comments and mkdir dropped: run.sh makes its own)."""
    from tracer.capture.dryrun import dry_run_lines

    lines = dry_run_lines(spec, get_backend(backend_name), "requested", "events", BUNDLE_SENTINEL)
    bundle = next(ln for ln in lines if ln.startswith("# bundle: ")).split()[2]
    cmds = [ln for ln in lines if not ln.startswith("#") and not ln.startswith("mkdir ")]
    if any(RUN_ID_SENTINEL in c for c in cmds) or not bundle.startswith(str(BUNDLE_SENTINEL) + "/"):
        raise CaptureError("dry-run lines changed shape: the kit cannot place its bundle path")
    return [c.replace(bundle, PARTIAL_VAR) for c in cmds]


def manifest_template(spec: RunSpec, backend_name: str, version: str) -> str:
    """manifest.json of one kit run with @KEY@ placeholders run.sh fills (sed): the static part is
    written here so it is exactly what capture writes (tracer/capture/manifest.py)."""
    backend = get_backend(backend_name)
    raw = Path("@P@") / "raw"
    ctx = Context(flavour="events", raw_dir=raw, workload_argv=[WORKLOAD_REL, *spec.to_args()])
    commands = backend.commands(ctx)
    commands = [[t.replace(str(REPO) + "/", "") for t in argv] for argv in commands]
    trace = backend.trace_path(ctx, commands[0])
    raw_file = os.path.relpath(trace, Path("@P@"))
    m = {
        "schema": "aiotrace.manifest/1", "run_id": "@RUN_ID@", "os": "@OS@", "kernel": "@KERNEL@",
        "machine": "@MACHINE@", "cpus": "@CPUS@", "hostname": "@HOSTNAME@", "backend": backend_name,
        "backend_reason": "requested (aiotrace freebsd-kit run.sh)", "backend_version": "@BACKEND_VERSION@",
        "flavour": "events", "command": commands, "tracer_env": {}, "attach": backend.attach,
        "spec": spec.to_dict(),
        "features": {"reap_supported": "@REAP_SUPPORTED@", "reap_detail": "@REAP_DETAIL@", "d33271": "@D33271@",
                     "o_direct": None,
                     "o_direct_detail": "not probed by the kit", "o_direct_used": spec.direct},
        "fs": {"path": "@FILE_PATH@", "type": None, "mountpoint": None, "source": None},
        "clocks": {"realtime_minus_monotonic_ns": "@RT_MINUS_MONO@",
                   "note": "kern.boottime: FreeBSD's CLOCK_MONOTONIC counts from boot (approximation)"},
        "started_at": "@STARTED_AT@", "ended_at": "@ENDED_AT@", "duration_s": "@DURATION_S@",
        "released_at_monotonic_ns": None,
        "exit": {"workload": None, "tracer": "@TRACER_EXIT@", **({"post": ["@POST_EXIT@"]} if len(commands) > 1 else {})},
        "status": "@STATUS@", "reason": "@REASON@",
        "losses": {"dropped_events": "@DROPPED@", "messages": [], "allowed": False},
        "raw": {"trace": raw_file, "format": backend.raw_format("events"), "stderr": "raw/tracer.stderr",
                "lines": "@LINES@"},
        "workload_pid": "@WORKLOAD_PID@", "tracer_pid": None, "summary": "@SUMMARY@",
        "fixture": False, "aiotrace_version": version, "kit": True,
    }
    text = json.dumps(m, indent=2, sort_keys=True) + "\n"
    # placeholders of numbers, booleans and nullables are written bare: run.sh puts JSON there
    for key in ("CPUS", "REAP_SUPPORTED", "D33271", "RT_MINUS_MONO", "DURATION_S", "TRACER_EXIT", "POST_EXIT", "DROPPED",
                "LINES", "WORKLOAD_PID", "SUMMARY", "REASON", "BACKEND_VERSION"):
        text = text.replace(f'"@{key}@"', f"@{key}@")
    return text


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("aiotrace")
    except PackageNotFoundError:
        return "unknown"


def ensure_workload() -> Path:
    """The FreeBSD cross build: `make freebsd-build` (Zig) when it is missing or older than a
    source, then checked to be a FreeBSD executable (workloads/elfcheck.py)."""
    from workloads import elfcheck

    sources = [*REPO.glob("workloads/*.c"), *REPO.glob("workloads/*.h")]
    stale = not FREEBSD_WORKLOAD.is_file() or any(s.stat().st_mtime > FREEBSD_WORKLOAD.stat().st_mtime for s in sources)
    if stale:
        if shutil.which("make") is None or not (REPO / "Makefile").is_file():
            raise CaptureError(f"no FreeBSD workload at {FREEBSD_WORKLOAD} and no Makefile/make to build it "
                               "(run `make freebsd-build` in the repository)")
        r = subprocess.run(["make", "-s", "freebsd-build", f"PY={sys.executable}"], cwd=REPO,
                           capture_output=True, text=True)
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no message"]
            raise CaptureError(f"make freebsd-build failed: {tail[0]}")
    info = elfcheck.read_elf(str(FREEBSD_WORKLOAD))
    if info.freebsd_version is None:
        raise CaptureError(f"{FREEBSD_WORKLOAD} is not a FreeBSD executable")
    return FREEBSD_WORKLOAD


def _q(text: str) -> str:
    return shlex.quote(text)


def render_script(specs: list[RunSpec]) -> str:
    """run.sh: host checks, then one block per mode x backend (see the module doc)."""
    fbt_probes = " ".join(_q(a) for a in dscripts.dtrace_list_argv("events")[2:])
    addon = os.path.relpath(dscripts.D33271_ADDON, REPO)
    spec0 = specs[0]
    out = [f"""#!/bin/sh
# aiotrace FreeBSD run kit, written by `aiotrace freebsd-kit` (aiotrace {_version()}).
# Usage: sh run.sh [OUT]     (as root, for dtrace; OUT defaults to runs)
# Checks the host, then runs every mode x backend (dtrace, ktrace+kdump, truss) of the cross-built
# workload and writes one run bundle per run under OUT. Copy OUT back and run `aiotrace report OUT`.
# The command lines are those of `aiotrace capture --backend B -m MODE --dry-run` (same spec),
# with the bundle directory in "$P". Base system tools only.
set -u
cd "$(dirname "$0")" || exit 2
OUT=${{1:-runs}}
WORKLOAD={_q(WORKLOAD_REL)}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

say() {{ printf 'aiotrace-kit: %s\\n' "$*" >&2; }}
die() {{ say "error: $*"; exit 2; }}
# a JSON string of $1 that is also safe in run.sh's sed replacements: drops | & \\ " newlines
json_str() {{ printf '"%s"' "$(printf '%s' "$1" | tr -d '|&\\\\"\\n')"; }}

case "$OUT" in
    *[!A-Za-z0-9._/-]*|'') die "OUT must be a path of [A-Za-z0-9._/-] characters, got '$OUT'" ;;
esac
[ "$(uname -s)" = FreeBSD ] || die "this kit runs on FreeBSD, this is $(uname -s)"
[ -x "$WORKLOAD" ] || die "$WORKLOAD is missing or not executable (copy the whole kit directory)"
mkdir -p "$OUT/.failed" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd) || die "cannot enter $OUT"

# ---- 1. the host ------------------------------------------------------------------------------
say "host: $(uname -sr) $(uname -m), $(sysctl -n hw.ncpu) CPUs"
{{ uname -a; echo; sysctl vfs.aio; }} > "$OUT/host-$STAMP.txt" 2>&1
sysctl vfs.aio >&2 || say "no vfs.aio sysctls: is aio(4) loaded? (kldload aio on FreeBSD < 11)"
MAXQ=$(sysctl -n vfs.aio.max_aio_queue_per_proc 2>/dev/null || echo 0)
if [ "$MAXQ" -lt {spec0.depth} ]; then
    say "vfs.aio.max_aio_queue_per_proc=$MAXQ is below the depth {spec0.depth}: submissions will get EAGAIN"
fi

DTRACE_OK=0
if ! kldstat -q -m dtrace 2>/dev/null; then
    kldload -n dtraceall 2>/dev/null || say "dtrace modules not loaded and kldload dtraceall failed (root?)"
fi
if dtrace -l {fbt_probes} > "$OUT/dtrace-probes-$STAMP.txt" 2>&1; then
    DTRACE_OK=1
    say "dtrace: every fbt probe the events script needs is there"
else
    say "dtrace unusable here, its runs are skipped: $(tail -n 1 "$OUT/dtrace-probes-$STAMP.txt")"
fi
D33271=false
if [ "$DTRACE_OK" = 1 ] && dtrace -e -q -c /usr/bin/true -s {_q(addon)} >/dev/null 2>&1; then
    D33271=true
    say "kernel has D33271 (struct kaiocb has td): rusage is charged to the submitter"
fi

REAP_LINE=$("$WORKLOAD" --modes 2>&1 | grep '^reap' || true)
case "$REAP_LINE" in
    "$(printf 'reap\\tyes')"*) REAP_SUPPORTED=true; REAP_DETAIL="the running kernel accepted AIO_KEVENT_FLAG_REAP (the workload's --modes probe read)" ;;
    *) REAP_SUPPORTED=false; REAP_DETAIL="the running kernel refused AIO_KEVENT_FLAG_REAP: $(printf '%s' "$REAP_LINE" | cut -f3- | tr -d '|&\\\\"')" ;;
esac
say "REAP: $REAP_DETAIL"
if [ "$REAP_SUPPORTED" = true ]; then
    say "WARNING: the D33144 tree at 33a47467 frees a REAP job in aio_bio_done_notify and then writes job->td (use-after-free): reap runs may corrupt kernel memory under load"
fi

KERNEL=$(uname -r); MACHINE=$(uname -m); HOSTNAME_=$(uname -n); CPUS=$(sysctl -n hw.ncpu)
BOOT=$(sysctl -n kern.boottime | sed 's/^{{ sec = \\([0-9]*\\), usec = \\([0-9]*\\) }}.*/\\1 \\2/')
RT_MINUS_MONO=$(echo "$BOOT" | awk '{{ printf "%d", $1 * 1000000000 + $2 * 1000 }}')

# ---- 2. one run: begin_run MODE BACKEND; <commands>; end_run MODE BACKEND STATUS [POST_STATUS] ----
begin_run() {{
    RUN_ID="$STAMP-$1-$2-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \\n')"
    P="$OUT/.$RUN_ID.partial"
    mkdir -p "$P"/raw "$P"/record "$P"/cache || die "cannot create $P"
    T0=$(date +%s); STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%S.000+00:00)
    say "run $RUN_ID"
}}

end_run() {{
    mode=$1; backend=$2; tracer_exit=$3; post_exit=${{4:-null}}
    ENDED_AT=$(date -u +%Y-%m-%dT%H:%M:%S.000+00:00); DUR=$(( $(date +%s) - T0 ))
    trace=$(sed -n 's/^  *"trace": "\\(.*\\)",*$/\\1/p' "templates/$mode-$backend.manifest.json" | head -n 1)
    lines=$(wc -l < "$P/$trace" 2>/dev/null | tr -d ' '); lines=${{lines:-0}}
    dropped=$(awk '/^dtrace: [0-9]+ (aggregation |dynamic variable |speculative )?drops?/ {{ n += $2 }} END {{ print n + 0 }}' "$P/raw/tracer.stderr" 2>/dev/null)
    summary=null; pid=null
    # the workload's last key=value line -> record/summary.json (as capture does)
    if awk 'BEGIN {{ found = 0 }} /=/ && NF >= 3 {{ last = $0; found = 1 }} END {{
            if (!found) exit 1
            n = split(last, kv, " "); printf "{{"
            for (i = 1; i <= n; i++) {{
                eq = index(kv[i], "="); k = substr(kv[i], 1, eq - 1); v = substr(kv[i], eq + 1)
                gsub(/["\\\\]/, "", v)
                if (v !~ /^-?[0-9]+(\\.[0-9]+)?$/) v = "\\"" v "\\""
                printf "%s\\n  \\"%s\\": %s", (i > 1 ? "," : ""), k, v
            }}
            print "\\n}}" }}' "$P/raw/workload.stdout" > "$P/record/summary.json" 2>/dev/null; then
        summary='"record/summary.json"'
        pid=$(sed -n 's/^  "pid": \\([0-9]*\\)$/\\1/p' "$P/record/summary.json"); pid=${{pid:-null}}
    else
        rm -f "$P/record/summary.json"
    fi
    status=ok; reason=null
    if [ "$tracer_exit" != 0 ]; then
        status=failed; reason=$(json_str "$backend exited with status $tracer_exit: $(tail -n 1 "$P/raw/tracer.stderr" 2>/dev/null)")
    elif [ "$post_exit" != null ] && [ "$post_exit" != 0 ]; then
        status=failed; reason=$(json_str "kdump exited with status $post_exit")
    elif [ "$dropped" -gt 0 ]; then
        status=failed; reason=$(json_str "$dropped events lost (raw/tracer.stderr)")
    fi
    version=null
    case "$backend" in dtrace) version=$(json_str "$(dtrace -V 2>&1 | head -n 1)") ;; esac
    sed -e "s|@P@|$P|g" -e "s|@RUN_ID@|$RUN_ID|g" -e "s|@OS@|FreeBSD|g" -e "s|@KERNEL@|$KERNEL|g" \\
        -e "s|@MACHINE@|$MACHINE|g" -e "s|@CPUS@|$CPUS|g" -e "s|@HOSTNAME@|$HOSTNAME_|g" \\
        -e "s|@BACKEND_VERSION@|$version|g" -e "s|@REAP_SUPPORTED@|$REAP_SUPPORTED|g" \\
        -e "s|@REAP_DETAIL@|$REAP_DETAIL|g" -e "s|@D33271@|$D33271|g" -e "s|@FILE_PATH@|$(pwd)/{spec0.file}|g" \\
        -e "s|@RT_MINUS_MONO@|$RT_MINUS_MONO|g" -e "s|@STARTED_AT@|$STARTED_AT|g" \\
        -e "s|@ENDED_AT@|$ENDED_AT|g" -e "s|@DURATION_S@|$DUR|g" -e "s|@TRACER_EXIT@|$tracer_exit|g" \\
        -e "s|@POST_EXIT@|$post_exit|g" -e "s|@STATUS@|$status|g" -e "s|@REASON@|$reason|g" \\
        -e "s|@DROPPED@|$dropped|g" -e "s|@LINES@|$lines|g" -e "s|@WORKLOAD_PID@|$pid|g" \\
        -e "s|@SUMMARY@|$summary|g" "templates/$mode-$backend.manifest.json" > "$P/manifest.json"
    if [ "$status" = ok ]; then
        mv "$P" "$OUT/$RUN_ID" && say "ok: $OUT/$RUN_ID"
    else
        mv "$P" "$OUT/.failed/$RUN_ID" && say "FAILED ($reason): $OUT/.failed/$RUN_ID"
    fi
}}

# ---- 3. every mode x backend ---------------------------------------------------------------------
"""]
    for spec in specs:
        for backend in KIT_BACKENDS:
            cmds = capture_lines(spec, backend)
            guard = []
            if backend == "dtrace":
                guard.append('[ "$DTRACE_OK" = 1 ]')
            if spec.mode == "reap":
                guard.append('[ "$REAP_SUPPORTED" = true ]')
            skip = " or ".join(w for w, on in (("dtrace unusable", backend == "dtrace"),
                                                 ("REAP not supported", spec.mode == "reap")) if on)
            block = [f"# {spec.mode} x {backend}"]
            block += [f"if {' && '.join(guard)}; then"] if guard else ["{"]
            block.append(f"    begin_run {spec.mode} {backend}")
            block.append(f"    {cmds[0]}{WRAP_REDIRECT}")
            block.append("    rc=$?")
            if len(cmds) > 1:  # ktrace: kdump writes the trace
                for post in cmds[1:]:
                    block.append(f"    {post}{POST_STDERR}")
                block.append("    end_run " + f"{spec.mode} {backend} \"$rc\" \"$?\"")
            else:
                block.append("    end_run " + f"{spec.mode} {backend} \"$rc\"")
            if guard:
                block += ["else", f"    say \"skip {spec.mode} x {backend}: {skip}\"", "fi"]
            else:
                block.append("}")
            out.append("\n".join(block) + "\n")
    out.append('say "done: aiotrace report $OUT   (on any machine with aiotrace)"\n')
    return "\n".join(out)


README = """aiotrace FreeBSD run kit
========================

Copy this directory to a FreeBSD 13+ amd64 host and run, as root (dtrace needs it):

    sh run.sh [OUT]

It checks the host (dtrace modules and fbt probes, REAP support through the workload's one-read
probe, the vfs.aio sysctls; see OUT/host-*.txt), then runs every mode x backend of the
cross-built workload (workloads/out/aiotrace-workload.x86_64-freebsd) under dtrace
(dscripts/freebsd/aiotrace-events.d), ktrace+kdump and truss, one run bundle each under OUT
(default: runs). Failed runs go to OUT/.failed/ with the reason in their manifest.json.
Bring OUT back and run `aiotrace report OUT --out report` (or `aiotrace compare OUT`).

The command lines are exactly those `aiotrace capture --backend B -m MODE --dry-run` prints
for the same spec options. reap runs only where the kernel has D33144 (REAP); on the D33144
tree at 33a47467, aio_bio_done_notify writes job->td after freeing the job (use-after-free):
REAP runs there may corrupt kernel memory under load.
"""


def build_kit(out: str | os.PathLike, **spec_kw) -> Path:
    """Write the kit into `out` (built as ``<out>.partial-<pid>`` and renamed when complete).
    Refuses an `out` that exists and is not empty."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CaptureError(f"{out} exists and is not an empty directory")
    specs = kit_specs(**spec_kw)
    workload = ensure_workload()
    tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "workloads" / "out").mkdir(parents=True)
        shutil.copy2(workload, tmp / WORKLOAD_REL)
        ddir = tmp / "dscripts" / "freebsd"
        ddir.mkdir(parents=True)
        for script in sorted((REPO / "dscripts" / "freebsd").glob("*.d")):
            shutil.copy2(script, ddir / script.name)
        (tmp / "templates").mkdir()
        version = _version()
        for spec in specs:
            for backend in KIT_BACKENDS:
                (tmp / "templates" / f"{spec.mode}-{backend}.manifest.json").write_text(
                    manifest_template(spec, backend, version))
        (tmp / "run.sh").write_text(render_script(specs))
        (tmp / "run.sh").chmod(0o755)
        (tmp / "README.txt").write_text(README)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

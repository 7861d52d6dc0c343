"""`aiotrace doctor`: what this machine can capture, and the exact fix for each missing piece.

Every check is a real probe (a bpftrace run that attaches a tracepoint, an O_DIRECT open and
transfer, reading /proc), not a guess from what is installed. Report shape (``--json``)::

    {"os", "kernel", "machine", "cpus", "can_capture": bool, "auto_backend": str|null,
     "checks": [{"name", "ok": bool|null, "detail", "fix": str|null}], "backends": {name: {...}},
     "modes": [{"mode", "available": bool, "reason", "needs"}]}   (one per row of tracer.base.modes)

``ok`` is null for facts that are neither good nor bad (REAP on Linux: n/a).
"""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from tracer.base import modes
from tracer.capture.backends import AUTO_ORDER, BACKENDS, TRACEFS, effective_caps
from tracer.capture.probe import o_direct_works, reap_support

BPF_PROBE_PROGRAM = 'tracepoint:raw_syscalls:sys_enter /pid == 0/ { } BEGIN { printf("aiotrace-bpf-ok\\n"); exit(); }'


def _check(name: str, ok: bool | None, detail: str, fix: str | None = None) -> dict:
    return {"name": name, "ok": ok, "detail": detail, "fix": None if ok or ok is None else fix}


def _sysctl_file(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _tracefs_mounted() -> bool:
    try:
        mounts = Path("/proc/mounts").read_text().split("\n")
    except OSError:
        return False
    return any(len(f := m.split()) > 2 and f[2] == "tracefs" and f[1] == str(TRACEFS) for m in mounts)


def bpf_usable(bpftrace: str, timeout_s: float = 60.0) -> tuple[bool, str]:
    """Run a tiny bpftrace program that attaches a tracepoint and exits from BEGIN."""
    try:
        out = subprocess.run([bpftrace, "-e", BPF_PROBE_PROGRAM], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, f"bpftrace did not finish a one-probe program within {timeout_s:.0f} s"
    except OSError as exc:
        return False, f"cannot run {bpftrace}: {exc.strerror}"
    if "aiotrace-bpf-ok" in out.stdout:
        return True, "attached tracepoint:raw_syscalls:sys_enter and ran BEGIN"
    lines = [l.strip() for l in out.stderr.splitlines() if l.strip() and "RLIMIT_MEMLOCK" not in l]
    errors = [l for l in lines if l.startswith("ERROR")] or lines[-2:]
    return False, f"bpftrace exited {out.returncode}: {' | '.join(errors[:2]) or 'no message'}"


def _linux_checks(checks: list[dict], euid: int) -> None:
    caps = effective_caps()
    bpf_caps = caps.get("CAP_SYS_ADMIN") or (caps.get("CAP_BPF") and caps.get("CAP_PERFMON"))
    checks.append(_check("privileges", bool(bpf_caps) if caps else euid == 0,
                         f"euid {euid}; CapEff: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in caps.items()),
                         "run as root (sudo aiotrace ...) with CAP_SYS_ADMIN or CAP_BPF+CAP_PERFMON effective "
                         "(a container needs --privileged or --cap-add=BPF --cap-add=PERFMON)"))
    checks.append(_check("tracefs", _tracefs_mounted() and (TRACEFS / "available_events").exists(),
                         f"{TRACEFS} " + ("mounted" if _tracefs_mounted() else "not mounted"),
                         ("" if euid == 0 else "sudo ") + f"mount -t tracefs nodev {TRACEFS}"))
    bpftrace = BACKENDS["bpftrace"].program()
    if bpftrace is None:
        checks.append(_check("bpf", False, "bpftrace not installed", "apt-get install bpftrace"))
    elif euid != 0 and not bpf_caps:
        checks.append(_check("bpf", False, "not tried: needs root or CAP_BPF", "run as root"))
    else:
        ok, detail = bpf_usable(bpftrace)
        fix = ("run with CAP_SYS_ADMIN or CAP_BPF+CAP_PERFMON effective" if caps and not bpf_caps else
               "check `dmesg` and kernel.unprivileged_bpf_disabled; the kernel needs CONFIG_BPF_SYSCALL, "
               "CONFIG_BPF_EVENTS and CONFIG_FTRACE_SYSCALLS")
        checks.append(_check("bpf", ok, detail, fix))
    scope = _sysctl_file("/proc/sys/kernel/yama/ptrace_scope")
    ptrace_ok = scope in (None, "0") or (scope in ("1", "2") and (euid == 0 or caps.get("CAP_SYS_PTRACE")))
    checks.append(_check("ptrace (strace -p)", bool(ptrace_ok), f"yama ptrace_scope={scope or 'absent'}",
                         "sysctl -w kernel.yama.ptrace_scope=0, or run as root"))
    disabled = _sysctl_file("/proc/sys/kernel/io_uring_disabled")
    checks.append(_check("io_uring", disabled in (None, "0") or (disabled == "1" and euid == 0),
                         f"kernel.io_uring_disabled={disabled if disabled is not None else 'absent (allowed)'}",
                         "sysctl -w kernel.io_uring_disabled=0"))
    max_nr, nr = _sysctl_file("/proc/sys/fs/aio-max-nr"), _sysctl_file("/proc/sys/fs/aio-nr")
    if max_nr is not None and nr is not None:
        free = int(max_nr) - int(nr)
        checks.append(_check("libaio contexts", free >= 4096, f"fs.aio-nr={nr} of fs.aio-max-nr={max_nr}",
                             "sysctl -w fs.aio-max-nr=1048576"))
    memlock = _memlock()
    checks.append(_check("RLIMIT_MEMLOCK", None, f"{memlock}; bpftrace's 'couldn't set RLIMIT_MEMLOCK' warning "
                         "is harmless on kernels >= 5.11 (BPF memory is memcg-accounted)"))


def _memlock() -> str:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    fmt = lambda v: "unlimited" if v == resource.RLIM_INFINITY else f"{v >> 10} KiB"
    return f"soft {fmt(soft)}, hard {fmt(hard)}"


def _freebsd_checks(checks: list[dict], euid: int) -> None:
    checks.append(_check("privileges", euid == 0, f"euid {euid}", "run as root (dtrace needs it)"))

    def sysctl(name: str) -> str | None:
        try:
            out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    aio = sysctl("kern.features.aio")
    checks.append(_check("aio", aio == "1", f"kern.features.aio={aio}", "kldload aio (FreeBSD < 11)"))
    try:
        loaded = subprocess.run(["kldstat", "-q", "-m", "dtrace"], timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        loaded = False
    checks.append(_check("dtrace modules", loaded, "dtrace " + ("loaded" if loaded else "not loaded"), "kldload dtraceall"))


def _libbpf_fix() -> str:
    from tracer.capture import libbpf
    return (f"apt-get install {' '.join(libbpf.PACKAGES)} (or `make setup` as root); the consumer is then "
            "built on first use (python -m tracer.capture.libbpf builds it now)")


def _libbpf_check(checks: list[dict]) -> None:
    """What the libbpf backend needs, each with how to get it, and whether this machine has it."""
    from tracer.capture import libbpf
    missing = libbpf.missing_tools()
    btf = libbpf.VMLINUX_BTF.exists()
    built = libbpf.built_binary().exists()
    detail = (f"needs: {'; '.join(libbpf.requirements())}. Here: "
              f"{'tools missing: ' + ', '.join(missing) if missing else 'build tools present'}, "
              f"BTF {'present' if btf else 'absent'}, consumer {'built' if built else 'not built yet'}")
    fix = _libbpf_fix() if missing else (None if btf else "boot a kernel built with CONFIG_DEBUG_INFO_BTF=y")
    checks.append(_check("libbpf build", not missing and btf, detail, fix))


def _fix(backend: str, why: str, missing: bool) -> str:
    """The command or step that makes ``backend`` usable, given why it is not."""
    if missing:
        return {"bpftrace": "apt-get install bpftrace", "strace": "apt-get install strace",
                "libbpf": _libbpf_fix(),
                "dtrace": "dtrace is in the base system; kldload dtraceall",
                "ktrace": "ktrace is in the base system (kernel option KTRACE)",
                "truss": "truss is in the base system"}[backend]
    if "tracefs" in why:
        return f"mount -t tracefs nodev {TRACEFS}"
    if "needs root" in why:
        return f"run as root: sudo aiotrace capture --backend {backend} ..."
    if "CapEff" in why:
        return "run with CAP_SYS_ADMIN or CAP_BPF+CAP_PERFMON effective (not dropped by setpriv/capsh/a container)"
    return why


def mode_rows(system: str) -> list[dict]:
    """Every mode of the registry: whether it runs here and why not (the C probe's reason when the
    engine is built, else the registry's)."""
    try:
        from workloads import driver
        probed = {r["mode"]: r for r in driver.mode_status()}
    except Exception as exc:  # noqa: BLE001 - an unbuilt engine must not stop the doctor
        probed, why = {}, f"workload engine not usable: {exc}"
    rows = []
    for m in modes.MODES:
        row = probed.get(m.name) or {"mode": m.name, "available": False,
                                     "reason": modes.unavailable_reason(m.name, system) or why}
        rows.append({**row, "needs": m.needs})
    return rows


def diagnose() -> dict:
    """Run every check for this OS; see the module docstring for the shape."""
    uname = platform.uname()
    euid = os.geteuid()
    checks: list[dict] = []
    backends = {}
    for name, b in BACKENDS.items():
        if b.os_name != uname.system:
            continue
        ok, why = b.available()
        backends[name] = {"path": b.program(), "version": b.version(), "usable": ok, "detail": why}
        checks.append(_check(f"tracer {name}", ok, f"{backends[name]['version'] or 'missing'}: {why}",
                             _fix(name, why, b.program() is None)))
    if uname.system == "Linux":
        _linux_checks(checks, euid)
        _libbpf_check(checks)
    elif uname.system == "FreeBSD":
        _freebsd_checks(checks, euid)
    odirect, detail = o_direct_works(Path.cwd() / ".aiotrace-doctor-probe")
    checks.append(_check("O_DIRECT on the cwd filesystem", odirect, detail,
                         "use --no-direct, or put --file on a filesystem with O_DIRECT (ext4, xfs, ufs)"))
    reap, reap_detail = reap_support()
    checks.append(_check("REAP (AIO_KEVENT_FLAG_REAP)", reap if uname.system == "FreeBSD" else None, reap_detail,
                         "boot a kernel with D33144 applied"))
    auto = next((n for n in AUTO_ORDER.get(uname.system, ()) if backends.get(n, {}).get("usable")), None)
    # bpftrace is only really usable when BPF ran
    bpf = next((c for c in checks if c["name"] == "bpf"), None)
    if auto == "bpftrace" and bpf is not None and not bpf["ok"]:
        auto = "strace" if backends.get("strace", {}).get("usable") else None
    return {"os": uname.system, "kernel": uname.release, "machine": uname.machine, "cpus": os.cpu_count(),
            "euid": euid, "can_capture": auto is not None, "auto_backend": auto, "checks": checks,
            "backends": backends, "modes": mode_rows(uname.system)}


def render(report: dict) -> str:
    mark = {True: "ok  ", False: "MISS", None: "n/a "}
    lines = [f"aiotrace doctor: {report['os']} {report['kernel']} {report['machine']}, {report['cpus']} CPUs, "
             f"euid {report['euid']}"]
    width = max(len(c["name"]) for c in report["checks"])
    for c in report["checks"]:
        lines.append(f"  [{mark[c['ok']]}] {c['name']:<{width}}  {c['detail']}")
        if c["fix"]:
            lines.append(f"  {'':6} {'':<{width}}  fix: {c['fix']}")
    if report.get("modes"):
        runs = [r["mode"] for r in report["modes"] if r["available"]]
        lines.append(f"  modes that run here: {', '.join(runs) or 'none'}")
        for r in report["modes"]:
            if not r["available"]:
                lines.append(f"  {'':6} {r['mode']}: {r['reason']}")
    lines.append(f"capture --backend auto would use: {report['auto_backend'] or 'nothing (see the fixes above)'}")
    return "\n".join(lines)

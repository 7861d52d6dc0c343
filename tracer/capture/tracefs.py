"""tracefs for bpftrace's tracepoints: mounted on demand by `capture`, `doctor` and `demo`.

As root, a machine without tracefs at /sys/kernel/tracing gets it mounted (what .ci/run does) and
the user is told; without root the user gets the exact command to run.
"""
from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path

TRACEFS = Path("/sys/kernel/tracing")
MOUNT_ARGV = ["mount", "-t", "tracefs", "nodev", str(TRACEFS)]
MOUNT_COMMAND = " ".join(MOUNT_ARGV)


def mounted(mounts: Path = Path("/proc/mounts")) -> bool:
    """True when a tracefs is mounted at TRACEFS and shows its event list."""
    try:
        lines = mounts.read_text().splitlines()
    except OSError:
        return False
    here = any(len(f := line.split()) > 2 and f[2] == "tracefs" and f[1] == str(TRACEFS) for line in lines)
    return here and (TRACEFS / "available_events").exists()


def ensure_mounted(log: Callable[[str], None]) -> bool:
    """Mount tracefs when it is missing and we are root; say what happened through ``log``.
    Returns True when tracefs is usable afterwards. Does nothing off Linux."""
    if platform.system() != "Linux" or mounted():
        return platform.system() == "Linux"
    if os.geteuid() != 0:
        log(f"tracefs is not mounted at {TRACEFS} and bpftrace needs it; as root run: sudo {MOUNT_COMMAND}")
        return False
    try:
        r = subprocess.run(MOUNT_ARGV, capture_output=True, text=True, timeout=30)
        detail = r.stderr.strip() or f"mount exited {r.returncode}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        r, detail = None, str(exc)
    if r is not None and r.returncode == 0 and mounted():
        log(f"mounted tracefs at {TRACEFS} ({MOUNT_COMMAND})")
        return True
    log(f"tracefs is not mounted at {TRACEFS} and `{MOUNT_COMMAND}` failed: {detail}")
    return False

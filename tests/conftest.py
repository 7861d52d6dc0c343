"""Shared test helpers. Under CI=true a test that needs root, tracefs or bpftrace fails instead
of skipping: CI machines are expected to have them."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "tests" / "data" / "samples"  # real public tool output, see SOURCES.md there
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, what: str) -> None:
    """Skip locally, fail in CI, when a machine capability is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI machine lacks {what}", pytrace=False)
    pytest.skip(f"needs {what}")


def tracing_missing() -> str | None:
    if os.geteuid() != 0:
        return "root"
    if not Path("/sys/kernel/tracing/available_events").exists():
        return "tracefs at /sys/kernel/tracing"
    if shutil.which("bpftrace") is None:
        return "bpftrace"
    return None


@pytest.fixture
def tracing():
    """Use in tests that run bpftrace."""
    missing = tracing_missing()
    need(missing is None, missing or "")


@pytest.fixture
def strace_bin():
    path = shutil.which("strace")
    need(path is not None, "strace")
    return path

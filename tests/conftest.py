"""Shared test helpers. Under CI=true a test that needs root, tracefs or bpftrace fails instead
of skipping: CI machines are expected to have them."""
from __future__ import annotations

import importlib
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


def need_module(name: str, what: str):
    """Import ``name``; when it is missing, skip the calling test or module locally and fail in CI
    (a built extension CI must have, not an optional one)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if IN_CI:
            pytest.fail(f"CI machine lacks {what} ({exc})", pytrace=False)
        pytest.skip(f"needs {what}", allow_module_level=True)


def tracing_missing() -> str | None:
    if os.geteuid() != 0:
        return "root"
    if not Path("/sys/kernel/tracing/available_events").exists():
        return "tracefs at /sys/kernel/tracing"
    if shutil.which("bpftrace") is None:
        return "bpftrace"
    return None


# `make test-fast` runs `-m "not slow and not tracing"`; `make test` runs everything.
# tracing: the test runs a tracer (bpftrace, strace, the libbpf consumer) or a capture; every test
# that asks for one of TRACING_FIXTURES is marked by that alone. slow: minutes of real workloads,
# notebooks, benchmarks, a cross build, or 100+ hypothesis examples (the fuzzers run in `make test`).
# New files may mark tests themselves with
# @pytest.mark.slow / @pytest.mark.tracing; these tables cover whole modules.
TRACING_FIXTURES = {"tracing", "strace_bin", "bpf", "demo_run"}  # bpf: libbpf captures; demo_run: a demo
TRACING_MODULES = {"test_capture_linux", "test_capture_faults", "test_capture_doctor", "test_dscripts_bpftrace",
                   "test_tracefs", "test_notebooks", "test_bench_smoke", "test_capture_foreign"}
SLOW_MODULES = {"test_workload_cli", "test_notebooks", "test_bench_smoke", "test_workload_build",
                "test_capture_linux", "test_freebsd_model", "test_capture_foreign", "test_freebsd_kit"}
SLOW_PROPERTY_EXAMPLES = 100  # hypothesis tests asking for this many examples or more are slow


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = getattr(item.module, "__name__", "").rsplit(".", 1)[-1]
        if TRACING_FIXTURES & set(getattr(item, "fixturenames", ())) or module in TRACING_MODULES:
            item.add_marker(pytest.mark.tracing)
        if module in SLOW_MODULES or _examples(item) >= SLOW_PROPERTY_EXAMPLES:
            item.add_marker(pytest.mark.slow)


def _examples(item) -> int:
    """max_examples of a hypothesis test (0 for any other test)."""
    test = getattr(item, "obj", None)
    settings = getattr(test, "_hypothesis_internal_use_settings", None)
    return int(getattr(settings, "max_examples", 0) or 0) if getattr(test, "is_hypothesis_test", False) else 0


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


def zig_available() -> bool:
    """The ziglang package (the FreeBSD cross build): a test extra, not a system package."""
    try:
        import ziglang  # noqa: F401
    except ImportError:
        return False
    return True


def ok_workload_bundle(bundle, count: int) -> tuple[dict, dict]:
    """(manifest, workload summary) of a capture of the workload that must be clean: status ok,
    no loss of any kind, every one of ``count`` I/Os done without error."""
    import json
    from tracer.capture import manifest as mf

    m = mf.read_manifest(bundle)
    assert m["status"] == "ok", m["reason"]
    assert m["losses"] == {"dropped_events": 0, "messages": [], "allowed": False}
    summary = json.loads((bundle / "record" / "summary.json").read_text())
    assert summary["ios"] == count and summary["errors"] == 0
    return m, summary

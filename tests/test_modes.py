"""The mode registry (tracer.base.modes) is the one place mode facts live: the C engine's table, the
spec, the model's roles, the floors and the release points all agree with it."""
from __future__ import annotations

import re

import pytest

from tracer.base import modes
from tracer.analysis import amplification, free_timing
from tracer.model import ROLE_MAPS
from tracer.base.schema import ROLES
from tracer.base import spec

from conftest import REPO, need_module


def c_mode_table() -> dict[str, list[str]]:
    """engine.c's all_modes entries by the #if block they sit in, as mode names ('.name' of each
    aiot_mode_* ops table in workloads/mode_*.c)."""
    names = {}
    for path in (REPO / "workloads").glob("mode_*.c"):
        for symbol, name in re.findall(r"aiot_mode_ops\s+(aiot_mode_\w+)\s*=\s*\{\s*\.name\s*=\s*\"([^\"]+)\"",
                                       path.read_text()):
            names[symbol] = name
    body = re.search(r"all_modes\[\]\s*=\s*\{(.*?)\n\};", (REPO / "workloads" / "engine.c").read_text(), re.S)
    assert body, "engine.c has no all_modes table"
    table: dict[str, list[str]] = {"Linux": [], "FreeBSD": []}
    block = None
    for line in body.group(1).splitlines():
        line = line.strip()
        if line.startswith("#if"):
            block = "Linux" if "__linux__" in line else "FreeBSD" if "__FreeBSD__" in line else "?"
        elif line.startswith("#endif"):
            block = None
        elif m := re.match(r"&(aiot_mode_\w+),", line):
            for os_name in ([block] if block else ["Linux", "FreeBSD"]):
                table[os_name].append(names[m.group(1)])
    return table


def test_c_all_modes_table_matches_the_registry_per_os():
    table = c_mode_table()
    assert table["Linux"] == list(modes.modes_for("Linux"))
    assert table["FreeBSD"] == list(modes.modes_for("FreeBSD"))
    assert set(table["Linux"]) | set(table["FreeBSD"]) == set(modes.ALL_MODES)


def test_built_engine_lists_this_os_modes_in_registry_order():
    need_module("workloads._engine", "the built workload engine (pip install -e .)")
    import platform

    from workloads import driver
    assert driver.compiled_modes() == list(modes.modes_for(platform.system()))


def test_spec_and_cli_choices_come_from_the_registry():
    assert spec.ALL_MODES == modes.ALL_MODES and spec.POSIX_MODES == modes.POSIX_MODES
    from tracer.base.spec import spec_options
    import click

    @click.command()
    @spec_options
    def cmd(**kw):
        pass
    choice = next(p for p in cmd.params if p.name == "mode").type
    assert tuple(choice.choices) == modes.ALL_MODES


def test_every_row_is_complete_for_each_of_its_oses():
    for m in modes.MODES:
        assert m.oses and set(m.oses) <= set(modes.OSES), m.name
        for os_name in m.oses:
            assert os_name in m.roles and os_name in m.floor and os_name in m.release, (m.name, os_name)
            assert set(m.floor[os_name]) <= set(ROLES), m.name
            assert set(m.floor[os_name].values()) <= {"1", "1/b", "1/D", "1|1/b"}, m.name
            assert set(m.roles[os_name].values()) <= set(ROLES) - {"other"}, m.name
        assert m.lio == m.posix, m.name  # lio_listio is a POSIX AIO call


def test_model_role_table_is_the_union_of_the_rows():
    fb = ROLE_MAPS["FreeBSD"]
    assert fb["aio_waitcomplete"] == "wait" and fb["compat11.kevent"] == "wait"
    assert fb["aio_error"] == "status" and fb["compat6.aio_return"] == "result" and fb["lio_listio"] == "submit"
    assert ROLE_MAPS["Linux"] == {"io_submit": "submit", "io_getevents": "wait", "io_pgetevents": "wait",
                                  "io_uring_enter": "submit"}
    assert modes.role_map("NetBSD") == ROLE_MAPS["Linux"]


def test_floor_comes_from_the_row_terms():
    # reap: lio batches of 16, kevent returns up to depth 8 completions
    f = amplification.theoretical_floor("reap", "FreeBSD", 16, 8, submit="lio")
    assert f["submit"] == pytest.approx(1 / 16) and f["wait"] == pytest.approx(1 / 8) and f["total"] == pytest.approx(3 / 16)
    # the same mode name on the two OSes has different floors
    assert amplification.theoretical_floor("aio-poll", "Linux")["other"] == 1.0
    assert amplification.theoretical_floor("aio-poll", "FreeBSD")["other"] == 0.0
    with pytest.raises(ValueError):
        amplification.theoretical_floor("aio-poll", None)  # differs by OS: refuse to guess
    assert amplification.theoretical_floor("libaio", None, 4, 4)["total"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        amplification.theoretical_floor("bogus", "Linux")


def test_release_points_and_unavailable_reasons():
    assert free_timing.FREEBSD_RELEASE == ("aio_complete (job_done)", "aio_free_entry (job_free)")
    assert modes.release_point("libaio", "Linux")[1] == "io_getevents return that harvested it (ring slot freed)"
    assert modes.release_point("nope", "Linux") is None
    assert modes.unavailable_reason("reap", "Linux") == "FreeBSD-only mode (this is Linux)"
    assert modes.unavailable_reason("aio-poll", "Linux") == ""
    assert "D33144" in modes.get("reap").needs


def test_doctor_lists_every_registry_mode_with_a_reason_when_unavailable():
    from tracer.capture.doctor import mode_rows

    rows = mode_rows("Linux")
    assert [r["mode"] for r in rows] == list(modes.ALL_MODES)
    assert all(r["reason"] for r in rows if not r["available"])
    assert next(r for r in rows if r["mode"] == "reap")["reason"] == "FreeBSD-only mode (this is Linux)"


def test_legacy_freebsd_modes_are_those_the_kernel_does_not_free_at_completion():
    from tracer.analysis import reap_projection
    assert set(reap_projection.LEGACY_FREEBSD_MODES) == {"kevent", "kevent-error", "aio-poll", "aio-suspend",
                                                         "waitcomplete"}
    assert [m.name for m in modes.MODES if m.frees_at_completion] == ["reap"]

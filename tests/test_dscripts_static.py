"""Static checks of dscripts/: every printf against the event-line schema, every probe name against
the reference tables (FreeBSD syscalls, vfs_aio.c functions, this kernel's tracepoints), and the
command lines the capture layer runs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import need
from tracer import dscripts
from tracer.base import schema
from tracer.data import (
    LINUX_SYSCALLS_TSV, freebsd_syscall_names, freebsd_syscalls, gen_linux_syscalls, linux_syscall_names,
    vfs_aio_functions,
)
from tracer.base.errors import CaptureError
from tracer.base.spec import PROBE_FUNCTIONS

AVAILABLE_EVENTS = Path("/sys/kernel/tracing/available_events")
D_SCRIPTS = [p for p in dscripts.all_scripts() if p.suffix == ".d"]
BT_SCRIPTS = [p for p in dscripts.all_scripts() if p.suffix == ".bt"]


def test_registry_covers_both_oses_and_flavours_with_existing_scripts():
    assert set(dscripts.SCRIPTS) == {(o, f) for o in dscripts.OSES for f in dscripts.FLAVOURS}
    for path in [*dscripts.SCRIPTS.values(), dscripts.D33271_ADDON, dscripts.PROC_SCRIPT]:
        assert path.is_file(), path
    assert len(D_SCRIPTS) == 3 and len(BT_SCRIPTS) == 3


@pytest.mark.parametrize("path", dscripts.all_scripts(), ids=lambda p: p.name)
def test_every_printf_in_dscripts_matches_the_event_schema(path):
    calls = dscripts.extract_printfs(path)
    assert calls, f"{path.name}: no printf found (extractor broken?)"
    assert dscripts.check_script_printfs(path) == []


def test_per_event_scripts_print_every_kind_they_promise_with_real_event_printfs():
    kinds = {}
    for os_name in dscripts.OSES:
        path = dscripts.SCRIPTS[(os_name, "events")]
        evs = {c.fmt.split("\t")[4] for c in dscripts.extract_printfs(path) if c.fmt.startswith("E\t")}
        kinds[os_name] = evs
    workload_kinds = {"window_start", "window_stop", "submit", "reap", "sync"}
    assert workload_kinds | {"sys_enter", "sys_exit", "job_queue", "job_done", "blk_queue", "blk_done"} <= kinds["Linux"]
    assert workload_kinds | {"sys_enter", "sys_exit", "job_queue", "job_start", "job_done", "job_notify",
                             "job_free", "ru_charge"} <= kinds["FreeBSD"]


@pytest.mark.parametrize("fmt, complaint", [
    # an extra field appended by someone editing a script
    ("E\t%llu\t%d\t%d\tsys_enter\tnr%d\t0\t%lld\t%lld\t%lld\t0\t0\t0\n", "fields"),
    # 64-bit timestamp printed with %d (bpftrace truncates it to 32 bits)
    ("E\t%d\t%d\t%d\tsys_enter\tnr%d\t0\t%lld\t%lld\t%lld\t0\t0\n", "ts_ns"),
    # an event kind the schema does not know
    ("E\t%llu\t%d\t%d\tsys_entry\tnr%d\t0\t%lld\t%lld\t%lld\t0\t0\n", "EVENT_KINDS"),
    # a word in a numeric column
    ("E\t%llu\t%d\t%d\tsubmit\taiotrace_probe_submit\tnone\t%lld\t0\t0\t%lld\t0\n", "integer"),
    # missing newline
    ("E\t%llu\t%d\t%d\tsys_enter\tnr%d\t0\t%lld\t%lld\t%lld\t0\t0", "newline"),
    # wrong tag
    ("X\t%llu\t%d\t%d\tsys_enter\tnr%d\t0\t%lld\t%lld\t%lld\t0\t0\n", "literal 'E'"),
    # two spaces instead of a tab
    ("E\t%llu\t%d\t%d\tsys_enter  nr%d\t0\t%lld\t%lld\t%lld\t0\t0\n", "fields"),
])
def test_checker_rejects_a_drifted_printf(fmt, complaint):
    problems = dscripts.check_printf_against_schema(fmt)
    assert problems and any(complaint in p for p in problems), problems


def test_checker_accepts_the_schemas_own_printf():
    assert dscripts.check_printf_against_schema(schema.EVENT_PRINTF.replace("\\n", "\n")) == []


def test_script_checker_rejects_a_drifted_script(tmp_path):
    good = dscripts.SCRIPTS[("Linux", "events")].read_text()
    drifted = good.replace('"E\\t%llu\\t%d\\t%d\\tsys_exit\\tnr%lld\\t0\\t0\\t0\\t0\\t%lld\\t%d\\n"',
                           '"E\\t%llu\\t%d\\t%d\\tsys_exit\\tnr%lld\\t0\\t0\\t0\\t%lld\\t%d\\n"')
    assert drifted != good
    path = tmp_path / "drifted-events.bt"
    path.write_text(drifted)
    problems = dscripts.check_script_printfs(path)
    assert any("fields" in p for p in problems), problems
    stray = tmp_path / "stray-events.bt"
    stray.write_text(good.replace("BEGIN\n{\n", 'BEGIN\n{\n\tprintf("tracing pid %d\\n", $1);\n'))
    assert any("neither an event line" in p for p in dscripts.check_script_printfs(stray))


def test_conversion_counts_match_argument_counts_in_every_script():
    for path in dscripts.all_scripts():
        for call in dscripts.extract_printfs(path):
            if call.func == "printf":
                assert dscripts.count_conversions(call.fmt) == call.nargs, (path.name, call.line)


# ---- probe names --------------------------------------------------------------------------------

def _descs(path, provider):
    return [d for d in dscripts.probe_descriptions(path) if d.provider == provider]


@pytest.mark.parametrize("path", D_SCRIPTS, ids=lambda p: p.name)
def test_d_syscall_probes_exist_in_freebsd_syscall_table(path):
    names = {sc.name for sc in freebsd_syscalls()}
    used = {d.parts[1] for d in _descs(path, "syscall")}
    assert used <= names, used - names
    for d in _descs(path, "syscall"):
        assert d.parts[0] == "" and d.parts[2] in ("entry", "return"), d.text


def test_d_scripts_trace_every_syscall_the_issue_names():
    wanted = {"aio_read", "aio_write", "aio_readv", "aio_writev", "aio_error", "aio_return", "aio_suspend",
              "aio_waitcomplete", "aio_cancel", "aio_fsync", "lio_listio", "kqueue", "kevent",
              "compat11.kevent", "getrusage"}
    for os_flavour in (("FreeBSD", "events"), ("FreeBSD", "aggregate")):
        descs = _descs(dscripts.SCRIPTS[os_flavour], "syscall")
        for kind in ("entry", "return"):
            assert wanted <= {d.parts[1] for d in descs if d.parts[2] == kind}, (os_flavour, kind)


@pytest.mark.parametrize("path", D_SCRIPTS, ids=lambda p: p.name)
def test_d_fbt_probes_exist_in_vfs_aio_functions(path):
    functions = vfs_aio_functions()
    used = {d.parts[1] for d in _descs(path, "fbt")}
    assert used and used <= set(functions), used - set(functions)


def test_d_fbt_probes_that_may_be_inlined_are_named_in_the_script_header():
    functions = vfs_aio_functions()
    for path in D_SCRIPTS:
        text = path.read_text()
        risky = {d.parts[1] for d in _descs(path, "fbt") if functions[d.parts[1]]["probe"] == "may-inline"}
        header = (dscripts.SCRIPTS[("FreeBSD", "events")].read_text()
                  if "-agg" in path.name or "-ru-" in path.name else text)
        for name in risky:
            assert name in header.split("*/")[0], (path.name, name)
    # The lifecycle functions the scripts rely on are in the table with their linkage.
    assert functions["aio_complete"]["linkage"] == "global" and functions["aio_aqueue"]["linkage"] == "global"
    assert functions["filt_aio"]["probe"] == "kept" and functions["aio_free_entry"]["probe"] == "may-inline"


@pytest.mark.parametrize("path", [*D_SCRIPTS, *BT_SCRIPTS], ids=lambda p: p.name)
def test_user_probes_are_the_workload_probe_functions(path):
    provider = "uprobe" if path.suffix == ".bt" else "pid$target"
    used = {d.parts[-1] if path.suffix == ".bt" else d.parts[1] for d in _descs(path, provider)}
    if "-ru-" in path.name or path == dscripts.PROC_SCRIPT:  # add-on; any program (no workload probes)
        assert not used
        return
    assert used == set(PROBE_FUNCTIONS.values())
    if path.suffix == ".bt":  # the path is the positional parameter, never text
        assert {d.parts[0] for d in _descs(path, "uprobe")} == {"$2"}


def test_freebsd_syscall_table_maps_363_by_version_and_has_unique_names_per_version():
    assert freebsd_syscall_names(11)[363] == "kevent"
    assert freebsd_syscall_names(14)[363] == "compat11.kevent"
    assert freebsd_syscall_names(14)[560] == "kevent"
    assert 560 not in freebsd_syscall_names(11)
    assert freebsd_syscall_names(14)[317] == "aio_error" and freebsd_syscall_names(14)[359] == "aio_waitcomplete"
    for major in (11, 12, 13, 14):
        names = list(freebsd_syscall_names(major).values())
        assert len(names) == len(set(names)), major


def test_linux_syscall_table_is_what_the_generator_makes_from_the_header():
    table = linux_syscall_names()
    assert table[0] == "read" and table[17] == "pread64" and table[426] == "io_uring_enter"
    assert table[209] == "io_submit" and table[208] == "io_getevents"
    header = gen_linux_syscalls.DEFAULT_HEADER
    need(header.exists(), f"{header} (linux-libc-dev)")
    assert gen_linux_syscalls.parse_unistd(header.read_text()) == table


def test_generator_parses_defines_and_renders_a_commented_tsv():
    text = "#define __NR_read 0\n#define __NR_io_uring_enter 426\n#define __X 1\n"
    table = gen_linux_syscalls.parse_unistd(text)
    assert table == {0: "read", 426: "io_uring_enter"}
    tsv = gen_linux_syscalls.render_tsv(table, "test")
    assert tsv.splitlines()[2:] == ["nr\tname", "0\tread", "426\tio_uring_enter"]
    assert LINUX_SYSCALLS_TSV.read_text().startswith("# Linux x86_64 syscall numbers")


def test_bpftrace_tracepoints_exist_in_this_kernel():
    need(AVAILABLE_EVENTS.exists(), "tracefs at /sys/kernel/tracing (mount -t tracefs nodev /sys/kernel/tracing)")
    available = set(AVAILABLE_EVENTS.read_text().split())
    for path in BT_SCRIPTS:
        used = {":".join(d.parts) for d in _descs(path, "tracepoint")}
        assert used and used <= available, (path.name, used - available)


# ---- command lines --------------------------------------------------------------------------------

def test_bpftrace_argv_passes_pid_and_object_as_positional_parameters(tmp_path):
    so = tmp_path / "_engine.so"
    so.write_bytes(b"\x7fELF")
    argv = dscripts.bpftrace_argv("events", 4242, so, bpftrace="bpftrace")
    assert argv == ["bpftrace", "-B", "line", "-p", "4242", str(dscripts.SCRIPTS[("Linux", "events")]), "4242", str(so)]
    agg = dscripts.bpftrace_argv("aggregate", 4242, so, bpftrace="bpftrace")
    assert agg[:5] == ["bpftrace", "-B", "line", "-f", "json"] and agg[-3:] == [str(dscripts.SCRIPTS[("Linux", "aggregate")]), "4242", str(so)]
    assert dscripts.bpftrace_env("events")["BPFTRACE_PERF_RB_PAGES"] == "1024"


@pytest.mark.parametrize("bad, why", [
    ("relative/_engine.so", "absolute"),
    ("/tmp/x y.so", "characters"),
    ("/tmp/x;rm.so", "characters"),
    ("/tmp/a/../b.so", "normalised"),
    ("/nonexistent/_engine.so", "regular file"),
])
def test_bpftrace_argv_refuses_unsafe_or_missing_objects(bad, why):
    with pytest.raises(CaptureError, match=why):
        dscripts.bpftrace_argv("events", 1, bad)


def test_bpftrace_argv_refuses_bad_pid_and_flavour(tmp_path):
    so = tmp_path / "e.so"
    so.write_bytes(b"")
    for pid in (0, -1, True, "12", 1.5):
        with pytest.raises(CaptureError, match="pid"):
            dscripts.bpftrace_argv("events", pid, so)
    with pytest.raises(CaptureError, match="flavour"):
        dscripts.bpftrace_argv("fast", 1, so)
    link = tmp_path / "link.so"
    link.symlink_to(so)
    with pytest.raises(CaptureError, match="regular file"):
        dscripts.bpftrace_argv("events", 1, link)


def test_dtrace_argv_for_both_flavours_pid_and_command():
    ev = dscripts.dtrace_argv("events", pid=4242)
    assert ev == ["dtrace", "-q", "-x", "bufsize=32m", "-x", "switchrate=20hz", "-x", "dynvarsize=16m",
                  "-x", "strsize=32", "-p", "4242", "-s", str(dscripts.SCRIPTS[("FreeBSD", "events")])]
    agg = dscripts.dtrace_argv("aggregate", command=["/usr/local/bin/aiotrace-workload", "--mode", "reap"])
    assert agg[:2] == ["dtrace", "-q"] and "aggsize=4m" in agg
    assert agg[agg.index("-c") + 1] == "/usr/local/bin/aiotrace-workload --mode reap"
    assert agg[-2:] == ["-s", str(dscripts.SCRIPTS[("FreeBSD", "aggregate")])]
    addon = dscripts.dtrace_argv("events", pid=7, d33271=True)
    assert addon[-4:] == ["-s", str(dscripts.SCRIPTS[("FreeBSD", "events")]), "-s", str(dscripts.D33271_ADDON)]


def test_dtrace_argv_refuses_ambiguous_or_unsplittable_input():
    with pytest.raises(CaptureError, match="exactly one"):
        dscripts.dtrace_argv("events")
    with pytest.raises(CaptureError, match="exactly one"):
        dscripts.dtrace_argv("events", pid=1, command=["x"])
    with pytest.raises(CaptureError, match="blanks"):
        dscripts.dtrace_argv("events", command=["/bin/prog", "a file"])
    with pytest.raises(CaptureError, match="blanks"):
        dscripts.dtrace_argv("events", command="/bin/prog  --double-space")
    with pytest.raises(CaptureError, match="events flavour"):
        dscripts.dtrace_argv("aggregate", pid=1, d33271=True)


def test_dtrace_list_argv_names_each_fbt_probe_once():
    argv = dscripts.dtrace_list_argv("events")
    probes = argv[3::2]
    assert argv[:2] == ["dtrace", "-l"] and len(probes) == len(set(probes))
    assert "fbt::aio_free_entry:entry" in probes and all(p.startswith("fbt::") for p in probes)


def test_ready_lines():
    assert dscripts.is_ready_line("Linux", "events", schema.HEADER_LINE + "\n")
    assert not dscripts.is_ready_line("Linux", "events", "Attaching 13 probes...")
    assert dscripts.is_ready_line("Linux", "aggregate", '{"type": "printf", "data": "AIOTRACE-AGG\\tv1\\n"}')
    assert not dscripts.is_ready_line("Linux", "aggregate", '{"type": "attached_probes", "data": {"probes": 13}}')
    assert dscripts.is_ready_line("FreeBSD", "aggregate", "AIOTRACE-AGG\tv1")


def test_every_script_opens_with_a_header_comment_naming_usage_output_cost_and_an_example():
    for path in dscripts.all_scripts():
        head = path.read_text().split("*/")[0]
        for word in ("USAGE", "OUTPUT", "COST", "TRAPS", "EXAMPLE"):
            assert re.search(rf"\b{word}\b", head), (path.name, word)
        if path.suffix == ".d":
            assert "FREEBSD VERSIONS" in head, path.name


# ---- D rules: what dtrace(1) refuses or breaks only on the FreeBSD host (issue 10, defects 1-3) ----

MAIN_7309866 = Path(__file__).parent / "data" / "dscripts_main_7309866"


@pytest.mark.parametrize("path", D_SCRIPTS, ids=lambda p: p.name)
def test_d_scripts_follow_the_d_rules(path):
    assert dscripts.check_d_rules(path.read_text(), path.name) == []


def _old_problems(name):
    return dscripts.check_d_rules((MAIN_7309866 / name).read_text(), name)


def test_d_rule_1_no_ll_conversions_the_old_scripts_had_them():
    for name in ("aiotrace-events.d", "aiotrace-ru-d33271.d"):
        assert any("%lld" in p and "pfcheck_type" in p for p in _old_problems(name)), name
    # and the schema check in the D dialect refuses the old event printfs too
    old = dscripts.check_script_printfs(MAIN_7309866 / "aiotrace-events.d")
    assert any("conversion differs" in p and "'%u'" in p for p in old), old
    for path in D_SCRIPTS:
        for call in dscripts.extract_printfs(path):
            assert not re.search(r"%[-+ #0-9.]*l", call.fmt), (path.name, call.line, call.fmt)


def test_d_rule_2_first_assignment_types_the_variable_old_aq_job_was_int():
    problems = [p for p in _old_problems("aiotrace-events.d") if "first assignment" in p]
    assert len(problems) == 1 and "self->aq_job = 0" in problems[0] and "(int64_t)args[0]" in problems[0]
    # the rule on small programs: a literal first is fine when every later value is a literal too
    ok = "BEGIN { self->a = 0; } END { self->a = 1; self->p = (int64_t)arg0; self->p = 0; }"
    assert dscripts.check_d_rules(ok) == []
    bad = "BEGIN { this->k = 0; } END { this->k = args[0]; }"
    assert any("this->k" in p for p in dscripts.check_d_rules(bad))
    declared = "int x;\nBEGIN { x = 0; } END { x = timestamp; }"
    assert dscripts.check_d_rules(declared) == []
    keyed = "BEGIN { ts[(int64_t)args[0]] = 0; } END { ts[(int64_t)args[0]] = timestamp; }"
    assert any("ts[]" in p for p in dscripts.check_d_rules(keyed)), "associative arrays are typed the same way"


def test_d_rule_3_nullable_pointer_guarded_in_predicate_old_filt_aio_was_not():
    for name in ("aiotrace-events.d", "aiotrace-agg.d"):
        problems = [p for p in _old_problems(name) if "filt_aio" in p]
        assert len(problems) == 1 and "kqueue_register" in problems[0], (name, problems)
    ptr = "args[0]->kn_ptr.p_aio->userproc"
    late = f"fbt::filt_aio:entry\n/{ptr}->p_pid == 1 && {ptr} != NULL/\n{{ trace(1); }}"
    assert dscripts.check_d_rules(late), "a guard after the dereference does not guard"
    body_only = f"fbt::filt_aio:entry\n{{ trace({ptr}->p_pid); }}"
    assert dscripts.check_d_rules(body_only)
    guarded = f"fbt::filt_aio:entry\n/{ptr} != NULL && {ptr}->p_pid == 1/\n{{ trace({ptr}->p_pid); }}"
    assert dscripts.check_d_rules(guarded) == []


def test_d_clauses_split_probe_list_predicate_and_body():
    clauses = dscripts.d_clauses(dscripts.SCRIPTS[("FreeBSD", "events")].read_text())
    filt = [c for c in clauses if "fbt::filt_aio:entry" in c.probes]
    assert len(filt) == 1 and "!= NULL" in filt[0].predicate and "printf" in filt[0].body
    assert clauses[0].probes == ("dtrace:::BEGIN",) and clauses[0].predicate == ""
    assert sum(len(c.probes) for c in clauses) == len(dscripts.probe_descriptions(dscripts.SCRIPTS[("FreeBSD", "events")]))


# ---- <script>_example.txt beside every script ---------------------------------------------------

@pytest.mark.parametrize("path", dscripts.all_scripts(), ids=lambda p: p.name)
def test_every_script_has_an_example_that_parses_and_matches_its_formats(path):
    also = (dscripts.SCRIPTS[("FreeBSD", "events")],) if path == dscripts.D33271_ADDON else ()
    assert dscripts.example_path(path).is_file(), path
    assert dscripts.check_example(path, also) == []


def test_freebsd_examples_say_they_are_not_captures():
    for path in D_SCRIPTS:
        head = dscripts.example_path(path).read_text().split("\n\n")[0]
        assert "NOT A CAPTURE" in head, path.name


def test_example_check_refuses_drifted_or_unparsable_output(tmp_path):
    script = dscripts.SCRIPTS[("FreeBSD", "events")]
    good = dscripts.example_path(script).read_text()
    drifted = tmp_path / "x_example.txt"
    # an event line the script cannot print (an extra field) and a stray annotation
    drifted.write_text(good.replace("\tsys_exit\tkqueue\t0\t0\t0\t0\t3\t0\n", "\tsys_exit\tkqueue\t0\t0\t0\t0\t3\t0\t0\n", 1)
                       .replace("Reading it:", "a note without the marker\nReading it:", 1))
    problems = dscripts.check_example(script, example=drifted)
    assert any("matches no printf" in p for p in problems), problems
    assert any("not parsed" in p and "a note without the marker" in p for p in problems), problems
    headless = tmp_path / "y_example.txt"
    headless.write_text(good.replace(schema.HEADER_LINE, "AIOTRACE\tv0"))
    assert any("no ready line" in p for p in dscripts.check_example(script, example=headless))

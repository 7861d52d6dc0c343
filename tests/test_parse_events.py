"""The event-line parser: real bpftrace output, every kind of side line, broken input, and
property tests (generated event lines round-trip; corrupted input never raises anything but
ParseError and every line is still accounted for)."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO
from tracer.base.errors import ParseError
from tracer.parse import parse_bytes
from tracer.parse.base import count_lines
from tracer.parse.events import linux_syscall_names, parse_events
from tracer.base.schema import EVENT_FIELDS, EVENT_KINDS, HEADER_LINE

EXAMPLE = REPO / "dscripts" / "linux" / "aiotrace-events_example.txt"


def line(*values) -> str:
    return "E\t" + "\t".join(str(v) for v in values)


def test_real_bpftrace_example_excerpt():
    text = EXAMPLE.read_text()
    body = text[text.index("Attaching"):]
    if "\nReading it:" in body:  # the file's own explanation after the output
        body = body[:body.index("\nReading it:") + 1]
    r = parse_events(body.encode())
    n_events = sum(1 for ln in body.splitlines() if ln.startswith("E\t"))
    assert len(r.events) == n_events > 30
    assert r.counts["attach"] == 1 and r.counts["header"] == 1
    assert r.accounted_lines() == r.lines == count_lines(body.encode())
    assert "nr" not in "".join(r.events.loc[r.events["ev"] == "sys_enter", "name"].str[:2].unique())
    assert set(r.unparsed["text"].str.strip()) <= {"[...]"}  # only the file's elision marks


def test_side_lines_are_counted_and_drops_are_losses():
    text = "\n".join([
        "Attaching 13 probes...", HEADER_LINE, line(1, 2, 3, "sys_enter", "nr257", 0, -100, 5, 0, 0, 0),
        "Lost 17 events", "", "dtrace: 4 drops on CPU 1", line(2, 2, 3, "sys_exit", "nr257", 0, 0, 0, 0, 3, 0),
        "hello from the workload", line(3, 2, 3, "job_done", "io_uring_complete", 9, 0, 0, 0, -1, 5),
    ]) + "\n"
    r = parse_events(text.encode())
    assert r.events["name"].tolist() == ["openat", "openat", "io_uring_complete"]
    assert r.events["line"].tolist() == [3, 7, 9]
    assert r.losses["dropped_events"] == 21
    assert r.unparsed[["line", "reason"]].values.tolist() == [[8, "not an event line nor a known tracer message"]]
    assert r.accounted_lines() == r.lines == 9


def test_broken_input_is_unparsed_or_a_loss_never_a_traceback():
    good = line(5, 1, 1, "sys_enter", "nr0", 0, 0, 0, 0, 0, 0)
    text = (HEADER_LINE + "\r\n" + good + "\r\n" + line(6, 1, 1, "sys_exit", "nr0", "x", 0, 0, 0, 0, 0) + "\n"
            + line(7, 1, 1, "bogus_kind", "x", 0, 0, 0, 0, 0, 0) + "\n" + "E\t8\t1\n").encode() \
        + b"\xff\xfe\tgarbage\n" + good.encode()[:-3]
    r = parse_events(text)
    assert len(r.events) == 1 and r.events.loc[0, "ts_ns"] == 5
    reasons = dict(zip(r.unparsed["line"], r.unparsed["reason"]))
    assert reasons[3].startswith("bad field") and reasons[4] == "unknown event kind"
    assert reasons[5] == "event line with a wrong field count"
    assert reasons[7].startswith("truncated last line") and r.losses["dropped_events"] == 1
    assert r.accounted_lines() == r.lines == 7
    empty = parse_events(b"")
    assert empty.lines == 0 and len(empty.events) == 0


def test_nr_names_come_from_the_syscall_table():
    names = linux_syscall_names()
    assert names["nr0"] == "read" and names["nr426"] == "io_uring_enter" and names["nr209"] == "io_submit"


_INT64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=20)
_ROW = st.tuples(st.integers(min_value=0, max_value=(1 << 64) - 1), _INT64, _INT64,
                 st.sampled_from(sorted(EVENT_KINDS)), _NAME, _INT64, _INT64, _INT64, _INT64, _INT64,
                 st.integers(min_value=-(1 << 31), max_value=(1 << 31) - 1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ROW, min_size=1, max_size=40))
def test_generated_event_lines_round_trip(rows):
    text = HEADER_LINE + "\n" + "".join(line(*r) + "\n" for r in rows)
    r = parse_events(text.encode())
    assert len(r.unparsed) == 0 and len(r.events) == len(rows)
    names = linux_syscall_names()
    for got, want in zip(r.events.itertuples(index=False), rows):
        want = list(want)
        want[4] = names.get(want[4], want[4])
        assert list(got)[:len(EVENT_FIELDS)] == want


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ROW, min_size=1, max_size=20), st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=4)),
                                                         max_size=6),
       st.sampled_from(["events", "auto", "kdump", "truss", "strace", "dtrace", "bpftrace"]))
def test_corrupted_input_raises_only_parse_error(rows, edits, fmt):
    data = bytearray((HEADER_LINE + "\n" + "".join(line(*r) + "\n" for r in rows)).encode())
    for pos, junk in edits:
        pos = pos % (len(data) + 1)
        data[pos:pos + len(junk)] = junk
    try:
        r = parse_bytes(bytes(data), fmt)
    except ParseError:
        return
    assert r.accounted_lines() == r.lines == count_lines(bytes(data))
    assert isinstance(r.events, pd.DataFrame) and isinstance(r.unparsed, pd.DataFrame)


def test_large_file_goes_through_pyarrow_not_the_fallback(monkeypatch):
    from tracer.parse import events as events_mod

    def boom(*a, **k):
        raise AssertionError("per-line fallback used on clean input")

    monkeypatch.setattr(events_mod, "_fallback", boom)
    rows = "".join(line(i, 1, 2, "sys_enter", "nr1", 0, i, 0, 0, 0, 0) + "\n" for i in range(20_000))
    r = parse_events(("Attaching 1 probe...\n" + HEADER_LINE + "\n" + rows + "Lost 2 events\n").encode())
    assert len(r.events) == 20_000 and r.events["a0"].iloc[-1] == 19_999 and r.losses["dropped_events"] == 2


def test_cli_json_lines_equal_the_file_line_count_and_strict(tmp_path):
    trace = tmp_path / "events.txt"
    trace.write_text("Attaching 1 probe...\n" + HEADER_LINE + "\n" + line(1, 1, 1, "sync", "s", 0, 0, 0, 0, 0, 0)
                     + "\nnoise\n")
    cmd = [sys.executable, "-m", "tracer.cli", "parse", "--json", str(trace)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    import json

    obj = json.loads(out.stdout)
    assert obj["format"] == "events" and obj["lines"] == 4 == len(trace.read_text().splitlines())
    assert obj["records"] == 1 and obj["unparsed"] == 1 and set(obj) >= {"format", "lines", "records", "unparsed", "losses"}
    strict = subprocess.run(cmd + ["--strict"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert strict.returncode == 2 and "events.txt:4:" in strict.stderr and "noise" in strict.stderr
    assert len(strict.stderr.strip().splitlines()) == 1


def test_wrong_field_count_inside_a_clean_file_is_found_on_the_fast_path():
    good = [line(i, 1, 1, "sys_enter", "nr0", 0, 0, 0, 0, 0, 0) for i in range(5)]
    text = "\n".join([HEADER_LINE, *good[:2], "E\t8\t1", *good[2:], line(9, 1, 1, "sys_exit", "nr0", 0, 0, 0, 0, 0, 0)
                      + "\t7"]) + "\n"
    r = parse_events(text.encode())
    assert r.events["line"].tolist() == [2, 3, 5, 6, 7]
    assert r.unparsed[["line", "reason"]].values.tolist() == [[4, "event line with a wrong field count"],
                                                             [8, "event line with a wrong field count"]]


def test_wrong_format_and_empty_file_are_clear_errors(tmp_path):
    import pytest

    strace = b"1700000000.000001 read(3, \"\", 4096) = 0 <0.000002>\n"
    with pytest.raises(ParseError, match="no line is kdump output"):
        parse_bytes(strace, "kdump")
    from tracer.parse import parse_file

    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ParseError, match="empty trace file"):
        parse_file(empty)
    assert parse_file(empty, "events").lines == 0  # a tracer that printed nothing: zero lines, no error


def test_cli_parses_a_bundle_directory_and_reuses_its_parquet_cache(tmp_path):
    import json
    import shutil

    bundle = tmp_path / "b"
    shutil.copytree(REPO / "tests" / "data" / "freebsd" / "reap" / "truss-split-d33271", bundle,
                    ignore=shutil.ignore_patterns("*-v*"))
    cmd = [sys.executable, "-m", "tracer.cli", "parse", "--json", str(bundle)]
    runs = [subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=60) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    first, second = (json.loads(r.stdout) for r in runs)
    assert first["format"] == "truss" and first["unparsed"] == 0
    assert first["lines"] == len((bundle / "raw" / "truss.txt").read_text().splitlines())
    assert (first["cached"], second["cached"]) == (False, True) and first["records"] == second["records"]
    assert (bundle / "cache").is_dir() and list((bundle / "cache").glob("*-truss-v*/events.parquet"))
    text = subprocess.run([sys.executable, "-m", "tracer.cli", "parse", str(bundle / "raw" / "truss.txt")],
                          capture_output=True, text=True, cwd=REPO, timeout=60).stdout
    assert "format truss (detected)" in text and "unparsed 0" in text


def test_syscall_names_fall_back_to_the_kernel_header(monkeypatch, tmp_path):
    import tracer.data
    from tracer.parse import events as events_mod

    table = linux_syscall_names()
    header = tmp_path / "unistd_64.h"
    header.write_text("".join(f"#define __NR_{name} {nr[2:]}\n" for nr, name in table.items()))
    monkeypatch.setattr(tracer.data, "LINUX_SYSCALLS_TSV", tmp_path / "missing.tsv")
    monkeypatch.setattr(tracer.data, "UNISTD_H", header)
    caches = (events_mod.linux_syscall_names, tracer.data.linux_syscall_names)
    for c in caches:
        c.cache_clear()
    try:
        assert events_mod.linux_syscall_names() == table
        monkeypatch.setattr(tracer.data, "UNISTD_H", tmp_path / "no-header.h")
        for c in caches:
            c.cache_clear()
        assert events_mod.linux_syscall_names() == {}
    finally:
        for c in caches:
            c.cache_clear()


def test_bpftrace_silent_output_loss_is_counted_from_the_emitted_trailer():
    from tracer.parse.events import parse_events
    from tracer.base.schema import HEADER_LINE
    ev = "E\t{ts}\t10\t11\tblk_done\tblock_rq_complete\t0\t8\t{ts}\t4096\t0\t0\n"
    body = HEADER_LINE + "\n" + "".join(ev.format(ts=100 + i) for i in range(3))
    ok = parse_events((body + "\n@emitted[blk_done]: 3\n").encode())
    assert ok.losses["dropped_events"] == 0 and ok.counts.get("emitted") == 1
    short = parse_events((body + "\n@emitted[blk_done]: 5\n@emitted[reap]: 2\n").encode())
    assert short.losses["dropped_events"] == 2 + 2
    assert any("blk_done: 5 lines printed in the kernel, 3 arrived" in m for m in short.losses["messages"])
    assert len(short.unparsed) == 0

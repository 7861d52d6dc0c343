"""Parsers never crash: on any bytes and on any JSON values, every parser either raises its own
ParseError or returns a result in which every input line is accounted for exactly once.

The byte fuzzers splice random tokens of each format's grammar (prefixes, numbers far beyond
64 bits, braces, quotes, the tracers' own keywords) into lines, so the inputs reach deep into the
parsers, not only their "unknown line" branch. The JSON fuzzer builds bpftrace ``-f json``
records of every type with values of every JSON type."""
from __future__ import annotations

import json

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer.base.errors import ParseError
from tracer.parse import parse_bytes
from tracer.parse.base import count_lines

FORMATS = ["events", "dtrace", "bpftrace", "kdump", "truss", "strace", "auto"]
HUGE = ["99999999999999999999", "18446744073709551616", "-9223372036854775809", "0xffffffffffffffffff",
        "340282366920938463463374607431768211456"]
TOKENS = {
    "strace": ["[pid ", "] ", "12:00:01.123456 ", "1700000000.123456 ", "0.000123 ", "read(", "io_submit(",
               "3</tmp/f>", ", ", '"ab\\"c"...', "{aio_data=1, ", "}", "[", "]", ") = ", "-1 EAGAIN (x)",
               " <0.000010>", " <unfinished ...>", "<... read resumed>", "--- SIGCHLD {si_pid=1} ---",
               "+++ exited with 0 +++", "(+ 0.000001) ", "?", "strace: Process 5 attached"],
    "truss": ["123 ", "100456: ", "1/1: ", "0.000100000 ", "1.234 ", "aio_read(", "kevent(", "{ ", " }", ",",
              "EVFILT_AIO", "EV_ERROR", ") = ", " (0x1)", "ERR#35 'x'", "<new thread 5>", "sys totals: ",
              "syscall  seconds  calls  errors", "kaio(AIOWRITE, ", "aiowait(0x0)", "\t"],
    "kdump": [" 123 ", "100234 ", "prog ", "1700000000.123456789 ", "CALL  ", "RET   ", "STRU  ",
              "struct kevent[] = { ", "{ ident=0x1, filter=EVFILT_AIO, flags=0x4000<EV_ERROR>, fflags=0, "
              "data=0x5, udata=0x0 }", "kevent(", "0x3,", ")", "-1 errno ", "JUSTRETURN", "Events dropped.",
              "             ", "GIO   fd 1 wrote 3 bytes", "NAMI  \"x\""],
    "dtrace": ["dtrace: ", "12 drops on CPU 0", "error on enabled probe ID 1 (ID 2: a:b:c:d): x",
               "value  ------------- Distribution ------------- count", "    16 |@@@@      ", "  < 0 |", " 3",
               "              unix`mutex_enter+0x10", "              libc.so.1`_write+0x8", "A\t@a\tk\t",
               "H\t@h\tk", "CPU     ID                    FUNCTION:NAME", "  0  123   read:entry ",
               "key  min .------------------. max | count", "  bash ", "PID   COMM   BYTES", "^C", "..."],
    "bpftrace": ["@x[", "]: ", "@h:", "[4, 8)", "  12 |@@@@   |", "(..., 0)", "[1K, 2K)", "Attaching 3 probes...",
                 "Lost ", " events", "E\t1\t2\t3\tsys_enter\tread\t0\t0\t0\t0\t0\t0", "...", "WARNING: x"],
    "events": ["AIOTRACE\tv1\tts_ns", "E\t", "\t", "sys_exit", "nr1", "-1", "Lost 3 events"],
}
_ALL = sorted({t for ts in TOKENS.values() for t in ts}) + HUGE + ["0", "-1", "7", " ", "\r", "\x00", "\xff", "é"]


def _line(tokens: list[str]) -> str:
    return "".join(tokens)


_TEXT = st.lists(st.lists(st.sampled_from(_ALL), max_size=12).map(_line), min_size=1, max_size=25)


def _check(data: bytes, fmt: str) -> None:
    try:
        r = parse_bytes(data, fmt)
    except ParseError:
        return
    assert r.lines == count_lines(data)
    assert r.accounted_lines() == r.lines, (r.counts, len(r.unparsed))
    assert isinstance(r.events, pd.DataFrame) and isinstance(r.unparsed, pd.DataFrame)
    if len(r.events):
        assert str(r.events["ts_ns"].dtype) == "uint64" and str(r.events["pid"].dtype) == "int64"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT, st.sampled_from(FORMATS), st.booleans())
def test_grammar_token_soup_never_crashes_any_parser(lines, fmt, final_newline):
    text = "\n".join(lines) + ("\n" if final_newline else "")
    _check(text.encode("utf-8", errors="surrogatepass"), fmt)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.sampled_from(FORMATS))
def test_raw_bytes_never_crash_any_parser(data, fmt):
    _check(data, fmt)


_JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(1 << 80), max_value=1 << 80),
                         st.floats(allow_nan=False), st.text(max_size=6))
_JSON = st.recursive(_JSON_SCALAR, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                          st.dictionaries(st.text(max_size=4), kids, max_size=3)),
                     max_leaves=10)
_TYPES = ["map", "hist", "stats", "tseries", "printf", "time", "cat", "join", "syscall", "value", "lost_events",
          "attached_probes", "helper_error", "runtime_error", "print_error", "benchmark_results", "nope"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_TYPES), _JSON, st.sampled_from(["data", "count", "msg"]),
                          st.sampled_from(["", "@m", "@h"])), min_size=1, max_size=6))
def test_bpftrace_json_records_with_any_values_never_crash(records):
    lines = []
    for kind, value, field, name in records:
        body = {name: value} if name else value
        lines.append(json.dumps({"type": kind, field: body}))
    _check(("\n".join(lines) + "\n").encode(), "bpftrace")


def test_numbers_beyond_64_bits_are_unparsed_lines_not_crashes_or_wraps():
    cases = {
        "strace": "[pid 99999999999999999999] 12:00:00.123 read(3, \"x\", 4) = 4 <0.000001>\n",
        "truss": "99999999999999999999 99999999999999999999: 0.000000001 read(3,0x0,4) = 4 (0x4)\n",
        "kdump": " 99999999999999999999 99999999999999999999 prog 1.000000 CALL read(0x3,0x0,0x4)\n",
    }
    for fmt, bad in cases.items():
        good = {"strace": "[pid 7] 12:00:00.123 read(3, \"x\", 4) = 4 <0.000001>\n",
                "truss": "7 8: 0.000000001 read(3,0x0,4) = 4 (0x4)\n",
                "kdump": " 7 8 prog 1.000000 CALL read(0x3,0x0,0x4)\n"}[fmt]
        r = parse_bytes((good + bad).encode(), fmt)
        assert r.accounted_lines() == r.lines == 2
        assert list(r.unparsed["line"]) == [2] and "64-bit" in r.unparsed["reason"].iloc[0], fmt
        assert (r.events["line"] == 1).all() and len(r.events)


def test_dtrace_printa_values_beyond_64_bits_do_not_wrap():
    text = ("A\t@bytes\tbash\t18446744073709551615\n"   # 2^64 - 1: a uint64 dtrace can print
            "A\t@bytes\tsh\t18446744073709551616\n"     # 2^64: no dtrace value; was wrapped to 0
            "  ksh                                99999999999999999999999\n")
    r = parse_bytes(text.encode(), "dtrace")
    agg = r.aggregates.set_index("key")
    assert agg.loc["bash", "value"] == float(2 ** 64 - 1) and agg.loc["bash", "text"] == "18446744073709551615"
    assert sorted(r.unparsed["line"]) == [2, 3]
    assert all("64-bit" in why for why in r.unparsed["reason"])

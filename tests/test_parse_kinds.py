"""The output kinds of issue 15, one by one: each becomes records or counted diagnostics.

Inputs are real tool output (tests/data/strace_flags: strace 6.1 run here with each documented
flag combination; tests/data/samples: public sources, see SOURCES.md) or text written to the
tools' documented formats. The C line scanners are checked against the Python readers they stand
in for, line for line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, SAMPLES, need
from tracer.parse import parse_bytes, scan
from tracer.parse.base import count_lines

FLAGS = REPO / "tests" / "data" / "strace_flags"
FLAG_FILES = sorted(p.name for p in FLAGS.glob("*.txt"))
CLOCKS = {"f-tt-T.txt": "wallclock", "f-ttt-T-y.txt": "realtime", "f-r-tt-T.txt": "wallclock", "f-r.txt": "relative",
          "f-yy-X-raw-T.txt": "none", "f-X-verbose-tt.txt": "wallclock", "f-ttt-e-signal.txt": "realtime",
          "f-tt-T-e-trace-signals-fork.txt": "wallclock", "no-flags.txt": "none", "f-k-backtraces.txt": "none"}


def _parse(path: Path, fmt="auto"):
    return parse_bytes(path.read_bytes(), fmt)


@pytest.mark.parametrize("name", FLAG_FILES)
def test_every_strace_flag_combination_parses_every_line(name):
    r = _parse(FLAGS / name)
    assert r.format == "strace" and len(r.unparsed) == 0 and r.accounted_lines() == r.lines
    assert r.clock == CLOCKS.get(name, "wallclock")
    ev = r.events
    assert (ev["ev"] == "sys_enter").sum() >= r.counts["record"] - (ev["ev"] == "sys_exit").sum()
    if name.startswith("ff-"):
        assert (ev["pid"] == 0).all()  # -ff -o: one file per pid, no prefix
    elif name.startswith("f-"):
        assert ev["pid"].nunique() >= 1 and (ev["pid"] > 0).all()


def test_strace_relative_absolute_and_duration_on_one_line():
    r = _parse(FLAGS / "f-r-tt-T.txt")
    first = r.events.iloc[:2]
    line = (FLAGS / "f-r-tt-T.txt").read_text().splitlines()[0]
    assert "(+ " in line and line.endswith(">")
    hh, mm, ss = line.split()[1].split(":")
    assert first.iloc[0]["ts_ns"] == round(((int(hh) * 60 + int(mm)) * 60 + float(ss)) * 1e9)
    dur_ns = round(float(line.rsplit("<", 1)[1].rstrip(">")) * 1e9)
    assert first.iloc[1]["ts_ns"] - first.iloc[0]["ts_ns"] == dur_ns


def test_strace_r_alone_is_a_running_sum_of_deltas():
    text = (FLAGS / "f-r.txt").read_text().splitlines()
    running, at_line = 0, {}
    for ln, line in enumerate(text, 1):
        body = line.split(None, 2)[2]
        if not body.startswith(("+++", "---")):  # records: their -r delta adds up
            running += round(float(line.split()[1]) * 1e9)
            at_line[ln] = running
    ev = _parse(FLAGS / "f-r.txt").events
    enters = ev[ev["ev"] == "sys_enter"]
    assert [at_line[ln] for ln in enters["line"]] == enters["ts_ns"].astype("int64").tolist()
    assert np.all(np.diff(enters["ts_ns"].astype("int64").to_numpy()) >= 0)


def test_strace_y_and_X_verbose_arguments_keep_their_numbers():
    ev = _parse(FLAGS / "f-X-verbose-tt.txt").events
    op = ev[(ev["name"] == "openat") & (ev["ev"] == "sys_enter")].iloc[0]
    assert op["a0"] == -100 and op["a2"] == 0x80000  # -100 /* AT_FDCWD */, 0x80000 /* O_RDONLY|O_CLOEXEC */
    ev = _parse(FLAGS / "f-ttt-T-y.txt").events
    rd = ev[(ev["name"] == "read") & (ev["ev"] == "sys_enter")].iloc[0]
    assert rd["a0"] == 3 and rd["a2"] == 832  # read(3</...libpython...>, "..."..., 832)


def test_strace_i_n_columns_and_k_backtraces():
    r = _parse(FLAGS / "f-tt-i-n-T.txt")
    assert set(r.events["name"]) >= {"read", "close"} and r.clock == "wallclock"
    r = _parse(FLAGS / "f-k-backtraces.txt")
    assert r.counts["backtrace"] > 0 and r.counts["backtrace"] + r.counts["record"] + r.counts.get("exit", 0) \
        + r.counts.get("strace_message", 0) + r.counts.get("signal", 0) == r.lines


def test_strace_signals_unfinished_resumed_and_exit_from_a_real_run():
    r = _parse(FLAGS / "f-tt-T-e-trace-signals-fork.txt")
    assert r.counts["signal"] == 2 and r.counts["exit"] == 2
    ev = r.events
    wait = ev[ev["name"] == "wait4"]
    assert list(wait["ev"]) == ["sys_enter", "sys_exit"] and wait["ret"].iloc[1] == wait["pid"].iloc[1] + 2
    assert (ev[ev["name"] == "exit_group"]["ev"] == "sys_enter").all()  # `= ?`: no exit row


def _frames(r):
    cols = ["ts_ns", "pid", "tid", "ev", "name", "id", "a0", "a1", "a2", "ret", "err", "line"]
    return r.events[cols].astype({"ev": object, "name": object}).reset_index(drop=True)


def _same(data: bytes, fmt: str, monkeypatch) -> None:
    fast = parse_bytes(data, fmt)
    with monkeypatch.context() as m:
        m.setattr(scan, "lib", None)
        slow = parse_bytes(data, fmt)
    pd.testing.assert_frame_equal(_frames(fast), _frames(slow), check_dtype=False)
    assert fast.counts == slow.counts and fast.clock == slow.clock
    if fast.aggregates is not None or slow.aggregates is not None:
        pd.testing.assert_frame_equal(fast.aggregates, slow.aggregates, check_dtype=False)
    assert fast.unparsed.reset_index(drop=True).equals(slow.unparsed.reset_index(drop=True))
    assert fast.losses == slow.losses


def test_c_scanner_reads_every_real_strace_output_as_the_python_reader_does(monkeypatch):
    need(scan.lib is not None, "the C line scanner (make setup builds it)")
    files = [FLAGS / n for n in FLAG_FILES] + sorted((SAMPLES / "strace").glob("*.txt"))
    for path in files:
        _same(path.read_bytes(), "strace", monkeypatch)


def test_c_scanners_read_every_real_truss_kdump_and_dtrace_output_as_the_python_readers_do(monkeypatch):
    need(scan.lib is not None, "the C line scanner (make setup builds it)")
    fx = REPO / "tests" / "data" / "freebsd"
    for fmt in ("truss", "kdump", "dtrace"):
        files = sorted((SAMPLES / fmt).glob("*.txt")) + sorted(fx.glob(f"*/*/raw/{fmt}.txt"))
        assert files
        for path in files:
            _same(path.read_bytes(), fmt, monkeypatch)


_TRUSS_PARTS = ["123 ", "100456: ", "1/1: ", "/2: ", "0.000100000 ", "1.234 ", "aio_read(", "aio_error(", "kevent(",
                "getrusage(", "read(", "{ 3,8192,0x800c00000,8192,LIO_NOP,{ sigev_notify=SIGEV_NONE } }", "{ ", " }",
                ",", "0x7fff", "EVFILT_AIO", "EV_ERROR", "RUSAGE_THREAD", ")", " = 0 (0x0)", " = 4096 (0x1000)",
                " ERR#35 'Resource temporarily unavailable'", " ERESTART", " EJUSTRETURN", "\t", " = 3", " Err#2 ENOENT",
                "<new thread 5>", "99999999999999999999", "kaio(AIOWRITE, ", "\"a,b\"", "timeout: 1.0 sec"]
_KDUMP_PARTS = [" 123 ", "100234 ", "12:7 ", "prog ", "my prog ", "1700000000.123456789 ", "0.000012 ", "-0.5 ", "3 ",
                "CALL  ", "RET   ", "STRU  ", "NAMI  ", "GIO   ", "F64  ", "read(", "kevent(", "aio_return(", "0x3,",
                "0x4,", "AT_FDCWD,", ")", "read ", "kevent ", "4096", "4096/0x1000", "-1 errno 4 Interrupted",
                "RESTART", "JUSTRETURN", "struct kevent[] = { ", "{ ident=0x1, filter=EVFILT_AIO, flags=0x4000<EV_ERROR>, "
                "fflags=0, data=0x5, udata=0x0 }", "             ", " }", "Events dropped.", "\"x\"", "99999999999999999999"]


_DTRACE_PARTS = ["  ", "   ", "\t", "value", "  ------------- Distribution ------------- count", "|", "@@@", " | ",
                 "16", "-3", "< 0", ">= 40", "1234567890123456789", "unix`mutex_enter+0x10", "libc.so.1`_write+0x8",
                 "0x104d08831", "java/lang/Thread.run()V", "(", ")", "12345", "0.4%", "98.7%", " 7", "# ./x", "$ ",
                 "dtrace: 12 drops on CPU 0", "E\t", "bash", "`", "key  min .------. max | count", " : ", "\u2588",
                 "CPU     ID                    FUNCTION:NAME", "\x0b", "\x1c", "\xa0"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["truss", "kdump", "dtrace"]), st.data())
def test_c_scanners_agree_with_the_python_readers_on_any_truss_kdump_or_dtrace_like_line(monkeypatch, fmt, data):
    need(scan.lib is not None, "the C line scanner (make setup builds it)")
    parts = {"truss": _TRUSS_PARTS, "kdump": _KDUMP_PARTS, "dtrace": _DTRACE_PARTS}[fmt]
    lines = data.draw(st.lists(st.lists(st.sampled_from(parts), max_size=10).map("".join), min_size=1, max_size=12))
    payload = ("\n".join(lines) + "\n").encode()
    try:
        _same(payload, fmt, monkeypatch)
    except Exception as exc:
        from tracer.base.errors import ParseError
        if not isinstance(exc, ParseError):
            raise


_STRACE_PARTS = ["[pid 12] ", "12  ", "12:00:01.123456 ", "1700000000.123456 ", "     0.000012 ", "(+ 0.000001) ",
                 "read(", "io_submit(", "3</tmp/f>", "-100 /* AT_FDCWD */", ", ", '"ab\\"c"...', "{aio_data=1, ",
                 "}", "[", "]", ")", " = ", "-1", "0x7f", "?", " EAGAIN (Resource temporarily unavailable)",
                 " <0.000010>", " <unfinished ...>", "<... read resumed>", "--- SIGCHLD {si_pid=1} ---",
                 "+++ exited with 0 +++", "99999999999999999999", " ", "\t", "AT_FDCWD"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.sampled_from(_STRACE_PARTS), max_size=10).map("".join), min_size=1, max_size=12))
def test_c_scanner_agrees_with_the_python_reader_on_any_strace_like_line(monkeypatch, lines):
    need(scan.lib is not None, "the C line scanner (make setup builds it)")
    data = ("\n".join(lines) + "\n").encode()
    try:
        _same(data, "strace", monkeypatch)
    except Exception as exc:  # a ParseError must be raised by both sides alike
        from tracer.base.errors import ParseError
        if not isinstance(exc, ParseError):
            raise


# --- truss ----------------------------------------------------------------------------------

SOLARIS = """\
12345/1:\t 0.0000\t 0.0000\texecve("/usr/bin/aiotest", 0xFFBFFC3C, 0xFFBFFC44)  argc = 2
12345/1:\t      argv: aiotest -n 4
12345/1:\t 0.0013\t 0.0013\topen("/var/ld/ld.config", O_RDONLY)\t\tErr#2 ENOENT
12345/2:\t 0.0031\t 0.0018\tlwp_park(0x00000000, 0)\t\t\t= 0
12345/1:\t 0.0042\t 0.0011\tread(3, 0x08047A10, 512)\t(sleeping...)
12345/1:\t 0.0102\t 0.0060\tread(3, "hello", 512)\t\t= 5
12345/1:\t    Received signal #18, SIGCLD, in waitid() [caught]
12345/1:\t      siginfo: SIGCLD CLD_EXITED pid=12346 status=0x0000
12345/1:\t 0.0200\t 0.0098\tpipe()\t\t\t\t= 3 [4]
12345/3:\t 0.0300\t 0.0100\tkaio(AIOWRITE, 3, 0x08050000, 8192, 0, 0x08047E00) = 0
12345/3:\t 0.0310\t 0.0010\tkaio(AIOWAIT, 0x08047D00)\t\t= 134512128
12345/3:\t         timeout: 0.000000 sec
"""


def test_solaris_truss_f_pid_lwp_time_columns_and_kaio():
    r = parse_bytes(SOLARIS.encode(), "auto")
    assert r.format == "truss" and len(r.unparsed) == 0 and r.accounted_lines() == r.lines
    assert r.counts["detail"] == 4 and r.counts["sleeping"] == 1 and r.counts["record"] == 7
    assert r.clock == "relative"
    ev = r.events
    assert set(zip(ev["pid"], ev["tid"])) == {(12345, 1), (12345, 2), (12345, 3)}
    op = ev[(ev["name"] == "open") & (ev["ev"] == "sys_exit")].iloc[0]
    assert (op["ret"], op["err"], op["ts_ns"]) == (-1, 2, 1_300_000)
    assert ev[(ev["name"] == "pipe") & (ev["ev"] == "sys_exit")]["ret"].item() == 3
    kaio = ev[(ev["name"] == "kaio") & (ev["ev"] == "sys_enter")]
    assert list(kaio["a0"]) == [1, 2]  # AIOWRITE, AIOWAIT (illumos sys/aio.h)
    assert ev[(ev["name"] == "kaio") & (ev["ev"] == "sys_exit")]["ret"].tolist() == [0, 134512128]
    r = _parse(SAMPLES / "truss" / "12-solaris-kaio-aiowrite-aiowait-lwp.txt")
    assert r.format == "truss" and r.counts == {"record": 7, "detail": 3} and (r.events["tid"] == 1).all()


def test_dtruss_rows_with_return_errno_and_microsecond_columns():
    r = _parse(SAMPLES / "truss" / "13-solaris-dtruss-n-ksh-pid-lwp-return-errno.txt")
    assert r.format == "truss" and r.counts == {"header": 1, "record": 8} and len(r.unparsed) == 0
    ex = r.events[r.events["ev"] == "sys_exit"]
    assert ex["ret"].iloc[0] == 3662 and (ex["err"] == 0).all() and (r.events["tid"] == 1).all()
    text = " PID/LWP   RELATIVE  ELAPSD SYSCALL(args)  = return\n 9/1:   1500   20 open(\"/x\\0\", 0x0, 0x0)  = -1 2\n"
    r = parse_bytes(text.encode(), "truss")
    ex = r.events[r.events["ev"] == "sys_exit"].iloc[0]
    assert (ex["ret"], ex["err"], ex["ts_ns"]) == (-1, 2, 1_500_000) and r.clock == "relative"
    assert r.events[r.events["ev"] == "sys_enter"]["ts_ns"].item() == 1_480_000  # RELATIVE - ELAPSD


# --- dtrace -----------------------------------------------------------------------------------

STACKS = """\
CPU     ID                    FUNCTION:NAME
  1  70437                         :tick-5s

  bash
              libc.so.1`__read+0x15
              bash`rl_getc+0x3a
              bash`main+0x5b
               27

              genunix`fop_read+0x29
              genunix`read+0x2a4

              libc.so.1`__read+0x15
              java/lang/Thread.run()V
                3
              unix`mutex_enter+0x10
           value  ------------- Distribution ------------- count
            1024 |                                         0
            2048 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 5
            4096 |                                         0

"""


def test_dtrace_stack_ustack_jstack_keys_with_blank_lines_and_histograms():
    r = parse_bytes(STACKS.encode(), "dtrace")
    assert len(r.unparsed) == 0 and r.accounted_lines() == r.lines == count_lines(STACKS.encode())
    agg = r.aggregates
    stacks = agg[agg["kind"] == "stack"]
    assert list(stacks["value"]) == [27, 3]
    assert stacks["key"].iloc[0] == "bash;libc.so.1`__read+0x15;bash`rl_getc+0x3a;bash`main+0x5b"
    assert stacks["key"].iloc[1] == "genunix`fop_read+0x29;genunix`read+0x2a4;--;libc.so.1`__read+0x15;" \
                                    "java/lang/Thread.run()V"
    hist = agg[agg["kind"] == "hist"]
    assert set(hist["key"]) == {"unix`mutex_enter+0x10"} and list(hist["count"]) == [0, 5, 0]


def test_dtrace_real_stack_samples_give_one_record_per_stack():
    r = _parse(SAMPLES / "dtrace" / "20-illumos-stack-ustack-rust-tick-10ms.txt")
    stacks = r.aggregates[r.aggregates["kind"] == "stack"]
    assert len(stacks) == 4 and list(stacks["value"]) == [1, 1, 1, 1] and len(r.unparsed) == 0
    assert ";--;libc.so.1`__pwrite+0xa;" in stacks["key"].iloc[1]  # stack(), blank, ustack() in one key
    r = _parse(SAMPLES / "dtrace" / "21-macos-jstack-hex-addresses-tick-60s.txt")
    stacks = r.aggregates[r.aggregates["kind"] == "stack"]
    assert list(stacks["value"]) == [1, 1, 2] and stacks["key"].iloc[2].endswith("0x5a3ef800758e")
    assert "JavaCalls::call_helper(JavaValue*, methodHandle*, JavaCallArguments*, Thread*)+0x6ae" in stacks["key"].iloc[0]


PRINTA = """\
dtrace: script 'rw.d' matched 4 probes
dtrace: 12 dynamic variable drops with non-empty dirty list
dtrace: error on enabled probe ID 4 (ID 5: syscall::read:return): invalid address (0x0) in action #1 at DIF offset 28
dtrace: failed to grab pid 123: no such process
bash reads: 12 bytes: 4096
  sshd                   7          9
     1234                5
  unix`cpu_halt                                    12345
  kernel                                             874   0.4%
"""


def test_dtrace_printa_user_formats_several_aggregations_and_dtrace_lines():
    r = parse_bytes(PRINTA.encode(), "dtrace")
    assert len(r.unparsed) == 0 and r.counts["probe_error"] == 1 and r.counts["dtrace_message"] == 1
    assert r.losses["dropped_events"] == 12
    rows = r.aggregates[r.aggregates["kind"] == "printa"].set_index("line")
    assert rows.loc[5, "value"] == 4096 and rows.loc[5, "key"] == "bash reads: 12 bytes:"
    assert rows.loc[6, "values"] == "7,9" and rows.loc[6, "value"] == 9  # one printa, two aggregations
    assert rows.loc[7, "key"] == "1234" and rows.loc[7, "value"] == 5  # @[pid]: numeric key
    assert rows.loc[8, "key"] == "unix`cpu_halt" and rows.loc[8, "value"] == 12345  # @[func(arg0)], not a stack
    assert rows.loc[9, "value"] == 874 and rows.loc[9, "text"] == "0.4%"


def test_dtrace_printa_rows_alone_are_recognised_as_dtrace():
    text = "  bash                        12\n  sshd                       140\n  Xorg                      7424\n"
    r = parse_bytes(text.encode(), "auto")
    assert r.format == "dtrace" and r.aggregates["value"].tolist() == [12, 140, 7424]


def test_every_dtrace_diagnostic_line_is_counted_in_event_line_output_too():
    from tracer.base.schema import HEADER_LINE
    text = (HEADER_LINE + "\nE\t1\t2\t3\tsys_enter\tread\t0\t0\t0\t0\t0\t0\n"
            "dtrace: WARNING: dtrace_dof_maxsize exceeded\ndtrace: 3 dynamic variable drops\n")
    r = parse_bytes(text.encode(), "events")
    assert len(r.unparsed) == 0 and r.counts["dtrace_message"] == 1 and r.losses["dropped_events"] == 3


LQ = """\
  ksh                                                 3
           value  ------------- Distribution ------------- count
             < 0 |                                         0
               0 |@@@@@@@@@@@@@@@@@@@@                     2
              10 |@@@@@@@@@@@@@@@@@@@@                     2
           >= 20 |                                         0

        42
           value  ------------- Distribution ------------- count
         1000000 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 1
         2000000 |                                         0
"""


def test_dtrace_lquantize_llquantize_under_string_and_numeric_keys():
    r = parse_bytes(LQ.encode(), "dtrace")
    assert len(r.unparsed) == 0
    hist = r.aggregates[r.aggregates["kind"] == "hist"]
    assert list(hist["key"].unique()) == ["ksh                                                 3", "42"]
    first = hist[hist["key"].str.startswith("ksh")]
    assert first["lo"].iloc[0] == float("-inf") and first["hi"].iloc[-1] == float("inf")
    assert hist[hist["key"] == "42"]["lo"].tolist() == [1e6, 2e6]


def test_dtrace_toolkit_columns_and_hotkernel_module_mode():
    r = _parse(SAMPLES / "dtrace" / "22-freebsd-handbook-hotkernel-m-module-counts.txt")
    cols = r.aggregates[r.aggregates["kind"] == "columns"]
    assert len(cols) == 12 and set(cols["map"]) == {"MODULE COUNT PCNT"} and cols["value"].iloc[-1] == 213781
    assert r.counts["banner"] == 1 and r.counts["prompt"] == 1 and len(r.unparsed) == 0
    r = _parse(SAMPLES / "dtrace" / "23-freebsd-handbook-procsystime-columns.txt")
    cols = r.aggregates[r.aggregates["kind"] == "columns"].set_index("line")
    assert cols["map"].iloc[0] == "SYSCALL TIME (ns)" and cols["value"].iloc[-1] == 3988049784
    r = _parse(SAMPLES / "dtrace" / "24-solaris-toolkit-pfilestat-mixed-case-columns.txt")
    cols = r.aggregates[r.aggregates["kind"] == "columns"]
    assert r.format == "dtrace" and r.counts["prompt"] == 1 and r.counts["header"] == 2 and len(cols) == 7
    assert list(cols["map"].unique()) == ["STATE FDNUM Time Filename", "STATE FDNUM KB/s Filename"]
    assert cols["key"].iloc[0] == "read,3,2%,/devices/pci@0,0/pci-ide@1f,1/ide@0/cmdk@0,0" and cols["value"].iloc[-1] == 53479


# --- bpftrace ---------------------------------------------------------------------------------

def test_bpftrace_abridged_output_and_uprobe_printf_with_str():
    text = ("Attaching 2 probes...\n"
            "open path: /etc/ld.so.cache flags: 524288\n"   # uprobe printf("%s", str(arg0))
            "...\n"
            "[...]\n"
            "@bytes[nginx]: 4096\n")
    r = parse_bytes(text.encode(), "bpftrace")
    assert r.counts["elision"] == 2 and r.counts["printf"] == 1 and len(r.unparsed) == 0
    assert r.aggregates[r.aggregates["kind"] == "printf"]["text"].iloc[0].startswith("open path: /etc/ld.so.cache")


def test_bpftrace_real_uretprobe_printf_of_str_is_kept_as_printf_rows():
    r = _parse(SAMPLES / "bpftrace" / "11-bashreadline-uretprobe-printf-str.txt")
    assert r.format == "bpftrace" and r.counts == {"attach": 1, "printf": 6, "interrupt": 1}
    rows = r.aggregates[r.aggregates["kind"] == "printf"]["text"].tolist()
    assert rows[-1].endswith("echooo this is a failed command, but we can see it anyway")


BPF_STACKS = """\
Attaching 1 probe...
^C

@[
    ksys_read+1
    do_syscall_64+83
    entry_SYSCALL_64_after_hwframe+68
]: 7
@bytes[sshd,
    __vfs_write+5
    vfs_write+176
]: 4096
@lat[
    blk_mq_end_request+30
]:
[4K, 8K)               3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[8K, 16K)              1 |@@@@@@@@@@@@@@@@@                                   |
"""


def test_bpftrace_kstack_keys_over_several_lines():
    r = parse_bytes(BPF_STACKS.encode(), "bpftrace")
    assert len(r.unparsed) == 0 and r.counts.get("printf", 0) == 0
    agg = r.aggregates
    st = agg[agg["kind"] == "stack"]
    assert st["key"].tolist() == ["ksys_read+1;do_syscall_64+83;entry_SYSCALL_64_after_hwframe+68",
                                  "sshd;__vfs_write+5;vfs_write+176"]
    assert st["value"].tolist() == [7, 4096] and st["map"].tolist() == ["@", "@bytes"]
    hist = agg[agg["kind"] == "hist"]
    assert set(hist["key"]) == {"blk_mq_end_request+30"} and hist["count"].tolist() == [3, 1]


def test_bpftrace_real_kstack_keyed_histograms():
    r = _parse(SAMPLES / "bpftrace" / "12-biostacks-kstack-keyed-hist-abridged.txt")
    hist = r.aggregates[r.aggregates["kind"] == "hist"]
    assert r.counts.get("printf", 0) == 1 and len(r.unparsed) == 0  # the "Tracing block I/O..." line
    keys = hist["key"].unique().tolist()
    assert len(keys) == 2 and keys[1].startswith("blk_account_io_start+1;blk_mq_make_request+707;")
    assert keys[1].endswith(";kthread+289;ret_from_fork+53")
    assert hist[hist["key"] == keys[1]]["count"].tolist() == [560, 218, 26, 2, 53, 60]


def test_bpftrace_json_every_record_type():
    import json
    recs = [{"type": "attached_probes", "data": {"probes": 2}}, {"type": "attached_probes", "count": 3},
            {"type": "printf", "data": "hello\n"}, {"type": "time", "data": "12:00:00\n"},
            {"type": "cat", "data": "x"}, {"type": "join", "data": "a b"}, {"type": "syscall", "data": "ls"},
            {"type": "value", "data": [1, 2]},
            {"type": "map", "data": {"@": 5}}, {"type": "map", "data": {"@c": {"bash": 3, "9,1": "18446744073709551615"}}},
            {"type": "hist", "data": {"@h": [{"max": -1, "count": 1}, {"min": 0, "max": 0, "count": 2},
                                              {"min": 1, "count": 3}]}},
            {"type": "hist", "data": {"@k": {"sh": [{"min": 4, "max": 7, "count": 1}]}}},
            {"type": "stats", "data": {"@s": {"count": 2, "average": 3, "total": 6}}},
            {"type": "stats", "data": {"@s": {"a": {"count": 1, "average": 1, "total": 1}}}},
            {"type": "tseries", "data": {"@t": [{"interval_start": 1, "value": 4}]}},
            {"type": "lost_events", "data": {"events": 7}}, {"type": "lost_events", "count": 5},
            {"type": "helper_error", "msg": "No such file", "helper": "probe_read", "retcode": -2},
            {"type": "runtime_error", "msg": "x"}, {"type": "print_error", "msg": "y"},
            {"type": "benchmark_results", "data": {"a": 1}}]
    text = "\n".join(json.dumps(r) for r in recs) + "\n"
    r = parse_bytes(text.encode(), "bpftrace")
    assert len(r.unparsed) == 0 and r.accounted_lines() == len(recs)
    assert r.losses["dropped_events"] == 12 and r.counts["runtime_error"] == 3 and r.counts["attach"] == 2
    agg = r.aggregates
    assert agg[(agg["map"] == "@c") & (agg["key"] == "9,1")]["value"].iloc[0] == float(2 ** 64 - 1)
    h = agg[(agg["kind"] == "hist") & (agg["map"] == "@h")]
    assert h["lo"].tolist()[0] == float("-inf") and h["hi"].tolist()[-1] == float("inf")
    assert set(agg["kind"]) >= {"printf", "time", "cat", "join", "syscall", "value", "map", "scalar", "hist",
                                "stats", "tseries", "benchmark_results"}

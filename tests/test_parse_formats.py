"""The documented traps of each text format (freebsd-facts.md §5, linux-notes.md §7), one by one."""
from __future__ import annotations

from tracer.parse import parse_bytes

KEV1 = "{ ident=0x800a1c000, filter=EVFILT_AIO, flags=0x8000<EV_EOF>, fflags=0, data=0x1000, udata=0x800a1c000 }"
KEV2 = "{ ident=0x800a1c080, filter=EVFILT_AIO, flags=0xc000<EV_EOF|EV_ERROR>, fflags=0, data=0x5, udata=0x0 }"


def test_kdump_records_with_H_T_c_A_S_prefixes_and_kevent_arrays():
    pre = " 12345 100123 aiobench 1700000000.123456789   3 "
    text = "\n".join([
        pre + "CALL  F64  aio_read[255](0x7fffffffe0a0)",
        pre + "RET   F64  aio_read[255] 0",
        " 12345 100123 aiobench 1700000000.223456789   3 CALL  F64  compat11.kevent(0x3,0,0,0x7fffffffd000,0x10,0)",
        " 12345 100123 aiobench 1700000000.323456789   3 STRU  F64  struct kevent[] = { " + KEV1,
        "             " + KEV2 + " }",
        " 12345 100123 aiobench 1700000000.323456790   3 RET   F64  compat11.kevent 2",
        " 12345 100123 aiobench 1700000000.423456789   3 CALL  F64  aio_error(0x800a1c000)",
        " 12345 100123 aiobench 1700000000.423456999   3 RET   F64  aio_error 36/0x24",
        " 12345 100123 aiobench 1700000000.523456789   3 CALL  F64  aio_suspend(0x7fffffffd100,0x1,0)",
        " 12345 100123 aiobench 1700000000.623456789   3 RET   F64  aio_suspend RESTART",
        " 12345 100123 aiobench 1700000000.723456789   3 RET   F64  aio_return -1 errno 22 Invalid argument",
        " 12345 100123 aiobench Events dropped.",
        " 12345 100123 aiobench 1700000000.823456789   3 CSW   F64  stop kernel \"aiowc\"",
        " 12345 100123 aiobench 1700000000.923456789   3 CALL  F64  lio_listio(LIO_NOWAIT,0x800a1c000,0x10,0)",
    ]) + "\n"
    r = parse_bytes(text.encode(), "kdump")
    assert r.clock == "realtime" and len(r.unparsed) == 0 and r.accounted_lines() == 14
    ev = r.events
    assert ev.loc[0, "name"] == "aio_read" and ev.loc[0, "id"] == 0x7FFFFFFFE0A0 and ev.loc[0, "tid"] == 100123
    assert ev.loc[0, "ts_ns"] == 1_700_000_000_123_456_789
    notes = ev[ev["ev"] == "job_notify"]
    assert list(notes["id"]) == [0x800A1C000, 0x800A1C080]  # the continuation line's element too
    assert list(notes["ret"]) == [4096, 5] and list(notes["err"]) == [0, 5]  # EV_ERROR: data is the errno
    err_exit = ev[(ev["name"] == "aio_error") & (ev["ev"] == "sys_exit")].iloc[0]
    assert err_exit["ret"] == 36 and err_exit["err"] == 0  # a value, not an errno
    assert ev[(ev["name"] == "aio_suspend") & (ev["ev"] == "sys_exit")].iloc[0]["err"] == -1  # RESTART
    assert ev[(ev["name"] == "aio_return")].iloc[0][["ret", "err"]].tolist() == [-1, 22]
    assert ev[ev["name"] == "lio_listio"].iloc[0][["a0", "a1", "a2"]].tolist() == [0, 0x800A1C000, 16]
    assert r.losses["dropped_events"] == 1 and r.counts["csw"] == 1


def test_kdump_changelist_is_not_a_notification():
    text = ("  7 100 prog     CALL  kevent(0x3,0x7fffffffe000,0x1,0x7fffffffd000,0x1,0)\n"
            "  7 100 prog     STRU  struct kevent[] = " + "{ " + KEV1 + " }\n"
            "  7 100 prog     STRU  struct kevent[] = " + "{ " + KEV2 + " }\n"
            "  7 100 prog     RET   kevent 1\n")
    ev = parse_bytes(text.encode(), "kdump").events
    assert list(ev.loc[ev["ev"] == "job_notify", "id"]) == [0x800A1C080]


def test_truss_prefixes_aiocb_kevent_rusage_threads_and_summary():
    sev = "{ sigev_notify=SIGEV_KEVENT, sigev_notify_kqueue=4, sigev_notify_kevent_flags=0x0 }"
    text = "\n".join([
        f"12345 100123: 1.000000000 0.000010000 aio_read({{ 3,8192,0x800c00000,8192,LIO_NOP,{sev} }})\t = 0 (0x0)",
        "12345 100123: 1.000100000 0.000050000 kevent(4,{ },0,{ 0x7fffffffe0a0,EVFILT_AIO,EV_EOF,0,0x2000,0xdeadbeef "
        "0x7fffffffe120,EVFILT_AIO,EV_EOF|EV_ERROR,0,0x5,0x0 },16,0x0) = 2 (0x2)",
        "12345 100123: 1.000200000 0.000001000 aio_waitcomplete(0x0,{ 0.000000000 }) ERR#35 'Resource temporarily unavailable'",
        f"12345 100123: 1.000300000 0.000002000 aio_error({{ 3,8192,0x800c00000,8192,LIO_NOP,{sev} }}) = 36 (0x24)",
        "12345 100123: 1.000400000 0.000002000 getrusage(RUSAGE_THREAD,{ u=0.001000,s=0.002000,in=16,out=2 }) = 0 (0x0)",
        "12345 100124: 1.000500000 0.000000000 <new thread 100124>",
        "12345 100124: 1.000600000 0.000000000 <thread 100124 exited>",
        "12345 100123: 1.000700000 0.000000000 SIGNAL 23 (SIGIO) code=SI_ASYNCIO value=0x0",
        "12345 100123: 1.000800000 0.000000000 process exit, rval = 0",
        "syscall                     seconds   calls  errors",
        "aio_read                0.000123456      16       0",
        "kevent                  0.001234567       8       1",
        "                      ------------- ------- -------",
        "                        0.001358023      24       1",
    ]) + "\n"
    r = parse_bytes(text.encode(), "truss")
    assert len(r.unparsed) == 0 and r.accounted_lines() == 14 and r.clock == "relative"
    ev = r.events
    rd = ev[ev["name"] == "aio_read"]
    assert list(rd["id"]) == [0x800C00000] * 2 and list(rd["ts_ns"]) == [999_990_000, 1_000_000_000]
    notes = ev[ev["ev"] == "job_notify"]
    # the first notified aiocb (address 0x7fffffffe0a0) is the one the same thread's next aio_error
    # names by its buffer: the notification joins its I/O by that buffer; the second stays an address
    assert list(notes["id"]) == [0x800C00000, 0x7FFFFFFFE120] and list(notes["ret"]) == [0x2000, 5]
    assert list(notes["err"]) == [0, 5]
    wc = ev[(ev["name"] == "aio_waitcomplete") & (ev["ev"] == "sys_exit")].iloc[0]
    assert (wc["ret"], wc["err"]) == (-1, 35)
    assert ev[(ev["name"] == "aio_error") & (ev["ev"] == "sys_exit")].iloc[0][["ret", "err"]].tolist() == [36, 0]
    ru = ev[(ev["name"] == "getrusage") & (ev["ev"] == "sys_exit")].iloc[0]
    assert (ru["a0"], ru["a1"]) == (16, 2)
    assert r.summary["calls"].tolist() == [16, 8] and r.counts["thread_process_signal"] == 4


def test_strace_unfinished_resumed_signals_and_c_table():
    text = "\n".join([
        "strace: Process 100 attached with 2 threads",
        "[pid   101] 1700000000.000100 io_getevents(0x7f00, 1, 8, [], NULL <unfinished ...>",
        "[pid   100] 1700000000.000200 io_submit(0x7f00, 1, [{aio_data=0, aio_lio_opcode=IOCB_CMD_PREAD, "
        "aio_fildes=3</tmp/f>, aio_buf=0x1000, aio_nbytes=4096, aio_offset=0}]) = 1 <0.000010>",
        "[pid   101] 1700000000.000900 <... io_getevents resumed>[{data=0, obj=0x1, res=4096, res2=0}], NULL) = 1 <0.000800>",
        "[pid   100] 1700000000.001000 io_uring_enter(7, 0, 1, IORING_ENTER_GETEVENTS, NULL, 8) = 0 <0.000004>",
        "[pid   100] 1700000000.001100 openat(AT_FDCWD, \"/nope\", O_RDONLY) = -1 ENOENT (No such file or directory) <0.000003>",
        "[pid   100] 1700000000.001200 --- SIGCONT {si_signo=SIGCONT, si_code=SI_USER, si_pid=1, si_uid=0} ---",
        "[pid   101] 1700000000.001300 exit(0) = ?",
        "[pid   101] 1700000000.001400 +++ exited with 0 +++",
        "% time     seconds  usecs/call     calls    errors syscall",
        "------ ----------- ----------- --------- --------- ----------------",
        " 57,14    0,000004           4         1           io_submit",
        "100,00    0,000007           3         2         1 total",
    ]) + "\n"
    r = parse_bytes(text.encode(), "strace")
    assert len(r.unparsed) == 0 and r.accounted_lines() == 13 and r.clock == "realtime"
    ev = r.events
    ge = ev[ev["name"] == "io_getevents"]
    assert list(ge["ev"]) == ["sys_enter", "sys_exit"] and list(ge["tid"]) == [101, 101]
    assert ge.iloc[1]["ts_ns"] - ge.iloc[0]["ts_ns"] == 800_000 and ge.iloc[1]["ret"] == 1
    sub = ev[ev["name"] == "io_submit"]
    assert sub.iloc[1]["ts_ns"] - sub.iloc[0]["ts_ns"] == 10_000
    assert ev[(ev["name"] == "openat") & (ev["ev"] == "sys_exit")].iloc[0][["ret", "err"]].tolist() == [-1, 2]
    assert ev[ev["name"] == "io_uring_enter"].iloc[0][["a0", "a1", "a2"]].tolist() == [7, 0, 1]
    assert len(ev[ev["name"] == "exit"]) == 1  # `= ?`: no return
    assert r.summary["seconds"].tolist() == [0.000004, 0.000007] and r.summary["errors"].tolist() == [0, 1]


def test_dtrace_drop_kinds_errors_and_printa():
    text = "\n".join([
        "dtrace: script 'aiotrace-agg.d' matched 31 probes",
        "dtrace: 123 drops on CPU 2",
        "dtrace: 5 aggregation drops on CPU 0",
        "dtrace: 17 dynamic variable drops with non-empty dirty list",
        "dtrace: 1 speculative drop",
        "dtrace: error on enabled probe ID 3 (ID 56789: fbt:kernel:aio_complete:entry): invalid address (0x0) "
        "in action #2 at DIF offset 28",
        "AIOTRACE-AGG\tv1",
        "A\tsyscalls\t100101\taio_read\t16",
        "H\tjob_ns\taio_complete",
        "",
        "           value  ------------- Distribution ------------- count    ",
        "            4096 |                                         0        ",
        "            8192 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 512      ",
        "           16384 |                                         0        ",
        "",
    ]) + "\n"
    r = parse_bytes(text.encode(), "dtrace")
    assert len(r.unparsed) == 0 and r.accounted_lines() == 15
    assert r.losses["dropped_events"] == 123 + 5 + 17 + 1 and r.counts["probe_error"] == 1
    agg = r.aggregates
    row = agg[agg["kind"] == "printa"].iloc[0]
    assert (row["map"], row["key"], row["value"]) == ("syscalls", "100101,aio_read", 16)
    hist = agg[agg["kind"] == "hist"]
    assert hist["count"].tolist() == [0, 512, 0] and set(hist["key"]) == {"aio_complete"}


def test_bpftrace_json_with_blank_lines_tuple_keys_and_losses():
    text = "\n".join([
        '{"type": "attached_probes", "data": {"probes": 2}}',
        '{"type": "printf", "data": "tick 0\\n"}',
        '{"type": "lost_events", "data": {"events": 4255}}',
        "",
        '{"type": "map", "data": {"@c": {"dd,13125": 2, "0": 2}}}',
        '{"type": "map", "data": {"@total": 7}}',
        '{"type": "hist", "data": {"@h": [{"min": 0, "max": 0, "count": 1}, {"min": 1, "max": 1, "count": 3}]}}',
        "",
    ]) + "\n"
    r = parse_bytes(text.encode(), "auto")
    assert r.format == "bpftrace" and len(r.unparsed) == 0 and r.accounted_lines() == 8
    assert r.losses["dropped_events"] == 4255
    agg = r.aggregates
    assert agg[(agg["map"] == "@c") & (agg["key"] == "dd,13125")]["value"].item() == 2
    assert agg[agg["map"] == "@total"]["kind"].item() == "scalar"
    assert agg[agg["kind"] == "hist"]["count"].sum() == 4


def test_bpftrace_text_event_lines_and_warnings_together():
    text = ("Attaching 2 probes...\n"
            "ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK for bpftrace. If your program is not loading, "
            "you can try \"ulimit -l 8192\" to fix the problem\n"
            "E\t10\t1\t1\tsys_enter\tnr0\t0\t3\t0\t0\t0\t0\n"
            "Lost 3 events\n@c[1, 2]: 5\n")
    r = parse_bytes(text.encode(), "bpftrace")
    assert len(r.unparsed) == 0 and r.accounted_lines() == 5 and r.losses["dropped_events"] == 3
    assert r.events["name"].tolist() == ["read"] and r.events["line"].tolist() == [3]
    assert r.aggregates.iloc[0]["key"] == "1, 2"


def test_dtrace_printa_row_whose_key_is_not_space_separated_from_its_value():
    from tracer.parse.dtrace import parse_dtrace
    res = parse_dtrace(b"  foo | 32001\n  bash   4242   7\n")
    rows = res.aggregates
    assert len(res.unparsed) == 0
    assert list(rows["value"]) == [32001, 7]
    assert list(rows["key"]) == ["foo |", "bash,4242"]


def test_strace_errno_missing_from_the_table_is_minus_one_not_eperm():
    from tracer.parse.strace import parse_strace
    res = parse_strace(b"1700000000.000001 io_pgetevents(1, 2) = -1 ENOSYSX (made up) <0.000010>\n")
    ev = res.events
    assert len(res.unparsed) == 0 and int(ev["err"].iloc[-1]) == -1

"""The kdump and truss printers (tracer/freebsd_render.py) against real FreeBSD output nobody here
wrote (tests/data/samples, see its SOURCES.md): each sample line is decoded into the values the tool
had, printed again with our printer, and must come out the same."""
from __future__ import annotations

import re

import pytest

from conftest import REPO
from tracer import freebsd_render as fr

SAMPLES = REPO / "tests" / "data" / "samples"


def call(name, args, ret=0, err=0, **kw):
    c = {"name": name, "args": list(args) + [0] * (6 - len(args)), "ret": ret, "err": err, "cb_in": None,
         "cb_out": None, "ts": None, "kev": [], "ru": None, "list": []}
    c.update(kw)
    return c


def test_truss_kevent_line_of_a_real_freebsd_trace():
    """truss -f -d -H on FreeBSD 11 (sample 05): prefix, NULL changelist and timeout as print_pointer's
    0x0, a descriptor ident in decimal, the flag names, data %#jx, udata %p, the result."""
    line = [l for l in (SAMPLES / "truss" / "05-freebsd11-dotnet-truss-f-d-H-kevent.txt").read_text().splitlines()
            if " kevent(" in l][0]
    kev = {"ident": 103, "filter": -1, "flags": 0x20 | 0x40, "fflags": 0, "data": 0x2000, "udata": 1}
    c = call("kevent", [97, 0, 0, 0x7FFFDE7AF000, 32, 0], ret=1, kev=[kev])
    ours = fr.truss_line(fr.truss_prefix(33324, 100288, 1_492_083_817), c)
    # FreeBSD 11's print_kevent printed fflags as 0x%x; libsysdecode's sysdecode_kevent_fflags (12+,
    # the one we follow) prints a zero as 0. Everything else is the same.
    assert ours == line.replace("EV_CLEAR|EV_RECEIPT,0x0,", "EV_CLEAR|EV_RECEIPT,0,")


def test_truss_results_and_errors_of_a_real_freebsd_trace():
    lines = (SAMPLES / "truss" / "05-freebsd11-dotnet-truss-f-d-H-kevent.txt").read_text().splitlines()
    err = [l for l in lines if "ERR#35" in l][0]
    ok = [l for l in lines if "sendmsg" in l and "= 512" in l][0]
    for line, ret, errno in ((err, -1, 35), (ok, 512, 0)):
        m = re.match(r"(\d+) (\d+): (\d+)\.(\d{9}) sendmsg\(0x64,0x7fffde7af760,0x0\)", line)
        prefix = fr.truss_prefix(int(m[1]), int(m[2]), int(m[3]) * 1_000_000_000 + int(m[4]))
        assert fr.truss_line(prefix, call("sendmsg", [0x64, 0x7FFFDE7AF760, 0], ret=ret, err=errno)) == line


def test_truss_pads_with_tabs_to_column_48_only():
    """print_syscall: 6 - len/8 tabs. Sample 01 came through a web page that turned the tabs into
    spaces, so our line with its tabs expanded must equal it; longer lines get none."""
    lines = (SAMPLES / "truss" / "01-freebsd12-xrdp-chansrv-recvmsg-select-mmap.txt").read_text().splitlines()
    checked = 0
    for line in lines:
        m = re.match(r"^(\S+?\(.*?\))(\s+)(= -?\d+ \(0x[0-9a-f]+\)| ERR#\d+ '.*')$", line)
        if not m:
            continue
        head, result = m[1], m[3]
        ours = head + "\t" * max(0, 6 - len(head) // 8) + (" " + result if result.startswith("=") else result)
        assert ours.expandtabs(8) == line, line
        checked += 1
    assert checked >= 5


def test_truss_getrusage_of_a_real_freebsd_trace():
    line = [l for l in (SAMPLES / "truss" / "01-freebsd12-xrdp-chansrv-recvmsg-select-mmap.txt").read_text()
            .splitlines() if l.startswith("getrusage(RUSAGE_SELF")][0]
    m = re.search(r"u=(\d+)\.(\d{6}),s=(\d+)\.(\d{6}),in=(\d+),out=(\d+)", line)
    ru = (int(m[1]) * 1_000_000 + int(m[2]), int(m[3]) * 1_000_000 + int(m[4]), int(m[5]), int(m[6]))
    assert fr.truss_line("", call("getrusage", [0, 0x7FFFDFFFD000], ru=ru)) == line


@pytest.mark.parametrize("sample", ["02-freebsd12-uul-gio-multiline.txt", "06-freebsd-b2-fstatat-nami.txt",
                                    "09-freebsd-vlang-psig-sigreturn-threads.txt"])
def test_kdump_headers_calls_and_returns_of_real_freebsd_traces(sample):
    """dumpheader without -H/-T (%6jd pid, %-8.*s comm), ktrsyscall's %#jx arguments, ktrsysret's
    value, value/hex and -1 errno forms, line by line."""
    checked = 0
    for raw in (SAMPLES / "kdump" / sample).read_text().splitlines():
        line = raw.rstrip()  # sample 06's archive added trailing spaces
        m = re.match(r"^\s*(\d+) (\S+)\s+(CALL|RET )  (.*)$", line)
        if not m:
            continue
        pid, comm, kind, rest = int(m[1]), m[2], m[3], m[4]
        header = fr.kdump_header(pid, None, comm)
        if kind == "RET ":
            name, value = rest.split(" ", 1)
            if value in ("JUSTRETURN", "RESTART"):
                continue
            e = re.match(r"-1 errno (\d+) ", value)
            ret, err = (-1, int(e[1])) if e else (int(value.split("/")[0]), 0)
            if err and err not in fr.STRERROR:
                continue
            ours = header + f"RET   {name} {fr.kdump_retval(ret, err)}"
        else:
            cm = re.match(r"^(\w+)\(([0-9a-fx,]*)\)$", rest)
            if not cm:
                continue  # decoded arguments (AT_FDCWD, SIG_SETMASK...): not printed by our calls
            args = [int(a, 16) if a.startswith("0x") else int(a) for a in cm[2].split(",") if a]
            ours = header + f"CALL  {cm[1]}({','.join(fr.hexj(a) for a in args)})"
        if not raw.startswith(" "):  # SOURCES.md: sample 09's first line lost its leading space
            ours = ours.lstrip()
        assert ours == line, line
        checked += 1
    assert checked >= 4


def test_flag_masks_follow_libsysdecode():
    assert fr.truss_mask(0) == "0x0" and fr.kdump_mask(0) == "0"
    assert fr.truss_mask(0x4000) == "EV_ERROR"  # AIO_KEVENT_FLAG_REAP == EV_FLAG2, not in the table
    assert fr.truss_mask(0x8010) == "EV_ONESHOT|EV_EOF" and fr.kdump_mask(0x8010) == "0x8010<EV_ONESHOT|EV_EOF>"
    assert fr.truss_mask(0x2000) == "0x2000"  # EV_FLAG1 is excluded too: the remainder is printed
    assert fr.hexj(0) == "0" and fr.hexj(4096) == "0x1000" and fr.ptr(0) == "0x0"

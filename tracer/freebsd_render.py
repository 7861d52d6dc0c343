"""Render the FreeBSD semantics model's record (tracer.simulate.records_frame) as the text that
``kdump -H -T`` (ktrace -t cstu+) and ``truss -f -H -d -D`` print for the same system calls.

The printers follow the FreeBSD sources line by line (freebsd/freebsd-src, fel1x-developer/freebsd-src
@2d614aa2):

* truss, usr.bin/truss/syscalls.c: the decoded_syscalls table (aio_read/aio_write/aio_error/aio_return
  ``{ Aiocb, 0 }``, aio_suspend ``AiocbArray, Int, Timespec``, aio_waitcomplete ``AiocbPointer | OUT,
  Timespec``, aio_fsync ``AiofsyncOp, Aiocb``, lio_listio ``LioMode, AiocbArray, Int, Sigevent``,
  kevent ``Int, Kevent, Int, Kevent | OUT, Int, Timespec``, getrusage ``RusageWho, Rusage | OUT``);
  print_aiocb (``{ %d,%jd,%p,%zu,%s,`` + print_sigevent + `` }``), print_sigevent, print_kevent
  (``%p`` ident, filter name, print_mask_arg of the flags, sysdecode_kevent_fflags, ``%#jx`` data,
  ``%p`` udata), print_pointer (``%p``: NULL is ``0x0``), print_syscall (tabs while the line is
  shorter than 48 columns: ``6 - len/8`` of them) and print_syscall_ret (`` = %jd (0x%jx)``,
  `` ERR#%d '%s'``). IN arguments are read at entry, OUT arguments at exit, from user memory.
* lib/libsysdecode: sysdecode_kevent_flags from mktables' ``keventflags`` table (sys/event.h order,
  EV_SYSFLAGS, EV_DROP, EV_FLAG1 and EV_FLAG2 excluded: the REAP flag 0x4000 prints as EV_ERROR),
  print_mask_0 (names joined by ``|``; nothing matched prints the remainder ``0x%x``),
  sysdecode_kevent_fflags (0 prints ``0``).
* kdump, usr.bin/kdump/kdump.c: dumpheader (``%6jd %6jd %-8.*s`` pid, tid, comm, then ``-T``
  ``%jd.%09ld ``), ktrsyscall (arguments ``%#jx``; getrusage's who and lio_listio's mode by name), ktrsysret (``%ld`` plus ``/%#lx`` when the value
  is < 0 or > 9; ``-1 errno %d %s``), ktrstructarray / ktrkevent (``struct kevent[] = { `` elements
  separated by a newline and 13 spaces, ``{ ident=%p, filter=..., flags=%#x<NAMES>, fflags=...,
  data=%#jx, udata=%p }``). ktrace's points ``cstu+`` (usr.bin/ktrace/ktrace.h DEF_POINTS) record no CSW.
"""
from __future__ import annotations

import pandas as pd

EVFILT = {-1: "EVFILT_READ", -2: "EVFILT_WRITE", -3: "EVFILT_AIO", -4: "EVFILT_VNODE", -5: "EVFILT_PROC",
          -6: "EVFILT_SIGNAL", -7: "EVFILT_TIMER", -8: "EVFILT_PROCDESC", -9: "EVFILT_FS", -10: "EVFILT_LIO",
          -11: "EVFILT_USER", -12: "EVFILT_SENDFILE", -13: "EVFILT_EMPTY"}
# libsysdecode keventflags: sys/event.h order, minus EV_SYSFLAGS|EV_DROP|EV_FLAG[12]
KEVENT_FLAGS = (("EV_ADD", 0x1), ("EV_DELETE", 0x2), ("EV_ENABLE", 0x4), ("EV_DISABLE", 0x8),
                ("EV_FORCEONESHOT", 0x100), ("EV_KEEPUDATA", 0x200), ("EV_ONESHOT", 0x10), ("EV_CLEAR", 0x20),
                ("EV_RECEIPT", 0x40), ("EV_DISPATCH", 0x80), ("EV_EOF", 0x8000), ("EV_ERROR", 0x4000))
LIO_OPCODES = {1: "LIO_WRITE", 2: "LIO_READ", 6: "LIO_READV", 5: "LIO_WRITEV", 0: "LIO_NOP"}
LIO_MODES = {1: "LIO_WAIT", 0: "LIO_NOWAIT"}
SIGEV = {0: "SIGEV_NONE", 1: "SIGEV_SIGNAL", 2: "SIGEV_THREAD", 3: "SIGEV_KEVENT", 4: "SIGEV_THREAD_ID"}
RUSAGE_WHO = {0: "RUSAGE_SELF", -1: "RUSAGE_CHILDREN", 1: "RUSAGE_THREAD"}
# FreeBSD's strerror text (lib/libc/gen/errlst.c) for the errnos the model can return
STRERROR = {1: "Operation not permitted", 2: "No such file or directory", 4: "Interrupted system call", 5: "Input/output error",
            9: "Bad file descriptor", 14: "Bad address", 22: "Invalid argument",
            35: "Resource temporarily unavailable", 36: "Operation now in progress",
            45: "Operation not supported", 60: "Operation timed out", 85: "Operation canceled"}
COMM = "aiotrace-workload"


def ptr(v: int) -> str:
    """printf %p on FreeBSD: 0x-prefixed lowercase hex, NULL as 0x0."""
    return f"{int(v) & ((1 << 64) - 1):#x}"


def hexj(v: int) -> str:
    """printf %#jx: 0 prints as 0."""
    v = int(v) & ((1 << 64) - 1)
    return "0" if v == 0 else f"{v:#x}"


def mask(value: int, table=KEVENT_FLAGS) -> tuple[str, int]:
    """libsysdecode print_mask_0: (names joined by '|', remaining bits)."""
    names, rem = [], int(value)
    for name, bit in table:
        if bit & rem == bit:
            names.append(name)
            rem &= ~bit
    return "|".join(names), rem


def truss_mask(value: int) -> str:
    """truss print_mask_arg(sysdecode_kevent_flags, ...)."""
    names, rem = mask(value)
    if not names:
        return f"0x{rem:x}"
    return names + (f"|0x{rem:x}" if rem else "")


def kdump_mask(value: int) -> str:
    """kdump print_mask_arg0: 0, or %#x<NAMES>."""
    if value == 0:
        return "0"
    names, rem = mask(value)
    inner = names + (f"|0x{rem:x}" if names and rem else "") if names else f"0x{rem:x}"
    return f"{value:#x}<{inner}>"


def fflags(v: int) -> str:
    return "0" if v == 0 else f"{v:#x}"


def sigevent(cb: dict) -> str:
    """truss print_sigevent (the model records notify, kqueue/signo and kevent flags)."""
    n = cb["notify"]
    if n == 0:
        body = "SIGEV_NONE"
    elif n == 3:
        body = f"SIGEV_KEVENT, sigev_notify_kqueue={cb['kq']}, sigev_notify_kevent_flags={truss_mask(cb['kflags'])}"
    else:
        body = str(n)
    return "{ sigev_notify=" + body + " }"


def aiocb(cb: dict | None, addr: int) -> str:
    """truss print_aiocb, or print_pointer when the aiocb could not be read."""
    if cb is None:
        return ptr(addr)
    op = LIO_OPCODES.get(cb["opcode"], f"0x{cb['opcode']:x}")
    return f"{{ {cb['fd']},{cb['offset']},{ptr(cb['buf'])},{cb['nbytes']},{op},{sigevent(cb)} }}"


def kevent_ident(k: dict) -> str:
    """print_kevent / ktrkevent: descriptor-like idents in decimal, signals by name, else %p."""
    if k["filter"] in (-1, -2, -4, -5, -7, -8, -13):
        return str(int(k["ident"]) & ((1 << 64) - 1))
    return ptr(k["ident"])


def kevent_truss(k: dict) -> str:
    return (f"{kevent_ident(k)},{EVFILT.get(k['filter'], str(k['filter']))},{truss_mask(k['flags'])},"
            f"{fflags(k['fflags'])},{hexj(k['data'])},{ptr(k['udata'])}")


def kevent_kdump(k: dict) -> str:
    return (f"{{ ident={kevent_ident(k)}, filter={EVFILT.get(k['filter'], str(k['filter']))}, "
            f"flags={kdump_mask(k['flags'])}, fflags={fflags(k['fflags'])}, data={hexj(k['data'])}, "
            f"udata={ptr(k['udata'])} }}")


def timespec(ts: tuple | None, addr: int) -> str:
    return ptr(addr) if ts is None else f"{{ {ts[0]}.{ts[1]:09d} }}"


def calls(recs: pd.DataFrame) -> list[dict]:
    """One dict per system call of the workload (aiod records excluded): name, tid, enter/exit ns,
    raw args, ret, err, and the structures the call read or wrote."""
    out, open_by_tid = [], {}
    latest_cb: dict[int, dict] = {}  # the user aiocb's contents, by address, as last seen
    for r in recs.itertuples(index=False):
        if r.aiod:
            continue
        if r.kind == "sys_enter":
            c = {"name": r.name, "tid": r.tid, "enter": r.ts_ns, "exit": None, "args": [r.a0, r.a1, r.a2, r.a3,
                 r.a4, r.a5], "id": r.id, "ret": None, "err": 0, "cb_in": None, "cb_out": None, "ts": None,
                 "kev": [], "ru": None, "list": []}
            open_by_tid[r.tid] = c
            out.append(c)
            continue
        c = open_by_tid.get(r.tid)
        if r.kind == "aiocb":
            cb = {"fd": r.a0, "offset": r.a1, "buf": r.a2, "nbytes": r.a3, "opcode": r.a4, "notify": r.a5,
                  "kq": r.a6, "kflags": r.a7}
            if c is not None and c["cb_in"] is None and r.id == c["id"]:
                c["cb_in"] = dict(cb)
            if c is not None and c["list"] and c["list"][-1][0] == r.id and c["list"][-1][1] is None:
                c["list"][-1] = (r.id, dict(cb))  # lio_listio: the member's contents follow it
            latest_cb[r.id] = cb
        elif c is None:
            continue
        elif r.kind == "timespec":
            c["ts"] = (r.a0, r.a1)
        elif r.kind == "kevent":
            c["kev"].append({"ident": r.id, "filter": r.a0, "flags": r.a1, "fflags": r.a2, "data": r.a3,
                             "udata": r.a4})
        elif r.kind == "rusage":
            c["ru"] = (r.a0, r.a1, r.a2, r.a3)
        elif r.kind == "list_member":
            c["list"].append((r.id, dict(latest_cb[r.id]) if r.id in latest_cb else None))
        elif r.kind == "sys_exit":
            c.update(exit=r.ts_ns, ret=r.ret, err=r.err)
            if c["name"] in ("aio_error", "aio_return") and c["cb_in"] is None:
                c["cb_in"] = dict(latest_cb[c["id"]]) if c["id"] in latest_cb else None
            if c["name"] == "aio_waitcomplete" and r.id:
                c["cb_out"] = (r.id, dict(latest_cb[r.id]) if r.id in latest_cb else None)
            del open_by_tid[r.tid]
    return [c for c in out if c["exit"] is not None]


def truss_args(c: dict) -> str:
    a, name = c["args"], c["name"]
    if name in ("aio_read", "aio_write", "aio_error", "aio_return"):
        return aiocb(c["cb_in"], a[0])
    if name == "aio_fsync":
        return ("O_SYNC" if a[0] == 0x80 else f"0x{a[0]:x}") + "," + aiocb(c["cb_in"], a[1])
    if name == "aio_suspend":
        members = c["list"][:16]
        arr = "[" + ",".join(aiocb(cb, addr) for addr, cb in members) + (",..." if len(c["list"]) > 16 else "") + "]"
        return f"{arr},{a[1]},{timespec(c['ts'], a[2])}"
    if name == "lio_listio":
        members = c["list"][:16]
        arr = "[" + ",".join(aiocb(cb, addr) for addr, cb in members) + (",..." if len(c["list"]) > 16 else "") + "]"
        return f"{LIO_MODES.get(a[0], f'0x{a[0]:x}')},{arr},{a[2]},{ptr(a[3])}"
    if name == "aio_waitcomplete":
        out = c["cb_out"]
        first = aiocb(out[1], out[0]) if out else ptr(a[0])
        return f"{first},{timespec(c['ts'], a[1])}"
    if name == "kevent":
        changes = ptr(a[1]) if a[1] == 0 else "{ }"
        if c["ret"] is not None and c["ret"] >= 0 and c["err"] == 0:
            events = "{" + "".join(" " + kevent_truss(k) for k in c["kev"]) + " }"
        else:
            events = ptr(a[3])
        return f"{a[0]},{changes},{a[2]},{events},{a[4]},{timespec(c['ts'], a[5])}"
    if name == "getrusage":
        who = RUSAGE_WHO.get(a[0], str(a[0]))
        if c["ru"] is None:
            return f"{who},{ptr(a[1])}"
        ut, st, inb, oub = c["ru"]
        return f"{who},{{ u={ut // 1_000_000}.{ut % 1_000_000:06d},s={st // 1_000_000}.{st % 1_000_000:06d},in={inb},out={oub} }}"
    if name == "kqueue":
        return ""
    return ",".join(f"0x{int(v):x}" for v in a[:3])


def _ts(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def truss_prefix(pid: int | None, tid: int | None, since_start_ns: int | None = None,
                 duration_ns: int | None = None) -> str:
    """truss print_line_prefix: ``%5d`` pid (-f), `` %6d`` tid (-H), ``: ``, then -d and -D times."""
    out = ""
    if pid is not None or tid is not None:
        out = (f"{pid:5d}" if pid is not None else "") + (" " if pid is not None and tid is not None else "") + \
              (f"{tid:6d}" if tid is not None else "") + ": "
    for ns in (since_start_ns, duration_ns):
        if ns is not None:
            out += _ts(ns) + " "
    return out


def truss_line(prefix: str, c: dict) -> str:
    """print_syscall + print_syscall_ret: the call, tabs up to column 48, the result."""
    text = prefix + f"{c['name']}({truss_args(c)})"
    text += "\t" * max(0, 6 - len(text) // 8)
    if c["err"]:
        return text + f" ERR#{c['err']} '{STRERROR.get(c['err'], 'Unknown error: %d' % c['err'])}'"
    return text + f" = {c['ret']} ({c['ret'] & ((1 << 64) - 1):#x})"


def truss_text(recs: pd.DataFrame, pid: int, origin_ns: int) -> str:
    """``truss -f -H -d -D`` output for the model run: -d = exit time - origin_ns, -D = duration."""
    return "".join(truss_line(truss_prefix(pid, c["tid"], c["exit"] - origin_ns, c["exit"] - c["enter"]), c) + "\n"
                   for c in sorted(calls(recs), key=lambda c: c["exit"]))


def kdump_header(pid: int, tid: int | None, comm: str, ts_ns: int | None = None) -> str:
    """kdump dumpheader: ``%6jd`` pid, ``%6jd`` tid (-H), ``%-8.*s`` comm (MAXCOMLEN 19), -T time."""
    out = f"{pid:6d} " + (f"{tid:6d} " if tid is not None else "") + f"{comm[:19]:<8s} "
    return out + (_ts(ts_ns) + " " if ts_ns is not None else "")


def kdump_retval(ret: int, err: int) -> str:
    """ktrsysret (fancy): the value, with /%#lx when < 0 or > 9; or -1 errno N text."""
    if err:
        return f"-1 errno {err} {STRERROR.get(err, 'Unknown error: %d' % err)}"
    v = int(ret)
    return f"{v}/{v & ((1 << 64) - 1):#x}" if (v < 0 or v > 9) else f"{v}"


def _kdump_prefix(pid: int, tid: int, ns: int, realtime_offset_ns: int) -> str:
    return kdump_header(pid, tid, COMM, ns + realtime_offset_ns)


def kdump_text(recs: pd.DataFrame, pid: int, realtime_offset_ns: int) -> str:
    """``kdump -H -T`` of ``ktrace -t cstu+`` for the model run (CALL, STRU struct kevent[], RET)."""
    out = []  # (ns, order, text)
    for n, c in enumerate(calls(recs)):
        a = c["args"]
        nargs = {"kqueue": 0, "aio_read": 1, "aio_write": 1, "aio_error": 1, "aio_return": 1, "aio_fsync": 2,
                 "aio_waitcomplete": 2, "aio_suspend": 3, "lio_listio": 4, "kevent": 6, "getrusage": 2}.get(c["name"], 3)
        args = ",".join(hexj(v) for v in a[:nargs])
        if c["name"] == "getrusage":  # ktrsyscall decodes the first argument of these two
            args = ",".join([RUSAGE_WHO.get(a[0], str(a[0]))] + [hexj(v) for v in a[1:nargs]])
        elif c["name"] == "lio_listio":
            args = ",".join([LIO_MODES.get(a[0], str(a[0]))] + [hexj(v) for v in a[1:nargs]])
        out.append((c["enter"], n, 0, _kdump_prefix(pid, c["tid"], c["enter"], realtime_offset_ns)
                    + f"CALL  {c['name']}({args})"))
        if c["name"] == "kevent" and c["kev"]:
            body = "\n             ".join(kevent_kdump(k) for k in c["kev"])
            out.append((c["exit"], n, 1, _kdump_prefix(pid, c["tid"], c["exit"], realtime_offset_ns)
                        + f"STRU  struct kevent[] = {{ {body} }}"))
        val = kdump_retval(c["ret"], c["err"])
        out.append((c["exit"], n, 2, _kdump_prefix(pid, c["tid"], c["exit"], realtime_offset_ns)
                    + f"RET   {c['name']} {val}"))
    out.sort(key=lambda r: (r[0], r[1], r[2]))
    return "".join(t + "\n" for *_, t in out)

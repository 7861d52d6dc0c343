"""Each thread's final I/O counters, from the kernel at the moment it exits (Linux taskstats).

Sampling ``/proc/<pid>/task/<tid>/io`` misses what a thread did after its last sample: fio's job
process can do all of its 2,000 reads between two samples and be gone. The kernel's taskstats
genetlink family sends a ``struct taskstats`` for every task that exits on a CPU a listener
registered (``kernel/taskstats.c`` ``taskstats_exit``, filled by ``xacct_add_tsk``), so a
listener sees every thread's last counters however short-lived it was. The counters there are
rounded down to whole KiB (``KB_MASK`` in ``kernel/tsacct.c``).

Registering needs CAP_NET_ADMIN (``GENL_ADMIN_PERM``); without it :func:`open_listener` returns
None with the reason and the sampler stays a sampler.
"""
from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 3, 1, 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
# linux/taskstats.h
TASKSTATS_CMD_GET, TASKSTATS_CMD_NEW = 1, 2
TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK = 3, 4
TASKSTATS_TYPE_PID, TASKSTATS_TYPE_STATS, TASKSTATS_TYPE_AGGR_PID = 1, 3, 4
# offsetof(struct taskstats, ...) on every Linux ABI with 8-byte-aligned u64 (x86-64, arm64);
# fields are only ever appended (TASKSTATS_VERSION), so these never move. tests check them
# against the installed header.
OFFSETS = {"version": 0, "ac_comm": 80, "ac_pid": 128, "ac_ppid": 132, "rchar": 216, "wchar": 224,
           "syscr": 232, "syscw": 240, "read_bytes": 248, "write_bytes": 256,
           "cancelled_write_bytes": 264, "ac_tgid": 368}
TS_COMM_LEN = 32
TGID_SINCE_VERSION = 10  # ac_tgid appeared with TASKSTATS_VERSION 10
IO_FIELDS = ("rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes", "cancelled_write_bytes")
RCVBUF = 8 << 20


@dataclass
class TaskExit:
    tid: int
    tgid: int | None  # None on kernels before TASKSTATS_VERSION 10
    ppid: int
    comm: str
    io: dict[str, int]


def _attrs(buf: bytes, start: int, end: int):
    """(type, payload start, payload end) for each netlink attribute in buf[start:end]."""
    while start + 4 <= end:
        nla_len, nla_type = struct.unpack_from("=HH", buf, start)
        if nla_len < 4:
            return
        yield nla_type & 0x3FFF, start + 4, min(start + nla_len, end)  # strip NLA_F_NESTED/BYTEORDER
        start += (nla_len + 3) & ~3


def _attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _message(family: int, flags: int, seq: int, cmd: int, attrs: bytes) -> bytes:
    body = struct.pack("=BBH", cmd, 1, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), family, flags, seq, 0) + body


def _messages(buf: bytes):
    """(type, body start, end) per netlink message in one datagram."""
    off = 0
    while off + 16 <= len(buf):
        length, kind = struct.unpack_from("=IH", buf, off)
        if length < 16:
            return
        yield kind, off + 16, min(off + length, len(buf))
        off += (length + 3) & ~3


def parse_stats(buf: bytes, start: int, end: int) -> TaskExit | None:
    """One ``struct taskstats`` payload."""
    size = end - start
    if size < OFFSETS["cancelled_write_bytes"] + 8:
        return None
    u32 = lambda name: struct.unpack_from("=I", buf, start + OFFSETS[name])[0]  # noqa: E731
    u64 = lambda name: struct.unpack_from("=Q", buf, start + OFFSETS[name])[0]  # noqa: E731
    version = struct.unpack_from("=H", buf, start)[0]
    tgid = u32("ac_tgid") if version >= TGID_SINCE_VERSION and size >= OFFSETS["ac_tgid"] + 4 else None
    comm = buf[start + OFFSETS["ac_comm"]:start + OFFSETS["ac_comm"] + TS_COMM_LEN].split(b"\0", 1)[0]
    return TaskExit(tid=u32("ac_pid"), tgid=tgid, ppid=u32("ac_ppid"),
                    comm=comm.decode("utf-8", "replace"), io={f: u64(f) for f in IO_FIELDS})


def parse_datagram(buf: bytes, family: int) -> list[TaskExit]:
    """The per-thread exits (TASKSTATS_TYPE_AGGR_PID) in one datagram; the per-group aggregate
    sent when a whole process exits (AGGR_TGID) is not a thread and is skipped."""
    out = []
    for kind, start, end in _messages(buf):
        if kind != family or end - start < 4 or buf[start] != TASKSTATS_CMD_NEW:
            continue
        for atype, a0, a1 in _attrs(buf, start + 4, end):
            if atype != TASKSTATS_TYPE_AGGR_PID:
                continue
            for ntype, n0, n1 in _attrs(buf, a0, a1):
                if ntype == TASKSTATS_TYPE_STATS:
                    rec = parse_stats(buf, n0, n1)
                    if rec is not None:
                        out.append(rec)
    return out


class ExitListener:
    """A registered taskstats listener on every CPU. :meth:`drain` returns the exits queued since
    the last call, without blocking; ``dropped`` counts receive-buffer overruns (ENOBUFS)."""

    def __init__(self, sock: socket.socket, family: int, cpumask: str):
        self.sock, self.family, self.cpumask = sock, family, cpumask
        self.dropped = 0

    def drain(self) -> list[TaskExit]:
        out: list[TaskExit] = []
        while True:
            try:
                buf = self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.dropped += 1
                    continue
                return out
            out.extend(parse_datagram(buf, self.family))

    def close(self) -> None:
        try:
            self.sock.send(_message(self.family, NLM_F_REQUEST, 3, TASKSTATS_CMD_GET,
                                    _attr(TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, self.cpumask.encode() + b"\0")))
        except OSError:
            pass
        self.sock.close()


def _request(sock: socket.socket, msg: bytes, reply_type: int) -> bytes:
    """Send, then the first datagram holding a message of ``reply_type`` or an error (exit
    messages of a listener may arrive first: they are before the window and dropped)."""
    sock.send(msg)
    sock.settimeout(2.0)
    try:
        while True:
            buf = sock.recv(1 << 16)
            if any(kind in (reply_type, NLMSG_ERROR) for kind, _, _ in _messages(buf)):
                return buf
    finally:
        sock.settimeout(None)


def _ack_error(buf: bytes) -> int:
    for kind, start, _ in _messages(buf):
        if kind == NLMSG_ERROR:
            return -struct.unpack_from("=i", buf, start)[0]
    return 0


def open_listener() -> tuple[ExitListener | None, str]:
    """(listener, "") or (None, why not)."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    except OSError as exc:
        return None, f"no generic netlink socket: {exc.strerror}"
    try:
        sock.bind((0, 0))
        try:  # root may exceed net.core.rmem_max: a burst of exits must not overrun the buffer
            sock.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)  # SO_RCVBUFFORCE
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        reply = _request(sock, _message(GENL_ID_CTRL, NLM_F_REQUEST, 1, CTRL_CMD_GETFAMILY,
                                        _attr(CTRL_ATTR_FAMILY_NAME, b"TASKSTATS\0")), GENL_ID_CTRL)
        family = None
        for kind, start, end in _messages(reply):
            if kind == GENL_ID_CTRL:
                for atype, a0, _ in _attrs(reply, start + 4, end):
                    if atype == CTRL_ATTR_FAMILY_ID:
                        family = struct.unpack_from("=H", reply, a0)[0]
        if family is None:
            err = _ack_error(reply)
            sock.close()
            return None, "the kernel has no taskstats family (CONFIG_TASKSTATS)" + (
                f": {os.strerror(err)}" if err else "")
        cpumask = f"0-{os.cpu_count() - 1}" if (os.cpu_count() or 1) > 1 else "0"
        reply = _request(sock, _message(family, NLM_F_REQUEST | NLM_F_ACK, 2, TASKSTATS_CMD_GET,
                                        _attr(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpumask.encode() + b"\0")), NLMSG_ERROR)
        err = _ack_error(reply)
        if err:
            sock.close()
            return None, f"taskstats exit listener refused: {os.strerror(err)}"
        return ExitListener(sock, family, cpumask), ""
    except OSError as exc:
        sock.close()
        return None, f"taskstats: {exc.strerror or exc}"

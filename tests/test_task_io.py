"""Per-thread I/O counters of a foreign program (tracer.capture.target.TaskIoSampler) and the
taskstats exit listener behind them (tracer.capture.taskstats).

The case that matters: a child process that does all its I/O and exits between two /proc
samples. Sampling alone misses it (CI once saw fio's job process charged nothing); with the
exit listener every byte is charged to the thread that read it."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import need
from tracer.capture import taskstats
from tracer.capture.target import SAMPLE_S, TaskIoSampler
from tracer.parse.task_io import read_task_io_file

READ_BLOCKS = 64  # 64 x 4 KiB O_DIRECT reads by the child


def test_struct_offsets_match_the_installed_header(tmp_path):
    need(shutil.which("cc") is not None or shutil.which("clang") is not None, "a C compiler")
    cc = shutil.which("cc") or shutil.which("clang")
    src = tmp_path / "off.c"
    fields = list(taskstats.OFFSETS)
    src.write_text("#include <stdio.h>\n#include <stddef.h>\n#include <linux/taskstats.h>\nint main(void){\n"
                   + "".join(f'printf("%zu\\n", offsetof(struct taskstats, {_c_name(f)}));\n' for f in fields)
                   + 'printf("%d\\n", TASKSTATS_TYPE_AGGR_PID); return 0; }\n')
    subprocess.run([cc, str(src), "-o", str(tmp_path / "off")], check=True)
    got = subprocess.run([str(tmp_path / "off")], capture_output=True, text=True, check=True).stdout.split()
    assert dict(zip(fields, map(int, got))) == taskstats.OFFSETS
    assert int(got[-1]) == taskstats.TASKSTATS_TYPE_AGGR_PID


def _c_name(field: str) -> str:
    return {"rchar": "read_char", "wchar": "write_char", "syscr": "read_syscalls",
            "syscw": "write_syscalls"}.get(field, field)


def _stats_payload(tid: int, tgid: int, ppid: int, comm: bytes, read_bytes: int, version: int = 13) -> bytes:
    buf = bytearray(416)
    struct.pack_into("=H", buf, 0, version)
    buf[80:80 + len(comm)] = comm
    struct.pack_into("=II", buf, taskstats.OFFSETS["ac_pid"], tid, ppid)
    struct.pack_into("=Q", buf, taskstats.OFFSETS["read_bytes"], read_bytes)
    struct.pack_into("=I", buf, taskstats.OFFSETS["ac_tgid"], tgid)
    return bytes(buf)


def test_parse_datagram_keeps_thread_exits_and_skips_group_aggregates():
    fam = 27
    thread = taskstats._attr(taskstats.TASKSTATS_TYPE_PID, struct.pack("=I", 501)) + taskstats._attr(
        taskstats.TASKSTATS_TYPE_STATS, _stats_payload(501, 500, 1, b"fio", 8192))
    group = taskstats._attr(2, struct.pack("=I", 500)) + taskstats._attr(
        taskstats.TASKSTATS_TYPE_STATS, _stats_payload(500, 500, 1, b"fio", 99999))
    attrs = taskstats._attr(taskstats.TASKSTATS_TYPE_AGGR_PID | 0x8000, thread) + taskstats._attr(5, group)
    msg = taskstats._message(fam, 0, 0, taskstats.TASKSTATS_CMD_NEW, attrs)
    other = taskstats._message(fam + 1, 0, 0, taskstats.TASKSTATS_CMD_NEW, attrs)  # another family
    got = taskstats.parse_datagram(msg + other, fam)
    assert [(e.tid, e.tgid, e.ppid, e.comm, e.io["read_bytes"]) for e in got] == [(501, 500, 1, "fio", 8192)]
    old = taskstats._attr(taskstats.TASKSTATS_TYPE_AGGR_PID, taskstats._attr(
        taskstats.TASKSTATS_TYPE_STATS, _stats_payload(7, 0, 1, b"x", 0, version=8)))
    assert taskstats.parse_datagram(taskstats._message(fam, 0, 0, 2, old), fam)[0].tgid is None
    assert taskstats.parse_datagram(b"\x03\x00", fam) == []  # a short datagram is no exit


@pytest.fixture
def direct_file(tmp_path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(READ_BLOCKS * 4096))
    return path


def _child_reads(path: Path) -> str:
    """Python for a child: wait for 'go' on stdin, O_DIRECT-read the file in 4 KiB blocks, exit."""
    return ("import mmap, os, sys\n"
            "sys.stdin.readline()\n"
            f"fd = os.open({str(path)!r}, os.O_RDONLY | os.O_DIRECT)\n"
            "buf = mmap.mmap(-1, 4096)\n"
            f"for i in range({READ_BLOCKS}):\n"
            "    os.preadv(fd, [buf], i * 4096)\n")


def _run_short_lived_child(tmp_path: Path, direct_file: Path, listen_exits: bool):
    """A parent (sh) whose child does its reads and exits inside one sampling interval; the
    sampler follows the parent, as capture follows a command."""
    parent = subprocess.Popen(["sh", "-c", f"{sys.executable} -c \"$CHILD\"; sleep 0.3"],
                              stdin=subprocess.PIPE, env={**os.environ, "CHILD": _child_reads(direct_file)})
    time.sleep(0.3)  # the child is up and waiting
    sampler = TaskIoSampler(parent.pid, listen_exits=listen_exits)
    sampler.baseline()
    sampler.start()
    parent.stdin.write(b"go\n")
    parent.stdin.close()
    parent.wait(timeout=30)
    sampler.stop()
    sampler.write(tmp_path / "task_io.tsv")
    return sampler, read_task_io_file(tmp_path / "task_io.tsv")


def test_a_child_that_exits_between_samples_is_charged_its_reads(tmp_path, direct_file):
    need(os.geteuid() == 0, "root (taskstats listeners need CAP_NET_ADMIN)")
    sampler, rows = _run_short_lived_child(tmp_path, direct_file, listen_exits=True)
    assert sampler.listener_note == "", sampler.listener_note
    assert "taskstats exit counters" in (tmp_path / "task_io.tsv").read_text().splitlines()[0]
    reader = rows.sort_values("read_bytes").iloc[-1]
    assert reader["comm"].startswith("python") and reader["read_bytes"] == READ_BLOCKS * 4096, rows


def test_without_the_listener_the_header_says_what_may_be_missing(tmp_path, direct_file):
    sampler, rows = _run_short_lived_child(tmp_path, direct_file, listen_exits=False)
    head = (tmp_path / "task_io.tsv").read_text().splitlines()[0]
    assert f"may miss its last {SAMPLE_S} s" in head and "no taskstats exit listener: not asked for" in head
    # sampling alone never over-counts: at most what the child read
    assert rows["read_bytes"].max() <= READ_BLOCKS * 4096

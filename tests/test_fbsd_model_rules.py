"""The FreeBSD semantics model's rules, one by one, called directly (ctypes, FreeBSD struct layouts
of sys/sys/aio.h and sys/sys/event.h on amd64). Each test names the kernel function the rule follows
(vfs_aio.c, kern_event.c); the expectations come from those functions, not from the model."""
from __future__ import annotations

import ctypes
import errno
import os

import pytest

from conftest import need_module

model = need_module("workloads._fbsd_model", "the FreeBSD model extension (pip install -e .)")

EV_ONESHOT, EV_CLEAR, EV_EOF, EV_ERROR, REAP = 0x10, 0x20, 0x8000, 0x4000, 0x4000
SIGEV_NONE, SIGEV_KEVENT, EVFILT_AIO, RUSAGE_THREAD = 0, 3, -3, 1
BS = 4096


class Sigevent(ctypes.Structure):  # FreeBSD struct sigevent: 80 bytes
    _fields_ = [("notify", ctypes.c_int), ("kq", ctypes.c_int), ("value", ctypes.c_void_p),
                ("kevent_flags", ctypes.c_ushort), ("_un", ctypes.c_char * 62)]


class Aiocb(ctypes.Structure):  # FreeBSD struct aiocb: 160 bytes, aio_sigevent at 80
    _fields_ = [("fildes", ctypes.c_int), ("offset", ctypes.c_int64), ("buf", ctypes.c_void_p),
                ("nbytes", ctypes.c_size_t), ("spare", ctypes.c_int * 2), ("spare2", ctypes.c_void_p),
                ("opcode", ctypes.c_int), ("reqprio", ctypes.c_int), ("status", ctypes.c_long),
                ("error", ctypes.c_long), ("kernelinfo", ctypes.c_void_p), ("sigevent", Sigevent)]


class Kevent(ctypes.Structure):  # struct kevent (FreeBSD 12+): 64 bytes
    _fields_ = [("ident", ctypes.c_size_t), ("filter", ctypes.c_short), ("flags", ctypes.c_ushort),
                ("fflags", ctypes.c_uint), ("data", ctypes.c_int64), ("udata", ctypes.c_void_p),
                ("ext", ctypes.c_uint64 * 4)]


class Timespec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


class Rusage(ctypes.Structure):  # glibc struct rusage: ru_inblock is the 10th long after two timevals
    _fields_ = [("utime", ctypes.c_long * 2), ("stime", ctypes.c_long * 2), ("longs", ctypes.c_long * 14)]


assert ctypes.sizeof(Aiocb) == 160 and Aiocb.sigevent.offset == 80 and ctypes.sizeof(Kevent) == 64


@pytest.fixture
def k(tmp_path):
    lib = ctypes.CDLL(model.__file__, use_errno=True)
    for name in ("fbsdm_aio_return", "fbsdm_aio_waitcomplete"):
        getattr(lib, name).restype = ctypes.c_ssize_t
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 64)
    fd = os.open(path, os.O_RDWR)
    bufs = [ctypes.create_string_buffer(BS) for _ in range(8)]

    class K:
        pass

    kk = K()
    kk.lib, kk.fd, kk.bufs = lib, fd, bufs

    def configure(kernel, limit=256):
        assert lib.fbsdm_configure(kernel.encode(), limit) == 0

    def cb(i=0, kq=-1, flags=0, fd=None):
        c = Aiocb()
        c.fildes = fd if fd is not None else kk.fd
        c.offset = 0
        c.buf = ctypes.cast(bufs[i], ctypes.c_void_p)
        c.nbytes = BS
        c.opcode = 2
        if kq >= 0:
            c.sigevent.notify, c.sigevent.kq, c.sigevent.kevent_flags = SIGEV_KEVENT, kq, flags
            c.sigevent.value = 0x1000 + i
        return c

    def read(c):
        r = lib.fbsdm_aio_read(ctypes.byref(c))
        return 0 if r == 0 else ctypes.get_errno()

    def kevent(kq, n=8, wait_s=2.0):
        evs = (Kevent * n)()
        ts = Timespec(int(wait_s), int((wait_s % 1) * 1e9))
        got = lib.fbsdm_kevent(kq, None, 0, evs, n, ctypes.byref(ts))
        assert got >= 0
        return list(evs[:got])

    def wait_done(c):
        one = (ctypes.POINTER(Aiocb) * 1)(ctypes.pointer(c))
        ts = Timespec(2, 0)
        lib.fbsdm_aio_suspend(one, 1, ctypes.byref(ts))

    def inblock():
        ru = Rusage()
        assert lib.fbsdm_getrusage(RUSAGE_THREAD, ctypes.byref(ru)) == 0
        return ru.longs[7]  # ru_maxrss, ixrss, idrss, isrss, minflt, majflt, nswap, INBLOCK

    kk.configure, kk.cb, kk.read, kk.kevent, kk.wait_done, kk.inblock = configure, cb, read, kevent, wait_done, inblock
    kk.kqueue = lib.fbsdm_kqueue
    yield kk
    os.close(fd)


def test_level_triggered_knotes_come_back_until_aio_return_frees_the_job(k):
    """kern_event.c kqueue_scan re-queues a knote with neither EV_ONESHOT nor EV_CLEAR while filt_aio
    is true; vfs_aio.c aio_free_entry (from kern_aio_return) deletes it."""
    k.configure("stock")
    kq = k.kqueue()
    c = k.cb(0, kq, 0)
    assert k.read(c) == 0
    first = k.kevent(kq)
    assert len(first) == 1 and first[0].ident == ctypes.addressof(c) and first[0].filter == EVFILT_AIO
    assert first[0].flags == EV_EOF and first[0].data == 0 and first[0].udata == 0x1000
    again = k.kevent(kq, wait_s=0.05)
    assert len(again) == 1 and again[0].ident == ctypes.addressof(c)  # the same completion, again
    assert k.lib.fbsdm_aio_return(ctypes.byref(c)) == BS
    assert k.kevent(kq, wait_s=0.05) == []


@pytest.mark.parametrize("flag", [EV_ONESHOT, EV_CLEAR])
def test_oneshot_and_clear_knotes_are_delivered_once(k, flag):
    """kqueue_scan: EV_ONESHOT drops the knote after delivery; EV_CLEAR takes it off the queue."""
    k.configure("stock")
    kq = k.kqueue()
    c = k.cb(0, kq, flag)
    assert k.read(c) == 0
    got = k.kevent(kq)
    assert len(got) == 1 and got[0].flags == flag | EV_EOF
    assert k.kevent(kq, wait_s=0.05) == []
    assert k.lib.fbsdm_aio_return(ctypes.byref(c)) == BS  # the job lives until aio_return


def test_stock_refuses_the_reap_flag_at_submission(k):
    """vfs_aio.c aio_aqueue (stock): flags other than EV_CLEAR|EV_DISPATCH|EV_ONESHOT are EINVAL,
    stored in the aiocb's error, and no job exists."""
    k.configure("stock")
    kq = k.kqueue()
    c = k.cb(0, kq, REAP)
    assert k.read(c) == errno.EINVAL
    assert c.error == errno.EINVAL and c.status == -1
    assert k.lib.fbsdm_aio_error(ctypes.byref(c)) == errno.EINVAL  # the "failure of aio_aqueue" hack
    assert k.lib.fbsdm_jobs_alive() == 0


def test_reap_puts_the_result_in_the_kevent_and_frees_the_job_at_completion(k):
    """D33144 filt_aioattach (REAP -> EV_ONESHOT), filt_aio (data = status), aio_bio_done_notify
    (knlist_clear + aio_free_entry at completion), aio_complete (status/error stored in the user
    aiocb) and kern_aio_error (returns the stored error)."""
    k.configure("d33144")
    kq = k.kqueue()
    c = k.cb(0, kq, REAP)
    assert k.read(c) == 0
    got = k.kevent(kq)
    assert len(got) == 1 and got[0].data == BS and got[0].flags == EV_ONESHOT | EV_EOF
    assert k.lib.fbsdm_jobs_alive() == 0  # freed before anyone asked
    assert c.status == BS and c.error == 0
    assert k.lib.fbsdm_aio_error(ctypes.byref(c)) == 0 and k.lib.fbsdm_aio_error(ctypes.byref(c)) == 0
    assert k.lib.fbsdm_aio_return(ctypes.byref(c)) == -1 and ctypes.get_errno() == errno.EINVAL


def test_reap_reports_an_error_with_ev_error_and_the_errno(k, tmp_path):
    k.configure("d33144")
    kq = k.kqueue()
    dfd = os.open(tmp_path, os.O_RDONLY)  # pread on a directory fails at completion (EISDIR)
    try:
        c = k.cb(0, kq, REAP, fd=dfd)
        assert k.read(c) == 0
        got = k.kevent(kq)
        assert len(got) == 1 and got[0].flags & EV_ERROR and got[0].data == errno.EISDIR
    finally:
        os.close(dfd)


def test_a_job_counts_against_max_aio_queue_per_proc_until_it_is_freed(k):
    """vfs_aio.c aio_aqueue: EAGAIN when kaio_count >= max_aio_queue_per_proc; aio_free_entry is the
    only place kaio_count goes down, so a finished job not yet returned still counts."""
    k.configure("stock", limit=2)
    a, b, c = k.cb(0), k.cb(1), k.cb(2)
    assert k.read(a) == 0 and k.read(b) == 0
    k.wait_done(a)
    k.wait_done(b)
    assert k.lib.fbsdm_aio_error(ctypes.byref(a)) == 0  # finished...
    assert k.read(c) == errno.EAGAIN and c.error == errno.EAGAIN  # ...but still counted
    assert k.lib.fbsdm_aio_return(ctypes.byref(a)) == BS
    assert k.read(c) == 0
    k.wait_done(c)
    assert k.lib.fbsdm_aio_return(ctypes.byref(b)) == BS and k.lib.fbsdm_aio_return(ctypes.byref(c)) == BS
    k.configure("stock")


def test_rusage_goes_to_the_aio_return_caller_on_stock_and_to_the_submitter_with_d33271(k):
    """stock kern_aio_return adds job->inblock to the CALLING thread's td_ru; D33271's aio_complete
    adds it to job->td (the submitter) at completion. Units: block operations (one per job here)."""
    import threading

    for kernel, charged_at_completion in (("stock", False), ("d33144", True)):
        k.configure(kernel)
        c = k.cb(0)
        assert k.read(c) == 0
        k.wait_done(c)
        assert k.inblock() == (1 if charged_at_completion else 0)
        seen = {}

        def reaper():
            seen["ret"] = k.lib.fbsdm_aio_return(ctypes.byref(c))
            seen["inblock"] = k.inblock()

        t = threading.Thread(target=reaper)
        t.start()
        t.join()
        assert seen["ret"] == BS
        assert seen["inblock"] == (0 if charged_at_completion else 1)  # the other thread
        assert k.inblock() == (1 if charged_at_completion else 0)


def test_waitcomplete_returns_the_aiocb_and_stores_its_final_status_on_stock(k):
    """stock kern_aio_waitcomplete: store_aiocb, then store_error/store_status after aio_free_entry,
    so a later aio_error of that aiocb does not answer EINPROGRESS (the aio_aqueue-failure hack)."""
    k.configure("stock")
    c = k.cb(0)
    assert k.read(c) == 0
    out = ctypes.POINTER(Aiocb)()
    ts = Timespec(2, 0)
    assert k.lib.fbsdm_aio_waitcomplete(ctypes.byref(out), ctypes.byref(ts)) == BS
    assert ctypes.addressof(out.contents) == ctypes.addressof(c) and k.lib.fbsdm_jobs_alive() == 0
    assert c.status == BS and c.error == 0
    assert k.lib.fbsdm_aio_error(ctypes.byref(c)) == errno.EINVAL  # no job, status != -1

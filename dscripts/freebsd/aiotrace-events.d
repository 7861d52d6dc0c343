#!/usr/sbin/dtrace -qs
/*
 * aiotrace-events.d  One event line per AIO/kqueue syscall, kernel AIO job transition, rusage
 *                    charge and workload probe of ONE process. FreeBSD dtrace(1).
 *
 * FREEBSD VERSIONS: 13.0 or later on amd64 (aio_readv/aio_writev, syscalls 578/579, appeared in
 *   13.0; kevent 560 with the 64-byte struct kevent in 12.0; struct kaiocb with ->ujob and
 *   ->userproc since 11.0). Read against upstream sys/kern/vfs_aio.c (fel1x-developer/freebsd-src
 *   @2d614aa2fe3e037bd11d351b0b5cfda776e65814); see tracer/data/freebsd_vfs_aio_functions.txt.
 *   NOT RUN ON FREEBSD HERE: this script is checked statically (probe names, printf formats).
 *
 * USAGE:   dtrace -q -x bufsize=32m -x switchrate=20hz -x dynvarsize=16m -x strsize=32 \
 *                 -p PID -s aiotrace-events.d
 *          (or -c '/path/to/aiotrace-workload ...' for the native workload binary). Build the exact
 *          command with tracer.dscripts.dtrace_argv("events", pid=PID). No macro arguments: the
 *          only input is the pid ($target), given to dtrace as -p/-c, never pasted into program text.
 *          On kernels with D33271 (rusage charged at completion to the submitting thread, job->td)
 *          add "-s aiotrace-ru-d33271.d" (dtrace_argv(..., d33271=True)); that clause does not
 *          compile on stock kernels, whose struct kaiocb has no td member.
 *
 * TRACES:
 *   syscall::{aio_read,aio_write,aio_readv,aio_writev,aio_error,aio_return,aio_suspend,
 *             aio_waitcomplete,aio_cancel,aio_fsync,lio_listio,kqueue,kevent,compat11.kevent,
 *             getrusage}:{entry,return}                                   pid == $target
 *   fbt::aio_aqueue:entry/return, fbt::aio_schedule:entry                -> job_queue
 *   fbt::aio_process_rw:entry                                            -> job_start (aiod thread)
 *   fbt::aio_complete:entry                                              -> job_done
 *   fbt::aio_bio_done_notify:entry, fbt::filt_aio:entry                  -> job_notify
 *   fbt::aio_free_entry:entry                                            -> job_free
 *   curthread->td_ru around aio_return/aio_waitcomplete                  -> ru_charge (stock kernels)
 *   fbt::aio_complete:entry job->td (add-on aiotrace-ru-d33271.d)         -> ru_charge (D33271)
 *   pid$target::aiotrace_probe_{window_start,window_stop,submit,reap,sync}:entry (tracer/base/spec.py)
 *   Kernel-job probes are keyed by the kaiocb pointer and job->ujob (the user aiocb address, equal
 *   to kevent.ident and to aio_*(2)'s argument) and filtered by job->userproc->p_pid == $target,
 *   never by pid alone: the I/O runs in aiod kernel processes that have their own pids.
 *
 * OUTPUT (stdout): the header line tracer.base.schema.HEADER_LINE from BEGIN (DTrace fires BEGIN once
 *   every probe is enabled, so it is also the "attached" signal), then one event line per event:
 *   E<TAB>ts_ns<TAB>pid<TAB>tid<TAB>ev<TAB>name<TAB>id<TAB>a0<TAB>a1<TAB>a2<TAB>ret<TAB>err
 *   (fields and kinds: tracer/base/schema.py EVENT_FIELDS, EVENT_KINDS; ts_ns is DTrace `timestamp`).
 *     sys_enter   name = syscall; a0..a2 = first three arguments; id = user aiocb for aio_read,
 *                 aio_write, aio_readv, aio_writev, aio_error, aio_return (arg0), aio_cancel and
 *                 aio_fsync (arg1); 0 otherwise
 *     sys_exit    ret = arg0 (-1 on error) and err = errno. aio_error returns its answer as the VALUE:
 *                 ret 36 (EINPROGRESS) with err 0 while pending, ret 22 for an unknown aiocb.
 *                 id = the aiocb for the calls above and, for aio_waitcomplete, the aiocb it returned
 *     job_queue   name aio_aqueue (submitting thread): id = ujob, a0 = kaiocb (0 when the job never
 *                 reached aio_schedule: the aio_qbio disk path, or a failure), a1 = type (LIO_READ 2,
 *                 LIO_WRITE 1, LIO_NOP 0 for lio_listio, LIO_READV 6, LIO_WRITEV 5, LIO_SYNC 8),
 *                 ret = 0 / -1, err = error
 *     job_start   name aio_process_rw, pid/tid = the aiod kernel process: id = ujob, a0 = kaiocb,
 *                 a1 = aio_nbytes
 *     job_done    name aio_complete: id = ujob, a0 = kaiocb, a1 = job->inblock, a2 = job->outblock
 *                 (blocks the aiod or bio path counted for this job), ret = status, err = error
 *     job_notify  name aio_bio_done_notify (completion posted: done queue, signal, KNOTE) or
 *                 filt_aio (a1 = hint: 1 = KNOTE from completion, 0 = re-check by kevent() collecting
 *                 the event in the reaper's thread): id = ujob, a0 = kaiocb
 *     job_free    name aio_free_entry: id = ujob, a0 = kaiocb, a1 = job->inblock, a2 = job->outblock
 *     ru_charge   name aio_return | aio_waitcomplete: tid = the thread whose td_ru grew,
 *                 a0 = ru_inblock delta, a1 = ru_oublock delta over the syscall, id = the aiocb.
 *                 With aiotrace-ru-d33271.d: name aio_complete, pid/tid = job->userproc / job->td,
 *                 a0/a1 = job->inblock/outblock added to the submitting thread.
 *     submit, reap, window_start, window_stop, sync: the workload's probe functions (pid provider)
 *   stderr: dtrace's own messages ("dtrace: N drops on CPU c", "dynamic variable drops", errors).
 *
 * COST: per event. Each line is a few hundred bytes in the principal buffer; at 100k+ events/s
 *   raise bufsize and switchrate or drops appear on stderr (the exit status stays 0: parse stderr).
 *   Use aiotrace-agg.d for low overhead.
 *
 * TRAPS:
 *   - A probe that does not exist makes dtrace refuse the WHOLE script:
 *       dtrace: failed to compile script aiotrace-events.d: line N: probe description
 *       fbt::aio_bio_done_notify:entry does not match any probes
 *     Most vfs_aio.c functions are static; the compiler may inline a static function (e.g.
 *     aio_bio_done_notify, aio_free_entry, kern_aio_return) and then fbt has no probe for it.
 *     aio_complete, aio_aqueue and aio_schedule are global; aio_process_rw and filt_aio have their
 *     address taken, so they keep a symbol. Check first:
 *       dtrace -l -n fbt::aio_aqueue:entry -n fbt::aio_schedule:entry -n fbt::aio_process_rw:entry \
 *                 -n fbt::aio_complete:entry -n fbt::aio_bio_done_notify:entry \
 *                 -n fbt::filt_aio:entry -n fbt::aio_free_entry:entry
 *     (tracer.dscripts.dtrace_list_argv()). Choices when one is missing: run with -Z (dtrace then
 *     silently drops that clause: its event kind is simply absent and analyses needing it must
 *     refuse, e.g. no job_free means no async-free timing), or on FreeBSD 14+ use the kinst
 *     provider in a copy of this script (dtrace_kinst(4): kinst::<function>:<instruction offset>
 *     probes any instruction of a function that exists, so code inlined into a caller can be
 *     traced at its offsets there; list them with dtrace -l -n 'kinst::aio_complete:'; UNVERIFIED
 *     here). kern_aio_return/kern_aio_waitcomplete
 *     (static, two callers each) are deliberately NOT probed: the rusage charge is measured on
 *     curthread->td_ru across the aio_return/aio_waitcomplete syscalls, which bracket it exactly.
 *   - syscall::compat11.kevent is the freebsd11 kevent (363) used by binaries built for <= 11;
 *     the '.' is legal in a D probe specifier, but this name is UNVERIFIED on a live system.
 *   - The pid provider creates probes for objects mapped when dtrace starts: with -c, functions in
 *     a shared object loaded later (the Python cffi extension) do not exist yet. Attach with -p to
 *     the workload held at its start handshake (tracer/base/spec.py READY_LINE), or use the native
 *     workload binary with -c.
 *   - copyin() of the aio_waitcomplete result runs in the caller's context at :return (safe).
 *   - printf conversions are %d/%u/%s only. libdtrace checks %ld/%lld/%llu with pfcheck_type,
 *     i.e. ctf_type_compat on type NAMES after typedefs resolve (dt_printf.c); in 64-bit D
 *     int64_t is "long" and uint64_t "unsigned long" (dt_open.c _dtrace_typedefs_64), so
 *     "%lld" of an int64_t is refused at compile time. %d and %u take any integer
 *     (pfcheck_dint/pfcheck_xint) and print all 64 bits: %d prints signed values signed.
 *   - A D variable (self->, this->, global) takes its type from its FIRST assignment in the
 *     program text (dt_parser.c dt_cook_op2, DT_TOK_ASGN: a virgin variable gets the type of the
 *     right-hand side). "self->x = 0" first makes x an int and truncates a pointer stored
 *     later: clear with "(int64_t)0" or assign the typed value first.
 *   - filt_aio runs once at attach with job->userproc still NULL: aio_aqueue calls
 *     kqfd_register before it sets job->userproc, and kqueue_register calls f_event(kn, 0)
 *     right after filt_aioattach (kern_event.c). Its predicate tests userproc != NULL first
 *     (&& short-circuits: dt_cg.c dt_cg_logical_and); that attach-time check is not traced.
 *   tracer/dscripts.py check_d_rules enforces these three rules (tests/test_dscripts_static.py).
 *
 * EXAMPLE: dtrace -q -x bufsize=32m -x switchrate=20hz -x dynvarsize=16m -x strsize=32 \
 *              -p 4242 -s dscripts/freebsd/aiotrace-events.d > events.txt 2> dtrace.stderr
 */

dtrace:::BEGIN
{
	printf("AIOTRACE\tv1\tts_ns\tpid\ttid\tev\tname\tid\ta0\ta1\ta2\tret\terr\n");
}

/* ---- syscalls: entry ------------------------------------------------------------------ */

syscall::aio_read:entry, syscall::aio_write:entry, syscall::aio_readv:entry,
syscall::aio_writev:entry, syscall::aio_error:entry, syscall::aio_return:entry
/pid == $target/
{
	self->ujob = (int64_t)arg0;
	printf("E\t%u\t%d\t%d\tsys_enter\t%s\t%d\t%d\t0\t0\t0\t0\n",
	    timestamp, pid, tid, probefunc, (int64_t)arg0, (int64_t)arg0);
}

syscall::aio_cancel:entry, syscall::aio_fsync:entry
/pid == $target/
{
	self->ujob = (int64_t)arg1;
	printf("E\t%u\t%d\t%d\tsys_enter\t%s\t%d\t%d\t%d\t0\t0\t0\n",
	    timestamp, pid, tid, probefunc, (int64_t)arg1, (int64_t)arg0, (int64_t)arg1);
}

syscall::aio_suspend:entry, syscall::aio_waitcomplete:entry, syscall::lio_listio:entry,
syscall::kevent:entry, syscall::compat11.kevent:entry, syscall::getrusage:entry
/pid == $target/
{
	self->ujob = (int64_t)0;
	printf("E\t%u\t%d\t%d\tsys_enter\t%s\t0\t%d\t%d\t%d\t0\t0\n",
	    timestamp, pid, tid, probefunc, (int64_t)arg0, (int64_t)arg1, (int64_t)arg2);
}

syscall::kqueue:entry
/pid == $target/
{
	self->ujob = (int64_t)0;
	printf("E\t%u\t%d\t%d\tsys_enter\tkqueue\t0\t0\t0\t0\t0\t0\n", timestamp, pid, tid);
}

/* aio_waitcomplete(struct aiocb **, timeout) stores the finished aiocb through arg0. */
syscall::aio_waitcomplete:entry
/pid == $target/
{
	self->wc_ujobp = arg0;
}

/* The rusage charge (stock kernels): whatever kern_aio_return/kern_aio_waitcomplete add to
 * this thread's td_ru shows as the delta across the syscall. */
syscall::aio_return:entry, syscall::aio_waitcomplete:entry
/pid == $target/
{
	self->ru_in = curthread->td_ru.ru_inblock;
	self->ru_out = curthread->td_ru.ru_oublock;
	self->ru_armed = 1;
}

/* ---- syscalls: return ----------------------------------------------------------------- */

syscall::aio_waitcomplete:return
/self->wc_ujobp/
{
	self->ujob = (int64_t)*(uint64_t *)copyin(self->wc_ujobp, sizeof (uint64_t));
	self->wc_ujobp = 0;
}

syscall::aio_return:return, syscall::aio_waitcomplete:return
/self->ru_armed/
{
	printf("E\t%u\t%d\t%d\tru_charge\t%s\t%d\t%d\t%d\t0\t0\t0\n",
	    timestamp, pid, tid, probefunc, (int64_t)self->ujob,
	    (int64_t)(curthread->td_ru.ru_inblock - self->ru_in),
	    (int64_t)(curthread->td_ru.ru_oublock - self->ru_out));
	self->ru_armed = 0;
}

syscall::aio_read:return, syscall::aio_write:return, syscall::aio_readv:return,
syscall::aio_writev:return, syscall::aio_error:return, syscall::aio_return:return,
syscall::aio_suspend:return, syscall::aio_waitcomplete:return, syscall::aio_cancel:return,
syscall::aio_fsync:return, syscall::lio_listio:return, syscall::kqueue:return,
syscall::kevent:return, syscall::compat11.kevent:return, syscall::getrusage:return
/pid == $target/
{
	printf("E\t%u\t%d\t%d\tsys_exit\t%s\t%d\t0\t0\t0\t%d\t%d\n",
	    timestamp, pid, tid, probefunc, (int64_t)self->ujob, (int64_t)arg0, errno);
	self->ujob = 0;
}

/* ---- kernel AIO jobs (fbt) -------------------------------------------------------------- */

/* aio_aqueue(td, ujob, lj, type, ops) runs in the submitting thread; aio_schedule(job, fn) inside
 * it is the first place the kaiocb is visible (not reached on the aio_qbio disk path). */
fbt::aio_aqueue:entry
/args[0]->td_proc->p_pid == $target/
{
	self->aq_ujob = (int64_t)args[1];
	self->aq_type = args[3];
	self->aq_job = (int64_t)0;	/* first assignment: types aq_job as int64_t (see TRAPS) */
}

fbt::aio_schedule:entry
/self->aq_ujob != 0 && args[0]->userproc->p_pid == $target/
{
	self->aq_job = (int64_t)args[0];
}

fbt::aio_aqueue:return
/self->aq_ujob != 0/
{
	printf("E\t%u\t%d\t%d\tjob_queue\taio_aqueue\t%d\t%d\t%d\t0\t%d\t%d\n",
	    timestamp, pid, tid, self->aq_ujob, self->aq_job, (int64_t)self->aq_type,
	    (int64_t)(args[1] == 0 ? 0 : -1), (int)args[1]);
	self->aq_ujob = 0;
	self->aq_job = 0;
}

fbt::aio_process_rw:entry
/args[0]->userproc->p_pid == $target/
{
	printf("E\t%u\t%d\t%d\tjob_start\taio_process_rw\t%d\t%d\t%d\t0\t0\t0\n",
	    timestamp, pid, tid, (int64_t)args[0]->ujob, (int64_t)args[0],
	    (int64_t)args[0]->uaiocb.aio_nbytes);
}

fbt::aio_complete:entry
/args[0]->userproc->p_pid == $target/
{
	printf("E\t%u\t%d\t%d\tjob_done\taio_complete\t%d\t%d\t%d\t%d\t%d\t%d\n",
	    timestamp, pid, tid, (int64_t)args[0]->ujob, (int64_t)args[0],
	    (int64_t)args[0]->inblock, (int64_t)args[0]->outblock, (int64_t)args[1], args[2]);
}

fbt::aio_bio_done_notify:entry
/args[1]->userproc->p_pid == $target/
{
	printf("E\t%u\t%d\t%d\tjob_notify\taio_bio_done_notify\t%d\t%d\t0\t0\t0\t0\n",
	    timestamp, pid, tid, (int64_t)args[1]->ujob, (int64_t)args[1]);
}

/* userproc is NULL on the attach-time call from kqueue_register (see TRAPS): test it first. */
fbt::filt_aio:entry
/args[0]->kn_ptr.p_aio->userproc != NULL &&
    args[0]->kn_ptr.p_aio->userproc->p_pid == $target/
{
	printf("E\t%u\t%d\t%d\tjob_notify\tfilt_aio\t%d\t%d\t%d\t0\t0\t0\n",
	    timestamp, pid, tid, (int64_t)args[0]->kn_ptr.p_aio->ujob,
	    (int64_t)args[0]->kn_ptr.p_aio, (int64_t)args[1]);
}

fbt::aio_free_entry:entry
/args[0]->userproc->p_pid == $target/
{
	printf("E\t%u\t%d\t%d\tjob_free\taio_free_entry\t%d\t%d\t%d\t%d\t0\t0\n",
	    timestamp, pid, tid, (int64_t)args[0]->ujob, (int64_t)args[0],
	    (int64_t)args[0]->inblock, (int64_t)args[0]->outblock);
}

/* ---- the workload's probe functions (pid provider) ---------------------------------------- */

pid$target::aiotrace_probe_window_start:entry
{
	printf("E\t%u\t%d\t%d\twindow_start\taiotrace_probe_window_start\t0\t%d\t0\t0\t0\t0\n",
	    timestamp, pid, tid, (int64_t)arg0);
}

pid$target::aiotrace_probe_window_stop:entry
{
	printf("E\t%u\t%d\t%d\twindow_stop\taiotrace_probe_window_stop\t0\t%d\t0\t0\t0\t0\n",
	    timestamp, pid, tid, (int64_t)arg0);
}

/* (uint64 first_id, uint32 count, int64 ret): the upper half of a 32-bit argument is undefined. */
pid$target::aiotrace_probe_submit:entry
{
	printf("E\t%u\t%d\t%d\tsubmit\taiotrace_probe_submit\t%d\t%d\t0\t0\t%d\t0\n",
	    timestamp, pid, tid, (int64_t)arg0, (int64_t)(arg1 & 0xffffffff), (int64_t)arg2);
}

/* (uint64 id, int64 result, uint32 batch) */
pid$target::aiotrace_probe_reap:entry
{
	printf("E\t%u\t%d\t%d\treap\taiotrace_probe_reap\t%d\t%d\t0\t0\t%d\t0\n",
	    timestamp, pid, tid, (int64_t)arg0, (int64_t)(arg2 & 0xffffffff), (int64_t)arg1);
}

pid$target::aiotrace_probe_sync:entry
{
	printf("E\t%u\t%d\t%d\tsync\taiotrace_probe_sync\t0\t%d\t0\t0\t0\t0\n",
	    timestamp, pid, tid, (int64_t)arg0);
}

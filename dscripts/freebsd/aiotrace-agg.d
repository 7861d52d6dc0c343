#!/usr/sbin/dtrace -qs
/*
 * aiotrace-agg.d  In-kernel counts, sums and log2 histograms (quantize) of the AIO/kqueue syscalls,
 *                 kernel AIO jobs and rusage charges of ONE process, printed once at exit.
 *                 FreeBSD dtrace(1).
 *
 * FREEBSD VERSIONS: 13.0 or later on amd64, same probes as aiotrace-events.d (see its header for
 *   why and for the sources). NOT RUN ON FREEBSD HERE: checked statically only.
 *
 * USAGE:   dtrace -q -x bufsize=4m -x switchrate=10hz -x dynvarsize=16m -x aggsize=4m \
 *                 -x strsize=32 -p PID -s aiotrace-agg.d
 *          (tracer.dscripts.dtrace_argv("aggregate", pid=PID)). No macro arguments; the only input
 *          is the pid ($target), given as -p/-c.
 *
 * TRACES: syscall::{aio_read,aio_write,aio_readv,aio_writev,aio_error,aio_return,aio_suspend,
 *   aio_waitcomplete,aio_cancel,aio_fsync,lio_listio,kqueue,kevent,compat11.kevent,getrusage},
 *   fbt::{aio_aqueue,aio_schedule,aio_process_rw,aio_complete,aio_bio_done_notify,filt_aio,
 *   aio_free_entry}, curthread->td_ru across aio_return/aio_waitcomplete, and
 *   pid$target::aiotrace_probe_* (tracer/base/spec.py PROBE_FUNCTIONS).
 *
 * OUTPUT (stdout), all at exit except the first line:
 *   AIOTRACE-AGG<TAB>v1                                   from BEGIN: all probes are enabled
 *   A<TAB><aggregation><TAB><key>...<TAB><value>          one line per key of a count/sum/max
 *     A syscalls        tid name count      every listed syscall entered by pid $target
 *     A window_syscalls tid name count      the same, between the window_start and window_stop probes
 *     A syscall_errors  tid name count      returns with arg0 == -1 (aio_error's EINPROGRESS is a value)
 *     A ru_inblock      tid blocks          ru_inblock added to the thread across aio_return/aio_waitcomplete
 *     A ru_oublock      tid blocks          ditto ru_oublock (stock kernels charge the REAPING thread)
 *     A jobs            what count          queued, queue_failed, started, completed, notified,
 *                                           knote_checks, freed
 *     A jobs_freed_by   execname count      who freed kaiocbs (the workload's name, or aiod* when freed
 *                                           asynchronously as with D33144 REAP)
 *     A job_blocks      what blocks         inblock / outblock summed over completed jobs
 *     A probe_calls     tid probe count     the workload's probe functions
 *     A probe_ios       tid what count      submitted (sum of counts), reaped, reap_errors
 *     A window          what value          start_ns, stop_ns, planned_ios, completed_ios, sync_ns,
 *                                           sync_workload_ns
 *   H<TAB><aggregation><TAB><key>   followed by DTrace's quantize table for that key
 *     ("value  ------------- Distribution ------------- count" and rows "%16lld |@@@ %-9lld";
 *     freebsd-facts.md 5.3), ns:
 *     H syscall_ns name             entry->return per syscall
 *     H job_ns queue_to_start | queue_to_complete | complete_to_free   per kaiocb, joined on the pointer
 *   stderr: dtrace's own messages (drops, "dynamic variable drops", errors).
 *
 * COST: aggregated in the kernel; thread-local and associative-array state needs dynvarsize
 *   (in-flight kaiocbs x 2 entries). Nothing per event is copied out.
 *
 * TRAPS: see aiotrace-events.d (missing/inlined fbt functions, -Z, kinst, pid provider and -c;
 *   %d/%u only, first assignment types a variable, filt_aio's NULL userproc at attach).
 *   printa() with a format disables dtrace's default printing of that aggregation at exit.
 *   Keys are kaiocb pointers, which UMA reuses: a start time is cleared when its job is freed.
 *
 * EXAMPLE: dtrace -q -x bufsize=4m -x switchrate=10hz -x dynvarsize=16m -x aggsize=4m -x strsize=32 \
 *              -p 4242 -s dscripts/freebsd/aiotrace-agg.d > agg.txt 2> dtrace.stderr
 */

int in_window;

dtrace:::BEGIN
{
	printf("AIOTRACE-AGG\tv1\n");
}

/* ---- syscalls ----------------------------------------------------------------------------- */

syscall::aio_read:entry, syscall::aio_write:entry, syscall::aio_readv:entry,
syscall::aio_writev:entry, syscall::aio_error:entry, syscall::aio_return:entry,
syscall::aio_suspend:entry, syscall::aio_waitcomplete:entry, syscall::aio_cancel:entry,
syscall::aio_fsync:entry, syscall::lio_listio:entry, syscall::kqueue:entry,
syscall::kevent:entry, syscall::compat11.kevent:entry, syscall::getrusage:entry
/pid == $target/
{
	self->sc_ts = timestamp;
	@syscalls[tid, probefunc] = count();
}

syscall::aio_read:entry, syscall::aio_write:entry, syscall::aio_readv:entry,
syscall::aio_writev:entry, syscall::aio_error:entry, syscall::aio_return:entry,
syscall::aio_suspend:entry, syscall::aio_waitcomplete:entry, syscall::aio_cancel:entry,
syscall::aio_fsync:entry, syscall::lio_listio:entry, syscall::kqueue:entry,
syscall::kevent:entry, syscall::compat11.kevent:entry, syscall::getrusage:entry
/pid == $target && in_window/
{
	@window_syscalls[tid, probefunc] = count();
}

syscall::aio_return:entry, syscall::aio_waitcomplete:entry
/pid == $target/
{
	self->ru_in = curthread->td_ru.ru_inblock;
	self->ru_out = curthread->td_ru.ru_oublock;
	self->ru_armed = 1;
}

syscall::aio_return:return, syscall::aio_waitcomplete:return
/self->ru_armed/
{
	@ru_inblock[tid] = sum(curthread->td_ru.ru_inblock - self->ru_in);
	@ru_oublock[tid] = sum(curthread->td_ru.ru_oublock - self->ru_out);
	self->ru_armed = 0;
}

syscall::aio_read:return, syscall::aio_write:return, syscall::aio_readv:return,
syscall::aio_writev:return, syscall::aio_error:return, syscall::aio_return:return,
syscall::aio_suspend:return, syscall::aio_waitcomplete:return, syscall::aio_cancel:return,
syscall::aio_fsync:return, syscall::lio_listio:return, syscall::kqueue:return,
syscall::kevent:return, syscall::compat11.kevent:return, syscall::getrusage:return
/self->sc_ts/
{
	@syscall_ns[probefunc] = quantize(timestamp - self->sc_ts);
	self->sc_ts = 0;
}

syscall::aio_read:return, syscall::aio_write:return, syscall::aio_readv:return,
syscall::aio_writev:return, syscall::aio_error:return, syscall::aio_return:return,
syscall::aio_suspend:return, syscall::aio_waitcomplete:return, syscall::aio_cancel:return,
syscall::aio_fsync:return, syscall::lio_listio:return, syscall::kqueue:return,
syscall::kevent:return, syscall::compat11.kevent:return, syscall::getrusage:return
/pid == $target && (int64_t)arg0 == -1/
{
	@syscall_errors[tid, probefunc] = count();
}

/* ---- kernel AIO jobs ---------------------------------------------------------------------- */

fbt::aio_aqueue:entry
/args[0]->td_proc->p_pid == $target/
{
	self->in_aqueue = 1;
}

fbt::aio_schedule:entry
/self->in_aqueue && args[0]->userproc->p_pid == $target/
{
	queued_ts[(int64_t)args[0]] = timestamp;
}

fbt::aio_aqueue:return
/self->in_aqueue/
{
	@jobs[args[1] == 0 ? "queued" : "queue_failed"] = count();
	self->in_aqueue = 0;
}

fbt::aio_process_rw:entry
/args[0]->userproc->p_pid == $target/
{
	@jobs["started"] = count();
}

fbt::aio_process_rw:entry
/args[0]->userproc->p_pid == $target && queued_ts[(int64_t)args[0]] != 0/
{
	@job_ns["queue_to_start"] = quantize(timestamp - queued_ts[(int64_t)args[0]]);
}

fbt::aio_complete:entry
/args[0]->userproc->p_pid == $target/
{
	@jobs["completed"] = count();
	@job_blocks["inblock"] = sum(args[0]->inblock);
	@job_blocks["outblock"] = sum(args[0]->outblock);
	done_ts[(int64_t)args[0]] = timestamp;
}

fbt::aio_complete:entry
/args[0]->userproc->p_pid == $target && queued_ts[(int64_t)args[0]] != 0/
{
	@job_ns["queue_to_complete"] = quantize(timestamp - queued_ts[(int64_t)args[0]]);
	queued_ts[(int64_t)args[0]] = 0;
}

fbt::aio_bio_done_notify:entry
/args[1]->userproc->p_pid == $target/
{
	@jobs["notified"] = count();
}

/* userproc is NULL on the attach-time call from kqueue_register (aiotrace-events.d TRAPS): test it first. */
fbt::filt_aio:entry
/args[0]->kn_ptr.p_aio->userproc != NULL &&
    args[0]->kn_ptr.p_aio->userproc->p_pid == $target/
{
	@jobs["knote_checks"] = count();
}

fbt::aio_free_entry:entry
/args[0]->userproc->p_pid == $target/
{
	@jobs["freed"] = count();
	@jobs_freed_by[execname] = count();
	queued_ts[(int64_t)args[0]] = 0;
}

fbt::aio_free_entry:entry
/args[0]->userproc->p_pid == $target && done_ts[(int64_t)args[0]] != 0/
{
	@job_ns["complete_to_free"] = quantize(timestamp - done_ts[(int64_t)args[0]]);
	done_ts[(int64_t)args[0]] = 0;
}

/* ---- the workload's probe functions ------------------------------------------------------- */

pid$target::aiotrace_probe_window_start:entry
{
	in_window = 1;
	@window["start_ns"] = max(timestamp);
	@window["planned_ios"] = max(arg0);
	@probe_calls[tid, "window_start"] = count();
}

pid$target::aiotrace_probe_window_stop:entry
{
	in_window = 0;
	@window["stop_ns"] = max(timestamp);
	@window["completed_ios"] = max(arg0);
	@probe_calls[tid, "window_stop"] = count();
}

pid$target::aiotrace_probe_submit:entry
{
	@probe_calls[tid, "submit"] = count();
	@probe_ios[tid, "submitted"] = sum(arg1 & 0xffffffff);
}

pid$target::aiotrace_probe_reap:entry
{
	@probe_calls[tid, "reap"] = count();
	@probe_ios[tid, "reaped"] = count();
}

pid$target::aiotrace_probe_reap:entry
/(int64_t)arg1 < 0/
{
	@probe_ios[tid, "reap_errors"] = count();
}

pid$target::aiotrace_probe_sync:entry
{
	@window["sync_ns"] = max(timestamp);
	@window["sync_workload_ns"] = max(arg0);
	@probe_calls[tid, "sync"] = count();
}

/* ---- output ------------------------------------------------------------------------------- */

dtrace:::END
{
	printa("A\tsyscalls\t%d\t%s\t%@d\n", @syscalls);
	printa("A\twindow_syscalls\t%d\t%s\t%@d\n", @window_syscalls);
	printa("A\tsyscall_errors\t%d\t%s\t%@d\n", @syscall_errors);
	printa("A\tru_inblock\t%d\t%@d\n", @ru_inblock);
	printa("A\tru_oublock\t%d\t%@d\n", @ru_oublock);
	printa("A\tjobs\t%s\t%@d\n", @jobs);
	printa("A\tjobs_freed_by\t%s\t%@d\n", @jobs_freed_by);
	printa("A\tjob_blocks\t%s\t%@d\n", @job_blocks);
	printa("A\tprobe_calls\t%d\t%s\t%@d\n", @probe_calls);
	printa("A\tprobe_ios\t%d\t%s\t%@d\n", @probe_ios);
	printa("A\twindow\t%s\t%@d\n", @window);
	printa("H\tsyscall_ns\t%s\n%@d\n", @syscall_ns);
	printa("H\tjob_ns\t%s\n%@d\n", @job_ns);
}

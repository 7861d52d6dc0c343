/*
 * aiotrace-ru-d33271.d  Add-on to aiotrace-events.d for kernels carrying D33271 (the rusage fix in
 *                       Thomas Munro's D33144 tree, macdice/freebsd @33a474677016a6ddf2dd92acef5449be0aa1e3c2).
 *
 * FREEBSD VERSIONS: only kernels built from that tree (struct kaiocb has `struct thread *td`,
 *   the submitting thread). On a stock kernel this file does not compile ("td is not a member
 *   of struct kaiocb"): that refusal is the test for the patch. NOT RUN ON FREEBSD HERE.
 *
 * USAGE:   dtrace -q ... -p PID -s aiotrace-events.d -s aiotrace-ru-d33271.d
 *          (tracer.dscripts.dtrace_argv("events", pid=PID, d33271=True)). No macro arguments.
 *
 * TRACES:  fbt::aio_complete:entry. D33271 adds job->inblock/outblock to job->td->td_ru right
 *          there (RU_ATOMIC_ADD), instead of in kern_aio_return/kern_aio_waitcomplete.
 *
 * OUTPUT:  ru_charge event lines (tracer/base/schema.py): name aio_complete, pid = job->userproc->p_pid,
 *          tid = job->td->td_tid (the thread charged, not the aiod running the probe),
 *          id = ujob, a0 = inblock added, a1 = oublock added. Then the aio_return/aio_waitcomplete
 *          ru_charge lines of aiotrace-events.d should show zero deltas.
 *
 * COST:    one line per completed job.
 *
 * TRAPS:   job->td stays valid until the job is freed (D33271 makes thread exit wait for its jobs).
 *
 * EXAMPLE: dtrace -q -x bufsize=32m -x switchrate=20hz -x dynvarsize=16m -x strsize=32 -p 4242 \
 *              -s dscripts/freebsd/aiotrace-events.d -s dscripts/freebsd/aiotrace-ru-d33271.d
 */

fbt::aio_complete:entry
/args[0]->userproc->p_pid == $target/
{
	printf("E\t%u\t%d\t%d\tru_charge\taio_complete\t%d\t%d\t%d\t0\t0\t0\n",
	    timestamp, args[0]->userproc->p_pid, args[0]->td->td_tid, (int64_t)args[0]->ujob,
	    (int64_t)args[0]->inblock, (int64_t)args[0]->outblock);
}

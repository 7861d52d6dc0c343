/*
 * The FreeBSD kernel-semantics model's record and control API (fbsd_model.c), mirrored in
 * build_engine.py's MODEL_CDEF for cffi. One record per system call entry/exit, kernel job
 * transition, rusage charge, workload probe, and decoded structure (aiocb, timespec, kevent,
 * rusage, list member) that a tracer could see; tracer/simulate.py turns them into event lines.
 */
#ifndef FBSDM_MODEL_H
#define FBSDM_MODEL_H
#include <stddef.h>
#include <stdint.h>

struct fbsdm_rec {
    uint64_t ts_ns; /* CLOCK_MONOTONIC */
    int64_t tid;    /* the thread the event is about (ru_charge: the thread charged) */
    int32_t kind;   /* FBSDM_SYS_ENTER ... */
    int32_t name;   /* FBSDM_N_* */
    int64_t id;     /* user aiocb address (ujob) when there is one */
    int64_t a[8];   /* per kind, see tracer/simulate.py */
    int64_t ret;
    int32_t err;    /* FreeBSD errno */
    int32_t aiod;   /* 1: runs in an aio daemon (kernel process), not the workload's thread */
};

enum {
    FBSDM_SYS_ENTER, FBSDM_SYS_EXIT, FBSDM_JOB_QUEUE, FBSDM_JOB_START, FBSDM_JOB_DONE, FBSDM_JOB_NOTIFY,
    FBSDM_JOB_FREE, FBSDM_RU_CHARGE, FBSDM_PROBE, FBSDM_AIOCB, FBSDM_TIMESPEC, FBSDM_KEVENT, FBSDM_RUSAGE,
    FBSDM_LIST_MEMBER
};

enum {
    FBSDM_N_AIO_READ, FBSDM_N_AIO_WRITE, FBSDM_N_LIO_LISTIO, FBSDM_N_AIO_ERROR, FBSDM_N_AIO_RETURN,
    FBSDM_N_AIO_SUSPEND, FBSDM_N_AIO_FSYNC, FBSDM_N_AIO_WAITCOMPLETE, FBSDM_N_AIO_CANCEL, FBSDM_N_KQUEUE,
    FBSDM_N_KEVENT, FBSDM_N_GETRUSAGE, FBSDM_N_AIO_AQUEUE, FBSDM_N_AIO_PROCESS_RW, FBSDM_N_AIO_PROCESS_SYNC,
    FBSDM_N_AIO_COMPLETE, FBSDM_N_AIO_BIO_DONE_NOTIFY, FBSDM_N_FILT_AIO, FBSDM_N_AIO_FREE_ENTRY,
    FBSDM_N_PROBE_WINDOW_START, FBSDM_N_PROBE_WINDOW_STOP, FBSDM_N_PROBE_SUBMIT, FBSDM_N_PROBE_REAP,
    FBSDM_N_PROBE_SYNC
};

/* "stock" or "d33144"; queue_per_proc 0 = 256 (vfs.aio.max_aio_queue_per_proc). -1 if unknown. */
int fbsdm_configure(const char *kernel, int queue_per_proc);
/* Start (1: clears the record) or stop (0) recording. */
void fbsdm_record(int on);
/* The records so far (valid until the next fbsdm_record(1)). */
size_t fbsdm_records(const struct fbsdm_rec **out);
/* Jobs not yet freed (kaio_count). */
int fbsdm_jobs_alive(void);
int64_t fbsdm_pid(void);
#endif

/*
 * fbsd_model.c  FreeBSD's AIO + kqueue semantics, in user space on Linux, for running the FreeBSD
 *               completion modes (workloads/mode_posix.c, workloads/mode_freebsd_*.c) in CI.
 *
 * NOT A KERNEL AND NOT A MEASUREMENT. It implements the rules of sys/kern/vfs_aio.c and
 * sys/kern/kern_event.c that the modes depend on, for two kernels:
 *   stock   upstream FreeBSD (freebsd/freebsd-src; fel1x-developer/freebsd-src @2d614aa2)
 *   d33144  Thomas Munro's REAP tree with the D33271 rusage change (macdice/freebsd @33a47467)
 * Each rule below names the kernel function it follows ("RULE <function>"). Worker threads play the
 * aiod daemons and do the real pread/pwrite/fsync on the real file. Every system call, kernel job
 * transition and rusage charge is recorded (fbsdm_record_*) in the shape of the event lines of
 * dscripts/freebsd/aiotrace-events.d, with FreeBSD errno numbers; tracer/simulate.py writes them out.
 *
 * Simplifications (not rules): one lock stands for AIO_LOCK, aio_job_mtx and the kqueue locks; block
 * I/O accounting counts one operation per job (vfs_bio.c breadn_flags/bufwrite count one per buffer
 * that really goes to the device, which depends on the buffer cache); SIGEV_SIGNAL/SIGEV_THREAD_ID,
 * aio_cancel of queued jobs, lio_listio's own sigevent and kevent changelists are not modelled
 * (refused with EOPNOTSUPP, never silently ignored); aio_fsync does not wait for earlier writes
 * (the engine submits it after every write completed).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "aio.h"
#include "sys/event.h"
#include "sys/resource.h"
#include "fbsd_model.h"

#undef getrusage /* the real one, below, for the times */

/* ------------------------------------------------------------------------------- configuration */

static int kernel_d33144;               /* 0 stock, 1 d33144 (with D33271) */
static int max_aio_queue_per_proc = 256; /* RULE vfs_aio.c MAX_AIO_QUEUE_PER_PROC */
static int max_aio_queue = 1024;         /* RULE vfs_aio.c MAX_AIO_QUEUE */
#define TARGET_AIO_PROCS 4               /* RULE sys/aio.h TARGET_AIO_PROCS: aiods started at first use */
#define AIO_KEVENT_FLAG_REAP 0x4000      /* D33144 sys/aio.h: == EV_FLAG2 */
#define MAX_KQ 1024
#define MAX_THREADS 256

/* FreeBSD errno numbers for the record (the caller still sees the host's). */
static int bsd_errno(int e)
{
    switch (e) {
    case EAGAIN: return 35;
    case EINPROGRESS: return 36;
    case ECANCELED: return 85;
    case EOPNOTSUPP: return 45;
    case ETIMEDOUT: return 60;
    case ENOSYS: return 78;
    default: return e; /* EPERM..ERANGE (1-34) agree */
    }
}

/* ------------------------------------------------------------------------------- the record */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fbsdm_rec *log_recs;
static size_t log_n, log_cap;
static size_t log_max = 1u << 20; /* like a tracer's buffer: beyond it events are dropped and counted */
static uint64_t log_lost;
static int log_on;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t my_tid(void)
{
    static __thread int64_t tid;
    if (!tid)
        tid = (int64_t)syscall(SYS_gettid);
    return tid;
}

static void rec(int kind, int name, int64_t tid, int64_t id, const int64_t *a, int na, int64_t ret, int err, int aiod)
{
    if (!__atomic_load_n(&log_on, __ATOMIC_ACQUIRE))
        return;
    struct fbsdm_rec r;
    memset(&r, 0, sizeof r);
    r.ts_ns = now_ns();
    r.tid = tid;
    r.kind = kind;
    r.name = name;
    r.id = id;
    for (int i = 0; i < na && i < 8; i++)
        r.a[i] = a[i];
    r.ret = ret;
    r.err = err;
    r.aiod = aiod;
    pthread_mutex_lock(&log_lock);
    if (log_n >= log_max) { /* aio-poll spinning on aio_error under load can make millions of calls */
        log_lost++;
        pthread_mutex_unlock(&log_lock);
        return;
    }
    if (log_n == log_cap) {
        size_t cap = log_cap ? log_cap * 2 : 65536;
        struct fbsdm_rec *p = realloc(log_recs, cap * sizeof *p);
        if (!p) {
            log_lost++;
            pthread_mutex_unlock(&log_lock);
            return;
        }
        log_recs = p;
        log_cap = cap;
    }
    log_recs[log_n++] = r;
    pthread_mutex_unlock(&log_lock);
}

#define REC(kind, name, id, ret, err, ...)                                                                            \
    do {                                                                                                               \
        int64_t a_[] = {0, __VA_ARGS__};                                                                               \
        rec(kind, name, my_tid(), id, a_ + 1, (int)(sizeof a_ / sizeof a_[0]) - 1, ret, err, 0);                      \
    } while (0)

static void rec_aiocb(int name, const struct aiocb *cb)
{
    int64_t a[8] = {cb->aio_fildes, (int64_t)cb->aio_offset, (int64_t)(uintptr_t)cb->aio_buf,
                    (int64_t)cb->aio_nbytes, cb->aio_lio_opcode, cb->aio_sigevent.sigev_notify,
                    cb->aio_sigevent.sigev_notify_kqueue, cb->aio_sigevent.sigev_notify_kevent_flags};
    rec(FBSDM_AIOCB, name, my_tid(), (int64_t)(uintptr_t)cb, a, 8,
        (int64_t)(uintptr_t)cb->aio_sigevent.sigev_value.sival_ptr, 0, 0);
}

static void rec_timespec(int name, const struct timespec *ts)
{
    if (ts) {
        int64_t a[2] = {ts->tv_sec, ts->tv_nsec};
        rec(FBSDM_TIMESPEC, name, my_tid(), 0, a, 2, 0, 0, 0);
    }
}

/* ------------------------------------------------------------------------------- kernel state */

struct kq;
struct job;

/* A knote of EVFILT_AIO: kn_kevent as kqueue_register stored it. */
struct knote {
    struct kq *kq;
    struct job *job;     /* NULL once detached (knlist_clear / the job freed) */
    struct kevent kev;   /* ident = ujob, udata = sigev_value, flags = registered flags */
    int queued, active;
    int reap;            /* registered with AIO_KEVENT_FLAG_REAP: data holds a result, not an errno */
    struct knote *next;  /* kq's queue (FIFO) */
};

struct kq {
    int fd;
    struct knote *head, *tail;
    int count;
};

enum { JOB_QUEUED, JOB_RUNNING, JOB_FINISHED };

struct job {
    struct aiocb *ujob;
    struct aiocb uaiocb;  /* the kernel's copy (aio_copyin) */
    int opcode;
    int state;
    long status, error;
    long inblock, outblock;
    int64_t td;           /* submitting thread (D33144 job->td) */
    struct knote *kn;
    struct job *all_next, *done_next, *run_next;
};

static pthread_mutex_t K = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t K_done;  /* a job finished / a knote was queued (msleep wakeups) */
static pthread_cond_t K_work;  /* aiod: a job was scheduled */
static int started;
static struct job *all_jobs, *done_head, *done_tail, *run_head, *run_tail;
static int kaio_count, num_queue_count;
static struct kq *kqs[MAX_KQ];
static struct { int64_t tid; long inblock, oublock; } ru[MAX_THREADS];
static int n_ru;
static int64_t model_pid;

static void ru_add(int64_t tid, long inb, long oub)
{
    for (int i = 0; i < n_ru; i++)
        if (ru[i].tid == tid) {
            ru[i].inblock += inb;
            ru[i].oublock += oub;
            return;
        }
    if (n_ru < MAX_THREADS) {
        ru[n_ru].tid = tid;
        ru[n_ru].inblock = inb;
        ru[n_ru].oublock = oub;
        n_ru++;
    }
}

static void *aiod_main(void *arg);

static void timed_wait(pthread_cond_t *cv, const struct timespec *deadline)
{
    if (deadline)
        pthread_cond_timedwait(cv, &K, deadline);
    else
        pthread_cond_wait(cv, &K);
}

static int deadline_from(const struct timespec *ts, struct timespec *out)
{
    clock_gettime(CLOCK_MONOTONIC, out);
    out->tv_sec += ts->tv_sec;
    out->tv_nsec += ts->tv_nsec;
    if (out->tv_nsec >= 1000000000) {
        out->tv_sec++;
        out->tv_nsec -= 1000000000;
    }
    return 0;
}

static int passed(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec || (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* RULE vfs_aio.c aio_init_aioinfo: the first AIO call starts TARGET_AIO_PROCS aio daemons. */
static void init_aioinfo_locked(void)
{
    if (started)
        return;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&K_done, &ca);
    pthread_cond_init(&K_work, &ca);
    started = 1;
    model_pid = getpid();
    for (int i = 0; i < TARGET_AIO_PROCS; i++) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_create(&t, &at, aiod_main, NULL);
        pthread_attr_destroy(&at);
    }
}

static struct kq *kq_of(int fd)
{
    return fd >= 0 && fd < MAX_KQ ? kqs[fd] : NULL;
}

static void kq_dequeue(struct knote *kn)
{
    struct kq *kq = kn->kq;
    struct knote **pp = &kq->head, *prev = NULL;
    while (*pp && *pp != kn) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = kn->next;
        if (kq->tail == kn)
            kq->tail = prev;
        kq->count--;
    }
    kn->next = NULL;
    kn->queued = 0;
}

static void kq_enqueue(struct knote *kn)
{
    struct kq *kq = kn->kq;
    kn->next = NULL;
    if (kq->tail)
        kq->tail->next = kn;
    else
        kq->head = kn;
    kq->tail = kn;
    kq->count++;
    kn->queued = 1;
}

/* RULE vfs_aio.c filt_aio (stock: data = the job's error; D33144 with AIO_KEVENT_FLAG_REAP: data =
 * the error with EV_ERROR, else the status): true once KAIOCB_FINISHED, which also sets EV_EOF. */
static int filt_aio(struct knote *kn, long hint)
{
    struct job *job = kn->job;
    if (!job)
        return 0;
    if (kernel_d33144 && (job->uaiocb.aio_sigevent.sigev_notify_kevent_flags & AIO_KEVENT_FLAG_REAP)) {
        if (job->error > 0) {
            kn->kev.flags |= EV_ERROR;
            kn->kev.data = job->error; /* host errno for the caller; the record shows FreeBSD's */
        } else {
            kn->kev.data = job->status;
        }
    } else {
        kn->kev.data = job->error;
    }
    int64_t a[2] = {(int64_t)(uintptr_t)job, hint};
    rec(FBSDM_JOB_NOTIFY, FBSDM_N_FILT_AIO, my_tid(), (int64_t)(uintptr_t)job->ujob, a, 2, 0, 0,
        hint == 1);
    if (job->state != JOB_FINISHED)
        return 0;
    kn->kev.flags |= EV_EOF;
    return 1;
}

/* RULE kern_event.c knote/KNOTE_ACTIVATE: an event that fires queues its knote once. */
static void knote_fire(struct knote *kn)
{
    if (kn && filt_aio(kn, 1)) {
        kn->active = 1;
        if (!kn->queued)
            kq_enqueue(kn);
        pthread_cond_broadcast(&K_done);
    }
}

/* RULE kern_event.c knote_drop: a dropped knote leaves its kqueue. */
static void knote_drop(struct knote *kn)
{
    if (kn->queued)
        kq_dequeue(kn);
    if (kn->job && kn->job->kn == kn)
        kn->job->kn = NULL;
    free(kn);
}

static void unlink_job(struct job **head, struct job *job, size_t off)
{
    for (struct job **pp = head; *pp; pp = (struct job **)((char *)*pp + off))
        if (*pp == job) {
            *pp = *(struct job **)((char *)job + off);
            return;
        }
}

/* RULE vfs_aio.c aio_free_entry: the job leaves kaio_all/kaio_done, stops counting against
 * max_aio_queue_per_proc, and knlist_delete drops its knotes. */
static void free_entry_locked(struct job *job)
{
    int64_t a[3] = {(int64_t)(uintptr_t)job, job->inblock, job->outblock};
    rec(FBSDM_JOB_FREE, FBSDM_N_AIO_FREE_ENTRY, my_tid(), (int64_t)(uintptr_t)job->ujob, a, 3, 0, 0, 0);
    unlink_job(&all_jobs, job, offsetof(struct job, all_next));
    struct job *prev = NULL;
    for (struct job *j = done_head; j; prev = j, j = j->done_next)
        if (j == job) {
            if (prev)
                prev->done_next = j->done_next;
            else
                done_head = j->done_next;
            if (done_tail == j)
                done_tail = prev;
            break;
        }
    kaio_count--;
    num_queue_count--;
    if (job->kn)
        knote_drop(job->kn);
    free(job);
    pthread_cond_broadcast(&K_done); /* lio_listio(LIO_WAIT), waiters on the queue limit */
}

/* RULE vfs_aio.c aio_bio_done_notify: onto kaio_done, KNOTE(job->klist, 1); D33144 with REAP:
 * knlist_clear then aio_free_entry at once (the knote stays queued and carries the result). */
static void bio_done_notify_locked(struct job *job)
{
    job->done_next = NULL;
    if (done_tail)
        done_tail->done_next = job;
    else
        done_head = job;
    done_tail = job;
    int64_t a[1] = {(int64_t)(uintptr_t)job};
    rec(FBSDM_JOB_NOTIFY, FBSDM_N_AIO_BIO_DONE_NOTIFY, my_tid(), (int64_t)(uintptr_t)job->ujob, a, 1, 0, 0, 1);
    knote_fire(job->kn);
    if (kernel_d33144 && job->uaiocb.aio_sigevent.sigev_notify == SIGEV_KEVENT &&
        (job->uaiocb.aio_sigevent.sigev_notify_kevent_flags & AIO_KEVENT_FLAG_REAP)) {
        if (job->kn) {
            job->kn->job = NULL; /* knlist_clear: detached, still queued on the kqueue */
            job->kn = NULL;
        }
        free_entry_locked(job);
    }
    pthread_cond_broadcast(&K_done);
}

/* RULE vfs_aio.c aio_complete: status/error into the job; D33144 also writes them to the user aiocb
 * (store_status/store_error) and, D33271, adds the job's block counts to the submitting thread. */
static void complete(struct job *job, long status, int error)
{
    int64_t a[3] = {(int64_t)(uintptr_t)job, job->inblock, job->outblock};
    rec(FBSDM_JOB_DONE, FBSDM_N_AIO_COMPLETE, my_tid(), (int64_t)(uintptr_t)job->ujob, a, 3, status,
        bsd_errno(error), 1);
    pthread_mutex_lock(&K);
    job->status = status;
    job->error = error;
    if (kernel_d33144) {
        job->ujob->_aiocb_private.status = status;
        job->ujob->_aiocb_private.error = error;
        ru_add(job->td, job->inblock, job->outblock);
        int64_t r[3] = {job->inblock, job->outblock, 0};
        rec(FBSDM_RU_CHARGE, FBSDM_N_AIO_COMPLETE, job->td, (int64_t)(uintptr_t)job->ujob, r, 2, 0, 0, 0);
    }
    job->state = JOB_FINISHED;
    bio_done_notify_locked(job);
    pthread_mutex_unlock(&K);
}

/* RULE vfs_aio.c aio_daemon/aio_selectjob + aio_process_rw/aio_process_sync: an aiod takes the oldest
 * job and does the I/O with fo_read/fo_write (here pread/pwrite on the same descriptor); the block
 * I/O it did is the job's inblock/outblock (one operation per job, see the file comment). */
static void *aiod_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&K);
    for (;;) {
        while (!run_head)
            pthread_cond_wait(&K_work, &K);
        struct job *job = run_head;
        run_head = job->run_next;
        if (!run_head)
            run_tail = NULL;
        job->state = JOB_RUNNING;
        pthread_mutex_unlock(&K);
        struct aiocb *cb = &job->uaiocb;
        int sync = (job->opcode & LIO_SYNC) != 0;
        int64_t a[3] = {(int64_t)(uintptr_t)job, (int64_t)cb->aio_nbytes, 0};
        rec(FBSDM_JOB_START, sync ? FBSDM_N_AIO_PROCESS_SYNC : FBSDM_N_AIO_PROCESS_RW, my_tid(),
            (int64_t)(uintptr_t)job->ujob, a, 2, 0, 0, 1);
        ssize_t r;
        int err = 0;
        if (sync) {
            r = (job->opcode == LIO_DSYNC ? fdatasync(cb->aio_fildes) : fsync(cb->aio_fildes)) == 0 ? 0 : -1;
        } else if (job->opcode & LIO_WRITE) {
            r = pwrite(cb->aio_fildes, (const void *)cb->aio_buf, cb->aio_nbytes, cb->aio_offset);
            job->outblock = r > 0 ? 1 : 0;
        } else {
            r = pread(cb->aio_fildes, (void *)cb->aio_buf, cb->aio_nbytes, cb->aio_offset);
            job->inblock = r > 0 ? 1 : 0;
        }
        if (r < 0)
            err = errno;
        complete(job, err ? -1 : (long)r, err);
        pthread_mutex_lock(&K);
    }
    return NULL;
}

/* RULE vfs_aio.c aio_aqueue (per-process queue limit, sigevent and kevent flag checks, kqfd_register
 * of an EVFILT_AIO knote with ident = ujob, udata = sigev_value, EV_FLAG1 | flags; user aiocb
 * status -1 / error EINPROGRESS); RULE vfs_aio.c filt_aioattach (D33144: REAP -> EV_ONESHOT). */
static int aqueue(struct aiocb *ujob, int type, int name)
{
    int error = 0;
    struct kq *kq = NULL;
    pthread_mutex_lock(&K);
    init_aioinfo_locked();
    ujob->_aiocb_private.status = -1;
    ujob->_aiocb_private.error = 0;
    if (num_queue_count >= max_aio_queue || kaio_count >= max_aio_queue_per_proc) {
        error = EAGAIN;
        goto fail;
    }
    struct aiocb cb = *ujob;
    int notify = cb.aio_sigevent.sigev_notify;
    if (notify != SIGEV_KEVENT && notify != SIGEV_SIGNAL && notify != SIGEV_THREAD_ID && notify != SIGEV_NONE) {
        error = EINVAL;
        goto fail;
    }
    if (notify == SIGEV_SIGNAL || notify == SIGEV_THREAD_ID) {
        error = EOPNOTSUPP; /* not modelled */
        goto fail;
    }
    int opcode = type;
    if (type == LIO_NOP) {
        opcode = cb.aio_lio_opcode;
        if (opcode != LIO_WRITE && opcode != LIO_READ && opcode != LIO_NOP) {
            error = EINVAL;
            goto fail;
        }
    }
    int fl = fcntl(cb.aio_fildes, F_GETFL);
    if (fl < 0 || ((opcode & LIO_WRITE) && (fl & O_ACCMODE) == O_RDONLY) ||
        ((opcode & LIO_READ) && (fl & O_ACCMODE) == O_WRONLY)) {
        error = EBADF; /* fget_read / fget_write */
        goto fail;
    }
    if ((opcode == LIO_READ || opcode == LIO_WRITE) && cb.aio_offset < 0) {
        error = EINVAL;
        goto fail;
    }
    if (opcode == LIO_NOP) {
        pthread_mutex_unlock(&K);
        return 0;
    }
    unsigned short evflags = 0;
    if (notify == SIGEV_KEVENT) {
        evflags = cb.aio_sigevent.sigev_notify_kevent_flags;
        unsigned short allowed = EV_CLEAR | EV_DISPATCH | EV_ONESHOT | (kernel_d33144 ? AIO_KEVENT_FLAG_REAP : 0);
        if (evflags & ~allowed) {
            error = EINVAL; /* stock: an unknown bit, such as AIO_KEVENT_FLAG_REAP */
            goto fail;
        }
        kq = kq_of(cb.aio_sigevent.sigev_notify_kqueue);
        if (!kq) {
            error = EBADF;
            goto fail;
        }
    }
    struct job *job = calloc(1, sizeof *job);
    if (!job) {
        error = EAGAIN;
        goto fail;
    }
    job->ujob = ujob;
    job->uaiocb = cb;
    job->uaiocb.aio_lio_opcode = opcode;
    job->opcode = opcode;
    job->status = -1;
    job->error = EINPROGRESS;
    job->td = my_tid();
    if (kq) {
        struct knote *kn = calloc(1, sizeof *kn);
        if (!kn) {
            free(job);
            error = EAGAIN;
            goto fail;
        }
        kn->kq = kq;
        kn->job = job;
        kn->kev.ident = (uintptr_t)ujob;
        kn->kev.filter = EVFILT_AIO;
        kn->kev.flags = evflags; /* EV_ADD/EV_ENABLE stripped by kqueue_register, EV_FLAG1 by attach */
        if (kn->kev.flags & AIO_KEVENT_FLAG_REAP) {
            kn->reap = 1;
            kn->kev.flags &= ~AIO_KEVENT_FLAG_REAP;
            kn->kev.flags |= EV_ONESHOT;
        }
        kn->kev.udata = cb.aio_sigevent.sigev_value.sival_ptr;
        job->kn = kn;
    }
    ujob->_aiocb_private.error = EINPROGRESS;
    job->all_next = all_jobs;
    all_jobs = job;
    kaio_count++;
    num_queue_count++;
    int64_t a[2] = {(int64_t)(uintptr_t)job, type};
    rec(FBSDM_JOB_QUEUE, FBSDM_N_AIO_AQUEUE, my_tid(), (int64_t)(uintptr_t)ujob, a, 2, 0, 0, 0);
    /* RULE vfs_aio.c aio_schedule: onto aio_jobs, wake an aiod */
    job->run_next = NULL;
    if (run_tail)
        run_tail->run_next = job;
    else
        run_head = job;
    run_tail = job;
    pthread_cond_signal(&K_work);
    pthread_mutex_unlock(&K);
    (void)name;
    return 0;
fail:
    ujob->_aiocb_private.error = error;
    {
        int64_t a[2] = {0, type};
        rec(FBSDM_JOB_QUEUE, FBSDM_N_AIO_AQUEUE, my_tid(), (int64_t)(uintptr_t)ujob, a, 2, -1, bsd_errno(error), 0);
    }
    pthread_mutex_unlock(&K);
    return error;
}

/* ------------------------------------------------------------------------------- system calls */

static int sys_ret(int name, int64_t id, int error, int64_t value)
{
    REC(FBSDM_SYS_EXIT, name, id, error ? -1 : value, error ? bsd_errno(error) : 0, 0);
    if (error) {
        errno = error;
        return -1;
    }
    return 0;
}

static int submit_one(struct aiocb *cb, int type, int name)
{
    REC(FBSDM_SYS_ENTER, name, (int64_t)(uintptr_t)cb, 0, 0, (int64_t)(uintptr_t)cb);
    rec_aiocb(name, cb);
    int error = aqueue(cb, type, name);
    rec_aiocb(name, cb);
    return sys_ret(name, (int64_t)(uintptr_t)cb, error, 0);
}

/* RULE vfs_aio.c sys_aio_read/sys_aio_write -> aio_aqueue(LIO_READ/LIO_WRITE). */
int aio_read(struct aiocb *cb) { return submit_one(cb, LIO_READ, FBSDM_N_AIO_READ); }
int aio_write(struct aiocb *cb) { return submit_one(cb, LIO_WRITE, FBSDM_N_AIO_WRITE); }

/* RULE vfs_aio.c kern_aio_fsync: O_SYNC -> LIO_SYNC, O_DSYNC -> LIO_DSYNC, else EINVAL. */
int aio_fsync(int op, struct aiocb *cb)
{
    REC(FBSDM_SYS_ENTER, FBSDM_N_AIO_FSYNC, (int64_t)(uintptr_t)cb, 0, 0, op == O_SYNC ? 0x80 : op,
        (int64_t)(uintptr_t)cb);
    rec_aiocb(FBSDM_N_AIO_FSYNC, cb);
    int error = op == O_SYNC ? aqueue(cb, LIO_SYNC, FBSDM_N_AIO_FSYNC)
                : op == O_DSYNC ? aqueue(cb, LIO_DSYNC, FBSDM_N_AIO_FSYNC) : EINVAL;
    rec_aiocb(FBSDM_N_AIO_FSYNC, cb);
    return sys_ret(FBSDM_N_AIO_FSYNC, (int64_t)(uintptr_t)cb, error, 0);
}

/* RULE vfs_aio.c sys_lio_listio/kern_lio_listio: nent > max_aio_queue_per_proc is EINVAL; each
 * member goes through aio_aqueue(LIO_NOP); any failure makes the call fail with EIO, or EAGAIN when
 * all failures were EAGAIN (the accepted members stay queued); LIO_WAIT waits for all of them. */
int lio_listio(int mode, struct aiocb *const list[], int nent, struct sigevent *sig)
{
    REC(FBSDM_SYS_ENTER, FBSDM_N_LIO_LISTIO, 0, 0, 0, mode, (int64_t)(uintptr_t)list, nent, (int64_t)(uintptr_t)sig);
    int error = 0;
    if ((mode != LIO_NOWAIT && mode != LIO_WAIT) || nent < 0 || nent > max_aio_queue_per_proc)
        error = EINVAL;
    else if (sig && mode == LIO_NOWAIT && sig->sigev_notify != SIGEV_NONE)
        error = EOPNOTSUPP; /* not modelled */
    if (!error) {
        int nagain = 0, nerror = 0;
        for (int i = 0; i < nent; i++) {
            if (!list[i])
                continue;
            int64_t m[1] = {(int64_t)(uintptr_t)list[i]};
            rec(FBSDM_LIST_MEMBER, FBSDM_N_LIO_LISTIO, my_tid(), (int64_t)(uintptr_t)list[i], m, 1, i, 0, 0);
            rec_aiocb(FBSDM_N_LIO_LISTIO, list[i]);
            int e = aqueue(list[i], LIO_NOP, FBSDM_N_LIO_LISTIO);
            if (e == EAGAIN)
                nagain++;
            else if (e)
                nerror++;
        }
        if (mode == LIO_WAIT) {
            pthread_mutex_lock(&K);
            for (;;) {
                int pending = 0;
                for (struct job *j = all_jobs; j; j = j->all_next)
                    for (int i = 0; i < nent; i++)
                        if (list[i] && j->ujob == list[i] && j->state != JOB_FINISHED)
                            pending = 1;
                if (!pending)
                    break;
                pthread_cond_wait(&K_done, &K);
            }
            pthread_mutex_unlock(&K);
        }
        error = nerror ? EIO : nagain ? EAGAIN : 0;
    }
    return sys_ret(FBSDM_N_LIO_LISTIO, 0, error, 0);
}

/* RULE vfs_aio.c kern_aio_error. stock: the job's error when it is on kaio_all and finished,
 * EINPROGRESS while it runs; for an aiocb without a job, the error stored in it when its status is
 * -1 (a failed aio_aqueue), else EINVAL. D33144: always the error last stored in the user aiocb
 * (aio_complete writes it there), so after a REAP the final status is still visible. */
int aio_error(const struct aiocb *cb)
{
    REC(FBSDM_SYS_ENTER, FBSDM_N_AIO_ERROR, (int64_t)(uintptr_t)cb, 0, 0, (int64_t)(uintptr_t)cb);
    long v;
    pthread_mutex_lock(&K);
    if (kernel_d33144) {
        v = cb->_aiocb_private.error;
    } else {
        struct job *j = all_jobs;
        while (j && j->ujob != cb)
            j = j->all_next;
        if (j)
            v = j->state == JOB_FINISHED ? j->error : EINPROGRESS;
        else if (cb->_aiocb_private.status == -1)
            v = cb->_aiocb_private.error;
        else
            v = EINVAL;
    }
    pthread_mutex_unlock(&K);
    REC(FBSDM_SYS_EXIT, FBSDM_N_AIO_ERROR, (int64_t)(uintptr_t)cb, bsd_errno((int)v), 0, 0);
    if (v == EINPROGRESS)
        sched_yield(); /* a system call is a scheduling point: a poller must not starve the aiods here */
    return (int)v;
}

/* The part kern_aio_return and kern_aio_waitcomplete share, for a job on kaio_done, with K held:
 * take its status and error; on stock, charge job->inblock/outblock to the CALLING thread (D33271
 * charged the submitter at completion); free it (aio_free_entry); on stock, store error/status in
 * the user aiocb after the free (ops->store_error/store_status). */
static void reap_done_job_locked(struct job *j, int64_t tid, long *status, long *error, long *inb, long *oub)
{
    struct aiocb *ujob = j->ujob;
    *status = j->status;
    *error = j->error;
    if (!kernel_d33144) {
        *inb = j->inblock;
        *oub = j->outblock;
        ru_add(tid, *inb, *oub);
    }
    free_entry_locked(j);
    if (!kernel_d33144) {
        ujob->_aiocb_private.error = *error;
        ujob->_aiocb_private.status = *status;
    }
}

/* RULE vfs_aio.c kern_aio_return: only a job on kaio_done (else EINVAL); returns its status (or
 * fails with its error) and frees it (aio_free_entry). Stock charges job->inblock/outblock to the
 * CALLING thread's td_ru and then stores error/status in the user aiocb; D33271 charged the
 * submitter at completion, so this call charges nothing. */
ssize_t aio_return(struct aiocb *cb)
{
    REC(FBSDM_SYS_ENTER, FBSDM_N_AIO_RETURN, (int64_t)(uintptr_t)cb, 0, 0, (int64_t)(uintptr_t)cb);
    int64_t tid = my_tid();
    long status = -1, error = EINVAL, inb = 0, oub = 0;
    pthread_mutex_lock(&K);
    struct job *j = done_head;
    while (j && j->ujob != cb)
        j = j->done_next;
    if (j)
        reap_done_job_locked(j, tid, &status, &error, &inb, &oub);
    pthread_mutex_unlock(&K);
    /* what aiotrace-events.d prints: the td_ru delta across the call, in every kernel */
    REC(FBSDM_RU_CHARGE, FBSDM_N_AIO_RETURN, (int64_t)(uintptr_t)cb, 0, 0, inb, oub);
    if (sys_ret(FBSDM_N_AIO_RETURN, (int64_t)(uintptr_t)cb, (int)error, status) != 0)
        return -1;
    return status;
}

/* RULE vfs_aio.c sys_aio_suspend/kern_aio_suspend: nent > max_aio_queue_per_proc is EINVAL; returns
 * 0 as soon as one listed job is finished, or when none of them is a job any more; sleeps
 * ("aiospn") until a completion or the timeout (EAGAIN). */
int aio_suspend(const struct aiocb *const list[], int nent, const struct timespec *timeout)
{
    REC(FBSDM_SYS_ENTER, FBSDM_N_AIO_SUSPEND, 0, 0, 0, (int64_t)(uintptr_t)list, nent, (int64_t)(uintptr_t)timeout);
    rec_timespec(FBSDM_N_AIO_SUSPEND, timeout);
    for (int i = 0; i >= 0 && i < nent && i < 256; i++) {
        int64_t m[1] = {(int64_t)(uintptr_t)list[i]};
        rec(FBSDM_LIST_MEMBER, FBSDM_N_AIO_SUSPEND, my_tid(), (int64_t)(uintptr_t)list[i], m, 1, i, 0, 0);
    }
    int error = 0;
    struct timespec dl;
    if (nent < 0 || nent > max_aio_queue_per_proc)
        return sys_ret(FBSDM_N_AIO_SUSPEND, 0, EINVAL, 0);
    if (timeout && (timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000))
        return sys_ret(FBSDM_N_AIO_SUSPEND, 0, EINVAL, 0);
    if (timeout)
        deadline_from(timeout, &dl);
    pthread_mutex_lock(&K);
    if (!started)
        error = EAGAIN; /* p_aioinfo == NULL */
    while (!error && nent > 0) {
        int listed = 0, finished = 0;
        for (struct job *j = all_jobs; j && !finished; j = j->all_next)
            for (int i = 0; i < nent; i++)
                if (list[i] && j->ujob == list[i]) {
                    listed = 1;
                    if (j->state == JOB_FINISHED)
                        finished = 1;
                }
        if (finished || !listed)
            break;
        if (timeout && passed(&dl)) {
            error = EAGAIN;
            break;
        }
        timed_wait(&K_done, timeout ? &dl : NULL);
    }
    pthread_mutex_unlock(&K);
    return sys_ret(FBSDM_N_AIO_SUSPEND, 0, error, 0);
}

/* RULE vfs_aio.c kern_aio_waitcomplete: stores NULL, then waits ("aiowc") for the head of kaio_done
 * (a zero timeout polls: EWOULDBLOCK == EAGAIN), stores its aiocb address through the argument,
 * frees the job and returns its status (or fails with its error). Stock charges the caller's td_ru
 * and stores error/status in the user aiocb (the same code as kern_aio_return); the D33144 tree
 * does neither (aio_complete already stored them; D33271 charged the submitter). */
ssize_t aio_waitcomplete(struct aiocb **cbp, struct timespec *timeout)
{
    REC(FBSDM_SYS_ENTER, FBSDM_N_AIO_WAITCOMPLETE, 0, 0, 0, (int64_t)(uintptr_t)cbp, (int64_t)(uintptr_t)timeout);
    rec_timespec(FBSDM_N_AIO_WAITCOMPLETE, timeout);
    *cbp = NULL;
    if (timeout && !(timeout->tv_sec == 0 && timeout->tv_nsec == 0) &&
        (timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000))
        return sys_ret(FBSDM_N_AIO_WAITCOMPLETE, 0, EINVAL, 0);
    int64_t tid = my_tid();
    struct timespec dl;
    int poll = timeout && timeout->tv_sec == 0 && timeout->tv_nsec == 0;
    if (timeout && !poll)
        deadline_from(timeout, &dl);
    long status = -1, error = 0, inb = 0, oub = 0;
    struct aiocb *ujob = NULL;
    pthread_mutex_lock(&K);
    init_aioinfo_locked();
    while (!done_head) {
        if (poll || (timeout && passed(&dl))) {
            error = EAGAIN;
            break;
        }
        timed_wait(&K_done, timeout ? &dl : NULL);
    }
    if (done_head) {
        ujob = done_head->ujob;
        reap_done_job_locked(done_head, tid, &status, &error, &inb, &oub);
    }
    pthread_mutex_unlock(&K);
    *cbp = ujob;
    REC(FBSDM_RU_CHARGE, FBSDM_N_AIO_WAITCOMPLETE, (int64_t)(uintptr_t)ujob, 0, 0, inb, oub);
    if (sys_ret(FBSDM_N_AIO_WAITCOMPLETE, (int64_t)(uintptr_t)ujob, (int)error, status) != 0)
        return -1;
    return status;
}

/* aio_cancel: not modelled beyond what the kernel answers for finished jobs. */
int aio_cancel(int fd, struct aiocb *cb)
{
    REC(FBSDM_SYS_ENTER, FBSDM_N_AIO_CANCEL, (int64_t)(uintptr_t)cb, 0, 0, fd, (int64_t)(uintptr_t)cb);
    int r = sys_ret(FBSDM_N_AIO_CANCEL, (int64_t)(uintptr_t)cb, EOPNOTSUPP, 0);
    return r;
}

/* RULE kern_event.c sys_kqueue/kern_kqueue: a new kqueue descriptor. The model's is an eventfd (a
 * real descriptor, so close(2) works); a stale kqueue left on a reused number is dropped first, as
 * kqueue_close drops every knote. */
int kqueue(void)
{
    REC(FBSDM_SYS_ENTER, FBSDM_N_KQUEUE, 0, 0, 0, 0);
    int fd = (int)syscall(SYS_eventfd2, 0, O_CLOEXEC);
    if (fd < 0 || fd >= MAX_KQ) {
        int e = fd < 0 ? errno : EMFILE;
        if (fd >= 0)
            close(fd);
        REC(FBSDM_SYS_EXIT, FBSDM_N_KQUEUE, 0, -1, bsd_errno(e), 0);
        errno = e;
        return -1;
    }
    pthread_mutex_lock(&K);
    init_aioinfo_locked();
    if (kqs[fd]) {
        struct kq *old = kqs[fd];
        while (old->head)
            knote_drop(old->head);
        for (struct job *j = all_jobs; j; j = j->all_next)
            if (j->kn && j->kn->kq == old)
                knote_drop(j->kn);
        free(old);
    }
    kqs[fd] = calloc(1, sizeof(struct kq));
    kqs[fd]->fd = fd;
    pthread_mutex_unlock(&K);
    REC(FBSDM_SYS_EXIT, FBSDM_N_KQUEUE, 0, fd, 0, 0);
    return fd;
}

/* RULE kern_event.c kqueue_scan: sleeps ("kqread") until a knote is queued or the timeout passes
 * (returning 0); then takes queued knotes in order, up to a marker put at the tail when the scan
 * started, so one call returns a knote at most once. EV_ONESHOT: delivered and dropped without
 * asking the filter again. Otherwise filt_aio is asked again (false: dequeued); EV_CLEAR (and
 * EV_DISPATCH) take the knote off the queue after delivery (EV_CLEAR zeroes data); a level-triggered
 * knote (none of these) is put back at the tail, so the NEXT kevent() returns it again until
 * aio_return frees the job (aio_free_entry -> knlist_delete). */
int kevent(int kqfd, const struct kevent *changes, int nchanges, struct kevent *events, int nevents,
           const struct timespec *timeout)
{
    REC(FBSDM_SYS_ENTER, FBSDM_N_KEVENT, 0, 0, 0, kqfd, (int64_t)(uintptr_t)changes, nchanges,
        (int64_t)(uintptr_t)events, nevents, (int64_t)(uintptr_t)timeout);
    rec_timespec(FBSDM_N_KEVENT, timeout);
    int n = 0;
    int error = 0;
    struct timespec dl;
    unsigned char data_is_errno[nevents > 0 ? nevents : 1];
    if (timeout)
        deadline_from(timeout, &dl);
    pthread_mutex_lock(&K);
    struct kq *kq = kq_of(kqfd);
    if (!kq)
        error = EBADF;
    else if (nchanges != 0)
        error = EOPNOTSUPP; /* not modelled: AIO knotes are registered by aio_aqueue */
    else if (nevents < 0)
        error = EINVAL;
    while (!error && nevents > 0 && kq->count == 0) {
        if (timeout && passed(&dl))
            break;
        timed_wait(&K_done, timeout ? &dl : NULL);
    }
    if (!error && nevents > 0 && kq->count > 0) {
        int to_scan = kq->count; /* the marker */
        while (to_scan-- > 0 && n < nevents && kq->head) {
            struct knote *kn = kq->head;
            kq_dequeue(kn);
            data_is_errno[n] = !kn->reap || (kn->kev.flags & EV_ERROR);
            if (kn->kev.flags & EV_ONESHOT) {
                events[n++] = kn->kev;
                knote_drop(kn);
                continue;
            }
            if (!filt_aio(kn, 0)) {
                kn->active = 0;
                continue;
            }
            events[n++] = kn->kev;
            if (kn->kev.flags & (EV_CLEAR | EV_DISPATCH)) {
                if (kn->kev.flags & EV_CLEAR)
                    kn->kev.data = 0;
                kn->active = 0;
            } else {
                kq_enqueue(kn);
            }
        }
    }
    pthread_mutex_unlock(&K);
    if (error)
        return sys_ret(FBSDM_N_KEVENT, 0, error, 0);
    for (int i = 0; i < n; i++) {
        int64_t data = events[i].data;
        if (data_is_errno[i])
            data = bsd_errno((int)data); /* an errno in data: FreeBSD's number in the record */
        int64_t a[5] = {events[i].filter, events[i].flags, events[i].fflags, data,
                        (int64_t)(uintptr_t)events[i].udata};
        rec(FBSDM_KEVENT, FBSDM_N_KEVENT, my_tid(), (int64_t)events[i].ident, a, 5, i, 0, 0);
    }
    REC(FBSDM_SYS_EXIT, FBSDM_N_KEVENT, 0, n, 0, 0);
    return n;
}

/* RULE kern_resource.c kern_getrusage (RUSAGE_THREAD = the calling thread's td_ru, RUSAGE_SELF = the
 * process): ru_inblock/ru_oublock are the model's counters (FreeBSD units: block operations); the
 * times and context switches are Linux's. aiods are kernel processes on FreeBSD: never in SELF. */
int fbsdm_getrusage(int who, struct rusage *out)
{
    REC(FBSDM_SYS_ENTER, FBSDM_N_GETRUSAGE, 0, 0, 0, who == RUSAGE_SELF ? 0 : who, (int64_t)(uintptr_t)out);
    int r = getrusage(who, out);
    if (r == 0) {
        int64_t tid = my_tid();
        long inb = 0, oub = 0;
        pthread_mutex_lock(&K);
        for (int i = 0; i < n_ru; i++)
            if (who != RUSAGE_THREAD || ru[i].tid == tid) {
                inb += ru[i].inblock;
                oub += ru[i].oublock;
            }
        pthread_mutex_unlock(&K);
        out->ru_inblock = inb;
        out->ru_oublock = oub;
        int64_t a[4] = {(int64_t)out->ru_utime.tv_sec * 1000000 + out->ru_utime.tv_usec,
                        (int64_t)out->ru_stime.tv_sec * 1000000 + out->ru_stime.tv_usec, inb, oub};
        rec(FBSDM_RUSAGE, FBSDM_N_GETRUSAGE, tid, 0, a, 4, 0, 0, 0);
    }
    REC(FBSDM_SYS_EXIT, FBSDM_N_GETRUSAGE, 0, r == 0 ? 0 : -1, r == 0 ? 0 : bsd_errno(errno), 0);
    return r;
}

/* ------------------------------------------------------------------------------- control */

void fbsdm_probe(const char *name, int64_t a, int64_t b, int64_t c)
{
    static const char *const names[] = {"window_start", "window_stop", "submit", "reap", "sync"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0) {
            int64_t v[3] = {a, b, c};
            rec(FBSDM_PROBE, FBSDM_N_PROBE_WINDOW_START + i, my_tid(), 0, v, 3, 0, 0, 0);
        }
}

int fbsdm_configure(const char *kernel, int queue_per_proc)
{
    int k;
    if (strcmp(kernel, "stock") == 0)
        k = 0;
    else if (strcmp(kernel, "d33144") == 0)
        k = 1;
    else
        return -1;
    pthread_mutex_lock(&K);
    init_aioinfo_locked();
    /* a kernel is not switched under live jobs: wait until every job of a previous run is freed */
    kernel_d33144 = k;
    max_aio_queue_per_proc = queue_per_proc > 0 ? queue_per_proc : 256;
    n_ru = 0;
    pthread_mutex_unlock(&K);
    return 0;
}

int fbsdm_jobs_alive(void)
{
    pthread_mutex_lock(&K);
    int n = kaio_count;
    pthread_mutex_unlock(&K);
    return n;
}

void fbsdm_record(int on)
{
    pthread_mutex_lock(&log_lock);
    if (on) {
        log_n = 0;
        log_lost = 0;
    }
    pthread_mutex_unlock(&log_lock);
    __atomic_store_n(&log_on, on, __ATOMIC_RELEASE);
}

void fbsdm_record_limit(size_t max_records)
{
    pthread_mutex_lock(&log_lock);
    log_max = max_records ? max_records : (1u << 20);
    pthread_mutex_unlock(&log_lock);
}

uint64_t fbsdm_records_lost(void)
{
    pthread_mutex_lock(&log_lock);
    uint64_t n = log_lost;
    pthread_mutex_unlock(&log_lock);
    return n;
}

size_t fbsdm_records(const struct fbsdm_rec **out)
{
    pthread_mutex_lock(&log_lock);
    *out = log_recs;
    size_t n = log_n;
    pthread_mutex_unlock(&log_lock);
    return n;
}

int64_t fbsdm_pid(void) { return model_pid ? model_pid : getpid(); }

/*
 * POSIX AIO completion modes (glibc on Linux, the kernel on FreeBSD):
 *
 *   aio-poll     learn of completion by calling aio_error() until it is not EINPROGRESS,
 *                then aio_return() for the result.
 *   aio-suspend  block in aio_suspend() on the outstanding aiocbs, then aio_error() +
 *                aio_return() for each one that finished.
 *
 * Submission is shared (and reused by the FreeBSD kqueue modes): aio_read()/aio_write()
 * per I/O, or one lio_listio(LIO_NOWAIT) per batch when the spec asks for it; the final
 * fsync of "write-fsync" goes through aio_fsync(O_SYNC).
 *
 * glibc implements this with helper threads doing pread/pwrite (one per fd at a time),
 * so its aio_error/aio_return are library calls; on FreeBSD each is a system call.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define AIOT_INTERNAL
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct posix_state {
    struct aiocb **list;   /* aio_suspend argument, depth entries (reaper's) */
    struct aiocb **lio;    /* lio_listio argument, depth entries (submitter's: with --threads split
                            * both run at once, so they cannot share one array) */
    struct aiot_slot **ready; /* completions found by getevents */
    int *ready_err;        /* aio_error() value seen for each */
};

int aiot_posix_setup(struct aiot_ctx *ctx)
{
    struct posix_state *ps = calloc(1, sizeof *ps);
    if (!ps)
        return aiot_fail(ctx, "%s: out of memory", ctx->spec->mode);
    ps->list = calloc(ctx->depth, sizeof *ps->list);
    ps->lio = calloc(ctx->depth, sizeof *ps->lio);
    ps->ready = calloc(ctx->depth, sizeof *ps->ready);
    ps->ready_err = calloc(ctx->depth, sizeof *ps->ready_err);
    if (!ps->list || !ps->lio || !ps->ready || !ps->ready_err) {
        free(ps->list);
        free(ps->lio);
        free(ps->ready);
        free(ps->ready_err);
        free(ps);
        return aiot_fail(ctx, "%s: out of memory", ctx->spec->mode);
    }
    ctx->mode_data = ps;
    if (ctx->spec->lio) {
        long max = sysconf(_SC_AIO_LISTIO_MAX);
        if (max > 0 && ctx->spec->batch > (unsigned long)max)
            return aiot_fail(ctx, "%s: submit batch %u exceeds this system's lio_listio limit (AIO_LISTIO_MAX %ld)",
                             ctx->spec->mode, ctx->spec->batch, max);
    }
    return 0;
}

int aiot_posix_prep(struct aiot_ctx *ctx, struct aiot_slot *slot)
{
    struct aiocb *cb = &slot->u.posix.cb;
    memset(cb, 0, sizeof *cb);
    cb->aio_fildes = ctx->fd;
    cb->aio_offset = slot->offset;
    cb->aio_buf = slot->buf;
    cb->aio_nbytes = slot->op == AIOT_OP_FSYNC ? 0 : ctx->spec->bs;
    cb->aio_lio_opcode = slot->op == AIOT_OP_READ ? LIO_READ : LIO_WRITE;
    cb->aio_sigevent.sigev_notify = SIGEV_NONE;
    atomic_store_explicit(&slot->u.posix.posted, 0, memory_order_relaxed);
    return 0;
}

/* posted counts "accepted and not yet reaped": +1 here, -1 by the reaper. With --threads split a
 * waitcomplete or kevent reaper can receive the completion before the submitter gets here; a flag
 * cleared first and set after would leave a freed job marked in flight (cleanup then polled
 * aio_error on it forever: found by the FreeBSD model). */
static void post(struct aiot_slot *slot)
{
    atomic_fetch_add_explicit(&slot->u.posix.posted, 1, memory_order_release);
}

/* Wait until the accepted members of a failed lio_listio finished, so no request of it
 * stays in the kernel's hands; they are reaped and forgotten (the run has failed). */
static void settle_failed_list(struct aiot_ctx *ctx, struct aiot_slot **slots, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct aiocb *cb = &slots[i]->u.posix.cb;
        const struct aiocb *one[1] = {cb};
        while (aio_error(cb) == EINPROGRESS) {
            struct timespec ts = {0, 10000000};
            aio_suspend(one, 1, &ts);
        }
        aio_return(cb);
    }
    (void)ctx;
}

int aiot_posix_submit(struct aiot_ctx *ctx, struct aiot_slot **slots, unsigned n)
{
    const struct aiot_spec *s = ctx->spec;
    struct posix_state *ps = ctx->mode_data;
    if (slots[0]->op == AIOT_OP_FSYNC) {
        ctx->submit_calls++;
        if (aio_fsync(O_SYNC, &slots[0]->u.posix.cb) != 0)
            return -errno;
        post(slots[0]);
        return 1;
    }
    if (s->lio) {
        for (unsigned i = 0; i < n; i++)
            ps->lio[i] = &slots[i]->u.posix.cb;
        ctx->submit_calls++;
        if (lio_listio(LIO_NOWAIT, ps->lio, (int)n, NULL) != 0) {
            int e = errno;
            settle_failed_list(ctx, slots, n);
            if (e == EAGAIN)
                aiot_fail(ctx, "%s: lio_listio of %u requests refused with EAGAIN: the AIO queue limit is reached",
                          s->mode, n);
            return -e;
        }
        for (unsigned i = 0; i < n; i++)
            post(slots[i]);
        return (int)n;
    }
    for (unsigned i = 0; i < n; i++) {
        struct aiocb *cb = &slots[i]->u.posix.cb;
        ctx->submit_calls++;
        int r = slots[i]->op == AIOT_OP_READ ? aio_read(cb) : aio_write(cb);
        if (r != 0) {
            int e = errno;
            if (i > 0)
                return (int)i;
            if (e == EAGAIN)
                aiot_fail(ctx, "%s: aio_%s refused with EAGAIN: the AIO queue limit is reached (depth %u)", s->mode,
                          slots[i]->op == AIOT_OP_READ ? "read" : "write", s->depth);
            return -e;
        }
        post(slots[i]);
    }
    return (int)n;
}

/* One pass over the posted aiocbs: collect those no longer EINPROGRESS. */
static unsigned scan(struct aiot_ctx *ctx, unsigned have, unsigned max, uint64_t *calls)
{
    struct posix_state *ps = ctx->mode_data;
    for (uint32_t i = 0; i < ctx->depth && have < max; i++) {
        struct aiot_slot *slot = &ctx->slots[i];
        if (atomic_load_explicit(&slot->u.posix.posted, memory_order_acquire) <= 0)
            continue;
        int err = aio_error(&slot->u.posix.cb);
        (*calls)++;
        if (err == EINPROGRESS)
            continue;
        atomic_fetch_sub_explicit(&slot->u.posix.posted, 1, memory_order_relaxed);
        ps->ready[have] = slot;
        ps->ready_err[have] = err;
        have++;
    }
    return have;
}

/* aio-poll: spin on aio_error() (that is the wait) until min requests are done. */
static int poll_getevents(struct aiot_ctx *ctx, unsigned min, unsigned max, uint64_t timeout_ns)
{
    uint64_t deadline = aiot_now_ns() + timeout_ns;
    unsigned have = 0;
    for (;;) {
        have = scan(ctx, have, max, &ctx->wait_calls);
        if (have >= min || aiot_now_ns() > deadline)
            return (int)have;
    }
}

/* aio-suspend: aio_suspend() on the outstanding list, then aio_error() on each. */
static int suspend_getevents(struct aiot_ctx *ctx, unsigned min, unsigned max, uint64_t timeout_ns)
{
    struct posix_state *ps = ctx->mode_data;
    uint64_t deadline = aiot_now_ns() + timeout_ns;
    unsigned have = scan(ctx, 0, max, &ctx->status_calls);
    while (have < min) {
        unsigned n = 0;
        for (uint32_t i = 0; i < ctx->depth; i++)
            if (atomic_load_explicit(&ctx->slots[i].u.posix.posted, memory_order_acquire) > 0)
                ps->list[n++] = &ctx->slots[i].u.posix.cb;
        uint64_t now = aiot_now_ns();
        if (now >= deadline)
            break;
        if (n > 0) {
            uint64_t left = deadline - now;
            struct timespec ts = {(time_t)(left / 1000000000ull), (long)(left % 1000000000ull)};
            ctx->wait_calls++;
            if (aio_suspend((const struct aiocb *const *)ps->list, (int)n, &ts) != 0 && errno != EAGAIN &&
                errno != EINTR)
                return -errno;
        }
        have = scan(ctx, have, max, &ctx->status_calls);
    }
    return (int)have;
}

/* The result: aio_return() per I/O (which, on FreeBSD, frees the kernel's job). */
static struct aiot_slot *posix_event(struct aiot_ctx *ctx, unsigned i, int64_t *result)
{
    struct posix_state *ps = ctx->mode_data;
    struct aiot_slot *slot = ps->ready[i];
    ctx->result_calls++;
    ssize_t r = aio_return(&slot->u.posix.cb);
    *result = r < 0 ? -(int64_t)(ps->ready_err[i] ? ps->ready_err[i] : errno) : (int64_t)r;
    return slot;
}

void aiot_posix_cleanup(struct aiot_ctx *ctx)
{
    struct posix_state *ps = ctx->mode_data;
    if (!ps)
        return;
    /* After a failure some requests may still run: let them finish before buffers go. */
    for (uint32_t i = 0; i < ctx->depth; i++) {
        struct aiot_slot *slot = &ctx->slots[i];
        if (atomic_load(&slot->u.posix.posted) > 0)
            settle_failed_list(ctx, &slot, 1);
    }
    free(ps->list);
    free(ps->lio);
    free(ps->ready);
    free(ps->ready_err);
    free(ps);
    ctx->mode_data = NULL;
}

const struct aiot_mode_ops aiot_mode_aio_poll = {
    .name = "aio-poll",
    .setup = aiot_posix_setup,
    .prep = aiot_posix_prep,
    .submit = aiot_posix_submit,
    .getevents = poll_getevents,
    .event = posix_event,
    .release = NULL,
    .cleanup = aiot_posix_cleanup,
    .available = NULL,
};

const struct aiot_mode_ops aiot_mode_aio_suspend = {
    .name = "aio-suspend",
    .setup = aiot_posix_setup,
    .prep = aiot_posix_prep,
    .submit = aiot_posix_submit,
    .getevents = suspend_getevents,
    .event = posix_event,
    .release = NULL,
    .cleanup = aiot_posix_cleanup,
    .available = NULL,
};

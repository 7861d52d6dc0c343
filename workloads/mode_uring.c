/*
 * io_uring completion modes (liburing):
 *
 *   io_uring         submit: io_uring_submit() of a batch of SQEs (one io_uring_enter)
 *                    wait:   io_uring_wait_cqes(wait_nr = reap batch), only when fewer CQEs
 *                            than that are already in the CQ ring
 *                    result: in each CQE (res), fetched with io_uring_peek_batch_cqe;
 *                            the batch is given back with io_uring_cq_advance
 *   io_uring-sqpoll  the same with IORING_SETUP_SQPOLL: a kernel thread (iou-sqp-<pid>)
 *                    consumes the SQ, so submission enters the kernel only to wake it.
 *
 * The wait carries a timeout (IORING_ENTER_EXT_ARG on this kernel: still one
 * io_uring_enter) so a lost completion is reported instead of hanging.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define AIOT_INTERNAL
#include "engine.h"

#if defined(__linux__)
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct uring_state {
    struct io_uring ring;
    int ring_ok;
    struct io_uring_cqe **cqes;
    unsigned got;
};

/* Why io_uring_queue_init failed, in words. */
static void explain(int err, int sqpoll, char *buf, size_t len)
{
    long disabled = aiot_read_proc_long("/proc/sys/kernel/io_uring_disabled");
    if ((err == EPERM || err == EACCES) && disabled > 0)
        snprintf(buf, len, "io_uring is disabled by sysctl kernel.io_uring_disabled=%ld", disabled);
    else if (err == ENOSYS)
        snprintf(buf, len, "this kernel has no io_uring (CONFIG_IO_URING off)");
    else if (sqpoll && (err == EPERM || err == EINVAL))
        snprintf(buf, len, "IORING_SETUP_SQPOLL refused (%s): needs a newer kernel or CAP_SYS_NICE", strerror(err));
    else
        snprintf(buf, len, "io_uring_queue_init failed: %s", strerror(err));
}

static int uring_init(struct io_uring *ring, unsigned entries, int sqpoll)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    if (sqpoll) {
        p.flags = IORING_SETUP_SQPOLL;
        p.sq_thread_idle = 2000; /* ms before the SQ thread sleeps and needs a wakeup enter */
    }
    return io_uring_queue_init_params(entries, ring, &p);
}

static int setup_common(struct aiot_ctx *ctx, int sqpoll)
{
    struct uring_state *st = calloc(1, sizeof *st);
    if (!st)
        return aiot_fail(ctx, "%s: out of memory", ctx->spec->mode);
    ctx->mode_data = st;
    st->cqes = calloc(ctx->depth, sizeof *st->cqes);
    if (!st->cqes)
        return aiot_fail(ctx, "%s: out of memory", ctx->spec->mode);
    if (ctx->depth > 32768) /* IORING_MAX_ENTRIES */
        return aiot_fail(ctx, "%s: depth %u exceeds io_uring's limit of 32768 SQ entries", ctx->spec->mode,
                         ctx->depth);
    int r = uring_init(&st->ring, ctx->depth, sqpoll);
    if (r < 0) {
        char why[200];
        explain(-r, sqpoll, why, sizeof why);
        return aiot_fail(ctx, "%s: %s", ctx->spec->mode, why);
    }
    st->ring_ok = 1;
    return 0;
}

static int uring_setup(struct aiot_ctx *ctx) { return setup_common(ctx, 0); }
static int sqpoll_setup(struct aiot_ctx *ctx) { return setup_common(ctx, 1); }

static int uring_prep(struct aiot_ctx *ctx, struct aiot_slot *slot)
{
    struct uring_state *st = ctx->mode_data;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
    if (!sqe) { /* SQPOLL: the kernel thread has not consumed the ring yet */
        io_uring_sqring_wait(&st->ring);
        sqe = io_uring_get_sqe(&st->ring);
        if (!sqe)
            return -EBUSY;
    }
    if (slot->op == AIOT_OP_FSYNC)
        io_uring_prep_fsync(sqe, ctx->fd, 0);
    else if (slot->op == AIOT_OP_READ)
        io_uring_prep_read(sqe, ctx->fd, slot->buf, ctx->spec->bs, (__u64)slot->offset);
    else
        io_uring_prep_write(sqe, ctx->fd, slot->buf, ctx->spec->bs, (__u64)slot->offset);
    io_uring_sqe_set_data(sqe, slot);
    return 0;
}

static int uring_submit(struct aiot_ctx *ctx, struct aiot_slot **slots, unsigned n)
{
    struct uring_state *st = ctx->mode_data;
    (void)slots;
    ctx->submit_calls++;
    int r = io_uring_submit(&st->ring);
    if (r == -EAGAIN || r == -EBUSY)
        aiot_fail(ctx, "%s: io_uring_submit refused with %s: queue limit reached (depth %u)", ctx->spec->mode,
                  r == -EAGAIN ? "EAGAIN" : "EBUSY", ctx->depth);
    if (r > (int)n)
        r = (int)n;
    return r;
}

static int uring_getevents(struct aiot_ctx *ctx, unsigned min, unsigned max, uint64_t timeout_ns)
{
    struct uring_state *st = ctx->mode_data;
    st->got = io_uring_peek_batch_cqe(&st->ring, st->cqes, max);
    if (st->got >= min)
        return (int)st->got;
    struct __kernel_timespec ts = {(long long)(timeout_ns / 1000000000ull), (long long)(timeout_ns % 1000000000ull)};
    struct io_uring_cqe *cqe;
    ctx->wait_calls++;
    int r = io_uring_wait_cqes(&st->ring, &cqe, min, &ts, NULL);
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN)
        return r;
    st->got = io_uring_peek_batch_cqe(&st->ring, st->cqes, max);
    return (int)st->got;
}

static struct aiot_slot *uring_event(struct aiot_ctx *ctx, unsigned i, int64_t *result)
{
    struct uring_state *st = ctx->mode_data;
    *result = st->cqes[i]->res;
    return io_uring_cqe_get_data(st->cqes[i]);
}

static void uring_release(struct aiot_ctx *ctx, unsigned n)
{
    struct uring_state *st = ctx->mode_data;
    io_uring_cq_advance(&st->ring, n);
}

static void uring_cleanup(struct aiot_ctx *ctx)
{
    struct uring_state *st = ctx->mode_data;
    if (!st)
        return;
    if (st->ring_ok)
        io_uring_queue_exit(&st->ring); /* cancels and waits for anything still in flight */
    free(st->cqes);
    free(st);
    ctx->mode_data = NULL;
}

static int available_common(int sqpoll, char *reason, size_t len)
{
    struct io_uring ring;
    int r = uring_init(&ring, 2, sqpoll);
    if (r < 0) {
        explain(-r, sqpoll, reason, len);
        return -1;
    }
    io_uring_queue_exit(&ring);
    return 0;
}

static int uring_available(char *reason, size_t len) { return available_common(0, reason, len); }
static int sqpoll_available(char *reason, size_t len) { return available_common(1, reason, len); }

const struct aiot_mode_ops aiot_mode_io_uring = {
    .name = "io_uring",
    .setup = uring_setup,
    .prep = uring_prep,
    .submit = uring_submit,
    .getevents = uring_getevents,
    .event = uring_event,
    .release = uring_release,
    .cleanup = uring_cleanup,
    .available = uring_available,
};

const struct aiot_mode_ops aiot_mode_io_uring_sqpoll = {
    .name = "io_uring-sqpoll",
    .setup = sqpoll_setup,
    .prep = uring_prep,
    .submit = uring_submit,
    .getevents = uring_getevents,
    .event = uring_event,
    .release = uring_release,
    .cleanup = uring_cleanup,
    .available = sqpoll_available,
};
#endif

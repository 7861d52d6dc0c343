/*
 * libaio completion mode (Linux native AIO):
 *
 *   submit     io_submit() of a batch of iocbs
 *   wait       io_getevents(min_nr = reap batch, nr = depth)
 *   result     in each io_event (res), no further call
 *   kernel job released at completion
 *
 * Page-cache I/O is not asynchronous here: io_submit() does the copy itself (see
 * linux-notes 2), which is exactly what the measurements should show.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define AIOT_INTERNAL
#include "engine.h"

#if defined(__linux__)
#include <errno.h>
#include <libaio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct libaio_state {
    io_context_t io;
    struct iocb **list;
    struct io_event *events;
};

static int libaio_setup(struct aiot_ctx *ctx)
{
    struct libaio_state *st = calloc(1, sizeof *st);
    if (!st)
        return aiot_fail(ctx, "libaio: out of memory");
    st->list = calloc(ctx->depth, sizeof *st->list);
    st->events = calloc(ctx->depth, sizeof *st->events);
    ctx->mode_data = st;
    if (!st->list || !st->events)
        return aiot_fail(ctx, "libaio: out of memory");
    int r = io_setup((int)ctx->depth, &st->io);
    if (r < 0) {
        if (r == -EAGAIN)
            return aiot_fail(ctx,
                             "libaio: io_setup(depth %u) refused with EAGAIN: the kernel AIO queue limit "
                             "(fs.aio-max-nr = %ld, in use %ld) is reached",
                             ctx->depth, aiot_read_proc_long("/proc/sys/fs/aio-max-nr"),
                             aiot_read_proc_long("/proc/sys/fs/aio-nr"));
        if (r == -ENOSYS)
            return aiot_fail(ctx, "libaio: this kernel has no native AIO (CONFIG_AIO off)");
        return aiot_fail(ctx, "libaio: io_setup(depth %u) failed: %s", ctx->depth, strerror(-r));
    }
    return 0;
}

static int libaio_prep(struct aiot_ctx *ctx, struct aiot_slot *slot)
{
    struct iocb *cb = &slot->u.kiocb;
    if (slot->op == AIOT_OP_FSYNC)
        io_prep_fsync(cb, ctx->fd);
    else if (slot->op == AIOT_OP_READ)
        io_prep_pread(cb, ctx->fd, slot->buf, ctx->spec->bs, slot->offset);
    else
        io_prep_pwrite(cb, ctx->fd, slot->buf, ctx->spec->bs, slot->offset);
    cb->data = slot;
    return 0;
}

static int libaio_submit(struct aiot_ctx *ctx, struct aiot_slot **slots, unsigned n)
{
    struct libaio_state *st = ctx->mode_data;
    for (unsigned i = 0; i < n; i++)
        st->list[i] = &slots[i]->u.kiocb;
    ctx->submit_calls++;
    int r = io_submit(st->io, (long)n, st->list);
    if (r == -EAGAIN)
        aiot_fail(ctx, "libaio: io_submit refused with EAGAIN: out of kernel AIO resources (depth %u)", ctx->depth);
    return r; /* accepted count (a prefix), or -errno */
}

static int libaio_getevents(struct aiot_ctx *ctx, unsigned min, unsigned max, uint64_t timeout_ns)
{
    struct libaio_state *st = ctx->mode_data;
    struct timespec ts = {(time_t)(timeout_ns / 1000000000ull), (long)(timeout_ns % 1000000000ull)};
    ctx->wait_calls++;
    int r = io_getevents(st->io, (long)min, (long)max, st->events, &ts);
    return r == -EINTR ? 0 : r;
}

static struct aiot_slot *libaio_event(struct aiot_ctx *ctx, unsigned i, int64_t *result)
{
    struct libaio_state *st = ctx->mode_data;
    *result = (int64_t)(long)st->events[i].res;
    return st->events[i].data;
}

static void libaio_cleanup(struct aiot_ctx *ctx)
{
    struct libaio_state *st = ctx->mode_data;
    if (!st)
        return;
    if (st->io)
        io_destroy(st->io); /* waits for anything still in flight after a failure */
    free(st->list);
    free(st->events);
    free(st);
    ctx->mode_data = NULL;
}

static int libaio_available(char *reason, size_t len)
{
    io_context_t io = 0;
    int r = io_setup(1, &io);
    if (r < 0) {
        snprintf(reason, len, r == -ENOSYS ? "this kernel has no native AIO (CONFIG_AIO off)" : "io_setup failed: %s",
                 strerror(-r));
        return -1;
    }
    io_destroy(io);
    return 0;
}

const struct aiot_mode_ops aiot_mode_libaio = {
    .name = "libaio",
    .setup = libaio_setup,
    .prep = libaio_prep,
    .submit = libaio_submit,
    .getevents = libaio_getevents,
    .event = libaio_event,
    .release = NULL,
    .cleanup = libaio_cleanup,
    .available = libaio_available,
};
#endif

/*
 * waitcomplete (FreeBSD): aio_waitcomplete() blocks until any AIO request of the process
 * finished and returns its result and aiocb in one call, freeing the kernel job.
 * One call per completion: the reap batch is the number of calls per wait.
 * Submission: aio_read/aio_write or lio_listio, as for the POSIX modes.
 */
#define AIOT_INTERNAL
#include "engine.h"

#if defined(__FreeBSD__)
#include <errno.h>
#include <stddef.h>
#include <time.h>

struct wc_done {
    struct aiot_slot *slot;
    int64_t result;
};

static int wc_getevents(struct aiot_ctx *ctx, unsigned min, unsigned max, uint64_t timeout_ns)
{
    (void)max;
    unsigned have = 0;
    uint64_t deadline = aiot_now_ns() + timeout_ns;
    while (have < min) {
        uint64_t now = aiot_now_ns();
        if (now >= deadline)
            break;
        uint64_t left = deadline - now;
        struct timespec ts = {(time_t)(left / 1000000000ull), (long)(left % 1000000000ull)};
        struct aiocb *cb = NULL;
        ctx->wait_calls++;
        ssize_t r = aio_waitcomplete(&cb, &ts);
        if (cb == NULL) { /* nothing finished: timeout (EAGAIN), signal, or no request at all */
            if (r < 0 && errno != EAGAIN && errno != EINTR && errno != EINPROGRESS)
                return -errno;
            continue;
        }
        struct aiot_slot *slot =
            (struct aiot_slot *)((char *)cb - offsetof(struct aiot_slot, u.posix.cb));
        atomic_fetch_sub_explicit(&slot->u.posix.posted, 1, memory_order_relaxed); /* see post() */
        ctx->events[have].slot = slot;
        ctx->events[have].result = r < 0 ? -(int64_t)errno : (int64_t)r;
        have++;
    }
    return (int)have;
}

static struct aiot_slot *wc_event(struct aiot_ctx *ctx, unsigned i, int64_t *result)
{
    *result = ctx->events[i].result; /* aio_waitcomplete already returned it */
    return ctx->events[i].slot;
}

const struct aiot_mode_ops aiot_mode_waitcomplete = {
    .name = "waitcomplete",
    .setup = aiot_posix_setup,
    .prep = aiot_posix_prep,
    .submit = aiot_posix_submit,
    .getevents = wc_getevents,
    .event = wc_event,
    .release = NULL,
    .cleanup = aiot_posix_cleanup,
    .available = NULL,
};
#endif

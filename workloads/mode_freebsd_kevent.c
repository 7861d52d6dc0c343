/*
 * kevent and kevent-error (FreeBSD): each aiocb asks for SIGEV_KEVENT notification on one
 * kqueue; one kevent() call learns of up to depth completions. The result is not in the
 * event (data holds only the error), so each I/O still costs system calls:
 *
 *   kevent        kevent() batch, then aio_return() per I/O (frees the kernel job)
 *                 (knotes registered EV_ONESHOT, as REAP forces: each completion is delivered once)
 *   kevent-error  kevent() batch, then aio_error() + aio_return() per I/O (the pattern of
 *                 portable code)
 *
 * Compare with mode_freebsd_reap.c, where the kevent itself carries the result.
 */
#define AIOT_INTERNAL
#include "engine.h"

#if defined(__FreeBSD__)
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/event.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

struct kq_state {
    int kq;
    unsigned got;
    struct kevent *kevs;
};

int aiot_kq_setup(struct aiot_ctx *ctx)
{
    if (aiot_posix_setup(ctx) != 0)
        return -1;
    struct kq_state *ks = calloc(1, sizeof *ks);
    if (!ks)
        return aiot_fail(ctx, "%s: out of memory", ctx->spec->mode);
    ctx->mode_extra = ks;
    ks->kq = -1;
    ks->kevs = calloc(ctx->depth, sizeof *ks->kevs);
    if (!ks->kevs)
        return aiot_fail(ctx, "%s: out of memory", ctx->spec->mode);
    ks->kq = kqueue();
    if (ks->kq < 0)
        return aiot_fail(ctx, "%s: kqueue: %s", ctx->spec->mode, strerror(errno));
    return 0;
}

/* The POSIX aiocb plus: notify this kqueue, with the slot as udata. */
int aiot_kq_prep(struct aiot_ctx *ctx, struct aiot_slot *slot, unsigned short kevent_flags)
{
    struct kq_state *ks = ctx->mode_extra;
    aiot_posix_prep(ctx, slot);
    struct sigevent *sev = &slot->u.posix.cb.aio_sigevent;
    sev->sigev_notify = SIGEV_KEVENT;
    sev->sigev_notify_kqueue = ks->kq;
    sev->sigev_notify_kevent_flags = kevent_flags;
    sev->sigev_value.sival_ptr = slot;
    return 0;
}

/* EV_ONESHOT: a level-triggered AIO knote (flags 0) is queued again by kqueue_scan after every
 * delivery until aio_return frees the job (aio_free_entry -> knlist_delete), so a second kevent()
 * before the aio_return calls (reap batch > 1) would return the same completions again. */
static int kq_prep(struct aiot_ctx *ctx, struct aiot_slot *slot) { return aiot_kq_prep(ctx, slot, EV_ONESHOT); }

/* kevent() until at least min AIO events arrived (each call takes up to what is left). */
int aiot_kq_getevents(struct aiot_ctx *ctx, unsigned min, unsigned max, uint64_t timeout_ns)
{
    struct kq_state *ks = ctx->mode_extra;
    uint64_t deadline = aiot_now_ns() + timeout_ns;
    unsigned have = 0;
    while (have < min) {
        uint64_t now = aiot_now_ns();
        if (now >= deadline)
            break;
        uint64_t left = deadline - now;
        struct timespec ts = {(time_t)(left / 1000000000ull), (long)(left % 1000000000ull)};
        ctx->wait_calls++;
        int r = kevent(ks->kq, NULL, 0, ks->kevs + have, (int)(max - have), &ts);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        have += (unsigned)r;
    }
    for (unsigned i = 0; i < have; i++) {
        struct aiot_slot *slot = ks->kevs[i].udata;
        if (slot)
            atomic_fetch_sub_explicit(&slot->u.posix.posted, 1, memory_order_relaxed); /* see post() */
    }
    ks->got = have;
    return (int)have;
}

struct kevent *aiot_kq_kev(struct aiot_ctx *ctx, unsigned i)
{
    struct kq_state *ks = ctx->mode_extra;
    return &ks->kevs[i];
}

void aiot_kq_cleanup(struct aiot_ctx *ctx)
{
    struct kq_state *ks = ctx->mode_extra;
    aiot_posix_cleanup(ctx);
    if (!ks)
        return;
    if (ks->kq >= 0)
        close(ks->kq);
    free(ks->kevs);
    free(ks);
    ctx->mode_extra = NULL;
}

/* kevent: the event says which aiocb finished; aio_return() gets the result. */
static struct aiot_slot *kq_event(struct aiot_ctx *ctx, unsigned i, int64_t *result)
{
    struct kevent *kev = aiot_kq_kev(ctx, i);
    struct aiot_slot *slot = kev->udata;
    ctx->result_calls++;
    ssize_t r = aio_return(&slot->u.posix.cb);
    *result = r < 0 ? -(int64_t)errno : (int64_t)r;
    return slot;
}

/* kevent-error: aio_error() first, then aio_return(). */
static struct aiot_slot *kq_error_event(struct aiot_ctx *ctx, unsigned i, int64_t *result)
{
    struct kevent *kev = aiot_kq_kev(ctx, i);
    struct aiot_slot *slot = kev->udata;
    ctx->status_calls++;
    int err = aio_error(&slot->u.posix.cb);
    ctx->result_calls++;
    ssize_t r = aio_return(&slot->u.posix.cb);
    *result = err ? -(int64_t)err : r < 0 ? -(int64_t)errno : (int64_t)r;
    return slot;
}

const struct aiot_mode_ops aiot_mode_kevent = {
    .name = "kevent",
    .setup = aiot_kq_setup,
    .prep = kq_prep,
    .submit = aiot_posix_submit,
    .getevents = aiot_kq_getevents,
    .event = kq_event,
    .release = NULL,
    .cleanup = aiot_kq_cleanup,
    .available = NULL,
};

const struct aiot_mode_ops aiot_mode_kevent_error = {
    .name = "kevent-error",
    .setup = aiot_kq_setup,
    .prep = kq_prep,
    .submit = aiot_posix_submit,
    .getevents = aiot_kq_getevents,
    .event = kq_error_event,
    .release = NULL,
    .cleanup = aiot_kq_cleanup,
    .available = NULL,
};
#endif

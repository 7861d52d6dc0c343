/*
 * reap (FreeBSD with review D33144): SIGEV_KEVENT with AIO_KEVENT_FLAG_REAP in
 * sigev_notify_kevent_flags. The kernel frees the job when the I/O completes and puts the
 * result in the kevent: data = bytes transferred, or the errno with EV_ERROR set.
 * One kevent() call reaps a whole batch; there is no per-I/O system call.
 *
 * Header presence is not kernel support: the flag is defined here when <aio.h> lacks it,
 * and setup probes the running kernel with one read. A stock kernel refuses unknown
 * kevent flags with EINVAL at submission; the mode is then refused, never replaced.
 */
#define AIOT_INTERNAL
#include "engine.h"

#if defined(__FreeBSD__)
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/event.h>
#include <time.h>
#include <unistd.h>

#ifndef AIO_KEVENT_FLAG_REAP
#define AIO_KEVENT_FLAG_REAP 0x4000 /* == EV_FLAG2, D33144 */
#endif

static int reap_prep(struct aiot_ctx *ctx, struct aiot_slot *slot)
{
    return aiot_kq_prep(ctx, slot, AIO_KEVENT_FLAG_REAP);
}

/* One read with the flag: EINVAL at aio_read = this kernel lacks REAP. It runs before the
 * measurement window opens; a tracer attached at the handshake still sees it, so tracer/model.py
 * numbers I/Os from the first queueing inside the window. */
static int reap_probe(struct aiot_ctx *ctx)
{
    struct aiot_slot *slot = &ctx->slots[0];
    slot->op = AIOT_OP_READ;
    slot->offset = 0;
    reap_prep(ctx, slot);
    slot->u.posix.cb.aio_nbytes = ctx->spec->bs;
    if (aio_read(&slot->u.posix.cb) != 0) {
        int e = errno;
        ctx->reap_supported = 0;
        if (e == EINVAL)
            return aiot_fail(ctx,
                             "reap: this kernel refused AIO_KEVENT_FLAG_REAP (sigev_notify_kevent_flags=0x%x) with "
                             "EINVAL: it lacks review D33144; the mode is refused, not replaced",
                             (unsigned)AIO_KEVENT_FLAG_REAP);
        return aiot_fail(ctx, "reap: probe read failed: %s", strerror(e));
    }
    ctx->reap_supported = 1;
    uint64_t wait_calls = ctx->wait_calls; /* the probe's kevent() is not one of the run's waits */
    int got = aiot_kq_getevents(ctx, 1, 1, 10000000000ull);
    ctx->wait_calls = wait_calls;
    if (got != 1)
        return aiot_fail(ctx, "reap: the probe read did not complete within 10 s");
    struct kevent *kev = aiot_kq_kev(ctx, 0);
    if ((kev->flags & EV_ERROR) || kev->data != (int64_t)ctx->spec->bs)
        return aiot_fail(ctx, "reap: the probe read's kevent carried data=%lld flags=0x%x, expected %u bytes",
                         (long long)kev->data, (unsigned)kev->flags, ctx->spec->bs);
    return 0;
}

static int reap_setup(struct aiot_ctx *ctx)
{
    if (aiot_kq_setup(ctx) != 0)
        return -1;
    return reap_probe(ctx);
}

/* The result is in the event itself: no aio_return, no aio_error. */
static struct aiot_slot *reap_event(struct aiot_ctx *ctx, unsigned i, int64_t *result)
{
    struct kevent *kev = aiot_kq_kev(ctx, i);
    *result = (kev->flags & EV_ERROR) ? -(int64_t)kev->data : (int64_t)kev->data;
    return kev->udata;
}

/* For `aiotrace modes`: the same probe on a scratch file in /tmp. */
static int reap_available(char *reason, size_t len)
{
    char path[] = "/tmp/aiotrace-reap-probe.XXXXXX";
    static char block[4096];
    int fd = mkstemp(path), kq = -1, ok = -1;
    if (fd < 0) {
        snprintf(reason, len, "cannot create a probe file in /tmp: %s", strerror(errno));
        return -1;
    }
    unlink(path);
    if (pwrite(fd, block, sizeof block, 0) != (ssize_t)sizeof block || (kq = kqueue()) < 0) {
        snprintf(reason, len, "cannot set up the REAP probe: %s", strerror(errno));
        goto out;
    }
    struct aiocb cb;
    memset(&cb, 0, sizeof cb);
    cb.aio_fildes = fd;
    cb.aio_buf = block;
    cb.aio_nbytes = sizeof block;
    cb.aio_sigevent.sigev_notify = SIGEV_KEVENT;
    cb.aio_sigevent.sigev_notify_kqueue = kq;
    cb.aio_sigevent.sigev_notify_kevent_flags = AIO_KEVENT_FLAG_REAP;
    if (aio_read(&cb) != 0) {
        if (errno == EINVAL)
            snprintf(reason, len, "this kernel refuses AIO_KEVENT_FLAG_REAP (EINVAL): it lacks review D33144");
        else
            snprintf(reason, len, "REAP probe read failed: %s", strerror(errno));
        goto out;
    }
    struct kevent kev;
    struct timespec ts = {10, 0};
    if (kevent(kq, NULL, 0, &kev, 1, &ts) == 1 && !(kev.flags & EV_ERROR) && kev.data == (int64_t)sizeof block)
        ok = 0;
    else
        snprintf(reason, len, "the REAP probe's kevent did not carry the byte count");
out:
    if (kq >= 0)
        close(kq);
    close(fd);
    return ok;
}

const struct aiot_mode_ops aiot_mode_reap = {
    .name = "reap",
    .setup = reap_setup,
    .prep = reap_prep,
    .submit = aiot_posix_submit,
    .getevents = aiot_kq_getevents,
    .event = reap_event,
    .release = NULL,
    .cleanup = aiot_kq_cleanup,
    .available = reap_available,
};
#endif

/*
 * aiotrace workload engine: the one I/O loop shared by every completion mode.
 *
 * Owns: slots and buffers, free-slot accounting, offsets, the per-I/O record (in memory,
 * chunked, never printed per I/O), verification (every 8-byte word of the data file holds
 * its own offset), the submitter/reaper threads, rusage and /proc task snapshots, probe
 * points. A mode (mode_*.c) only says how to submit, wait and fetch results.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define AIOT_INTERNAL
#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <sys/ioctl.h>
#if defined(__linux__)
#include <linux/fs.h> /* BLKGETSIZE64 */
#include <sys/syscall.h>
#endif
#if defined(__FreeBSD__)
#if defined(__has_include)
#if __has_include(<sys/disk.h>) /* absent from the FreeBSD-semantics model build over glibc */
#include <sys/disk.h>           /* DIOCGMEDIASIZE */
#define AIOT_HAVE_DIOCGMEDIASIZE 1
#endif
#endif
#include <pthread_np.h>
#endif

#if defined(__linux__) && defined(__has_include)
#if __has_include(<sys/sdt.h>)
#include <sys/sdt.h>
#define AIOT_HAVE_USDT 1
#endif
#endif
#ifndef AIOT_HAVE_USDT
#define DTRACE_PROBE1(p, n, a)
#define DTRACE_PROBE3(p, n, a, b, c)
#endif

/* ------------------------------------------------------------------ probes */
/* Non-inlined, exported, with an asm barrier so the call and its arguments survive -O2.
 * uprobes and dtrace's pid provider attach to the function entry; the USDT note inside
 * serves bpftrace's usdt: probes (provider "aiotrace"). */
#define AIOT_PROBE __attribute__((noinline, used, visibility("default")))

AIOT_PROBE void aiotrace_probe_window_start(uint64_t planned_ios)
{
    __asm__ volatile("" : : "r"(planned_ios) : "memory");
    DTRACE_PROBE1(aiotrace, window_start, planned_ios);
}

AIOT_PROBE void aiotrace_probe_window_stop(uint64_t completed_ios)
{
    __asm__ volatile("" : : "r"(completed_ios) : "memory");
    DTRACE_PROBE1(aiotrace, window_stop, completed_ios);
}

AIOT_PROBE void aiotrace_probe_submit(uint64_t first_id, uint32_t count, int64_t ret)
{
    __asm__ volatile("" : : "r"(first_id), "r"(count), "r"(ret) : "memory");
    DTRACE_PROBE3(aiotrace, submit, first_id, count, ret);
}

AIOT_PROBE void aiotrace_probe_reap(uint64_t id, int64_t result, uint32_t batch)
{
    __asm__ volatile("" : : "r"(id), "r"(result), "r"(batch) : "memory");
    DTRACE_PROBE3(aiotrace, reap, id, result, batch);
}

AIOT_PROBE void aiotrace_probe_sync(uint64_t monotonic_ns)
{
    __asm__ volatile("" : : "r"(monotonic_ns) : "memory");
    DTRACE_PROBE1(aiotrace, sync, monotonic_ns);
}

/* ------------------------------------------------------------------ small helpers */

uint64_t aiot_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Name the calling thread by its role at creation, so every tracer (bpftrace comm, strace -k,
 * ps, Perfetto) shows "submitter"/"reaper" instead of the host program's name. */
static void name_thread(const char *name)
{
    pthread_setname_np(pthread_self(), name); /* glibc, and FreeBSD >= 12.2 (same two arguments) */
}

static int64_t my_tid(void)
{
#if defined(__linux__)
    /* Cached per thread: a gettid() per submit/reap batch would show up in the measured
     * window as one extra syscall per batch, inflating the amplification being measured. */
    static __thread int64_t cached_tid;
    if (!cached_tid)
        cached_tid = (int64_t)syscall(SYS_gettid);
    return cached_tid;
#elif defined(__FreeBSD__)
    return (int64_t)pthread_getthreadid_np();
#else
    return (int64_t)getpid();
#endif
}

static void put_msg(char *msg, size_t len, const char *fmt, va_list ap)
{
    if (msg && len)
        vsnprintf(msg, len, fmt, ap);
}

static int set_msg(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set_msg(char *msg, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    put_msg(msg, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* First failure wins; later ones are consequences. */
int aiot_fail(struct aiot_ctx *ctx, const char *fmt, ...)
{
    if (ctx->msg && ctx->msg[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        put_msg(ctx->msg, ctx->msglen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

long aiot_read_proc_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static const char *op_name(int op)
{
    return op == AIOT_OP_READ ? "read" : op == AIOT_OP_WRITE ? "write" : "fsync";
}

/* Every 8-byte word of the data file holds its own file offset. */
static void stamp(uint64_t *w, uint64_t offset, uint32_t bytes)
{
    for (uint32_t i = 0; i < bytes / 8; i++)
        w[i] = offset + 8ull * i;
}

/* 0 when the block holds the words of `offset`; otherwise 1. Every read is checked word by
 * word, so this is the engine's hottest user-space loop: GCC -O2 does not vectorize the plain
 * loop (measured 149 ns per 4 KiB block, ~25% of the CPU per I/O at 800k IOPS, callgrind:
 * 91% of user instructions), so it is written with 16-byte vectors (SSE2 on x86-64, NEON on
 * arm64; GCC and clang): 62 ns per block with GCC, 37 ns with clang (bench/README.md). */
typedef uint64_t aiot_u64x2 __attribute__((vector_size(16)));

static int stamp_differs(const uint64_t *w, uint64_t offset, uint32_t bytes)
{
    aiot_u64x2 e0 = {offset, offset + 8}, e1 = {offset + 16, offset + 24};
    aiot_u64x2 e2 = {offset + 32, offset + 40}, e3 = {offset + 48, offset + 56};
    const aiot_u64x2 step = {64, 64};
    aiot_u64x2 d0 = {0, 0}, d1 = {0, 0}, d2 = {0, 0}, d3 = {0, 0};
    uint32_t n = bytes / 8, i = 0;
    for (; i + 8 <= n; i += 8) {
        aiot_u64x2 a, b, c, d;
        memcpy(&a, w + i, sizeof a); /* unaligned-safe loads */
        memcpy(&b, w + i + 2, sizeof b);
        memcpy(&c, w + i + 4, sizeof c);
        memcpy(&d, w + i + 6, sizeof d);
        d0 |= a ^ e0;
        d1 |= b ^ e1;
        d2 |= c ^ e2;
        d3 |= d ^ e3;
        e0 += step;
        e1 += step;
        e2 += step;
        e3 += step;
    }
    d0 |= d1 | d2 | d3;
    uint64_t diff = d0[0] | d0[1];
    for (; i < n; i++)
        diff |= w[i] ^ (offset + 8ull * i);
    return diff != 0;
}

/* ------------------------------------------------------------------ data file */

#define FILL_CHUNK (1u << 20)

static int fill_range(int fd, uint64_t from, uint64_t to, char *msg, size_t len, const char *path)
{
    uint64_t *buf = malloc(FILL_CHUNK);
    if (!buf)
        return set_msg(msg, len, "out of memory filling %s", path);
    for (uint64_t off = from; off < to;) {
        uint32_t n = (uint32_t)((to - off) < FILL_CHUNK ? (to - off) : FILL_CHUNK);
        stamp(buf, off, n);
        ssize_t w = pwrite(fd, buf, n, (off_t)off);
        if (w != (ssize_t)n) {
            int e = w < 0 ? errno : ENOSPC;
            free(buf);
            return set_msg(msg, len, "cannot fill %s: %s", path, strerror(e));
        }
        off += n;
    }
    free(buf);
    if (fsync(fd) != 0)
        return set_msg(msg, len, "cannot fsync %s: %s", path, strerror(errno));
    return 0;
}

/* Byte alignment the filesystem needs for O_DIRECT offsets and lengths: 0 = refuses it. */
static int dio_alignment(int fd, uint32_t *align)
{
    *align = 512;
#if defined(__linux__) && defined(STATX_DIOALIGN)
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN)) {
        *align = stx.stx_dio_offset_align;
        if (stx.stx_dio_mem_align > 4096) /* our buffers are 4096-aligned */
            *align = 0;
    }
#else
    (void)fd;
#endif
    return 0;
}

/* Size in bytes of the regular file or disk device `path` (stat'ed as `st`). */
static int data_size(const char *path, const struct stat *st, uint64_t *size)
{
    if (S_ISREG(st->st_mode)) {
        *size = (uint64_t)st->st_size;
        return 0;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    int r = -1;
#if defined(__linux__)
    r = S_ISBLK(st->st_mode) ? ioctl(fd, BLKGETSIZE64, size) : (errno = ENODEV, -1);
#elif defined(AIOT_HAVE_DIOCGMEDIASIZE)
    off_t media; /* FreeBSD disks are character devices (sys/geom/geom_dev.c, DIOCGMEDIASIZE) */
    r = S_ISCHR(st->st_mode) ? ioctl(fd, DIOCGMEDIASIZE, &media) : (errno = ENODEV, -1);
    if (r == 0)
        *size = (uint64_t)media;
#else
    errno = ENODEV;
#endif
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

/* 1 when the first `size` bytes of `path` carry aiotrace's offset stamps (probed at the start
 * and the middle, with a plain descriptor: no alignment rules). */
static int has_stamps(const char *path, uint64_t size)
{
    if (size < 8 || size % 8)
        return 0;
    int pfd = open(path, O_RDONLY);
    if (pfd < 0)
        return 0;
    uint64_t probe[512];
    uint64_t offs[2] = {0, (size / 2) & ~4095ull};
    int ok = 1;
    for (int i = 0; i < 2 && ok; i++) {
        uint32_t n = size - offs[i] < sizeof probe ? (uint32_t)(size - offs[i]) : sizeof probe;
        n -= n % 8;
        ok = pread(pfd, probe, n, (off_t)offs[i]) == (ssize_t)n && !stamp_differs(probe, offs[i], n);
    }
    close(pfd);
    return ok;
}

int aiot_prepare_file(const char *path, uint64_t file_size, int direct, uint32_t bs, int writable, int verify,
                      int *fd_out, char *msg, size_t msglen)
{
    struct stat st;
    *fd_out = -1;
    if (msg && msglen)
        msg[0] = '\0';
    file_size -= file_size % 8;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT)
            return set_msg(msg, msglen, "cannot use %s: %s", path, strerror(errno));
        if (!verify)
            return set_msg(msg, msglen, "%s does not exist (--no-verify reads an existing file or device; "
                                        "without it aiotrace creates its own data file)", path);
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0)
            return set_msg(msg, msglen, "cannot create %s: %s", path, strerror(errno));
        if (fill_range(fd, 0, file_size, msg, msglen, path) != 0) {
            close(fd);
            unlink(tmp);
            return -1;
        }
        close(fd);
        if (rename(tmp, path) != 0) {
            int e = errno;
            unlink(tmp);
            return set_msg(msg, msglen, "cannot create %s: %s", path, strerror(e));
        }
    } else {
        int device = S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode);
        if (!S_ISREG(st.st_mode) && !device)
            return set_msg(msg, msglen, "%s is not a regular file or a disk device", path);
        uint64_t size;
        if (data_size(path, &st, &size) != 0)
            return set_msg(msg, msglen, "cannot size %s: %s", path, strerror(errno));
        /* Decide whether the file is aiotrace's own from what is there now: nothing is written
         * (not even the extension to file_size) to a file that is not. */
        int ours = S_ISREG(st.st_mode) && has_stamps(path, size);
        if (!ours && writable)
            return set_msg(msg, msglen, "%s is not an aiotrace data file: writes are refused to a %s aiotrace "
                                        "did not create", path, device ? "device" : "file");
        if (!ours && verify && device)
            return set_msg(msg, msglen, "%s is a device, not an aiotrace data file: read it with --no-verify", path);
        if (!ours && verify)
            return set_msg(msg, msglen, "%s is not an aiotrace data file (%s); remove it, choose another --file, "
                                        "or read it with --no-verify",
                           path, size % 8 ? "size not a multiple of 8" : "offset stamps missing");
        if (size < file_size) {
            if (!ours)
                return set_msg(msg, msglen, "%s holds %llu bytes, less than --file-size %llu", path,
                               (unsigned long long)size, (unsigned long long)file_size);
            int fd = open(path, O_WRONLY);
            if (fd < 0)
                return set_msg(msg, msglen, "cannot extend %s: %s", path, strerror(errno));
            int r = fill_range(fd, size, file_size, msg, msglen, path);
            close(fd);
            if (r != 0)
                return -1;
        }
    }
    if (verify && !has_stamps(path, file_size))
        return set_msg(msg, msglen, "%s is not an aiotrace data file (offset stamps missing); "
                                    "remove it or choose another --file", path);
    int flags = writable ? O_RDWR : O_RDONLY;
    if (direct)
        flags |= O_DIRECT;
    int fd = open(path, flags);
    if (fd < 0) {
        int e = errno;
        if (direct && e == EINVAL)
            return set_msg(msg, msglen, "the filesystem holding %s refuses O_DIRECT (open: %s)", path, strerror(e));
        return set_msg(msg, msglen, "cannot open %s: %s", path, strerror(e));
    }
    if (direct) {
        uint32_t align;
        dio_alignment(fd, &align);
        if (align == 0) {
            close(fd);
            return set_msg(msg, msglen, "the filesystem holding %s refuses O_DIRECT (no direct I/O alignment)", path);
        }
        if (bs % align) {
            close(fd);
            return set_msg(msg, msglen,
                           "block size %u is not a multiple of the logical block size %u that O_DIRECT needs on %s",
                           bs, align, path);
        }
    }
    *fd_out = fd;
    return 0;
}

/* ------------------------------------------------------------------ modes */

static const struct aiot_mode_ops *const all_modes[] = {
    &aiot_mode_aio_poll,
    &aiot_mode_aio_suspend,
#if defined(__linux__)
    &aiot_mode_libaio,
    &aiot_mode_io_uring,
    &aiot_mode_io_uring_sqpoll,
#endif
#if defined(__FreeBSD__)
    &aiot_mode_waitcomplete,
    &aiot_mode_kevent,
    &aiot_mode_kevent_error,
    &aiot_mode_reap,
#endif
    NULL,
};

const char *aiot_mode_name(int index)
{
    int n = (int)(sizeof all_modes / sizeof all_modes[0]) - 1;
    return index >= 0 && index < n ? all_modes[index]->name : NULL;
}

static const struct aiot_mode_ops *find_mode(const char *name)
{
    for (int i = 0; all_modes[i]; i++)
        if (strcmp(all_modes[i]->name, name) == 0)
            return all_modes[i];
    return NULL;
}

int aiot_mode_available(const char *mode, char *reason, size_t reasonlen)
{
    const struct aiot_mode_ops *ops = find_mode(mode);
    if (reason && reasonlen)
        reason[0] = '\0';
    if (!ops) {
        set_msg(reason, reasonlen, "mode '%s' is not built for this OS", mode);
        return 0;
    }
    if (ops->available && ops->available(reason, reasonlen) != 0)
        return 0;
    return 1;
}

/* ------------------------------------------------------------------ /proc tasks (Linux) */

struct task_snap {
    int64_t tid;
    char comm[32];
    int64_t read_bytes, write_bytes;
    int64_t utime_ticks, stime_ticks;
};

#define MAX_TASKS 256

#if defined(__linux__)
static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return (int)n;
}
#endif

/* Snapshot every task of this process: comm, /proc io bytes, utime/stime ticks. */
static int snap_tasks(struct task_snap *out, int max)
{
    int n = 0;
#if defined(__linux__)
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        struct task_snap *t = &out[n];
        char path[96], buf[1024];
        memset(t, 0, sizeof *t);
        t->tid = atoll(e->d_name);
        t->read_bytes = t->write_bytes = t->utime_ticks = t->stime_ticks = -1;
        snprintf(path, sizeof path, "/proc/self/task/%lld/comm", (long long)t->tid);
        if (read_small(path, buf, sizeof buf) > 0) {
            buf[strcspn(buf, "\n")] = '\0';
            buf[sizeof t->comm - 1] = '\0';
            memcpy(t->comm, buf, strlen(buf) + 1);
        }
        snprintf(path, sizeof path, "/proc/self/task/%lld/io", (long long)t->tid);
        if (read_small(path, buf, sizeof buf) > 0) {
            char *p = strstr(buf, "\nread_bytes:");
            if (p)
                t->read_bytes = atoll(p + 12);
            p = strstr(buf, "\nwrite_bytes:");
            if (p)
                t->write_bytes = atoll(p + 13);
        }
        snprintf(path, sizeof path, "/proc/self/task/%lld/stat", (long long)t->tid);
        if (read_small(path, buf, sizeof buf) > 0) {
            char *p = strrchr(buf, ')'); /* comm may hold spaces; fields restart after ')' */
            long long ut = -1, stt = -1;
            if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &ut, &stt) == 2) {
                t->utime_ticks = ut;
                t->stime_ticks = stt;
            }
        }
        n++;
    }
    closedir(d);
#else
    (void)out;
    (void)max;
#endif
    return n;
}

/* ------------------------------------------------------------------ the run */

struct own_thread {
    int64_t tid;
    const char *role;
    struct rusage before, after;
};

struct run {
    struct aiot_ctx ctx;
    const struct aiot_spec *spec;
    struct aiot_result *res;
    uint64_t planned;           /* ids to submit (count mode), or UINT64_MAX (duration) */
    uint64_t writes_or_reads;   /* data I/Os in count mode */
    uint32_t chunk_cap;
    struct aiot_io_record **chunks;
    /* free slots: SPSC ring, reaper pushes, submitter pops (one thread does both when single) */
    uint32_t *free_ring;
    uint32_t ring_cap;
    _Atomic uint32_t free_head, free_tail;
    _Atomic uint64_t inflight;
    _Atomic int failed;
    _Atomic int submit_done;
    _Atomic uint64_t submitted_final;
    uint64_t submitted;         /* submitter only */
    uint64_t reaped;            /* reaper only */
    uint64_t errors;            /* reaper only */
    uint64_t rng;
    uint64_t nblocks;
    uint64_t start_ns, deadline_ns;
    uint64_t last_progress_ns;  /* reaper only */
    struct aiot_slot **scratch; /* submitter's batch */
    /* sleeping: eventcount between the two threads (split only) */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    _Atomic int sub_sleeping, reap_sleeping;
    struct own_thread own[2];
    int n_own;
    pthread_barrier_t barrier;
};

static void run_fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void run_fail(struct run *r, const char *fmt, ...)
{
    pthread_mutex_lock(&r->lock);
    if (r->ctx.msg[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        put_msg(r->ctx.msg, r->ctx.msglen, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&r->lock);
    atomic_store(&r->failed, 1);
}

static struct aiot_io_record *record(struct run *r, uint64_t id)
{
    return &r->chunks[id >> AIOT_CHUNK_SHIFT][id & ((1u << AIOT_CHUNK_SHIFT) - 1)];
}

static int ensure_chunk(struct run *r, uint64_t id)
{
    uint64_t c = id >> AIOT_CHUNK_SHIFT;
    if (c >= r->chunk_cap)
        return -1;
    if (!r->chunks[c]) {
        r->chunks[c] = calloc(1u << AIOT_CHUNK_SHIFT, sizeof(struct aiot_io_record));
        if (!r->chunks[c])
            return -1;
    }
    return 0;
}

static uint64_t next_offset(struct run *r, uint64_t id)
{
    uint64_t block;
    if (r->spec->random) { /* xorshift64*: cheap, seeded, same sequence for the same seed */
        uint64_t x = r->rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r->rng = x;
        block = (x * 0x2545F4914F6CDD1Dull) % r->nblocks;
    } else {
        block = id % r->nblocks;
    }
    return block * r->spec->bs;
}

static void wake(struct run *r, _Atomic int *sleeping)
{
    if (atomic_load(sleeping)) {
        pthread_mutex_lock(&r->lock);
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
    }
}

static uint32_t free_count(struct run *r)
{
    return atomic_load_explicit(&r->free_tail, memory_order_acquire) -
           atomic_load_explicit(&r->free_head, memory_order_relaxed);
}

static void push_free(struct run *r, uint32_t index)
{
    uint32_t t = atomic_load_explicit(&r->free_tail, memory_order_relaxed);
    r->free_ring[t % r->ring_cap] = index;
    atomic_store_explicit(&r->free_tail, t + 1, memory_order_release);
}

static uint32_t pop_free(struct run *r)
{
    uint32_t h = atomic_load_explicit(&r->free_head, memory_order_relaxed);
    uint32_t index = r->free_ring[h % r->ring_cap];
    atomic_store_explicit(&r->free_head, h + 1, memory_order_release);
    return index;
}

/* Submit `n` new I/Os (or the final fsync when fsync_id is set). 0 or -1 (failed). */
static int submit_batch(struct run *r, unsigned n, int fsync)
{
    struct aiot_ctx *ctx = &r->ctx;
    const struct aiot_spec *s = r->spec;
    int64_t tid = my_tid();
    uint64_t first = r->submitted;
    for (unsigned i = 0; i < n; i++) {
        uint64_t id = first + i;
        if (ensure_chunk(r, id) != 0) {
            run_fail(r, "cannot keep the record of I/O %llu (out of memory or more than %llu I/Os)",
                     (unsigned long long)id, (unsigned long long)r->chunk_cap << AIOT_CHUNK_SHIFT);
            return -1;
        }
        struct aiot_slot *slot = &ctx->slots[pop_free(r)];
        slot->id = id;
        slot->op = fsync ? AIOT_OP_FSYNC : s->op;
        slot->offset = fsync ? 0 : (int64_t)next_offset(r, id);
        struct aiot_io_record *rec = record(r, id);
        rec->id = id;
        rec->op = slot->op;
        rec->offset = slot->offset;
        rec->bytes = fsync ? 0 : s->bs;
        rec->submit_tid = tid;
        if (slot->op == AIOT_OP_WRITE)
            stamp(slot->buf, (uint64_t)slot->offset, s->bs);
        int pr = ctx->ops->prep(ctx, slot);
        if (pr != 0) {
            run_fail(r, "%s: cannot prepare I/O %llu: %s", s->mode, (unsigned long long)id, strerror(-pr));
            push_free(r, slot->index);
            return -1;
        }
        atomic_store_explicit(&slot->state, SLOT_IN_FLIGHT, memory_order_release);
        r->scratch[i] = slot;
    }
    atomic_fetch_add(&r->inflight, n);
    uint64_t t = aiot_now_ns();
    for (unsigned i = 0; i < n; i++)
        record(r, first + i)->submit_ns = t;
    unsigned done = 0;
    int ret = 0;
    while (done < n) {
        ret = ctx->ops->submit(ctx, r->scratch + done, n - done);
        if (ret <= 0)
            break;
        done += (unsigned)ret;
    }
    aiotrace_probe_submit(first, n, ret < 0 ? ret : (int64_t)done);
    r->submitted += done;
    if (done < n) {
        /* Not accepted: give the slots back, then fail the run (queue limit, bad fd...). */
        for (unsigned i = done; i < n; i++) {
            atomic_store(&r->scratch[i]->state, SLOT_FREE);
            push_free(r, r->scratch[i]->index);
        }
        atomic_fetch_sub(&r->inflight, n - done);
        int e = ret < 0 ? -ret : EAGAIN;
        if (e == EAGAIN)
            run_fail(r, "%s: the kernel refused I/O %llu with EAGAIN: queue limit reached (depth %u)",
                     s->mode, (unsigned long long)(first + done), s->depth);
        else
            run_fail(r, "%s: submitting I/O %llu failed: %s", s->mode, (unsigned long long)(first + done),
                     strerror(e));
        return -1;
    }
    return 0;
}

/* Wait for at least `min` completions, check and record each. Returns completions or -1. */
static int reap_batch(struct run *r, unsigned min)
{
    struct aiot_ctx *ctx = &r->ctx;
    const struct aiot_spec *s = r->spec;
    uint64_t slice_ns = 100000000ull; /* wake up to check for failure and lost completions */
    int n = ctx->ops->getevents(ctx, min, ctx->depth, slice_ns);
    uint64_t now = aiot_now_ns();
    if (n < 0) {
        run_fail(r, "%s: waiting for completions failed: %s", s->mode, strerror(-n));
        return -1;
    }
    if (n == 0) {
        if (now - r->last_progress_ns > s->lost_timeout_ns) {
            uint64_t oldest = UINT64_MAX;
            for (uint32_t i = 0; i < ctx->depth; i++)
                if (atomic_load(&ctx->slots[i].state) == SLOT_IN_FLIGHT && ctx->slots[i].id < oldest)
                    oldest = ctx->slots[i].id;
            run_fail(r, "%s: lost completion: I/O %llu (and %llu in flight) did not complete within %.1f s",
                     s->mode, (unsigned long long)oldest, (unsigned long long)atomic_load(&r->inflight),
                     s->lost_timeout_ns / 1e9);
            return -1;
        }
        return 0;
    }
    int64_t tid = my_tid();
    for (int i = 0; i < n; i++) {
        int64_t result = 0;
        struct aiot_slot *slot = ctx->ops->event(ctx, (unsigned)i, &result);
        if (!slot || slot < ctx->slots || slot >= ctx->slots + ctx->depth) {
            run_fail(r, "%s: completion %d of a batch of %d names no slot of this run (misdirected completion)",
                     s->mode, i, n);
            continue;
        }
        if (atomic_load_explicit(&slot->state, memory_order_acquire) != SLOT_IN_FLIGHT) {
            run_fail(r, "%s: duplicated completion: I/O %llu (slot %u) completed again", s->mode,
                     (unsigned long long)slot->id, slot->index);
            continue;
        }
        struct aiot_io_record *rec = record(r, slot->id);
        if (rec->done++) {
            run_fail(r, "%s: duplicated completion of I/O %llu", s->mode, (unsigned long long)slot->id);
            continue;
        }
        rec->complete_ns = now;
        rec->result = result;
        rec->reap_tid = tid;
        int64_t expected = slot->op == AIOT_OP_FSYNC ? 0 : (int64_t)s->bs;
        if (result != expected) {
            r->errors++;
            if (result < 0)
                run_fail(r, "%s: I/O %llu (%s at offset %lld) failed: %s", s->mode, (unsigned long long)slot->id,
                         op_name(slot->op), (long long)slot->offset, strerror((int)-result));
            else
                run_fail(r, "%s: I/O %llu (%s at offset %lld) transferred %lld bytes, expected %lld", s->mode,
                         (unsigned long long)slot->id, op_name(slot->op), (long long)slot->offset,
                         (long long)result, (long long)expected);
        } else if (slot->op == AIOT_OP_READ && s->verify && stamp_differs(slot->buf, (uint64_t)slot->offset, s->bs)) {
            r->errors++;
            run_fail(r,
                     "%s: I/O %llu (read at offset %lld) returned the data of offset %lld: misdirected completion "
                     "or corrupt file",
                     s->mode, (unsigned long long)slot->id, (long long)slot->offset,
                     (long long)((uint64_t *)slot->buf)[0]);
        }
        aiotrace_probe_reap(slot->id, result, (uint32_t)n);
        atomic_store_explicit(&slot->state, SLOT_FREE, memory_order_release);
        push_free(r, slot->index);
    }
    if (ctx->ops->release)
        ctx->ops->release(ctx, (unsigned)n);
    atomic_fetch_sub(&r->inflight, (uint64_t)n);
    r->reaped += (uint64_t)n;
    r->last_progress_ns = now;
    return n;
}

static unsigned umin(uint64_t a, uint64_t b)
{
    return (unsigned)(a < b ? a : b);
}

/* A stop signal during a run ends it like a reached count: nothing new is submitted, what is in
 * flight is reaped, and the record and summary are still returned (res->interrupted says why). */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

static const int STOP_SIGNALS[] = {SIGINT, SIGTERM, SIGHUP};
#define N_STOP_SIGNALS (sizeof STOP_SIGNALS / sizeof STOP_SIGNALS[0])

/* How many new data I/Os may still be submitted (0 = stop). */
static uint64_t remaining(struct run *r)
{
    if (atomic_load_explicit(&r->failed, memory_order_relaxed) || stop_signal)
        return 0;
    if (r->spec->duration_ns) {
        if (aiot_now_ns() >= r->deadline_ns)
            return 0;
        return UINT64_MAX;
    }
    /* the final fsync takes one id past the data I/Os: never count below zero */
    return r->submitted >= r->writes_or_reads ? 0 : r->writes_or_reads - r->submitted;
}

static void take_rusage(struct rusage *ru)
{
#if defined(RUSAGE_THREAD)
    getrusage(RUSAGE_THREAD, ru);
#else
    getrusage(RUSAGE_SELF, ru);
#endif
}

/* ---- single thread: submit what the depth allows, then wait for reap_batch */
static void loop_single(struct run *r)
{
    const struct aiot_spec *s = r->spec;
    int fsync_pending = s->fsync_at_end;
    r->last_progress_ns = aiot_now_ns();
    for (;;) {
        uint64_t left;
        while ((left = remaining(r)) > 0) {
            unsigned n = umin(s->batch, left);
            if (free_count(r) < n || submit_batch(r, n, 0) != 0)
                break;
        }
        uint64_t inflight = atomic_load(&r->inflight);
        if (left == 0 && inflight == 0) {
            if (fsync_pending && !atomic_load(&r->failed) && !stop_signal) {
                fsync_pending = 0;
                if (submit_batch(r, 1, 1) != 0)
                    break;
                continue;
            }
            break;
        }
        if (reap_batch(r, umin(s->reap_batch, inflight)) < 0)
            break; /* the wait itself failed, or completions were lost: nothing more will come */
    }
}

/* ---- split: the calling thread submits, a reaper thread waits and reaps */
static void sleep_until(struct run *r, _Atomic int *sleeping, int (*ready)(struct run *, unsigned), unsigned arg)
{
    for (int spin = 0; spin < 64; spin++) {
        if (ready(r, arg))
            return;
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
    }
    pthread_mutex_lock(&r->lock);
    atomic_store(sleeping, 1);
    while (!ready(r, arg))
        pthread_cond_wait(&r->cond, &r->lock);
    atomic_store(sleeping, 0);
    pthread_mutex_unlock(&r->lock);
}

static int slots_ready(struct run *r, unsigned n)
{
    return free_count(r) >= n || atomic_load(&r->failed);
}

static int all_free(struct run *r, unsigned unused)
{
    (void)unused;
    return atomic_load(&r->inflight) == 0 || atomic_load(&r->failed);
}

static int work_ready(struct run *r, unsigned unused)
{
    (void)unused;
    return atomic_load(&r->inflight) > 0 || atomic_load(&r->submit_done);
}

static void loop_submitter(struct run *r)
{
    const struct aiot_spec *s = r->spec;
    uint64_t left;
    while ((left = remaining(r)) > 0) {
        unsigned n = umin(s->batch, left);
        sleep_until(r, &r->sub_sleeping, slots_ready, n);
        if (atomic_load(&r->failed) || submit_batch(r, n, 0) != 0)
            break;
        wake(r, &r->reap_sleeping);
    }
    if (s->fsync_at_end && !atomic_load(&r->failed) && !stop_signal) {
        sleep_until(r, &r->sub_sleeping, all_free, 0); /* fsync after every write completed */
        if (!atomic_load(&r->failed) && submit_batch(r, 1, 1) == 0)
            wake(r, &r->reap_sleeping);
    }
    atomic_store(&r->submitted_final, r->submitted);
    atomic_store(&r->submit_done, 1);
    wake(r, &r->reap_sleeping);
}

static void *reaper_main(void *arg)
{
    struct run *r = arg;
    struct own_thread *me = &r->own[1];
    name_thread("reaper");
    me->tid = my_tid();
    take_rusage(&me->before);
    pthread_barrier_wait(&r->barrier); /* 1: window opens */
    r->last_progress_ns = aiot_now_ns();
    for (;;) {
        uint64_t inflight = atomic_load(&r->inflight);
        if (inflight == 0) {
            if (atomic_load(&r->submit_done) && r->reaped >= atomic_load(&r->submitted_final) &&
                atomic_load(&r->inflight) == 0)
                break;
            sleep_until(r, &r->reap_sleeping, work_ready, 0);
            r->last_progress_ns = aiot_now_ns();
            continue;
        }
        int n = reap_batch(r, umin(r->spec->reap_batch, inflight));
        if (n > 0)
            wake(r, &r->sub_sleeping);
        else if (n < 0) {
            wake(r, &r->sub_sleeping); /* the wait failed or completions were lost: stop */
            break;
        }
    }
    take_rusage(&me->after);
    pthread_barrier_wait(&r->barrier); /* 2: all I/O done */
    pthread_barrier_wait(&r->barrier); /* 3: tasks snapshotted while this thread lives */
    return NULL;
}

static int64_t tv_ns(struct timeval tv)
{
    return (int64_t)tv.tv_sec * 1000000000ll + (int64_t)tv.tv_usec * 1000ll;
}

static void fill_threads(struct run *r, struct task_snap *before, int nb, struct task_snap *after, int na)
{
    struct aiot_result *res = r->res;
    long hz = sysconf(_SC_CLK_TCK);
    int64_t ns_per_tick = hz > 0 ? 1000000000ll / hz : 10000000ll;
    pid_t pid = getpid();
    /* own threads first: getrusage(RUSAGE_THREAD) deltas taken inside each thread */
    for (int i = 0; i < r->n_own && res->n_threads < AIOT_MAX_THREADS; i++) {
        struct own_thread *o = &r->own[i];
        struct aiot_thread_record *t = &res->threads[res->n_threads++];
        memset(t, 0, sizeof *t);
        t->tid = o->tid;
        snprintf(t->role, sizeof t->role, "%s", o->role);
        t->inblock = o->after.ru_inblock - o->before.ru_inblock;
        t->oublock = o->after.ru_oublock - o->before.ru_oublock;
        t->utime_ns = tv_ns(o->after.ru_utime) - tv_ns(o->before.ru_utime);
        t->stime_ns = tv_ns(o->after.ru_stime) - tv_ns(o->before.ru_stime);
        t->nvcsw = o->after.ru_nvcsw - o->before.ru_nvcsw;
        t->nivcsw = o->after.ru_nivcsw - o->before.ru_nivcsw;
        t->io_read_bytes = t->io_write_bytes = -1;
        snprintf(t->name, sizeof t->name, "%s", i == 0 ? "submitter" : "reaper");
    }
    for (int a = 0; a < na; a++) {
        struct task_snap *ts = &after[a], *bs = NULL;
        for (int b = 0; b < nb; b++)
            if (before[b].tid == ts->tid)
                bs = &before[b];
        int64_t rd = ts->read_bytes, wr = ts->write_bytes;
        if (bs && rd >= 0 && bs->read_bytes >= 0)
            rd -= bs->read_bytes;
        if (bs && wr >= 0 && bs->write_bytes >= 0)
            wr -= bs->write_bytes;
        struct aiot_thread_record *t = NULL;
        for (uint32_t i = 0; i < res->n_threads; i++)
            if (res->threads[i].tid == ts->tid)
                t = &res->threads[i];
        if (!t) {
            if (res->n_threads >= AIOT_MAX_THREADS) {
                res->threads_dropped++;
                continue;
            }
            t = &res->threads[res->n_threads++];
            memset(t, 0, sizeof *t);
            t->tid = ts->tid;
            t->inblock = t->oublock = t->nvcsw = t->nivcsw = -1;
            t->utime_ns = ts->utime_ticks >= 0 ? (ts->utime_ticks - (bs ? bs->utime_ticks : 0)) * ns_per_tick : -1;
            t->stime_ns = ts->stime_ticks >= 0 ? (ts->stime_ticks - (bs ? bs->stime_ticks : 0)) * ns_per_tick : -1;
            const char *role = "helper";
            if (strncmp(ts->comm, "iou-wrk", 7) == 0)
                role = "iou-wrk";
            else if (strncmp(ts->comm, "iou-sqp", 7) == 0)
                role = "iou-sqp";
            else if (ts->tid == pid)
                role = "main";
            else if (bs && rd <= 0 && wr <= 0 && t->utime_ns <= 0 && t->stime_ns <= 0)
                role = "other"; /* alive before the window and idle in it (e.g. an allocator thread) */
            snprintf(t->role, sizeof t->role, "%s", role);
        }
        snprintf(t->name, sizeof t->name, "%s", ts->comm);
        t->io_read_bytes = rd;
        t->io_write_bytes = wr;
    }
}

static void free_run(struct run *r)
{
    free(r->ctx.slots);
    free(r->ctx.buffers);
    free(r->ctx.events);
    free(r->free_ring);
    free(r->scratch);
}

int aiot_run(const struct aiot_spec *spec, int fd, struct aiot_result *res)
{
    memset(res, 0, sizeof *res);
    res->reap_supported = -1;
    struct run *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(res->message, sizeof res->message, "out of memory");
        return res->status = 1;
    }
    r->spec = spec;
    r->res = res;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    struct aiot_ctx *ctx = &r->ctx;
    ctx->spec = spec;
    ctx->fd = fd;
    ctx->depth = spec->depth;
    ctx->msg = res->message;
    ctx->msglen = sizeof res->message;
    ctx->reap_supported = -1;
    ctx->ops = find_mode(spec->mode);
    if (!ctx->ops) {
        snprintf(res->message, sizeof res->message, "mode '%s' is not available on this OS", spec->mode);
        free(r);
        return res->status = 1;
    }
    if (spec->depth == 0 || spec->batch == 0 || spec->batch > spec->depth || spec->reap_batch == 0 ||
        spec->reap_batch > spec->depth || spec->bs < 512 || spec->bs % 512 || spec->file_size < spec->bs ||
        (spec->count == 0 && spec->duration_ns == 0)) {
        snprintf(res->message, sizeof res->message,
                 "bad run spec (depth %u, batch %u, reap batch %u, block size %u, count %llu)", spec->depth,
                 spec->batch, spec->reap_batch, spec->bs, (unsigned long long)spec->count);
        free(r);
        return res->status = 1;
    }
    r->nblocks = spec->file_size / spec->bs;
    r->rng = spec->seed ? spec->seed * 0x9E3779B97F4A7C15ull : 0x9E3779B97F4A7C15ull;
    if (r->rng == 0)
        r->rng = 1;
    r->writes_or_reads = spec->duration_ns ? UINT64_MAX : spec->count;
    uint64_t max_ids = spec->duration_ns ? (1ull << 34) : spec->count + 1;
    r->chunk_cap = (uint32_t)((max_ids >> AIOT_CHUNK_SHIFT) + 1);
    r->chunks = calloc(r->chunk_cap, sizeof *r->chunks);
    size_t buf_stride = (spec->bs + 4095u) & ~4095u;
    r->ring_cap = spec->depth + 1;
    ctx->slots = calloc(spec->depth, sizeof *ctx->slots);
    ctx->events = calloc(spec->depth, sizeof *ctx->events);
    r->free_ring = calloc(r->ring_cap, sizeof *r->free_ring);
    r->scratch = calloc(spec->depth, sizeof *r->scratch);
    if (posix_memalign(&ctx->buffers, 4096, buf_stride * spec->depth) != 0)
        ctx->buffers = NULL;
    if (!r->chunks || !ctx->slots || !ctx->events || !r->free_ring || !r->scratch || !ctx->buffers) {
        snprintf(res->message, sizeof res->message, "out of memory for depth %u x %u bytes", spec->depth, spec->bs);
        free_run(r);
        free(r->chunks);
        free(r);
        return res->status = 1;
    }
    for (uint32_t i = 0; i < spec->depth; i++) {
        ctx->slots[i].index = i;
        ctx->slots[i].buf = (char *)ctx->buffers + buf_stride * i;
        push_free(r, i);
    }
    /* Count mode: allocate and touch the whole record before the window (no faults inside). */
    if (!spec->duration_ns && spec->count + 1 <= (4ull << 20)) {
        for (uint64_t id = 0; id < spec->count + 1; id += 1u << AIOT_CHUNK_SHIFT)
            if (ensure_chunk(r, id) == 0)
                memset(r->chunks[id >> AIOT_CHUNK_SHIFT], 0,
                       sizeof(struct aiot_io_record) << AIOT_CHUNK_SHIFT);
    }
    if (ctx->ops->setup(ctx) != 0) {
        if (res->message[0] == '\0')
            snprintf(res->message, sizeof res->message, "%s: setup failed", spec->mode);
        res->reap_supported = ctx->reap_supported;
        ctx->ops->cleanup(ctx);
        free_run(r);
        for (uint32_t c = 0; c < r->chunk_cap; c++)
            free(r->chunks[c]);
        free(r->chunks);
        free(r);
        return res->status = 1;
    }

    memset(ctx->buffers, 0, buf_stride * spec->depth); /* fault the pages in before the window */
    pthread_t reaper;
    int split = spec->split != 0;
    r->n_own = split ? 2 : 1;
    r->own[0].role = split ? "submitter" : "both";
    r->own[1].role = "reaper";
    r->own[0].tid = my_tid();
    if (split) {
        pthread_barrier_init(&r->barrier, NULL, 2);
        if (pthread_create(&reaper, NULL, reaper_main, r) != 0) {
            snprintf(res->message, sizeof res->message, "cannot start the reaper thread: %s", strerror(errno));
            ctx->ops->cleanup(ctx);
            free_run(r);
            free(r->chunks);
            free(r);
            return res->status = 1;
        }
    }
    char caller_name[16] = ""; /* glibc, and FreeBSD >= 12.2; restored after the run */
    pthread_getname_np(pthread_self(), caller_name, sizeof caller_name);
    name_thread("submitter");
    static struct task_snap before_tasks[MAX_TASKS], after_tasks[MAX_TASKS];
    int nb = snap_tasks(before_tasks, MAX_TASKS);
    struct rusage self_before, self_after;
    getrusage(RUSAGE_SELF, &self_before);
    take_rusage(&r->own[0].before);
    uint64_t t0 = aiot_now_ns();
    aiotrace_probe_sync(t0);
    aiotrace_probe_window_start(spec->duration_ns ? 0 : spec->count + (spec->fsync_at_end ? 1 : 0));
    r->start_ns = aiot_now_ns();
    r->deadline_ns = r->start_ns + spec->duration_ns;
    struct sigaction stop_action = {0}, saved[N_STOP_SIGNALS];
    stop_action.sa_handler = on_stop_signal;
    stop_action.sa_flags = SA_RESTART; /* waits go on: the in-flight I/Os must still be reaped */
    sigemptyset(&stop_action.sa_mask);
    stop_signal = 0;
    for (size_t i = 0; i < N_STOP_SIGNALS; i++)
        sigaction(STOP_SIGNALS[i], &stop_action, &saved[i]);
    if (split) {
        pthread_barrier_wait(&r->barrier); /* 1 */
        loop_submitter(r);
        pthread_barrier_wait(&r->barrier); /* 2 */
    } else {
        loop_single(r);
    }
    for (size_t i = 0; i < N_STOP_SIGNALS; i++)
        sigaction(STOP_SIGNALS[i], &saved[i], NULL);
    res->interrupted = stop_signal;
    uint64_t stop_ns = aiot_now_ns();
    take_rusage(&r->own[0].after);
    getrusage(RUSAGE_SELF, &self_after);
    uint64_t completed = r->reaped;
    aiotrace_probe_window_stop(completed);
    /* io-wq workers and helper threads die with their submitter or the ring: look now. */
    int na = snap_tasks(after_tasks, MAX_TASKS);
    if (split) {
        pthread_barrier_wait(&r->barrier); /* 3 */
        pthread_join(reaper, NULL);
        pthread_barrier_destroy(&r->barrier);
    }
    ctx->ops->cleanup(ctx);

    res->start_ns = r->start_ns;
    res->stop_ns = stop_ns;
    res->ios = completed;
    res->errors = r->errors;
    res->submit_calls = ctx->submit_calls;
    res->wait_calls = ctx->wait_calls;
    res->status_calls = ctx->status_calls;
    res->result_calls = ctx->result_calls;
    res->reap_supported = ctx->reap_supported;
    res->self_utime_ns = tv_ns(self_after.ru_utime) - tv_ns(self_before.ru_utime);
    res->self_stime_ns = tv_ns(self_after.ru_stime) - tv_ns(self_before.ru_stime);
    res->self_inblock = self_after.ru_inblock - self_before.ru_inblock;
    res->self_oublock = self_after.ru_oublock - self_before.ru_oublock;
    res->n_records = r->submitted;
    res->chunk_size = 1u << AIOT_CHUNK_SHIFT;
    res->n_chunks = (uint32_t)((r->submitted + res->chunk_size - 1) >> AIOT_CHUNK_SHIFT);
    res->chunks = r->chunks; /* handed to the caller; freed by aiot_result_free */
    for (uint32_t c = res->n_chunks; c < r->chunk_cap; c++) {
        free(r->chunks[c]);
        r->chunks[c] = NULL;
    }
    fill_threads(r, before_tasks, nb, after_tasks, na);
    if (caller_name[0])
        pthread_setname_np(pthread_self(), caller_name);
    int failed = atomic_load(&r->failed);
    if (!failed && completed != r->submitted) {
        snprintf(res->message, sizeof res->message, "%s: %llu I/Os submitted but %llu completed", spec->mode,
                 (unsigned long long)r->submitted, (unsigned long long)completed);
        failed = 1;
    }
    res->verified = !failed && res->errors == 0;
    res->status = failed ? 2 : 0;
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free_run(r);
    free(r);
    return res->status;
}

void aiot_result_free(struct aiot_result *res)
{
    if (res->chunks) {
        for (uint32_t c = 0; c < res->n_chunks; c++)
            free(res->chunks[c]);
        free(res->chunks);
    }
    res->chunks = NULL;
    res->n_chunks = 0;
}

/*
 * aiotrace workload engine: one I/O loop, one ops table per completion mode.
 *
 * The loop (engine.c) owns depth accounting, offsets, timing, the per-I/O record,
 * verification and threads. A mode file (mode_*.c) fills `struct aiot_mode_ops`
 * with only what is true of that completion API, the way fio's ioengines do:
 *
 *   setup     create the kernel context (ring, io context, kqueue); refuse clearly
 *   prep      fill the per-I/O control block of one slot (aiocb, iocb, SQE)
 *   submit    hand n prepared slots to the kernel; return how many it took
 *   getevents wait until at least `min` completions are known (at most `max`)
 *   event     return the slot and result of the i-th completion found by getevents
 *   release   give back the n completions just consumed (io_uring CQ head)
 *   cleanup   drain nothing, free everything (the loop drains before calling it)
 *
 * The public part (aiot_spec, aiot_io_record, aiot_thread_record, aiot_result and
 * the aiot_* functions) is mirrored in build_engine.py's cdef for cffi.
 */
#ifndef AIOTRACE_ENGINE_H
#define AIOTRACE_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <sys/types.h>

#if defined(__linux__)
#include <aio.h>
#include <libaio.h>
#elif defined(__FreeBSD__)
#include <aio.h>
#include <sys/event.h>
#endif

/* ---------------------------------------------------------------- public API */

#define AIOT_MSG_LEN 512
#define AIOT_MAX_THREADS 64
#define AIOT_CHUNK_SHIFT 16 /* records are kept in chunks of 65536, allocated as ids grow */

enum aiot_op { AIOT_OP_READ = 0, AIOT_OP_WRITE = 1, AIOT_OP_FSYNC = 2 };

/* What to run. op is AIOT_OP_READ or AIOT_OP_WRITE; fsync_at_end adds one fsync
 * through the mode's own API after all writes completed ("write-fsync"). */
struct aiot_spec {
    const char *mode;
    int op;
    int fsync_at_end;
    uint32_t depth;       /* I/Os in flight at most */
    uint32_t batch;       /* I/Os per submit call */
    uint32_t reap_batch;  /* minimum completions per wait call */
    uint32_t bs;          /* bytes per I/O */
    uint64_t count;       /* I/Os to do when duration_ns == 0 */
    uint64_t duration_ns; /* run this long instead of count I/Os */
    uint64_t file_size;   /* bytes of the file used for offsets */
    int direct;           /* the fd was opened with O_DIRECT */
    int random;           /* random (1) or sequential (0) block offsets */
    uint64_t seed;
    int split;            /* submitter thread + separate reaper thread */
    int lio;              /* POSIX modes: lio_listio(LIO_NOWAIT) batches */
    uint64_t lost_timeout_ns; /* no completion for this long => lost completion */
    int verify;           /* check every read's data against the file's offset stamps */
};

/* One I/O, kept in memory and written out once at the end. CLOCK_MONOTONIC ns. */
struct aiot_io_record {
    uint64_t id;
    int64_t offset;
    int64_t bytes;
    uint64_t submit_ns;   /* just before the submit call */
    uint64_t complete_ns; /* when the program learned of the completion */
    int64_t result;       /* bytes, or -errno */
    int64_t submit_tid;
    int64_t reap_tid;
    int32_t op;           /* enum aiot_op */
    int32_t done;         /* completions seen: 1 when the run is correct */
};

/* One task of the process: rusage deltas for the engine's own threads, /proc io for all. */
struct aiot_thread_record {
    int64_t tid;
    char name[32];
    char role[16]; /* both, submitter, reaper (own threads); main; iou-wrk; iou-sqp; helper = another
                    * task created in the window or busy in it (glibc AIO threads); other = idle */
    int64_t inblock, oublock, utime_ns, stime_ns, nvcsw, nivcsw; /* -1 when unknown */
    int64_t io_read_bytes, io_write_bytes;                        /* -1 when unknown */
};

struct aiot_result {
    int status;          /* 0 ok, 1 refused before any I/O, 2 workload failed */
    uint64_t ios;        /* completed I/Os (including the final fsync) */
    uint64_t errors;     /* I/Os whose result was not the full transfer */
    int verified;        /* every I/O completed exactly once, full result, read data matched */
    uint64_t start_ns, stop_ns;
    uint64_t submit_calls; /* calls that hand I/O to the kernel/library */
    uint64_t wait_calls;   /* calls that learn of completions */
    uint64_t status_calls; /* aio_error calls made to check a status after learning of it */
    uint64_t result_calls; /* aio_return calls (or other per-I/O result fetches) */
    int64_t self_utime_ns, self_stime_ns; /* RUSAGE_SELF delta over the window: every thread */
    int64_t self_inblock, self_oublock;
    int reap_supported;  /* -1 not probed, 0 refused by this kernel, 1 accepted */
    uint64_t n_records;
    uint32_t n_chunks;
    uint32_t chunk_size;
    struct aiot_io_record **chunks;
    uint32_t n_threads;
    uint32_t threads_dropped;
    struct aiot_thread_record threads[AIOT_MAX_THREADS];
    char message[AIOT_MSG_LEN];
    int interrupted;     /* the signal (SIGINT/SIGTERM/SIGHUP) that ended the run early, else 0 */
};

/* Create (temp name, then rename) or extend and check the data file: every 8-byte word
 * holds its own file offset. A file that exists and lacks the stamps is refused before
 * anything is written to it. With verify == 0 an existing file or disk device that is not
 * aiotrace's is used read-only (writes to it are refused) and must hold file_size bytes.
 * Opens it (O_DIRECT if asked) and checks the block size against the direct I/O
 * alignment. Returns 0 and *fd_out, or -1 and msg. */
int aiot_prepare_file(const char *path, uint64_t file_size, int direct, uint32_t bs, int writable, int verify,
                      int *fd_out, char *msg, size_t msglen);
/* Names of the modes compiled into this build, NULL after the last. */
const char *aiot_mode_name(int index);
/* 1 if `mode` can run here; 0 with the reason otherwise (not built for this OS,
 * disabled by sysctl, not supported by this kernel). */
int aiot_mode_available(const char *mode, char *reason, size_t reasonlen);
/* Run one workload on fd. Returns res->status. Free with aiot_result_free. */
int aiot_run(const struct aiot_spec *spec, int fd, struct aiot_result *res);
void aiot_result_free(struct aiot_result *res);
uint64_t aiot_now_ns(void);

/* Probe points (uprobe / dtrace pid provider targets; USDT provider "aiotrace" where
 * <sys/sdt.h> exists). Names and argument order are tracer/base/spec.py PROBE_FUNCTIONS. */
void aiotrace_probe_window_start(uint64_t planned_ios);
void aiotrace_probe_window_stop(uint64_t completed_ios);
void aiotrace_probe_submit(uint64_t first_id, uint32_t count, int64_t ret);
void aiotrace_probe_reap(uint64_t id, int64_t result, uint32_t batch);
void aiotrace_probe_sync(uint64_t monotonic_ns);

/* ---------------------------------------------------------------- internal */
#ifdef AIOT_INTERNAL

enum aiot_slot_state { SLOT_FREE = 0, SLOT_IN_FLIGHT = 1 };

struct aiot_slot {
    uint32_t index;
    int op;
    uint64_t id;      /* I/O id in flight in this slot */
    int64_t offset;
    void *buf;
    _Atomic int state;
    union {           /* the mode's control block for this slot */
#if defined(__linux__) || defined(__FreeBSD__)
        struct {
            struct aiocb cb;
            _Atomic int posted; /* > 0: accepted by the kernel/library and not yet reaped: safe to aio_error */
        } posix;
#endif
#if defined(__linux__)
        struct iocb kiocb;
#endif
        char pad[8];
    } u;
};

/* One completion found by getevents. */
struct aiot_event {
    struct aiot_slot *slot;
    int64_t result;
};

struct aiot_ctx;

struct aiot_mode_ops {
    const char *name;
    int (*setup)(struct aiot_ctx *ctx);
    int (*prep)(struct aiot_ctx *ctx, struct aiot_slot *slot); /* 0 or -errno */
    int (*submit)(struct aiot_ctx *ctx, struct aiot_slot **slots, unsigned n);
    int (*getevents)(struct aiot_ctx *ctx, unsigned min, unsigned max, uint64_t timeout_ns);
    struct aiot_slot *(*event)(struct aiot_ctx *ctx, unsigned i, int64_t *result);
    void (*release)(struct aiot_ctx *ctx, unsigned n);
    void (*cleanup)(struct aiot_ctx *ctx);
    /* NULL or a function saying why this mode cannot run here (0 = it can). */
    int (*available)(char *reason, size_t reasonlen);
};

struct aiot_ctx {
    const struct aiot_spec *spec;
    const struct aiot_mode_ops *ops;
    int fd;
    uint32_t depth;
    struct aiot_slot *slots;
    void *buffers;
    void *mode_data;        /* the mode's own state (ring, io context, aiocb lists...) */
    void *mode_extra;       /* a second layer's state (the kqueue of the FreeBSD kevent modes) */
    struct aiot_event *events; /* depth entries, filled by getevents (modes may use it) */
    /* calls counted by the modes; the reaper and submitter never count the same kind */
    uint64_t submit_calls, wait_calls, status_calls, result_calls;
    int reap_supported;
    char *msg;              /* res->message */
    size_t msglen;
};

/* Mode helpers (engine.c). */
int aiot_fail(struct aiot_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first number in a /proc or sysctl text file (e.g. /proc/sys/fs/aio-max-nr); -1 if unreadable. */
long aiot_read_proc_long(const char *path);

/* Mode tables. */
extern const struct aiot_mode_ops aiot_mode_aio_poll, aiot_mode_aio_suspend;
#if defined(__linux__)
extern const struct aiot_mode_ops aiot_mode_libaio, aiot_mode_io_uring, aiot_mode_io_uring_sqpoll;
#endif
#if defined(__FreeBSD__)
extern const struct aiot_mode_ops aiot_mode_waitcomplete, aiot_mode_kevent, aiot_mode_kevent_error,
    aiot_mode_reap;
#endif

/* Shared POSIX AIO pieces (mode_posix.c), also used by the FreeBSD kqueue modes. */
int aiot_posix_prep(struct aiot_ctx *ctx, struct aiot_slot *slot);
int aiot_posix_submit(struct aiot_ctx *ctx, struct aiot_slot **slots, unsigned n);
void aiot_posix_cleanup(struct aiot_ctx *ctx);
int aiot_posix_setup(struct aiot_ctx *ctx);
#if defined(__FreeBSD__)
/* Shared kqueue pieces (mode_freebsd_kevent.c), also used by the reap mode. */
int aiot_kq_setup(struct aiot_ctx *ctx);
int aiot_kq_prep(struct aiot_ctx *ctx, struct aiot_slot *slot, unsigned short kevent_flags);
int aiot_kq_getevents(struct aiot_ctx *ctx, unsigned min, unsigned max, uint64_t timeout_ns);
struct kevent *aiot_kq_kev(struct aiot_ctx *ctx, unsigned i);
void aiot_kq_cleanup(struct aiot_ctx *ctx);
#endif

#endif /* AIOT_INTERNAL */
#endif

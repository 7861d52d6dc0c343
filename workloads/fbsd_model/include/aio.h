/*
 * FreeBSD-shaped <aio.h> for the user-space FreeBSD kernel-semantics model (fbsd_model.c).
 *
 * Mirrors sys/sys/aio.h and the sigevent of sys/sys/signal.h (amd64 layout: struct aiocb is
 * 160 bytes, aio_sigevent at 80, sigev_notify_kevent_flags at 96), so workloads/mode_posix.c and
 * workloads/mode_freebsd_*.c compile unchanged. Only for the model build (build_engine.py
 * model_ffibuilder, which compiles with -D__FreeBSD__ -U__linux__ and this directory first).
 * The AIO calls are renamed to fbsdm_* so the model never collides with glibc's own aio_*.
 */
#ifndef FBSDM_AIO_H
#define FBSDM_AIO_H

#include <stddef.h>
#include <sys/types.h>
#include <signal.h> /* glibc's; its struct sigevent is renamed below */
#include <time.h>

/* FreeBSD's struct sigevent (sys/sys/signal.h), not glibc's. */
#define sigevent fbsdm_sigevent
#undef sigev_notify_function
#undef sigev_notify_attributes
#undef sigev_notify_thread_id
struct fbsdm_sigevent {
    int sigev_notify;
    int sigev_signo;
    union sigval sigev_value;
    union {
        int _threadid; /* __lwpid_t */
        struct {
            void (*_function)(union sigval);
            void *_attribute;
        } _sigev_thread;
        unsigned short _kevent_flags;
        long __spare__[8];
    } _sigev_un;
};
#define sigev_notify_kqueue sigev_signo
#define sigev_notify_kevent_flags _sigev_un._kevent_flags
#define sigev_notify_thread_id _sigev_un._threadid
#define sigev_notify_function _sigev_un._sigev_thread._function
#define sigev_notify_attributes _sigev_un._sigev_thread._attribute

#undef SIGEV_NONE
#undef SIGEV_SIGNAL
#undef SIGEV_THREAD
#undef SIGEV_THREAD_ID
#define SIGEV_NONE 0
#define SIGEV_SIGNAL 1
#define SIGEV_THREAD 2
#define SIGEV_KEVENT 3
#define SIGEV_THREAD_ID 4

#define AIO_CANCELED 0x1
#define AIO_NOTCANCELED 0x2
#define AIO_ALLDONE 0x3
#define LIO_NOP 0x0
#define LIO_WRITE 0x1
#define LIO_READ 0x2
#define LIO_VECTORED 0x4
#define LIO_WRITEV (LIO_WRITE | LIO_VECTORED)
#define LIO_READV (LIO_READ | LIO_VECTORED)
#define LIO_SYNC 0x8 /* kernel-only opcodes in the real header (_WANT_ALL_LIO_OPCODES) */
#define LIO_DSYNC (0x10 | LIO_SYNC)
#define LIO_NOWAIT 0x0
#define LIO_WAIT 0x1
#define AIO_LISTIO_MAX 16

struct __aiocb_private {
    long status;
    long error;
    void *kernelinfo;
};

typedef struct aiocb {
    int aio_fildes;
    off_t aio_offset;
    volatile void *aio_buf;
    size_t aio_nbytes;
    int __spare__[2];
    void *__spare2__;
    int aio_lio_opcode;
    int aio_reqprio;
    struct __aiocb_private _aiocb_private;
    struct sigevent aio_sigevent;
} aiocb_t;

#define aio_read fbsdm_aio_read
#define aio_write fbsdm_aio_write
#define lio_listio fbsdm_lio_listio
#define aio_error fbsdm_aio_error
#define aio_return fbsdm_aio_return
#define aio_cancel fbsdm_aio_cancel
#define aio_suspend fbsdm_aio_suspend
#define aio_fsync fbsdm_aio_fsync
#define aio_waitcomplete fbsdm_aio_waitcomplete

int aio_read(struct aiocb *);
int aio_write(struct aiocb *);
int lio_listio(int, struct aiocb *const[], int, struct sigevent *);
int aio_error(const struct aiocb *);
ssize_t aio_return(struct aiocb *);
int aio_cancel(int, struct aiocb *);
int aio_suspend(const struct aiocb *const[], int, const struct timespec *);
int aio_fsync(int, struct aiocb *);
ssize_t aio_waitcomplete(struct aiocb **, struct timespec *);

#endif

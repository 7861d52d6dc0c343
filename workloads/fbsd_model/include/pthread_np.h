/* FreeBSD <pthread_np.h> for the kernel-semantics model: the thread id is the Linux tid. */
#ifndef FBSDM_PTHREAD_NP_H
#define FBSDM_PTHREAD_NP_H
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
static inline int pthread_getthreadid_np(void) { return (int)syscall(SYS_gettid); }
#endif

/*
 * <sys/resource.h> for the FreeBSD kernel-semantics model: glibc's, with getrusage() routed to
 * the model so ru_inblock/ru_oublock are the model kernel's per-thread counters (FreeBSD units:
 * block I/O operations) instead of Linux's.
 */
#ifndef FBSDM_SYS_RESOURCE_H
#define FBSDM_SYS_RESOURCE_H
#include_next <sys/resource.h>
int fbsdm_getrusage(int who, struct rusage *ru);
#define getrusage fbsdm_getrusage
#endif

/* Stub: GCC's <stddef.h> includes <sys/_types.h> when __FreeBSD__ is defined; the model build
 * defines __FreeBSD__ over glibc, whose types are already complete. */
#ifndef FBSDM_SYS__TYPES_H
#define FBSDM_SYS__TYPES_H
#endif

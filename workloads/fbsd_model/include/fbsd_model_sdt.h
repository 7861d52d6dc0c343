/*
 * Forced include (-include) of the model build: the engine's USDT probe macros become calls into
 * the model, which records them as the D script's pid-provider events (window_start, submit...).
 * engine.c is compiled unchanged: it uses DTRACE_PROBE1/3 when AIOT_HAVE_USDT is defined.
 */
#ifndef FBSDM_SDT_H
#define FBSDM_SDT_H
#include <stdint.h>
#define AIOT_HAVE_USDT 1
void fbsdm_probe(const char *name, int64_t a, int64_t b, int64_t c);
#define DTRACE_PROBE1(provider, name, a) fbsdm_probe(#name, (int64_t)(a), 0, 0)
#define DTRACE_PROBE3(provider, name, a, b, c) fbsdm_probe(#name, (int64_t)(a), (int64_t)(b), (int64_t)(c))
#endif

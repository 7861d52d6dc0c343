/* Per-line columns filled by the C line scanners (tracer/parse/scan.c). All arrays hold one slot
 * per input line; the caller zero-fills them. Strings go to name_buf/aux_buf (each as large as the
 * input) at name_off/aux_off, in line order. */
#ifndef AIOTRACE_SCAN_H
#define AIOTRACE_SCAN_H
#include <stdint.h>

#define SCAN_CALL 1       /* a complete call: name(args) = ret */
#define SCAN_UNFINISHED 2 /* name(args <unfinished ...> */
#define SCAN_RESUMED 3    /* <... name resumed>) = ret */
#define SCAN_SIGNAL 4     /* --- SIGxxx ... --- */
#define SCAN_EXIT 5       /* +++ exited with N +++ */
#define SCAN_RET 6        /* kdump RET record */
#define SCAN_TYPE 7       /* kdump record of another type (aux = the type) */
#define SCAN_CONT 8       /* kdump continuation line */
#define SCAN_KEVSTRU 9    /* kdump struct kevent[] record (its AIO elements are notes) */

struct scan_out {
    int64_t n;
    int8_t *kind;    /* 0: not recognised here, the Python parser reads the line */
    int8_t *tkind;   /* 0 no time, 1 seconds.fraction, 2 time of day */
    int8_t *has_ret;
    int64_t *pid, *tid, *ts, *dur, *a0, *a1, *a2, *ret, *id, *err, *x0, *x1;
    char *name_buf;
    int64_t name_pos;
    int64_t *name_off;
    int32_t *name_len;
    char *aux_buf;
    int64_t aux_pos;
    int64_t *aux_off;
    int32_t *aux_len;
    int64_t note_cap, note_n; /* kevent AIO events (truss): one row each */
    int64_t *note_line, *note_ident, *note_data, *note_err, *note_udata, *note_flags;
};

int64_t scan_strace(const char *buf, int64_t len, struct scan_out *o);
int64_t scan_truss(const char *buf, int64_t len, struct scan_out *o);
int64_t scan_kdump(const char *buf, int64_t len, struct scan_out *o);
int64_t scan_dtrace(const char *buf, int64_t len, struct scan_out *o);
#endif

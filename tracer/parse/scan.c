/*
 * aiotrace line scanners: the common lines of strace, truss and kdump text, tokenized in C.
 *
 * Each scanner walks the whole buffer once and fills per-line columns (struct scan_out); a line
 * it does not recognise gets kind 0 and is left to the Python parser of that format, which is
 * the reference for every line kind (tracer/parse/<format>.py). Numbers that do not fit 64 bits
 * also give kind 0, so Python reports them. Strings (syscall names, errno names, record types)
 * are copied into one buffer with per-line offsets, so Python reads them as one arrow array.
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <string.h>

#include "scan.h"

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_SPACE(c) ((c) == ' ' || (c) == '\t' || (c) == '\r')
#define IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || (c) == '_')
#define IS_WORD(c) (IS_ALPHA(c) || IS_DIGIT(c))

static const char *skip_spaces(const char *p, const char *e)
{
    while (p < e && IS_SPACE(*p))
        p++;
    return p;
}

/* Unsigned decimal digits -> value; NULL when none or more than 63 bits. */
static const char *digits(const char *p, const char *e, int64_t *out)
{
    uint64_t v = 0;
    const char *s = p;
    while (p < e && IS_DIGIT(*p)) {
        if (v > (UINT64_C(1) << 59))
            return NULL;
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (p == s || v > (uint64_t)INT64_MAX)
        return NULL;
    *out = (int64_t)v;
    return p;
}

/* "sec.frac" (any number of fraction digits, first 9 kept) -> ns; NULL if not that shape. */
static const char *seconds(const char *p, const char *e, int64_t *ns)
{
    int64_t sec;
    const char *q = digits(p, e, &sec);
    if (q == NULL || q >= e || *q != '.' || sec > INT64_MAX / 1000000000)
        return NULL;
    q++;
    int64_t frac = 0;
    int n = 0;
    const char *f = q;
    while (q < e && IS_DIGIT(*q)) {
        if (n < 9) {
            frac = frac * 10 + (*q - '0');
            n++;
        }
        q++;
    }
    if (q == f)
        return NULL;
    while (n++ < 9)
        frac *= 10;
    *ns = sec * 1000000000 + frac;
    return q;
}

/* A C number as strace/truss/kdump print it: -?decimal or 0xhex (wrapped to int64 as C does).
 * Returns the end, or NULL (not a number, or more than 64 bits). */
static const char *cnum(const char *p, const char *e, int64_t *out)
{
    int neg = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    uint64_t v = 0;
    const char *s;
    if (p + 1 < e && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        p += 2;
        s = p;
        while (p < e) {
            int d;
            char c = *p;
            if (IS_DIGIT(c)) d = c - '0';
            else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
            else break;
            if (v >> 60)
                return NULL;
            v = (v << 4) | (uint64_t)d;
            p++;
        }
    } else {
        s = p;
        while (p < e && IS_DIGIT(*p)) {
            if (v > UINT64_MAX / 10 - 9)
                return NULL;
            v = v * 10 + (uint64_t)(*p - '0');
            p++;
        }
    }
    if (p == s)
        return NULL;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return p;
}

static void put_str(struct scan_out *o, int64_t line, int which, const char *p, const char *e)
{
    /* which: 0 = name, 1 = aux (errno name / record type) */
    char *buf = which ? o->aux_buf : o->name_buf;
    int64_t *pos = which ? &o->aux_pos : &o->name_pos;
    int64_t *off = which ? o->aux_off : o->name_off;
    int64_t len = e - p;
    memcpy(buf + *pos, p, (size_t)len);
    off[line] = *pos;
    *pos += len;
    (which ? o->aux_len : o->name_len)[line] = (int32_t)len;
}

/* The symbol table of the Python readers (truss.SYMBOLS), passed in by the caller: NUL-separated
 * names and their values. A token that is not a number reads as its symbol's value, else 0, as
 * the readers' arg_int() does. */
static int64_t sym_value(const struct scan_out *o, const char *p, const char *e)
{
    const char *n = o->sym_names;
    for (int64_t k = 0; n != NULL && k < o->n_sym; k++) {
        size_t len = strlen(n);
        if (len == (size_t)(e - p) && memcmp(n, p, len) == 0)
            return o->sym_values[k];
        n += len + 1;
    }
    return 0;
}

/* One argument token as arg_int() reads it: a whole number, else a symbol's value, else 0. */
static int64_t tok_value(const struct scan_out *o, const char *p, const char *e, int *overflow)
{
    int64_t v;
    while (p < e && IS_SPACE(*p))
        p++;
    while (e > p && IS_SPACE(e[-1]))
        e--;
    const char *q = cnum(p, e, &v);
    if (q == e)
        return v;
    if (q == NULL && p < e && (IS_DIGIT(*p) || (*p == '-' && p + 1 < e && IS_DIGIT(p[1])))) {
        /* digits cnum refused: more than 64 bits (the reader wraps those) */
        const char *d = p + (*p == '-');
        while (d < e && (IS_DIGIT(*d) || *d == 'x' || *d == 'X' || (*d >= 'a' && *d <= 'f') || (*d >= 'A' && *d <= 'F')))
            d++;
        if (d == e)
            *overflow = 1;
        return 0;
    }
    return sym_value(o, p, e);
}

/* One argument as the parsers read it: a leading number (then any decoration: strace -y's
 * <path>, -X verbose's comment, kdump's <flags>), AT_FDCWD, else 0. */
static int64_t arg_value(const char *p, const char *e)
{
    int64_t v;
    p = skip_spaces(p, e);
    while (e > p && IS_SPACE(e[-1]))
        e--;
    const char *q = cnum(p, e, &v);
    if (q != NULL) {
        if (q == e || *q == '<' || (q + 1 < e && q[0] == ' ' && q[1] == '/'))
            return v;
        return 0;
    }
    if (e - p == 8 && memcmp(p, "AT_FDCWD", 8) == 0)
        return -100;
    return 0;
}

/* Walk an argument list from p (just after '('), nesting (), [], {} and skipping "strings";
 * stores the first three top-level arguments' values; returns the ')' that closes the list, or
 * NULL when the line ends first (an unfinished call) or a ']'/'}' closes nothing. */
/* From an opening '"', the closing quote (backslash escapes skipped), or e when it is unterminated. */
static const char *end_of_quoted(const char *p, const char *e)
{
    for (p++; p < e && *p != '"'; p++)
        if (*p == '\\')
            p++;
    return p < e ? p : e;
}

static const char *walk_args(const char *p, const char *e, int64_t a[3], int *nargs)
{
    int depth = 0;
    const char *start = p;
    *nargs = 0;
    a[0] = a[1] = a[2] = 0;
    while (p < e) {
        char c = *p;
        if (c == '"') {
            p = end_of_quoted(p, e);
            if (p >= e)
                return NULL;
        } else if (c == '(' || c == '[' || c == '{') {
            depth++;
        } else if (c == ')' || c == ']' || c == '}') {
            if (depth == 0) {
                if (c != ')')
                    return NULL;
                if (*nargs < 3 && p > start)
                    a[(*nargs)++] = arg_value(start, p);
                else if (p > start)
                    (*nargs)++;
                return p;
            }
            depth--;
        } else if (c == ',' && depth == 0) {
            if (*nargs < 3)
                a[*nargs] = arg_value(start, p);
            (*nargs)++;
            start = p + 1;
        }
        p++;
    }
    return NULL;
}

static int ends_with(const char *p, const char *e, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(e - p) >= n && memcmp(e - n, s, n) == 0;
}

/* The result of a strace call: "= ret[<decor>][ ERRNO (text)][ (extra)][ <dur>]" at p.
 * Returns 1 when the rest of the line is exactly that. */
static int strace_result(struct scan_out *o, int64_t i, const char *p, const char *e, const char **errno_at,
                         const char **errno_end)
{
    *errno_at = *errno_end = NULL;
    p = skip_spaces(p, e);
    if (p >= e || *p != '=')
        return 0;
    p = skip_spaces(p + 1, e);
    if (p < e && *p == '?') {
        o->has_ret[i] = 0;
        p++;
    } else {
        int64_t v;
        const char *q = cnum(p, e, &v);
        if (q == NULL)
            return 0;
        o->ret[i] = v;
        o->has_ret[i] = 1;
        p = q;
        if (p < e && *p == '<') { /* -y decoration of a returned fd */
            const char *q2 = memchr(p, '>', (size_t)(e - p));
            if (q2 == NULL)
                return 0;
            p = q2 + 1;
        }
    }
    /* the duration (-T) is the last "<sec.frac>" */
    const char *end = e;
    while (end > p && IS_SPACE(end[-1]))
        end--;
    if (end > p && end[-1] == '>') {
        const char *lt = end - 1;
        while (lt > p && *lt != '<')
            lt--;
        int64_t ns;
        const char *q = seconds(lt + 1, end - 1, &ns);
        if (*lt == '<' && q == end - 1 && lt > p && IS_SPACE(lt[-1])) {
            o->dur[i] = ns;
            end = lt;
            while (end > p && IS_SPACE(end[-1]))
                end--;
        }
    }
    p = skip_spaces(p, end);
    if (p < end && *p == 'E') { /* errno name, then its text in parentheses */
        const char *q = p;
        while (q < end && (IS_WORD(*q)))
            q++;
        *errno_at = p;
        *errno_end = q;
        p = skip_spaces(q, end);
        if (p >= end || *p != '(')
            return 0;
    }
    if (p < end && *p == '(') {/* errno text or flags explanation: must close at the end */
        if (end[-1] != ')')
            return 0;
        p = end;
    }
    return p == end;
}

/* "--- SIGxxx <anything>---" or "--- stopped by SIGxxx ---" (the Python reader's SIGNAL) */
static int strace_signal(const char *s, const char *e)
{
    if (e - s < 10 || memcmp(s, "--- ", 4) != 0 || !ends_with(s, e, "---"))
        return 0;
    const char *q = s + 4;
    if (e - q > 11 && memcmp(q, "stopped by ", 11) == 0) {
        const char *w = q + 11;
        if (e - w < 4 || memcmp(w, "SIG", 3) != 0)
            goto plain;
        const char *x = w + 3;
        while (x < e && IS_WORD(*x))
            x++;
        if (x > w + 3 && e - x == 4 && memcmp(x, " ---", 4) == 0)
            return 1;
    }
plain:
    if (e - q < 5 || memcmp(q, "SIG", 3) != 0)
        return 0;
    const char *x = q + 3;
    while (x < e && IS_WORD(*x))
        x++;
    /* SIG\w+ then a space, then anything, then "---" (which may begin right after the space) */
    return x > q + 3 && x < e && *x == ' ' && e - (x + 1) >= 3;
}

/* "+++ exited with N +++" or "+++ killed by SIGxxx[ (core dumped)] +++" (the reader's EXIT) */
static int strace_exit(const char *s, const char *e)
{
    if (e - s < 12 || memcmp(s, "+++ ", 4) != 0 || memcmp(e - 4, " +++", 4) != 0)
        return 0;
    const char *q = s + 4, *z = e - 4;
    if (z - q > 12 && memcmp(q, "exited with ", 12) == 0) {
        const char *d = q + 12;
        if (d < z && *d == '-')
            d++;
        if (d == z)
            return 0;
        for (; d < z; d++)
            if (!IS_DIGIT(*d))
                return 0;
        return 1;
    }
    if (z - q > 13 && memcmp(q, "killed by SIG", 13) == 0) {
        const char *w = q + 13, *x = w;
        while (x < z && IS_WORD(*x))
            x++;
        if (x == w)
            return 0;
        return x == z || (z - x == 14 && memcmp(x, " (core dumped)", 14) == 0);
    }
    return 0;
}

int64_t scan_strace(const char *buf, int64_t len, struct scan_out *o)
{
    const char *p = buf, *end = buf + len;
    int64_t i = 0, handled = 0;
    while (p < end && i < o->n) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        const char *s = p;
        const char *en0, *en1;
        o->kind[i] = 0;
        o->dur[i] = -1;
        if (nl == NULL) /* a last line without newline: Python reports it as truncated */
            goto done;
        while (e > s && (e[-1] == '\r'))
            e--;
        s = skip_spaces(s, e);
        /* pid: "[pid N] " or "N  " (bare, -f -o) */
        int64_t v;
        if (e - s > 5 && memcmp(s, "[pid", 4) == 0) {
            const char *q = digits(skip_spaces(s + 4, e), e, &v);
            if (q == NULL || q >= e || *q != ']')
                goto done;
            o->pid[i] = v;
            s = skip_spaces(q + 1, e);
        } else if (s < e && IS_DIGIT(*s)) {
            const char *q = digits(s, e, &v);
            if (q != NULL && q < e && IS_SPACE(*q)) {
                o->pid[i] = v;
                s = skip_spaces(q, e);
            } else if (q == NULL) {
                goto done;
            }
        }
        /* time: HH:MM:SS[.frac] (-t/-tt, ns since midnight) or sec.frac (-ttt epoch, -r delta) */
        if (s < e && IS_DIGIT(*s)) {
            int64_t ns;
            const char *q = seconds(s, e, &ns);
            if (q != NULL && q < e && IS_SPACE(*q)) {
                o->tkind[i] = 1;
                o->ts[i] = ns;
                s = skip_spaces(q, e);
            } else if (e - s >= 8 && IS_DIGIT(s[1]) && s[2] == ':' && IS_DIGIT(s[3]) && IS_DIGIT(s[4]) &&
                       s[5] == ':' && IS_DIGIT(s[6]) && IS_DIGIT(s[7])) {
                int64_t sod = ((s[0] - '0') * 10 + (s[1] - '0')) * 3600 + ((s[3] - '0') * 10 + (s[4] - '0')) * 60 +
                              (s[6] - '0') * 10 + (s[7] - '0');
                ns = sod * 1000000000;
                q = s + 8;
                if (q < e && *q == '.') {
                    int64_t frac_ns;
                    const char *q2 = seconds(s + 6, e, &frac_ns);
                    if (q2 == NULL)
                        goto done;
                    ns = (sod - ((s[6] - '0') * 10 + (s[7] - '0'))) * 1000000000 + frac_ns;
                    q = q2;
                }
                if (q >= e || !IS_SPACE(*q))
                    goto done;
                o->tkind[i] = 2;
                o->ts[i] = ns;
                s = skip_spaces(q, e);
                if (e - s > 2 && s[0] == '(' && s[1] == '+') { /* -r beside -t: "(+ 0.000012) " */
                    const char *c = memchr(s, ')', (size_t)(e - s));
                    if (c == NULL)
                        goto done;
                    s = skip_spaces(c + 1, e);
                }
            } else {
                goto done;
            }
        }
        if (s >= e)
            goto done;
        if (*s == '-' && strace_signal(s, e)) {
            o->kind[i] = SCAN_SIGNAL;
            handled++;
            goto done;
        }
        if (*s == '+' && strace_exit(s, e)) {
            o->kind[i] = SCAN_EXIT;
            handled++;
            goto done;
        }
        if (*s == '<') { /* <... name resumed>rest) = ret */
            if (e - s < 6 || memcmp(s, "<... ", 5) != 0)
                goto done;
            const char *n0 = s + 5, *n1 = n0;
            while (n1 < e && IS_WORD(*n1))
                n1++;
            if (n1 == n0 || e - n1 < 9 || memcmp(n1, " resumed>", 9) != 0)
                goto done;
            /* the rest of the arguments: find the ')' that closes the list at depth 0 */
            int64_t a[3];
            int nargs;
            const char *close = walk_args(n1 + 9, e, a, &nargs);
            if (close == NULL || !strace_result(o, i, close + 1, e, &en0, &en1))
                goto done;
            put_str(o, i, 0, n0, n1);
            if (en0 != NULL)
                put_str(o, i, 1, en0, en1);
            o->kind[i] = SCAN_RESUMED;
            handled++;
            goto done;
        }
        if (!IS_ALPHA(*s))
            goto done;
        {
            const char *n0 = s, *n1 = s;
            while (n1 < e && IS_WORD(*n1))
                n1++;
            if (n1 >= e || *n1 != '(')
                goto done;
            int64_t a[3];
            int nargs;
            if (ends_with(n1, e, " <unfinished ...>")) {
                const char *stop = e - 17;
                const char *close = walk_args(n1 + 1, stop, a, &nargs);
                if (close != NULL)
                    goto done;
                /* the arguments printed so far: walk_args stopped at the end, so read them again */
                int depth = 0, k = 0;
                const char *st = n1 + 1, *q = n1 + 1;
                a[0] = a[1] = a[2] = 0;
                for (; q < stop; q++) {
                    char c = *q;
                    if (c == '"') {
                        q = end_of_quoted(q, stop);
                    } else if (c == '(' || c == '[' || c == '{') depth++;
                    else if (c == ')' || c == ']' || c == '}') depth--;
                    else if (c == ',' && depth == 0) {
                        if (k < 3)
                            a[k] = arg_value(st, q);
                        k++;
                        st = q + 1;
                    }
                }
                if (k < 3 && depth == 0 && q > st)
                    a[k] = arg_value(st, q);
                put_str(o, i, 0, n0, n1);
                o->a0[i] = a[0];
                o->a1[i] = a[1];
                o->a2[i] = a[2];
                o->kind[i] = SCAN_UNFINISHED;
                handled++;
                goto done;
            }
            const char *close = walk_args(n1 + 1, e, a, &nargs);
            if (close == NULL || !strace_result(o, i, close + 1, e, &en0, &en1))
                goto done;
            put_str(o, i, 0, n0, n1);
            if (en0 != NULL)
                put_str(o, i, 1, en0, en1);
            o->a0[i] = a[0];
            o->a1[i] = a[1];
            o->a2[i] = a[2];
            o->kind[i] = SCAN_CALL;
            handled++;
        }
    done:
        if (o->kind[i] == 0) {
            o->tkind[i] = 0;
            o->has_ret[i] = 0;
            o->aux_len[i] = 0;
        }
        p = next;
        i++;
    }
    return handled;
}

/* truss(1), FreeBSD form: "[pid[ tid]: ][time ][time ]name(args)<tabs> = N (0xN)", " ERR#n 'text'",
 * " ERESTART", " EJUSTRETURN", or nothing (the call ended the thread). Left to Python: kevent and
 * getrusage (their arguments carry notifications and rusage), first arguments printed as symbols,
 * aio calls whose aiocb is not printed as a struct, and every other line kind. tkind = the number of
 * time columns (ts = the first, dur = the second). For aio calls the aiocb's buffer (the third
 * member) is the id and replaces the aiocb argument. */
static int is_aio_arg0(const char *n, size_t len)
{
    static const char *names[] = {"aio_read", "aio_write", "aio_error", "aio_return", "aio_mlock",
                                  "aio_waitcomplete", NULL};
    for (int k = 0; names[k]; k++)
        if (strlen(names[k]) == len && memcmp(n, names[k], len) == 0)
            return 1;
    return 0;
}

/* The buffer member of a printed aiocb "{ fd,offset,buf,nbytes,LIO_x,{ ... } }": 1 when found. */
static int aiocb_buf(const char *p, const char *e, int64_t *buf)
{
    p = skip_spaces(p, e);
    if (e - p < 2 || p[0] != '{' || p[1] != ' ')
        return 0;
    p += 2;
    for (int field = 0; field < 2; field++) { /* fd, offset: -?decimal */
        int64_t v;
        if (p < e && *p == '-')
            p++;
        const char *q = digits(p, e, &v);
        if (q == NULL || q >= e || *q != ',')
            return 0;
        p = q + 1;
    }
    const char *q;
    if (e - p >= 4 && memcmp(p, "NULL", 4) == 0) {
        *buf = 0;
        q = p + 4;
    } else if (e - p >= 2 && p[0] == '0' && p[1] != 'x') {
        *buf = 0;
        q = p + 1;
    } else {
        if (e - p < 3 || p[0] != '0' || p[1] != 'x')
            return 0;
        q = cnum(p, e, buf);
    }
    if (q == NULL || q >= e || *q != ',')
        return 0;
    int64_t nbytes;
    q = digits(q + 1, e, &nbytes); /* nbytes, then the LIO opcode word */
    if (q == NULL || q >= e || *q != ',')
        return 0;
    const char *w = ++q;
    while (q < e && IS_WORD(*q))
        q++;
    return q > w && q < e && *q == ',';
}

/* A kevent eventlist as truss prints it, "{ ident,FILTER,flags,fflags,data,udata ... }": one note
 * per EVFILT_AIO/EVFILT_LIO element (line, ident, data, err = data when EV_ERROR, udata). 0 when
 * an element is not plain numbers (Python reads the line then); no note is kept in that case. */
static int is_sym_char(char c) { return IS_WORD(c); }

static int field_num(const char *p, const char *e, int64_t *v, int allow_sym)
{
    if (p < e && IS_ALPHA(*p)) {
        if (!allow_sym)
            return 0;
        for (const char *q = p; q < e; q++)
            if (!is_sym_char(*q))
                return 0;
        return -1; /* a symbol: Python's table */
    }
    const char *q = cnum(p, e, v);
    if (q == NULL || q != e) {
        *v = 0; /* not a number: 0, as the reader's to_int()/table give */
        return (q == NULL && p < e && (IS_DIGIT(*p) || *p == '-')) ? 0 : 1;
    }
    return 1;
}

static int all_digits_(const char *p, const char *e)
{
    for (; p < e; p++)
        if (!IS_DIGIT(*p))
            return 0;
    return 1;
}

static int digits_between(const char *p, const char *e)
{
    return p < e && all_digits_(p, e);
}

/* The thread/process/signal lines truss prints (the Python reader's OTHER pattern), exactly. */
static int truss_other(const char *s, const char *e)
{
    while (e > s && IS_SPACE(e[-1]))
        e--;
#define STARTS(lit) ((size_t)(e - s) >= sizeof(lit) - 1 && memcmp(s, lit, sizeof(lit) - 1) == 0)
    if (STARTS("<new thread ") && e[-1] == '>')
        return digits_between(s + 12, e - 1);
    if (STARTS("<thread ") && (size_t)(e - s) > 16 && memcmp(e - 8, " exited>", 8) == 0)
        return digits_between(s + 8, e - 8);
    if ((size_t)(e - s) == 13 && memcmp(s, "<new process>", 13) == 0)
        return 1;
    if (STARTS("process exit, rval = "))
        return digits_between(s + 21, e);
    if (STARTS("process killed, signal = ")) {
        const char *q = s + 25;
        if ((size_t)(e - q) > 14 && memcmp(e - 14, " (core dumped)", 14) == 0)
            return digits_between(q, e - 14);
        return digits_between(q, e);
    }
    if (STARTS("SIGNAL ")) { /* SIGNAL N (NAME)... */
        const char *q = s + 7, *d = q;
        while (q < e && IS_DIGIT(*q))
            q++;
        if (q == d || e - q < 4 || q[0] != ' ' || q[1] != '(')
            return 0;
        const char *w = q + 2;
        q = w;
        while (q < e && IS_WORD(*q))
            q++;
        return q > w && q < e && *q == ')';
    }
#undef STARTS
    return 0;
}

static int truss_kevents(struct scan_out *o, int64_t i, const char *p, const char *e)
{
    int64_t start_n = o->note_n;
    while (p < e && IS_SPACE(*p))
        p++;
    while (e > p && IS_SPACE(e[-1]))
        e--;
    if (p >= e || *p != '{' || e[-1] != '}')
        return 1; /* not a list: no notes */
    p++;
    e--;
    while (p < e) {
        while (p < e && IS_SPACE(*p))
            p++;
        if (p >= e)
            break;
        const char *tok = p;
        while (p < e && !IS_SPACE(*p))
            p++;
        const char *f[7];
        const char *fe[7];
        int nf = 0;
        const char *s = tok;
        for (const char *q = tok; q <= p; q++) {
            if (q == p || *q == ',') {
                if (nf < 7) {
                    f[nf] = s;
                    fe[nf] = q;
                }
                nf++;
                s = q + 1;
            }
        }
        if (nf != 6)
            continue;
        size_t flen = (size_t)(fe[1] - f[1]);
        if (!((flen == 10 && memcmp(f[1], "EVFILT_AIO", 10) == 0) || (flen == 10 && memcmp(f[1], "EVFILT_LIO", 10) == 0)))
            continue;
        int64_t ident, data, udata;
        if (field_num(f[0], fe[0], &ident, 0) != 1 || field_num(f[4], fe[4], &data, 1) != 1 ||
            field_num(f[5], fe[5], &udata, 1) != 1 || o->note_n >= o->note_cap) {
            o->note_n = start_n;
            return 0;
        }
        int err = 0;
        for (const char *q = f[2]; q + 8 <= fe[2]; q++)
            if (memcmp(q, "EV_ERROR", 8) == 0) {
                err = 1;
                break;
            }
        int64_t k = o->note_n++;
        o->note_line[k] = i;
        o->note_ident[k] = ident;
        o->note_data[k] = data;
        o->note_err[k] = err ? data : 0;
        o->note_udata[k] = udata;
    }
    return 1;
}

int64_t scan_truss(const char *buf, int64_t len, struct scan_out *o)
{
    const char *p = buf, *end = buf + len;
    int64_t i = 0, handled = 0;
    while (p < end && i < o->n) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        const char *s = p;
        o->kind[i] = 0;
        o->dur[i] = -1;
        if (nl == NULL)
            goto done;
        while (e > s && e[-1] == '\r')
            e--;
        s = skip_spaces(s, e);
        int64_t v;
        if (s < e && IS_DIGIT(*s)) { /* "pid[ tid]: " */
            const char *q = digits(s, e, &v);
            if (q == NULL)
                goto done;
            const char *r = q;
            int64_t tid = v;
            const char *sp = r;
            while (sp < e && *sp == ' ')
                sp++;
            if (sp > r && sp < e && IS_DIGIT(*sp)) { /* "pid tid:" (truss -H pads the columns) */
                r = digits(sp, e, &tid);
                if (r == NULL)
                    goto done;
            }
            if (r < e && *r == ':' && r + 1 < e && r[1] == ' ') {
                o->pid[i] = v;
                o->tid[i] = tid;
                s = r + 2;
            } else if (!(q < e && *q == '.')) {
                goto done; /* digits, but neither a prefix nor a time column */
            }
        }
        int ncols = 0;
        while (s < e && IS_DIGIT(*s)) { /* -d / -D time columns */
            int64_t ns;
            const char *q = seconds(s, e, &ns);
            if (q == NULL || q >= e || *q != ' ' || ncols == 2)
                goto done;
            if (ncols == 0)
                o->ts[i] = ns;
            else
                o->dur[i] = ns;
            ncols++;
            s = q + 1;
        }
        if (s < e && truss_other(s, e)) { /* <new thread N>, process exit, SIGNAL ...: counted */
            o->kind[i] = SCAN_TYPE;
            handled++;
            goto done;
        }
        if (s >= e || !IS_ALPHA(*s))
            goto done;
        const char *n0 = s, *n1 = s;
        while (n1 < e && (IS_WORD(*n1) || *n1 == '.' || *n1 == '#'))
            n1++;
        if (n1 >= e || *n1 != '(')
            goto done;
        size_t nlen = (size_t)(n1 - n0);
        int is_kevent = (nlen == 6 && memcmp(n0, "kevent", 6) == 0) || (nlen == 15 && memcmp(n0, "compat11.kevent", 15) == 0);
        int is_rusage = nlen == 9 && memcmp(n0, "getrusage", 9) == 0;
        if (nlen == 4 && memcmp(n0, "kaio", 4) == 0)
            goto done;
        /* arguments: the first three, each a number (a symbol sends the line to Python) */
        const char *args = n1 + 1, *close = NULL;
        const char *st = args, *q;
        int depth = 0, k = 0;
        int64_t a[3] = {0, 0, 0};
        const char *arg_at[4] = {NULL, NULL, NULL, NULL}, *arg_end[4] = {NULL, NULL, NULL, NULL};
        for (q = args; q < e; q++) {
            char c = *q;
            if (c == '"') {
                q = end_of_quoted(q, e);
                if (q >= e)
                    goto done;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if ((c == ')' || c == ']' || c == '}') && depth > 0) {
                depth--;
            } else if (c == ')' && depth == 0) {
                close = q;
                break;
            } else if (c == ',' && depth == 0) {
                if (k < 4) {
                    arg_at[k] = st;
                    arg_end[k] = q;
                }
                k++;
                st = q + 1;
            }
        }
        if (close == NULL)
            goto done;
        if (close > args && k < 4) {
            arg_at[k] = st;
            arg_end[k] = close;
        }
        int nargs = close > args ? k + 1 : 0;
        /* the result must follow the closing parenthesis and end the line: otherwise the ')' we
         * stopped at was inside an argument Python must read */
        const char *r = close + 1;
        while (r < e && (*r == ' ' || *r == '\t'))
            r++;
        const char *ea = NULL, *ee = NULL; /* the errno (as digits) of an error result */
        o->has_ret[i] = 1;
        if (r == e) {
            o->has_ret[i] = 0;
        } else if (*r == '=' && r + 1 < e && r[1] == ' ') {
            const char *q2 = cnum(r + 2, e, &v);
            if (q2 == NULL || e - q2 < 5 || memcmp(q2, " (0x", 4) != 0 || e[-1] != ')')
                goto done;
            o->ret[i] = v;
            if (is_kevent && nargs >= 4) { /* the eventlist: a0 = kq, a2 = nchanges, one note per AIO event */
                int64_t kq, nch;
                if (field_num(skip_spaces(arg_at[0], arg_end[0]), arg_end[0], &kq, 0) != 1 ||
                    field_num(skip_spaces(arg_at[2], arg_end[2]), arg_end[2], &nch, 0) != 1)
                    goto done;
                if (!truss_kevents(o, i, arg_at[3], arg_end[3]))
                    goto done;
                o->a0[i] = kq;
                o->a1[i] = 0;
                o->a2[i] = nch;
                o->tkind[i] = (int8_t)ncols;
                put_str(o, i, 0, n0, n1);
                o->kind[i] = SCAN_CALL;
                handled++;
                goto done;
            }
        } else if (e - r > 4 && memcmp(r, "ERR#", 4) == 0) {
            const char *q2 = digits(r + 4, e, &v);
            if (q2 == NULL || (q2 != e && !(e - q2 >= 3 && q2[0] == ' ' && q2[1] == '\'' && e[-1] == '\'')))
                goto done;
            o->ret[i] = -1;
            ea = r + 4;
            ee = q2;
        } else if (e - r == 8 && memcmp(r, "ERESTART", 8) == 0) {
            o->ret[i] = -1;
            ea = "-1"; /* ERESTART */
            ee = ea + 2;
        } else if (e - r == 11 && memcmp(r, "EJUSTRETURN", 11) == 0) {
            o->ret[i] = -1;
            ea = "-2"; /* EJUSTRETURN */
            ee = ea + 2;
        } else {
            goto done;
        }
        int aio = is_aio_arg0(n0, nlen);
        int pos = aio ? 0 : -1;
        if ((nlen == 10 && memcmp(n0, "aio_cancel", 10) == 0) || (nlen == 9 && memcmp(n0, "aio_fsync", 9) == 0))
            pos = 1;
        for (int j = 0; j < 3; j++) {
            if (arg_at[j] == NULL)
                break;
            if (j == pos) {
                int64_t b;
                if (!aiocb_buf(arg_at[j], arg_end[j], &b))
                    goto done_reset;
                a[j] = b;
                o->id[i] = b;
                continue;
            }
            const char *x = skip_spaces(arg_at[j], arg_end[j]);
            const char *xe = arg_end[j];
            while (xe > x && IS_SPACE(xe[-1]))
                xe--;
            int ovf = 0;
            a[j] = tok_value(o, x, xe, &ovf);
            if (ovf)
                goto done_reset;
        }
        if (pos >= 0 && arg_at[pos] == NULL)
            goto done_reset;
        o->a0[i] = a[0];
        o->a1[i] = a[1];
        o->a2[i] = a[2];
        if (is_rusage && arg_at[1] != NULL && o->has_ret[i] && ea == NULL) {
            /* getrusage's "{ u=...,s=...,in=N,out=M }": the exit row carries in/out */
            int64_t rin = 0, rout = 0;
            const char *x = arg_at[1], *xe = arg_end[1], *hit = NULL;
            for (const char *q3 = x; q3 + 3 <= xe; q3++)
                if (memcmp(q3, "in=", 3) == 0) {
                    hit = q3;
                    break;
                }
            if (hit != NULL) {
                const char *y = hit + 3;
                int neg = (y < xe && *y == '-');
                const char *y2 = digits(y + neg, xe, &rin);
                if (y2 == NULL || xe - y2 < 5 || memcmp(y2, ",out=", 5) != 0)
                    goto done_reset;
                y = y2 + 5;
                int neg2 = (y < xe && *y == '-');
                if (digits(y + neg2, xe, &rout) == NULL)
                    goto done_reset;
                o->x0[i] = neg ? -rin : rin;
                o->x1[i] = neg2 ? -rout : rout;
            }
        }
        o->tkind[i] = (int8_t)ncols;
        put_str(o, i, 0, n0, n1);
        if (ea != NULL)
            put_str(o, i, 1, ea, ee);
        o->kind[i] = SCAN_CALL;
        handled++;
        goto done;
    done_reset:
    done:
        if (o->kind[i] == 0) {
            o->tkind[i] = 0;
            o->has_ret[i] = 0;
            o->aux_len[i] = 0;
            o->pid[i] = o->tid[i] = o->id[i] = o->ret[i] = o->x0[i] = o->x1[i] = 0;
            o->dur[i] = -1;
        }
        p = next;
        i++;
    }
    return handled;
}

/* kdump(1): "pid[:lwp] [tid] comm [time ...] [cpu] TYPE [ABI] rest" (FreeBSD -H -T/-E/-R -c -A,
 * DragonFly pid:lwp; OpenBSD/NetBSD the same shape). The command name may hold spaces: as the
 * Python reader's lazy regex does, the shortest name after which time columns, an optional CPU
 * column and a record type follow wins; a digits token after the pid is a tid when a record can
 * follow it. CALL and RET records (numeric arguments), other record types and continuation lines
 * are read here; kevent structs, symbolic arguments, "Events dropped." and anything else go to
 * Python. tkind = the number of time columns, ts = the first one. */
#define TOK_MAX 64

static int is_type(const char *p, const char *e, int *code)
{
    static const char *types[] = {"CALL", "RET", "NAMI", "GIO", "PSIG", "CSW", "USER", "STRU", "SCTL", "CAP",
                                  "PFLT", "PRET", "ARGS", "ENV", "EMUL", NULL};
    size_t n = (size_t)(e - p);
    for (int k = 0; types[k]; k++)
        if (strlen(types[k]) == n && memcmp(p, types[k], n) == 0) {
            *code = k;
            return 1;
        }
    if (n > 9 && memcmp(p, "UNKNOWN(", 8) == 0 && e[-1] == ')') {
        for (const char *q = p + 8; q < e - 1; q++)
            if (!IS_DIGIT(*q))
                return 0;
        *code = 99;
        return 1;
    }
    return 0;
}

static int is_ts_tok(const char *p, const char *e)
{
    int64_t ns;
    if (p < e && *p == '-')
        p++;
    return seconds(p, e, &ns) == e;
}

static int all_digits(const char *p, const char *e)
{
    if (p == e)
        return 0;
    for (; p < e; p++)
        if (!IS_DIGIT(*p))
            return 0;
    return 1;
}

/* name[num](args) or name[num] value: the name part; returns its end (at '[' / '(' / space). */
static const char *kd_name(const char *p, const char *e, const char **name_end)
{
    const char *q = p;
    while (q < e && (IS_WORD(*q) || *q == '.'))
        q++;
    *name_end = q;
    if (q < e && *q == '[') {
        const char *r = q + 1;
        while (r < e && IS_DIGIT(*r))
            r++;
        if (r == q + 1 || r >= e || *r != ']')
            return NULL;
        q = r + 1;
    }
    return q;
}

static int kd_aio_arg(const char *n, size_t len)
{
    static const char *arg0[] = {"aio_read", "aio_write", "aio_readv", "aio_writev", "aio_error", "aio_return",
                                 "aio_mlock", "compat6.aio_read", "compat6.aio_write", "compat6.aio_error",
                                 "compat6.aio_return", NULL};
    for (int k = 0; arg0[k]; k++)
        if (strlen(arg0[k]) == len && memcmp(n, arg0[k], len) == 0)
            return 0;
    if ((len == 10 && memcmp(n, "aio_cancel", 10) == 0) || (len == 9 && memcmp(n, "aio_fsync", 9) == 0))
        return 1;
    return -1;
}

/* kdump's struct kevent elements in [p, e): "{ ident=I, filter=F, flags=FL, fflags=FF, data=D,
 * udata=U }" (the Python reader's KEV pattern, element by element); one note per EVFILT_AIO /
 * EVFILT_LIO element, with the flags (the number before any <NAMES>). Returns 0 when an element
 * does not complete on this text or a number needs more than 64 bits (Python reads the group). */
static const char *kev_field(const char *p, const char *e, const char *label, const char **v0, const char **v1,
                             char stop)
{
    size_t n = strlen(label);
    if ((size_t)(e - p) < n || memcmp(p, label, n) != 0)
        return NULL;
    p += n;
    const char *s = p;
    while (p < e && *p != stop)
        p++;
    if (p == s || p >= e)
        return NULL;
    *v0 = s;
    *v1 = p;
    return p;
}

static int kev_num(const char *p, const char *e, int64_t *v)
{
    while (p < e && IS_SPACE(*p))
        p++;
    while (e > p && IS_SPACE(e[-1]))
        e--;
    const char *q = cnum(p, e, v);
    if (q == e)
        return 1;
    *v = 0;
    /* digits that overflow: Python wraps them; let it */
    return !(q == NULL && p < e && (IS_DIGIT(*p) || (*p == '-' && p + 1 < e && IS_DIGIT(p[1]))));
}

static int kdump_kevents(struct scan_out *o, int64_t line, const char *p, const char *e)
{
    for (;;) {
        const char *s = NULL;
        for (const char *q = p; q + 8 <= e; q++)
            if (memcmp(q, "{ ident=", 8) == 0) {
                s = q;
                break;
            }
        if (s == NULL)
            return 1;
        const char *v[6][2];
        const char *q = s + 2;
        static const char *labels[6] = {"ident=", ", filter=", ", flags=", ", fflags=", ", data=", ", udata="};
        for (int f = 0; f < 6 && q != NULL; f++)
            q = kev_field(q, e, labels[f], &v[f][0], &v[f][1], f == 5 ? ' ' : ',');
        if (q == NULL || e - q < 2 || q[0] != ' ' || q[1] != '}')
            return 0; /* an element that does not complete here */
        p = q + 2;
        size_t fl = (size_t)(v[1][1] - v[1][0]);
        if (!(fl == 10 && (memcmp(v[1][0], "EVFILT_AIO", 10) == 0 || memcmp(v[1][0], "EVFILT_LIO", 10) == 0)))
            continue;
        const char *fe = v[2][0];
        while (fe < v[2][1] && *fe != '<')
            fe++;
        int64_t ident, flags, data, udata;
        if (!kev_num(v[0][0], v[0][1], &ident) || !kev_num(v[2][0], fe, &flags) || !kev_num(v[4][0], v[4][1], &data) ||
            !kev_num(v[5][0], v[5][1], &udata) || o->note_n >= o->note_cap)
            return 0;
        int64_t k = o->note_n++;
        o->note_line[k] = line;
        o->note_ident[k] = ident;
        o->note_data[k] = data;
        o->note_err[k] = (flags & 0x4000) ? data : 0; /* EV_ERROR: data is the errno */
        o->note_udata[k] = udata;
        o->note_flags[k] = flags;
    }
}

int64_t scan_kdump(const char *buf, int64_t len, struct scan_out *o)
{
    const char *p = buf, *end = buf + len;
    int64_t i = 0, handled = 0;
    int seen_record = 0;
    int64_t kev_group = -1; /* the struct kevent[] record whose element lines follow */
    while (p < end && i < o->n) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        const char *ts0[TOK_MAX], *te0[TOK_MAX];
        int nt = 0;
        o->kind[i] = 0;
        o->dur[i] = -1;
        if (nl == NULL)
            goto done;
        while (e > p && e[-1] == '\r')
            e--;
        if (ends_with(p, e, "Events dropped.") || ends_with(p, e, "Events dropped. ")) {
            if (kev_group >= 0)
                o->has_ret[kev_group] = 2;
            goto done;
        }
        /* tokens */
        for (const char *q = p; q < e && nt < TOK_MAX;) {
            while (q < e && (IS_SPACE(*q) || *q == '\f' || *q == '\v'))
                q++;
            if (q >= e)
                break;
            ts0[nt] = q;
            while (q < e && !(IS_SPACE(*q) || *q == '\f' || *q == '\v'))
                q++;
            te0[nt++] = q;
        }
        {
            /* pid[:lwp], then [tid] name... as the reader's regex: a tid when a record can follow */
            int64_t pid = 0, lwp = 0, htid = 0, v;
            int has_lwp = 0, has_htid = 0, type = -1, tpos = -1, ncols = 0, first_ts = -1;
            if (nt < 3)
                goto notrec;
            const char *q = digits(ts0[0], te0[0], &pid);
            if (q == NULL)
                goto notrec;
            if (q < te0[0]) {
                if (*q != ':' || digits(q + 1, te0[0], &lwp) != te0[0])
                    goto notrec;
                has_lwp = 1;
            }
            for (int with_tid = 1; with_tid >= 0 && tpos < 0; with_tid--) {
                int cs = with_tid ? 2 : 1;
                if (with_tid && (!all_digits(ts0[1], te0[1]) || digits(ts0[1], te0[1], &htid) == NULL))
                    continue;
                for (int L = 1; cs + L < nt && tpos < 0; L++) { /* the shortest name first */
                    int k = cs + L, nc = 0, code;
                    while (k < nt && is_ts_tok(ts0[k], te0[k])) {
                        k++;
                        nc++;
                    }
                    if (k < nt && is_type(ts0[k], te0[k], &code))
                        tpos = k;
                    else if (k + 1 < nt && all_digits(ts0[k], te0[k]) && is_type(ts0[k + 1], te0[k + 1], &code))
                        tpos = k + 1; /* a CPU column (-c) before the type */
                    if (tpos >= 0) {
                        type = code;
                        ncols = nc;
                        first_ts = cs + L;
                        has_htid = with_tid;
                    }
                }
            }
            if (tpos < 0)
                goto notrec;
            if (ncols > 0) {
                int64_t ns;
                const char *a = ts0[first_ts];
                int neg = (*a == '-');
                if (seconds(a + neg, te0[first_ts], &ns) == NULL)
                    goto notrec;
                o->ts[i] = neg ? -ns : ns;
            }
            if (ncols > 127)
                goto notrec;
            int64_t t = has_lwp ? lwp : (has_htid ? htid : 0);
            o->pid[i] = pid;
            o->tid[i] = t ? t : pid;
            o->tkind[i] = (int8_t)ncols;
            /* ABI column after the type, then the rest of the line as printed */
            const char *rest = te0[tpos];
            rest = skip_spaces(rest, e);
            if (e - rest >= 4 && (rest[0] == 'F' || rest[0] == 'L' || rest[0] == 'U') &&
                ((rest[1] == '6' && rest[2] == '4') || (rest[1] == '3' && rest[2] == '2') ||
                 (rest[1] == '0' && rest[2] == '0')) && IS_SPACE(rest[3]))
                rest = skip_spaces(rest + 3, e);
            const char *re_ = e;
            while (re_ > rest && IS_SPACE(re_[-1]))
                re_--;
            seen_record = 1;
            kev_group = -1;
            if (type == 0) { /* CALL name[num](args) */
                const char *n1, *q2 = kd_name(rest, re_, &n1);
                if (q2 == NULL || q2 >= re_ || *q2 != '(' || re_[-1] != ')')
                    goto record_to_python;
                int64_t a[3] = {0, 0, 0};
                const char *st = q2 + 1, *stop = re_ - 1;
                int na = 0;
                for (const char *c = st; c <= stop && na < 3; c++) {
                    if (c == stop || *c == ',') {
                        const char *x = skip_spaces(st, c), *xe = c;
                        while (xe > x && IS_SPACE(xe[-1]))
                            xe--;
                        int ovf = 0;
                        a[na++] = tok_value(o, x, xe, &ovf);
                        if (ovf)
                            goto record_to_python;
                        st = c + 1;
                        if (c == stop)
                            break;
                    }
                }
                if (n1 == rest) /* no name, only [num]: Python names it */
                    goto record_to_python;
                int aio = kd_aio_arg(rest, (size_t)(n1 - rest));
                o->id[i] = aio == 0 ? a[0] : (aio == 1 ? a[1] : 0);
                o->a0[i] = a[0];
                o->a1[i] = a[1];
                o->a2[i] = a[2];
                put_str(o, i, 0, rest, n1);
                o->kind[i] = SCAN_CALL;
            } else if (type == 1) { /* RET name[num] value */
                const char *n1, *q2 = kd_name(rest, re_, &n1);
                if (q2 == NULL || q2 >= re_ || !IS_SPACE(*q2) || n1 == rest)
                    goto record_to_python;
                const char *val = skip_spaces(q2, re_);
                if (re_ - val == 7 && memcmp(val, "RESTART", 7) == 0) {
                    o->ret[i] = -1;
                    o->err[i] = -1;
                } else if (re_ - val == 10 && memcmp(val, "JUSTRETURN", 10) == 0) {
                    o->ret[i] = 0;
                    o->err[i] = -2;
                } else if (re_ - val > 9 && memcmp(val, "-1 errno ", 9) == 0) {
                    const char *d = val + 9;
                    int neg = (*d == '-');
                    const char *d2 = digits(d + neg, re_, &v);
                    if (d2 == NULL || (d2 != re_ && *d2 != ' '))
                        goto record_to_python;
                    o->ret[i] = -1;
                    o->err[i] = neg ? -v : v;
                } else {
                    const char *d = cnum(val, re_, &v);
                    if (d == NULL)
                        goto record_to_python;
                    if (d < re_) {
                        int64_t h;
                        if (*d != '/' || d + 3 > re_ || d[1] != '0' || d[2] != 'x' || cnum(d + 1, re_, &h) != re_)
                            goto record_to_python;
                    }
                    if (val[0] == '-' && val[1] == '0')
                        goto record_to_python; /* -0x...: not a kdump value */
                    o->ret[i] = v;
                }
                o->has_ret[i] = 1;
                put_str(o, i, 0, rest, n1);
                o->kind[i] = SCAN_RET;
            } else {
                if (type == 7 && re_ - rest >= 13 && memcmp(rest, "struct kevent", 13) == 0) {
                    kev_group = i;
                    o->has_ret[i] = kdump_kevents(o, i, rest, re_) ? 1 : 2; /* 2: Python re-reads the group */
                    o->kind[i] = SCAN_KEVSTRU;
                    handled++;
                    goto done;
                }
                put_str(o, i, 1, ts0[tpos], te0[tpos]);
                o->kind[i] = SCAN_TYPE;
            }
            handled++;
            goto done;
        record_to_python:
            o->pid[i] = o->tid[i] = o->id[i] = o->a0[i] = o->a1[i] = o->a2[i] = o->ret[i] = o->err[i] = 0;
            o->tkind[i] = 0;
            o->has_ret[i] = 0;
            goto done;
        }
    notrec:
        /* continuation of a record (GIO data, STRU elements, ARGS): leading white space. Left to
         * Python: blank lines, elision marks, "Events dropped.", digits first (maybe a record) */
        if (seen_record && nt > 0 && p < e && (*p == ' ' || *p == '\t') && !all_digits(ts0[0], te0[0]) &&
            !(*ts0[0] == '.' || *ts0[0] == '[' || *ts0[0] == '(' || *ts0[0] == '<') &&
            !ends_with(p, e, "Events dropped.")) {
            o->kind[i] = SCAN_CONT;
            handled++;
            if (kev_group >= 0 && e - p >= 13 && memcmp(p, "             ", 13) == 0 &&
                !kdump_kevents(o, kev_group, p, e))
                o->has_ret[kev_group] = 2;
        } else if (kev_group >= 0 && nt > 0) {
            o->has_ret[kev_group] = 2; /* a line Python reads inside the group: it re-reads it all */
        }
    done:
        p = next;
        i++;
    }
    return handled;
}

/* dtrace(1) output: the class of every line, as tracer/parse/dtrace.py's arrow classifier gives it
 * (codes of dtrace.py: 0 other, 1 blank, 2 event line, 3 histogram row, 4 stack frame, 5 values
 * only), and for histogram rows the label (a0 = 0 plain, 1 "< n", 2 ">= n"; a1 = n) and count
 * (ret). -1: a line this scanner leaves to the arrow classifier (a '|' that is not a histogram
 * row, " Distribution ", non-ASCII bytes). A number of 19 or more digits is never a histogram
 * row's (the classifier's rule too). */
#define D_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\f' || (c) == '\r')

static int d_int(const char *p, const char *e, int64_t *v)
{
    int neg = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= e || e - p > 18)
        return 0;
    int64_t x = 0;
    for (const char *q = p; q < e; q++) {
        if (!IS_DIGIT(*q))
            return 0;
        x = x * 10 + (*q - '0');
    }
    *v = neg ? -x : x;
    return 1;
}

static int d_hist(const char *p, const char *e, int64_t *kind, int64_t *label, int64_t *count)
{
    while (p < e && D_WS(*p))
        p++;
    *kind = 0;
    if (p < e && *p == '<') {
        *kind = 1;
        p++;
        if (p < e && *p == ' ')
            p++;
    } else if (e - p >= 2 && p[0] == '>' && p[1] == '=') {
        *kind = 2;
        p += 2;
        if (p < e && *p == ' ')
            p++;
    }
    const char *l0 = p;
    if (p < e && *p == '-')
        p++;
    while (p < e && IS_DIGIT(*p))
        p++;
    if (!d_int(l0, p, label))
        return 0;
    while (e > p && D_WS(e[-1]))
        e--;
    const char *c1 = e, *c0 = e;
    while (c0 > p && IS_DIGIT(c0[-1]))
        c0--;
    if (c0 > p && c0[-1] == '-')
        c0--;
    if (!d_int(c0, c1, count))
        return 0;
    /* between: ws+, then only | @ space (a '|' in it, only @/space after the last '|'), then ws+ */
    const char *q0 = p, *q1 = c0;
    if (q1 - q0 < 3 || !D_WS(q0[0]) || !D_WS(q1[-1]))
        return 0;
    while (q0 < q1 && D_WS(*q0))
        q0++;
    while (q1 > q0 && D_WS(q1[-1]))
        q1--;
    int bars = 0, after_last_bar_ok = 1;
    for (const char *q = q0; q < q1; q++) {
        if (*q == '|') {
            bars++;
            after_last_bar_ok = 1;
        } else if (*q != '@' && *q != ' ')
            return 0;
    }
    (void)after_last_bar_ok;
    return bars > 0;
}

/* The line [p, e) ends with white space, -?digits[, white space, digits[.digits]%], white space
 * (the classifier's \s-?\d+(\s+\d+(\.\d+)?%)?\s*$). */
static int ws_int_before(const char *p, const char *u)
{
    const char *y = u;
    while (y > p && IS_DIGIT(y[-1]))
        y--;
    if (y == u)
        return 0;
    if (y > p && y[-1] == '-')
        y--;
    return y > p && D_WS(y[-1]);
}

static int ends_with_count(const char *p, const char *e)
{
    const char *t = e;
    while (t > p && D_WS(t[-1]))
        t--;
    if (ws_int_before(p, t))
        return 1;
    if (t > p && t[-1] == '%') {
        const char *w = t - 1, *d = w;
        while (w > p && IS_DIGIT(w[-1]))
            w--;
        if (w == d)
            return 0;
        if (w > p && w[-1] == '.') {
            const char *w2 = w - 1;
            while (w2 > p && IS_DIGIT(w2[-1]))
                w2--;
            if (w2 < w - 1)
                w = w2;
        }
        if (!(w > p && D_WS(w[-1])))
            return 0;
        const char *x = w;
        while (x > p && D_WS(x[-1]))
            x--;
        return ws_int_before(p, x);
    }
    return 0;
}

static int d_frame(const char *p, const char *e)
{
    if (p >= e || !D_WS(*p))
        return 0;
    const char *s = p;
    while (s < e && D_WS(*s))
        s++;
    if (s >= e)
        return 0;
    if ((*s == '#' || *s == '$') && s + 1 < e && s[1] == ' ')
        return 0; /* a shell prompt */
    if (ends_with_count(p, e))
        return 0; /* "unix`cpu_halt   12345[  0.1%]": a printa row of @[func(arg0)], not a frame */
    /* module`function... */
    if (*s != '`') {
        const char *b = memchr(s, '`', (size_t)(e - s));
        if (b != NULL && b + 1 < e && !D_WS(b[1]))
            return 1;
    }
    /* 0xaddr */
    if (e - s > 2 && s[0] == '0' && s[1] == 'x') {
        const char *q = s + 2;
        while (q < e && ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') || (*q >= 'A' && *q <= 'F')))
            q++;
        const char *r = q;
        while (r < e && D_WS(*r))
            r++;
        if (q > s + 2 && r == e)
            return 1;
    }
    /* Java: pkg/Class.method(sig)... */
    if (IS_ALPHA(*s) || *s == '$') {
        const char *q = s + 1;
        while (q < e && (IS_WORD(*q) || *q == '$'))
            q++;
        int groups = 0;
        while (q < e && (*q == '/' || *q == '.')) {
            const char *g = ++q;
            while (q < e && (IS_WORD(*q) || *q == '$' || *q == '<' || *q == '>'))
                q++;
            if (q == g)
                return 0;
            groups++;
        }
        if (groups == 0 || q >= e || *q != '(')
            return 0;
        const char *rp = NULL;
        for (const char *r = q; r < e; r++)
            if (*r == ')')
                rp = r;
        if (rp == NULL)
            return 0;
        const char *r = rp + 1;
        while (r < e && !D_WS(*r))
            r++;
        while (r < e && D_WS(*r))
            r++;
        return r == e;
    }
    return 0;
}

static int d_values(const char *p, const char *e)
{
    if (p >= e || !D_WS(*p))
        return 0;
    while (e > p && D_WS(e[-1]))
        e--;
    int n = 0;
    while (p < e) {
        const char *s = p;
        while (p < e && D_WS(*p))
            p++;
        if (p == s)
            return 0;
        if (p < e && *p == '-')
            p++;
        const char *d = p;
        while (p < e && IS_DIGIT(*p))
            p++;
        if (p == d)
            return 0;
        n++;
    }
    return n > 0;
}

int64_t scan_dtrace(const char *buf, int64_t len, struct scan_out *o)
{
    const char *p = buf, *end = buf + len;
    int64_t i = 0;
    while (p < end && i < o->n) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        if (e > p && e[-1] == '\r')
            e--;
        int ascii = 1, bar = 0, blank = 1;
        for (const char *q = p; q < e; q++) {
            unsigned char c = (unsigned char)*q;
            if (c >= 0x80) {
                ascii = 0;
                break;
            }
            if (c == '|')
                bar = 1;
            if (!(D_WS(c) || c == '\v' || (c >= 0x1c && c <= 0x1f)))
                blank = 0;
        }
        int8_t code = 0;
        if (!ascii) {
            code = -1;
        } else if (blank) {
            code = 1;
        } else if (e - p >= 2 && p[0] == 'E' && p[1] == '\t') {
            code = 2;
        } else if (bar) {
            code = d_hist(p, e, &o->a0[i], &o->a1[i], &o->ret[i]) ? 3 : -1;
        } else if (e - p >= 14 && memmem(p, (size_t)(e - p), " Distribution ", 14) != NULL) {
            code = -1;
        } else if (d_frame(p, e)) {
            code = 4;
        } else if (d_values(p, e)) {
            code = 5;
        }
        o->kind[i] = code;
        p = next;
        i++;
    }
    return i;
}

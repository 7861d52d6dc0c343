"""cffi builder for tracer.parse._scan, the C line scanners (scan.c) of the strace, truss and
kdump parsers. Built by `pip install -e .` through setup.py's cffi_modules, beside the workload
engine; the parsers fall back to their Python line readers when it is missing."""
from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

ffibuilder = FFI()
ffibuilder.cdef("""
struct scan_out {
    int64_t n;
    int8_t *kind;
    int8_t *tkind;
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
""")
ffibuilder.set_source(
    "tracer.parse._scan",
    '#include "scan.h"',
    sources=["tracer/parse/scan.c"],  # relative to the project root, where setup.py runs
    include_dirs=[str(HERE)],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra"],
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE.parent.parent), verbose=True)

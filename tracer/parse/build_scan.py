"""cffi builder for tracer.parse._scan, the C line scanners (scan.c) of the strace, truss and
kdump parsers. Built by `pip install -e .` through setup.py's cffi_modules, beside the workload
engine; the parsers fall back to their Python line readers when it is missing."""
from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

ffibuilder = FFI()
# The declarations are scan.h's own, without its include guard and #include (cffi's cdef takes
# plain declarations and integer #defines).
ffibuilder.cdef("\n".join(line for line in (HERE / "scan.h").read_text().splitlines()
                           if not line.startswith(("#ifndef", "#include", "#endif", "#define AIOTRACE_SCAN_H"))))

ffibuilder.set_source(
    "tracer.parse._scan",
    '#include "scan.h"',
    sources=["tracer/parse/scan.c"],  # relative to the project root, where setup.py runs
    include_dirs=[str(HERE)],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra"],
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE.parent.parent), verbose=True)

"""cffi builders for workloads._engine and workloads._fbsd_model (API mode, out of line).

`pip install -e .` runs them through setup.py's cffi_modules. The C sources are the same
files the standalone program (workloads/main.c) and `make freebsd-check` compile; only
the mode files of the build OS are included.

``_fbsd_model`` (Linux only) is the same engine and the FreeBSD mode files, UNCHANGED, built as if
for FreeBSD (``-D__FreeBSD__ -U__linux__``) against the FreeBSD-shaped headers of
``workloads/fbsd_model/include`` and linked with the user-space FreeBSD kernel-semantics model
(``workloads/fbsd_model/fbsd_model.c``); ``aiotrace simulate`` runs it.
"""
from __future__ import annotations

import platform
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

CDEF = """
#define AIOT_MSG_LEN 512
#define AIOT_MAX_THREADS 64
struct aiot_spec {
    const char *mode;
    int op;
    int fsync_at_end;
    uint32_t depth;
    uint32_t batch;
    uint32_t reap_batch;
    uint32_t bs;
    uint64_t count;
    uint64_t duration_ns;
    uint64_t file_size;
    int direct;
    int random;
    uint64_t seed;
    int split;
    int lio;
    uint64_t lost_timeout_ns;
    int verify;
};
struct aiot_io_record {
    uint64_t id;
    int64_t offset;
    int64_t bytes;
    uint64_t submit_ns;
    uint64_t complete_ns;
    int64_t result;
    int64_t submit_tid;
    int64_t reap_tid;
    int32_t op;
    int32_t done;
};
struct aiot_thread_record {
    int64_t tid;
    char name[32];
    char role[16];
    int64_t inblock, oublock, utime_ns, stime_ns, nvcsw, nivcsw;
    int64_t io_read_bytes, io_write_bytes;
};
struct aiot_result {
    int status;
    uint64_t ios;
    uint64_t errors;
    int verified;
    uint64_t start_ns, stop_ns;
    uint64_t submit_calls;
    uint64_t wait_calls;
    uint64_t status_calls;
    uint64_t result_calls;
    int64_t self_utime_ns, self_stime_ns;
    int64_t self_inblock, self_oublock;
    int reap_supported;
    uint64_t n_records;
    uint32_t n_chunks;
    uint32_t chunk_size;
    struct aiot_io_record **chunks;
    uint32_t n_threads;
    uint32_t threads_dropped;
    struct aiot_thread_record threads[64];
    char message[512];
    int interrupted;
};
int aiot_prepare_file(const char *path, uint64_t file_size, int direct, uint32_t bs, int writable, int verify,
                      int *fd_out, char *msg, size_t msglen);
const char *aiot_mode_name(int index);
int aiot_mode_available(const char *mode, char *reason, size_t reasonlen);
int aiot_run(const struct aiot_spec *spec, int fd, struct aiot_result *res);
void aiot_result_free(struct aiot_result *res);
uint64_t aiot_now_ns(void);
"""


def sources_for(system: str) -> tuple[list[str], list[str]]:
    """C files and libraries of the engine for an OS (platform.system() name)."""
    common = ["engine.c", "mode_posix.c"]
    if system == "Linux":
        return common + ["mode_libaio.c", "mode_uring.c"], ["uring", "aio", "pthread", "rt"]
    if system == "FreeBSD":
        files = sorted(p.name for p in HERE.glob("mode_freebsd_*.c"))
        return common + files, ["pthread", "rt"]
    raise RuntimeError(f"aiotrace's workload engine supports Linux and FreeBSD, not {system}")


MODEL_CDEF = """
struct fbsdm_rec {
    uint64_t ts_ns;
    int64_t tid;
    int32_t kind;
    int32_t name;
    int64_t id;
    int64_t a[8];
    int64_t ret;
    int32_t err;
    int32_t aiod;
};
int fbsdm_configure(const char *kernel, int queue_per_proc);
void fbsdm_record(int on);
size_t fbsdm_records(const struct fbsdm_rec **out);
int fbsdm_jobs_alive(void);
int64_t fbsdm_pid(void);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
_sources, _libraries = sources_for(platform.system())
ffibuilder.set_source(
    "workloads._engine",
    '#include "engine.h"',
    # setuptools wants paths relative to the project root (where setup.py runs)
    sources=[f"workloads/{s}" for s in _sources],
    include_dirs=[str(HERE)],
    libraries=_libraries,
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

MODEL_DIR = HERE / "fbsd_model"
model_ffibuilder = FFI()
model_ffibuilder.cdef(CDEF + MODEL_CDEF)
if platform.system() == "Linux":
    _model_sources = ["engine.c", "mode_posix.c", *sorted(p.name for p in HERE.glob("mode_freebsd_*.c")),
                      "fbsd_model/fbsd_model.c"]
    model_ffibuilder.set_source(
        "workloads._fbsd_model",
        '#include "engine.h"\n#include "fbsd_model.h"',
        sources=[f"workloads/{s}" for s in _model_sources],
        # the model's FreeBSD-shaped headers come before the system's
        include_dirs=[str(MODEL_DIR / "include"), str(MODEL_DIR), str(HERE)],
        libraries=["pthread"],
        extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-D_GNU_SOURCE", "-U__linux__",
                            "-D__FreeBSD__=14", "-include", str(MODEL_DIR / "include" / "fbsd_model_sdt.h")],
    )

if __name__ == "__main__":  # a build without pip: python workloads/build_engine.py
    ffibuilder.compile(tmpdir=str(HERE.parent), verbose=True)
    if platform.system() == "Linux":
        model_ffibuilder.compile(tmpdir=str(HERE.parent), verbose=True)

/* Test fixture for tests/test_dscripts_bpftrace.py, built at test time into a shared object.
 *
 * It stands in for the workload's cffi extension: it exports the probe functions named in
 * tracer/base/spec.py PROBE_FUNCTIONS (non-inlined, same signatures, plus USDT probes of provider
 * "aiotrace"), and fixture_run() makes a known number of syscalls between window_start and
 * window_stop: `n` O_DIRECT pread64 calls (block I/O), then `n_uring` io_uring reads.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <liburing.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/sdt.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, used, visibility("default")))

NOINLINE void aiotrace_probe_window_start(uint64_t planned_ios) { STAP_PROBE1(aiotrace, window_start, planned_ios); __asm__ volatile(""); }
NOINLINE void aiotrace_probe_window_stop(uint64_t completed_ios) { STAP_PROBE1(aiotrace, window_stop, completed_ios); __asm__ volatile(""); }
NOINLINE void aiotrace_probe_submit(uint64_t first_id, uint32_t count, int64_t ret) { STAP_PROBE3(aiotrace, submit, first_id, count, ret); __asm__ volatile(""); }
NOINLINE void aiotrace_probe_reap(uint64_t id, int64_t result, uint32_t batch) { STAP_PROBE3(aiotrace, reap, id, result, batch); __asm__ volatile(""); }
NOINLINE void aiotrace_probe_sync(uint64_t monotonic_ns) { STAP_PROBE1(aiotrace, sync, monotonic_ns); __asm__ volatile(""); }

/* Returns 0 after O_DIRECT reads, 1 when the filesystem refused O_DIRECT (buffered reads: no
 * block I/O once cached), -1 when the file cannot be opened or io_uring cannot start. */
int fixture_run(const char *path, int n, int n_uring, uint64_t sync_ns)
{
	void *buf;
	int direct = 1;
	int fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		direct = 0;
		fd = open(path, O_RDONLY);
	}
	if (fd < 0 || posix_memalign(&buf, 4096, 4096) != 0)
		return -1;
	aiotrace_probe_sync(sync_ns);
	aiotrace_probe_window_start((uint64_t)(n + n_uring));
	for (int i = 0; i < n; i++) {
		/* Distinct offsets in a 1 MiB file: every read is a block request. */
		ssize_t r = pread(fd, buf, 4096, (off_t)(i % 256) * 4096);
		aiotrace_probe_submit((uint64_t)i, 1, r);
		aiotrace_probe_reap((uint64_t)i, r, 1);
	}
	if (n_uring > 0) {
		struct io_uring ring;
		if (io_uring_queue_init(8, &ring, 0) != 0)
			return -1;
		for (int i = 0; i < n_uring; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			struct io_uring_cqe *cqe;
			io_uring_prep_read(sqe, fd, buf, 4096, (uint64_t)((i + 7) % 256) * 4096);
			io_uring_sqe_set_data64(sqe, (uint64_t)(1000 + i));
			int s = io_uring_submit(&ring);
			aiotrace_probe_submit((uint64_t)(n + i), 1, s);
			if (io_uring_wait_cqe(&ring, &cqe) == 0) {
				aiotrace_probe_reap((uint64_t)(n + i), cqe->res, 1);
				io_uring_cqe_seen(&ring, cqe);
			}
		}
		io_uring_queue_exit(&ring);
	}
	close(-1); /* one failing syscall: EBADF */
	aiotrace_probe_window_stop((uint64_t)(n + n_uring));
	close(fd);
	free(buf);
	return direct ? 0 : 1;
}

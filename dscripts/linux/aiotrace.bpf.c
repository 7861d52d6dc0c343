// SPDX-License-Identifier: GPL-2.0
/*
 * aiotrace.bpf.c  Kernel side of the `libbpf` capture backend: syscalls, io_uring requests and
 *                 block requests of ONE process, with no uprobe at all. libbpf CO-RE, BTF-typed
 *                 raw tracepoints (tp_btf: no tracefs needed, no per-event argument copy).
 *
 * BUILD:   bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h
 *          clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -c aiotrace.bpf.c -o aiotrace.bpf.o
 *          bpftool gen skeleton aiotrace.bpf.o > aiotrace.skel.h
 *          (tracer/capture/libbpf.py builds and caches this with the consumer aiotrace-bpf.c)
 *
 * ARGS (read-only globals set by the consumer before load):
 *   target_pid   the workload's pid (TGID); every probe filters on it
 *   per_event    1: one fixed-size record per event into the ring buffer `events`;
 *                0: only in-kernel counts and log2 histograms (maps below)
 *   windowed     1: the window uprobes are attached; tidstat counts only inside the window
 *   libaio_lag   1: keep a FIFO of block completions and histogram, at each io_getevents return,
 *                completion -> harvest (the libaio free lag; O_DIRECT only: buffered reads have
 *                no block request)
 *
 * TRACES:
 *   tp_btf/sys_enter, sys_exit            every syscall of the pid (nr, args 0..3, return)
 *   tp_btf/io_uring_submit_req            request queued      (user_data, req, opcode); per-event
 *                                         only (the consumer leaves it detached for aggregate)
 *   tp_btf/io_uring_complete              CQE posted          (user_data, req, res, cflags)
 *   tp_btf/block_io_start                 request started in the submitting task (dev, sector, bytes)
 *   tp_btf/block_bio_{front,back}merge    a bio of the pid merged into a request
 *   tp_btf/block_rq_complete              completion (IRQ context) of a request the pid started,
 *                                         joined by the request pointer (not by sector)
 *   tp_btf/block_io_done                  the same for batched completions, which skip
 *                                         block_rq_complete (the first of the two wins)
 *   tp_btf/sched_process_exit             aggregate: a thread of the pid exits (its last io_uring
 *                                         completion counts are added to tidstat)
 *   uprobe aiotrace_probe_window_{start,stop}  the workload's window: two hits per run, attached
 *                                         only when the consumer is given the engine object (-u);
 *                                         never a per-I/O uprobe
 *
 * OUTPUT:
 *   per_event: struct aiot_record (72 bytes, layout in aiotrace-bpf.h and tracer/capture/libbpf.py
 *   RECORD_DTYPE) per event in the BPF ring buffer `events`, drained by aiotrace-bpf into a file.
 *   A full ring drops the record and counts it in `dropped` (the manifest's losses).
 *   always: `emitted[kind]` (per CPU) records reserved or events counted per kind; aggregate maps
 *   (the counters are per-CPU maps the consumer sums):
 *     syscalls[tid,nr], syscall_errors[tid,nr]   counts outside the window, errors from attach to
 *                                                exit (the consumer adds the window's counts)
 *     window_syscalls[tid,nr|submit flag]        counts inside the workload's window
 *     tidstat[tid,stat]                          (inside the window when windowed) io_uring
 *                                                submitted/completed/errors, block
 *                                                requests started and their bytes, in-window
 *                                                io_uring_enter calls with to_submit > 0, per thread
 *     hist[hist,key,bucket]                      log2 ns histograms: syscall duration per nr,
 *                                                block start->complete,
 *                                                libaio block completion->io_getevents harvest
 *   In per-event mode the aggregate maps are not updated (the records hold it all).
 *
 * COST: one tracepoint hit plus a 72-byte ring-buffer copy per event; the ring is drained by
 *   polling (BPF_RB_NO_WAKEUP), so no event wakes the consumer. Arguments are read by direct
 *   loads through the BTF-typed pointers (CO-RE relocated by vmlinux.h's preserve_access_index),
 *   not by bpf_probe_read helper calls. `aiotrace-bpf -s` prints each program's cost.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "aiotrace-bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_pid = 0;
const volatile __u8 per_event = 1;
const volatile __u8 libaio_lag = 0;
const volatile __u8 windowed = 0; /* the window uprobes are attached: per-thread stats count inside it only */

__u64 dropped = 0;
__u64 lag_unmatched = 0; /* io_getevents returned more events than block completions queued */
__u8 in_window = 0;      /* between the workload's window_start and window_stop */
__u64 window_ns[2] = {};     /* their times */
__u64 window_ios[2] = {};    /* planned I/Os, completed I/Os (their arguments) */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20); /* resized by the consumer before load (-r) */
} events SEC(".maps");

/* Counters are per CPU (the consumer sums them): no atomic, no cache line bouncing between CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AIOT_KINDS);
	__type(key, __u32);
	__type(value, __u64); /* records reserved (per-event) or events counted (aggregate) per kind */
} emitted SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u64); /* tid << 32 | nr */
	__type(value, __u64);
} syscalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u64); /* tid << 32 | nr, counted only inside the workload's window */
	__type(value, __u64);
} window_syscalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} syscall_errors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u64); /* tid << 32 | stat */
	__type(value, __u64);
} tidstat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct aiot_hist_key);
	__type(value, __u64);
} hist SEC(".maps");

struct enter_state {
	__u64 ts;
	__s64 nr;
	/* aggregate: io_uring completions (and errors) this thread posted, not yet added to
	 * tidstat. A hash update per CQE cost most of the aggregate flavour's overhead; they are
	 * added once per syscall exit of the thread and at its exit instead (flush_completions) */
	__u64 iou_done;
	__u64 iou_errors;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE); /* per thread, no hash: the syscall in progress */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct enter_state);
} enter_ns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH); /* not LRU: an entry must never be evicted before its completion */
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct request pointer: started by the pid, not completed yet */
	__type(value, __u64); /* start ns */
} blk_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 65536);
	__type(value, __u64); /* block completion ns, in completion order (libaio_lag) */
} blk_done_q SEC(".maps");

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

static __always_inline __u32 log2_bucket(__u64 v)
{
	/* bucket b holds [2^(b-1), 2^b); b = 0 holds 0 (bpftrace hist / DTrace quantize style) */
	__u32 b = 0;
	if (v == 0)
		return 0;
#pragma unroll
	for (int s = 32; s > 0; s >>= 1) {
		if (v >= (1ULL << s)) {
			v >>= s;
			b += s;
		}
	}
	return b + 1;
}

/* per-CPU maps: the value is this CPU's, so a plain add is safe (no other CPU writes it) */
static __always_inline void add_pc(void *map, const void *key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, key);
	if (v) {
		*v += n;
		return;
	}
	bpf_map_update_elem(map, key, &n, BPF_NOEXIST);
}

static __always_inline void add(void *map, const void *key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, key);
	if (v) {
		__sync_fetch_and_add(v, n);
		return;
	}
	if (bpf_map_update_elem(map, key, &n, BPF_NOEXIST)) {
		v = bpf_map_lookup_elem(map, key); /* another CPU created it first: add to its value */
		if (v)
			__sync_fetch_and_add(v, n);
	}
}

static __always_inline void hist_add(__u32 which, __u32 key, __u64 ns)
{
	struct aiot_hist_key k = {.hist = which, .key = key, .bucket = log2_bucket(ns)};
	add_pc(&hist, &k, 1);
}

static __always_inline void count(__u32 kind)
{
	__u64 *v = bpf_map_lookup_elem(&emitted, &kind);
	if (v)
		*v += 1;
}

static __always_inline struct aiot_record *reserve(__u32 kind, __u32 sub)
{
	struct aiot_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	__u64 pt = bpf_get_current_pid_tgid();
	r->ts_ns = bpf_ktime_get_ns();
	r->pid = pt >> 32;
	r->tid = (__u32)pt;
	r->kind = kind;
	r->sub = sub;
	r->id = r->a0 = r->a1 = r->a2 = r->a3 = r->ret = 0;
	count(kind);
	return r;
}

static __always_inline void emit(struct aiot_record *r)
{
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
}

static __always_inline void tid_add(__u32 stat, __u64 n)
{
	if (windowed && !in_window)
		return;
	__u64 key = ((__u64)(__u32)bpf_get_current_pid_tgid() << 32) | stat;
	add_pc(&tidstat, &key, n);
}

static __always_inline void flush_completions(struct enter_state *st)
{
	/* the counts were gated by the window when each CQE was posted: add them as they are */
	if (!st || !(st->iou_done | st->iou_errors))
		return;
	__u64 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 key = tid << 32 | AIOT_STAT_IOU_COMPLETED;
	add_pc(&tidstat, &key, st->iou_done);
	if (st->iou_errors) {
		key = tid << 32 | AIOT_STAT_IOU_ERRORS;
		add_pc(&tidstat, &key, st->iou_errors);
	}
	st->iou_done = st->iou_errors = 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
	if (!mine())
		return 0;
	if (per_event) {
		struct aiot_record *r = reserve(AIOT_SYS_ENTER, (__u32)id);
		if (!r)
			return 0;
		r->a0 = regs->di;
		r->a1 = regs->si;
		r->a2 = regs->dx;
		r->a3 = regs->r10;
		emit(r);
		return 0;
	}
	/* one hash update per call: outside the window into `syscalls`, inside into
	 * `window_syscalls`, with io_uring_enter(fd, to_submit > 0) (the submit role) flagged in the
	 * key; the consumer folds them back into @syscalls, @window_syscalls and
	 * @window_iou_enter_submit before writing them */
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 key = ((__u64)tid << 32) | (__u32)id;
	if (in_window) {
		if (id == 426 && regs->si > 0)
			key |= AIOT_SUBMIT_FLAG;
		add_pc(&window_syscalls, &key, 1);
	} else {
		add_pc(&syscalls, &key, 1);
	}
	struct enter_state *st = bpf_task_storage_get(&enter_ns, bpf_get_current_task_btf(), 0,
						      BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (st) {
		st->ts = bpf_ktime_get_ns();
		st->nr = id;
	}
	count(AIOT_SYS_ENTER);
	return 0;
}

struct harvest {
	__u64 now;
	long n;
};

static long harvest_one(__u32 i, void *data)
{
	struct harvest *h = data;
	__u64 done;
	if (bpf_map_pop_elem(&blk_done_q, &done)) {
		__sync_fetch_and_add(&lag_unmatched, h->n - i);
		return 1; /* stop */
	}
	hist_add(AIOT_HIST_LIBAIO_LAG, 0, h->now - done);
	return 0;
}

static __always_inline void libaio_harvest(long n, __u64 now)
{
	/* io_getevents returned n completions: the oldest n queued block completions are harvested
	 * (libaio's ring is filled in completion order) */
	struct harvest h = {.now = now, .n = n};
	bpf_loop(n < 65536 ? n : 65536, harvest_one, &h, 0);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	if (!mine())
		return 0;
	long nr = regs->orig_ax;
	if (per_event) {
		struct aiot_record *r = reserve(AIOT_SYS_EXIT, (__u32)nr);
		if (!r)
			return 0;
		r->ret = ret;
		emit(r);
		return 0;
	}
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();
	count(AIOT_SYS_EXIT);
	if (ret < 0 && ret > -4096) {
		__u64 key = ((__u64)tid << 32) | (__u32)nr;
		add_pc(&syscall_errors, &key, 1);
	}
	struct enter_state *st = bpf_task_storage_get(&enter_ns, bpf_get_current_task_btf(), 0, 0);
	flush_completions(st);
	if (st && st->ts) {
		if (st->nr == nr)
			hist_add(AIOT_HIST_SYSCALL, (__u32)nr, now - st->ts);
		st->ts = 0;
	}
	if (libaio_lag && ret > 0 && (nr == 208 || nr == 333)) /* io_getevents, io_pgetevents */
		libaio_harvest(ret, now);
	return 0;
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(on_iou_submit, struct io_kiocb *req)
{
	if (!mine())
		return 0;
	if (per_event) {
		struct aiot_record *r = reserve(AIOT_JOB_QUEUE, 0);
		if (!r)
			return 0;
		r->id = req->cqe.user_data;
		r->a0 = (__u64)req;
		r->a1 = req->opcode;
		emit(r);
		return 0;
	}
	/* counts only: the workload's own record has each I/O's latency, and a per-request start-time
	 * map costs a hash insert and delete per I/O */
	count(AIOT_JOB_QUEUE);
	tid_add(AIOT_STAT_IOU_SUBMITTED, 1);
	return 0;
}

SEC("tp_btf/io_uring_complete")
int BPF_PROG(on_iou_complete, struct io_ring_ctx *ring, void *req, struct io_uring_cqe *cqe)
{
	if (!mine())
		return 0;
	__s32 res = cqe->res;
	if (per_event) {
		struct aiot_record *r = reserve(AIOT_JOB_DONE, 0);
		if (!r)
			return 0;
		r->id = cqe->user_data;
		r->a0 = (__u64)req;
		r->a1 = cqe->flags;
		r->ret = res;
		emit(r);
		return 0;
	}
	count(AIOT_JOB_DONE);
	if (windowed && !in_window)
		return 0;
	struct enter_state *st = bpf_task_storage_get(&enter_ns, bpf_get_current_task_btf(), 0,
						      BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) { /* storage busy (e.g. a completion in interrupt context): count it directly */
		tid_add(AIOT_STAT_IOU_COMPLETED, 1);
		if (res < 0)
			tid_add(AIOT_STAT_IOU_ERRORS, 1);
		return 0;
	}
	st->iou_done++;
	if (res < 0)
		st->iou_errors++;
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_task_exit, struct task_struct *task)
{
	/* each exiting thread of the pid (io_uring's iou-sqp and iou-wrk threads make no syscalls):
	 * its last completion counts (the consumer dumps only after the process is gone) */
	if (per_event || !mine())
		return 0;
	flush_completions(bpf_task_storage_get(&enter_ns, bpf_get_current_task_btf(), 0, 0));
	return 0;
}

static __always_inline __u64 rq_dev(struct request *rq)
{
	/* the tracepoints' dev: disk_devt(rq->q->disk) = MKDEV(major, first_minor), kernel dev_t */
	struct gendisk *disk = rq->q->disk;
	if (!disk)
		return 0;
	return ((__u64)disk->major << 20) | (__u32)disk->first_minor;
}

/* a block request's record fields: dev, sector, bytes, and the request pointer that joins start
 * and completion */
static __always_inline void fill_rq(struct aiot_record *r, struct request *rq, __u64 bytes)
{
	r->a0 = rq_dev(rq);
	r->a1 = rq->__sector;
	r->a2 = bytes;
	r->a3 = (__u64)rq;
}

SEC("tp_btf/block_io_start")
int BPF_PROG(on_blk_start, struct request *rq)
{
	if (!mine())
		return 0;
	__u64 key = (__u64)rq, now = bpf_ktime_get_ns();
	__u32 bytes = rq->__data_len;
	bpf_map_update_elem(&blk_pending, &key, &now, BPF_ANY);
	if (per_event) {
		struct aiot_record *r = reserve(AIOT_BLK_QUEUE, AIOT_BLK_IO_START);
		if (!r)
			return 0;
		fill_rq(r, rq, bytes);
		emit(r);
		return 0;
	}
	count(AIOT_BLK_QUEUE);
	tid_add(AIOT_STAT_BLK_STARTED, 1);
	tid_add(AIOT_STAT_BLK_BYTES, bytes);
	return 0;
}

static __always_inline int on_merge(struct bio *bio, __u32 sub)
{
	if (!mine())
		return 0;
	if (!per_event) {
		tid_add(AIOT_STAT_BLK_BYTES, bio->bi_iter.bi_size);
		return 0;
	}
	struct aiot_record *r = reserve(AIOT_BLK_QUEUE, sub);
	if (!r)
		return 0;
	r->a0 = bio->bi_bdev->bd_dev; /* kernel dev_t, as the tracepoints print it */
	r->a1 = bio->bi_iter.bi_sector;
	r->a2 = bio->bi_iter.bi_size;
	emit(r);
	return 0;
}

SEC("tp_btf/block_bio_frontmerge")
int BPF_PROG(on_frontmerge, struct bio *bio)
{
	return on_merge(bio, AIOT_BLK_FRONTMERGE);
}

SEC("tp_btf/block_bio_backmerge")
int BPF_PROG(on_backmerge, struct bio *bio)
{
	return on_merge(bio, AIOT_BLK_BACKMERGE);
}

static __always_inline int blk_done(struct request *rq, long status, __u64 bytes, __u32 sub)
{
	__u64 key = (__u64)rq;
	__u64 *start = bpf_map_lookup_elem(&blk_pending, &key);
	if (!start)
		return 0;
	__u64 now = bpf_ktime_get_ns(), t0 = *start;
	bpf_map_delete_elem(&blk_pending, &key);
	if (per_event) {
		struct aiot_record *r = reserve(AIOT_BLK_DONE, sub);
		if (!r)
			return 0;
		fill_rq(r, rq, bytes);
		r->ret = -status; /* blk_status_t, not an errno: 0 = ok */
		emit(r);
		return 0;
	}
	count(AIOT_BLK_DONE);
	hist_add(AIOT_HIST_BLK, 0, now - t0);
	if (libaio_lag)
		bpf_map_push_elem(&blk_done_q, &now, BPF_EXIST);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(on_blk_done, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	return blk_done(rq, error, nr_bytes, AIOT_BLK_RQ_COMPLETE);
}

/* Batched completions (blk_mq_end_request_batch) skip block_rq_complete but not the I/O
 * accounting: block_io_done catches a request whose block_rq_complete never came. */
SEC("tp_btf/block_io_done")
int BPF_PROG(on_blk_io_done, struct request *rq)
{
	return blk_done(rq, 0, rq->__data_len, AIOT_BLK_IO_DONE);
}

static __always_inline int window_edge(int open, __u64 ios, __u32 kind)
{
	if (!mine())
		return 0;
	in_window = open;
	window_ns[!open] = bpf_ktime_get_ns();
	window_ios[!open] = ios;
	if (per_event) {
		struct aiot_record *r = reserve(kind, 0);
		if (!r)
			return 0;
		r->a0 = ios;
		emit(r);
	}
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(on_window_start, __u64 planned_ios)
{
	return window_edge(1, planned_ios, AIOT_WINDOW_START);
}

SEC("uprobe")
int BPF_KPROBE(on_window_stop, __u64 completed_ios)
{
	return window_edge(0, completed_ios, AIOT_WINDOW_STOP);
}

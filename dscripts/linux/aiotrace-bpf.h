/* aiotrace-bpf.h  Shared by aiotrace.bpf.c (kernel side) and aiotrace-bpf.c (consumer): the
 * per-event record, the event kinds and the aggregate map keys. tracer/capture/libbpf.py mirrors
 * the record layout (RECORD_DTYPE) and the kinds (KINDS); a test checks they agree. */
#ifndef AIOTRACE_BPF_H
#define AIOTRACE_BPF_H

#define AIOT_RECORD_MAGIC "AIOTBPF1" /* file header: magic, then u32 record size, u32 kinds */

enum aiot_kind { /* tracer/base/schema.py EVENT_KINDS names, in this order */
	AIOT_SYS_ENTER = 0,
	AIOT_SYS_EXIT = 1,
	AIOT_JOB_QUEUE = 2,
	AIOT_JOB_DONE = 3,
	AIOT_BLK_QUEUE = 4,
	AIOT_BLK_DONE = 5,
	AIOT_WINDOW_START = 6,
	AIOT_WINDOW_STOP = 7,
	AIOT_KINDS = 8,
};

enum aiot_blk_sub { /* blk_queue records: which tracepoint */
	AIOT_BLK_IO_START = 0,
	AIOT_BLK_FRONTMERGE = 1,
	AIOT_BLK_BACKMERGE = 2,
};

enum aiot_blk_done_sub { /* blk_done records: which tracepoint */
	AIOT_BLK_RQ_COMPLETE = 0,
	AIOT_BLK_IO_DONE = 1,
};

enum aiot_stat { /* tidstat map: per-thread counters */
	AIOT_STAT_IOU_SUBMITTED = 0,
	AIOT_STAT_IOU_COMPLETED = 1,
	AIOT_STAT_IOU_ERRORS = 2,
	AIOT_STAT_BLK_STARTED = 3,
	AIOT_STAT_BLK_BYTES = 4,
	AIOT_STAT_WINDOW_IOU_ENTER_SUBMIT = 5,
};

/* window_syscalls key bit: an io_uring_enter with to_submit > 0 (the consumer turns these into
 * @window_iou_enter_submit[tid] and clears the bit) */
#define AIOT_SUBMIT_FLAG (1ULL << 31)

enum aiot_hist { /* hist map: log2 ns histograms */
	AIOT_HIST_SYSCALL = 0, /* key = syscall nr: enter -> exit */
	AIOT_HIST_IOU = 1,     /* unused: io_uring latency is in the workload's record */
	AIOT_HIST_BLK = 2,     /* block_io_start -> block_rq_complete */
	AIOT_HIST_LIBAIO_LAG = 3, /* block_rq_complete -> the io_getevents return that harvests it */
};

struct aiot_hist_key {
	__u32 hist;
	__u32 key;
	__u32 bucket;
};

/* 72 bytes, no holes. sub: syscall nr (sys_*), enum aiot_blk_sub (blk_queue), else 0.
 * a0..a3: sys_enter args 0..3; job_*: a0 = io_kiocb pointer, a1 = opcode / cflags;
 * blk_*: a0 = dev, a1 = sector, a2 = bytes, a3 = request pointer. ret: syscall return, CQE res,
 * minus the block status. */
struct aiot_record {
	__u64 ts_ns;
	__u32 pid;
	__u32 tid;
	__u32 kind;
	__u32 sub;
	__s64 id;
	__s64 a0;
	__s64 a1;
	__s64 a2;
	__s64 a3;
	__s64 ret;
};

#endif

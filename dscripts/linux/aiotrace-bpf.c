/*
 * aiotrace-bpf.c  User-space side of the `libbpf` capture backend: loads aiotrace.bpf.c (through
 *                 its bpftool skeleton), attaches it to one process and writes what it collects.
 *
 * USAGE:   aiotrace-bpf -p PID -f events|aggregate -o OUT [-r RING_MB] [-l] [-s] [-u ENGINE_SO]
 *   -p PID   the workload's pid (it stays held at its handshake until we print the ready line)
 *   -f       events: drain the ring buffer into OUT as fixed-size records;
 *            aggregate: only in-kernel counts/histograms, written to OUT at exit as NDJSON
 *   -o OUT   output file; written as OUT.part and renamed when complete
 *   -r MB    ring buffer size in MiB, a power of two (default 64; halved while the load fails
 *            with ENOMEM, down to 8, printed as "AIOTRACE-BPF<TAB>ring_mb=N")
 *   -l       libaio free lag: histogram block completion -> io_getevents harvest in the kernel
 *   -s       cost of each BPF program: turn on the kernel's run-time statistics
 *            (BPF_ENABLE_STATS) while attached and print, at exit, one line per program that ran:
 *            "AIOTRACE-BPF<TAB>prog<TAB>NAME<TAB>runs=N<TAB>run_ns=T" (T includes the two clock
 *            reads the statistics add to every run, so it is an upper bound)
 *   -u SO    the shared object defining aiotrace_probe_window_start/stop: attach the two window
 *            uprobes (two hits per run), so counts inside the workload's window are kept apart
 *
 * OUTPUT:
 *   OUT (events):    "AIOTBPF1", u32 record size, u32 number of kinds, then struct aiot_record
 *                    (aiotrace-bpf.h) per event, in ring order (per CPU order, not global time)
 *   OUT (aggregate): bpftrace -f json compatible NDJSON: a printf record "AIOTRACE-AGG\tv1\n",
 *                    then one {"type":"map"|"hist","data":{"@name":...}} per map (names as in
 *                    aiotrace-agg.bt: @syscalls "tid,nr", @syscall_errors, @iou_completed[tid]
 *                    (io_uring_submit_req is not attached in this flavour), @iou_errors, @blk_started, @blk_bytes, @window_syscalls
 *                    "tid,nr", @window_iou_enter_submit[tid] (in-window io_uring_enter calls with
 *                    to_submit > 0), @window_start_ns/_stop_ns/_planned_ios/_completed_ios, hists @syscall_ns[nr],
 *                    @blk_ns, @libaio_free_lag_ns)
 *   stdout: "AIOTRACE-BPF<TAB>ready" once every program is attached (the capture's ready signal),
 *           then at exit "AIOTRACE-BPF<TAB>stats<TAB>records=N<TAB>dropped=N<TAB>emitted=a,b,c,d,e,f
 *           <TAB>lag_unmatched=N"; dropped counts records the kernel could not reserve (full ring).
 *   stderr: libbpf warnings and errors. Exit status 0, or 1 with one line saying why.
 *
 * Stops on SIGINT/SIGTERM or when PID no longer exists, after draining the ring one last time.
 * The ring is drained by polling every 2 ms (the kernel side never wakes us per event).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include "aiotrace-bpf.h"
#include "aiotrace.skel.h"

static volatile sig_atomic_t stop;
static FILE *out;
static unsigned long long records;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static int on_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size != sizeof(struct aiot_record))
		return 0;
	fwrite(data, sizeof(struct aiot_record), 1, out);
	records++;
	return 0;
}

static int pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno != ESRCH;
}

static const char *engine_so;
static int ncpus;

/* The sum over CPUs of a per-CPU u64 value (or the value of a plain map). */
static int lookup_sum(int fd, const void *key, int percpu, __u64 *sum)
{
	__u64 vals[ncpus > 0 ? ncpus : 1];
	if (bpf_map_lookup_elem(fd, key, vals))
		return -1;
	*sum = 0;
	for (int i = 0; i < (percpu ? ncpus : 1); i++)
		*sum += vals[i];
	return 0;
}

static const char *STAT_MAP[] = {"@iou_submitted", "@iou_completed", "@iou_errors", "@blk_started", "@blk_bytes",
				 "@window_iou_enter_submit"};
static const char *HIST_MAP[] = {"@syscall_ns", "@iou_ns", "@blk_ns", "@libaio_free_lag_ns"};

/* {"type":"map","data":{"@name":{"tid,nr":n,...}}} from a u64 -> u64 map keyed tid<<32|low,
 * keeping entries whose low half is `low` (or all when low < 0, printing "tid,low"). */
static void dump_keyed(int fd, const char *name, long low)
{
	__u64 key, next, val;
	int first = 1, have = 0;
	void *prev = NULL;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (lookup_sum(fd, &key, 1, &val) || !val)
			continue;
		__u32 tid = key >> 32, lo = (__u32)key;
		if (low >= 0 && lo != (__u32)low)
			continue;
		if (!have)
			fprintf(out, "{\"type\": \"map\", \"data\": {\"%s\": {", name);
		have = 1;
		if (low >= 0)
			fprintf(out, "%s\"%u\": %llu", first ? "" : ", ", tid, (unsigned long long)val);
		else
			fprintf(out, "%s\"%u,%u\": %llu", first ? "" : ", ", tid, lo, (unsigned long long)val);
		first = 0;
	}
	if (have)
		fprintf(out, "}}}\n");
}

static int cmp_hist(const void *a, const void *b)
{
	const __u64 *x = a, *y = b; /* key(32) | bucket(32), count */
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* {"type":"hist","data":{"@name":[{"min":..,"max":..,"count":..},...]}} (keyed: {"nr":[...]}) */
static void dump_hist(int fd, __u32 which, int keyed)
{
	struct aiot_hist_key key, next;
	__u64 val, (*rows)[2] = NULL;
	size_t n = 0, cap = 0;
	void *prev = NULL;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (key.hist != which || lookup_sum(fd, &key, 1, &val) || !val)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			rows = realloc(rows, cap * sizeof(*rows));
			if (!rows)
				return;
		}
		rows[n][0] = ((__u64)key.key << 32) | key.bucket;
		rows[n][1] = val;
		n++;
	}
	if (!n)
		return;
	qsort(rows, n, sizeof(*rows), cmp_hist);
	fprintf(out, "{\"type\": \"hist\", \"data\": {\"%s\": %s", HIST_MAP[which], keyed ? "{" : "");
	long cur = -1;
	for (size_t i = 0; i < n; i++) {
		__u32 k = rows[i][0] >> 32, b = (__u32)rows[i][0];
		unsigned long long lo = b ? 1ULL << (b - 1) : 0, hi = b ? (1ULL << b) - 1 : 0;
		if ((long)k != cur) {
			if (cur >= 0)
				fprintf(out, "]%s", keyed ? ", " : "");
			if (keyed)
				fprintf(out, "\"%u\": ", k);
			fprintf(out, "[");
			cur = k;
		} else {
			fprintf(out, ", ");
		}
		fprintf(out, "{\"min\": %llu, \"max\": %llu, \"count\": %llu}", lo, hi, (unsigned long long)rows[i][1]);
	}
	fprintf(out, "]%s}}\n", keyed ? "}" : "");
	free(rows);
}

/* Add `n` to a per-CPU u64 map's `key` (into CPU 0's slot). */
static void add_percpu(int fd, __u64 key, __u64 n)
{
	__u64 vals[ncpus > 0 ? ncpus : 1];
	if (bpf_map_lookup_elem(fd, &key, vals))
		memset(vals, 0, sizeof(vals));
	vals[0] += n;
	if (bpf_map_update_elem(fd, &key, vals, BPF_ANY))
		fprintf(stderr, "aiotrace-bpf: cannot update a count map: %s\n", strerror(errno));
}

/* The kernel side makes one hash update per syscall: undo that split here. Flagged window keys
 * (io_uring_enter with to_submit > 0) become @window_iou_enter_submit counts and plain keys;
 * every window count is added to `syscalls` (which the kernel fills outside the window only). */
static void fold_syscall_counts(struct aiotrace_bpf *skel)
{
	int win = bpf_map__fd(skel->maps.window_syscalls), all = bpf_map__fd(skel->maps.syscalls);
	int stat = bpf_map__fd(skel->maps.tidstat);
	__u64 key, next, val;
	void *prev = NULL;
	size_t n = 0, cap = 0;
	__u64 (*flagged)[2] = NULL;
	while (bpf_map_get_next_key(win, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (lookup_sum(win, &key, 1, &val) || !val)
			continue;
		add_percpu(all, key & ~AIOT_SUBMIT_FLAG, val);
		if (key & AIOT_SUBMIT_FLAG) { /* changed after the walk: deleting now would upset it */
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				flagged = realloc(flagged, cap * sizeof(*flagged));
				if (!flagged) {
					fprintf(stderr, "aiotrace-bpf: out of memory\n");
					exit(1);
				}
			}
			flagged[n][0] = key;
			flagged[n++][1] = val;
		}
	}
	for (size_t i = 0; i < n; i++) {
		key = flagged[i][0];
		add_percpu(win, key & ~AIOT_SUBMIT_FLAG, flagged[i][1]);
		add_percpu(stat, (key >> 32) << 32 | AIOT_STAT_WINDOW_IOU_ENTER_SUBMIT, flagged[i][1]);
		bpf_map_delete_elem(win, &key);
	}
	free(flagged);
}

static void dump_aggregate(struct aiotrace_bpf *skel)
{
	fold_syscall_counts(skel);
	fprintf(out, "{\"type\": \"printf\", \"data\": \"AIOTRACE-AGG\\tv1\\n\"}\n");
	dump_keyed(bpf_map__fd(skel->maps.syscalls), "@syscalls", -1);
	dump_keyed(bpf_map__fd(skel->maps.window_syscalls), "@window_syscalls", -1);
	dump_keyed(bpf_map__fd(skel->maps.syscall_errors), "@syscall_errors", -1);
	if (skel->bss->window_ns[0]) {
		fprintf(out, "{\"type\": \"map\", \"data\": {\"@window_start_ns\": %llu}}\n",
			(unsigned long long)skel->bss->window_ns[0]);
		fprintf(out, "{\"type\": \"map\", \"data\": {\"@window_planned_ios\": %llu}}\n",
			(unsigned long long)skel->bss->window_ios[0]);
	}
	if (skel->bss->window_ns[1]) {
		fprintf(out, "{\"type\": \"map\", \"data\": {\"@window_stop_ns\": %llu}}\n",
			(unsigned long long)skel->bss->window_ns[1]);
		fprintf(out, "{\"type\": \"map\", \"data\": {\"@window_completed_ios\": %llu}}\n",
			(unsigned long long)skel->bss->window_ios[1]);
	}
	for (long s = 0; s < (long)(sizeof(STAT_MAP) / sizeof(*STAT_MAP)); s++)
		dump_keyed(bpf_map__fd(skel->maps.tidstat), STAT_MAP[s], s);
	int hfd = bpf_map__fd(skel->maps.hist);
	dump_hist(hfd, AIOT_HIST_SYSCALL, 1);
	dump_hist(hfd, AIOT_HIST_BLK, 0);
	dump_hist(hfd, AIOT_HIST_LIBAIO_LAG, 0);
}

static void usage(void)
{
	fprintf(stderr, "usage: aiotrace-bpf -p PID -f events|aggregate -o OUT [-r RING_MB] [-l] [-s] [-u ENGINE_SO]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long pid = 0, ring_mb = 64;
	int per_event = -1, libaio_lag = 0, prog_stats = 0, stats_fd = -1, c;
	const char *path = NULL;
	while ((c = getopt(argc, argv, "p:f:o:r:lsu:")) != -1) {
		switch (c) {
		case 'p': pid = strtol(optarg, NULL, 10); break;
		case 'f':
			per_event = !strcmp(optarg, "events") ? 1 : !strcmp(optarg, "aggregate") ? 0 : -1;
			break;
		case 'o': path = optarg; break;
		case 'r': ring_mb = strtol(optarg, NULL, 10); break;
		case 'l': libaio_lag = 1; break;
		case 's': prog_stats = 1; break;
		case 'u': engine_so = optarg; break;
		default: usage();
		}
	}
	if (pid <= 0 || per_event < 0 || !path || ring_mb <= 0 || (ring_mb & (ring_mb - 1)))
		usage();
	libbpf_set_print(libbpf_log);
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		fprintf(stderr, "aiotrace-bpf: cannot count the possible CPUs: %s\n", strerror(-ncpus));
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	/* A big ring needs that much memory at load: on ENOMEM halve it (down to 8 MiB) and say so. */
	struct aiotrace_bpf *skel = NULL;
	int err = 0;
	for (;;) {
		skel = aiotrace_bpf__open();
		if (!skel) {
			fprintf(stderr, "aiotrace-bpf: cannot open the BPF object: %s\n", strerror(errno));
			return 1;
		}
		skel->rodata->target_pid = (__u32)pid;
		skel->rodata->per_event = (__u8)per_event;
		skel->rodata->libaio_lag = (__u8)libaio_lag;
		skel->rodata->windowed = engine_so != NULL;
		bpf_map__set_max_entries(skel->maps.events, per_event ? (__u32)(ring_mb << 20) : 4096);
		err = aiotrace_bpf__load(skel);
		if (err != -ENOMEM || !per_event || ring_mb <= 8)
			break;
		aiotrace_bpf__destroy(skel);
		ring_mb /= 2;
	}
	if (err) {
		fprintf(stderr, "aiotrace-bpf: cannot load the BPF programs: %s\n", strerror(-err));
		return 1;
	}
	printf("AIOTRACE-BPF\tring_mb=%ld\n", ring_mb);
	if (!per_event) /* aggregate: io_uring_submit_req costs as much as the completion; counts of
			  * completions per thread are enough (the record has every submission) */
		bpf_program__set_autoattach(skel->progs.on_iou_submit, false);
	bpf_program__set_autoattach(skel->progs.on_window_start, false);
	bpf_program__set_autoattach(skel->progs.on_window_stop, false);
	err = aiotrace_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "aiotrace-bpf: cannot attach the BPF programs: %s\n", strerror(-err));
		return 1;
	}
	if (engine_so) {
		struct bpf_program *progs[2] = {skel->progs.on_window_start, skel->progs.on_window_stop};
		const char *funcs[2] = {"aiotrace_probe_window_start", "aiotrace_probe_window_stop"};
		for (int i = 0; i < 2; i++) {
			LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = funcs[i]);
			if (!bpf_program__attach_uprobe_opts(progs[i], (pid_t)pid, engine_so, 0, &uo)) {
				fprintf(stderr, "aiotrace-bpf: cannot attach a uprobe to %s in %s: %s\n", funcs[i],
					engine_so, strerror(errno));
				return 1;
			}
		}
	}
	char part[4096];
	snprintf(part, sizeof(part), "%s.part", path);
	out = fopen(part, "wb");
	if (!out) {
		fprintf(stderr, "aiotrace-bpf: cannot write %s: %s\n", part, strerror(errno));
		return 1;
	}
	setvbuf(out, NULL, _IOFBF, 4 << 20);
	struct ring_buffer *rb = NULL;
	if (per_event) {
		__u32 head[2] = {sizeof(struct aiot_record), AIOT_KINDS};
		fwrite(AIOT_RECORD_MAGIC, 8, 1, out);
		fwrite(head, sizeof(head), 1, out);
		rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_record, NULL, NULL);
		if (!rb) {
			fprintf(stderr, "aiotrace-bpf: cannot map the ring buffer: %s\n", strerror(errno));
			return 1;
		}
	}
	if (prog_stats) {
		stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (stats_fd < 0) {
			fprintf(stderr, "aiotrace-bpf: cannot enable BPF run-time statistics: %s\n", strerror(-stats_fd));
			return 1;
		}
	}
	printf("AIOTRACE-BPF\tready\n");
	fflush(stdout);

	struct timespec nap = {0, 2 * 1000 * 1000};
	while (!stop && pid_alive((pid_t)pid)) {
		if (rb)
			ring_buffer__consume(rb);
		nanosleep(&nap, NULL);
	}
	if (rb)
		ring_buffer__consume(rb);
	else
		dump_aggregate(skel);
	if (fclose(out) != 0 || rename(part, path) != 0) {
		fprintf(stderr, "aiotrace-bpf: cannot finish %s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("AIOTRACE-BPF\tstats\trecords=%llu\tdropped=%llu\temitted=", records,
	       (unsigned long long)skel->bss->dropped);
	for (__u32 k = 0; k < AIOT_KINDS; k++) {
		__u64 n = 0;
		lookup_sum(bpf_map__fd(skel->maps.emitted), &k, 1, &n);
		printf("%s%llu", k ? "," : "", (unsigned long long)n);
	}
	printf("\tlag_unmatched=%llu\n", (unsigned long long)skel->bss->lag_unmatched);
	if (stats_fd >= 0) {
		struct bpf_program *prog;
		bpf_object__for_each_program(prog, skel->obj) {
			struct bpf_prog_info info = {};
			__u32 len = sizeof(info);
			if (bpf_program__fd(prog) < 0 || bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
				continue;
			if (info.run_cnt)
				printf("AIOTRACE-BPF\tprog\t%s\truns=%llu\trun_ns=%llu\n", bpf_program__name(prog),
				       (unsigned long long)info.run_cnt, (unsigned long long)info.run_time_ns);
		}
		close(stats_fd);
	}
	ring_buffer__free(rb);
	aiotrace_bpf__destroy(skel);
	return 0;
}

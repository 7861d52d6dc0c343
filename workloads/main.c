/*
 * aiotrace-workload: the engine as a standalone program (no Python), for machines where
 * only a C toolchain is at hand (FreeBSD builds made with `make freebsd-check`).
 *
 * usage: aiotrace-workload --mode M [--op read|write|write-fsync] [--depth N] [--batch N]
 *          [--reap-batch N] [--bs BYTES] [--count N | --duration S] [--file PATH]
 *          [--file-size BYTES] [--direct] [--pattern rand|seq] [--seed N]
 *          [--threads single|split] [--submit single|lio] [--no-verify] [--hold]
 *        aiotrace-workload --modes
 *
 * Prints one summary line of key=value pairs. With --hold it prints
 * "AIOTRACE-READY pid=<pid>" after opening the file and waits for "go" on stdin
 * (tracer/base/spec.py READY_LINE / RELEASE_WORD), so a tracer can attach first.
 * Exit: 0 ok, 2 bad input or refused mode, 1 workload failure, 3 not released.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "engine.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage(const char *msg)
{
    fprintf(stderr, "aiotrace-workload: error: %s\n", msg);
    return 2;
}

static uint64_t parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
    default: break;
    }
    return (uint64_t)v;
}

static int list_modes(void)
{
    char reason[256];
    for (int i = 0; aiot_mode_name(i); i++) {
        const char *m = aiot_mode_name(i);
        if (aiot_mode_available(m, reason, sizeof reason))
            printf("%s\tyes\n", m);
        else
            printf("%s\tno\t%s\n", m, reason);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct option opts[] = {
        {"mode", required_argument, 0, 'm'},   {"op", required_argument, 0, 'o'},
        {"depth", required_argument, 0, 'q'},  {"batch", required_argument, 0, 'b'},
        {"reap-batch", required_argument, 0, 'r'}, {"bs", required_argument, 0, 's'},
        {"count", required_argument, 0, 'n'},  {"duration", required_argument, 0, 'd'},
        {"file", required_argument, 0, 'f'},   {"file-size", required_argument, 0, 'F'},
        {"direct", no_argument, 0, 'D'},       {"no-direct", no_argument, 0, 'N'},
        {"pattern", required_argument, 0, 'p'}, {"seed", required_argument, 0, 'S'},
        {"threads", required_argument, 0, 't'}, {"submit", required_argument, 0, 'u'},
        {"hold", no_argument, 0, 'H'},         {"modes", no_argument, 0, 'M'},
        {"verify", no_argument, 0, 'V'},       {"no-verify", no_argument, 0, 'X'},
        {0, 0, 0, 0},
    };
    struct aiot_spec spec = {
        .mode = NULL, .op = AIOT_OP_READ, .depth = 32, .batch = 1, .reap_batch = 1, .bs = 4096,
        .count = 10000, .file_size = 64ull << 20, .random = 1, .seed = 1, .lost_timeout_ns = 10000000000ull,
        .verify = 1,
    };
    const char *file = "aiotrace.dat";
    int hold = 0, c;
    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((c = getopt_long(argc, argv, "m:q:b:r:n:f:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': spec.mode = optarg; break;
        case 'o':
            if (strcmp(optarg, "read") == 0) spec.op = AIOT_OP_READ;
            else if (strcmp(optarg, "write") == 0) spec.op = AIOT_OP_WRITE;
            else if (strcmp(optarg, "write-fsync") == 0) { spec.op = AIOT_OP_WRITE; spec.fsync_at_end = 1; }
            else return usage("--op must be read, write or write-fsync");
            break;
        case 'q': spec.depth = (uint32_t)atoi(optarg); break;
        case 'b': spec.batch = (uint32_t)atoi(optarg); break;
        case 'r': spec.reap_batch = (uint32_t)atoi(optarg); break;
        case 's': spec.bs = (uint32_t)parse_size(optarg); break;
        case 'n': spec.count = strtoull(optarg, NULL, 10); break;
        case 'd': spec.duration_ns = (uint64_t)(atof(optarg) * 1e9); break;
        case 'f': file = optarg; break;
        case 'F': spec.file_size = parse_size(optarg); break;
        case 'D': spec.direct = 1; break;
        case 'N': spec.direct = 0; break;
        case 'p': spec.random = strcmp(optarg, "seq") != 0; break;
        case 'S': spec.seed = strtoull(optarg, NULL, 10); break;
        case 't': spec.split = strcmp(optarg, "split") == 0; break;
        case 'u': spec.lio = strcmp(optarg, "lio") == 0; break;
        case 'H': hold = 1; break;
        case 'V': spec.verify = 1; break;
        case 'X': spec.verify = 0; break;
        case 'M': return list_modes();
        default: return usage("unknown option (see the header of workloads/main.c)");
        }
    }
    if (!spec.mode)
        return usage("--mode is required");
    char msg[AIOT_MSG_LEN];
    if (!aiot_mode_available(spec.mode, msg, sizeof msg))
        return usage(msg);
    if (spec.depth < 1 || spec.batch < 1 || spec.batch > spec.depth || spec.reap_batch < 1 ||
        spec.reap_batch > spec.depth)
        return usage("depth must be >= 1 and batch, reap batch between 1 and depth");
    int fd;
    if (aiot_prepare_file(file, spec.file_size, spec.direct, spec.bs, spec.op != AIOT_OP_READ, spec.verify, &fd, msg,
                          sizeof msg) != 0)
        return usage(msg);
    if (hold) {
        char line[64];
        printf("AIOTRACE-READY pid=%ld\n", (long)getpid());
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin) || strcmp(line, "go\n") != 0)
            return 3;
    }
    static struct aiot_result res;
    int status = aiot_run(&spec, fd, &res);
    close(fd);
    if (status == 1)
        return usage(res.message);
    double secs = (res.stop_ns - res.start_ns) / 1e9;
    printf("mode=%s ios=%llu errors=%llu verified=%d elapsed_s=%.6f iops=%.0f submit_calls=%llu wait_calls=%llu "
           "status_calls=%llu result_calls=%llu cpu_ns_per_io=%.0f reap_supported=%d\n",
           spec.mode, (unsigned long long)res.ios, (unsigned long long)res.errors, res.verified, secs,
           secs > 0 ? res.ios / secs : 0.0, (unsigned long long)res.submit_calls,
           (unsigned long long)res.wait_calls, (unsigned long long)res.status_calls,
           (unsigned long long)res.result_calls,
           res.ios ? (double)(res.self_utime_ns + res.self_stime_ns) / res.ios : 0.0, res.reap_supported);
    for (uint32_t i = 0; i < res.n_threads; i++)
        printf("thread tid=%lld role=%s name=%s inblock=%lld oublock=%lld utime_ns=%lld stime_ns=%lld\n",
               (long long)res.threads[i].tid, res.threads[i].role, res.threads[i].name,
               (long long)res.threads[i].inblock, (long long)res.threads[i].oublock,
               (long long)res.threads[i].utime_ns, (long long)res.threads[i].stime_ns);
    aiot_result_free(&res);
    if (status != 0) {
        fprintf(stderr, "aiotrace-workload: error: %s\n", res.message);
        return 1;
    }
    return 0;
}

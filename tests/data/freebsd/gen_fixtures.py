#!/usr/bin/env python3
"""gen_fixtures.py  Write the FreeBSD fixture run bundles: hand-made, NOT measurements.

USAGE:   python tests/data/freebsd/gen_fixtures.py      (from the repository root; rewrites the bundles)

WHAT:    FreeBSD cannot run here, so these bundles show what aiotrace makes of FreeBSD traces in
         every FreeBSD mode. They are written EXACTLY to the documented formats
         (../shared/reference/freebsd-facts.md §5: kdump -H -T -s, truss -f -H -d -D, and the
         per-event D script's event lines, tracer/schema.py), from one simulated timeline per run:
         N I/Os of 4 KiB read in waves of DEPTH, reaped in batches of REAP_BATCH. Internally
         consistent: I/O ids in submission order, user aiocb addresses (ujob) reused per slot,
         one kaiocb pointer per I/O, tids, increasing timestamps, and rusage charges where each
         kernel puts them:
           stock   ru_inblock charged to the thread calling aio_return/aio_waitcomplete (ru_charge
                   named aio_return/aio_waitcomplete, tid = reaper), kaiocb freed in that call;
           d33271  charged at aio_complete to the submitting thread (ru_charge named aio_complete);
           reap    (D33144 tree, which includes D33271) kaiocb freed at completion, result in kev.data.
OUTPUT:  tests/data/freebsd/<mode>/<backend>-<threads>-<kernel>/  (run-bundle layout of COMMON.md)
         manifest.json ("fixture": true), raw/<trace>, raw/tracer.stderr, record/{ios,threads}.parquet,
         record/summary.json. Clocks: DTrace timestamp = monotonic + DTRACE_OFFSET_NS (the sync event
         says so); kdump -T prints realtime = monotonic + REALTIME_OFFSET_NS (manifest clocks);
         truss -d prints time since TRUSS_START_NS (manifest clocks.trace_origin_monotonic_ns).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
N, DEPTH, REAP_BATCH, BS = 16, 8, 4, 4096
PID, MAIN_TID, REAPER_TID, AIOD_PID, AIOD_TID = 4242, 100101, 100102, 17, 100050
COMM = "aiotrace-workload"
T0 = 5_000_000_000  # monotonic ns of the first traced record
DTRACE_OFFSET_NS = 86_400_000_000_000  # DTrace timestamp origin differs from CLOCK_MONOTONIC
REALTIME_OFFSET_NS = 1_795_920_012_724_815_954
TRUSS_START_NS = T0 - 1_000_000
SLOT_BASE, KAIOCB_BASE, BUF_BASE = 0x800A1C000, 0xFFFFF8000A000000, 0x800C00000
KQ, FD = 3, 4
BLOCKS = BS // 512
# bundle variants: (mode, backend, threads, kernel)
VARIANTS = [(mode, backend, threads, kernel)
            for mode in ("aio-poll", "aio-suspend", "waitcomplete", "kevent", "kevent-error", "reap")
            for backend, threads, kernel in (("dtrace", "split", "stock"), ("dtrace", "split", "d33271"),
                                             ("dtrace", "single", "stock"), ("ktrace", "single", "stock"),
                                             ("truss", "split", "d33271"))]


def aiocb(i: int) -> int:
    return SLOT_BASE + (i % DEPTH) * 0x80


def buf(i: int) -> int:
    return BUF_BASE + (i % DEPTH) * BS


def kaiocb(i: int) -> int:
    """Kernel pointer as the D script prints it: %lld of a 64-bit value (negative on amd64)."""
    return KAIOCB_BASE + i * 0x180 - (1 << 64)


def simulate(mode: str, threads: str, kernel: str) -> list[dict]:
    """Timeline of actions, each a dict with t (monotonic ns), tid and kind-specific keys."""
    kernel = "d33271" if mode == "reap" else kernel
    sub_tid, reap_tid = MAIN_TID, (REAPER_TID if threads == "split" else MAIN_TID)
    acts: list[dict] = []
    t = T0

    def call(tid, name, args, ret, t0, dur, ident=0, exit_ident=0, err=0, kev=None, **extra):
        acts.append(dict(t=t0, tid=tid, kind="call", name=name, args=args, ret=ret, err=err, ident=ident,
                         exit_ident=exit_ident, t_exit=t0 + dur, kev=kev or [], **extra))

    def ev(t0, kind, **kw):
        acts.append(dict(t=t0, kind=kind, **kw))

    call(MAIN_TID, "kqueue", [], KQ, t, 4000)
    t += 10_000
    call(MAIN_TID, "getrusage", [1, 0x7FFFFFFFE000], 0, t, 2000, ru=(0, 0))
    t += 10_000
    if threads == "split":
        call(MAIN_TID, "thr_new", [0x7FFFFFFFE100, 0x68], 0, t, 30_000, new_thread=REAPER_TID)
        t += 40_000
        call(REAPER_TID, "getrusage", [1, 0x7FFFFFFFD000], 0, t, 2000, ru=(0, 0))
        t += 10_000
    ev(t, "sync", tid=MAIN_TID)
    t += 2000
    ev(t, "window_start", tid=MAIN_TID)
    t += 3000
    done = {}
    for w in range(N // DEPTH):
        ids = range(w * DEPTH, (w + 1) * DEPTH)
        for k, i in enumerate(ids):
            # submit: aio_read(aiocb) -> aio_aqueue in the submitting thread
            call(sub_tid, "aio_read", [aiocb(i)], 0, t, 4000, ident=aiocb(i), exit_ident=aiocb(i), io=i)
            ev(t + 1500, "job_queue", tid=sub_tid, io=i)
            ev(t + 4500, "submit", tid=sub_tid, io=i)
            start = t + 12_000 + k * 1000
            ev(start, "job_start", tid=AIOD_TID, io=i)
            done[i] = start + 40_000 + k * 3000
            ev(done[i], "job_done", tid=AIOD_TID, io=i)
            ev(done[i] + 700, "job_notify", tid=AIOD_TID, io=i)
            if kernel == "d33271":
                ev(done[i] + 300, "ru_charge", tid=sub_tid, io=i, via="aio_complete")
            if mode == "reap":
                ev(done[i] + 1200, "job_free", tid=AIOD_TID, io=i)
            t += 6000
        r = t + 2000
        for b in range(DEPTH // REAP_BATCH):
            batch = list(ids)[b * REAP_BATCH:(b + 1) * REAP_BATCH]
            last_done = max(done[i] for i in batch)

            def fetch(i, at):  # aio_return (legacy) with the free and the stock charge inside
                call(reap_tid, "aio_return", [aiocb(i)], BS, at, 3000, ident=aiocb(i), exit_ident=aiocb(i), io=i)
                ev(at + 1800, "job_free", tid=reap_tid, io=i)
                if kernel == "stock":
                    ev(at + 3000, "ru_charge", tid=reap_tid, io=i, via="aio_return")
                ev(at + 3500, "reap", tid=reap_tid, io=i, batch=len(batch))
                return at + 5000

            if mode in ("kevent", "kevent-error", "reap"):
                kev = [dict(io=i, data=(BS if mode == "reap" else 0)) for i in batch]
                call(reap_tid, "kevent", [KQ, 0, 0, 0x7FFFFFFFC000, REAP_BATCH, 0], len(batch), r,
                     max(last_done + 2500 - r, 4000), kev=kev)
                r = max(last_done + 2500, r + 4000) + 2000
                for i in batch:
                    if mode == "reap":
                        ev(r, "reap", tid=reap_tid, io=i, batch=len(batch))
                        r += 500
                        continue
                    if mode == "kevent-error":
                        call(reap_tid, "aio_error", [aiocb(i)], 0, r, 1500, ident=aiocb(i), exit_ident=aiocb(i), io=i)
                        r += 2000
                    r = fetch(i, r)
            elif mode == "aio-suspend":
                call(reap_tid, "aio_suspend", [0x7FFFFFFFC800, len(batch), 0], 0, r, max(last_done + 1500 - r, 3000))
                r = max(last_done + 1500, r + 3000) + 2000
                for i in batch:
                    call(reap_tid, "aio_error", [aiocb(i)], 0, r, 1500, ident=aiocb(i), exit_ident=aiocb(i), io=i)
                    r = fetch(i, r + 2000)
            elif mode == "aio-poll":
                for i in batch:
                    while r + 1500 < done[i]:  # still in progress: aio_error answers EINPROGRESS (a value)
                        call(reap_tid, "aio_error", [aiocb(i)], 36, r, 1500, ident=aiocb(i), exit_ident=aiocb(i), io=i)
                        r += 9000
                    call(reap_tid, "aio_error", [aiocb(i)], 0, r, 1500, ident=aiocb(i), exit_ident=aiocb(i), io=i)
                    r = fetch(i, r + 2000)
            elif mode == "waitcomplete":
                for i in sorted(batch, key=lambda j: done[j]):
                    at = max(r, done[i] - 5000)
                    end = max(done[i] + 2000, at + 3000)
                    call(reap_tid, "aio_waitcomplete", [0x7FFFFFFFC900, 0], BS, at, end - at, exit_ident=aiocb(i), io=i)
                    ev(end - 800, "job_free", tid=reap_tid, io=i)
                    if kernel == "stock":
                        ev(end, "ru_charge", tid=reap_tid, io=i, via="aio_waitcomplete")
                    ev(end + 500, "reap", tid=reap_tid, io=i, batch=1)
                    r = end + 2000
        t = r + 3000
    ev(t, "window_stop", tid=MAIN_TID)
    t += 5000
    if threads == "split":
        call(REAPER_TID, "getrusage", [1, 0x7FFFFFFFD000], 0, t, 2000,
             ru=(N * BLOCKS if kernel == "stock" else 0, 0))
        t += 5000
        call(REAPER_TID, "thr_exit", [0], None, t, 0, thread_exit=REAPER_TID)
        t += 20_000
    charged_main = N * BLOCKS if (threads == "single" or kernel == "d33271") else 0
    call(MAIN_TID, "getrusage", [1, 0x7FFFFFFFE000], 0, t, 2000, ru=(charged_main, 0))
    t += 5000
    call(MAIN_TID, "exit", [0], None, t, 0, process_exit=0)
    acts.sort(key=lambda a: a["t"])
    return acts


# ---------------------------------------------------------------------------------------- writers

def dtrace_events(acts: list[dict], kernel: str) -> str:
    from tracer.schema import HEADER_LINE

    out = [(0, HEADER_LINE)]

    def line(t, tid, ev, name, id_=0, a0=0, a1=0, a2=0, ret=0, err=0, pid=PID):
        out.append((t, f"E\t{t + DTRACE_OFFSET_NS}\t{pid}\t{tid}\t{ev}\t{name}\t{id_}\t{a0}\t{a1}\t{a2}\t{ret}\t{err}"))

    traced = {"aio_read", "aio_error", "aio_return", "aio_suspend", "aio_waitcomplete", "kqueue", "kevent", "getrusage"}
    for a in acts:
        k = a["kind"]
        if k == "call":
            if a["name"] not in traced:
                continue
            args = (a["args"] + [0, 0, 0])[:3]
            line(a["t"], a["tid"], "sys_enter", a["name"], a["ident"], *args)
            ret = a["ret"] if a["ret"] is not None else 0
            line(a["t_exit"], a["tid"], "sys_exit", a["name"], a["exit_ident"], 0, 0, 0, ret, a["err"])
        elif k == "sync":
            line(a["t"], a["tid"], "sync", "aiotrace_probe_sync", 0, a["t"] - 800)
        elif k in ("window_start", "window_stop"):
            line(a["t"], a["tid"], k, f"aiotrace_probe_{k}", 0, N)
        elif k == "submit":
            line(a["t"], a["tid"], "submit", "aiotrace_probe_submit", a["io"], 1, 0, 0, 0)
        elif k == "reap":
            line(a["t"], a["tid"], "reap", "aiotrace_probe_reap", a["io"], a["batch"], 0, 0, BS)
        elif k == "job_queue":
            line(a["t"], a["tid"], "job_queue", "aio_aqueue", aiocb(a["io"]), kaiocb(a["io"]), 2, 0, 0)
        elif k == "job_start":
            line(a["t"], a["tid"], "job_start", "aio_process_rw", aiocb(a["io"]), kaiocb(a["io"]), BS, pid=AIOD_PID)
        elif k == "job_done":
            line(a["t"], a["tid"], "job_done", "aio_complete", aiocb(a["io"]), kaiocb(a["io"]), BLOCKS, 0, BS,
                 pid=AIOD_PID)
        elif k == "job_notify":
            line(a["t"], a["tid"], "job_notify", "aio_bio_done_notify", aiocb(a["io"]), kaiocb(a["io"]), pid=AIOD_PID)
        elif k == "job_free":
            pid = AIOD_PID if a["tid"] == AIOD_TID else PID
            line(a["t"], a["tid"], "job_free", "aio_free_entry", aiocb(a["io"]), kaiocb(a["io"]), BLOCKS, 0, pid=pid)
        elif k == "ru_charge":
            line(a["t"], a["tid"], "ru_charge", a["via"], aiocb(a["io"]), BLOCKS, 0)
    out.sort(key=lambda x: x[0])
    return "".join(text + "\n" for _, text in out)


def _kdump_prefix(tid: int, t: int) -> str:
    rt = t + REALTIME_OFFSET_NS
    return f"{PID:6d} {tid:6d} {COMM:<8.19s} {rt // 1_000_000_000}.{rt % 1_000_000_000:09d} "


def _kev_kdump(e: dict) -> str:
    return (f"{{ ident={aiocb(e['io']):#x}, filter=EVFILT_AIO, flags=0x8000<EV_EOF>, fflags=0, "
            f"data={e['data']:#x}, udata={aiocb(e['io']):#x} }}").replace("data=0x0,", "data=0,")


def kdump_text(acts: list[dict]) -> str:
    recs = []  # (t, order, text)
    for n, a in enumerate(acts):
        if a["kind"] != "call":
            continue
        tid = a["tid"]
        args = ",".join("0" if v == 0 else f"{v:#x}" for v in a["args"])
        if a["name"] == "getrusage":
            args = "RUSAGE_THREAD," + f"{a['args'][1]:#x}"
        recs.append((a["t"], n, 0, _kdump_prefix(tid, a["t"]) + f"CALL  {a['name']}({args})"))
        if a["name"] in ("kevent", "aio_suspend", "aio_waitcomplete") and a["t_exit"] - a["t"] > 5000:
            wm = {"kevent": "kqread", "aio_suspend": "aiospn", "aio_waitcomplete": "aiowc"}[a["name"]]
            recs.append((a["t"] + 1000, n, 1, _kdump_prefix(tid, a["t"] + 1000) + f'CSW   stop kernel "{wm}"'))
            recs.append((a["t_exit"] - 1000, n, 2, _kdump_prefix(tid, a["t_exit"] - 1000) + f'CSW   resume kernel "{wm}"'))
        if a["kev"]:
            body = "\n             ".join(_kev_kdump(e) for e in a["kev"])
            recs.append((a["t_exit"], n, 3, _kdump_prefix(tid, a["t_exit"]) + f"STRU  struct kevent[] = {{ {body} }}"))
        if a["ret"] is None:
            continue
        v = a["ret"]
        val = f"{v}/{v:#x}" if (v < 0 or v > 9) else f"{v}"
        recs.append((a["t_exit"], n, 4, _kdump_prefix(tid, a["t_exit"]) + f"RET   {a['name']} {val}"))
    recs.sort(key=lambda r: (r[0], r[1], r[2]))
    return "".join(text + "\n" for *_, text in recs)


def _truss_aiocb(i: int, mode: str) -> str:
    if mode in ("kevent", "kevent-error"):
        sev = f"{{ sigev_notify=SIGEV_KEVENT, sigev_notify_kqueue={KQ}, sigev_notify_kevent_flags=0x0 }}"
    elif mode == "reap":  # AIO_KEVENT_FLAG_REAP: rendering UNVERIFIED (EV_FLAG2 or EV_ERROR by sysdecode table)
        sev = f"{{ sigev_notify=SIGEV_KEVENT, sigev_notify_kqueue={KQ}, sigev_notify_kevent_flags=EV_FLAG2 }}"
    else:
        sev = "{ sigev_notify=SIGEV_NONE }"
    return f"{{ {FD},{OFFSETS[i]},{buf(i):#x},{BS},LIO_NOP,{sev} }}"


def _ts(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def truss_text(acts: list[dict], mode: str) -> str:
    out = []
    for a in acts:
        if a["kind"] != "call":
            continue
        i = a.get("io")
        name = a["name"]
        if name in ("aio_read", "aio_error", "aio_return"):
            args = _truss_aiocb(i, mode)
        elif name == "aio_waitcomplete":
            args = _truss_aiocb(i, mode) + ",0x0"
        elif name == "aio_suspend":
            args = "[" + ",".join(_truss_aiocb(j, mode) for j in a.get("list", [])) + f"],{a['args'][1]},0x0"
        elif name == "kevent":
            evs = " ".join(f"{aiocb(e['io']):#x},EVFILT_AIO,EV_EOF,0,{e['data']:#x},{aiocb(e['io']):#x}" for e in a["kev"])
            args = f"{KQ},{{ }},0,{{ {evs} }},{REAP_BATCH},0x0"
        elif name == "getrusage":
            inb, oub = a["ru"]
            args = f"RUSAGE_THREAD,{{ u=0.000{len(out) % 900 + 100:03d},s=0.001{len(out) % 900 + 100:03d},in={inb},out={oub} }}"
        else:
            args = ",".join(f"{v:#x}" for v in a["args"])
        prefix = f"{PID:5d} {a['tid']:6d}: {_ts(a['t_exit'] - TRUSS_START_NS)} {_ts(a['t_exit'] - a['t'])} "
        call = f"{name}({args})"
        if a["ret"] is None:
            if a.get("thread_exit"):
                out.append((a["t"], f"{PID:5d} {a['tid']:6d}: {_ts(a['t'] - TRUSS_START_NS)} {_ts(0)} "
                                    f"<thread {a['tid']} exited>"))
            if a.get("process_exit") is not None:
                out.append((a["t"], prefix + call))
                out.append((a["t"] + 1, f"{PID:5d} {a['tid']:6d}: {_ts(a['t'] - TRUSS_START_NS)} {_ts(0)} "
                                        "process exit, rval = 0"))
            continue
        res = f" = {a['ret']} ({a['ret']:#x})"
        out.append((a["t_exit"], prefix + call + "\t" * max(6 - len(prefix + call) // 8, 1) + res))
        if a.get("new_thread"):
            out.append((a["t_exit"] + 1, f"{PID:5d} {a['new_thread']:6d}: {_ts(a['t_exit'] - TRUSS_START_NS)} {_ts(0)} "
                                         f"<new thread {a['new_thread']}>"))
    out.sort(key=lambda r: r[0])
    return "".join(text + "\n" for _, text in out)


OFFSETS = {i: ((i * 7919) % 1024) * BS for i in range(N)}  # distinct random-looking offsets


def write_bundle(mode: str, backend: str, threads: str, kernel: str) -> Path:
    kernel = "d33271" if mode == "reap" else kernel
    acts = simulate(mode, threads, kernel)
    if backend == "truss":  # aio_suspend's list: the batch it waits for
        for a in acts:
            if a["kind"] == "call" and a["name"] == "aio_suspend":
                nxt = [b["io"] for b in acts if b["kind"] == "call" and b["name"] == "aio_error" and b["t"] > a["t"]]
                a["list"] = nxt[:a["args"][1]]
    name = f"{backend}-{threads}-{kernel}"
    run_id = f"fixture-{mode}-{name}"
    bundle = HERE / mode / name
    if bundle.exists():
        shutil.rmtree(bundle)
    (bundle / "raw").mkdir(parents=True)
    (bundle / "record").mkdir()
    (bundle / "cache").mkdir()
    (bundle / "cache" / ".keep").write_text("")
    sub_tid, reap_tid = MAIN_TID, (REAPER_TID if threads == "split" else MAIN_TID)
    if backend == "dtrace":
        raw, fmt, text = "raw/events.txt", "events", dtrace_events(acts, kernel)
        stderr = ""
    elif backend == "ktrace":
        raw, fmt, text = "raw/kdump.txt", "kdump", kdump_text(acts)
        stderr = ""
    else:
        raw, fmt, text = "raw/truss.txt", "truss", truss_text(acts, mode)
        stderr = ""
    (bundle / raw).write_text(text)
    (bundle / "raw" / "tracer.stderr").write_text(stderr)
    (bundle / "raw" / "workload.stderr").write_text("")
    sub = {a["io"]: a["t"] for a in acts if a["kind"] == "call" and a["name"] == "aio_read"}
    fetched = {a["io"]: a["t"] for a in acts if a["kind"] == "reap"}
    ios = pd.DataFrame({"id": range(N), "op": ["read"] * N, "offset": [OFFSETS[i] for i in range(N)],
                        "bytes": [BS] * N, "submit_ns": [sub[i] - 200 for i in range(N)],
                        "complete_ns": [fetched[i] - 300 for i in range(N)], "result": [BS] * N,
                        "submit_tid": [sub_tid] * N, "reap_tid": [reap_tid] * N})
    ios = ios.astype({"id": "uint64", "op": "string", "offset": "int64", "bytes": "int64", "submit_ns": "uint64",
                      "complete_ns": "uint64", "result": "int64", "submit_tid": "int64", "reap_tid": "int64"})
    ios.to_parquet(bundle / "record" / "ios.parquet", index=False)
    charged = sub_tid if kernel == "d33271" else reap_tid
    tids = [MAIN_TID, REAPER_TID] if threads == "split" else [MAIN_TID]
    th = pd.DataFrame({"tid": tids, "name": ["aiotrace-workload", "reaper"][:len(tids)],
                       "role": ["submitter", "reaper"] if threads == "split" else ["both"],
                       "inblock": [N * BLOCKS if t == charged else 0 for t in tids], "oublock": [0] * len(tids),
                       "utime_ns": [120_000] * len(tids), "stime_ns": [480_000] * len(tids),
                       "nvcsw": [N // REAP_BATCH] * len(tids), "nivcsw": [1] * len(tids),
                       "io_read_bytes": [-1] * len(tids), "io_write_bytes": [-1] * len(tids)})
    th.astype({"name": "string", "role": "string"}).to_parquet(bundle / "record" / "threads.parquet", index=False)
    w0 = next(a["t"] for a in acts if a["kind"] == "window_start")
    w1 = next(a["t"] for a in acts if a["kind"] == "window_stop")
    lat = sorted(fetched[i] - sub[i] for i in range(N))
    spec = {"mode": mode, "op": "read", "depth": DEPTH, "batch": 1, "reap_batch": REAP_BATCH, "bs": BS, "count": N,
            "duration": None, "file": "aiotrace.dat", "file_size": 4 << 20, "direct": True, "pattern": "rand",
            "seed": 1, "threads": threads, "submit": "single", "extra": {}}
    calls = [a for a in acts if a["kind"] == "call" and w0 <= a["t"] <= w1]
    summary = {"mode": mode, "os": "FreeBSD", "spec": spec, "pid": PID, "ios": N, "errors": 0, "verified": N,
               "elapsed_ns": w1 - w0, "iops": N / ((w1 - w0) / 1e9), "mb_per_s": N * BS / ((w1 - w0) / 1e9) / 1e6,
               "latency_ns": {"p50": lat[N // 2], "p90": lat[int(N * 0.9)], "p99": lat[-1], "p99_9": lat[-1], "max": lat[-1]},
               "cpu_ns_per_io": 600_000 * len(tids) / N, "window": {"start_ns": w0, "stop_ns": w1},
               "threads": json.loads(th.to_json(orient="records")),
               "features": {"reap_supported": kernel == "d33271", "o_direct": True},
               "submit_calls": sum(a["name"] == "aio_read" for a in calls),
               "wait_calls": sum(a["name"] in ("kevent", "aio_suspend", "aio_waitcomplete") for a in calls),
               "fixture": True}
    (bundle / "record" / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    backend_version = {"dtrace": "dtrace: Sun D 1.13", "ktrace": "ktrace/kdump (base system)", "truss": "truss (base system)"}
    argv = {"dtrace": ["dtrace", "-q", "-x", "bufsize=32m", "-x", "switchrate=20hz", "-x", "dynvarsize=16m", "-x",
                       "strsize=32", "-o", "raw/events.txt", "-p", str(PID), "-s", "dscripts/freebsd/aiotrace-events.d"]
                      + (["-s", "dscripts/freebsd/aiotrace-ru-d33271.d"] if kernel == "d33271" else []),
            "ktrace": ["ktrace", "-i", "-t", "cstu+", "-f", "raw/ktrace.out", "WORKLOAD"],
            "truss": ["truss", "-f", "-H", "-D", "-d", "-o", "raw/truss.txt", "WORKLOAD"]}[backend]
    manifest = {
        "schema": "aiotrace.manifest/1", "run_id": run_id, "fixture": True,
        "fixture_note": "hand-written FreeBSD fixture (tests/data/freebsd/gen_fixtures.py): NOT a measurement",
        "os": "FreeBSD", "kernel": "15.0-CURRENT with D33144+D33271 (fixture)" if kernel == "d33271" else "14.2-RELEASE (fixture)",
        "machine": "amd64", "cpus": 2, "backend": backend, "backend_version": backend_version[backend],
        "flavour": "events", "command": [["aiotrace-workload", "--mode", mode], argv], "spec": spec,
        "features": {"reap_supported": kernel == "d33271", "o_direct": True},
        "fs": {"type": "ufs", "mountpoint": "/", "path": "/tmp/aiotrace.dat", "source": "/dev/ada0p2"},
        "started_at": "2026-01-01T00:00:00.000+00:00", "ended_at": "2026-01-01T00:00:01.000+00:00",
        "exit": {"workload": 0, "tracer": 0}, "status": "ok", "reason": None,
        "losses": {"dropped_events": 0, "messages": []},
        "raw": {"trace": raw, "format": fmt, "stderr": "raw/tracer.stderr", "lines": text.count("\n")},
        "workload_pid": PID, "summary": "record/summary.json",
        "clocks": {"realtime_minus_monotonic_ns": REALTIME_OFFSET_NS, "trace_origin_monotonic_ns": TRUSS_START_NS},
        "rusage_behaviour": "D33271: charged to the submitter at aio_complete" if kernel == "d33271"
        else "stock: charged to the thread that calls aio_return/aio_waitcomplete",
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return bundle


def main() -> None:
    import sys
    sys.path.insert(0, str(HERE.parent.parent.parent))
    for mode in {v[0] for v in VARIANTS}:
        if (HERE / mode).exists():
            shutil.rmtree(HERE / mode)
    seen = set()
    for v in VARIANTS:
        key = (v[0], v[1], v[2], "d33271" if v[0] == "reap" else v[3])
        if key in seen:
            continue
        seen.add(key)
        print(write_bundle(*v).relative_to(HERE))


if __name__ == "__main__":
    main()

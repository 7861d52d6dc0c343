#!/usr/bin/env python3
"""Parser throughput: MB/s and events/s per trace format, beside two references run on the
same bytes in the same process, alternating order each repetition.

USAGE:   python bench/bench_parsers.py [--smoke] [--reps N] [--json OUT]
INPUTS:  generated in memory, deterministic (seeded), in each tool's documented format:
           events   event lines as aiotrace-events.bt prints them (sys_enter/sys_exit pairs,
                    io_uring job events, workload probes), with a banner, header and blank lines
           strace   `strace -ttt -T` lines (no pid prefix: the only form strace-parser's grammar
                    accepts), mixed pread64 / io_submit / io_getevents / futex calls
           kdump    the FreeBSD kevent fixture's kdump -H -T text, repeated
           truss    the FreeBSD kevent-error fixture's truss -f -H -d -D text, repeated
           dtrace   the FreeBSD aggpack/lquantize test-suite output (tests/data/samples), repeated
           bpftrace the agg.json example (-f json NDJSON) of dscripts/linux, repeated
REFERENCES (run on the same bytes, in the same process, alternating with ours):
           every format: a plain pyarrow CSV read (pyarrow.csv.read_csv, one string column per
                    line, no delimiter, no quoting, one thread) -- the cost of merely splitting the
                    bytes into lines in C. "x CSV time" = our time / its time (1.0 = as fast as
                    reading the lines at all; the machine is shared, so this ratio is what counts).
           events   also pyarrow.csv.read_csv of the event lines with the schema's column types,
                    converted to the same pandas frame (arrow-backed strings), with no side-line
                    accounting, no line numbers, no name mapping: the ceiling.
                    ratio = our time / pyarrow's time.
           strace   also PyPI strace-parser 0.2.0 (a lark grammar): parse + to_json on the same text.
                    ratio = its time / our time (above 1 = ours is faster).
FIELDS:  MB/s and events/s (rows produced: events + aggregation/summary rows) as
         median [min-max] over the repetitions; ratios per repetition pair, median [min-max].
NOTE:    the parsers' cache is not used (parse_bytes). One core; the other may be busy.
"""
from __future__ import annotations

import argparse
import io
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import REPO, Stats, alternate, machine_info, md_table, paired_ratios, timed  # noqa: E402


def gen_events(n_lines: int, seed: int = 1) -> bytes:
    from tracer.base.schema import HEADER_LINE

    rnd = random.Random(seed)
    out = ["Attaching 13 probes...", HEADER_LINE]
    ts, tid = 1_736_648_634_208, 8576
    for i in range(n_lines // 2):
        ts += rnd.randint(200, 20_000)
        nr = rnd.choice((0, 1, 17, 202, 426, 9))
        if i % 7 == 0:
            out.append(f"E\t{ts}\t8576\t{tid}\tjob_done\tio_uring_complete\t{94193731180848 + (i % 32) * 216}\t"
                       f"{-131385126379008 + i}\t0\t0\t4096\t0")
            out.append(f"E\t{ts + 50}\t8576\t{tid}\treap\taiotrace_probe_reap\t{i}\t8\t0\t0\t4096\t0")
        else:
            out.append(f"E\t{ts}\t8576\t{tid}\tsys_enter\tnr{nr}\t0\t{rnd.randint(0, 1 << 40)}\t4096\t{i}\t0\t0")
            out.append(f"E\t{ts + 900}\t8576\t{tid}\tsys_exit\tnr{nr}\t0\t0\t0\t0\t{rnd.randint(-1, 4096)}\t0")
    out += ["", "", ""]
    return ("\n".join(out) + "\n").encode()


def gen_strace(n_lines: int, seed: int = 2) -> bytes:
    rnd = random.Random(seed)
    t = 1_700_000_000.0
    lines = []
    for i in range(n_lines):
        t += rnd.uniform(1e-6, 5e-5)
        kind = i % 4
        if kind == 0:
            body = f"pread64(3, \"\\x00\\x01\"..., 4096, {rnd.randint(0, 1 << 20) * 4096}) = 4096"
        elif kind == 1:
            body = (f"io_submit(0x7f7845e16000, 1, [{{aio_data={i}, aio_lio_opcode=IOCB_CMD_PREAD, aio_fildes=3, "
                    f"aio_buf=0x55af13749c50, aio_nbytes=4096, aio_offset={i * 4096}}}]) = 1")
        elif kind == 2:
            body = f"io_getevents(0x7f7845e16000, 1, 8, [{{data={i}, obj=0x55af1374a000, res=4096, res2=0}}], NULL) = 1"
        else:
            body = "futex(0x7f7845e16630, FUTEX_WAKE_PRIVATE, 1) = 0"
        lines.append(f"{t:.6f} {body} <{rnd.uniform(1e-6, 1e-4):.6f}>")
    return ("\n".join(lines) + "\n").encode()


def repeat_file(path: Path, target_bytes: int, skip_until: str | None = None) -> bytes:
    text = path.read_text()
    if skip_until:
        text = text[text.index(skip_until):]
        text = text[:text.index("\n\nReading")] + "\n" if "\n\nReading" in text else text
    reps = max(1, target_bytes // max(len(text), 1))
    return (text * reps).encode()


def bench_format(name: str, fmt: str, data: bytes, reps: int, reference=None, ref_name: str = ""):
    from tracer.parse import parse_bytes

    rows: dict[str, int] = {}

    def ours() -> float:
        dt, res = timed(lambda: parse_bytes(data, fmt))
        rows["n"] = res.records
        assert res.lines > 0
        return dt

    sides = {"aiotrace": ours, "pyarrow csv": lambda: timed(lambda: csv_lines(data))[0]}
    if reference is not None:
        sides[ref_name] = lambda: timed(lambda: reference(data))[0]
    stats = alternate(sides, reps)
    mb = len(data) / 1e6
    mbs = Stats([mb / t for t in stats["aiotrace"].values])
    evs = Stats([rows["n"] / t for t in stats["aiotrace"].values])
    ratio = None
    if reference is not None:
        ratio = (paired_ratios(stats["aiotrace"], stats[ref_name]) if fmt == "events"
                 else paired_ratios(stats[ref_name], stats["aiotrace"]))
    return {"format": name, "bytes": len(data), "records": rows["n"], "mb_per_s": mbs, "events_per_s": evs,
            "ratio": ratio, "reference": ref_name,
            "csv_mb_per_s": Stats([mb / t for t in stats["pyarrow csv"].values]),
            "csv_ratio": paired_ratios(stats["aiotrace"], stats["pyarrow csv"])}


def csv_lines(data: bytes):
    """The plain baseline: pyarrow's C CSV reader splitting the same bytes into one string column."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return pacsv.read_csv(io.BytesIO(data), read_options=pacsv.ReadOptions(column_names=["line"], block_size=1 << 24,
                                                                             use_threads=False),
                          parse_options=pacsv.ParseOptions(delimiter="\x1f", quote_char=False, double_quote=False,
                                                           escape_char=False, ignore_empty_lines=False,
                                                           invalid_row_handler=lambda row: "skip"),
                          convert_options=pacsv.ConvertOptions(column_types={"line": pa.string()}))


def pyarrow_plain(data: bytes):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from tracer.base.schema import EVENT_FIELDS, FIELD_NAMES

    types = {"tag": pa.string(), **{f.name: {"uint64": pa.uint64(), "int64": pa.int64(), "string": pa.string()}[f.dtype]
                                    for f in EVENT_FIELDS}}
    # the same bytes, minus what a plain reader cannot digest (banner, header): its best case
    body = data[data.index(b"\nE\t") + 1:]
    return pacsv.read_csv(io.BytesIO(body), read_options=pacsv.ReadOptions(column_names=["tag", *FIELD_NAMES],
                                                                            block_size=1 << 24),
                          parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False,
                                                           invalid_row_handler=lambda row: "skip"),
                          convert_options=pacsv.ConvertOptions(column_types=types)).to_pandas(
        types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)  # the same frame type as ours


def strace_parser_ref(data: bytes):
    from strace_parser.json_transformer import to_json
    from strace_parser.parser import get_parser

    return to_json(get_parser().parse(data.decode()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="small inputs, 2 repetitions (a quick check)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args()
    reps = 2 if args.smoke else args.reps
    scale = 0.05 if args.smoke else 1.0
    samples = REPO / "tests" / "data" / "samples"
    fx = REPO / "tests" / "data" / "freebsd"
    inputs = [
        ("events", "events", gen_events(int(2_000_000 * scale)), pyarrow_plain, "pyarrow read_csv"),
        ("strace", "strace", gen_strace(int(4_000 * scale) or 200), strace_parser_ref, "strace-parser"),
        ("strace (large)", "strace", gen_strace(int(200_000 * scale)), None, ""),
        ("kdump", "kdump", repeat_file(fx / "kevent" / "ktrace-single-stock" / "raw" / "kdump.txt", int(20e6 * scale)), None, ""),
        ("truss", "truss", repeat_file(fx / "kevent-error" / "truss-split-d33271" / "raw" / "truss.txt", int(20e6 * scale)), None, ""),
        ("dtrace", "dtrace", repeat_file(samples / "dtrace" / "12-freebsd-testsuite-lquantize-aggpack-zoom.txt",
                                         int(10e6 * scale)), None, ""),
        ("bpftrace json", "bpftrace", repeat_file(REPO / "dscripts" / "linux" / "aiotrace-agg_example.txt",
                                                  int(10e6 * scale), skip_until='{"type"'), None, ""),
    ]
    info = machine_info()
    results = []
    for name, fmt, data, ref, ref_name in inputs:
        results.append(bench_format(name, fmt, data, reps, ref, ref_name))
        r = results[-1]
        print(f"{name}: {r['bytes'] / 1e6:.1f} MB, {r['mb_per_s'].fmt('.1f')} MB/s, pyarrow CSV "
              f"{r['csv_mb_per_s'].fmt('.1f')} MB/s (ours x{r['csv_ratio'].fmt('.2f')} its time)", file=sys.stderr)
    print("# Parser throughput\n")
    print("\n".join(f"- {k}: {v}" for k, v in info.items()) + f"\n- repetitions: {reps}\n")
    rows = []
    for r in results:
        ratio = "" if r["ratio"] is None else (
            f"{r['ratio'].fmt('.2f')} x pyarrow time" if r["format"] == "events"
            else f"{r['ratio'].fmt('.1f')} x faster than {r['reference']}")
        rows.append([r["format"], f"{r['bytes'] / 1e6:.1f}", f"{r['records']:,}", r["mb_per_s"].fmt(".1f"),
                     r["events_per_s"].fmt(".3g"), r["csv_mb_per_s"].fmt(".1f"), r["csv_ratio"].fmt(".2f"), ratio])
    print(md_table(["format", "MB", "records", "MB/s", "records/s", "pyarrow CSV MB/s", "x CSV time",
                    "ratio (same bytes, same run)"], rows))
    if args.json:
        args.json.write_text(json.dumps([{**r, "mb_per_s": r["mb_per_s"].values, "events_per_s": r["events_per_s"].values,
                                           "csv_mb_per_s": r["csv_mb_per_s"].values,
                                           "csv_ratio": r["csv_ratio"].values,
                                           "ratio": None if r["ratio"] is None else r["ratio"].values} for r in results],
                                         indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The normalized model: one set of tables whatever tracer produced the bundle.

Owned by the parser layer. Interface (used by tracer.analysis, notebooks, report, export):

    model = load_bundle(path)            # a run bundle directory (see tracer.capture.bundle)
    model.events    -> DataFrame  (MODEL_TABLES["events"])
    model.syscalls  -> DataFrame  (MODEL_TABLES["syscalls"])
    model.ios       -> DataFrame  (MODEL_TABLES["ios"])
    model.threads   -> DataFrame  (MODEL_TABLES["threads"])
    model.unparsed  -> DataFrame  (MODEL_TABLES["unparsed"])
    model.losses    -> dict       {"dropped_events": int, "unparsed_lines": int, "messages": [str, ...]}
    model.manifest  -> dict       (the bundle's manifest.json)
    model.summary   -> dict       (the workload's summary.json)
    model.window    -> (start_ns, stop_ns) or None
    model.has(table, *columns) -> bool   (non-empty table with non-null columns)

    model_from_trace(path, format="auto", os_name=None) -> Model   (a bare trace file, no bundle)
    model.aggregates -> DataFrame or None  (aggregation output: dtrace printa/quantize, bpftrace maps/hists)
    model.counts     -> dict  (input lines per kind: event, header, blank, drop...; see tracer.parse.base)

How the tables are built (the same way from every backend; every parser yields event rows):

* **Clock.** All times are ns in the trace's clock, moved to CLOCK_MONOTONIC where the bundle says
  how: event lines already are (bpftrace ``nsecs``; DTrace ``timestamp`` is monotonic with its own
  origin, see ``sync`` below); kdump -T / strace -ttt epoch times minus the manifest's
  ``clocks.realtime_minus_monotonic_ns``; truss -d / kdump -E relative times plus
  ``clocks.trace_origin_monotonic_ns``. The workload's record (CLOCK_MONOTONIC) is moved onto the
  trace clock by the ``sync`` event (``ts_ns - a0``) only when that offset exceeds 1 s (a different
  origin, as DTrace's); on Linux the two clocks are the same and the offset is probe latency.
* **syscalls.** ``sys_enter``/``sys_exit`` of one thread are paired when the exit directly follows
  the entry of the same name in that thread (rows sorted by ts, then line). An entry without an
  exit (exit_group, end of trace) keeps ``exit_ns`` NaN; an exit without an entry (the call in
  progress at attach) keeps ``enter_ns`` NaN. ``ret``/``err`` are nullable (Int64) for those.
  Extra columns: ``id`` (the aiocb / I/O identity the event carried), ``helper_io`` (True for
  pread64/pwrite64 made by glibc's POSIX-AIO helper threads: the I/O itself, role ``other``) and
  ``line`` (the input line of the entry, or of the exit when there is no entry).
* **roles** (ROLE_MAPS): FreeBSD aio_read/aio_write/aio_readv/aio_writev/lio_listio/aio_fsync (and
  compat6.*) = submit; kevent/compat11.kevent/aio_suspend/aio_waitcomplete = wait; aio_error =
  status; aio_return = result. aio_waitcomplete both waits and fetches the result: it is counted
  ONCE, as wait, and its exit time is the I/O's ``fetched_ns``. Linux io_submit = submit,
  io_getevents/io_pgetevents = wait, io_uring_enter = submit when to_submit (a1) > 0 else wait,
  everything else (futex in glibc's helpers, pread64/pwrite64) = other.
* **in_window**: entry time within [window_start, window_stop] from the workload's probe events,
  else the summary's window (moved to the trace clock).
* **ios**: one row per I/O of the workload's record (record/ios.parquet), or of the trace's
  ``reap``/``submit`` probe events when there is no record. Trace times join by I/O identity:
  ``reap`` probe events carry the I/O id (-> fetched_ns, result, reap_tid); kernel job events
  (job_done -> kernel_done_ns, job_notify -> notified_ns, job_free -> freed_ns) and aio syscalls
  carry the user aiocb address (FreeBSD ujob) or io_uring user_data, which the workload reuses.
  So the k-th *queue marker* in time order inside the measurement window is I/O id k (ids are
  assigned in submission order from the window's start; a queueing outside the window, such as
  the REAP availability probe, takes no id),
  and every later event with the same address belongs to that I/O until the address is queued
  again. Queue markers are ``job_queue`` events when the trace has them, else the ``sys_enter``
  of aio_read/aio_write/aio_readv/aio_writev/aio_fsync with an aiocb (kdump: the address; truss:
  the aiocb's offset, as truss prints aiocb contents, not addresses). lio_listio batches traced by
  kdump cannot be joined this way (kdump prints only the array pointer).
* **threads**: record/threads.parquet, plus every traced tid of the workload's pid it lacks
  (role ``other``, rusage NA).
* **losses**: drops the trace and tracer.stderr report (``Lost N events``, ``dtrace: N drops``,
  ``Events dropped.``, a truncated last line), or the manifest's count when that is larger.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tracer.base import modes
from tracer.base.errors import ParseError
from tracer.base.schema import MODEL_TABLES

# syscall -> role per OS: the union of the mode registry's per-mode roles (tracer.base.modes).
# io_uring_enter is "submit" there and "wait" when to_submit == 0 (see roles()).
ROLE_MAPS: dict[str, dict[str, str]] = {os_name: modes.role_map(os_name) for os_name in modes.OSES}
QUEUE_SYSCALLS = ("aio_read", "aio_write", "aio_readv", "aio_writev", "aio_fsync")
HELPER_IO = ("pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2", "fdatasync", "fsync")
SAME_CLOCK_NS = 1_000_000_000  # a sync offset below this means the record and trace share a clock


# What ru_inblock/ru_oublock count, per OS. Linux: 512-byte blocks (task_io_get_inblock is
# ioac.read_bytes >> 9). FreeBSD: block I/O OPERATIONS: vfs_bio.c adds 1 per buffer it reads
# (breada: read-ahead buffers too) and only aio_biowakeup (the aio_qbio raw-device path) adds
# btodb(nbytes). The two are not comparable, and bytes/512 is not a FreeBSD figure.
RUSAGE_UNITS = {"Linux": "512-byte blocks", "FreeBSD": "block I/O operations"}


def rusage_unit(os_name: str | None) -> str:
    """The unit of ru_inblock/ru_oublock on `os_name` (RUSAGE_UNITS; Linux when unknown)."""
    return RUSAGE_UNITS.get(os_name or "Linux", RUSAGE_UNITS["Linux"])


@dataclass
class Model:
    events: pd.DataFrame
    syscalls: pd.DataFrame
    ios: pd.DataFrame
    threads: pd.DataFrame
    unparsed: pd.DataFrame
    losses: dict
    manifest: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    window: tuple[float, float] | None = None
    format: str = ""
    lines: int = 0
    aggregates: pd.DataFrame | None = None
    counts: dict = field(default_factory=dict)
    foreign: bool = False  # a program other than aiotrace's workload: no per-I/O record
    io_counts: pd.DataFrame | None = None  # foreign: I/Os by evidence (source, count, note); see foreign_io_counts
    io_source: str | None = None  # foreign: the source io_total comes from
    io_total: int | None = None  # foreign: I/Os counted from kernel and syscall events

    @property
    def rusage_unit(self) -> str:
        """Unit of the threads table's inblock/oublock and of ru_charge a0/a1 (RUSAGE_UNITS)."""
        return rusage_unit(self.manifest.get("os") or self.summary.get("os"))

    def has(self, table: str, *columns: str) -> bool:
        """True when ``table`` has rows and each of ``columns`` has at least one non-null value."""
        frame = getattr(self, table, None)
        if frame is None or len(frame) == 0:
            return False
        return all(c in frame.columns and bool(frame[c].notna().any()) for c in columns)


def _read_json(path: Path) -> dict:
    """A JSON object file ({} when absent); ParseError when it is not JSON or not an object."""
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ParseError(f"unreadable JSON: {exc}", str(path)) from None
    if not isinstance(value, dict):
        raise ParseError(f"not a JSON object (a JSON {type(value).__name__})", str(path))
    return value


MANIFEST_SCHEMA_PREFIX = "aiotrace.manifest/"


def read_manifest(bundle: Path) -> dict:
    """The bundle's manifest.json as a dict; ParseError (one line) when it is missing, not JSON,
    not an object, or not an aiotrace manifest."""
    path = Path(bundle) / "manifest.json"
    if not path.is_file():
        raise ParseError("not a run bundle (no manifest.json)", str(bundle))
    manifest = _read_json(path)
    if not str(manifest.get("schema", "")).startswith(MANIFEST_SCHEMA_PREFIX):
        raise ParseError(f"not an aiotrace manifest (schema {manifest.get('schema')!r})", str(path))
    return manifest


def is_bundle(path: Path) -> bool:
    """True when ``path`` holds an aiotrace manifest.json (not some other program's manifest)."""
    try:
        read_manifest(path)
    except ParseError:
        return False
    return True


MODEL_VERSION = 3  # bump when build_model's output changes: cached models are rebuilt
MODEL_FRAMES = ("events", "syscalls", "ios", "threads", "unparsed", "aggregates", "io_counts")
MODEL_SCALARS = ("losses", "manifest", "summary", "format", "lines", "counts", "foreign", "io_source", "io_total")
BUILDS = {"count": 0}  # models built (not read from a cache) in this process: tests check the cache
_MEMO: dict[tuple, Model] = {}


def _fingerprint(bundle: Path, manifest: dict) -> str:
    """Key of a bundle's inputs: model and parser versions plus size and mtime of every file the
    model is built from (a re-captured or edited bundle gets a new key)."""
    import hashlib

    from tracer.parse.cache import PARSER_VERSION

    raw = manifest.get("raw") or {}
    files = ["manifest.json", "record/summary.json", "record/ios.parquet", "record/threads.parquet",
             str(raw.get("trace") or ""), str(raw.get("stderr") or "raw/tracer.stderr")]
    parts = [f"m{MODEL_VERSION}", f"p{PARSER_VERSION}"]
    for name in files:
        f = bundle / name if name else None
        st = f.stat() if f is not None and f.is_file() else None
        parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}" if st else f"{name}:-")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _load_cached(entry: Path) -> Model | None:
    try:
        meta = json.loads((entry / "model.json").read_text())
        frames = {n: pd.read_parquet(entry / f"{n}.parquet") if (entry / f"{n}.parquet").is_file() else None
                  for n in MODEL_FRAMES}
        window = tuple(meta["window"]) if meta.get("window") else None
        return Model(**frames, **{k: meta[k] for k in MODEL_SCALARS}, window=window)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable or hand-edited entry: rebuild (and replace) it


def _store_cached(entry: Path, model: Model) -> None:
    """Write the model's tables as Parquet under a temporary name, then rename (never half-written);
    a read-only bundle simply is not cached."""
    import shutil
    import tempfile

    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    except OSError:
        return
    try:
        for n in MODEL_FRAMES:
            frame = getattr(model, n)
            if frame is not None:
                frame = frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object})
                frame.to_parquet(tmp / f"{n}.parquet", index=False)
        meta = {**{k: getattr(model, k) for k in MODEL_SCALARS},
                "window": list(model.window) if model.window else None}
        (tmp / "model.json").write_text(json.dumps(meta, default=str))
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)
        os.rename(tmp, entry)
    except (OSError, ValueError, TypeError):
        shutil.rmtree(tmp, ignore_errors=True)


def load_bundle(path, cache: bool = True) -> Model:
    """The model of one run bundle, built once: kept in memory for this process and as Parquet in
    the bundle's ``cache/model-<key>/`` for the next (notebook kernels, `compare`, `summary`)."""
    bundle = Path(path)
    manifest = read_manifest(bundle)
    if not cache:
        return _build_bundle(bundle, manifest, cache=False)
    key = _fingerprint(bundle, manifest)
    memo_key = (str(bundle.resolve()), key)
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    entry = bundle / "cache" / f"model-{key}"
    model = _load_cached(entry) if (entry / "model.json").is_file() else None
    if model is None:
        model = _build_bundle(bundle, manifest, cache=True)
        _store_cached(entry, model)
    if len(_MEMO) > 512:
        _MEMO.clear()
    _MEMO[memo_key] = model
    return model


def _build_bundle(bundle: Path, manifest: dict, cache: bool) -> Model:
    """Parse the bundle's raw trace (its Parquet parse cache does the rest) and build the model."""

    BUILDS["count"] += 1
    summary = _read_json(bundle / "record" / "summary.json")
    raw = manifest.get("raw") or {}
    from tracer.parse.losses import bundle_losses
    trace = bundle / raw["trace"] if raw.get("trace") else None
    stderr = bundle / str(raw.get("stderr") or "raw/tracer.stderr")
    report, result = bundle_losses(trace if trace is not None and trace.is_file() else None,
                                   raw.get("format", "auto"), stderr, manifest.get("backend"),
                                   manifest.get("flavour"), cache=cache)
    rec_ios = _read_parquet(bundle / "record" / "ios.parquet")
    rec_threads = _read_parquet(bundle / "record" / "threads.parquet")
    extents = _read_json(bundle / "raw" / "extents.json") or None  # libbpf bundles: data file layout
    task_io = None
    task_io_rel = (manifest.get("target") or {}).get("task_io")
    if task_io_rel:
        from tracer.parse.task_io import read_task_io_file
        task_io = read_task_io_file(bundle / task_io_rel)
    return build_model(result, manifest, summary, rec_ios, rec_threads, loss_report=report, task_io=task_io,
                       extents=extents)


def model_from_trace(path, format: str = "auto", os_name: str | None = None, cache: bool = True) -> Model:
    """The model of a bare trace file (no record, no manifest)."""
    from tracer.parse import parse_file

    result = parse_file(path, format, cache=cache)
    if os_name is None:
        os_name = "FreeBSD" if result.format in ("kdump", "truss", "dtrace") else "Linux"
    return build_model(result, {"os": os_name}, {}, None, None)


def _read_parquet(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ParseError(f"unreadable Parquet: {exc}", str(path)) from None


def empty(table: str) -> pd.DataFrame:
    spec = MODEL_TABLES[table]
    return pd.DataFrame({c: pd.Series(dtype={"string": "string", "bool": "bool"}.get(t, t)) for c, t in spec.items()})


def is_foreign(manifest: dict) -> bool:
    """True for a bundle of a program that is not aiotrace's workload (capture -- CMD / -p PID)."""
    return (manifest.get("target") or {}).get("kind") in ("command", "pid")


def build_model(result, manifest: dict, summary: dict, rec_ios: pd.DataFrame | None,
                rec_threads: pd.DataFrame | None, side_drops: int = 0, side_messages: list | None = None,
                loss_report=None, task_io: pd.DataFrame | None = None, extents: dict | None = None) -> Model:
    os_name = manifest.get("os") or summary.get("os") or "Linux"
    foreign = is_foreign(manifest)
    if result is None:
        events, unparsed, clock = empty("events"), empty("unparsed"), "monotonic"
        losses = {"dropped_events": 0, "messages": []}
    else:
        events, unparsed, clock, losses = result.events, result.unparsed, result.clock, result.losses
    events = _to_monotonic(events, clock, manifest)  # a new frame when it shifts, never in place
    events = _time_ordered(events)
    offset = _record_offset(events)
    timed = clock != "none"
    if foreign and task_io is not None and len(task_io) and len(events):
        # strace knows threads, not processes (pid == tid on every line): /proc's (pid, tid) says
        # which process each traced thread belonged to
        tgid = task_io.drop_duplicates("tid").set_index("tid")["pid"]
        events = events.copy()  # the parse result's columns may be read-only (never copied above)
        own = events["pid"] == events["tid"]
        mapped = events.loc[own, "tid"].map(tgid)
        events.loc[own, "pid"] = mapped.fillna(events.loc[own, "pid"]).astype(events["pid"].dtype)
    syscalls = _syscalls(events, os_name, manifest, timed, foreign)
    aggregates = getattr(result, "aggregates", None)
    from_counts = len(syscalls) == 0 and os_name == "Linux" and _has_map(aggregates, "@syscalls")
    if from_counts:
        syscalls = _syscalls_from_counts(aggregates, os_name, manifest)
    window = _window(events, summary, offset)
    if window is None and foreign:
        window = _io_window(events, syscalls)
    if from_counts:
        pass  # in_window comes from the in-kernel window counts
    elif window is not None and len(syscalls):
        start, stop = window
        syscalls["in_window"] = (syscalls["enter_ns"].fillna(syscalls["exit_ns"]) >= start) & \
                                (syscalls["enter_ns"].fillna(syscalls["exit_ns"]) <= stop)
    elif len(syscalls):
        syscalls["in_window"] = True
    ios = _ios(events, syscalls, rec_ios, offset, window if timed else None)
    if os_name == "Linux" and rec_ios is not None and len(ios) and not foreign:
        _linux_free_points(ios, events, syscalls, (manifest.get("spec") or {}).get("mode") or "", extents)
    if foreign:
        threads = _foreign_threads(task_io, events, syscalls)
        counts = foreign_io_counts(events, syscalls, os_name)
        io_source = next((r.source for r in counts.itertuples() if r.count > 0), None)
        io_total = int(counts.loc[counts["source"] == io_source, "count"].iloc[0]) if io_source else 0
    else:
        threads = _threads(rec_threads, events, manifest, summary)
        counts, io_source, io_total = None, None, None
    m_losses = manifest.get("losses") or {}
    manifest_dropped = int(m_losses.get("dropped_events") or 0)
    if loss_report is not None:
        dropped = loss_report.dropped_events
        messages, excess, unknown = list(loss_report.messages), loss_report.excess_lines, loss_report.unknown
    else:
        dropped = int(losses.get("dropped_events", 0)) + int(side_drops)
        messages = list(losses.get("messages", []))[:100] + list(side_messages or [])[:100]
        excess, unknown = int(losses.get("excess_lines") or 0), False
    all_losses = {"dropped_events": max(dropped, manifest_dropped), "unparsed_lines": int(len(unparsed)),
                  "messages": messages}
    excess = max(int(excess), int(m_losses.get("excess_lines") or 0))
    if excess:  # more lines of a kind than bpftrace printed (duplicated lines)
        all_losses["excess_lines"] = excess
    if unknown or m_losses.get("unknown"):  # the trace cannot say what it lost (no @emitted trailer)
        all_losses["unknown"] = True
    return Model(foreign=foreign, io_counts=counts, io_source=io_source, io_total=io_total,
                 events=events, syscalls=syscalls, ios=ios, threads=threads, unparsed=unparsed,
                 losses=all_losses, manifest=manifest, summary=summary, window=window,
                 format=getattr(result, "format", ""), lines=getattr(result, "lines", 0),
                 aggregates=getattr(result, "aggregates", None), counts=dict(getattr(result, "counts", {}) or {}))


def _time_ordered(events: pd.DataFrame) -> pd.DataFrame:
    """Events sorted by (ts_ns, line) with a fresh RangeIndex. Traces mostly arrive in that order:
    then the frame is returned as is (sorting 10 M rows copies every column)."""
    ts, line = events["ts_ns"].to_numpy(), events["line"].to_numpy()
    if len(events) < 2:
        return events.reset_index(drop=True)
    dts = np.diff(ts.astype("int64", copy=False))  # ns fit in int64 for centuries
    ordered = bool(np.all((dts > 0) | ((dts == 0) & (np.diff(line) >= 0))))
    del dts
    if ordered and isinstance(events.index, pd.RangeIndex) and events.index.start == 0 and events.index.step == 1:
        return events
    if ordered:
        return events.reset_index(drop=True)
    return events.sort_values(["ts_ns", "line"], kind="stable").reset_index(drop=True)


def _to_monotonic(events: pd.DataFrame, clock: str, manifest: dict) -> pd.DataFrame:
    clocks = manifest.get("clocks") or {}
    if clock == "realtime" and "realtime_minus_monotonic_ns" in clocks:
        shift = -int(clocks["realtime_minus_monotonic_ns"])
    elif clock == "relative" and "trace_origin_monotonic_ns" in clocks:
        shift = int(clocks["trace_origin_monotonic_ns"])
    else:
        return events
    return events.assign(ts_ns=(events["ts_ns"].astype("int64") + shift).astype("uint64"))


def _record_offset(events: pd.DataFrame) -> int:
    """trace clock - workload clock, from the sync probe, when they differ in origin (see module doc)."""
    sync = events[events["ev"] == "sync"]
    if len(sync) == 0:
        return 0
    off = int(sync["ts_ns"].iloc[0]) - int(sync["a0"].iloc[0])
    return off if abs(off) > SAME_CLOCK_NS else 0


def roles(names: pd.Series, a1: pd.Series, os_name: str) -> pd.Series:
    """Role per syscall (see ROLE_MAPS)."""
    table = ROLE_MAPS.get(os_name, ROLE_MAPS["Linux"])
    role = names.map(table).fillna("other").astype("string")
    if os_name != "FreeBSD":
        role = role.mask((names == "io_uring_enter") & (a1.fillna(0) <= 0), "wait")
    return role


def _syscalls(events: pd.DataFrame, os_name: str, manifest: dict, timed: bool, foreign: bool = False) -> pd.DataFrame:
    sc = events[events["ev"].isin(["sys_enter", "sys_exit"])]
    if len(sc) == 0:
        out = empty("syscalls")
        out["id"], out["helper_io"] = pd.Series(dtype="int64"), pd.Series(dtype="bool")
        out["line"] = pd.Series(dtype="int64")
        return out
    sc = sc.sort_values(["tid", "ts_ns", "line"], kind="stable").reset_index(drop=True)
    is_enter = (sc["ev"] == "sys_enter").to_numpy()
    tid, name = sc["tid"].to_numpy(), sc["name"].astype(object).to_numpy()
    nxt_exit = np.zeros(len(sc), bool)
    nxt_exit[:-1] = (~is_enter[1:]) & (tid[1:] == tid[:-1]) & (name[1:] == name[:-1])
    paired = is_enter & nxt_exit
    consumed = np.zeros(len(sc), bool)
    consumed[1:] = paired[:-1]
    ts = sc["ts_ns"].astype("float64").to_numpy()
    nxt = np.arange(len(sc)) + 1
    nxt[-1] = len(sc) - 1
    ent = np.flatnonzero(is_enter)
    lone_exit = np.flatnonzero(~is_enter & ~consumed)
    ret = sc["ret"].to_numpy()
    err = sc["err"].to_numpy()
    ids = sc["id"].to_numpy()

    def pick(arr, idx, ok, fill):
        return np.where(ok, arr[nxt[idx]], fill)

    pe = paired[ent]
    enter_part = pd.DataFrame({
        "tid": tid[ent], "pid": sc["pid"].to_numpy()[ent], "name": name[ent],
        "enter_ns": ts[ent], "exit_ns": pick(ts, ent, pe, np.nan),
        "ret": pd.array(np.where(pe, ret[nxt[ent]], 0), dtype="Int64"),
        "err": pd.array(np.where(pe, err[nxt[ent]], 0), dtype="Int64"),
        "a0": sc["a0"].to_numpy()[ent], "a1": sc["a1"].to_numpy()[ent], "a2": sc["a2"].to_numpy()[ent],
        "id": np.where(ids[ent] != 0, ids[ent], np.where(pe, ids[nxt[ent]], 0)),
        "line": sc["line"].to_numpy()[ent]})
    enter_part.loc[~pe, ["ret", "err"]] = pd.NA
    exit_part = pd.DataFrame({
        "tid": tid[lone_exit], "pid": sc["pid"].to_numpy()[lone_exit], "name": name[lone_exit],
        "enter_ns": np.nan, "exit_ns": ts[lone_exit],
        "ret": pd.array(ret[lone_exit], dtype="Int64"), "err": pd.array(err[lone_exit], dtype="Int64"),
        "a0": 0, "a1": 0, "a2": 0, "id": ids[lone_exit], "line": sc["line"].to_numpy()[lone_exit]})
    out = pd.concat([enter_part, exit_part], ignore_index=True)
    out = out.sort_values(["line"], kind="stable").reset_index(drop=True)
    out["name"] = out["name"].astype("string")
    out["dur_ns"] = out["exit_ns"] - out["enter_ns"]
    if not timed:
        out[["enter_ns", "exit_ns", "dur_ns"]] = np.nan
    out["role"] = roles(out["name"], out["a1"], os_name)
    mode = ((manifest.get("spec") or {}).get("mode") or "")
    helper = out["name"].isin(HELPER_IO) & (os_name != "FreeBSD")
    # a foreign program's mode is unknown: glibc's AIO helpers are never a process's main thread
    out["helper_io"] = helper & (out["tid"] != out["pid"]) if foreign else helper & mode.startswith("aio-")
    out["in_window"] = True
    cols = list(MODEL_TABLES["syscalls"]) + ["id", "helper_io", "line"]
    return out[cols].astype({"a0": "int64", "a1": "int64", "a2": "int64", "id": "int64", "tid": "int64",
                             "pid": "int64", "in_window": "bool"})


def _has_map(aggregates: pd.DataFrame | None, name: str) -> bool:
    return aggregates is not None and len(aggregates) > 0 and bool((aggregates["map"] == name).any())


def _map_counts(aggregates: pd.DataFrame, name: str) -> pd.DataFrame:
    """A keyed count map ("tid,nr" or "tid" keys) -> columns tid, nr (-1 when absent), n."""
    rows = aggregates[(aggregates["map"] == name) & (aggregates["kind"] == "map")]
    keys = rows["key"].astype(str).str.split(",", expand=True)
    return pd.DataFrame({"tid": pd.to_numeric(keys[0]).astype("int64").to_numpy(),
                         "nr": (pd.to_numeric(keys[1]).astype("int64").to_numpy() if keys.shape[1] > 1
                                else np.full(len(rows), -1)),
                         "n": rows["value"].astype("int64").to_numpy()})


def _syscalls_from_counts(aggregates: pd.DataFrame, os_name: str, manifest: dict) -> pd.DataFrame:
    """The syscalls table of an aggregate bundle (in-kernel counts per thread and syscall): one row
    per counted call, without times (enter/exit/dur NaN), so the amplification analyses run on it
    unchanged. ``in_window`` rows come from @window_syscalls, the rest of @syscalls is outside.
    io_uring_enter calls get a1 = 1 (submit role) for the in-window ones counted in
    @window_iou_enter_submit, else 0 (wait)."""
    import tracer.data
    total = _map_counts(aggregates, "@syscalls")
    inwin = _map_counts(aggregates, "@window_syscalls") if _has_map(aggregates, "@window_syscalls") \
        else total.assign(n=0)
    both = total.merge(inwin, on=["tid", "nr"], how="outer", suffixes=("", "_win")).fillna(0)
    both["n_win"] = np.minimum(both["n_win"], both["n"]).astype("int64")
    rep_win, rep_out = both["n_win"].to_numpy(), (both["n"] - both["n_win"]).astype("int64").to_numpy()
    names_tbl = tracer.data.linux_syscall_names()
    names = np.array([names_tbl.get(int(n), f"nr{int(n)}") for n in both["nr"]], dtype=object)
    tid, nr = both["tid"].to_numpy(), both["nr"].to_numpy()
    in_window = np.concatenate([np.ones(rep_win.sum(), bool), np.zeros(rep_out.sum(), bool)])
    out = pd.DataFrame({"tid": np.concatenate([np.repeat(tid, rep_win), np.repeat(tid, rep_out)]),
                        "name": np.concatenate([np.repeat(names, rep_win), np.repeat(names, rep_out)]),
                        "in_window": in_window})
    out["a1"] = 0
    if _has_map(aggregates, "@window_iou_enter_submit"):
        sub = _map_counts(aggregates, "@window_iou_enter_submit").set_index("tid")["n"]
        enter = out["in_window"] & (out["name"] == "io_uring_enter")
        rank = out[enter].groupby("tid").cumcount()
        out.loc[rank.index, "a1"] = (rank < out.loc[rank.index, "tid"].map(sub).fillna(0)).astype("int64")
    n = len(out)
    pid = manifest.get("workload_pid")
    out = out.assign(pid=int(pid) if pid else 0, enter_ns=np.nan, exit_ns=np.nan, dur_ns=np.nan,
                     ret=pd.array([pd.NA] * n, dtype="Int64"), err=pd.array([pd.NA] * n, dtype="Int64"),
                     a0=0, a2=0, id=0, line=0)
    out["name"] = out["name"].astype("string")
    out["role"] = roles(out["name"], out["a1"], os_name)
    mode = ((manifest.get("spec") or {}).get("mode") or "")
    out["helper_io"] = out["name"].isin(HELPER_IO) & mode.startswith("aio-")
    cols = list(MODEL_TABLES["syscalls"]) + ["id", "helper_io", "line"]
    return out[cols].astype({"a0": "int64", "a1": "int64", "a2": "int64", "id": "int64", "tid": "int64",
                             "pid": "int64", "in_window": "bool"})


def _window(events: pd.DataFrame, summary: dict, offset: int) -> tuple[float, float] | None:
    start = events.loc[events["ev"] == "window_start", "ts_ns"]
    stop = events.loc[events["ev"] == "window_stop", "ts_ns"]
    if len(start) and len(stop):
        return float(start.iloc[0]), float(stop.iloc[-1])
    win = summary.get("window") or {}
    if win.get("start_ns") is not None and win.get("stop_ns") is not None:
        return float(win["start_ns"]) + offset, float(win["stop_ns"]) + offset
    return None


def _io_window(events: pd.DataFrame, syscalls: pd.DataFrame) -> tuple[float, float] | None:
    """A foreign program's measurement window, which it does not mark: from its first I/O syscall
    (submit/wait/status/result role, or a glibc helper's pread/pwrite) or io_uring request to its
    last; None when it did no I/O the trace shows. Start-up and shutdown stay outside."""
    io_calls = syscalls[syscalls["role"].isin(["submit", "wait", "status", "result"]) | syscalls["helper_io"]]
    starts = [io_calls["enter_ns"].fillna(io_calls["exit_ns"])]
    stops = [io_calls["exit_ns"].fillna(io_calls["enter_ns"])]
    kernel = events.loc[events["ev"].isin(["job_queue", "job_done"]), "ts_ns"].astype("float64")
    starts.append(kernel)
    stops.append(kernel)
    start, stop = pd.concat(starts).min(), pd.concat(stops).max()
    if pd.isna(start) or pd.isna(stop):
        return None
    return float(start), float(stop)


def _queue_markers(events: pd.DataFrame, syscalls: pd.DataFrame,
                   window: tuple[float, float] | None = None) -> pd.DataFrame:
    """(key, ts, line) of every queueing of an I/O inside the measurement window, in time order
    (see module doc). I/O ids count from 0 at the window's first submission, so a queueing outside
    it (REAP's availability probe after the tracer attached, check_spec's probe under a wrapping
    tracer, a warm-up) must not take an id."""
    q = events[(events["ev"] == "job_queue") & (events["ret"] == 0) & (events["id"] != 0)]
    if len(q):
        out = pd.DataFrame({"key": q["id"].to_numpy(), "ts": q["ts_ns"].astype("float64").to_numpy(),
                            "line": q["line"].to_numpy()})
    else:
        s = syscalls[syscalls["name"].isin(QUEUE_SYSCALLS) & (syscalls["id"] != 0)
                     & (syscalls["ret"].fillna(0) == 0)]
        out = pd.DataFrame({"key": s["id"].to_numpy(), "ts": s["enter_ns"].fillna(s["exit_ns"]).to_numpy(),
                            "line": s["line"].to_numpy()}).sort_values(["ts", "line"], kind="stable")
    if window is not None and len(out) and out["ts"].notna().any():
        start, stop = window
        out = out[(out["ts"] >= start) & (out["ts"] <= stop)]
    return out.reset_index(drop=True)


def _join_by_key(markers: pd.DataFrame, targets: pd.DataFrame) -> np.ndarray:
    """I/O id (ordinal of its queue marker) for each target row (key, ts, line); -1 when none."""
    if len(markers) == 0 or len(targets) == 0:
        return np.full(len(targets), -1)
    m = markers.assign(io=np.arange(len(markers)), is_marker=1, order=-1)
    t = targets[["key", "ts", "line"]].assign(io=-1, is_marker=0, order=np.arange(len(targets)))
    both = pd.concat([m, t], ignore_index=True).sort_values(["ts", "is_marker", "line"],
                                                            ascending=[True, False, True], kind="stable")
    both["gen"] = both.groupby("key")["is_marker"].cumsum()
    ios = both[both["is_marker"] == 1][["key", "gen", "io"]]
    tg = both[both["is_marker"] == 0].drop(columns=["io"]).merge(ios, on=["key", "gen"], how="left")
    out = np.full(len(targets), -1)
    out[tg["order"].to_numpy()] = tg["io"].fillna(-1).astype("int64").to_numpy()
    return out


def _ios(events: pd.DataFrame, syscalls: pd.DataFrame, rec: pd.DataFrame | None, offset: int,
         window: tuple[float, float] | None = None) -> pd.DataFrame:
    cols = MODEL_TABLES["ios"]
    reap = events[events["ev"] == "reap"]
    if rec is not None and len(rec):
        ios = pd.DataFrame({"id": rec["id"].astype("int64"), "op": rec["op"].astype("string"),
                            "offset": rec["offset"].astype("int64"), "bytes": rec["bytes"].astype("int64"),
                            "submit_ns": rec["submit_ns"].astype("float64") + offset,
                            "record_complete_ns": rec["complete_ns"].astype("float64") + offset,
                            "result": rec["result"].astype("int64"),
                            "submit_tid": rec["submit_tid"].astype("int64"),
                            "reap_tid": rec["reap_tid"].astype("int64")})
    else:
        sub = events[events["ev"] == "submit"]
        sub_ids = np.concatenate([np.arange(i, i + max(int(n), 0)) for i, n in zip(sub["id"], sub["a0"])]) \
            if len(sub) else np.array([], dtype="int64")
        sub_ts = np.repeat(sub["ts_ns"].astype("float64").to_numpy(), np.maximum(sub["a0"].to_numpy(), 0)) \
            if len(sub) else np.array([])
        sub_tid = np.repeat(sub["tid"].to_numpy(), np.maximum(sub["a0"].to_numpy(), 0)) if len(sub) else np.array([])
        ids = np.union1d(sub_ids, reap["id"].to_numpy()).astype("int64")
        ios = pd.DataFrame({"id": ids})
        s = pd.DataFrame({"id": sub_ids, "submit_ns": sub_ts, "submit_tid": sub_tid}).drop_duplicates("id")
        ios = ios.merge(s, on="id", how="left")
        ios["op"], ios["offset"], ios["bytes"] = pd.NA, pd.NA, pd.NA
    ios = ios.set_index("id", drop=False)
    # fetched: the workload's reap probe (id = I/O id) first
    if len(reap):
        r = reap.drop_duplicates("id").set_index("id")
        ios["fetched_ns"] = r["ts_ns"].astype("float64").reindex(ios.index)
        if "result" not in ios:
            ios["result"] = r["ret"].reindex(ios.index)
            ios["reap_tid"] = r["tid"].reindex(ios.index)
    else:
        ios["fetched_ns"] = np.nan
    markers = _queue_markers(events, syscalls, window)
    order_ids = ios["id"].sort_values().to_numpy()

    def by_io(frame: pd.DataFrame, ts_col: str, first: bool = True) -> pd.Series:
        if len(frame) == 0:
            return pd.Series(np.nan, index=ios.index)
        k = _join_by_key(markers, pd.DataFrame({"key": frame["id"].to_numpy(), "ts": frame[ts_col].to_numpy(),
                                                "line": frame["line"].to_numpy()}))
        ok = (k >= 0) & (k < len(order_ids))
        got = pd.DataFrame({"io": order_ids[k[ok]], "ts": frame[ts_col].to_numpy()[ok]})
        agg = got.groupby("io")["ts"].min() if first else got.groupby("io")["ts"].max()
        return agg.reindex(ios.index)

    def kind(name: str) -> pd.DataFrame:  # the rows of one kind with an id, ts as float (no full copy)
        rows = events[(events["ev"] == name).to_numpy() & (events["id"] != 0).to_numpy()]
        return pd.DataFrame({"id": rows["id"].to_numpy(), "ts": rows["ts_ns"].to_numpy(dtype="float64"),
                             "line": rows["line"].to_numpy()})

    ios["kernel_done_ns"] = by_io(kind("job_done"), "ts")
    ios["notified_ns"] = by_io(kind("job_notify"), "ts")
    ios["freed_ns"] = by_io(kind("job_free"), "ts")
    fetch_calls = syscalls[syscalls["name"].isin(["aio_return", "aio_waitcomplete"]) & (syscalls["id"] != 0)
                           & syscalls["exit_ns"].notna()]
    from_calls = by_io(fetch_calls, "exit_ns")
    ios["fetched_ns"] = ios["fetched_ns"].fillna(from_calls)
    if "record_complete_ns" in ios:
        # the record's complete time is when the program learned of it: a fetch time when the trace has none
        ios["fetched_ns"] = ios["fetched_ns"].fillna(ios.pop("record_complete_ns"))
    for c in ("result", "submit_tid", "reap_tid"):
        if c not in ios:
            ios[c] = pd.NA
    out = ios.reset_index(drop=True)[list(cols)]
    for c, t in cols.items():
        if t == "int64":
            out[c] = out[c].astype("int64") if out[c].notna().all() else out[c].astype("Int64")
        elif t == "float64":
            out[c] = out[c].astype("float64")
        else:
            out[c] = out[c].astype("string")
    return out


def _linux_free_points(ios: pd.DataFrame, events: pd.DataFrame, syscalls: pd.DataFrame, mode: str,
                       extents: dict | None) -> None:
    """Fill ``kernel_done_ns`` (and ``freed_ns`` for libaio) of Linux I/Os from kernel events alone,
    with no per-I/O probe: the workload's record gives each I/O's offset, threads and the time it
    learned of the completion (``fetched_ns``). In place.

    * libaio: kernel done = the ``blk_done`` of the I/O's sector (offset -> sector through the data
      file's extents, raw/extents.json; O_DIRECT only, buffered I/O has no block request), first
      after its submit; freed = the return of the reaping thread's last ``io_getevents`` at or before
      the record's completion time: the call that harvested its io_event (ring slot freed).
    * glibc POSIX AIO (aio-*): kernel done = the return of the helper thread's pread64/pwrite64 at the
      I/O's offset (``id`` holds the offset in libbpf traces), last at or before the completion time;
      release = ``aio_return`` as the workload saw it (user-space state, no kernel object).
    * io_uring: kernel done = ``io_uring_complete`` (already joined by user_data); release = the
      workload's reap, after which it advances the CQ head (the record's completion time).
    """
    want = ios["fetched_ns"].notna()
    if mode == "libaio" and extents and extents.get("extents"):
        ext = pd.DataFrame(extents["extents"]).sort_values("logical")
        off = ios["offset"].astype("int64").to_numpy()
        i = np.searchsorted(ext["logical"].to_numpy(), off, side="right") - 1
        ok = (i >= 0) & want.to_numpy()
        i = np.clip(i, 0, None)
        phys = ext["physical"].to_numpy()[i] + off - ext["logical"].to_numpy()[i]
        sector = phys // 512 + int(extents.get("partition_start_sector") or 0)
        done = events[(events["ev"] == "blk_done")]
        if len(done):
            d = pd.DataFrame({"sector": done["a1"].to_numpy(), "ts": done["ts_ns"].astype("float64").to_numpy()})
            q = pd.DataFrame({"row": np.flatnonzero(ok), "sector": sector[ok],
                              "ts": ios["submit_ns"].to_numpy()[ok]}).dropna()
            if len(q):
                got = pd.merge_asof(q.sort_values("ts"), d.sort_values("ts").rename(columns={"ts": "done"}),
                                    left_on="ts", right_on="done", by="sector", direction="forward")
                col = ios["kernel_done_ns"].to_numpy(copy=True)
                col[got["row"].to_numpy()] = got["done"].to_numpy()
                ios["kernel_done_ns"] = col
        waits = syscalls[syscalls["name"].isin(["io_getevents", "io_pgetevents"]) & syscalls["exit_ns"].notna()
                         & (syscalls["ret"].fillna(0) > 0)]
        if len(waits):
            ios["freed_ns"] = _last_before(ios, waits["tid"], waits["exit_ns"], "reap_tid")
    elif mode.startswith("aio-"):
        helper = syscalls[syscalls["helper_io"] & syscalls["exit_ns"].notna() & (syscalls["ret"].fillna(-1) >= 0)]
        if len(helper):
            ios["kernel_done_ns"] = ios["kernel_done_ns"].fillna(
                _last_before(ios, helper["id"], helper["exit_ns"], "offset"))


def _last_before(ios: pd.DataFrame, keys: pd.Series, times: pd.Series, io_key: str) -> pd.Series:
    """Per I/O: the latest ``times`` with ``keys`` equal to the I/O's ``io_key`` at or before its
    ``fetched_ns`` (NaN when none)."""
    cand = pd.DataFrame({"key": keys.astype("int64").to_numpy(), "t": times.astype("float64").to_numpy()})
    q = pd.DataFrame({"row": np.arange(len(ios)), "key": pd.array(ios[io_key]).astype("Int64"),
                      "fetched": ios["fetched_ns"].astype("float64").to_numpy()}).dropna()
    out = np.full(len(ios), np.nan)
    if len(q) and len(cand):
        q["key"] = q["key"].astype("int64")
        got = pd.merge_asof(q.sort_values("fetched"), cand.sort_values("t"), left_on="fetched", right_on="t",
                            by="key", direction="backward")
        out[got["row"].to_numpy()] = got["t"].to_numpy()
    return pd.Series(out, index=ios.index)


def _threads(rec: pd.DataFrame | None, events: pd.DataFrame, manifest: dict, summary: dict) -> pd.DataFrame:
    cols = MODEL_TABLES["threads"]
    if rec is not None and len(rec):
        th = rec.copy()
    elif summary.get("threads"):
        th = pd.DataFrame(summary["threads"])
    else:
        th = pd.DataFrame({c: pd.Series(dtype="int64") for c in ("tid",)})
    pid = manifest.get("workload_pid") or summary.get("pid")
    mine = events if pid is None else events[events["pid"] == int(pid)]
    traced = set(int(t) for t in mine.loc[mine["ev"].isin(["sys_enter", "sys_exit", "submit", "reap"]), "tid"].unique())
    extra = sorted(traced - set(th["tid"].astype("int64")))
    if extra:
        th = pd.concat([th, pd.DataFrame({"tid": extra, "name": pd.NA, "role": "other"})], ignore_index=True)
    for c, t in cols.items():
        if c not in th:
            th[c] = pd.NA
        if t == "int64":
            th[c] = th[c].astype("int64") if th[c].notna().all() else th[c].astype("Int64")
        else:
            th[c] = th[c].astype("string")
    th = th[list(cols)].reset_index(drop=True)
    unknown = [c for c, t in cols.items() if t == "int64" and c != "tid"]
    th[unknown] = th[unknown].astype("Int64").mask(th[unknown].astype("Int64") < 0)  # -1 = not known here
    th["name"] = thread_names(th, os_name=manifest.get("os") or summary.get("os") or "Linux",
                              mode=str((manifest.get("spec") or {}).get("mode") or ""))
    return th


# Threads the workload did not start are named by what they are, not by the comm they inherited
# (glibc's AIO helpers inherit the submitter's name; FreeBSD's aiod are kernel processes).
HELPER_NAMES = {"iou-wrk": "iou-wrk", "iou-sqp": "iou-sqp", "aiod": "aiod"}
OWN_NAMES = {"submitter": "submitter", "reaper": "reaper", "both": "submitter", "main": "main"}


def thread_names(threads: pd.DataFrame, os_name: str, mode: str) -> pd.Series:
    """Display name per thread: helpers by role (glibc AIO helper, iou-wrk, iou-sqp, aiod), the
    workload's own threads by the name they gave themselves, else by role; never missing."""
    role = threads["role"].fillna("other").astype(str)
    helper = "glibc AIO helper" if os_name == "Linux" and mode.startswith("aio-") else "aiod" \
        if os_name == "FreeBSD" else "helper"
    by_role = role.map({**HELPER_NAMES, "helper": helper})
    own = role.map(OWN_NAMES)
    name = threads["name"].astype("string")
    name = name.mask(name.isin(["?", "", "nan"]))
    return by_role.fillna(name).fillna(own).fillna(role).astype("string")


# Where a foreign program's I/O count comes from, best evidence first (per OS). Each is a count of
# completed I/Os the kernel or the program's syscalls show, with no workload record.
IO_SOURCES = {
    "Linux": (
        ("io_uring CQEs", "job_done events from io_uring_complete (bpftrace): one per completion"),
        ("io_getevents results", "sum of io_getevents/io_pgetevents return values: libaio completions"),
        ("io_uring_enter submitted", "sum of io_uring_enter returns with to_submit > 0 (strace sees no CQEs)"),
        ("POSIX AIO helper I/O", "pread/pwrite made by non-main threads (glibc's AIO helpers)"),
        ("block completions", "blk_done events (a lower bound: completions are matched by sector)"),
    ),
    "FreeBSD": (
        ("aio_complete", "job_done events (fbt aio_complete): one per kernel job"),
        ("aio_return/aio_waitcomplete", "successful aio_return and aio_waitcomplete calls"),
        ("EVFILT_AIO kevents", "job_notify events (filt_aio): completions posted to a kqueue"),
        ("block completions", "blk_done events"),
    ),
}


def foreign_io_counts(events: pd.DataFrame, syscalls: pd.DataFrame, os_name: str) -> pd.DataFrame:
    """I/Os a program did, by every source the trace has (``source``, ``count``, ``note``), in the
    order of IO_SOURCES: the first non-zero one is the model's ``io_total``."""
    ev = events["ev"]
    sc = syscalls[syscalls["in_window"]] if "in_window" in syscalls else syscalls
    ret = sc["ret"].fillna(0).astype("int64").clip(lower=0)
    name = sc["name"]
    if os_name == "FreeBSD":
        values = [int(((ev == "job_done") & (events["name"] != "block_rq_complete")).sum()),
                  int((name.isin(["aio_return", "aio_waitcomplete"]) & sc["ret"].fillna(-1).ge(0)).sum()),
                  int((ev == "job_notify").sum()),
                  int((ev == "blk_done").sum())]
    else:
        values = [int(((ev == "job_done") & (events["name"] == "io_uring_complete")).sum()),
                  int(ret[name.isin(["io_getevents", "io_pgetevents"])].sum()),
                  int(ret[(name == "io_uring_enter") & (sc["a1"] > 0)].sum()),
                  int((sc["helper_io"] & sc["ret"].fillna(-1).ge(0)).sum()),
                  int((ev == "blk_done").sum())]
    table = IO_SOURCES.get(os_name, IO_SOURCES["Linux"])
    return pd.DataFrame({"source": [t[0] for t in table], "count": values, "note": [t[1] for t in table]})


def _foreign_threads(task_io: pd.DataFrame | None, events: pd.DataFrame, syscalls: pd.DataFrame) -> pd.DataFrame:
    """Threads of a foreign program: every traced tid, named by its comm (raw/task_io.tsv), its role
    read from the syscalls it made (submit + wait/result: both; submit: submitter; wait/result:
    reaper; helper pread/pwrite: helper; io_uring workers by comm), and its /proc io bytes."""
    cols = MODEL_TABLES["threads"]
    tids = pd.Index(sorted(set(syscalls["tid"].astype("int64")) |
                           set(events.loc[events["ev"].isin(["job_queue", "blk_queue"]), "tid"].astype("int64"))))
    th = pd.DataFrame({"tid": tids})
    if task_io is not None and len(task_io):
        tio = task_io.drop_duplicates("tid", keep="last").set_index("tid")
        th = th.merge(pd.DataFrame({"tid": tio.index}), on="tid", how="outer")
        th["name"] = tio["comm"].reindex(th["tid"]).to_numpy()
        th["io_read_bytes"] = tio["read_bytes"].reindex(th["tid"]).to_numpy()
        th["io_write_bytes"] = tio["write_bytes"].reindex(th["tid"]).to_numpy()
    roles = syscalls.groupby("tid")["role"].agg(lambda r: frozenset(r.dropna())) if len(syscalls) else pd.Series(dtype=object)
    helpers = syscalls.loc[syscalls["helper_io"], "tid"].unique() if len(syscalls) else []
    def role_of(tid, name) -> str:
        name = "" if name is None or name is pd.NA or (isinstance(name, float) and np.isnan(name)) else str(name)
        if name.startswith("iou-wrk"):
            return "iou-wrk"
        if name.startswith("iou-sqp"):
            return "iou-sqp"
        r = roles.get(tid, frozenset())
        sub, reap = "submit" in r, bool(r & {"wait", "result", "status"})
        if sub and reap:
            return "both"
        if sub:
            return "submitter"
        if reap:
            return "reaper"
        return "helper" if tid in helpers else "other"
    names = th["name"] if "name" in th else pd.Series([None] * len(th))
    th["role"] = [role_of(t, n) for t, n in zip(th["tid"], names)]
    for c, t in cols.items():
        if c not in th:
            th[c] = pd.NA
        if t == "int64":
            th[c] = pd.to_numeric(th[c], errors="coerce")
            th[c] = th[c].astype("int64") if th[c].notna().all() else th[c].astype("Int64")
        else:
            th[c] = th[c].astype("string")
    return th[list(cols)].sort_values("tid").reset_index(drop=True)

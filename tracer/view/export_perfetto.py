"""Chrome trace-event JSON (opens in ui.perfetto.dev and chrome://tracing) from one bundle.

Tracks:
* one thread track per traced thread: every syscall as a complete slice (``"ph": "X"``, category
  ``syscall,<role>``), plus short ``submit`` / ``reap`` marker slices where the workload's own
  record says a batch was submitted or a completion was reaped;
* one async track per I/O (``"b"``/``"e"``, category ``io``, id = I/O id): an outer slice from
  submit to the last known point, with nested stages ``in kernel`` (submit -> kernel complete),
  ``awaiting reap`` (kernel complete -> observed) and ``held until freed`` (observed -> freed);
* flow arrows (``"s"`` on the submit marker, ``"f"`` with ``"bp": "e"`` on the reap marker, one
  id per I/O) from the submitting thread to the reaping thread;
* a counter track ``jobs alive`` (``"C"``), the free-timing timeline.

Timestamps are microseconds since the first event (``ts`` is a float with ns precision). Marker
slices are clamped to end at the next syscall boundary of their thread so every thread track
nests properly (Perfetto moves overlapping slices to an overflow track otherwise).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tracer.analysis import free_timing
from tracer.analysis.requires import bundle_name, can_run, provenance, requires
from tracer.base.errors import AnalysisError
from tracer.base.outputs import atomic_write

MARKER_NS = 1000.0  # longest marker slice
MAX_COUNTER_POINTS = 20000


def _us(ns: np.ndarray | pd.Series, origin: float) -> np.ndarray:
    return np.round((np.asarray(ns, dtype="float64") - origin) / 1000.0, 3)


def _markers(ios: pd.DataFrame, sc: pd.DataFrame) -> pd.DataFrame:
    """Submit and reap markers together: one per (label, thread, timestamp), columns ``label``,
    ``tid``, ``ts_ns``, ``end_ns``, with ``end_ns`` clamped to the thread's next syscall boundary
    and to the next marker of ANY label on that thread. (Clamping each label on its own let a
    submit marker overlap a reap marker on a single-threaded run, which Perfetto draws on an
    overflow track.)"""
    parts = [("submit", "submit_tid", "submit_ns"), ("reap", "reap_tid", "fetched_ns")]
    frames = [ios[[tid_col, ts_col]].dropna().drop_duplicates().rename(columns={tid_col: "tid", ts_col: "ts_ns"})
              .assign(label=label) for label, tid_col, ts_col in parts if tid_col in ios and ts_col in ios]
    if not frames:
        return pd.DataFrame({"label": pd.Series(dtype=str), "tid": pd.Series(dtype="int64"),
                             "ts_ns": pd.Series(dtype=float), "end_ns": pd.Series(dtype=float)})
    m = pd.concat(frames, ignore_index=True).astype({"ts_ns": "float64"})
    m = m.sort_values(["tid", "ts_ns", "label"], kind="stable").reset_index(drop=True)
    m["end_ns"] = m["ts_ns"] + MARKER_NS
    if len(sc):
        bounds = pd.concat([sc[["tid", "enter_ns"]].rename(columns={"enter_ns": "b"}),
                            sc[["tid", "exit_ns"]].rename(columns={"exit_ns": "b"})]).dropna()
        for tid, grp in m.groupby("tid").groups.items():
            b = np.sort(bounds.loc[bounds["tid"] == tid, "b"].to_numpy())
            if b.size == 0:
                continue
            ts = m.loc[grp, "ts_ns"].to_numpy()
            idx = np.searchsorted(b, ts, side="right")
            nxt = np.where(idx < b.size, b[np.minimum(idx, b.size - 1)], np.inf)
            m.loc[grp, "end_ns"] = np.minimum(ts + MARKER_NS, nxt)
    # markers of one thread, submit or reap, must not overlap each other either
    nxt_marker = m.groupby("tid")["ts_ns"].shift(-1)
    m["end_ns"] = np.minimum(m["end_ns"], nxt_marker.fillna(np.inf))
    return m


@requires(tables={"ios": ("id", "submit_ns", "submit_tid")})
def trace_events(model: Any) -> list[dict]:
    """The Chrome trace-event list for ``model`` (see module docstring)."""
    p = provenance(model)
    pid = int((model.manifest or {}).get("workload_pid") or 1)
    ios = model.ios.copy()
    sc = model.syscalls if model.has("syscalls", "enter_ns", "tid") else pd.DataFrame(
        columns=["tid", "name", "role", "enter_ns", "exit_ns", "ret", "err"])
    sc = sc.dropna(subset=["enter_ns"])
    stamps = [ios[c] for c in ("submit_ns", "kernel_done_ns", "notified_ns", "fetched_ns", "freed_ns") if c in ios]
    origin = float(min([s.min() for s in stamps if s.notna().any()] + ([sc["enter_ns"].min()] if len(sc) else [])))
    out: list[dict] = [{"ph": "M", "name": "process_name", "pid": pid,
                        "args": {"name": f"{p['mode']} ({p['os']}, {p['backend']}) {bundle_name(model)}"
                                 + (f" [{p['source']}]" if p["source"] != "measured" else "")
                                 + (f" [LOSSY: {p['loss_note']}]" if p["lossy"] else "")}}]
    names = {}
    if model.has("threads", "tid"):
        th = model.threads
        names = dict(zip(th["tid"].astype(int), th["name"].fillna(th["role"]).fillna("thread").astype(str)))
    tids = set(sc["tid"].astype(int)) | set(ios["submit_tid"].dropna().astype(int))
    if "reap_tid" in ios:
        tids |= set(ios["reap_tid"].dropna().astype(int))
    for tid in sorted(tids):
        out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                    "args": {"name": f"{names.get(tid, 'thread')} {tid}"}})

    # syscall slices; an unfinished call (no exit) becomes a zero-length slice at its entry
    exit_ns = sc["exit_ns"].fillna(sc["enter_ns"]) if "exit_ns" in sc else sc["enter_ns"]
    ts, dur = _us(sc["enter_ns"], origin), np.round((exit_ns.to_numpy(float) - sc["enter_ns"].to_numpy(float)) / 1000, 3)
    roles = sc["role"].fillna("other").astype(str).to_numpy() if "role" in sc else np.full(len(sc), "other")
    for t, d, tid, name, role, ret, err in zip(ts, dur, sc["tid"].astype(int), sc["name"].astype(str), roles,
                                               sc.get("ret", pd.Series(0, index=sc.index)).fillna(0).astype(int),
                                               sc.get("err", pd.Series(0, index=sc.index)).fillna(0).astype(int)):
        out.append({"ph": "X", "name": name, "cat": f"syscall,{role}", "pid": pid, "tid": int(tid),
                    "ts": float(t), "dur": float(max(d, 0.0)), "args": {"role": role, "ret": int(ret), "err": int(err)}})

    # submit and reap markers on the thread tracks, and one flow per I/O between them
    has_reap = "reap_tid" in ios and "fetched_ns" in ios and ios["fetched_ns"].notna().any()
    marks = _markers(ios, sc)
    for label, tid, t0, t1 in zip(marks["label"], marks["tid"].astype(int), _us(marks["ts_ns"], origin),
                                  _us(marks["end_ns"], origin)):
        out.append({"ph": "X", "name": label, "cat": "workload", "pid": pid, "tid": int(tid),
                    "ts": float(t0), "dur": float(max(t1 - t0, 0.0))})
    if has_reap:
        flows = ios.dropna(subset=["submit_ns", "fetched_ns", "reap_tid"])
        for io_id, stid, s_ts, rtid, r_ts in zip(flows["id"].astype(int), flows["submit_tid"].astype(int),
                                                 _us(flows["submit_ns"], origin), flows["reap_tid"].astype(int),
                                                 _us(flows["fetched_ns"], origin)):
            out.append({"ph": "s", "name": "io", "cat": "flow", "id": int(io_id), "pid": pid, "tid": int(stid),
                        "ts": float(s_ts)})
            out.append({"ph": "f", "bp": "e", "name": "io", "cat": "flow", "id": int(io_id), "pid": pid,
                        "tid": int(rtid), "ts": float(r_ts)})

    # one async track per I/O with its stages
    cols = {c: (ios[c].to_numpy(float) if c in ios else np.full(len(ios), np.nan))
            for c in ("submit_ns", "kernel_done_ns", "fetched_ns", "freed_ns")}
    end = np.nanmax(np.vstack([cols[c] for c in cols]), axis=0)
    stages = (("in kernel", "submit_ns", "kernel_done_ns"), ("awaiting reap", "kernel_done_ns", "fetched_ns"),
              ("held until freed", "fetched_ns", "freed_ns"))
    for i, io_id in enumerate(ios["id"].astype(int)):
        s = cols["submit_ns"][i]
        if np.isnan(s):
            continue
        base = {"cat": "io", "id": int(io_id), "pid": pid}
        out.append({**base, "ph": "b", "name": f"io {io_id}", "ts": float(_us(s, origin)),
                    "args": {"op": str(ios["op"].iloc[i]) if "op" in ios else "", "result": int(ios["result"].iloc[i])
                             if "result" in ios and pd.notna(ios["result"].iloc[i]) else None}})
        for name, a, b in stages:
            ta, tb = cols[a][i], cols[b][i]
            if np.isnan(ta) or np.isnan(tb) or tb < ta:
                continue
            out.append({**base, "ph": "b", "name": name, "ts": float(_us(ta, origin))})
            out.append({**base, "ph": "e", "name": name, "ts": float(_us(tb, origin))})
        out.append({**base, "ph": "e", "name": f"io {io_id}", "ts": float(_us(end[i], origin))})

    if can_run(free_timing.jobs_alive, model)[0]:
        alive = free_timing.jobs_alive(model)
        if len(alive) > MAX_COUNTER_POINTS:
            alive = alive.iloc[np.linspace(0, len(alive) - 1, MAX_COUNTER_POINTS).astype(int)]
        first_submit = float(ios["submit_ns"].min())
        for t, a, cu in zip(_us(alive["t_ns"] + first_submit, origin), alive["alive"], alive["completed_unreleased"]):
            out.append({"ph": "C", "name": "jobs alive", "pid": pid, "ts": float(t),
                        "args": {"alive": int(a), "completed_unreleased": int(cu)}})
    return _ordered(out)


def _ordered(events: list[dict]) -> list[dict]:
    """Metadata first, then every event by timestamp (stable), so each track is monotonic."""
    meta = [e for e in events if e["ph"] == "M"]
    rest = sorted((e for e in events if e["ph"] != "M"), key=lambda e: e["ts"])
    return meta + rest


def export(model: Any, path: str | Path) -> Path:
    """Write ``{"traceEvents": [...], "displayTimeUnit": "ns", "metadata": {...}}`` to ``path``
    atomically; returns the path."""
    events = trace_events(model)
    doc = {"traceEvents": events, "displayTimeUnit": "ns",
           "metadata": {k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
                        for k, v in provenance(model).items()}}
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise AnalysisError(f"cannot write {path}: directory {path.parent} does not exist")

    def write(tmp: Path) -> None:
        with open(tmp, "w") as fh:
            json.dump(doc, fh, separators=(",", ":"))
    return atomic_write(path, write)

"""Parquet cache of parse results, keyed by the raw file's content hash (and the parser version).

Where: a bundle's ``cache/`` directory, or ``<file>.aiotrace-cache/`` beside a bare trace file.
Each entry is a directory ``<sha256[:32]>-<format>-v<PARSER_VERSION>/`` with events.parquet,
unparsed.parquet, optional aggregates/summary Parquet and meta.json (lines, counts, losses),
written under a temporary name and renamed, so a half-written entry is never read.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from tracer.parse.base import ParseResult

PARSER_VERSION = 6  # 2: @emitted also counts excess (duplicated) lines; strace ERESTART_* errnos; 4: parser rewrite (stacks, printa, diagnostics); 5: strace <detached ...>; 6: C line scanners, strace -r, Solaris truss/dtruss, DTraceToolkit columns
META_KEYS = {"format", "lines", "counts", "losses"}


def content_key(data: bytes, fmt: str) -> str:
    return f"{hashlib.sha256(data).hexdigest()[:32]}-{fmt}-v{PARSER_VERSION}"


def cache_dir_for(path: Path) -> Path:
    """``<bundle>/cache`` when the file is ``<bundle>/raw/<file>``, else ``<file>.aiotrace-cache``."""
    path = Path(path)
    if path.parent.name == "raw" and (path.parent.parent / "manifest.json").exists():
        return path.parent.parent / "cache"
    return path.with_name(path.name + ".aiotrace-cache")


def load(cache_dir: Path, key: str) -> ParseResult | None:
    entry = Path(cache_dir) / key
    meta_file = entry / "meta.json"
    if not meta_file.exists():
        return None
    try:
        meta = json.loads(meta_file.read_text())
        if not isinstance(meta, dict) or not META_KEYS <= set(meta):
            return None  # hand-edited or older meta.json: parse again (store() replaces the entry)
        events = pd.read_parquet(entry / "events.parquet")
        unparsed = pd.read_parquet(entry / "unparsed.parquet")
        agg = pd.read_parquet(entry / "aggregates.parquet") if (entry / "aggregates.parquet").exists() else None
        summ = pd.read_parquet(entry / "summary.parquet") if (entry / "summary.parquet").exists() else None
    except (OSError, ValueError):
        return None  # unreadable entry: parse again (store() replaces the entry)
    return ParseResult(meta["format"], meta["lines"], events, unparsed, meta["counts"], meta["losses"], agg, summ,
                       meta.get("clock", "monotonic"))


def store(cache_dir: Path, key: str, result: ParseResult) -> Path | None:
    """Write one entry atomically; returns its directory, or None when the place is not writable."""
    cache_dir = Path(cache_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_dir))
    except OSError:
        return None
    try:
        result.events.to_parquet(tmp / "events.parquet", index=False)
        result.unparsed.to_parquet(tmp / "unparsed.parquet", index=False)
        if result.aggregates is not None:
            result.aggregates.astype({c: "string" for c in result.aggregates.columns
                                      if result.aggregates[c].dtype == object}).to_parquet(
                tmp / "aggregates.parquet", index=False)
        if result.summary is not None:
            result.summary.to_parquet(tmp / "summary.parquet", index=False)
        meta = {"format": result.format, "lines": result.lines, "counts": result.counts, "losses": result.losses,
                "clock": result.clock,
                "parser_version": PARSER_VERSION}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        final = cache_dir / key
        if final.exists():  # an entry load() could not use (corrupt, hand-edited): replace it
            old = Path(tempfile.mkdtemp(prefix=f".{key}.old.", dir=cache_dir))
            os.rename(final, old / "entry")
            shutil.rmtree(old, ignore_errors=True)
        os.rename(tmp, final)
        return final
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return None

"""tracer.parse: one parser per trace format, all returning a ParseResult (see base.py).

    parse_file(path, fmt="auto", cache=True) -> ParseResult   (cached as Parquet by content hash)
    parse_bytes(data, fmt) -> ParseResult
"""
from __future__ import annotations

import importlib
from pathlib import Path

from tracer.base.errors import ParseError
from tracer.parse.base import FORMATS, ParseResult

# format -> "module:function(data: bytes) -> ParseResult"
PARSERS = {
    "events": "tracer.parse.events:parse_events",
    "dtrace": "tracer.parse.dtrace:parse_dtrace",
    "bpftrace": "tracer.parse.bpftrace:parse_bpftrace",
    "kdump": "tracer.parse.kdump:parse_kdump",
    "truss": "tracer.parse.truss:parse_truss",
    "strace": "tracer.parse.strace:parse_strace",
    "libbpf": "tracer.parse.libbpf:parse_libbpf",
}


def parse_bytes(data: bytes, fmt: str) -> ParseResult:
    """Parse ``data`` as ``fmt`` ('auto' detects). Raises ParseError only for unusable input."""
    from tracer.parse.detect import detect_format

    if fmt == "auto":
        fmt = detect_format(data)
    if fmt not in PARSERS:
        raise ParseError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    module, func = PARSERS[fmt].split(":")
    result = getattr(importlib.import_module(module), func)(data)
    if result.lines and len(result.unparsed) == result.lines:  # not one line recognised: wrong format
        first = result.unparsed.iloc[0]
        raise ParseError(f"no line is {fmt} output (wrong --format?); line {int(first['line'])}: "
                         f"{str(first['text'])[:80]!r}")
    return result


def parse_file(path, fmt: str = "auto", cache: bool = True) -> ParseResult:
    """Parse a trace file, reading/writing the Parquet cache beside it (see cache.py)."""
    from tracer.parse import cache as pcache
    from tracer.parse.base import read_bytes
    from tracer.parse.detect import detect_format

    path = Path(path)
    data = read_bytes(path)
    if fmt == "auto":
        if not data.strip():
            raise ParseError("empty trace file: nothing to parse", str(path))
        try:
            fmt = detect_format(data)
        except ParseError as exc:
            raise ParseError(exc.reason, str(path)) from None
    key = pcache.content_key(data, fmt)
    where = pcache.cache_dir_for(path)
    if cache:
        hit = pcache.load(where, key)
        if hit is not None:
            hit.cached = True  # type: ignore[attr-defined]
            return hit
    try:
        result = parse_bytes(data, fmt)
    except ParseError as exc:
        raise ParseError(exc.reason, str(path), exc.line) from None
    if cache:
        pcache.store(where, key, result)
    result.cached = False  # type: ignore[attr-defined]
    return result

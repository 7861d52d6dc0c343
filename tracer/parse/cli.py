"""`aiotrace parse FILE`: detect the format, parse, write the Parquet cache, print counts."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import click

from tracer.base.errors import ParseError
from tracer.parse.base import FORMATS


def check_trace_file(file: Path) -> None:
    """ParseError naming what ``file`` is when it is not a regular file to read a trace from."""
    try:
        st = file.stat()
    except FileNotFoundError:
        raise ParseError("no such file", str(file)) from None
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror}", str(file)) from None
    if stat.S_ISREG(st.st_mode):
        return
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a character device" if stat.S_ISCHR(st.st_mode)
            else "a block device" if stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
            else "not a regular file")
    raise ParseError(f"is {kind}, not a trace file; save the trace to a file and parse that", str(file))


@click.command("parse")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(("auto",) + FORMATS), default="auto", show_default=True,
              help="trace format (auto detects it from the first lines)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object: format, lines, records, unparsed, losses")
@click.option("--strict", is_flag=True, help="fail when any line is unparsed (names the first one)")
@click.option("--no-cache", is_flag=True, help="parse again even when the Parquet cache holds this content")
def parse(file: Path, fmt: str, as_json: bool, strict: bool, no_cache: bool) -> None:
    """Parse a trace FILE (or a run bundle directory's raw trace) into Parquet tables.

    Every line is accounted for: events/records, known tracer messages (counted), or unparsed
    rows with line number and reason. Drops the tracer reported are losses."""
    from tracer.parse import cache as pcache
    from tracer.parse import parse_file

    from tracer.model import read_manifest

    if file.is_dir():
        if not (file / "manifest.json").is_file():
            raise ParseError("a directory that is not a run bundle (no manifest.json)", str(file))
        raw = read_manifest(file).get("raw") or {}
        if not isinstance(raw, dict):
            raise ParseError("manifest.json: 'raw' is not an object", str(file))
        if not raw.get("trace"):
            raise ParseError("run bundle without a raw trace", str(file))
        if fmt == "auto":
            fmt = raw.get("format", "auto")
        file = file / raw["trace"]
    check_trace_file(file)
    result = parse_file(file, fmt, cache=not no_cache)
    if strict and len(result.unparsed):
        first = result.unparsed.iloc[0]
        raise ParseError(f"unparsed line ({first['reason']}): {str(first['text'])[:120]!r} "
                         f"({len(result.unparsed)} unparsed in all)", str(file), int(first["line"]))
    where = pcache.cache_dir_for(file)
    out = {"format": result.format, "lines": result.lines, "records": result.records,
           "unparsed": int(len(result.unparsed)), "losses": result.losses, "events": int(len(result.events)),
           "counts": result.counts, "clock": result.clock, "cached": bool(getattr(result, "cached", False)),
           "cache": str(where / pcache.content_key(file.read_bytes(), result.format)) if not no_cache else None}
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"{file}: format {result.format} (detected)" if fmt == "auto" else f"{file}: format {result.format}")
    click.echo(f"  lines {result.lines}, records {result.records} (events {len(result.events)}), "
               f"unparsed {len(result.unparsed)}, dropped events {result.losses.get('dropped_events', 0)}")
    for kind, n in sorted(result.counts.items()):
        click.echo(f"    {kind:<24} {n}")
    for line, text, reason in result.unparsed.head(5).itertuples(index=False):
        click.echo(f"  unparsed line {line}: {reason}: {str(text)[:80]!r}")
    if out["cache"]:
        click.echo(f"  parquet: {out['cache']}")

"""The tracer scripts in dscripts/: where they are, the exact command lines that run them, and the
static checks that keep them and the event-line contract (tracer/base/schema.py) from drifting apart.

Used by the capture layer (``bpftrace_argv``, ``bpftrace_env``, ``dtrace_argv``, ``is_ready_line``)
and by tests (``extract_printfs``, ``check_printf_against_schema``, the probe extractors).

Security: the only user-controlled values that reach a tracer are the pid (an int) and, for
bpftrace, the path of the shared object holding the workload's probe functions. Neither is ever
pasted into program text: both are positional parameters ($1, $2) or dtrace's -p/-c, and the path
is validated first (``validate_probe_object``).
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tracer.base import schema
from tracer.base.errors import CaptureError

DSCRIPTS_DIR = Path(__file__).resolve().parent.parent / "dscripts"

OSES = ("Linux", "FreeBSD")
FLAVOURS = ("events", "aggregate")

# (os, flavour) -> script. Keys use the manifest's spellings ("Linux"|"FreeBSD", "events"|"aggregate").
SCRIPTS: dict[tuple[str, str], Path] = {
    ("Linux", "events"): DSCRIPTS_DIR / "linux" / "aiotrace-events.bt",
    ("Linux", "aggregate"): DSCRIPTS_DIR / "linux" / "aiotrace-agg.bt",
    ("FreeBSD", "events"): DSCRIPTS_DIR / "freebsd" / "aiotrace-events.d",
    ("FreeBSD", "aggregate"): DSCRIPTS_DIR / "freebsd" / "aiotrace-agg.d",
}
# Any program (aiotrace capture -- CMD / -p PID): the events script without the workload's uprobes,
# following forks. Same output format as ("Linux", "events").
PROC_SCRIPT = DSCRIPTS_DIR / "linux" / "aiotrace-proc.bt"
PROC_EXTRA_PIDS = 8  # $2..$9 of aiotrace-proc.bt
# Add-on for kernels with D33271 (charges rusage to job->td in aio_complete); stock kernels refuse it.
D33271_ADDON = DSCRIPTS_DIR / "freebsd" / "aiotrace-ru-d33271.d"

# First line of an aggregated script's output (bpftrace -f json wraps it in a printf record).
AGG_HEADER = "AIOTRACE-AGG\tv1"

# Output format of each (os, flavour): the parser to use and the raw file name in a run bundle.
RAW_FORMATS: dict[tuple[str, str], tuple[str, str]] = {
    ("Linux", "events"): ("events", "events.txt"),
    ("Linux", "aggregate"): ("bpftrace", "agg.json"),
    ("FreeBSD", "events"): ("events", "events.txt"),
    ("FreeBSD", "aggregate"): ("dtrace", "agg.txt"),
}

# dtrace -x options per flavour. Per-event output needs a big principal buffer drained often
# (drops otherwise); strsize=32 keeps each %s record small (the longest name printed is 27 chars).
DTRACE_OPTIONS: dict[str, tuple[str, ...]] = {
    "events": ("bufsize=32m", "switchrate=20hz", "dynvarsize=16m", "strsize=32"),
    "aggregate": ("bufsize=4m", "switchrate=10hz", "dynvarsize=16m", "aggsize=4m", "strsize=32"),
}

# bpftrace environment per flavour: a 4 MiB per-CPU ring for per-event output (default 64 pages
# lost events in tests of bursty output), and room for in-flight (dev, sector)/request keys.
BPFTRACE_ENV: dict[str, dict[str, str]] = {
    "events": {"BPFTRACE_PERF_RB_PAGES": "1024", "BPFTRACE_MAP_KEYS_MAX": "65536"},
    "aggregate": {"BPFTRACE_MAP_KEYS_MAX": "65536"},
}

_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._+/-]+$")


def _check_flavour(flavour: str) -> None:
    if flavour not in FLAVOURS:
        raise CaptureError(f"unknown trace flavour '{flavour}' (known: {', '.join(FLAVOURS)})")


def _check_pid(pid: object) -> int:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise CaptureError(f"pid must be a positive integer, got {pid!r}")
    return pid


def validate_probe_object(path: str | os.PathLike) -> str:
    """Return `path` as a string if it may be handed to bpftrace as an attach-point parameter:
    absolute, normalised (no '.', '..' or '//'), only [A-Za-z0-9._+/-], an existing regular file.
    Raises CaptureError naming the problem otherwise."""
    text = os.fspath(path)
    if not text.startswith("/"):
        raise CaptureError(f"probe object path must be absolute: {text!r}")
    if not _SAFE_PATH.match(text):
        raise CaptureError(f"probe object path has characters outside [A-Za-z0-9._+/-]: {text!r}")
    if os.path.normpath(text) != text:
        raise CaptureError(f"probe object path is not normalised: {text!r}")
    if not os.path.isfile(text) or os.path.islink(text):
        raise CaptureError(f"probe object is not an existing regular file: {text}")
    return text


def bpftrace_argv(flavour: str, pid: int, engine_so: str | os.PathLike, *, bpftrace: str | None = None) -> list[str]:
    """The bpftrace command line that traces process `pid`, whose probe functions live in the shared
    object `engine_so` (the workload's cffi extension). Run it with ``bpftrace_env(flavour)`` added to
    the environment, stdout to the raw trace file, and wait for ``is_ready_line`` before releasing the
    workload. -B line: the ready line must reach a file at once. -p: bpftrace exits when pid exits."""
    _check_flavour(flavour)
    pid = _check_pid(pid)
    so = validate_probe_object(engine_so)
    exe = bpftrace or shutil.which("bpftrace") or "bpftrace"
    fmt = ["-f", "json"] if flavour == "aggregate" else []
    return [exe, "-B", "line", *fmt, "-p", str(pid), str(SCRIPTS[("Linux", flavour)]), str(pid), so]


def bpftrace_proc_argv(pid: int, extra_pids: list[int] = (), *, bpftrace: str | None = None) -> list[str]:
    """The bpftrace command line that traces any program: process `pid` and up to PROC_EXTRA_PIDS of
    its descendants alive now (later forks are followed by the script). Only integers reach
    bpftrace, as positional parameters; the program's own command line never does."""
    pid = _check_pid(pid)
    extra = [_check_pid(p) for p in list(extra_pids)[:PROC_EXTRA_PIDS]]
    exe = bpftrace or shutil.which("bpftrace") or "bpftrace"
    return [exe, "-B", "line", "-p", str(pid), str(PROC_SCRIPT), str(pid), *map(str, extra)]


def bpftrace_env(flavour: str) -> dict[str, str]:
    """Environment variables to add when running ``bpftrace_argv(flavour, ...)``."""
    _check_flavour(flavour)
    return dict(BPFTRACE_ENV[flavour])


def _check_command(command: list[str] | str) -> str:
    """dtrace -c takes one string and splits it on blanks without quoting: refuse what would not survive."""
    words = command.split(" ") if isinstance(command, str) else list(command)
    if not words or any(not w or any(c.isspace() for c in w) for w in words):
        raise CaptureError(f"dtrace -c command must be non-empty words without blanks: {command!r}")
    return " ".join(words)


def dtrace_argv(flavour: str, pid: int | None = None, command: list[str] | str | None = None, *,
                d33271: bool = False, dtrace: str = "dtrace", foreign: bool = False) -> list[str]:
    """The dtrace command line for `flavour`, attached to `pid` (-p) or running `command` (-c).
    Exactly one of them. ``d33271`` adds the rusage add-on for D33271 kernels (events only).
    ``foreign``: the program is not aiotrace's workload, so its ``pid$target::aiotrace_probe_*``
    probes match nothing; -Z lets dtrace run anyway ("permit probe descriptions that match zero
    probes", usage() in cddl/contrib/opensolaris/cmd/dtrace/dtrace.c). -c is split on blanks by
    make_argv() there (strtok, no quoting), hence _check_command."""
    _check_flavour(flavour)
    if (pid is None) == (command is None):
        raise CaptureError("dtrace_argv needs exactly one of pid or command")
    if d33271 and flavour != "events":
        raise CaptureError("the D33271 rusage add-on goes with the events flavour")
    argv = [dtrace, "-q", *(["-Z"] if foreign else [])]
    for opt in DTRACE_OPTIONS[flavour]:
        argv += ["-x", opt]
    argv += ["-p", str(_check_pid(pid))] if pid is not None else ["-c", _check_command(command)]
    argv += ["-s", str(SCRIPTS[("FreeBSD", flavour)])]
    if d33271:
        argv += ["-s", str(D33271_ADDON)]
    return argv


def dtrace_list_argv(flavour: str) -> list[str]:
    """`dtrace -l -n <probe> ...` for every fbt probe the FreeBSD script of `flavour` needs: run it on
    the target first; a probe missing there (e.g. an inlined static function) makes the script fail."""
    _check_flavour(flavour)
    argv = ["dtrace", "-l"]
    for desc in probe_descriptions(SCRIPTS[("FreeBSD", flavour)]):
        if desc.provider == "fbt" and desc.text not in argv:
            argv += ["-n", desc.text]
    return argv


def is_ready_line(os_name: str, flavour: str, line: str) -> bool:
    """True for the tracer output line that says every probe is attached and enabled.

    bpftrace prints BEGIN output only once its poll loop runs, after all probes are attached
    (0.17: BEGIN_trigger, attach loop, then poll_perf_events); "Attaching N probes..." comes before
    attaching and is not a ready signal. DTrace fires BEGIN after enabling every probe."""
    text = line.rstrip("\n")
    if flavour == "events":
        return text == schema.HEADER_LINE
    if os_name == "Linux":  # -f json: {"type": "printf", "data": "AIOTRACE-AGG\tv1\n"}
        import json
        try:
            rec = json.loads(text)
        except ValueError:
            return False
        return isinstance(rec, dict) and rec.get("type") == "printf" and rec.get("data", "").rstrip("\n") == AGG_HEADER
    return text == AGG_HEADER


# ---------------------------------------------------------------------------------------------
# Static reading of scripts: printf calls and probe descriptions
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PrintfCall:
    path: Path
    line: int  # 1-based line of the call
    func: str  # printf | printa
    fmt: str  # the format with C escapes decoded (real tabs and newlines)
    nargs: int  # arguments after the format


@dataclass(frozen=True)
class ProbeDesc:
    text: str  # as written, e.g. "syscall::aio_read:entry", "tracepoint:block:block_io_start"
    provider: str
    parts: tuple[str, ...]  # the fields after the provider
    line: int


_ESCAPES = {"t": "\t", "n": "\n", "\\": "\\", '"': '"', "'": "'", "0": "\0", "r": "\r"}


def _decode(raw: str) -> str:
    out, i = [], 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            out.append(_ESCAPES.get(raw[i + 1], "\\" + raw[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _scan(text: str) -> tuple[str, list[tuple[int, int, str]]]:
    """Blank out comments and string literals (keeping offsets and newlines). Returns the code with
    each string replaced by spaces inside its quotes, and the strings as (start, end, raw body)."""
    code = list(text)
    strings: list[tuple[int, int, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if code[k] != "\n":
                    code[k] = " "
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                code[k] = " "
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            strings.append((i, j + 1, text[i + 1:j]))
            for k in range(i + 1, min(j, n)):
                code[k] = " "
            i = j + 1
        else:
            i += 1
    return "".join(code), strings


def _split_args(argtext: str) -> list[str]:
    """Top-level comma split of a call's argument text."""
    args, depth, cur = [], 0, []
    for c in argtext:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    if "".join(cur).strip():
        args.append("".join(cur).strip())
    return args


def extract_printfs(path: str | os.PathLike) -> list[PrintfCall]:
    """Every printf(...) and printa(...) call in a D or bpftrace script whose first argument is a
    string literal, with its decoded format and argument count. Comments are ignored."""
    path = Path(path)
    text = path.read_text()
    code, strings = _scan(text)
    by_start = {s: (e, raw) for s, e, raw in strings}
    calls = []
    for m in re.finditer(r"\b(printf|printa)\s*\(", code):
        open_paren = m.end() - 1
        depth, j = 0, open_paren
        while j < len(code):
            if code[j] == "(":
                depth += 1
            elif code[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        inner_start = open_paren + 1
        k = inner_start
        while k < j and code[k].isspace():
            k += 1
        if k not in by_start:
            continue  # printa(@agg) without a format, or a non-literal format
        end, raw = by_start[k]
        rest = text[end:j]
        rest_code = code[end:j]
        nargs = len(_split_args(rest_code.lstrip().removeprefix(",")))
        if not rest.strip():
            nargs = 0
        calls.append(PrintfCall(path, text.count("\n", 0, m.start()) + 1, m.group(1), _decode(raw), nargs))
    return calls


def _top_level(code: str) -> str:
    """`code` with everything inside braces blanked (newlines kept), so only probe headers remain."""
    out, depth = [], 0
    for c in code:
        if c == "{":
            depth += 1
            out.append(" ")
        elif c == "}":
            depth -= 1
            out.append(" ")
        else:
            out.append(c if depth == 0 or c == "\n" else " ")
    return "".join(out)


def _blank_predicates(code: str) -> str:
    """Blank the /predicate/ parts of probe headers (they follow a probe list, before '{')."""
    return re.sub(r"/[^/\n]*(?:\n[^/\n]*)*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), code)


def probe_descriptions(path: str | os.PathLike) -> list[ProbeDesc]:
    """Probe descriptions of a D (.d) or bpftrace (.bt) script, in order of appearance.
    D: provider:module:function:name (e.g. syscall::aio_read:entry, pid$target::f:entry, dtrace:::BEGIN).
    bpftrace: provider:arg[:arg...] (tracepoint:raw_syscalls:sys_enter, uprobe:$2:f) plus BEGIN/END."""
    path = Path(path)
    code, _ = _scan(path.read_text())
    # Blank the "#!" interpreter line and any other '#' control line before looking for predicates.
    code = "\n".join("" if ln.lstrip().startswith("#") else ln for ln in code.split("\n"))
    top = _blank_predicates(_top_level(code))
    descs = []
    for lineno, line in enumerate(top.splitlines(), 1):
        for tok in re.split(r"[\s,]+", line):
            if not tok or tok.endswith(";"):
                continue
            if tok in ("BEGIN", "END"):
                descs.append(ProbeDesc(tok, tok, (), lineno))
            elif ":" in tok:
                provider, *parts = tok.split(":")
                descs.append(ProbeDesc(tok, provider, tuple(parts), lineno))
    return descs


_SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


DIALECTS = ("bpftrace", "d")


def field_conversion(field: schema.Field, dialect: str) -> str:
    """The printf conversion a script of `dialect` uses for `field`. bpftrace: the schema's own
    (``%llu``/``%lld``: its ``%d`` truncates to 32 bits). D: the same without the length modifier
    (``%u``/``%d``), because libdtrace refuses ``%ll*`` for int64_t/uint64_t on amd64 (see
    check_d_rules) while its ``%d``/``%u`` print any integer at its full width."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown printf dialect {dialect!r}")
    return field.printf if dialect == "bpftrace" else re.sub(r"l+", "", field.printf)


def check_printf_against_schema(fmt: str, dialect: str = "bpftrace") -> list[str]:
    """Problems that stop `fmt` (a decoded printf format) from being a valid event line; [] if valid.

    A valid event printf is exactly 1 + len(schema.EVENT_FIELDS) fields separated by single tabs and
    ended by one newline (no other newline, no '%%'). Field 0 is the literal ``E``. Field i is either
    the conversion for EVENT_FIELDS[i-1] in `dialect` (field_conversion: bpftrace ``%llu``, ``%d``,
    ``%s``, ``%lld`` as listed in the schema; D ``%u``/``%d``) or a literal token: an integer (``0``,
    ``-1``) for integer fields, an identifier (letters, digits, ``_``, one ``.`` as in
    ``compat11.kevent``) for string fields. ``name`` may also be ``nr%d`` or ``nr%lld`` (a syscall
    known only by number). A literal ``ev`` must be a key of schema.EVENT_KINDS.
    """
    problems: list[str] = []
    if not fmt.endswith("\n"):
        problems.append("does not end with a newline")
    body = fmt[:-1] if fmt.endswith("\n") else fmt
    if "\n" in body:
        problems.append("has a newline before the end")
    if "%%" in body:
        problems.append("contains '%%'")
    fields = body.split("\t")
    want = 1 + len(schema.EVENT_FIELDS)
    if len(fields) != want:
        problems.append(f"has {len(fields)} tab-separated fields, the schema has {want}")
        return problems
    if fields[0] != schema.EVENT_TAG:
        problems.append(f"first field is {fields[0]!r}, not the literal {schema.EVENT_TAG!r}")
    for field, text in zip(schema.EVENT_FIELDS, fields[1:]):
        where = f"field {field.name!r} = {text!r}"
        want_conv = field_conversion(field, dialect)
        if text == want_conv:
            continue
        if field.name == "name" and text in (("nr%d", "nr%lld") if dialect == "bpftrace" else ("nr%d",)):
            continue
        if "%" in text:
            problems.append(f"{where}: conversion differs from the schema's {want_conv!r} ({dialect})")
            continue
        if field.dtype == "string":
            if not _SYMBOL.match(text):
                problems.append(f"{where}: not a literal identifier")
            elif field.name == "ev" and text not in schema.EVENT_KINDS:
                problems.append(f"{where}: not one of schema.EVENT_KINDS")
        elif not re.fullmatch(r"-?\d+", text):
            problems.append(f"{where}: not an integer literal")
    return problems


def count_conversions(fmt: str) -> int:
    """Number of % conversions in a printf format (%% excluded)."""
    return len(re.findall(r"%(?!%)[-+ #0-9.]*(?:hh|h|ll|l|j|z|t)?[a-zA-Z@]", fmt.replace("%%", "")))


def check_script_printfs(path: str | os.PathLike) -> list[str]:
    """Problems with the printf calls of one script (empty when all are valid):
    every printf whose format starts with ``E<TAB>`` must pass check_printf_against_schema and pass as
    many arguments as it has conversions; in a per-event script (file name contains "-events" or "-proc", or is
    a ``ru`` add-on) every other printf must be the header line or a ``#`` comment line; an aggregated
    script prints AGG_HEADER and never the event header."""
    path = Path(path)
    problems: list[str] = []
    calls = extract_printfs(path)
    per_event = "-events" in path.name or "-ru-" in path.name or "-proc" in path.name
    dialect = "d" if path.suffix == ".d" else "bpftrace"
    for call in calls:
        where = f"{path.name}:{call.line}"
        if call.func == "printf" and count_conversions(call.fmt) != call.nargs:
            problems.append(f"{where}: {count_conversions(call.fmt)} conversions but {call.nargs} arguments")
        if call.fmt.startswith(schema.EVENT_TAG + "\t"):
            problems += [f"{where}: {p}" for p in check_printf_against_schema(call.fmt, dialect)]
        elif per_event and call.fmt != schema.HEADER_LINE + "\n" and not call.fmt.startswith("#"):
            problems.append(f"{where}: printf is neither an event line, the header line, nor a '#' comment: {call.fmt!r}")
        elif not per_event and call.fmt == schema.HEADER_LINE + "\n":
            problems.append(f"{where}: an aggregated script must not print the event header")
    if not per_event and not any(c.fmt == AGG_HEADER + "\n" for c in calls):
        problems.append(f"{path.name}: never prints {AGG_HEADER!r}")
    if per_event and "-ru-" not in path.name and not any(c.fmt == schema.HEADER_LINE + "\n" for c in calls):
        problems.append(f"{path.name}: never prints the header line")
    return problems


def all_scripts() -> list[Path]:
    """Every tracer script under dscripts/ (D and bpftrace)."""
    return sorted([*DSCRIPTS_DIR.rglob("*.d"), *DSCRIPTS_DIR.rglob("*.bt")])


# ---------------------------------------------------------------------------------------------
# D language rules that dtrace(1) enforces (or breaks silently) only on the FreeBSD host
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Clause:
    probes: tuple[str, ...]  # probe descriptions as written
    predicate: str  # text between the slashes ('' when none), comments and strings blanked
    body: str  # text between the braces, comments and strings blanked
    line: int  # 1-based line of the first probe description


def d_clauses(text: str) -> list[Clause]:
    """The clauses of a D program: probe list, predicate, body. Top-level declarations
    (``int x;``) and the ``#!`` line are skipped."""
    code, _ = _scan(text)
    code = "\n".join("" if ln.lstrip().startswith("#") else ln for ln in code.split("\n"))
    clauses, i, n, start = [], 0, len(code), 0
    while i < n:
        c = code[i]
        if c == ";":  # a top-level declaration ends here
            start = i + 1
        elif c == "{":
            depth, j = 0, i
            while j < n:
                depth += code[j] == "{"
                depth -= code[j] == "}"
                if depth == 0:
                    break
                j += 1
            head = code[start:i]
            pred = ""
            if "/" in head:
                pred = head[head.index("/") + 1:head.rindex("/")]
                head = head[:head.index("/")]
            probes = tuple(p for p in re.split(r"[\s,]+", head) if p)
            first = start + len(code[start:i]) - len(code[start:i].lstrip())
            clauses.append(Clause(probes, pred, code[i + 1:j], code.count("\n", 0, first) + 1))
            i = start = j + 1
            continue
        i += 1
    return clauses


# Pointers that are NULL at some firing of a probe, so a clause there must test them in its
# predicate before it follows them. {probe: ((pointer expression, why), ...)}
NULLABLE_AT_PROBE: dict[str, tuple[tuple[str, str], ...]] = {
    "fbt::filt_aio:entry": (
        ("args[0]->kn_ptr.p_aio->userproc",
         "aio_aqueue calls kqfd_register before it sets job->userproc, and kqueue_register calls "
         "f_event(kn, 0) right after filt_aioattach (vfs_aio.c aio_aqueue, kern_event.c kqueue_register)"),
    ),
}

_LL_CONVERSION = re.compile(r"%[-+ #0-9.*@]*(l{1,2})([a-zA-Z])")
# An assignment target: self->x, this->x, a global x, or an associative array x[...].
_ASSIGN = re.compile(r"(?P<lhs>\b(?:self|this)->\w+|(?<![\w>.])[A-Za-z_]\w*)"
                     r"(?P<key>\s*\[(?:[^\[\]]|\[[^\]]*\])*\])?\s*=(?!=)")
_DECL = re.compile(r"^\s*(?:unsigned\s+|signed\s+)?(?:int|long|uint\d+_t|int\d+_t|string|char|uintptr_t)\s+(\w+)\s*;", re.M)
_INT_LITERAL = re.compile(r"^-?(?:0[xX][0-9a-fA-F]+|\d+)[uUlL]*$")
_D_KEYWORDS = {"self", "this", "args", "arg0", "arg1", "arg2", "arg3", "arg4", "arg5", "timestamp", "pid", "tid",
               "errno", "execname", "probefunc", "curthread", "return", "if", "else"}


def _rhs(code: str, pos: int) -> str:
    """The expression right of an '=' at `pos`, up to the ';' or '}' that ends the statement."""
    depth, j = 0, pos
    while j < len(code):
        c = code[j]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and c in ";}":
            break
        j += 1
    return " ".join(code[pos:j].split())


def check_d_rules(text: str, name: str = "<script>") -> list[str]:
    """Problems a D program has that dtrace(1) reports only on the FreeBSD host, or never:

    1. ``%l``/``%ll`` conversions. libdtrace checks ``%ld``/``%lld``/``%llu`` with pfcheck_type, i.e.
       ctf_type_compat on the type NAMES after typedefs resolve (dt_printf.c); 64-bit D makes int64_t
       ``long`` and uint64_t ``unsigned long`` (dt_open.c _dtrace_typedefs_64), so ``%lld`` of an
       int64_t is refused ("printf( ) argument #N is incompatible with conversion #N prototype").
       ``%d``/``%u`` take any integer and print all 64 bits.
    2. A variable's FIRST assignment in the text gives it its type (dt_parser.c dt_cook_op2,
       DT_TOK_ASGN: a virgin variable takes the right-hand side's type). A bare integer literal
       first (``self->p = 0``) makes it an int: a pointer or 64-bit value stored later is
       truncated. Declared globals (``int x;``) are exempt.
    3. A pointer that can be NULL at a probe (NULLABLE_AT_PROBE) must be tested against NULL in
       the predicate, before any dereference through it: otherwise every such firing is a DTrace
       error (an "invalid address" loss), not a skipped clause.
    """
    problems: list[str] = []
    code, strings = _scan(text)
    for start, _end, raw in strings:
        convs = sorted({m.group(0) for m in _LL_CONVERSION.finditer(_decode(raw))})
        if convs:
            line = text.count("\n", 0, start) + 1
            problems.append(f"{name}:{line}: printf conversion(s) {', '.join(convs)} use the l/ll length "
                            "modifier: libdtrace refuses it for int64_t/uint64_t on amd64 (pfcheck_type); "
                            "use %d/%u")
    declared = set(_DECL.findall(code))
    first: dict[str, tuple[int, str]] = {}
    later: dict[str, list[tuple[int, str]]] = {}
    bodies = code  # comments and strings blanked
    for m in _ASSIGN.finditer(bodies):
        lhs = m.group("lhs")
        before = bodies[max(0, m.start() - 2):m.start()]
        if lhs in _D_KEYWORDS or before.endswith(("->", ".")) or lhs in declared:
            continue
        if bodies[m.end() - 2] in "!<>+-*/%&|^":  # compound or comparison operator
            continue
        key = lhs + ("[]" if m.group("key") else "")
        entry = (text.count("\n", 0, m.start()) + 1, _rhs(bodies, m.end()))
        if key not in first:
            first[key] = entry
        else:
            later.setdefault(key, []).append(entry)
    for var, (line, rhs) in first.items():
        if not _INT_LITERAL.match(rhs):
            continue
        typed = [(ln, r) for ln, r in later.get(var, []) if not _INT_LITERAL.match(r)]
        if typed:
            ln, r = typed[0]
            problems.append(f"{name}:{line}: first assignment '{var} = {rhs}' makes {var} an int; "
                            f"'{var} = {r}' at line {ln} is truncated to it (dt_cook_op2): assign "
                            f"'(int64_t){rhs}' or the typed value first")
    for clause in d_clauses(text):
        for probe in clause.probes:
            for ptr, why in NULLABLE_AT_PROBE.get(probe, ()):
                pred = " ".join(clause.predicate.split())
                body = " ".join(clause.body.split())
                deref = ptr + "->"
                if deref not in pred and deref not in body:
                    continue
                guard = re.search(re.escape(ptr) + r"\s*!=\s*(?:NULL|0)\b", pred)
                if guard is None or (deref in pred and pred.index(deref) < guard.start()):
                    problems.append(f"{name}:{clause.line}: {probe} follows {ptr} without first testing "
                                    f"'{ptr} != NULL' in the predicate; it is NULL there: {why}")
    return problems


# ---------------------------------------------------------------------------------------------
# <script>_example.txt: sample output beside every script, checked against the script and parser
# ---------------------------------------------------------------------------------------------

ELISION = "[...]"  # a line an example elides; every other output line must parse
NOTES = "Reading it:"  # starts the notes after the output


def example_path(script: str | os.PathLike) -> Path:
    script = Path(script)
    return script.with_name(script.stem + "_example.txt")


def script_identity(script: str | os.PathLike) -> tuple[str, str]:
    """(os, flavour) of a script in SCRIPTS, or of the D33271 add-on (FreeBSD events)."""
    script = Path(script).resolve()
    for key, path in SCRIPTS.items():
        if path.resolve() == script:
            return key
    if script == D33271_ADDON.resolve():
        return ("FreeBSD", "events")
    if script == PROC_SCRIPT.resolve():
        return ("Linux", "events")
    raise CaptureError(f"not a registered tracer script: {script}")


def _format_regex(fmt: str) -> re.Pattern:
    """The first line of a printf/printa format as a regex: conversions become number/word patterns."""
    first = fmt.split("\n")[0]
    out, pos = [], 0
    for m in re.finditer(r"%[-+ #0-9.]*(?:hh|h|ll|l|j|z|t)?(@?)([a-zA-Z])", first):
        out.append(re.escape(first[pos:m.start()]))
        conv = m.group(2)
        out.append(r"[^\t]*" if conv == "s" else (r"\d+" if conv == "u" else r"-?\d+"))
        pos = m.end()
    out.append(re.escape(first[pos:]))
    return re.compile("".join(out) + "$")


def example_output(script: str | os.PathLike, example: str | os.PathLike | None = None) -> bytes:
    """The tracer output part of a script's example: from its ready line (is_ready_line) to the
    ``Reading it:`` notes, without elision lines. Raises CaptureError when the example or its
    ready line is missing."""
    path = Path(example) if example is not None else example_path(script)
    if not path.is_file():
        raise CaptureError(f"missing example output: {path}")
    os_name, flavour = script_identity(script)
    lines = path.read_text().splitlines()
    start = next((i for i, ln in enumerate(lines) if is_ready_line(os_name, flavour, ln)), None)
    if start is None:
        raise CaptureError(f"{path.name}: no ready line ({os_name} {flavour}) starts the output")
    end = next((i for i in range(start, len(lines)) if lines[i].strip() == NOTES), len(lines))
    return "".join(ln + "\n" for ln in lines[start:end] if ln.strip() != ELISION).encode()


def check_example(script: str | os.PathLike, also: tuple[Path, ...] = (),
                  example: str | os.PathLike | None = None) -> list[str]:
    """Problems with a script's example (empty when fine): the output part must parse with the
    project's parser for that script's format with nothing unparsed and something produced, and
    every ``E``/``A``/``H`` line must match one of the printf/printa formats of the script (or of
    the scripts in `also`, e.g. aiotrace-events.d for the D33271 add-on that runs beside it).
    `example` overrides the file read (default: example_path(script))."""
    from tracer.parse import parse_bytes

    script = Path(script)
    name = Path(example).name if example is not None else example_path(script).name
    try:
        data = example_output(script, example)
    except CaptureError as exc:
        return [str(exc)]
    os_name, flavour = script_identity(script)
    fmt = RAW_FORMATS[(os_name, flavour)][0]
    result = parse_bytes(data, fmt)
    problems = [f"{name}: output line {r.line} not parsed by the {fmt} parser ({r.reason}): {r.text!r}"
                for r in result.unparsed.itertuples()]
    if result.records == 0:
        problems.append(f"{name}: the {fmt} parser found no event or aggregation in the output")
    formats = [_format_regex(c.fmt) for p in (script, *also) for c in extract_printfs(p)]
    for i, line in enumerate(data.decode().splitlines(), 1):
        if line[:2] in ("E\t", "A\t", "H\t") and not any(rx.match(line) for rx in formats):
            problems.append(f"{name}: output line {i} matches no printf of {script.name}: {line!r}")
    return problems

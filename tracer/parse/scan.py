"""Per-line columns of a syscall-text trace, filled by the C line scanners (tracer/parse/scan.c)
for the common lines and by the format's Python reader for the rest.

``LineColumns`` holds one slot per input line. ``kind`` says what the line is: SCAN_* codes for
records, ``DONE`` for a line the Python reader counted or reported itself, 0 for a line nobody has
read yet. Strings are per-line dictionaries: the C scanner's names arrive as one arrow array
(dictionary-encoded, one Python object per distinct name), the Python reader's go in ``py_names``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

try:
    from tracer.parse._scan import ffi, lib
except ImportError:  # not built (no compiler): the Python readers do every line
    ffi = lib = None

CALL, UNFINISHED, RESUMED, SIGNAL, EXIT, RET, TYPE, CONT, KEVSTRU = 1, 2, 3, 4, 5, 6, 7, 8, 9  # scan.h
DONE = -1

_INT_COLS = ("pid", "tid", "ts", "dur", "a0", "a1", "a2", "ret", "id", "err", "x0", "x1")


@dataclass
class LineColumns:
    n: int
    kind: np.ndarray
    tkind: np.ndarray
    has_ret: np.ndarray
    pid: np.ndarray
    tid: np.ndarray
    ts: np.ndarray
    dur: np.ndarray
    a0: np.ndarray
    a1: np.ndarray
    a2: np.ndarray
    ret: np.ndarray
    id: np.ndarray
    err: np.ndarray
    x0: np.ndarray  # extra per-line values (truss: getrusage's ru_inblock, ru_oublock)
    x1: np.ndarray
    notes: tuple = ()  # kevent AIO events read in C: (line, ident, data, err, udata, flags) arrays
    names: dict = field(default_factory=dict)  # "name"/"aux" -> (line indices, arrow strings) from C
    py_names: dict = field(default_factory=dict)  # "name"/"aux" -> {line index: str} from Python

    @classmethod
    def empty(cls, n: int) -> "LineColumns":
        z = {c: np.zeros(n, dtype=np.int64) for c in _INT_COLS}
        z["dur"][:] = -1
        return cls(n, np.zeros(n, np.int8), np.zeros(n, np.int8), np.zeros(n, np.int8), **z)

    def set_name(self, which: str, i: int, text: str) -> None:
        self.py_names.setdefault(which, {})[i] = text

    def strings(self, which: str, rows: np.ndarray) -> pa.Array:
        """The ``which`` string of each line in ``rows`` (sorted line indices; "" where none)."""
        c_idx, c_arr = self.names.get(which, (np.array([], np.int64), None))
        py = self.py_names.get(which, {})
        if c_arr is not None and not py and len(c_idx) == len(rows) and np.array_equal(c_idx, rows):
            return c_arr  # the common case: every row's string came from the C scanner, in order
        out = np.full(len(rows), "", dtype=object)
        if c_arr is not None and len(rows):
            where = np.searchsorted(rows, c_idx)
            ok = (where < len(rows)) & (rows[np.minimum(where, len(rows) - 1)] == c_idx)
            out[where[ok]] = np.asarray(c_arr.to_pylist(), dtype=object)[ok]
        for i, text in py.items():
            k = np.searchsorted(rows, i)
            if k < len(rows) and rows[k] == i:
                out[k] = text
        return pa.array(out, pa.large_string())

    def codes(self, which: str, rows: np.ndarray, mapping, default: int = 0) -> np.ndarray:
        """``mapping(string)`` (an int) for each line in ``rows`` that has a ``which`` string, else
        ``default``; one call per distinct string."""
        out = np.full(len(rows), default, dtype=np.int64)
        c_idx, c_arr = self.names.get(which, (np.array([], np.int64), None))
        if c_arr is not None and len(c_idx) and len(rows):
            enc = pc.dictionary_encode(c_arr)
            table = np.array([mapping(s) for s in enc.dictionary.to_pylist()], dtype=np.int64)
            where = np.searchsorted(rows, c_idx)
            ok = (where < len(rows)) & (rows[np.minimum(where, len(rows) - 1)] == c_idx)
            out[where[ok]] = table[enc.indices.to_numpy(zero_copy_only=False)][ok]
        for i, text in self.py_names.get(which, {}).items():
            k = np.searchsorted(rows, i)
            if k < len(rows) and rows[k] == i:
                out[k] = mapping(text)
        return out


def string_series(arr: pa.Array) -> pd.Series:
    """An arrow string array as a pandas string Series (no Python object per row)."""
    return pd.Series(pd.arrays.ArrowStringArray(arr.cast(pa.large_string())), copy=False)


def _scan_out(cols: LineColumns, n: int):
    """(struct scan_out pointing at ``cols``' arrays, ptr(ctype, array), the list keeping every
    array passed to ptr alive: cffi pointers do not keep their buffers alive)."""
    out = ffi.new("struct scan_out *")
    keep: list = []

    def ptr(ctype, arr):
        keep.append(arr)
        return ffi.cast(ctype, ffi.from_buffer(arr))

    out.n = n
    out.kind, out.tkind, out.has_ret = (ptr("int8_t *", a) for a in (cols.kind, cols.tkind, cols.has_ret))
    for c in _INT_COLS:
        setattr(out, c, ptr("int64_t *", getattr(cols, c)))
    return out, ptr, keep


def scan(fmt: str, data: bytes, n: int, symbols: dict[str, int] | None = None) -> LineColumns:
    """Columns for ``n`` lines of ``data``, the common lines read by the C scanner of ``fmt``
    (all kind 0 when the scanner is not built). ``symbols``: the reader's table of argument
    symbols, so the C side reads them as the reader's arg_int() does."""
    cols = LineColumns.empty(n)
    if lib is None or n == 0:
        return cols
    name_buf = bytearray(len(data) + 1)
    aux_buf = bytearray(len(data) + 1)
    name_off = np.zeros(n, np.int64)
    name_len = np.zeros(n, np.int32)
    aux_off = np.zeros(n, np.int64)
    aux_len = np.zeros(n, np.int32)
    out, ptr, keep = _scan_out(cols, n)
    out.name_buf, out.aux_buf = ptr("char *", name_buf), ptr("char *", aux_buf)
    out.name_off, out.aux_off = ptr("int64_t *", name_off), ptr("int64_t *", aux_off)
    out.name_len, out.aux_len = ptr("int32_t *", name_len), ptr("int32_t *", aux_len)
    cap = len(data) // 16 + 1  # a kevent element takes more than 16 bytes
    note_cols = [np.zeros(cap, np.int64) for _ in range(6)]
    out.note_cap, out.note_n = cap, 0
    out.note_line, out.note_ident, out.note_data, out.note_err, out.note_udata, out.note_flags = (
        ptr("int64_t *", a) for a in note_cols)
    names_blob = b"".join(k.encode() + b"\0" for k in (symbols or {}))
    sym_values = np.array(list((symbols or {}).values()) or [0], dtype=np.int64)
    out.sym_names = ptr("char *", bytearray(names_blob or b"\0"))
    out.sym_values, out.n_sym = ptr("int64_t *", sym_values), len(symbols or {})
    getattr(lib, f"scan_{fmt}")(ffi.from_buffer(data), len(data), out)
    cols.notes = tuple(a[:out.note_n] for a in note_cols)
    for which, buf, off, ln in (("name", name_buf, name_off, name_len), ("aux", aux_buf, aux_off, aux_len)):
        idx = np.flatnonzero((ln > 0) & (cols.kind > 0))
        if len(idx):
            offsets = np.concatenate((off[idx], [off[idx[-1]] + ln[idx[-1]]]))
            if np.array_equal(offsets[1:-1], off[idx[:-1]] + ln[idx[:-1]]):
                arr = pa.Array.from_buffers(pa.large_string(), len(idx), [None, pa.py_buffer(offsets),
                                                                         pa.py_buffer(bytes(buf))])
            else:  # not contiguous (never expected): copy the strings out
                arr = pa.array([bytes(buf[o:o + k]).decode("utf-8", "replace") for o, k in zip(off[idx], ln[idx])])
            cols.names[which] = (idx, arr)
    return cols


def classify(fmt: str, data: bytes, n: int) -> LineColumns | None:
    """Per-line class codes (kind) and a few numbers from a C classifier that writes no strings
    (dtrace); None when the scanner is not built."""
    if lib is None:
        return None
    cols = LineColumns.empty(n)
    if n == 0:
        return cols
    out, ptr, keep = _scan_out(cols, n)  # noqa: F841 (keep holds the buffers alive)
    getattr(lib, f"scan_{fmt}")(ffi.from_buffer(data), len(data), out)
    return cols

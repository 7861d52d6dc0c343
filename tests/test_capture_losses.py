"""Losses are never unflagged (issue 14): a tracer killed at the end with --allow-loss, a trace
without its @emitted trailer, duplicated lines, a negative lost_events count. Every loss line is
read in one place (tracer.parse.losses), by capture and by the model alike."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from tracer.analysis.requires import loss_note, provenance
from tracer.capture import manifest as mf
from tracer.model import load_bundle
from tracer.parse import messages, parse_bytes
from tracer.parse.losses import bundle_losses, stderr_losses, trace_losses
from tracer.base.schema import HEADER_LINE

# Stands in for bpftrace: prints the header (probes attached) and two event lines, and when
# capture stops it with SIGINT, dies of SIGKILL before printing its @emitted trailer.
KILLED_BPFTRACE = r'''#!/bin/sh
[ "$1" = --version ] && { echo "bpftrace v0.17.0"; exit 0; }
printf '%s\n' "$(printf 'AIOTRACE\tv1\tts_ns\tpid\ttid\tev\tname\tid\ta0\ta1\ta2\tret\terr')"
printf 'E\t100\t1\t1\tsys_enter\tnr39\t0\t0\t0\t0\t0\t0\n'
printf 'E\t200\t1\t1\tsys_exit\tnr39\t0\t0\t0\t0\t1\t0\n'
trap 'kill -9 $$' INT
while :; do sleep 0.05; done
'''


def _event_trace(n: int, emitted: dict[str, int] | None, dup_every: int = 0) -> bytes:
    lines = [HEADER_LINE]
    for i in range(n):
        line = f"E\t{1000 + i}\t7\t7\tsys_enter\tnr39\t0\t0\t0\t0\t0\t0"
        lines.append(line)
        if dup_every and i % dup_every == 0:
            lines.append(line)
    lines += ["", ""] + [f"@emitted[{k}]: {v}" for k, v in (emitted or {}).items()]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("allow", [True, False])
def test_killed_tracer_with_allow_loss_is_flagged_lossy_and_unknown(tmp_path, allow):
    fake = tmp_path / "bpftrace"
    fake.write_text(KILLED_BPFTRACE)
    fake.chmod(0o755)
    args = ["--backend", "bpftrace", "--out", str(tmp_path / "runs"), *(["--allow-loss"] if allow else []),
            "--", "sleep", "0.3"]
    proc = subprocess.run([sys.executable, "-m", "tracer.cli", "capture", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), "AIOTRACE_BPFTRACE": str(fake)}, timeout=120)
    (bundle,) = (tmp_path / "runs").iterdir()
    m = mf.read_manifest(bundle)
    assert m["exit"]["tracer"] == -9 and m["raw"]["lines"] == 3
    assert m["losses"]["unknown"] is True
    assert any("killed by SIGKILL" in x for x in m["losses"]["messages"])
    assert any(messages.MISSING_TRAILER in x for x in m["losses"]["messages"])
    if allow:  # kept, but never shown as a clean run
        assert proc.returncode == 0 and m["status"] == "ok" and "accepted with --allow-loss" in m["reason"]
        model = load_bundle(bundle)
        assert provenance(model)["lossy"] and "losses unknown" in loss_note(model)
    else:
        assert proc.returncode == 2 and m["status"] == "failed" and "rerun with --allow-loss" in m["reason"]


def test_missing_emitted_trailer_means_unknown_losses_not_zero(tmp_path):
    trace = tmp_path / "events.txt"
    trace.write_bytes(_event_trace(5, None))
    report, result = bundle_losses(trace, "events", None, "bpftrace", "events", cache=False)
    assert result.counts["event"] == 5 and report.unknown and report.dropped_events == 0
    assert report.messages == [messages.MISSING_TRAILER]
    # the same file with its trailer: nothing lost, nothing unknown
    trace.write_bytes(_event_trace(5, {"sys_enter": 5}))
    report, _ = bundle_losses(trace, "events", None, "bpftrace", "events", cache=False)
    assert not report.any
    # dtrace's per-event script has no trailer: no rule applies
    trace.write_bytes(_event_trace(5, None))
    report, _ = bundle_losses(trace, "events", None, "dtrace", "events", cache=False)
    assert not report.unknown


def test_duplicated_lines_are_caught_by_the_trailer(tmp_path):
    n = 200
    data = _event_trace(n, {"sys_enter": n}, dup_every=20)  # 5 % duplicated
    result = parse_bytes(data, "events")
    assert result.counts["event"] == n + n // 20
    report = trace_losses(result, "bpftrace", "events")
    assert report.excess_lines == n // 20 and report.dropped_events == 0
    assert report.messages == [f"sys_enter: {n} lines printed in the kernel, {n + n // 20} arrived "
                               f"({n // 20} more than printed: duplicated lines)"]

    class M:  # the model's view of it
        losses = {"dropped_events": 0, "unparsed_lines": 0, "messages": report.messages,
                  "excess_lines": report.excess_lines}
        manifest = {}
    assert loss_note(M()) == f"{n // 20} duplicated lines"


def test_negative_lost_events_never_becomes_a_negative_drop():
    result = parse_bytes(b'{"type": "lost_events", "data": {"events": -5}}\n'
                         b'{"type": "lost_events", "data": {"events": 3}}\n', "bpftrace")
    report = trace_losses(result, "bpftrace", "aggregate")
    assert report.dropped_events == 3 and len(result.unparsed) == 1
    assert "-5" in result.unparsed["reason"].iloc[0]


def test_stderr_loss_lines_are_read_by_one_classifier(tmp_path):
    err = tmp_path / "tracer.stderr"
    err.write_text("Lost 12 events\ndtrace: 4 drops on CPU 1\n/usr/bin/strace: Process 7 attached\n"
                   "/usr/bin/strace: Process 7 detached\nstrace: something odd\n")
    assert stderr_losses(err, "bpftrace").dropped_events == 16
    strace = stderr_losses(err, "strace")
    assert strace.dropped_events == 0 and "strace: something odd" in strace.messages
    assert not any("attached" in x or "detached" in x for x in strace.messages)
    assert not stderr_losses(err, "ktrace").any
    assert not stderr_losses(Path(tmp_path / "absent"), "bpftrace").any

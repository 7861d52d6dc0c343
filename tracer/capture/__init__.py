"""tracer.capture: run a workload under a tracer and write a run bundle.

- ``backends``: one operations table per tracer (bpftrace, strace on Linux; dtrace, ktrace+kdump,
  truss on FreeBSD): availability, version, command lines, ready signal, losses.
- ``runner``: the orchestration (held workload, attach, release, stop, manifest, rename).
- ``bundle``: run ids and the temp-name-then-rename bundle directory.
- ``manifest``: the ``aiotrace.manifest/1`` schema (a table of every key) and its writer.
- ``probe``: filesystem type, a real O_DIRECT test, REAP availability.
- ``doctor``: what this machine can capture and the fix for each missing piece.
- ``cli``: ``aiotrace capture`` and ``aiotrace doctor``.
"""

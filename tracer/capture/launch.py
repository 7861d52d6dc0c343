"""Hold a foreign command at the same handshake as the workload, then exec it (same pid).

    python -m tracer.capture.launch -- COMMAND ARGS...

prints ``AIOTRACE-READY pid=N`` (tracer.base.spec.READY_LINE) on stdout, waits for the release word
on stdin, points stdin at /dev/null and ``execvp``s COMMAND: the tracer attached to pid N before
the release sees every system call the command makes, from its first. The command's words are
only ever argv (never a shell, never tracer program text). Exit status 3: the handshake ended
without the release word (nothing was run); 127: the command could not be executed.
"""
from __future__ import annotations

import os
import sys

from tracer.base.spec import READY_LINE, RELEASE_WORD

NOT_RELEASED, CANNOT_EXEC = 3, 127


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.stderr.write("aiotrace-launch: no command after --\n")
        return 2
    sys.stdout.write(READY_LINE.format(pid=os.getpid()) + "\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != RELEASE_WORD:
        return NOT_RELEASED
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.stderr.write(f"aiotrace-launch: cannot run {argv[0]}: {exc.strerror}\n")
    return CANNOT_EXEC


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

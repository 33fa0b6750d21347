"""A signature-recovery worker: ``python -m rollbook.sequencer.recovery_worker``.

It answers ``rollbook.sequencer.recovery_processes`` requests on stdin with replies on stdout
until stdin closes (see that module for the wire format). The entry point is a module of its
own because a mypyc-compiled module cannot be run with ``-m``, and ``recovery_processes`` is
compiled in the compiled build.
"""

from __future__ import annotations

import sys

from rollbook.sequencer.recovery_processes import serve

__all__ = ["main"]


def main() -> int:
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0  # the caller went away: nothing is owed to anyone
    return 0


if __name__ == "__main__":
    sys.exit(main())

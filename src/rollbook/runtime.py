"""Process-level settings for running the STF at speed (bench, simulation, later the node).

Garbage collection: the venue's state is millions of small long-lived objects, and CPython's
cyclic collector rescans long-lived objects on every older-generation pass, which measured at
about half of the STF's time on the standard workload. The state is freed by reference counting
(the book unlinks orders when they leave; positions drop their group link when emptied), so the
cyclic collector has little to find. ``tune_gc_for_throughput`` collects once, freezes whatever
is alive (the loaded state) out of the collector's view, and raises the young-generation
threshold so collections stay rare but still happen. Call it again after loading a snapshot.

Thread switching: CPython hands the GIL to a waiting thread only when the holder blocks or once
per *switch interval* (5 ms by default). A thread that comes back from I/O (a pipe read of
recovered signers, an fsync, a socket write, the event loop's epoll) must take the GIL back
from threads that run Python without blocking, so with the default it may wait up to 5 ms each
time it returns from a system call: the node's pipeline (event loop, recovery dispatcher,
sequencer, committer) and the verifier's recovery threads stall on that wait. ``SWITCH_INTERVAL``
lowers the interval while at least one holder needs it (``lower``/``release``, counted; the
previous value comes back when the last holder releases). It changes when threads switch, never
what any of them computes.

Background processes: a process whose work can wait (the embedded chain's EVM, a snapshot's
pickling child) calls ``lower_to_background`` so that the node's threads, its recovery workers
and its clients run first on a machine with few cores.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading

__all__ = ["BACKGROUND_NICE_INCREMENT", "GC_THRESHOLDS", "SWITCH_INTERVAL", "SwitchInterval",
           "lower_to_background", "tune_gc_for_throughput"]

# Where Linux's SCHED_IDLE class is missing (or refused): the portable fallback's nice increment
BACKGROUND_NICE_INCREMENT = 10

# (young allocations before a collection, young collections per middle, middle per old)
GC_THRESHOLDS = (50_000, 20, 100)


def lower_to_background() -> None:
    """Run this process on CPU time nobody else wants: Linux's SCHED_IDLE class (a waking
    normal thread preempts it at once), else ``BACKGROUND_NICE_INCREMENT``. Under full
    saturation it starves until the load drops, which background work may."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):  # not Linux, or refused: the portable fallback
        pass
    with contextlib.suppress(AttributeError, OSError):
        os.nice(BACKGROUND_NICE_INCREMENT)


def tune_gc_for_throughput() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class SwitchInterval:
    """The interpreter's switch interval, lowered while at least one holder needs it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._previous_s = 0.0

    @property
    def holders(self) -> int:
        return self._holders

    def lower(self, interval_s: float) -> None:
        """Hold the interval at ``interval_s`` or below until ``release``."""
        if not interval_s > 0:
            raise ValueError(f"a switch interval must be positive, not {interval_s}")
        with self._lock:
            if self._holders == 0:
                self._previous_s = sys.getswitchinterval()
            self._holders += 1
            if interval_s < sys.getswitchinterval():
                sys.setswitchinterval(interval_s)

    def release(self) -> None:
        """Give back one ``lower``; the last one restores the interval found by the first."""
        with self._lock:
            assert self._holders > 0, "release without lower"
            self._holders -= 1
            if self._holders == 0:
                sys.setswitchinterval(self._previous_s)


# one per process: the interval is one setting of the interpreter
SWITCH_INTERVAL = SwitchInterval()

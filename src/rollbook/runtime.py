"""Process-level settings for running the STF at speed (bench, simulation, later the node).

Garbage collection: the venue's state is millions of small long-lived objects, and CPython's
cyclic collector rescans long-lived objects on every older-generation pass, which measured at
about half of the STF's time on the standard workload. The state is freed by reference counting
(the book unlinks orders when they leave; positions drop their group link when emptied), so the
cyclic collector has little to find. ``tune_gc_for_throughput`` collects once, freezes whatever
is alive (the loaded state) out of the collector's view, and raises the young-generation
threshold so collections stay rare but still happen. Call it again after loading a snapshot.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_gc_for_throughput"]

# (young allocations before a collection, young collections per middle, middle per old)
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc_for_throughput() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)

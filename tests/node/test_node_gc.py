"""The node's garbage-collection policy (``rollbook.node.core``, GC_QUIET_S): what survives a
batch boundary is frozen out of the collector's scans, and cyclic garbage among frozen objects
is still found by the periodic full collection."""

from __future__ import annotations

import gc
import time
import weakref
from pathlib import Path

import pytest
from node_helpers import fund, offline_config, owner

from rollbook.node import Node, core

WAIT_S = 10.0


class _Cycle:
    """An object in a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


def _wait(predicate: object) -> None:
    """Until ``predicate()``; the sequencer freezes after it answered ``close_batch_sync``."""
    deadline = time.monotonic() + WAIT_S
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_batch_boundaries_freeze_and_stop_unfreezes(tmp_path: Path) -> None:
    with Node(offline_config(tmp_path, interval_ms=20)) as node:
        node.close_batch_sync()
        _wait(lambda: gc.get_freeze_count() > 0)
    assert gc.get_freeze_count() == 0


def test_frozen_cyclic_garbage_is_collected_when_the_node_is_quiet(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "GC_FULL_INTERVAL_S", 0.2)
    monkeypatch.setattr(core, "GC_QUIET_S", 0.0)
    with Node(offline_config(tmp_path, interval_ms=20)) as node:
        cycle = _Cycle()
        alive = weakref.ref(cycle)
        node.close_batch_sync()
        gc.freeze()  # (as the sequencer does at a boundary: no young collection can find it)
        del cycle
        assert alive() is not None
        time.sleep(0.3)  # past GC_FULL_INTERVAL_S
        fund(node, [owner(1)])  # opens a batch
        node.close_batch_sync()  # its boundary runs the full collection
        assert alive() is None

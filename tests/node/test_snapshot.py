"""Snapshots: deep books round trip (no recursion limit), the restored state trades on equally,
and damaged files are refused with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import INDEX_100K_QUANTUMS, USDC, Venue
from rollbook.commitment import apply_and_commit, canonical_root
from rollbook.execution import Batch, PlaceOrder, Side
from rollbook.node.snapshot import (
    _ORDER_FIELDS,
    NodeSnapshot,
    SnapshotError,
    dumps_snapshot,
    list_snapshots,
    loads_snapshot,
    read_snapshot,
    write_snapshot,
)

OWNERS = [i.to_bytes(20, "big") for i in range(1, 1_201)]


def _deep_venue() -> Venue:
    """1,200 bids on one level (a linked list pickle would recurse through) and asks spread
    so that subaccount -> order -> level -> order chains run long."""
    venue = Venue()
    venue.run_ok(venue.oracle(INDEX_100K_QUANTUMS))
    venue.fund(OWNERS, 1_000_000 * USDC)
    venue.run_ok(*(PlaceOrder(o, 0, 1, Side.BUY, 999_990, 5) for o in OWNERS),
                 *(PlaceOrder(o, 0, 1, Side.SELL, 1_000_010 + i % 300, 5)
                   for i, o in enumerate(OWNERS)))
    return venue


def _snapshot(venue: Venue) -> NodeSnapshot:
    return NodeSnapshot("test", b"", venue.state.batch_index, venue.commitment.root, 0,
                        venue.state, venue.commitment, {"version": 1}, {"note": "extra"})


def test_deep_books_round_trip_and_trade_on_equally() -> None:
    venue = _deep_venue()
    restored = loads_snapshot(dumps_snapshot(_snapshot(venue)))
    restored.commitment.check(restored.state)
    assert canonical_root(restored.state) == canonical_root(venue.state)
    assert restored.extra == {"note": "extra"}
    book = restored.state.markets[1].book
    assert [o.order_id for o in book.iter_orders(True)] == [
        o.order_id for o in venue.state.markets[1].book.iter_orders(True)]
    # sells sweep the restored bid level in time priority; both copies agree on every root
    sweep = tuple(PlaceOrder(o, 0, 1, Side.SELL, 999_990, 3) for o in OWNERS[::7])
    for state, commitment in ((venue.state, venue.commitment),
                              (restored.state, restored.commitment)):
        batch = Batch(state.batch_index + 1, venue.clock_ms + 1_000, commitment.root, sweep)
        apply_and_commit(state, commitment, batch)
    assert restored.commitment.root == venue.commitment.root
    restored.commitment.check(restored.state)


def test_an_order_key_is_derived_on_load_not_written() -> None:
    """``Order.key`` (the id's one int object, the orders' dict key) is rebuilt from
    ``order_id``: a snapshot's order fields are the same with or without it."""
    assert "key" not in _ORDER_FIELDS and "order_id" in _ORDER_FIELDS
    venue = _deep_venue()
    restored = loads_snapshot(dumps_snapshot(_snapshot(venue)))
    orders = restored.state.orders
    assert orders and all(order.key == order_id for order_id, order in orders.items())
    assert all(orders[order.key] is order for order in orders.values())


def test_the_primary_subaccount_index_is_derived_on_load_not_written() -> None:
    """``State.primary_subaccounts`` is rebuilt from ``owners`` on load (the same records), and
    a snapshot's bytes do not name it."""
    venue = _deep_venue()
    venue.run_ok(venue.deposit(OWNERS[0], USDC, 2))  # a non-primary subaccount too
    payload = dumps_snapshot(_snapshot(venue))
    assert b"primary_subaccounts" not in payload
    state = loads_snapshot(payload).state
    index = state.primary_subaccounts
    assert index.keys() == venue.state.primary_subaccounts.keys()
    assert index.keys() == {owner for owner, numbers in state.owners.items() if 0 in numbers}
    assert all(index[owner] is numbers[0] for owner, numbers in state.owners.items())


def test_files_are_checked(tmp_path: Path) -> None:
    venue = Venue()
    venue.run_ok(venue.oracle(INDEX_100K_QUANTUMS))
    payload = dumps_snapshot(_snapshot(venue))
    path = write_snapshot(tmp_path, venue.state.batch_index, 0, payload)
    assert read_snapshot(path).root == venue.commitment.root
    assert list_snapshots(tmp_path) == [(venue.state.batch_index, path)]
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="checksum"):
        read_snapshot(path)
    path.write_bytes(bytes(data[:-5]))
    with pytest.raises(SnapshotError, match="length"):
        read_snapshot(path)
    path.write_bytes(b"NOTSNAP" + bytes(50))
    with pytest.raises(SnapshotError, match="magic"):
        read_snapshot(path)
    other = write_snapshot(tmp_path, 7, 0, payload)  # holds batch 1 under the name of batch 7
    with pytest.raises(SnapshotError, match="holds batch"):
        read_snapshot(other)

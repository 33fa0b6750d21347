"""escape_register_market(leaf_index, leaf, proof)."""

from __future__ import annotations

import boa

from rollbook.settlement import reference as ref

from .conftest import ESCAPE_PERIOD_S, LeafTree, System, events, market_leaf

BTC, ETH = 1, 2
BTC_SLOT, ETH_SLOT, HUGE_PRICE_SLOT, HUGE_LOT_SLOT = 1, 2, 3, 4


def _tree() -> LeafTree:
    return LeafTree({
        BTC_SLOT: market_leaf(BTC, 100_000_000_000, 100_000),
        ETH_SLOT: market_leaf(ETH, 3_000_000_000, 1_000_000),
        HUGE_PRICE_SLOT: market_leaf(7, 2**255, 1),
        HUGE_LOT_SLOT: market_leaf(8, 1, 2**255),
    }, nonce=1)


def _register(system: System, tree: LeafTree, slot: int, **changes: object) -> None:
    index, leaf, proof = tree.args(slot)
    arguments: dict[str, object] = {"index": index, "leaf": leaf, "proof": proof, **changes}
    with boa.env.prank(system.stranger):
        system.settlement.escape_register_market(*arguments.values())


def _btc(system: System) -> tuple[int, int, bool]:
    return tuple(system.settlement.escape_markets(BTC))  # type: ignore[return-value]


def test_register_market_stores_the_committed_prices(system: System) -> None:
    tree = _tree()
    system.escape_with(tree)
    _register(system, tree, BTC_SLOT)
    (log,) = events(system.settlement, "EscapeMarketRegistered")
    assert (log.market_id, log.index_price_quantums, log.lot_size_nanounits) == (
        BTC, 100_000_000_000, 100_000)
    assert _btc(system) == (100_000_000_000, 100_000, True)
    _register(system, tree, ETH_SLOT)
    assert tuple(system.settlement.escape_markets(ETH)) == (3_000_000_000, 1_000_000, True)


def test_register_market_rejects_before_the_freeze(system: System) -> None:
    tree = _tree()
    system.submit(tree)
    system.finalize()
    system.assert_reverts("Settlement: not frozen", lambda: _register(system, tree, BTC_SLOT),
                          lambda: _btc(system))


def test_register_market_rejects_after_the_escape_period(system: System) -> None:
    tree = _tree()
    system.escape_with(tree)
    boa.env.time_travel(seconds=ESCAPE_PERIOD_S - 1)
    _register(system, tree, ETH_SLOT)  # the period's last second
    boa.env.time_travel(seconds=1)
    system.assert_reverts("Settlement: escape period over",
                          lambda: _register(system, tree, BTC_SLOT), lambda: _btc(system))


def test_register_market_rejects_an_invalid_proof(system: System) -> None:
    tree = _tree()
    system.escape_with(tree)
    forged = market_leaf(BTC, 1, 100_000)
    proof = tree.proof(BTC_SLOT)
    for changes in ({"leaf": forged}, {"proof": [b"\x00" * 32] * ref.TREE_DEPTH},
                    {"index": ETH_SLOT}, {"proof": [proof[0], proof[0], *proof[2:]]}):
        system.assert_reverts("Settlement: invalid proof",
                              lambda c=changes: _register(system, tree, BTC_SLOT, **c),
                              lambda: _btc(system))


def test_register_market_rejects_a_leaf_of_the_old_root(system: System) -> None:
    old = _tree()
    system.submit(old)
    system.finalize()
    system.escape_with(LeafTree({BTC_SLOT: market_leaf(BTC, 5, 100_000)}, nonce=2))
    system.assert_reverts("Settlement: invalid proof", lambda: _register(system, old, BTC_SLOT))


def test_register_market_rejects_another_kind_of_leaf(system: System) -> None:
    tree = _tree()
    system.escape_with(tree)
    # the globals leaf has the market leaf's size (13 words) but kind 1
    system.assert_reverts("Settlement: not a market leaf", lambda: _register(system, tree, 0))


def test_register_market_rejects_twice(system: System) -> None:
    tree = _tree()
    system.escape_with(tree)
    _register(system, tree, BTC_SLOT)
    system.assert_reverts("Settlement: market already registered",
                          lambda: _register(system, tree, BTC_SLOT), lambda: _btc(system))


def test_register_market_rejects_values_outside_int256(system: System) -> None:
    tree = _tree()
    system.escape_with(tree)
    system.assert_reverts("Settlement: market price out of range",
                          lambda: _register(system, tree, HUGE_PRICE_SLOT),
                          lambda: tuple(system.settlement.escape_markets(7)))
    system.assert_reverts("Settlement: lot size out of range",
                          lambda: _register(system, tree, HUGE_LOT_SLOT),
                          lambda: tuple(system.settlement.escape_markets(8)))

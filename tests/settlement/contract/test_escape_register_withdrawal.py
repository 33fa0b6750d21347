"""escape_register_withdrawal(leaf_index, leaf, proof)."""

from __future__ import annotations

from collections.abc import Callable

import boa

from rollbook.settlement import reference as ref

from .conftest import ESCAPE_PERIOD_S, LeafTree, System, events, market_leaf, withdrawal_leaf

W1_SLOT, W2_SLOT, ZERO_SLOT, MARKET_SLOT = 5, 6, 7, 1
W1_AMOUNT, W2_AMOUNT = 300_000, 40_000


def _tree(system: System) -> LeafTree:
    return LeafTree({
        MARKET_SLOT: market_leaf(1, 10, 10),
        W1_SLOT: withdrawal_leaf(1, system.alice, W1_AMOUNT),
        W2_SLOT: withdrawal_leaf(2, system.bob, W2_AMOUNT, subaccount=4),
        ZERO_SLOT: withdrawal_leaf(3, system.carol, 0),
    }, nonce=1)


def _escape(system: System) -> LeafTree:
    tree = _tree(system)
    system.escape_with(tree, ((system.alice, 1_000_000),))
    return tree


def _register(system: System, tree: LeafTree, slot: int, leaf: bytes | None = None) -> None:
    index, good_leaf, proof = tree.args(slot)
    with boa.env.prank(system.stranger):
        system.settlement.escape_register_withdrawal(index, good_leaf if leaf is None else leaf,
                                                     proof)


def _claim(system: System, withdrawal_id: int = 1) -> Callable[[], tuple[int, object]]:
    s = system.settlement
    return lambda: (s.escape_withdrawal_claim(withdrawal_id),
                    s.escape_withdrawal_owner(withdrawal_id))


def test_register_withdrawal_records_the_claim(system: System) -> None:
    tree = _escape(system)
    _register(system, tree, W1_SLOT)
    (log,) = events(system.settlement, "EscapeRegistered")
    assert (log.owner, log.kind, log.key, log.claim) == (
        system.alice, ref.LEAF_KIND_WITHDRAWAL, 1, W1_AMOUNT)
    _register(system, tree, W2_SLOT)
    assert _claim(system, 1)() == (W1_AMOUNT, system.alice)
    assert _claim(system, 2)() == (W2_AMOUNT, system.bob)
    assert system.settlement.escape_total_claims() == W1_AMOUNT + W2_AMOUNT


def test_register_withdrawal_rejects_before_the_freeze(system: System) -> None:
    tree = _tree(system)
    system.submit(tree)
    system.finalize()
    system.assert_reverts("Settlement: not frozen", lambda: _register(system, tree, W1_SLOT),
                          _claim(system))


def test_register_withdrawal_rejects_after_the_escape_period(system: System) -> None:
    tree = _escape(system)
    boa.env.time_travel(seconds=ESCAPE_PERIOD_S)
    system.assert_reverts("Settlement: escape period over",
                          lambda: _register(system, tree, W1_SLOT), _claim(system))


def test_register_withdrawal_rejects_an_invalid_proof(system: System) -> None:
    tree = _escape(system)
    forged = withdrawal_leaf(1, system.alice, W1_AMOUNT * 2)
    system.assert_reverts("Settlement: invalid proof",
                          lambda: _register(system, tree, W1_SLOT, forged), _claim(system))


def test_register_withdrawal_rejects_another_kind_of_leaf(system: System) -> None:
    system.deposit(system.alice, 1_000_000)
    alien = (5).to_bytes(32, "big") + withdrawal_leaf(1, system.alice, W1_AMOUNT)[32:]
    tree = LeafTree({W1_SLOT: alien}, nonce=1)
    system.escape_with(tree)
    system.assert_reverts("Settlement: not a withdrawal leaf",
                          lambda: _register(system, tree, W1_SLOT), _claim(system))


def test_register_withdrawal_rejects_a_withdrawal_paid_before_the_freeze(system: System) -> None:
    tree = _tree(system)
    system.deposit(system.alice, 1_000_000)
    system.submit(tree)
    system.finalize()
    system.settlement.claim_withdrawal(1, *tree.args(W1_SLOT))
    system.freeze()
    system.assert_reverts("Settlement: withdrawal already paid",
                          lambda: _register(system, tree, W1_SLOT), _claim(system))


def test_register_withdrawal_rejects_twice(system: System) -> None:
    tree = _escape(system)
    _register(system, tree, W1_SLOT)
    system.assert_reverts("Settlement: withdrawal already registered",
                          lambda: _register(system, tree, W1_SLOT), _claim(system))


def test_register_withdrawal_rejects_a_zero_withdrawal(system: System) -> None:
    tree = _escape(system)
    system.assert_reverts("Settlement: zero withdrawal",
                          lambda: _register(system, tree, ZERO_SLOT), _claim(system, 3))

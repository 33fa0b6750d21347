"""escape_withdraw_withdrawal(withdrawal_id)."""

from __future__ import annotations

import boa

from rollbook.settlement import reference as ref

from .conftest import LeafTree, System, account_leaf, events, withdrawal_leaf

W1_SLOT, W2_SLOT, ACCOUNT_SLOT = 5, 6, 3


def _escape(system: System, pool: int, w1: int, w2: int, equity: int = 0) -> LeafTree:
    leaves = {W1_SLOT: withdrawal_leaf(1, system.alice, w1),
              W2_SLOT: withdrawal_leaf(2, system.bob, w2)}
    if equity:
        leaves[ACCOUNT_SLOT] = account_leaf(system.carol, 0, (equity,))
    tree = LeafTree(leaves, nonce=1)
    system.escape_with(tree, ((system.carol, pool),))
    for slot in (W1_SLOT, W2_SLOT):
        system.settlement.escape_register_withdrawal(*tree.args(slot))
    if equity:
        system.settlement.escape_register_account(*tree.args(ACCOUNT_SLOT))
    return tree


def _pay(system: System, withdrawal_id: int) -> None:
    with boa.env.prank(system.stranger):  # anyone may call; the owner is paid
        system.settlement.escape_withdraw_withdrawal(withdrawal_id)


def test_withdraw_withdrawal_pays_in_full_when_the_pool_covers_all(system: System) -> None:
    _escape(system, pool=1_000, w1=300, w2=200, equity=500)
    system.end_escape_period()
    before = system.token.balanceOf(system.alice)
    _pay(system, 1)
    (log,) = events(system.settlement, "EscapePaid")
    assert (log.owner, log.kind, log.key, log.claim, log.amount) == (
        system.alice, ref.LEAF_KIND_WITHDRAWAL, 1, 300, 300)
    assert system.token.balanceOf(system.alice) == before + 300
    assert system.settlement.withdrawal_paid(1)
    assert system.settlement.escape_paid_total() == 300


def test_withdraw_withdrawal_applies_the_haircut(system: System) -> None:
    _escape(system, pool=1_000, w1=700, w2=600, equity=100)  # 1,400 claimed, 1,000 held
    system.end_escape_period()
    before = system.token.balanceOf(system.bob)
    _pay(system, 2)
    assert system.token.balanceOf(system.bob) == before + ref.escape_payout(600, 1_000, 1_400)
    assert system.token.balanceOf(system.bob) == before + 428


def test_withdraw_withdrawal_rejects_before_the_freeze(system: System) -> None:
    system.assert_reverts("Settlement: not frozen", lambda: _pay(system, 1))


def test_withdraw_withdrawal_rejects_during_the_escape_period(system: System) -> None:
    _escape(system, pool=1_000, w1=300, w2=200)
    system.end_escape_period()
    boa.env.time_travel(seconds=-1)
    system.assert_reverts("Settlement: escape period not over", lambda: _pay(system, 1),
                          lambda: system.settlement.withdrawal_paid(1))


def test_withdraw_withdrawal_rejects_an_unregistered_id(system: System) -> None:
    _escape(system, pool=1_000, w1=300, w2=200)
    system.end_escape_period()
    system.assert_reverts("Settlement: withdrawal not registered", lambda: _pay(system, 3))


def test_withdraw_withdrawal_rejects_twice(system: System) -> None:
    _escape(system, pool=1_000, w1=300, w2=200)
    system.end_escape_period()
    _pay(system, 1)
    system.assert_reverts("Settlement: withdrawal already paid", lambda: _pay(system, 1))

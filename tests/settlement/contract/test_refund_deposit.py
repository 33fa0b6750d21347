"""refund_deposit(deposit_id)."""

from __future__ import annotations

import boa

from .conftest import LeafTree, System, events


def _setup(system: System) -> None:
    """Deposits 1-2 credited by the escape root; 3-4 not (one after the freeze's root)."""
    system.deposit(system.alice, 100)
    system.deposit(system.bob, 200)
    system.submit(LeafTree(nonce=1), deposit_count=2)
    system.deposit(system.carol, 30)
    system.deposit(system.alice, 4)
    system.finalize()
    system.freeze()
    assert system.settlement.escape_deposit_count() == 2


def _refund(system: System, deposit_id: int) -> None:
    with boa.env.prank(system.stranger):  # anyone may call; the depositor is paid
        system.settlement.refund_deposit(deposit_id)


def test_refund_returns_uncredited_deposits_in_full(system: System) -> None:
    _setup(system)
    s, token = system.settlement, system.token
    assert s.escape_pool() == 300
    before = token.balanceOf(system.carol)
    _refund(system, 3)
    (log,) = events(s, "DepositRefunded")
    assert (log.deposit_id, log.owner, log.amount) == (3, system.carol, 30)
    assert token.balanceOf(system.carol) == before + 30
    assert s.deposit_refunded(3)
    _refund(system, 4)
    assert token.balanceOf(s) == 300  # exactly the escape pool is left


def test_refund_rejects_before_the_freeze(system: System) -> None:
    system.deposit(system.alice, 100)
    system.assert_reverts("Settlement: not frozen", lambda: _refund(system, 1),
                          lambda: system.settlement.deposit_refunded(1))


def test_refund_rejects_an_unknown_deposit(system: System) -> None:
    _setup(system)
    for deposit_id in (0, 5, 2**256 - 1):
        system.assert_reverts("Settlement: no such deposit",
                              lambda i=deposit_id: _refund(system, i))


def test_refund_rejects_a_credited_deposit(system: System) -> None:
    _setup(system)
    for deposit_id in (1, 2):
        system.assert_reverts("Settlement: deposit was credited",
                              lambda i=deposit_id: _refund(system, i),
                              lambda i=deposit_id: system.settlement.deposit_refunded(i))


def test_refund_rejects_twice(system: System) -> None:
    _setup(system)
    _refund(system, 3)
    system.assert_reverts("Settlement: deposit already refunded", lambda: _refund(system, 3))


def test_refund_of_deposits_credited_only_by_a_discarded_batch(system: System) -> None:
    system.deposit(system.alice, 100)
    system.request_forced(system.bob)
    system.submit(LeafTree(nonce=1), deposit_count=0, forced_count=0)
    system.finalize()
    boa.env.time_travel(seconds=10**5)
    system.submit(LeafTree(nonce=2), deposit_count=1, forced_count=0)  # in its window
    system.settlement.freeze()
    assert system.settlement.escape_batch() == 1
    _refund(system, 1)
    assert system.token.balanceOf(system.settlement) == 0

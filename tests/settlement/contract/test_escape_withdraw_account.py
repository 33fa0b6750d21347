"""escape_withdraw_account(owner, subaccount), and the pro-rata haircut (bit-exact)."""

from __future__ import annotations

import boa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rollbook.settlement import reference as ref

from .conftest import LeafTree, System, account_leaf, events, tx_gas, withdrawal_leaf

# transaction gas; measured on the embedded py-evm chain (Prague): 94,900 for the first payment
# (escape_paid_total leaves zero)
ESCAPE_WITHDRAW_GAS_MAX = 100_000


def _escape(system: System, pool: int, claims: tuple[int, ...]) -> LeafTree:
    """Alice, Bob and Carol hold subaccount 0 with the given equities (collateral only)."""
    tree = LeafTree({3 + i: account_leaf(user, 0, (claim,))
                     for i, (user, claim) in enumerate(zip(system.users, claims, strict=False))},
                    nonce=1)
    system.escape_with(tree, ((system.stranger, pool),))
    for i, claim in enumerate(claims):
        if claim > 0:
            system.settlement.escape_register_account(*tree.args(3 + i))
    return tree


def _pay(system: System, owner: object, subaccount: int = 0) -> None:
    with boa.env.prank(system.stranger):  # anyone may call; the owner is paid
        system.settlement.escape_withdraw_account(owner, subaccount)


def test_withdraw_account_pays_in_full_when_the_pool_covers_all(system: System) -> None:
    _escape(system, pool=1_000, claims=(600, 400))
    system.end_escape_period()
    before = system.token.balanceOf(system.alice)
    _pay(system, system.alice)
    (log,) = events(system.settlement, "EscapePaid")
    assert (log.owner, log.kind, log.key, log.claim, log.amount) == (
        system.alice, ref.LEAF_KIND_SUBACCOUNT, 0, 600, 600)
    assert system.token.balanceOf(system.alice) == before + 600
    assert system.settlement.escape_account_paid(system.alice, 0)
    assert system.settlement.escape_paid_total() == 600


def test_withdraw_account_applies_the_haircut(system: System) -> None:
    _escape(system, pool=1_000, claims=(1_000, 500, 1))  # 1,501 claimed, 1,000 held
    system.end_escape_period()
    paid = []
    for user in system.users:
        before = system.token.balanceOf(user)
        _pay(system, user)
        paid.append(system.token.balanceOf(user) - before)
    assert paid == [666, 333, 0]  # floor(c * 1000 / 1501): the 1-quantum claim rounds to 0
    assert sum(paid) <= 1_000
    assert events(system.settlement, "EscapePaid")[0].amount == 0


def test_withdraw_account_rejects_before_the_freeze(system: System) -> None:
    system.assert_reverts("Settlement: not frozen", lambda: _pay(system, system.alice))


def test_withdraw_account_rejects_during_the_escape_period(system: System) -> None:
    _escape(system, pool=1_000, claims=(600,))
    system.end_escape_period()
    boa.env.time_travel(seconds=-1)
    system.assert_reverts("Settlement: escape period not over",
                          lambda: _pay(system, system.alice),
                          lambda: system.settlement.escape_account_paid(system.alice, 0))


def test_withdraw_account_rejects_an_unregistered_account(system: System) -> None:
    _escape(system, pool=1_000, claims=(600, -5))
    system.end_escape_period()
    system.assert_reverts("Settlement: account not registered", lambda: _pay(system, system.bob))
    system.assert_reverts("Settlement: account not registered",
                          lambda: _pay(system, system.alice, 1))


def test_withdraw_account_rejects_twice(system: System) -> None:
    _escape(system, pool=1_000, claims=(600,))
    system.end_escape_period()
    _pay(system, system.alice)
    system.assert_reverts("Settlement: account already paid", lambda: _pay(system, system.alice))


def test_withdraw_account_gas(system: System) -> None:
    _escape(system, pool=1_000, claims=(600, 400))
    system.end_escape_period()
    for user in (system.alice, system.bob):
        assert tx_gas(system.settlement, "escape_withdraw_account", user, 0) <= (
            ESCAPE_WITHDRAW_GAS_MAX)


# --- bit-exact: every payout equals reference.escape_payout, and they never exceed the pool

_claim = st.one_of(st.integers(1, 1_000), st.integers(1, 10**15), st.integers(-(10**6), 0))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(pool=st.one_of(st.integers(1, 1_000), st.integers(1, 10**15)),
       claims=st.lists(_claim, min_size=1, max_size=3))
def test_withdraw_account_haircut_is_bit_exact(system: System, pool: int,
                                                claims: list[int]) -> None:
    s = system.settlement
    with boa.env.anchor():
        _escape(system, pool, tuple(claims))
        total = sum(ref.escape_claim(claim) for claim in claims)
        assert s.escape_total_claims() == total
        assert s.escape_pool() == pool
        event("haircut" if total > pool else "paid in full")
        system.end_escape_period()
        paid = 0
        for user, claim in zip(system.users, claims, strict=False):
            if claim <= 0:
                continue
            expected = ref.escape_payout(claim, pool, total)
            assert s.escape_payout(claim) == expected
            before = system.token.balanceOf(user)
            _pay(system, user)
            assert system.token.balanceOf(user) - before == expected
            paid += expected
        assert paid <= pool
        assert s.escape_paid_total() == paid
        assert system.token.balanceOf(s) == pool - paid


def test_withdraw_account_and_withdrawals_share_the_pool(system: System) -> None:
    tree = LeafTree({3: account_leaf(system.alice, 0, (900,)),
                     5: withdrawal_leaf(1, system.bob, 600)}, nonce=1)
    system.escape_with(tree, ((system.stranger, 1_000),))
    system.settlement.escape_register_account(*tree.args(3))
    system.settlement.escape_register_withdrawal(*tree.args(5))
    system.end_escape_period()
    _pay(system, system.alice)
    system.settlement.escape_withdraw_withdrawal(1)
    paid = [e.amount for e in events(system.settlement, "EscapePaid")]
    assert paid == [ref.escape_payout(600, 1_000, 1_500)] == [400]
    assert system.settlement.escape_paid_total() == 600 + 400

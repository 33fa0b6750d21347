"""escape_register_account(leaf_index, leaf, proof), and the equity it computes (bit-exact)."""

from __future__ import annotations

from collections.abc import Callable

import boa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rollbook.settlement import reference as ref

from .conftest import (
    ESCAPE_PERIOD_S,
    LeafTree,
    System,
    account_leaf,
    events,
    market_leaf,
    owner_bytes,
    tx_gas,
)

BTC, ETH = 1, 2
BTC_PRICE, BTC_LOT = 100_000_000_000, 100_000  # $100,000 per BTC, lots of 0.0001 BTC
ETH_PRICE, ETH_LOT = 3_000_000_000, 1_000_000
BTC_SLOT, ETH_SLOT, ALICE_SLOT, BOB_SLOT, FUND_SLOT, CAROL_SLOT = 1, 2, 3, 4, 5, 6
# transaction gas for a leaf at the bounds (8 groups, 32 positions in 32 markets); measured on
# the embedded py-evm chain (Prague): 351,096 (about 107,000 for a leaf of 1 group)
REGISTER_ACCOUNT_GAS_MAX = 400_000


def _tree(system: System) -> LeafTree:
    return LeafTree({
        BTC_SLOT: market_leaf(BTC, BTC_PRICE, BTC_LOT),
        ETH_SLOT: market_leaf(ETH, ETH_PRICE, ETH_LOT),
        # Alice: 1,000 USDC cross + 5 isolated, long 3 BTC lots, short 7 ETH lots
        ALICE_SLOT: account_leaf(system.alice, 0, (1_000_000_000, 5_000_000),
                                 ((BTC, 3), (ETH, -7))),
        # Bob: bankrupt, -10 USDC, no positions
        BOB_SLOT: account_leaf(system.bob, 0, (-10_000_000,)),
        FUND_SLOT: account_leaf(bytes(20), 0, (7_000_000,)),  # the insurance fund
        CAROL_SLOT: account_leaf(system.carol, 2, (0,)),  # nothing at all
    }, nonce=1)


def _alice_equity() -> int:
    return (1_000_000_000 + 5_000_000 + (3 * BTC_PRICE * BTC_LOT) // 10**9
            + (-7 * ETH_PRICE * ETH_LOT) // 10**9)


def _escape(system: System, markets: tuple[int, ...] = (BTC_SLOT, ETH_SLOT)) -> LeafTree:
    tree = _tree(system)
    system.escape_with(tree, ((system.alice, 2_000_000_000),))
    for slot in markets:
        system.settlement.escape_register_market(*tree.args(slot))
    return tree


def _register(system: System, tree: LeafTree, slot: int,
              proof: list[bytes] | None = None) -> None:
    index, leaf, good_proof = tree.args(slot)
    with boa.env.prank(system.stranger):
        system.settlement.escape_register_account(index, leaf, good_proof if proof is None
                                                  else proof)


def _alice_claim(system: System) -> Callable[[], int]:
    return lambda: system.settlement.escape_account_claim(system.alice, 0)


def test_register_account_records_its_positive_equity(system: System) -> None:
    tree = _escape(system)
    _register(system, tree, ALICE_SLOT)
    equity = _alice_equity()
    (log,) = events(system.settlement, "EscapeRegistered")
    assert (log.owner, log.kind, log.key, log.claim) == (
        system.alice, ref.LEAF_KIND_SUBACCOUNT, 0, equity)
    assert system.settlement.escape_account_claim(system.alice, 0) == equity
    assert system.settlement.escape_total_claims() == equity
    decoded = ref.decode_subaccount_leaf(tree.leaves[ALICE_SLOT])
    assert decoded.owner == owner_bytes(system.alice)
    markets = {BTC: ref.EscapeMarket(BTC_PRICE, BTC_LOT), ETH: ref.EscapeMarket(ETH_PRICE, ETH_LOT)}
    assert ref.escape_equity(decoded, markets) == equity


def test_register_account_rejects_before_the_freeze(system: System) -> None:
    tree = _tree(system)
    system.submit(tree)
    system.finalize()
    system.assert_reverts("Settlement: not frozen", lambda: _register(system, tree, ALICE_SLOT),
                          _alice_claim(system))


def test_register_account_rejects_after_the_escape_period(system: System) -> None:
    tree = _escape(system)
    boa.env.time_travel(seconds=ESCAPE_PERIOD_S)
    system.assert_reverts("Settlement: escape period over",
                          lambda: _register(system, tree, ALICE_SLOT), _alice_claim(system))


def test_register_account_rejects_an_invalid_proof(system: System) -> None:
    tree = _escape(system)
    system.assert_reverts("Settlement: invalid proof",
                          lambda: _register(system, tree, ALICE_SLOT, tree.proof(BOB_SLOT)),
                          _alice_claim(system))
    richer = account_leaf(system.alice, 0, (10**12, 5_000_000), ((BTC, 3), (ETH, -7)))
    with boa.env.prank(system.stranger):
        system.assert_reverts("Settlement: invalid proof", lambda: (
            system.settlement.escape_register_account(ALICE_SLOT, richer,
                                                      tree.proof(ALICE_SLOT))),
            _alice_claim(system))


def test_register_account_rejects_another_kind_of_leaf(system: System) -> None:
    tree = _escape(system)
    system.assert_reverts("Settlement: not a subaccount leaf",
                          lambda: _register(system, tree, BTC_SLOT))


def test_register_account_rejects_the_insurance_fund(system: System) -> None:
    tree = _escape(system)
    system.assert_reverts("Settlement: the insurance fund has no claim",
                          lambda: _register(system, tree, FUND_SLOT),
                          lambda: system.settlement.escape_account_claim("0x" + "00" * 20, 0))


def test_register_account_rejects_twice(system: System) -> None:
    tree = _escape(system)
    _register(system, tree, ALICE_SLOT)
    system.assert_reverts("Settlement: account already registered",
                          lambda: _register(system, tree, ALICE_SLOT), _alice_claim(system))


def test_register_account_rejects_an_unregistered_market(system: System) -> None:
    tree = _escape(system, markets=(BTC_SLOT,))
    system.assert_reverts("Settlement: market not registered",
                          lambda: _register(system, tree, ALICE_SLOT), _alice_claim(system))
    system.settlement.escape_register_market(*tree.args(ETH_SLOT))
    _register(system, tree, ALICE_SLOT)


def test_register_account_rejects_no_positive_equity(system: System) -> None:
    tree = _escape(system)
    for slot, owner, number in ((BOB_SLOT, system.bob, 0), (CAROL_SLOT, system.carol, 2)):
        system.assert_reverts("Settlement: no positive equity",
                              lambda s=slot: _register(system, tree, s),
                              lambda o=owner, n=number: system.settlement.escape_account_claim(
                                  o, n))


def test_register_account_gas_at_the_leaf_bounds(system: System) -> None:
    markets = {market_id: market_leaf(market_id, 1_000_000 * market_id, 10**9)
               for market_id in range(1, ref.POSITIONS_PER_SUBACCOUNT_MAX + 1)}
    leaf = account_leaf(system.alice, 0, tuple(10**9 for _ in range(ref.GROUPS_PER_SUBACCOUNT_MAX)),
                        tuple((market_id, 1) for market_id in markets))
    assert len(leaf) == ref.SUBACCOUNT_LEAF_BYTES_MAX
    slot = len(markets) + 1
    tree = LeafTree({**markets, slot: leaf}, nonce=1)
    system.escape_with(tree)
    for market_id in markets:
        system.settlement.escape_register_market(*tree.args(market_id))
    assert tx_gas(system.settlement, "escape_register_account", *tree.args(slot)) <= (
        REGISTER_ACCOUNT_GAS_MAX)
    assert system.settlement.escape_account_claim(system.alice, 0) > 0


# --- bit-exact: the contract's equity equals reference.escape_equity over generated leaves

_MARKET_IDS = (1, 2, 3)
_small = st.integers(-(10**15), 10**15)
_signed = st.one_of(_small, st.integers(-(2**130), 2**130), st.integers(ref.INT256_MIN,
                                                                        ref.INT256_MAX))
_price = st.one_of(st.integers(0, 10**12), st.integers(0, 2**127), st.integers(0, 2**200))
_lot = st.one_of(st.integers(1, 10**12), st.integers(1, 2**64), st.integers(1, 2**140))


@st.composite
def _accounts(draw: st.DrawFn) -> tuple[dict[int, tuple[int, int]], tuple[int, ...],
                                        tuple[tuple[int, int], ...]]:
    markets = {market_id: (draw(_price), draw(_lot)) for market_id in _MARKET_IDS}
    collaterals = tuple(draw(st.lists(_signed, min_size=1,
                                      max_size=ref.GROUPS_PER_SUBACCOUNT_MAX)))
    positions = tuple(draw(st.lists(st.tuples(st.sampled_from(_MARKET_IDS), _signed),
                                    max_size=6)))
    return markets, collaterals, positions


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(account=_accounts())
def test_register_account_equity_is_bit_exact(system: System, account: tuple[
        dict[int, tuple[int, int]], tuple[int, ...], tuple[tuple[int, int], ...]]) -> None:
    markets, collaterals, positions = account
    leaf = account_leaf(system.alice, 0, collaterals, positions)
    slot = len(markets) + 1
    tree = LeafTree({market_id: market_leaf(market_id, price, lot)
                     for market_id, (price, lot) in markets.items()} | {slot: leaf}, nonce=1)
    decoded = ref.decode_subaccount_leaf(leaf)
    prices = {market_id: ref.EscapeMarket(price, lot)
              for market_id, (price, lot) in markets.items()}
    s = system.settlement
    with boa.env.anchor():
        system.escape_with(tree)
        for market_id in markets:
            s.escape_register_market(*tree.args(market_id))
        try:
            expected = ref.escape_equity(decoded, prices)
        except OverflowError:
            event("int256 overflow: both revert")
            with boa.reverts():  # Vyper's checked arithmetic: no reason string
                s.escape_equity(leaf)
            return
        assert s.escape_equity(leaf) == expected
        event("positive equity" if expected > 0 else "bad debt or zero")
        if expected > 0:
            s.escape_register_account(*tree.args(slot))
            assert s.escape_account_claim(system.alice, 0) == ref.escape_claim(expected)
            assert s.escape_total_claims() == expected
        else:
            with boa.reverts("Settlement: no positive equity"):
                s.escape_register_account(*tree.args(slot))

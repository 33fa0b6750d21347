"""The margin hot paths agree with the reference ``group_risk`` + ``change_acceptable``.

``meets_initial_after`` is the reference rule's first clause computed in one pass; the order
path's ``_worst_case_not_increased`` shortcut accepts through the rule's "nothing got worse"
clause. Both are checked here on random multi-market groups against the readable reference.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import venue_config
from rollbook.execution import genesis_state, perpetual_market
from rollbook.execution.margin import change_acceptable, group_risk, meets_initial_after
from rollbook.execution.orders import _worst_case_not_increased
from rollbook.execution.positions import ensure_position
from rollbook.execution.state import State, Subaccount

ETH = 2


def _state(btc_price: int, eth_price: int) -> State:
    eth = perpetual_market(ETH, "ETH-PERP", 2, tick_size_quantums=10_000,
                           lot_size_nanounits=1_000_000)
    config = dataclasses.replace(venue_config(), markets=(*venue_config().markets, eth))
    state = genesis_state(config)
    state.markets[1].index_price_quantums = btc_price
    state.markets[ETH].index_price_quantums = eth_price
    return state


lots = st.integers(min_value=-3_000_000, max_value=3_000_000)  # up to $30M at $100k: 3 tiers
open_lots = st.integers(min_value=0, max_value=2_000_000)
position = st.tuples(lots, open_lots, open_lots)
deltas = st.tuples(st.integers(-50_000, 50_000), st.integers(-100, 50_000),
                   st.integers(-100, 50_000), st.integers(-10**12, 10**12))


@settings(max_examples=400, deadline=None)
@given(btc=st.integers(10**9, 10**12), eth=st.integers(10**8, 10**10),
       collateral=st.integers(-10**12, 10**14),
       positions=st.dictionaries(st.sampled_from([1, ETH]), position, max_size=2),
       market_id=st.sampled_from([1, ETH]), change=deltas)
def test_meets_initial_after_equals_the_reference_first_clause(
        btc: int, eth: int, collateral: int, positions: dict[int, tuple[int, int, int]],
        market_id: int, change: tuple[int, int, int, int]) -> None:
    state = _state(btc, eth)
    group = Subaccount(b"\x01" * 20, 0).cross
    group.collateral_quantums = collateral
    for position_market, (size, bids, asks) in positions.items():
        p = ensure_position(group, position_market)
        p.size_lots, p.open_bid_lots, p.open_ask_lots = size, bids, asks
    d_size, d_bid, d_ask, d_collateral = change
    existing = positions.get(market_id, (0, 0, 0))
    d_bid = max(d_bid, -existing[1])  # open lots never go negative
    d_ask = max(d_ask, -existing[2])
    reference = group_risk(state.markets, group, market_id, d_size, d_bid, d_ask, d_collateral)
    fast = meets_initial_after(state.markets, group, market_id, d_size, d_bid, d_ask,
                               d_collateral)
    assert fast == (reference.equity_quantums >= reference.initial_quantums)
    # the callers on the order path pass the traded market they hold: the same answer
    assert fast == meets_initial_after(state.markets, group, market_id, d_size, d_bid, d_ask,
                                       d_collateral, state.markets[market_id])
    # and the group's record in it, when it has one (a lone record skips the walk)
    record = group.positions.get(market_id)
    assert fast == meets_initial_after(state.markets, group, market_id, d_size, d_bid, d_ask,
                                       d_collateral, state.markets[market_id], record)


@settings(max_examples=400, deadline=None)
@given(size=lots, bids=open_lots, asks=open_lots, add_bid=st.integers(0, 100_000),
       add_ask=st.integers(0, 100_000), collateral=st.integers(-10**12, 10**13))
def test_resting_shortcut_only_accepts_what_the_full_rule_accepts(
        size: int, bids: int, asks: int, add_bid: int, add_ask: int, collateral: int) -> None:
    state = _state(100_000 * 10**6, 3_000 * 10**6)
    group = Subaccount(b"\x02" * 20, 0).cross
    group.collateral_quantums = collateral
    p = ensure_position(group, 1)
    p.size_lots, p.open_bid_lots, p.open_ask_lots = size, bids, asks
    if _worst_case_not_increased(p, add_bid, add_ask):
        before = group_risk(state.markets, group)
        after = group_risk(state.markets, group, 1, 0, add_bid, add_ask, 0)
        assert change_acceptable(before, after)
        assert after.initial_quantums <= before.initial_quantums


def test_resting_shortcut_fires_for_an_order_on_the_lighter_side() -> None:
    state = _state(100_000 * 10**6, 3_000 * 10**6)
    group = Subaccount(b"\x03" * 20, 0).cross
    p = ensure_position(group, 1)
    p.open_bid_lots, p.open_ask_lots = 100, 50  # worst case: all 100 bids fill
    assert _worst_case_not_increased(p, 0, 30)  # asks to 80: still 100 at worst
    assert not _worst_case_not_increased(p, 0, 51)  # asks to 101: the worst case grows
    assert not _worst_case_not_increased(p, 1, 0)
    # and with no collateral at all the lighter-side order is still acceptable by the rule
    before = group_risk(state.markets, group)
    after = group_risk(state.markets, group, 1, 0, 0, 30, 0)
    assert before.equity_quantums < before.initial_quantums
    assert change_acceptable(before, after)

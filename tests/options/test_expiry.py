"""Expiry: the settlement price from index samples kept in state, cash settlement netting to zero.

- The per-expiry accumulator (O(1) state) gives exactly ``instruments.settlement_price_quantums``
  of the whole sample sequence, for random sequences (hypothesis), and through oracle updates.
- Settlement of random books of positions (hypothesis): every position is settled, the
  cashflows plus the residual credited to the insurance fund sum to exactly zero, the money
  invariants hold, and the books are empty.
- A flat group left with negative equity is made whole by the insurance fund, then by the
  receivers of the expiry, and the event says who paid.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from option_venue import CALL, PUT, SHORT_EXPIRY_MS, OptionVenue, option_venue, order

from conftest import ALICE, BOB, BTC, CAROL, DAVE, INDEX_100K_QUANTUMS, USDC
from rollbook.execution import ExpireOptions, Side, TimeInForce, Transfer
from rollbook.execution.events import (
    CancelReason,
    ExpirySettled,
    OptionSettled,
    OrderCancelled,
)
from rollbook.execution.invariants import check_invariants, total_collateral_quantums
from rollbook.execution.options.instruments import settlement_price_quantums
from rollbook.execution.options.lifecycle import _add_sample, expiry_settlement_price_quantums
from rollbook.execution.state import EXPIRY_SETTLED, OptionExpiry, State, mark_subaccount

K100 = 100_000 * USDC
STRIKES = (95_000 * USDC, K100, 105_000 * USDC)
TRADERS = (ALICE, BOB, CAROL, DAVE)
WINDOW_MS = 1_800_000


# --- the settlement price ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(window_ms=st.integers(1, 5_000), expiry_ms=st.integers(5_000, 20_000),
       steps=st.lists(st.tuples(st.integers(1, 3_000), st.integers(1, 10**9)), min_size=1,
                      max_size=30),
       start_ms=st.integers(0, 20_000))
def test_the_accumulator_is_the_time_weighted_average_of_its_samples(
        window_ms: int, expiry_ms: int, steps: list[tuple[int, int]], start_ms: int) -> None:
    expiry = OptionExpiry(BTC, expiry_ms, window_ms)
    samples: list[tuple[int, int]] = []
    timestamp_ms = start_ms
    for gap_ms, price in steps:
        _add_sample(expiry, timestamp_ms, price)
        samples.append((timestamp_ms, price))
        timestamp_ms += gap_ms
    before_expiry = [s for s in samples if s[0] < expiry_ms]
    if not before_expiry:
        assert expiry.sample_count == 0
        return
    assert expiry.sample_count == len(before_expiry)
    state = State.__new__(State)  # only index_prices is read, and only without samples
    assert expiry_settlement_price_quantums(state, expiry) == settlement_price_quantums(
        samples, expiry_ms, window_ms)


def test_settlement_price_from_oracle_samples_over_the_window() -> None:
    v = option_venue(expiries=(SHORT_EXPIRY_MS,), strikes=(K100,))
    samples = [(v.state.oracle_timestamp_ms, INDEX_100K_QUANTUMS)]
    # walk the clock into the window, then sample every 7 minutes up to and past expiry
    v.run_ok(advance_ms=SHORT_EXPIRY_MS - WINDOW_MS - 600_000 - v.clock_ms)
    price = INDEX_100K_QUANTUMS
    while v.clock_ms < SHORT_EXPIRY_MS + 420_000:
        price += 317 * USDC
        v.run_ok(v.oracle(price, advance_ms=420_000), advance_ms=420_000)
        samples.append((v.state.oracle_timestamp_ms, price))
    expected = settlement_price_quantums(samples, SHORT_EXPIRY_MS, WINDOW_MS)
    receipts = v.run_ok(ExpireOptions(BTC, SHORT_EXPIRY_MS))
    (settled,) = [e for e in receipts[0].events if isinstance(e, ExpirySettled)]
    assert settled.settlement_price_quantums == expected
    assert v.state.expiries[(BTC, SHORT_EXPIRY_MS)].settlement_price_quantums == expected
    # a late sample (after expiry) is not part of the price
    assert samples[-1][0] >= SHORT_EXPIRY_MS


# --- settlement ---------------------------------------------------------------------------------


def _trade(v: OptionVenue, maker: bytes, taker: bytes, market_id: int, maker_side: Side,
           lots: int) -> bool:
    price = v.mark_ticks(market_id)
    taker_side = Side.BUY if maker_side == Side.SELL else Side.SELL
    maker_receipt = v.run(order(maker, market_id, maker_side, price, lots))
    taker_receipt = v.run(order(taker, market_id, taker_side, price, lots, TimeInForce.IOC))
    v.run_ok(*(_cancel_all(owner) for owner in (maker, taker)))
    return maker_receipt[0].ok and taker_receipt[0].ok


def _cancel_all(owner: bytes) -> object:
    from rollbook.execution import CancelAll

    return CancelAll(owner, 0)


def _expire(v: OptionVenue, final_index: int) -> list[object]:
    """Close the books at expiry, then an index sample at expiry, then settle."""
    v.run_ok(advance_ms=SHORT_EXPIRY_MS - v.clock_ms)
    events: list[object] = list(v.run_ok(ExpireOptions(BTC, SHORT_EXPIRY_MS))[0].events)
    v.run_ok(v.oracle(final_index))
    events.extend(v.run_ok(ExpireOptions(BTC, SHORT_EXPIRY_MS))[0].events)
    return events


trades = st.lists(
    st.tuples(st.sampled_from(TRADERS), st.sampled_from(TRADERS), st.integers(0, 5),
              st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 40)),
    min_size=1, max_size=8)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trades=trades, moves=st.lists(st.integers(-80_000, 80_000), min_size=1, max_size=4))
def test_settlement_nets_to_zero_and_leaves_nothing_open(
        trades: list[tuple[bytes, bytes, int, Side, int]], moves: list[int]) -> None:
    v = option_venue(expiries=(SHORT_EXPIRY_MS,), strikes=STRIKES)
    v.fund(TRADERS, 200_000 * USDC)
    markets = sorted(v.option_id.values())
    for maker, taker, pick, side, lots in trades:
        if maker != taker:
            _trade(v, maker, taker, markets[pick], side, lots)
    # resting orders at expiry are cancelled, not settled
    v.run_ok(order(ALICE, markets[0], Side.BUY, v.mark_ticks(markets[0]) * 6 // 10, 1))
    index = INDEX_100K_QUANTUMS
    for move_ppm in moves:  # index moves inside the settlement window
        v.run_ok(advance_ms=max(0, SHORT_EXPIRY_MS - WINDOW_MS // 2 - v.clock_ms))
        index = index * (10**6 + move_ppm) // 10**6
        v.run_ok(v.oracle(index))
    deposits = v.state.deposits_quantums_total
    open_lots = {m: v.market(m).open_interest_lots for m in markets}
    events = _expire(v, index)
    state = v.state
    settled = [e for e in events if isinstance(e, OptionSettled)]
    (summary,) = [e for e in events if isinstance(e, ExpirySettled)]
    assert summary.shortfall_quantums == 0  # everyone was margined for it
    assert sum(e.cashflow_quantums for e in settled) + summary.residual_quantums == 0
    assert summary.residual_quantums >= 0
    assert sum(abs(e.size_lots) for e in settled) == 2 * sum(open_lots.values())
    cancelled = [e for e in events if isinstance(e, OrderCancelled)]
    assert all(e.reason == CancelReason.EXPIRED for e in cancelled) and cancelled
    assert state.expiries[(BTC, SHORT_EXPIRY_MS)].status == EXPIRY_SETTLED
    for market_id in markets:
        market = v.market(market_id)
        assert market.open_interest_lots == 0 and not market.holders
        assert not market.book.bid_prices and not market.book.ask_prices
    for owner in TRADERS:
        group = state.subaccounts[(owner, 0)].cross
        assert group.option_positions == 0 and not group.positions
    assert total_collateral_quantums(state) + state.fee_pool_quantums == deposits
    check_invariants(state)
    # payoffs: each settled position's cashflow is its size x payoff, rounded for the venue
    price = summary.settlement_price_quantums
    for e in settled:
        spec = v.market(e.market_id).option.spec  # type: ignore[union-attr]
        intrinsic = max(price - spec.strike_quantums, 0) if spec.option_type == CALL else max(
            spec.strike_quantums - price, 0)
        exact = e.size_lots * intrinsic * spec.contract_size_nanounits
        # longs receive it rounded down, shorts pay it rounded up: both are the floor
        assert e.cashflow_quantums == exact // 10**9


def _short_put_venue() -> tuple[OptionVenue, int]:
    """CAROL short 50 puts at 100k to BOB, DAVE flat; the index at 80k through the settlement
    window; at expiry the books close."""
    v = option_venue(expiries=(SHORT_EXPIRY_MS,), strikes=(K100,))
    v.fund([BOB, CAROL, DAVE], 100_000 * USDC)
    put = v.oid(K100, PUT, SHORT_EXPIRY_MS)
    assert _trade(v, CAROL, BOB, put, Side.SELL, 50)
    v.run_ok(advance_ms=SHORT_EXPIRY_MS - WINDOW_MS - v.clock_ms)
    v.run_ok(v.oracle(80_000 * USDC))
    v.run_ok(advance_ms=SHORT_EXPIRY_MS - v.clock_ms)
    v.run_ok(ExpireOptions(BTC, SHORT_EXPIRY_MS))
    return v, put


def _strip(state: State, owner: bytes, keep_quantums: int) -> None:
    """Move collateral from ``owner`` to DAVE directly (conserving): a loss the engine could
    not see coming, like a gap in the frozen minutes between expiry and settlement."""
    group = state.subaccounts[(owner, 0)].cross
    moved = group.collateral_quantums - keep_quantums
    group.collateral_quantums -= moved
    state.subaccounts[(DAVE, 0)].cross.collateral_quantums += moved
    mark_subaccount(state, state.subaccounts[(owner, 0)])
    mark_subaccount(state, state.subaccounts[(DAVE, 0)])


def test_a_bankrupt_short_is_covered_by_the_fund_then_by_the_receivers() -> None:
    v, _ = _short_put_venue()
    state = v.state
    _strip(state, CAROL, 1_000 * USDC)
    fund = state.insurance.cross
    fund_before = fund.collateral_quantums
    bob_before = state.subaccounts[(BOB, 0)].cross.collateral_quantums
    v.run_ok(v.oracle(80_000 * USDC))  # the sample at expiry: settlement can start
    held = total_collateral_quantums(state) + state.fee_pool_quantums
    receipts = v.run_ok(ExpireOptions(BTC, SHORT_EXPIRY_MS))
    events = receipts[0].events
    (summary,) = [e for e in events if isinstance(e, ExpirySettled)]
    carol = state.subaccounts[(CAROL, 0)].cross
    assert carol.collateral_quantums == 0 and not carol.positions  # made whole, flat at zero
    assert summary.shortfall_quantums > 0
    # the fund holds no position: all it has, the rounding residual included, is free
    assert summary.insurance_quantums == min(summary.shortfall_quantums,
                                             fund_before + summary.residual_quantums)
    assert summary.insurance_quantums + summary.haircut_quantums >= summary.shortfall_quantums
    assert summary.uncovered_quantums == 0
    bob = state.subaccounts[(BOB, 0)].cross
    (bob_settled,) = [e for e in events if isinstance(e, OptionSettled) and e.owner == BOB]
    assert bob.collateral_quantums == (bob_before + bob_settled.cashflow_quantums
                                       - summary.haircut_quantums)
    assert total_collateral_quantums(state) + state.fee_pool_quantums == held
    check_invariants(state)


def test_what_nobody_can_cover_is_the_insurance_fund_s() -> None:
    v, _ = _short_put_venue()
    state = v.state
    _strip(state, CAROL, 0)
    _strip(state, BOB, -5_000 * USDC)  # the receiver can give back only half of it
    state.insurance.cross.collateral_quantums, moved = 0, state.insurance.cross.collateral_quantums
    state.subaccounts[(DAVE, 0)].cross.collateral_quantums += moved
    v.run_ok(v.oracle(80_000 * USDC))
    held = total_collateral_quantums(state) + state.fee_pool_quantums
    receipts = v.run_ok(ExpireOptions(BTC, SHORT_EXPIRY_MS))
    (summary,) = [e for e in receipts[0].events if isinstance(e, ExpirySettled)]
    assert summary.uncovered_quantums > 0
    assert total_collateral_quantums(state) + state.fee_pool_quantums == held
    assert state.subaccounts[(CAROL, 0)].cross.collateral_quantums == 0


@pytest.mark.parametrize("final_index", [60_000 * USDC, 100_000 * USDC, 140_000 * USDC])
def test_a_hedged_book_settles_calls_and_puts(final_index: int) -> None:
    v = option_venue(expiries=(SHORT_EXPIRY_MS,), strikes=(K100,))
    v.fund([ALICE, BOB], 200_000 * USDC)
    assert _trade(v, ALICE, BOB, v.oid(K100, CALL, SHORT_EXPIRY_MS), Side.SELL, 20)
    assert _trade(v, ALICE, BOB, v.oid(K100, PUT, SHORT_EXPIRY_MS), Side.BUY, 20)
    # ALICE is short a synthetic forward: short call + long put pays K - S per unit
    v.run_ok(advance_ms=SHORT_EXPIRY_MS - WINDOW_MS - 2_000 - v.clock_ms)
    v.run_ok(v.oracle(final_index))  # held through the whole window
    alice_before = v.state.subaccounts[(ALICE, 0)].cross.collateral_quantums
    events = _expire(v, final_index)
    alice = [e for e in events if isinstance(e, OptionSettled) and e.owner == ALICE]
    net = sum(e.cashflow_quantums for e in alice)
    assert abs(net - (K100 - final_index) * 2 // 10) <= 1  # 0.2 BTC
    assert v.state.subaccounts[(ALICE, 0)].cross.collateral_quantums == alice_before + net


def test_transfers_do_not_disturb_a_settled_expiry() -> None:
    v = option_venue(expiries=(SHORT_EXPIRY_MS,), strikes=(K100,))
    v.fund([ALICE, BOB], 100_000 * USDC)
    _expire(v, INDEX_100K_QUANTUMS)
    v.run_ok(Transfer(ALICE, 0, BOB, 0, USDC))
    check_invariants(v.state)

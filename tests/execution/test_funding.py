"""Funding: premium samples from impact prices, the sample and payment intervals, the interest
clamp and the cap, rounding (payers up, receivers down, residual to the insurance fund) and no
payments to flat accounts. Exact quantums are derived by hand in the comments.

Default BTC perpetual: impact notional $5,000, samples every 60 s, payments every 3,600 s,
premium divided by 8 (an 8-hour rate paid hourly), interest 12 ppm clamped to +-625 ppm around
the premium, rate cap 40,000 ppm per interval.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import (
    ALICE,
    BOB,
    BTC,
    CAROL,
    DAVE,
    INDEX_100K_QUANTUMS,
    PRICE_100K_TICKS,
    USDC,
    Venue,
    venue_config,
)
from rollbook.execution import FundingTick, PlaceOrder, Receipt, Side, TimeInForce
from rollbook.execution.events import FundingPaid
from rollbook.execution.funding import impact_prices_quantums, premium_ppm
from rollbook.execution.invariants import check_invariants
from rollbook.execution.margin import position_value_quantums

ERIN = b"\xe7" * 20
MAKER = DAVE
IOC = TimeInForce.IOC
SAMPLE_MS = 60_000
INTERVAL_MS = 3_600_000


def _capped_venue(cap_ppm: int) -> Venue:
    base = venue_config()
    market = dataclasses.replace(base.markets[0], funding_rate_cap_ppm=cap_ppm)
    venue = Venue(dataclasses.replace(base, markets=(market,)))
    venue.run_ok(venue.oracle(INDEX_100K_QUANTUMS))
    return venue


def _open_positions(venue: Venue) -> None:
    """Alice long 7 lots; Bob short 3 and Carol short 4; the book is left empty; Erin is flat."""
    venue.fund([ALICE, BOB, CAROL, ERIN], 10_000 * USDC)
    venue.fund([MAKER], 1_000_000 * USDC)
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, PRICE_100K_TICKS, 7))
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, PRICE_100K_TICKS, 3, time_in_force=IOC),
                 PlaceOrder(CAROL, 0, BTC, Side.SELL, PRICE_100K_TICKS, 4, time_in_force=IOC))
    assert not venue.state.markets[BTC].book.bids


def _quote(venue: Venue, bid_ticks: int, ask_ticks: int, lots: int = 600) -> None:
    """A flat maker's quotes: 600 lots at ~$100k is ~$6,000, over the $5,000 impact notional."""
    venue.run_ok(PlaceOrder(MAKER, 0, BTC, Side.BUY, bid_ticks, lots),
                 PlaceOrder(MAKER, 0, BTC, Side.SELL, ask_ticks, lots))


def _collateral(venue: Venue) -> dict[bytes, int]:
    state = venue.state
    return {owner: state.subaccounts[(owner, 0)].cross.collateral_quantums
            for owner in (ALICE, BOB, CAROL, ERIN, MAKER)} | {
        b"insurance": state.insurance.cross.collateral_quantums}


def _paid(receipts: list[Receipt]) -> list[FundingPaid]:
    return [e for r in receipts for e in r.events if isinstance(e, FundingPaid)]


def _run_one_interval(venue: Venue) -> list[FundingPaid]:
    """Start the clock, take one sample after 60 s, then pay 3,600 s after the start."""
    assert not _paid(venue.run_ok(FundingTick()))
    assert not _paid(venue.run_ok(FundingTick(), advance_ms=SAMPLE_MS))
    return _paid(venue.run_ok(FundingTick(), advance_ms=INTERVAL_MS - SAMPLE_MS))


# --- impact prices and the premium ----------------------------------------------------------

def test_impact_prices_need_the_impact_notional_of_depth(venue: Venue) -> None:
    venue.fund([MAKER], 1_000_000 * USDC)
    venue.run_ok(PlaceOrder(MAKER, 0, BTC, Side.BUY, 1_002_000, 300),
                 PlaceOrder(MAKER, 0, BTC, Side.BUY, 1_001_000, 300),
                 PlaceOrder(MAKER, 0, BTC, Side.SELL, 1_003_000, 100))
    market = venue.state.markets[BTC]
    # bids: 300 x $10.02 = $3,006 < $5,000, then + 300 x $10.01 = $6,009: impact bid $100,100;
    # asks: 100 x $10.03 = $1,003 only: no impact ask
    assert impact_prices_quantums(market) == (100_100 * USDC, None)
    # (100,100 - 100,000) / 100,000 = 1,000 ppm; the thin ask side contributes nothing
    assert premium_ppm(market) == 1_000


def test_book_below_the_index_gives_a_negative_premium(venue: Venue) -> None:
    venue.fund([MAKER], 1_000_000 * USDC)
    _quote(venue, 979_000, 980_000)
    # impact ask: 600 x $9.80 = $5,880 >= $5,000 at $98,000, $2,000 under the index:
    # -20,000 ppm (the bid side is below the index too, and only a bid above it counts)
    assert premium_ppm(venue.state.markets[BTC]) == -20_000


# --- sampling and payment intervals ---------------------------------------------------------

def test_samples_respect_the_interval_and_payment_waits_for_the_full_hour(venue: Venue) -> None:
    _open_positions(venue)
    _quote(venue, 1_020_000, 1_021_000)  # bid $102,000 x 600 lots = $6,120: premium +20,000
    market = venue.state.markets[BTC]
    assert not _paid(venue.run_ok(FundingTick()))  # starts the clock, no sample
    start_ms = venue.clock_ms
    assert (market.last_funding_ms, market.premium_sample_count) == (start_ms, 0)
    venue.run_ok(FundingTick(), advance_ms=30_000)  # 30 s: too early to sample
    assert market.premium_sample_count == 0
    venue.run_ok(FundingTick(), advance_ms=30_000)  # 60 s: first sample
    assert (market.premium_sample_count, market.premium_sum_ppm) == (1, 20_000)
    venue.run_ok(FundingTick(), advance_ms=59_999)  # 59.999 s after it: none
    assert market.premium_sample_count == 1
    # 3,599 s after the start: a sample, but no payment yet
    receipts = venue.run_ok(FundingTick(), advance_ms=INTERVAL_MS - 1_000 - 60_000 - 59_999)
    assert venue.clock_ms - start_ms == INTERVAL_MS - 1_000
    assert not _paid(receipts)
    assert (market.premium_sample_count, market.premium_sum_ppm) == (2, 40_000)
    before = _collateral(venue)
    receipts = venue.run_ok(FundingTick(), advance_ms=1_000)  # exactly one hour: pays
    # average 40,000 / (2 samples x 8) = 2,500 ppm; + clamp(12 - 2,500, +-625) = 1,875 ppm
    assert _paid(receipts) == [FundingPaid(BTC, 1_875, 131_250, 131_250, 0)]
    after = _collateral(venue)
    # positive rate: the long pays, the shorts receive. Alice: $70 x 0.1875% = 0.13125 USDC;
    # Bob $30 -> 0.05625; Carol $40 -> 0.075; all exact
    assert after[ALICE] - before[ALICE] == -131_250
    assert after[BOB] - before[BOB] == 56_250
    assert after[CAROL] - before[CAROL] == 75_000
    # flat accounts (Erin, and the maker with open orders only) neither pay nor receive
    assert after[ERIN] == before[ERIN] and after[MAKER] == before[MAKER]
    assert (market.premium_sample_count, market.premium_sum_ppm) == (0, 0)
    assert (market.last_funding_ms, market.cumulative_funding_ppm) == (venue.clock_ms, 1_875)
    check_invariants(venue.state)


def test_no_payment_without_a_sample_even_after_the_interval(venue: Venue) -> None:
    _open_positions(venue)
    venue.run_ok(FundingTick())
    market = venue.state.markets[BTC]
    market_sample_ms = market.last_sample_ms
    # an hour and more later with no tick in between: this tick samples first, then pays
    receipts = venue.run_ok(FundingTick(), advance_ms=2 * INTERVAL_MS)
    assert market.last_sample_ms > market_sample_ms
    # empty book: premium 0, so the rate is the interest term clamp(12, +-625) = 12 ppm
    assert [e.rate_ppm for e in _paid(receipts)] == [12]


# --- clamp, cap and sign --------------------------------------------------------------------

def test_the_cap_bounds_the_rate_and_a_negative_rate_makes_shorts_pay() -> None:
    venue = _capped_venue(1_000)
    _open_positions(venue)
    _quote(venue, 979_000, 980_000)  # premium -20,000 ppm
    before = _collateral(venue)
    paid = _run_one_interval(venue)
    # average -20,000 x 2 / (2 x 8) = -2,500; + clamp(12 + 2,500, +-625) = -1,875; cap -1,000
    assert paid == [FundingPaid(BTC, -1_000, 70_000, 70_000, 0)]
    after = _collateral(venue)
    # shorts pay 0.1%: Bob $30 -> 30,000, Carol $40 -> 40,000; Alice receives $70 -> 70,000
    assert after[BOB] - before[BOB] == -30_000
    assert after[CAROL] - before[CAROL] == -40_000
    assert after[ALICE] - before[ALICE] == 70_000
    check_invariants(venue.state)


def test_a_small_premium_leaves_the_interest_rate(venue: Venue) -> None:
    _open_positions(venue)
    _quote(venue, 1_004_000, 1_005_000)  # +4,000 ppm premium -> 500 per interval
    # 500 + clamp(12 - 500, +-625) = 500 - 488 = 12: inside the clamp the interest rate wins
    assert [e.rate_ppm for e in _run_one_interval(venue)] == [12]


# --- rounding and the residual --------------------------------------------------------------

def test_payers_round_up_receivers_round_down_and_the_residual_goes_to_insurance(
        venue: Venue) -> None:
    _open_positions(venue)
    venue.run_ok(venue.oracle(100_000_123_457))  # $100,000.123457: values are not whole
    before = _collateral(venue)
    paid = _run_one_interval(venue)  # empty book: rate = interest = 12 ppm
    # Alice +7: value floor(70,000,086.42) = 70,000,086; owes 840.001032 -> pays 841
    # Bob -3: value floor(-30,000,037.04) = -30,000,038; 360.000456 -> receives 360
    # Carol -4: value -40,000,050; 480.0006 -> receives 480
    # paid 841 = received 840 + residual 1
    assert paid == [FundingPaid(BTC, 12, 841, 840, 1)]
    after = _collateral(venue)
    deltas = {owner: after[owner] - before[owner] for owner in after}
    assert deltas == {ALICE: -841, BOB: 360, CAROL: 480, ERIN: 0, MAKER: 0, b"insurance": 1}
    assert sum(deltas.values()) == 0
    check_invariants(venue.state)


def test_funding_is_paid_by_the_isolated_group_holding_the_position(venue: Venue) -> None:
    from rollbook.execution import MoveIsolatedMargin, SetMarginMode

    venue.fund([ALICE, BOB], 10_000 * USDC)
    venue.run_ok(SetMarginMode(ALICE, 0, BTC, True),
                 MoveIsolatedMargin(ALICE, 0, BTC, 1_000 * USDC))
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, PRICE_100K_TICKS, 7))
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, PRICE_100K_TICKS, 7, time_in_force=IOC))
    sub = venue.state.subaccounts[(ALICE, 0)]
    cross_before = sub.cross.collateral_quantums
    isolated_before = sub.isolated[BTC].collateral_quantums
    assert [e.paid_quantums for e in _run_one_interval(venue)] == [840]  # $70 x 12 ppm
    assert sub.cross.collateral_quantums == cross_before
    assert sub.isolated[BTC].collateral_quantums == isolated_before - 840


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(-400, 400), min_size=2, max_size=5),
       index_quantums=st.integers(90_000 * USDC, 110_000 * USDC),
       rate_ppm=st.integers(-5_000, 5_000).filter(bool))
def test_funding_sums_to_zero_with_the_residual_on_random_positions(
        sizes: list[int], index_quantums: int, rate_ppm: int) -> None:
    # premium 0 (empty book) and a clamp wide enough that the rate is the interest term itself
    base = venue_config()
    market = dataclasses.replace(base.markets[0], funding_interest_ppm=rate_ppm,
                                 funding_clamp_ppm=10**6)
    venue = Venue(dataclasses.replace(base, markets=(market,)))
    venue.run_ok(venue.oracle(INDEX_100K_QUANTUMS))
    traders = [bytes([0x40 + i]) * 20 for i in range(len(sizes))]
    venue.fund(traders, 10_000 * USDC)
    venue.fund([MAKER, ERIN], 1_000_000 * USDC)
    for trader, lots in zip(traders, sizes, strict=True):
        if lots:
            venue.run_ok(PlaceOrder(MAKER, 0, BTC, Side.SELL if lots > 0 else Side.BUY,
                                    PRICE_100K_TICKS, abs(lots)))
            venue.run_ok(PlaceOrder(trader, 0, BTC, Side.BUY if lots > 0 else Side.SELL,
                                    PRICE_100K_TICKS, abs(lots), time_in_force=IOC))
    venue.run_ok(venue.oracle(index_quantums))
    state = venue.state
    holders = {key: p for key, p in state.markets[BTC].holders.items()}
    before = {key: p.group.collateral_quantums for key, p in holders.items()}
    erin_before = state.subaccounts[(ERIN, 0)].cross.collateral_quantums
    insurance_before = state.insurance.cross.collateral_quantums
    paid = _run_one_interval(venue)
    assert len(paid) == 1 and paid[0].rate_ppm == rate_ppm
    event = paid[0]
    for key, position in holders.items():
        value = position_value_quantums(position.size_lots, index_quantums, 100_000)
        owed = value * rate_ppm
        # payers pay ceil(|owed| / 1e6), receivers get floor(|owed| / 1e6)
        expected = -(-owed // 10**6) if owed > 0 else (-owed) // 10**6
        delta = position.group.collateral_quantums - before[key]
        assert delta == (-expected if owed > 0 else expected)
    residual = state.insurance.cross.collateral_quantums - insurance_before
    assert residual == event.residual_quantums == event.paid_quantums - event.received_quantums
    # each holder's rounding contributes under one quantum, so n holders leave at most n - 1
    assert 0 <= residual <= max(0, len(holders) - 1)
    assert sum(p.group.collateral_quantums - before[k] for k, p in holders.items()) == -residual
    assert state.subaccounts[(ERIN, 0)].cross.collateral_quantums == erin_before
    check_invariants(state)

"""Margin math: rounding, tiers, open-order reservations, the acceptance rule, withdrawals and
isolated margin. Exact quantums are derived by hand in the comments.

Default BTC perpetual: one lot = 0.0001 BTC, so at $100,000 a lot is worth $10; initial 10% /
maintenance 5% up to $1M notional, 20% / 10% up to $10M, 40% / 20% above; taker fee 5 bps,
maker rebate 1 bp; withdrawals must leave max(initial, 20% of notional).
"""

from __future__ import annotations

from conftest import ALICE, BOB, BTC, PRICE_100K_TICKS, USDC, Venue, venue_config
from rollbook.execution import (
    CancelAll,
    ErrorCode,
    MoveIsolatedMargin,
    PlaceOrder,
    SetMarginMode,
    Side,
    TimeInForce,
    Transfer,
    Withdraw,
)
from rollbook.execution.events import Liquidated, PositionDeleveraged
from rollbook.execution.invariants import check_invariants
from rollbook.execution.margin import (
    group_risk,
    notional_quantums,
    position_value_quantums,
    tiered_requirement_quantums,
)
from rollbook.execution.state import MarginGroup

LOT_NANOUNITS = 100_000
ODD_INDEX_QUANTUMS = 100_000_123_457  # $100,000.123457
IOC = TimeInForce.IOC


def _cross(venue: Venue, owner: bytes) -> MarginGroup:
    return venue.state.subaccounts[(owner, 0)].cross


def _buy_from_bob(venue: Venue, buyer: bytes, lots: int, price_ticks: int = PRICE_100K_TICKS
                  ) -> None:
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, price_ticks, lots))
    venue.run_ok(PlaceOrder(buyer, 0, BTC, Side.BUY, price_ticks, lots, time_in_force=IOC))


# --- position value and notional ------------------------------------------------------------

def test_position_value_rounds_down_for_longs_and_shorts() -> None:
    # 3 lots x $100,000.123457 x 0.0001 = $30.0000370371 = 30,000,037.0371 quantums
    assert position_value_quantums(3, ODD_INDEX_QUANTUMS, LOT_NANOUNITS) == 30_000_037
    # a short's liability is valued higher (floor of a negative number)
    assert position_value_quantums(-3, ODD_INDEX_QUANTUMS, LOT_NANOUNITS) == -30_000_038
    # the notional that requirements use rounds up
    assert notional_quantums(3, ODD_INDEX_QUANTUMS, LOT_NANOUNITS) == 30_000_038
    # exact products are not rounded at all
    assert position_value_quantums(-3, 100_000 * USDC, LOT_NANOUNITS) == -30 * USDC


# --- tiered requirements --------------------------------------------------------------------

def test_tiered_requirement_is_progressive_across_two_tiers() -> None:
    tiers = venue_config().markets[0].margin_tiers
    # $1.5M: 10% of the first $1M + 20% of the next $0.5M = $100k + $100k
    assert tiered_requirement_quantums(1_500_000 * USDC, tiers, True) == 200_000 * USDC
    # maintenance: 5% of $1M + 10% of $0.5M = $50k + $50k
    assert tiered_requirement_quantums(1_500_000 * USDC, tiers, False) == 100_000 * USDC
    # $12M spans all three: 10% x 1M + 20% x 9M + 40% x 2M = 0.1M + 1.8M + 0.8M
    assert tiered_requirement_quantums(12_000_000 * USDC, tiers, True) == 2_700_000 * USDC


def test_tiered_requirement_is_continuous_at_the_tier_boundary() -> None:
    tiers = venue_config().markets[0].margin_tiers
    boundary = 1_000_000 * USDC
    # at the boundary exactly 10%; one quantum past it adds ceil(0.2) = 1 quantum, no jump
    assert tiered_requirement_quantums(boundary, tiers, True) == 100_000 * USDC
    assert tiered_requirement_quantums(boundary + 1, tiers, True) == 100_000 * USDC + 1
    assert tiered_requirement_quantums(boundary - 1, tiers, True) == 100_000 * USDC
    # the marginal rate doubles past the boundary: $1,000 more notional costs $100, then $200
    below = (tiered_requirement_quantums(boundary, tiers, True)
             - tiered_requirement_quantums(boundary - 1_000 * USDC, tiers, True))
    above = (tiered_requirement_quantums(boundary + 1_000 * USDC, tiers, True)
             - tiered_requirement_quantums(boundary, tiers, True))
    assert (below, above) == (100 * USDC, 200 * USDC)
    # monotone, never steps by more than one quantum per quantum of notional
    previous = tiered_requirement_quantums(boundary - 50, tiers, False)
    for notional in range(boundary - 49, boundary + 50):
        current = tiered_requirement_quantums(notional, tiers, False)
        assert 0 <= current - previous <= 1
        previous = current


def test_a_position_straddling_tiers_is_margined_progressively(venue: Venue) -> None:
    venue.fund([ALICE, BOB], 300_000 * USDC)
    _buy_from_bob(venue, ALICE, 150_000)  # 15 BTC = $1.5M notional
    risk = group_risk(venue.state.markets, _cross(venue, ALICE))
    assert risk.initial_quantums == 200_000 * USDC
    assert risk.maintenance_quantums == 100_000 * USDC
    check_invariants(venue.state)


# --- open orders reserve initial margin -----------------------------------------------------

def test_open_orders_reserve_initial_margin_on_the_worst_side(venue: Venue) -> None:
    venue.fund([ALICE], 1_000 * USDC)
    venue.fund([BOB], 100_000 * USDC)
    _buy_from_bob(venue, ALICE, 100)
    # collateral 1,000 - 1,000 paid - 0.5 fee (5 bps of $1,000): equity $999.5
    group = _cross(venue, ALICE)
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.SELL, 1_010_000, 500))
    # worst case max(|100 + 0|, |100 - 500|) = 400 lots = $4,000 -> 10% = $400
    assert group_risk(venue.state.markets, group).initial_quantums == 400 * USDC
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, 990_000, 300))
    # max(|100 + 300|, |100 - 500|) = 400: bids and asks never both fill, nothing added
    assert group_risk(venue.state.markets, group).initial_quantums == 400 * USDC
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, 990_000, 1))
    assert group_risk(venue.state.markets, group).initial_quantums == 401 * USDC
    position = group.positions[BTC]
    assert (position.open_bid_lots, position.open_ask_lots) == (301, 500)
    check_invariants(venue.state)


def test_resting_orders_beyond_initial_margin_are_rejected(venue: Venue) -> None:
    venue.fund([ALICE], 1_000 * USDC)
    # 1,000 lots x $10 = $10,000 -> 10% = $1,000 = equity: exactly enough, on each side
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, 990_000, 1_000),
                 PlaceOrder(ALICE, 0, BTC, Side.SELL, 1_010_000, 1_000))
    receipt = venue.run(PlaceOrder(ALICE, 0, BTC, Side.SELL, 1_010_000, 1))[0]
    assert receipt.code == ErrorCode.INSUFFICIENT_MARGIN
    # the reservation is at the index price, not the (lower) bid price
    receipt = venue.run(PlaceOrder(ALICE, 0, BTC, Side.BUY, 900_000, 1))[0]
    assert receipt.code == ErrorCode.INSUFFICIENT_MARGIN
    check_invariants(venue.state)


# --- the acceptance rule (StarkEx: meet initial, or reduce risk without lowering the ratio) -----

def _alice_at_nine_times_then_down_5pct(venue: Venue) -> MarginGroup:
    venue.fund([ALICE], 1_000 * USDC)
    venue.fund([BOB], 1_000_000 * USDC)
    _buy_from_bob(venue, ALICE, 900)
    # collateral 1,000 - 9,000 - 4.5 fee = -8,004.5 USDC
    venue.run_ok(venue.oracle(95_000 * USDC))
    group = _cross(venue, ALICE)
    # value 900 x $9.5 = 8,550: equity 545.5, initial 855, maintenance 427.5
    assert group_risk(venue.state.markets, group) == (545_500_000, 855_000_000, 427_500_000)
    return group


def test_a_risk_increasing_order_below_initial_margin_is_rejected(venue: Venue) -> None:
    group = _alice_at_nine_times_then_down_5pct(venue)
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, 950_000, 10))
    before = group.collateral_quantums
    receipt = venue.run(PlaceOrder(ALICE, 0, BTC, Side.BUY, 950_000, 1, time_in_force=IOC))[0]
    assert receipt.code == ErrorCode.INSUFFICIENT_MARGIN
    assert group.collateral_quantums == before and group.positions[BTC].size_lots == 900
    # a resting order that adds risk is refused too
    receipt = venue.run(PlaceOrder(ALICE, 0, BTC, Side.BUY, 900_000, 1))[0]
    assert receipt.code == ErrorCode.INSUFFICIENT_MARGIN


def test_a_risk_reducing_fill_below_initial_is_accepted_if_the_ratio_does_not_fall(
        venue: Venue) -> None:
    group = _alice_at_nine_times_then_down_5pct(venue)
    # a bid 10% under the index (the band's edge): selling 100 lots there realises
    # 100 x ($9.5 - $8.55) = $95 of extra loss + 0.4275 fee -> equity 450.0725 on maintenance
    # 380: ratio 1.184 < 545.5 / 427.5 = 1.276 before -> refused, though risk fell
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.BUY, 855_000, 100))
    receipt = venue.run(PlaceOrder(ALICE, 0, BTC, Side.SELL, 855_000, 100, time_in_force=IOC))[0]
    assert receipt.code == ErrorCode.INSUFFICIENT_MARGIN
    # at the index: +950 quote - 0.475 fee -> collateral -7,054.975; value 800 x 9.5 = 7,600;
    # equity 545.025 < initial 760 but ratio 545.025 / 380 = 1.434 >= 1.276 -> accepted
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.BUY, 950_000, 100))
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.SELL, 950_000, 100, time_in_force=IOC))
    assert group.collateral_quantums == -7_054_975_000
    assert group_risk(venue.state.markets, group) == (545_025_000, 760_000_000, 380_000_000)
    check_invariants(venue.state)


# --- withdrawals ---------------------------------------------------------------------------

def test_withdrawals_leave_the_floor_and_never_take_unrealised_profit(venue: Venue) -> None:
    venue.fund([ALICE], 5_000 * USDC)
    venue.fund([BOB], 1_000_000 * USDC)
    _buy_from_bob(venue, ALICE, 1_000)
    # collateral 5,000 - 10,000 - 5 fee = -5,005; equity 4,995; initial $1,000 but the floor is
    # 20% of $10,000 = $2,000, so 4,995 - 2,000 = 2,995 USDC is free
    free = 2_995 * USDC
    for tx in (Withdraw(ALICE, 0, free + 1), Transfer(ALICE, 0, BOB, 0, free + 1)):
        assert venue.run(tx)[0].code == ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL
    # +10%: equity 5,995, but the $1,000 profit stays; the floor grows to 20% x 11,000 = 2,200:
    # free = -5,005 + min(11,000, entry 10,000) - 2,200 = 2,795 USDC
    venue.run_ok(venue.oracle(110_000 * USDC))
    free = 2_795 * USDC
    assert venue.run(Withdraw(ALICE, 0, free + 1))[0].code == (
        ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
    venue.run_ok(Withdraw(ALICE, 0, free))
    assert _cross(venue, ALICE).collateral_quantums == -7_800 * USDC
    assert venue.state.withdrawals_quantums_total == free
    check_invariants(venue.state)


def test_withdrawal_counts_unrealised_losses(venue: Venue) -> None:
    venue.fund([ALICE], 5_000 * USDC)
    venue.fund([BOB], 1_000_000 * USDC)
    _buy_from_bob(venue, ALICE, 1_000)
    venue.run_ok(venue.oracle(95_000 * USDC))
    # -5,005 + min(9,500, 10,000) - max(950, 1,900) = 2,595 USDC
    free = 2_595 * USDC
    assert venue.run(Withdraw(ALICE, 0, free + 1))[0].code == (
        ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
    venue.run_ok(Withdraw(ALICE, 0, free))


# --- isolated margin -----------------------------------------------------------------------

def test_isolated_margin_moves_obey_the_withdrawal_rule(venue: Venue) -> None:
    venue.fund([ALICE], 5_000 * USDC)
    venue.fund([BOB], 1_000_000 * USDC)
    venue.run_ok(SetMarginMode(ALICE, 0, BTC, True))
    venue.run_ok(MoveIsolatedMargin(ALICE, 0, BTC, 1_000 * USDC))
    sub = venue.state.subaccounts[(ALICE, 0)]
    isolated = sub.isolated[BTC]
    _buy_from_bob(venue, ALICE, 900)  # trades in the isolated group
    # isolated: 1,000 - 9,000 - 4.5 = -8,004.5; equity 995.5 < floor 20% x 9,000 = 1,800
    assert isolated.collateral_quantums == -8_004_500_000
    assert sub.cross.collateral_quantums == 4_000 * USDC and not sub.cross.positions
    assert venue.run(MoveIsolatedMargin(ALICE, 0, BTC, -1))[0].code == (
        ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
    assert venue.run(SetMarginMode(ALICE, 0, BTC, False))[0].code == ErrorCode.MARGIN_MODE_BUSY
    # the cross group is flat with 4,000: it cannot move out more than it holds
    assert venue.run(MoveIsolatedMargin(ALICE, 0, BTC, 4_000 * USDC + 1))[0].code == (
        ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
    venue.run_ok(MoveIsolatedMargin(ALICE, 0, BTC, 1_000 * USDC))
    # isolated equity 1,995.5 - floor 1,800 = 195.5 USDC free
    assert venue.run(MoveIsolatedMargin(ALICE, 0, BTC, -195_500_001))[0].code == (
        ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
    venue.run_ok(MoveIsolatedMargin(ALICE, 0, BTC, -195_500_000))
    assert group_risk(venue.state.markets, isolated).equity_quantums == 1_800 * USDC
    assert sub.cross.collateral_quantums == 3_195_500_000
    check_invariants(venue.state)


def test_isolated_losses_never_touch_cross_collateral(venue: Venue) -> None:
    venue.fund([ALICE], 5_000 * USDC)
    venue.fund([BOB], 1_000_000 * USDC)
    venue.run_ok(SetMarginMode(ALICE, 0, BTC, True),
                 MoveIsolatedMargin(ALICE, 0, BTC, 1_000 * USDC))
    _buy_from_bob(venue, ALICE, 900)
    venue.run_ok(CancelAll(BOB, 0))
    sub = venue.state.subaccounts[(ALICE, 0)]
    # -30%: isolated equity -8,004.5 + 900 x $7 = -1,704.5; empty book, empty fund -> ADL
    receipts = venue.run_ok(venue.oracle(70_000 * USDC))
    events = receipts[0].events
    liquidated = [e for e in events if isinstance(e, Liquidated)]
    assert [(e.owner, e.size_lots_deleveraged) for e in liquidated] == [(ALICE, 900)]
    assert [e.owner for e in events if isinstance(e, PositionDeleveraged)] == [BOB]
    assert sub.cross.collateral_quantums == 4_000 * USDC  # untouched
    isolated = sub.isolated[BTC]
    assert not isolated.positions and isolated.collateral_quantums == 0
    venue.run_ok(SetMarginMode(ALICE, 0, BTC, False))
    assert BTC not in sub.isolated and sub.cross.collateral_quantums == 4_000 * USDC
    check_invariants(venue.state)

"""Liquidation: through the book in steps (never past the bankruptcy price, penalty capped by the
equity left), open orders cancelled first, the insurance-fund backstop, auto-deleveraging ranked
by profit x leverage, no charge to flat accounts, and the bounded queue.

Every path has the same terms: the liquidated group pays 1% of the notional it gives up to the
insurance fund, capped at its positive equity, and keeps the rest; only a deficit moves at the
bankruptcy price (the fund covers it on the backstop path, the counterparties on the ADL path).

Most scenarios start from "Alice at 9x": Alice deposits $1,000 and buys 900 lots (0.09 BTC) at
$100,000 from Bob, paying 5 bps = $4.50, so her collateral is 1,000 - 9,000 - 4.5 = -8,004.5 USDC
and her equity at index P is 900 x P/10,000 - 8,004.5. Maintenance is 5% of the notional, the
penalty 1%, a liquidation step 20% of the position (180 lots), and one lot-tick is 10 quantums.
"""

from __future__ import annotations

import dataclasses

import pytest

from conftest import (
    ALICE,
    BOB,
    BTC,
    CAROL,
    DAVE,
    INDEX_100K_QUANTUMS,
    ORACLE_KEY,
    PRICE_100K_TICKS,
    USDC,
    Venue,
    venue_config,
)
from rollbook.execution import (
    CancelAll,
    Deposit,
    ErrorCode,
    MoveIsolatedMargin,
    OraclePrice,
    OracleUpdate,
    PlaceOrder,
    ProcessLiquidations,
    Receipt,
    SetMarginMode,
    Side,
    TimeInForce,
    Transfer,
    Withdraw,
    perpetual_market,
)
from rollbook.execution.crypto import sign_digest
from rollbook.execution.events import (
    CancelReason,
    Fill,
    Liquidated,
    OrderCancelled,
    PositionDeleveraged,
    TransferDone,
)
from rollbook.execution.invariants import check_invariants
from rollbook.execution.liquidation import bankruptcy_price_ticks
from rollbook.execution.margin import group_risk
from rollbook.execution.oracle import oracle_message_digest
from rollbook.execution.state import INSURANCE_OWNER, MarginGroup

ERIN = b"\xe7" * 20
FRANK = b"\xf2" * 20
MAKER = DAVE
IOC = TimeInForce.IOC


def _cross(venue: Venue, owner: bytes) -> MarginGroup:
    return venue.state.subaccounts[(owner, 0)].cross


def _events(receipts: list[Receipt], kind: type) -> list:  # type: ignore[type-arg]
    return [e for r in receipts for e in r.events if isinstance(e, kind)]


def _alice_at_nine_times(venue: Venue) -> None:
    venue.fund([ALICE], 1_000 * USDC)
    venue.fund([BOB, MAKER], 1_000_000 * USDC)
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, PRICE_100K_TICKS, 900))
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, PRICE_100K_TICKS, 900, time_in_force=IOC))
    assert _cross(venue, ALICE).collateral_quantums == -8_004_500_000
    # -5% first (equity 545.5 > maintenance 427.5: nothing happens), so that bids down to
    # $85,500 lie inside the 10% price band
    assert not venue.run_ok(venue.oracle(95_000 * USDC))[0].events


# --- through the book --------------------------------------------------------------------------

def test_partial_liquidation_in_steps_pays_the_penalty_to_the_insurance_fund(
        venue: Venue) -> None:
    _alice_at_nine_times(venue)
    venue.run_ok(PlaceOrder(MAKER, 0, BTC, Side.BUY, 928_000, 2_000))
    receipts = venue.run_ok(venue.oracle(92_800 * USDC))
    # at $92,800: value 900 x 9.28 = 8,352, equity 347.5 < maintenance 417.6
    # step 1: sell 180 at the index (equity unchanged), penalty 1% x 1,670.4 = 16.704
    #   -> equity 330.796 < maintenance 720 x 9.28 x 5% = 334.08: go on
    # step 2: another 180, penalty 16.704 -> equity 314.092 >= 540 x 9.28 x 5% = 250.56: stop
    fills = _events(receipts, Fill)
    assert [(f.taker_owner, f.taker_order_id, f.price_ticks, f.size_lots) for f in fills] == [
        (ALICE, 0, 928_000, 180), (ALICE, 0, 928_000, 180)]
    assert [f.taker_fee_quantums for f in fills] == [16_704_000, 16_704_000]
    # liquidation fills pay makers no rebate: the fee pool takes nothing on them
    assert [f.maker_fee_quantums for f in fills] == [0, 0]
    assert _events(receipts, Liquidated) == [Liquidated(ALICE, 0, BTC, 360, 0, 0, 33_408_000)]
    state = venue.state
    assert state.insurance.cross.collateral_quantums == 33_408_000
    alice = _cross(venue, ALICE)
    assert alice.positions[BTC].size_lots == 540
    risk = group_risk(state.markets, alice)
    assert risk == (314_092_000, 501_120_000, 250_560_000)
    assert alice.key not in state.liquidation_queue
    check_invariants(state)


def test_liquidation_fills_never_draw_on_the_fee_pool() -> None:
    """Regression: makers used to earn their rebate on liquidation fills, paid from the fee pool
    although the taker's fee (the penalty) went to the insurance fund; with a rebate equal to
    the taker fee (a valid configuration) the pool is empty and the first liquidation fill
    tripped the fee pool's non-negativity assertion inside the STF."""
    base = venue_config()
    market = dataclasses.replace(base.markets[0], maker_fee_ppm=-500, taker_fee_ppm=500)
    venue = Venue(dataclasses.replace(base, markets=(market,)))
    venue.run_ok(venue.oracle(INDEX_100K_QUANTUMS))
    _alice_at_nine_times(venue)
    assert venue.state.fee_pool_quantums == 0  # +4.5 taker fee - 4.5 maker rebate
    venue.run_ok(PlaceOrder(MAKER, 0, BTC, Side.BUY, 928_000, 2_000))
    receipts = venue.run_ok(venue.oracle(92_800 * USDC))
    fills = _events(receipts, Fill)
    assert fills and all(f.maker_fee_quantums == 0 for f in fills)
    assert venue.state.fee_pool_quantums == 0
    check_invariants(venue.state)


def test_liquidation_cancels_the_accounts_open_orders_first(venue: Venue) -> None:
    _alice_at_nine_times(venue)
    # take-profit asks add no risk, so they rest even below initial margin
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.SELL, 1_010_000, 100),
                 PlaceOrder(ALICE, 0, BTC, Side.SELL, 1_000_000, 50))
    venue.run_ok(PlaceOrder(MAKER, 0, BTC, Side.BUY, 928_000, 2_000))
    receipts = venue.run_ok(venue.oracle(92_800 * USDC))
    events = receipts[0].events
    cancels = [e for e in events if isinstance(e, OrderCancelled)]
    assert [(e.size_lots, e.reason) for e in cancels] == [
        (100, CancelReason.LIQUIDATION), (50, CancelReason.LIQUIDATION)]
    first_fill = next(i for i, e in enumerate(events) if isinstance(e, Fill))
    assert all(events.index(c) < first_fill for c in cancels)
    sub = venue.state.subaccounts[(ALICE, 0)]
    assert not sub.orders
    position = sub.cross.positions[BTC]
    assert (position.open_bid_lots, position.open_ask_lots) == (0, 0)
    assert venue.state.markets[BTC].book.best_ask() is None
    check_invariants(venue.state)


def test_bankruptcy_price_of_a_long(venue: Venue) -> None:
    _alice_at_nine_times(venue)
    venue.run_ok(venue.oracle(92_800 * USDC))
    market = venue.state.markets[BTC]
    # selling 900 lots at p leaves 900 x 10 x p - 8,004.5 USDC: p >= 8,004,500,000 / 9,000
    # = 889,388.9 ticks, rounded up to 889,389 ($88,938.90)
    assert bankruptcy_price_ticks(market, 347_500_000, 900) == 889_389
    # a short's bound is the most it may pay: equity 100, value -900 lots x $9.28
    # -> (100 + 8,352) / 0.09 BTC = $93,911.1..., rounded down to 939,111 ticks
    assert bankruptcy_price_ticks(market, 100 * USDC, -900) == 939_111
    # a short one quantum under water may only buy back below the index (928,000 ticks)
    assert bankruptcy_price_ticks(market, -1, -900) == 927_999
    # and one whose equity could not pay even one tick per lot has no bound at all
    assert bankruptcy_price_ticks(market, -8_352_000_000 + 8_999, -900) is None


def test_the_book_is_never_swept_past_the_bankruptcy_price(venue: Venue) -> None:
    _alice_at_nine_times(venue)
    # one tick under Alice's bankruptcy price of 889,389 ticks
    venue.run_ok(PlaceOrder(MAKER, 0, BTC, Side.BUY, 889_388, 2_000))
    receipts = venue.run_ok(venue.oracle(92_800 * USDC))
    assert not _events(receipts, Fill)
    # the fund is empty: taking the 900 lots for value 8,352 - penalty 83.52 would leave it
    # equity 83.52 < maintenance 417.6, so the position goes to auto-deleveraging against Bob
    # at its index value, and Alice (equity 347.5 > 0) pays the 1% penalty of 83.52
    assert _events(receipts, Liquidated) == [Liquidated(ALICE, 0, BTC, 0, 0, 900, 83_520_000)]
    assert _events(receipts, PositionDeleveraged) == [
        PositionDeleveraged(BTC, BOB, 0, 900, -8_352_000_000)]
    assert venue.state.markets[BTC].book.bids[889_388].size_lots == 2_000
    # -8,004.5 + 8,352 - 83.52 = 263.98: her equity less the penalty
    assert _cross(venue, ALICE).collateral_quantums == 263_980_000
    assert venue.state.insurance.cross.collateral_quantums == 83_520_000
    check_invariants(venue.state)


def test_the_penalty_is_capped_by_the_equity_left(venue: Venue) -> None:
    _alice_at_nine_times(venue)
    venue.run_ok(PlaceOrder(MAKER, 0, BTC, Side.BUY, 891_000, 2_000))
    receipts = venue.run_ok(venue.oracle(89_100 * USDC))
    # at $89,100: value 900 x 8.91 = 8,019, equity 14.5. Step 1 sells 180 lots at the index:
    # the 1% penalty would be 16.038 but only 14.5 of equity is left, so it takes 14.5.
    # With equity 0 every further step is at the bankruptcy price (= the index): the whole
    # position closes through the book with no more penalty.
    fills = _events(receipts, Fill)
    assert [f.size_lots for f in fills] == [180] * 5
    assert [f.taker_fee_quantums for f in fills] == [14_500_000, 0, 0, 0, 0]
    assert _events(receipts, Liquidated) == [Liquidated(ALICE, 0, BTC, 900, 0, 0, 14_500_000)]
    alice = _cross(venue, ALICE)
    assert not alice.positions and alice.collateral_quantums == 0
    assert venue.state.insurance.cross.collateral_quantums == 14_500_000
    check_invariants(venue.state)


# --- the insurance fund -----------------------------------------------------------------------

def test_the_insurance_fund_is_topped_up_by_transfer_and_by_nothing_else(venue: Venue) -> None:
    venue.fund([ALICE], 1_000 * USDC)
    state = venue.state
    fund = state.insurance.cross
    deposits = state.deposits_quantums_total
    # a transfer to the fund's own subaccount (zero address, subaccount 0) tops it up
    (receipt,) = venue.run_ok(Transfer(ALICE, 0, INSURANCE_OWNER, 0, 250 * USDC))
    assert receipt.events == (TransferDone(ALICE, 0, INSURANCE_OWNER, 0, 250 * USDC),)
    assert fund.collateral_quantums == 250 * USDC
    assert _cross(venue, ALICE).collateral_quantums == 750 * USDC
    assert state.subaccounts[(INSURANCE_OWNER, 0)] is state.insurance  # no second record
    # money moved, none was created: deposits are unchanged and conservation holds
    assert state.deposits_quantums_total == deposits
    check_invariants(state)
    # the zero address is still no user address: not the fund's subaccount 1, nor a deposit
    assert venue.run(Transfer(ALICE, 0, INSURANCE_OWNER, 1, USDC))[0].code == (
        ErrorCode.INVALID_ADDRESS)
    for number in (0, 1):
        deposit = Deposit(state.next_deposit_id, INSURANCE_OWNER, number, USDC)
        assert venue.run(deposit)[0].code == ErrorCode.INVALID_ADDRESS
    # and nobody acts for the fund, so nothing but the liquidation engine moves money out
    for tx in (Withdraw(INSURANCE_OWNER, 0, 1), Transfer(INSURANCE_OWNER, 0, ALICE, 0, 1),
               PlaceOrder(INSURANCE_OWNER, 0, BTC, Side.BUY, PRICE_100K_TICKS, 1),
               MoveIsolatedMargin(INSURANCE_OWNER, 0, BTC, 1),
               SetMarginMode(INSURANCE_OWNER, 0, BTC, True)):
        assert venue.run(tx)[0].code == ErrorCode.ACCOUNT_NOT_FOUND, tx
    assert fund.collateral_quantums == 250 * USDC
    assert (INSURANCE_OWNER, 1) not in state.subaccounts
    check_invariants(state)


def _fund_insurance_with_14_5_usdc(venue: Venue) -> None:
    """Alice closed entirely through the book at $89,100: the fund holds her 14.5 USDC."""
    _alice_at_nine_times(venue)
    venue.run_ok(PlaceOrder(MAKER, 0, BTC, Side.BUY, 891_000, 2_000))
    venue.run_ok(venue.oracle(89_100 * USDC))
    venue.run_ok(CancelAll(MAKER, 0))
    assert venue.state.insurance.cross.collateral_quantums == 14_500_000


def test_the_fund_backstops_what_the_book_cannot_absorb(venue: Venue) -> None:
    _fund_insurance_with_14_5_usdc(venue)
    venue.fund([CAROL], 40 * USDC)
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, 891_000, 40))
    venue.run_ok(PlaceOrder(CAROL, 0, BTC, Side.BUY, 891_000, 40, time_in_force=IOC))
    # Carol: 40 - 40 x 8.91 - 0.1782 fee = -316.5782 USDC of collateral
    assert _cross(venue, CAROL).collateral_quantums == -316_578_200
    venue.fund([FRANK], 500 * USDC)
    receipts = venue.run_ok(venue.oracle(80_000 * USDC))
    # at $80,000: value 320, equity 3.4218 < maintenance 16, and the book is empty. The fund
    # pays value - penalty = 320 - 3.2 (1% of 320, under her equity) = 316.8 for the position:
    # Carol keeps 3.4218 - 3.2 = 0.2218 and the fund is left with equity 14.5 + 3.2 = 17.7
    # >= its new maintenance 16
    assert _events(receipts, Liquidated) == [Liquidated(CAROL, 0, BTC, 0, 40, 0, 3_200_000)]
    assert not _events(receipts, PositionDeleveraged)
    carol = _cross(venue, CAROL)
    assert not carol.positions and carol.collateral_quantums == 221_800
    fund = venue.state.insurance.cross
    assert fund.collateral_quantums == 14_500_000 - 316_800_000
    assert fund.positions[BTC].size_lots == 40
    assert fund.positions[BTC].entry_notional_quantums == 316_800_000
    assert group_risk(venue.state.markets, fund) == (17_700_000, 32_000_000, 16_000_000)
    assert _cross(venue, FRANK).collateral_quantums == 500 * USDC  # flat: untouched
    check_invariants(venue.state)


@pytest.mark.parametrize(
    ("carol_usdc", "penalty_quantums"),
    [
        # collateral deposit - 356.4 - 0.1782; at $80,000 equity = deposit - 36.5782 USDC
        (39, 2_421_800),  # equity 2.4218 < 1% of 320: the penalty takes all of it
        (40, 3_200_000),  # equity 3.4218: the full 3.2, she keeps 0.2218
        (45, 3_200_000),  # equity 8.4218: the full 3.2, she keeps 5.2218
    ],
    ids=["capped", "just-above-the-cap", "uncapped"])
def test_a_backstopped_group_keeps_its_equity_less_the_capped_penalty(
        venue: Venue, carol_usdc: int, penalty_quantums: int) -> None:
    _fund_insurance_with_14_5_usdc(venue)
    venue.fund([CAROL], carol_usdc * USDC)
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, 891_000, 40))
    venue.run_ok(PlaceOrder(CAROL, 0, BTC, Side.BUY, 891_000, 40, time_in_force=IOC))
    markets = venue.state.markets
    carol = _cross(venue, CAROL)
    fund = venue.state.insurance.cross
    total = carol.collateral_quantums + fund.collateral_quantums
    receipts = venue.run_ok(venue.oracle(80_000 * USDC))
    # Carol's collateral is deposit - 356.4 - 0.1782; at $80,000 her 40 lots are worth 320
    equity_before = carol_usdc * USDC - 356_578_200 + 320_000_000
    assert 0 < equity_before < 16 * USDC  # positive, below maintenance: liquidated
    assert _events(receipts, Liquidated) == [
        Liquidated(CAROL, 0, BTC, 0, 40, 0, penalty_quantums)]
    # the fund pays the index value less the penalty: 320 - penalty
    assert fund.positions[BTC].entry_notional_quantums == 320_000_000 - penalty_quantums
    assert not carol.positions
    assert carol.collateral_quantums == equity_before - penalty_quantums
    # relative to the index value of what it took, the fund gained exactly the penalty
    assert group_risk(markets, fund).equity_quantums == 14_500_000 + penalty_quantums
    assert carol.collateral_quantums + fund.collateral_quantums == total  # moved, not made
    check_invariants(venue.state)


def test_a_deficit_on_the_backstop_path_is_covered_by_the_fund_without_penalty(
        venue: Venue) -> None:
    venue.fund([FRANK], 500 * USDC)
    venue.fund([BOB], 1_000 * USDC)
    venue.fund([CAROL], 41 * USDC)
    venue.run_ok(Transfer(FRANK, 0, INSURANCE_OWNER, 0, 100 * USDC))  # top the fund up
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, PRICE_100K_TICKS, 40))
    venue.run_ok(PlaceOrder(CAROL, 0, BTC, Side.BUY, PRICE_100K_TICKS, 40, time_in_force=IOC))
    # Carol: 41 - 400 - 0.2 fee = -359.2 USDC of collateral
    assert _cross(venue, CAROL).collateral_quantums == -359_200_000
    bob = _cross(venue, BOB).collateral_quantums
    receipts = venue.run_ok(venue.oracle(89_000 * USDC))
    # at $89,000: value 356, equity -3.2: bankrupt, no bids. No penalty (no equity to pay it);
    # the fund pays value - equity = 356 + 3.2 = 359.2 (the bankruptcy quote), leaving Carol
    # with exactly 0, and is left with 100 - 3.2 = 96.8 >= maintenance 5% x 356 = 17.8
    assert _events(receipts, Liquidated) == [Liquidated(CAROL, 0, BTC, 0, 40, 0, 0)]
    assert not _events(receipts, PositionDeleveraged)
    carol = _cross(venue, CAROL)
    assert not carol.positions and carol.collateral_quantums == 0
    fund = venue.state.insurance.cross
    assert fund.collateral_quantums == 100 * USDC - 359_200_000
    assert (fund.positions[BTC].size_lots, fund.positions[BTC].entry_notional_quantums) == (
        40, 359_200_000)
    assert group_risk(venue.state.markets, fund) == (96_800_000, 35_600_000, 17_800_000)
    assert _cross(venue, BOB).collateral_quantums == bob  # the counterparty pays nothing
    check_invariants(venue.state)


def test_a_fund_that_cannot_carry_the_position_hands_it_to_adl(venue: Venue) -> None:
    _fund_insurance_with_14_5_usdc(venue)
    venue.fund([CAROL], 100 * USDC)
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, 891_000, 100))
    venue.run_ok(PlaceOrder(CAROL, 0, BTC, Side.BUY, 891_000, 100, time_in_force=IOC))
    receipts = venue.run_ok(venue.oracle(80_000 * USDC))
    # Carol: 100 - 891 - 0.4455 = -791.4455; at $80,000 value 800, equity 8.5545 <
    # maintenance 40. The fund would pay 800 - 8 (1% penalty) = 792 and be left with
    # 14.5 + 8 = 22.5 < 40: refused, so ADL against Bob at the index value 800, and Carol pays
    # the same 8 penalty to the fund: she keeps 8.5545 - 8 = 0.5545
    assert _events(receipts, Liquidated) == [Liquidated(CAROL, 0, BTC, 0, 0, 100, 8_000_000)]
    assert _events(receipts, PositionDeleveraged) == [
        PositionDeleveraged(BTC, BOB, 0, 100, -800_000_000)]
    assert _cross(venue, CAROL).collateral_quantums == 554_500
    assert venue.state.insurance.cross.collateral_quantums == 14_500_000 + 8_000_000
    assert BTC not in venue.state.insurance.cross.positions
    check_invariants(venue.state)


def test_a_backstop_may_flip_the_funds_position(venue: Venue) -> None:
    """Regression: taking a long larger than the fund's short used to trip an exactness assert.

    The fund takes positions at value - penalty, or at the bankruptcy quote when the penalty is
    capped by the equity (or there is a deficit); that quote need not be a whole number of
    quantums per lot, so the entry notional of the flipped remainder is quote x new / size,
    rounded down.
    """
    venue.fund([FRANK], 5_000 * USDC)
    venue.run_ok(Transfer(FRANK, 0, INSURANCE_OWNER, 0, 500 * USDC))  # the fund holds 500
    fund = venue.state.insurance.cross
    venue.run_ok(venue.oracle(92_000 * USDC))
    # the fund backstops a short of 190 lots ...
    venue.fund([BOB], 1_000 * USDC)
    venue.fund([CAROL], 200 * USDC)
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.BUY, 920_000, 190))
    venue.run_ok(PlaceOrder(CAROL, 0, BTC, Side.SELL, 920_000, 190, time_in_force=IOC))
    receipts = venue.run_ok(venue.oracle(99_000 * USDC))
    # Carol: 200 + 1,748 - 0.874 = 1,947.126; at $99,000 value -1,881, equity 66.126 <
    # maintenance 94.05. The fund sells at value - penalty: -1,881 - 18.81 = -1,899.81
    assert _events(receipts, Liquidated) == [Liquidated(CAROL, 0, BTC, 0, 190, 0, 18_810_000)]
    assert (fund.positions[BTC].size_lots, fund.positions[BTC].entry_notional_quantums) == (
        -190, -1_899_810_000)
    # ... then a long of 300 lots: -190 + 300 flips it to +110
    venue.fund([ERIN], 340 * USDC)
    venue.run_ok(PlaceOrder(FRANK, 0, BTC, Side.SELL, 990_000, 300))
    venue.run_ok(PlaceOrder(ERIN, 0, BTC, Side.BUY, 990_000, 300, time_in_force=IOC))
    # Erin: 340 - 2,970 - 1.485 = -2,631.485
    assert _cross(venue, ERIN).collateral_quantums == -2_631_485_000
    collateral_before = fund.collateral_quantums
    receipts = venue.run_ok(venue.oracle(88_000 * USDC))
    # at $88,000: value 2,640, equity 8.515 < the 1% penalty of 26.4: the penalty takes all
    # 8.515 and the fund pays 2,640 - 8.515 = 2,631.485, Erin's bankruptcy quote
    assert _events(receipts, Liquidated) == [Liquidated(ERIN, 0, BTC, 0, 300, 0, 8_515_000)]
    assert _cross(venue, ERIN).collateral_quantums == 0
    quote = collateral_before - fund.collateral_quantums  # what the fund paid for 300 lots
    assert quote == 2_631_485_000
    assert quote % 300 != 0  # not a whole number of quantums per lot
    position = fund.positions[BTC]
    assert position.size_lots == 110
    # 2,631,485,000 x 110 / 300 = 964,877,833.33..., rounded down
    assert position.entry_notional_quantums == 964_877_833
    check_invariants(venue.state)


def test_a_backstop_flipping_the_fund_short_rounds_its_entry_notional_down(
        venue: Venue) -> None:
    """The mirror image: a long fund flipped short. The entry notional of a short is negative,
    and rounding toward negative infinity (not toward zero) never overstates what it was sold
    for, so the withdrawal rule never counts a cent of paper profit too many."""
    venue.fund([FRANK], 10_000 * USDC)
    venue.fund([BOB], 1_000 * USDC)
    venue.fund([CAROL], 200 * USDC)
    venue.fund([ERIN], 280 * USDC)
    venue.run_ok(Transfer(FRANK, 0, INSURANCE_OWNER, 0, 500 * USDC))
    fund = venue.state.insurance.cross
    # the fund backstops a long of 190 lots ...
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, PRICE_100K_TICKS, 190))
    venue.run_ok(PlaceOrder(CAROL, 0, BTC, Side.BUY, PRICE_100K_TICKS, 190, time_in_force=IOC))
    receipts = venue.run_ok(venue.oracle(92_000 * USDC))
    # Carol: 200 - 1,900 - 0.95 = -1,700.95; at $92,000 value 1,748, equity 47.05 < 87.4:
    # the fund pays 1,748 - 17.48 penalty = 1,730.52
    assert _events(receipts, Liquidated) == [Liquidated(CAROL, 0, BTC, 0, 190, 0, 17_480_000)]
    assert (fund.positions[BTC].size_lots, fund.positions[BTC].entry_notional_quantums) == (
        190, 1_730_520_000)
    # ... then a short of 300 lots: 190 - 300 flips it to -110
    venue.run_ok(PlaceOrder(FRANK, 0, BTC, Side.BUY, 920_000, 300))
    venue.run_ok(PlaceOrder(ERIN, 0, BTC, Side.SELL, 920_000, 300, time_in_force=IOC))
    # Erin: 280 + 2,760 - 1.38 = 3,038.62
    assert _cross(venue, ERIN).collateral_quantums == 3_038_620_000
    collateral_before = fund.collateral_quantums
    receipts = venue.run_ok(venue.oracle(101_000 * USDC))
    # at $101,000: value -3,030, equity 8.62 < the 1% penalty of 30.3: the penalty takes all of
    # it and the fund receives 3,030 + 8.62 = 3,038.62 for the 300 lots
    assert _events(receipts, Liquidated) == [Liquidated(ERIN, 0, BTC, 0, 300, 0, 8_620_000)]
    assert fund.collateral_quantums - collateral_before == 3_038_620_000
    position = fund.positions[BTC]
    assert position.size_lots == -110
    # -3,038,620,000 x 110 / 300 = -1,114,160,666.67: floor -1,114,160,667 (not -...666)
    assert position.entry_notional_quantums == -1_114_160_667
    # the fund's equity: 500 + 17.48 + 8.62 (both penalties) + the move on its 190 lots from
    # $92,000 to $101,000 (+171) = 697.1
    assert group_risk(venue.state.markets, fund).equity_quantums == 697_100_000
    check_invariants(venue.state)


# --- auto-deleveraging -------------------------------------------------------------------------

def test_adl_ranks_by_profit_times_leverage_and_spreads_the_deficit(venue: Venue) -> None:
    venue.fund([ALICE], 1_000 * USDC)
    venue.fund([BOB], 600 * USDC)  # short 450 lots: the most leveraged
    venue.fund([ERIN], 1_500 * USDC)  # short 450 lots
    venue.fund([CAROL], 3_000 * USDC)  # short 300 lots: the least leveraged
    venue.fund([MAKER], 100_000 * USDC)  # long 300 lots against Carol
    venue.fund([FRANK], 700 * USDC)  # never trades
    venue.run_ok(PlaceOrder(CAROL, 0, BTC, Side.SELL, PRICE_100K_TICKS, 300))
    venue.run_ok(PlaceOrder(MAKER, 0, BTC, Side.BUY, PRICE_100K_TICKS, 300, time_in_force=IOC))
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, PRICE_100K_TICKS, 450),
                 PlaceOrder(ERIN, 0, BTC, Side.SELL, PRICE_100K_TICKS, 450))
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, PRICE_100K_TICKS, 900, time_in_force=IOC))
    collateral = {o: _cross(venue, o).collateral_quantums for o in (BOB, ERIN, CAROL, FRANK)}
    receipts = venue.run_ok(venue.oracle(80_000 * USDC))
    # Alice at $80,000: 900 x 8 - 8,004.5 = -804.5: a deficit, no bids, an empty fund -> ADL.
    # Ranks (profit x |value| / (|entry| x equity)), shorts from $100,000 to $80,000:
    #   Bob   900 x 3,600 / (4,500 x 1,500.45) = 0.480   (equity 600 + 4,500 + 0.45 - 3,600)
    #   Erin  900 x 3,600 / (4,500 x 2,400.45) = 0.300
    #   Carol 600 x 2,400 / (3,000 x 3,600.30) = 0.133
    # Alice's 900 lots go to Bob (450) and Erin (450) for value - equity = 7,200 + 804.5 =
    # 8,004.5 USDC, i.e. 4,002.25 each: each pays $402.25 over the $3,600 index value
    assert _events(receipts, PositionDeleveraged) == [
        PositionDeleveraged(BTC, BOB, 0, 450, -4_002_250_000),
        PositionDeleveraged(BTC, ERIN, 0, 450, -4_002_250_000),
    ]
    assert _events(receipts, Liquidated) == [Liquidated(ALICE, 0, BTC, 0, 0, 900, 0)]
    assert _cross(venue, BOB).collateral_quantums == collateral[BOB] - 4_002_250_000
    assert _cross(venue, ERIN).collateral_quantums == collateral[ERIN] - 4_002_250_000
    assert _cross(venue, CAROL).collateral_quantums == collateral[CAROL]  # not reached
    assert _cross(venue, CAROL).positions[BTC].size_lots == -300
    assert _cross(venue, FRANK).collateral_quantums == collateral[FRANK]  # flat: never charged
    alice = _cross(venue, ALICE)
    assert not alice.positions and alice.collateral_quantums == 0
    assert venue.state.insurance.cross.collateral_quantums == 0
    check_invariants(venue.state)


def test_adl_quotes_split_with_the_remainder_on_the_last_counterparty(venue: Venue) -> None:
    venue.fund([ALICE], 1_000 * USDC)
    venue.fund([BOB, CAROL, ERIN], 1_000 * USDC)
    for owner in (BOB, CAROL, ERIN):
        venue.run_ok(PlaceOrder(owner, 0, BTC, Side.SELL, PRICE_100K_TICKS, 300))
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, PRICE_100K_TICKS, 900, time_in_force=IOC))
    total = sum(_cross(venue, o).collateral_quantums for o in (ALICE, BOB, CAROL, ERIN))
    receipts = venue.run_ok(venue.oracle(80_000 * USDC))
    # equal shorts: equal ranks, ties broken by key (Bob 0xb0.. < Carol 0xc4.. < Erin 0xe7..).
    # 8,004.5 USDC x 300 / 900 = 2,668.1666..: truncated for the first two, the last gets
    # 8,004,500,000 - 2 x 2,668,166,666 = 2,668,166,668
    assert [(e.owner, e.size_lots, e.quote_quantums)
            for e in _events(receipts, PositionDeleveraged)] == [
        (BOB, 300, -2_668_166_666), (CAROL, 300, -2_668_166_666), (ERIN, 300, -2_668_166_668)]
    # conservation among the four: Alice's deficit moved to the shorts, exactly
    assert sum(_cross(venue, o).collateral_quantums for o in (ALICE, BOB, CAROL, ERIN)) == total
    check_invariants(venue.state)


@pytest.mark.parametrize(
    ("index_usdc", "penalty_quantums"),
    [
        # equity 900 x 9.28 - 8,004.5 = 347.5 > 1% x 8,352 = 83.52: the full penalty
        (92_800, 83_520_000),
        # equity 900 x 8.91 - 8,004.5 = 14.5 < 1% x 8,019 = 80.19: the penalty takes it all
        (89_100, 14_500_000),
    ],
    ids=["uncapped", "capped"])
def test_adl_with_positive_equity_trades_at_the_index_value_and_charges_the_penalty(
        venue: Venue, index_usdc: int, penalty_quantums: int) -> None:
    _alice_at_nine_times(venue)
    markets = venue.state.markets
    alice = _cross(venue, ALICE)
    bob_before = _cross(venue, BOB).collateral_quantums
    index = index_usdc * USDC
    receipts = venue.run_ok(venue.oracle(index))
    value = 900 * index // 10_000  # 0.09 BTC
    equity = value - 8_004_500_000
    # no bids and an empty fund (it could not carry 900 lots), so ADL against Bob. No deficit:
    # Bob buys back 900 lots for their index value, and Alice pays the penalty to the fund
    assert _events(receipts, PositionDeleveraged) == [
        PositionDeleveraged(BTC, BOB, 0, 900, -value)]
    assert _events(receipts, Liquidated) == [Liquidated(ALICE, 0, BTC, 0, 0, 900,
                                                        penalty_quantums)]
    assert _cross(venue, BOB).collateral_quantums == bob_before - value
    # Bob's equity is unchanged: he paid exactly what the lots are worth at the index
    assert not alice.positions
    assert alice.collateral_quantums == equity - penalty_quantums  # 263.98 or 0
    assert venue.state.insurance.cross.collateral_quantums == penalty_quantums
    assert group_risk(markets, alice).equity_quantums >= 0
    check_invariants(venue.state)


FIRST, LATE = b"\x10" * 20, b"\x11" * 20


def _late_long_left_with_33_lots() -> tuple[Venue, list[Receipt]]:
    """Two bankrupt longs, one liquidation per transaction; Carol shorts before the second is
    deleveraged and can carry only part of its deficit (the regression below)."""
    base = venue_config()
    venue = Venue(dataclasses.replace(base, liquidations_per_tx_max=1))
    venue.run_ok(venue.oracle(INDEX_100K_QUANTUMS))
    first, late = FIRST, LATE
    venue.fund([first, late], 1_000 * USDC)
    venue.fund([MAKER], 1_000_000 * USDC)
    venue.fund([CAROL], 420 * USDC)
    venue.run_ok(PlaceOrder(MAKER, 0, BTC, Side.SELL, PRICE_100K_TICKS, 1_800))
    venue.run_ok(PlaceOrder(first, 0, BTC, Side.BUY, PRICE_100K_TICKS, 900, time_in_force=IOC),
                 PlaceOrder(late, 0, BTC, Side.BUY, PRICE_100K_TICKS, 900, time_in_force=IOC))
    receipts = venue.run_ok(venue.oracle(80_000 * USDC))
    # both longs are bankrupt (equity -804.5 each); one liquidation per transaction
    # (no equity: the first pays no penalty, its 900 lots go to the maker at 8,004.5)
    assert _events(receipts, Liquidated) == [Liquidated(first, 0, BTC, 0, 0, 900, 0)]
    assert list(venue.state.liquidation_queue) == [(late, 0, 0)]
    # meanwhile Carol shorts 500 lots at the $80,000 index into the maker's bid:
    # collateral 420 + 4,000 - 2 fee = 4,418; equity 418; the maker is left short 400
    venue.run_ok(PlaceOrder(MAKER, 0, BTC, Side.BUY, 800_000, 500))
    venue.run_ok(PlaceOrder(CAROL, 0, BTC, Side.SELL, 800_000, 500, time_in_force=IOC))
    return venue, venue.run_ok(ProcessLiquidations())


def test_adl_never_pushes_a_counterparty_below_zero_equity() -> None:
    """Regression (found by the stateful test): a group that waited in the queue while bankrupt
    was deleveraged at its bankruptcy quote against a short opened after it went bankrupt, at
    the then index; that short's pro-rata share of the deficit exceeded its equity and left it
    flat with debt, and the STF tripped its own assertion on the next heartbeat."""
    venue, receipts = _late_long_left_with_33_lots()
    late = LATE
    # the late long's 900 lots cost 7,200 + 804.5 = 8,004.5 USDC at its bankruptcy quote. The
    # maker (in profit, ranked first) takes 400 for trunc(8,004.5 x 400 / 900) = 3,557.555555.
    # Carol's 500 would cost her 446.94 over their $4,000 value, more than her 418 of equity;
    # she takes the most that leaves her solvent: at t lots her equity is
    # 418 + 8t - trunc(8,004.5 t / 900): t = 467 leaves 0.553889, t = 468 would leave -0.34
    assert [(e.owner, e.size_lots, e.quote_quantums)
            for e in _events(receipts, PositionDeleveraged)] == [
        (MAKER, 400, -3_557_555_555), (CAROL, 467, -4_153_446_111)]
    assert _events(receipts, Liquidated) == [Liquidated(late, 0, BTC, 0, 0, 867, 0)]
    carol = _cross(venue, CAROL)
    assert group_risk(venue.state.markets, carol).equity_quantums == 553_889
    assert carol.positions[BTC].size_lots == -33
    # the 33 lots nobody can carry stay with the bankrupt group, queued again (backpressure):
    # collateral -8,004.5 + 3,557.555555 + 4,153.446111 = -293.498334, value 264
    late_group = _cross(venue, late)
    assert late_group.positions[BTC].size_lots == 33
    assert group_risk(venue.state.markets, late_group).equity_quantums == -29_498_334
    assert late_group.key in venue.state.liquidation_queue
    check_invariants(venue.state)


def test_a_liquidation_that_moves_nothing_emits_no_event() -> None:
    venue, _ = _late_long_left_with_33_lots()
    state = venue.state
    # Carol (short 33, equity 0.553889 < maintenance 13.2) was queued by the ADL, then the late
    # long (33 lots, equity -29.498334) behind her
    assert list(state.liquidation_queue) == [(CAROL, 0, 0), (LATE, 0, 0)]
    snapshot = {o: (_cross(venue, o).collateral_quantums, _cross(venue, o).positions[BTC].size_lots)
                for o in (CAROL, LATE)}
    fund = state.insurance.cross.collateral_quantums
    # Carol: no book; the empty fund cannot carry her short (it would have equity 0.553889, her
    # capped penalty, < 13.2); ADL needs longs with positive equity and the only long left is
    # the bankrupt late group, which is no candidate. Nothing moves and she pays no penalty
    # (nothing was liquidated), so no Liquidated event, and she goes back to the queue
    assert venue.run_ok(ProcessLiquidations())[0].events == ()
    assert list(state.liquidation_queue) == [(LATE, 0, 0), (CAROL, 0, 0)]
    # the late long: Carol is a candidate but cannot carry one lot's share of its deficit
    # (8.894 per lot over a value of 8: 0.894 > 0.553889), so again nothing and no event
    assert venue.run_ok(ProcessLiquidations())[0].events == ()
    assert list(state.liquidation_queue) == [(CAROL, 0, 0), (LATE, 0, 0)]
    assert snapshot == {
        o: (_cross(venue, o).collateral_quantums, _cross(venue, o).positions[BTC].size_lots)
        for o in (CAROL, LATE)}
    assert state.insurance.cross.collateral_quantums == fund
    check_invariants(state)


# --- the queue ---------------------------------------------------------------------------------

def test_the_queue_is_bounded_per_transaction_and_drained_by_heartbeats() -> None:
    base = venue_config()
    venue = Venue(dataclasses.replace(base, liquidations_per_tx_max=2))
    venue.run_ok(venue.oracle(INDEX_100K_QUANTUMS))
    longs = [bytes([0x10 + i]) * 20 for i in range(5)]
    venue.fund(longs, 100 * USDC)
    venue.fund([BOB], 100_000 * USDC)
    venue.fund([FRANK], 700 * USDC)
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, PRICE_100K_TICKS, 450))
    venue.run_ok(*(PlaceOrder(owner, 0, BTC, Side.BUY, PRICE_100K_TICKS, 90, time_in_force=IOC)
                   for owner in longs))
    receipts = venue.run_ok(venue.oracle(80_000 * USDC))  # every long is under water
    state = venue.state
    # queued in key order, two liquidated per transaction
    assert [e.owner for e in _events(receipts, Liquidated)] == longs[:2]
    assert list(state.liquidation_queue) == [(owner, 0, 0) for owner in longs[2:]]
    check_invariants(state)  # queued groups may sit below maintenance
    # a queued account can neither withdraw nor add risk
    assert venue.run(Withdraw(longs[4], 0, 1))[0].code == ErrorCode.ACCOUNT_IN_LIQUIDATION
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, 800_000, 10))
    receipt = venue.run(PlaceOrder(longs[4], 0, BTC, Side.BUY, 800_000, 1, time_in_force=IOC))[0]
    assert receipt.code == ErrorCode.INSUFFICIENT_MARGIN
    venue.run_ok(CancelAll(BOB, 0))
    receipts = venue.run_ok(ProcessLiquidations())
    assert [e.owner for e in _events(receipts, Liquidated)] == longs[2:4]
    receipts = venue.run_ok(ProcessLiquidations())
    assert [e.owner for e in _events(receipts, Liquidated)] == longs[4:]
    assert not state.liquidation_queue
    assert venue.run_ok(ProcessLiquidations())[0].events == ()
    assert all(not _cross(venue, owner).positions for owner in longs)
    assert _cross(venue, FRANK).collateral_quantums == 700 * USDC
    assert state.markets[BTC].open_interest_lots == 0
    check_invariants(state)


def test_a_partial_adl_never_leaves_the_group_in_deficit() -> None:
    """Regression: the ADL penalty was capped at the equity *before* the trades; their rounding
    could then leave the group 1 quantum short. The cap now uses the settled equity."""
    eth_market = 2
    base = venue_config()
    eth = perpetual_market(eth_market, "ETH-PERP", eth_market, tick_size_quantums=10_000,
                           lot_size_nanounits=10_000_000)
    venue = Venue(dataclasses.replace(base, markets=(base.markets[0], eth)))

    def oracle(btc_quantums: int, eth_quantums: int) -> OracleUpdate:
        timestamp = venue.clock_ms + 1_000
        prices = (OraclePrice(BTC, btc_quantums), OraclePrice(eth_market, eth_quantums))
        digest = oracle_message_digest(venue.state.config.chain_id, timestamp, prices)
        return OracleUpdate(timestamp, prices, (sign_digest(ORACLE_KEY, digest),))

    venue.run_ok(oracle(100_000 * USDC, 4_000 * USDC))
    venue.fund([ALICE], 1_000 * USDC)
    venue.fund([BOB, DAVE], 100_000 * USDC)
    venue.fund([CAROL], 900 * USDC)
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, PRICE_100K_TICKS, 450),
                 PlaceOrder(CAROL, 0, BTC, Side.SELL, PRICE_100K_TICKS, 450))
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, PRICE_100K_TICKS, 900,
                            time_in_force=TimeInForce.IOC))
    venue.run_ok(PlaceOrder(DAVE, 0, eth_market, Side.SELL, 400_000, 100))
    venue.run_ok(PlaceOrder(CAROL, 0, eth_market, Side.BUY, 400_000, 100,
                            time_in_force=TimeInForce.IOC))
    # BTC falls to a price that is not a whole quantum per lot; ETH halves, so Carol (short
    # BTC but long ETH) has no equity and only Bob can take Alice's BTC: a partial ADL
    receipts = venue.run_ok(oracle(89_100_001_234, 2_000 * USDC))
    events = [e for r in receipts for e in r.events]
    liquidated = [e for e in events if isinstance(e, Liquidated) and e.owner == ALICE]
    assert liquidated and liquidated[0].size_lots_deleveraged == 450
    alice = venue.state.subaccounts[(ALICE, 0)].cross
    assert alice.positions[BTC].size_lots == 450  # nobody could carry the rest yet
    assert group_risk(venue.state.markets, alice).equity_quantums >= 0
    assert alice.key in venue.state.liquidation_queue
    check_invariants(venue.state)


def test_the_insurance_fund_charges_itself_no_penalty() -> None:
    """Regression: the fund's own liquidation reported a penalty it only paid to itself."""
    venue = Venue()
    venue.run_ok(venue.oracle(INDEX_100K_QUANTUMS))
    _fund_insurance_with_14_5_usdc(venue)
    venue.fund([CAROL], 40 * USDC)
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, 891_000, 40))
    venue.run_ok(PlaceOrder(CAROL, 0, BTC, Side.BUY, 891_000, 40,
                            time_in_force=TimeInForce.IOC))
    venue.run_ok(venue.oracle(80_000 * USDC))  # Carol is backstopped: the fund is long 40
    fund = venue.state.insurance.cross
    assert fund.positions[BTC].size_lots == 40
    receipts = venue.run_ok(venue.oracle(79_500 * USDC))  # now the fund itself is liquidated
    fund_events = [e for r in receipts for e in r.events
                   if isinstance(e, Liquidated) and e.owner == INSURANCE_OWNER]
    assert fund_events and fund_events[0].size_lots_deleveraged == 40
    assert fund_events[0].penalty_quantums == 0
    check_invariants(venue.state)

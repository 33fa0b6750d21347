"""Every order type and behaviour of the book, each with exact outcomes.

Numbers used throughout (the default BTC perpetual): one lot is 0.0001 BTC, one tick $0.1, so a
lot at one tick is 10 quantums and one lot at $100,000 (``P`` ticks) is 10 USDC of notional.
The taker pays 500 ppm rounded up, the maker earns a 100 ppm rebate rounded down.
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
from rollbook.commitment import canonical_root
from rollbook.execution import (
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    ErrorCode,
    ModifyOrder,
    OraclePrice,
    OracleUpdate,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
    VenueConfig,
    apply_transaction,
    perpetual_market,
)
from rollbook.execution.crypto import sign_digest
from rollbook.execution.errors import ERROR_MESSAGES
from rollbook.execution.events import (
    CancelReason,
    Fill,
    OrderCancelled,
    OrderPlaced,
    OrderReduced,
)
from rollbook.execution.invariants import check_invariants
from rollbook.execution.oracle import oracle_message_digest
from rollbook.execution.state import State

P = PRICE_100K_TICKS
QUANTUMS_PER_LOT_TICK = 10
FUNDS = 100_000 * USDC
TAKER_FEE_PPM = 500
MAKER_REBATE_PPM = 100
ETH = 2
ETH_PRICE_TICKS = 400_000  # $4,000 at $0.01 ticks
ETH_INDEX_QUANTUMS = 4_000 * USDC


# --- helpers ---------------------------------------------------------------------------------


def taker_fee(size_lots: int, price_ticks: int) -> int:
    notional = size_lots * price_ticks * QUANTUMS_PER_LOT_TICK
    return -(-notional * TAKER_FEE_PPM // 10**6)  # rounded up


def maker_fee(size_lots: int, price_ticks: int) -> int:
    notional = size_lots * price_ticks * QUANTUMS_PER_LOT_TICK
    return -(notional * MAKER_REBATE_PPM // 10**6)  # a rebate, rounded down in size


def fill(maker_id: int, taker_id: int, maker: bytes, taker: bytes, taker_is_buy: bool,
         price_ticks: int, size_lots: int, maker_sub: int = 0, taker_sub: int = 0,
         market_id: int = BTC) -> Fill:
    return Fill(market_id, maker_id, taker_id, maker, maker_sub, taker, taker_sub, taker_is_buy,
                price_ticks, size_lots, maker_fee(size_lots, price_ticks),
                taker_fee(size_lots, price_ticks))


def placed(order_id: int, owner: bytes, is_buy: bool, price_ticks: int, size_lots: int,
           client_order_id: int = 0, sub: int = 0, market_id: int = BTC) -> OrderPlaced:
    return OrderPlaced(order_id, market_id, owner, sub, is_buy, price_ticks, size_lots,
                       client_order_id)


def cancelled(order_id: int, size_lots: int, reason: int, market_id: int = BTC) -> OrderCancelled:
    return OrderCancelled(order_id, market_id, size_lots, reason)


def buy(owner: bytes, price_ticks: int, size_lots: int, sub: int = 0,
        **kwargs: object) -> PlaceOrder:
    return PlaceOrder(owner, sub, BTC, Side.BUY, price_ticks, size_lots, **kwargs)  # type: ignore[arg-type]


def sell(owner: bytes, price_ticks: int, size_lots: int, sub: int = 0,
         **kwargs: object) -> PlaceOrder:
    return PlaceOrder(owner, sub, BTC, Side.SELL, price_ticks, size_lots, **kwargs)  # type: ignore[arg-type]


IOC = {"time_in_force": TimeInForce.IOC}


def book(state: State, is_buy: bool, market_id: int = BTC) -> list[tuple[int, int, int]]:
    """(order id, price, size) of one side, best first, in time priority."""
    return [(o.order_id, o.price_ticks, o.size_lots)
            for o in state.markets[market_id].book.iter_orders(is_buy)]


def size(state: State, owner: bytes, sub: int = 0, market_id: int = BTC) -> int:
    position = state.subaccounts[(owner, sub)].group_for(market_id).positions.get(market_id)
    return 0 if position is None else position.size_lots


def open_lots(state: State, owner: bytes, sub: int = 0) -> tuple[int, int]:
    position = state.subaccounts[(owner, sub)].cross.positions.get(BTC)
    return (0, 0) if position is None else (position.open_bid_lots, position.open_ask_lots)


def collateral(state: State, owner: bytes, sub: int = 0) -> int:
    return state.subaccounts[(owner, sub)].cross.collateral_quantums


def one(venue: Venue, tx: PlaceOrder | ModifyOrder | CancelOrder | CancelOrderByClientId
        | CancelAll) -> tuple[object, ...]:
    """Run ``tx`` alone in a batch, require success, check invariants, return its events."""
    (receipt,) = venue.run(tx)
    assert receipt.ok, receipt.message
    check_invariants(venue.state)
    return receipt.events


def rejected(venue: Venue, tx: object, code: ErrorCode) -> None:
    """``tx`` is rejected with ``code`` and changes no state at all."""
    before = canonical_root(venue.state)
    receipt = apply_transaction(venue.state, tx)  # type: ignore[arg-type]
    assert receipt.code == code, receipt.message
    assert receipt.message.startswith(ERROR_MESSAGES[code])
    assert receipt.events == ()
    assert canonical_root(venue.state) == before


def funded_venue(config: VenueConfig | None = None) -> Venue:
    v = Venue(config)
    v.run_ok(v.oracle(INDEX_100K_QUANTUMS))
    v.fund([ALICE, BOB, CAROL, DAVE], FUNDS)
    return v


@pytest.fixture
def funded() -> Venue:
    """The BTC venue at $100,000 with ALICE, BOB, CAROL and DAVE holding 100,000 USDC each."""
    return funded_venue()


def market_config(**changes: object) -> VenueConfig:
    config = venue_config()
    market = dataclasses.replace(config.markets[0], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(config, markets=(market,))


# --- limit GTC, priority, maker's price --------------------------------------------------------


def test_gtc_rests_when_nothing_crosses(funded: Venue) -> None:
    assert one(funded, buy(ALICE, P - 10, 10)) == (placed(1, ALICE, True, P - 10, 10),)
    assert book(funded.state, True) == [(1, P - 10, 10)]
    assert book(funded.state, False) == []
    assert open_lots(funded.state, ALICE) == (10, 0)
    assert size(funded.state, ALICE) == 0
    assert collateral(funded.state, ALICE) == FUNDS  # resting costs nothing but margin


def test_gtc_partial_fill_rests_the_remainder(funded: Venue) -> None:
    one(funded, sell(BOB, P, 4))
    events = one(funded, buy(ALICE, P, 10))
    assert events == (fill(1, 2, BOB, ALICE, True, P, 4), placed(2, ALICE, True, P, 6))
    assert book(funded.state, True) == [(2, P, 6)]
    assert book(funded.state, False) == []
    assert size(funded.state, ALICE) == 4 and size(funded.state, BOB) == -4
    assert open_lots(funded.state, ALICE) == (6, 0)
    assert open_lots(funded.state, BOB) == (0, 0)


def test_earlier_order_at_the_same_price_fills_first(funded: Venue) -> None:
    one(funded, sell(BOB, P, 5))
    one(funded, sell(CAROL, P, 5))
    events = one(funded, buy(ALICE, P, 7, **IOC))
    assert events == (fill(1, 3, BOB, ALICE, True, P, 5), fill(2, 3, CAROL, ALICE, True, P, 2))
    assert book(funded.state, False) == [(2, P, 3)]


def test_better_price_fills_before_earlier_time(funded: Venue) -> None:
    one(funded, sell(BOB, P + 2, 5))  # earliest but worst
    one(funded, sell(CAROL, P + 1, 5))
    one(funded, sell(DAVE, P + 1, 5))
    events = one(funded, buy(ALICE, P + 2, 12, **IOC))
    assert events == (
        fill(2, 4, CAROL, ALICE, True, P + 1, 5),
        fill(3, 4, DAVE, ALICE, True, P + 1, 5),
        fill(1, 4, BOB, ALICE, True, P + 2, 2),
    )
    assert book(funded.state, False) == [(1, P + 2, 3)]


def test_bids_sweep_from_the_highest_price(funded: Venue) -> None:
    one(funded, buy(BOB, P - 2, 5))
    one(funded, buy(CAROL, P - 1, 5))
    events = one(funded, sell(ALICE, P - 2, 8, **IOC))
    assert events == (fill(2, 3, CAROL, ALICE, False, P - 1, 5),
                      fill(1, 3, BOB, ALICE, False, P - 2, 3))
    assert book(funded.state, True) == [(1, P - 2, 2)]


def test_fills_at_the_makers_price_and_moves_exact_collateral(funded: Venue) -> None:
    one(funded, sell(BOB, P, 10))
    events = one(funded, buy(ALICE, P + 100, 10, **IOC))
    assert events == (fill(1, 2, BOB, ALICE, True, P, 10),)
    notional = 10 * P * QUANTUMS_PER_LOT_TICK
    assert notional == 100 * USDC
    assert collateral(funded.state, ALICE) == FUNDS - notional - 50_000
    assert collateral(funded.state, BOB) == FUNDS + notional + 10_000
    assert funded.state.fee_pool_quantums == 40_000
    entry = funded.state.subaccounts[(ALICE, 0)].cross.positions[BTC].entry_notional_quantums
    assert entry == notional


def entry(state: State, owner: bytes) -> int:
    return state.subaccounts[(owner, 0)].cross.positions[BTC].entry_notional_quantums


def test_entry_notional_scales_down_rounding_toward_negative_infinity(funded: Venue) -> None:
    """A reduction keeps entry x new / old, rounded down: for a short (negative entry notional)
    that is away from zero, so it never overstates what the short was sold for."""
    one(funded, buy(BOB, P + 1, 2))
    one(funded, buy(BOB, P, 1))
    # Alice shorts 3 lots: 2 at P + 1 (2 x 1,000,001 x 10 = 20,000,020) and 1 at P (10,000,000)
    one(funded, sell(ALICE, P, 3, **IOC))
    assert (size(funded.state, ALICE), entry(funded.state, ALICE)) == (-3, -30_000_020)
    assert (size(funded.state, BOB), entry(funded.state, BOB)) == (3, 30_000_020)
    # Alice buys 1 back from Bob: both keep 2/3 of their entry notional
    one(funded, sell(BOB, P, 1))
    one(funded, buy(ALICE, P, 1, **IOC))
    # short: -30,000,020 x 2 / 3 = -20,000,013.33..., rounded down to -20,000,014 (toward
    # zero it would be -20,000,013); long: 20,000,013.33... rounded down to 20,000,013
    assert (size(funded.state, ALICE), entry(funded.state, ALICE)) == (-2, -20_000_014)
    assert (size(funded.state, BOB), entry(funded.state, BOB)) == (2, 20_000_013)
    # closing the rest leaves no entry notional behind
    one(funded, sell(BOB, P, 2))
    one(funded, buy(ALICE, P, 2, **IOC))
    assert size(funded.state, ALICE) == 0 and size(funded.state, BOB) == 0
    assert BTC not in funded.state.subaccounts[(ALICE, 0)].cross.positions


def test_sell_taker_fills_at_the_bid_price(funded: Venue) -> None:
    one(funded, buy(BOB, P, 10))
    events = one(funded, sell(ALICE, P - 100, 10, **IOC))
    assert events == (fill(1, 2, BOB, ALICE, False, P, 10),)
    assert size(funded.state, ALICE) == -10 and size(funded.state, BOB) == 10


# --- IOC, FOK, post-only, market ---------------------------------------------------------------


def test_ioc_remainder_is_cancelled(funded: Venue) -> None:
    one(funded, sell(BOB, P, 3))
    events = one(funded, buy(ALICE, P, 10, **IOC))
    assert events == (fill(1, 2, BOB, ALICE, True, P, 3),
                      cancelled(2, 7, CancelReason.IOC_REMAINDER))
    assert book(funded.state, True) == [] and book(funded.state, False) == []
    assert open_lots(funded.state, ALICE) == (0, 0)
    assert size(funded.state, ALICE) == 3


def test_ioc_that_cannot_match_is_cancelled_whole_and_uses_an_order_id(funded: Venue) -> None:
    one(funded, sell(BOB, P + 1, 3))
    assert one(funded, buy(ALICE, P, 10, **IOC)) == (
        cancelled(2, 10, CancelReason.IOC_REMAINDER),)
    assert funded.state.next_order_id == 3
    assert BTC not in funded.state.subaccounts[(ALICE, 0)].cross.positions


def test_fok_fills_completely_across_levels(funded: Venue) -> None:
    one(funded, sell(BOB, P, 5))
    one(funded, sell(CAROL, P + 1, 5))
    events = one(funded, buy(ALICE, P + 1, 10, time_in_force=TimeInForce.FOK))
    assert events == (fill(1, 3, BOB, ALICE, True, P, 5),
                      fill(2, 3, CAROL, ALICE, True, P + 1, 5))
    assert book(funded.state, False) == []
    assert size(funded.state, ALICE) == 10


def test_fok_that_cannot_fill_completely_is_rejected_without_state_change(funded: Venue) -> None:
    one(funded, sell(BOB, P, 5))
    one(funded, sell(CAROL, P + 1, 5))
    tx = buy(ALICE, P + 1, 11, time_in_force=TimeInForce.FOK)
    rejected(funded, tx, ErrorCode.FOK_NOT_FILLED)
    receipt = apply_transaction(funded.state, tx)
    assert receipt.message == ERROR_MESSAGES[ErrorCode.FOK_NOT_FILLED] + (
        " (10 of 11 lots available)")
    assert book(funded.state, False) == [(1, P, 5), (2, P + 1, 5)]
    assert funded.state.next_order_id == 3


def test_post_only_rests_below_the_ask(funded: Venue) -> None:
    one(funded, sell(BOB, P, 5))
    events = one(funded, buy(ALICE, P - 1, 5, time_in_force=TimeInForce.POST_ONLY))
    assert events == (placed(2, ALICE, True, P - 1, 5),)
    assert funded.state.orders[2].post_only
    # and it provides liquidity as a maker later
    assert one(funded, sell(CAROL, P - 1, 5, **IOC)) == (
        fill(2, 3, ALICE, CAROL, False, P - 1, 5),)


@pytest.mark.parametrize("price_ticks", [P, P + 1])
def test_post_only_that_would_take_is_rejected(funded: Venue, price_ticks: int) -> None:
    one(funded, sell(BOB, P, 5))
    rejected(funded, buy(ALICE, price_ticks, 5, time_in_force=TimeInForce.POST_ONLY),
             ErrorCode.POST_ONLY_WOULD_CROSS)
    one(funded, buy(CAROL, P - 5, 5))
    rejected(funded, sell(ALICE, P - 5, 5, time_in_force=TimeInForce.POST_ONLY),
             ErrorCode.POST_ONLY_WOULD_CROSS)


def test_market_order_stops_at_its_worst_price(funded: Venue) -> None:
    one(funded, sell(BOB, P, 5))
    one(funded, sell(CAROL, P + 10, 5))
    one(funded, sell(DAVE, P + 20, 5))
    events = one(funded, buy(ALICE, P + 10, 15, order_type=OrderType.MARKET, **IOC))
    assert events == (fill(1, 4, BOB, ALICE, True, P, 5),
                      fill(2, 4, CAROL, ALICE, True, P + 10, 5),
                      cancelled(4, 5, CancelReason.IOC_REMAINDER))
    assert book(funded.state, False) == [(3, P + 20, 5)]
    assert size(funded.state, ALICE) == 10


def test_market_sell_and_market_fok(funded: Venue) -> None:
    one(funded, buy(BOB, P, 5))
    one(funded, buy(CAROL, P - 10, 5))
    events = one(funded, sell(ALICE, P - 10, 10, order_type=OrderType.MARKET,
                              time_in_force=TimeInForce.FOK))
    assert events == (fill(1, 3, BOB, ALICE, False, P, 5),
                      fill(2, 3, CAROL, ALICE, False, P - 10, 5))


def test_market_bound_may_lie_outside_the_price_band(funded: Venue) -> None:
    one(funded, sell(BOB, P, 5))
    rejected(funded, buy(ALICE, 2 * P, 5, **IOC), ErrorCode.PRICE_OUTSIDE_BAND)
    events = one(funded, buy(ALICE, 2 * P, 5, order_type=OrderType.MARKET, **IOC))
    assert events == (fill(1, 2, BOB, ALICE, True, P, 5),)


@pytest.mark.parametrize("tif", [TimeInForce.GTC, TimeInForce.POST_ONLY])
def test_market_order_must_be_ioc_or_fok(funded: Venue, tif: TimeInForce) -> None:
    one(funded, sell(BOB, P, 5))
    rejected(funded, buy(ALICE, P, 5, order_type=OrderType.MARKET, time_in_force=tif),
             ErrorCode.INVALID_ORDER_TYPE)


# --- reduce-only ------------------------------------------------------------------------------


@pytest.fixture
def alice_long_10(funded: Venue) -> Venue:
    one(funded, sell(BOB, P, 10))
    one(funded, buy(ALICE, P, 10, **IOC))  # order 2
    one(funded, buy(CAROL, P, 20))  # order 3: a bid ALICE can reduce into
    one(funded, sell(DAVE, P + 1, 20))  # order 4: an ask to test increases against
    assert size(funded.state, ALICE) == 10
    return funded


def test_reduce_only_reduces(alice_long_10: Venue) -> None:
    venue = alice_long_10
    events = one(venue, sell(ALICE, P, 4, reduce_only=True, **IOC))
    assert events == (fill(3, 5, CAROL, ALICE, False, P, 4),)
    assert size(venue.state, ALICE) == 6
    events = one(venue, sell(ALICE, P, 6, reduce_only=True, order_type=OrderType.MARKET, **IOC))
    assert events == (fill(3, 6, CAROL, ALICE, False, P, 6),)
    assert size(venue.state, ALICE) == 0
    assert BTC not in venue.state.subaccounts[(ALICE, 0)].cross.positions


def test_reduce_only_fok_reduces(alice_long_10: Venue) -> None:
    events = one(alice_long_10, sell(ALICE, P, 10, reduce_only=True,
                                     time_in_force=TimeInForce.FOK))
    assert events == (fill(3, 5, CAROL, ALICE, False, P, 10),)


@pytest.mark.parametrize(
    ("owner", "side", "size_lots"),
    [
        (ALICE, Side.BUY, 1),  # would increase the long
        (ALICE, Side.SELL, 11),  # would flip it short
        (DAVE, Side.SELL, 1),  # no position at all
        (DAVE, Side.BUY, 1),
    ],
)
def test_reduce_only_that_would_increase_is_rejected(alice_long_10: Venue, owner: bytes,
                                                     side: Side, size_lots: int) -> None:
    price = P + 1 if side == Side.BUY else P
    tx = PlaceOrder(owner, 0, BTC, side, price, size_lots, time_in_force=TimeInForce.IOC,
                    reduce_only=True)
    rejected(alice_long_10, tx, ErrorCode.REDUCE_ONLY_WOULD_INCREASE)


@pytest.mark.parametrize("tif", [TimeInForce.GTC, TimeInForce.POST_ONLY])
def test_reduce_only_must_not_rest(alice_long_10: Venue, tif: TimeInForce) -> None:
    rejected(alice_long_10, sell(ALICE, P + 5, 4, reduce_only=True, time_in_force=tif),
             ErrorCode.REDUCE_ONLY_NOT_IOC)


# --- client order ids, cancel, cancel-all ------------------------------------------------------


def test_client_order_ids(funded: Venue) -> None:
    assert one(funded, buy(ALICE, P - 1, 3, client_order_id=42)) == (
        placed(1, ALICE, True, P - 1, 3, client_order_id=42),)
    rejected(funded, buy(ALICE, P - 2, 3, client_order_id=42),
             ErrorCode.DUPLICATE_CLIENT_ORDER_ID)
    rejected(funded, buy(ALICE, P - 2, 3, client_order_id=42, **IOC),
             ErrorCode.DUPLICATE_CLIENT_ORDER_ID)
    # ids are per subaccount: another owner may use the same one
    assert one(funded, buy(BOB, P - 2, 3, client_order_id=42)) == (
        placed(2, BOB, True, P - 2, 3, client_order_id=42),)
    assert one(funded, CancelOrderByClientId(ALICE, 0, 42)) == (
        cancelled(1, 3, CancelReason.USER),)
    assert book(funded.state, True) == [(2, P - 2, 3)]
    rejected(funded, CancelOrderByClientId(ALICE, 0, 42), ErrorCode.ORDER_NOT_FOUND)
    # reuse after the cancel is allowed
    assert one(funded, buy(ALICE, P - 3, 4, client_order_id=42)) == (
        placed(3, ALICE, True, P - 3, 4, client_order_id=42),)


def test_client_order_id_is_free_again_once_the_order_filled(funded: Venue) -> None:
    one(funded, sell(BOB, P, 3, client_order_id=9))
    one(funded, buy(ALICE, P, 3, **IOC))
    assert funded.state.subaccounts[(BOB, 0)].client_orders == {}
    assert one(funded, sell(BOB, P, 1, client_order_id=9)) == (
        placed(3, BOB, False, P, 1, client_order_id=9),)


def test_cancel_own_order_releases_its_reservation(funded: Venue) -> None:
    one(funded, buy(ALICE, P - 1, 10))
    assert one(funded, CancelOrder(ALICE, 0, 1)) == (cancelled(1, 10, CancelReason.USER),)
    assert book(funded.state, True) == []
    assert funded.state.subaccounts[(ALICE, 0)].cross.positions == {}
    assert funded.state.orders == {}
    rejected(funded, CancelOrder(ALICE, 0, 1), ErrorCode.ORDER_NOT_FOUND)


def test_cancel_of_someone_elses_order_is_not_found(funded: Venue) -> None:
    one(funded, buy(BOB, P - 1, 10))
    rejected(funded, CancelOrder(ALICE, 0, 1), ErrorCode.ORDER_NOT_FOUND)
    rejected(funded, CancelOrder(BOB, 1, 1), ErrorCode.ACCOUNT_NOT_FOUND)
    assert book(funded.state, True) == [(1, P - 1, 10)]


def two_market_venue() -> Venue:
    config = venue_config()
    eth = perpetual_market(ETH, "ETH-PERP", ETH, tick_size_quantums=10_000,
                           lot_size_nanounits=1_000_000)
    v = Venue(dataclasses.replace(config, markets=(config.markets[0], eth)))
    timestamp_ms = v.clock_ms + 1_000
    prices = (OraclePrice(BTC, INDEX_100K_QUANTUMS), OraclePrice(ETH, ETH_INDEX_QUANTUMS))
    digest = oracle_message_digest(v.state.config.chain_id, timestamp_ms, prices)
    v.run_ok(OracleUpdate(timestamp_ms, prices, (sign_digest(ORACLE_KEY, digest),)))
    v.fund([ALICE, BOB], FUNDS)
    return v


def eth_buy(owner: bytes, size_lots: int) -> PlaceOrder:
    return PlaceOrder(owner, 0, ETH, Side.BUY, ETH_PRICE_TICKS - 100, size_lots)


def test_cancel_all_in_every_market() -> None:
    v = two_market_venue()
    one(v, buy(ALICE, P - 1, 1))
    one(v, eth_buy(ALICE, 2))
    one(v, sell(ALICE, P + 1, 3))
    one(v, buy(BOB, P - 2, 4))
    assert one(v, CancelAll(ALICE, 0)) == (
        cancelled(1, 1, CancelReason.USER),
        cancelled(2, 2, CancelReason.USER, market_id=ETH),
        cancelled(3, 3, CancelReason.USER),
    )
    assert v.state.subaccounts[(ALICE, 0)].orders == {}
    assert book(v.state, True) == [(4, P - 2, 4)]
    assert book(v.state, True, ETH) == []
    assert one(v, CancelAll(ALICE, 0)) == ()  # nothing left: accepted, no events


def test_cancel_all_in_one_market() -> None:
    v = two_market_venue()
    one(v, buy(ALICE, P - 1, 1))
    one(v, eth_buy(ALICE, 2))
    one(v, eth_buy(BOB, 5))
    assert one(v, CancelAll(ALICE, 0, ETH)) == (cancelled(2, 2, CancelReason.USER, ETH),)
    assert book(v.state, True) == [(1, P - 1, 1)]
    assert book(v.state, True, ETH) == [(3, ETH_PRICE_TICKS - 100, 5)]
    rejected(v, CancelAll(ALICE, 0, 3), ErrorCode.UNKNOWN_MARKET)


# --- modify -----------------------------------------------------------------------------------


def test_modify_size_down_works_outside_the_band_after_the_oracle_moved(funded: Venue) -> None:
    one(funded, buy(ALICE, P - 1, 10))
    # the index rises 20%: the bid now sits outside the 10% band, yet it can still shrink
    funded.run_ok(funded.oracle(INDEX_100K_QUANTUMS * 12 // 10))
    assert one(funded, ModifyOrder(ALICE, 0, 1, P - 1, 3)) == (OrderReduced(1, BTC, 7, 3),)
    rejected(funded, ModifyOrder(ALICE, 0, 1, P - 2, 3), ErrorCode.PRICE_OUTSIDE_BAND)
    assert book(funded.state, True) == [(1, P - 1, 3)]


def test_modify_size_down_at_same_price_keeps_priority(funded: Venue) -> None:
    one(funded, buy(ALICE, P - 1, 10, client_order_id=5))
    one(funded, buy(BOB, P - 1, 10))
    assert one(funded, ModifyOrder(ALICE, 0, 1, P - 1, 4)) == (OrderReduced(1, BTC, 6, 4),)
    assert book(funded.state, True) == [(1, P - 1, 4), (2, P - 1, 10)]
    assert open_lots(funded.state, ALICE) == (4, 0)
    assert funded.state.subaccounts[(ALICE, 0)].client_orders[5].order_id == 1
    assert funded.state.next_order_id == 3  # no new order id
    assert one(funded, sell(CAROL, P - 1, 4, **IOC)) == (
        fill(1, 3, ALICE, CAROL, False, P - 1, 4),)


def test_modify_price_loses_priority_under_a_new_id(funded: Venue) -> None:
    one(funded, buy(ALICE, P - 1, 10, client_order_id=7))
    one(funded, buy(BOB, P - 2, 10))
    assert one(funded, ModifyOrder(ALICE, 0, 1, P - 2, 10)) == (
        cancelled(1, 10, CancelReason.MODIFIED),
        placed(3, ALICE, True, P - 2, 10, client_order_id=7),
    )
    assert book(funded.state, True) == [(2, P - 2, 10), (3, P - 2, 10)]
    assert open_lots(funded.state, ALICE) == (10, 0)
    rejected(funded, CancelOrder(ALICE, 0, 1), ErrorCode.ORDER_NOT_FOUND)
    # the client order id moved to the new order
    assert one(funded, CancelOrderByClientId(ALICE, 0, 7)) == (
        cancelled(3, 10, CancelReason.USER),)


def test_modify_size_up_at_same_price_loses_priority(funded: Venue) -> None:
    one(funded, sell(ALICE, P + 1, 5))
    one(funded, sell(BOB, P + 1, 5))
    assert one(funded, ModifyOrder(ALICE, 0, 1, P + 1, 6)) == (
        cancelled(1, 5, CancelReason.MODIFIED), placed(3, ALICE, False, P + 1, 6))
    assert book(funded.state, False) == [(2, P + 1, 5), (3, P + 1, 6)]


def test_modify_that_crosses_trades(funded: Venue) -> None:
    one(funded, sell(BOB, P, 5))
    one(funded, buy(ALICE, P - 1, 10, client_order_id=3))
    assert one(funded, ModifyOrder(ALICE, 0, 2, P, 10)) == (
        cancelled(2, 10, CancelReason.MODIFIED),
        fill(1, 3, BOB, ALICE, True, P, 5),
        placed(3, ALICE, True, P, 5, client_order_id=3),
    )
    assert size(funded.state, ALICE) == 5
    assert book(funded.state, True) == [(3, P, 5)] and book(funded.state, False) == []
    assert open_lots(funded.state, ALICE) == (5, 0)


def test_modify_to_identical_is_rejected(funded: Venue) -> None:
    one(funded, buy(ALICE, P - 1, 10))
    rejected(funded, ModifyOrder(ALICE, 0, 1, P - 1, 10), ErrorCode.MODIFY_NOTHING)


def test_modify_of_post_only_keeps_it_post_only(funded: Venue) -> None:
    one(funded, sell(BOB, P, 5))
    one(funded, buy(ALICE, P - 2, 5, time_in_force=TimeInForce.POST_ONLY))
    rejected(funded, ModifyOrder(ALICE, 0, 2, P, 5), ErrorCode.POST_ONLY_WOULD_CROSS)
    assert one(funded, ModifyOrder(ALICE, 0, 2, P - 1, 5)) == (
        cancelled(2, 5, CancelReason.MODIFIED), placed(3, ALICE, True, P - 1, 5))
    assert funded.state.orders[3].post_only


def test_modify_of_someone_elses_order_and_out_of_band(funded: Venue) -> None:
    one(funded, buy(BOB, P - 1, 10))
    rejected(funded, ModifyOrder(ALICE, 0, 1, P - 2, 10), ErrorCode.ORDER_NOT_FOUND)
    rejected(funded, ModifyOrder(BOB, 0, 1, P - P // 10 - 1, 10), ErrorCode.PRICE_OUTSIDE_BAND)
    rejected(funded, ModifyOrder(BOB, 0, 1, P - 1, 0), ErrorCode.INVALID_SIZE)


# --- self-trade prevention ---------------------------------------------------------------------


@pytest.fixture
def two_alices(funded: Venue) -> Venue:
    """ALICE/1 (funded) rests an ask, then BOB rests one behind it at the same price."""
    funded.run_ok(funded.deposit(ALICE, FUNDS, subaccount=1))
    one(funded, sell(ALICE, P, 10, sub=1))  # order 1
    one(funded, sell(BOB, P, 10))  # order 2
    return funded


def test_self_trade_expire_maker_continues_to_the_next_maker(two_alices: Venue) -> None:
    events = one(two_alices, buy(ALICE, P, 10, self_trade=SelfTradePrevention.EXPIRE_MAKER,
                                 **IOC))
    assert events == (cancelled(1, 10, CancelReason.SELF_TRADE),
                      fill(2, 3, BOB, ALICE, True, P, 10))
    assert book(two_alices.state, False) == []
    assert size(two_alices.state, ALICE) == 10 and size(two_alices.state, ALICE, 1) == 0


def test_self_trade_expire_taker_keeps_the_maker(two_alices: Venue) -> None:
    events = one(two_alices, buy(ALICE, P, 10, self_trade=SelfTradePrevention.EXPIRE_TAKER))
    assert events == (cancelled(3, 10, CancelReason.SELF_TRADE),)
    assert book(two_alices.state, False) == [(1, P, 10), (2, P, 10)]
    assert book(two_alices.state, True) == []  # the GTC remainder did not rest


def test_self_trade_expire_taker_after_a_partial_fill(two_alices: Venue) -> None:
    one(two_alices, sell(CAROL, P - 1, 4))  # order 3, better than ALICE/1's ask
    events = one(two_alices, buy(ALICE, P, 10, self_trade=SelfTradePrevention.EXPIRE_TAKER))
    assert events == (fill(3, 4, CAROL, ALICE, True, P - 1, 4),
                      cancelled(4, 6, CancelReason.SELF_TRADE))
    assert book(two_alices.state, False) == [(1, P, 10), (2, P, 10)]


def test_self_trade_expire_both(two_alices: Venue) -> None:
    events = one(two_alices, buy(ALICE, P, 10, self_trade=SelfTradePrevention.EXPIRE_BOTH,
                                 **IOC))
    assert events == (cancelled(1, 10, CancelReason.SELF_TRADE),
                      cancelled(3, 10, CancelReason.SELF_TRADE))
    assert book(two_alices.state, False) == [(2, P, 10)]
    assert size(two_alices.state, ALICE) == 0


def test_self_trade_within_one_subaccount_settles_into_its_position(funded: Venue) -> None:
    """Regression: expiring the taker's own resting order must not detach its position."""
    one(funded, sell(ALICE, P, 10))  # order 1: ALICE's only order, so her only reservation
    one(funded, sell(BOB, P, 10))  # order 2
    events = one(funded, buy(ALICE, P, 10, **IOC))  # EXPIRE_MAKER by default
    assert events == (cancelled(1, 10, CancelReason.SELF_TRADE),
                      fill(2, 3, BOB, ALICE, True, P, 10))
    position = funded.state.subaccounts[(ALICE, 0)].cross.positions[BTC]
    assert position.size_lots == 10 and position.open_ask_lots == 0
    assert funded.state.markets[BTC].holders[(ALICE, 0, 0)] is position


def test_self_trade_within_one_subaccount_then_rests(funded: Venue) -> None:
    one(funded, sell(ALICE, P, 10))
    assert one(funded, buy(ALICE, P, 4)) == (cancelled(1, 10, CancelReason.SELF_TRADE),
                                             placed(2, ALICE, True, P, 4))
    assert open_lots(funded.state, ALICE) == (4, 0)


# --- limits ------------------------------------------------------------------------------------


def test_open_orders_limit() -> None:
    v = funded_venue(dataclasses.replace(venue_config(), open_orders_per_subaccount_max=2))
    one(v, buy(ALICE, P - 1, 1))
    one(v, buy(ALICE, P - 2, 1))
    rejected(v, buy(ALICE, P - 3, 1), ErrorCode.OPEN_ORDERS_LIMIT)
    rejected(v, sell(ALICE, P + 3, 1, time_in_force=TimeInForce.POST_ONLY),
             ErrorCode.OPEN_ORDERS_LIMIT)
    # orders that do not rest are fine, and so is a cancel-replace of a resting one
    one(v, sell(BOB, P + 1, 2))
    assert one(v, buy(ALICE, P + 1, 1)) == (fill(3, 4, BOB, ALICE, True, P + 1, 1),)
    assert one(v, buy(ALICE, P, 1, **IOC)) == (cancelled(5, 1, CancelReason.IOC_REMAINDER),)
    assert one(v, ModifyOrder(ALICE, 0, 2, P - 5, 1)) == (
        cancelled(2, 1, CancelReason.MODIFIED), placed(6, ALICE, True, P - 5, 1))
    one(v, CancelOrder(ALICE, 0, 1))
    assert one(v, buy(ALICE, P - 3, 1)) == (placed(7, ALICE, True, P - 3, 1),)


def test_fills_per_order_limit_cancels_the_remainder() -> None:
    v = funded_venue(dataclasses.replace(venue_config(), fills_per_order_max=3))
    for _ in range(5):
        one(v, sell(BOB, P, 1))  # orders 1..5
    events = one(v, buy(ALICE, P, 5))
    assert events == (
        fill(1, 6, BOB, ALICE, True, P, 1),
        fill(2, 6, BOB, ALICE, True, P, 1),
        fill(3, 6, BOB, ALICE, True, P, 1),
        cancelled(6, 2, CancelReason.FILL_LIMIT),
    )
    assert book(v.state, True) == []  # the GTC remainder did not rest: the book is not crossed
    assert book(v.state, False) == [(4, P, 1), (5, P, 1)]
    # exactly at the limit, the order completes normally
    one(v, sell(BOB, P, 1))  # order 7
    assert one(v, buy(CAROL, P, 3, **IOC)) == (
        fill(4, 8, BOB, CAROL, True, P, 1),
        fill(5, 8, BOB, CAROL, True, P, 1),
        fill(7, 8, BOB, CAROL, True, P, 1),
    )


def test_self_trade_expiries_count_towards_the_fill_limit() -> None:
    v = funded_venue(dataclasses.replace(venue_config(), fills_per_order_max=2))
    v.run_ok(v.deposit(ALICE, FUNDS, subaccount=1))
    one(v, sell(ALICE, P, 1, sub=1))
    one(v, sell(ALICE, P, 1, sub=1))
    one(v, sell(BOB, P, 1))
    assert one(v, buy(ALICE, P, 1)) == (cancelled(1, 1, CancelReason.SELF_TRADE),
                                        cancelled(2, 1, CancelReason.SELF_TRADE),
                                        cancelled(4, 1, CancelReason.FILL_LIMIT))
    assert book(v.state, False) == [(3, P, 1)]


def test_open_interest_cap_fills_up_to_the_cap_then_stops() -> None:
    v = funded_venue(market_config(open_interest_lots_max=100))
    one(v, sell(BOB, P, 60))  # order 1
    one(v, sell(BOB, P, 60))  # order 2: filling it whole would take open interest to 120
    events = one(v, buy(ALICE, P, 150))  # order 3
    # 60 from order 1, then order 2 only up to the cap (40); the GTC remainder never rests
    assert events == (fill(1, 3, BOB, ALICE, True, P, 60),
                      fill(2, 3, BOB, ALICE, True, P, 40),
                      cancelled(3, 50, CancelReason.OPEN_INTEREST_CAP))
    assert v.state.markets[BTC].open_interest_lots == 100
    assert book(v.state, True) == [] and book(v.state, False) == [(2, P, 20)]
    # at the cap, opening trades get nothing ...
    assert one(v, buy(CAROL, P, 10, **IOC)) == (
        cancelled(4, 10, CancelReason.OPEN_INTEREST_CAP),)
    # ... while a trade that keeps open interest level goes through: ALICE sells 30 to DAVE
    one(v, buy(DAVE, P - 1, 30))  # order 5
    assert one(v, sell(ALICE, P - 1, 30, **IOC)) == (fill(5, 6, DAVE, ALICE, False, P - 1, 30),)
    assert v.state.markets[BTC].open_interest_lots == 100  # ALICE 70 + DAVE 30
    # and one that reduces it: BOB buys back 10 from ALICE
    one(v, CancelOrder(BOB, 0, 2))
    one(v, sell(ALICE, P, 10))  # order 7
    assert one(v, buy(BOB, P, 10, **IOC)) == (fill(7, 8, ALICE, BOB, True, P, 10),)
    assert v.state.markets[BTC].open_interest_lots == 90
    check_invariants(v.state)


def test_order_size_max() -> None:
    v = funded_venue(market_config(order_size_lots_max=100))
    assert one(v, buy(ALICE, P - 1, 100)) == (placed(1, ALICE, True, P - 1, 100),)
    rejected(v, buy(ALICE, P - 1, 101), ErrorCode.ORDER_SIZE_ABOVE_MAX)
    receipt = apply_transaction(v.state, buy(ALICE, P - 1, 101))
    assert receipt.message == ERROR_MESSAGES[ErrorCode.ORDER_SIZE_ABOVE_MAX] + " (101 > 100 lots)"
    rejected(v, buy(ALICE, 2 * P, 101, order_type=OrderType.MARKET, **IOC),
             ErrorCode.ORDER_SIZE_ABOVE_MAX)


def test_price_band_is_ten_percent_of_the_index_inclusive(funded: Venue) -> None:
    band = P // 10
    assert one(funded, buy(ALICE, P + band, 1, **IOC)) == (
        cancelled(1, 1, CancelReason.IOC_REMAINDER),)
    assert one(funded, sell(ALICE, P - band, 1, **IOC)) == (
        cancelled(2, 1, CancelReason.IOC_REMAINDER),)
    rejected(funded, buy(ALICE, P + band + 1, 1, **IOC), ErrorCode.PRICE_OUTSIDE_BAND)
    rejected(funded, sell(ALICE, P - band - 1, 1), ErrorCode.PRICE_OUTSIDE_BAND)
    # the band follows the oracle
    funded.run_ok(funded.oracle(INDEX_100K_QUANTUMS * 2))
    assert one(funded, sell(ALICE, 2 * P + 2 * band, 1)) == (
        placed(3, ALICE, False, 2 * P + 2 * band, 1),)


# --- fees ------------------------------------------------------------------------------------


def test_fees_round_up_for_the_taker_and_down_for_the_maker(funded: Venue) -> None:
    # one lot at $100,000.1 is 10,000,010 quantums: 5,000.005 taker fee, 1,000.001 rebate
    one(funded, sell(BOB, P + 1, 1))
    (event,) = one(funded, buy(ALICE, P + 1, 1, **IOC))
    assert isinstance(event, Fill)
    assert event.taker_fee_quantums == 5_001 and event.maker_fee_quantums == -1_000
    notional = 10_000_010
    assert collateral(funded.state, ALICE) == FUNDS - notional - 5_001
    assert collateral(funded.state, BOB) == FUNDS + notional + 1_000
    assert funded.state.fee_pool_quantums == 4_001


def test_fees_on_exact_notional_and_on_a_sell_taker(funded: Venue) -> None:
    one(funded, buy(BOB, P, 1_000))
    (event,) = one(funded, sell(ALICE, P, 1_000, **IOC))
    assert isinstance(event, Fill)
    # $10,000 notional: 5 USDC fee, 1 USDC rebate, no rounding
    assert event.taker_fee_quantums == 5 * USDC and event.maker_fee_quantums == -USDC
    assert collateral(funded.state, ALICE) == FUNDS + 10_000 * USDC - 5 * USDC
    assert collateral(funded.state, BOB) == FUNDS - 10_000 * USDC + USDC
    assert funded.state.fee_pool_quantums == 4 * USDC


# --- maker margin at match time -----------------------------------------------------------------


def test_maker_failing_margin_is_expired_and_the_taker_fills_the_next_maker() -> None:
    # DAVE holds exactly the initial margin of his ask at $100,000: 10% of $1,000
    v = Venue()
    v.run_ok(v.oracle(INDEX_100K_QUANTUMS))
    v.fund([ALICE, CAROL], FUNDS)
    v.run_ok(v.deposit(DAVE, 100 * USDC))
    one(v, sell(DAVE, P, 100))  # order 1
    one(v, sell(CAROL, P, 100))  # order 2
    # the index rises 1%: DAVE, still flat and so not liquidatable, no longer carries his ask
    (receipt,) = v.run_ok(v.oracle(INDEX_100K_QUANTUMS * 101 // 100))
    assert receipt.events == ()
    events = one(v, buy(ALICE, P, 100, **IOC))
    assert events == (cancelled(1, 100, CancelReason.MAKER_MARGIN),
                      fill(2, 3, CAROL, ALICE, True, P, 100))
    assert v.state.subaccounts[(DAVE, 0)].orders == {}
    assert v.state.subaccounts[(DAVE, 0)].cross.positions == {}
    assert collateral(v.state, DAVE) == 100 * USDC
    assert book(v.state, False) == []
    assert size(v.state, ALICE) == 100 and size(v.state, CAROL) == -100

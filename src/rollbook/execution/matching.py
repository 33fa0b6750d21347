"""Matching: plan a taker's sweep of the book without mutating it, then apply the plan.

Ordering invariant: makers are matched strictly by price, then by time (FIFO within a level);
every fill executes at the maker's price.

Two phases make every order transaction atomic without an undo log: ``plan_match`` walks the
book read-only and returns the fills, the maker orders to expire and the taker's aggregate
deltas; the caller checks the taker's margin on those deltas, and only then ``apply_plan``
mutates. A rejected order therefore changes nothing.

Per fill, the maker is checked with the same acceptance rule as the taker (its resting orders
reserved margin at placement, but prices and its other positions may have moved since). A maker
that fails is expired with reason MAKER_MARGIN and matching continues behind it, so the book
never keeps an order whose owner can no longer carry it.

Self-trade prevention applies between subaccounts of the same owner. Liquidation sweeps never
trade with the liquidated owner's other orders; they skip them. On liquidation fills the taker
fee is the penalty (to the insurance fund) and makers earn no rebate: the fee pool, which takes
nothing on those fills, never pays out more than it took.

Market-maker protection: after a sweep of an option book, fills of protected quotes are counted
and a maker whose limits trip has its quotes cancelled (``options.protection``); the sweep's
planned fills all complete first.

Limits: a taker's sweep touches at most ``fills_per_order_max`` maker orders (fills and
expiries together, so the work of one transaction is bounded). At the open-interest cap a
fill is cut to the largest size that fits. When a sweep stops for the fill limit, for the
open-interest cap, or for self-trade prevention, the taker's remainder is
cancelled rather than rested, so the book is never left crossed.
"""

from __future__ import annotations

from typing import Any, Final, cast

from rollbook.execution.events import CancelReason
from rollbook.execution.margin import (
    GroupRisk,
    change_acceptable,
    group_risk,
    meets_initial_after,
)
from rollbook.execution.options.protection import record_quote_fills
from rollbook.execution.positions import (
    consume_maker_lots,
    release_position_if_empty,
    remove_resting_order,
    settle_trade_side_unmarked,
)
from rollbook.execution.receipts import Fill, OrderCancelled
from rollbook.execution.state import (
    MarginGroup,
    MarketState,
    Order,
    Position,
    State,
    mark_subaccount,
)
from rollbook.execution.txs import SelfTradePrevention
from rollbook.execution.units import PPM, div_ceil, mul_div_ceil, mul_div_floor

__all__ = ["MatchPlan", "MatchStep", "apply_plan", "fee_quantums", "plan_match"]

STOP_NONE: Final = 0
# enum members read once (a class attribute of an interpreted Enum is a slow lookup)
_FILL_LIMIT: Final = CancelReason.FILL_LIMIT
_SELF_TRADE: Final = CancelReason.SELF_TRADE
_MAKER_MARGIN: Final = CancelReason.MAKER_MARGIN
_OPEN_INTEREST_CAP: Final = CancelReason.OPEN_INTEREST_CAP
_EXPIRE_MAKER: Final = int(SelfTradePrevention.EXPIRE_MAKER)
_EXPIRE_TAKER: Final = int(SelfTradePrevention.EXPIRE_TAKER)


def fee_quantums(notional_quantums: int, fee_ppm: int) -> int:
    """A fee is charged rounded up; a rebate (negative rate) is paid rounded down."""
    if fee_ppm >= 0:
        return mul_div_ceil(notional_quantums, fee_ppm, PPM)
    return -mul_div_floor(notional_quantums, -fee_ppm, PPM)


class _MakerDelta:
    __slots__ = ("ask_lots", "before", "bid_lots", "collateral_quantums", "group", "size_lots")

    def __init__(self, group: MarginGroup) -> None:
        self.group = group
        self.before: GroupRisk | None = None  # computed only if the fast check fails
        self.size_lots = 0
        self.collateral_quantums = 0
        self.bid_lots = 0
        self.ask_lots = 0


def _maker_delta(makers: list[_MakerDelta], group: MarginGroup) -> _MakerDelta:
    """The sweep's running delta of the maker ``group``, added at its first fill.

    A list searched by identity: a sweep meets at most ``fills_per_order_max`` makers, nearly
    always one or two, and scanning those costs less than hashing into a dict and back.
    """
    for delta in makers:
        if delta.group is group:
            return delta
    delta = _MakerDelta(group)
    makers.append(delta)
    return delta


def _oi_change_lots(taker_size_lots: int, maker_size_lots: int, taker_signed_lots: int) -> int:
    """Change of long open interest when the taker trades ``taker_signed_lots`` with a maker."""
    # each side's long lots, max(size, 0), as inline comparisons: this runs for every fill, and
    # four max_int calls were most of its cost in the compiled build
    taker_after = taker_size_lots + taker_signed_lots
    maker_after = maker_size_lots - taker_signed_lots
    taker_long = taker_size_lots if taker_size_lots > 0 else 0
    maker_long = maker_size_lots if maker_size_lots > 0 else 0
    return ((taker_after if taker_after > 0 else 0) - taker_long
            + (maker_after if maker_after > 0 else 0) - maker_long)


def _largest_fill_under_cap(taker_size_lots: int, maker_size_lots: int, is_buy: bool,
                            fill_lots_max: int, room_lots: int) -> int:
    """The largest fill in [0, fill_lots_max] whose open-interest change fits in ``room_lots``.

    The change is a sum of maxima of affine functions of the fill, so it is convex, and it is 0
    for an empty fill: the fills that fit form an interval starting at 0, found by bisection.
    """
    low = 0
    high = fill_lots_max
    while low < high:
        middle = div_ceil(low + high, 2)
        signed = middle if is_buy else -middle
        if _oi_change_lots(taker_size_lots, maker_size_lots, signed) <= room_lots:
            low = middle
        else:
            high = middle - 1
    return low


def _maker_acceptable(markets: dict[int, MarketState], market: MarketState, delta: _MakerDelta,
                      position: Position, market_id: int, d_size_lots: int, d_bid_lots: int,
                      d_ask_lots: int, d_collateral_quantums: int) -> bool:
    """``position``: the maker order's record, its group's in this market."""
    group = delta.group
    if meets_initial_after(markets, group, market_id, d_size_lots, d_bid_lots, d_ask_lots,
                           d_collateral_quantums, market, position):
        return True
    if delta.before is None:
        delta.before = group_risk(markets, group)
    after = group_risk(markets, group, market_id, d_size_lots, d_bid_lots, d_ask_lots,
                       d_collateral_quantums)
    return change_acceptable(delta.before, after)


class MatchStep:
    """One planned step of a sweep: a fill of ``order``, or, with a non-zero cancel reason, its
    expiry (then the lots and fees are 0).

    A native class rather than a tuple: its integer fields stay unboxed, so a step costs one
    allocation instead of a tuple plus a boxed int per field (a hot path: every fill).
    """

    __slots__ = ("cancel_reason", "fill_lots", "maker_fee_quantums", "order",
                 "taker_fee_quantums")

    def __init__(self, order: Order, fill_lots: int, cancel_reason: int,
                 maker_fee_quantums: int, taker_fee_quantums: int) -> None:
        self.order = order
        self.fill_lots = fill_lots
        self.cancel_reason = cancel_reason
        self.maker_fee_quantums = maker_fee_quantums
        self.taker_fee_quantums = taker_fee_quantums


class MatchPlan:
    """The outcome of a sweep, before anything is applied: its ``steps`` in book order."""

    __slots__ = ("filled_lots", "oi_delta_lots", "quote_quantums", "steps", "stop_reason",
                 "taker_fee_quantums")

    def __init__(self) -> None:
        self.steps: list[MatchStep] = []
        self.filled_lots = 0
        self.quote_quantums = 0  # signed: what the taker pays (buy) or receives (negative)
        self.taker_fee_quantums = 0
        self.oi_delta_lots = 0
        self.stop_reason = STOP_NONE


def plan_match(state: State, market: MarketState, taker_group: MarginGroup, taker_owner: bytes,
               is_buy: bool, limit_price_ticks: int, size_lots: int, self_trade: int,
               taker_fee_ppm: int, liquidation: bool) -> MatchPlan:
    """Walk the opposite side of the book from the best price; mutate nothing."""
    plan = MatchPlan()
    book = market.book
    config = market.config
    markets = state.markets
    market_id = config.market_id
    quantums_per_lot_tick = market.quantums_per_lot_tick
    # a liquidation's taker fee is its penalty, paid to the insurance fund and capped at the
    # equity left, so the fee pool takes nothing on those fills and pays no maker rebate on them
    # (otherwise it could pay out more than it ever took)
    maker_fee_ppm = max(0, config.maker_fee_ppm) if liquidation else config.maker_fee_ppm
    fills_max = state.config.fills_per_order_max
    oi = market.open_interest_lots
    oi_max = config.open_interest_lots_max
    taker_position = taker_group.positions.get(market_id)
    taker_size = 0 if taker_position is None else taker_position.size_lots
    makers: list[_MakerDelta] = []  # one per maker group met (see ``_maker_delta``)
    remaining = size_lots
    # planning never mutates the book, so the price list is walked in place by index, best
    # first (a native loop: no ``reversed`` object, no boxed prices from a generic iterator)
    if is_buy:
        levels = book.asks
        prices = book.ask_prices
        price_index = 0
        price_step = 1
    else:
        levels = book.bids
        prices = book.bid_prices
        price_index = len(prices) - 1
        price_step = -1
    price_count = len(prices)
    # the list's elements are the level dict's key objects (``OrderBook.add``): a level is
    # found by the element itself, an identity hit, not by a freshly boxed equal int
    price_keys = cast("list[Any]", prices)
    while 0 <= price_index < price_count:
        price_key: Any = price_keys[price_index]
        price: int = price_key
        price_index += price_step
        if (price > limit_price_ticks) if is_buy else (price < limit_price_ticks):
            break
        # the value of one lot at this price, >= 0: a fill's quote is fill x this, so every
        # product has non-negative factors (the compiled build's native multiply)
        lot_quantums = price * quantums_per_lot_tick
        order: Order | None = levels[price_key].head
        while order is not None:
            maker_sub = order.subaccount
            if maker_sub.owner == taker_owner:
                if liquidation:
                    order = order.next
                    continue
                if len(plan.steps) >= fills_max:
                    plan.stop_reason = _FILL_LIMIT
                    return plan
                if self_trade != _EXPIRE_TAKER:
                    plan.steps.append(MatchStep(order, 0, _SELF_TRADE, 0, 0))
                if self_trade != _EXPIRE_MAKER:
                    plan.stop_reason = _SELF_TRADE
                    return plan
                order = order.next
                continue
            if len(plan.steps) >= fills_max:
                plan.stop_reason = _FILL_LIMIT
                return plan
            fill = remaining if remaining < order.size_lots else order.size_lots
            signed = fill if is_buy else -fill  # the taker's position change
            maker_group = order.position.group
            delta = _maker_delta(makers, maker_group)
            maker_size = order.position.size_lots + delta.size_lots
            oi_change = _oi_change_lots(taker_size, maker_size, signed)
            capped = oi_change > 0 and oi + oi_change > oi_max
            if capped:
                fill = _largest_fill_under_cap(taker_size, maker_size, is_buy, fill, oi_max - oi)
                if fill == 0:
                    plan.stop_reason = _OPEN_INTEREST_CAP
                    plan.oi_delta_lots = oi - market.open_interest_lots
                    return plan
                signed = fill if is_buy else -fill
                oi_change = _oi_change_lots(taker_size, maker_size, signed)
            notional = fill * lot_quantums
            quote = notional if is_buy else -notional  # signed * price * quantums_per_lot_tick
            maker_fee = fee_quantums(notional, maker_fee_ppm)
            bid_change = -fill if order.is_buy else 0
            ask_change = 0 if order.is_buy else -fill
            if not _maker_acceptable(markets, market, delta, order.position, market_id,
                                     delta.size_lots - signed, delta.bid_lots + bid_change,
                                     delta.ask_lots + ask_change,
                                     delta.collateral_quantums + quote - maker_fee):
                plan.steps.append(MatchStep(order, 0, _MAKER_MARGIN, 0, 0))
                order = order.next
                continue
            delta.size_lots -= signed
            delta.bid_lots += bid_change
            delta.ask_lots += ask_change
            delta.collateral_quantums += quote - maker_fee
            taker_fee = fee_quantums(notional, taker_fee_ppm)
            plan.steps.append(MatchStep(order, fill, 0, maker_fee, taker_fee))
            plan.filled_lots += fill
            plan.quote_quantums += quote
            plan.taker_fee_quantums += taker_fee
            oi += oi_change
            taker_size += signed
            remaining -= fill
            if capped and remaining:  # the cap binds: the rest of the order cannot fill
                plan.stop_reason = _OPEN_INTEREST_CAP
                plan.oi_delta_lots = oi - market.open_interest_lots
                return plan
            if remaining == 0:
                plan.oi_delta_lots = oi - market.open_interest_lots
                return plan
            order = order.next
    plan.oi_delta_lots = oi - market.open_interest_lots
    return plan


def apply_plan(state: State, market: MarketState, plan: MatchPlan, taker_position: Position,
               taker_is_buy: bool, taker_order_id: int, taker_fees_to_insurance: bool,
               taker_fee_cap_quantums: int, events: list[object]) -> int:
    """Mutate the book, positions and balances as planned; returns the taker fees charged.

    The taker's fees go to the fee pool, or, for a liquidation, to the insurance fund as the
    penalty, capped at ``taker_fee_cap_quantums`` so the penalty never creates a deficit.
    """
    market_id = market.config.market_id
    quantums_per_lot_tick = market.quantums_per_lot_tick
    taker_group = taker_position.group
    taker_sub = taker_group.subaccount
    fee_cap_left = taker_fee_cap_quantums
    fees_charged = 0
    maker_fees = 0
    filled = False
    for step in plan.steps:
        order = step.order
        cancel_reason = step.cancel_reason
        if cancel_reason:
            events.append(OrderCancelled(order.order_id, market_id, order.size_lots,
                                          cancel_reason))
            # a self-trade expiry may remove the taker's own order: keep the taker's position
            # record attached, since the taker settles into it next (the caller releases it)
            remove_resting_order(state, market, order,
                                 release=order.position is not taker_position)
            continue
        fill = step.fill_lots
        maker_fee = step.maker_fee_quantums
        planned_taker_fee = step.taker_fee_quantums
        price = order.price_ticks
        maker_position = order.position
        # marks the maker's subaccount touched (the trade below is settled unmarked)
        assert order.subaccount is maker_position.group.subaccount
        consume_maker_lots(state, market, order, fill)
        signed = fill if taker_is_buy else -fill
        # signed * price * quantums_per_lot_tick, multiplied with non-negative factors (a
        # negative factor takes the compiled build's slow, boxed multiply)
        notional = fill * price * quantums_per_lot_tick
        quote = notional if taker_is_buy else -notional
        taker_fee = planned_taker_fee if planned_taker_fee < fee_cap_left else fee_cap_left
        fee_cap_left -= taker_fee
        filled = True
        settle_trade_side_unmarked(market, taker_position, signed, quote, taker_fee)
        settle_trade_side_unmarked(market, maker_position, -signed, -quote, maker_fee)
        release_position_if_empty(maker_position)
        fees_charged += taker_fee
        maker_fees += maker_fee
        maker_sub = maker_position.group.subaccount
        events.append(Fill(market_id, order.order_id, taker_order_id, maker_sub.owner,
                           maker_sub.number, taker_sub.owner, taker_sub.number, taker_is_buy,
                           price, fill, maker_fee, taker_fee))
    if filled:  # the marks settle_trade_side would set per fill, set once
        mark_subaccount(state, taker_sub)
        state.touched_markets.add(market_id)
    if taker_fees_to_insurance:
        state.insurance.cross.collateral_quantums += fees_charged
        state.fee_pool_quantums += maker_fees
    else:
        state.fee_pool_quantums += fees_charged + maker_fees
    assert state.fee_pool_quantums >= 0, "the fee pool never pays out more than it took"
    if market.option is not None and state.quotes:
        record_quote_fills(state, market, plan.steps, events)  # market-maker protection
    return fees_charged

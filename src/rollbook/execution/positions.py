"""Position and resting-order bookkeeping: the only code that mutates positions and the book.

Every fill moves collateral between exactly two groups (the buyer pays the notional, the seller
receives it) plus fees to the fee pool or a penalty to the insurance fund, so conservation is
exact by construction. Long open interest is tracked incrementally; short open interest equals
it because every fill changes the two sides by opposite amounts.

Entry notional (used only by the withdrawal rule and for display) follows the position:
increases add the fill's exact notional, reductions scale it proportionally, a flip restarts
it at the trade's price. Scaling rounds toward negative infinity: a smaller entry notional never
overstates what the withdrawal rule lets leave (venue-favourable for longs and shorts alike).
"""

from __future__ import annotations

from rollbook.execution.state import (
    MarginGroup,
    MarketState,
    Order,
    Position,
    State,
    Subaccount,
    mark_order,
    mark_subaccount,
)
from rollbook.execution.units import abs_int, mul_div_floor

__all__ = [
    "consume_maker_lots",
    "ensure_position",
    "release_position_if_empty",
    "remove_resting_order",
    "rest_order",
    "settle_trade_side",
    "settle_trade_side_unmarked",
    "shrink_resting_order",
]


def ensure_position(group: MarginGroup, market_id: int, is_option: bool = False) -> Position:
    """The group's record in ``market_id``, created if absent (``is_option``: an option market,
    counted in ``group.option_positions`` so margin picks the options engine)."""
    position = group.positions.get(market_id)
    if position is None:
        position = Position(market_id, group, is_option)
        group.positions[market_id] = position
        if is_option:
            group.option_positions += 1
            group.uses_engine = True
    return position


def release_position_if_empty(position: Position) -> None:
    if position.is_empty():
        group = position.group
        if group.positions.get(position.market_id) is position:
            del group.positions[position.market_id]
            if position.is_option:
                group.option_positions -= 1
                group.uses_engine = bool(group.option_positions) or group.portfolio_margin


def settle_trade_side(state: State, market: MarketState, position: Position,
                      size_lots_signed: int, quote_quantums_signed: int,
                      fee_quantums: int) -> None:
    """Apply one side of a trade: ``size_lots_signed`` > 0 buys, paying ``quote``."""
    mark_subaccount(state, position.group.subaccount)
    state.touched_markets.add(position.market_id)
    settle_trade_side_unmarked(market, position, size_lots_signed, quote_quantums_signed,
                               fee_quantums)


def settle_trade_side_unmarked(market: MarketState, position: Position, size_lots_signed: int,
                               quote_quantums_signed: int, fee_quantums: int) -> None:
    """``settle_trade_side`` without marking the subaccount and the market touched.

    For a caller that marks them once for many trades (a sweep marks the taker and the market
    once, and each maker's order removal or shrink marks the maker): the marks are stamp checks,
    a fixed part of every fill otherwise.
    """
    assert size_lots_signed != 0
    group = position.group
    group.collateral_quantums -= quote_quantums_signed + fee_quantums
    old = position.size_lots
    new = old + size_lots_signed
    if old == 0 or (old > 0) == (size_lots_signed > 0):
        position.entry_notional_quantums += quote_quantums_signed
    elif (new > 0) == (old > 0) or new == 0:
        # proportional reduction: entry * new / old, rounded toward zero (the magnitudes by
        # negation, not by multiplying with a sign: a negative factor takes the compiled
        # build's slow, boxed multiply)
        position.entry_notional_quantums = mul_div_floor(
            position.entry_notional_quantums, new if old > 0 else -new, abs_int(old))
    else:
        # flip: what remains was opened at this trade's average price, quote * new / size,
        # rounded toward zero. Exact for book fills (quote is size x a whole per-lot price);
        # a backstop takes a position at the bankruptcy quote, which need not be a multiple
        # of its size, so the division cannot be assumed exact.
        position.entry_notional_quantums = mul_div_floor(
            quote_quantums_signed, new if size_lots_signed > 0 else -new,
            abs_int(size_lots_signed))
    position.size_lots = new
    # max_int(new, 0) - max_int(old, 0), as inline comparisons (every fill settles two sides)
    market.open_interest_lots += (new if new > 0 else 0) - (old if old > 0 else 0)
    key = group.key
    if new == 0:
        market.holders.pop(key, None)
    elif old == 0:
        market.holders[key] = position


def rest_order(state: State, market: MarketState, subaccount: Subaccount, position: Position,
               order: Order) -> None:
    market.book.add(order)
    mark_order(state, order)
    mark_subaccount(state, subaccount)
    if order.is_buy:
        position.open_bid_lots += order.size_lots
    else:
        position.open_ask_lots += order.size_lots
    order_key = order.key  # one int object for both dicts' keys (see ``Order.key``)
    subaccount.orders[order_key] = order
    if order.client_order_id:
        subaccount.client_orders[order.client_order_id] = order
    state.orders[order_key] = order


def remove_resting_order(state: State, market: MarketState, order: Order,
                         release: bool = True) -> None:
    """Take ``order`` off the book and release its margin reservation.

    ``release=False`` keeps an emptied position record alive for a settlement that follows.
    """
    market.book.remove(order)
    subaccount = order.subaccount
    mark_order(state, order)
    mark_subaccount(state, subaccount)
    position = order.position
    if order.is_buy:
        position.open_bid_lots -= order.size_lots
    else:
        position.open_ask_lots -= order.size_lots
    order_key = order.key  # the dicts' own key object: identity hits (see ``Order.key``)
    del subaccount.orders[order_key]
    if order.client_order_id:
        del subaccount.client_orders[order.client_order_id]
    del state.orders[order_key]
    if release:
        release_position_if_empty(position)


def consume_maker_lots(state: State, market: MarketState, order: Order, size_lots: int) -> None:
    """A maker order filled ``size_lots``: shrink it or, when exhausted, remove it."""
    if size_lots == order.size_lots:
        remove_resting_order(state, market, order, release=False)
        return
    shrink_resting_order(state, market, order, size_lots)


def shrink_resting_order(state: State, market: MarketState, order: Order,
                         size_lots: int) -> None:
    """Take ``size_lots`` off a resting order in place (it keeps its priority)."""
    market.book.reduce(order, size_lots)
    mark_order(state, order)
    mark_subaccount(state, order.subaccount)
    if order.is_buy:
        order.position.open_bid_lots -= size_lots
    else:
        order.position.open_ask_lots -= size_lots

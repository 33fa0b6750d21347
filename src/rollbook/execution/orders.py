"""Order transactions: place (every type), cancel, cancel by client id, cancel all, modify.

Validation happens first and raises ``TxRejected`` before anything is mutated; matching is
planned read-only (``matching.plan_match``); the taker's margin is checked on the planned
deltas; only then is the plan applied and the remainder rested. So each handler is atomic.

Semantics:
- GTC rests its remainder; IOC and market orders cancel it; FOK is rejected unless it fills
  completely; post-only is rejected if it would take.
- Market orders are IOC (or FOK) with a mandatory worst-price bound in ``price_ticks``; limit
  prices must lie inside the market's oracle band (Mango 2022), market bounds need not.
- Reduce-only orders must be IOC, FOK or market (as on dYdX v4) and may not exceed the position
  or increase it; a resting reduce-only order could otherwise turn into an opening order.
- Modify is cancel-replace under a new order id (the client order id carries over); priority
  is kept, in place, only when the price is unchanged and the size decreases.
"""

from __future__ import annotations

from typing import Final

from rollbook.execution.config import POSITIONS_PER_SUBACCOUNT_MAX
from rollbook.execution.errors import ErrorCode, TxRejected
from rollbook.execution.events import CancelReason
from rollbook.execution.margin import change_acceptable, group_risk, meets_initial_after
from rollbook.execution.matching import MatchPlan, apply_plan, plan_match
from rollbook.execution.options.engine import option_priced
from rollbook.execution.positions import (
    ensure_position,
    release_position_if_empty,
    remove_resting_order,
    rest_order,
    shrink_resting_order,
)
from rollbook.execution.receipts import OrderCancelled, OrderPlaced, OrderReduced
from rollbook.execution.state import (
    PRIMARY_SUBACCOUNT,
    MarginGroup,
    MarketState,
    Order,
    Position,
    State,
    Subaccount,
)
from rollbook.execution.txs import (
    ALL_MARKETS,
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    ModifyOrder,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from rollbook.execution.units import PPM, abs_int, mul

__all__ = [
    "PRICE_TICKS_MAX",
    "cancel_all",
    "cancel_order",
    "cancel_order_by_client_id",
    "cancel_orders_of_group_markets",
    "check_price_and_size",
    "modify_order",
    "place_order",
    "require_subaccount",
    "require_tradable_market",
]

CLIENT_ORDER_ID_MAX: Final = 2**64 - 1
PRICE_TICKS_MAX: Final = 2**48


def require_subaccount(state: State, owner: bytes, number: int) -> Subaccount:
    if number == PRIMARY_SUBACCOUNT:  # the common case: one lookup (see ``State``)
        sub = state.primary_subaccounts.get(owner)
    else:
        numbers = state.owners.get(owner)  # ``State.subaccount``, inlined: a hot path
        sub = None if numbers is None else numbers.get(number)
    # the insurance fund's owner has no other subaccount (deposits and transfers refuse its
    # address, and it is the only one the genesis creates), so an identity test stands in for
    # comparing the owner's bytes
    if sub is None or sub is state.insurance:
        raise TxRejected(ErrorCode.ACCOUNT_NOT_FOUND)
    return sub


def require_tradable_market(state: State, market_id: int) -> MarketState:
    market = state.markets.get(market_id)
    if market is None:
        raise TxRejected(ErrorCode.UNKNOWN_MARKET, f"market {market_id}")
    if market.option is not None:
        _require_option_tradable(state, market)
    elif market.index_price_quantums == 0:
        raise TxRejected(ErrorCode.ORACLE_PRICE_MISSING, f"market {market_id}")
    return market


def _require_option_tradable(state: State, market: MarketState) -> None:
    """An option trades from its first smile until expiry (its mark may legitimately be 0)."""
    option = market.option
    assert option is not None
    spec = option.spec
    if state.timestamp_ms >= spec.expiry_ms:
        raise TxRejected(ErrorCode.MARKET_NOT_ACTIVE, f"market {market.config.market_id} expired")
    if not option_priced(state, spec):
        raise TxRejected(ErrorCode.ORACLE_PRICE_MISSING,
                         f"market {market.config.market_id} has no volatility smile")


def check_price_and_size(market: MarketState, price_ticks: int, size_lots: int,
                          in_band: bool) -> None:
    if not 0 < price_ticks <= PRICE_TICKS_MAX:
        raise TxRejected(ErrorCode.INVALID_PRICE)
    if size_lots <= 0:
        raise TxRejected(ErrorCode.INVALID_SIZE)
    config = market.config
    if size_lots > config.order_size_lots_max:
        raise TxRejected(ErrorCode.ORDER_SIZE_ABOVE_MAX,
                         f"{size_lots} > {config.order_size_lots_max} lots")
    if in_band:
        index = market.index_price_quantums  # the mark: the index of a perpetual
        offset = mul(price_ticks, config.tick_size_quantums) - index
        distance = mul(offset if offset >= 0 else -offset, PPM)  # abs_int, inline
        band = mul(config.price_band_ppm, index)
        # the allowance (options only) is read only for prices outside the mark's band
        if distance > band and distance > band + market.band_allowance_ppm_quantums:
            raise TxRejected(ErrorCode.PRICE_OUTSIDE_BAND)


# Plain ints for the enums the hot path compares against (enum attribute access costs ~0.1 us),
# written as literals: the compiled build inlines a literal ``Final`` as a constant, where a
# computed one (``int(Side.BUY)``) is a module attribute read and checked at every use. The
# asserts below tie each literal to its enum.
_BUY: Final = 1
_LIMIT: Final = 1
_MARKET: Final = 2
_GTC: Final = 1
_IOC: Final = 2
_FOK: Final = 3
_POST_ONLY: Final = 4
assert (_BUY, _LIMIT, _MARKET, _GTC, _IOC, _FOK, _POST_ONLY) == (
    Side.BUY, OrderType.LIMIT, OrderType.MARKET, TimeInForce.GTC, TimeInForce.IOC,
    TimeInForce.FOK, TimeInForce.POST_ONLY)
# each enum's values are contiguous, so membership is a range check on the int (an IntEnum
# member hashes through Python-level Enum.__hash__, which a set lookup would call)
_SELF_TRADE_MIN: Final = 1
_SELF_TRADE_MAX: Final = 3
_SIDE_MIN: Final = 1
_SIDE_MAX: Final = 2
_TIF_MIN: Final = 1
_TIF_MAX: Final = 4
assert all(set(range(low, high + 1)) == {int(m) for m in enum} for low, high, enum in (
    (_SELF_TRADE_MIN, _SELF_TRADE_MAX, SelfTradePrevention), (_SIDE_MIN, _SIDE_MAX, Side),
    (_TIF_MIN, _TIF_MAX, TimeInForce)))
CLIENT_ORDER_ID_BITS: Final = 64
assert CLIENT_ORDER_ID_MAX.bit_length() == CLIENT_ORDER_ID_BITS
# enum members read once (a class attribute of an interpreted Enum is a slow lookup)
_CANCELLED_BY_USER: Final = CancelReason.USER
_CANCELLED_BY_MODIFY: Final = CancelReason.MODIFIED
_IOC_REMAINDER: Final = CancelReason.IOC_REMAINDER


def place_order(state: State, tx: PlaceOrder, events: list[object]) -> None:
    sub = require_subaccount(state, tx.owner, tx.subaccount)
    market = require_tradable_market(state, tx.market_id)
    # the enum fields as plain ints: compared natively in the compiled build
    tif: int = tx.time_in_force
    order_type: int = tx.order_type
    side: int = tx.side
    self_trade: int = tx.self_trade
    client_order_id = tx.client_order_id
    if order_type == _MARKET:
        if tif != _IOC and tif != _FOK:
            raise TxRejected(ErrorCode.INVALID_ORDER_TYPE, "market orders are IOC or FOK")
    elif order_type != _LIMIT:
        raise TxRejected(ErrorCode.INVALID_ORDER_TYPE)
    if tx.reduce_only and tif in (_GTC, _POST_ONLY):
        raise TxRejected(ErrorCode.REDUCE_ONLY_NOT_IOC)
    # 0 <= id <= CLIENT_ORDER_ID_MAX, without comparing against a constant above 2**62
    if client_order_id < 0 or client_order_id.bit_length() > CLIENT_ORDER_ID_BITS:
        raise TxRejected(ErrorCode.MALFORMED_TRANSACTION, "client order id")
    if not (_SELF_TRADE_MIN <= self_trade <= _SELF_TRADE_MAX and _SIDE_MIN <= side <= _SIDE_MAX
            and _TIF_MIN <= tif <= _TIF_MAX):
        raise TxRejected(ErrorCode.MALFORMED_TRANSACTION, "side, time in force or self-trade")
    check_price_and_size(market, tx.price_ticks, tx.size_lots, order_type == _LIMIT)
    _submit(state, sub, market, side == _BUY, tx.price_ticks, tx.size_lots, tif,
            tx.reduce_only, client_order_id, self_trade, None, events)


def _crosses(market: MarketState, is_buy: bool, price_ticks: int) -> bool:
    book = market.book
    if is_buy:
        return bool(book.ask_prices) and book.ask_prices[0] <= price_ticks
    return bool(book.bid_prices) and book.bid_prices[-1] >= price_ticks


def _submit(state: State, sub: Subaccount, market: MarketState, is_buy: bool, price_ticks: int,
            size_lots: int, tif: int, reduce_only: bool, client_order_id: int, self_trade: int,
            replaces: Order | None, events: list[object]) -> None:
    """Plan, check and apply one order; ``replaces`` is an order a modify cancels."""
    market_id = market.config.market_id
    group = sub.group_for(market_id)
    position = group.positions.get(market_id)
    existing = sub.client_orders.get(client_order_id) if client_order_id else None
    if existing is not None and existing is not replaces:
        raise TxRejected(ErrorCode.DUPLICATE_CLIENT_ORDER_ID)
    if position is None and sub.position_record_count() >= POSITIONS_PER_SUBACCOUNT_MAX:
        raise TxRejected(ErrorCode.POSITIONS_LIMIT, f"{POSITIONS_PER_SUBACCOUNT_MAX} markets")
    if reduce_only:
        position_lots = 0 if position is None else position.size_lots
        if (position_lots == 0 or (position_lots > 0) == is_buy
                or size_lots > abs_int(position_lots)):
            raise TxRejected(ErrorCode.REDUCE_ONLY_WOULD_INCREASE)
    crosses = _crosses(market, is_buy, price_ticks)
    if tif == _POST_ONLY and crosses:
        raise TxRejected(ErrorCode.POST_ONLY_WOULD_CROSS)
    plan = plan_match(state, market, group, sub.owner, is_buy, price_ticks, size_lots,
                      self_trade, market.config.taker_fee_ppm, False) if crosses else None
    filled = 0 if plan is None else plan.filled_lots
    if tif == _FOK and filled < size_lots:
        raise TxRejected(ErrorCode.FOK_NOT_FILLED, f"{filled} of {size_lots} lots available")
    rests = tif in (_GTC, _POST_ONLY) and filled < size_lots and (
        plan is None or plan.stop_reason == 0)
    rest_lots = size_lots - filled if rests else 0
    if rests and len(sub.orders) - (replaces is not None) >= (
            state.config.open_orders_per_subaccount_max):
        raise TxRejected(ErrorCode.OPEN_ORDERS_LIMIT)
    _check_taker_margin(state, market, group, position, is_buy, plan, rest_lots, replaces)
    order_id = state.next_order_id
    state.next_order_id = order_id + 1
    if replaces is not None:
        events.append(OrderCancelled(replaces.order_id, market_id, replaces.size_lots,
                                      _CANCELLED_BY_MODIFY))
        remove_resting_order(state, market, replaces)
    if position is None or replaces is not None:  # else the record is still the group's
        position = ensure_position(group, market_id, market.option is not None)
    if plan is not None:
        apply_plan(state, market, plan, position, is_buy, order_id, False,
                   plan.taker_fee_quantums, events)
    if rest_lots:
        order = Order(order_id, sub, position, market_id, is_buy, price_ticks, rest_lots,
                      client_order_id, tif == _POST_ONLY, self_trade)
        rest_order(state, market, sub, position, order)
        events.append(OrderPlaced(order_id, market_id, sub.owner, sub.number, is_buy,
                                  price_ticks, rest_lots, client_order_id))
    else:
        unfilled = size_lots - filled
        if unfilled:
            reason = _IOC_REMAINDER if plan is None or plan.stop_reason == 0 else (
                plan.stop_reason)
            events.append(OrderCancelled(order_id, market_id, unfilled, reason))
        release_position_if_empty(position)


def _worst_case_not_increased(position: Position | None, d_bid_lots: int,
                              d_ask_lots: int) -> bool:
    """Adding these open lots leaves max(|size + bids|, |size - asks|) where it was."""
    if position is None:
        return d_bid_lots <= 0 and d_ask_lots <= 0
    size = position.size_lots
    long_before = size + position.open_bid_lots
    short_before = size - position.open_ask_lots
    long_after = long_before + d_bid_lots
    short_after = short_before - d_ask_lots
    # max_abs_int's comparisons written out: this runs for every resting order, and two calls
    # of it cost a third of the check in the compiled build
    if long_before < 0:
        long_before = -long_before
    if short_before < 0:
        short_before = -short_before
    worst_before = long_before if long_before >= short_before else short_before
    return (-worst_before <= long_after <= worst_before
            and -worst_before <= short_after <= worst_before)


def _check_taker_margin(state: State, market: MarketState, group: MarginGroup,
                        position: Position | None, is_buy: bool, plan: MatchPlan | None,
                        rest_lots: int, replaces: Order | None) -> None:
    market_id = market.config.market_id
    d_bid = rest_lots if is_buy else 0
    d_ask = 0 if is_buy else rest_lots
    if replaces is not None:
        if replaces.is_buy:
            d_bid -= replaces.size_lots
        else:
            d_ask -= replaces.size_lots
    if (plan is None and _worst_case_not_increased(position, d_bid, d_ask)
            and not group.uses_engine and market.option is None):
        # equity, maintenance and (monotone in worst-case lots) initial margin are unchanged or
        # lower: the rule's "nothing got worse" clause accepts it without any arithmetic (on the
        # tiered path only: a portfolio sums orders across instruments)
        return
    d_size = 0
    d_collateral = 0
    if plan is not None:
        d_size = plan.filled_lots if is_buy else -plan.filled_lots
        d_collateral = -plan.quote_quantums - plan.taker_fee_quantums
    markets = state.markets
    if meets_initial_after(markets, group, market_id, d_size, d_bid, d_ask, d_collateral,
                           market, position):
        return  # the rule's first clause holds; the full rule below is for the rest
    before = group_risk(markets, group)
    after = group_risk(markets, group, market_id, d_size, d_bid, d_ask, d_collateral)
    if not change_acceptable(before, after):
        raise TxRejected(ErrorCode.INSUFFICIENT_MARGIN,
                         f"equity {after.equity_quantums} < initial {after.initial_quantums}")
    # the sweep stops at the cap, so a plan never breaches it
    assert plan is None or plan.oi_delta_lots <= 0 or (
        market.open_interest_lots + plan.oi_delta_lots <= market.config.open_interest_lots_max)


def _owned_order(sub: Subaccount, order_id: int) -> Order:
    order = sub.orders.get(order_id)
    if order is None:
        raise TxRejected(ErrorCode.ORDER_NOT_FOUND, f"order {order_id}")
    return order


def _cancel(state: State, order: Order, events: list[object]) -> None:
    events.append(OrderCancelled(order.order_id, order.market_id, order.size_lots,
                                  _CANCELLED_BY_USER))
    remove_resting_order(state, state.markets[order.market_id], order)


def cancel_order(state: State, tx: CancelOrder, events: list[object]) -> None:
    sub = require_subaccount(state, tx.owner, tx.subaccount)
    _cancel(state, _owned_order(sub, tx.order_id), events)


def cancel_order_by_client_id(state: State, tx: CancelOrderByClientId,
                              events: list[object]) -> None:
    sub = require_subaccount(state, tx.owner, tx.subaccount)
    order = sub.client_orders.get(tx.client_order_id) if tx.client_order_id else None
    if order is None:
        raise TxRejected(ErrorCode.ORDER_NOT_FOUND, f"client order {tx.client_order_id}")
    _cancel(state, order, events)


def cancel_all(state: State, tx: CancelAll, events: list[object]) -> None:
    sub = require_subaccount(state, tx.owner, tx.subaccount)
    if tx.market_id != ALL_MARKETS and tx.market_id not in state.markets:
        raise TxRejected(ErrorCode.UNKNOWN_MARKET, f"market {tx.market_id}")
    for order in list(sub.orders.values()):
        if tx.market_id == ALL_MARKETS or order.market_id == tx.market_id:
            _cancel(state, order, events)


def cancel_orders_of_group_markets(state: State, sub: Subaccount, market_ids: set[int] | None,
                                   reason: int, events: list[object]) -> None:
    """Cancel a subaccount's orders in ``market_ids`` (all when None), oldest first."""
    for order in list(sub.orders.values()):
        if market_ids is None or order.market_id in market_ids:
            events.append(OrderCancelled(order.order_id, order.market_id, order.size_lots,
                                          reason))
            remove_resting_order(state, state.markets[order.market_id], order)


def modify_order(state: State, tx: ModifyOrder, events: list[object]) -> None:
    sub = require_subaccount(state, tx.owner, tx.subaccount)
    order = _owned_order(sub, tx.order_id)
    market = require_tradable_market(state, order.market_id)
    if tx.price_ticks == order.price_ticks and tx.size_lots == order.size_lots:
        raise TxRejected(ErrorCode.MODIFY_NOTHING)
    if tx.price_ticks == order.price_ticks and 0 < tx.size_lots < order.size_lots:
        # a pure size decrease only lowers risk: no band check, the order keeps its priority
        removed = order.size_lots - tx.size_lots
        shrink_resting_order(state, market, order, removed)
        events.append(OrderReduced(order.order_id, order.market_id, removed, tx.size_lots))
        return
    check_price_and_size(market, tx.price_ticks, tx.size_lots, True)
    tif = _POST_ONLY if order.post_only else _GTC
    _submit(state, sub, market, order.is_buy, tx.price_ticks, tx.size_lots, tif, False,
            order.client_order_id, order.self_trade, order, events)

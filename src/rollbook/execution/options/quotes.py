"""Quote transactions: ``MassQuote`` (replace a whole ladder at once) and ``SetMmp``.

MassQuote: the subaccount's quotes on one underlying (its ladder) are replaced by the
transaction's quotes, all or nothing. Every quote is a post-only GTC order in an option market
of that index; validation and the margin check happen before anything changes:

- at most ``MASS_QUOTE_QUOTES_MAX`` quotes; each in a tradable option market of the index
  (``MASS_QUOTE_INVALID`` otherwise), a valid side, a price and size as for any limit order;
- no quote may take liquidity from the book as it will be once the old ladder is gone
  (``POST_ONLY_WOULD_CROSS``), nor cross another quote of the same transaction;
- the open-order and position-record limits hold after the replacement;
- each margin group involved meets the acceptance rule (``margin.change_acceptable``) with the
  old quotes' reservations replaced by the new ones (``options.engine`` on all markets at once);
- refused while market-maker protection has frozen quoting on the index (``MMP_FROZEN``).

Then the old quotes still resting are cancelled (``QUOTE_REPLACED``) and the new ones rest in
transaction order, taking consecutive order ids. An empty quote list pulls the ladder.

SetMmp: installs (or, with every limit 0, removes) protection for the subaccount's quotes on an
index; installing it again forgets the window and lifts a freeze. See ``options.protection``.
"""

from __future__ import annotations

from rollbook.execution.config import POSITIONS_PER_SUBACCOUNT_MAX
from rollbook.execution.errors import ErrorCode, TxRejected
from rollbook.execution.events import CancelReason, OrderCancelled, OrderPlaced
from rollbook.execution.margin import change_acceptable, group_risk
from rollbook.execution.options.engine import options_group_risk
from rollbook.execution.options.mmp import MmpConfig, MmpWindow
from rollbook.execution.options.protection import (
    MASS_QUOTE_QUOTES_MAX,
    MMP_FILLS_IN_WINDOW_STF_MAX,
)
from rollbook.execution.orders import (
    check_price_and_size,
    require_subaccount,
    require_tradable_market,
)
from rollbook.execution.positions import ensure_position, remove_resting_order, rest_order
from rollbook.execution.state import (
    GroupKey,
    MarginGroup,
    MarketState,
    Order,
    QuoteLadder,
    State,
    Subaccount,
    mark_subaccount,
)
from rollbook.execution.txs import MassQuote, SelfTradePrevention, SetMmp, Side

__all__ = ["mass_quote", "set_mmp"]

_SIDES = frozenset(int(s) for s in Side)
_BUY = int(Side.BUY)


def _require_option_index(state: State, index_id: int) -> None:
    if state.config.option_class(index_id) is None:
        raise TxRejected(ErrorCode.OPTION_CLASS_UNKNOWN, f"index {index_id}")


def set_mmp(state: State, tx: SetMmp, events: list[object]) -> None:
    sub = require_subaccount(state, tx.owner, tx.subaccount)
    _require_option_index(state, tx.index_id)
    limits = (tx.quantity_limit_nanounits, tx.delta_limit_nanounits, tx.vega_limit_quantums)
    window: MmpWindow | None = None
    if any(limits):
        try:
            config = MmpConfig(tx.window_ms, tx.frozen_ms, limits[0] or None, limits[1] or None,
                               limits[2] or None, MMP_FILLS_IN_WINDOW_STF_MAX)
        except ValueError as error:
            raise TxRejected(ErrorCode.MMP_CONFIG_INVALID, str(error)) from error
        window = MmpWindow(config)
    elif min(limits) < 0:
        raise TxRejected(ErrorCode.MMP_CONFIG_INVALID, "negative limit")
    key = (sub.owner, sub.number, tx.index_id)
    ladder = state.quotes.get(key)
    if ladder is None:
        if window is None:
            return  # nothing configured, nothing to remove
        ladder = QuoteLadder(key)
        state.quotes[key] = ladder
    ladder.mmp = window
    if ladder.is_empty():
        del state.quotes[key]
    state.touched_quotes.add(key)


def _best_other_price(state: State, market: MarketState, is_buy: bool,
                      leaving: set[int]) -> int | None:
    """The best price of one side of the book, not counting the orders in ``leaving``."""
    book = market.book
    levels = book.bids if is_buy else book.asks
    prices = reversed(book.bid_prices) if is_buy else iter(book.ask_prices)
    for price in prices:
        order = levels[price].head
        while order is not None:
            if order.order_id not in leaving:
                return price
            order = order.next
    return None


def mass_quote(state: State, tx: MassQuote, events: list[object]) -> None:
    sub = require_subaccount(state, tx.owner, tx.subaccount)
    _require_option_index(state, tx.index_id)
    if len(tx.quotes) > MASS_QUOTE_QUOTES_MAX:
        raise TxRejected(ErrorCode.MASS_QUOTE_INVALID,
                         f"{len(tx.quotes)} > {MASS_QUOTE_QUOTES_MAX} quotes")
    key = (sub.owner, sub.number, tx.index_id)
    ladder = state.quotes.get(key)
    now_ms = state.timestamp_ms
    if ladder is not None and ladder.mmp is not None and ladder.mmp.is_frozen(now_ms):
        until = ladder.mmp.frozen_until_ms
        raise TxRejected(ErrorCode.MMP_FROZEN,
                         "until reset" if until is None else f"until {until}")
    old: list[Order] = []
    if ladder is not None:
        old = [state.orders[i] for i in ladder.quote_order_ids if i in state.orders]
    leaving = {order.order_id for order in old}
    # per market: [reservation changes (bids, asks), best new bid, best new ask]
    changes: dict[int, list[int]] = {}
    for order in old:
        change = changes.setdefault(order.market_id, [0, 0])
        change[0 if order.is_buy else 1] -= order.size_lots
    quoted: dict[tuple[int, bool], int] = {}  # (market, is_buy) -> best new price
    markets: dict[int, MarketState] = {}
    for quote in tx.quotes:
        market = require_tradable_market(state, quote.market_id)
        option = market.option
        if option is None or option.spec.index_id != tx.index_id:
            raise TxRejected(ErrorCode.MASS_QUOTE_INVALID,
                             f"market {quote.market_id} is not an option on index {tx.index_id}")
        if quote.side not in _SIDES:
            raise TxRejected(ErrorCode.MALFORMED_TRANSACTION, "side")
        check_price_and_size(market, quote.price_ticks, quote.size_lots, True)
        is_buy = quote.side == _BUY
        opposite = _best_other_price(state, market, not is_buy, leaving)
        if opposite is not None and (quote.price_ticks >= opposite if is_buy
                                     else quote.price_ticks <= opposite):
            raise TxRejected(ErrorCode.POST_ONLY_WOULD_CROSS, f"market {quote.market_id}")
        best = quoted.get((quote.market_id, is_buy))
        if best is None or (quote.price_ticks > best if is_buy else quote.price_ticks < best):
            quoted[(quote.market_id, is_buy)] = quote.price_ticks
        change = changes.setdefault(quote.market_id, [0, 0])
        change[0 if is_buy else 1] += quote.size_lots
        markets[quote.market_id] = market
    for (market_id, is_buy), price in quoted.items():
        if is_buy:
            best_ask = quoted.get((market_id, False))
            if best_ask is not None and price >= best_ask:
                raise TxRejected(ErrorCode.POST_ONLY_WOULD_CROSS,
                                 f"quotes cross each other in market {market_id}")
    open_orders = len(sub.orders) - len(old) + len(tx.quotes)
    if tx.quotes and open_orders > state.config.open_orders_per_subaccount_max:
        raise TxRejected(ErrorCode.OPEN_ORDERS_LIMIT)
    if _records_after(sub, old, markets) > POSITIONS_PER_SUBACCOUNT_MAX:
        raise TxRejected(ErrorCode.POSITIONS_LIMIT, f"{POSITIONS_PER_SUBACCOUNT_MAX} markets")
    _check_quote_margin(state, sub, changes)
    # apply: the old ladder goes, the new one rests
    for order in old:
        events.append(OrderCancelled(order.order_id, order.market_id, order.size_lots,
                                     CancelReason.QUOTE_REPLACED))
        remove_resting_order(state, state.markets[order.market_id], order)
    if ladder is None:
        ladder = QuoteLadder(key)
        state.quotes[key] = ladder
    ladder.quote_order_ids = []
    for quote in tx.quotes:
        market = markets[quote.market_id]
        group = sub.group_for(quote.market_id)
        position = ensure_position(group, quote.market_id, True)
        order_id = state.next_order_id
        state.next_order_id = order_id + 1
        is_buy = quote.side == _BUY
        order = Order(order_id, sub, position, quote.market_id, is_buy, quote.price_ticks,
                      quote.size_lots, 0, True, SelfTradePrevention.EXPIRE_MAKER)
        rest_order(state, market, sub, position, order)
        ladder.quote_order_ids.append(order_id)
        events.append(OrderPlaced(order_id, quote.market_id, sub.owner, sub.number, is_buy,
                                  quote.price_ticks, quote.size_lots, 0))
    if ladder.is_empty():
        del state.quotes[key]
    state.touched_quotes.add(key)
    mark_subaccount(state, sub)


def _records_after(sub: Subaccount, old: list[Order], quoted: dict[int, MarketState]) -> int:
    """Position records of ``sub`` once the old ladder is gone and the new one rests."""
    leaving: dict[int, list[int]] = {}
    for order in old:
        lots = leaving.setdefault(order.market_id, [0, 0])
        lots[0 if order.is_buy else 1] += order.size_lots
    count = 0
    for group in sub.groups():
        for market_id, position in group.positions.items():
            bids, asks = leaving.get(market_id, (0, 0))
            if (position.size_lots or position.open_bid_lots > bids
                    or position.open_ask_lots > asks or market_id in quoted):
                count += 1
    return count + sum(1 for market_id in quoted
                       if market_id not in sub.group_for(market_id).positions)


def _check_quote_margin(state: State, sub: Subaccount, changes: dict[int, list[int]]) -> None:
    """Each group's risk with the old quotes' reservations replaced by the new ones."""
    by_group: dict[GroupKey, tuple[MarginGroup, dict[int, tuple[int, int, int]]]] = {}
    for market_id, (d_bids, d_asks) in changes.items():
        group = sub.group_for(market_id)
        entry = by_group.setdefault(group.key, (group, {}))
        entry[1][market_id] = (0, d_bids, d_asks)
    markets = state.markets
    for group_key in sorted(by_group):
        group, deltas = by_group[group_key]
        after = options_group_risk(markets, group, deltas, 0)
        if after.equity_quantums >= after.initial_quantums:
            continue
        before = group_risk(markets, group)
        if not change_acceptable(before, after):
            raise TxRejected(ErrorCode.INSUFFICIENT_MARGIN,
                             f"equity {after.equity_quantums} < initial "
                             f"{after.initial_quantums}")

"""Market data: what each sequenced entry changed, published to subscribers once durable.

Two halves on two threads:

- ``MarketData`` runs on the sequencer thread, right after an entry executed, because it reads
  the live book (the size of each touched level) and positions. It turns the receipt's events
  into messages: a ``Traded`` record per fill (always: the recent trades and fills histories
  need them; the ``TradeView`` / ``FillView`` are built only when read),
  ``BookDelta`` per market with book subscribers, ``AccountEvent`` per event of an owner with
  subscribers. It keeps ``order id -> (market, side, price, owner, subaccount)`` of resting
  orders, because a cancel event names only the order id and the order has left the state by
  then. Book-delta sequence numbers are per market and consecutive.
- ``FeedHub`` runs where messages are released (the committer thread, after the WAL group that
  holds the entry is durable): it appends trades and fills to bounded histories and hands each
  subscriber's messages to its event loop in one ``call_soon_threadsafe`` per loop and release.

A ``Subscription`` is an async iterator over a bounded queue on one event loop. A subscriber
that falls ``queue_max`` messages behind is dropped: its iterator raises
``SubscriptionLagged`` (it must resubscribe, and gets a fresh snapshot), so one slow reader never
holds memory or delays anyone else. When the node stops, iterators end.

Limits: ``TRADES_KEPT_PER_MARKET`` recent trades per market, ``FILLS_KEPT_PER_ACCOUNT`` recent
fills for at most ``ACCOUNTS_WITH_FILLS_MAX`` subaccounts (least recently filled evicted first),
``SUBSCRIBER_QUEUE_MAX`` messages per subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Any

from rollbook.execution.events import (
    DepositCredited,
    Fill,
    ForcedWithdrawalProcessed,
    Liquidated,
    MmpTriggered,
    OrderCancelled,
    OrderPlaced,
    OrderReduced,
    PositionDeleveraged,
    TransferDone,
    WithdrawalQueued,
)
from rollbook.execution.state import State
from rollbook.execution.valuation import position_value_quantums
from rollbook.node.views import (
    AccountEvent,
    BookDelta,
    BookLevel,
    BookView,
    FillView,
    PositionView,
    TradeView,
)

__all__ = [
    "ACCOUNTS_WITH_FILLS_MAX",
    "FILLS_KEPT_PER_ACCOUNT",
    "SUBSCRIBER_QUEUE_DEFAULT",
    "SUBSCRIBER_QUEUE_MAX",
    "TRADES_KEPT_PER_MARKET",
    "FeedHub",
    "MarketData",
    "Subscription",
    "SubscriptionLagged",
    "Topic",
    "Traded",
    "fill_view",
    "parse_topic",
    "position_view",
    "trade_view",
]

TRADES_KEPT_PER_MARKET = 1_000
FILLS_KEPT_PER_ACCOUNT = 100
ACCOUNTS_WITH_FILLS_MAX = 100_000
SUBSCRIBER_QUEUE_DEFAULT = 10_000
SUBSCRIBER_QUEUE_MAX = 1_000_000
BOOK_DEPTH_MAX = 1_000

# ("book", market_id) | ("trades", market_id) | ("account", owner) | ("batches", None): what a
# subscriber names; and ("traded", market_id), whose message is a ``Traded`` record: it feeds
# the trades and fills histories and the ("trades", market_id) subscribers
Topic = tuple[str, Any]
SubaccountKey = tuple[bytes, int]
# A fill as the sequencer leaves it: (event, WAL sequence, batch index, batch timestamp ms).
# The histories keep these and build ``TradeView`` / ``FillView`` only when read (a query, a
# trades subscriber): three frozen dataclasses per fill cost the sequencer ~2.4 µs, for
# histories that are mostly overwritten unread under load.
Traded = tuple[Fill, int, int, int]
# a subaccount's fill history: (the fill, whether this subaccount was its maker)
_SidedFill = tuple[Traded, bool]


def trade_view(traded: Traded) -> TradeView:
    fill, sequence, batch_index, timestamp_ms = traded
    return TradeView(fill.market_id, sequence, batch_index, timestamp_ms, fill.price_ticks,
                     fill.size_lots, fill.taker_is_buy, fill.maker_order_id,
                     fill.taker_order_id)


def fill_view(traded: Traded, is_maker: bool) -> FillView:
    """The fill seen from its maker's side (``is_maker``) or its taker's."""
    fill, sequence, batch_index, _ = traded
    if is_maker:
        return FillView(fill.market_id, sequence, batch_index, fill.maker_order_id, True,
                        not fill.taker_is_buy, fill.price_ticks, fill.size_lots,
                        fill.maker_fee_quantums)
    return FillView(fill.market_id, sequence, batch_index, fill.taker_order_id, False,
                    fill.taker_is_buy, fill.price_ticks, fill.size_lots,
                    fill.taker_fee_quantums)


class SubscriptionLagged(Exception):
    """The subscriber fell too far behind and was dropped; subscribe again."""


def parse_topic(topic: str) -> Topic:
    """``book:<id>``, ``trades:<id>``, ``account:0x<40 hex>`` or ``batches``; ValueError."""
    if topic == "batches":
        return ("batches", None)
    kind, separator, argument = topic.partition(":")
    if not separator:
        raise ValueError(f"unknown topic {topic!r}")
    if kind in ("book", "trades"):
        if not argument.isdigit() or len(argument) > 5:
            raise ValueError(f"{topic!r}: the market id must be a decimal integer")
        return (kind, int(argument))
    if kind == "account":
        text = argument.removeprefix("0x")
        if len(text) != 40:
            raise ValueError(f"{topic!r}: the owner must be a 0x-prefixed 20-byte address")
        try:
            return (kind, bytes.fromhex(text))
        except ValueError as error:
            raise ValueError(f"{topic!r}: the owner is not hex") from error
    raise ValueError(f"unknown topic {topic!r}")


# --- sequencer side -----------------------------------------------------------------------------

class MarketData:
    """Turns one entry's events into messages (sequencer thread only)."""

    __slots__ = ("_book_sequence", "_resting", "account_interest", "book_interest")

    def __init__(self, state: State) -> None:
        # order id -> (market, is_buy, price, owner, subaccount), for every resting order
        self._resting: dict[int, tuple[int, bool, int, bytes, int]] = {
            order_id: (order.market_id, order.is_buy, order.price_ticks,
                       order.subaccount.owner, order.subaccount.number)
            for order_id, order in state.orders.items()}
        self._book_sequence: dict[int, int] = {}
        self.book_interest: dict[int, int] = {}  # market id -> subscribers
        self.account_interest: dict[bytes, int] = {}  # owner -> subscribers

    def interest(self, topic: Topic, change: int) -> None:
        kind, argument = topic
        table: dict[Any, int] | None = (self.book_interest if kind == "book" else
                                        self.account_interest if kind == "account" else None)
        if table is None:
            return
        count = table.get(argument, 0) + change
        if count > 0:
            table[argument] = count
        else:
            table.pop(argument, None)

    def book_sequence(self, market_id: int) -> int:
        return self._book_sequence.get(market_id, 0)

    def snapshot(self, state: State, market_id: int, depth: int, batch_index: int) -> BookView:
        book = state.markets[market_id].book
        depth = max(0, min(depth, BOOK_DEPTH_MAX))
        bids = tuple(BookLevel(price, book.bids[price].size_lots, book.bids[price].order_count)
                     for price in reversed(book.bid_prices[-depth:] if depth else []))
        asks = tuple(BookLevel(price, book.asks[price].size_lots, book.asks[price].order_count)
                     for price in book.ask_prices[:depth])
        return BookView(market_id, self.book_sequence(market_id), batch_index, bids, asks)

    def on_entry(self, state: State, events: tuple[Any, ...], sequence: int, batch_index: int,
                 timestamp_ms: int, out: list[tuple[Topic, Any]]) -> None:
        """Append ``(topic, message)`` for the entry's effects to ``out``."""
        if not events:
            return
        resting = self._resting
        # book levels and account events are only worth collecting for a subscriber: with
        # none (the common case under load) this is the trades and fills histories only
        books = bool(self.book_interest)
        owners = bool(self.account_interest)
        levels: dict[int, set[tuple[bool, int]]] | None = None
        departed: list[int] = []
        # (allocated only for an account subscriber: this runs for every entry)
        accounts: list[tuple[SubaccountKey, str, Any]] = [] if owners else _NOTHING_COLLECTED
        positions: set[tuple[bytes, int, int]] = set() if owners else _NO_POSITIONS
        for event in events:
            kind = type(event)
            if kind is Fill:
                # the views are built where (and if) they are read: see ``Traded``
                out.append((("traded", event.market_id),
                            (event, sequence, batch_index, timestamp_ms)))
                departed.append(event.maker_order_id)
                if books:
                    levels = _touch(levels, event.market_id, not event.taker_is_buy,
                                    event.price_ticks)
                if owners:
                    accounts.append(((event.maker_owner, event.maker_subaccount), "fill", event))
                    accounts.append(((event.taker_owner, event.taker_subaccount), "fill", event))
                    positions.add((event.maker_owner, event.maker_subaccount, event.market_id))
                    positions.add((event.taker_owner, event.taker_subaccount, event.market_id))
            elif kind is OrderPlaced:
                resting[event.order_id] = (event.market_id, event.is_buy, event.price_ticks,
                                           event.owner, event.subaccount)
                if books:
                    levels = _touch(levels, event.market_id, event.is_buy, event.price_ticks)
                if owners:
                    accounts.append(((event.owner, event.subaccount), "order_placed", event))
            elif kind is OrderCancelled or kind is OrderReduced:
                known = resting.get(event.order_id)
                if known is not None:
                    departed.append(event.order_id)
                    if books:
                        levels = _touch(levels, known[0], known[1], known[2])
                    if owners:
                        name = "order_cancelled" if kind is OrderCancelled else "order_reduced"
                        accounts.append(((known[3], known[4]), name, event))
            elif kind is MmpTriggered:
                for order_id in event.cancelled_order_ids:
                    known = resting.get(order_id)
                    if known is not None:
                        departed.append(order_id)
                        if books:
                            levels = _touch(levels, known[0], known[1], known[2])
            elif owners:
                _account_events(event, accounts, positions)
        orders = state.orders
        for order_id in departed:
            if order_id not in orders:
                resting.pop(order_id, None)
        if levels is not None:
            self._book_deltas(state, levels, sequence, batch_index, out)
        if owners:
            self._account_messages(state, accounts, positions, sequence, batch_index, out)

    def _book_deltas(self, state: State, levels: dict[int, set[tuple[bool, int]]],
                     sequence: int, batch_index: int, out: list[tuple[Topic, Any]]) -> None:
        for market_id, touched in levels.items():
            if market_id not in self.book_interest:
                continue
            book = state.markets[market_id].book
            bids: list[tuple[int, int]] = []
            asks: list[tuple[int, int]] = []
            for is_buy, price in sorted(touched):
                level = (book.bids if is_buy else book.asks).get(price)
                (bids if is_buy else asks).append((price, 0 if level is None else level.size_lots))
            number = self._book_sequence.get(market_id, 0) + 1
            self._book_sequence[market_id] = number
            out.append((("book", market_id), BookDelta(market_id, number, batch_index,
                                                        tuple(bids), tuple(asks))))

    def _account_messages(self, state: State, accounts: list[tuple[SubaccountKey, str, Any]],
                          positions: set[tuple[bytes, int, int]], sequence: int,
                          batch_index: int, out: list[tuple[Topic, Any]]) -> None:
        interest = self.account_interest
        for (owner, number), kind, event in accounts:
            if owner in interest:
                out.append((("account", owner), AccountEvent(owner, number, sequence,
                                                             batch_index, kind, event)))
        for owner, number, market_id in sorted(positions):
            if owner in interest:
                view = position_view(state, owner, number, market_id)
                if view is not None:
                    out.append((("account", owner), AccountEvent(
                        owner, number, sequence, batch_index, "position", view)))


# stand-ins for the account collections while nobody subscribes to an account: never written
# (every write is under ``if owners``), so sharing them is safe
_NOTHING_COLLECTED: list[tuple[SubaccountKey, str, Any]] = []
_NO_POSITIONS: set[tuple[bytes, int, int]] = set()


def _touch(levels: dict[int, set[tuple[bool, int]]] | None, market_id: int, is_buy: bool,
           price: int) -> dict[int, set[tuple[bool, int]]]:
    if levels is None:
        levels = {}
    levels.setdefault(market_id, set()).add((is_buy, price))
    return levels


def _account_events(event: Any, accounts: list[tuple[SubaccountKey, str, Any]],
                    positions: set[tuple[bytes, int, int]]) -> None:
    kind = type(event)
    if kind is DepositCredited:
        accounts.append(((event.owner, event.subaccount), "deposit", event))
    elif kind is WithdrawalQueued:
        accounts.append(((event.owner, event.subaccount), "withdrawal", event))
    elif kind is ForcedWithdrawalProcessed:
        accounts.append(((event.owner, event.subaccount), "forced_withdrawal", event))
    elif kind is TransferDone:
        accounts.append(((event.owner, event.subaccount), "transfer", event))
        accounts.append(((event.to_owner, event.to_subaccount), "transfer", event))
    elif kind is Liquidated:
        accounts.append(((event.owner, event.subaccount), "liquidated", event))
        positions.add((event.owner, event.subaccount, event.market_id))
    elif kind is PositionDeleveraged:
        accounts.append(((event.owner, event.subaccount), "deleveraged", event))
        positions.add((event.owner, event.subaccount, event.market_id))


def position_view(state: State, owner: bytes, number: int, market_id: int) -> PositionView | None:
    """The subaccount's position in ``market_id`` (a flat one if the record is gone)."""
    sub = state.subaccounts.get((owner, number))
    market = state.markets.get(market_id)
    if sub is None or market is None:
        return None
    group = sub.group_for(market_id)
    position = group.positions.get(market_id)
    price = market.index_price_quantums
    if position is None:
        return PositionView(owner, number, group.isolated_market_id, market_id, 0, 0, price, 0,
                            0, 0, 0)
    value = position_value_quantums(position.size_lots, price, market.config.lot_size_nanounits)
    return PositionView(owner, number, group.isolated_market_id, market_id, position.size_lots,
                        position.entry_notional_quantums, price, value,
                        value - position.entry_notional_quantums, position.open_bid_lots,
                        position.open_ask_lots)


# --- release side -------------------------------------------------------------------------------

_OPEN = 0
_LAGGED = 1
_CLOSED = 2


class Subscription:
    """An async iterator of one topic's messages on one event loop (see the module docstring).

    Created by ``Node.subscribe``; everything but ``close`` runs on its loop.
    """

    __slots__ = ("_hub", "_items", "_loop", "_on_close", "_state", "_waiter", "queue_max",
                 "topic", "topic_name")

    def __init__(self, hub: FeedHub, topic_name: str, topic: Topic,
                 loop: asyncio.AbstractEventLoop, queue_max: int,
                 on_close: Any = None) -> None:
        if not 1 <= queue_max <= SUBSCRIBER_QUEUE_MAX:
            raise ValueError(f"queue_max must be in [1, {SUBSCRIBER_QUEUE_MAX}]")
        self._hub = hub
        self.topic_name = topic_name
        self.topic = topic
        self._loop = loop
        self.queue_max = queue_max
        self._items: deque[Any] = deque()
        self._state = _OPEN
        self._waiter: asyncio.Future[None] | None = None
        self._on_close = on_close

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        while True:
            if self._items:
                return self._items.popleft()
            if self._state == _LAGGED:
                raise SubscriptionLagged(f"{self.topic_name}: more than {self.queue_max} "
                                         "messages behind; subscribe again")
            if self._state == _CLOSED:
                raise StopAsyncIteration
            waiter = self._loop.create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _deliver(self, message: Any) -> None:
        """On the loop: queue one message, or drop the subscriber if it is too far behind."""
        if self._state != _OPEN:
            return
        if len(self._items) >= self.queue_max:
            self._state = _LAGGED
            self._items.clear()
            self._detach()
        else:
            self._items.append(message)
        self._wake()

    def _end(self) -> None:
        """On the loop: the node stopped; what is queued can still be read."""
        if self._state == _OPEN:
            self._state = _CLOSED
        self._wake()

    def _detach(self) -> None:
        self._hub.remove(self)
        if self._on_close is not None:
            callback, self._on_close = self._on_close, None
            callback(self)

    def close(self) -> None:
        """Stop receiving (idempotent); a pending ``__anext__`` ends."""
        if self._state == _OPEN:
            self._state = _CLOSED
            self._detach()
        if self._loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wake()
        else:
            self._loop.call_soon_threadsafe(self._wake)

    @property
    def lagged(self) -> bool:
        return self._state == _LAGGED


class FeedHub:
    """Subscribers by topic, and the durable histories of trades and fills (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[Topic, list[Subscription]] = {}
        self._trades: dict[int, deque[Traded]] = {}
        self._fills: OrderedDict[SubaccountKey, deque[_SidedFill]] = OrderedDict()

    def add(self, subscription: Subscription) -> None:
        with self._lock:
            self._topics.setdefault(subscription.topic, []).append(subscription)

    def remove(self, subscription: Subscription) -> None:
        with self._lock:
            subscribers = self._topics.get(subscription.topic)
            if subscribers is not None and subscription in subscribers:
                subscribers.remove(subscription)
                if not subscribers:
                    del self._topics[subscription.topic]

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._topics.values())

    def record(self, messages: Iterable[tuple[Topic, Any]]) -> None:
        """Keep trades and fills in the histories (before they are published)."""
        with self._lock:
            for (kind, argument), message in messages:
                if kind == "traded":
                    self._remember_trade(argument, message)

    def _remember_trade(self, market_id: int, traded: Traded) -> None:
        history = self._trades.get(market_id)
        if history is None:
            history = self._trades[market_id] = deque(maxlen=TRADES_KEPT_PER_MARKET)
        history.append(traded)
        fill = traded[0]
        self._remember_fill((fill.maker_owner, fill.maker_subaccount), (traded, True))
        self._remember_fill((fill.taker_owner, fill.taker_subaccount), (traded, False))

    def _remember_fill(self, key: SubaccountKey, fill: _SidedFill) -> None:
        history = self._fills.get(key)
        if history is None:
            history = self._fills[key] = deque(maxlen=FILLS_KEPT_PER_ACCOUNT)
            while len(self._fills) > ACCOUNTS_WITH_FILLS_MAX:
                self._fills.popitem(last=False)
        else:
            self._fills.move_to_end(key)
        history.append(fill)

    def trades(self, market_id: int, limit: int) -> list[TradeView]:
        with self._lock:
            history = self._trades.get(market_id)
            kept = [] if history is None or limit <= 0 else list(history)[-limit:]
        return [trade_view(traded) for traded in kept]

    def fills(self, key: SubaccountKey) -> tuple[FillView, ...]:
        with self._lock:
            history = self._fills.get(key)
            kept = () if history is None else tuple(history)
        return tuple(fill_view(traded, is_maker) for traded, is_maker in kept)

    def publish(self, messages: Iterable[tuple[Topic, Any]]) -> None:
        """Hand each message to its topic's subscribers, one loop callback per loop."""
        per_loop: dict[asyncio.AbstractEventLoop, list[tuple[Subscription, Any]]] = {}
        with self._lock:
            if not self._topics:
                return
            for topic, message in messages:
                if topic[0] == "traded":  # a trade's view is built once, for its subscribers
                    topic = ("trades", topic[1])
                    subscribers = self._topics.get(topic)
                    if subscribers:
                        message = trade_view(message)
                else:
                    subscribers = self._topics.get(topic)
                if subscribers:
                    for subscription in subscribers:
                        per_loop.setdefault(subscription._loop, []).append(
                            (subscription, message))
        for loop, deliveries in per_loop.items():
            _call_on(loop, _deliver_all, deliveries)

    def deliver_first(self, subscription: Subscription, message: Any | None) -> None:
        """Register ``subscription`` and, for a book, hand it its snapshot first."""
        if subscription._state != _OPEN:  # closed before its registration was released
            return
        self.add(subscription)
        if message is not None:
            _call_on(subscription._loop, _deliver_all, [(subscription, message)])

    def close_all(self) -> None:
        with self._lock:
            subscribers = [s for group in self._topics.values() for s in group]
            self._topics.clear()
        for subscription in subscribers:
            _call_on(subscription._loop, subscription._end)


def _deliver_all(deliveries: list[tuple[Subscription, Any]]) -> None:
    for subscription, message in deliveries:
        subscription._deliver(message)


def _call_on(loop: asyncio.AbstractEventLoop, callback: Any, *args: Any) -> None:
    # a closed loop raises RuntimeError: its subscribers are gone with it
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)

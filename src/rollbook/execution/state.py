"""The venue's state: plain slotted records over Python ints, owned by the STF.

Layout (what the commitment covers):
- ``subaccounts``: (owner, number) -> ``Subaccount``. A subaccount has one cross margin group and
  zero or more isolated groups (one market each). A group holds a signed collateral balance in
  quantums (the StarkEx "collateral balance": it pays for bought lots and receives for sold
  ones, so equity = collateral + sum(size x index price)) and its positions.
- ``Position``: signed size, entry notional (for the no-withdrawal-of-unrealised-profit rule)
  and the lots of the subaccount's open bids and asks in that market (open orders reserve
  margin on the worst case of filling all bids or all asks).
- ``markets``: market id -> ``MarketState`` (config, oracle price, funding samples, open
  interest, the set of holders and the order book).
- the insurance fund is an ordinary subaccount at ``INSURANCE_OWNER`` (the zero address, which
  no signature recovers to) so it can take over positions as the backstop; the fee pool is a
  plain balance.

Invariants (checked by ``rollbook.execution.invariants``):
- conservation: sum of every group's collateral + fee pool == deposits - withdrawals;
- long open interest == short open interest, per market;
- the book is never crossed; each order's remaining lots are counted in its position's
  open_bid/ask lots;
- a group with a position meets maintenance margin or is in the liquidation queue.

Determinism: dicts are iterated only where their insertion order is itself replayed state, or
after sorting; nothing here depends on hashing order.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass

from rollbook.execution.config import MarketConfig, VenueConfig, validate_venue

__all__ = [
    "CROSS_GROUP",
    "INSURANCE_OWNER",
    "MarginGroup",
    "MarketState",
    "Order",
    "OrderBook",
    "PendingWithdrawal",
    "Position",
    "PriceLevel",
    "State",
    "Subaccount",
    "genesis_state",
]

INSURANCE_OWNER = bytes(20)
INSURANCE_SUBACCOUNT = 0
CROSS_GROUP = 0  # group key for cross margin; isolated groups use their market id (>= 1)

SubaccountKey = tuple[bytes, int]
GroupKey = tuple[bytes, int, int]


class Position:
    """A subaccount's exposure in one market, inside one margin group."""

    __slots__ = ("entry_notional_quantums", "group", "market_id", "open_ask_lots",
                 "open_bid_lots", "size_lots")

    def __init__(self, market_id: int, group: MarginGroup) -> None:
        self.market_id = market_id
        self.group = group
        self.size_lots = 0
        self.entry_notional_quantums = 0
        self.open_bid_lots = 0
        self.open_ask_lots = 0

    def is_empty(self) -> bool:
        return self.size_lots == 0 and self.open_bid_lots == 0 and self.open_ask_lots == 0


class MarginGroup:
    """Collateral and positions margined together: cross, or one isolated market."""

    __slots__ = ("collateral_quantums", "isolated_market_id", "key", "positions", "subaccount")

    def __init__(self, subaccount: Subaccount, isolated_market_id: int) -> None:
        self.subaccount = subaccount
        self.isolated_market_id = isolated_market_id  # CROSS_GROUP for the cross group
        self.key: GroupKey = (subaccount.owner, subaccount.number, isolated_market_id)
        self.collateral_quantums = 0
        self.positions: dict[int, Position] = {}

    def has_exposure(self) -> bool:
        return any(p.size_lots != 0 for p in self.positions.values())


class Subaccount:
    __slots__ = ("client_orders", "cross", "isolated", "key", "number", "orders", "owner")

    def __init__(self, owner: bytes, number: int) -> None:
        self.owner = owner
        self.number = number
        self.key: SubaccountKey = (owner, number)  # stored: the hot path marks it touched
        self.cross = MarginGroup(self, CROSS_GROUP)
        self.isolated: dict[int, MarginGroup] = {}
        self.orders: dict[int, Order] = {}  # open orders by order id, in placement order
        self.client_orders: dict[int, Order] = {}

    def group_for(self, market_id: int) -> MarginGroup:
        group = self.isolated.get(market_id)
        return self.cross if group is None else group

    def groups(self) -> list[MarginGroup]:
        return [self.cross, *(self.isolated[m] for m in sorted(self.isolated))]

    def position_record_count(self) -> int:
        return len(self.cross.positions) + sum(len(g.positions) for g in self.isolated.values())


class Order:
    """A resting order: a node in its price level's FIFO list."""

    __slots__ = ("client_order_id", "is_buy", "level", "market_id", "next", "order_id",
                 "position", "post_only", "prev", "price_ticks", "self_trade", "size_lots",
                 "subaccount")

    def __init__(self, order_id: int, subaccount: Subaccount, position: Position,
                 market_id: int, is_buy: bool, price_ticks: int, size_lots: int,
                 client_order_id: int, post_only: bool, self_trade: int) -> None:
        self.order_id = order_id
        self.subaccount = subaccount
        self.position = position
        self.market_id = market_id
        self.is_buy = is_buy
        self.price_ticks = price_ticks
        self.size_lots = size_lots
        self.client_order_id = client_order_id
        self.post_only = post_only
        self.self_trade = self_trade
        self.prev: Order | None = None
        self.next: Order | None = None
        self.level: PriceLevel | None = None


class PriceLevel:
    __slots__ = ("head", "order_count", "price_ticks", "size_lots", "tail")

    def __init__(self, price_ticks: int) -> None:
        self.price_ticks = price_ticks
        self.head: Order | None = None
        self.tail: Order | None = None
        self.size_lots = 0
        self.order_count = 0


class OrderBook:
    """Price-time priority book of one market.

    Each side maps price -> level, with the prices also kept in an ascending list so the best
    level and the sweep order are found without sorting. Levels are doubly linked FIFO lists of
    orders, so a cancel is O(1) plus the price-list update when a level empties.
    """

    __slots__ = ("ask_prices", "asks", "bid_prices", "bids")

    def __init__(self) -> None:
        self.bids: dict[int, PriceLevel] = {}
        self.asks: dict[int, PriceLevel] = {}
        self.bid_prices: list[int] = []  # ascending; best bid is last
        self.ask_prices: list[int] = []  # ascending; best ask is first

    def best_bid(self) -> int | None:
        return self.bid_prices[-1] if self.bid_prices else None

    def best_ask(self) -> int | None:
        return self.ask_prices[0] if self.ask_prices else None

    def add(self, order: Order) -> None:
        """Append ``order`` at the tail of its price level (it loses to everything earlier)."""
        levels, prices = (self.bids, self.bid_prices) if order.is_buy else (self.asks,
                                                                              self.ask_prices)
        level = levels.get(order.price_ticks)
        if level is None:
            level = PriceLevel(order.price_ticks)
            levels[order.price_ticks] = level
            insort(prices, order.price_ticks)
        order.level = level
        order.prev = level.tail
        order.next = None
        if level.tail is None:
            level.head = order
        else:
            level.tail.next = order
        level.tail = order
        level.size_lots += order.size_lots
        level.order_count += 1

    def remove(self, order: Order) -> None:
        level = order.level
        assert level is not None, "order is not resting"
        if order.prev is None:
            level.head = order.next
        else:
            order.prev.next = order.next
        if order.next is None:
            level.tail = order.prev
        else:
            order.next.prev = order.prev
        level.size_lots -= order.size_lots
        level.order_count -= 1
        order.level = order.prev = order.next = None
        if level.order_count == 0:
            self._drop_level(order.is_buy, level.price_ticks)

    def reduce(self, order: Order, size_lots: int) -> None:
        """Shrink a resting order in place (it keeps its priority)."""
        assert 0 < size_lots < order.size_lots and order.level is not None
        order.size_lots -= size_lots
        order.level.size_lots -= size_lots

    def _drop_level(self, is_buy: bool, price_ticks: int) -> None:
        levels, prices = (self.bids, self.bid_prices) if is_buy else (self.asks, self.ask_prices)
        del levels[price_ticks]
        index = bisect_left(prices, price_ticks)
        assert prices[index] == price_ticks
        del prices[index]

    def iter_orders(self, is_buy: bool) -> list[Order]:
        """Every order of one side, best price first, in time priority within a level."""
        levels, prices = (self.bids, self.bid_prices) if is_buy else (self.asks, self.ask_prices)
        ordered_prices = reversed(prices) if is_buy else iter(prices)
        result: list[Order] = []
        for price in ordered_prices:
            order = levels[price].head
            while order is not None:
                result.append(order)
                order = order.next
        return result


class MarketState:
    __slots__ = (
        "book",
        "config",
        "cumulative_funding_ppm",
        "holders",
        "index_price_quantums",
        "last_funding_ms",
        "last_sample_ms",
        "open_interest_lots",
        "premium_sample_count",
        "premium_sum_ppm",
        "quantums_per_lot_tick",
    )

    def __init__(self, config: MarketConfig) -> None:
        self.config = config
        self.quantums_per_lot_tick = config.quantums_per_lot_tick
        self.index_price_quantums = 0  # 0 until the first oracle update: no trading
        self.open_interest_lots = 0  # long side; equals the short side by invariant
        self.premium_sum_ppm = 0
        self.premium_sample_count = 0
        self.last_sample_ms = 0
        self.last_funding_ms = -1  # -1: the first tick starts the clock
        self.cumulative_funding_ppm = 0
        self.holders: dict[GroupKey, Position] = {}  # positions with non-zero size
        self.book = OrderBook()


@dataclass(slots=True)
class PendingWithdrawal:
    withdrawal_id: int
    owner: bytes
    subaccount: int
    amount_quantums: int
    batch_index: int


class State:
    """The whole venue state.

    ``touched_*`` are not state: they name the records a transaction may have changed since the
    last commitment (subaccounts, orders by id, markets by id), so that the commitment re-encodes
    only those. Marking is over-approximate (marking an unchanged record costs a rehash, never a
    wrong root); missing a mark would be a wrong root, which the commitment's full consistency
    check (used by the tests after every batch) catches.
    """

    __slots__ = ("batch_index", "config", "deposits_quantums_total", "fee_pool_quantums",
                 "index_prices", "insurance", "liquidation_queue", "markets",
                 "next_deposit_id", "next_forced_id", "next_liquidation_seq", "next_order_id",
                 "next_withdrawal_id", "oracle_timestamp_ms", "orders", "pending_withdrawals",
                 "subaccounts", "timestamp_ms", "touched_markets", "touched_orders",
                 "touched_subaccounts", "withdrawals_quantums_total")

    def __init__(self, config: VenueConfig) -> None:
        validate_venue(config)
        self.config = config
        self.batch_index = 0
        self.timestamp_ms = 0
        self.markets: dict[int, MarketState] = {
            m.market_id: MarketState(m) for m in sorted(config.markets, key=lambda m: m.market_id)
        }
        self.index_prices: dict[int, int] = {}
        self.oracle_timestamp_ms = 0
        self.subaccounts: dict[SubaccountKey, Subaccount] = {}
        self.insurance = Subaccount(INSURANCE_OWNER, INSURANCE_SUBACCOUNT)
        self.subaccounts[self.insurance.key] = self.insurance
        self.orders: dict[int, Order] = {}
        self.fee_pool_quantums = 0
        self.deposits_quantums_total = 0
        self.withdrawals_quantums_total = 0
        self.next_deposit_id = 1
        self.next_forced_id = 1  # L1 forced-withdrawal requests are processed in id order
        self.next_order_id = 1
        self.next_withdrawal_id = 1
        self.pending_withdrawals: dict[int, PendingWithdrawal] = {}
        # FIFO of groups below maintenance -> their sequence number (the committed order)
        self.liquidation_queue: dict[GroupKey, int] = {}
        self.next_liquidation_seq = 1
        self.touched_subaccounts: set[SubaccountKey] = {self.insurance.key}
        self.touched_orders: set[int] = set()
        self.touched_markets: set[int] = set(self.markets)

    def group_by_key(self, key: GroupKey) -> MarginGroup | None:
        sub = self.subaccounts.get((key[0], key[1]))
        if sub is None:
            return None
        return sub.cross if key[2] == CROSS_GROUP else sub.isolated.get(key[2])


def genesis_state(config: VenueConfig) -> State:
    return State(config)

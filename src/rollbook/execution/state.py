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
- options: an option market's ``MarketState`` carries an ``OptionMarket`` (its ``OptionSpec`` and
  its expiry); ``index_price_quantums`` holds the market's committed *mark* price (the oracle
  index for a perpetual, the Black-76 mark for an option), so position values, liquidation and
  the escape hatch treat every kind alike. ``expiries`` holds, per (index, expiry), the
  settlement state (a time-weighted accumulator of index samples over the settlement window, the
  status and the settlement price); ``smiles`` the oracle's SVI slice per (index, expiry);
  ``quotes`` each market maker's mass-quote ladder and market-maker protection per (owner,
  subaccount, index). A cross group may use portfolio margin (``MarginGroup.portfolio_margin``).
- ``risk`` is *not* state: a cache of scenario values derived from the index prices, smiles and
  oracle time, rebuilt lazily after the oracle handlers invalidate it (see ``RiskContext``).

Invariants (checked by ``rollbook.execution.invariants``):
- conservation: sum of every group's collateral + fee pool == deposits - withdrawals;
- long open interest == short open interest, per market;
- the book is never crossed; each order's remaining lots are counted in its position's
  open_bid/ask lots;
- a group with a position meets maintenance margin or is in the liquidation queue.

Determinism: dicts are iterated only where their insertion order is itself replayed state, or
after sorting; nothing here depends on hashing order. (The ``touched_*`` collections are iterated
by the commitment, whose result does not depend on their order.)
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from typing import Any, Final, cast

# mypyc_attr(allow_interpreted_subclasses=True) on the classes below: with it a mypyc-compiled
# class keeps a Python-level ``__new__`` that does not run ``__init__``, which is what
# ``node.snapshot`` (``Cls.__new__(Cls)``), pickle and deepcopy need; a no-op when interpreted
from mypy_extensions import mypyc_attr

from rollbook.execution.config import (
    InstrumentKind,
    MarketConfig,
    OptionClassConfig,
    VenueConfig,
    validate_venue,
)
from rollbook.execution.options.instruments import Instrument, OptionSpec, PerpetualSpec
from rollbook.execution.options.mmp import MmpWindow
from rollbook.execution.options.portfolio import ScenarioCache
from rollbook.execution.options.smile import SviSmile

__all__ = [
    "CROSS_GROUP",
    "EXPIRY_CLOSED",
    "EXPIRY_LISTED",
    "EXPIRY_SETTLED",
    "INSURANCE_OWNER",
    "PRIMARY_SUBACCOUNT",
    "UNTOUCHED",
    "MarginGroup",
    "MarketState",
    "OptionExpiry",
    "OptionMarket",
    "Order",
    "OrderBook",
    "PendingWithdrawal",
    "Position",
    "PriceLevel",
    "QuoteLadder",
    "RiskContext",
    "State",
    "Subaccount",
    "genesis_state",
    "mark_order",
    "mark_subaccount",
    "start_touch_epoch",
]

INSURANCE_OWNER: Final = bytes(20)
INSURANCE_SUBACCOUNT: Final = 0
# the subaccount number a client names unless it splits its account (``State.primary_subaccounts``)
PRIMARY_SUBACCOUNT: Final = 0
CROSS_GROUP: Final = 0  # group key for cross margin; isolated groups use their market id (>= 1)

SubaccountKey = tuple[bytes, int]
GroupKey = tuple[bytes, int, int]
ExpiryKey = tuple[int, int]  # (index_id, expiry_ms)
QuoteKey = tuple[bytes, int, int]  # (owner, subaccount, index_id)

# OptionExpiry.status: trading until expiry; then the books close (orders cancelled); then every
# position settles at the settlement price.
EXPIRY_LISTED: Final = 0
EXPIRY_CLOSED: Final = 1
EXPIRY_SETTLED: Final = 2
NO_SAMPLE_MS: Final = -1
# a record's ``touched_epoch`` before its first mark: below every ``State.touch_epoch`` (>= 1)
UNTOUCHED: Final = 0


@mypyc_attr(allow_interpreted_subclasses=True)
class Position:
    """A subaccount's exposure in one market, inside one margin group."""

    __slots__ = ("entry_notional_quantums", "group", "is_option", "market_id", "open_ask_lots",
                 "open_bid_lots", "size_lots")

    def __init__(self, market_id: int, group: MarginGroup, is_option: bool = False) -> None:
        self.market_id = market_id
        self.group = group
        self.is_option = is_option  # counted in group.option_positions while the record exists
        self.size_lots = 0
        self.entry_notional_quantums = 0
        self.open_bid_lots = 0
        self.open_ask_lots = 0

    def is_empty(self) -> bool:
        return self.size_lots == 0 and self.open_bid_lots == 0 and self.open_ask_lots == 0


@mypyc_attr(allow_interpreted_subclasses=True)
class MarginGroup:
    """Collateral and positions margined together: cross, or one isolated market.

    ``option_positions`` counts position records in option markets and ``portfolio_margin``
    (cross groups only) selects portfolio margin: a group with either (``uses_engine``, kept
    by ``positions`` and ``accounts`` so the hot path reads one flag) is margined by
    ``options.engine``; any other group keeps the perpetual tiers' fast path.
    """

    __slots__ = ("collateral_quantums", "isolated_market_id", "key", "option_positions",
                 "portfolio_margin", "positions", "subaccount", "uses_engine")

    def __init__(self, subaccount: Subaccount, isolated_market_id: int) -> None:
        self.subaccount = subaccount
        self.isolated_market_id = isolated_market_id  # CROSS_GROUP for the cross group
        self.key: GroupKey = (subaccount.owner, subaccount.number, isolated_market_id)
        self.collateral_quantums = 0
        self.positions: dict[int, Position] = {}
        self.option_positions = 0
        self.portfolio_margin = False
        self.uses_engine = False  # option_positions > 0 or portfolio_margin

    def set_portfolio_margin(self, enabled: bool) -> None:
        self.portfolio_margin = enabled
        self.uses_engine = bool(self.option_positions) or enabled

    def has_exposure(self) -> bool:
        return any(p.size_lots != 0 for p in self.positions.values())


@mypyc_attr(allow_interpreted_subclasses=True)
class Subaccount:
    __slots__ = ("client_orders", "cross", "isolated", "key", "number", "orders", "owner",
                 "touched_epoch")

    def __init__(self, owner: bytes, number: int) -> None:
        self.owner = owner
        self.number = number
        self.key: SubaccountKey = (owner, number)  # stored: the hot path marks it touched
        self.cross = MarginGroup(self, CROSS_GROUP)
        self.isolated: dict[int, MarginGroup] = {}
        self.orders: dict[int, Order] = {}  # open orders by order id, in placement order
        self.client_orders: dict[int, Order] = {}
        self.touched_epoch = UNTOUCHED  # not state: see ``mark_subaccount``

    def group_for(self, market_id: int) -> MarginGroup:
        if not self.isolated:  # the common case: cross margin only, no lookup
            return self.cross
        group = self.isolated.get(market_id)
        return self.cross if group is None else group

    def groups(self) -> list[MarginGroup]:
        return [self.cross, *(self.isolated[m] for m in sorted(self.isolated))]

    def position_record_count(self) -> int:
        return len(self.cross.positions) + sum(len(g.positions) for g in self.isolated.values())


@mypyc_attr(allow_interpreted_subclasses=True)
class Order:
    """A resting order: a node in its price level's FIFO list."""

    __slots__ = ("client_order_id", "is_buy", "key", "level", "market_id", "next", "order_id",
                 "position", "post_only", "prev", "price_ticks", "self_trade", "size_lots",
                 "subaccount", "touched_epoch")

    def __init__(self, order_id: int, subaccount: Subaccount, position: Position,
                 market_id: int, is_buy: bool, price_ticks: int, size_lots: int,
                 client_order_id: int, post_only: bool, self_trade: int) -> None:
        self.order_id = order_id
        # the id as one int object: the key the order is stored under in ``Subaccount.orders``
        # and ``State.orders``. The compiled build boxes an ``int`` field afresh at each read,
        # and a lookup by a fresh box compares two equal ints; by this object it is an
        # identity hit (interpreted, it is ``order_id`` itself)
        self.key: Any = order_id
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
        self.touched_epoch = UNTOUCHED  # not state: see ``mark_order``


@mypyc_attr(allow_interpreted_subclasses=True)
class PriceLevel:
    __slots__ = ("head", "order_count", "price_ticks", "size_lots", "tail")

    def __init__(self, price_ticks: int) -> None:
        self.price_ticks = price_ticks
        self.head: Order | None = None
        self.tail: Order | None = None
        self.size_lots = 0
        self.order_count = 0


def _bisect_left(prices: list[int], price_ticks: int) -> int:
    """``bisect.bisect_left(prices, price_ticks)`` on an ascending list, as a native loop.

    The ``bisect`` functions are Python-level calls from the compiled build that box the price
    and compare boxed ints; a level's insertion point equals ``insort``'s there, since a new
    level's price is not yet in the list.
    """
    low = 0
    high = len(prices)
    while low < high:
        middle = (low + high) >> 1  # an index midpoint, not an amount: no rounding to state
        if prices[middle] < price_ticks:
            low = middle + 1
        else:
            high = middle
    return low


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
        if order.is_buy:  # (not a tuple-unpacking conditional: that builds a tuple per call)
            levels = self.bids
            prices = self.bid_prices
        else:
            levels = self.asks
            prices = self.ask_prices
        # one int object for the level's dict key and its entry in the price list (the compiled
        # build boxes an int at each use): ``plan_match`` reads the list's element and finds the
        # level by that same object, an identity hit that skips comparing two equal ints
        price_key: Any = order.price_ticks
        level = levels.get(price_key)
        if level is None:
            level = PriceLevel(order.price_ticks)
            levels[price_key] = level
            prices.insert(_bisect_left(prices, order.price_ticks), price_key)
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
        if is_buy:
            levels = self.bids
            prices = self.bid_prices
        else:
            levels = self.asks
            prices = self.ask_prices
        # the best level first (a fill empties it), found without the search: the best bid is
        # the list's last price, the best ask its first
        index = len(prices) - 1 if is_buy else 0
        if prices[index] != price_ticks:
            index = _bisect_left(prices, price_ticks)
        assert prices[index] == price_ticks
        # the list's element is the dict's key object (see ``add``): deleting by it is an
        # identity hit, with no freshly boxed price
        price_key: Any = cast("list[Any]", prices).pop(index)
        del levels[price_key]

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


@mypyc_attr(allow_interpreted_subclasses=True)
class MarketState:
    __slots__ = (
        "band_allowance_ppm_quantums",
        "book",
        "config",
        "cumulative_funding_ppm",
        "holders",
        "index_price_quantums",
        "instrument",
        "last_funding_ms",
        "last_sample_ms",
        "open_interest_lots",
        "option",
        "premium_sample_count",
        "premium_sum_ppm",
        "quantums_per_lot_tick",
        "risk",
    )

    def __init__(self, config: MarketConfig, risk: RiskContext | None = None) -> None:
        self.config = config
        self.quantums_per_lot_tick = config.quantums_per_lot_tick
        # the committed mark price: the index (perpetual) or the Black-76 mark (option); 0 until
        # the first oracle update (a perpetual cannot trade before it)
        self.index_price_quantums = 0
        # limit prices may deviate from the mark by price_band_ppm of it plus this / PPM
        # quantums (options: a fraction of the index, so cheap options can be quoted)
        self.band_allowance_ppm_quantums = 0
        self.option: OptionMarket | None = None
        self.instrument: Instrument = PerpetualSpec(config.index_id, config.lot_size_nanounits)
        self.risk = risk  # the venue's RiskContext (not state), set by State
        self.open_interest_lots = 0  # long side; equals the short side by invariant
        self.premium_sum_ppm = 0
        self.premium_sample_count = 0
        self.last_sample_ms = 0
        self.last_funding_ms = -1  # -1: the first tick starts the clock
        self.cumulative_funding_ppm = 0
        self.holders: dict[GroupKey, Position] = {}  # positions with non-zero size
        self.book = OrderBook()


@mypyc_attr(allow_interpreted_subclasses=True)
class OptionExpiry:
    """Settlement state of one (index, expiry): the options listed on it, the time-weighted
    accumulator of index samples over the settlement window, the status and the price.

    The accumulator holds exactly what ``instruments.settlement_price_quantums`` needs of the
    sample sequence: the last sample (its price holds until the next one) and the running sums
    over ``[expiry_ms - window_ms, expiry_ms)``; see ``options.lifecycle.record_index_sample``.
    """

    __slots__ = ("covered_ms", "expiry_ms", "index_id", "last_sample_ms",
                 "last_sample_price_quantums", "market_ids", "sample_count",
                 "settlement_price_quantums", "status", "weighted_quantums_ms", "window_ms")

    def __init__(self, index_id: int, expiry_ms: int, window_ms: int) -> None:
        self.index_id = index_id
        self.expiry_ms = expiry_ms
        self.window_ms = window_ms
        self.market_ids: list[int] = []  # ascending
        self.status = EXPIRY_LISTED
        self.sample_count = 0
        self.last_sample_ms = NO_SAMPLE_MS
        self.last_sample_price_quantums = 0
        self.weighted_quantums_ms = 0
        self.covered_ms = 0
        self.settlement_price_quantums = 0  # set when settled

    @property
    def key(self) -> ExpiryKey:
        return (self.index_id, self.expiry_ms)


@mypyc_attr(allow_interpreted_subclasses=True)
class OptionMarket:
    """What an option market adds to its ``MarketState``: the instrument and its expiry."""

    __slots__ = ("expiry", "option_class", "spec")

    def __init__(self, spec: OptionSpec, expiry: OptionExpiry,
                 option_class: OptionClassConfig) -> None:
        self.spec = spec
        self.expiry = expiry
        self.option_class = option_class


@mypyc_attr(allow_interpreted_subclasses=True)
class QuoteLadder:
    """A market maker's quotes on one underlying: the orders of its latest ``MassQuote`` (ids
    of orders that have since left the book are harmless: ids are never reused) and its
    market-maker protection window, if configured."""

    __slots__ = ("key", "mmp", "quote_order_ids")

    def __init__(self, key: QuoteKey) -> None:
        self.key = key
        self.mmp: MmpWindow | None = None
        self.quote_order_ids: list[int] = []

    def is_empty(self) -> bool:
        return self.mmp is None and not self.quote_order_ids


@mypyc_attr(allow_interpreted_subclasses=True)
class RiskContext:
    """Derived, non-committed risk data of a state: the scenario cache of ``options.portfolio``.

    Valid for one (oracle time, index prices, smiles): the oracle and volatility handlers (and
    expiry settlement, which drops a smile) call ``invalidate``; ``cache`` rebuilds it lazily.
    Everything in it is a pure function of committed state, so a replica that rebuilds it at a
    different moment computes the same values.
    """

    __slots__ = ("_cache", "state")

    def __init__(self, state: State) -> None:
        self.state = state
        self._cache: ScenarioCache | None = None

    def cache(self) -> ScenarioCache:
        cache = self._cache
        if cache is None:
            state = self.state
            cache = ScenarioCache(state.config.portfolio_margin, state.oracle_timestamp_ms,
                                  state.index_prices, state.smiles)
            self._cache = cache
        return cache

    def invalidate(self) -> None:
        self._cache = None


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class PendingWithdrawal:
    withdrawal_id: int
    owner: bytes
    subaccount: int
    amount_quantums: int
    batch_index: int


@mypyc_attr(allow_interpreted_subclasses=True)
class State:
    """The whole venue state.

    ``touched_*`` are not state: they name the records a transaction may have changed since the
    last commitment (subaccounts and orders as the records themselves, markets by id), so that the
    commitment re-encodes only those. Marking is over-approximate (marking an unchanged record
    costs a rehash, never a wrong root); missing a mark would be a wrong root, which the
    commitment's full consistency check (used by the tests after every batch) catches. An order
    marked and then removed stays marked until the commit, which sees that its id left ``orders``.

    Orders and subaccounts, marked on every order transaction, are kept in lists with a stamp per
    record (``mark_order``, ``mark_subaccount``): a record is appended when its
    ``touched_epoch`` differs from ``touch_epoch``, which the commitment advances when it empties
    the lists (``start_touch_epoch``). A stamp comparison and an append cost a fraction of a set
    insertion (hashing and probing) in the compiled build. A list may name a record twice (say,
    after a node snapshot restored orders with blank stamps mid-batch): the commitment's leaf
    updates are a dict, so a repeat re-encodes the same leaf. The other marks stay sets (of
    keys), set rarely.

    ``owners`` indexes ``subaccounts`` by owner, then number (kept by ``add_subaccount``): a
    transaction names its subaccount by the two, and two lookups on the fields cost less than
    building, hashing and comparing an ``(owner, number)`` tuple. ``primary_subaccounts`` maps
    an owner to its subaccount ``PRIMARY_SUBACCOUNT``, the one nearly every transaction names,
    in one lookup. Both are derived from ``subaccounts`` and not state: ``primary_subaccounts``
    is not written to a snapshot but rebuilt on load (``index_primary_subaccounts``).
    """

    __slots__ = ("batch_index", "config", "deposits_quantums_total", "expiries",
                 "fee_pool_quantums", "index_prices", "insurance", "known_indices",
                 "liquidation_queue", "markets", "next_deposit_id", "next_forced_id",
                 "next_liquidation_seq", "next_order_id", "next_withdrawal_id",
                 "oracle_timestamp_ms", "orders", "owners", "pending_withdrawals",
                 "primary_subaccounts", "quotes", "risk",
                 "smiles", "subaccounts", "timestamp_ms", "touch_epoch", "touched_expiries",
                 "touched_markets", "touched_orders", "touched_quotes", "touched_risk_modes",
                 "touched_subaccounts", "withdrawals_quantums_total")

    def __init__(self, config: VenueConfig) -> None:
        validate_venue(config)
        self.config = config
        self.batch_index = 0
        self.timestamp_ms = 0
        self.risk = RiskContext(self)
        self.markets: dict[int, MarketState] = {
            m.market_id: MarketState(m, self.risk)
            for m in sorted(config.markets, key=lambda m: m.market_id)
        }
        # indices an oracle update may price: the markets' and the option classes'
        self.known_indices: frozenset[int] = frozenset(
            [m.index_id for m in config.markets] + [c.index_id for c in config.option_classes])
        self.expiries: dict[ExpiryKey, OptionExpiry] = {}
        self.smiles: dict[ExpiryKey, SviSmile] = {}
        self.quotes: dict[QuoteKey, QuoteLadder] = {}
        for market in self.markets.values():
            if market.config.kind == InstrumentKind.OPTION:
                attach_option(self, market)
        self.index_prices: dict[int, int] = {}
        self.oracle_timestamp_ms = 0
        self.subaccounts: dict[SubaccountKey, Subaccount] = {}
        self.owners: dict[bytes, dict[int, Subaccount]] = {}
        self.primary_subaccounts: dict[bytes, Subaccount] = {}
        self.insurance = Subaccount(INSURANCE_OWNER, INSURANCE_SUBACCOUNT)
        self.add_subaccount(self.insurance)
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
        self.touch_epoch = UNTOUCHED + 1
        self.touched_subaccounts: list[Subaccount] = []
        self.touched_orders: list[Order] = []
        mark_subaccount(self, self.insurance)
        self.touched_markets: set[int] = set(self.markets)
        self.touched_expiries: set[ExpiryKey] = set(self.expiries)  # expiry and smile leaves
        self.touched_quotes: set[QuoteKey] = set()
        self.touched_risk_modes: set[SubaccountKey] = set()

    def add_subaccount(self, sub: Subaccount) -> None:
        """Insert a new subaccount (in ``subaccounts`` and ``owners``)."""
        assert sub.key not in self.subaccounts
        self.subaccounts[sub.key] = sub
        numbers = self.owners.get(sub.owner)
        if numbers is None:
            numbers = {}
            self.owners[sub.owner] = numbers
        numbers[sub.number] = sub
        if sub.number == PRIMARY_SUBACCOUNT:
            self.primary_subaccounts[sub.owner] = sub

    def index_primary_subaccounts(self) -> None:
        """Rebuild the derived ``primary_subaccounts`` from ``owners`` (after a snapshot load)."""
        self.primary_subaccounts = {
            owner: numbers[PRIMARY_SUBACCOUNT] for owner, numbers in self.owners.items()
            if PRIMARY_SUBACCOUNT in numbers}

    def subaccount(self, owner: bytes, number: int) -> Subaccount | None:
        """``subaccounts.get((owner, number))``, through ``owners`` (no key tuple)."""
        numbers = self.owners.get(owner)
        return None if numbers is None else numbers.get(number)

    def group_by_key(self, key: GroupKey) -> MarginGroup | None:
        sub = self.subaccounts.get((key[0], key[1]))
        if sub is None:
            return None
        return sub.cross if key[2] == CROSS_GROUP else sub.isolated.get(key[2])


def mark_order(state: State, order: Order) -> None:
    """Name ``order`` in ``state.touched_orders`` once per commitment epoch (see ``State``)."""
    epoch = state.touch_epoch
    if order.touched_epoch != epoch:
        order.touched_epoch = epoch
        state.touched_orders.append(order)


def mark_subaccount(state: State, sub: Subaccount) -> None:
    """Name ``sub`` in ``state.touched_subaccounts`` once per commitment epoch (see ``State``)."""
    epoch = state.touch_epoch
    if sub.touched_epoch != epoch:
        sub.touched_epoch = epoch
        state.touched_subaccounts.append(sub)


def start_touch_epoch(state: State) -> None:
    """Empty the order and subaccount marks (the commitment encoded them): a new epoch, so every
    record's stamp is stale and its next mark appends it again."""
    state.touched_orders.clear()
    state.touched_subaccounts.clear()
    state.touch_epoch += 1


def attach_option(state: State, market: MarketState) -> OptionMarket:
    """Make ``market`` (an option market's fresh state) an option of its expiry, creating the
    expiry record if it is the first option listed on it. The caller marks the records."""
    config = market.config
    terms = config.option
    option_class = state.config.option_class(config.index_id)
    assert terms is not None and option_class is not None
    spec = OptionSpec(config.index_id, terms.expiry_ms, terms.strike_quantums, terms.option_type,
                      config.lot_size_nanounits)
    key = (config.index_id, terms.expiry_ms)
    expiry = state.expiries.get(key)
    if expiry is None:
        expiry = OptionExpiry(config.index_id, terms.expiry_ms,
                              option_class.settlement_window_ms)
        state.expiries[key] = expiry
    assert expiry.status == EXPIRY_LISTED
    insort(expiry.market_ids, config.market_id)
    option = OptionMarket(spec, expiry, option_class)
    market.option = option
    market.instrument = spec
    return option


def genesis_state(config: VenueConfig) -> State:
    return State(config)

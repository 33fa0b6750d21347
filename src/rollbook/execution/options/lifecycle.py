"""Option lifecycle transactions: list, delist, index sampling for settlement, expiry.

Listing (``ListOption``, operator): a European option on an index with an option class, at a
strike and expiry not yet listed, under a free market id. The market is built from the class
(``config.option_market``). The first option of an (index, expiry) creates its ``OptionExpiry``,
whose accumulator starts from the current index sample. The index must be priced, the expiry
between ``OPTION_TIME_TO_EXPIRY_MS_MIN`` and ``OPTION_TIME_TO_EXPIRY_MS_MAX`` after batch time
(and inside Black-76's horizon from the oracle time), and the venue below
``OPTION_MARKETS_MAX`` listed options, the class below its ``listed_markets_max`` and the index
below ``EXPIRIES_PER_INDEX_MAX`` expiries. An option trades once its smile arrives.

Delisting (``DelistOption``, operator): an option market without open interest; its resting
orders are cancelled. When the last market of an expiry goes, the expiry (and its smile) go too.

Settlement samples (``record_index_sample``, on every oracle update): per unsettled expiry of
the index, the time-weighted average of ``instruments.settlement_price_quantums`` is kept as an
accumulator (last sample, weighted sum over the window, covered time), which is exactly the
average over the whole sample sequence, in O(1) state. Samples at or after expiry are ignored.

Expiry (``ExpireOptions``, operator), for one (index, expiry):
1. once batch time reaches expiry, the books close: every resting order is cancelled (reason
   EXPIRED) and the markets accept no orders (they already refuse them from expiry on);
2. once the oracle time reaches expiry too (no sample inside the window can arrive any more),
   the settlement price is fixed (the accumulator's average, rounded half up; if no sample ever
   preceded expiry, the current index) and every position is settled in cash at its payoff:
   longs receive it rounded down, shorts pay it rounded up, the residual goes to the insurance
   fund, so the cashflows and the residual sum to exactly zero. A group left flat with negative
   equity is made whole: by the insurance fund down to its maintenance margin, then pro rata by
   the groups that received a payoff within what they received and their equity, and what is
   still missing by the insurance fund (``events.ExpirySettled``). Groups still holding other
   positions are checked and queued for liquidation like after any price move.
The transaction is rejected (EXPIRY_NOT_REACHED) when it can do neither.
"""

from __future__ import annotations

from rollbook.execution.config import (
    EXPIRIES_PER_INDEX_MAX,
    OPTION_MARKETS_MAX,
    OPTION_PRICE_QUANTUMS_MAX,
    OPTION_TIME_TO_EXPIRY_MS_MAX,
    OPTION_TIME_TO_EXPIRY_MS_MIN,
    MarketConfig,
    OptionTerms,
    option_market,
)
from rollbook.execution.errors import ErrorCode, TxRejected
from rollbook.execution.events import (
    CancelReason,
    ExpirySettled,
    OptionDelisted,
    OptionListed,
    OptionSettled,
    OrderCancelled,
)
from rollbook.execution.liquidation import enqueue_groups_if_underwater, process_liquidation_queue
from rollbook.execution.margin import group_risk
from rollbook.execution.options.black76 import EXPIRY_S_MAX
from rollbook.execution.options.engine import refresh_option_marks
from rollbook.execution.options.fixed_point import div_round_half_up
from rollbook.execution.options.instruments import MS_PER_SECOND, OptionType, payoff_quantums
from rollbook.execution.positions import (
    release_position_if_empty,
    remove_resting_order,
    settle_trade_side,
)
from rollbook.execution.state import (
    EXPIRY_CLOSED,
    EXPIRY_LISTED,
    EXPIRY_SETTLED,
    NO_SAMPLE_MS,
    GroupKey,
    MarginGroup,
    MarketState,
    OptionExpiry,
    State,
    attach_option,
    mark_subaccount,
)
from rollbook.execution.txs import DelistOption, ExpireOptions, ListOption
from rollbook.execution.units import NANOUNITS_PER_UNIT, div_ceil, div_floor

__all__ = [
    "cancel_market_orders",
    "delist_option",
    "expire_options",
    "expiry_settlement_price_quantums",
    "list_option",
    "record_index_sample",
]

MARKET_ID_MAX = 0xFFFF


# --- listing --------------------------------------------------------------------------------


def list_option(state: State, tx: ListOption, events: list[object]) -> None:
    option_class = state.config.option_class(tx.index_id)
    if option_class is None:
        raise TxRejected(ErrorCode.OPTION_CLASS_UNKNOWN, f"index {tx.index_id}")
    if not 1 <= tx.market_id <= MARKET_ID_MAX:
        raise TxRejected(ErrorCode.MALFORMED_TRANSACTION, "market id")
    if tx.market_id in state.markets:
        raise TxRejected(ErrorCode.MARKET_ID_TAKEN, f"market {tx.market_id}")
    # int(): only an ill-typed (in-process) value can fail this; compiled by mypyc, the enum
    # compare on that unreachable branch generated C that gcc rejects (int-conversion)
    if int(tx.option_type) not in (OptionType.CALL, OptionType.PUT):
        raise TxRejected(ErrorCode.MALFORMED_TRANSACTION, "option type")
    if not 1 <= tx.strike_quantums <= OPTION_PRICE_QUANTUMS_MAX:
        raise TxRejected(ErrorCode.OPTION_TERMS_INVALID, "strike out of range")
    now_ms = state.timestamp_ms
    if not (now_ms + OPTION_TIME_TO_EXPIRY_MS_MIN <= tx.expiry_ms
            <= now_ms + OPTION_TIME_TO_EXPIRY_MS_MAX):
        raise TxRejected(ErrorCode.OPTION_TERMS_INVALID, "expiry out of range")
    if tx.index_id not in state.index_prices:
        raise TxRejected(ErrorCode.ORACLE_PRICE_MISSING, f"index {tx.index_id}")
    if tx.expiry_ms - state.oracle_timestamp_ms > EXPIRY_S_MAX * MS_PER_SECOND:
        raise TxRejected(ErrorCode.OPTION_TERMS_INVALID, "expiry beyond the valuation horizon")
    key = (tx.index_id, tx.expiry_ms)
    expiry = state.expiries.get(key)
    option_type = OptionType(tx.option_type)
    if expiry is not None:
        if expiry.status != EXPIRY_LISTED:
            raise TxRejected(ErrorCode.OPTION_TERMS_INVALID, "expiry already closed")
        for market_id in expiry.market_ids:
            terms = state.markets[market_id].config.option
            assert terms is not None
            if terms.strike_quantums == tx.strike_quantums and terms.option_type == option_type:
                raise TxRejected(ErrorCode.OPTION_TERMS_INVALID, f"listed as market {market_id}")
    listed = [m for m in state.markets.values() if m.option is not None]
    if len(listed) >= OPTION_MARKETS_MAX or sum(
            1 for m in listed if m.config.index_id == tx.index_id) >= (
            option_class.listed_markets_max):
        raise TxRejected(ErrorCode.OPTION_LISTING_LIMIT)
    if expiry is None and sum(1 for k in state.expiries if k[0] == tx.index_id) >= (
            EXPIRIES_PER_INDEX_MAX):
        raise TxRejected(ErrorCode.OPTION_LISTING_LIMIT, "expiries per index")
    config: MarketConfig = option_market(
        tx.market_id, option_class, OptionTerms(tx.expiry_ms, tx.strike_quantums, option_type))
    market = MarketState(config, state.risk)
    state.markets[tx.market_id] = market
    option = attach_option(state, market)
    if expiry is None:  # the accumulator starts from the latest index sample
        _add_sample(option.expiry, state.oracle_timestamp_ms, state.index_prices[tx.index_id])
    state.touched_markets.add(tx.market_id)
    state.touched_expiries.add(key)
    refresh_option_marks(state, [tx.market_id])
    events.append(OptionListed(tx.market_id, tx.index_id, tx.expiry_ms, tx.strike_quantums,
                               int(option_type)))


def cancel_market_orders(state: State, market: MarketState, reason: int,
                         events: list[object]) -> None:
    """Cancel every resting order of ``market``, bids then asks, in book order."""
    market_id = market.config.market_id
    for is_buy in (True, False):
        for order in market.book.iter_orders(is_buy):
            events.append(OrderCancelled(order.order_id, market_id, order.size_lots, reason))
            remove_resting_order(state, market, order)


def delist_option(state: State, tx: DelistOption, events: list[object]) -> None:
    market = state.markets.get(tx.market_id)
    if market is None:
        raise TxRejected(ErrorCode.UNKNOWN_MARKET, f"market {tx.market_id}")
    option = market.option
    if option is None:
        raise TxRejected(ErrorCode.NOT_AN_OPTION_MARKET, f"market {tx.market_id}")
    if market.open_interest_lots:
        raise TxRejected(ErrorCode.MARKET_HAS_OPEN_INTEREST,
                         f"{market.open_interest_lots} lots")
    cancel_market_orders(state, market, CancelReason.DELISTED, events)
    assert not market.holders
    del state.markets[tx.market_id]
    state.touched_markets.add(tx.market_id)
    expiry = option.expiry
    expiry.market_ids.remove(tx.market_id)
    state.touched_expiries.add(expiry.key)
    if not expiry.market_ids:
        del state.expiries[expiry.key]
        if state.smiles.pop(expiry.key, None) is not None:
            state.risk.invalidate()
    events.append(OptionDelisted(tx.market_id))


# --- settlement samples ---------------------------------------------------------------------


def _add_sample(expiry: OptionExpiry, timestamp_ms: int, price_quantums: int) -> None:
    """Fold one index sample into the accumulator (see ``instruments`` for the weighting)."""
    if timestamp_ms >= expiry.expiry_ms or timestamp_ms <= expiry.last_sample_ms:
        return  # after the window: ignored; a replayed time: nothing new
    if expiry.last_sample_ms != NO_SAMPLE_MS:
        held_from = max(expiry.last_sample_ms, expiry.expiry_ms - expiry.window_ms)
        if timestamp_ms > held_from:
            expiry.weighted_quantums_ms += expiry.last_sample_price_quantums * (
                timestamp_ms - held_from)
            expiry.covered_ms += timestamp_ms - held_from
    expiry.last_sample_ms = timestamp_ms
    expiry.last_sample_price_quantums = price_quantums
    expiry.sample_count += 1


def record_index_sample(state: State, index_id: int, timestamp_ms: int,
                        price_quantums: int) -> None:
    """An oracle sample of ``index_id``: fold it into every unsettled expiry on that index."""
    for key, expiry in state.expiries.items():
        if key[0] == index_id and expiry.status != EXPIRY_SETTLED and (
                expiry.last_sample_ms < timestamp_ms < expiry.expiry_ms):
            _add_sample(expiry, timestamp_ms, price_quantums)
            state.touched_expiries.add(key)


def expiry_settlement_price_quantums(state: State, expiry: OptionExpiry) -> int:
    """The window's time-weighted index, closing the last sample's interval at expiry; the
    current index if no sample preceded expiry."""
    weighted = expiry.weighted_quantums_ms
    covered = expiry.covered_ms
    if expiry.last_sample_ms != NO_SAMPLE_MS:
        held_from = max(expiry.last_sample_ms, expiry.expiry_ms - expiry.window_ms)
        weighted += expiry.last_sample_price_quantums * (expiry.expiry_ms - held_from)
        covered += expiry.expiry_ms - held_from
    if covered == 0:
        return state.index_prices[expiry.index_id]
    return div_round_half_up(weighted, covered)


# --- expiry ---------------------------------------------------------------------------------


def expire_options(state: State, tx: ExpireOptions, events: list[object]) -> None:
    key = (tx.index_id, tx.expiry_ms)
    expiry = state.expiries.get(key)
    if expiry is None:
        raise TxRejected(ErrorCode.EXPIRY_UNKNOWN, f"index {tx.index_id} expiry {tx.expiry_ms}")
    if expiry.status == EXPIRY_SETTLED:
        raise TxRejected(ErrorCode.EXPIRY_ALREADY_SETTLED)
    if state.timestamp_ms < expiry.expiry_ms:
        raise TxRejected(ErrorCode.EXPIRY_NOT_REACHED, "batch time is before expiry")
    ready = state.oracle_timestamp_ms >= expiry.expiry_ms
    if expiry.status == EXPIRY_CLOSED and not ready:
        raise TxRejected(ErrorCode.EXPIRY_NOT_REACHED, "no index sample at or after expiry yet")
    if expiry.status == EXPIRY_LISTED:
        for market_id in expiry.market_ids:
            cancel_market_orders(state, state.markets[market_id], CancelReason.EXPIRED, events)
        expiry.status = EXPIRY_CLOSED
        state.touched_expiries.add(key)
    if ready:
        _settle(state, expiry, events)


def _settle(state: State, expiry: OptionExpiry, events: list[object]) -> None:
    price = expiry_settlement_price_quantums(state, expiry)
    markets = state.markets
    residual = 0
    received: dict[GroupKey, int] = {}  # net cashflow per group
    groups: dict[GroupKey, MarginGroup] = {}
    for market_id in expiry.market_ids:
        market = markets[market_id]
        option = market.option
        assert option is not None and not market.book.bid_prices and not market.book.ask_prices
        payoff = payoff_quantums(option.spec, price)
        per_lot_scaled = payoff * market.config.lot_size_nanounits
        holders = market.holders
        assert sum(p.size_lots for p in holders.values()) == 0, "long OI == short OI"
        for group_key in sorted(holders):
            position = holders[group_key]
            size = position.size_lots
            exact = size * per_lot_scaled
            if size > 0:
                cashflow = div_floor(exact, NANOUNITS_PER_UNIT)  # a payout: rounded down
            else:
                cashflow = -div_ceil(-exact, NANOUNITS_PER_UNIT)  # a payment: rounded up
            residual -= cashflow
            # closing at a quote of -cashflow moves exactly the cashflow into collateral
            settle_trade_side(state, market, position, -size, -cashflow, 0)
            release_position_if_empty(position)
            group = position.group
            groups[group_key] = group
            received[group_key] = received.get(group_key, 0) + cashflow
            sub = group.subaccount
            events.append(OptionSettled(market_id, sub.owner, sub.number, size, cashflow))
        assert market.open_interest_lots == 0 and not holders
        market.index_price_quantums = payoff  # the final mark: what a unit paid
        market.band_allowance_ppm_quantums = 0
        state.touched_markets.add(market_id)
    assert residual >= 0, "settlement never pays out more than it collects"
    insurance = state.insurance.cross
    insurance.collateral_quantums += residual
    mark_subaccount(state, state.insurance)
    shortfall, from_fund, haircut, uncovered = _cover_shortfalls(state, groups, received)
    expiry.status = EXPIRY_SETTLED
    expiry.settlement_price_quantums = price
    state.touched_expiries.add(expiry.key)
    if state.smiles.pop(expiry.key, None) is not None:
        state.risk.invalidate()
    events.append(ExpirySettled(expiry.index_id, expiry.expiry_ms, price, len(expiry.market_ids),
                                residual, shortfall, from_fund, haircut, uncovered))
    enqueue_groups_if_underwater(state, {k: g for k, g in groups.items() if g.has_exposure()})
    process_liquidation_queue(state, events)


def _cover_shortfalls(state: State, groups: dict[GroupKey, MarginGroup],
                      received: dict[GroupKey, int]) -> tuple[int, int, int, int]:
    """Make flat groups with negative equity whole; (shortfall, fund, haircut, uncovered)."""
    markets = state.markets
    insurance = state.insurance.cross
    shortfall = 0
    for key in sorted(groups):
        group = groups[key]
        if group is insurance or group.has_exposure():
            continue
        equity = group_risk(markets, group).equity_quantums
        if equity < 0:
            group.collateral_quantums -= equity
            shortfall -= equity
            mark_subaccount(state, group.subaccount)
    if shortfall == 0:
        return 0, 0, 0, 0
    fund = group_risk(markets, insurance)
    from_fund = min(shortfall, max(0, fund.equity_quantums - fund.maintenance_quantums))
    insurance.collateral_quantums -= from_fund
    rest = shortfall - from_fund
    haircut = 0
    if rest:
        capacity: dict[GroupKey, int] = {}
        for key in sorted(received):
            group = groups[key]
            if received[key] <= 0 or group is insurance:
                continue
            equity = group_risk(markets, group).equity_quantums
            available = min(received[key], max(0, equity))
            if available > 0:
                capacity[key] = available
        total = sum(capacity.values())
        take_total = min(rest, total)
        for key, available in capacity.items():
            # pro rata, rounded up, within what the group can give: the sum covers take_total
            take = min(available, div_ceil(take_total * available, total))
            groups[key].collateral_quantums -= take
            haircut += take
            mark_subaccount(state, groups[key].subaccount)
        # rounding may take a little more than needed: the excess is the fund's
        insurance.collateral_quantums += haircut - rest
    uncovered = max(0, rest - haircut)
    mark_subaccount(state, state.insurance)
    return shortfall, from_fund, haircut, uncovered

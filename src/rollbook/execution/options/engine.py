"""The options engine inside the STF: option marks, and margin of groups that hold options.

``margin.group_risk`` sends a group here when it holds a position record in an option market
(``MarginGroup.option_positions``), is a cross group in portfolio mode, or the change being
checked is in an option market (``uses_options_engine``). Everything else stays on the tiered
perpetual path, which this module never slows down.

Equity (both modes) is collateral plus every position's value at its market's committed mark
(``valuation.position_value_quantums``): the number the escape hatch computes from the leaves.

Portfolio mode (a cross group's choice, ``SetPortfolioMargin``): per underlying index, the
options and the perpetual(s) of that index are one portfolio margined by
``portfolio.portfolio_requirement`` (scenario grid + delta charge + short-option contingency):

- maintenance = the portfolio's maintenance requirement on current positions;
- initial = max(initial on current positions, initial with every open bid on the index filled,
  initial with every open ask filled) (Deribit's convention: orders of one side are summed
  across instruments; the current portfolio is included so that resting orders never lower it).

Standard mode (the default, and every isolated group): perpetuals keep their tiers; each option
position is margined alone by ``portfolio.standard_margin`` (shorts), plus *premium up front*
for longs: a long option's initial requirement is its value, so long options are never bought
on credit (their value counts in equity, but not towards the initial margin of anything else).
With ``x`` the position after all bids (``size + bids``) or all asks (``size - asks``) fill:

- initial = max(req(size + bids), req(size - asks)), req(x) = standard initial of a short x,
  or the value of a long x;
- maintenance = standard maintenance of a short position, 0 for a long one.

Marks (``refresh_option_marks``): Black-76 at the smile's volatility for the strike, at the
oracle time (``instruments.option_mark`` through the scenario cache), rounded half up to a
quantum per unit of the underlying and committed as the market's price. At or after expiry the
mark is the intrinsic value against the index (no smile needed). A live option without a smile
has no mark (0) and cannot trade. The oracle and volatility handlers refresh every live option's
mark (time moved), so the committed marks always belong to the current oracle time.

Bounds: portfolio margin covers at most ``POSITIONS_PER_SUBACCOUNT_MAX`` (32) records per group,
below ``portfolio.PORTFOLIO_POSITIONS_MAX``; index prices and strikes of option classes are at
most ``config.OPTION_PRICE_QUANTUMS_MAX``, inside Black-76's domain under every scenario.
"""

from __future__ import annotations

from collections.abc import Mapping

from rollbook.execution.options.black76 import EXPIRY_S_MAX
from rollbook.execution.options.instruments import (
    MS_PER_SECOND,
    Instrument,
    OptionSpec,
    OptionType,
)
from rollbook.execution.options.portfolio import (
    VALUE_SCALE,
    ScenarioCache,
    StandardMarginConfig,
    portfolio_requirement,
)
from rollbook.execution.state import (
    EXPIRY_SETTLED,
    MarginGroup,
    MarketState,
    RiskContext,
    State,
)
from rollbook.execution.units import NANOUNITS_PER_UNIT, PPM, div_ceil
from rollbook.execution.valuation import (
    GroupRisk,
    perpetual_position_risk,
    position_value_quantums,
)

__all__ = [
    "OPTION_VALUATION_HORIZON_MS",
    "PortfolioRecord",
    "live_option_market_ids",
    "option_priced",
    "options_group_risk",
    "options_initial_quantums",
    "portfolio_records",
    "refresh_option_marks",
    "standard_option_requirements",
    "standard_short_requirements",
    "uses_options_engine",
]

# Black-76 values options at most this far before expiry (from the oracle time)
OPTION_VALUATION_HORIZON_MS = EXPIRY_S_MAX * MS_PER_SECOND
# (instrument, size, bids, asks) of one instrument of a portfolio, summed over its markets
PortfolioRecord = tuple[Instrument, int, int, int]
_Change = tuple[int, int, int]  # (d_size_lots, d_bid_lots, d_ask_lots)


def uses_options_engine(markets: Mapping[int, MarketState], group: MarginGroup,
                        market_id: int) -> bool:
    """Whether ``group`` (after a change in ``market_id``; 0: none) is margined here."""
    if group.uses_engine:
        return True
    return market_id != 0 and markets[market_id].option is not None


def _records(markets: Mapping[int, MarketState], group: MarginGroup,
             deltas: Mapping[int, _Change]) -> list[tuple[MarketState, int, int, int]]:
    records: list[tuple[MarketState, int, int, int]] = []
    positions = group.positions
    for market_id, position in positions.items():
        size = position.size_lots
        bids = position.open_bid_lots
        asks = position.open_ask_lots
        change = deltas.get(market_id)
        if change is not None:
            size += change[0]
            bids += change[1]
            asks += change[2]
        records.append((markets[market_id], size, bids, asks))
    for market_id, change in deltas.items():
        if market_id not in positions:
            records.append((markets[market_id], *change))
    return records


def _context(records: list[tuple[MarketState, int, int, int]]) -> RiskContext:
    context = records[0][0].risk
    assert context is not None, "every market of a state carries the state's risk context"
    return context


def options_group_risk(markets: Mapping[int, MarketState], group: MarginGroup,
                       deltas: Mapping[int, _Change], d_collateral_quantums: int,
                       portfolio: bool | None = None) -> GroupRisk:
    """Risk of ``group`` after hypothetical changes in any of its markets (module doc).

    ``portfolio`` overrides the group's mode (to price a mode switch before making it).
    """
    equity = group.collateral_quantums + d_collateral_quantums
    records = _records(markets, group, deltas)
    if not records:
        return GroupRisk(equity, 0, 0)
    use_portfolio = group.portfolio_margin if portfolio is None else portfolio
    initial = 0
    maintenance = 0
    by_index: dict[int, dict[Instrument, list[int]]] = {}
    cache: ScenarioCache | None = None
    for market, size, bids, asks in records:
        assert bids >= 0 and asks >= 0, "open order lots cannot be negative"
        config = market.config
        equity += position_value_quantums(size, market.index_price_quantums,
                                          config.lot_size_nanounits)
        if use_portfolio:
            instrument = market.instrument
            totals = by_index.setdefault(instrument.index_id, {}).setdefault(instrument,
                                                                             [0, 0, 0])
            totals[0] += size
            totals[1] += bids
            totals[2] += asks
        elif market.option is None:
            _, position_initial, position_maintenance = perpetual_position_risk(
                market, size, bids, asks)
            initial += position_initial
            maintenance += position_maintenance
        elif size or bids or asks:
            if cache is None:
                cache = _context(records).cache()
            position_initial, position_maintenance = standard_option_requirements(
                market, size, bids, asks, cache)
            initial += position_initial
            maintenance += position_maintenance
    if by_index:
        cache = _context(records).cache()
        for index_id in sorted(by_index):
            items = [(instrument, totals[0], totals[1], totals[2])
                     for instrument, totals in by_index[index_id].items()]
            index_initial, index_maintenance = _portfolio_requirements(index_id, items, cache)
            initial += index_initial
            maintenance += index_maintenance
    return GroupRisk(equity, initial, maintenance)


def options_initial_quantums(markets: Mapping[int, MarketState], group: MarginGroup) -> int:
    return options_group_risk(markets, group, {}, 0).initial_quantums


def _portfolio_requirements(index_id: int, items: list[tuple[Instrument, int, int, int]],
                            cache: ScenarioCache) -> tuple[int, int]:
    current = portfolio_requirement(index_id, [(i, size) for i, size, _, _ in items], cache)
    initial = current.initial_quantums
    if any(bids for _, _, bids, _ in items):
        filled = portfolio_requirement(
            index_id, [(i, size + bids) for i, size, bids, _ in items], cache)
        initial = max(initial, filled.initial_quantums)
    if any(asks for _, _, _, asks in items):
        filled = portfolio_requirement(
            index_id, [(i, size - asks) for i, size, _, asks in items], cache)
        initial = max(initial, filled.initial_quantums)
    return initial, current.maintenance_quantums


def standard_option_requirements(market: MarketState, size_lots: int, bid_lots: int,
                                 ask_lots: int, cache: ScenarioCache) -> tuple[int, int]:
    """(initial, maintenance) of one option position in standard mode (module doc)."""
    spec = market.instrument
    assert isinstance(spec, OptionSpec) and market.risk is not None
    config = market.risk.state.config.standard_option_margin
    worst_short = size_lots - ask_lots
    if worst_short < 0:
        initial = standard_short_requirements(spec, worst_short, cache, config)[0]
    else:  # premium up front: a long's requirement is its value
        initial = position_value_quantums(worst_short, market.index_price_quantums,
                                          market.config.lot_size_nanounits)
    worst_long = size_lots + bid_lots
    if worst_long > 0:
        initial = max(initial, position_value_quantums(
            worst_long, market.index_price_quantums, market.config.lot_size_nanounits))
    maintenance = 0
    if size_lots < 0:
        maintenance = standard_short_requirements(spec, size_lots, cache, config)[1]
    return initial, maintenance


def standard_short_requirements(spec: OptionSpec, size_lots: int, cache: ScenarioCache,
                                config: StandardMarginConfig) -> tuple[int, int]:
    """``portfolio.standard_margin`` of one short position, (initial, maintenance): the same
    arithmetic and roundings without its result records (the order path's hot spot; the tests
    compare the two)."""
    assert size_lots < 0
    index = cache.index_price_quantums(spec.index_id)
    units = -size_lots * spec.contract_size_nanounits  # nanounits short
    strike = spec.strike_quantums
    is_call = spec.option_type is OptionType.CALL
    otm = max(strike - index, 0) if is_call else max(index - strike, 0)
    risk_scaled = max(config.short_floor_ppm * index, config.short_ppm * index - otm * PPM)
    if spec.option_type is OptionType.PUT:
        risk_scaled = min(risk_scaled, config.put_cap_ppm * strike)
    mark = cache.mark(spec)
    mark_part = div_ceil(units * (mark.valuation.price + mark.error_bound_wad), VALUE_SCALE)
    initial = div_ceil(units * risk_scaled, NANOUNITS_PER_UNIT * PPM) + mark_part
    maintenance = div_ceil(units * risk_scaled * config.maintenance_ratio_ppm,
                           NANOUNITS_PER_UNIT * PPM * PPM) + mark_part
    return initial, maintenance


def portfolio_records(markets: Mapping[int, MarketState],
                      group: MarginGroup) -> dict[int, list[PortfolioRecord]]:
    """The group's instruments per index with (size, bids, asks), as portfolio mode sees them."""
    by_index: dict[int, dict[Instrument, list[int]]] = {}
    for market_id, position in group.positions.items():
        instrument = markets[market_id].instrument
        totals = by_index.setdefault(instrument.index_id, {}).setdefault(instrument, [0, 0, 0])
        totals[0] += position.size_lots
        totals[1] += position.open_bid_lots
        totals[2] += position.open_ask_lots
    return {index_id: [(instrument, totals[0], totals[1], totals[2])
                       for instrument, totals in by_index[index_id].items()]
            for index_id in sorted(by_index)}


# --- marks ----------------------------------------------------------------------------------


def live_option_market_ids(state: State) -> list[int]:
    """Option markets not yet settled, by expiry (index, expiry) then market id."""
    result: list[int] = []
    for key in sorted(state.expiries):
        expiry = state.expiries[key]
        if expiry.status != EXPIRY_SETTLED:
            result.extend(expiry.market_ids)
    return result


def option_priced(state: State, spec: OptionSpec) -> bool:
    """Whether the option has a mark: its index is priced and, before expiry, its smile exists
    and its expiry is within Black-76's horizon of the oracle time (the oracle time only moves
    forward, so a priced option stays priced)."""
    now_ms = state.oracle_timestamp_ms
    if spec.index_id not in state.index_prices:
        return False
    if now_ms >= spec.expiry_ms:
        return True
    return ((spec.index_id, spec.expiry_ms) in state.smiles
            and spec.expiry_ms - now_ms <= OPTION_VALUATION_HORIZON_MS)


def refresh_option_marks(state: State, market_ids: list[int]) -> list[int]:
    """Recompute the marks of ``market_ids`` (live option markets); mark the changed ones
    touched and return them. A market whose index or smile is missing keeps a mark of 0."""
    changed: list[int] = []
    cache: ScenarioCache | None = None
    for market_id in market_ids:
        market = state.markets[market_id]
        option = market.option
        assert option is not None
        spec = option.spec
        mark = 0
        allowance = 0
        if option_priced(state, spec):
            if cache is None:
                cache = state.risk.cache()
            mark = cache.mark(spec).price_quantums
            allowance = option.option_class.price_band_index_ppm * state.index_prices[
                spec.index_id]
        market.band_allowance_ppm_quantums = allowance
        if mark != market.index_price_quantums:
            market.index_price_quantums = mark
            changed.append(market_id)
    state.touched_markets.update(changed)
    return changed

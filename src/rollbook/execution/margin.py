"""Margin math: pure functions from a margin group (plus hypothetical changes) to its risk.

Definitions (all in quantums, integers):
- position value = floor(size_lots x index price x lot size): signed; floor favours the venue
  for both longs (valued lower) and shorts (liability valued higher);
- equity = collateral + sum of position values (funding is paid eagerly into collateral, so
  equity already includes it);
- maintenance requirement = progressive tiered fraction of |position| notional (rounded up);
- initial requirement = the same with initial fractions, on the worst case of all open orders
  filling: max(|size + open bids|, |size - open asks|), so every resting order reserves margin.

Acceptance rule for a trade or order (``change_acceptable``), after StarkEx's perpetual rule:
the group afterwards meets its initial requirement; or nothing got worse (requirements not up,
equity not down); or its risk (maintenance requirement) strictly fell and its equity/risk ratio
did not fall, and a group left without risk is not left with negative equity.

Withdrawals and transfers (``withdrawal_allowed``) use equity with unrealised profit removed
(the Mango lesson: paper profit is not cash) and must leave max(initial requirement,
``withdrawal_margin_floor_ppm`` x notional) behind (the lesson of the 2025 whale who withdrew
profit and then let a thin position be liquidated).

Options: a group holding an option position (``MarginGroup.option_positions``), a cross group
in portfolio mode, or a change in an option market is margined by ``options.engine`` (portfolio
margin per index, or standard per-position option margin); the same acceptance and withdrawal
rules apply to the ``GroupRisk`` it returns. Every other group keeps the tiered path below,
whose only extra cost is that check.

Known limit: a perpetual's mark price is the signed oracle index; a premium-adjusted mark price
comes with the node's feeds.
"""

from __future__ import annotations

from rollbook.execution.options.engine import (
    options_group_risk,
    options_initial_quantums,
    uses_options_engine,
)
from rollbook.execution.state import MarginGroup, MarketState, Position
from rollbook.execution.units import (
    NANOUNITS_PER_UNIT,
    PPM,
    div_ceil,
    max_abs_int,
    mul,
    mul_div_floor_and_ceil,
)
from rollbook.execution.valuation import (
    GroupRisk,
    notional_quantums,
    perpetual_position_risk,
    position_value_quantums,
    tiered_requirement_quantums,
)

__all__ = [
    "GroupRisk",
    "change_acceptable",
    "group_risk",
    "meets_initial_after",
    "notional_quantums",
    "position_value_quantums",
    "tiered_requirement_quantums",
    "withdrawable_quantums",
    "withdrawal_allowed",
]


def group_risk(markets: dict[int, MarketState], group: MarginGroup, market_id: int = 0,
               d_size_lots: int = 0, d_bid_lots: int = 0, d_ask_lots: int = 0,
               d_collateral_quantums: int = 0) -> GroupRisk:
    """Risk of ``group`` after hypothetical changes in one market (no state is touched)."""
    if group.uses_engine or (market_id and markets[market_id].option is not None):
        deltas = {market_id: (d_size_lots, d_bid_lots, d_ask_lots)} if market_id else {}
        return options_group_risk(markets, group, deltas, d_collateral_quantums)
    equity = group.collateral_quantums + d_collateral_quantums
    initial = 0
    maintenance = 0
    adjusted = market_id == 0
    for position_market_id, position in group.positions.items():
        size = position.size_lots
        bids = position.open_bid_lots
        asks = position.open_ask_lots
        if position_market_id == market_id:
            size += d_size_lots
            bids += d_bid_lots
            asks += d_ask_lots
            adjusted = True
        e, i, m = perpetual_position_risk(markets[position_market_id], size, bids, asks)
        equity += e
        initial += i
        maintenance += m
    if not adjusted:
        e, i, m = perpetual_position_risk(markets[market_id], d_size_lots, d_bid_lots, d_ask_lots)
        equity += e
        initial += i
        maintenance += m
    return GroupRisk(equity, initial, maintenance)


def meets_initial_after(markets: dict[int, MarketState], group: MarginGroup, market_id: int,
                        d_size_lots: int, d_bid_lots: int, d_ask_lots: int,
                        d_collateral_quantums: int, market: MarketState | None = None,
                        position: Position | None = None) -> bool:
    """``group_risk(...)`` equity >= initial, computed in one pass without maintenance.

    The hot path: it is the first clause of ``change_acceptable`` and settles almost every
    order, so callers try it first and fall back to the full rule only when it fails. Same
    arithmetic and rounding as ``group_risk`` (tests compare the two on random groups).
    ``market``, when given, is ``markets[market_id]``, which the callers hold (it spares the
    loop the lookup of the traded market, the one every order's group holds); ``position``,
    when given, is the group's record in that market (``group.positions[market_id]``): a group
    holding no other (nearly every order's) is then valued without walking its positions.
    """
    assert market is None or market.config.market_id == market_id
    if group.uses_engine:
        risk = options_group_risk(markets, group, {market_id: (d_size_lots, d_bid_lots,
                                                               d_ask_lots)},
                                  d_collateral_quantums)
        return risk.equity_quantums >= risk.initial_quantums
    equity = group.collateral_quantums + d_collateral_quantums
    if position is not None and market is not None and len(group.positions) == 1:
        # the loop below with its only record, the adjusted one (a perpetual's: the group does
        # not use the options engine)
        value, initial = _perpetual_initial_terms(
            market, position.size_lots + d_size_lots, position.open_bid_lots + d_bid_lots,
            position.open_ask_lots + d_ask_lots)
        return equity + value >= initial
    initial = 0
    adjusted = False
    # values, not items: the record carries its market id, and an items walk builds and unboxes
    # a key per position
    for record in group.positions.values():
        position_market_id = record.market_id
        size = record.size_lots
        bids = record.open_bid_lots
        asks = record.open_ask_lots
        if position_market_id == market_id:
            size += d_size_lots
            bids += d_bid_lots
            asks += d_ask_lots
            adjusted = True
        position_market = (market if position_market_id == market_id and market is not None
                           else markets[position_market_id])
        value, position_initial = _perpetual_initial_terms(position_market, size, bids, asks)
        equity += value
        initial += position_initial
    if not adjusted:
        if market is None:
            market = markets[market_id]
        if market.option is not None:  # a first order in an option market
            risk = options_group_risk(markets, group, {market_id: (d_size_lots, d_bid_lots,
                                                                   d_ask_lots)},
                                      d_collateral_quantums)
            return risk.equity_quantums >= risk.initial_quantums
        value, position_initial, _ = perpetual_position_risk(market, d_size_lots, d_bid_lots,
                                                    d_ask_lots)
        equity += value
        initial += position_initial
    return equity >= initial


def _perpetual_initial_terms(market: MarketState, size_lots: int, bid_lots: int,
                            ask_lots: int) -> tuple[int, int]:
    """A perpetual position's value and initial requirement, as ``meets_initial_after`` sums
    them (``perpetual_position_risk`` without the maintenance requirement)."""
    config = market.config
    price_lot = mul(market.index_price_quantums, config.lot_size_nanounits)
    worst = max_abs_int(size_lots + bid_lots, size_lots - ask_lots)
    # position_value_quantums and notional_quantums at one price per lot, sharing its split
    value, worst_notional = mul_div_floor_and_ceil(size_lots, worst, price_lot,
                                                   NANOUNITS_PER_UNIT)
    return value, tiered_requirement_quantums(worst_notional, config.margin_tiers, True)


def change_acceptable(before: GroupRisk, after: GroupRisk) -> bool:
    """The venue's rule for accepting a fill, an order or a margin move (see module doc)."""
    if after.equity_quantums >= after.initial_quantums:
        return True
    if (after.initial_quantums <= before.initial_quantums
            and after.maintenance_quantums <= before.maintenance_quantums
            and after.equity_quantums >= before.equity_quantums):
        return True
    if after.maintenance_quantums >= before.maintenance_quantums:
        return False
    if after.maintenance_quantums == 0:
        return after.equity_quantums >= 0
    # equity/risk must not fall: cross-multiplied, both risks are positive here
    return (after.equity_quantums * before.maintenance_quantums
            >= before.equity_quantums * after.maintenance_quantums)


def withdrawal_allowed(markets: dict[int, MarketState], group: MarginGroup,
                       d_collateral_quantums: int, floor_ppm: int) -> bool:
    """May ``group`` lose ``-d_collateral_quantums`` of collateral (withdraw/transfer/move)?"""
    return -d_collateral_quantums <= withdrawable_quantums(markets, group, floor_ppm)


def withdrawable_quantums(markets: dict[int, MarketState], group: MarginGroup,
                          floor_ppm: int) -> int:
    """The most collateral ``group`` may release; negative when it may release nothing.

    What remains, counting unrealised profit as zero (``min(value, entry)`` per position), must
    cover the initial requirement, the floor of ``floor_ppm`` of the notional, and zero.
    """
    equity_without_profit = group.collateral_quantums
    initial = 0
    notional_total = 0
    options = uses_options_engine(markets, group, 0)
    for market_id, position in group.positions.items():
        market = markets[market_id]
        lot = market.config.lot_size_nanounits
        price = market.index_price_quantums
        value = position_value_quantums(position.size_lots, price, lot)
        equity_without_profit += min(value, position.entry_notional_quantums)
        if not options:
            _, position_initial, _ = perpetual_position_risk(
                market, position.size_lots, position.open_bid_lots, position.open_ask_lots)
            initial += position_initial
        notional_total += notional_quantums(abs(position.size_lots), price, lot)
    if options:
        initial = options_initial_quantums(markets, group)
    floor = div_ceil(notional_total * floor_ppm, PPM)
    return equity_without_profit - max(initial, floor, 0)

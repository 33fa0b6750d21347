"""Read-only account views for the node's API: Greeks per position and account, margin breakdown.

``account_risk(state, owner, subaccount)`` returns, per margin group, what the STF computes when
it margins the group (equity, initial and maintenance from ``margin.group_risk``, so the numbers
are the ones that decide orders and liquidations), the positions at their committed marks with
their Greeks, and the breakdown behind the requirement:

- portfolio mode: per index, ``portfolio.PortfolioMargin`` of the current positions (every
  scenario's loss, the worst scenario, the delta, short-option and valuation charges); the
  group's initial requirement may exceed the breakdown's when open orders dominate (module doc
  of ``options.engine``);
- standard mode: each option position's standard margin (``StandardMargin``) and each
  perpetual's tiered requirement.

Greeks follow ``portfolio.Greeks``: delta in nanounits of the underlying, gamma in nanounits
per USD, vega in quantums per volatility point, theta in quantums per day; a perpetual's delta
is its exposure. Account and group Greeks are sums of the positions' (rounded) Greeks.

Pure queries: nothing here changes committed state (the scenario cache they may fill is derived
data). Unknown subaccounts return ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollbook.execution.margin import group_risk
from rollbook.execution.options.engine import (
    portfolio_records,
    standard_option_requirements,
)
from rollbook.execution.options.instruments import OptionSpec
from rollbook.execution.options.portfolio import (
    Greeks,
    PortfolioMargin,
    portfolio_margin,
    position_risk,
)
from rollbook.execution.state import MarginGroup, State
from rollbook.execution.valuation import perpetual_position_risk, position_value_quantums

__all__ = [
    "AccountRisk",
    "GroupRisk",
    "PositionView",
    "account_risk",
]

_ZERO = Greeks(0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class PositionView:
    market_id: int
    symbol: str
    option: OptionSpec | None  # None for a perpetual
    size_lots: int
    open_bid_lots: int
    open_ask_lots: int
    mark_price_quantums: int
    value_quantums: int
    entry_notional_quantums: int
    greeks: Greeks
    # standard mode: this position's own (initial, maintenance); portfolio mode: None
    initial_quantums: int | None
    maintenance_quantums: int | None


@dataclass(frozen=True, slots=True)
class GroupRisk:
    group: int  # 0: cross; otherwise the isolated market id
    portfolio_margin: bool
    in_liquidation: bool
    collateral_quantums: int
    equity_quantums: int
    initial_quantums: int
    maintenance_quantums: int
    greeks: Greeks
    positions: tuple[PositionView, ...]
    portfolios: tuple[PortfolioMargin, ...]  # portfolio mode, per index, current positions


@dataclass(frozen=True, slots=True)
class AccountRisk:
    owner: bytes
    subaccount: int
    portfolio_margin: bool
    equity_quantums: int
    initial_quantums: int
    maintenance_quantums: int
    greeks: Greeks
    groups: tuple[GroupRisk, ...]


def _add(a: Greeks, b: Greeks) -> Greeks:
    return Greeks(a.delta_nanounits + b.delta_nanounits,
                  a.gamma_nanounits_per_usd + b.gamma_nanounits_per_usd,
                  a.vega_quantums_per_vol_point + b.vega_quantums_per_vol_point,
                  a.theta_quantums_per_day + b.theta_quantums_per_day)


def _group_view(state: State, group: MarginGroup) -> GroupRisk:
    markets = state.markets
    risk = group_risk(markets, group)
    cache = state.risk.cache() if group.positions else None
    positions: list[PositionView] = []
    total = _ZERO
    standard = not group.portfolio_margin
    for market_id in sorted(group.positions):
        position = group.positions[market_id]
        market = markets[market_id]
        greeks = _ZERO
        if position.size_lots and cache is not None:
            greeks = position_risk(market.instrument, position.size_lots, cache).greeks
        initial: int | None = None
        maintenance: int | None = None
        if standard and market.option is None:
            _, initial, maintenance = perpetual_position_risk(
                market, position.size_lots, position.open_bid_lots, position.open_ask_lots)
        elif standard and cache is not None:
            initial, maintenance = standard_option_requirements(
                market, position.size_lots, position.open_bid_lots, position.open_ask_lots,
                cache)
        total = _add(total, greeks)
        option = market.option
        positions.append(PositionView(
            market_id, market.config.symbol, None if option is None else option.spec,
            position.size_lots, position.open_bid_lots, position.open_ask_lots,
            market.index_price_quantums,
            position_value_quantums(position.size_lots, market.index_price_quantums,
                                    market.config.lot_size_nanounits),
            position.entry_notional_quantums, greeks, initial, maintenance))
    portfolios: list[PortfolioMargin] = []
    if group.portfolio_margin and cache is not None:
        for index_id, records in portfolio_records(markets, group).items():
            portfolios.append(portfolio_margin(
                index_id, [(instrument, size) for instrument, size, _, _ in records], cache))
    return GroupRisk(group.isolated_market_id, group.portfolio_margin,
                     group.key in state.liquidation_queue, group.collateral_quantums,
                     risk.equity_quantums, risk.initial_quantums, risk.maintenance_quantums,
                     total, tuple(positions), tuple(portfolios))


def account_risk(state: State, owner: bytes, subaccount: int) -> AccountRisk | None:
    """Greeks and margin of every group of one subaccount (module doc); None if unknown."""
    sub = state.subaccounts.get((owner, subaccount))
    if sub is None:
        return None
    groups = tuple(_group_view(state, group) for group in sub.groups())
    total = _ZERO
    for group in groups:
        total = _add(total, group.greeks)
    return AccountRisk(
        owner, subaccount, sub.cross.portfolio_margin,
        sum(g.equity_quantums for g in groups), sum(g.initial_quantums for g in groups),
        sum(g.maintenance_quantums for g in groups), total, groups)

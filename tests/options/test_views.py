"""Account views: Greeks per position and account, and the margin breakdown the API serves."""

from __future__ import annotations

from option_venue import CALL, PUT, OptionVenue, option_venue

from conftest import ALICE, BOB, BTC, USDC
from rollbook.execution import CancelAll, PlaceOrder, SetPortfolioMargin, Side, TimeInForce
from rollbook.execution.margin import group_risk
from rollbook.execution.options.portfolio import position_risk
from rollbook.execution.options.views import account_risk

K100 = 100_000 * USDC


def _venue_with_book() -> OptionVenue:
    v = option_venue()
    v.fund([ALICE, BOB], 1_000_000 * USDC)
    call, put = v.oid(K100, CALL), v.oid(K100, PUT)
    for market_id, lots in ((call, 30), (put, 10)):
        price = v.mark_ticks(market_id)
        v.run_ok(PlaceOrder(BOB, 0, market_id, Side.BUY, price, lots))
        v.run_ok(PlaceOrder(ALICE, 0, market_id, Side.SELL, price, lots,
                            time_in_force=TimeInForce.IOC))
    v.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, 1_000_000, 1_500))
    v.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, 1_000_000, 1_500,
                        time_in_force=TimeInForce.IOC))
    v.run_ok(CancelAll(BOB, 0))
    return v


def test_account_risk_in_standard_mode() -> None:
    v = _venue_with_book()
    state = v.state
    view = account_risk(state, ALICE, 0)
    assert view is not None and not view.portfolio_margin
    (cross,) = view.groups
    risk = group_risk(state.markets, state.subaccounts[(ALICE, 0)].cross)
    assert (cross.equity_quantums, cross.initial_quantums, cross.maintenance_quantums) == risk
    assert [p.market_id for p in cross.positions] == sorted(p.market_id for p in cross.positions)
    by_market = {p.market_id: p for p in cross.positions}
    cache = state.risk.cache()
    for market_id, position in by_market.items():
        market = state.markets[market_id]
        assert position.greeks == position_risk(market.instrument, position.size_lots,
                                                cache).greeks
        assert position.mark_price_quantums == market.index_price_quantums
        assert position.initial_quantums is not None
    assert sum(p.initial_quantums or 0 for p in cross.positions) == cross.initial_quantums
    perp = by_market[BTC]
    assert perp.option is None and perp.greeks.delta_nanounits == 1_500 * 100_000
    assert perp.greeks.vega_quantums_per_vol_point == 0
    # account Greeks are the sum of the positions'
    assert view.greeks.delta_nanounits == sum(p.greeks.delta_nanounits for p in cross.positions)
    assert view.greeks.vega_quantums_per_vol_point < 0  # short options
    assert cross.portfolios == ()


def test_account_risk_in_portfolio_mode_names_the_worst_scenario() -> None:
    v = _venue_with_book()
    v.run_ok(SetPortfolioMargin(ALICE, 0, True))
    state = v.state
    view = account_risk(state, ALICE, 0)
    assert view is not None and view.portfolio_margin
    (cross,) = view.groups
    (breakdown,) = cross.portfolios
    assert breakdown.index_id == BTC
    assert breakdown.worst_scenario is not None
    worst = breakdown.scenario_losses_quantums[breakdown.worst_scenario_index]
    assert worst == max(breakdown.scenario_losses_quantums)
    assert breakdown.worst_loss_quantums == max(worst, 0)
    # no open orders: the group's requirements are the breakdown's
    assert (cross.initial_quantums, cross.maintenance_quantums) == (
        breakdown.initial_quantums, breakdown.maintenance_quantums)
    assert all(p.initial_quantums is None for p in cross.positions)
    assert breakdown.greeks.delta_nanounits == view.greeks.delta_nanounits


def test_unknown_accounts_and_flat_accounts() -> None:
    v = option_venue()
    assert account_risk(v.state, ALICE, 0) is None
    v.fund([ALICE], 5 * USDC)
    view = account_risk(v.state, ALICE, 0)
    assert view is not None and view.equity_quantums == 5 * USDC
    assert view.initial_quantums == 0 and view.groups[0].positions == ()

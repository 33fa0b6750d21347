"""Margin of groups holding options: selection of the engine, the two modes, liquidation.

- A perpetual-only group in standard mode keeps the tiered fast path; options or portfolio mode
  send a group to ``options.engine``; an isolated group is always in standard mode.
- Standard mode is ``portfolio.standard_margin`` per short option plus the premium of longs up
  front; portfolio mode is ``portfolio.portfolio_requirement`` per index over options and the
  perpetual together, with open orders as max(current, all bids filled, all asks filled).
- A short option position that falls below maintenance is liquidated through the book first.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from option_venue import CALL, PUT, OptionVenue, option_venue, order

from conftest import ALICE, BOB, BTC, CAROL, INDEX_100K_QUANTUMS, USDC
from rollbook.execution import (
    CancelAll,
    PlaceOrder,
    ProcessLiquidations,
    SetMarginMode,
    SetPortfolioMargin,
    Side,
    TimeInForce,
)
from rollbook.execution.events import Fill, Liquidated
from rollbook.execution.invariants import check_invariants
from rollbook.execution.margin import group_risk, meets_initial_after
from rollbook.execution.options.engine import options_group_risk, uses_options_engine
from rollbook.execution.options.instruments import PerpetualSpec
from rollbook.execution.options.portfolio import portfolio_requirement, standard_margin
from rollbook.execution.state import MarginGroup
from rollbook.execution.valuation import position_value_quantums

K100 = 100_000 * USDC
P100K = 1_000_000  # the perpetual at $100,000 in $0.1 ticks


def _cross(v: OptionVenue, owner: bytes) -> MarginGroup:
    return v.state.subaccounts[(owner, 0)].cross


def _trade(v: OptionVenue, seller: bytes, buyer: bytes, market_id: int, lots: int,
           price_ticks: int | None = None) -> None:
    price = v.mark_ticks(market_id) if price_ticks is None else price_ticks
    v.run_ok(PlaceOrder(seller, 0, market_id, Side.SELL, price, lots))
    v.run_ok(PlaceOrder(buyer, 0, market_id, Side.BUY, price, lots,
                        time_in_force=TimeInForce.IOC))
    v.run_ok(CancelAll(seller, 0))


def test_engine_selection() -> None:
    v = option_venue()
    v.fund([ALICE, BOB, CAROL], 1_000_000 * USDC)
    markets = v.state.markets
    _trade(v, BOB, ALICE, BTC, 100, P100K)
    alice = _cross(v, ALICE)
    assert not uses_options_engine(markets, alice, 0)
    assert not uses_options_engine(markets, alice, BTC)
    call = v.oid(K100, CALL)
    assert uses_options_engine(markets, alice, call)  # an order in an option market
    # the tiered path: 10% initial, 5% maintenance of $1,000 (0.01 BTC)
    risk = group_risk(markets, alice)
    assert (risk.initial_quantums, risk.maintenance_quantums) == (100 * USDC, 50 * USDC)
    v.run_ok(SetPortfolioMargin(ALICE, 0, True))
    assert uses_options_engine(markets, alice, 0)
    # a perpetual alone on the grid: ceil(15% x) + ceil(1% x), maintenance half of it
    risk = group_risk(markets, alice)
    assert risk.initial_quantums == 160 * USDC and risk.maintenance_quantums == 80 * USDC
    _trade(v, CAROL, BOB, call, 5)
    assert _cross(v, BOB).option_positions == 1 and uses_options_engine(markets, _cross(v, BOB),
                                                                        0)
    v.run_ok(SetMarginMode(CAROL, 0, v.oid(K100, PUT), True))
    isolated = v.state.subaccounts[(CAROL, 0)].isolated[v.oid(K100, PUT)]
    assert not isolated.portfolio_margin


def test_standard_mode_short_and_long_options() -> None:
    v = option_venue()
    v.fund([ALICE, BOB], 1_000_000 * USDC)
    call = v.oid(K100, CALL)
    _trade(v, ALICE, BOB, call, 10)
    cache = v.state.risk.cache()
    spec = v.market(call).instrument
    expected = standard_margin([(spec, -10)], cache, v.state.config.standard_option_margin)
    risk = group_risk(v.state.markets, _cross(v, ALICE))
    assert (risk.initial_quantums, risk.maintenance_quantums) == (
        expected.initial_quantums, expected.maintenance_quantums)
    # the long pays its premium up front: its initial requirement is its value, maintenance 0
    long = group_risk(v.state.markets, _cross(v, BOB))
    value = position_value_quantums(10, v.market(call).index_price_quantums, 10_000_000)
    assert (long.initial_quantums, long.maintenance_quantums) == (value, 0)


def test_premium_up_front_caps_what_a_standard_account_can_buy() -> None:
    v = option_venue()
    v.fund([BOB], 1_000_000 * USDC)
    v.fund([CAROL], 1_000 * USDC)
    call = v.oid(K100, CALL)
    mark = v.mark_ticks(call)  # ~$3,300 per BTC: ~$33 per 0.01 BTC lot
    affordable = 1_000 * USDC // (mark * 10_000) - 1
    v.run_ok(PlaceOrder(BOB, 0, call, Side.SELL, mark, 1_000))
    (receipt,) = v.run(PlaceOrder(CAROL, 0, call, Side.BUY, mark, affordable + 2,
                                  time_in_force=TimeInForce.IOC))
    assert not receipt.ok  # more premium than collateral
    v.run_ok(PlaceOrder(CAROL, 0, call, Side.BUY, mark, affordable,
                        time_in_force=TimeInForce.IOC))


def test_portfolio_mode_nets_a_delta_hedge() -> None:
    """Short calls hedged with a long perpetual need less under portfolio margin than the sum of
    their standard requirements, and exactly ``portfolio_requirement`` of the two."""
    v = option_venue()
    v.fund([ALICE, BOB], 1_000_000 * USDC)
    call = v.oid(K100, CALL)
    _trade(v, ALICE, BOB, call, 100)  # short 1 BTC of calls, delta about -0.5
    _trade(v, BOB, ALICE, BTC, 5_000, P100K)  # long 0.5 BTC of the perpetual
    markets = v.state.markets
    alice = _cross(v, ALICE)
    standard = group_risk(markets, alice)
    v.run_ok(SetPortfolioMargin(ALICE, 0, True))
    portfolio = group_risk(markets, alice)
    assert portfolio.initial_quantums < standard.initial_quantums
    assert portfolio.equity_quantums == standard.equity_quantums
    cache = v.state.risk.cache()
    expected = portfolio_requirement(BTC, [(v.market(call).instrument, -100),
                                           (PerpetualSpec(BTC, 100_000), 5_000)], cache)
    assert (portfolio.initial_quantums, portfolio.maintenance_quantums) == (
        expected.initial_quantums, expected.maintenance_quantums)


def test_portfolio_initial_covers_the_worst_side_of_open_orders() -> None:
    v = option_venue()
    v.fund([ALICE], 1_000_000 * USDC)
    v.run_ok(SetPortfolioMargin(ALICE, 0, True))
    call, put = v.oid(K100, CALL), v.oid(K100, PUT)
    v.run_ok(order(ALICE, call, Side.SELL, v.mark_ticks(call) + 100, 20),
             order(ALICE, put, Side.SELL, v.mark_ticks(put) + 100, 20),
             order(ALICE, put, Side.BUY, v.mark_ticks(put) - 100, 7))
    cache = v.state.risk.cache()
    c, p = v.market(call).instrument, v.market(put).instrument
    asks = portfolio_requirement(BTC, [(c, -20), (p, -20)], cache).initial_quantums
    bids = portfolio_requirement(BTC, [(c, 0), (p, 7)], cache).initial_quantums
    risk = group_risk(v.state.markets, _cross(v, ALICE))
    assert risk.initial_quantums == max(asks, bids) == asks  # the short straddle is worse
    assert risk.maintenance_quantums == 0  # no position yet


positions = st.dictionaries(st.integers(0, 6), st.tuples(st.integers(-50, 50),
                                                         st.integers(0, 30),
                                                         st.integers(0, 30)), max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=positions, collateral=st.integers(-5_000, 50_000), portfolio=st.booleans(),
       change=st.tuples(st.integers(0, 6), st.integers(-20, 20), st.integers(0, 10),
                        st.integers(0, 10), st.integers(-1_000, 1_000)))
def test_meets_initial_after_agrees_with_group_risk_for_option_groups(
        records: dict[int, tuple[int, int, int]], collateral: int, portfolio: bool,
        change: tuple[int, int, int, int, int]) -> None:
    from rollbook.execution.positions import ensure_position
    from rollbook.execution.state import Subaccount

    v = _shared_venue()
    markets_by_pick = [BTC, *sorted(v.option_id.values())]
    group = Subaccount(b"\x42" * 20, 0).cross
    group.set_portfolio_margin(portfolio)
    group.collateral_quantums = collateral * USDC
    for pick, (size, bids, asks) in records.items():
        market_id = markets_by_pick[pick]
        p = ensure_position(group, market_id, v.state.markets[market_id].option is not None)
        p.size_lots, p.open_bid_lots, p.open_ask_lots = size, bids, asks
    pick, d_size, d_bid, d_ask, d_collateral = change
    market_id = markets_by_pick[pick]
    markets = v.state.markets
    risk = group_risk(markets, group, market_id, d_size, d_bid, d_ask, d_collateral * USDC)
    fast = meets_initial_after(markets, group, market_id, d_size, d_bid, d_ask,
                               d_collateral * USDC)
    assert fast == (risk.equity_quantums >= risk.initial_quantums)
    assert risk.maintenance_quantums <= risk.initial_quantums or not portfolio
    same = options_group_risk(markets, group, {market_id: (d_size, d_bid, d_ask)},
                              d_collateral * USDC)
    assert same == risk


_VENUE: list[OptionVenue] = []


def _shared_venue() -> OptionVenue:
    if not _VENUE:
        _VENUE.append(option_venue())
    return _VENUE[0]


# --- liquidation ------------------------------------------------------------------------------


def _short_calls(portfolio: bool) -> tuple[OptionVenue, int]:
    v = option_venue()
    v.fund([ALICE], 1_000_000 * USDC)  # the maker
    # initial margin of 1 BTC of short ATM calls: 15% + the mark (standard), ~13.5% (portfolio)
    v.fund([CAROL], (15_000 if portfolio else 20_000) * USDC)
    if portfolio:
        v.run_ok(SetPortfolioMargin(CAROL, 0, True))
    call = v.oid(K100, CALL)
    _trade(v, CAROL, ALICE, call, 100)  # CAROL short 1 BTC of ATM calls
    # the maker keeps offering calls above the mark: the book that liquidation will buy from
    for offset in (200, 600, 1_500, 3_000):
        v.run_ok(order(ALICE, call, Side.SELL, v.mark_ticks(call) + offset, 60))
    return v, call


def _liquidate_short_calls(portfolio: bool) -> None:
    v, call = _short_calls(portfolio)
    carol = _cross(v, CAROL)
    before = group_risk(v.state.markets, carol)
    assert before.equity_quantums >= before.maintenance_quantums
    # the short calls lose ~$5,600 (standard) or ~$9,200 (portfolio): below maintenance
    receipts = v.run_ok(v.oracle((112_000 if portfolio else 108_000) * USDC))
    events = receipts[0].events
    liquidated = [e for e in events if isinstance(e, Liquidated)]
    fills = [e for e in events if isinstance(e, Fill) and e.taker_order_id == 0]
    assert liquidated and liquidated[0].market_id == call
    assert liquidated[0].size_lots_book > 0  # through the book first
    assert fills and all(f.taker_owner == CAROL and f.taker_is_buy for f in fills)
    position = carol.positions.get(call)
    remaining = 0 if position is None else position.size_lots
    assert -100 < remaining <= 0  # the short was reduced
    after = group_risk(v.state.markets, carol)
    # back above maintenance after closing part of it, or still queued for the rest
    assert (after.equity_quantums >= after.maintenance_quantums
            or carol.key in v.state.liquidation_queue)
    assert after.equity_quantums >= 0
    check_invariants(v.state)
    v.run_ok(ProcessLiquidations())
    check_invariants(v.state)


def test_a_short_option_below_maintenance_is_bought_back_through_the_book() -> None:
    _liquidate_short_calls(portfolio=False)


def test_a_portfolio_margined_short_option_is_bought_back_through_the_book() -> None:
    _liquidate_short_calls(portfolio=True)


def test_liquidation_closes_short_options_before_their_hedges() -> None:
    from rollbook.execution.liquidation import _liquidation_order

    v = option_venue()
    v.fund([ALICE, BOB], 1_000_000 * USDC)
    call, put = v.oid(K100, CALL), v.oid(K100, PUT)
    _trade(v, BOB, ALICE, call, 10)  # ALICE long calls
    _trade(v, ALICE, BOB, put, 10)  # ALICE short puts
    _trade(v, BOB, ALICE, BTC, 100, P100K)  # ALICE long the perpetual
    assert _liquidation_order(v.state, _cross(v, ALICE)) == [put, BTC, call]
    assert INDEX_100K_QUANTUMS == 100_000 * USDC


@settings(max_examples=200, deadline=None)
@given(pick=st.integers(0, 5), lots=st.integers(-10**6, -1),
       index_k=st.integers(20, 400))
def test_the_engine_s_standard_short_margin_is_standard_margin(pick: int, lots: int,
                                                               index_k: int) -> None:
    from rollbook.execution.options.engine import standard_short_requirements
    from rollbook.execution.options.portfolio import ScenarioCache

    v = _shared_venue()
    state = v.state
    spec = v.market(sorted(v.option_id.values())[pick]).instrument
    cache = ScenarioCache(state.config.portfolio_margin, state.oracle_timestamp_ms,
                          {BTC: index_k * 1_000 * USDC}, state.smiles)
    config = state.config.standard_option_margin
    expected = standard_margin([(spec, lots)], cache, config)  # type: ignore[list-item]
    assert standard_short_requirements(spec, lots, cache, config) == (  # type: ignore[arg-type]
        expected.initial_quantums, expected.maintenance_quantums)

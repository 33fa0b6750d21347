from conftest import ALICE, BOB, BTC, PRICE_100K_TICKS, USDC, Venue
from rollbook.execution import PlaceOrder, Side, TimeInForce
from rollbook.execution.invariants import check_invariants


def test_cross_trade_settles_fees_and_positions(venue: Venue) -> None:
    venue.fund([ALICE, BOB], 100_000 * USDC)
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.SELL, PRICE_100K_TICKS, 1_000))
    receipts = venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.BUY, PRICE_100K_TICKS, 1_000,
                                       time_in_force=TimeInForce.IOC))
    fill = receipts[0].events[0]
    assert fill.size_lots == 1_000 and fill.price_ticks == PRICE_100K_TICKS
    # 1,000 lots x $10 = $10,000 notional: taker pays 5 bps, maker earns a 1 bp rebate
    assert fill.taker_fee_quantums == 5 * USDC and fill.maker_fee_quantums == -1 * USDC
    state = venue.state
    assert state.subaccounts[(BOB, 0)].cross.positions[BTC].size_lots == 1_000
    assert state.subaccounts[(ALICE, 0)].cross.positions[BTC].size_lots == -1_000
    assert state.fee_pool_quantums == 4 * USDC
    check_invariants(state)

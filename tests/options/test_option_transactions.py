"""Option transactions, one by one: what each does, and every way each is rejected.

Rejections go through ``assert_rejected`` (the stable code and message, no events, and the
canonical root unchanged); successes run through ``Venue.run``, which commits the root and checks
the incremental tree against a full recomputation, so a missed touch mark fails here too.
"""

from __future__ import annotations

import dataclasses

import coincurve
import pytest
from option_venue import (
    CALL,
    DAY_MS,
    EXPIRY_MS,
    PUT,
    SHORT_EXPIRY_MS,
    START_MS,
    STRIKES,
    OptionVenue,
    option_venue,
    order,
)

from conftest import (
    ALICE,
    BOB,
    BTC,
    CAROL,
    INDEX_100K_QUANTUMS,
    ORACLE_KEY,
    USDC,
    assert_rejected,
    flat_smile,
    options_config,
    signed_oracle,
    signed_volatility,
)
from rollbook.commitment.leaves import (
    LEAF_MARKET,
    LEAF_OPTION_EXPIRY,
    LEAF_OPTION_MARKET,
    LEAF_PORTFOLIO_MARGIN,
    LEAF_QUOTES,
    LEAF_VOLATILITY,
)
from rollbook.execution import (
    CancelAll,
    DelistOption,
    ErrorCode,
    ExpireOptions,
    ListOption,
    MassQuote,
    PlaceOrder,
    Quote,
    SetMarginMode,
    SetMmp,
    SetPortfolioMargin,
    Side,
    SviParameters,
    TimeInForce,
    VolatilityUpdate,
    option_class,
)
from rollbook.execution.crypto import address_of_public_key
from rollbook.execution.events import (
    CancelReason,
    OptionDelisted,
    OptionListed,
    OrderCancelled,
    OrderPlaced,
    PortfolioMarginSet,
)
from rollbook.execution.options.fixed_point import WAD
from rollbook.execution.options.instruments import option_mark
from rollbook.execution.options.smile import SviSmile
from rollbook.execution.state import EXPIRY_CLOSED, EXPIRY_LISTED

K100 = 100_000 * USDC
FUNDS = 1_000_000 * USDC


@pytest.fixture
def ov() -> OptionVenue:
    v = option_venue()
    v.fund([ALICE, BOB, CAROL], FUNDS)
    return v


# --- listing ------------------------------------------------------------------------------------


def test_list_option_creates_the_market_and_its_leaves() -> None:
    v = OptionVenue()
    v.run_ok(v.oracle(INDEX_100K_QUANTUMS))
    tx = v.list_tx(EXPIRY_MS, K100, CALL)
    (receipt,) = v.run_ok(tx)
    assert receipt.events == (OptionListed(tx.market_id, BTC, EXPIRY_MS, K100, int(CALL)),)
    market = v.market(tx.market_id)
    assert market.option is not None and market.config.lot_size_nanounits == 10_000_000
    assert market.index_price_quantums == 0  # no smile yet: no mark, no trading
    for key in ((LEAF_MARKET, tx.market_id), (LEAF_OPTION_MARKET, tx.market_id),
                (LEAF_OPTION_EXPIRY, BTC, EXPIRY_MS)):
        assert v.commitment.slot_of(key) is not None
    expiry = v.state.expiries[(BTC, EXPIRY_MS)]
    assert expiry.status == EXPIRY_LISTED and expiry.market_ids == [tx.market_id]
    assert expiry.last_sample_price_quantums == INDEX_100K_QUANTUMS  # seeded
    v.fund([ALICE], FUNDS)
    assert_rejected(v.state, order(ALICE, tx.market_id, Side.BUY, 3_000, 1),
                    ErrorCode.ORACLE_PRICE_MISSING,
                    f"market {tx.market_id} has no volatility smile")
    v.set_vol()
    smile = v.state.smiles[(BTC, EXPIRY_MS)]
    expected = option_mark(market.option.spec, INDEX_100K_QUANTUMS, smile,
                           v.state.oracle_timestamp_ms)
    assert market.index_price_quantums == expected.price_quantums > 0
    assert v.commitment.slot_of((LEAF_VOLATILITY, BTC, EXPIRY_MS)) is not None
    v.run_ok(order(ALICE, tx.market_id, Side.BUY, v.mark_ticks(tx.market_id) - 100, 1))


def test_options_listed_by_configuration_trade_after_the_first_oracle_and_smile() -> None:
    base = options_config()
    from rollbook.execution import OptionTerms, option_market

    listed = option_market(7, base.option_classes[0], OptionTerms(EXPIRY_MS, K100, PUT))
    config = dataclasses.replace(base, markets=(*base.markets, listed))
    v = OptionVenue(config)
    assert v.state.expiries[(BTC, EXPIRY_MS)].market_ids == [7]
    assert v.commitment.slot_of((LEAF_OPTION_MARKET, 7)) is not None
    v.run_ok(v.oracle(INDEX_100K_QUANTUMS))
    assert v.state.expiries[(BTC, EXPIRY_MS)].sample_count == 1
    v.set_vol()
    assert v.market(7).index_price_quantums > 0


@pytest.mark.parametrize(
    ("change", "code", "detail"),
    [
        ({"index_id": 2}, ErrorCode.OPTION_CLASS_UNKNOWN, "index 2"),
        ({"market_id": 0}, ErrorCode.MALFORMED_TRANSACTION, "market id"),
        ({"market_id": 1}, ErrorCode.MARKET_ID_TAKEN, "market 1"),
        pytest.param({"option_type": 3}, ErrorCode.MALFORMED_TRANSACTION, "option type",
                     marks=pytest.mark.pure_only),
        ({"strike_quantums": 0}, ErrorCode.OPTION_TERMS_INVALID, "strike out of range"),
        ({"strike_quantums": 10**22 + 1}, ErrorCode.OPTION_TERMS_INVALID, None),
        ({"expiry_ms": "soon"}, ErrorCode.OPTION_TERMS_INVALID, "expiry out of range"),
        ({"expiry_ms": "late"}, ErrorCode.OPTION_TERMS_INVALID, "expiry out of range"),
        ({"strike_quantums": K100}, ErrorCode.OPTION_TERMS_INVALID, "listed as market 102"),
    ],
    ids=["class", "market-id", "taken", "type", "strike-0", "strike-max", "soon", "late",
         "duplicate"],
)
def test_list_option_rejections(ov: OptionVenue, change: dict[str, object], code: ErrorCode,
                                detail: str | None) -> None:
    now = ov.state.timestamp_ms
    fields: dict[str, object] = {"market_id": 500, "index_id": BTC, "expiry_ms": EXPIRY_MS,
                                 "strike_quantums": 95_000 * USDC, "option_type": CALL}
    fields.update(change)
    if fields["expiry_ms"] == "soon":
        fields["expiry_ms"] = now + 59_999
    if fields["expiry_ms"] == "late":
        fields["expiry_ms"] = now + 2 * 365 * DAY_MS + 1
    assert_rejected(ov.state, ListOption(**fields), code, detail)  # type: ignore[arg-type]


def test_list_option_needs_an_index_price_and_fits_the_limits() -> None:
    config = dataclasses.replace(options_config(),
                                 option_classes=(option_class(BTC, "BTC", listed_markets_max=2),))
    v = OptionVenue(config)
    v.run_ok()
    assert_rejected(v.state, ListOption(100, BTC, EXPIRY_MS, K100, CALL),
                    ErrorCode.ORACLE_PRICE_MISSING, f"index {BTC}")
    v.run_ok(v.oracle(INDEX_100K_QUANTUMS))
    v.list_options(EXPIRY_MS, (K100,))
    assert_rejected(v.state, ListOption(200, BTC, EXPIRY_MS, 2 * K100, CALL),
                    ErrorCode.OPTION_LISTING_LIMIT)


def test_list_option_refuses_a_closed_expiry() -> None:
    v = option_venue(expiries=(SHORT_EXPIRY_MS,), strikes=(K100,))
    v.run_ok(advance_ms=SHORT_EXPIRY_MS - v.clock_ms)
    v.run_ok(ExpireOptions(BTC, SHORT_EXPIRY_MS))  # closes the books; oracle not there yet
    assert v.state.expiries[(BTC, SHORT_EXPIRY_MS)].status == EXPIRY_CLOSED
    assert_rejected(v.state, ListOption(300, BTC, SHORT_EXPIRY_MS, 2 * K100, CALL),
                    ErrorCode.OPTION_TERMS_INVALID)  # also too close: either rule refuses


# --- delisting ----------------------------------------------------------------------------------


def test_delist_option_cancels_orders_and_drops_the_records(ov: OptionVenue) -> None:
    market_id = ov.oid(K100, CALL)
    ov.run_ok(order(ALICE, market_id, Side.BUY, 3_000, 5))
    (receipt,) = ov.run_ok(DelistOption(market_id))
    assert receipt.events == (OrderCancelled(1, market_id, 5, CancelReason.DELISTED),
                              OptionDelisted(market_id))
    assert market_id not in ov.state.markets and not ov.state.orders
    assert ov.commitment.slot_of((LEAF_MARKET, market_id)) is None
    assert ov.commitment.slot_of((LEAF_OPTION_MARKET, market_id)) is None
    assert_rejected(ov.state, order(ALICE, market_id, Side.BUY, 3_000, 5),
                    ErrorCode.UNKNOWN_MARKET)
    # the id can be listed again
    ov.run_ok(ListOption(market_id, BTC, EXPIRY_MS, K100, CALL))


def test_delisting_the_last_option_of_an_expiry_drops_the_expiry_and_smile() -> None:
    v = option_venue(strikes=(K100,))
    for market_id in list(v.option_id.values()):
        v.run_ok(DelistOption(market_id))
    assert not v.state.expiries and not v.state.smiles
    assert v.commitment.slot_of((LEAF_OPTION_EXPIRY, BTC, EXPIRY_MS)) is None
    assert v.commitment.slot_of((LEAF_VOLATILITY, BTC, EXPIRY_MS)) is None


def test_delist_rejections(ov: OptionVenue) -> None:
    assert_rejected(ov.state, DelistOption(999), ErrorCode.UNKNOWN_MARKET, "market 999")
    assert_rejected(ov.state, DelistOption(BTC), ErrorCode.NOT_AN_OPTION_MARKET, f"market {BTC}")
    market_id = ov.oid(K100, PUT)
    price = ov.mark_ticks(market_id)
    ov.run_ok(order(BOB, market_id, Side.SELL, price, 3))
    ov.run_ok(order(ALICE, market_id, Side.BUY, price, 3, TimeInForce.IOC))
    assert_rejected(ov.state, DelistOption(market_id), ErrorCode.MARKET_HAS_OPEN_INTEREST,
                    "3 lots")


# --- volatility ---------------------------------------------------------------------------------


def test_volatility_update_moves_marks_and_is_committed(ov: OptionVenue) -> None:
    market_id = ov.oid(K100, CALL)
    before = ov.market(market_id).index_price_quantums
    ov.set_vol(800_000)
    after = ov.market(market_id).index_price_quantums
    assert after > before  # more volatility, dearer options
    smile = ov.state.smiles[(BTC, EXPIRY_MS)]
    assert smile.observed_ms == ov.state.timestamp_ms


def _vol(state_ts: int, expiry_ms: int = EXPIRY_MS) -> SviParameters:
    return flat_smile(BTC, expiry_ms, state_ts, 600_000)


def test_volatility_update_rejections(ov: OptionVenue) -> None:
    state = ov.state
    ts = state.timestamp_ms + 1
    good = _vol(ts)
    assert_rejected(state, signed_volatility(state, ts, ()), ErrorCode.MALFORMED_TRANSACTION,
                    "smile or signature count")
    assert_rejected(state, signed_volatility(state, ts, (good, good)),
                    ErrorCode.MALFORMED_TRANSACTION, "duplicate smile")
    assert_rejected(state, signed_volatility(state, ts, (_vol(ts, EXPIRY_MS + 1),)),
                    ErrorCode.VOLATILITY_UNKNOWN_EXPIRY, f"index 1 expiry {EXPIRY_MS + 1}")
    bad = dataclasses.replace(good, b_wad=3 * WAD)  # wings steeper than Lee's bound
    assert_rejected(state, signed_volatility(state, ts, (bad,)), ErrorCode.VOLATILITY_INVALID)
    negative = dataclasses.replace(good, a_wad=-WAD)
    assert_rejected(state, signed_volatility(state, ts, (negative,)),
                    ErrorCode.VOLATILITY_INVALID)
    current = state.smiles[(BTC, EXPIRY_MS)].observed_ms
    assert_rejected(state, signed_volatility(state, current, (_vol(current),)),
                    ErrorCode.ORACLE_STALE, "older than the current smile")
    assert_rejected(state, signed_volatility(state, ts + 5_000, (_vol(ts + 5_000),)),
                    ErrorCode.ORACLE_STALE)
    signed = signed_volatility(state, ts, (good,))
    assert_rejected(state, VolatilityUpdate(ts, (good,), ()),
                    ErrorCode.ORACLE_SIGNATURES_INSUFFICIENT, "0 of 1")
    assert_rejected(state, VolatilityUpdate(ts, (good,), signed.signatures * 2),
                    ErrorCode.ORACLE_SIGNATURE_INVALID)
    other = signed_volatility(state, ts, (good,), keys=((0xB0B).to_bytes(32, "big"),))
    assert_rejected(state, other, ErrorCode.ORACLE_SIGNATURE_INVALID)
    # a price signature never verifies as a volatility signature (distinct domain tags)
    price = signed_oracle(state, ts, INDEX_100K_QUANTUMS)
    assert_rejected(state, VolatilityUpdate(ts, (good,), price.signatures),
                    ErrorCode.ORACLE_SIGNATURE_INVALID)
    assert ov.run(signed)[0].ok


def test_volatility_threshold_of_several_signers() -> None:
    keys = tuple((0xC0DE + i).to_bytes(32, "big") for i in range(3))
    signers = tuple(address_of_public_key(
        coincurve.PrivateKey(k).public_key.format(compressed=False)) for k in keys)
    config = dataclasses.replace(options_config(), oracle_signers=signers, oracle_threshold=2)
    v = OptionVenue(config)
    ts = v.next_ms
    prices = signed_oracle(v.state, ts, INDEX_100K_QUANTUMS, key=keys[0])
    from rollbook.execution import OracleUpdate

    second = signed_oracle(v.state, ts, INDEX_100K_QUANTUMS, key=keys[1])
    v.run_ok(OracleUpdate(ts, prices.prices, prices.signatures + second.signatures))
    v.run_ok(v.list_tx(EXPIRY_MS, K100, CALL))
    ts = v.state.timestamp_ms
    smile = (_vol(ts),)
    assert_rejected(v.state, signed_volatility(v.state, ts, smile, keys[:1]),
                    ErrorCode.ORACLE_SIGNATURES_INSUFFICIENT, "1 of 2")
    assert v.run(signed_volatility(v.state, v.next_ms, (_vol(v.next_ms),), keys[1:]))[0].ok


def test_a_smile_is_the_smile_module_s_smile(ov: OptionVenue) -> None:
    params = ov.smile()
    ov.run_ok(ov.volatility(params))
    stored = ov.state.smiles[(BTC, EXPIRY_MS)]
    assert stored == SviSmile(BTC, EXPIRY_MS, ov.state.timestamp_ms, params.a_wad, params.b_wad,
                              params.rho_wad, params.m_wad, params.sigma_svi_wad)


# --- trading an option --------------------------------------------------------------------------


def test_option_orders_use_the_mark_band_with_an_index_allowance(ov: OptionVenue) -> None:
    market_id = ov.oid(110_000 * USDC, CALL)  # cheap out-of-the-money call
    market = ov.market(market_id)
    mark = market.index_price_quantums
    # 50% of the mark plus 2% of the index ($2,000), in $1 ticks
    allowance_ticks = (mark // 2 + 2_000 * USDC) // USDC
    mark_ticks = mark // USDC
    ov.run_ok(order(ALICE, market_id, Side.BUY, max(1, mark_ticks - allowance_ticks + 1), 1))
    assert_rejected(ov.state, order(ALICE, market_id, Side.SELL,
                                    mark_ticks + allowance_ticks + 2, 1),
                    ErrorCode.PRICE_OUTSIDE_BAND)


def test_options_stop_trading_at_expiry() -> None:
    v = option_venue(expiries=(SHORT_EXPIRY_MS,), strikes=(K100,))
    v.fund([ALICE], FUNDS)
    market_id = v.oid(K100, CALL, SHORT_EXPIRY_MS)
    v.run_ok(order(ALICE, market_id, Side.BUY, 100, 1))
    v.run_ok(advance_ms=SHORT_EXPIRY_MS - v.clock_ms)
    assert_rejected(v.state, order(ALICE, market_id, Side.BUY, 100, 1),
                    ErrorCode.MARKET_NOT_ACTIVE, f"market {market_id} expired")
    assert_rejected(v.state, MassQuote(ALICE, 0, BTC, (Quote(market_id, Side.BUY, 100, 1),)),
                    ErrorCode.MARKET_NOT_ACTIVE)


def test_an_option_can_be_isolated(ov: OptionVenue) -> None:
    market_id = ov.oid(K100, PUT)
    ov.run_ok(SetMarginMode(ALICE, 0, market_id, True))
    from rollbook.execution import MoveIsolatedMargin

    ov.run_ok(MoveIsolatedMargin(ALICE, 0, market_id, 10_000 * USDC))
    price = ov.mark_ticks(market_id)
    ov.run_ok(order(BOB, market_id, Side.BUY, price, 2))
    ov.run_ok(order(ALICE, market_id, Side.SELL, price, 2, TimeInForce.IOC))
    group = ov.state.subaccounts[(ALICE, 0)].isolated[market_id]
    assert group.option_positions == 1 and group.positions[market_id].size_lots == -2


# --- portfolio margin mode ----------------------------------------------------------------------


def test_set_portfolio_margin(ov: OptionVenue) -> None:
    (receipt,) = ov.run_ok(SetPortfolioMargin(ALICE, 0, True))
    assert receipt.events == (PortfolioMarginSet(ALICE, 0, True),)
    assert ov.state.subaccounts[(ALICE, 0)].cross.portfolio_margin
    assert ov.commitment.slot_of((LEAF_PORTFOLIO_MARGIN, ALICE, 0)) is not None
    (receipt,) = ov.run_ok(SetPortfolioMargin(ALICE, 0, True))  # no change: no event
    assert receipt.events == ()
    ov.run_ok(SetPortfolioMargin(ALICE, 0, False))
    assert ov.commitment.slot_of((LEAF_PORTFOLIO_MARGIN, ALICE, 0)) is None


def test_set_portfolio_margin_rejections(ov: OptionVenue) -> None:
    assert_rejected(ov.state, SetPortfolioMargin(b"\x99" * 20, 0, True),
                    ErrorCode.ACCOUNT_NOT_FOUND)
    # 10x leverage on the perpetual fits its 10% tier, not the grid's 15% + 1% delta charge
    ov.fund([b"\x77" * 20], 10_000 * USDC)
    ov.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, 1_000_000, 9_500))
    ov.run_ok(PlaceOrder(b"\x77" * 20, 0, BTC, Side.BUY, 1_000_000, 9_500,
                         time_in_force=TimeInForce.IOC))
    assert_rejected(ov.state, SetPortfolioMargin(b"\x77" * 20, 0, True),
                    ErrorCode.INSUFFICIENT_MARGIN)


def test_set_portfolio_margin_refused_in_liquidation(ov: OptionVenue) -> None:
    key = ov.state.subaccounts[(ALICE, 0)].cross.key
    ov.state.liquidation_queue[key] = ov.state.next_liquidation_seq  # as a price move would
    ov.state.next_liquidation_seq += 1
    assert_rejected(ov.state, SetPortfolioMargin(ALICE, 0, True),
                    ErrorCode.ACCOUNT_IN_LIQUIDATION)


# --- market-maker protection and mass quotes -------------------------------------------------


def test_set_mmp_installs_resets_and_removes(ov: OptionVenue) -> None:
    ov.run_ok(SetMmp(ALICE, 0, BTC, 1_000, 5_000, 10**9, 0, 0))
    ladder = ov.state.quotes[(ALICE, 0, BTC)]
    assert ladder.mmp is not None and ladder.mmp.config.quantity_limit_nanounits == 10**9
    assert ladder.mmp.config.delta_limit_nanounits is None
    assert ov.commitment.slot_of((LEAF_QUOTES, ALICE, 0, BTC)) is not None
    ov.run_ok(SetMmp(ALICE, 0, BTC, 0, 0, 0, 0, 0))  # every limit 0: off
    assert (ALICE, 0, BTC) not in ov.state.quotes
    assert ov.commitment.slot_of((LEAF_QUOTES, ALICE, 0, BTC)) is None
    (receipt,) = ov.run_ok(SetMmp(ALICE, 0, BTC, 0, 0, 0, 0, 0))  # nothing to remove
    assert receipt.events == ()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ((2, 1_000, 0, 1, 0, 0), ErrorCode.OPTION_CLASS_UNKNOWN),
        ((BTC, 0, 0, 1, 0, 0), ErrorCode.MMP_CONFIG_INVALID),
        ((BTC, 3_600_001, 0, 1, 0, 0), ErrorCode.MMP_CONFIG_INVALID),
        ((BTC, 1_000, 86_400_001, 1, 0, 0), ErrorCode.MMP_CONFIG_INVALID),
        ((BTC, 1_000, 0, -1, 0, 0), ErrorCode.MMP_CONFIG_INVALID),
    ],
    ids=["index", "window-0", "window-max", "frozen-max", "negative"],
)
def test_set_mmp_rejections(ov: OptionVenue, fields: tuple[int, ...], code: ErrorCode) -> None:
    index_id, window, frozen, quantity, delta, vega = fields
    assert_rejected(ov.state, SetMmp(ALICE, 0, index_id, window, frozen, quantity, delta, vega),
                    code)
    assert_rejected(ov.state, SetMmp(b"\x99" * 20, 0, BTC, 1_000, 0, 1, 0, 0),
                    ErrorCode.ACCOUNT_NOT_FOUND)


def _ladder(ov: OptionVenue, size: int = 5, width: int = 50) -> tuple[Quote, ...]:
    quotes = []
    for strike in STRIKES:
        for option_type in (CALL, PUT):
            market_id = ov.oid(strike, option_type)
            mark = ov.mark_ticks(market_id)
            quotes.append(Quote(market_id, Side.BUY, max(1, mark - width), size))
            quotes.append(Quote(market_id, Side.SELL, mark + width, size))
    return tuple(quotes)


def test_mass_quote_places_and_replaces_a_ladder(ov: OptionVenue) -> None:
    quotes = _ladder(ov)
    (receipt,) = ov.run_ok(MassQuote(ALICE, 0, BTC, quotes))
    placed = [e for e in receipt.events if isinstance(e, OrderPlaced)]
    assert len(placed) == len(quotes) == 12
    assert [e.order_id for e in placed] == list(range(1, 13))
    ladder = ov.state.quotes[(ALICE, 0, BTC)]
    assert ladder.quote_order_ids == list(range(1, 13))
    assert all(ov.state.orders[i].post_only for i in ladder.quote_order_ids)
    # a regular order of the same account is not part of the ladder
    regular = order(ALICE, ov.oid(K100, CALL), Side.BUY, 1_000, 1)
    ov.run_ok(regular)
    (receipt,) = ov.run_ok(MassQuote(ALICE, 0, BTC, _ladder(ov, size=7, width=40)))
    cancels = [e for e in receipt.events if isinstance(e, OrderCancelled)]
    assert [e.order_id for e in cancels] == list(range(1, 13))
    assert {e.reason for e in cancels} == {CancelReason.QUOTE_REPLACED}
    assert 13 in ov.state.orders  # the regular order stays
    assert len(ov.state.subaccounts[(ALICE, 0)].orders) == 13
    # an empty mass quote pulls the ladder
    ov.run_ok(MassQuote(ALICE, 0, BTC, ()))
    assert list(ov.state.subaccounts[(ALICE, 0)].orders) == [13]
    assert (ALICE, 0, BTC) not in ov.state.quotes


def test_a_new_ladder_may_cross_the_ladder_it_replaces(ov: OptionVenue) -> None:
    market_id = ov.oid(K100, CALL)
    mark = ov.mark_ticks(market_id)
    ov.run_ok(MassQuote(ALICE, 0, BTC, (Quote(market_id, Side.SELL, mark + 10, 5),)))
    ov.run_ok(MassQuote(ALICE, 0, BTC, (Quote(market_id, Side.BUY, mark + 20, 5),)))
    assert ov.market(market_id).book.best_bid() == mark + 20


@pytest.mark.pure_only
def test_mass_quote_rejects_a_side_that_is_not_a_side(ov: OptionVenue) -> None:
    market_id = ov.oid(K100, CALL)
    assert_rejected(ov.state, MassQuote(ALICE, 0, BTC, (Quote(market_id, 3, 1, 1),)),  # type: ignore[arg-type]
                    ErrorCode.MALFORMED_TRANSACTION, "side")


def test_mass_quote_rejections(ov: OptionVenue) -> None:
    state = ov.state
    market_id = ov.oid(K100, CALL)
    mark = ov.mark_ticks(market_id)
    assert_rejected(state, MassQuote(b"\x99" * 20, 0, BTC, ()), ErrorCode.ACCOUNT_NOT_FOUND)
    assert_rejected(state, MassQuote(ALICE, 0, 2, ()), ErrorCode.OPTION_CLASS_UNKNOWN)
    assert_rejected(state, MassQuote(ALICE, 0, BTC, (Quote(market_id, Side.BUY, 1, 1),) * 65),
                    ErrorCode.MASS_QUOTE_INVALID, "65 > 64 quotes")
    assert_rejected(state, MassQuote(ALICE, 0, BTC, (Quote(BTC, Side.BUY, 999_000, 1),)),
                    ErrorCode.MASS_QUOTE_INVALID, "market 1 is not an option on index 1")
    assert_rejected(state, MassQuote(ALICE, 0, BTC, (Quote(999, Side.BUY, 1, 1),)),
                    ErrorCode.UNKNOWN_MARKET)
    assert_rejected(state, MassQuote(ALICE, 0, BTC, (Quote(market_id, Side.BUY, 0, 1),)),
                    ErrorCode.INVALID_PRICE)
    assert_rejected(state, MassQuote(ALICE, 0, BTC, (Quote(market_id, Side.BUY, mark, 0),)),
                    ErrorCode.INVALID_SIZE)
    assert_rejected(state, MassQuote(ALICE, 0, BTC, (Quote(market_id, Side.BUY, 10 * mark, 1),)),
                    ErrorCode.PRICE_OUTSIDE_BAND)
    crossed = (Quote(market_id, Side.BUY, mark, 1), Quote(market_id, Side.SELL, mark, 1))
    assert_rejected(state, MassQuote(ALICE, 0, BTC, crossed), ErrorCode.POST_ONLY_WOULD_CROSS,
                    f"quotes cross each other in market {market_id}")
    ov.run_ok(order(BOB, market_id, Side.SELL, mark + 5, 1))
    assert_rejected(state, MassQuote(ALICE, 0, BTC, (Quote(market_id, Side.BUY, mark + 5, 1),)),
                    ErrorCode.POST_ONLY_WOULD_CROSS, f"market {market_id}")
    ov.fund([b"\x55" * 20], 100 * USDC)
    big = (Quote(market_id, Side.SELL, mark + 10, 100),)  # a $33,000 short call on $100
    assert_rejected(state, MassQuote(b"\x55" * 20, 0, BTC, big), ErrorCode.INSUFFICIENT_MARGIN)


def test_mass_quote_is_atomic(ov: OptionVenue) -> None:
    """One bad quote at the end of a ladder: nothing of the ladder happens, the old one stays."""
    ov.run_ok(MassQuote(ALICE, 0, BTC, _ladder(ov)))
    ids = list(ov.state.quotes[(ALICE, 0, BTC)].quote_order_ids)
    bad = (*_ladder(ov, width=30), Quote(ov.oid(K100, PUT), Side.BUY, 10**9, 1))
    assert_rejected(ov.state, MassQuote(ALICE, 0, BTC, bad), ErrorCode.PRICE_OUTSIDE_BAND)
    assert ov.state.quotes[(ALICE, 0, BTC)].quote_order_ids == ids
    assert all(i in ov.state.orders for i in ids)


def test_mass_quote_limits() -> None:
    config = dataclasses.replace(options_config(), open_orders_per_subaccount_max=4)
    v = option_venue(config=config)
    v.fund([ALICE], FUNDS)
    assert_rejected(v.state, MassQuote(ALICE, 0, BTC, _ladder(v)), ErrorCode.OPEN_ORDERS_LIMIT)
    v.run_ok(MassQuote(ALICE, 0, BTC, _ladder(v)[:4]))
    v.run_ok(MassQuote(ALICE, 0, BTC, _ladder(v, width=30)[:4]))  # replaces: still 4


# --- expiry -------------------------------------------------------------------------------------


def test_expire_options_rejections() -> None:
    v = option_venue(expiries=(SHORT_EXPIRY_MS,), strikes=(K100,))
    state = v.state
    assert_rejected(state, ExpireOptions(BTC, SHORT_EXPIRY_MS + 1), ErrorCode.EXPIRY_UNKNOWN,
                    f"index 1 expiry {SHORT_EXPIRY_MS + 1}")
    assert_rejected(state, ExpireOptions(BTC, SHORT_EXPIRY_MS), ErrorCode.EXPIRY_NOT_REACHED,
                    "batch time is before expiry")
    v.run_ok(advance_ms=SHORT_EXPIRY_MS - v.clock_ms)
    v.run_ok(ExpireOptions(BTC, SHORT_EXPIRY_MS))  # closes the books
    assert_rejected(state, ExpireOptions(BTC, SHORT_EXPIRY_MS), ErrorCode.EXPIRY_NOT_REACHED,
                    "no index sample at or after expiry yet")
    v.run_ok(v.oracle(INDEX_100K_QUANTUMS))
    v.run_ok(ExpireOptions(BTC, SHORT_EXPIRY_MS))
    assert_rejected(state, ExpireOptions(BTC, SHORT_EXPIRY_MS), ErrorCode.EXPIRY_ALREADY_SETTLED)
    assert START_MS < SHORT_EXPIRY_MS


def test_oracle_refuses_option_index_prices_outside_black76s_domain(ov: OptionVenue) -> None:
    state = ov.state
    tx = signed_oracle(state, state.timestamp_ms + 1, 10**22 + 1, BTC, ORACLE_KEY)
    assert_rejected(state, tx, ErrorCode.MALFORMED_TRANSACTION, "price out of range")


def test_cancel_all_covers_option_markets(ov: OptionVenue) -> None:
    ov.run_ok(MassQuote(ALICE, 0, BTC, _ladder(ov)))
    ov.run_ok(CancelAll(ALICE, 0, ov.oid(K100, CALL)))
    assert len(ov.state.subaccounts[(ALICE, 0)].orders) == 10
    ov.run_ok(CancelAll(ALICE, 0))
    assert not ov.state.orders


def test_a_configured_option_beyond_the_valuation_horizon_waits_unpriced() -> None:
    from rollbook.execution import OptionTerms, option_market

    base = options_config()
    far = START_MS + 11 * 365 * DAY_MS  # beyond Black-76's ten years from the oracle time
    listed = option_market(7, base.option_classes[0], OptionTerms(far, K100, CALL))
    v = OptionVenue(dataclasses.replace(base, markets=(*base.markets, listed)))
    v.run_ok(v.oracle(INDEX_100K_QUANTUMS))
    assert v.market(7).index_price_quantums == 0
    v.fund([ALICE], FUNDS)
    assert_rejected(v.state, order(ALICE, 7, Side.BUY, 100, 1), ErrorCode.ORACLE_PRICE_MISSING)
    smile = flat_smile(BTC, far, v.next_ms, 600_000)  # more than ten years of variance
    assert not v.run(v.volatility(smile))[0].ok  # refused as a smile too: nothing to price

"""Venue and market configuration: the genesis parameters every replica must share.

The instrument model separates *what is traded* (``InstrumentKind`` and the underlying index)
from *how it is traded* (ticks, lots, margin tiers, fees, limits). A perpetual references an
oracle index; an option references the same index plus its ``OptionTerms`` (expiry, strike,
call/put) and reuses the book, matching, fees, limits and the margin-group machinery unchanged.
An option's lot size is its contract size (underlying per lot); its margin tiers are unused
(options margin through ``options.engine``: portfolio or standard margin).

Options are listed per underlying index under an ``OptionClassConfig`` (the template every option
on that index shares: ticks, contract size, fees, limits, settlement window): at genesis, as
``InstrumentKind.OPTION`` markets in ``VenueConfig.markets``, or later by the operator's
``ListOption`` transaction, which builds the market with ``option_market``.

Invariants checked by ``validate_*`` at genesis:
- one lot at one tick is a whole number of quantums (``quantums_per_lot_tick`` is exact), so a
  fill's notional never needs rounding;
- margin tiers are sorted, initial >= maintenance > 0, and fractions are at most 100%;
- a maker rebate never exceeds the taker fee, so the fee pool never pays out more than it takes
  on a fill.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from rollbook.execution.options.instruments import OptionType
from rollbook.execution.options.portfolio import PortfolioMarginConfig, StandardMarginConfig
from rollbook.execution.units import NANOUNITS_PER_UNIT, PPM

__all__ = [
    "InstrumentKind",
    "MarginTier",
    "MarketConfig",
    "OptionClassConfig",
    "OptionTerms",
    "VenueConfig",
    "default_venue_config",
    "option_class",
    "option_market",
    "options_venue_config",
]

MARKET_ID_MAX = 0xFFFF
SUBACCOUNT_NUMBER_MAX = 0xFFFF
# A subaccount's leaf must decode inside the settlement contract's fixed bounds (its escape
# hatch reads the whole subaccount from one leaf), so these are protocol constants shared with
# Settlement.vy: the cross group plus at most 7 isolated groups, and at most 32 position records
# (a record exists while the subaccount has a position or open orders in that market). The
# insurance fund is exempt: it takes over positions as the backstop and never escapes.
# An L1 deposit the settlement contract accepted must always be creditable, or it would block
# every later deposit (they are credited in id order): the contract and the STF share this
# bound, and a deposit opens its subaccount even when ``subaccounts_max`` is reached (each one
# costs its sender L1 gas, which is what bounds them).
DEPOSIT_QUANTUMS_MAX = 10**15
GROUPS_PER_SUBACCOUNT_MAX = 8
POSITIONS_PER_SUBACCOUNT_MAX = 32
NOTIONAL_TIER_UNBOUNDED = 2**127 - 1
# Worst-case cost of an oracle update, funding tick or liquidation heartbeat (their work scales
# with holders and the liquidation queue, both bounded elsewhere); a batch must fit one.
HEARTBEAT_COST_BOUND_UNITS = 200_000
# Options: every live option is revalued on each oracle and volatility update (its mark is
# committed), so the number of listed option markets bounds that work.
OPTION_MARKETS_MAX = 1_024
EXPIRIES_PER_INDEX_MAX = 64
# An option index and strike stay far inside Black-76's domain even under the scenario grid's
# largest move (+1000%): 1e16 USD x 11 < PRICE_WAD_MAX (1e18 USD).
OPTION_PRICE_QUANTUMS_MAX = 10**22
OPTION_TIME_TO_EXPIRY_MS_MIN = 60_000  # listing at least a minute before expiry
OPTION_TIME_TO_EXPIRY_MS_MAX = 2 * 365 * 86_400_000  # and at most two years before it
SETTLEMENT_WINDOW_MS_MAX = 86_400_000  # instruments.SETTLEMENT_WINDOW_MS_MAX
# option markets have no tiered margin (options.engine margins them); validation wants one tier
_UNUSED_OPTION_TIERS_PPM = PPM


class InstrumentKind(IntEnum):
    PERPETUAL = 1
    OPTION = 2  # European, cash-settled in USDC on an oracle index (``OptionTerms``)


@dataclass(frozen=True, slots=True)
class OptionTerms:
    """What makes an option market an option: expiry, strike and call/put."""

    expiry_ms: int
    strike_quantums: int  # per whole unit of the underlying
    option_type: OptionType


@dataclass(frozen=True, slots=True)
class MarginTier:
    """Margin fractions applied to the part of a position's notional inside this tier.

    Tiers are progressive, like income-tax brackets: the requirement of a position is the sum
    over tiers of (notional inside the tier) x (fraction), so it is continuous and monotone in
    size. Large positions pay higher fractions on their excess (risk-adjusted margin).
    """

    notional_quantums_max: int
    initial_ppm: int
    maintenance_ppm: int


@dataclass(frozen=True, slots=True)
class MarketConfig:
    market_id: int
    symbol: str
    kind: InstrumentKind
    index_id: int
    tick_size_quantums: int  # one price tick, in quantums per whole base unit
    lot_size_nanounits: int  # one lot, in 10^-9 base units
    margin_tiers: tuple[MarginTier, ...]
    order_size_lots_max: int
    open_interest_lots_max: int
    price_band_ppm: int  # limit orders must lie within this distance of the oracle price
    maker_fee_ppm: int  # negative is a rebate
    taker_fee_ppm: int
    liquidation_penalty_ppm: int
    impact_notional_quantums: int  # depth used for the funding premium's impact prices
    funding_interval_s: int
    funding_sample_interval_s: int
    funding_rate_cap_ppm: int  # per funding interval
    funding_interest_ppm: int  # per funding interval, the baseline when the premium is zero
    funding_clamp_ppm: int  # per funding interval, how far the interest term may move
    funding_premium_divisor: int  # the premium is an 8-hour rate paid hourly: divide by 8
    option: OptionTerms | None = None  # set exactly for InstrumentKind.OPTION

    @property
    def quantums_per_lot_tick(self) -> int:
        """Value in quantums of one lot at a price of one tick (exact by validation)."""
        return self.tick_size_quantums * self.lot_size_nanounits // NANOUNITS_PER_UNIT


@dataclass(frozen=True, slots=True)
class OptionClassConfig:
    """The template of every option listed on one index (one per index).

    Prices are in quantums per whole unit of the underlying, like the index; the lot is the
    contract size. Limit orders must lie within ``price_band_ppm`` of the mark plus
    ``price_band_index_ppm`` of the index (an absolute allowance, so that cheap options can be
    quoted). The settlement price is the time-weighted index over the ``settlement_window_ms``
    before expiry.
    """

    index_id: int
    symbol: str
    tick_size_quantums: int
    lot_size_nanounits: int
    order_size_lots_max: int = 1_000_000
    open_interest_lots_max: int = 10**9
    price_band_ppm: int = 500_000
    price_band_index_ppm: int = 20_000
    maker_fee_ppm: int = 0
    taker_fee_ppm: int = 300
    liquidation_penalty_ppm: int = 10_000
    settlement_window_ms: int = 1_800_000  # 30 minutes (Deribit's TWAP)
    listed_markets_max: int = 256


@dataclass(frozen=True, slots=True)
class VenueConfig:
    chain_id: int
    markets: tuple[MarketConfig, ...]
    oracle_signers: tuple[bytes, ...]
    oracle_threshold: int
    oracle_max_age_ms: int = 60_000
    oracle_max_future_ms: int = 5_000
    open_orders_per_subaccount_max: int = 1_000
    subaccounts_max: int = 1 << 24
    batch_cost_max: int = 1_000_000
    fills_per_order_max: int = 64
    withdrawal_margin_floor_ppm: int = 200_000
    liquidations_per_tx_max: int = 32
    liquidation_step_ppm: int = 200_000
    backstop_notional_quantums_max: int = 10**15
    deposit_quantums_max: int = 10**15
    option_classes: tuple[OptionClassConfig, ...] = ()
    portfolio_margin: PortfolioMarginConfig = field(default_factory=PortfolioMarginConfig)
    standard_option_margin: StandardMarginConfig = field(default_factory=StandardMarginConfig)

    def option_class(self, index_id: int) -> OptionClassConfig | None:
        for option_class in self.option_classes:
            if option_class.index_id == index_id:
                return option_class
        return None


def validate_market(market: MarketConfig) -> None:
    """Reject a configuration that would break an invariant of the STF."""
    assert 1 <= market.market_id <= MARKET_ID_MAX, "market id out of range"
    assert market.tick_size_quantums > 0 and market.lot_size_nanounits > 0
    product = market.tick_size_quantums * market.lot_size_nanounits
    assert product % NANOUNITS_PER_UNIT == 0, "one lot at one tick must be whole quantums"
    assert market.quantums_per_lot_tick >= 1
    assert market.margin_tiers, "a market needs at least one margin tier"
    previous_max = 0
    for tier in market.margin_tiers:
        assert tier.notional_quantums_max > previous_max, "tiers must be increasing"
        assert 0 < tier.maintenance_ppm <= tier.initial_ppm <= PPM
        previous_max = tier.notional_quantums_max
    assert market.margin_tiers[-1].notional_quantums_max == NOTIONAL_TIER_UNBOUNDED
    assert market.order_size_lots_max > 0 and market.open_interest_lots_max > 0
    assert 0 < market.price_band_ppm <= PPM
    assert market.taker_fee_ppm >= 0 and -market.maker_fee_ppm <= market.taker_fee_ppm
    assert 0 <= market.liquidation_penalty_ppm < market.margin_tiers[0].maintenance_ppm
    assert market.funding_interval_s > 0 and market.funding_sample_interval_s > 0
    assert market.funding_rate_cap_ppm >= 0 and market.funding_clamp_ppm >= 0
    assert market.funding_premium_divisor >= 1
    assert market.impact_notional_quantums > 0
    assert (market.kind == InstrumentKind.OPTION) == (market.option is not None), (
        "option terms exactly for option markets")
    if market.option is not None:
        assert 1 <= market.option.strike_quantums <= OPTION_PRICE_QUANTUMS_MAX
        assert market.option.expiry_ms > 0
        assert isinstance(market.option.option_type, OptionType)


def validate_option_class(option_class: OptionClassConfig) -> None:
    assert 0 <= option_class.index_id < 2**32
    assert option_class.tick_size_quantums > 0 and option_class.lot_size_nanounits > 0
    assert option_class.tick_size_quantums * option_class.lot_size_nanounits % (
        NANOUNITS_PER_UNIT) == 0, "one lot at one tick must be whole quantums"
    assert option_class.order_size_lots_max > 0 and option_class.open_interest_lots_max > 0
    assert 0 < option_class.price_band_ppm <= 10 * PPM
    assert 0 <= option_class.price_band_index_ppm <= PPM
    assert (option_class.taker_fee_ppm >= 0
            and -option_class.maker_fee_ppm <= option_class.taker_fee_ppm)
    assert 0 <= option_class.liquidation_penalty_ppm < _UNUSED_OPTION_TIERS_PPM
    assert 1 <= option_class.settlement_window_ms <= SETTLEMENT_WINDOW_MS_MAX
    assert 1 <= option_class.listed_markets_max <= OPTION_MARKETS_MAX


def validate_venue(config: VenueConfig) -> None:
    ids = [m.market_id for m in config.markets]
    assert len(ids) == len(set(ids)), "market ids must be unique"
    for market in config.markets:
        validate_market(market)
    class_indices = [c.index_id for c in config.option_classes]
    assert len(class_indices) == len(set(class_indices)), "one option class per index"
    for option_class in config.option_classes:
        validate_option_class(option_class)
    options = [m for m in config.markets if m.option is not None]
    assert len(options) <= OPTION_MARKETS_MAX
    terms = {(m.index_id, m.option.expiry_ms, m.option.strike_quantums, m.option.option_type)
             for m in options if m.option is not None}
    assert len(terms) == len(options), "an option is listed once"
    for market in options:
        assert config.option_class(market.index_id) is not None, (
            f"option market {market.market_id} needs an option class for its index")
    assert all(len(signer) == 20 for signer in config.oracle_signers)
    assert len(set(config.oracle_signers)) == len(config.oracle_signers)
    assert 1 <= config.oracle_threshold <= len(config.oracle_signers)
    assert 0 < config.liquidation_step_ppm <= PPM
    assert config.fills_per_order_max >= 1 and config.liquidations_per_tx_max >= 1
    assert config.batch_cost_max >= HEARTBEAT_COST_BOUND_UNITS, (
        "a batch must be able to carry an oracle update, funding tick or liquidation heartbeat")


def perpetual_market(
    market_id: int,
    symbol: str,
    index_id: int,
    *,
    tick_size_quantums: int,
    lot_size_nanounits: int,
    initial_ppm: int = 100_000,
    maintenance_ppm: int = 50_000,
) -> MarketConfig:
    """A perpetual with the venue's usual defaults (10x initial, 20x maintenance leverage)."""
    tiers = (
        MarginTier(1_000_000 * 10**6, initial_ppm, maintenance_ppm),
        MarginTier(10_000_000 * 10**6, initial_ppm * 2, maintenance_ppm * 2),
        MarginTier(NOTIONAL_TIER_UNBOUNDED, min(PPM, initial_ppm * 4), maintenance_ppm * 4),
    )
    return MarketConfig(
        market_id=market_id,
        symbol=symbol,
        kind=InstrumentKind.PERPETUAL,
        index_id=index_id,
        tick_size_quantums=tick_size_quantums,
        lot_size_nanounits=lot_size_nanounits,
        margin_tiers=tiers,
        order_size_lots_max=10_000_000,
        open_interest_lots_max=10**12,
        price_band_ppm=100_000,
        maker_fee_ppm=-100,
        taker_fee_ppm=500,
        liquidation_penalty_ppm=10_000,
        impact_notional_quantums=5_000 * 10**6,
        funding_interval_s=3_600,
        funding_sample_interval_s=60,
        funding_rate_cap_ppm=40_000,
        funding_interest_ppm=12,
        funding_clamp_ppm=625,
        funding_premium_divisor=8,
    )


def option_market(market_id: int, option_class: OptionClassConfig,
                  terms: OptionTerms) -> MarketConfig:
    """The market of one option under its class (``ListOption`` builds markets with this)."""
    kind = "C" if terms.option_type == OptionType.CALL else "P"
    return MarketConfig(
        market_id=market_id,
        symbol=f"{option_class.symbol}-{terms.expiry_ms}-{terms.strike_quantums}-{kind}",
        kind=InstrumentKind.OPTION,
        index_id=option_class.index_id,
        tick_size_quantums=option_class.tick_size_quantums,
        lot_size_nanounits=option_class.lot_size_nanounits,
        margin_tiers=(MarginTier(NOTIONAL_TIER_UNBOUNDED, _UNUSED_OPTION_TIERS_PPM,
                                 _UNUSED_OPTION_TIERS_PPM),),
        order_size_lots_max=option_class.order_size_lots_max,
        open_interest_lots_max=option_class.open_interest_lots_max,
        price_band_ppm=option_class.price_band_ppm,
        maker_fee_ppm=option_class.maker_fee_ppm,
        taker_fee_ppm=option_class.taker_fee_ppm,
        liquidation_penalty_ppm=option_class.liquidation_penalty_ppm,
        impact_notional_quantums=1,  # no funding
        funding_interval_s=1,
        funding_sample_interval_s=1,
        funding_rate_cap_ppm=0,
        funding_interest_ppm=0,
        funding_clamp_ppm=0,
        funding_premium_divisor=1,
        option=terms,
    )


def option_class(index_id: int, symbol: str, **overrides: int) -> OptionClassConfig:
    """Options on an index with $1 ticks and 0.01-unit contracts (one lot-tick = 10,000
    quantums), plus the class defaults; ``overrides`` replaces any field."""
    fields: dict[str, int] = {"tick_size_quantums": 1_000_000, "lot_size_nanounits": 10_000_000}
    fields.update(overrides)
    return OptionClassConfig(index_id, symbol, **fields)


def options_venue_config(oracle_signers: tuple[bytes, ...],
                         chain_id: int = 31337) -> VenueConfig:
    """The default BTC perpetual plus an option class on BTC (index 1), nothing listed yet."""
    base = default_venue_config(oracle_signers, chain_id)
    config = VenueConfig(
        chain_id=base.chain_id,
        markets=base.markets,
        oracle_signers=base.oracle_signers,
        oracle_threshold=base.oracle_threshold,
        option_classes=(option_class(1, "BTC"),),
    )
    validate_venue(config)
    return config


def default_venue_config(oracle_signers: tuple[bytes, ...], chain_id: int = 31337) -> VenueConfig:
    """One BTC perpetual: $0.1 ticks, 0.0001 BTC lots (one lot-tick = 10 quantums)."""
    btc = perpetual_market(
        1, "BTC-PERP", 1, tick_size_quantums=100_000, lot_size_nanounits=100_000
    )
    config = VenueConfig(
        chain_id=chain_id,
        markets=(btc,),
        oracle_signers=oracle_signers,
        oracle_threshold=max(1, (len(oracle_signers) // 2) + 1),
    )
    validate_venue(config)
    return config

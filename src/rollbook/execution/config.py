"""Venue and market configuration: the genesis parameters every replica must share.

The instrument model separates *what is traded* (``InstrumentKind`` and the underlying index)
from *how it is traded* (ticks, lots, margin tiers, fees, limits). A perpetual references an
oracle index; options (a later issue) reference the same index plus strike, expiry and type, and
reuse the book, matching, fees, limits and the margin-group machinery unchanged.

Invariants checked by ``validate_*`` at genesis:
- one lot at one tick is a whole number of quantums (``quantums_per_lot_tick`` is exact), so a
  fill's notional never needs rounding;
- margin tiers are sorted, initial >= maintenance > 0, and fractions are at most 100%;
- a maker rebate never exceeds the taker fee, so the fee pool never pays out more than it takes
  on a fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from rollbook.execution.units import NANOUNITS_PER_UNIT, PPM

__all__ = [
    "InstrumentKind",
    "MarginTier",
    "MarketConfig",
    "VenueConfig",
    "default_venue_config",
]

MARKET_ID_MAX = 0xFFFF
SUBACCOUNT_NUMBER_MAX = 0xFFFF
# A subaccount's leaf must decode inside the settlement contract's fixed bounds (its escape
# hatch reads the whole subaccount from one leaf), so these are protocol constants shared with
# Settlement.vy: the cross group plus at most 7 isolated groups, and at most 32 position records
# (a record exists while the subaccount has a position or open orders in that market). The
# insurance fund is exempt: it takes over positions as the backstop and never escapes.
GROUPS_PER_SUBACCOUNT_MAX = 8
POSITIONS_PER_SUBACCOUNT_MAX = 32
NOTIONAL_TIER_UNBOUNDED = 2**127 - 1
# Worst-case cost of an oracle update, funding tick or liquidation heartbeat (their work scales
# with holders and the liquidation queue, both bounded elsewhere); a batch must fit one.
HEARTBEAT_COST_BOUND_UNITS = 200_000


class InstrumentKind(IntEnum):
    PERPETUAL = 1
    OPTION = 2  # reserved for the options issue; markets of this kind are not listed yet


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

    @property
    def quantums_per_lot_tick(self) -> int:
        """Value in quantums of one lot at a price of one tick (exact by validation)."""
        return self.tick_size_quantums * self.lot_size_nanounits // NANOUNITS_PER_UNIT


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


def validate_venue(config: VenueConfig) -> None:
    ids = [m.market_id for m in config.markets]
    assert len(ids) == len(set(ids)), "market ids must be unique"
    for market in config.markets:
        validate_market(market)
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

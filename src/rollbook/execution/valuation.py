"""Valuation primitives shared by the perpetual margin path and the options engine.

``margin`` (which dispatches between the two paths) and ``options.engine`` (the options path)
both build on these, so they live apart from either to keep the import graph acyclic.

- position value = floor(size_lots x mark price x lot size): signed; floor favours the venue
  for both longs (valued lower) and shorts (liability valued higher). The mark price is the
  market's committed price (``MarketState.index_price_quantums``): the oracle index for a
  perpetual, the Black-76 mark for an option. It is exactly what the settlement contract's
  escape hatch computes from the market leaf.
- notional = ceil(|size_lots| x mark price x lot size), for requirements.
- tiered requirement = progressive fractions of a notional (``MarginTier``), rounded up.
"""

from __future__ import annotations

from typing import NamedTuple

from rollbook.execution.config import MarginTier
from rollbook.execution.state import MarketState
from rollbook.execution.units import (
    NANOUNITS_PER_UNIT,
    PPM,
    abs_int,
    div_ceil,
    max_abs_int,
    mul,
    mul_div_ceil,
    mul_div_floor,
)

__all__ = [
    "GroupRisk",
    "notional_quantums",
    "perpetual_position_risk",
    "position_value_quantums",
    "tiered_requirement_quantums",
]


class GroupRisk(NamedTuple):
    equity_quantums: int
    initial_quantums: int
    maintenance_quantums: int


def position_value_quantums(size_lots: int, index_price_quantums: int,
                            lot_size_nanounits: int) -> int:
    """Signed mark-to-market value of a position, rounded down (venue-favourable)."""
    return mul_div_floor(size_lots, mul(index_price_quantums, lot_size_nanounits),
                         NANOUNITS_PER_UNIT)


def notional_quantums(size_lots_abs: int, index_price_quantums: int,
                      lot_size_nanounits: int) -> int:
    """Unsigned notional used for requirements, rounded up (venue-favourable)."""
    assert size_lots_abs >= 0
    return mul_div_ceil(size_lots_abs, mul(index_price_quantums, lot_size_nanounits),
                        NANOUNITS_PER_UNIT)


def tiered_requirement_quantums(notional: int, tiers: tuple[MarginTier, ...],
                                initial: bool) -> int:
    """Progressive requirement: each tier's fraction applies to the notional inside it."""
    first = tiers[0]
    if notional <= first.notional_quantums_max:  # the common case, one multiplication
        return mul_div_ceil(notional, first.initial_ppm if initial else first.maintenance_ppm,
                            PPM)
    weighted_ppm_quantums = 0
    lower = 0
    for tier in tiers:
        if notional <= lower:
            break
        portion = min(notional, tier.notional_quantums_max) - lower
        weighted_ppm_quantums += portion * (tier.initial_ppm if initial else tier.maintenance_ppm)
        lower = tier.notional_quantums_max
    return div_ceil(weighted_ppm_quantums, PPM)


def perpetual_position_risk(market: MarketState, size_lots: int, bid_lots: int,
                            ask_lots: int) -> tuple[int, int, int]:
    """(value, initial, maintenance) of one perpetual position under the market's tiers.

    Initial margin covers the worst case of every open order filling on one side:
    max(|size + bids|, |size - asks|) lots.
    """
    assert bid_lots >= 0 and ask_lots >= 0, "open order lots cannot be negative"
    price = market.index_price_quantums
    config = market.config
    lot = config.lot_size_nanounits
    value = position_value_quantums(size_lots, price, lot)
    worst_lots = max_abs_int(size_lots + bid_lots, size_lots - ask_lots)
    initial = tiered_requirement_quantums(notional_quantums(worst_lots, price, lot),
                                          config.margin_tiers, True)
    maintenance = tiered_requirement_quantums(notional_quantums(abs_int(size_lots), price, lot),
                                              config.margin_tiers, False)
    return value, initial, maintenance

"""Perpetual funding: premium samples from the book, periodic payments that sum to zero.

Sampling (every ``funding_sample_interval_s`` of batch time, on a ``FundingTick``): the impact
bid and ask are the prices of the levels at which selling / buying ``impact_notional_quantums``
into the book would complete; the premium is
``(max(0, impact_bid - index) - max(0, index - impact_ask)) / index`` in ppm (a side without
enough depth contributes zero). This is dYdX v4's definition and resists a single thin quote.

Payment (every ``funding_interval_s``): with P the average premium divided by
``funding_premium_divisor`` (premiums are 8-hour rates, paid hourly), rate = P + clamp(interest
- P, +-funding_clamp_ppm) (Hyperliquid/BitMEX style), capped at +-funding_rate_cap_ppm.
Positive rates make longs pay shorts. Each position pays or receives
``value x rate``: payers round up, receivers round down, and the residual (paid - received,
never negative) is credited to the insurance fund, so funding conserves money exactly.
Funding is settled eagerly into each group's collateral, so equity always includes it.
"""

from __future__ import annotations

from rollbook.execution.config import InstrumentKind
from rollbook.execution.events import FundingPaid
from rollbook.execution.margin import position_value_quantums
from rollbook.execution.state import MarketState, State, mark_subaccount
from rollbook.execution.units import PPM, div_ceil, div_floor, div_trunc

__all__ = ["funding_tick", "impact_prices_quantums", "premium_ppm"]

MS_PER_S = 1_000


def impact_prices_quantums(market: MarketState) -> tuple[int | None, int | None]:
    """Impact bid and ask in quantums per base unit, or None where depth is insufficient."""
    return _impact_price(market, True), _impact_price(market, False)


def _impact_price(market: MarketState, bids: bool) -> int | None:
    book = market.book
    levels = book.bids if bids else book.asks
    prices = reversed(book.bid_prices) if bids else iter(book.ask_prices)
    target = market.config.impact_notional_quantums
    accumulated = 0
    for price in prices:
        accumulated += levels[price].size_lots * price * market.quantums_per_lot_tick
        if accumulated >= target:
            return price * market.config.tick_size_quantums
    return None


def premium_ppm(market: MarketState) -> int:
    index = market.index_price_quantums
    assert index > 0
    impact_bid, impact_ask = impact_prices_quantums(market)
    above = max(0, impact_bid - index) if impact_bid is not None else 0
    below = max(0, index - impact_ask) if impact_ask is not None else 0
    return div_trunc((above - below) * PPM, index)


def _clamp(value: int, bound: int) -> int:
    return max(-bound, min(bound, value))


def funding_rate_ppm(market: MarketState) -> int:
    config = market.config
    assert market.premium_sample_count > 0
    average = div_trunc(market.premium_sum_ppm,
                        market.premium_sample_count * config.funding_premium_divisor)
    rate = average + _clamp(config.funding_interest_ppm - average, config.funding_clamp_ppm)
    return _clamp(rate, config.funding_rate_cap_ppm)


def _pay(state: State, market: MarketState, rate_ppm: int, events: list[object]) -> None:
    paid = 0
    received = 0
    price = market.index_price_quantums
    lot = market.config.lot_size_nanounits
    for position in market.holders.values():
        mark_subaccount(state, position.group.subaccount)
        value = position_value_quantums(position.size_lots, price, lot)
        owed = value * rate_ppm  # > 0: this position pays
        if owed > 0:
            amount = div_ceil(owed, PPM)
            position.group.collateral_quantums -= amount
            paid += amount
        elif owed < 0:
            amount = div_floor(-owed, PPM)
            position.group.collateral_quantums += amount
            received += amount
    residual = paid - received
    assert residual >= 0, "rounding favours the venue, so payers cover receivers"
    state.insurance.cross.collateral_quantums += residual
    market.cumulative_funding_ppm += rate_ppm
    events.append(FundingPaid(market.config.market_id, rate_ppm, paid, received, residual))


def funding_tick(state: State, events: list[object]) -> list[int]:
    """Sample premiums and pay funding where due; returns markets whose balances moved."""
    now_ms = state.timestamp_ms
    paid_markets: list[int] = []
    for market_id, market in state.markets.items():
        config = market.config
        if config.kind != InstrumentKind.PERPETUAL or market.index_price_quantums == 0:
            continue
        state.touched_markets.add(market_id)  # over-approximate: a tick may change nothing
        if market.last_funding_ms < 0:
            market.last_funding_ms = now_ms
            market.last_sample_ms = now_ms
            continue
        if now_ms - market.last_sample_ms >= config.funding_sample_interval_s * MS_PER_S:
            market.premium_sum_ppm += premium_ppm(market)
            market.premium_sample_count += 1
            market.last_sample_ms = now_ms
        due = now_ms - market.last_funding_ms >= config.funding_interval_s * MS_PER_S
        if due and market.premium_sample_count > 0:
            _pay(state, market, funding_rate_ppm(market), events)
            market.premium_sum_ppm = 0
            market.premium_sample_count = 0
            market.last_funding_ms = now_ms
            paid_markets.append(market_id)
    return paid_markets

"""Option instruments: specification, mark price from the smile, expiry settlement.

Units
-----
- ``strike_quantums`` and index prices: quantums (1e-6 USDC) per whole unit of the underlying,
  like ``MarketState.index_price_quantums``. Black-76 works in WAD USD: ``price_wad =
  price_quantums * WAD_PER_QUANTUM`` (exact; ``WAD_PER_QUANTUM = 10**12``).
- ``contract_size_nanounits``: one lot of the option is this many 10^-9 units of the underlying
  (``MarketConfig.lot_size_nanounits`` for the option's market).
- Times are milliseconds from batch headers and oracle updates; Black-76 receives whole seconds
  to expiry, rounded down (``expiry_seconds``), so an option in its last second is worth its
  intrinsic value.

Mark price (``option_mark``)
----------------------------
Black-76 (rate 0, forward = the index) at the implied volatility of the option's strike on the
oracle's SVI slice for ``(index_id, expiry_ms)`` (``smile``). At or after expiry the mark is the
intrinsic value against the index and needs no smile. The mark carries Black-76's error bound
(``black76.price_error_bound_wad``); the smile's sigma is the venue's official input, so the
"exact" price is Black-76's exact value at that integer sigma.

Settlement (``settlement_price_quantums``, ``settle_positions``)
-----------------------------------------------------------------
- The settlement price is the time-weighted average of the oracle index over
  ``[expiry_ms - window_ms, expiry_ms)``. Each sample's price holds from its timestamp until
  the next sample (or the window's end); the last sample at or before the window's start
  carries into it. If no sample precedes the window, the average runs from the first sample
  inside it (the covered part only). The average is rounded half up to a whole quantum (a
  published number both sides use: neither direction favours the venue). Samples at or after
  ``expiry_ms`` are ignored, so a late oracle update cannot move a published price.
- Payoff per unit: ``max(S - K, 0)`` for a call, ``max(K - S, 0)`` for a put, in quantums.
- Cashflow of a position of ``size_lots``: the exact value is
  ``size_lots * contract_size_nanounits * payoff / 10**9``. Longs receive it rounded down and
  shorts pay it rounded up, so the venue never pays out more than it collects; the residual
  ``-(sum of cashflows)`` is non-negative, below one quantum per position, and is credited to
  the insurance fund by the caller. Exactly: ``sum(cashflows) + residual == 0``. The positions
  passed must net to zero (long open interest == short open interest).

Limits: ``SETTLEMENT_SAMPLES_MAX`` samples per call, ``SETTLEMENT_POSITIONS_MAX`` positions per
call (the STF settles a large market in several calls and sums the residuals).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from rollbook.execution.options.black76 import (
    EXPIRY_S_MAX,
    OptionValuation,
    black76_call,
    black76_put,
    price_error_bound_wad,
)
from rollbook.execution.options.fixed_point import WAD, div_round_half_up
from rollbook.execution.options.smile import SviSmile, implied_sigma_wad
from rollbook.execution.units import NANOUNITS_PER_UNIT, QUANTUMS_PER_USDC, div_ceil, div_floor

__all__ = [
    "CONTRACT_SIZE_NANOUNITS_MAX",
    "INDEX_PRICE_QUANTUMS_MAX",
    "MS_PER_SECOND",
    "SETTLEMENT_POSITIONS_MAX",
    "SETTLEMENT_SAMPLES_MAX",
    "SETTLEMENT_WINDOW_MS_MAX",
    "WAD_PER_QUANTUM",
    "Instrument",
    "OptionMark",
    "OptionSettlement",
    "OptionSpec",
    "OptionType",
    "PerpetualSpec",
    "expiry_seconds",
    "option_mark",
    "payoff_quantums",
    "settle_positions",
    "settlement_price_quantums",
    "to_wad",
]

WAD_PER_QUANTUM: Final = WAD // QUANTUMS_PER_USDC  # 10**12: quantums -> WAD USD, exactly
MS_PER_SECOND: Final = 1_000
INDEX_PRICE_QUANTUMS_MAX: Final = 10**24  # oracle.ORACLE_PRICE_QUANTUMS_MAX; 1e36 WAD at most
CONTRACT_SIZE_NANOUNITS_MAX: Final = 10**18  # a billion units of the underlying per lot
SETTLEMENT_SAMPLES_MAX: Final = 100_000  # a day at one sample per second, with room
SETTLEMENT_WINDOW_MS_MAX: Final = 86_400_000  # one day
SETTLEMENT_POSITIONS_MAX: Final = 100_000


class OptionType(IntEnum):
    CALL = 1
    PUT = 2


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """A European, cash-settled option on an oracle index (one listed market)."""

    index_id: int
    expiry_ms: int
    strike_quantums: int  # per whole unit of the underlying
    option_type: OptionType
    contract_size_nanounits: int  # underlying per lot

    def __post_init__(self) -> None:
        if self.index_id < 0 or self.expiry_ms < 0:
            raise ValueError("index_id and expiry_ms must be non-negative")
        if not 1 <= self.strike_quantums <= INDEX_PRICE_QUANTUMS_MAX:
            raise ValueError(f"strike_quantums={self.strike_quantums} outside [1, 1e24]")
        if not 1 <= self.contract_size_nanounits <= CONTRACT_SIZE_NANOUNITS_MAX:
            raise ValueError("contract_size_nanounits outside [1, CONTRACT_SIZE_NANOUNITS_MAX]")
        if not isinstance(self.option_type, OptionType):
            raise ValueError(f"option_type={self.option_type!r} is not an OptionType")


@dataclass(frozen=True, slots=True)
class PerpetualSpec:
    """The perpetual on the same index, as a portfolio-margin instrument (value = index)."""

    index_id: int
    contract_size_nanounits: int  # the perpetual market's lot_size_nanounits

    def __post_init__(self) -> None:
        if self.index_id < 0:
            raise ValueError("index_id must be non-negative")
        if not 1 <= self.contract_size_nanounits <= CONTRACT_SIZE_NANOUNITS_MAX:
            raise ValueError("contract_size_nanounits outside [1, CONTRACT_SIZE_NANOUNITS_MAX]")


Instrument = OptionSpec | PerpetualSpec


def to_wad(price_quantums: int) -> int:
    """A price in quantums per unit as WAD USD per unit (exact)."""
    return price_quantums * WAD_PER_QUANTUM


def expiry_seconds(expiry_ms: int, valuation_ms: int) -> int:
    """Whole seconds left to expiry, rounded down, 0 at or after expiry."""
    remaining_ms = expiry_ms - valuation_ms
    if remaining_ms <= 0:
        return 0
    seconds = div_floor(remaining_ms, MS_PER_SECOND)
    if seconds > EXPIRY_S_MAX:
        raise ValueError(f"expiry {expiry_ms} is more than EXPIRY_S_MAX s after {valuation_ms}")
    return seconds


@dataclass(frozen=True, slots=True)
class OptionMark:
    """An option's mark: Black-76 per unit of underlying (WAD USD) at the smile's sigma."""

    sigma_wad: int  # 0 at or after expiry
    expiry_s: int
    valuation: OptionValuation  # price/delta/gamma/vega/theta per unit, WAD
    error_bound_wad: int  # |price - Black-76 exact at sigma_wad| <= this

    @property
    def price_quantums(self) -> int:
        """Mark per whole unit in quantums, rounded half up (display; margin uses WAD)."""
        return div_round_half_up(self.valuation.price, WAD_PER_QUANTUM)


def _value(spec: OptionSpec, forward_wad: int, expiry_s: int, sigma_wad: int) -> OptionValuation:
    strike_wad = to_wad(spec.strike_quantums)
    if spec.option_type is OptionType.CALL:
        return black76_call(forward_wad, strike_wad, expiry_s, sigma_wad)
    return black76_put(forward_wad, strike_wad, expiry_s, sigma_wad)


def option_mark(
    spec: OptionSpec, index_price_quantums: int, smile: SviSmile | None, valuation_ms: int
) -> OptionMark:
    """Mark price and Greeks of ``spec`` at ``valuation_ms`` (see the module docstring).

    ``smile`` must be the slice for ``(spec.index_id, spec.expiry_ms)`` while the option is
    live; it is ignored (and may be ``None``) at or after expiry.
    """
    if not 1 <= index_price_quantums <= INDEX_PRICE_QUANTUMS_MAX:
        raise ValueError(f"index_price_quantums={index_price_quantums} outside [1, 1e24]")
    forward_wad = to_wad(index_price_quantums)
    strike_wad = to_wad(spec.strike_quantums)
    expiry_s = expiry_seconds(spec.expiry_ms, valuation_ms)
    sigma_wad = 0
    if expiry_s > 0:
        if smile is None:
            raise ValueError(f"no smile for index {spec.index_id} expiry {spec.expiry_ms}")
        if smile.key != (spec.index_id, spec.expiry_ms):
            raise ValueError(f"smile {smile.key} does not belong to this option")
        sigma_wad = implied_sigma_wad(smile, forward_wad, strike_wad)
    valuation = _value(spec, forward_wad, expiry_s, sigma_wad)
    return OptionMark(
        sigma_wad, expiry_s, valuation, price_error_bound_wad(forward_wad, strike_wad)
    )


# ---------------------------------------------------------------------------------------------
# Settlement
# ---------------------------------------------------------------------------------------------


def settlement_price_quantums(
    samples: Sequence[tuple[int, int]], expiry_ms: int, window_ms: int
) -> int:
    """Time-weighted average index over ``[expiry_ms - window_ms, expiry_ms)``, half up.

    ``samples`` are ``(timestamp_ms, price_quantums)`` with strictly increasing timestamps;
    see the module docstring for the weighting. Raises ``ValueError`` if no sample covers any
    part of the window or an input breaks its bound.
    """
    if not 1 <= window_ms <= SETTLEMENT_WINDOW_MS_MAX:
        raise ValueError(f"window_ms={window_ms} outside [1, SETTLEMENT_WINDOW_MS_MAX]")
    if len(samples) > SETTLEMENT_SAMPLES_MAX:
        raise ValueError(f"{len(samples)} samples exceed SETTLEMENT_SAMPLES_MAX")
    start_ms = expiry_ms - window_ms
    weighted_quantums_ms = 0
    covered_ms = 0
    previous_ms: int | None = None
    for index, (timestamp_ms, price_quantums) in enumerate(samples):
        if previous_ms is not None and timestamp_ms <= previous_ms:
            raise ValueError("sample timestamps must be strictly increasing")
        previous_ms = timestamp_ms
        if not 1 <= price_quantums <= INDEX_PRICE_QUANTUMS_MAX:
            raise ValueError(f"sample price {price_quantums} outside [1, 1e24]")
        if timestamp_ms >= expiry_ms:
            break  # published after the window: ignored
        next_ms = samples[index + 1][0] if index + 1 < len(samples) else expiry_ms
        held_from = max(timestamp_ms, start_ms)
        held_to = min(next_ms, expiry_ms)
        if held_to > held_from:
            weighted_quantums_ms += price_quantums * (held_to - held_from)
            covered_ms += held_to - held_from
    if covered_ms == 0:
        raise ValueError("no index sample covers the settlement window")
    return div_round_half_up(weighted_quantums_ms, covered_ms)


def payoff_quantums(spec: OptionSpec, settlement_price_quantums: int) -> int:
    """Intrinsic value per whole unit at the settlement price (quantums, >= 0)."""
    if spec.option_type is OptionType.CALL:
        return max(settlement_price_quantums - spec.strike_quantums, 0)
    return max(spec.strike_quantums - settlement_price_quantums, 0)


@dataclass(frozen=True, slots=True)
class OptionSettlement:
    """Cashflows in position order (positive: credited) and the venue's residual (>= 0)."""

    settlement_price_quantums: int
    payoff_quantums: int  # per whole unit
    cashflows_quantums: tuple[int, ...]
    residual_quantums: int  # to the insurance fund: sum(cashflows) + residual == 0


def settle_positions(
    spec: OptionSpec, settlement_price_quantums: int, sizes_lots: Sequence[int]
) -> OptionSettlement:
    """Expiry cashflows of every position in ``spec`` (sizes must sum to zero).

    Longs receive the exact value rounded down, shorts pay it rounded up; see the module
    docstring for the residual.
    """
    if len(sizes_lots) > SETTLEMENT_POSITIONS_MAX:
        raise ValueError(f"{len(sizes_lots)} positions exceed SETTLEMENT_POSITIONS_MAX")
    if sum(sizes_lots) != 0:
        raise ValueError("positions must net to zero (long open interest == short)")
    payoff = payoff_quantums(spec, settlement_price_quantums)
    per_lot_scaled = payoff * spec.contract_size_nanounits  # quantums * 1e9 per lot, exact
    cashflows: list[int] = []
    for size_lots in sizes_lots:
        exact_scaled = size_lots * per_lot_scaled
        if size_lots >= 0:
            cashflows.append(div_floor(exact_scaled, NANOUNITS_PER_UNIT))  # a payout: down
        else:
            cashflows.append(-div_ceil(-exact_scaled, NANOUNITS_PER_UNIT))  # a payment: up
    residual = -sum(cashflows)
    assert residual >= 0, "settlement never pays out more than it collects"
    return OptionSettlement(settlement_price_quantums, payoff, tuple(cashflows), residual)

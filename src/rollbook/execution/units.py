"""Units and the only sanctioned integer divisions of the state transition function.

Every quantity in the STF is a Python ``int`` whose unit is the last part of its name:

- ``*_quantums``: USDC collateral in 10^-6 USDC (one quantum is one micro-dollar);
- ``*_ticks``: an order price in the market's price ticks;
- ``*_lots``: a size in the market's lots;
- ``*_nanounits``: base-asset amounts in 10^-9 units of the underlying;
- ``*_ppm``: a fraction in parts per million;
- ``*_ms`` / ``*_s``: time from the batch header, never from the machine.

Invariant: no float ever enters the STF. Every division goes through one of the helpers below,
whose name states the rounding; callers choose the direction that favours the venue
(requirements and payments owed round up, payouts and credits round down) and send any residual
to an explicit account so that conservation stays exact.
"""

from __future__ import annotations

__all__ = [
    "NANOUNITS_PER_UNIT",
    "PPM",
    "QUANTUMS_PER_USDC",
    "div_ceil",
    "div_floor",
    "div_trunc",
    "mul_div_ceil",
    "mul_div_floor",
]

QUANTUMS_PER_USDC = 10**6
PPM = 10**6
NANOUNITS_PER_UNIT = 10**9


def div_floor(numerator: int, denominator: int) -> int:
    """Round toward negative infinity (a credit to a user: never more than owed)."""
    assert denominator > 0, "divisor must be positive"
    return numerator // denominator


def div_ceil(numerator: int, denominator: int) -> int:
    """Round toward positive infinity (a requirement or a charge: never less than owed)."""
    assert denominator > 0, "divisor must be positive"
    return -((-numerator) // denominator)


def div_trunc(numerator: int, denominator: int) -> int:
    """Round toward zero (a signed rate whose magnitude must never be overstated)."""
    assert denominator > 0, "divisor must be positive"
    quotient = abs(numerator) // denominator
    return quotient if numerator >= 0 else -quotient


def mul_div_floor(value: int, multiplier: int, denominator: int) -> int:
    """``floor(value * multiplier / denominator)`` without intermediate rounding."""
    return div_floor(value * multiplier, denominator)


def mul_div_ceil(value: int, multiplier: int, denominator: int) -> int:
    """``ceil(value * multiplier / denominator)`` without intermediate rounding."""
    return div_ceil(value * multiplier, denominator)

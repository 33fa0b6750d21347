"""Black-76 prices and Greeks for European, cash-settled options, in integer fixed point.

rollbook lists European options on an index, cash-settled in USDC. The underlying price is the
index (a forward for the expiry); collateral is USDC that earns nothing inside the venue, so the
rate is taken as **zero**: no discounting, and the forward is the index itself. With ``r = 0``
Black-76 is

    d1 = ln(F/K) / v + v/2,   d2 = d1 - v,   v = sigma * sqrt(T)
    call = F Phi(d1) - K Phi(d2),   put = K Phi(-d2) - F Phi(-d1)

Units and scales (every value is a Python ``int``)
--------------------------------------------------
- ``forward_wad``, ``strike_wad``: prices in quote units (USD) times ``WAD`` (1e18).
- ``expiry_s``: seconds to expiry, from the batch timestamp; ``T = expiry_s /
  SECONDS_PER_YEAR`` (ACT/365 fixed: 365 days of 86,400 s).
- ``sigma_wad``: annualised volatility times WAD (0.8 = 80% is ``8 * 10**17``).
- ``OptionValuation`` fields, all times WAD: ``price`` (USD per unit of underlying), ``delta``
  (dimensionless), ``gamma`` (per USD of forward), ``vega`` (USD per 1.00 of sigma, i.e. per
  100 vol points), ``theta`` (USD per year of calendar time, negative for a long holder).

Invariants (exact, by construction; asserted by the tests)
-----------------------------------------------------------
- Put-call parity: ``call.price - put.price == F - K`` and ``call.delta - put.delta == WAD``;
  gamma, vega and theta of the call and the put are equal.
- No-arbitrage bounds: ``max(F - K, 0) <= call.price <= F`` and ``max(K - F, 0) <= put.price
  <= K``. The call is clamped into its bounds before the put is derived from parity; the clamp
  only acts where the exact price lies within the error bound of a bound.
- Determinism: integer arithmetic only (see ``fixed_point``).

Edges
-----
- ``expiry_s == 0`` or ``sigma_wad == 0`` (zero variance): intrinsic value; call delta is
  ``WAD`` in the money, ``0`` out of the money and ``WAD // 2`` at the money (the limit of
  ``Phi(d1)`` as ``T -> 0``); gamma and theta are 0; vega is its limit, 0 except at the money
  with ``T > 0`` where it is ``F sqrt(T) / sqrt(2 pi)``. At the money gamma's limit is a Dirac
  mass, reported as 0.
- Tiny ``sigma * sqrt(T)`` (down to ~2**-72 with the smallest inputs): ``ln(F/K)`` and ``v`` are
  computed at 160 bits so ``d1`` stays accurate; Phi saturates cleanly far from the money.
- Deep in or out of the money (``|d| >= 11``): Phi saturates to 0 or 1 and phi to 0.
- ``F``, ``K`` must lie in ``[1, PRICE_WAD_MAX]``; ``0 <= sigma_wad <= SIGMA_WAD_MAX``;
  ``0 <= expiry_s <= EXPIRY_S_MAX``; otherwise ``ValueError``.

Error bounds (measured against mpmath at 50-80 digits by ``tests/options/test_black76.py``)
-----------------------------------------------------------------------------------------
Grid: F from 0.001 to 1e6 USD, K/F in [0.2, 5], T from 1 minute to 3 years, sigma from 1% to
500%, calls and puts, plus near-expiry (1 s), tiny-sigma (down to 1e-18), deep ITM/OTM and
domain-extreme points, plus random points. "ulp" is one unit of the WAD integer. Each Greek is
a scale ``S`` times ``phi(d1)``, so its error is stated against that scale; the bound asserted
is ``ERROR_ULPS_MAX + S / ERROR_SCALE_DENOMINATOR``, i.e. ``1 ulp + 1e-26 S``:

=========  ==========================  ============================  ===========================
field      scale ``S`` (times WAD)     bound asserted                measured worst case
=========  ==========================  ============================  ===========================
price      ``F + K``                   ``1 ulp + 1e-26 (F + K)``     0.5 ulp + 1.5e-28 (F + K)
delta      --                          ``1 ulp``                     0.4999 ulp
gamma      ``1 / (F sigma sqrt T)``    ``1 ulp + 1e-26 S``           0.5 ulp + 3.8e-28 S
vega       ``F sqrt T``                ``1 ulp + 1e-26 S``           0.5 ulp + 1.4e-27 S
theta      ``F sigma / (2 sqrt T)``    ``1 ulp + 1e-26 S``           0.5 ulp + 1.4e-27 S
=========  ==========================  ============================  ===========================

Relative to F the price bound is ``1 ulp + 6e-26 F`` for K/F <= 5; measured, an index of 1e7
USD still prices within 0.51 ulp (1e-18 USD each) of exact. Where this comes from: the CDF kernel's
absolute error (< 2**-90 with saturation) multiplies F and K; the PDF kernel's (< 2**-88) and the
relative error of ``v`` (< 2**-87) multiply each Greek's scale; errors in ``d1`` cancel to
first order in the price (``F phi(d1) = K phi(d2)``). ``price_error_bound_wad`` returns the
price bound as an integer for consumers. Outputs are rounded to nearest, not in the venue's
favour: a consumer that turns a price into a requirement adds the bound and rounds up itself.

Throughput: ~50k valuations (price and four Greeks) per second on one core of the project's
2-core machines (CPython 3.11); see ``rollbook.bench.risk.measure_option_pricing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import isqrt
from typing import Final

from rollbook.execution.options.fixed_point import (
    FRAC_BITS,
    HALF_WAD,
    LN_FRAC_BITS,
    WAD,
    div_down,
    div_round_half_up,
    div_up,
    inv_sqrt_2pi_fixed,
    ln_ratio_fixed,
    norm_cdf_fixed,
    norm_pdf_fixed,
    shift_round_half_up,
)

__all__ = [
    "ERROR_SCALE_DENOMINATOR",
    "ERROR_ULPS_MAX",
    "EXPIRY_S_MAX",
    "PRICE_WAD_MAX",
    "SECONDS_PER_YEAR",
    "SIGMA_WAD_MAX",
    "OptionValuation",
    "black76_call",
    "black76_call_put",
    "black76_put",
    "price_error_bound_wad",
]

SECONDS_PER_YEAR: Final = 365 * 86_400  # ACT/365 fixed
PRICE_WAD_MAX: Final = 10**36  # 1e18 USD: far above any index, keeps products bounded
SIGMA_WAD_MAX: Final = 10 * WAD  # 1000% annualised
EXPIRY_S_MAX: Final = 10 * SECONDS_PER_YEAR

# Stated error bound (module doc): |error| <= ERROR_ULPS_MAX + scale / ERROR_SCALE_DENOMINATOR.
ERROR_ULPS_MAX: Final = 1
ERROR_SCALE_DENOMINATOR: Final = 10**26

# v = sigma sqrt(T) and sqrt(T) are carried at the logarithm's precision (see module doc).
_V_BITS: Final = LN_FRAC_BITS
_V_TO_FIXED_SHIFT: Final = _V_BITS - FRAC_BITS


@dataclass(frozen=True, slots=True)
class OptionValuation:
    """Price and Greeks of one option; every field is an integer scaled by WAD.

    ``price`` in USD, ``delta`` dimensionless, ``gamma`` per USD of forward, ``vega`` per 1.00 of
    sigma, ``theta`` per year. See the module docstring for units and error bounds.
    """

    price: int
    delta: int
    gamma: int
    vega: int
    theta: int


def price_error_bound_wad(forward_wad: int, strike_wad: int) -> int:
    """The stated bound on ``|price - exact price|`` in WAD units, rounded up.

    For a consumer that must not understate a value (a margin requirement): add this to a
    price before using it as a requirement, subtract it before using it as a credit.
    """
    return ERROR_ULPS_MAX + div_up(forward_wad + strike_wad, ERROR_SCALE_DENOMINATOR)


def _validate(forward_wad: int, strike_wad: int, expiry_s: int, sigma_wad: int) -> None:
    if not 1 <= forward_wad <= PRICE_WAD_MAX:
        raise ValueError(f"forward_wad={forward_wad} outside [1, PRICE_WAD_MAX={PRICE_WAD_MAX}]")
    if not 1 <= strike_wad <= PRICE_WAD_MAX:
        raise ValueError(f"strike_wad={strike_wad} outside [1, PRICE_WAD_MAX={PRICE_WAD_MAX}]")
    if not 0 <= expiry_s <= EXPIRY_S_MAX:
        raise ValueError(f"expiry_s={expiry_s} outside [0, EXPIRY_S_MAX={EXPIRY_S_MAX}]")
    if not 0 <= sigma_wad <= SIGMA_WAD_MAX:
        raise ValueError(f"sigma_wad={sigma_wad} outside [0, SIGMA_WAD_MAX={SIGMA_WAD_MAX}]")


def _sqrt_years_fixed(expiry_s: int) -> int:
    """``sqrt(expiry_s / SECONDS_PER_YEAR)`` at ``2**_V_BITS``, rounded down (rel. < 2**-147)."""
    return isqrt(div_down(expiry_s << (2 * _V_BITS), SECONDS_PER_YEAR))


def _zero_variance(
    forward_wad: int, strike_wad: int, expiry_s: int
) -> tuple[int, int, int, int, int]:
    """Limits as ``sigma sqrt(T) -> 0``: intrinsic value and a step delta (module doc).

    Returns the call's ``(price, delta, gamma, vega, theta)``.
    """
    call_price = max(forward_wad - strike_wad, 0)
    if forward_wad > strike_wad:
        call_delta = WAD
    elif forward_wad < strike_wad:
        call_delta = 0
    else:
        call_delta = HALF_WAD
    vega = 0
    if forward_wad == strike_wad and expiry_s > 0:
        scaled = forward_wad * inv_sqrt_2pi_fixed() * _sqrt_years_fixed(expiry_s)
        vega = shift_round_half_up(scaled, FRAC_BITS + _V_BITS)
    return call_price, call_delta, 0, vega, 0


def _call_values(
    forward_wad: int, strike_wad: int, expiry_s: int, sigma_wad: int
) -> tuple[int, int, int, int, int]:
    """The call's ``(price, delta, gamma, vega, theta)``; the put follows by exact parity."""
    _validate(forward_wad, strike_wad, expiry_s, sigma_wad)
    if expiry_s == 0 or sigma_wad == 0:
        return _zero_variance(forward_wad, strike_wad, expiry_s)
    sqrt_years = _sqrt_years_fixed(expiry_s)
    # v = sigma sqrt(T) at 2**_V_BITS, off by < 1 + sigma units: a relative error below 2**-87
    # even for the smallest inputs (sigma_wad = 1, expiry_s = 1 give v ~ 1.8e-22 ~ 2**-72), and
    # v > 0 always.
    v = div_down(sigma_wad * sqrt_years, WAD)
    log_moneyness = ln_ratio_fixed(forward_wad, strike_wad)
    d1_numerator = log_moneyness + (v * v >> (_V_BITS + 1))
    d1 = div_down(d1_numerator << FRAC_BITS, v)  # at 2**FRAC_BITS
    d2 = d1 - (v >> _V_TO_FIXED_SHIFT)
    cdf_d1 = norm_cdf_fixed(d1)
    cdf_d2 = norm_cdf_fixed(d2)
    pdf_d1 = norm_pdf_fixed(d1)

    # Both terms at WAD * 2**FRAC_BITS; a single rounding of their exact difference.
    price = shift_round_half_up(forward_wad * cdf_d1 - strike_wad * cdf_d2, FRAC_BITS)
    price = min(max(price, forward_wad - strike_wad, 0), forward_wad)
    delta = shift_round_half_up(cdf_d1 * WAD, FRAC_BITS)
    # gamma = phi / (F v): WAD * (pdf / 2**FB) / ((F / WAD) (v / 2**VB))
    gamma = div_round_half_up((pdf_d1 * WAD * WAD) << _V_TO_FIXED_SHIFT, forward_wad * v)
    # vega = F phi sqrt(T)
    vega = shift_round_half_up(forward_wad * pdf_d1 * sqrt_years, FRAC_BITS + _V_BITS)
    # theta = -F phi sigma / (2 sqrt(T)): the magnitude is rounded half up, then negated
    theta = -div_round_half_up(
        (forward_wad * pdf_d1 * sigma_wad) << _V_TO_FIXED_SHIFT, 2 * WAD * sqrt_years
    )
    return price, delta, gamma, vega, theta


def black76_call(
    forward_wad: int, strike_wad: int, expiry_s: int, sigma_wad: int
) -> OptionValuation:
    """Black-76 call (rate 0): price and Greeks as WAD integers; see the module docstring."""
    return OptionValuation(*_call_values(forward_wad, strike_wad, expiry_s, sigma_wad))


def black76_put(
    forward_wad: int, strike_wad: int, expiry_s: int, sigma_wad: int
) -> OptionValuation:
    """Black-76 put (rate 0): price and Greeks as WAD integers; see the module docstring.

    Derived from the call by parity, exactly: ``put = call - (F - K)``, ``delta - WAD``.
    """
    price, delta, gamma, vega, theta = _call_values(forward_wad, strike_wad, expiry_s, sigma_wad)
    return OptionValuation(price - forward_wad + strike_wad, delta - WAD, gamma, vega, theta)


def black76_call_put(
    forward_wad: int, strike_wad: int, expiry_s: int, sigma_wad: int
) -> tuple[OptionValuation, OptionValuation]:
    """``(call, put)`` from one evaluation; parity holds exactly between them."""
    price, delta, gamma, vega, theta = _call_values(forward_wad, strike_wad, expiry_s, sigma_wad)
    call = OptionValuation(price, delta, gamma, vega, theta)
    put = OptionValuation(price - forward_wad + strike_wad, delta - WAD, gamma, vega, theta)
    return call, put

"""Volatility smiles from the oracle: one raw-SVI slice per (index, expiry), in fixed point.

Choice
------
The oracle publishes, per index and expiry, the five parameters of Gatheral's *raw SVI*
parameterisation of the total implied variance ``w`` as a function of log-moneyness
``k = ln(K / F)``:

    w(k) = a + b * (rho * (k - m) + sqrt((k - m)**2 + s**2))

with ``s`` the SVI "sigma" (called ``sigma_svi_wad`` here so that it is never confused with
an implied volatility). Five numbers describe a whole smile with a linear-in-``k`` wing
behaviour that matches Roger Lee's moment formula, they are cheap to verify and to sign, and
they cannot produce a hole or a spike between listed strikes the way per-strike quotes can.
Per-strike implied volatilities would need interpolation rules and still no-arbitrage checks;
SVI has both built in.

Time: ``w`` is the total variance *to expiry as seen at the observation time* ``observed_ms``
(the oracle update's timestamp). The implied volatility of a strike is therefore

    sigma(K) = sqrt(w(k) / tau),   tau = (expiry_ms - observed_ms) / MS_PER_YEAR,

and it is held constant until the next update, while Black-76 uses the remaining time at the
valuation instant: the variance still to come decays linearly to zero at expiry, as it should.
``k`` uses the forward at the valuation (the current index; rate 0, see ``black76``), so the
smile is sticky in moneyness between updates.

Validation (``SviSmile.__post_init__``; a smile that exists is valid; exact integer checks)
-----------------------------------------------------------------------------------------
- ``b >= 0``, ``|rho| < 1``, ``s > 0``: the shape conditions of raw SVI;
- ``a + b * s * sqrt(1 - rho**2) >= 0``: the minimum of ``w`` over ``k`` is not negative
  (checked squared, in integers, without rounding);
- ``b * (1 + |rho|) <= 2``: Lee's bound on the wings' slope (``w(k) <= 2|k|`` asymptotically),
  necessary for the absence of arbitrage in the wings;
- every parameter inside its named bound below, and ``tau >= SMILE_TIME_TO_EXPIRY_MS_MIN``.

Known limits: these are necessary, not sufficient, conditions. Butterfly arbitrage in the
body of the smile (Gatheral's ``g(k) >= 0``) and calendar arbitrage between expiries (total
variance increasing in expiry at fixed moneyness) are not checked: the oracle signers are
trusted for those, as they are for the index itself. Each expiry's slice is independent.

Arithmetic and error bound
--------------------------
Everything is integer. The parameters are converted once to binary fixed point at
``2**SMILE_FRAC_BITS`` (160 bits, rounded half up); ``k`` comes from ``ln_ratio_fixed``
(absolute error < 2**-150); the square root is ``math.isqrt`` (floor); products are floored
by shifts. The total variance kernel is within ``2**-146`` of the exact ``w`` of the WAD
parameters (the log's error times ``b (1 + |rho|) <= 2`` plus a handful of one-unit floors).
The implied volatility is the *correctly rounded* (half up) square root of the computed
``w / tau`` at WAD scale, so

    |implied_sigma_wad - sigma_exact * WAD| <= 0.5 ulp + (w error) / (2 tau sigma) <= 1 ulp

for every valid input: with ``tau >= 1 s`` the propagated term is below 0.5 ulp whenever
``sigma >= 2e-19``, and below that the whole result is within 1 ulp of 0 anyway. The tests
assert 1 ulp against mpmath at 60 digits (measured worst case 0.5 ulp).

Results are clamped to ``SIGMA_WAD_MAX`` (1000%): far wings with short observation horizons
extrapolate past it, and the Black-76 domain ends there. The clamp is a valuation rule, not an
error. A computed ``w`` of a few units of 2**-160 below zero (only possible where the exact
minimum is 0) is taken as 0.

Throughput: ~5-8 us per ``implied_sigma_wad`` on one core (CPython 3.11), dominated by the
160-bit logarithm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import isqrt
from typing import Final

from rollbook.execution.options.black76 import PRICE_WAD_MAX, SECONDS_PER_YEAR, SIGMA_WAD_MAX
from rollbook.execution.options.fixed_point import (
    LN_FRAC_BITS,
    WAD,
    div_down,
    div_round_half_up,
    ln_ratio_fixed,
)

__all__ = [
    "MS_PER_YEAR",
    "SMILE_FRAC_BITS",
    "SMILE_TIME_TO_EXPIRY_MS_MAX",
    "SMILE_TIME_TO_EXPIRY_MS_MIN",
    "SVI_A_WAD_MAX",
    "SVI_B_WAD_MAX",
    "SVI_M_WAD_MAX",
    "SVI_SIGMA_WAD_MAX",
    "SVI_TOTAL_VARIANCE_ERROR_BITS",
    "SmileKey",
    "SviSmile",
    "implied_sigma_wad",
    "log_moneyness_fixed",
    "total_variance_fixed",
]

MS_PER_YEAR: Final = SECONDS_PER_YEAR * 1_000  # ACT/365 fixed, as in black76
SMILE_FRAC_BITS: Final = LN_FRAC_BITS  # the log's precision: no digit of k is thrown away
# |w - w_exact| < 2**-SVI_TOTAL_VARIANCE_ERROR_BITS (module doc; asserted by the tests)
SVI_TOTAL_VARIANCE_ERROR_BITS: Final = 146

# Parameter bounds. Generous for any real market, tight enough that every intermediate stays a
# few hundred bits and the error analysis above holds.
SVI_A_WAD_MAX: Final = 100 * WAD  # |a|: total variance, e.g. 1000% vol over a year is 100
SVI_B_WAD_MAX: Final = 2 * WAD  # Lee: b (1 + |rho|) <= 2 implies b <= 2
SVI_M_WAD_MAX: Final = 10 * WAD  # |m|: log-moneyness of the smile's centre, e**10 ~ 22,000x
SVI_SIGMA_WAD_MAX: Final = 10 * WAD  # s: curvature width in log-moneyness
# The smile must be observed at least a second before expiry (else sigma = sqrt(w / tau) has
# no meaning) and at most the Black-76 horizon before it.
SMILE_TIME_TO_EXPIRY_MS_MIN: Final = 1_000
SMILE_TIME_TO_EXPIRY_MS_MAX: Final = 10 * MS_PER_YEAR
_LEE_SLOPE_MAX: Final = 2  # w(k) / |k| -> b (1 +- rho) <= 2 in the wings

SmileKey = tuple[int, int]  # (index_id, expiry_ms): one slice per listed expiry


def _to_fixed(value_wad: int) -> int:
    """A WAD number at ``2**SMILE_FRAC_BITS``, rounded half up (error <= 2**-161)."""
    return div_round_half_up(value_wad << SMILE_FRAC_BITS, WAD)


@dataclass(frozen=True, slots=True)
class SviSmile:
    """One raw-SVI slice: total implied variance to ``expiry_ms`` seen at ``observed_ms``.

    Parameters are WAD integers (``a`` and ``s`` in total variance and log-moneyness units,
    ``rho`` and ``m`` dimensionless / log-moneyness). Construction validates the no-arbitrage
    basics of the module docstring and raises ``ValueError`` naming the violated rule.
    """

    index_id: int
    expiry_ms: int
    observed_ms: int
    a_wad: int
    b_wad: int
    rho_wad: int
    m_wad: int
    sigma_svi_wad: int
    # fixed-point images of the parameters, computed once (not part of equality or repr)
    _a_fixed: int = field(init=False, repr=False, compare=False)
    _b_fixed: int = field(init=False, repr=False, compare=False)
    _rho_fixed: int = field(init=False, repr=False, compare=False)
    _m_fixed: int = field(init=False, repr=False, compare=False)
    _s_sq_fixed2: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self)
        s_fixed = _to_fixed(self.sigma_svi_wad)
        object.__setattr__(self, "_a_fixed", _to_fixed(self.a_wad))
        object.__setattr__(self, "_b_fixed", _to_fixed(self.b_wad))
        object.__setattr__(self, "_rho_fixed", _to_fixed(self.rho_wad))
        object.__setattr__(self, "_m_fixed", _to_fixed(self.m_wad))
        object.__setattr__(self, "_s_sq_fixed2", s_fixed * s_fixed)

    @property
    def key(self) -> SmileKey:
        return (self.index_id, self.expiry_ms)

    @property
    def time_to_expiry_ms(self) -> int:
        """``tau`` in milliseconds: the horizon the total variance ``w`` refers to."""
        return self.expiry_ms - self.observed_ms


def _validate(smile: SviSmile) -> None:
    a, b, rho, s = smile.a_wad, smile.b_wad, smile.rho_wad, smile.sigma_svi_wad
    if smile.index_id < 0 or smile.observed_ms < 0:
        raise ValueError("index_id and observed_ms must be non-negative")
    tau_ms = smile.expiry_ms - smile.observed_ms
    if not SMILE_TIME_TO_EXPIRY_MS_MIN <= tau_ms <= SMILE_TIME_TO_EXPIRY_MS_MAX:
        raise ValueError(
            f"time to expiry {tau_ms} ms outside [SMILE_TIME_TO_EXPIRY_MS_MIN="
            f"{SMILE_TIME_TO_EXPIRY_MS_MIN}, SMILE_TIME_TO_EXPIRY_MS_MAX]"
        )
    if not -SVI_A_WAD_MAX <= a <= SVI_A_WAD_MAX:
        raise ValueError(f"a_wad={a} outside [-SVI_A_WAD_MAX, SVI_A_WAD_MAX]")
    if not 0 <= b <= SVI_B_WAD_MAX:
        raise ValueError(f"b_wad={b}: SVI needs b >= 0 (and b <= SVI_B_WAD_MAX)")
    if not -WAD < rho < WAD:
        raise ValueError(f"rho_wad={rho}: SVI needs |rho| < 1")
    if not -SVI_M_WAD_MAX <= smile.m_wad <= SVI_M_WAD_MAX:
        raise ValueError(f"m_wad={smile.m_wad} outside [-SVI_M_WAD_MAX, SVI_M_WAD_MAX]")
    if not 0 < s <= SVI_SIGMA_WAD_MAX:
        raise ValueError(f"sigma_svi_wad={s}: SVI needs s > 0 (and s <= SVI_SIGMA_WAD_MAX)")
    # Lee: b (1 + |rho|) <= 2, scaled by WAD**2
    if b * (WAD + abs(rho)) > _LEE_SLOPE_MAX * WAD * WAD:
        raise ValueError(f"b (1 + |rho|) > {_LEE_SLOPE_MAX}: wings steeper than Lee's bound")
    # min_k w = a + b s sqrt(1 - rho**2) >= 0; at WAD**3: b s sqrt(WAD**2 - rho**2) >= -a WAD**2
    if a < 0 and (b * s) ** 2 * (WAD * WAD - rho * rho) < (a * WAD * WAD) ** 2:
        raise ValueError("a + b s sqrt(1 - rho**2) < 0: the smile's minimum variance is negative")


def log_moneyness_fixed(forward_wad: int, strike_wad: int) -> int:
    """``k = ln(strike / forward)`` at ``2**SMILE_FRAC_BITS`` (absolute error < 2**-150)."""
    if not 1 <= forward_wad <= PRICE_WAD_MAX:
        raise ValueError(f"forward_wad={forward_wad} outside [1, PRICE_WAD_MAX]")
    if not 1 <= strike_wad <= PRICE_WAD_MAX:
        raise ValueError(f"strike_wad={strike_wad} outside [1, PRICE_WAD_MAX]")
    return ln_ratio_fixed(strike_wad, forward_wad)


def total_variance_fixed(smile: SviSmile, forward_wad: int, strike_wad: int) -> int:
    """``w(k)`` at ``2**SMILE_FRAC_BITS``, floored at 0; within 2**-146 of exact (module doc)."""
    bits = SMILE_FRAC_BITS
    d = log_moneyness_fixed(forward_wad, strike_wad) - smile._m_fixed
    root = isqrt(d * d + smile._s_sq_fixed2)  # floor of sqrt((k-m)**2 + s**2) at 2**bits
    w = smile._a_fixed + (smile._b_fixed * ((smile._rho_fixed * d >> bits) + root) >> bits)
    # only reachable within a few units of an exact minimum of 0: report the exact floor
    return w if w > 0 else 0


def implied_sigma_wad(smile: SviSmile, forward_wad: int, strike_wad: int) -> int:
    """Annualised implied volatility of ``strike`` (WAD), correctly rounded from ``w / tau``.

    Error <= 1 ulp against the exact SVI value (module doc); clamped to ``SIGMA_WAD_MAX``.
    """
    w = total_variance_fixed(smile, forward_wad, strike_wad)
    # sigma**2 * WAD**2 = w / 2**bits * MS_PER_YEAR / tau_ms * WAD**2, as one exact ratio
    numerator = w * MS_PER_YEAR * WAD * WAD
    denominator = smile.time_to_expiry_ms << SMILE_FRAC_BITS
    if numerator >= SIGMA_WAD_MAX * SIGMA_WAD_MAX * denominator:
        return SIGMA_WAD_MAX
    root = isqrt(div_down(numerator, denominator))  # == floor(sqrt(numerator / denominator))
    # round half up: sqrt(n / d) >= root + 1/2  <=>  4 n >= (2 root + 1)**2 d
    if 4 * numerator >= (2 * root + 1) ** 2 * denominator:
        root += 1
    return root

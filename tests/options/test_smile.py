"""Raw-SVI smiles: no-arbitrage validation and implied volatilities against mpmath.

Bound asserted (``smile`` module docstring): ``|implied_sigma_wad - exact| <= 1 ulp`` (one unit
of WAD) for every valid smile, with the clamp at ``SIGMA_WAD_MAX``.
"""

from __future__ import annotations

import itertools

import mpmath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.execution.options.black76 import SIGMA_WAD_MAX
from rollbook.execution.options.fixed_point import WAD
from rollbook.execution.options.smile import (
    MS_PER_YEAR,
    SMILE_FRAC_BITS,
    SMILE_TIME_TO_EXPIRY_MS_MIN,
    SVI_A_WAD_MAX,
    SVI_TOTAL_VARIANCE_ERROR_BITS,
    SviSmile,
    implied_sigma_wad,
    total_variance_fixed,
)

mpmath.mp.dps = 60

DAY_MS = 86_400_000
NOW_MS = 1_700_000_000_000
ULP_MAX = 1


def smile(a: int, b: int, rho: int, m: int, s: int, tau_ms: int = 30 * DAY_MS) -> SviSmile:
    return SviSmile(1, NOW_MS + tau_ms, NOW_MS, a, b, rho, m, s)


def exact_w(sm: SviSmile, forward_wad: int, strike_wad: int) -> mpmath.mpf:
    k = mpmath.log(mpmath.mpf(strike_wad) / forward_wad)
    a, b, rho, m, s = (mpmath.mpf(v) / WAD for v in (sm.a_wad, sm.b_wad, sm.rho_wad, sm.m_wad,
                                                      sm.sigma_svi_wad))
    return a + b * (rho * (k - m) + mpmath.sqrt((k - m) ** 2 + s**2))


def exact_sigma_wad(sm: SviSmile, forward_wad: int, strike_wad: int) -> mpmath.mpf:
    w = exact_w(sm, forward_wad, strike_wad)
    tau_years = mpmath.mpf(sm.time_to_expiry_ms) / MS_PER_YEAR
    return min(mpmath.sqrt(max(w, 0) / tau_years) * WAD, mpmath.mpf(SIGMA_WAD_MAX))


def assert_within_bound(sm: SviSmile, forward_wad: int, strike_wad: int) -> None:
    got = implied_sigma_wad(sm, forward_wad, strike_wad)
    exact = exact_sigma_wad(sm, forward_wad, strike_wad)
    assert abs(got - exact) <= ULP_MAX, (sm, forward_wad, strike_wad, got, exact)
    w_fixed = total_variance_fixed(sm, forward_wad, strike_wad)
    w_error = abs(mpmath.mpf(w_fixed) / 2**SMILE_FRAC_BITS - max(exact_w(sm, forward_wad,
                                                                          strike_wad), 0))
    assert w_error < mpmath.mpf(2) ** -SVI_TOTAL_VARIANCE_ERROR_BITS


SMILES = [
    # typical crypto smile: ~60-70% ATM, put skew
    smile(WAD // 40, WAD // 10, -3 * WAD // 10, WAD // 100, WAD // 10),
    # minimum variance exactly 0 (rho = 0: a = -b s), i.e. sigma -> 0 at k = m
    smile(-WAD // 100, WAD // 10, 0, 0, WAD // 10),
    # Lee's bound reached on the put wing: b (1 + |rho|) = 2 up to rounding
    smile(WAD // 10, 4 * WAD // 3, -WAD // 2, -WAD // 5, WAD // 2),
    # flat: b = 0
    smile(WAD // 25, 0, 0, 0, 1),
    # tiny s: a kink at m
    smile(WAD // 50, WAD // 5, WAD // 3, WAD // 10, 10**6),
    # short observation horizon (one second) and a long one (ten years)
    smile(WAD // 10**6, WAD // 10**5, -WAD // 5, 0, WAD // 10, tau_ms=SMILE_TIME_TO_EXPIRY_MS_MIN),
    smile(4 * WAD, WAD // 2, WAD // 4, 0, WAD, tau_ms=10 * MS_PER_YEAR),
]
FORWARDS_WAD = [10**15, 30_000 * WAD, 10**6 * WAD]
MONEYNESS_PPM = [10_000, 200_000, 800_000, 990_000, 1_000_000, 1_010_000, 1_250_000, 5_000_000,
                 100_000_000]


def test_grid_against_mpmath() -> None:
    for sm, forward, moneyness in itertools.product(SMILES, FORWARDS_WAD, MONEYNESS_PPM):
        assert_within_bound(sm, forward, forward * moneyness // 10**6)


def test_centre_of_a_zero_minimum_smile_is_zero_volatility() -> None:
    sm = SMILES[1]  # w(k) = 0.1 (sqrt(k**2 + 0.01) - 0.1): zero at k = 0
    assert implied_sigma_wad(sm, 30_000 * WAD, 30_000 * WAD) == 0
    assert implied_sigma_wad(sm, 30_000 * WAD, 33_000 * WAD) > 0


def test_flat_smile_is_exact() -> None:
    # w = 0.16 over exactly one year: sigma = 0.4 at every strike
    flat = smile(16 * WAD // 100, 0, 0, 0, WAD, tau_ms=MS_PER_YEAR)
    for strike in (1, 10 * WAD, 30_000 * WAD, 10**30):
        assert implied_sigma_wad(flat, 30_000 * WAD, strike) == 4 * WAD // 10


def test_clamped_at_the_black76_domain() -> None:
    wild = smile(SVI_A_WAD_MAX, 0, 0, 0, WAD, tau_ms=SMILE_TIME_TO_EXPIRY_MS_MIN)
    assert implied_sigma_wad(wild, WAD, WAD) == SIGMA_WAD_MAX


def test_skew_orders_the_wings() -> None:
    sm = SMILES[0]  # rho < 0: downside strikes carry more volatility than upside ones
    forward = 100_000 * WAD
    down = implied_sigma_wad(sm, forward, 70_000 * WAD)
    up = implied_sigma_wad(sm, forward, forward * 10 // 7)
    assert down > up


@pytest.mark.parametrize(
    ("a", "b", "rho", "s", "message"),
    [
        (WAD // 10, -1, 0, WAD // 10, "b >= 0"),
        (WAD // 10, WAD // 10, WAD, WAD // 10, r"\|rho\| < 1"),
        (WAD // 10, WAD // 10, -WAD, WAD // 10, r"\|rho\| < 1"),
        (WAD // 10, WAD // 10, 0, 0, "s > 0"),
        # Lee: b (1 + |rho|) = 4/3 WAD * 1.5 just above 2
        (WAD // 10, 4 * WAD // 3 + 1, WAD // 2, WAD // 10, "Lee"),
        # minimum variance a + b s sqrt(1 - rho**2) = -1e-18 < 0
        (-WAD // 100 - 1, WAD // 10, 0, WAD // 10, "minimum variance"),
        (SVI_A_WAD_MAX + 1, 0, 0, WAD, "a_wad"),
    ],
)
def test_rejects_arbitrageable_or_out_of_range(
    a: int, b: int, rho: int, s: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        smile(a, b, rho, 0, s)


def test_accepts_the_boundaries_exactly() -> None:
    smile(-WAD // 100, WAD // 10, 0, 0, WAD // 10)  # minimum variance exactly 0
    smile(WAD // 10, 4 * WAD // 3, WAD // 2, 0, WAD // 10)  # Lee's bound, rounded inside


@pytest.mark.parametrize("tau_ms", [SMILE_TIME_TO_EXPIRY_MS_MIN - 1, 0, -DAY_MS])
def test_rejects_a_smile_observed_too_close_to_expiry(tau_ms: int) -> None:
    with pytest.raises(ValueError, match="time to expiry"):
        smile(WAD // 10, 0, 0, 0, WAD, tau_ms=tau_ms)


def test_equality_and_hash_ignore_the_derived_fixed_point_fields() -> None:
    one, two = smile(WAD // 40, WAD // 10, 0, 0, WAD // 10), smile(WAD // 40, WAD // 10, 0, 0,
                                                                     WAD // 10)
    assert one == two and hash(one) == hash(two) and one.key == (1, NOW_MS + 30 * DAY_MS)


@st.composite
def valid_smiles(draw: st.DrawFn) -> SviSmile:
    rho = draw(st.integers(-WAD + 1, WAD - 1))
    b_max = 2 * WAD * WAD // (WAD + abs(rho))
    b = draw(st.integers(0, b_max))
    s = draw(st.integers(1, 2 * WAD))
    m = draw(st.integers(-WAD, WAD))
    # a >= -b s sqrt(1 - rho**2): draw the slack above the (rounded up) minimum
    minimum = -(b * s * mpmath.sqrt(1 - (mpmath.mpf(rho) / WAD) ** 2) / WAD)
    a = int(mpmath.ceil(minimum)) + draw(st.integers(0, WAD))
    tau_ms = draw(st.integers(SMILE_TIME_TO_EXPIRY_MS_MIN, 3 * MS_PER_YEAR))
    return smile(a, b, rho, m, s, tau_ms=tau_ms)


@settings(max_examples=200, deadline=None)
@given(
    valid_smiles(),
    st.integers(10**15, 10**24),
    st.integers(50_000, 20_000_000),
)
def test_random_smiles_against_mpmath(sm: SviSmile, forward_wad: int, moneyness_ppm: int) -> None:
    assert_within_bound(sm, forward_wad, max(1, forward_wad * moneyness_ppm // 10**6))

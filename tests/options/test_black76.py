"""Deterministic Black-76 against mpmath, edge conventions, and no-arbitrage properties.

The error bounds asserted are those of ``black76``'s module docstring:
``|error| <= ERROR_ULPS_MAX + scale / ERROR_SCALE_DENOMINATOR`` with ``scale`` = F + K for the
price, 0 for delta, and ``1 / (F sigma sqrt T)``, ``F sqrt T``, ``F sigma / (2 sqrt T)`` for
gamma, vega and theta.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path

import mpmath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.execution.options.black76 import (
    ERROR_SCALE_DENOMINATOR,
    ERROR_ULPS_MAX,
    EXPIRY_S_MAX,
    PRICE_WAD_MAX,
    SECONDS_PER_YEAR,
    SIGMA_WAD_MAX,
    OptionValuation,
    black76_call,
    black76_call_put,
    black76_put,
    price_error_bound_wad,
)
from rollbook.execution.options.fixed_point import WAD

mpmath.mp.dps = 50

MINUTE_S = 60
DAY_S = 86_400
PPM = 10**6
SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass(frozen=True)
class Exact:
    """mpmath reference, each field in WAD units (a real number, not rounded)."""

    call: mpmath.mpf
    put: mpmath.mpf
    call_delta: mpmath.mpf
    gamma: mpmath.mpf
    vega: mpmath.mpf
    theta: mpmath.mpf
    gamma_scale: mpmath.mpf
    vega_scale: mpmath.mpf
    theta_scale: mpmath.mpf


def exact_black76(forward_wad: int, strike_wad: int, expiry_s: int, sigma_wad: int) -> Exact:
    f = mpmath.mpf(forward_wad) / WAD
    k = mpmath.mpf(strike_wad) / WAD
    sqrt_t = mpmath.sqrt(mpmath.mpf(expiry_s) / SECONDS_PER_YEAR)
    sigma = mpmath.mpf(sigma_wad) / WAD
    v = sigma * sqrt_t
    d1 = mpmath.log(f / k) / v + v / 2
    d2 = d1 - v
    pdf = mpmath.npdf(d1)
    return Exact(
        call=(f * mpmath.ncdf(d1) - k * mpmath.ncdf(d2)) * WAD,
        put=(k * mpmath.ncdf(-d2) - f * mpmath.ncdf(-d1)) * WAD,
        call_delta=mpmath.ncdf(d1) * WAD,
        gamma=pdf / (f * v) * WAD,
        vega=f * pdf * sqrt_t * WAD,
        theta=-f * pdf * sigma / (2 * sqrt_t) * WAD,
        gamma_scale=WAD / (f * v),
        vega_scale=f * sqrt_t * WAD,
        theta_scale=f * sigma / (2 * sqrt_t) * WAD,
    )


def _bound(scale: mpmath.mpf) -> mpmath.mpf:
    return ERROR_ULPS_MAX + scale / ERROR_SCALE_DENOMINATOR


def assert_within_bounds(forward_wad: int, strike_wad: int, expiry_s: int, sigma_wad: int) -> None:
    call, put = black76_call_put(forward_wad, strike_wad, expiry_s, sigma_wad)
    exact = exact_black76(forward_wad, strike_wad, expiry_s, sigma_wad)
    case = (forward_wad, strike_wad, expiry_s, sigma_wad)
    price_bound = _bound(mpmath.mpf(forward_wad + strike_wad))
    assert abs(call.price - exact.call) <= price_bound, case
    assert abs(put.price - exact.put) <= price_bound, case
    assert abs(call.delta - exact.call_delta) <= ERROR_ULPS_MAX, case
    assert abs(put.delta - (exact.call_delta - WAD)) <= ERROR_ULPS_MAX, case
    assert abs(call.gamma - exact.gamma) <= _bound(exact.gamma_scale), case
    assert abs(call.vega - exact.vega) <= _bound(exact.vega_scale), case
    assert abs(call.theta - exact.theta) <= _bound(exact.theta_scale), case
    assert price_error_bound_wad(forward_wad, strike_wad) >= price_bound


# --- accuracy over the design grid -------------------------------------------------------------

FORWARDS_WAD = [10**15, WAD, 30_000 * WAD, 10**6 * WAD]  # 0.001 USD .. 1M USD
MONEYNESS_PPM = [
    200_000,
    500_000,
    800_000,
    950_000,
    999_000,
    1_000_000,
    1_001_000,
    1_050_000,
    1_250_000,
    2_000_000,
    5_000_000,
]
EXPIRIES_S = [MINUTE_S, 3_600, DAY_S, 7 * DAY_S, 30 * DAY_S, SECONDS_PER_YEAR, 3 * SECONDS_PER_YEAR]
SIGMAS_WAD = [WAD // 100, WAD // 10, WAD // 2, WAD, 2 * WAD, 5 * WAD]


def test_design_grid_against_mpmath() -> None:
    grid = itertools.product(FORWARDS_WAD, MONEYNESS_PPM, EXPIRIES_S, SIGMAS_WAD)
    for forward_wad, moneyness_ppm, expiry_s, sigma_wad in grid:
        strike_wad = forward_wad * moneyness_ppm // PPM
        assert_within_bounds(forward_wad, strike_wad, expiry_s, sigma_wad)


@pytest.mark.parametrize(
    ("forward_wad", "strike_wad", "expiry_s", "sigma_wad"),
    [
        # near expiry, at and around the money
        (30_000 * WAD, 30_000 * WAD, 1, WAD // 2),
        (30_000 * WAD, 30_000 * WAD + 1, 1, WAD // 2),
        (30_000 * WAD, 30_001 * WAD, 10, WAD // 2),
        (30_000 * WAD, 29_999 * WAD, MINUTE_S, WAD // 100),
        # tiny sigma: v = sigma sqrt(T) down to ~1.8e-22
        (30_000 * WAD, 30_000 * WAD, 1, 1),
        (30_000 * WAD, 30_000 * WAD + 1, 1, 1),
        (WAD, WAD + 10**9, DAY_S, 10**6),
        (WAD, WAD - 10**9, DAY_S, 10**6),
        # deep in and out of the money (the CDF saturates)
        (30_000 * WAD, 300 * WAD, DAY_S, WAD // 2),
        (30_000 * WAD, 3_000_000 * WAD, DAY_S, WAD // 2),
        (WAD, 100 * WAD, 3 * SECONDS_PER_YEAR, 5 * WAD),
        (100 * WAD, WAD, 3 * SECONDS_PER_YEAR, 5 * WAD),
        # extremes of the domain
        (1, 1, EXPIRY_S_MAX, SIGMA_WAD_MAX),
        (PRICE_WAD_MAX, PRICE_WAD_MAX // 3, EXPIRY_S_MAX, SIGMA_WAD_MAX),
        (PRICE_WAD_MAX, 1, 1, 1),
    ],
)
def test_edge_points_against_mpmath(
    forward_wad: int, strike_wad: int, expiry_s: int, sigma_wad: int
) -> None:
    with mpmath.workdps(80):
        assert_within_bounds(forward_wad, strike_wad, expiry_s, sigma_wad)


# --- edge conventions --------------------------------------------------------------------------


@pytest.mark.parametrize("expiry_s", [0, DAY_S])
def test_zero_variance_is_intrinsic_with_step_delta(expiry_s: int) -> None:
    sigma_wad = 0 if expiry_s else WAD // 2
    itm_call, itm_put = black76_call_put(110 * WAD, 100 * WAD, expiry_s, sigma_wad)
    assert itm_call == OptionValuation(10 * WAD, WAD, 0, 0, 0)
    assert itm_put == OptionValuation(0, 0, 0, 0, 0)
    otm_call, otm_put = black76_call_put(90 * WAD, 100 * WAD, expiry_s, sigma_wad)
    assert otm_call == OptionValuation(0, 0, 0, 0, 0)
    assert otm_put == OptionValuation(10 * WAD, -WAD, 0, 0, 0)
    atm_call, atm_put = black76_call_put(100 * WAD, 100 * WAD, expiry_s, sigma_wad)
    assert (atm_call.price, atm_call.delta, atm_put.price, atm_put.delta) == (
        0,
        WAD // 2,
        0,
        -WAD // 2,
    )


def test_zero_sigma_at_the_money_vega_is_its_limit() -> None:
    call = black76_call(100 * WAD, 100 * WAD, SECONDS_PER_YEAR // 4, 0)
    exact = 100 * mpmath.sqrt(mpmath.mpf(1) / 4) / mpmath.sqrt(2 * mpmath.pi) * WAD
    assert abs(call.vega - exact) <= 1
    assert black76_call(100 * WAD, 100 * WAD, 0, WAD).vega == 0


def test_deep_in_the_money_saturates_exactly() -> None:
    call = black76_call(30_000 * WAD, 3_000 * WAD, DAY_S, WAD // 2)
    assert call == OptionValuation(27_000 * WAD, WAD, 0, 0, 0)
    put = black76_put(30_000 * WAD, 300_000 * WAD, DAY_S, WAD // 2)
    assert put == OptionValuation(270_000 * WAD, -WAD, 0, 0, 0)


def test_limit_approaching_expiry_is_continuous() -> None:
    # the price converges to intrinsic and the delta to its step as T -> 0
    last = black76_call(101 * WAD, 100 * WAD, 0, WAD // 2)
    near = black76_call(101 * WAD, 100 * WAD, 1, WAD // 2)
    assert near.price == last.price and near.delta == last.delta


@pytest.mark.parametrize(
    ("forward_wad", "strike_wad", "expiry_s", "sigma_wad", "message"),
    [
        (0, WAD, DAY_S, WAD, "forward_wad"),
        (WAD, 0, DAY_S, WAD, "strike_wad"),
        (-WAD, WAD, DAY_S, WAD, "forward_wad"),
        (PRICE_WAD_MAX + 1, WAD, DAY_S, WAD, "forward_wad"),
        (WAD, PRICE_WAD_MAX + 1, DAY_S, WAD, "strike_wad"),
        (WAD, WAD, -1, WAD, "expiry_s"),
        (WAD, WAD, EXPIRY_S_MAX + 1, WAD, "expiry_s"),
        (WAD, WAD, DAY_S, -1, "sigma_wad"),
        (WAD, WAD, DAY_S, SIGMA_WAD_MAX + 1, "sigma_wad"),
    ],
)
def test_rejects_out_of_domain_inputs(
    forward_wad: int, strike_wad: int, expiry_s: int, sigma_wad: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        black76_call(forward_wad, strike_wad, expiry_s, sigma_wad)
    with pytest.raises(ValueError, match=message):
        black76_put(forward_wad, strike_wad, expiry_s, sigma_wad)


def test_valuation_is_frozen() -> None:
    valuation = black76_call(WAD, WAD, DAY_S, WAD)
    with pytest.raises(FrozenInstanceError):
        valuation.price = 0  # type: ignore[misc]


# --- properties --------------------------------------------------------------------------------

forwards = st.integers(min_value=10**15, max_value=10**24)
moneyness = st.integers(min_value=200_000, max_value=5_000_000)
expiries = st.integers(min_value=0, max_value=3 * SECONDS_PER_YEAR)
sigmas = st.integers(min_value=0, max_value=5 * WAD)


@settings(max_examples=300)
@given(forwards, moneyness, expiries, sigmas)
def test_parity_bounds_and_signs(
    forward_wad: int, moneyness_ppm: int, expiry_s: int, sigma_wad: int
) -> None:
    strike_wad = forward_wad * moneyness_ppm // PPM
    call, put = black76_call_put(forward_wad, strike_wad, expiry_s, sigma_wad)
    assert call.price - put.price == forward_wad - strike_wad  # exact parity
    assert call.delta - put.delta == WAD
    assert (call.gamma, call.vega, call.theta) == (put.gamma, put.vega, put.theta)
    assert max(forward_wad - strike_wad, 0) <= call.price <= forward_wad
    assert max(strike_wad - forward_wad, 0) <= put.price <= strike_wad
    assert 0 <= call.delta <= WAD
    assert call.gamma >= 0 and call.vega >= 0 and call.theta <= 0
    assert black76_call(forward_wad, strike_wad, expiry_s, sigma_wad) == call
    assert black76_put(forward_wad, strike_wad, expiry_s, sigma_wad) == put


@settings(max_examples=200)
@given(forwards, moneyness, expiries, sigmas, sigmas)
def test_call_price_increases_with_volatility(
    forward_wad: int, moneyness_ppm: int, expiry_s: int, sigma_a: int, sigma_b: int
) -> None:
    strike_wad = forward_wad * moneyness_ppm // PPM
    low, high = sorted((sigma_a, sigma_b))
    # the exact price is monotone; each computed price is within the bound of it
    slack = 2 * price_error_bound_wad(forward_wad, strike_wad)
    low_price = black76_call(forward_wad, strike_wad, expiry_s, low).price
    assert black76_call(forward_wad, strike_wad, expiry_s, high).price >= low_price - slack


@settings(max_examples=200)
@given(forwards, moneyness, moneyness, expiries, sigmas)
def test_call_price_decreases_with_strike(
    forward_wad: int, moneyness_a: int, moneyness_b: int, expiry_s: int, sigma_wad: int
) -> None:
    low, high = (forward_wad * m // PPM for m in sorted((moneyness_a, moneyness_b)))
    slack = 2 * price_error_bound_wad(forward_wad, high)
    low_strike_price = black76_call(forward_wad, low, expiry_s, sigma_wad).price
    assert black76_call(forward_wad, high, expiry_s, sigma_wad).price <= low_strike_price + slack


@settings(max_examples=100)
@given(forwards, moneyness, expiries.filter(lambda t: t > 0), sigmas.filter(lambda s: s > 0))
def test_random_points_against_mpmath(
    forward_wad: int, moneyness_ppm: int, expiry_s: int, sigma_wad: int
) -> None:
    assert_within_bounds(forward_wad, forward_wad * moneyness_ppm // PPM, expiry_s, sigma_wad)


# --- determinism -------------------------------------------------------------------------------


def test_golden_valuation() -> None:
    # BTC-like: F = 30,000, K = 32,000, 30 days, 80% vol. Pinned: a change is a consensus change.
    call, put = black76_call_put(30_000 * WAD, 32_000 * WAD, 30 * DAY_S, 8 * WAD // 10)
    # mpmath: price 1941.035191490239556608017..., delta 0.4337961437803773183...
    assert call == OptionValuation(
        price=1_941_035191490239556608,
        delta=433796143780377318,
        gamma=57180648538652,
        vega=3_383_841118999667285715,
        theta=-16_468_026779131714123814,
    )
    assert put == OptionValuation(
        price=3_941_035191490239556608,
        delta=-566203856219622682,
        gamma=call.gamma,
        vega=call.vega,
        theta=call.theta,
    )


_DIGEST_SCRIPT = """
import hashlib
from rollbook.execution.options.black76 import black76_call_put
h = hashlib.sha256()
for i in range(1, 200):
    for v in black76_call_put(10**18 * (100 + i), 10**18 * (90 + 2 * i), 3600 * i, 10**16 * i):
        h.update(repr(v).encode())
print(h.hexdigest())
"""


def test_same_digest_under_different_hash_seeds() -> None:
    digests = set()
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(SRC)}
        result = subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        digests.add(result.stdout.strip())
    assert len(digests) == 1

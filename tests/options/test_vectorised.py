"""The NumPy float64 Black-76 agrees with the deterministic integer path within stated bounds.

Bounds (``rollbook.risk.vectorised`` module docstring), with the deterministic module's scales,
on top of one WAD ulp (1e-18, the deterministic path's rounding): price ``1e-13 (F + K)``, delta
``1e-12``, gamma/vega/theta ``1e-12 * scale``.
"""

from __future__ import annotations

import itertools

import mpmath
import numpy as np
import pytest
from test_black76 import FORWARDS_WAD
from test_black76 import MONEYNESS_PPM as DESIGN_MONEYNESS_PPM

from rollbook.execution.options.black76 import SECONDS_PER_YEAR, black76_call_put
from rollbook.execution.options.fixed_point import WAD
from rollbook.risk.vectorised import black76_vectorised, norm_cdf, norm_pdf

PRICE_REL_MAX = 1e-13
DELTA_ABS_MAX = 1e-12
GREEK_REL_MAX = 1e-12
NORM_ABS_MAX = 2e-16
WAD_ULP = 1e-18

DAY_S = 86_400
# the deterministic path's design grid, plus deep in/out-of-the-money calls
MONEYNESS_PPM = [*DESIGN_MONEYNESS_PPM, 10_000, 100_000_000]
EXPIRIES_S = [0, 1, 60, 3_600, DAY_S, 30 * DAY_S, SECONDS_PER_YEAR, 3 * SECONDS_PER_YEAR]
SIGMAS_WAD = [0, WAD // 100, WAD // 10, WAD // 2, WAD, 2 * WAD, 5 * WAD]


def _grid() -> list[tuple[int, int, int, int]]:
    return [
        (forward, forward * moneyness // 10**6, expiry_s, sigma)
        for forward, moneyness, expiry_s, sigma in itertools.product(
            FORWARDS_WAD, MONEYNESS_PPM, EXPIRIES_S, SIGMAS_WAD
        )
    ]


def test_agrees_with_the_deterministic_path_over_the_grid() -> None:
    grid = _grid()
    columns = np.array(grid, dtype=np.float64).T
    forward, strike = columns[0] / WAD, columns[1] / WAD
    expiry_s, sigma = columns[2], columns[3] / WAD
    arrays = black76_vectorised(forward, strike, expiry_s, sigma)

    exact = [black76_call_put(*case) for case in grid]
    call_price = np.array([call.price for call, _ in exact], dtype=np.float64) / WAD
    put_price = np.array([put.price for _, put in exact], dtype=np.float64) / WAD
    delta = np.array([call.delta for call, _ in exact], dtype=np.float64) / WAD
    gamma = np.array([call.gamma for call, _ in exact], dtype=np.float64) / WAD
    vega = np.array([call.vega for call, _ in exact], dtype=np.float64) / WAD
    theta = np.array([call.theta for call, _ in exact], dtype=np.float64) / WAD

    sqrt_t = np.sqrt(expiry_s / SECONDS_PER_YEAR)
    live = sigma * sqrt_t > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma_scale = np.where(live, 1.0 / (forward * sigma * sqrt_t), 1.0)
        vega_scale = np.where(expiry_s > 0, forward * sqrt_t, 1.0)
        theta_scale = np.where(live, forward * sigma / (2.0 * sqrt_t), 1.0)

    price_bound = WAD_ULP + PRICE_REL_MAX * (forward + strike)
    assert np.all(np.abs(arrays.call_price - call_price) <= price_bound)
    assert np.all(np.abs(arrays.put_price - put_price) <= price_bound)
    assert np.all(np.abs(arrays.call_delta - delta) <= WAD_ULP + DELTA_ABS_MAX)
    assert np.all(np.abs(arrays.put_delta - (delta - 1.0)) <= WAD_ULP + DELTA_ABS_MAX)
    assert np.all(np.abs(arrays.gamma - gamma) <= WAD_ULP + GREEK_REL_MAX * gamma_scale)
    assert np.all(np.abs(arrays.vega - vega) <= WAD_ULP + GREEK_REL_MAX * vega_scale)
    assert np.all(np.abs(arrays.theta - theta) <= WAD_ULP + GREEK_REL_MAX * theta_scale)


def test_norm_functions_against_mpmath() -> None:
    xs = np.linspace(-12.0, 12.0, 2_401)
    cdf, pdf = norm_cdf(xs), norm_pdf(xs)
    for x, c, p in zip(xs.tolist(), cdf.tolist(), pdf.tolist(), strict=True):
        assert abs(c - float(mpmath.ncdf(x))) <= NORM_ABS_MAX, x
        assert abs(p - float(mpmath.npdf(x))) <= NORM_ABS_MAX, x
    assert np.all(np.diff(cdf) >= 0.0)


def test_zero_variance_matches_the_deterministic_conventions() -> None:
    arrays = black76_vectorised([110.0, 90.0, 100.0], 100.0, [0.0, 0.0, DAY_S], 0.0)
    np.testing.assert_array_equal(arrays.call_price, [10.0, 0.0, 0.0])
    np.testing.assert_array_equal(arrays.put_price, [0.0, 10.0, 0.0])
    np.testing.assert_array_equal(arrays.call_delta, [1.0, 0.0, 0.5])
    np.testing.assert_array_equal(arrays.gamma, [0.0, 0.0, 0.0])
    atm_vega = black76_call_put(100 * WAD, 100 * WAD, DAY_S, 0)[0].vega / WAD
    assert arrays.vega[2] == pytest.approx(atm_vega, rel=1e-14)


def test_broadcasts_scalars_against_arrays() -> None:
    arrays = black76_vectorised(30_000.0, [25_000.0, 30_000.0, 35_000.0], 30 * DAY_S, 0.8)
    assert arrays.call_price.shape == (3,)
    assert np.all(np.diff(arrays.call_price) < 0)


@pytest.mark.parametrize(
    ("forward", "strike", "expiry_s", "sigma"),
    [(0.0, 1.0, 1.0, 1.0), (1.0, -1.0, 1.0, 1.0), (1.0, 1.0, -1.0, 1.0), (1.0, 1.0, 1.0, np.nan)],
)
def test_rejects_invalid_inputs(
    forward: float, strike: float, expiry_s: float, sigma: float
) -> None:
    with pytest.raises(ValueError):
        black76_vectorised(forward, strike, expiry_s, sigma)

"""Integer fixed-point math against mpmath at high precision, plus properties and golden values.

The bounds asserted here are the ones stated in ``fixed_point``'s module docstring; each test's
worst case is what the docstring reports as "measured".
"""

from __future__ import annotations

import hashlib
import random

import mpmath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.execution.options import fixed_point as fp
from rollbook.execution.options.fixed_point import (
    EXP_WAD_INPUT_MAX,
    EXP_WAD_ZERO_BELOW,
    FRAC_BITS,
    LN_FRAC_BITS,
    NORM_KERNEL_ERROR_MAX,
    NORM_STEP_BITS,
    NORM_Z_SATURATION,
    UINT256_MAX,
    WAD,
    div_down,
    div_round_half_up,
    div_up,
    div_wad_down,
    div_wad_up,
    exp_wad,
    ln_ratio_fixed,
    ln_wad,
    mul_wad_down,
    mul_wad_up,
    norm_cdf_fixed,
    norm_cdf_wad,
    norm_pdf_fixed,
    norm_pdf_wad,
    shift_round_half_up,
    sqrt_wad,
)

mpmath.mp.dps = 60

HALF_ULP = mpmath.mpf(1) / 2
EXP_REL_MAX = mpmath.mpf("1e-26")  # beyond the rounding, relative to the result
LN_EXTRA_ULPS = mpmath.mpf("1e-9")
NORM_EXTRA_ULPS = mpmath.mpf("1e-8")
LN_KERNEL_ERROR_MAX = 1 << (LN_FRAC_BITS - 150)
SAMPLES = 1500  # random points per function against mpmath (each costs ~20-60 us)

wad_ints = st.integers(min_value=-(10**40), max_value=10**40)
nonzero = wad_ints.filter(lambda v: v != 0)


def _real(x_wad: int) -> mpmath.mpf:
    return mpmath.mpf(x_wad) / WAD


def _err_ulps(computed_wad: int, exact: mpmath.mpf) -> mpmath.mpf:
    return abs(mpmath.mpf(computed_wad) - exact * WAD)


# --- named rounding helpers ------------------------------------------------------------------


@given(wad_ints, wad_ints)
def test_mul_wad_rounds_down_and_up(a: int, b: int) -> None:
    down, up = mul_wad_down(a, b), mul_wad_up(a, b)
    assert down * WAD <= a * b < (down + 1) * WAD
    assert (up - 1) * WAD < a * b <= up * WAD
    assert up - down == (0 if (a * b) % WAD == 0 else 1)


@given(wad_ints, nonzero)
def test_div_wad_rounds_down_and_up(a: int, b: int) -> None:
    down, up = div_wad_down(a, b), div_wad_up(a, b)
    exact = mpmath.mpf(a) * WAD / b
    assert down <= exact <= up
    assert up - down == (0 if (a * WAD) % b == 0 else 1)


@given(wad_ints, nonzero)
def test_integer_division_helpers(a: int, b: int) -> None:
    exact = mpmath.mpf(a) / b
    assert div_down(a, b) == mpmath.floor(exact)
    assert div_up(a, b) == mpmath.ceil(exact)
    assert div_round_half_up(a, b) == mpmath.floor(exact + HALF_ULP)


@given(wad_ints, st.integers(min_value=1, max_value=300))
def test_shift_round_half_up(value: int, bits: int) -> None:
    assert shift_round_half_up(value, bits) == div_round_half_up(value, 1 << bits)


@pytest.mark.parametrize("helper", [div_wad_down, div_wad_up, div_down, div_up, div_round_half_up])
def test_division_by_zero_is_a_value_error(helper: object) -> None:
    with pytest.raises(ValueError, match="division by zero"):
        helper(WAD, 0)  # type: ignore[operator]


# --- exp ---------------------------------------------------------------------------------------


def _exp_points() -> list[int]:
    rng = random.Random(11)
    points = [0, 1, -1, WAD, -WAD, 2 * WAD, EXP_WAD_INPUT_MAX, EXP_WAD_ZERO_BELOW, -42 * WAD]
    points += [rng.randrange(-5 * WAD, 5 * WAD) for _ in range(SAMPLES // 2)]
    points += [rng.randrange(EXP_WAD_ZERO_BELOW, EXP_WAD_INPUT_MAX) for _ in range(SAMPLES // 2)]
    return points


def test_exp_wad_against_mpmath() -> None:
    with mpmath.workdps(120):  # exp(135) * 1e18 has 77 digits
        for x in _exp_points():
            exact = mpmath.exp(_real(x))
            bound = HALF_ULP + EXP_REL_MAX * exact * WAD
            assert _err_ulps(exp_wad(x), exact) <= bound, x


def test_exp_wad_exact_points_and_domain() -> None:
    assert exp_wad(0) == WAD
    assert exp_wad(WAD) == 2_718281828459045235  # e = 2.718281828459045235360...
    assert exp_wad(EXP_WAD_ZERO_BELOW - 1) == 0
    assert exp_wad(-(10**30)) == 0
    assert exp_wad(EXP_WAD_INPUT_MAX) < 1 << 255
    with pytest.raises(ValueError, match="EXP_WAD_INPUT_MAX"):
        exp_wad(EXP_WAD_INPUT_MAX + 1)


@given(st.integers(min_value=-40 * WAD, max_value=40 * WAD), st.integers(0, 10**6))
def test_exp_wad_is_monotone(x: int, step: int) -> None:
    assert exp_wad(x) <= exp_wad(x + step)


# --- ln ----------------------------------------------------------------------------------------


def _ln_points() -> list[int]:
    rng = random.Random(12)
    points = [1, 2, WAD - 1, WAD, WAD + 1, 2 * WAD, 10 * WAD, UINT256_MAX]
    points += [rng.randrange(1, 1 << rng.randrange(1, 257)) for _ in range(SAMPLES // 2)]
    points += [WAD + rng.randrange(-(10**9), 10**9) for _ in range(SAMPLES // 4)]
    points += [rng.randrange(WAD // 2, 2 * WAD) for _ in range(SAMPLES // 4)]
    return points


def test_ln_wad_against_mpmath() -> None:
    for x in _ln_points():
        exact = mpmath.log(_real(x))
        assert _err_ulps(ln_wad(x), exact) <= HALF_ULP + LN_EXTRA_ULPS, x


def test_ln_ratio_kernel_against_mpmath() -> None:
    rng = random.Random(13)
    scale = mpmath.mpf(2) ** LN_FRAC_BITS
    with mpmath.workdps(80):
        for _ in range(SAMPLES):
            num = rng.randrange(1, 10 ** rng.randrange(1, 37))
            den = rng.randrange(1, 10 ** rng.randrange(1, 37))
            exact = mpmath.log(mpmath.mpf(num) / den) * scale
            assert abs(ln_ratio_fixed(num, den) - exact) <= LN_KERNEL_ERROR_MAX, (num, den)


def test_ln_wad_exact_points_and_domain() -> None:
    assert ln_wad(WAD) == 0
    assert ln_wad(2 * WAD) == 693147180559945309  # ln 2 = 0.693147180559945309417...
    for bad in (0, -1):
        with pytest.raises(ValueError, match="positive"):
            ln_wad(bad)
    with pytest.raises(ValueError, match="UINT256_MAX"):
        ln_wad(UINT256_MAX + 1)


@given(st.integers(min_value=1, max_value=10**40))
def test_ln_wad_is_monotone_and_additive(x: int) -> None:
    assert ln_wad(x) <= ln_wad(x + 1)
    # ln(2x) - ln(x) = ln 2, up to the two roundings
    assert abs(ln_wad(2 * x) - ln_wad(x) - 693147180559945309) <= 1


@given(st.integers(min_value=WAD // 10**9, max_value=10**48))
def test_exp_wad_inverts_ln_wad(x: int) -> None:
    # ln's rounding (<= 0.5 ulp of the exponent) is a relative error <= 5e-19 after exp
    assert abs(exp_wad(ln_wad(x)) - x) <= 1 + x // 10**18


# --- sqrt --------------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=UINT256_MAX))
def test_sqrt_wad_is_correctly_rounded(x: int) -> None:
    root = sqrt_wad(x)
    scaled4 = 4 * x * WAD
    # max(root - 1/2, 0)**2 <= x * WAD <= (root + 1/2)**2, in integers
    assert max(2 * root - 1, 0) ** 2 <= scaled4 <= (2 * root + 1) ** 2


def test_sqrt_wad_exact_points_and_domain() -> None:
    assert sqrt_wad(0) == 0
    assert sqrt_wad(WAD) == WAD
    assert sqrt_wad(4 * WAD) == 2 * WAD
    assert sqrt_wad(2 * WAD) == 1_414213562373095049  # sqrt 2 = 1.41421356237309504880...
    with pytest.raises(ValueError, match="non-negative"):
        sqrt_wad(-1)
    with pytest.raises(ValueError, match="UINT256_MAX"):
        sqrt_wad(UINT256_MAX + 1)


# --- normal CDF and PDF ------------------------------------------------------------------------


def _norm_points() -> list[int]:
    rng = random.Random(14)
    saturation = NORM_Z_SATURATION * WAD
    points = [0, 1, -1, saturation, saturation - 1, -saturation, 10**30, -(10**30)]
    points += [rng.randrange(-12 * WAD, 12 * WAD) for _ in range(SAMPLES)]
    points += [rng.randrange(-(10**15), 10**15) for _ in range(SAMPLES // 10)]  # near 0
    return points


def test_norm_cdf_and_pdf_wad_against_mpmath() -> None:
    for x in _norm_points():
        z = _real(x)
        assert _err_ulps(norm_cdf_wad(x), mpmath.ncdf(z)) <= HALF_ULP + NORM_EXTRA_ULPS, x
        assert _err_ulps(norm_pdf_wad(x), mpmath.npdf(z)) <= HALF_ULP + NORM_EXTRA_ULPS, x


def test_norm_kernels_against_mpmath() -> None:
    rng = random.Random(15)
    one = 1 << FRAC_BITS
    for _ in range(SAMPLES):
        z = rng.randrange(-12 * one, 12 * one)
        real = mpmath.mpf(z) / one
        assert abs(norm_cdf_fixed(z) - mpmath.ncdf(real) * one) <= NORM_KERNEL_ERROR_MAX, z
        assert abs(norm_pdf_fixed(z) - mpmath.npdf(real) * one) <= NORM_KERNEL_ERROR_MAX, z


def test_inv_sqrt_2pi_constant() -> None:
    one = 1 << FRAC_BITS
    assert abs(fp.inv_sqrt_2pi_fixed() - one / mpmath.sqrt(2 * mpmath.pi)) <= HALF_ULP


def test_norm_saturates() -> None:
    saturation = NORM_Z_SATURATION * WAD
    assert norm_cdf_wad(saturation) == WAD
    assert norm_cdf_wad(-saturation) == 0
    assert norm_pdf_wad(saturation) == 0
    assert norm_cdf_wad(10**300) == WAD
    assert norm_cdf_wad(0) == WAD // 2
    assert norm_pdf_wad(0) == 398942280401432678  # 1/sqrt(2 pi) = 0.398942280401432677939...


@given(st.integers(min_value=-(10**21), max_value=10**21))
def test_norm_cdf_is_exactly_symmetric_and_pdf_even(x: int) -> None:
    assert norm_cdf_wad(x) + norm_cdf_wad(-x) == WAD
    assert norm_pdf_wad(x) == norm_pdf_wad(-x)
    assert 0 <= norm_cdf_wad(x) <= WAD


@settings(max_examples=300)
@given(st.integers(min_value=-12 * WAD, max_value=12 * WAD), st.integers(0, 10**18))
def test_norm_cdf_is_monotone(x: int, step: int) -> None:
    assert norm_cdf_wad(x) <= norm_cdf_wad(x + step)
    assert norm_cdf_wad(x) <= norm_cdf_wad(x + 1)


def test_norm_cdf_is_monotone_across_every_interval_boundary() -> None:
    # The polynomial changes at each boundary k / 2**NORM_STEP_BITS: check its neighbours.
    step_wad = WAD >> NORM_STEP_BITS
    for k in range(
        -(NORM_Z_SATURATION << NORM_STEP_BITS), (NORM_Z_SATURATION << NORM_STEP_BITS) + 1
    ):
        values = [norm_cdf_wad(k * step_wad + offset) for offset in range(-3, 4)]
        assert values == sorted(values), k


def test_norm_cdf_is_monotone_over_consecutive_inputs() -> None:
    rng = random.Random(16)
    for _ in range(100):
        start = rng.randrange(-12 * WAD, 12 * WAD)
        values = [norm_cdf_wad(start + offset) for offset in range(50)]
        assert values == sorted(values), start


# --- determinism: golden values pin the tables and kernels ---------------------------------------


def _kernel_digest() -> str:
    one = 1 << FRAC_BITS
    digest = hashlib.sha256()
    for k in range(-2000, 2001):
        z = k * one // 173  # covers [-11.6, 11.6] off the interval grid
        digest.update(f"{norm_cdf_fixed(z)},{norm_pdf_fixed(z)};".encode())
    for k in range(1, 500):
        digest.update(
            f"{ln_ratio_fixed(k * 7919, 1009)},{exp_wad(k * 10**17 - 25 * WAD)};".encode()
        )
    return digest.hexdigest()


GOLDEN_KERNEL_DIGEST = "1bee047616aacacca7c5f764ef933e53c68285709f6e1fd2a2cca73c94cb0f51"


def test_golden_kernel_digest() -> None:
    # Any change here changes every replica's state: it must be a deliberate, versioned change.
    assert _kernel_digest() == GOLDEN_KERNEL_DIGEST

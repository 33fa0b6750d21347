"""Integer fixed-point math for option pricing inside the state transition function.

Everything here is a pure function over Python ``int``: no floats, no ``Decimal``, no recursion,
no ``math`` function on floats (``math.isqrt`` is an exact integer function and is the only one
used). Results are therefore bit-identical on every machine and every CPython build.

Two scales
----------
- **WAD** (``10**18``): the public scale. ``x_wad`` stands for the real number ``x_wad / WAD``.
- **Binary fixed point** at ``2**FRAC_BITS`` (96 bits) for the kernels of the CDF, PDF and
  exp, and ``2**LN_FRAC_BITS`` (160 bits) for the logarithm. Binary scales make the rescaling
  after each product a shift (``>>``), which is a floor division by a power of two: it rounds
  toward negative infinity, and those errors (at most one unit of ``2**-FRAC_BITS`` per step)
  are counted in the bounds below. The 64 extra bits of the logarithm exist so that Black-76's
  ``d1 = ln(F/K) / (sigma * sqrt(T)) + ...`` keeps ~2**-88 absolute accuracy even when
  ``sigma * sqrt(T)`` is as small as the inputs allow (about 2**-72).

Every other division goes through a helper that names its rounding (``*_down`` rounds toward
negative infinity, ``*_up`` toward positive infinity, ``*_half_up`` to the nearest with ties
toward positive infinity).

Algorithms
----------
- ``exp``: reduce ``x = k ln 2 + r`` with ``|r| <= ln 2 / 2``, Taylor polynomial of degree
  ``EXP_TAYLOR_DEGREE`` in ``r`` (Horner), then shift by ``k``.
- ``ln``: scale the ratio by a power of two into ``[1/sqrt 2, sqrt 2)``, divide by the nearest
  table point ``1 + j/32`` (``j`` in -10..13; ``ln`` of each is a table constant), then
  ``ln(m) = 2 atanh(s)`` with ``|s| < 0.0114`` as an odd series of ``LN_SERIES_TERMS`` terms.
  The table point for ``m`` near 1 is exactly 1, so there is no cancellation near ``ln 1 = 0``.
- ``sqrt``: ``math.isqrt`` on the scaled integer, then round to nearest: exact.
- normal ``cdf``/``pdf``: piecewise Taylor polynomials. ``[0, NORM_Z_SATURATION)`` is cut into
  intervals of width ``2**-NORM_STEP_BITS``; around each midpoint ``c`` the upper tail
  ``Q(z) = 1 - Phi(z)`` and the density ``phi(z)`` are polynomials in ``t = z - c``,
  ``|t| <= 2**-(NORM_STEP_BITS + 1)``. Their coefficients follow from ``phi' = -z phi``
  (``phi^(n+1) = -z phi^(n) - n phi^(n-1)``), starting from ``phi(c)`` (our own exp) and
  ``Phi(c) = 1/2 + phi(c) * sum c^(2k+1) / (2k+1)!!`` (a series with positive terms only).
  They are computed **at import, in integers, at 256 bits**, then rounded to ``FRAC_BITS``;
  each interval keeps only the terms needed for a truncation error below ``2**-92``. Negative
  arguments use ``Phi(-z) = Q(z)``, so ``norm_cdf_wad(x) + norm_cdf_wad(-x) == WAD`` exactly.
  Beyond the saturation point ``Q`` and ``phi`` are reported as 0 (``Q(11) < 2e-28``,
  ``phi(11) < 3e-27``).

Domains (outside: ``ValueError`` naming the limit)
--------------------------------------------------
- ``exp_wad``: ``x <= EXP_WAD_INPUT_MAX`` (135, result below 2**255); below
  ``EXP_WAD_ZERO_BELOW`` (-43) the correctly rounded result is 0 and is returned as such.
- ``ln_wad``: ``0 < x <= UINT256_MAX``.
- ``sqrt_wad``: ``0 <= x <= UINT256_MAX``.
- ``norm_cdf_wad``, ``norm_pdf_wad``: every integer (they saturate).
- ``mul_*``/``div_*``: every integer; a zero divisor raises.

Error bounds (measured against mpmath at 60+ digits by ``tests/options/test_fixed_point.py``)
--------------------------------------------------------------------------------------------
One ulp is one unit of WAD (1e-18). The WAD functions round the kernel's value to nearest, so
their error is 0.5 ulp plus the kernel's error expressed in ulps.

================  ======================================  ========================================
function          bound asserted by the tests             measured worst case
================  ======================================  ========================================
``mul/div_*``     exact floor / ceil / half-up            exact (checked as integer identities)
``sqrt_wad``      correctly rounded (<= 0.5 ulp)          exact (integer identity)
``exp_wad``       0.5 ulp + 1e-26 * result                0.4998 ulp for x <= 0; beyond 0.5 ulp,
                                                          2.5e-29 * result for large results
``ln_wad``        0.5 ulp + 1e-9 ulp                      0.49993 ulp (kernel: < 2**-150 absolute)
``norm_cdf_wad``  0.5 ulp + 1e-8 ulp                      0.49996 ulp (kernel: 2**-92 absolute)
``norm_pdf_wad``  0.5 ulp + 1e-8 ulp                      0.49998 ulp (kernel: 2**-88.6 absolute,
                                                          the saturation at z = 11)
================  ======================================  ========================================

These are far inside the targets of the options design (relative 1e-12 for exp/ln/sqrt,
absolute 1e-12 for the CDF). The kernels are more precise than their WAD wrappers:
``norm_cdf_fixed``/``norm_pdf_fixed`` are within ``NORM_KERNEL_ERROR_MAX`` (2**-88 ~ 3.2e-27)
of the exact value, ``ln_ratio_fixed`` within 2**-150 (measured 2**-154).

Known limits
------------
- Monotonicity of ``norm_cdf_wad`` is checked exhaustively at every interval boundary and by
  property tests, including runs of consecutive inputs. It is not proven for every input: the
  kernel's rounding noise (a few units of 2**-96) and the mismatch of neighbouring polynomials
  at a boundary (< 2**-91) are ~2**32 times smaller than one ulp of the output, so a one-ulp
  inversion needs the exact value within ~2**-91 of a rounding threshold; none has been seen.
- Import builds the tables (about 20 ms on one core); they are pure functions of the source,
  computed with floor divisions (``//``) at 256 bits, 160 bits below the kernels' precision.
  ``tests/options/test_fixed_point.py`` pins a digest of the kernels' outputs: changing a table
  changes every replica's results and must be a deliberate, versioned change.
- Throughput (CPython 3.11, one core): ~1.5-3 us per CDF or PDF kernel call, ~2-4 us per
  ``ln_ratio_fixed``; CPython's cost is per bytecode, so the degree of each polynomial (13 to
  17 terms near the centre) is what sets the speed.
"""

from __future__ import annotations

from math import isqrt
from typing import Final

__all__ = [
    "EXP_TAYLOR_DEGREE",
    "EXP_WAD_INPUT_MAX",
    "EXP_WAD_ZERO_BELOW",
    "FRAC_BITS",
    "HALF_WAD",
    "LN_FRAC_BITS",
    "LN_SERIES_TERMS",
    "NORM_KERNEL_ERROR_MAX",
    "NORM_STEP_BITS",
    "NORM_Z_SATURATION",
    "UINT256_MAX",
    "WAD",
    "div_down",
    "div_round_half_up",
    "div_up",
    "div_wad_down",
    "div_wad_up",
    "exp_wad",
    "inv_sqrt_2pi_fixed",
    "ln_ratio_fixed",
    "ln_wad",
    "mul_wad_down",
    "mul_wad_up",
    "norm_cdf_fixed",
    "norm_cdf_wad",
    "norm_pdf_fixed",
    "norm_pdf_wad",
    "shift_round_half_up",
    "sqrt_wad",
]

# ---------------------------------------------------------------------------------------------
# Scales and limits
# ---------------------------------------------------------------------------------------------

WAD: Final = 10**18
HALF_WAD: Final = WAD // 2
UINT256_MAX: Final = (1 << 256) - 1

FRAC_BITS: Final = 96  # kernels: 2**-96 ~ 1.3e-29, i.e. ~30 guard bits below one WAD ulp
LN_FRAC_BITS: Final = 160  # the log feeds d1 = ln(F/K)/v with v down to ~2**-72; see module doc
_TABLE_BITS: Final = 256  # import-time precision of every table constant

_ONE: Final = 1 << FRAC_BITS
_LN_ONE: Final = 1 << LN_FRAC_BITS
_TABLE_ONE: Final = 1 << _TABLE_BITS

EXP_WAD_INPUT_MAX: Final = 135 * WAD  # exp(135) * 1e18 < 2**255: stays inside uint256
EXP_WAD_ZERO_BELOW: Final = -43 * WAD  # exp(-42.2) * 1e18 < 0.5: the rounded result is 0
# |r| <= ln(2)/2 + 2**-90; |r|**22 / 22! < 7e-32 < 2**-100, so degree 21 loses nothing at 2**-96.
EXP_TAYLOR_DEGREE: Final = 21

# Table of ln(1 + j/32): j in [_LN_TABLE_J_MIN, _LN_TABLE_J_MAX] covers m in [1/sqrt 2, sqrt 2).
_LN_TABLE_STEP_BITS: Final = 5
_LN_TABLE_J_MIN: Final = -10
_LN_TABLE_J_MAX: Final = 13
# |s| <= (1/64) / (2 * 0.69) < 0.0114, s**2 < 1.3e-4: the 13th term is below 2**-165.
LN_SERIES_TERMS: Final = 13

NORM_STEP_BITS: Final = 3  # CDF/PDF intervals of width 1/8, |t| <= 1/16 around each midpoint
NORM_Z_SATURATION: Final = 11  # Q(11) = 1.9e-28, phi(11) = 2.1e-27: reported as 0 beyond
_NORM_INTERVALS: Final = NORM_Z_SATURATION << NORM_STEP_BITS
_NORM_SATURATION_WAD: Final = NORM_Z_SATURATION * WAD
_NORM_TAIL_BITS: Final = 92  # truncation of each interval's polynomial below 2**-92
_NORM_MAX_DEGREE: Final = 40  # coefficients computed before truncation; asserted sufficient
# Kernel error of norm_cdf_fixed/norm_pdf_fixed, in units of 2**-FRAC_BITS: truncation
# (< 2**-92) + coefficient rounding and ~17 Horner floors (< 2**-91) + saturation (Q(11) ~
# 2**-92, phi(11) ~ 2**-88.6): below 2**-88. Measured: 17 units for Q, 166 for phi (at z = 11).
NORM_KERNEL_ERROR_MAX: Final = 1 << (FRAC_BITS - 88)

# 60 digits of pi; checked against mpmath by the tests.
_PI_DIGITS: Final = 60
_PI_SCALED: Final = 3_141592653589793238462643383279502884197169399375105820974944


# ---------------------------------------------------------------------------------------------
# Named rounding helpers
# ---------------------------------------------------------------------------------------------


def _require_nonzero(divisor: int, what: str) -> None:
    if divisor == 0:
        raise ValueError(f"{what}: division by zero")


def mul_wad_down(a_wad: int, b_wad: int) -> int:
    """``floor(a * b / WAD)``: the product of two WAD numbers, rounded toward -infinity."""
    return (a_wad * b_wad) // WAD


def mul_wad_up(a_wad: int, b_wad: int) -> int:
    """``ceil(a * b / WAD)``: the product of two WAD numbers, rounded toward +infinity."""
    return -((-(a_wad * b_wad)) // WAD)


def div_wad_down(a_wad: int, b_wad: int) -> int:
    """``floor(a * WAD / b)``: the quotient of two WAD numbers, rounded toward -infinity."""
    _require_nonzero(b_wad, "div_wad_down")
    return (a_wad * WAD) // b_wad


def div_wad_up(a_wad: int, b_wad: int) -> int:
    """``ceil(a * WAD / b)``: the quotient of two WAD numbers, rounded toward +infinity."""
    _require_nonzero(b_wad, "div_wad_up")
    return -((-(a_wad * WAD)) // b_wad)


def div_down(numerator: int, denominator: int) -> int:
    """``floor(numerator / denominator)``: rounded toward -infinity."""
    _require_nonzero(denominator, "div_down")
    return numerator // denominator


def div_up(numerator: int, denominator: int) -> int:
    """``ceil(numerator / denominator)``: rounded toward +infinity."""
    _require_nonzero(denominator, "div_up")
    return -((-numerator) // denominator)


def div_round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer, ties toward +infinity."""
    _require_nonzero(denominator, "div_round_half_up")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    return (2 * numerator + denominator) // (2 * denominator)


def shift_round_half_up(value: int, bits: int) -> int:
    """``value / 2**bits`` rounded to the nearest integer, ties toward +infinity (bits >= 1)."""
    return (value + (1 << (bits - 1))) >> bits


def _fixed_to_wad(value: int, bits: int) -> int:
    """A binary fixed-point number at ``2**bits`` as a WAD integer, rounded half up."""
    return shift_round_half_up(value * WAD, bits)


# ---------------------------------------------------------------------------------------------
# Import-time constants, computed in integers at _TABLE_BITS (no literals to mistype)
# ---------------------------------------------------------------------------------------------


def _round_table(value: int, bits: int) -> int:
    """A _TABLE_BITS constant rounded (half up) to ``2**bits``."""
    return shift_round_half_up(value, _TABLE_BITS - bits)


def _atanh_of_ratio(numerator: int, denominator: int) -> int:
    """``atanh(numerator / denominator)`` at _TABLE_BITS for ``0 <= numerator < denominator``.

    Sum of ``s**(2k+1) / (2k+1)`` with positive terms; each truncation is below one unit.
    """
    power = (numerator << _TABLE_BITS) // denominator
    square_num, square_den = numerator * numerator, denominator * denominator
    total, k = 0, 0
    while power:
        total += power // (2 * k + 1)
        power = power * square_num // square_den
        k += 1
    return total


def _ln_table_constant(j: int) -> int:
    """``ln(1 + j/32)`` at _TABLE_BITS: ``2 atanh(j / (64 + j))``."""
    denominator = (2 << _LN_TABLE_STEP_BITS) + j
    magnitude = 2 * _atanh_of_ratio(abs(j), denominator)
    return magnitude if j >= 0 else -magnitude


_LN2_TABLE: Final = 2 * _atanh_of_ratio(1, 3)  # ln 2 = 2 atanh(1/3)
_PI_TABLE: Final = (_PI_SCALED << _TABLE_BITS) // 10**_PI_DIGITS
# 2**bits / sqrt(2 pi) = isqrt(2**(3 bits) / (2 pi 2**bits))
_INV_SQRT_2PI_TABLE: Final = isqrt((1 << (3 * _TABLE_BITS)) // (2 * _PI_TABLE))


def _exp_nonpositive_table(x: int) -> int:
    """``exp(x)`` at _TABLE_BITS for ``x <= 0`` at _TABLE_BITS (import time only).

    ``x = -k ln 2 + r`` with ``0 <= r < ln 2``; Taylor series with positive terms.
    """
    k = (-x) // _LN2_TABLE + 1
    r = x + k * _LN2_TABLE
    total, term, n = _TABLE_ONE, _TABLE_ONE, 1
    while term:
        term = (term * r >> _TABLE_BITS) // n
        total += term
        n += 1
    return total >> k


def _exp_coefficients() -> tuple[int, ...]:
    """``1/n!`` at FRAC_BITS for n = EXP_TAYLOR_DEGREE..0 (Horner order)."""
    coefficients = []
    factorial = 1
    for n in range(EXP_TAYLOR_DEGREE + 1):
        if n:
            factorial *= n
        coefficients.append(div_round_half_up(_ONE, factorial))
    return tuple(reversed(coefficients))


def _select_degree(coefficients: list[int], half_width_shift: int) -> int:
    """Smallest degree whose dropped terms sum below ``2**-_NORM_TAIL_BITS`` on the interval."""
    tail_max = 1 << (_TABLE_BITS - _NORM_TAIL_BITS)
    # the terms we never computed must be negligible, or the degree search below is unsound
    last = abs(coefficients[-1]) >> (half_width_shift * (len(coefficients) - 1))
    assert last < tail_max >> 20, "norm table: raise _NORM_MAX_DEGREE"
    tail = 0
    for degree in range(len(coefficients) - 1, -1, -1):
        dropped = abs(coefficients[degree]) >> (half_width_shift * degree)
        if tail + dropped >= tail_max:
            return degree
        tail += dropped
    return 0


def _norm_tables() -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """Per-interval Horner coefficients (highest degree first) of Q and phi at FRAC_BITS."""
    half_width_shift = NORM_STEP_BITS + 1
    tail_rows: list[tuple[int, ...]] = []
    pdf_rows: list[tuple[int, ...]] = []
    for interval in range(_NORM_INTERVALS):
        midpoint = (2 * interval + 1) << (_TABLE_BITS - half_width_shift)
        midpoint_sq = midpoint * midpoint >> _TABLE_BITS  # exact: midpoint has few bits
        pdf_mid = _exp_nonpositive_table(-(midpoint_sq >> 1)) * _INV_SQRT_2PI_TABLE >> _TABLE_BITS
        # Phi(c) - 1/2 = phi(c) * sum_k c^(2k+1) / (2k+1)!!: all terms positive, no cancellation
        term, series, odd = midpoint, midpoint, 1
        while term:
            odd += 2
            term = term * midpoint_sq // (odd << _TABLE_BITS)
            series += term
        tail_mid = (_TABLE_ONE >> 1) - (pdf_mid * series >> _TABLE_BITS)
        # e_n = phi^(n)(c) / n!  from  phi^(n+1) = -c phi^(n) - n phi^(n-1)
        derivs = [pdf_mid, -(midpoint * pdf_mid >> _TABLE_BITS)]
        for n in range(1, _NORM_MAX_DEGREE):
            derivs.append((-(midpoint * derivs[n] >> _TABLE_BITS) - derivs[n - 1]) // (n + 1))
        # Q(c + t) = Q(c) - sum_n e_n t^(n+1) / (n+1)
        tail_coefficients = [tail_mid] + [-e // (n + 1) for n, e in enumerate(derivs[:-1])]
        pdf_coefficients = derivs[:_NORM_MAX_DEGREE]
        rows = ((tail_coefficients, tail_rows), (pdf_coefficients, pdf_rows))
        for coefficients, table in rows:
            degree = _select_degree(coefficients, half_width_shift)
            kept = [_round_table(c, FRAC_BITS) for c in coefficients[: degree + 1]]
            table.append(tuple(reversed(kept)))
    return tuple(tail_rows), tuple(pdf_rows)


_LN2_EXTENDED_BITS: Final = 64  # exp's range reduction multiplies ln 2 by k up to ~200
_LN2_EXTENDED: Final = _round_table(_LN2_TABLE, FRAC_BITS + _LN2_EXTENDED_BITS)
_INV_LN2_FIXED: Final = div_round_half_up(_ONE << _TABLE_BITS, _LN2_TABLE)
_EXP_COEFFICIENTS: Final = _exp_coefficients()

_LN2_LN: Final = _round_table(_LN2_TABLE, LN_FRAC_BITS)
_LN_TABLE: Final = tuple(
    _round_table(_ln_table_constant(j), LN_FRAC_BITS)
    for j in range(_LN_TABLE_J_MIN, _LN_TABLE_J_MAX + 1)
)
_LN_SQRT2: Final = isqrt(2 << (2 * LN_FRAC_BITS))  # floor(sqrt(2) * 2**LN_FRAC_BITS)
_LN_INV_SQRT2: Final = _LN_SQRT2 >> 1
_LN_SERIES: Final = tuple(
    div_round_half_up(_LN_ONE, 2 * k + 1) for k in range(LN_SERIES_TERMS - 1, -1, -1)
)

_NORM_TAIL_TABLE, _NORM_PDF_TABLE = _norm_tables()
_INV_SQRT_2PI_FIXED: Final = _round_table(_INV_SQRT_2PI_TABLE, FRAC_BITS)


# ---------------------------------------------------------------------------------------------
# Kernels in binary fixed point
# ---------------------------------------------------------------------------------------------


def inv_sqrt_2pi_fixed() -> int:
    """``1 / sqrt(2 pi)`` at ``2**FRAC_BITS`` (= phi(0)), rounded half up."""
    return _INV_SQRT_2PI_FIXED


def _exp_fixed(x: int) -> tuple[int, int]:
    """``exp(x)`` for ``x`` at ``2**FRAC_BITS``, as ``(mantissa, k)``: ``mantissa * 2**k``.

    ``mantissa`` is at ``2**FRAC_BITS`` in ``[0.70, 1.42]`` with relative error < 2**-92.
    """
    k = (x * _INV_LN2_FIXED + (1 << (2 * FRAC_BITS - 1))) >> (2 * FRAC_BITS)  # round(x / ln 2)
    r = x - ((k * _LN2_EXTENDED) >> _LN2_EXTENDED_BITS)
    acc = 0
    for coefficient in _EXP_COEFFICIENTS:
        acc = (acc * r >> FRAC_BITS) + coefficient
    return acc, k


def ln_ratio_fixed(numerator: int, denominator: int) -> int:
    """``ln(numerator / denominator)`` at ``2**LN_FRAC_BITS`` for positive integers.

    Absolute error below 2**-150 (measured 2**-154). Callers validate positivity.
    """
    exponent = numerator.bit_length() - denominator.bit_length()
    shift = LN_FRAC_BITS - exponent
    if shift >= 0:  # m = num / (den 2**exponent) in (1/2, 2) at 2**LN_FRAC_BITS
        m = div_down(numerator << shift, denominator)
    else:
        m = div_down(numerator, denominator << -shift)
    if m >= _LN_SQRT2:
        m >>= 1
        exponent += 1
    elif m < _LN_INV_SQRT2:
        m <<= 1
        exponent -= 1
    # nearest table point c = 1 + j/32; j == 0 for m near 1, so ln(1) has no cancellation
    half_step = 1 << (LN_FRAC_BITS - _LN_TABLE_STEP_BITS - 1)
    j = (m - _LN_ONE + half_step) >> (LN_FRAC_BITS - _LN_TABLE_STEP_BITS)
    point = _LN_ONE + (j << (LN_FRAC_BITS - _LN_TABLE_STEP_BITS))
    s = div_down((m - point) << LN_FRAC_BITS, m + point)  # |s| < 0.0114
    bits = LN_FRAC_BITS  # a local: the loop is the hot path
    s_sq = s * s >> bits
    acc = 0
    for coefficient in _LN_SERIES:
        acc = (acc * s_sq >> bits) + coefficient
    series = (2 * s * acc) >> LN_FRAC_BITS  # 2 atanh(s) = ln(m / point)
    return exponent * _LN2_LN + _LN_TABLE[j - _LN_TABLE_J_MIN] + series


def _norm_horner(table: tuple[tuple[int, ...], ...], z: int) -> int:
    """Evaluate the interval polynomial of ``table`` at ``z >= 0`` (``2**FRAC_BITS``)."""
    interval = z >> (FRAC_BITS - NORM_STEP_BITS)
    if interval >= _NORM_INTERVALS:
        return 0
    t = z - ((2 * interval + 1) << (FRAC_BITS - NORM_STEP_BITS - 1))
    bits = FRAC_BITS  # a local: the loop is the hot path
    acc = 0
    for coefficient in table[interval]:
        acc = (acc * t >> bits) + coefficient
    return acc if acc > 0 else 0  # the tails are positive; truncation must not flip the sign


def norm_cdf_fixed(z: int) -> int:
    """``Phi(z)`` at ``2**FRAC_BITS`` for ``z`` at ``2**FRAC_BITS``.

    Exactly antisymmetric: ``norm_cdf_fixed(z) + norm_cdf_fixed(-z) == 2**FRAC_BITS``.
    Absolute error below ``NORM_KERNEL_ERROR_MAX`` units.
    """
    if z >= 0:
        return _ONE - _norm_horner(_NORM_TAIL_TABLE, z)
    return _norm_horner(_NORM_TAIL_TABLE, -z)


def norm_pdf_fixed(z: int) -> int:
    """``phi(z)`` at ``2**FRAC_BITS`` for ``z`` at ``2**FRAC_BITS``; exactly even in ``z``.

    Absolute error below ``NORM_KERNEL_ERROR_MAX`` units.
    """
    return _norm_horner(_NORM_PDF_TABLE, z if z >= 0 else -z)


# ---------------------------------------------------------------------------------------------
# Public WAD functions
# ---------------------------------------------------------------------------------------------


def _wad_to_fixed_down(x_wad: int) -> int:
    """A WAD integer at ``2**FRAC_BITS``, rounded toward -infinity (error < 2**-96)."""
    return div_down(x_wad << FRAC_BITS, WAD)


def exp_wad(x_wad: int) -> int:
    """``exp(x)`` as a WAD integer, rounded to nearest.

    Domain: ``x_wad <= EXP_WAD_INPUT_MAX``; returns 0 below ``EXP_WAD_ZERO_BELOW``.
    Error: <= 0.5 ulp + 1e-26 relative (see module docstring).
    """
    if x_wad > EXP_WAD_INPUT_MAX:
        raise ValueError(f"exp_wad: x_wad={x_wad} exceeds EXP_WAD_INPUT_MAX={EXP_WAD_INPUT_MAX}")
    if x_wad < EXP_WAD_ZERO_BELOW:
        return 0
    mantissa, k = _exp_fixed(_wad_to_fixed_down(x_wad))
    shift = FRAC_BITS - k
    if shift <= 0:
        return (mantissa * WAD) << -shift
    return shift_round_half_up(mantissa * WAD, shift)


def ln_wad(x_wad: int) -> int:
    """``ln(x)`` as a WAD integer, rounded to nearest; error <= 0.5 ulp + 1e-9 ulp.

    Domain: ``0 < x_wad <= UINT256_MAX``.
    """
    if x_wad <= 0:
        raise ValueError(f"ln_wad: x_wad={x_wad} must be positive")
    if x_wad > UINT256_MAX:
        raise ValueError(f"ln_wad: x_wad={x_wad} exceeds UINT256_MAX")
    return _fixed_to_wad(ln_ratio_fixed(x_wad, WAD), LN_FRAC_BITS)


def sqrt_wad(x_wad: int) -> int:
    """``sqrt(x)`` as a WAD integer, correctly rounded (ties cannot occur).

    Domain: ``0 <= x_wad <= UINT256_MAX``.
    """
    if x_wad < 0:
        raise ValueError(f"sqrt_wad: x_wad={x_wad} must be non-negative")
    if x_wad > UINT256_MAX:
        raise ValueError(f"sqrt_wad: x_wad={x_wad} exceeds UINT256_MAX")
    scaled = x_wad * WAD
    root = isqrt(scaled)
    # sqrt(scaled) > root + 1/2  <=>  scaled > root**2 + root (integers; equality impossible)
    return root + 1 if scaled - root * root > root else root


def norm_cdf_wad(x_wad: int) -> int:
    """Standard normal CDF ``Phi(x)`` as a WAD integer, rounded to nearest.

    Total on the integers; ``norm_cdf_wad(x) + norm_cdf_wad(-x) == WAD`` exactly.
    Error <= 0.5 ulp + 1e-8 ulp.
    """
    magnitude_wad = abs(x_wad)
    if magnitude_wad >= _NORM_SATURATION_WAD:  # bounded work for any input size
        return WAD if x_wad >= 0 else 0
    tail = _norm_horner(_NORM_TAIL_TABLE, _wad_to_fixed_down(magnitude_wad))
    tail_wad = _fixed_to_wad(tail, FRAC_BITS)
    return WAD - tail_wad if x_wad >= 0 else tail_wad


def norm_pdf_wad(x_wad: int) -> int:
    """Standard normal density ``phi(x)`` as a WAD integer, rounded to nearest; even in ``x``.

    Total on the integers; error <= 0.5 ulp + 1e-8 ulp.
    """
    magnitude_wad = abs(x_wad)
    if magnitude_wad >= _NORM_SATURATION_WAD:
        return 0
    return _fixed_to_wad(
        _norm_horner(_NORM_PDF_TABLE, _wad_to_fixed_down(magnitude_wad)), FRAC_BITS
    )

"""The integer helpers of ``execution.units`` equal plain Python-int arithmetic, everywhere.

The compiled build computes ``mul``, ``mul_div_floor``, ``mul_div_ceil`` and
``mul_div_floor_and_ceil`` in 64-bit machine integers when the product provably fits; these
properties run in both builds (CI runs this suite compiled too) and cover both sides of every
fits-in-a-word boundary.
"""

from hypothesis import given
from hypothesis import strategies as st

from rollbook.execution.units import (
    abs_int,
    div_ceil,
    div_floor,
    max_abs_int,
    max_int,
    mul,
    mul_div_ceil,
    mul_div_floor,
    mul_div_floor_and_ceil,
)

# values around the boundaries that matter: 2**20 and 2**42 (``mul``'s compared narrow and wide
# factors), 2**30 (mypyc's own fast multiply), 2**62 (a tagged int, and the divisors compared
# inline), 2**63 (an i64), and far beyond
_EDGES = [0, 1, -1, 2**20 - 1, 2**20, -(2**20) + 1, -(2**20), 2**42 - 1, 2**42, -(2**42) + 1,
          -(2**42), 2**30 - 1, 2**30, -(2**30), 2**31 - 1, -(2**31) + 1, 2**31, -(2**31),
          2**32 + 7, 10**9, 10**11, 10**16, 2**61, 2**62 - 1, 2**62, -(2**62), 2**63 - 1,
          -(2**63), 2**63, 2**64 + 3, 10**30, -(10**30)]
ints = st.one_of(st.sampled_from(_EDGES), st.integers(min_value=-(2**70), max_value=2**70),
                 st.integers(min_value=-(2**35), max_value=2**35),
                 st.integers(min_value=-1000, max_value=1000))
positive = st.one_of(st.sampled_from([1, 2, 7, 10**6, 10**9, 2**31, 2**62 - 1, 2**62, 2**63 - 1,
                                      2**63, 2**64, 10**25]),
                     st.integers(min_value=1, max_value=2**66))


@given(ints, ints)
def test_mul_is_the_product(left: int, right: int) -> None:
    assert mul(left, right) == left * right


@given(ints, ints, positive)
def test_mul_div_floor_and_ceil_round_the_exact_quotient(value: int, multiplier: int,
                                                         denominator: int) -> None:
    product = value * multiplier
    assert mul_div_floor(value, multiplier, denominator) == product // denominator
    assert mul_div_ceil(value, multiplier, denominator) == -((-product) // denominator)
    assert mul_div_floor(value, multiplier, denominator) == div_floor(product, denominator)
    assert mul_div_ceil(value, multiplier, denominator) == div_ceil(product, denominator)


@given(st.integers(min_value=-(2**40), max_value=2**40), st.sampled_from([
    10**11 * 10**5, 10**11 * 10**5 + 1, 123_456_789_012_345_678, -(10**16) - 3, 2**62 - 1,
    2**63 - 1]), st.sampled_from([10**9, 10**6, 1, 3]))
def test_mul_div_floor_with_a_price_sized_multiplier(value: int, multiplier: int,
                                                     denominator: int) -> None:
    # the split path (multiplier = whole * denominator + part) is what margin math takes
    assert mul_div_floor(value, multiplier, denominator) == value * multiplier // denominator
    assert mul_div_ceil(value, multiplier, denominator) == -((-value * multiplier) // denominator)


@given(ints, ints, ints, positive)
def test_mul_div_floor_and_ceil_is_the_two_helpers(floor_value: int, ceil_value: int,
                                                   multiplier: int, denominator: int) -> None:
    assert mul_div_floor_and_ceil(floor_value, ceil_value, multiplier, denominator) == (
        floor_value * multiplier // denominator, -((-ceil_value * multiplier) // denominator))


@given(st.integers(min_value=-(2**21), max_value=2**21),
       st.integers(min_value=-(2**21), max_value=2**21), st.one_of(
           st.sampled_from([0, 10**16, 10**16 + 1, 2**42 * 10**9 - 1, 2**42 * 10**9, 2**62 - 1,
                            2**62, -(10**16)]), st.integers(min_value=0, max_value=2**62)),
       st.sampled_from([10**9, 1, 3, 2**42 - 1, 2**42]))
def test_mul_div_floor_and_ceil_at_a_price_per_lot(floor_value: int, ceil_value: int,
                                                    multiplier: int, denominator: int) -> None:
    # margin's shape: sizes in lots (both sides of the narrow bound) times a price per lot
    # (both sides of the wide quotient and of the machine divisor) over 10**9
    assert mul_div_floor_and_ceil(floor_value, ceil_value, multiplier, denominator) == (
        floor_value * multiplier // denominator, -((-ceil_value * multiplier) // denominator))


@given(ints, ints)
def test_abs_and_max(left: int, right: int) -> None:
    assert abs_int(left) == abs(left)
    assert max_int(left, right) == max(left, right)


@given(ints, ints)
def test_max_abs(left: int, right: int) -> None:
    assert max_abs_int(left, right) == max(abs(left), abs(right))

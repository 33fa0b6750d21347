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

Machine arithmetic in the compiled build: mypyc multiplies two ``int``s in machine words only
when both are below 2**30, and otherwise boxes them into Python ints (about 20x slower);
``abs`` and ``max`` on ints box their arguments too. Prices in quantums (~10**11) times lot
sizes or ppm rates cross that line on every order, so the hot paths use the helpers below:
``mul``, ``mul_div_floor`` and ``mul_div_ceil`` compute in 64-bit machine integers (``i64``)
when the product provably fits (the factors' bit lengths sum to at most 62, so
``|product| < 2**62``) and in Python ints otherwise, and ``abs_int``/``max_int`` compare
natively. Every helper returns exactly the Python-int result, in both builds: in the
interpreted build ``i64`` annotations are plain ``int``s and nothing changes.
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import i64

__all__ = [
    "NANOUNITS_PER_UNIT",
    "PPM",
    "QUANTUMS_PER_USDC",
    "abs_int",
    "div_ceil",
    "div_floor",
    "div_trunc",
    "max_abs_int",
    "max_int",
    "mul",
    "mul_div_ceil",
    "mul_div_floor",
    "mul_div_floor_and_ceil",
]

QUANTUMS_PER_USDC: Final = 10**6
PPM: Final = 10**6
NANOUNITS_PER_UNIT: Final = 10**9
# factors whose bit lengths sum to at most this have a product below 2**62 in magnitude, which
# a signed 64-bit word holds (and mypyc's tagged ints hold unboxed)
_MACHINE_PRODUCT_BITS: Final = 62
# a divisor up to this is a positive i64 and, in the compiled build, an unboxed int (2**62 and
# above are boxed), so the bound is checked by an inline comparison
_MACHINE_DIVISOR_MAX: Final = 2**62 - 1
# a factor below the narrow bound times one below the wide bound (in magnitude) is below 2**62:
# checked by comparisons, which the compiled build does inline, before the bit lengths (each a
# call). Shaped for the hot products: a price or notional in quantums (< 2**42, $4.4M) times a
# lot size, a tick size or a ppm rate (< 2**20), in either order
_NARROW_FACTOR_BOUND: Final = 2**20
_WIDE_FACTOR_BOUND: Final = 2**42
assert _NARROW_FACTOR_BOUND * _WIDE_FACTOR_BOUND == 2**_MACHINE_PRODUCT_BITS


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


def mul(left: int, right: int) -> int:
    """``left * right``, exactly (machine arithmetic in the compiled build when it fits)."""
    if -_NARROW_FACTOR_BOUND < right < _NARROW_FACTOR_BOUND:
        if -_WIDE_FACTOR_BOUND < left < _WIDE_FACTOR_BOUND:
            wide_left: i64 = left
            narrow_right: i64 = right
            return wide_left * narrow_right
    elif (-_NARROW_FACTOR_BOUND < left < _NARROW_FACTOR_BOUND
          and -_WIDE_FACTOR_BOUND < right < _WIDE_FACTOR_BOUND):
        narrow_left: i64 = left
        wide_right: i64 = right
        return narrow_left * wide_right
    if left.bit_length() + right.bit_length() <= _MACHINE_PRODUCT_BITS:
        machine_left: i64 = left
        machine_right: i64 = right
        return machine_left * machine_right
    return left * right


def _product_fits(left: int, right: int) -> bool:
    """Whether the factors' bit lengths sum to at most 62 (so ``|left * right| < 2**62``):
    ``mul``'s inline bound comparisons first (a narrow factor times a wide one, such as a rate
    times a notional or a size in lots times a price), which imply it, then the bit lengths."""
    if -_NARROW_FACTOR_BOUND < right < _NARROW_FACTOR_BOUND:
        if -_WIDE_FACTOR_BOUND < left < _WIDE_FACTOR_BOUND:
            return True
    elif (-_NARROW_FACTOR_BOUND < left < _NARROW_FACTOR_BOUND
          and -_WIDE_FACTOR_BOUND < right < _WIDE_FACTOR_BOUND):
        return True
    return left.bit_length() + right.bit_length() <= _MACHINE_PRODUCT_BITS


def mul_div_floor(value: int, multiplier: int, denominator: int) -> int:
    """``floor(value * multiplier / denominator)`` without intermediate rounding."""
    assert denominator > 0, "divisor must be positive"
    if denominator <= _MACHINE_DIVISOR_MAX:  # compared inline; a bit length is a call
        # the common shape first, inline: a notional in quantums times a rate or a size
        # (``_product_fits``' first case, which a call would check)
        if ((-_NARROW_FACTOR_BOUND < multiplier < _NARROW_FACTOR_BOUND
             and -_WIDE_FACTOR_BOUND < value < _WIDE_FACTOR_BOUND)
                or _product_fits(value, multiplier)):
            machine_value: i64 = value
            machine_multiplier: i64 = multiplier
            machine_denominator: i64 = denominator
            return machine_value * machine_multiplier // machine_denominator  # floors, like int
        # a large multiplier (a price times a lot size): with multiplier = whole * denominator
        # + part, 0 <= part < denominator, the result is value * whole + floor(value * part /
        # denominator), exactly; each product fits when value is small
        whole = multiplier // denominator
        part = multiplier % denominator
        if _product_fits(value, whole) and _product_fits(value, denominator):
            machine_value = value
            machine_whole: i64 = whole
            machine_part: i64 = part
            machine_denominator = denominator
            # |value * whole| < 2**62 and |floor(value * part / denominator)| <= |value|
            return (machine_value * machine_whole
                    + machine_value * machine_part // machine_denominator)
    return value * multiplier // denominator


def mul_div_ceil(value: int, multiplier: int, denominator: int) -> int:
    """``ceil(value * multiplier / denominator)`` without intermediate rounding.

    ``mul_div_floor``'s paths with ceil(x) == -floor(-x) applied inside each (written out rather
    than as ``-mul_div_floor(-value, ...)``: margin requirements and fees take this on every
    order, and the extra call and negations cost a third of it in the compiled build).
    """
    assert denominator > 0, "divisor must be positive"
    if denominator <= _MACHINE_DIVISOR_MAX:  # compared inline; a bit length is a call
        # the common shape first, inline: a notional in quantums times a rate or a size
        # (``_product_fits``' first case, which a call would check)
        if ((-_NARROW_FACTOR_BOUND < multiplier < _NARROW_FACTOR_BOUND
             and -_WIDE_FACTOR_BOUND < value < _WIDE_FACTOR_BOUND)
                or _product_fits(value, multiplier)):
            machine_value: i64 = value
            machine_multiplier: i64 = multiplier
            machine_denominator: i64 = denominator
            # |product| < 2**62, so its negation fits too
            return -(-(machine_value * machine_multiplier) // machine_denominator)
        # the split of mul_div_floor: value * whole + ceil(value * part / denominator)
        whole = multiplier // denominator
        part = multiplier % denominator
        if _product_fits(value, whole) and _product_fits(value, denominator):
            machine_value = value
            machine_whole: i64 = whole
            machine_part: i64 = part
            machine_denominator = denominator
            return (machine_value * machine_whole
                    - (-(machine_value * machine_part)) // machine_denominator)
    return -(-(value * multiplier) // denominator)


def mul_div_floor_and_ceil(floor_value: int, ceil_value: int, multiplier: int,
                           denominator: int) -> tuple[int, int]:
    """``(mul_div_floor(floor_value, multiplier, denominator),
    mul_div_ceil(ceil_value, multiplier, denominator))``: two sizes at one large per-unit value,
    such as a position's value (floor) and its worst-case notional (ceil) at its price per lot.

    With multiplier = whole * denominator + part, 0 <= part < denominator, the results are
    value * whole plus floor (or ceil) of value * part / denominator, exactly; the split is
    computed once for both, in machine integers when the values are narrow (a size in lots), the
    multiplier and the denominator wide (a price per lot in nanounit quantums, 10**9): each
    product is then below 2**62. Otherwise the two general helpers.
    """
    assert denominator > 0, "divisor must be positive"
    if (0 <= multiplier <= _MACHINE_DIVISOR_MAX and denominator < _WIDE_FACTOR_BOUND
            and -_NARROW_FACTOR_BOUND < floor_value < _NARROW_FACTOR_BOUND
            and -_NARROW_FACTOR_BOUND < ceil_value < _NARROW_FACTOR_BOUND):
        machine_multiplier: i64 = multiplier
        machine_denominator: i64 = denominator
        whole = machine_multiplier // machine_denominator
        if whole < _WIDE_FACTOR_BOUND:
            # 0 <= part < denominator < 2**42 and whole < 2**42: narrow times wide, both
            part = machine_multiplier - whole * machine_denominator
            machine_floor: i64 = floor_value
            machine_ceil: i64 = ceil_value
            return (machine_floor * whole + machine_floor * part // machine_denominator,
                    machine_ceil * whole - (-(machine_ceil * part)) // machine_denominator)
    return (mul_div_floor(floor_value, multiplier, denominator),
            mul_div_ceil(ceil_value, multiplier, denominator))


def abs_int(value: int) -> int:
    """``abs(value)`` (the builtin boxes its argument in the compiled build)."""
    return value if value >= 0 else -value


def max_abs_int(left: int, right: int) -> int:
    """``max(abs(left), abs(right))`` in one call (margin's worst-case lots take it per order)."""
    left_abs = left if left >= 0 else -left
    right_abs = right if right >= 0 else -right
    return left_abs if left_abs >= right_abs else right_abs


def max_int(left: int, right: int) -> int:
    """``max(left, right)`` (the builtin boxes its arguments in the compiled build)."""
    return left if left >= right else right

"""Options: deterministic Black-76 pricing and Greeks in integer fixed point (rate 0).

``fixed_point`` holds the integer math (WAD scale, exp/ln/sqrt, normal CDF and PDF) and
``black76`` the valuation of European, cash-settled calls and puts. Both are part of the state
transition function: integers only, every rounding named, error bounds stated in each module's
docstring and asserted against mpmath by ``tests/options``.
"""

from rollbook.execution.options.black76 import (
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
from rollbook.execution.options.fixed_point import (
    WAD,
    div_wad_down,
    div_wad_up,
    exp_wad,
    ln_wad,
    mul_wad_down,
    mul_wad_up,
    norm_cdf_wad,
    norm_pdf_wad,
    sqrt_wad,
)

__all__ = [
    "EXPIRY_S_MAX",
    "PRICE_WAD_MAX",
    "SECONDS_PER_YEAR",
    "SIGMA_WAD_MAX",
    "WAD",
    "OptionValuation",
    "black76_call",
    "black76_call_put",
    "black76_put",
    "div_wad_down",
    "div_wad_up",
    "exp_wad",
    "ln_wad",
    "mul_wad_down",
    "mul_wad_up",
    "norm_cdf_wad",
    "norm_pdf_wad",
    "price_error_bound_wad",
    "sqrt_wad",
]

"""Throughput of option valuation: the deterministic integer path and the NumPy path.

The grid is random but seeded (``random.Random(seed)``, outside the STF): forwards from 100 to
100,000 USD, K/F from 0.2 to 5, expiries from 1 minute to 3 years, volatilities from 1% to 500%,
calls and puts mixed. One valuation is a price and all Greeks of one option. The deterministic
path runs one option at a time on one core (as the STF would); the vectorised path values the
same grid as one array. Timings are wall-clock (``time.perf_counter``) after a warm-up pass,
best of ``_REPEATS`` runs, since shared machines have noisy clocks.
"""

from __future__ import annotations

import random
import time
from typing import Final

from rollbook.execution.options.black76 import SECONDS_PER_YEAR, black76_call, black76_put
from rollbook.execution.options.fixed_point import WAD

__all__ = ["measure_option_pricing"]

_REPEATS: Final = 3
_FORWARD_USD_MIN: Final = 100
_FORWARD_USD_MAX: Final = 100_000
_MONEYNESS_PPM_MIN: Final = 200_000  # K/F = 0.2
_MONEYNESS_PPM_MAX: Final = 5_000_000  # K/F = 5
_PPM: Final = 1_000_000
_EXPIRY_S_MIN: Final = 60
_EXPIRY_S_MAX: Final = 3 * SECONDS_PER_YEAR
_SIGMA_WAD_MIN: Final = WAD // 100  # 1%
_SIGMA_WAD_MAX: Final = 5 * WAD  # 500%

_Option = tuple[bool, int, int, int, int]  # (is_call, forward_wad, strike_wad, expiry_s, sigma)


def _random_grid(n: int, seed: int) -> list[_Option]:
    rng = random.Random(seed)
    grid: list[_Option] = []
    for _ in range(n):
        forward_wad = rng.randrange(_FORWARD_USD_MIN * WAD, _FORWARD_USD_MAX * WAD)
        moneyness_ppm = rng.randrange(_MONEYNESS_PPM_MIN, _MONEYNESS_PPM_MAX + 1)
        strike_wad = forward_wad * moneyness_ppm // _PPM
        expiry_s = rng.randrange(_EXPIRY_S_MIN, _EXPIRY_S_MAX + 1)
        sigma_wad = rng.randrange(_SIGMA_WAD_MIN, _SIGMA_WAD_MAX + 1)
        grid.append((rng.random() < 0.5, forward_wad, strike_wad, expiry_s, sigma_wad))
    return grid


def _time_deterministic(grid: list[_Option]) -> float:
    start = time.perf_counter()
    for is_call, forward_wad, strike_wad, expiry_s, sigma_wad in grid:
        if is_call:
            black76_call(forward_wad, strike_wad, expiry_s, sigma_wad)
        else:
            black76_put(forward_wad, strike_wad, expiry_s, sigma_wad)
    return time.perf_counter() - start


def _time_vectorised(grid: list[_Option]) -> float:
    # NumPy is imported here so that the deterministic measurement never needs it.
    import numpy as np

    from rollbook.risk.vectorised import black76_vectorised

    forward = np.array([option[1] for option in grid], dtype=np.float64) / WAD
    strike = np.array([option[2] for option in grid], dtype=np.float64) / WAD
    expiry_s = np.array([option[3] for option in grid], dtype=np.float64)
    sigma = np.array([option[4] for option in grid], dtype=np.float64) / WAD
    start = time.perf_counter()
    black76_vectorised(forward, strike, expiry_s, sigma)
    return time.perf_counter() - start


def measure_option_pricing(n: int, seed: int) -> dict[str, float]:
    """Valuations (price + delta, gamma, vega, theta) per second on a random grid of ``n``.

    Returns ``option_prices_per_s`` (deterministic integer path, one core),
    ``vectorised_option_prices_per_s`` (NumPy float64, calls and puts together), ``options``
    and ``deterministic_elapsed_s`` (the best run).
    """
    if n <= 0:
        raise ValueError(f"n={n} must be positive")
    grid = _random_grid(n, seed)
    _time_deterministic(grid[: min(n, 1_000)])  # warm-up: caches, CPU frequency
    deterministic_s = min(_time_deterministic(grid) for _ in range(_REPEATS))
    _time_vectorised(grid)
    vectorised_s = min(_time_vectorised(grid) for _ in range(_REPEATS))
    return {
        "options": float(n),
        "deterministic_elapsed_s": deterministic_s,
        "option_prices_per_s": n / deterministic_s,
        "vectorised_option_prices_per_s": n / vectorised_s if vectorised_s > 0 else float("inf"),
    }

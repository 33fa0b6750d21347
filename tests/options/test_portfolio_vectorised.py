"""The NumPy venue revaluation agrees with deterministic portfolio margin within its bound.

Bound (``risk.portfolio_vectorised`` module docstring): ``|initial_vectorised -
initial_deterministic| <= 4 quantums + 1e-12 x gross`` per portfolio, gross being
``sum |size| x lot units x (largest scenario index + strike)`` in quantums.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from rollbook.bench.risk import run_risk_bench
from rollbook.cli import main
from rollbook.execution.options.fixed_point import WAD
from rollbook.execution.options.instruments import (
    Instrument,
    OptionSpec,
    OptionType,
    PerpetualSpec,
    to_wad,
)
from rollbook.execution.options.portfolio import (
    PortfolioMargin,
    PortfolioMarginConfig,
    ScenarioCache,
    portfolio_margin,
)
from rollbook.execution.options.smile import SviSmile, implied_sigma_wad
from rollbook.risk.portfolio_vectorised import (
    AGREEMENT_QUANTUMS,
    agreement_bound_quantums,
    revalue_venue,
    svi_sigma,
    table_from_cache,
)

DAY_MS = 86_400_000
NOW_MS = 1_700_000_000_000
BTC, ETH = 1, 2
PRICES = {BTC: 100_000 * 10**6 + 123_457, ETH: 3_000 * 10**6 + 7}
EXPIRY_DAYS = (1, 7, 30, 180)
POSITIONS = 10


def _smile(index_id: int, days: int) -> SviSmile:
    return SviSmile(index_id, NOW_MS + days * DAY_MS, NOW_MS, days * WAD // 1_000,
                    WAD // 20 + days * WAD // 2_000, -3 * WAD // 10, WAD // 100, WAD // 10)


SMILES = {s.key: s for s in (_smile(i, d) for i in (BTC, ETH) for d in EXPIRY_DAYS)}


def _universe(index_id: int, lot: int, perp_lot: int) -> list[Instrument]:
    index = PRICES[index_id]
    instruments: list[Instrument] = [PerpetualSpec(index_id, perp_lot)]
    for days in EXPIRY_DAYS:
        for strike_ppm in (500_000, 800_000, 950_000, 1_000_000, 1_100_000, 1_400_000, 2_000_000):
            for option_type in OptionType:
                instruments.append(OptionSpec(index_id, NOW_MS + days * DAY_MS,
                                              index * strike_ppm // 10**6, option_type, lot))
    return instruments


UNIVERSE = {BTC: _universe(BTC, 100_000_000, 100_000), ETH: _universe(ETH, 10**9, 10**7)}
INSTRUMENTS = UNIVERSE[BTC] + UNIVERSE[ETH]
CACHE = ScenarioCache(PortfolioMarginConfig(), NOW_MS, PRICES, SMILES)
TABLE = table_from_cache(INSTRUMENTS, CACHE)


def _random_rows(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    rng = random.Random(seed)
    ids = np.zeros((count, POSITIONS), dtype=np.intp)
    sizes = np.zeros((count, POSITIONS), dtype=np.int64)
    indices = []
    for row in range(count):
        index_id = rng.choice((BTC, ETH))
        offset = 0 if index_id == BTC else len(UNIVERSE[BTC])
        chosen = rng.sample(range(len(UNIVERSE[index_id])), POSITIONS)
        ids[row] = [offset + c for c in chosen]
        # mixed magnitudes, some zero (padding), sometimes one huge position
        sizes[row] = [rng.choice((0, 1, -1, 7, -13, 250, -999, 10**6)) for _ in chosen]
        indices.append(index_id)
    return ids, sizes, indices


def _deterministic(ids: np.ndarray, sizes: np.ndarray, indices: list[int]) -> list[PortfolioMargin]:
    return [
        portfolio_margin(index_id, [(INSTRUMENTS[i], int(s)) for i, s in zip(row, size_row,
                                                                              strict=True)],
                         CACHE)
        for row, size_row, index_id in zip(ids.tolist(), sizes.tolist(), indices, strict=True)
    ]


def test_random_portfolios_agree_within_the_stated_bound() -> None:
    ids, sizes, indices = _random_rows(400, seed=11)
    exact = _deterministic(ids, sizes, indices)
    venue = revalue_venue(TABLE, ids, sizes)
    bound = agreement_bound_quantums(TABLE, ids, sizes)
    initial = np.array([r.initial_quantums for r in exact], dtype=np.float64)
    maintenance = np.array([r.maintenance_quantums for r in exact], dtype=np.float64)
    worst = np.array([r.worst_loss_quantums for r in exact], dtype=np.float64)
    assert np.all(np.abs(venue.initial_quantums - initial) <= bound)
    assert np.all(np.abs(venue.worst_loss_quantums - worst) <= bound)
    assert np.all(np.abs(venue.maintenance_quantums - maintenance) <= bound / 2 + 1)
    # the bound is not vacuous: the relative part stays far below a quantum per 1e6 USDC
    assert np.all(bound - AGREEMENT_QUANTUMS < 1e-3 * np.maximum(initial, 1.0))
    same_worst = venue.worst_scenario_index == [r.worst_scenario_index for r in exact]
    assert np.mean(same_worst) > 0.95  # near-ties may pick another scenario, nothing more


def test_perpetual_only_rows_are_within_rounding() -> None:
    sizes = np.array([[10_000, 0], [-3, 0], [123_457, 0]])
    ids = np.zeros_like(sizes)  # the BTC perpetual, padded with zero-size perpetuals
    ids[:, 1] = 0
    venue = revalue_venue(TABLE, ids, sizes)
    for row, size in enumerate(sizes[:, 0].tolist()):
        exact = portfolio_margin(BTC, [(INSTRUMENTS[0], size)], CACHE)
        assert abs(venue.initial_quantums[row] - exact.initial_quantums) <= 2


def test_float_smile_matches_the_integer_smile() -> None:
    smile = SMILES[(BTC, NOW_MS + 30 * DAY_MS)]
    forward = PRICES[BTC] / 10**6
    strikes = np.array([30_000.0, 90_000.0, 100_000.0, 140_000.0, 900_000.0])
    params = np.array([[smile.a_wad, smile.b_wad, smile.rho_wad, smile.m_wad,
                        smile.sigma_svi_wad]] * len(strikes)) / WAD
    tau = np.full(len(strikes), float(smile.time_to_expiry_ms))
    floats = svi_sigma(params, tau, forward, strikes)
    for strike, sigma in zip(strikes.tolist(), floats.tolist(), strict=True):
        exact = implied_sigma_wad(smile, to_wad(PRICES[BTC]), int(strike * WAD)) / WAD
        assert abs(sigma - exact) <= 1e-14 * exact


def test_rejects_rows_mixing_indices_and_bad_shapes() -> None:
    mixed = np.array([[0, len(UNIVERSE[BTC])]])
    with pytest.raises(ValueError, match="one index"):
        revalue_venue(TABLE, mixed, np.ones_like(mixed))
    with pytest.raises(ValueError, match="shape"):
        revalue_venue(TABLE, np.zeros((2, 3), dtype=np.intp), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="outside the table"):
        revalue_venue(TABLE, np.array([[len(INSTRUMENTS)]]), np.ones((1, 1)))


def test_bench_reports_every_figure_and_the_cli_prints_one_object(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_risk_bench(seed=3, options=50, accounts=20, venue_accounts=500)
    for key in ("option_prices_per_s", "portfolio_margin_accounts_per_s",
                "remargin_10_positions_ms", "venue_revaluation_ms"):
        assert result[key] > 0, key
    assert main(["bench", "risk", "--json", "--quiet", "--options", "20", "--accounts", "5",
                 "--venue-accounts", "100"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["venue_accounts"] == 100 and payload["portfolio_accounts"] == 5

"""Portfolio margin by scenario grid, its charges and properties, and standard option margin."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import mpmath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.execution.options.black76 import (
    SIGMA_WAD_MAX,
    black76_call,
    black76_call_put,
    price_error_bound_wad,
)
from rollbook.execution.options.fixed_point import WAD
from rollbook.execution.options.instruments import (
    Instrument,
    OptionSpec,
    OptionType,
    PerpetualSpec,
    to_wad,
)
from rollbook.execution.options.portfolio import (
    DEFAULT_TAIL_SCENARIOS,
    PORTFOLIO_POSITIONS_MAX,
    PortfolioMarginConfig,
    Scenario,
    ScenarioCache,
    black76_call_prices_wad,
    portfolio_margin,
    portfolio_requirement,
    position_risk,
    position_values_quantums,
    shocked_sigma_wad,
    sqrt_years_fixed,
    standard_margin,
    vol_shift_term_factor_wad,
)
from rollbook.execution.options.smile import SviSmile, implied_sigma_wad

PPM = 10**6
DAY_S = 86_400
DAY_MS = 86_400_000
NOW_MS = 1_700_000_000_000
EXPIRY_MS = NOW_MS + 30 * DAY_MS
FAR_EXPIRY_MS = NOW_MS + 90 * DAY_MS
BTC = 1
INDEX_Q = 100_000 * 10**6
OPTION_LOT = 100_000_000  # 0.1 BTC
PERP_LOT = 100_000  # 0.0001 BTC
SMILE = SviSmile(BTC, EXPIRY_MS, NOW_MS, WAD // 40, WAD // 10, -3 * WAD // 10, 0, WAD // 10)
FAR_SMILE = SviSmile(BTC, FAR_EXPIRY_MS, NOW_MS, WAD // 15, WAD // 8, -WAD // 4, 0, WAD // 5)
PERP = PerpetualSpec(BTC, PERP_LOT)
SRC = Path(__file__).resolve().parents[2] / "src"


def option(strike_usd: int, option_type: OptionType = OptionType.CALL,
           expiry_ms: int = EXPIRY_MS) -> OptionSpec:
    return OptionSpec(BTC, expiry_ms, strike_usd * 10**6, option_type, OPTION_LOT)


def make_cache(config: PortfolioMarginConfig | None = None, index_q: int = INDEX_Q,
               valuation_ms: int = NOW_MS) -> ScenarioCache:
    return ScenarioCache(config or PortfolioMarginConfig(), valuation_ms, {BTC: index_q},
                         {SMILE.key: SMILE, FAR_SMILE.key: FAR_SMILE})


CACHE = make_cache()  # shared: every test below also checks results a fresh cache gives


# --- hand-computed cases ---------------------------------------------------------------------


def test_perpetual_only_is_exactly_the_scenario_math() -> None:
    index_q = 100_000_123_457  # an odd price, so that the rounding up is visible
    cache = make_cache(index_q=index_q)
    for size_lots in (3, -3, 10_000, -77_777):
        exposure = Fraction(size_lots * PERP_LOT, 10**9)  # BTC
        grid_loss = Fraction(15, 100) * abs(exposure) * index_q
        expected_initial = math.ceil(grid_loss) + math.ceil(Fraction(1, 100) * abs(exposure)
                                                            * index_q)
        result = portfolio_margin(BTC, [(PERP, size_lots)], cache)
        assert result.initial_quantums == expected_initial
        assert result.worst_loss_quantums == math.ceil(grid_loss)
        assert result.maintenance_quantums == math.ceil(Fraction(expected_initial, 2))
        assert result.short_option_charge_quantums == result.valuation_allowance_quantums == 0
        # the first scenario at the worst move: -15% (index 0) for a long, +15% for a short
        expected_move = -150_000 if size_lots > 0 else 150_000
        assert result.worst_scenario == Scenario(expected_move, -300_000)
        config = cache.config
        for loss, scenario in zip(result.scenario_losses_quantums, config.scenarios, strict=True):
            exact = -exposure * index_q * Fraction(scenario.move_ppm * scenario.weight_ppm,
                                                   PPM * PPM)
            assert loss == math.ceil(exact)
        assert result.greeks.delta_nanounits == size_lots * PERP_LOT
        assert result.greeks.vega_quantums_per_vol_point == 0


def test_short_call_against_an_independent_computation() -> None:
    # powers 0: the volatility shift is a plain relative shift, easy to restate
    config = PortfolioMarginConfig(vol_shift_short_power_ppm=0, vol_shift_long_power_ppm=0)
    cache = make_cache(config)
    call = option(100_000)
    size_lots = -10  # short 1 BTC
    exposure = size_lots * OPTION_LOT
    forward, strike = to_wad(INDEX_Q), to_wad(call.strike_quantums)
    expiry_s = 30 * DAY_S
    sigma = implied_sigma_wad(SMILE, forward, strike)
    base, _ = black76_call_put(forward, strike, expiry_s, sigma)
    worst = Fraction(0)
    for scenario in config.scenarios:
        shocked_forward = forward * (PPM + scenario.move_ppm) // PPM
        scaled = Fraction(sigma * (PPM + scenario.vol_shift_ppm), PPM)
        shocked_sigma = min(math.ceil(scaled) if scenario.vol_shift_ppm >= 0 else
                            math.floor(scaled), SIGMA_WAD_MAX)
        shocked, _ = black76_call_put(shocked_forward, strike, expiry_s, shocked_sigma)
        loss = -Fraction(exposure * (shocked.price - base.price) * scenario.weight_ppm,
                         10**21 * PPM)
        worst = max(worst, loss)
    delta_charge = math.ceil(Fraction(abs(exposure * base.delta) * INDEX_Q * 10_000,
                                      WAD * 10**9 * PPM))
    short_charge = math.ceil(Fraction(-exposure * INDEX_Q * 5_000, 10**9 * PPM))
    allowance = math.ceil(Fraction(-exposure * (price_error_bound_wad(2 * forward, strike)
                                               + price_error_bound_wad(forward, strike)), 10**21))
    expected = math.ceil(worst) + delta_charge + short_charge + allowance

    result = portfolio_margin(BTC, [(call, size_lots)], cache)
    assert result.initial_quantums == expected
    assert (result.worst_loss_quantums, result.delta_charge_quantums,
            result.short_option_charge_quantums, result.valuation_allowance_quantums) == (
        math.ceil(worst), delta_charge, short_charge, allowance)
    assert short_charge == 500 * 10**6 and allowance == 1
    # the worst case is the +15% / +30% corner, and its loss is what Black-76 in mpmath says
    assert result.worst_scenario == Scenario(150_000, 300_000)
    with mpmath.workdps(40):
        k, t = mpmath.mpf(100_000), mpmath.mpf(30) / 365

        def bs(fwd: mpmath.mpf, vol: mpmath.mpf) -> mpmath.mpf:
            d1 = mpmath.log(fwd / k) / (vol * mpmath.sqrt(t)) + vol * mpmath.sqrt(t) / 2
            return fwd * mpmath.ncdf(d1) - k * mpmath.ncdf(d1 - vol * mpmath.sqrt(t))

        vol = mpmath.mpf(sigma) / WAD
        loss_usd = bs(mpmath.mpf(115_000), vol * 13 / 10) - bs(k, vol)
        assert abs(mpmath.mpf(result.worst_loss_quantums) / 10**6 - loss_usd) < 1e-6


def test_expired_option_is_margined_on_intrinsic_values_without_a_smile() -> None:
    # valued after expiry: short 1 BTC of the 90,000 call at index 100,000
    cache = ScenarioCache(PortfolioMarginConfig(), EXPIRY_MS + 1, {BTC: INDEX_Q}, {})
    result = portfolio_margin(BTC, [(option(90_000), -10)], cache)
    # +15%: intrinsic 25,000 - 10,000; the +100% tail: 100,000 x 12.5% = 12,500 < 15,000
    assert result.worst_loss_quantums == 15_000 * 10**6
    assert result.worst_scenario == Scenario(150_000, -300_000)
    assert result.delta_charge_quantums == 1_000 * 10**6  # delta 1 (in the money, expired)
    assert result.short_option_charge_quantums == 500 * 10**6
    assert result.initial_quantums == 16_500 * 10**6 + 1  # + the one-quantum allowance


def test_deep_out_of_the_money_short_put_is_bound_by_the_crash_tail() -> None:
    result = portfolio_margin(BTC, [(option(40_000, OptionType.PUT), -10)], CACHE)
    assert result.worst_scenario == DEFAULT_TAIL_SCENARIOS[0]  # -66%, weighted 20%
    assert result.worst_loss_quantums > 1_000 * 10**6


def test_default_grid_worst_case_of_a_short_atm_call() -> None:
    result = portfolio_margin(BTC, [(option(100_000), -10)], CACHE)
    assert result.worst_scenario == Scenario(150_000, 300_000)
    assert result.worst_loss_quantums == max(result.scenario_losses_quantums)
    assert result.greeks.delta_nanounits < 0 and result.greeks.vega_quantums_per_vol_point < 0
    assert result.greeks.theta_quantums_per_day > 0  # a short option earns time decay


# --- hedges ----------------------------------------------------------------------------------


def test_hedges_lower_the_requirement() -> None:
    call, put = option(100_000), option(100_000, OptionType.PUT)
    naked_call = portfolio_requirement(BTC, [(call, -10)], CACHE).initial_quantums
    delta = position_risk(call, -10, CACHE).greeks.delta_nanounits
    hedge_lots = -delta // PERP_LOT
    delta_hedged = portfolio_requirement(BTC, [(call, -10), (PERP, hedge_lots)], CACHE)
    assert delta_hedged.initial_quantums < naked_call
    call_spread = portfolio_requirement(BTC, [(call, -10), (option(110_000), 10)], CACHE)
    assert call_spread.initial_quantums < naked_call
    long_perp = portfolio_requirement(BTC, [(PERP, 10_000)], CACHE).initial_quantums
    protected = portfolio_requirement(BTC, [(PERP, 10_000), (put, 10)], CACHE)
    assert protected.initial_quantums < long_perp


def test_empty_and_flat_portfolios_need_nothing() -> None:
    assert portfolio_requirement(BTC, [], CACHE).initial_quantums == 0
    flat = portfolio_margin(BTC, [(option(100_000), 0), (PERP, 0)], CACHE)
    assert (flat.initial_quantums, flat.maintenance_quantums, flat.positions) == (0, 0, ())


# --- properties over random portfolios -------------------------------------------------------

UNIVERSE: list[Instrument] = [
    PERP,
    *(option(k, t) for k in (80_000, 100_000, 120_000) for t in OptionType),
    *(option(k, t, FAR_EXPIRY_MS) for k in (90_000, 130_000) for t in OptionType),
]
portfolios = st.dictionaries(
    st.sampled_from(range(len(UNIVERSE))), st.integers(-5_000, 5_000), max_size=len(UNIVERSE)
)


def positions_of(sizes: dict[int, int]) -> list[tuple[Instrument, int]]:
    return [(UNIVERSE[i], size) for i, size in sorted(sizes.items())]


@settings(max_examples=150, deadline=None)
@given(portfolios, portfolios)
def test_requirement_is_sub_additive(a: dict[int, int], b: dict[int, int]) -> None:
    merged = {i: a.get(i, 0) + b.get(i, 0) for i in sorted(set(a) | set(b))}
    im_a = portfolio_requirement(BTC, positions_of(a), CACHE).initial_quantums
    im_b = portfolio_requirement(BTC, positions_of(b), CACHE).initial_quantums
    im_merged = portfolio_requirement(BTC, positions_of(merged), CACHE).initial_quantums
    assert im_merged <= im_a + im_b


@settings(max_examples=100, deadline=None)
@given(portfolios)
def test_breakdown_is_consistent_with_the_fast_path(sizes: dict[int, int]) -> None:
    positions = positions_of(sizes)
    fast = portfolio_requirement(BTC, positions, CACHE)
    full = portfolio_margin(BTC, positions, CACHE)
    assert (fast.initial_quantums, fast.maintenance_quantums) == (full.initial_quantums,
                                                                  full.maintenance_quantums)
    assert full.maintenance_quantums <= full.initial_quantums
    assert full.maintenance_quantums == math.ceil(Fraction(full.initial_quantums, 2))
    assert full.initial_quantums == (full.worst_loss_quantums + full.delta_charge_quantums
                                     + full.short_option_charge_quantums
                                     + full.valuation_allowance_quantums)
    if full.positions:
        assert full.worst_loss_quantums == max(0, *full.scenario_losses_quantums)
        worst = full.scenario_losses_quantums[full.worst_scenario_index]
        assert worst == max(full.scenario_losses_quantums)
        # account Greeks round once; positions round each: at most half a unit apart per row
        for name in ("delta_nanounits", "gamma_nanounits_per_usd",
                     "vega_quantums_per_vol_point", "theta_quantums_per_day"):
            summed = sum(getattr(p.greeks, name) for p in full.positions)
            assert abs(getattr(full.greeks, name) - summed) <= len(full.positions)
    options = [(i, s) for i, s in positions if isinstance(i, OptionSpec)]
    assert full.options_value_quantums == position_values_quantums(options, CACHE)


def test_cached_values_equal_fresh_ones_in_any_order() -> None:
    positions = [(UNIVERSE[i], (-1) ** i * (i + 3) * 7) for i in range(len(UNIVERSE))]
    shared = portfolio_margin(BTC, positions, CACHE)
    fresh = make_cache()
    for instrument in reversed(UNIVERSE):
        fresh.instrument_risk(instrument)
    assert portfolio_margin(BTC, positions, fresh) == shared
    assert portfolio_margin(BTC, list(reversed(positions)), make_cache()).initial_quantums == (
        shared.initial_quantums)


_DIGEST_SCRIPT = """
import hashlib, sys
sys.path.insert(0, sys.argv[1])
from test_portfolio import BTC, UNIVERSE, make_cache
from rollbook.execution.options.portfolio import portfolio_margin
positions = [(UNIVERSE[i], (-1) ** i * (i + 3) * 7) for i in range(len(UNIVERSE))]
print(hashlib.sha256(repr(portfolio_margin(BTC, positions, make_cache())).encode()).hexdigest())
"""


def test_deterministic_across_processes_and_hash_seeds() -> None:
    positions = [(UNIVERSE[i], (-1) ** i * (i + 3) * 7) for i in range(len(UNIVERSE))]
    here = hashlib.sha256(repr(portfolio_margin(BTC, positions, make_cache())).encode())
    digests = set()
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(SRC)}
        out = subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT, str(Path(__file__).parent)],
            env=env, capture_output=True, text=True, check=True,
        )
        digests.add(out.stdout.strip())
    assert digests == {here.hexdigest()}


# --- the price-only kernel of the scenario sweep --------------------------------------------

KERNEL_SIGMAS = [0, 1, WAD // 100, WAD // 2, WAD, 5 * WAD, SIGMA_WAD_MAX]


@pytest.mark.parametrize("expiry_s", [0, 1, 3_600, 30 * DAY_S, 3 * 365 * DAY_S])
@pytest.mark.parametrize("moneyness_ppm", [200_000, 999_999, 1_000_000, 1_300_000, 5_000_000])
def test_price_kernel_is_bit_identical_to_black76(expiry_s: int, moneyness_ppm: int) -> None:
    for forward in (10**15, 30_000 * WAD + 7, 10**6 * WAD):
        strike = forward * moneyness_ppm // PPM
        prices = black76_call_prices_wad(forward, strike, sqrt_years_fixed(expiry_s),
                                         KERNEL_SIGMAS)
        assert prices == [black76_call(forward, strike, expiry_s, s).price
                          for s in KERNEL_SIGMAS]


@settings(max_examples=200, deadline=None)
@given(st.integers(10**15, 10**25), st.integers(10**15, 10**25), st.integers(0, 10**8),
       st.lists(st.integers(0, SIGMA_WAD_MAX), min_size=1, max_size=4))
def test_price_kernel_matches_black76_on_random_inputs(
    forward: int, strike: int, expiry_s: int, sigmas: list[int]
) -> None:
    assert black76_call_prices_wad(forward, strike, sqrt_years_fixed(expiry_s), sigmas) == [
        black76_call(forward, strike, expiry_s, s).price for s in sigmas]


# --- volatility shifts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expiry_s", "ratio", "power"),
    [
        (DAY_S, Fraction(30), "0.3"),
        (DAY_S // 2, Fraction(30), "0.3"),  # the horizon is floored at one day
        (7 * DAY_S, Fraction(30, 7), "0.3"),
        (30 * DAY_S, Fraction(1), "0.13"),
        (90 * DAY_S, Fraction(1, 3), "0.13"),
    ],
)
def test_term_factor_against_mpmath(expiry_s: int, ratio: Fraction, power: str) -> None:
    factor = vol_shift_term_factor_wad(PortfolioMarginConfig(), expiry_s)
    with mpmath.workdps(50):
        exact = (mpmath.mpf(ratio.numerator) / ratio.denominator) ** mpmath.mpf(power) * WAD
        # exp_wad's 0.5 ulp plus the exponent's rounding (0.5e-18) scaled by the factor
        assert abs(factor - exact) <= 1 + exact / WAD


def test_shocked_sigma_rounds_away_floors_and_caps() -> None:
    assert shocked_sigma_wad(3, 1, WAD) == 4  # 3 (1 + 1e-6) rounded up
    assert shocked_sigma_wad(3, -1, WAD) == 2  # 3 (1 - 1e-6) rounded down
    assert shocked_sigma_wad(WAD, -600_000, 2 * WAD) == 0  # 1 - 1.2 < 0: floored at 0
    assert shocked_sigma_wad(5 * WAD, 10 * PPM, WAD) == SIGMA_WAD_MAX
    assert shocked_sigma_wad(WAD // 2, 300_000, WAD) == 65 * WAD // 100


# --- validation ------------------------------------------------------------------------------


def test_rejects_malformed_portfolios() -> None:
    call = option(100_000)
    with pytest.raises(ValueError, match="one net position"):
        portfolio_requirement(BTC, [(call, 1), (call, -1)], CACHE)
    with pytest.raises(ValueError, match="index"):
        portfolio_requirement(BTC, [(PerpetualSpec(2, PERP_LOT), 1)], CACHE)
    too_many = [(option(50_000 + i), 1) for i in range(PORTFOLIO_POSITIONS_MAX + 1)]
    with pytest.raises(ValueError, match="PORTFOLIO_POSITIONS_MAX"):
        portfolio_requirement(BTC, too_many, CACHE)
    with pytest.raises(ValueError, match="no smile"):
        portfolio_requirement(BTC, [(option(100_000, expiry_ms=EXPIRY_MS + 1), 1)], CACHE)
    # the oracle's largest index: the +100% tail leaves Black-76's domain, loudly
    huge = make_cache(index_q=10**24)
    with pytest.raises(ValueError, match="PRICE_WAD_MAX"):
        portfolio_requirement(BTC, [(OptionSpec(BTC, EXPIRY_MS, 10**24, OptionType.CALL, 1), 1)],
                              huge)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"price_moves_ppm": (-PPM,)}, "move_ppm"),
        ({"tail_scenarios": (Scenario(0, 0, 0),)}, "weight_ppm"),
        ({"vol_shifts_ppm": (-PPM - 1,)}, "vol_shift_ppm"),
        ({"price_moves_ppm": tuple(range(0, 30_000, 1_000))}, "SCENARIOS_MAX"),
        ({"maintenance_ratio_ppm": 0}, "maintenance_ratio_ppm"),
        ({"delta_charge_ppm": -1}, "delta_charge_ppm"),
    ],
)
def test_rejects_bad_configuration(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PortfolioMarginConfig(**kwargs)  # type: ignore[arg-type]


# --- standard margin -------------------------------------------------------------------------

ALT = 2  # an index at 100 USD, one unit per lot: Paradex's worked examples
ALT_EXPIRY_MS = NOW_MS + 7 * DAY_MS
ALT_SMILE = SviSmile(ALT, ALT_EXPIRY_MS, NOW_MS, WAD // 100, WAD // 20, 0, 0, WAD // 10)
ALT_CACHE = ScenarioCache(PortfolioMarginConfig(), NOW_MS, {ALT: 100 * 10**6},
                          {ALT_SMILE.key: ALT_SMILE})


def alt_option(strike_usd: int, option_type: OptionType) -> OptionSpec:
    return OptionSpec(ALT, ALT_EXPIRY_MS, strike_usd * 10**6, option_type, 10**9)


@pytest.mark.parametrize(
    ("strike_usd", "option_type", "risk_usd"),
    [
        (106, OptionType.CALL, Fraction(10)),  # max(15 - 6 OTM, 10)
        (106, OptionType.PUT, Fraction(15)),  # in the money: max(15, 10)
        (40, OptionType.PUT, Fraction(10)),  # min(max(15 - 60, 10), 50% x 40)
        (15, OptionType.PUT, Fraction(15, 2)),  # capped at 50% of the strike
        (80, OptionType.CALL, Fraction(15)),  # in the money
    ],
)
def test_standard_short_option_margin_by_hand(
    strike_usd: int, option_type: OptionType, risk_usd: Fraction
) -> None:
    spec = alt_option(strike_usd, option_type)
    mark = ALT_CACHE.mark(spec)
    mark_part = math.ceil(Fraction(mark.valuation.price + mark.error_bound_wad, 10**12))
    result = standard_margin([(spec, -1)], ALT_CACHE)
    assert result.initial_quantums == risk_usd * 10**6 + mark_part
    assert result.maintenance_quantums == math.ceil(risk_usd * 10**6 / 2) + mark_part
    assert result.positions[0].initial_quantums == result.initial_quantums


def test_standard_margin_long_is_zero_and_sums_positions() -> None:
    long_call, short_put = alt_option(106, OptionType.CALL), alt_option(106, OptionType.PUT)
    assert standard_margin([(long_call, 5)], ALT_CACHE).initial_quantums == 0
    both = standard_margin([(long_call, 5), (short_put, -2)], ALT_CACHE)
    alone = standard_margin([(short_put, -2)], ALT_CACHE)
    assert (both.initial_quantums, both.maintenance_quantums) == (alone.initial_quantums,
                                                                   alone.maintenance_quantums)
    assert alone.initial_quantums == 2 * standard_margin([(short_put, -1)], ALT_CACHE)\
        .initial_quantums


@pytest.mark.pure_only
def test_standard_margin_refuses_perpetuals() -> None:
    with pytest.raises(ValueError, match="perpetuals"):
        standard_margin([(PerpetualSpec(ALT, 10**9), -1)], ALT_CACHE)  # type: ignore[list-item]

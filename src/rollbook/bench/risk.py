"""Risk benchmarks: option valuation, portfolio margin, whole-venue revaluation.

``run_risk_bench`` gathers them for ``rollbook bench risk``:

- ``option_prices_per_s``: deterministic Black-76 valuations (price + Greeks) per second;
- ``portfolio_margin_accounts_per_s`` and ``remargin_10_positions_ms``: deterministic portfolio
  margin (``options.portfolio.portfolio_requirement``) of accounts of 10 distinct positions
  (options and the perpetual on one index) with a warm ``ScenarioCache``: the grid's prices
  depend on the market only, so a venue fills the cache once per oracle snapshot and
  re-margins every account with dot products. ``remargin_10_positions_cold_ms`` is the same
  with a fresh cache per account (every instrument's scenario sweep included) and
  ``scenario_cache_fill_ms_per_strike`` the sweep of one strike (call and put together);
- ``venue_revaluation_ms``: ``risk.portfolio_vectorised`` on 100,000 accounts x 10 positions,
  instrument table included;
- the options STF (``measure_stf_options``): the instrument universe below listed as option
  markets of one venue, 10 market makers quoting 64-quote ladders with ``MassQuote`` under
  market-maker protection, traders in standard and portfolio margin:
  ``stf_option_orders_per_s`` (orders through ``apply_batch``: limit orders near the mark and
  IOC orders taking the ladders, margin and protection included), ``stf_mass_quote_ms`` (one
  64-quote ladder replaced), ``stf_oracle_update_ms`` and ``stf_volatility_update_ms`` (every
  live option revalued and every option holder re-checked) and ``stf_expiry_settlement_ms``
  (one expiry's 22 markets settled).

The instrument universe: one index at 100,000 USD, expiries of 1, 7, 30, 90 and 180 days with
SVI smiles, 11 strikes each (60% to 140%), calls and puts, plus the perpetual: 111 instruments.

The option-pricing grid is random but seeded (``random.Random(seed)``, outside the STF):
forwards from 100 to 100,000 USD, K/F from 0.2 to 5, expiries from 1 minute to 3 years,
volatilities from 1% to 500%, calls and puts mixed. One valuation is a price and all Greeks of
one option. The deterministic path runs one option at a time on one core (as the STF would);
the vectorised path values the same grid as one array. Timings are wall-clock
(``time.perf_counter``) after a warm-up pass, best of ``_REPEATS`` runs, since shared machines
have noisy clocks.
"""

from __future__ import annotations

import platform
import random
import time
from collections.abc import Callable
from typing import Any, Final

from rollbook.execution.options.black76 import SECONDS_PER_YEAR, black76_call, black76_put
from rollbook.execution.options.fixed_point import WAD
from rollbook.execution.options.instruments import (
    Instrument,
    OptionSpec,
    OptionType,
    PerpetualSpec,
)
from rollbook.execution.options.portfolio import (
    PortfolioMarginConfig,
    ScenarioCache,
    portfolio_margin,
    portfolio_requirement,
)
from rollbook.execution.options.smile import SmileKey, SviSmile

__all__ = [
    "measure_option_pricing",
    "measure_portfolio_margin",
    "measure_stf_options",
    "measure_venue_revaluation",
    "run_risk_bench",
]

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


# ---------------------------------------------------------------------------------------------
# Portfolio margin
# ---------------------------------------------------------------------------------------------

_DAY_MS: Final = 86_400_000
_VALUATION_MS: Final = 1_700_000_000_000
_INDEX_ID: Final = 1
_INDEX_QUANTUMS: Final = 100_000 * 10**6
_EXPIRY_DAYS: Final = (1, 7, 30, 90, 180)
_STRIKE_PPM: Final = tuple(range(600_000, 1_400_001, 80_000))  # 11 strikes, 60% .. 140%
_OPTION_LOT_NANOUNITS: Final = 100_000_000  # 0.1 BTC per option lot
_PERP_LOT_NANOUNITS: Final = 100_000  # the default BTC perpetual's lot
_POSITIONS_PER_ACCOUNT: Final = 10
_SIZE_LOTS_MAX: Final = 100
_COLD_ACCOUNTS: Final = 10
VENUE_ACCOUNTS_DEFAULT: Final = 100_000


def _bench_market() -> tuple[list[Instrument], dict[SmileKey, SviSmile]]:
    """The instrument universe of the module docstring, with a skewed smile per expiry."""
    smiles: dict[SmileKey, SviSmile] = {}
    instruments: list[Instrument] = [PerpetualSpec(_INDEX_ID, _PERP_LOT_NANOUNITS)]
    for days in _EXPIRY_DAYS:
        expiry_ms = _VALUATION_MS + days * _DAY_MS
        # ~60-70% ATM vol, put skew (rho < 0), wings widening with expiry
        smile = SviSmile(
            _INDEX_ID, expiry_ms, _VALUATION_MS,
            a_wad=days * WAD // 1_000, b_wad=WAD // 20 + days * WAD // 2_000,
            rho_wad=-3 * WAD // 10, m_wad=WAD // 100, sigma_svi_wad=WAD // 10,
        )
        smiles[smile.key] = smile
        for strike_ppm in _STRIKE_PPM:
            strike = _INDEX_QUANTUMS * strike_ppm // 1_000_000
            for option_type in OptionType:
                instruments.append(
                    OptionSpec(_INDEX_ID, expiry_ms, strike, option_type, _OPTION_LOT_NANOUNITS)
                )
    return instruments, smiles


def _new_cache(smiles: dict[SmileKey, SviSmile]) -> ScenarioCache:
    return ScenarioCache(
        PortfolioMarginConfig(), _VALUATION_MS, {_INDEX_ID: _INDEX_QUANTUMS}, smiles
    )


def _random_accounts(
    instruments: list[Instrument], accounts: int, seed: int
) -> list[list[tuple[Instrument, int]]]:
    rng = random.Random(seed)
    result: list[list[tuple[Instrument, int]]] = []
    for _ in range(accounts):
        chosen = rng.sample(instruments, _POSITIONS_PER_ACCOUNT)
        sizes = [rng.choice((-1, 1)) * rng.randint(1, _SIZE_LOTS_MAX) for _ in chosen]
        result.append(list(zip(chosen, sizes, strict=True)))
    return result


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure_portfolio_margin(accounts: int, seed: int) -> dict[str, float]:
    """Deterministic portfolio margin of ``accounts`` random 10-position accounts.

    Returns ``portfolio_margin_accounts_per_s`` and ``remargin_10_positions_ms`` (mean, warm
    cache), ``remargin_10_positions_p99_ms``, ``remargin_10_positions_breakdown_ms`` (the full
    breakdown), ``remargin_10_positions_cold_ms`` (fresh cache per account) and
    ``scenario_cache_fill_ms_per_strike``.
    """
    if accounts <= 0:
        raise ValueError(f"accounts={accounts} must be positive")
    instruments, smiles = _bench_market()
    book = _random_accounts(instruments, accounts, seed)

    cache = _new_cache(smiles)
    start = time.perf_counter()
    for instrument in instruments:
        cache.instrument_risk(instrument)
    fill_s = time.perf_counter() - start
    strikes = cache.strikes_valued

    for positions in book[: min(accounts, 100)]:  # warm-up
        portfolio_requirement(_INDEX_ID, positions, cache)
    best_s = float("inf")
    per_account_s: list[float] = []
    for _ in range(_REPEATS):
        per_account_s = []
        clock = time.perf_counter
        start = clock()
        for positions in book:
            t0 = clock()
            portfolio_requirement(_INDEX_ID, positions, cache)
            per_account_s.append(clock() - t0)
        best_s = min(best_s, clock() - start)

    breakdown_s = float("inf")
    sample = book[: min(accounts, 1_000)]
    for _ in range(_REPEATS):
        start = time.perf_counter()
        for positions in sample:
            portfolio_margin(_INDEX_ID, positions, cache)
        breakdown_s = min(breakdown_s, (time.perf_counter() - start) / len(sample))

    cold = book[: min(accounts, _COLD_ACCOUNTS)]
    start = time.perf_counter()
    for positions in cold:
        portfolio_requirement(_INDEX_ID, positions, _new_cache(smiles))
    cold_s = (time.perf_counter() - start) / len(cold)
    return {
        "portfolio_accounts": float(accounts),
        "portfolio_margin_accounts_per_s": accounts / best_s,
        "remargin_10_positions_ms": best_s / accounts * 1e3,
        "remargin_10_positions_p99_ms": _percentile(per_account_s, 0.99) * 1e3,
        "remargin_10_positions_breakdown_ms": breakdown_s * 1e3,
        "remargin_10_positions_cold_ms": cold_s * 1e3,
        "scenario_cache_fill_ms_per_strike": fill_s / strikes * 1e3,
        "scenarios": float(len(cache.config.scenarios)),
        "instruments": float(len(instruments)),
    }


def measure_venue_revaluation(accounts: int, seed: int) -> dict[str, float]:
    """``risk.portfolio_vectorised`` over ``accounts`` x 10 positions (table included).

    Returns ``venue_revaluation_ms`` (best of ``_REPEATS``), ``venue_table_ms`` and
    ``venue_accounts``.
    """
    import numpy as np

    from rollbook.risk.portfolio_vectorised import build_instrument_table, revalue_venue

    if accounts <= 0:
        raise ValueError(f"accounts={accounts} must be positive")
    instruments, smiles = _bench_market()
    rng = np.random.default_rng(seed)
    # 10 distinct instruments per account: the smallest 10 of a random key per instrument
    keys = rng.random((accounts, len(instruments)))
    ids = np.argpartition(keys, _POSITIONS_PER_ACCOUNT, axis=1)[:, :_POSITIONS_PER_ACCOUNT]
    del keys
    sizes = rng.integers(1, _SIZE_LOTS_MAX + 1, size=ids.shape) * rng.choice((-1, 1), ids.shape)
    config = PortfolioMarginConfig()
    prices = {_INDEX_ID: _INDEX_QUANTUMS}

    def run() -> tuple[float, float]:
        start = time.perf_counter()
        table = build_instrument_table(instruments, config, _VALUATION_MS, prices, smiles)
        table_s = time.perf_counter() - start
        revalue_venue(table, ids, sizes)
        return time.perf_counter() - start, table_s

    run()  # warm-up
    total_s, table_s = min(run() for _ in range(_REPEATS))
    return {
        "venue_accounts": float(accounts),
        "venue_revaluation_ms": total_s * 1e3,
        "venue_table_ms": table_s * 1e3,
    }


# ---------------------------------------------------------------------------------------------
# The options STF
# ---------------------------------------------------------------------------------------------

_STF_MAKERS: Final = 10
_STF_TRADERS: Final = 200
_STF_ORDERS: Final = 4_000
_STF_START_MS: Final = 1_000_000


def measure_stf_options(seed: int, orders: int = _STF_ORDERS) -> dict[str, float]:
    """Options through the STF on one venue (module docstring); wall-clock, one core."""
    from dataclasses import replace

    import coincurve

    from rollbook.bench.workload import BENCH_ORACLE_KEY
    from rollbook.execution import (
        Batch,
        Deposit,
        ExpireOptions,
        ListOption,
        MassQuote,
        OraclePrice,
        OracleUpdate,
        PlaceOrder,
        Quote,
        SetMmp,
        SetPortfolioMargin,
        Side,
        SviParameters,
        TimeInForce,
        Transaction,
        VolatilityUpdate,
        apply_batch,
        genesis_state,
        options_venue_config,
    )
    from rollbook.execution.crypto import address_of_public_key, sign_digest
    from rollbook.execution.options.smile import MS_PER_YEAR
    from rollbook.execution.options.volatility import volatility_message_digest
    from rollbook.execution.oracle import oracle_message_digest

    if orders <= 0:
        raise ValueError(f"orders={orders} must be positive")
    rng = random.Random(seed)
    signer = address_of_public_key(
        coincurve.PrivateKey(BENCH_ORACLE_KEY).public_key.format(compressed=False))
    config = replace(options_venue_config((signer,)), batch_cost_max=10**9)
    state = genesis_state(config)
    clock = [_STF_START_MS]

    def run(*txs: Transaction) -> float:
        clock[0] += 1_000
        start = time.perf_counter()
        receipts = apply_batch(state, Batch(state.batch_index + 1, clock[0], bytes(32), txs))
        elapsed = time.perf_counter() - start
        assert all(r.ok for r in receipts[:1]) or not txs, receipts[0].message
        return elapsed

    def oracle(price: int) -> OracleUpdate:
        prices = (OraclePrice(_INDEX_ID, price),)
        ts = clock[0] + 1_000
        digest = oracle_message_digest(config.chain_id, ts, prices)
        return OracleUpdate(ts, prices, (sign_digest(BENCH_ORACLE_KEY, digest),))

    expiries = [_STF_START_MS + days * _DAY_MS for days in _EXPIRY_DAYS]

    def smiles(vol_ppm: int) -> VolatilityUpdate:
        ts = clock[0] + 1_000
        params = tuple(SviParameters(
            _INDEX_ID, e, vol_ppm * vol_ppm * WAD * (e - ts) // (10**12 * MS_PER_YEAR),
            WAD // 20, -3 * WAD // 10, 0, WAD // 10) for e in expiries)
        digest = volatility_message_digest(config.chain_id, ts, params)
        return VolatilityUpdate(ts, params, (sign_digest(BENCH_ORACLE_KEY, digest),))

    makers = [(0x30_0000 + i).to_bytes(20, "big") for i in range(_STF_MAKERS)]
    traders = [(0x40_0000 + i).to_bytes(20, "big") for i in range(_STF_TRADERS)]
    run(*(Deposit(i + 1, owner, 0, 10**14 if owner in makers else 10**11)
          for i, owner in enumerate(makers + traders)), oracle(_INDEX_QUANTUMS))
    market_ids: list[int] = []
    listings: list[Transaction] = []
    for expiry_ms in expiries:
        for strike_ppm in _STRIKE_PPM:
            for option_type in OptionType:
                market_id = 100 + len(market_ids)
                market_ids.append(market_id)
                listings.append(ListOption(market_id, _INDEX_ID, expiry_ms,
                                           _INDEX_QUANTUMS * strike_ppm // 1_000_000,
                                           option_type))
    run(*listings)
    run(smiles(600_000))
    run(*(SetPortfolioMargin(owner, 0, True) for owner in traders[::2]),
        *(SetMmp(owner, 0, _INDEX_ID, 1_000, 1_000, 10**12, 0, 0) for owner in makers))

    def ladder(owner: bytes, width: int) -> MassQuote:
        chosen = sorted(rng.sample(market_ids, 32))
        quotes: list[Quote] = []
        for market_id in chosen:
            mark = max(2, state.markets[market_id].index_price_quantums // 10**6)
            quotes.append(Quote(market_id, Side.BUY, max(1, mark - width), 5))
            quotes.append(Quote(market_id, Side.SELL, mark + width, 5))
        return MassQuote(owner, 0, _INDEX_ID, tuple(quotes))

    run(*(ladder(owner, 20 + i) for i, owner in enumerate(makers)))
    quote_s = min(run(ladder(makers[0], 20)) for _ in range(5))
    txs: list[Transaction] = []
    for _ in range(orders):
        market_id = rng.choice(market_ids)
        market = state.markets[market_id]
        mark = max(2, market.index_price_quantums // 10**6)
        is_buy = rng.random() < 0.5
        if rng.random() < 0.3:  # take the makers' quotes
            bound = mark + 200 if is_buy else max(1, mark - 200)
            txs.append(PlaceOrder(rng.choice(traders), 0, market_id,
                                  Side.BUY if is_buy else Side.SELL, bound, rng.randint(1, 4),
                                  time_in_force=TimeInForce.IOC))
        else:  # rest near the mark
            offset = rng.randint(25, 60)
            price = mark - offset if is_buy else mark + offset
            txs.append(PlaceOrder(rng.choice(traders), 0, market_id,
                                  Side.BUY if is_buy else Side.SELL, max(1, price), 1))
    order_s = 0.0
    for chunk in range(0, len(txs), 500):
        order_s += run(*txs[chunk:chunk + 500])
    holders = sum(len(state.markets[m].holders) for m in market_ids)
    oracle_s = run(oracle(_INDEX_QUANTUMS * 1_001 // 1_000))
    vol_s = run(smiles(650_000))
    clock[0] = expiries[0] + 1_000
    run(oracle(_INDEX_QUANTUMS))
    expiry_s = run(ExpireOptions(_INDEX_ID, expiries[0]))
    return {
        "stf_option_markets": float(len(market_ids)),
        "stf_option_holders": float(holders),
        "stf_option_orders_per_s": orders / order_s,
        "stf_mass_quote_ms": quote_s * 1e3,
        "stf_oracle_update_ms": oracle_s * 1e3,
        "stf_volatility_update_ms": vol_s * 1e3,
        "stf_expiry_settlement_ms": expiry_s * 1e3,
    }


def run_risk_bench(
    seed: int,
    options: int,
    accounts: int,
    venue_accounts: int = VENUE_ACCOUNTS_DEFAULT,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every risk figure in one flat dict (``rollbook bench risk --json`` prints it)."""
    say = progress or (lambda message: None)
    result: dict[str, Any] = {"seed": seed, "python": platform.python_version()}
    say(f"option pricing: {options:,} valuations")
    result.update(measure_option_pricing(options, seed))
    say(f"portfolio margin: {accounts:,} accounts of {_POSITIONS_PER_ACCOUNT} positions")
    result.update(measure_portfolio_margin(accounts, seed))
    say(f"venue revaluation: {venue_accounts:,} accounts x {_POSITIONS_PER_ACCOUNT} positions")
    result.update(measure_venue_revaluation(venue_accounts, seed))
    say(f"options STF: {_STF_ORDERS:,} option orders on {len(_EXPIRY_DAYS) * 22} markets")
    result.update(measure_stf_options(seed))
    return result

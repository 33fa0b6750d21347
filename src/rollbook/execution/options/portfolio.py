"""Option margin: portfolio margin by scenario grid, and standard per-position margin.

Plugging into ``margin.group_risk`` (the STF wiring, done in ``options.engine``)
--------------------------------------------------------------------------------
Everything here is a pure function of plain typed inputs: lists of ``(instrument, size_lots)``
(``instruments.OptionSpec`` / ``instruments.PerpetualSpec``) and a ``ScenarioCache`` built from
``(config, valuation_ms, index prices, smiles)``. No ``State`` object is read. The wiring, as
``options.engine`` implements it (standard mode there also charges a long option's premium up
front, i.e. its value as initial margin):

1. Keep one ``ScenarioCache`` beside the state (derived data: never in the root, never
   encoded). Build a new one whenever an input changes: after every oracle update (index or
   smile) and when the valuation time moves. Use the oracle timestamp as ``valuation_ms`` so a
   cache survives batches without oracle updates; it fills lazily, per instrument, so building
   one is free and only instruments actually held are valued.
2. In ``group_risk`` (and ``meets_initial_after``), for a group in portfolio mode: group its
   positions by ``config.index_id``; per index, call ``portfolio_requirement(index_id,
   [(spec, size_lots), ...], cache)`` for the maintenance requirement on current positions,
   and for the initial requirement take the larger of the requirement with every open bid
   filled and with every open ask filled (Deribit's convention; orders across instruments of
   one side are summed). Equity adds ``PositionRisk.value_quantums`` of each option
   (``position_values_quantums``) to what ``position_value_quantums`` gives for perpetuals.
   In standard mode options use ``standard_margin`` and perpetuals keep their tiers.
3. ``change_acceptable`` (the StarkEx rule) and liquidation work unchanged on the resulting
   ``GroupRisk``; ``PortfolioMargin`` is the breakdown to show in account state.
4. Market-maker protection (``mmp``) takes fill deltas/vegas from ``position_risk``.

Portfolio margin (per account and underlying index)
----------------------------------------------------
Positions: every option on the index plus the perpetual on the same index, one net position
per instrument. A scenario is ``(move_ppm, vol_shift_ppm, weight_ppm)``:

- the index becomes ``F (1 + move)`` (exact in integers);
- each option's volatility, taken from the smile at the *current* forward (sticky strike),
  becomes ``sigma (1 + vol_shift * term_factor)``, floored at 0 and capped at
  ``SIGMA_WAD_MAX``. ``term_factor = (reference / max(floor, T))**power`` makes short-dated
  volatility move more (Paradex's form: power 0.30 below 30 days, 0.13 above); with powers of 0
  it is 1 and the shift is a plain relative shift (Deribit's grid). The factor is
  ``exp_wad(power * ln(...))`` in integers;
- every instrument is revalued with Black-76 (perpetual: the index itself) and the scenario's
  loss is ``-(sum of size x (value in scenario - value now))``, times ``weight``.

Grid (defaults, ``PortfolioMarginConfig``): index moves -15%..+15% in 7 steps x volatility
-30%/0/+30% at full weight (21 scenarios, Deribit's spirit), plus 4 weighted tail scenarios
(-66%, -33%, +50%, +100% with volatility +30%, Paradex's extended table) whose weights keep a
linear position's weighted tail loss below its 15% grid loss, so they only bind for short
wings. Then

    initial     = worst_loss + delta_charge + short_option_charge + valuation_allowance
    maintenance = initial x maintenance_ratio (50%: Paradex), from the same numbers

- ``worst_loss = max(0, max over scenarios of weighted loss)``;
- ``delta_charge = delta_charge_ppm x |net delta| x index`` (a floor on directional risk that
  the grid's discrete steps miss), on the portfolio's net delta (perpetual included);
- ``short_option_charge = short_option_charge_ppm x index x (units of underlying short in
  options)``: the short-option contingency (Derive/Dederi style) for gap and liquidity risk
  outside the grid;
- ``valuation_allowance``: the stated Black-76 error bound summed over positions (so the
  requirement is never below what exact arithmetic would give); 0 without options, and at most
  one quantum for any realistic portfolio.

The charges are added rather than maxed (Paradex takes max(scan, delta)): simpler, monotone,
and never below either. Consequences, all exact in integers and asserted by the tests:
``maintenance <= initial``; the requirement is sub-additive (``IM(A + B) <= IM(A) + IM(B)``,
so a hedge never costs more than holding its legs in separate accounts); a perpetual-only
portfolio's requirement is exactly ``ceil(15% |x| F) + ceil(1% |x| F)``.

Rounding and units: per-unit values are WAD USD (``black76``), exposures are signed nanounits
of the underlying (``size_lots x contract_size_nanounits``), so every aggregate is an exact
integer in units of 1e-27 USD; each requirement is converted once, rounded **up**
(``div_ceil``). Account values round **down** (``div_floor``), Greeks for display round half up.

Speed: the grid's prices depend on the market and the scenario only, never on the account.
``ScenarioCache`` holds, per instrument, the scenario P&L vector and the Greeks per unit, so
re-margining an account is integer dot products: ~30-70 us for 10 positions on one core
(``rollbook bench risk``; ~70-130 us with the full breakdown). Filling the cache costs, per
listed strike, one full Black-76 valuation plus one price-only evaluation per scenario
(``black76_call_prices_wad``: bit-identical prices, the logarithm shared by the scenarios of
one index move, the put by exact parity): ~0.2 ms per strike, once per cache. A 10-position
account on a cold cache therefore takes ~2 ms.

Standard margin (``standard_margin``, options only; perpetuals keep ``margin``'s tiers)
--------------------------------------------------------------------------------------------
Per position (Deribit/Binance/Paradex style, parameters in ``StandardMarginConfig``):

- long: 0 (the premium is paid up front; the long's value is in equity);
- short: ``initial = units x risk + units x mark``, where ``risk = max(floor x index,
  short x index - OTM amount)`` (``OTM = max(K - S, 0)`` for calls, ``max(S - K, 0)`` for puts),
  capped at ``put_cap x strike`` for puts (a put's payoff never exceeds its strike);
  ``maintenance = units x risk x maintenance_ratio + units x mark``. The mark includes its error
  bound; every term rounds up.

Known limits
------------
- One forward per index (rate 0, no basis): dated futures are not modelled.
- Volatility shifts are parallel in relative terms across strikes; no skew scenarios.
- Open orders are handled by the caller (point 2 above), not here.
- Cache fill cost grows with listed strikes: ~0.2 ms each per snapshot when every instrument
  is held (500 strikes: ~100 ms per oracle update); bound the listed strikes per index, or
  refresh option valuations on the volatility update's cadence rather than every index tick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from math import isqrt
from operator import mul
from typing import Final

# allow_interpreted_subclasses: restorable by pickle/node.snapshot when compiled (see state.py)
from mypy_extensions import mypyc_attr

from rollbook.execution.options.black76 import (
    PRICE_WAD_MAX,
    SECONDS_PER_YEAR,
    SIGMA_WAD_MAX,
    OptionValuation,
    black76_call_put,
    price_error_bound_wad,
)
from rollbook.execution.options.fixed_point import (
    FRAC_BITS,
    LN_FRAC_BITS,
    WAD,
    div_round_half_up,
    exp_wad,
    ln_ratio_fixed,
    norm_cdf_fixed,
    shift_round_half_up,
)
from rollbook.execution.options.instruments import (
    INDEX_PRICE_QUANTUMS_MAX,
    Instrument,
    OptionMark,
    OptionSpec,
    OptionType,
    PerpetualSpec,
    expiry_seconds,
    option_mark,
    to_wad,
)
from rollbook.execution.options.smile import SmileKey, SviSmile, implied_sigma_wad
from rollbook.execution.units import NANOUNITS_PER_UNIT, PPM, QUANTUMS_PER_USDC, div_ceil, div_floor

__all__ = [
    "DEFAULT_DELTA_CHARGE_PPM",
    "DEFAULT_MAINTENANCE_RATIO_PPM",
    "DEFAULT_PRICE_MOVES_PPM",
    "DEFAULT_SHORT_OPTION_CHARGE_PPM",
    "DEFAULT_STANDARD_MAINTENANCE_RATIO_PPM",
    "DEFAULT_STANDARD_PUT_CAP_PPM",
    "DEFAULT_STANDARD_SHORT_FLOOR_PPM",
    "DEFAULT_STANDARD_SHORT_PPM",
    "DEFAULT_TAIL_SCENARIOS",
    "DEFAULT_VOL_SHIFTS_PPM",
    "DEFAULT_VOL_SHIFT_FLOOR_S",
    "DEFAULT_VOL_SHIFT_LONG_POWER_PPM",
    "DEFAULT_VOL_SHIFT_REFERENCE_S",
    "DEFAULT_VOL_SHIFT_SHORT_POWER_PPM",
    "MOVE_PPM_MAX",
    "PORTFOLIO_POSITIONS_MAX",
    "POSITION_LOTS_MAX",
    "SCENARIOS_MAX",
    "VALUE_SCALE",
    "VOL_SHIFT_PPM_MAX",
    "Greeks",
    "InstrumentRisk",
    "MarginRequirement",
    "PortfolioMargin",
    "PortfolioMarginConfig",
    "PositionRisk",
    "Scenario",
    "ScenarioCache",
    "StandardMargin",
    "StandardMarginConfig",
    "StandardPositionMargin",
    "black76_call_prices_wad",
    "portfolio_margin",
    "portfolio_requirement",
    "position_risk",
    "position_values_quantums",
    "shocked_sigma_wad",
    "sqrt_years_fixed",
    "standard_margin",
    "vol_shift_term_factor_wad",
]

DAY_S: Final = 86_400
# Exact aggregates are in units of 1e-27 USD (nanounits x WAD USD per unit); one quantum is
# 1e-6 USD, so VALUE_SCALE of those units make one quantum.
VALUE_SCALE: Final = NANOUNITS_PER_UNIT * WAD // QUANTUMS_PER_USDC  # 10**21
_VEGA_POINT_SCALE: Final = VALUE_SCALE * 100  # vega is per 1.00 of sigma; a vol point is 0.01
_YEAR_DAYS: Final = 365

DEFAULT_PRICE_MOVES_PPM: Final = (-150_000, -100_000, -50_000, 0, 50_000, 100_000, 150_000)
DEFAULT_VOL_SHIFTS_PPM: Final = (-300_000, 0, 300_000)
DEFAULT_DELTA_CHARGE_PPM: Final = 10_000  # 1% of |net delta| x index
DEFAULT_SHORT_OPTION_CHARGE_PPM: Final = 5_000  # 0.5% of index per unit short in options
DEFAULT_MAINTENANCE_RATIO_PPM: Final = 500_000  # maintenance = 50% of initial (Paradex)
DEFAULT_VOL_SHIFT_REFERENCE_S: Final = 30 * DAY_S
DEFAULT_VOL_SHIFT_FLOOR_S: Final = DAY_S
DEFAULT_VOL_SHIFT_SHORT_POWER_PPM: Final = 300_000  # below the reference (Paradex: 30%)
DEFAULT_VOL_SHIFT_LONG_POWER_PPM: Final = 130_000  # at or above it (Paradex: 13%)

SCENARIOS_MAX: Final = 64  # bounds the cache fill: Black-76 calls per strike
MOVE_PPM_MAX: Final = 10 * PPM  # +1000%
VOL_SHIFT_PPM_MAX: Final = 10 * PPM
PORTFOLIO_POSITIONS_MAX: Final = 128  # per account and index; Derive allows 100 assets
POSITION_LOTS_MAX: Final = 10**18
_POWER_PPM_MAX: Final = 2 * PPM


@dataclass(frozen=True, slots=True)
class Scenario:
    """Index move and relative volatility shift (ppm), and the weight of its loss (ppm)."""

    move_ppm: int
    vol_shift_ppm: int
    weight_ppm: int = PPM


DEFAULT_TAIL_SCENARIOS: Final = (
    Scenario(-660_000, 300_000, 200_000),  # weighted loss of a linear long: 13.2%
    Scenario(-330_000, 300_000, 400_000),  # 13.2%
    Scenario(500_000, 300_000, 250_000),  # 12.5%
    Scenario(1_000_000, 300_000, 125_000),  # 12.5%
)


@dataclass(frozen=True, slots=True)
class PortfolioMarginConfig:
    """Scenario grid and charges (per index; genesis configuration). See the module doc."""

    price_moves_ppm: tuple[int, ...] = DEFAULT_PRICE_MOVES_PPM
    vol_shifts_ppm: tuple[int, ...] = DEFAULT_VOL_SHIFTS_PPM
    tail_scenarios: tuple[Scenario, ...] = DEFAULT_TAIL_SCENARIOS
    delta_charge_ppm: int = DEFAULT_DELTA_CHARGE_PPM
    short_option_charge_ppm: int = DEFAULT_SHORT_OPTION_CHARGE_PPM
    maintenance_ratio_ppm: int = DEFAULT_MAINTENANCE_RATIO_PPM
    vol_shift_reference_s: int = DEFAULT_VOL_SHIFT_REFERENCE_S
    vol_shift_floor_s: int = DEFAULT_VOL_SHIFT_FLOOR_S
    vol_shift_short_power_ppm: int = DEFAULT_VOL_SHIFT_SHORT_POWER_PPM
    vol_shift_long_power_ppm: int = DEFAULT_VOL_SHIFT_LONG_POWER_PPM
    # grid (moves outer, shifts inner) then tails; derived, so not an argument
    scenarios: tuple[Scenario, ...] = field(init=False, repr=False, compare=False)
    # -weight_ppm per scenario: a gain times this is the weighted loss (times PPM)
    loss_weights_ppm: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        grid = tuple(
            Scenario(move, shift) for move in self.price_moves_ppm for shift in self.vol_shifts_ppm
        )
        scenarios = grid + self.tail_scenarios
        if not 1 <= len(scenarios) <= SCENARIOS_MAX:
            raise ValueError(f"{len(scenarios)} scenarios outside [1, SCENARIOS_MAX]")
        for scenario in scenarios:
            if not -PPM < scenario.move_ppm <= MOVE_PPM_MAX:
                raise ValueError(f"move_ppm={scenario.move_ppm} outside (-PPM, MOVE_PPM_MAX]")
            if not -PPM <= scenario.vol_shift_ppm <= VOL_SHIFT_PPM_MAX:
                raise ValueError(f"vol_shift_ppm={scenario.vol_shift_ppm} outside [-PPM, max]")
            if not 0 < scenario.weight_ppm <= PPM:
                raise ValueError(f"weight_ppm={scenario.weight_ppm} outside (0, PPM]")
        for name in ("delta_charge_ppm", "short_option_charge_ppm"):
            if not 0 <= getattr(self, name) <= PPM:
                raise ValueError(f"{name} outside [0, PPM]")
        if not 0 < self.maintenance_ratio_ppm <= PPM:
            raise ValueError("maintenance_ratio_ppm outside (0, PPM]")
        if not 1 <= self.vol_shift_floor_s <= self.vol_shift_reference_s:
            raise ValueError("need 1 <= vol_shift_floor_s <= vol_shift_reference_s")
        for power in (self.vol_shift_short_power_ppm, self.vol_shift_long_power_ppm):
            if not 0 <= power <= _POWER_PPM_MAX:
                raise ValueError(f"vol shift power {power} outside [0, {_POWER_PPM_MAX}] ppm")
        object.__setattr__(self, "scenarios", scenarios)
        object.__setattr__(self, "loss_weights_ppm", tuple(-s.weight_ppm for s in scenarios))


def vol_shift_term_factor_wad(config: PortfolioMarginConfig, expiry_s: int) -> int:
    """``(reference / max(floor, T))**power`` as WAD, ``exp_wad(power ln(...))``.

    ``power`` is the short power below the reference horizon and the long power at or above.
    Error: <= 0.5 ulp (exp) + 0.5 ulp x factor (the exponent rounded to WAD), i.e. about 1e-18
    relative.
    """
    horizon_s = max(config.vol_shift_floor_s, expiry_s)
    if horizon_s < config.vol_shift_reference_s:
        power_ppm = config.vol_shift_short_power_ppm
    else:
        power_ppm = config.vol_shift_long_power_ppm
    if power_ppm == 0 or horizon_s == config.vol_shift_reference_s:
        return WAD
    log_fixed = ln_ratio_fixed(config.vol_shift_reference_s, horizon_s)
    exponent_wad = div_round_half_up(log_fixed * power_ppm * WAD, PPM << LN_FRAC_BITS)
    return exp_wad(exponent_wad)


def shocked_sigma_wad(sigma_wad: int, vol_shift_ppm: int, term_factor_wad: int) -> int:
    """``sigma (1 + shift x factor)``, rounded away from ``sigma`` (the harsher scenario).

    The multiplier is floored at 0 (a volatility is never negative) and the result capped at
    ``SIGMA_WAD_MAX``.
    """
    shift_wad = div_ceil(abs(vol_shift_ppm) * term_factor_wad, PPM)
    if vol_shift_ppm >= 0:
        return min(div_ceil(sigma_wad * (WAD + shift_wad), WAD), SIGMA_WAD_MAX)
    multiplier_wad = max(WAD - shift_wad, 0)
    return div_floor(sigma_wad * multiplier_wad, WAD)


@dataclass(frozen=True, slots=True)
class InstrumentRisk:
    """Per unit of underlying, WAD USD: value now, Greeks, and the P&L in every scenario.

    ``error_wad`` bounds ``|pnl_wad[s] - exact|`` for every scenario (twice Black-76's bound at
    the largest scenario forward); 0 for the perpetual, whose values are exact.
    """

    is_option: bool
    value_wad: int  # option: its mark; perpetual: the index
    delta_wad: int
    gamma_wad: int
    vega_wad: int
    theta_wad: int
    pnl_wad: tuple[int, ...]
    error_wad: int


# ---------------------------------------------------------------------------------------------
# Price-only Black-76 for scenario sweeps
# ---------------------------------------------------------------------------------------------

# ``black76`` carries sigma sqrt(T) at the logarithm's precision; these mirror its constants.
_V_BITS: Final = LN_FRAC_BITS
_V_TO_FIXED_SHIFT: Final = _V_BITS - FRAC_BITS


def sqrt_years_fixed(expiry_s: int) -> int:
    """``sqrt(expiry_s / SECONDS_PER_YEAR)`` at ``2**LN_FRAC_BITS``, rounded down (as black76)."""
    return isqrt(div_floor(expiry_s << (2 * _V_BITS), SECONDS_PER_YEAR))


def black76_call_prices_wad(
    forward_wad: int, strike_wad: int, sqrt_years: int, sigmas_wad: Sequence[int]
) -> list[int]:
    """Black-76 call prices for several volatilities at one forward, strike and expiry.

    **Bit-identical** to ``black76.black76_call(...).price`` (the same operations in the same
    order, asserted by the tests over grids and random inputs), so it carries the same stated
    error bound; it skips the Greeks and shares ``ln(F / K)`` and ``sqrt(T)`` across the
    volatilities, which makes a scenario sweep ~2.5x faster. Inputs are assumed inside
    Black-76's domain (the caller has valued the same strike with ``black76`` already).
    """
    intrinsic = max(forward_wad - strike_wad, 0)
    log_moneyness = ln_ratio_fixed(forward_wad, strike_wad)
    frac_bits, v_bits, v_shift = FRAC_BITS, _V_BITS, _V_TO_FIXED_SHIFT  # locals: hot loop
    prices: list[int] = []
    for sigma_wad in sigmas_wad:
        if sqrt_years == 0 or sigma_wad == 0:
            prices.append(intrinsic)
            continue
        v = div_floor(sigma_wad * sqrt_years, WAD)
        d1 = div_floor((log_moneyness + (v * v >> (v_bits + 1))) << frac_bits, v)
        d2 = d1 - (v >> v_shift)
        price = shift_round_half_up(
            forward_wad * norm_cdf_fixed(d1) - strike_wad * norm_cdf_fixed(d2), frac_bits
        )
        prices.append(min(max(price, forward_wad - strike_wad, 0), forward_wad))
    return prices


_StrikeKey = tuple[int, int, int]  # (index_id, expiry_ms, strike_quantums)


@mypyc_attr(allow_interpreted_subclasses=True)
class ScenarioCache:
    """Scenario values per instrument for one market snapshot; fills lazily, deterministically.

    Valid for exactly one ``(config, valuation_ms, index prices, smiles)``: the inputs are
    copied at construction and never change, so a cached value is always the value a fresh
    computation would give (asserted by the tests). ``epoch`` is an opaque tag for the caller
    (e.g. the batch index and oracle sequence the snapshot was taken at).
    """

    __slots__ = (
        "_marks",
        "_perpetuals",
        "_strikes",
        "_term_multipliers",
        "config",
        "epoch",
        "index_prices_quantums",
        "smiles",
        "valuation_ms",
    )

    def __init__(
        self,
        config: PortfolioMarginConfig,
        valuation_ms: int,
        index_prices_quantums: Mapping[int, int],
        smiles: Mapping[SmileKey, SviSmile],
        epoch: int = 0,
    ) -> None:
        self.config = config
        self.valuation_ms = valuation_ms
        self.epoch = epoch
        self.index_prices_quantums: dict[int, int] = dict(index_prices_quantums)
        for index_id, price in self.index_prices_quantums.items():
            if not 1 <= price <= INDEX_PRICE_QUANTUMS_MAX:
                raise ValueError(f"index {index_id} price {price} outside [1, 1e24]")
        self.smiles: dict[SmileKey, SviSmile] = dict(smiles)
        for key, smile in self.smiles.items():
            if smile.key != key:
                raise ValueError(f"smile keyed {key} is for {smile.key}")
        self._strikes: dict[_StrikeKey, tuple[InstrumentRisk, InstrumentRisk]] = {}
        self._perpetuals: dict[int, InstrumentRisk] = {}
        self._marks: dict[OptionSpec, OptionMark] = {}
        self._term_multipliers: dict[int, int] = {}

    def index_price_quantums(self, index_id: int) -> int:
        price = self.index_prices_quantums.get(index_id)
        if price is None:
            raise ValueError(f"no index price for index {index_id}")
        return price

    def mark(self, spec: OptionSpec) -> OptionMark:
        """The option's mark (``instruments.option_mark``) at this snapshot, memoised."""
        mark = self._marks.get(spec)
        if mark is None:
            smile = self.smiles.get((spec.index_id, spec.expiry_ms))
            price = self.index_price_quantums(spec.index_id)
            mark = option_mark(spec, price, smile, self.valuation_ms)
            self._marks[spec] = mark
        return mark

    def instrument_risk(self, instrument: Instrument) -> InstrumentRisk:
        if isinstance(instrument, PerpetualSpec):
            risk = self._perpetuals.get(instrument.index_id)
            if risk is None:
                risk = self._perpetual_risk(instrument.index_id)
                self._perpetuals[instrument.index_id] = risk
            return risk
        key = (instrument.index_id, instrument.expiry_ms, instrument.strike_quantums)
        pair = self._strikes.get(key)
        if pair is None:
            pair = self._strike_risk(instrument)
            self._strikes[key] = pair
        return pair[0] if instrument.option_type is OptionType.CALL else pair[1]

    @property
    def strikes_valued(self) -> int:
        """Distinct (index, expiry, strike) valued so far (each costs one scenario sweep)."""
        return len(self._strikes)

    def _perpetual_risk(self, index_id: int) -> InstrumentRisk:
        forward_wad = to_wad(self.index_price_quantums(index_id))
        pnl = tuple(
            div_floor(forward_wad * s.move_ppm, PPM)  # exact: forward_wad is a multiple of 1e12
            for s in self.config.scenarios
        )
        return InstrumentRisk(False, forward_wad, WAD, 0, 0, 0, pnl, 0)

    def _term_factor(self, expiry_s: int) -> int:
        factor = self._term_multipliers.get(expiry_s)
        if factor is None:
            factor = vol_shift_term_factor_wad(self.config, expiry_s)
            self._term_multipliers[expiry_s] = factor
        return factor

    def _strike_risk(self, spec: OptionSpec) -> tuple[InstrumentRisk, InstrumentRisk]:
        """Call and put of one strike: one price evaluation per scenario serves both."""
        forward_wad = to_wad(self.index_price_quantums(spec.index_id))
        strike_wad = to_wad(spec.strike_quantums)
        expiry_s = expiry_seconds(spec.expiry_ms, self.valuation_ms)
        sigma_wad = 0
        if expiry_s > 0:
            smile = self.smiles.get((spec.index_id, spec.expiry_ms))
            if smile is None:
                raise ValueError(f"no smile for index {spec.index_id} expiry {spec.expiry_ms}")
            sigma_wad = implied_sigma_wad(smile, forward_wad, strike_wad)
        call, put = black76_call_put(forward_wad, strike_wad, expiry_s, sigma_wad)
        factor = self._term_factor(expiry_s)
        # scenarios sharing a forward share its logarithm: group them (insertion order)
        by_forward: dict[int, list[tuple[int, int]]] = {}
        for position, scenario in enumerate(self.config.scenarios):
            shocked_forward = div_floor(forward_wad * (PPM + scenario.move_ppm), PPM)  # exact
            shocked_sigma = shocked_sigma_wad(sigma_wad, scenario.vol_shift_ppm, factor)
            by_forward.setdefault(shocked_forward, []).append((position, shocked_sigma))
        forward_max_wad = max(by_forward)
        if forward_max_wad > PRICE_WAD_MAX:  # the price kernel trusts black76's domain
            raise ValueError(f"scenario forward {forward_max_wad} exceeds PRICE_WAD_MAX")
        sqrt_years = sqrt_years_fixed(expiry_s)
        call_pnl = [0] * len(self.config.scenarios)
        put_pnl = [0] * len(self.config.scenarios)
        for shocked_forward, group in by_forward.items():
            prices = black76_call_prices_wad(
                shocked_forward, strike_wad, sqrt_years, [sigma for _, sigma in group]
            )
            for (position, _), price in zip(group, prices, strict=True):
                call_pnl[position] = price - call.price
                # put by exact parity, as black76_put does: put = call - (F - K)
                put_pnl[position] = price - shocked_forward + strike_wad - put.price
        error = price_error_bound_wad(max(forward_max_wad, forward_wad), strike_wad)
        error += price_error_bound_wad(forward_wad, strike_wad)
        return _option_risk(call, tuple(call_pnl), error), _option_risk(put, tuple(put_pnl), error)


def _option_risk(valuation: OptionValuation, pnl: tuple[int, ...], error: int) -> InstrumentRisk:
    return InstrumentRisk(
        True,
        valuation.price,
        valuation.delta,
        valuation.gamma,
        valuation.vega,
        valuation.theta,
        pnl,
        error,
    )


# ---------------------------------------------------------------------------------------------
# Portfolio margin
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarginRequirement:
    initial_quantums: int
    maintenance_quantums: int


@dataclass(frozen=True, slots=True)
class Greeks:
    """Sensitivities of a position or portfolio, rounded half up from exact sums.

    ``delta_nanounits``: underlying-equivalent exposure; ``gamma_nanounits_per_usd``: change of
    delta per 1 USD index move; ``vega_quantums_per_vol_point``: value change for +1 vol point
    (0.01 of sigma); ``theta_quantums_per_day``: value change per calendar day.
    """

    delta_nanounits: int
    gamma_nanounits_per_usd: int
    vega_quantums_per_vol_point: int
    theta_quantums_per_day: int


@dataclass(frozen=True, slots=True)
class PositionRisk:
    instrument: Instrument
    size_lots: int
    exposure_nanounits: int  # size_lots x contract size
    value_per_unit_wad: int  # mark (option) or index (perpetual)
    value_quantums: int  # exposure x value, rounded down
    greeks: Greeks


@dataclass(frozen=True, slots=True)
class PortfolioMargin:
    """The margin breakdown of one account on one index (see the module docstring)."""

    index_id: int
    initial_quantums: int
    maintenance_quantums: int
    worst_loss_quantums: int  # max(0, worst weighted scenario loss)
    worst_scenario_index: int  # first scenario reaching the maximum (-1: no positions)
    worst_scenario: Scenario | None
    scenario_losses_quantums: tuple[int, ...]  # weighted, rounded up; negative is a gain
    delta_charge_quantums: int
    short_option_charge_quantums: int
    valuation_allowance_quantums: int
    options_value_quantums: int  # sum of the options' values (positions rounded down)
    greeks: Greeks
    positions: tuple[PositionRisk, ...]


_Row = tuple[int, InstrumentRisk]  # (exposure_nanounits, per-unit risk)


def _rows(
    index_id: int, positions: Sequence[tuple[Instrument, int]], cache: ScenarioCache
) -> list[_Row]:
    if len(positions) > PORTFOLIO_POSITIONS_MAX:
        raise ValueError(f"{len(positions)} positions exceed PORTFOLIO_POSITIONS_MAX")
    seen: dict[Instrument, None] = {}
    rows: list[_Row] = []
    for instrument, size_lots in positions:
        if instrument.index_id != index_id:
            raise ValueError(f"instrument on index {instrument.index_id}, portfolio {index_id}")
        if not -POSITION_LOTS_MAX <= size_lots <= POSITION_LOTS_MAX:
            raise ValueError(f"size_lots={size_lots} outside +-POSITION_LOTS_MAX")
        if instrument in seen:
            raise ValueError("one net position per instrument")
        seen[instrument] = None
        if size_lots:
            exposure = size_lots * instrument.contract_size_nanounits
            rows.append((exposure, cache.instrument_risk(instrument)))
    return rows


def _scenario_gains(rows: list[_Row], scenario_count: int) -> list[int]:
    """Exact portfolio P&L per scenario in 1e-27 USD (unweighted): integer dot products."""
    totals = [0] * scenario_count
    for exposure, risk in rows:
        totals = [total + exposure * pnl for total, pnl in zip(totals, risk.pnl_wad, strict=True)]
    return totals


def _charges(
    rows: list[_Row], index_price_quantums: int, config: PortfolioMarginConfig
) -> tuple[int, int, int, int]:
    """``(delta charge, short-option charge, valuation allowance, net delta * WAD)``."""
    delta_total = 0  # nanounits x WAD
    short_units = 0  # nanounits short in options
    error_total = 0  # 1e-27 USD
    for exposure, risk in rows:
        delta_total += exposure * risk.delta_wad
        if risk.is_option:
            if exposure < 0:
                short_units -= exposure
            error_total += abs(exposure) * risk.error_wad
    delta_charge = div_ceil(
        abs(delta_total) * index_price_quantums * config.delta_charge_ppm,
        WAD * NANOUNITS_PER_UNIT * PPM,
    )
    short_charge = div_ceil(
        short_units * index_price_quantums * config.short_option_charge_ppm,
        NANOUNITS_PER_UNIT * PPM,
    )
    return delta_charge, short_charge, div_ceil(error_total, VALUE_SCALE), delta_total


def _worst(gains: list[int], config: PortfolioMarginConfig) -> tuple[int, int]:
    """``(index, weighted loss x PPM in 1e-27 USD)`` of the first worst scenario."""
    weighted = list(map(mul, gains, config.loss_weights_ppm))
    worst = max(weighted)
    return weighted.index(worst), worst


def portfolio_requirement(
    index_id: int, positions: Sequence[tuple[Instrument, int]], cache: ScenarioCache
) -> MarginRequirement:
    """Initial and maintenance requirements only: the hot path (same numbers as
    ``portfolio_margin``, without the breakdown)."""
    rows = _rows(index_id, positions, cache)
    if not rows:
        return MarginRequirement(0, 0)
    config = cache.config
    _, worst_scaled = _worst(_scenario_gains(rows, len(config.scenarios)), config)
    worst_loss = div_ceil(max(worst_scaled, 0), VALUE_SCALE * PPM)
    delta_charge, short_charge, allowance, _ = _charges(
        rows, cache.index_price_quantums(index_id), config
    )
    initial = worst_loss + delta_charge + short_charge + allowance
    return MarginRequirement(initial, div_ceil(initial * config.maintenance_ratio_ppm, PPM))


def _greeks(delta: int, gamma: int, vega: int, theta: int) -> Greeks:
    """Greeks from exact sums of ``exposure x per-unit WAD value`` (nanounits x WAD)."""
    return Greeks(
        delta_nanounits=div_round_half_up(delta, WAD),
        gamma_nanounits_per_usd=div_round_half_up(gamma, WAD),
        vega_quantums_per_vol_point=div_round_half_up(vega, _VEGA_POINT_SCALE),
        theta_quantums_per_day=div_round_half_up(theta, VALUE_SCALE * _YEAR_DAYS),
    )


def position_risk(instrument: Instrument, size_lots: int, cache: ScenarioCache) -> PositionRisk:
    """Value and Greeks of one position (for account state and market-maker protection)."""
    risk = cache.instrument_risk(instrument)
    exposure = size_lots * instrument.contract_size_nanounits
    return PositionRisk(
        instrument=instrument,
        size_lots=size_lots,
        exposure_nanounits=exposure,
        value_per_unit_wad=risk.value_wad,
        value_quantums=div_floor(exposure * risk.value_wad, VALUE_SCALE),
        greeks=_greeks(
            exposure * risk.delta_wad,
            exposure * risk.gamma_wad,
            exposure * risk.vega_wad,
            exposure * risk.theta_wad,
        ),
    )


def position_values_quantums(
    positions: Sequence[tuple[OptionSpec, int]], cache: ScenarioCache
) -> int:
    """Sum of option positions' values at their marks, each rounded down (equity term)."""
    total = 0
    for spec, size_lots in positions:
        exposure = size_lots * spec.contract_size_nanounits
        total += div_floor(exposure * cache.mark(spec).valuation.price, VALUE_SCALE)
    return total


def portfolio_margin(
    index_id: int, positions: Sequence[tuple[Instrument, int]], cache: ScenarioCache
) -> PortfolioMargin:
    """The full breakdown: requirements, every scenario's loss, charges, Greeks per position."""
    rows = _rows(index_id, positions, cache)
    config = cache.config
    scenario_count = len(config.scenarios)
    position_risks = tuple(
        position_risk(instrument, size_lots, cache)
        for instrument, size_lots in positions
        if size_lots
    )
    if not rows:
        zero = Greeks(0, 0, 0, 0)
        return PortfolioMargin(
            index_id, 0, 0, 0, -1, None, (0,) * scenario_count, 0, 0, 0, 0, zero, ()
        )
    gains = _scenario_gains(rows, scenario_count)
    worst_index, worst_scaled = _worst(gains, config)
    losses = tuple(
        div_ceil(-gain * scenario.weight_ppm, VALUE_SCALE * PPM)
        for gain, scenario in zip(gains, config.scenarios, strict=True)
    )
    worst_loss = div_ceil(max(worst_scaled, 0), VALUE_SCALE * PPM)
    delta_charge, short_charge, allowance, delta_total = _charges(
        rows, cache.index_price_quantums(index_id), config
    )
    initial = worst_loss + delta_charge + short_charge + allowance
    greeks = _greeks(
        delta_total,
        sum(exposure * risk.gamma_wad for exposure, risk in rows),
        sum(exposure * risk.vega_wad for exposure, risk in rows),
        sum(exposure * risk.theta_wad for exposure, risk in rows),
    )
    options_value = sum(
        p.value_quantums for p in position_risks if isinstance(p.instrument, OptionSpec)
    )
    return PortfolioMargin(
        index_id=index_id,
        initial_quantums=initial,
        maintenance_quantums=div_ceil(initial * config.maintenance_ratio_ppm, PPM),
        worst_loss_quantums=worst_loss,
        worst_scenario_index=worst_index,
        worst_scenario=config.scenarios[worst_index],
        scenario_losses_quantums=losses,
        delta_charge_quantums=delta_charge,
        short_option_charge_quantums=short_charge,
        valuation_allowance_quantums=allowance,
        options_value_quantums=options_value,
        greeks=greeks,
        positions=position_risks,
    )


# ---------------------------------------------------------------------------------------------
# Standard (per-position) margin for options
# ---------------------------------------------------------------------------------------------

DEFAULT_STANDARD_SHORT_PPM: Final = 150_000  # of index, less the OTM amount
DEFAULT_STANDARD_SHORT_FLOOR_PPM: Final = 100_000  # of index, at least
DEFAULT_STANDARD_PUT_CAP_PPM: Final = 500_000  # of strike, at most (short puts)
DEFAULT_STANDARD_MAINTENANCE_RATIO_PPM: Final = 500_000  # of the risk part


@dataclass(frozen=True, slots=True)
class StandardMarginConfig:
    short_ppm: int = DEFAULT_STANDARD_SHORT_PPM
    short_floor_ppm: int = DEFAULT_STANDARD_SHORT_FLOOR_PPM
    put_cap_ppm: int = DEFAULT_STANDARD_PUT_CAP_PPM
    maintenance_ratio_ppm: int = DEFAULT_STANDARD_MAINTENANCE_RATIO_PPM

    def __post_init__(self) -> None:
        if not 0 <= self.short_floor_ppm <= self.short_ppm <= PPM:
            raise ValueError("need 0 <= short_floor_ppm <= short_ppm <= PPM")
        if not 0 < self.put_cap_ppm <= PPM:
            raise ValueError("put_cap_ppm outside (0, PPM]")
        if not 0 < self.maintenance_ratio_ppm <= PPM:
            raise ValueError("maintenance_ratio_ppm outside (0, PPM]")


@dataclass(frozen=True, slots=True)
class StandardPositionMargin:
    instrument: OptionSpec
    size_lots: int
    initial_quantums: int
    maintenance_quantums: int


@dataclass(frozen=True, slots=True)
class StandardMargin:
    initial_quantums: int
    maintenance_quantums: int
    positions: tuple[StandardPositionMargin, ...]


def _standard_position(
    spec: OptionSpec, size_lots: int, cache: ScenarioCache, config: StandardMarginConfig
) -> StandardPositionMargin:
    if not isinstance(spec, OptionSpec):
        raise ValueError("standard_margin covers options; perpetuals keep margin's tiers")
    if size_lots >= 0:
        return StandardPositionMargin(spec, size_lots, 0, 0)
    index = cache.index_price_quantums(spec.index_id)
    units = -size_lots * spec.contract_size_nanounits  # nanounits short
    if spec.option_type is OptionType.CALL:
        otm = max(spec.strike_quantums - index, 0)
    else:
        otm = max(index - spec.strike_quantums, 0)
    # risk per unit, in quantums x PPM
    risk_scaled = max(config.short_floor_ppm * index, config.short_ppm * index - otm * PPM)
    if spec.option_type is OptionType.PUT:
        risk_scaled = min(risk_scaled, config.put_cap_ppm * spec.strike_quantums)
    mark = cache.mark(spec)
    mark_part = div_ceil(units * (mark.valuation.price + mark.error_bound_wad), VALUE_SCALE)
    initial = div_ceil(units * risk_scaled, NANOUNITS_PER_UNIT * PPM) + mark_part
    maintenance = (
        div_ceil(units * risk_scaled * config.maintenance_ratio_ppm, NANOUNITS_PER_UNIT * PPM * PPM)
        + mark_part
    )
    return StandardPositionMargin(spec, size_lots, initial, maintenance)


def standard_margin(
    positions: Sequence[tuple[OptionSpec, int]],
    cache: ScenarioCache,
    config: StandardMarginConfig | None = None,
) -> StandardMargin:
    """Per-position option margin (module docstring): the sum of each position's terms."""
    if len(positions) > PORTFOLIO_POSITIONS_MAX:
        raise ValueError(f"{len(positions)} positions exceed PORTFOLIO_POSITIONS_MAX")
    config = config or StandardMarginConfig()
    results = tuple(
        _standard_position(spec, size_lots, cache, config) for spec, size_lots in positions
    )
    return StandardMargin(
        sum(r.initial_quantums for r in results),
        sum(r.maintenance_quantums for r in results),
        results,
    )

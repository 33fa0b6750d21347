"""Option instruments: marks from the smile, the settlement average and expiry cashflows."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.execution.options.black76 import black76_call_put
from rollbook.execution.options.fixed_point import WAD
from rollbook.execution.options.instruments import (
    WAD_PER_QUANTUM,
    OptionSpec,
    OptionType,
    expiry_seconds,
    option_mark,
    payoff_quantums,
    settle_positions,
    settlement_price_quantums,
    to_wad,
)
from rollbook.execution.options.smile import SviSmile, implied_sigma_wad

DAY_MS = 86_400_000
NOW_MS = 1_700_000_000_000
EXPIRY_MS = NOW_MS + 30 * DAY_MS
INDEX_Q = 100_000 * 10**6  # 100,000 USDC per BTC
LOT_NANOUNITS = 100_000_000  # 0.1 BTC
SMILE = SviSmile(1, EXPIRY_MS, NOW_MS, WAD // 40, WAD // 10, -3 * WAD // 10, 0, WAD // 10)


def spec(strike_usd: int, option_type: OptionType = OptionType.CALL,
         expiry_ms: int = EXPIRY_MS, lot: int = LOT_NANOUNITS) -> OptionSpec:
    return OptionSpec(1, expiry_ms, strike_usd * 10**6, option_type, lot)


# --- marks -----------------------------------------------------------------------------------


def test_mark_is_black76_at_the_smile_volatility_of_the_strike() -> None:
    call = spec(110_000)
    mark = option_mark(call, INDEX_Q, SMILE, NOW_MS + 1_500)  # 1.5 s later: whole seconds
    sigma = implied_sigma_wad(SMILE, to_wad(INDEX_Q), to_wad(call.strike_quantums))
    expected, _ = black76_call_put(to_wad(INDEX_Q), to_wad(call.strike_quantums),
                                   30 * 86_400 - 2, sigma)
    assert mark.sigma_wad == sigma and mark.expiry_s == 30 * 86_400 - 2
    assert mark.valuation == expected
    assert mark.price_quantums == (expected.price + WAD_PER_QUANTUM // 2) // WAD_PER_QUANTUM


def test_call_and_put_marks_keep_parity_exactly() -> None:
    call = option_mark(spec(95_000), INDEX_Q, SMILE, NOW_MS)
    put = option_mark(spec(95_000, OptionType.PUT), INDEX_Q, SMILE, NOW_MS)
    assert call.valuation.price - put.valuation.price == to_wad(INDEX_Q - 95_000 * 10**6)
    assert call.valuation.delta - put.valuation.delta == WAD


def test_at_and_after_expiry_the_mark_is_intrinsic_without_a_smile() -> None:
    for valuation_ms in (EXPIRY_MS, EXPIRY_MS + DAY_MS, EXPIRY_MS - 999):
        call = option_mark(spec(90_000), INDEX_Q, None, valuation_ms)
        put = option_mark(spec(90_000, OptionType.PUT), INDEX_Q, None, valuation_ms)
        assert call.valuation.price == to_wad(10_000 * 10**6) and call.sigma_wad == 0
        assert put.valuation.price == 0 and put.expiry_s == 0


def test_live_option_needs_its_own_smile() -> None:
    with pytest.raises(ValueError, match="no smile"):
        option_mark(spec(90_000), INDEX_Q, None, NOW_MS)
    with pytest.raises(ValueError, match="does not belong"):
        option_mark(spec(90_000, expiry_ms=EXPIRY_MS + DAY_MS), INDEX_Q, SMILE, NOW_MS)


def test_expiry_seconds_round_down() -> None:
    assert expiry_seconds(10_000, 8_001) == 1
    assert expiry_seconds(10_000, 9_001) == 0
    assert expiry_seconds(10_000, 12_000) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strike_quantums": 0}, "strike"),
        ({"contract_size_nanounits": 0}, "contract_size"),
        pytest.param({"option_type": 3}, "OptionType", marks=pytest.mark.pure_only),
    ],
)
def test_spec_validation(kwargs: dict[str, int], message: str) -> None:
    fields: dict[str, object] = {"index_id": 1, "expiry_ms": EXPIRY_MS, "strike_quantums": 1,
                                 "option_type": OptionType.CALL, "contract_size_nanounits": 1}
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        OptionSpec(**fields)  # type: ignore[arg-type]


# --- settlement price ------------------------------------------------------------------------


def test_time_weighted_average_by_hand() -> None:
    # window [90 s, 100 s): 100 holds 4 s (carried in from 85 s), 110 holds 5 s, 130 holds 1 s;
    # the sample at expiry and the one after it are ignored
    samples = [(85_000, 100), (94_000, 110), (99_000, 130), (100_000, 999), (105_000, 5)]
    assert settlement_price_quantums(samples, 100_000, 10_000) == 108


def test_average_rounds_half_up() -> None:
    assert settlement_price_quantums([(90_000, 1), (95_000, 2)], 100_000, 10_000) == 2  # 1.5
    assert settlement_price_quantums([(90_000, 2), (95_000, 1)], 100_000, 10_000) == 2  # 1.5
    assert settlement_price_quantums([(90_000, 1), (96_000, 2)], 100_000, 10_000) == 1  # 1.4


def test_uncovered_start_averages_the_covered_part() -> None:
    # no sample before 95 s: (10 x 2 s + 20 x 3 s) / 5 s
    assert settlement_price_quantums([(95_000, 10), (97_000, 20)], 100_000, 10_000) == 16


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ([], "no index sample"),
        ([(100_000, 5)], "no index sample"),
        ([(95_000, 5), (95_000, 6)], "strictly increasing"),
        ([(96_000, 5), (95_000, 6)], "strictly increasing"),
        ([(95_000, 0)], "sample price"),
    ],
)
def test_settlement_price_rejects(samples: list[tuple[int, int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settlement_price_quantums(samples, 100_000, 10_000)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 5_000), st.integers(1, 10**12)), min_size=1, max_size=30),
    st.integers(0, 20_000),
)
def test_average_lies_between_the_prices_in_effect(
    steps: list[tuple[int, int]], first_ms: int
) -> None:
    samples, clock = [], first_ms
    for gap, price in steps:
        samples.append((clock, price))
        clock += gap
    expiry_ms, window_ms = 60_000, 30_000
    in_effect = [p for i, (t, p) in enumerate(samples)
                 if t < expiry_ms and (i + 1 == len(samples) or samples[i + 1][0] > 30_000)]
    if not in_effect:
        with pytest.raises(ValueError):
            settlement_price_quantums(samples, expiry_ms, window_ms)
        return
    price = settlement_price_quantums(samples, expiry_ms, window_ms)
    assert min(in_effect) <= price <= max(in_effect)


# --- cashflows -------------------------------------------------------------------------------


def test_payoffs() -> None:
    assert payoff_quantums(spec(100_000), 103_500 * 10**6) == 3_500 * 10**6
    assert payoff_quantums(spec(100_000), 99_000 * 10**6) == 0
    assert payoff_quantums(spec(100_000, OptionType.PUT), 99_000 * 10**6) == 1_000 * 10**6
    assert payoff_quantums(spec(100_000, OptionType.PUT), 100_000 * 10**6) == 0


def test_settlement_by_hand() -> None:
    # payoff 3 quantums per unit; a lot of 0.3333 units is worth 0.9999 quantums
    option = OptionSpec(1, EXPIRY_MS, 100, OptionType.CALL, 333_300_000)
    result = settle_positions(option, 103, [1, 2, -3])
    assert result.payoff_quantums == 3
    # long 1: 0.9999 -> 0; long 2: 1.9998 -> 1; short 3: 2.9997 -> pays 3
    assert result.cashflows_quantums == (0, 1, -3)
    assert result.residual_quantums == 2


def test_settlement_rejects_unbalanced_open_interest() -> None:
    with pytest.raises(ValueError, match="net to zero"):
        settle_positions(spec(100_000), INDEX_Q, [1, -2])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(-10**9, 10**9), min_size=1, max_size=40),
    st.integers(1, 10**12),
    st.integers(1, 10**12),
    st.integers(1, 10**12),
    st.sampled_from(OptionType),
)
def test_cashflows_net_to_zero_with_a_bounded_residual(
    sizes: list[int], strike_q: int, settlement_q: int, lot: int, option_type: OptionType
) -> None:
    sizes = [*sizes, -sum(sizes)]
    option = OptionSpec(1, EXPIRY_MS, strike_q, option_type, lot)
    result = settle_positions(option, settlement_q, sizes)
    assert sum(result.cashflows_quantums) + result.residual_quantums == 0
    assert 0 <= result.residual_quantums < max(1, sum(1 for s in sizes if s))
    # longs receive the exact value rounded down, shorts pay it rounded up: both are the floor
    # of the signed exact cashflow, within one quantum of it
    for size, cash in zip(sizes, result.cashflows_quantums, strict=True):
        exact = Fraction(size * lot * result.payoff_quantums, 10**9)
        assert cash == math.floor(exact)

"""Market-maker protection: triggers, window expiry, freezes, bounds, and a reference model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.execution.options.mmp import MmpBook, MmpConfig, MmpWindow

UNIT = 10**9  # one unit of the underlying, in nanounits


def window(**overrides: int | None) -> MmpWindow:
    fields: dict[str, int | None] = {"window_ms": 1_000, "frozen_ms": 5_000,
                                     "quantity_limit_nanounits": 10 * UNIT}
    fields.update(overrides)
    return MmpWindow(MmpConfig(**fields))  # type: ignore[arg-type]


def test_quantity_limit_triggers_when_exceeded_not_when_reached() -> None:
    mmp = window()
    assert mmp.record_fill(0, 4 * UNIT, 0, 0) is False
    assert mmp.record_fill(10, -6 * UNIT, 0, 0) is False  # gross 10 == limit: not exceeded
    assert mmp.record_fill(20, UNIT, 0, 0) is True  # gross 11 > 10
    assert mmp.is_frozen(20) and mmp.frozen_until_ms == 5_020


def test_freeze_ignores_fills_then_starts_from_an_empty_window() -> None:
    mmp = window()
    assert mmp.record_fill(0, 11 * UNIT, 0, 0) is True
    assert mmp.record_fill(100, 50 * UNIT, 0, 0) is False  # frozen: not counted
    assert mmp.is_frozen(5_000 - 1) and not mmp.is_frozen(5_000)
    assert mmp.measures(5_000) == (0, 0, 0, 0)
    assert mmp.record_fill(5_000, 9 * UNIT, 0, 0) is False


def test_fills_leave_the_window_after_window_ms() -> None:
    mmp = window()
    mmp.record_fill(0, 6 * UNIT, 0, 0)
    mmp.record_fill(999, 4 * UNIT, 0, 0)
    # at 1,000 the fill at 0 is out ((now - window, now]); 4 + 6 = 10 is not above the limit
    assert mmp.record_fill(1_000, 6 * UNIT, 0, 0) is False
    assert mmp.measures(1_000) == (2, 10 * UNIT, 0, 0)
    assert mmp.record_fill(1_500, UNIT, 0, 0) is True  # 4 + 6 + 1 = 11 within (500, 1500]


def test_delta_limit_nets_offsetting_fills() -> None:
    mmp = window(quantity_limit_nanounits=None, delta_limit_nanounits=10 * UNIT)
    for t in range(5):  # +8, -8, +8, -8, +8: net delta never above 8
        sign = 1 if t % 2 == 0 else -1
        assert mmp.record_fill(t, 0, sign * 8 * UNIT, 0) is False
    assert mmp.record_fill(10, 0, 3 * UNIT, 0) is True  # net 11


def test_vega_limit_is_absolute_in_both_directions() -> None:
    mmp = window(quantity_limit_nanounits=None, vega_limit_quantums=1_000)
    assert mmp.record_fill(0, 0, 0, -600) is False
    assert mmp.record_fill(1, 0, 0, -401) is True


def test_frozen_ms_zero_freezes_until_reset() -> None:
    mmp = window(frozen_ms=0)
    assert mmp.record_fill(0, 20 * UNIT, 0, 0) is True
    assert mmp.is_frozen(10**12) and mmp.frozen_until_ms is None
    mmp.reset()
    assert not mmp.is_frozen(10**12)
    assert mmp.record_fill(10**12, UNIT, 0, 0) is False


def test_a_full_ring_triggers_so_no_counted_fill_is_ever_dropped() -> None:
    mmp = window(fills_in_window_max=3)
    assert mmp.record_fill(0, 1, 0, 0) is False
    assert mmp.record_fill(1, 1, 0, 0) is False
    assert mmp.record_fill(2, 1, 0, 0) is True


def test_time_must_not_go_backwards() -> None:
    mmp = window()
    mmp.record_fill(100, UNIT, 0, 0)
    with pytest.raises(ValueError, match="before the last"):
        mmp.record_fill(99, UNIT, 0, 0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quantity_limit_nanounits": None}, "at least one limit"),
        ({"window_ms": 0}, "window_ms"),
        ({"frozen_ms": -1}, "frozen_ms"),
        ({"quantity_limit_nanounits": -1}, "non-negative"),
        ({"fills_in_window_max": 0}, "fills_in_window_max"),
    ],
)
def test_config_validation(overrides: dict[str, int | None], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        window(**overrides)


def test_book_isolates_accounts_and_underlyings() -> None:
    book = MmpBook()
    config = MmpConfig(window_ms=1_000, frozen_ms=500, quantity_limit_nanounits=UNIT)
    book.configure((b"maker", 0), 1, config)
    book.configure((b"maker", 0), 2, config)
    assert book.record_fill((b"other", 0), 1, 0, 100 * UNIT, 0, 0) is False  # not configured
    assert book.record_fill((b"maker", 0), 1, 0, 2 * UNIT, 0, 0) is True
    assert book.is_frozen((b"maker", 0), 1, 10)
    assert not book.is_frozen((b"maker", 0), 2, 10)
    assert book.record_fill((b"maker", 0), 2, 10, UNIT, 0, 0) is False
    assert book.keys() == [((b"maker", 0), 1), ((b"maker", 0), 2)]


fills = st.lists(
    st.tuples(
        st.integers(0, 400),  # time step
        st.integers(-5 * UNIT, 5 * UNIT),
        st.integers(-5 * UNIT, 5 * UNIT),
        st.integers(-3_000, 3_000),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(fills)
def test_matches_a_naive_reference_model(stream: list[tuple[int, int, int, int]]) -> None:
    config = MmpConfig(window_ms=1_000, frozen_ms=700, quantity_limit_nanounits=12 * UNIT,
                       delta_limit_nanounits=7 * UNIT, vega_limit_quantums=5_000,
                       fills_in_window_max=8)
    mmp, replay = MmpWindow(config), MmpWindow(config)
    kept: list[tuple[int, int, int, int]] = []  # the model: every counted fill, recomputed
    frozen_until = -1
    now = 0
    for step, quantity, delta, vega in stream:
        now += step
        triggered = mmp.record_fill(now, quantity, delta, vega)
        assert replay.record_fill(now, quantity, delta, vega) is triggered  # deterministic
        if now < frozen_until:
            assert triggered is False
            continue
        kept = [f for f in kept if f[0] > now - config.window_ms]
        kept.append((now, quantity, delta, vega))
        expected = (len(kept) >= 8 or sum(abs(f[1]) for f in kept) > 12 * UNIT
                    or abs(sum(f[2] for f in kept)) > 7 * UNIT
                    or abs(sum(f[3] for f in kept)) > 5_000)
        assert triggered is expected
        if expected:
            kept, frozen_until = [], now + config.frozen_ms
    assert mmp.state() == replay.state()

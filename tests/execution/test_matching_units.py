"""Unit properties of matching's pure helpers."""

from hypothesis import given
from hypothesis import strategies as st

from rollbook.execution.matching import _largest_fill_under_cap, _oi_change_lots

sizes = st.integers(min_value=-500, max_value=500)


@given(taker=sizes, maker=sizes, is_buy=st.booleans(),
       fill_max=st.integers(min_value=0, max_value=300),
       room=st.integers(min_value=0, max_value=400))
def test_largest_fill_under_cap_matches_brute_force(taker: int, maker: int, is_buy: bool,
                                                    fill_max: int, room: int) -> None:
    def change(fill: int) -> int:
        return _oi_change_lots(taker, maker, fill if is_buy else -fill)

    expected = 0
    for fill in range(fill_max + 1):
        if change(fill) > room:
            break  # convexity: once a fill does not fit, no larger one does
        expected = fill
    assert all(change(f) > room for f in range(expected + 1, fill_max + 1))
    assert _largest_fill_under_cap(taker, maker, is_buy, fill_max, room) == expected


def test_open_interest_change_counts_only_long_exposure() -> None:
    assert _oi_change_lots(0, 0, 10) == 10  # both open: one new long, one new short
    assert _oi_change_lots(0, 10, 10) == 0  # the maker's long passes to the taker
    assert _oi_change_lots(-10, 10, 10) == -10  # both close
    assert _oi_change_lots(-5, 0, 10) == 5  # the taker flips to +5 long; the maker goes short

"""The order book's native binary search finds what ``bisect`` finds.

``OrderBook`` keeps each side's prices in an ascending list and places and drops levels with
``state._bisect_left`` (a native loop in the compiled build instead of a Python-level call of
``bisect``); both builds run this.
"""

from bisect import bisect_left

from hypothesis import given
from hypothesis import strategies as st

from rollbook.execution.state import _bisect_left

prices_lists = st.lists(st.integers(min_value=1, max_value=2**48), max_size=64).map(sorted)


@given(prices_lists, st.integers(min_value=0, max_value=2**48 + 1))
def test_bisect_left_matches_the_standard_library(prices: list[int], price_ticks: int) -> None:
    assert _bisect_left(prices, price_ticks) == bisect_left(prices, price_ticks)


@given(prices_lists)
def test_bisect_left_finds_every_listed_price(prices: list[int]) -> None:
    for index, price_ticks in enumerate(prices):
        found = _bisect_left(prices, price_ticks)
        assert prices[found] == price_ticks and found <= index

"""The Python reference model on its own: leaf round trips, the floor division, the payouts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollbook.execution.margin import position_value_quantums
from rollbook.settlement import reference as ref

from .conftest import account_leaf, market_leaf, withdrawal_leaf

OWNER = bytes(range(1, 21))
int256 = st.integers(ref.INT256_MIN, ref.INT256_MAX)
uint256 = st.integers(0, ref.UINT256_MAX)


@given(numerator=int256, denominator=st.integers(1, 10**30))
def test_div_floor_signed_is_python_floor_division(numerator: int, denominator: int) -> None:
    assert ref.div_floor_signed(numerator, denominator) == numerator // denominator


def test_div_floor_signed_rounds_toward_minus_infinity() -> None:
    assert [ref.div_floor_signed(n, 10**9) for n in (-1, -(10**9), -(10**9) - 1, 1, 0)] == [
        -1, -1, -2, 0, 0]
    with pytest.raises(ValueError):
        ref.div_floor_signed(1, 0)
    with pytest.raises(OverflowError):
        ref.div_floor_signed(ref.INT256_MAX + 1, 1)


@given(collaterals=st.lists(st.integers(-(10**15), 10**15), min_size=1, max_size=8),
       positions=st.lists(st.tuples(st.sampled_from((1, 2)), st.integers(-(10**9), 10**9)),
                          max_size=32),
       prices=st.tuples(st.integers(0, 10**12), st.integers(0, 10**12)),
       lots=st.tuples(st.integers(1, 10**12), st.integers(1, 10**12)))
def test_escape_equity_is_the_stf_formula(collaterals: list[int],
                                          positions: list[tuple[int, int]],
                                          prices: tuple[int, int],
                                          lots: tuple[int, int]) -> None:
    account = ref.decode_subaccount_leaf(account_leaf(OWNER, 0, tuple(collaterals),
                                                      tuple(positions)))
    markets = {1: ref.EscapeMarket(prices[0], lots[0]), 2: ref.EscapeMarket(prices[1], lots[1])}
    expected = sum(collaterals) + sum(
        position_value_quantums(size, prices[market - 1], lots[market - 1])
        for market, size in positions)
    assert ref.escape_equity(account, markets) == expected
    assert ref.escape_claim(expected) == max(0, expected)


def test_escape_equity_raises_where_the_contract_reverts() -> None:
    markets = {1: ref.EscapeMarket(2**128, 2**128)}
    overflowing = ref.decode_subaccount_leaf(account_leaf(OWNER, 0, (0,), ((1, 1),)))
    with pytest.raises(OverflowError):
        ref.escape_equity(overflowing, markets)
    unregistered = ref.decode_subaccount_leaf(account_leaf(OWNER, 0, (0,), ((2, 1),)))
    with pytest.raises(KeyError):
        ref.escape_equity(unregistered, markets)


@given(pool=st.integers(0, 10**18), claims=st.lists(st.integers(1, 10**18), min_size=1,
                                                    max_size=20))
def test_escape_payouts_never_exceed_the_pool(pool: int, claims: list[int]) -> None:
    total = sum(claims)
    payouts = [ref.escape_payout(claim, pool, total) for claim in claims]
    if total <= pool:
        assert payouts == claims
    else:
        assert sum(payouts) <= pool
        assert all(payout <= claim for payout, claim in zip(payouts, claims, strict=True))


def test_deposit_totals() -> None:
    cumulative = ref.cumulative_deposits([5, 7, 11])
    assert cumulative == (0, 5, 12, 23)
    assert ref.uncredited_deposits(cumulative, 1) == 18
    assert ref.uncredited_deposits(cumulative, 3) == 0
    assert ref.escape_pool(100, 18) == 82 and ref.escape_pool(10, 18) == 0
    with pytest.raises(ValueError):
        ref.cumulative_deposits([ref.DEPOSIT_QUANTUMS_MAX + 1])
    with pytest.raises(ValueError):
        ref.uncredited_deposits(cumulative, 4)


@given(fields=st.tuples(uint256, uint256, uint256, uint256, uint256, uint256, uint256, int256,
                        int256, uint256, uint256, int256))
def test_market_leaf_round_trip(fields: tuple[int, ...]) -> None:
    market = ref.MarketLeaf(*fields)
    leaf = ref.encode_market_leaf(market)
    assert len(leaf) == ref.MARKET_LEAF_BYTES
    assert ref.decode_market_leaf(leaf) == market


@given(withdrawal_id=uint256, amount=uint256, subaccount=uint256, batch_index=uint256)
def test_withdrawal_leaf_round_trip(withdrawal_id: int, amount: int, subaccount: int,
                                    batch_index: int) -> None:
    withdrawal = ref.WithdrawalLeaf(withdrawal_id, OWNER, subaccount, amount, batch_index)
    leaf = ref.encode_withdrawal_leaf(withdrawal)
    assert len(leaf) == ref.WITHDRAWAL_LEAF_BYTES
    assert ref.decode_withdrawal_leaf(leaf) == withdrawal


def test_subaccount_leaf_at_the_bounds() -> None:
    leaf = account_leaf(OWNER, 7, tuple(range(-4, 4)), tuple((m, -m) for m in range(32)))
    assert len(leaf) == ref.SUBACCOUNT_LEAF_BYTES_MAX
    account = ref.decode_subaccount_leaf(leaf)
    assert ref.encode_subaccount_leaf(account) == leaf
    assert (account.owner, account.number, len(account.collaterals), len(account.positions)) == (
        OWNER, 7, ref.GROUPS_PER_SUBACCOUNT_MAX, ref.POSITIONS_PER_SUBACCOUNT_MAX)
    too_many = ref.SubaccountLeaf(OWNER, 0, account.collaterals,
                                  (*account.positions, account.positions[0]))
    with pytest.raises(ValueError):
        ref.encode_subaccount_leaf(too_many)


def test_decoders_reject_other_kinds_and_malformed_leaves() -> None:
    market, withdrawal = market_leaf(1, 2, 3), withdrawal_leaf(1, OWNER, 5)
    account = account_leaf(OWNER)
    for decode, leaf in ((ref.decode_market_leaf, withdrawal), (ref.decode_withdrawal_leaf, market),
                         (ref.decode_subaccount_leaf, market), (ref.decode_market_leaf, b"")):
        with pytest.raises(ValueError):
            decode(leaf)
    with pytest.raises(ValueError):  # a static leaf of the wrong length
        ref.decode_withdrawal_leaf(withdrawal + bytes(32))
    dirty_owner = withdrawal[:64] + b"\x01" + withdrawal[65:]  # non-zero address padding
    with pytest.raises(ValueError):
        ref.decode_withdrawal_leaf(dirty_owner)
    assert ref.leaf_kind(account) == ref.LEAF_KIND_SUBACCOUNT

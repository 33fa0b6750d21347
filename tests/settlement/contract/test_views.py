"""Views, constants and the constructor; the TestUSDC token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boa
import pytest

from rollbook.execution import config
from rollbook.settlement import reference as ref

from .conftest import (
    ESCAPE_PERIOD_S,
    FORCED_DEADLINE_S,
    WINDOW_S,
    LeafTree,
    System,
)

CONSTANTS = (
    "TREE_DEPTH", "LEAF_KIND_MARKET", "LEAF_KIND_SUBACCOUNT", "LEAF_KIND_WITHDRAWAL",
    "GROUPS_PER_SUBACCOUNT_MAX", "POSITIONS_PER_SUBACCOUNT_MAX", "MARKET_LEAF_BYTES",
    "WITHDRAWAL_LEAF_BYTES", "SUBACCOUNT_LEAF_BYTES_MAX", "DEPOSIT_QUANTUMS_MIN",
    "DEPOSIT_QUANTUMS_MAX", "SUBACCOUNT_NUMBER_MAX", "FORCED_WITHDRAWAL_QUANTUMS_MIN",
    "FORCED_WITHDRAWAL_QUANTUMS_MAX", "BATCH_DATA_BYTES_MAX", "CHALLENGERS_MAX", "DURATION_S_MAX",
)


def test_constants_match_the_reference_and_the_stf(system: System) -> None:
    for name in CONSTANTS:
        assert getattr(system.settlement, name)() == getattr(ref, name), name
    assert ref.GROUPS_PER_SUBACCOUNT_MAX == config.GROUPS_PER_SUBACCOUNT_MAX
    assert ref.POSITIONS_PER_SUBACCOUNT_MAX == config.POSITIONS_PER_SUBACCOUNT_MAX
    assert ref.SUBACCOUNT_NUMBER_MAX == config.SUBACCOUNT_NUMBER_MAX
    fields = config.VenueConfig.__dataclass_fields__
    assert fields["deposit_quantums_max"].default == ref.DEPOSIT_QUANTUMS_MAX


def test_constructor_sets_the_immutables(system: System) -> None:
    s = system.settlement
    assert s.token() == system.token.address
    assert s.operator() == system.operator
    assert s.genesis_root() == system.trees[0].root
    assert (s.challenge_window_s(), s.forced_deadline_s(), s.escape_period_s()) == (
        WINDOW_S, FORCED_DEADLINE_S, ESCAPE_PERIOD_S)
    assert s.challengers(0) == system.challenger
    assert s.is_challenger(system.challenger) and not s.is_challenger(system.operator)
    assert s.latest_batch() == 0 and s.latest_finalized_batch() == 0 and s.is_finalized(0)
    assert tuple(s.batch(0)) == (system.trees[0].root, bytes(32), 0, 0, boa.env.timestamp)
    assert not s.frozen() and s.deposit_count() == 0 and s.forced_request_count() == 0


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"token": "0x" + "00" * 20}, "Settlement: zero token"),
    ({"operator": "0x" + "00" * 20}, "Settlement: zero operator"),
    ({"challengers": ["0x" + "00" * 20]}, "Settlement: zero challenger"),
    ({"challenge_window_s": 0}, "Settlement: zero challenge window"),
    ({"forced_deadline_s": 0}, "Settlement: zero forced deadline"),
    ({"escape_period_s": 0}, "Settlement: zero escape period"),
    ({"challenge_window_s": ref.DURATION_S_MAX + 1}, "Settlement: challenge window too long"),
    ({"forced_deadline_s": ref.DURATION_S_MAX + 1}, "Settlement: forced deadline too long"),
    ({"escape_period_s": ref.DURATION_S_MAX + 1}, "Settlement: escape period too long"),
])
def test_constructor_rejects_bad_parameters(make_system: Callable[..., System],
                                            overrides: dict[str, Any], reason: str) -> None:
    with boa.reverts(reason):
        make_system(**overrides)


def test_constructor_accepts_an_empty_challenger_list(make_system: Callable[..., System]) -> None:
    system = make_system(challengers=[])
    assert not system.settlement.is_challenger(system.challenger)


def test_finality_views_follow_the_window(system: System) -> None:
    s = system.settlement
    system.submit(LeafTree(nonce=1))
    assert s.latest_batch() == 1 and not s.is_finalized(1) and s.latest_finalized_batch() == 0
    boa.env.time_travel(seconds=WINDOW_S - 1)
    assert not s.is_finalized(1)
    boa.env.time_travel(seconds=1)
    assert s.is_finalized(1) and s.latest_finalized_batch() == 1
    assert not s.is_finalized(2)  # no such batch


def test_batch_rejects_an_index_above_latest(system: System) -> None:
    system.submit(LeafTree(nonce=1))
    with boa.reverts("Settlement: no such batch"):
        system.settlement.batch(2)


def test_deposit_views_reject_unknown_ids(system: System) -> None:
    system.deposit(system.alice, 9)
    assert system.settlement.cumulative_deposited(0) == 0
    with boa.reverts("Settlement: no such deposit"):
        system.settlement.deposit_info(0)
    with boa.reverts("Settlement: no such deposit"):
        system.settlement.deposit_info(2)
    with boa.reverts("Settlement: no such deposit"):
        system.settlement.cumulative_deposited(2)


def test_escape_views(system: System) -> None:
    s = system.settlement
    with boa.reverts("Settlement: not frozen"):
        s.escape_ends_at()
    assert not s.freezable()
    system.freeze()
    assert s.escape_ends_at() == s.frozen_at() + ESCAPE_PERIOD_S
    assert s.escape_payout(123) == 123  # nothing registered: everything fits


def test_escape_equity_view_rejects_another_kind_of_leaf(system: System) -> None:
    with boa.reverts("Settlement: not a subaccount leaf"):
        system.settlement.escape_equity(LeafTree().leaves[0])


def test_token_is_a_plain_erc20(system: System) -> None:
    token, alice, bob = system.token, system.alice, system.bob
    assert (token.name(), token.symbol(), token.decimals()) == ("Test USD Coin", "tUSDC", 6)
    supply = token.totalSupply()
    token.mint(bob, 5)  # anyone may mint
    assert token.totalSupply() == supply + 5
    with boa.env.prank(alice):
        assert token.transfer(bob, 7)
        with boa.reverts("TestUSDC: transfer amount exceeds balance"):
            token.transfer(bob, token.balanceOf(alice) + 1)
        with boa.reverts("TestUSDC: transfer to the zero address"):
            token.transfer("0x" + "00" * 20, 1)
        token.approve(bob, 10)
    with boa.env.prank(bob):
        token.transferFrom(alice, bob, 4)
        assert token.allowance(alice, bob) == 6
        with boa.reverts("TestUSDC: insufficient allowance"):
            token.transferFrom(alice, bob, 7)
    # the infinite allowance the settlement holds is never decreased
    system.deposit(alice, 3)
    assert token.allowance(alice, system.settlement.address) == 2**256 - 1
    with boa.reverts("TestUSDC: mint to the zero address"):
        token.mint("0x" + "00" * 20, 1)

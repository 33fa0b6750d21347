"""deposit(subaccount, amount) -> deposit_id."""

from __future__ import annotations

import boa

from rollbook.settlement import reference as ref

from .conftest import System, events, tx_gas

# transaction gas; measured on the embedded py-evm chain (Prague): 72,932 for a deposit, 107,132
# for the very first one (deposit_count leaves zero)
DEPOSIT_GAS_MAX = 80_000
FIRST_DEPOSIT_GAS_MAX = 110_000


def test_deposit_pulls_tokens_and_numbers_ids(system: System) -> None:
    s, token = system.settlement, system.token
    before = token.balanceOf(system.alice)
    assert system.deposit(system.alice, 1_000_000, subaccount=3) == 1
    logs = events(s, "Deposited")
    assert len(logs) == 1
    assert (logs[0].deposit_id, logs[0].owner, logs[0].subaccount, logs[0].amount) == (
        1, system.alice, 3, 1_000_000)
    assert system.deposit(system.bob, 5) == 2
    assert s.deposit_count() == 2
    assert token.balanceOf(s) == 1_000_005
    assert token.balanceOf(system.alice) == before - 1_000_000
    assert s.deposit_info(1) == (system.alice, 1_000_000)
    assert s.deposit_info(2) == (system.bob, 5)
    assert [s.cumulative_deposited(i) for i in range(3)] == [0, 1_000_000, 1_000_005]


def test_deposit_bounds_are_inclusive(system: System) -> None:
    system.deposit(system.alice, ref.DEPOSIT_QUANTUMS_MIN, subaccount=0)
    system.deposit(system.alice, ref.DEPOSIT_QUANTUMS_MAX, subaccount=ref.SUBACCOUNT_NUMBER_MAX)
    assert system.settlement.deposit_info(2) == (system.alice, ref.DEPOSIT_QUANTUMS_MAX)


def test_deposit_rejects_out_of_range_subaccount(system: System) -> None:
    with boa.env.prank(system.alice):
        system.assert_reverts("Settlement: subaccount out of range",
                              lambda: system.settlement.deposit(ref.SUBACCOUNT_NUMBER_MAX + 1, 1))


def test_deposit_rejects_zero_amount(system: System) -> None:
    with boa.env.prank(system.alice):
        system.assert_reverts("Settlement: deposit below minimum",
                              lambda: system.settlement.deposit(0, 0))


def test_deposit_rejects_amount_above_maximum(system: System) -> None:
    with boa.env.prank(system.alice):
        system.assert_reverts("Settlement: deposit above maximum",
                              lambda: system.settlement.deposit(0, ref.DEPOSIT_QUANTUMS_MAX + 1))


def test_deposit_rejects_when_frozen(system: System) -> None:
    system.freeze()
    with boa.env.prank(system.alice):
        system.assert_reverts("Settlement: frozen", lambda: system.settlement.deposit(0, 1))


def test_deposit_without_allowance_moves_nothing(system: System) -> None:
    with boa.env.prank(system.alice):
        system.token.approve(system.settlement.address, 0)
        system.assert_reverts("TestUSDC: insufficient allowance",
                              lambda: system.settlement.deposit(0, 1))


def test_deposit_gas(system: System) -> None:
    s = system.settlement
    assert tx_gas(s, "deposit", 0, 7, sender=system.alice) <= FIRST_DEPOSIT_GAS_MAX
    assert tx_gas(s, "deposit", 1, 1_000_000, sender=system.bob) <= DEPOSIT_GAS_MAX

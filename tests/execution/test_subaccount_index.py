"""``State.primary_subaccounts``: the derived owner -> subaccount-0 index that
``orders.require_subaccount`` reads agrees with ``owners`` after every way a subaccount is made
(genesis, deposits, transfers), and a transaction naming a missing subaccount is still refused."""

from __future__ import annotations

from conftest import ALICE, BOB, CAROL, USDC, Venue, assert_rejected
from rollbook.execution import ErrorCode, Transfer, Withdraw
from rollbook.execution.state import INSURANCE_OWNER, PRIMARY_SUBACCOUNT, State


def expected_primary_index(state: State) -> dict[bytes, object]:
    """What ``owners`` (itself kept with ``subaccounts``) says the index holds."""
    return {owner: numbers[PRIMARY_SUBACCOUNT] for owner, numbers in state.owners.items()
            if PRIMARY_SUBACCOUNT in numbers}


def assert_index_in_sync(state: State) -> None:
    index = state.primary_subaccounts
    expected = expected_primary_index(state)
    assert index.keys() == expected.keys()
    assert all(index[owner] is expected[owner] for owner in expected)  # the same records
    assert all(state.subaccounts[(owner, PRIMARY_SUBACCOUNT)] is sub
               for owner, sub in index.items())


def test_genesis_indexes_the_insurance_fund_only() -> None:
    venue = Venue()
    assert_index_in_sync(venue.state)
    assert list(venue.state.primary_subaccounts) == [INSURANCE_OWNER]


def test_deposits_and_transfers_keep_the_index_in_sync() -> None:
    venue = Venue()
    # deposits: to subaccount 0, and to another number only (BOB has no subaccount 0 yet)
    venue.run_ok(venue.deposit(ALICE, 1_000 * USDC), venue.deposit(BOB, 1_000 * USDC, 3))
    assert_index_in_sync(venue.state)
    assert BOB not in venue.state.primary_subaccounts
    # BOB's subaccount 0 does not exist: refused although BOB has another
    assert_rejected(venue.state, Withdraw(BOB, PRIMARY_SUBACCOUNT, USDC),
                    ErrorCode.ACCOUNT_NOT_FOUND)
    # transfers: into a new subaccount 0 of an existing owner and of a new one, and into a
    # new non-zero number
    venue.run_ok(Transfer(BOB, 3, BOB, PRIMARY_SUBACCOUNT, USDC),
                 Transfer(ALICE, PRIMARY_SUBACCOUNT, CAROL, PRIMARY_SUBACCOUNT, USDC),
                 Transfer(ALICE, PRIMARY_SUBACCOUNT, ALICE, 1, USDC))
    assert_index_in_sync(venue.state)
    assert {ALICE, BOB, CAROL} <= venue.state.primary_subaccounts.keys()
    venue.run_ok(Withdraw(BOB, PRIMARY_SUBACCOUNT, USDC))  # now found, through the index


def test_the_insurance_fund_is_not_a_trader() -> None:
    venue = Venue()
    assert_rejected(venue.state, Withdraw(INSURANCE_OWNER, PRIMARY_SUBACCOUNT, 1),
                    ErrorCode.ACCOUNT_NOT_FOUND)

"""request_forced_withdrawal(subaccount, amount) -> request_id."""

from __future__ import annotations

import boa

from rollbook.settlement import reference as ref

from .conftest import System, events, tx_gas

# transaction gas; measured on the embedded py-evm chain (Prague): 70,349 for the first request
# (forced_request_count leaves zero), 53,249 after
FORCED_REQUEST_GAS_MAX = 75_000


def _request(system: System, subaccount: int, amount: int) -> None:
    with boa.env.prank(system.alice):
        system.settlement.request_forced_withdrawal(subaccount, amount)


def test_request_numbers_ids_and_records_the_time(system: System) -> None:
    s = system.settlement
    assert system.request_forced(system.alice, 500, subaccount=2) == 1
    (log,) = events(s, "ForcedWithdrawalRequested")
    assert (log.request_id, log.owner, log.subaccount, log.amount, log.requested_at) == (
        1, system.alice, 2, 500, boa.env.timestamp)
    boa.env.time_travel(seconds=10)
    assert system.request_forced(system.bob, ref.FORCED_WITHDRAWAL_QUANTUMS_MAX,
                                 subaccount=ref.SUBACCOUNT_NUMBER_MAX) == 2
    assert s.forced_request_count() == 2
    assert s.forced_requested_at(2) == s.forced_requested_at(1) + 10
    assert system.token.balanceOf(s) == 0  # a request moves no tokens


def test_request_rejects_when_frozen(system: System) -> None:
    system.freeze()
    system.assert_reverts("Settlement: frozen", lambda: _request(system, 0, 1))


def test_request_rejects_out_of_range_subaccount(system: System) -> None:
    system.assert_reverts("Settlement: subaccount out of range",
                          lambda: _request(system, ref.SUBACCOUNT_NUMBER_MAX + 1, 1))


def test_request_rejects_zero_amount(system: System) -> None:
    system.assert_reverts("Settlement: forced withdrawal below minimum",
                          lambda: _request(system, 0, 0))


def test_request_rejects_amount_above_maximum(system: System) -> None:
    system.assert_reverts(
        "Settlement: forced withdrawal above maximum",
        lambda: _request(system, 0, ref.FORCED_WITHDRAWAL_QUANTUMS_MAX + 1),
        lambda: system.settlement.forced_requested_at(1))


def test_request_gas(system: System) -> None:
    assert tx_gas(system.settlement, "request_forced_withdrawal", 0, 1,
                  sender=system.alice) <= FORCED_REQUEST_GAS_MAX

"""The operator disappears: forced withdrawal, deadline, freeze, and every account exits.

After some trading (open positions, a liquidation, queued withdrawals), the operator stops. A
user's forced withdrawal is never included; past the deadline anyone freezes the contract. A
verifier started from nothing (only the chain and the venue configuration) rebuilds the state at
the escape root and builds every proof (``rollbook.verifier.escape``); nobody asks the operator
for anything. Every account registers and is paid exactly once, with the equity the Python
reference model computes (equal to the STF's own equity at that batch); queued withdrawals are
paid from the pool too; a deposit the escape root never credited is refunded; the payouts
never exceed the contract's balance.
"""

from __future__ import annotations

import pytest
from verifier_helpers import (
    CHALLENGER,
    ESCAPE_PERIOD_S,
    FORCED_DEADLINE_S,
    PRICE_QUANTUMS,
    USDC,
    WINDOW_S,
    TestOperator,
    address,
    venue_life,
)

from rollbook.execution import Withdraw
from rollbook.settlement import Chain
from rollbook.settlement import reference as ref
from rollbook.settlement.chain import RevertError
from rollbook.verifier.escape import register_account, register_markets, register_withdrawal


def test_every_account_exits_through_the_escape_hatch(chain: Chain) -> None:
    accounts = chain.dev_accounts
    stranger = accounts[CHALLENGER]
    operator = TestOperator(chain)
    traders = list(accounts[2:10])
    operator.fund(traders[0], 5_000_000 * USDC)
    operator.fund(traders[1], 13_000 * USDC)
    for trader in traders[2:]:
        operator.fund(trader, 200_000 * USDC)
    operator.run(system=[operator.oracle(PRICE_QUANTUMS)])
    venue_life(operator, traders, batches=4, signed_per_batch=30, advance_ms=60_000,
               crash_batch=2)
    settlement, token = operator.settlement, operator.token
    chain.increase_time(WINDOW_S + 1)
    escape_index = operator.state.batch_index
    assert settlement.latest_finalized_batch() == escape_index
    # the operator is gone; one more deposit arrives that no batch will ever credit
    late_depositor = traders[3]
    operator.fund(late_depositor, 777 * USDC)
    late_deposit_id = settlement.deposit_count()
    request = settlement.request_forced_withdrawal(0, 1_000 * USDC, sender=traders[2])
    chain.increase_time(FORCED_DEADLINE_S + 1)
    assert settlement.freezable()
    frozen = settlement.freeze(sender=stranger)
    assert frozen.escape_batch == escape_index and request.request_id == 1

    verifier = operator.verifier()
    report = verifier.sync()
    assert report.frozen and report.escape_batch == escape_index and not report.divergences
    kit = verifier.escape_kit()
    assert kit.root == frozen.escape_root == operator.commitment.root

    balance = token.balance_of(settlement.address)
    register_markets(settlement, kit, sender=stranger)
    claims: dict[bytes, int] = {}
    for account in kit.accounts:
        # the reference model's equity is the STF's own at the escape batch
        assert account.equity_quantums == operator.equity(account.owner, account.subaccount)
        registered = register_account(settlement, kit, account.owner, account.subaccount,
                                      sender=stranger)
        if account.claim_quantums > 0:
            assert registered is not None and registered.claim == account.claim_quantums
            claims[account.owner] = registered.claim
        else:
            assert registered is None
    assert register_account(settlement, kit, kit.accounts[0].owner,
                            sender=stranger) is None  # once per account
    queued = {}
    for withdrawal in kit.withdrawals:
        registered = register_withdrawal(settlement, kit, withdrawal.withdrawal_id,
                                         sender=stranger)
        if registered is not None:
            queued[withdrawal.withdrawal_id] = (withdrawal.owner, registered.claim)
    assert queued, "the venue life queues withdrawals nobody claimed"
    assert len(claims) >= len(traders) - 1
    with pytest.raises(RevertError):  # payouts wait for the end of the escape period
        settlement.escape_withdraw_account(traders[0].address, 0, sender=stranger)

    chain.increase_time(ESCAPE_PERIOD_S + 1)
    pool, total = settlement.escape_pool(), settlement.escape_total_claims()
    assert total == sum(claims.values()) + sum(claim for _, claim in queued.values())
    paid_total = 0
    for owner, claim in claims.items():
        checksum = next(a.address for a in traders if address(a) == owner)
        before = token.balance_of(checksum)
        paid = settlement.escape_withdraw_account(checksum, 0, sender=stranger)
        assert paid.amount == ref.escape_payout(claim, pool, total)
        assert token.balance_of(checksum) == before + paid.amount
        paid_total += paid.amount
        with pytest.raises(RevertError):  # each account exactly once
            settlement.escape_withdraw_account(checksum, 0, sender=stranger)
    for withdrawal_id, (_, claim) in queued.items():
        paid = settlement.escape_withdraw_withdrawal(withdrawal_id, sender=stranger)
        assert paid.amount == ref.escape_payout(claim, pool, total)
        paid_total += paid.amount
        with pytest.raises(RevertError):
            settlement.escape_withdraw_withdrawal(withdrawal_id, sender=stranger)
    refunded = settlement.refund_deposit(late_deposit_id, sender=stranger)
    assert refunded.amount == 777 * USDC
    assert paid_total <= pool <= balance
    assert paid_total + refunded.amount <= balance
    assert token.balance_of(settlement.address) == balance - paid_total - refunded.amount
    verifier.close()


def test_a_freeze_rolls_the_verifier_back_to_the_escape_batch(embedded_chain: Chain) -> None:
    """A valid batch still inside its window when the contract freezes is discarded: the
    verifier, which had verified it, rolls back to the escape batch and serves that state."""
    chain = embedded_chain
    operator = TestOperator(chain)
    trader, other = chain.dev_accounts[2], chain.dev_accounts[3]
    operator.fund(trader, 10_000 * USDC)
    operator.fund(other, 10_000 * USDC)
    operator.run(system=[operator.oracle(PRICE_QUANTUMS)])
    chain.increase_time(WINDOW_S + 1)
    verifier = operator.verifier()
    verifier.sync()
    escape_state = operator.snapshot()
    operator.settlement.request_forced_withdrawal(0, 1_000 * USDC, sender=trader)
    # batch 2 leaves the request out while that is still allowed (before the deadline) ...
    chain.increase_time(FORCED_DEADLINE_S - 20)
    operator.run([operator.sign(other, Withdraw(address(other), 0, 5 * USDC))],
                 include_l1=False)
    assert verifier.sync().roots_matched == 2 and verifier.batch_index == 2
    # ... and the deadline passes while batch 2 is inside its window: freeze discards it
    chain.increase_time(30)
    frozen = operator.settlement.freeze(sender=other)
    assert frozen.escape_batch == 1
    report = verifier.sync()
    assert report.frozen and report.rollbacks == 1 and not report.divergences
    kit = verifier.escape_kit()
    operator.restore(escape_state)
    assert (kit.batch_index, kit.root) == (1, operator.commitment.root)
    assert kit.account(address(trader)).claim_quantums == 10_000 * USDC
    verifier.close()

"""The adversarial operator, end to end, on the embedded EVM and on anvil.

Each test runs the same venue (deposits, a trade, a withdrawal that becomes claimable) and then
lets the operator cheat once:

1. a wrong root (the posted root credits a thief with a victim's money);
2. a forged signature (a transfer out of the victim's account, signed by the thief);
3. batch data that does not match its commitment (``data_hash`` of other bytes);
4. a forced withdrawal left out past its deadline.

In every case a verifier that only reads the chain disputes the batch inside its window and
names it (batch, entry, reason); the bad root never finalises; the thief's claim against it
moves nothing; users still withdraw against the last good root (1-3, after which the operator
resubmits honestly and the verifier follows) or, past the deadline, leave through the escape
hatch with the verifier's own proofs (4).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount
from verifier_helpers import (
    BTC,
    CHALLENGER,
    ESCAPE_PERIOD_S,
    FORCED_DEADLINE_S,
    PRICE_QUANTUMS,
    PRICE_TICKS,
    USDC,
    WINDOW_S,
    TestOperator,
    address,
    forged_hash,
)

from rollbook.commitment.leaves import LEAF_WITHDRAWAL
from rollbook.execution import PlaceOrder, Side, TimeInForce, Transfer, Withdraw
from rollbook.sequencer import SignedTransaction
from rollbook.settlement import Chain
from rollbook.settlement import reference as ref
from rollbook.settlement.chain import ChainUnavailableError, RevertError
from rollbook.verifier import DivergenceReason, Verifier
from rollbook.verifier.escape import register_account

THEFT_QUANTUMS = 50_000 * USDC
Claim = tuple[int, int, bytes, tuple[bytes, ...]]  # batch, leaf index, leaf, proof


@dataclass
class Venue:
    chain: Chain
    operator: TestOperator
    verifier: Verifier
    challenger: LocalAccount
    maker: LocalAccount
    victim: LocalAccount
    thief: LocalAccount


def _venue(chain: Chain) -> Venue:
    """Batches 1-2 (deposits, a trade, the victim's withdrawal 1), final and verified."""
    accounts = chain.dev_accounts
    challenger, maker, victim, thief = (accounts[CHALLENGER], accounts[2], accounts[3],
                                        accounts[4])
    operator = TestOperator(chain, challengers=(challenger.address,))
    for account, amount in ((maker, 1_000_000 * USDC), (victim, 100_000 * USDC),
                            (thief, 1_000 * USDC)):
        operator.fund(account, amount)
    operator.run(system=[operator.oracle(PRICE_QUANTUMS)])
    m, v = address(maker), address(victim)
    operator.run([
        operator.sign(maker, PlaceOrder(m, 0, BTC, Side.SELL, PRICE_TICKS + 10, 20_000)),
        operator.sign(victim, PlaceOrder(v, 0, BTC, Side.BUY, PRICE_TICKS + 20, 3_000,
                                         time_in_force=TimeInForce.IOC)),
        operator.sign(victim, Withdraw(v, 0, 10_000 * USDC))])
    verifier = operator.verifier(challenger=challenger)
    report = verifier.sync()
    assert report.roots_matched == 2 and verifier.root == operator.commitment.root
    chain.increase_time(WINDOW_S + 1)
    assert operator.settlement.latest_finalized_batch() == 2
    return Venue(chain, operator, verifier, challenger, maker, victim, thief)


def _theft(venue: Venue) -> list[SignedTransaction]:
    """What the thief wants executed: the victim's money moved to the thief, then withdrawn.
    The transfer is signed with the *thief's* key on the victim's behalf."""
    operator, thief, v = venue.operator, venue.thief, address(venue.victim)
    t = address(thief)
    return [operator.sign(thief, Transfer(v, 0, t, 0, THEFT_QUANTUMS), key=bytes(thief.key)),
            operator.sign(thief, Withdraw(t, 0, THEFT_QUANTUMS))]


def _assert_disputed_and_harmless(venue: Venue, bad_index: int, reason: DivergenceReason,
                                  entry: int | None, thief_claim: Claim | None) -> None:
    """The verifier disputed ``bad_index`` in time; nothing can be paid against it; the
    victim's earlier withdrawal is still claimable against the last good root."""
    chain, operator, verifier = venue.chain, venue.operator, venue.verifier
    settlement, token = operator.settlement, operator.token
    balance = token.balance_of(settlement.address)
    report = verifier.sync()
    divergence = report.divergences[-1]
    assert (divergence.batch_index, divergence.entry, divergence.reason) == (
        bad_index, entry, reason), divergence
    record = report.disputes[-1]
    assert record.sent and record.divergence == divergence, record
    assert settlement.latest_batch() == bad_index - 1  # discarded inside its window
    assert report.halted_at == bad_index
    after = verifier.sync()  # the BatchDisputed event clears the halt
    assert after.halted_at is None
    assert verifier.halted is None and verifier.batch_index == bad_index - 1
    chain.increase_time(WINDOW_S + 1)
    assert settlement.latest_finalized_batch() == bad_index - 1  # the bad root never finalises
    if thief_claim is not None:
        with pytest.raises(RevertError):
            settlement.claim_withdrawal(*thief_claim, sender=venue.thief)
    assert token.balance_of(settlement.address) == balance  # nothing left against it
    # the victim's withdrawal from batch 2 is paid against the last good root
    before = token.balance_of(venue.victim.address)
    claim = operator.claims[1]
    paid = settlement.claim_withdrawal(claim.batch_index, claim.proof.leaf_index,
                                       claim.proof.leaf, claim.proof.siblings,
                                       sender=venue.maker)
    assert paid.amount == 10_000 * USDC
    assert token.balance_of(venue.victim.address) == before + 10_000 * USDC


def _resubmit_honestly(venue: Venue, good: bytes, clock_ms: int) -> None:
    """The operator goes back to the last good batch and resubmits; the verifier follows."""
    operator, verifier = venue.operator, venue.verifier
    operator.restore(good, clock_ms)
    m = address(venue.maker)
    built = operator.run([operator.sign(venue.maker, PlaceOrder(
        m, 0, BTC, Side.SELL, PRICE_TICKS + 15, 1_000))])
    report = verifier.sync()
    assert verifier.batch_index == built.index and verifier.root == built.root
    assert report.halted_at is None


def test_a_wrong_root_is_disputed(chain: Chain) -> None:
    venue = _venue(chain)
    operator = venue.operator
    good, clock = operator.snapshot(), operator.clock_ms
    order = operator.sign(venue.maker, PlaceOrder(address(venue.maker), 0, BTC, Side.SELL,
                                                  PRICE_TICKS + 30, 500))
    honest = operator.build([order])
    # the posted root is that of a state where the theft happened too
    operator.restore(good, clock)
    forged = operator.forged([order, *_theft(venue)])
    assert all(receipt.ok for receipt in forged.receipts)
    stolen = operator.commitment.proof((LEAF_WITHDRAWAL, operator.state.next_withdrawal_id - 1))
    operator.publish(honest, new_root=forged.root)
    _assert_disputed_and_harmless(
        venue, honest.index, DivergenceReason.ROOT_MISMATCH, None,
        (honest.index, stolen.leaf_index, stolen.leaf, stolen.siblings))
    _resubmit_honestly(venue, good, clock)


def test_a_forged_signature_is_disputed_at_its_entry(chain: Chain) -> None:
    venue = _venue(chain)
    operator = venue.operator
    good, clock = operator.snapshot(), operator.clock_ms
    order = operator.sign(venue.maker, PlaceOrder(address(venue.maker), 0, BTC, Side.SELL,
                                                  PRICE_TICKS + 30, 500))
    # the batch carries the forged transfer as entry 1, and its root is the root of executing
    # it: everything is consistent except the signature
    forged = operator.forged([order, *_theft(venue)])
    stolen = operator.commitment.proof((LEAF_WITHDRAWAL, operator.state.next_withdrawal_id - 1))
    operator.publish(forged)
    _assert_disputed_and_harmless(
        venue, forged.index, DivergenceReason.UNAUTHORISED_SIGNER, 1,
        (forged.index, stolen.leaf_index, stolen.leaf, stolen.siblings))
    assert "SIGNER_NOT_AUTHORISED" in venue.verifier.report.divergences[-1].detail
    _resubmit_honestly(venue, good, clock)


def test_data_that_does_not_match_its_commitment_is_disputed(chain: Chain) -> None:
    venue = _venue(chain)
    operator = venue.operator
    good, clock = operator.snapshot(), operator.clock_ms
    order = operator.sign(venue.maker, PlaceOrder(address(venue.maker), 0, BTC, Side.SELL,
                                                  PRICE_TICKS + 30, 500))
    # the operator publishes honest-looking bytes but commits to other ones (and to the root
    # of those): nobody can check the state the root claims
    forged = operator.forged([order, *_theft(venue)])
    stolen = operator.commitment.proof((LEAF_WITHDRAWAL, operator.state.next_withdrawal_id - 1))
    operator.restore(good, clock)
    honest = operator.build([order])
    operator.publish(honest, new_root=forged.root, data_hash=forged_hash(honest.data))
    _assert_disputed_and_harmless(
        venue, honest.index, DivergenceReason.DATA_HASH_MISMATCH, None,
        (honest.index, stolen.leaf_index, stolen.leaf, stolen.siblings))
    _resubmit_honestly(venue, good, clock)


def test_a_forced_withdrawal_dropped_past_its_deadline_is_disputed(chain: Chain) -> None:
    venue = _venue(chain)
    operator, verifier, settlement = venue.operator, venue.verifier, venue.operator.settlement
    escaped_state = operator.snapshot()
    # the victim asks to leave on chain; the operator never includes the request
    request = settlement.request_forced_withdrawal(0, 5_000 * USDC, sender=venue.victim)
    chain.increase_time(FORCED_DEADLINE_S + 1)
    dropped = operator.run(include_l1=False)
    assert dropped.forced_count == 0
    _assert_disputed_and_harmless(venue, dropped.index,
                                  DivergenceReason.FORCED_WITHDRAWAL_OMITTED, None, None)
    assert str(request.request_id) in verifier.report.divergences[-1].detail
    # the deadline has passed: anyone freezes, and everyone leaves with the verifier's proofs
    frozen = settlement.freeze(sender=venue.thief)
    assert frozen.escape_batch == dropped.index - 1
    verifier.sync()
    kit = verifier.escape_kit()
    assert kit.root == frozen.escape_root
    operator.restore(escaped_state)
    paid_before = settlement.token.balance_of(settlement.address)
    claims = {}
    for account in (venue.maker, venue.victim, venue.thief):
        registered = register_account(settlement, kit, address(account), sender=venue.thief)
        assert registered is not None
        assert registered.claim == kit.account(address(account)).claim_quantums == max(
            0, operator.equity(account))
        claims[account.address] = registered.claim
    chain.increase_time(ESCAPE_PERIOD_S + 1)
    pool, total = settlement.escape_pool(), settlement.escape_total_claims()
    paid_total = 0
    for account in (venue.maker, venue.victim, venue.thief):
        paid = settlement.escape_withdraw_account(account.address, 0, sender=venue.challenger)
        assert paid.amount == ref.escape_payout(claims[account.address], pool, total)
        paid_total += paid.amount
        with pytest.raises(RevertError):  # each exactly once
            settlement.escape_withdraw_account(account.address, 0, sender=venue.challenger)
    assert paid_total <= pool <= paid_before


def test_a_dispute_that_could_not_be_sent_is_retried(embedded_chain: Chain,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    venue = _venue(embedded_chain)
    operator, verifier = venue.operator, venue.verifier
    bad = operator.build([])
    operator.publish(bad, new_root=b"\x01" * 32)
    real_dispute = verifier.client.dispute
    attempts = []

    def flaky_dispute(batch_index: int, *, sender: LocalAccount) -> object:
        attempts.append(batch_index)
        if len(attempts) <= 2:  # the first attempt and the retry after the same poll
            raise ChainUnavailableError("the RPC endpoint is down")
        return real_dispute(batch_index, sender=sender)

    monkeypatch.setattr(verifier.client, "dispute", flaky_dispute)
    report = verifier.sync()
    assert report.disputes_sent == 0 and operator.settlement.latest_batch() == bad.index
    report = verifier.sync()  # the next poll sends it
    assert attempts == [bad.index] * 3 and report.disputes_sent == 1
    assert len(report.divergences) == 1
    assert operator.settlement.latest_batch() == bad.index - 1

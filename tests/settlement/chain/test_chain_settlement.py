"""The settlement contract through SettlementClient, end to end, on both backends.

Leaves are built with ``eth_abi.encode`` exactly as docs/settlement.md specifies, and roots and
proofs with ``rollbook.commitment.merkle.MerkleTree``: the contract must accept what the
commitment produces, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_abi import encode
from eth_account.signers.local import LocalAccount

from rollbook.commitment.merkle import MerkleTree, empty_root
from rollbook.settlement import Chain, RevertError
from rollbook.settlement.client import (
    TREE_DEPTH,
    BatchSubmittedEvent,
    DepositEvent,
    SettlementClient,
    SettlementParams,
    TokenClient,
)

WINDOW_S = 3_600
FORCED_DEADLINE_S = 7_200
ESCAPE_PERIOD_S = 86_400
USDC = 10**6
GENESIS_ROOT = empty_root(TREE_DEPTH)
LEAF_WITHDRAWAL = 6
WITHDRAWAL_TYPES = ["uint256", "uint256", "address", "uint256", "uint256", "uint256"]


@dataclass
class Venue:
    chain: Chain
    settlement: SettlementClient
    token: TokenClient
    operator: LocalAccount
    challenger: LocalAccount
    alice: LocalAccount
    bob: LocalAccount


@pytest.fixture
def venue(chain: Chain) -> Venue:
    operator, challenger, alice, bob = chain.dev_accounts[:4]
    token = TokenClient.deploy(chain, sender=operator)
    params = SettlementParams(operator=operator.address, genesis_root=GENESIS_ROOT,
                              challenge_window_s=WINDOW_S, forced_deadline_s=FORCED_DEADLINE_S,
                              escape_period_s=ESCAPE_PERIOD_S, challengers=(challenger.address,))
    settlement = SettlementClient.deploy(chain, token, params, sender=operator)
    for user in (alice, bob):
        token.mint(user.address, 1_000 * USDC, sender=operator)
    return Venue(chain, settlement, token, operator, challenger, alice, bob)


def withdrawal_leaf(withdrawal_id: int, owner: str, subaccount: int, amount: int,
                    batch_index: int) -> bytes:
    return encode(WITHDRAWAL_TYPES,
                  [LEAF_WITHDRAWAL, withdrawal_id, owner, subaccount, amount, batch_index])


def test_deploy_sets_the_constructor_arguments(venue: Venue) -> None:
    settlement = venue.settlement
    assert settlement.operator() == venue.operator.address
    assert settlement.genesis_root() == GENESIS_ROOT
    assert (settlement.challenge_window_s(), settlement.forced_deadline_s(),
            settlement.escape_period_s()) == (WINDOW_S, FORCED_DEADLINE_S, ESCAPE_PERIOD_S)
    assert settlement.is_challenger(venue.challenger.address)
    assert not settlement.is_challenger(venue.alice.address)
    assert settlement.latest_batch() == 0 and settlement.is_finalized(0)
    assert settlement.batch(0).root == GENESIS_ROOT
    assert venue.chain.call(settlement.handle, "TREE_DEPTH") == TREE_DEPTH
    with pytest.raises(RevertError) as caught:  # a view reverts with its reason too
        settlement.batch(1)
    assert caught.value.reason == "Settlement: no such batch"
    attached = SettlementClient.at(venue.chain, settlement.address)
    assert attached.token.address == venue.token.address


def test_deposit_approves_and_returns_the_id_from_the_event(venue: Venue) -> None:
    settlement, alice, bob = venue.settlement, venue.alice, venue.bob
    first = settlement.deposit(0, 100 * USDC, sender=alice)
    second = settlement.deposit(7, 250 * USDC, sender=bob)
    assert (first.deposit_id, first.owner, first.subaccount, first.amount) == (
        1, alice.address, 0, 100 * USDC)
    assert (second.deposit_id, second.owner, second.subaccount) == (2, bob.address, 7)
    assert settlement.deposit_count() == 2
    assert settlement.deposit_info(2) == (bob.address, 250 * USDC)
    assert settlement.cumulative_deposited(2) == 350 * USDC
    assert venue.token.balance_of(settlement.address) == 350 * USDC
    assert venue.token.balance_of(alice.address) == 900 * USDC
    logged = [event for event in settlement.events(first.block_number, second.block_number)
              if isinstance(event, DepositEvent)]
    assert logged == [first, second]


def test_l1_inputs_wait_for_the_confirmation_depth(venue: Venue) -> None:
    settlement, chain = venue.settlement, venue.chain
    depth = 2
    cursor = chain.head_block() + 1
    deposit = settlement.deposit(1, 5 * USDC, sender=venue.alice)
    forced = settlement.request_forced_withdrawal(1, 3 * USDC, sender=venue.alice)
    inputs = settlement.l1_inputs(cursor, depth)
    assert inputs.deposits == () and inputs.forced_requests == ()
    chain.mine(depth)
    inputs = settlement.l1_inputs(inputs.cursor, depth)
    assert inputs.deposits == (deposit,)
    assert inputs.forced_requests == (forced,)
    assert forced.request_id == 1 and forced.amount == 3 * USDC
    chain.mine(3)
    assert settlement.l1_inputs(inputs.cursor, depth).deposits == ()  # never twice


def test_submit_batch_finalises_after_the_window(venue: Venue) -> None:
    settlement, chain, operator = venue.settlement, venue.chain, venue.operator
    settlement.deposit(0, 10 * USDC, sender=venue.alice)
    root = b"\x11" * 32
    data = b"batch one"
    submitted = settlement.submit_batch(1, GENESIS_ROOT, root, 1, 0, data, sender=operator)
    assert isinstance(submitted, BatchSubmittedEvent)
    assert (submitted.batch_index, submitted.new_root, submitted.data_bytes) == (1, root, 9)
    assert settlement.latest_batch() == 1
    assert not settlement.is_finalized(1) and settlement.latest_finalized_batch() == 0
    batch = settlement.batch(1)
    assert (batch.root, batch.deposit_count, batch.forced_count) == (root, 1, 0)
    chain.increase_time(WINDOW_S - 10)
    assert not settlement.is_finalized(1)
    chain.increase_time(10)
    assert settlement.is_finalized(1) and settlement.latest_finalized_batch() == 1


def test_dispute_discards_the_batch_and_its_successors(venue: Venue) -> None:
    settlement, operator = venue.settlement, venue.operator
    settlement.submit_batch(1, GENESIS_ROOT, b"\x01" * 32, 0, 0, b"1", sender=operator)
    settlement.submit_batch(2, b"\x01" * 32, b"\x02" * 32, 0, 0, b"2", sender=operator)
    with pytest.raises(RevertError, match="caller is not a challenger"):
        settlement.dispute(1, sender=venue.alice)
    disputed = settlement.dispute(1, sender=venue.challenger)
    assert (disputed.batch_index, disputed.challenger) == (1, venue.challenger.address)
    assert settlement.latest_batch() == 0
    # the operator resubmits from there
    settlement.submit_batch(1, GENESIS_ROOT, b"\x03" * 32, 0, 0, b"1'", sender=operator)
    assert settlement.batch(1).root == b"\x03" * 32


def test_reverts_carry_the_contract_reason(venue: Venue) -> None:
    settlement = venue.settlement
    with pytest.raises(RevertError) as caught:
        settlement.submit_batch(1, GENESIS_ROOT, b"\x01" * 32, 0, 0, b"", sender=venue.alice)
    assert caught.value.reason == "Settlement: caller is not the operator"
    with pytest.raises(RevertError) as caught:
        settlement.submit_batch(1, b"\x09" * 32, b"\x01" * 32, 0, 0, b"", sender=venue.operator)
    assert caught.value.reason == "Settlement: prev_root is not the latest root"
    with pytest.raises(RevertError, match="deposit above maximum"):
        settlement.deposit(0, 10**15 + 1, sender=venue.alice)
    with pytest.raises(RevertError, match="no overdue forced withdrawal"):
        settlement.freeze(sender=venue.bob)


def test_withdrawal_claim_then_forced_withdrawal_freeze(venue: Venue) -> None:
    """Deposit -> batch with a withdrawal leaf -> window -> claim with the proof (once) ->
    a forced withdrawal the operator ignores -> past the deadline -> freeze."""
    settlement, chain, token = venue.settlement, venue.chain, venue.token
    alice, operator = venue.alice, venue.operator
    deposit = settlement.deposit(0, 500 * USDC, sender=alice)
    assert deposit.deposit_id == 1

    tree = MerkleTree(TREE_DEPTH)
    leaf = withdrawal_leaf(1, alice.address, 0, 120 * USDC, 1)
    leaf_index = 5
    tree.set_leaves({0: b"globals stand-in", 3: b"another record", leaf_index: leaf})
    root = tree.root()
    settlement.submit_batch(1, GENESIS_ROOT, root, 1, 0, b"batch 1 bytes", sender=operator)
    proof = tree.proof(leaf_index)

    with pytest.raises(RevertError, match="batch not final"):
        settlement.claim_withdrawal(1, leaf_index, leaf, proof, sender=venue.bob)
    chain.increase_time(WINDOW_S)
    with pytest.raises(RevertError, match="invalid proof"):
        settlement.claim_withdrawal(1, leaf_index + 1, leaf, proof, sender=venue.bob)
    before = token.balance_of(alice.address)
    claimed = settlement.claim_withdrawal(1, leaf_index, leaf, proof, sender=venue.bob)
    assert (claimed.withdrawal_id, claimed.owner, claimed.amount, claimed.batch_index) == (
        1, alice.address, 120 * USDC, 1)
    assert token.balance_of(alice.address) == before + 120 * USDC
    assert token.balance_of(settlement.address) == 380 * USDC
    assert settlement.withdrawal_paid(1)
    with pytest.raises(RevertError) as caught:
        settlement.claim_withdrawal(1, leaf_index, leaf, proof, sender=alice)
    assert caught.value.reason == "Settlement: withdrawal already paid"

    forced = settlement.request_forced_withdrawal(0, 50 * USDC, sender=alice)
    assert forced.request_id == 1
    assert not settlement.freezable()
    chain.increase_time(FORCED_DEADLINE_S + 1)
    assert settlement.freezable()
    frozen = settlement.freeze(sender=venue.bob)
    assert (frozen.escape_batch, frozen.escape_root, frozen.escape_pool) == (1, root, 380 * USDC)
    assert settlement.frozen() and not settlement.freezable()
    with pytest.raises(RevertError, match="Settlement: frozen"):
        settlement.deposit(0, USDC, sender=alice)


MARKET_TYPES = ["uint256"] * 8 + ["int256", "int256", "uint256", "uint256", "int256"]
SUBACCOUNT_TYPES = ["uint256", "address", "uint256", "(uint256,int256)[]",
                    "(uint256,uint256,int256,int256,uint256,uint256)[]"]
PRICE_QUANTUMS = 100_000 * USDC
LOT_NANOUNITS = 100_000


def test_escape_hatch_from_the_latest_final_root(venue: Venue) -> None:
    settlement, chain, token = venue.settlement, venue.chain, venue.token
    alice, bob, operator = venue.alice, venue.bob, venue.operator
    settlement.deposit(0, 500 * USDC, sender=alice)  # credited by batch 1
    refunded_id = settlement.deposit(0, 300 * USDC, sender=bob).deposit_id  # never credited

    market = encode(MARKET_TYPES, [3, 1, 0, 1, PRICE_QUANTUMS, LOT_NANOUNITS, 100_000, 20, 0,
                                   0, 0, 0, -1])
    # 400 USDC of collateral and 10 lots long: 10 * 100,000 USDC * 0.0001 = 100 USDC
    account = encode(SUBACCOUNT_TYPES, [4, alice.address, 0, [(0, 400 * USDC)],
                                        [(0, 1, 10, 10 * PRICE_QUANTUMS // 10_000, 0, 0)]])
    unpaid = withdrawal_leaf(9, bob.address, 0, 50 * USDC, 1)
    tree = MerkleTree(TREE_DEPTH)
    tree.set_leaves({0: b"globals", 1: market, 2: account, 3: unpaid})
    settlement.submit_batch(1, GENESIS_ROOT, tree.root(), 1, 0, b"batch 1", sender=operator)
    chain.increase_time(WINDOW_S)
    # a later batch still inside its window when the contract freezes is discarded
    settlement.request_forced_withdrawal(0, 10 * USDC, sender=bob)
    chain.increase_time(FORCED_DEADLINE_S + 1)
    settlement.submit_batch(2, tree.root(), b"\x42" * 32, 1, 0, b"2", sender=operator)
    frozen = settlement.freeze(sender=alice)
    assert (frozen.escape_batch, frozen.escape_root) == (1, tree.root())
    assert frozen.escape_pool == 500 * USDC  # the balance minus the uncredited deposit
    assert settlement.latest_batch() == 1 and settlement.escape_deposit_count() == 1

    refund = settlement.refund_deposit(refunded_id, sender=alice)
    assert (refund.deposit_id, refund.owner, refund.amount) == (2, bob.address, 300 * USDC)
    assert token.balance_of(bob.address) == 1_000 * USDC
    with pytest.raises(RevertError, match="deposit was credited"):
        settlement.refund_deposit(1, sender=alice)

    registered_market = settlement.escape_register_market(1, market, tree.proof(1), sender=bob)
    assert registered_market.market_id == 1
    assert settlement.escape_market(1).registered
    assert settlement.escape_equity(account) == 500 * USDC
    claim = settlement.escape_register_account(2, account, tree.proof(2), sender=bob)
    assert (claim.owner, claim.kind, claim.key, claim.claim) == (alice.address, 4, 0, 500 * USDC)
    withdrawal_claim = settlement.escape_register_withdrawal(3, unpaid, tree.proof(3),
                                                             sender=alice)
    assert (withdrawal_claim.owner, withdrawal_claim.key) == (bob.address, 9)
    assert settlement.escape_total_claims() == 550 * USDC  # above the 500 USDC pool
    with pytest.raises(RevertError, match="escape period not over"):
        settlement.escape_withdraw_account(alice.address, 0, sender=bob)

    chain.increase_time(ESCAPE_PERIOD_S)
    paid = settlement.escape_withdraw_account(alice.address, 0, sender=bob)
    assert paid.amount == 500 * USDC * 500 // 550 == settlement.escape_payout(500 * USDC)
    paid_withdrawal = settlement.escape_withdraw_withdrawal(9, sender=bob)
    assert paid_withdrawal.amount == 50 * USDC * 500 // 550
    assert token.balance_of(alice.address) == 500 * USDC + paid.amount
    assert token.balance_of(settlement.address) == 500 * USDC - paid.amount - \
        paid_withdrawal.amount  # the rounding dust stays, never more than the pool is paid
    with pytest.raises(RevertError, match="account already paid"):
        settlement.escape_withdraw_account(alice.address, 0, sender=bob)

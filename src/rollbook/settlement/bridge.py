"""The bridge: L1 inputs into the STF, batches and roots onto the settlement contract, and the
proofs users claim with.

- ``l1_transactions`` turns the contract's ``Deposited`` and ``ForcedWithdrawalRequested``
  events (``confirmations`` blocks deep) into the STF's L1-origin ``Deposit`` and
  ``ForcedWithdrawal`` transactions, each exactly once and in id order: the bridge remembers
  the next id it handed out, so a rescan never duplicates one and a gap is an error.
- ``publish`` submits a batch that ``apply_and_commit`` produced: index, previous root, new
  root, the L1 counters of the globals leaf, and the canonical batch bytes as calldata.
- ``record_withdrawal_proofs`` keeps, for each withdrawal a batch created, its proof against
  that batch's root. A withdrawal leaf never changes afterwards, so the proof stays valid for
  that root forever, and the root becomes claimable once final: O(1) storage per withdrawal,
  no historical trees.

Invariants: the deposit and forced-request ids handed to the STF are consecutive from 1; the
bridge never publishes a batch whose previous root is not the contract's latest root (the
contract would revert; the bridge checks first to fail with a clear message).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_canonical_address

from rollbook.commitment.leaves import LEAF_WITHDRAWAL
from rollbook.commitment.state_tree import LeafProof, StateCommitment
from rollbook.execution.encoding import encode_batch
from rollbook.execution.state import State
from rollbook.execution.txs import Batch, Deposit, ForcedWithdrawal, Transaction
from rollbook.settlement.client import BatchSubmittedEvent, SettlementClient

__all__ = ["BridgeError", "SettlementBridge", "WithdrawalClaim"]


class BridgeError(RuntimeError):
    """The chain and the bridge disagree (a gap in ids, a root that does not chain)."""


@dataclass(frozen=True, slots=True)
class WithdrawalClaim:
    """Everything ``claim_withdrawal`` needs: the batch whose root proves the leaf."""

    withdrawal_id: int
    batch_index: int
    proof: LeafProof


class SettlementBridge:
    def __init__(self, client: SettlementClient, operator: LocalAccount,
                 confirmations: int, start_block: int = 0, *, next_deposit_id: int = 1,
                 next_forced_id: int = 1) -> None:
        """``start_block`` and the next ids resume a bridge after a restart (the node keeps
        the cursor in its snapshot and the ids in the STF state)."""
        assert confirmations >= 0 and next_deposit_id >= 1 and next_forced_id >= 1
        self.client = client
        self.operator = operator
        self.confirmations = confirmations
        self._cursor = start_block
        self._next_deposit_id = next_deposit_id
        self._next_forced_id = next_forced_id
        self._claims: dict[int, WithdrawalClaim] = {}

    @property
    def cursor(self) -> int:
        """The first block the next ``l1_transactions`` scans."""
        return self._cursor

    def l1_transactions(self) -> list[Transaction]:
        """New confirmed deposits and forced-withdrawal requests, as STF transactions."""
        inputs = self.client.l1_inputs(self._cursor, self.confirmations)
        txs: list[Transaction] = []
        for deposit in sorted(inputs.deposits, key=lambda d: d.deposit_id):
            if deposit.deposit_id < self._next_deposit_id:
                continue  # seen in an earlier scan
            if deposit.deposit_id != self._next_deposit_id:
                raise BridgeError(f"deposit {self._next_deposit_id} missing before "
                                  f"{deposit.deposit_id}")
            txs.append(Deposit(deposit.deposit_id, to_canonical_address(deposit.owner),
                               deposit.subaccount, deposit.amount))
            self._next_deposit_id += 1
        for request in sorted(inputs.forced_requests, key=lambda r: r.request_id):
            if request.request_id < self._next_forced_id:
                continue
            if request.request_id != self._next_forced_id:
                raise BridgeError(f"forced request {self._next_forced_id} missing before "
                                  f"{request.request_id}")
            txs.append(ForcedWithdrawal(request.request_id, to_canonical_address(request.owner),
                                        request.subaccount, request.amount))
            self._next_forced_id += 1
        self._cursor = inputs.cursor
        return txs

    def publish(self, batch: Batch, new_root: bytes, state: State) -> BatchSubmittedEvent:
        """Submit ``batch`` (already applied: ``state`` is after it, ``new_root`` its root)."""
        assert state.batch_index == batch.index
        latest = self.client.latest_batch()
        if batch.index != latest + 1 or self.client.batch(latest).root != batch.previous_root:
            raise BridgeError(f"batch {batch.index} does not extend the contract's latest "
                              f"batch {latest}")
        return self.client.submit_batch(
            batch.index, batch.previous_root, new_root, state.next_deposit_id - 1,
            state.next_forced_id - 1, encode_batch(batch), sender=self.operator)

    def record_withdrawal_proofs(self, commitment: StateCommitment, state: State,
                                 first_withdrawal_id: int) -> list[WithdrawalClaim]:
        """Proofs for withdrawals ``first_withdrawal_id ..`` created by the batch just
        committed (call right after ``apply_and_commit``)."""
        created: list[WithdrawalClaim] = []
        for withdrawal_id in range(first_withdrawal_id, state.next_withdrawal_id):
            proof = commitment.proof((LEAF_WITHDRAWAL, withdrawal_id))
            claim = WithdrawalClaim(withdrawal_id, state.batch_index, proof)
            self._claims[withdrawal_id] = claim
            created.append(claim)
        return created

    def withdrawal_claim(self, withdrawal_id: int) -> WithdrawalClaim:
        return self._claims[withdrawal_id]

    def claim(self, withdrawal_id: int, sender: LocalAccount) -> int:
        """Claim a withdrawal on chain (anyone may send it; the owner is paid); the amount."""
        claim = self._claims[withdrawal_id]
        event = self.client.claim_withdrawal(claim.batch_index, claim.proof.leaf_index,
                                             claim.proof.leaf, claim.proof.siblings,
                                             sender=sender)
        return event.amount

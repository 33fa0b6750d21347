"""The node's side of the settlement chain: deploy or attach, L1 inputs, publishing, status.

``ChainLink`` is used by one thread of the node (its publisher) plus callers that hold
``ChainLink.lock`` (``Chain`` is not thread-safe: every use, by the node or by a test or demo
driving the same embedded chain, goes under that lock).

- ``open``: the embedded chain gets a fresh ``TestUSDC`` and ``Settlement`` deployed by its
  first dev account (the operator) with the genesis root; a JSON-RPC chain attaches to the
  contract named in the config or in the data directory's metadata (checking that its genesis
  root is this venue's), or deploys one with the configured operator key.
- ``poll_l1``: the bridge's confirmed deposits and forced withdrawals since the cursor.
- ``publish``: ``submit_batch`` with the node's published bytes (``batch_data``), after
  checking that the batch extends the contract's latest one. On the embedded chain it is sent
  with a fixed, sufficient gas limit (``EMBEDDED_SUBMIT_BATCH_GAS``) instead of an estimate, so
  py-evm executes each batch once; a revert is then seen in the receipt (``RevertError``).
- ``close``: the embedded chain runs in a child process (``Chain.embedded_child``), off the
  node's GIL; the node closes the link when it stops, which ends that process.
- ``heads``: the contract's latest and latest final batch, for the status of each batch.

Imported only when the node has a chain: web3 and eth-tester take about a second to import.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.crypto import keccak

from rollbook.commitment.state_tree import StateCommitment
from rollbook.execution.state import State
from rollbook.execution.txs import Transaction
from rollbook.node.config import ChainSettings
from rollbook.node.engine import BatchRecord
from rollbook.settlement.bridge import BridgeError, SettlementBridge, WithdrawalClaim
from rollbook.settlement.chain import Chain
from rollbook.settlement.client import (
    BatchSubmittedEvent,
    SettlementClient,
    SettlementParams,
    TokenClient,
)

__all__ = ["EMBEDDED_SUBMIT_BATCH_GAS", "ChainLink", "ChainMetadata", "LinkError"]

# py-evm and web3 hash through ``eth_hash``, whose automatic choice prefers pycryptodome: about
# 6 µs per small keccak against 1.2 µs for pysha3 (safe-pysha3, already rollbook's keccak); web3
# hashes here (ABI selectors, a JSON-RPC chain's transactions) and the embedded chain's process
# thousands of trie nodes per published batch. Same digests either way; the choice is made at
# the first hash, so it is set before any, and an ETH_HASH_BACKEND the operator set wins.
os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")


# ``submit_batch``'s gas on the embedded chain, for the largest batch the contract accepts
# (BATCH_DATA_BYTES_MAX = 65,536 bytes): Prague's calldata floor, 21,000 + 40 gas a non-zero
# byte = 2,642,440, is above the execution's cost (about 100,000 + 16 a byte), so the floor is
# what it pays (2,648,130 measured with no zero byte); 4,000,000 leaves 1.3 million of headroom
# (tests/node/test_node_chain.py keeps the measured cost under three quarters of it).
EMBEDDED_SUBMIT_BATCH_GAS = 4_000_000


class LinkError(RuntimeError):
    """The chain holds something this node cannot continue from."""


@dataclass(frozen=True, slots=True)
class ChainMetadata:
    """What the data directory remembers of the deployment (``node.json``)."""

    chain_id: int
    settlement_address: bytes
    token_address: bytes
    deploy_block: int


class ChainLink:
    """See the module docstring."""

    def __init__(self, chain: Chain, token: TokenClient, settlement: SettlementClient,
                 operator: LocalAccount, confirmations: int, metadata: ChainMetadata) -> None:
        self.chain = chain
        self.token = token
        self.settlement = settlement
        self.operator = operator
        self.metadata = metadata
        self.lock = threading.RLock()
        self.bridge = SettlementBridge(settlement, operator, confirmations, metadata.deploy_block)
        # the embedded chain is a dev chain (gas is free): see ``publish``
        self.submit_gas = EMBEDDED_SUBMIT_BATCH_GAS if chain.is_embedded else None

    @classmethod
    def open(cls, settings: ChainSettings, remembered: ChainMetadata | None,
             genesis_root: bytes) -> ChainLink:
        if settings.kind == "embedded":
            # py-evm off the node's GIL: publishing a batch executes for tens to hundreds of
            # milliseconds, which in process stalled every ack behind it (docs/node.md)
            chain = Chain.embedded_child()
            operator = chain.dev_accounts[0]
        else:
            assert settings.operator_key is not None
            chain = Chain.connect(settings.url, dev_keys=(settings.operator_key,))
            operator = Account.from_key(settings.operator_key)
        try:
            return cls._attach_or_deploy(chain, settings, operator, remembered, genesis_root)
        except BaseException:
            chain.close()
            raise

    @classmethod
    def _attach_or_deploy(cls, chain: Chain, settings: ChainSettings, operator: LocalAccount,
                          remembered: ChainMetadata | None, genesis_root: bytes) -> ChainLink:
        address = settings.settlement_address or (
            remembered.settlement_address if remembered is not None else None)
        if address is not None:
            settlement = SettlementClient.at(chain, to_checksum_address(address))
            if settlement.genesis_root() != genesis_root:
                raise LinkError(f"the settlement contract at {to_checksum_address(address)} "
                                "was deployed for another venue (its genesis root differs)")
            if remembered is not None and remembered.chain_id != chain.chain_id:
                raise LinkError(f"the data directory belongs to chain {remembered.chain_id}, "
                                f"the endpoint serves chain {chain.chain_id}")
            start = (remembered.deploy_block if remembered is not None
                     else settings.start_block)
            metadata = ChainMetadata(chain.chain_id, address,
                                     to_canonical_address(settlement.token.address), start)
            return cls(chain, settlement.token, settlement, operator, settings.confirmations,
                       metadata)
        deploy_block = chain.head_block()
        token = TokenClient.deploy(chain, sender=operator)
        params = SettlementParams(operator.address, genesis_root, settings.challenge_window_s,
                                  settings.forced_deadline_s, settings.escape_period_s,
                                  tuple(to_checksum_address(c) for c in settings.challengers))
        settlement = SettlementClient.deploy(chain, token, params, sender=operator)
        metadata = ChainMetadata(chain.chain_id, to_canonical_address(settlement.address),
                                 to_canonical_address(token.address), deploy_block)
        return cls(chain, token, settlement, operator, settings.confirmations, metadata)

    def batch_bytes_max(self) -> int:
        """The contract's limit on a batch's data (``BATCH_DATA_BYTES_MAX``)."""
        with self.lock:
            return int(self.chain.call(self.settlement.handle, "BATCH_DATA_BYTES_MAX"))

    def resume(self, cursor: int, next_deposit_id: int, next_forced_id: int) -> None:
        """Continue the L1 scan where the recovered state left it."""
        self.bridge = SettlementBridge(self.settlement, self.operator, self.bridge.confirmations,
                                       max(cursor, self.metadata.deploy_block),
                                       next_deposit_id=next_deposit_id,
                                       next_forced_id=next_forced_id)

    def poll_l1(self) -> tuple[list[Transaction], int]:
        with self.lock:
            txs = self.bridge.l1_transactions()
            return txs, self.bridge.cursor

    def heads(self) -> tuple[int, int]:
        """(latest batch, latest final batch) on the contract."""
        with self.lock:
            return (self.settlement.latest_batch(), self.settlement.latest_finalized_batch())

    def root_of(self, batch_index: int) -> bytes:
        with self.lock:
            return self.settlement.batch(batch_index).root

    def publish(self, record: BatchRecord) -> bytes:
        """Submit ``record``; the transaction hash. Raises ``BridgeError`` when the batch does
        not extend the contract's latest one (a chain error is the caller's to retry)."""
        assert record.data is not None
        with self.lock:
            if self.submit_gas is not None:
                return self._submit_unestimated(record, self.submit_gas)
            latest = self.settlement.latest_batch()
            if record.index != latest + 1:
                raise BridgeError(f"batch {record.index} does not follow the contract's latest "
                                  f"batch {latest}")
            if self.settlement.batch(latest).root != record.previous_root:
                raise BridgeError(f"batch {record.index} extends another root than the "
                                  f"contract's batch {latest}")
            event = self.settlement.submit_batch(
                record.index, record.previous_root, record.root, record.deposit_count,
                record.forced_count, record.data, sender=self.operator)
            return event.transaction_hash

    def _submit_unestimated(self, record: BatchRecord, gas: int) -> bytes:
        """``submit_batch`` with a known-sufficient gas limit: the EVM runs the batch once, not
        twice (estimate, then send), and without the two reads that check the contract's latest
        batch first, each about 2 ms of this process's CPU in web3. The contract itself refuses a
        batch that does not follow its latest index and root ("batch index is not latest + 1",
        "prev_root is not the latest root"), and a revert still raises ``RevertError``, from the
        mined receipt's status, with the contract's reason."""
        assert record.data is not None
        receipt = self.chain.transact(
            self.settlement.handle, "submit_batch", record.index, record.previous_root,
            record.root, keccak(record.data), record.deposit_count, record.forced_count,
            record.data, sender=self.operator, gas=gas)
        return BatchSubmittedEvent.from_receipt(receipt).transaction_hash

    def close(self) -> None:
        """Release the chain (the embedded chain's child process ends). Idempotent."""
        with self.lock:
            self.chain.close()

    def record_claims(self, commitment: StateCommitment, state: State,
                      first_withdrawal_id: int) -> list[WithdrawalClaim]:
        """Proofs of the withdrawals the batch just committed created (no chain access)."""
        return self.bridge.record_withdrawal_proofs(commitment, state, first_withdrawal_id)

    def describe(self) -> dict[str, Any]:
        return {"chain_id": self.metadata.chain_id,
                "settlement_address": "0x" + self.metadata.settlement_address.hex(),
                "token_address": "0x" + self.metadata.token_address.hex(),
                "deploy_block": self.metadata.deploy_block}

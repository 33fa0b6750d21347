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
  checking that the batch extends the contract's latest one.
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

from rollbook.commitment.state_tree import StateCommitment
from rollbook.execution.state import State
from rollbook.execution.txs import Transaction
from rollbook.node.config import ChainSettings
from rollbook.node.engine import BatchRecord
from rollbook.settlement.bridge import BridgeError, SettlementBridge, WithdrawalClaim
from rollbook.settlement.chain import Chain
from rollbook.settlement.client import SettlementClient, SettlementParams, TokenClient

__all__ = ["ChainLink", "ChainMetadata", "LinkError"]

# py-evm and web3 hash through ``eth_hash``, whose automatic choice prefers pycryptodome: about
# 6 µs per small keccak against 1.2 µs for pysha3 (safe-pysha3, already rollbook's keccak), and
# the embedded chain hashes thousands of trie nodes per published batch, on the node's GIL.
# Same digests either way; the choice is made at the first hash, so it is set before any, and
# an ETH_HASH_BACKEND the operator set wins.
os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")


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

    @classmethod
    def open(cls, settings: ChainSettings, remembered: ChainMetadata | None,
             genesis_root: bytes) -> ChainLink:
        if settings.kind == "embedded":
            chain = Chain.embedded()
            operator = chain.dev_accounts[0]
        else:
            assert settings.operator_key is not None
            chain = Chain.connect(settings.url, dev_keys=(settings.operator_key,))
            operator = Account.from_key(settings.operator_key)
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

    def record_claims(self, commitment: StateCommitment, state: State,
                      first_withdrawal_id: int) -> list[WithdrawalClaim]:
        """Proofs of the withdrawals the batch just committed created (no chain access)."""
        return self.bridge.record_withdrawal_proofs(commitment, state, first_withdrawal_id)

    def describe(self) -> dict[str, Any]:
        return {"chain_id": self.metadata.chain_id,
                "settlement_address": "0x" + self.metadata.settlement_address.hex(),
                "token_address": "0x" + self.metadata.token_address.hex(),
                "deploy_block": self.metadata.deploy_block}

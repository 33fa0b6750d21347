"""Shared helpers of the node tests: keys, offline node configurations, signed orders.

(A module with its own name rather than a second ``conftest.py``: the suite imports the root
conftest as ``conftest``.)
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from rollbook.execution import Deposit, PlaceOrder, Side
from rollbook.node import Node, NodeConfig
from rollbook.node.config import BatchSettings, ChainSettings, StorageSettings, address_of_key
from rollbook.sequencer import Eip712Domain, SignedTransaction, sign_action
from rollbook.sequencer.eip712 import UserAction

USDC = 10**6
BTC = 1
PRICE_TICKS = 1_000_000  # $100,000 at $0.1 ticks: the demo oracle's price
CHAIN_ID = 31337
CONTRACT = bytes.fromhex("5e771e0000000000000000000000000000c0ffee")


def key(n: int) -> bytes:
    return (0x1000 + n).to_bytes(32, "big")


def owner(n: int) -> bytes:
    return address_of_key(key(n))


def offline_config(data_dir: Path, *, interval_ms: int = 50, snapshot_every: int = 100,
                   txs_max: int = 4_096, segment_bytes: int = 64 << 20,
                   snapshot_fork: bool = True) -> NodeConfig:
    """A venue without a chain: the sequencer, the WAL, the STF and the feeds."""
    config = NodeConfig.local(data_dir)
    return dataclasses.replace(
        config,
        chain=ChainSettings(url="none", chain_id=CHAIN_ID, settlement_address=CONTRACT),
        batch=BatchSettings(interval_ms=interval_ms, txs_max=txs_max),
        storage=StorageSettings(data_dir=data_dir, snapshot_interval_batches=snapshot_every,
                                wal_segment_bytes=segment_bytes, snapshot_fork=snapshot_fork))


def offline_domain() -> Eip712Domain:
    return Eip712Domain(CHAIN_ID, CONTRACT)


class Nonces:
    """Millisecond nonces near the wall clock, strictly increasing per signer."""

    def __init__(self) -> None:
        self.last: dict[bytes, int] = {}

    def next(self, signer_key: bytes) -> int:
        nonce = max(time.time_ns() // 1_000_000, self.last.get(signer_key, 0) + 1)
        self.last[signer_key] = nonce
        return nonce


NONCES = Nonces()


def sign(n: int, action: UserAction, domain: Eip712Domain,
         nonce_ms: int | None = None) -> SignedTransaction:
    signer_key = key(n)
    return sign_action(signer_key, domain, action,
                       NONCES.next(signer_key) if nonce_ms is None else nonce_ms)


def fund(node: Node, owners: list[bytes], amount_quantums: int = 1_000_000 * USDC) -> None:
    """Credit deposits as an L1 bridge would (system transactions, in deposit id order)."""
    engine = node.engine
    first = engine.state.next_deposit_id  # read before anything else is queued: tests only
    futures = [node.submit_system(Deposit(first + i, o, 0, amount_quantums))
               for i, o in enumerate(owners)]
    for future in futures:
        assert future.result(10).ok


def place(n: int, side: Side, price_ticks: int, size_lots: int, domain: Eip712Domain,
          **fields: object) -> SignedTransaction:
    return sign(n, PlaceOrder(owner(n), 0, BTC, side, price_ticks, size_lots,
                              **fields), domain)  # type: ignore[arg-type]

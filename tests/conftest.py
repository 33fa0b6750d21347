"""Shared test fixtures: a venue with one oracle key, and helpers to run transactions."""

from __future__ import annotations

from collections.abc import Iterable

import coincurve
import pytest
from hypothesis import settings

from rollbook.commitment import apply_and_commit, genesis_commitment
from rollbook.execution import (
    Batch,
    OraclePrice,
    OracleUpdate,
    Receipt,
    State,
    Transaction,
    VenueConfig,
    default_venue_config,
    genesis_state,
)
from rollbook.execution.crypto import address_of_public_key, sign_digest
from rollbook.execution.oracle import oracle_message_digest

# every failure prints the blob that reproduces it (@reproduce_failure), in CI logs too
settings.register_profile("rollbook", print_blob=True)
settings.load_profile("rollbook")

ORACLE_KEY = (0x0A11CE).to_bytes(32, "big")
ORACLE_ADDRESS = address_of_public_key(
    coincurve.PrivateKey(ORACLE_KEY).public_key.format(compressed=False))
BTC = 1  # market id and index id of the default BTC perpetual
USDC = 10**6  # quantums per USDC
PRICE_100K_TICKS = 1_000_000  # $100,000 at $0.1 ticks
INDEX_100K_QUANTUMS = 100_000 * USDC
ALICE = b"\xa1" * 20
BOB = b"\xb0" * 20
CAROL = b"\xc4" * 20
DAVE = b"\xd5" * 20


def venue_config() -> VenueConfig:
    return default_venue_config((ORACLE_ADDRESS,))


def signed_oracle(state: State, timestamp_ms: int, price_quantums: int,
                  index_id: int = BTC, key: bytes = ORACLE_KEY) -> OracleUpdate:
    prices = (OraclePrice(index_id, price_quantums),)
    digest = oracle_message_digest(state.config.chain_id, timestamp_ms, prices)
    return OracleUpdate(timestamp_ms, prices, (sign_digest(key, digest),))


class Venue:
    """A state plus a clock: each ``run`` applies one batch one second later."""

    def __init__(self, config: VenueConfig | None = None) -> None:
        self.state = genesis_state(config or venue_config())
        self.commitment = genesis_commitment(self.state)
        self.clock_ms = 1_000_000
        self.next_deposit_id = 1

    def run(self, *txs: Transaction, advance_ms: int = 1_000) -> list[Receipt]:
        """Apply one batch and commit its root; every test checks the incremental tree
        against the state recomputed from scratch, so a missed touch mark fails here."""
        self.clock_ms += advance_ms
        batch = Batch(self.state.batch_index + 1, self.clock_ms, self.commitment.root, tuple(txs))
        receipts, _ = apply_and_commit(self.state, self.commitment, batch)
        self.commitment.check(self.state)
        return receipts

    def run_ok(self, *txs: Transaction, advance_ms: int = 1_000) -> list[Receipt]:
        receipts = self.run(*txs, advance_ms=advance_ms)
        for receipt in receipts:
            assert receipt.ok, receipt.message
        return receipts

    def oracle(self, price_quantums: int, index_id: int = BTC) -> OracleUpdate:
        # the update is stamped with the time of the batch that will carry it
        return signed_oracle(self.state, self.clock_ms + 1_000, price_quantums, index_id)

    def deposit(self, owner: bytes, amount_quantums: int, subaccount: int = 0) -> Transaction:
        from rollbook.execution import Deposit

        tx = Deposit(self.next_deposit_id, owner, subaccount, amount_quantums)
        self.next_deposit_id += 1
        return tx

    def fund(self, owners: Iterable[bytes], amount_quantums: int) -> None:
        self.run_ok(*(self.deposit(owner, amount_quantums) for owner in owners))


@pytest.fixture
def venue() -> Venue:
    """A venue with the BTC perpetual priced at $100,000 and nobody funded yet."""
    v = Venue()
    v.run_ok(v.oracle(INDEX_100K_QUANTUMS))
    return v

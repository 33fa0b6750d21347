"""Shared test fixtures: a venue with one oracle key, and helpers to run transactions."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from typing import cast

import coincurve
import pytest
from hypothesis import settings

from rollbook.commitment import apply_and_commit, canonical_root, genesis_commitment
from rollbook.execution import (
    Batch,
    ErrorCode,
    OraclePrice,
    OracleUpdate,
    Receipt,
    State,
    SviParameters,
    Transaction,
    VenueConfig,
    VolatilityUpdate,
    apply_transaction,
    default_venue_config,
    genesis_state,
    options_venue_config,
)
from rollbook.execution.crypto import address_of_public_key, sign_digest
from rollbook.execution.errors import ERROR_MESSAGES
from rollbook.execution.options.fixed_point import WAD
from rollbook.execution.options.smile import MS_PER_YEAR
from rollbook.execution.options.volatility import volatility_message_digest
from rollbook.execution.oracle import oracle_message_digest
from rollbook.execution.stf import BASE_COST_UNITS

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


def options_config() -> VenueConfig:
    """The BTC perpetual plus an option class on BTC ($1 ticks, 0.01 BTC contracts)."""
    return options_venue_config((ORACLE_ADDRESS,))


def flat_smile(index_id: int, expiry_ms: int, observed_ms: int,
               vol_ppm: int) -> SviParameters:
    """A flat SVI slice: total variance ``a = vol**2 x tau`` for every strike (b = 0)."""
    a_wad = vol_ppm * vol_ppm * WAD * (expiry_ms - observed_ms) // (10**12 * MS_PER_YEAR)
    return SviParameters(index_id, expiry_ms, a_wad, 0, 0, 0, WAD // 10)


def skewed_smile(index_id: int, expiry_ms: int, observed_ms: int,
                 vol_ppm: int) -> SviParameters:
    """A smile with put skew (rho < 0) around an at-the-money volatility of about ``vol``."""
    base = flat_smile(index_id, expiry_ms, observed_ms, vol_ppm)
    return SviParameters(index_id, expiry_ms, base.a_wad * 8 // 10, WAD // 20, -WAD * 3 // 10,
                         0, WAD // 10)


def signed_volatility(state: State, timestamp_ms: int, smiles: tuple[SviParameters, ...],
                      keys: tuple[bytes, ...] = (ORACLE_KEY,)) -> VolatilityUpdate:
    digest = volatility_message_digest(state.config.chain_id, timestamp_ms, smiles)
    return VolatilityUpdate(timestamp_ms, smiles, tuple(sign_digest(k, digest) for k in keys))


def assert_rejected(state: State, tx: object, code: ErrorCode, detail: str | None = None) -> None:
    """``tx`` is rejected with ``code``, the stable message, no events and no state change."""
    before = canonical_root(state)
    next_ids = (state.next_order_id, state.next_deposit_id, state.next_withdrawal_id)
    receipt = apply_transaction(state, cast(Transaction, tx))
    assert receipt.code == code, receipt.message
    base = ERROR_MESSAGES[code]
    if detail is None:
        assert receipt.message == base or receipt.message.startswith(base + " ("), (
            receipt.message)
    else:
        assert receipt.message == f"{base} ({detail})"
    assert receipt.events == ()
    assert not receipt.ok
    assert canonical_root(state) == before
    assert (state.next_order_id, state.next_deposit_id, state.next_withdrawal_id) == next_ids
    if type(tx) in BASE_COST_UNITS:
        assert receipt.cost_units == BASE_COST_UNITS[type(tx)]


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

    def oracle(self, price_quantums: int, index_id: int = BTC,
               advance_ms: int = 1_000) -> OracleUpdate:
        # the update is stamped with the time of the batch that will carry it
        return signed_oracle(self.state, self.clock_ms + advance_ms, price_quantums, index_id)

    def volatility(self, *smiles: SviParameters, advance_ms: int = 1_000) -> VolatilityUpdate:
        """Smiles stamped with the time of the batch that will carry them (``SviParameters``
        built for that observation time, e.g. with ``flat_smile(..., venue.next_ms, ...)``)."""
        return signed_volatility(self.state, self.clock_ms + advance_ms, smiles)

    @property
    def next_ms(self) -> int:
        """The timestamp of the next batch ``run`` applies with the default advance."""
        return self.clock_ms + 1_000

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``pure_only`` tests when ``rollbook.execution`` is mypyc-compiled.

    They feed deliberately ill-typed objects in-process (an int where an enum is declared, an
    ``object()`` for a transaction): interpreted, the STF's own checks reject them; compiled,
    the call boundary raises ``TypeError`` first. ``tests/execution/test_compiled_types.py``
    asserts that behaviour of the compiled build instead.
    """
    from rollbook._pure import is_compiled

    if not is_compiled():
        return
    skip = pytest.mark.skip(reason="ill-typed input: the compiled build raises TypeError")
    for item in items:
        if item.get_closest_marker("pure_only") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_gc_policy() -> Iterator[None]:
    """Commands run in-process (``main(["verify", ...])``, the benches) set the process's
    garbage-collector policy (``rollbook.runtime.tune_gc_for_throughput``: raised thresholds,
    everything alive frozen); put it back so that it does not carry into the next tests."""
    thresholds = gc.get_threshold()
    yield
    if gc.get_threshold() != thresholds:
        gc.set_threshold(*thresholds)
        gc.unfreeze()

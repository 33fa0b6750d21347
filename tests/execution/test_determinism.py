"""Determinism: one seeded stream, replayed in separate processes with different PYTHONHASHSEED
values and in-process from its canonical encoding, yields the same digest after every batch.

The stream is built in-process with a seeded ``random.Random`` against a live state (so cancels
and modifies name real orders), and exercises trades, cancels, modifies, oracle moves (some big
enough to liquidate), funding samples and payments, liquidations, transfers, withdrawals and
isolated margin. Each batch carries the previous batch's digest as its previous root.

Each replica prints, per batch, the state digest and a digest of the receipts (codes, messages
and events), so events must replay identically too, not just state.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path

import pytest

from conftest import ORACLE_ADDRESS, USDC, signed_oracle, venue_config
from replicas import assert_pure_replica_agrees, assert_replicas_agree, replay_child
from rollbook._pure import is_compiled
from rollbook.commitment import apply_and_commit, genesis_commitment
from rollbook.execution import (
    Batch,
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    Deposit,
    FundingTick,
    ModifyOrder,
    MoveIsolatedMargin,
    OrderType,
    PlaceOrder,
    ProcessLiquidations,
    Receipt,
    SetMarginMode,
    Side,
    State,
    TimeInForce,
    Transaction,
    Transfer,
    Withdraw,
    genesis_state,
)
from rollbook.execution.encoding import decode_batch, encode_batch
from rollbook.execution.events import (
    CancelReason,
    Fill,
    FundingPaid,
    Liquidated,
    OrderCancelled,
)

BTC = 1
TRADERS = tuple(bytes([0x20 + i]) * 20 for i in range(6))
MAKER = b"\x3a" * 20
ISOLATED_TRADER = TRADERS[-1]
STREAM_SEED = 20_240_601
BATCHES = 160
HASH_SEEDS = ("0", "1", "12345", "random")
TICK_QUANTUMS = 100_000
LOT_VALUE_DIVISOR = 10_000  # a lot's value in quantums is index / 10,000
PPM = 10**6

CHILD = replay_child("default_venue_config")


def _receipts_digest(receipts: list[Receipt]) -> str:
    return hashlib.sha256(repr(receipts).encode()).hexdigest()


class _StreamBuilder:
    """Random but plausible venue traffic, chosen against the live state."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.state: State = genesis_state(venue_config())
        self.clock_ms = 1_000_000
        self.index_quantums = 100_000 * USDC
        self.batches: list[Batch] = []
        self.lines: list[str] = []  # "state root receipts digest" per batch
        self.seen: Counter[str] = Counter()
        self.commitment = genesis_commitment(self.state)

    def build(self, batch_count: int) -> None:
        for number in range(1, batch_count + 1):
            self.clock_ms += self.rng.choice((1_000, 5_000, 30_000, 60_000, 61_000, 120_000))
            txs = self._genesis_txs() if number == 1 else self._random_txs()
            batch = Batch(number, self.clock_ms, self.commitment.root, tuple(txs))
            receipts, root = apply_and_commit(self.state, self.commitment, batch)
            self.commitment.check(self.state)
            self._observe(txs, receipts)
            self.batches.append(batch)
            self.lines.append(f"{root.hex()} {_receipts_digest(receipts)}")

    # --- transactions ---------------------------------------------------------------------

    def _deposit(self, owner: bytes, amount_quantums: int) -> Deposit:
        tx = Deposit(self.state.next_deposit_id + self._pending_deposits, owner, 0,
                     amount_quantums)
        self._pending_deposits += 1
        return tx

    def _genesis_txs(self) -> list[Transaction]:
        self._pending_deposits = 0
        txs: list[Transaction] = [self._oracle(self.index_quantums)]
        txs.append(self._deposit(MAKER, 500_000 * USDC))
        txs.extend(self._deposit(t, self.rng.choice((500, 2_000, 10_000)) * USDC)
                   for t in TRADERS)
        # the last trader trades BTC in isolated margin
        txs.append(SetMarginMode(ISOLATED_TRADER, 0, BTC, True))
        txs.append(MoveIsolatedMargin(ISOLATED_TRADER, 0, BTC, 300 * USDC))
        return txs

    def _random_txs(self) -> list[Transaction]:
        self._pending_deposits = 0
        rng = self.rng
        txs: list[Transaction] = []
        if rng.random() < 0.35:
            big = rng.random() < 0.25
            move = rng.randint(50_000, 200_000) if big else rng.randint(0, 15_000)
            price = self.index_quantums * (PPM + (move if rng.random() < 0.5 else -move)) // PPM
            price = min(max(price, 40_000 * USDC), 250_000 * USDC)
            txs.append(self._oracle(price))
        if rng.random() < 0.5:
            txs.append(FundingTick())
        for _ in range(rng.randint(1, 7)):
            txs.append(self._one_random_tx())
        rng.shuffle(txs)
        return txs

    def _oracle(self, price_quantums: int) -> Transaction:
        self.index_quantums = price_quantums
        return signed_oracle(self.state, self.clock_ms, price_quantums)

    def _price_ticks(self, offset_ppm: int) -> int:
        return max(1, self.index_quantums // TICK_QUANTUMS * (PPM + offset_ppm) // PPM)

    def _one_random_tx(self) -> Transaction:
        rng = self.rng
        trader = rng.choice(TRADERS)
        sub = self.state.subaccounts.get((trader, 0))
        orders = sorted(sub.orders) if sub is not None else []
        kind = rng.choices(
            ("quote", "limit", "taker", "leveraged", "cancel", "cancel_client", "cancel_all",
             "modify", "deposit", "withdraw", "transfer", "isolate", "move", "liquidate"),
            weights=(8, 6, 5, 3, 4, 2, 1, 4, 2, 1, 1, 1, 1, 1))[0]
        is_buy = rng.random() < 0.5
        side = Side.BUY if is_buy else Side.SELL
        if kind == "quote":
            spread = rng.randint(500, 20_000)
            return PlaceOrder(MAKER, 0, BTC, side, self._price_ticks(-spread if is_buy else spread),
                              rng.randint(100, 2_000), time_in_force=TimeInForce.POST_ONLY)
        if kind == "limit":
            return PlaceOrder(trader, 0, BTC, side, self._price_ticks(rng.randint(-30_000, 30_000)),
                              rng.randint(1, 500), client_order_id=rng.randint(0, 5))
        bound_ticks = self._price_ticks(30_000 if is_buy else -30_000)  # market orders' bound
        if kind == "taker":
            tif = rng.choice((TimeInForce.IOC, TimeInForce.FOK))
            return PlaceOrder(trader, 0, BTC, side, bound_ticks, rng.randint(1, 800),
                              OrderType.MARKET, tif)
        if kind == "leveraged":
            equity = 0 if sub is None else sub.cross.collateral_quantums
            lots = max(1, equity * rng.randint(5, 9) // (self.index_quantums // LOT_VALUE_DIVISOR))
            return PlaceOrder(trader, 0, BTC, side, bound_ticks, min(lots, 100_000),
                              OrderType.MARKET, TimeInForce.IOC)
        if kind == "cancel":
            order_id = rng.choice(orders) if orders else rng.randint(1, 10_000)
            return CancelOrder(trader, 0, order_id)
        if kind == "cancel_client":
            return CancelOrderByClientId(trader, 0, rng.randint(0, 5))
        if kind == "cancel_all":
            return CancelAll(rng.choice((trader, MAKER)), 0)
        if kind == "modify":
            if not orders:
                return ModifyOrder(trader, 0, rng.randint(1, 10_000), 1_000_000, 1)
            order = self.state.orders[rng.choice(orders)]
            price = order.price_ticks if rng.random() < 0.5 else self._price_ticks(
                rng.randint(-30_000, 30_000))
            return ModifyOrder(trader, 0, order.order_id, price, rng.randint(1, 600))
        if kind == "deposit":
            return self._deposit(trader, rng.randint(1, 5_000) * USDC)
        if kind == "withdraw":
            return Withdraw(trader, 0, rng.randint(1, 3_000) * USDC)
        if kind == "transfer":
            return Transfer(trader, 0, rng.choice(TRADERS), 0, rng.randint(1, 1_000) * USDC)
        if kind == "isolate":
            return SetMarginMode(trader, 0, BTC, rng.random() < 0.5)
        if kind == "move":
            return MoveIsolatedMargin(ISOLATED_TRADER, 0, BTC, rng.randint(-300, 500) * USDC)
        return ProcessLiquidations()

    def _observe(self, txs: list[Transaction], receipts: list[Receipt]) -> None:
        for tx, receipt in zip(txs, receipts, strict=True):
            self.seen[f"{type(tx).__name__}:{'ok' if receipt.ok else 'rejected'}"] += 1
            for ev in receipt.events:
                if isinstance(ev, Fill):
                    self.seen["fill"] += 1
                elif isinstance(ev, OrderCancelled):
                    self.seen[f"cancel:{CancelReason(ev.reason).name}"] += 1
                elif isinstance(ev, FundingPaid):
                    self.seen["funding_paid"] += 1
                elif isinstance(ev, Liquidated):
                    self.seen["liquidated"] += 1


@pytest.fixture(scope="module")
def stream() -> _StreamBuilder:
    builder = _StreamBuilder(STREAM_SEED)
    builder.build(BATCHES)
    return builder


def test_the_stream_exercises_every_kind_of_work(stream: _StreamBuilder) -> None:
    seen = stream.seen
    for key in ("fill", "cancel:USER", "cancel:MODIFIED", "cancel:IOC_REMAINDER",
                "OracleUpdate:ok", "FundingTick:ok", "funding_paid", "liquidated",
                "ModifyOrder:ok", "Transfer:ok", "Withdraw:ok", "MoveIsolatedMargin:ok",
                "CancelOrderByClientId:ok", "PlaceOrder:rejected"):
        assert seen[key] > 0, f"the stream never produced {key}: {dict(seen)}"


def test_encoded_stream_replays_to_the_same_digests_in_process(
        stream: _StreamBuilder) -> None:
    state = genesis_state(venue_config())
    commitment = genesis_commitment(state)
    for batch, expected in zip(stream.batches, stream.lines, strict=True):
        decoded = decode_batch(encode_batch(batch))
        assert decoded == batch  # the round trip is lossless
        receipts, root = apply_and_commit(state, commitment, decoded)
        assert f"{root.hex()} {_receipts_digest(receipts)}" == expected


def test_replicas_with_different_hash_seeds_agree_after_every_batch(
        stream: _StreamBuilder, tmp_path: Path) -> None:
    probes = assert_replicas_agree(stream.batches, stream.lines, CHILD,
                                   (ORACLE_ADDRESS.hex(),), HASH_SEEDS, tmp_path)
    # the replicas really ran with different string hashing
    assert len(set(probes)) >= 3


@pytest.mark.skipif(not is_compiled(), reason="differential test of the mypyc-compiled build")
def test_the_pure_build_agrees_with_the_compiled_build_after_every_batch(
        stream: _StreamBuilder, tmp_path: Path) -> None:
    # the stream's roots and receipts were computed here, compiled; the reference replays it
    assert_pure_replica_agrees(stream.batches, stream.lines, CHILD, (ORACLE_ADDRESS.hex(),),
                               tmp_path)

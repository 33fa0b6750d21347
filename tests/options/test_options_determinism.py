"""Determinism with options: one seeded stream, replayed in processes with different hash seeds.

The stream lists options and a smile, quotes ladders with market-maker protection, trades
options and the perpetual in both margin modes, moves the index and the smile, and expires one
expiry (books closed, then settled) while the other keeps trading. Each replica prints the state
root and a digest of the receipts after every batch; they must agree byte for byte.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path

import pytest

from conftest import BTC, ORACLE_ADDRESS, USDC, options_config, signed_oracle, signed_volatility
from conftest import skewed_smile as smile
from replicas import assert_pure_replica_agrees, assert_replicas_agree, replay_child
from rollbook._pure import is_compiled
from rollbook.commitment import apply_and_commit, genesis_commitment
from rollbook.execution import (
    Batch,
    CancelAll,
    Deposit,
    ExpireOptions,
    ListOption,
    MassQuote,
    OptionType,
    OrderType,
    PlaceOrder,
    ProcessLiquidations,
    Quote,
    Receipt,
    SetMmp,
    SetPortfolioMargin,
    Side,
    State,
    TimeInForce,
    Transaction,
    genesis_state,
)
from rollbook.execution.events import ExpirySettled, Fill, MmpTriggered, OptionSettled
from rollbook.execution.state import EXPIRY_SETTLED

STREAM_SEED = 6_060_606
BATCHES = 70
HASH_SEEDS = ("0", "777", "random")
START_MS = 1_000_000
NEAR_MS = START_MS + 1_200_000
FAR_MS = START_MS + 5 * 86_400_000
MAKERS = (b"\x3a" * 20, b"\x3b" * 20)
TRADERS = tuple(bytes([0x60 + i]) * 20 for i in range(5))
K = 1_000 * USDC
PPM = 10**6

CHILD = replay_child("options_venue_config")


class _Stream:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.state: State = genesis_state(options_config())
        self.commitment = genesis_commitment(self.state)
        self.clock_ms = START_MS
        self.index = 100 * K
        self.batches: list[Batch] = []
        self.lines: list[str] = []
        self.seen: Counter[str] = Counter()

    def build(self) -> None:
        deposit_id = 1
        setup: list[Transaction] = [signed_oracle(self.state, self.clock_ms + 1_000, self.index)]
        for owner in MAKERS + TRADERS:
            amount = 2_000_000 * USDC if owner in MAKERS else 60_000 * USDC
            setup.append(Deposit(deposit_id, owner, 0, amount))
            deposit_id += 1
        market_id = 100
        for expiry_ms, strikes in ((NEAR_MS, (95, 100, 105)), (FAR_MS, (90, 100, 110))):
            for strike in strikes:
                for option_type in (OptionType.CALL, OptionType.PUT):
                    setup.append(ListOption(market_id, BTC, expiry_ms, strike * K, option_type))
                    market_id += 1
        setup.extend(SetPortfolioMargin(t, 0, True) for t in TRADERS[::2])
        setup.extend(SetMmp(m, 0, BTC, 5_000, 2_000, 40 * 10_000_000, 0, 0) for m in MAKERS)
        self._run(setup)
        self._run([self._smile(650_000)])
        while len(self.batches) < BATCHES:
            self._run(self._random_batch())

    def _run(self, txs: list[Transaction]) -> None:
        self.clock_ms += 1_000 if len(self.batches) < 2 else self.rng.choice(
            (1_000, 5_000, 60_000, 120_000))
        batch = Batch(len(self.batches) + 1, self.clock_ms, self.commitment.root, tuple(txs))
        receipts, root = apply_and_commit(self.state, self.commitment, batch)
        self.commitment.check(self.state)
        self.batches.append(batch)
        self.lines.append(f"{root.hex()} {_digest(receipts)}")
        for tx, receipt in zip(txs, receipts, strict=True):
            self.seen[f"{type(tx).__name__}:{'ok' if receipt.ok else receipt.code.name}"] += 1
            for ev in receipt.events:
                self.seen[type(ev).__name__] += 1

    def _smile(self, vol_ppm: int) -> Transaction:
        observed = self.clock_ms
        smiles = tuple(smile(BTC, expiry_ms, observed, vol_ppm)
                       for (_, expiry_ms), e in sorted(self.state.expiries.items())
                       if e.status != EXPIRY_SETTLED and expiry_ms - observed > 1_000)
        return signed_volatility(self.state, observed, smiles)

    def _live(self) -> list[int]:
        return sorted(m for m, market in self.state.markets.items()
                      if market.option is not None and self.clock_ms < market.option.spec.expiry_ms)

    def _mark(self, market_id: int) -> int:
        return max(1, self.state.markets[market_id].index_price_quantums // USDC)

    def _random_batch(self) -> list[Transaction]:
        rng = self.rng
        txs: list[Transaction] = []
        if rng.random() < 0.5:
            move = rng.randint(-40_000, 40_000)
            self.index = min(max(self.index * (PPM + move) // PPM, 60 * K), 150 * K)
            txs.append(signed_oracle(self.state, self.clock_ms, self.index))
        if rng.random() < 0.2:
            txs.append(self._smile(rng.randint(300_000, 1_200_000)))
        live = self._live()
        for maker in MAKERS:
            if live and rng.random() < 0.6:
                quotes = []
                for market_id in rng.sample(live, min(6, len(live))):
                    width = rng.randint(5, 150)
                    mark = self._mark(market_id)
                    quotes.append(Quote(market_id, Side.BUY, max(1, mark - width),
                                        rng.randint(5, 30)))
                    quotes.append(Quote(market_id, Side.SELL, mark + width, rng.randint(5, 30)))
                txs.append(MassQuote(maker, 0, BTC, tuple(quotes)))
        for _ in range(rng.randint(2, 8)):
            trader = rng.choice(TRADERS)
            is_buy = rng.random() < 0.5
            side = Side.BUY if is_buy else Side.SELL
            if live and rng.random() < 0.75:
                market_id = rng.choice(live)
                mark = self._mark(market_id)
                if rng.random() < 0.5:
                    bound = mark * 3 // 2 if is_buy else max(1, mark // 2)
                    txs.append(PlaceOrder(trader, 0, market_id, side, bound,
                                          rng.randint(1, 40), OrderType.MARKET, TimeInForce.IOC))
                else:
                    offset = rng.randint(-100, 100)
                    txs.append(PlaceOrder(trader, 0, market_id, side, max(1, mark + offset),
                                          rng.randint(1, 20)))
            else:
                ticks = self.index // 100_000 * (PPM + rng.randint(-5_000, 5_000)) // PPM
                txs.append(PlaceOrder(trader, 0, BTC, side, ticks, rng.randint(1, 2_000),
                                      time_in_force=TimeInForce.IOC))
        if rng.random() < 0.1:
            txs.append(CancelAll(rng.choice(TRADERS), 0))
        if rng.random() < 0.1:
            txs.append(ProcessLiquidations())
        for (index_id, expiry_ms), expiry in sorted(self.state.expiries.items()):
            if expiry.status != EXPIRY_SETTLED and self.clock_ms >= expiry_ms:
                txs.append(ExpireOptions(index_id, expiry_ms))
        rng.shuffle(txs)
        return txs


def _digest(receipts: list[Receipt]) -> str:
    return hashlib.sha256(repr(receipts).encode()).hexdigest()


@pytest.fixture(scope="module")
def stream() -> _Stream:
    builder = _Stream(STREAM_SEED)
    builder.build()
    return builder


def test_the_stream_trades_quotes_and_settles(stream: _Stream) -> None:
    seen = stream.seen
    for key in ("MassQuote:ok", "VolatilityUpdate:ok", "ExpireOptions:ok",
                Fill.__name__, OptionSettled.__name__, ExpirySettled.__name__,
                MmpTriggered.__name__):
        assert seen[key] > 0, f"the stream never produced {key}: {dict(seen)}"


def test_replicas_with_different_hash_seeds_agree_after_every_batch(
        stream: _Stream, tmp_path: Path) -> None:
    probes = assert_replicas_agree(stream.batches, stream.lines, CHILD,
                                   (ORACLE_ADDRESS.hex(),), HASH_SEEDS, tmp_path)
    assert len(set(probes)) >= 2


@pytest.mark.skipif(not is_compiled(), reason="differential test of the mypyc-compiled build")
def test_the_pure_build_agrees_with_the_compiled_build_after_every_batch(
        stream: _Stream, tmp_path: Path) -> None:
    # the stream's roots and receipts were computed here, compiled; the reference replays it
    assert_pure_replica_agrees(stream.batches, stream.lines, CHILD, (ORACLE_ADDRESS.hex(),),
                               tmp_path)

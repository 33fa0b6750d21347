"""The standard seeded workload: 1,000 funded accounts trading one perpetual.

Mix (by count of operations): 60% limit GTC orders around the mid (Gaussian offsets, sigma 20
ticks; the side is the passive one for the offset, so most rest), 10% orders that cross (half
IOC limits, half market orders with a worst-price bound), 25% cancels of live orders, 5%
modifies of live orders (half size decreases that keep priority, half re-pricings).

The stream is *recorded* by running it once through the STF: cancels and modifies must name
orders that are live at that point, and only the STF knows which orders are. The recording
also yields, for each op, the order id the STF assigned, so the same stream can be replayed on a
peer engine with the same ids. Replaying the recorded transactions on a fresh genesis state is
deterministic and reproduces the recording pass exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import coincurve

from rollbook.execution import (
    Batch,
    CancelOrder,
    Deposit,
    ModifyOrder,
    OraclePrice,
    OracleUpdate,
    OrderType,
    PlaceOrder,
    Side,
    State,
    TimeInForce,
    Transaction,
    VenueConfig,
    apply_batch,
    apply_transaction,
    default_venue_config,
    genesis_state,
)
from rollbook.execution.crypto import address_of_public_key, sign_digest
from rollbook.execution.oracle import oracle_message_digest

__all__ = ["BENCH_ORACLE_KEY", "Workload", "bench_venue_config", "record_standard_workload"]

BENCH_ORACLE_KEY = (0xBE7C4).to_bytes(32, "big")
MARKET_ID = 1
MID_PRICE_TICKS = 1_000_000  # $100,000 at $0.1 ticks
INDEX_PRICE_QUANTUMS = 100_000 * 10**6
PRICE_SIGMA_TICKS = 20
CROSS_DISTANCE_TICKS = 3 * PRICE_SIGMA_TICKS
ORDER_LOTS_MAX = 100
ACCOUNT_COLLATERAL_QUANTUMS = 10_000_000 * 10**6
TXS_PER_BATCH = 5_000
BATCH_INTERVAL_MS = 100
GENESIS_TIME_MS = 1_700_000_000_000
SHARE_GTC = 0.60
SHARE_CROSS = 0.10
SHARE_CANCEL = 0.25


@dataclass(frozen=True, slots=True)
class Workload:
    config: VenueConfig
    setup: tuple[Batch, ...]  # deposits and the first oracle price
    batches: tuple[Batch, ...]  # the measured operations
    peer_ops: list[list[object]]  # the same operations in the peer runner's format
    ops: int


def bench_venue_config(open_orders_per_subaccount_max: int = 2_000) -> VenueConfig:
    oracle = address_of_public_key(
        coincurve.PrivateKey(BENCH_ORACLE_KEY).public_key.format(compressed=False))
    config = default_venue_config((oracle,))
    return replace(config, open_orders_per_subaccount_max=open_orders_per_subaccount_max,
                   batch_cost_max=10**9)


def account_address(number: int) -> bytes:
    return (0x10_0000 + number).to_bytes(20, "big")


def setup_batches(config: VenueConfig, accounts: int) -> tuple[Batch, ...]:
    deposits: list[Transaction] = [
        Deposit(i + 1, account_address(i), 0, ACCOUNT_COLLATERAL_QUANTUMS)
        for i in range(accounts)]
    prices = (OraclePrice(MARKET_ID, INDEX_PRICE_QUANTUMS),)
    digest = oracle_message_digest(config.chain_id, GENESIS_TIME_MS, prices)
    oracle = OracleUpdate(GENESIS_TIME_MS, prices, (sign_digest(BENCH_ORACLE_KEY, digest),))
    return (Batch(1, GENESIS_TIME_MS, bytes(32), (*deposits, oracle)),)


class _Recorder:
    """Generates operations against a live state and records them with the STF's order ids."""

    def __init__(self, state: State, rng: random.Random, accounts: int) -> None:
        self.state = state
        self.rng = rng
        self.accounts = accounts
        self.live: list[int] = []  # order ids believed live; stale ones are dropped lazily
        self.peer_id: dict[int, int] = {}  # STF order id -> id the peer knows it by
        self.pending: list[Transaction] = []
        self.pending_peer: list[list[object] | None] = []
        self.batches: list[Batch] = []
        self.peer_ops: list[list[object]] = []

    def _pick_live(self) -> int | None:
        orders = self.state.orders
        while self.live:
            index = self.rng.randrange(len(self.live))
            order_id = self.live[index]
            if order_id in orders:
                return order_id
            self.live[index] = self.live[-1]
            self.live.pop()
        return None

    def _limit(self) -> tuple[Transaction, list[object]]:
        rng = self.rng
        offset = round(rng.gauss(0.0, PRICE_SIGMA_TICKS))
        is_buy = offset < 0 or (offset == 0 and rng.random() < 0.5)
        price = MID_PRICE_TICKS + offset
        size = rng.randint(1, ORDER_LOTS_MAX)
        owner = account_address(rng.randrange(self.accounts))
        tx = PlaceOrder(owner, 0, MARKET_ID, Side.BUY if is_buy else Side.SELL, price, size)
        return tx, ["L", 0, "B" if is_buy else "S", price, size, "GTC"]

    def _crossing(self) -> tuple[Transaction, list[object]]:
        rng = self.rng
        is_buy = rng.random() < 0.5
        price = MID_PRICE_TICKS + (CROSS_DISTANCE_TICKS if is_buy else -CROSS_DISTANCE_TICKS)
        size = rng.randint(1, ORDER_LOTS_MAX)
        owner = account_address(rng.randrange(self.accounts))
        order_type = OrderType.MARKET if rng.random() < 0.5 else OrderType.LIMIT
        tx = PlaceOrder(owner, 0, MARKET_ID, Side.BUY if is_buy else Side.SELL, price, size,
                        order_type=order_type, time_in_force=TimeInForce.IOC)
        return tx, ["L", 0, "B" if is_buy else "S", price, size, "IOC"]

    def next_op(self) -> tuple[Transaction, list[object]]:
        draw = self.rng.random()
        if draw < SHARE_GTC:
            return self._limit()
        if draw < SHARE_GTC + SHARE_CROSS:
            return self._crossing()
        order_id = self._pick_live()
        if order_id is None:
            return self._limit()
        order = self.state.orders[order_id]
        owner = order.subaccount.owner
        if draw < SHARE_GTC + SHARE_CROSS + SHARE_CANCEL:
            return CancelOrder(owner, 0, order_id), ["C", self.peer_id[order_id]]
        if order.size_lots > 1 and self.rng.random() < 0.5:
            new_price, new_size = order.price_ticks, self.rng.randint(1, order.size_lots - 1)
        else:
            step = self.rng.choice((-2, -1, 1, 2))
            new_price = order.price_ticks + (-abs(step) if order.is_buy else abs(step))
            new_size = order.size_lots
        return (ModifyOrder(owner, 0, order_id, new_price, new_size),
                ["M", self.peer_id[order_id], new_price, new_size])

    def record(self, ops: int, first_batch_index: int, start_ms: int) -> None:
        state = self.state
        index = first_batch_index
        clock = start_ms
        for _ in range(ops):
            tx, peer = self.next_op()
            self._apply_one(tx, peer, index, clock)
            if len(self.pending) == TXS_PER_BATCH:
                self.batches.append(Batch(index, clock, bytes(32), tuple(self.pending)))
                self.pending = []
                index += 1
                clock += BATCH_INTERVAL_MS
        if self.pending:
            self.batches.append(Batch(index, clock, bytes(32), tuple(self.pending)))
        assert state.batch_index == self.batches[-1].index

    def _apply_one(self, tx: Transaction, peer: list[object] | None, index: int,
                   clock: int) -> None:
        """Apply ``tx`` alone (as batch ``index`` continued) to learn the ids it creates."""
        state = self.state
        if state.batch_index != index:
            apply_batch(state, Batch(index, clock, bytes(32), ()))
        next_id = state.next_order_id
        receipt = apply_transaction(state, tx)
        self.pending.append(tx)
        if peer is None or not receipt.ok:
            return  # a rejected operation changed nothing, on either engine
        if peer[0] in ("L", "M"):
            new_id = next_id if state.next_order_id > next_id else None
            if peer[0] == "L":
                assert new_id is not None
                peer[1] = new_id
                self.peer_id[new_id] = new_id
            elif new_id is not None:  # re-priced: the STF gave the order a new id
                assert isinstance(tx, ModifyOrder)
                self.peer_id[new_id] = self.peer_id[tx.order_id]
            placed = new_id if new_id is not None else getattr(tx, "order_id", None)
            if placed is not None and placed in state.orders:
                self.live.append(placed)
        self.peer_ops.append(peer)


def record_standard_workload(seed: int, ops: int = 200_000, accounts: int = 1_000) -> Workload:
    """Record the standard workload (see module doc); deterministic for a given seed."""
    config = bench_venue_config()
    setup = setup_batches(config, accounts)
    state = genesis_state(config)
    for batch in setup:
        apply_batch(state, batch)
    recorder = _Recorder(state, random.Random(seed), accounts)
    recorder.record(ops, setup[-1].index + 1, GENESIS_TIME_MS + BATCH_INTERVAL_MS)
    return Workload(config, setup, tuple(recorder.batches), recorder.peer_ops, ops)


"""The node without a chain: acks, batches, replay against live, bad input, feeds, restarts."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from node_helpers import (
    BTC,
    CHAIN_ID,
    CONTRACT,
    PRICE_TICKS,
    USDC,
    fund,
    key,
    offline_config,
    owner,
    place,
    sign,
)

from rollbook.commitment import canonical_root, genesis_commitment
from rollbook.execution import (
    CancelOrder,
    ErrorCode,
    PlaceOrder,
    Side,
    TimeInForce,
    Withdraw,
    genesis_state,
)
from rollbook.execution.crypto import SECP256K1_N
from rollbook.node import (
    Ack,
    BookDelta,
    BookView,
    Node,
    NodeError,
    NodeUnavailable,
    SubscriptionLagged,
    TradeView,
)
from rollbook.node.core import NODE_SWITCH_INTERVAL_S
from rollbook.node.journal import BatchClose, BatchOpen, EntryRecord, decode_record
from rollbook.runtime import SWITCH_INTERVAL
from rollbook.sequencer import (
    AdmissionError,
    AdmissionState,
    Eip712Domain,
    RegisterAgent,
    SignedTransaction,
    WriteAheadLog,
)
from rollbook.sequencer.batch_data import BatchData, encode_batch_data, replay_batch
from rollbook.sequencer.errors import AdmissionCode
from rollbook.sequencer.limits import REQUEST_BYTES_MAX, check_request

TRADERS = 6
QUIET_MS = 3_600_000  # a heartbeat interval no test here outlives


@pytest.fixture
def node(tmp_path: Path) -> Any:
    with Node(offline_config(tmp_path, snapshot_every=3)) as running:
        fund(running, [owner(i) for i in range(TRADERS)])
        yield running


def _trade_load(node: Node, rounds: int = 5) -> list[Ack]:
    """Resting orders, crossing orders, cancels, a withdrawal and an agent: every path."""
    domain = node.domain
    assert domain is not None
    acks: list[Ack] = []
    for r in range(rounds):
        orders = [place(i, Side.SELL if i % 2 else Side.BUY,
                        PRICE_TICKS + (5 + r if i % 2 else -5 - r), 10 + i, domain)
                  for i in range(TRADERS)]
        orders.append(place(0, Side.BUY, PRICE_TICKS + 50, 7, domain,
                            time_in_force=TimeInForce.IOC))
        results = [a for a in node.submit_many_sync(orders) if isinstance(a, Ack)]
        acks.extend(results)
        first_order = next(e.order_id for a in results for e in a.receipt.events
                           if type(e).__name__ == "OrderPlaced" and e.owner == owner(2))
        acks.append(node.submit_sync(sign(2, CancelOrder(owner(2), 0, first_order), domain)))
    acks.append(node.submit_sync(sign(3, Withdraw(owner(3), 0, 1_000 * USDC), domain)))
    acks.append(node.submit_sync(sign(4, RegisterAgent(owner(4), owner(5),
                                                       int(time.time() * 1000) + 60_000),
                                      domain)))
    acks.append(node.submit_sync(sign(5, PlaceOrder(owner(4), 0, BTC, Side.BUY,
                                                    PRICE_TICKS - 100, 3), domain)))
    return acks


def test_acks_are_durable_and_carry_receipts(node: Node) -> None:
    acks = _trade_load(node, rounds=2)
    assert all(a.ok for a in acks[:-1]) and acks[-1].ok  # the agent's order too
    durable = node.status_sync().durable_sequence
    assert all(a.sequence <= durable for a in acks)
    assert [a.sequence for a in acks] == sorted(a.sequence for a in acks)
    fills = [e for a in acks for e in a.receipt.events if type(e).__name__ == "Fill"]
    assert fills, "crossing orders traded"
    assert acks[-1].signer == owner(5) and acks[-1].tx_id and acks[-1].batch_index >= 1
    trades = node.trades_sync(BTC)
    assert len(trades) == len(fills) and trades[-1].price_ticks == fills[-1].price_ticks


def test_the_switch_interval_is_lowered_while_the_node_runs(tmp_path: Path) -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        with Node(offline_config(tmp_path)):
            assert sys.getswitchinterval() == pytest.approx(NODE_SWITCH_INTERVAL_S, abs=1e-6)
            assert SWITCH_INTERVAL.holders == 1
        assert sys.getswitchinterval() == pytest.approx(0.005, abs=1e-6)
        assert SWITCH_INTERVAL.holders == 0
    finally:
        sys.setswitchinterval(previous)


def test_batches_close_on_cadence(node: Node) -> None:
    node.submit_sync(place(1, Side.BUY, PRICE_TICKS - 10, 1, node.domain))  # type: ignore[arg-type]
    ack = node.submit_sync(place(1, Side.BUY, PRICE_TICKS - 11, 1, node.domain))  # type: ignore[arg-type]
    view = node.wait_for_batch(ack.batch_index, timeout_s=5)
    assert view.status == "pending"  # no chain: closed, never published
    assert view.entries >= 1 and view.data_bytes > 0
    views = node.batches()
    assert [v.index for v in views] == list(range(views[0].index, views[-1].index + 1))
    for earlier, later in itertools.pairwise(views):
        assert later.previous_root == earlier.root
        assert later.timestamp_ms >= earlier.timestamp_ms


def test_batches_are_cut_at_the_entry_limit(tmp_path: Path) -> None:
    with Node(offline_config(tmp_path, interval_ms=10_000, txs_max=16)) as node:
        fund(node, [owner(1)])
        acks = node.submit_many_sync([place(1, Side.BUY, PRICE_TICKS - 10 - i, 1,
                                            node.domain) for i in range(40)])  # type: ignore[arg-type]
        batches = {a.batch_index for a in acks if isinstance(a, Ack)}
        assert len(batches) >= 3
        node.close_batch_sync()
        assert all(v.entries <= 16 for v in node.batches())


def test_snapshots_under_concurrent_load(tmp_path: Path) -> None:
    """A snapshot per batch while four clients trade: the snapshot thread waits for a close
    record that the sequencer has appended (regression: it once waited for one still queued)."""
    # small batches cut inside large chunks: a batch closes (and a snapshot is queued) while
    # the sequencer still has hundreds of entries to execute before it appends its records
    with Node(offline_config(tmp_path, txs_max=16, snapshot_every=1)) as node:
        fund(node, [owner(i) for i in range(TRADERS)])
        domain = node.domain
        assert domain is not None
        errors: list[BaseException] = []

        def client(n: int) -> None:
            try:
                for round_index in range(4):
                    node.submit_many_sync([place(n, Side.BUY, PRICE_TICKS - 100 - round_index,
                                                 1, domain) for _ in range(200)])
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors and node._failure is None
        assert node.status_sync().running
    assert len(list((tmp_path / "snapshots").glob("*.rbs"))) == 2


def _wal_batches(data_dir: Path) -> list[tuple[BatchData, bytes]]:
    """Every closed batch in the log, as published bytes and the recorded root."""
    batches: list[tuple[BatchData, bytes]] = []
    with WriteAheadLog(data_dir / "wal") as wal:
        current: BatchOpen | None = None
        entries: list[Any] = []
        for _, payload in wal.read_from(wal.first_sequence):
            record = decode_record(payload)
            if isinstance(record, BatchOpen):
                current, entries = record, []
            elif isinstance(record, EntryRecord):
                entries.append(record.entry)
            elif isinstance(record, BatchClose):
                assert current is not None and current.index == record.index
                batches.append((BatchData(record.index, current.timestamp_ms,
                                          current.previous_root, tuple(entries)), record.root))
    return batches


def test_replay_equals_live_after_every_batch(tmp_path: Path) -> None:
    config = offline_config(tmp_path, snapshot_every=2)
    with Node(config) as node:
        fund(node, [owner(i) for i in range(TRADERS)])
        _trade_load(node)
        live_roots = {v.index: v.root for v in node.batches(start=1, limit=10_000)}
        node.close_batch_sync()
        live_roots = {v.index: v.root for v in node.batches(start=1, limit=10_000)}
        state, commitment, _ = node.snapshot_state()
    venue = config.venue_config(CHAIN_ID)
    replayed = genesis_state(venue)
    tree = genesis_commitment(replayed)
    admission = AdmissionState()
    domain = Eip712Domain(CHAIN_ID, CONTRACT)
    batches = _wal_batches(tmp_path)
    assert [b.index for b, _ in batches] == list(range(1, len(batches) + 1))
    for batch, recorded_root in batches:
        receipts, root = replay_batch(replayed, tree, admission, domain,
                                      encode_batch_data(batch))
        assert root == recorded_root == live_roots[batch.index], batch.index
        assert all(r.code != ErrorCode.BATCH_COST_LIMIT for r in receipts)
    assert tree.root == commitment.root
    assert canonical_root(replayed) == canonical_root(state)


def _high_s(signed: SignedTransaction) -> SignedTransaction:
    s = int.from_bytes(signed.signature[32:64], "big")
    return dataclasses.replace(signed, signature=signed.signature[:32] + (
        SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signed.signature[64]]))


def test_bad_input_is_refused_with_codes_and_state_unchanged(node: Node) -> None:
    domain = node.domain
    assert domain is not None
    resting = node.submit_sync(place(1, Side.BUY, PRICE_TICKS - 20, 5, domain))
    assert resting.ok
    before_account = node.account_sync(owner(1))
    before_book = node.book_sync(BTC)
    before_nonces = node.engine.admission.nonces_of(owner(1))

    order = place(1, Side.BUY, PRICE_TICKS - 30, 5, domain)
    refusals = {
        AdmissionCode.SIGNATURE_HIGH_S: _high_s(order),
        AdmissionCode.SIGNER_NOT_AUTHORISED: place(
            1, Side.BUY, PRICE_TICKS - 30, 5, Eip712Domain(CHAIN_ID + 1, CONTRACT)),
        AdmissionCode.SIGNATURE_MALFORMED: dataclasses.replace(order,
                                                               signature=order.signature + b"\0"),
        # a value outside its signed width has no digest and no encoding
        AdmissionCode.FIELD_OUT_OF_RANGE: SignedTransaction(
            PlaceOrder(owner(1), 0, BTC, Side.BUY, PRICE_TICKS, 1 << 64), order.nonce_ms,
            order.signature),
    }
    wrong_contract = place(1, Side.BUY, PRICE_TICKS - 30, 5,
                           Eip712Domain(CHAIN_ID, bytes(19) + b"\x01"))
    for code, signed in refusals.items():
        with pytest.raises(AdmissionError) as refused:
            node.submit_sync(signed)
        assert refused.value.code == code, code
    with pytest.raises(AdmissionError) as refused:
        node.submit_sync(wrong_contract)
    assert refused.value.code == AdmissionCode.SIGNER_NOT_AUTHORISED
    replay = dataclasses.replace(resting_signed := order)  # the same signature twice
    assert node.submit_sync(resting_signed).ok
    with pytest.raises(AdmissionError) as refused:
        node.submit_sync(replay)
    assert refused.value.code == AdmissionCode.NONCE_USED
    assert node.engine.admission.nonces_of(owner(1))[-1] == order.nonce_ms
    # an unknown market: sequenced (its nonce is used), refused by the STF, nothing else moves
    cancel = node.submit_sync(sign(1, CancelOrder(owner(1), 0, 1 << 40), domain))
    unknown = node.submit_sync(sign(1, PlaceOrder(owner(1), 0, 99, Side.BUY, PRICE_TICKS, 1),
                                    domain))
    assert unknown.receipt.code == ErrorCode.UNKNOWN_MARKET and not unknown.receipt.events
    assert cancel.receipt.code == ErrorCode.ORDER_NOT_FOUND
    after_account = node.account_sync(owner(1))
    assert after_account is not None and before_account is not None
    assert len(after_account.open_orders) == len(before_account.open_orders) + 1
    assert after_account.groups[0].collateral_quantums == (
        before_account.groups[0].collateral_quantums)
    book = node.book_sync(BTC)
    assert book is not None and before_book is not None
    assert sum(level.size_lots for level in book.bids) == sum(
        level.size_lots for level in before_book.bids) + 5
    assert len(node.engine.admission.nonces_of(owner(1))) == len(before_nonces) + 3
    # oversized requests never reach the node (the gateway's check), and back-pressure
    with pytest.raises(AdmissionError) as refused:
        check_request(REQUEST_BYTES_MAX + 1, 1)
    assert refused.value.code == AdmissionCode.PAYLOAD_TOO_LARGE
    with pytest.raises(NodeUnavailable, match="overloaded"):
        node.submit_many_sync([order] * (node.config.storage.inflight_max + 1))


def test_async_api_and_feeds(node: Node) -> None:
    domain = node.domain
    assert domain is not None

    async def scenario() -> dict[str, list[Any]]:
        subscriptions = {name: node.subscribe(name) for name in (
            "book:1", "trades:1", f"account:0x{owner(1).hex()}", "batches")}
        lagging = node.subscribe("book:1", queue_max=1)
        received: dict[str, list[Any]] = {name: [] for name in subscriptions}
        await node.submit(place(1, Side.SELL, PRICE_TICKS + 10, 20, domain))
        results = await node.submit_many([place(2, Side.BUY, PRICE_TICKS + 10, 5, domain),
                                          place(2, Side.BUY, PRICE_TICKS - 10, 4, domain),
                                          _high_s(place(2, Side.BUY, 1, 1, domain))])
        assert isinstance(results[2], AdmissionError)
        with pytest.raises(AdmissionError):
            await node.submit(_high_s(place(2, Side.BUY, 1, 1, domain)))
        await node.submit(sign(1, CancelOrder(owner(1), 0, results[0].receipt.events[  # type: ignore[union-attr]
            0].maker_order_id), domain))
        closed = await asyncio.to_thread(node.close_batch_sync)
        assert closed is not None
        final_book = await node.book(BTC)
        account = await node.account(owner(2))
        assert account is not None and account.groups[0].positions[0].size_lots == 5
        assert account.recent_fills and (await node.markets())[0].symbol == "BTC-PERP"
        assert (await node.status()).running
        for name, subscription in subscriptions.items():
            while True:
                try:
                    message = await asyncio.wait_for(subscription.__anext__(), 0.5)
                except TimeoutError:
                    break
                received[name].append(message)
                if name == "batches" and message.index == closed.index:
                    break
            subscription.close()
        with pytest.raises(SubscriptionLagged):
            async for _ in lagging:
                pass
        received["final_book"] = [final_book]
        return received

    received = asyncio.run(scenario())
    book_messages = received["book:1"]
    snapshot = book_messages[0]
    assert isinstance(snapshot, BookView)
    bids = {level.price_ticks: level.size_lots for level in snapshot.bids}
    asks = {level.price_ticks: level.size_lots for level in snapshot.asks}
    sequence = snapshot.sequence
    for delta in book_messages[1:]:
        assert isinstance(delta, BookDelta) and delta.sequence == sequence + 1
        sequence = delta.sequence
        for side, changes in ((bids, delta.bids), (asks, delta.asks)):
            for price, size in changes:
                if size:
                    side[price] = size
                else:
                    side.pop(price, None)
    final_book = received["final_book"][0]
    assert bids == {level.price_ticks: level.size_lots for level in final_book.bids}
    assert asks == {level.price_ticks: level.size_lots for level in final_book.asks}
    trades = received["trades:1"]
    assert len(trades) == 1 and isinstance(trades[0], TradeView) and trades[0].size_lots == 5
    kinds = [event.kind for event in received[f"account:0x{owner(1).hex()}"]]
    assert kinds[:3] == ["order_placed", "fill", "position"] and "order_cancelled" in kinds
    assert received["batches"][-1].status == "pending"


@pytest.mark.parametrize("snapshot_fork", [True, False], ids=["forked", "inline"])
def test_restart_restores_state_admission_and_roots(tmp_path: Path,
                                                    snapshot_fork: bool) -> None:
    config = offline_config(tmp_path, snapshot_every=3, snapshot_fork=snapshot_fork)
    # no funding tick or oracle refresh (every 10 s by default) while a node runs here: one
    # between reading the state and the stop would change the account state compared below (a
    # life longer than 10 s happens on a loaded machine)
    config = dataclasses.replace(
        config, heartbeat=dataclasses.replace(config.heartbeat, funding_interval_ms=QUIET_MS),
        oracle=dataclasses.replace(config.oracle, refresh_ms=QUIET_MS))
    with Node(config) as node:
        fund(node, [owner(i) for i in range(TRADERS)])
        acks = _trade_load(node, rounds=3)
        replayable = place(1, Side.BUY, PRICE_TICKS - 40, 1, node.domain)  # type: ignore[arg-type]
        assert node.submit_sync(replayable).ok
        closed = node.close_batch_sync()
        assert closed is not None
        book, account = node.book_sync(BTC), node.account_sync(owner(1))
    assert list((tmp_path / "snapshots").glob("*.rbs")), "the stop wrote a snapshot"
    for attempt in ("snapshot", "log only"):
        if attempt == "log only":
            for path in (tmp_path / "snapshots").glob("*.rbs"):
                path.unlink()
        with Node(config) as node:
            # the batch closed before the stop, by index: a started node posts the oracle's
            # price at once, which may close a batch of its own before this reads the status
            status = node.status_sync()
            restored_batch = node.batch(closed.index)
            assert restored_batch is not None and status.batch_index >= closed.index
            assert restored_batch.root == closed.root
            restored_book = node.book_sync(BTC)
            assert restored_book is not None and book is not None
            assert (restored_book.bids, restored_book.asks) == (book.bids, book.asks)
            restored = node.account_sync(owner(1))
            assert restored is not None and account is not None
            assert restored.groups == account.groups and restored.open_orders == (
                account.open_orders)
            with pytest.raises(AdmissionError) as refused:
                node.submit_sync(replayable)
            assert refused.value.code == AdmissionCode.NONCE_USED
            assert max(a.sequence for a in acks) <= status.durable_sequence
            assert node.submit_sync(place(3, Side.SELL, PRICE_TICKS + 40, 1,
                                          node.domain)).ok  # type: ignore[arg-type]
            closed = node.close_batch_sync()  # type: ignore[assignment]
            assert closed is not None
            book, account = node.book_sync(BTC), node.account_sync(owner(1))


def test_a_torn_tail_is_cut_and_mid_log_damage_refuses(tmp_path: Path) -> None:
    config = offline_config(tmp_path, segment_bytes=4_096, snapshot_every=1_000)
    with Node(config) as node:
        fund(node, [owner(i) for i in range(TRADERS)])
        _trade_load(node, rounds=4)
        node.close_batch_sync()
        root = node.status_sync().root
    segments = sorted((tmp_path / "wal").glob("*.wal"))
    assert len(segments) >= 2
    for path in (tmp_path / "snapshots").glob("*.rbs"):
        path.unlink()  # recover from the log alone
    with segments[-1].open("ab") as handle:
        handle.write(b"RBW1" + bytes(40))  # a half-written record after a crash
    with Node(config) as node:
        assert node.status_sync().root == root
        assert node._wal is not None and node._wal.recovery.truncated_bytes == 44
    middle = segments[0]  # not the last: damage there cannot be a torn write
    data = bytearray(middle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    middle.write_bytes(bytes(data))
    with pytest.raises(NodeError, match="damaged"):
        Node(config).start()


def test_a_damaged_snapshot_is_skipped(tmp_path: Path) -> None:
    config = offline_config(tmp_path, snapshot_every=1)
    with Node(config) as node:
        fund(node, [owner(i) for i in range(TRADERS)])
        _trade_load(node, rounds=2)
        node.close_batch_sync()
        root = node.status_sync().root
    newest = sorted((tmp_path / "snapshots").glob("*.rbs"))[-1]
    data = bytearray(newest.read_bytes())
    data[-10] ^= 0xFF
    newest.write_bytes(bytes(data))
    (tmp_path / "snapshots" / "snapshot-00000000000000099999.rbs.tmp").write_bytes(b"torn")
    with Node(config) as node:
        assert node.status_sync().root == root
    assert not list((tmp_path / "snapshots").glob("*.tmp"))


def test_another_venue_configuration_refuses_the_data_directory(tmp_path: Path) -> None:
    config = offline_config(tmp_path)
    with Node(config) as node:
        fund(node, [owner(1)])
    market = dataclasses.replace(config.markets[0], taker_fee_ppm=123)
    with pytest.raises(NodeError, match="venue configuration"):
        Node(dataclasses.replace(config, markets=(market,))).start()


def test_the_embedded_chain_cannot_restart_a_venue(tmp_path: Path) -> None:
    with Node(offline_config(tmp_path)) as node:
        fund(node, [owner(1)])
    embedded = dataclasses.replace(offline_config(tmp_path),
                                   chain=dataclasses.replace(offline_config(tmp_path).chain,
                                                             url="embedded"))
    with pytest.raises(NodeError, match="embedded chain does not survive a restart"):
        Node(embedded).start()


def test_a_stopped_node_takes_nothing(tmp_path: Path) -> None:
    node = Node(offline_config(tmp_path))
    with pytest.raises(NodeUnavailable):
        node.submit_sync(place(1, Side.BUY, 1, 1, Eip712Domain(CHAIN_ID, CONTRACT)))
    node.start()
    node.stop()
    with pytest.raises(NodeUnavailable):
        node.book_sync(BTC)
    assert key(1) != key(2)


def test_a_temporary_data_directory_is_removed_at_stop_and_a_given_one_kept(
        tmp_path: Path) -> None:
    # no data directory configured: the node makes one, which no later start could find
    given = offline_config(tmp_path)
    temporary = Node(dataclasses.replace(
        given, storage=dataclasses.replace(given.storage, data_dir=None)))
    temporary.start()
    made = temporary.data_dir
    assert made is not None and made != tmp_path and (made / "wal").is_dir()
    temporary.stop()
    assert not made.exists()
    kept = Node(given)
    kept.start()
    kept.stop()
    assert kept.data_dir == tmp_path and any((tmp_path / "wal").glob("*.wal"))


def test_a_failing_sequencer_answers_everyone_and_restarts(tmp_path: Path) -> None:
    config = offline_config(tmp_path)
    node = Node(config)
    node.start()
    try:
        fund(node, [owner(1)])
        kept = node.submit_sync(place(1, Side.BUY, PRICE_TICKS - 10, 3, node.domain))  # type: ignore[arg-type]

        def broken(*_: object) -> None:
            raise RuntimeError("simulated STF bug")

        node.engine.execute = broken  # type: ignore[method-assign]
        with pytest.raises(NodeUnavailable, match="simulated STF bug"):
            node.submit_sync(place(1, Side.BUY, PRICE_TICKS - 11, 3, node.domain),  # type: ignore[arg-type]
                             timeout_s=10)
        with pytest.raises(NodeUnavailable):
            node.book_sync(BTC)
    finally:
        node.stop()
    with Node(config) as again:
        account = again.account_sync(owner(1))
        assert account is not None
        assert [o.order_id for o in account.open_orders] == [
            kept.receipt.events[0].order_id]  # type: ignore[union-attr]


def test_heartbeats_move_the_oracle_and_tick_funding(tmp_path: Path) -> None:
    config = offline_config(tmp_path)
    config = dataclasses.replace(config, heartbeat=dataclasses.replace(
        config.heartbeat, funding_interval_ms=20))
    with Node(config) as node:
        market = node.markets_sync()[0]
        assert market.mark_price_quantums == 100_000 * USDC  # the demo feed, signed at start
        node.set_oracle_price(BTC, 101_000 * USDC)
        deadline = time.monotonic() + 10
        while node.markets_sync()[0].mark_price_quantums != 101_000 * USDC:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        while node.engine.state.markets[BTC].last_funding_ms < 0:  # the first tick started
            assert time.monotonic() < deadline  # the funding clock
            time.sleep(0.01)


def test_a_batch_closes_only_after_its_records_went_to_the_log(tmp_path: Path) -> None:
    """Cadence, size and requested closes hand what was sequenced to the log and the committer
    before the state root is computed: acks never wait for the root (or a snapshot's fork)."""
    with Node(offline_config(tmp_path, interval_ms=20, txs_max=16, snapshot_every=2)) as node:
        fund(node, [owner(1)])
        engine = node.engine
        close_batch = engine.close_batch
        queued: list[int] = []

        def close_counting() -> Any:
            queued.append(len(engine.records))  # records sequenced but not yet appended
            return close_batch()

        engine.close_batch = close_counting  # type: ignore[method-assign]
        acks = node.submit_many_sync([place(1, Side.BUY, PRICE_TICKS - 10 - i, 1,
                                            node.domain) for i in range(40)])  # type: ignore[arg-type]
        assert all(isinstance(a, Ack) and a.ok for a in acks)
        time.sleep(0.1)  # a cadence close
        node.submit_sync(place(1, Side.BUY, PRICE_TICKS - 100, 1, node.domain))  # type: ignore[arg-type]
        node.close_batch_sync()
        assert len(queued) >= 4 and queued == [0] * len(queued)
        assert len({a.batch_index for a in acks if isinstance(a, Ack)}) >= 3

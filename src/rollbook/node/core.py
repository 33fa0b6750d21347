"""The node: a signed order in, an acknowledged, committed, settled fact out (docs/node.md).

Threads and what each owns:

- callers (the gateway's event loop, or any thread) submit chunks to a plain queue; signer
  recovery and the entry's encoding happen before the sequencer, which only admits and
  executes. With ``recovery_processes`` > 0 (the default) one **dispatcher** thread takes every
  chunk queued (up to ``ROUND_SIGNATURES_MAX`` actions), encodes them and packs their EIP-712
  struct words, and has ``RecoveryProcesses`` worker processes hash the digests and do the
  curve work, one request per
  worker per round (``rollbook.node.recovery``); the workers run on their own interpreters, so
  recovery never waits for this process's GIL. With ``recovery_processes = 0``,
  ``recovery_threads`` long-lived **recovery threads** do it all (coincurve releases the GIL,
  but each order takes it back). Either way the chunks reach the sequencer in the order the
  recovery finished (nonce windows allow overtaking). WAL replay at start recovers on a
  ``ThreadPoolExecutor`` of ``recovery_threads``;
- the **sequencer** thread is the single writer of venue state (``Engine``): in arrival order it
  admits and executes entries in the open batch, emits heartbeats (oracle price from the feed,
  ``FundingTick``, ``ProcessLiquidations``) and L1 inputs, cuts batches (on the cadence, on the
  entry count, the published-bytes limit or the STF's cost limit), answers queries at its
  position and takes snapshots at batch boundaries; after each drained chunk, and before it
  closes a batch (the state root and a snapshot's fork take milliseconds), it appends the WAL
  records sequenced so far and hands their answers to the committer;
- the **committer** thread waits for the WAL group commit covering a chunk, then releases its
  answers (acks, refusals, query results) and market data: nothing leaves the node before it
  is durable;
- the **publisher** thread (with a chain) submits closed batches in order through the
  settlement contract, retrying RPC failures with bounded backoff; it polls L1 inputs and each
  batch's status (submitted, final, disputed: a disputed batch is resubmitted, at most
  ``DISPUTE_RESUBMITS_MAX`` times). It never blocks the sequencer: closed batches wait in the
  node's history until published. The embedded chain runs in a child process at a lower
  scheduling priority (``rollbook.settlement.embedded``), which executes each submission whole
  (py-evm, web3's encoding and signing): this thread only waits for it, so publishing costs the
  node's GIL well under a millisecond per batch. When the chain executes batches more slowly
  than the node closes them (py-evm: 20 to 60 ms per 64 KiB batch, ~450 orders), published
  batches lag behind closed ones and catch up when the load drops;
- the **snapshot** thread publishes snapshots (a child forked by the sequencer at a batch
  boundary pickles and writes them; the thread renames them once the WAL covers them), deletes
  old ones and removes WAL segments nobody needs any more.

Durability invariants: an ack names the WAL sequence of its entry, and is released only after
``wait_durable`` covered it; every answer waits for the WAL prefix it observed. A snapshot
becomes visible only once the WAL covers it, and WAL segments are removed only below both the
oldest kept snapshot and the oldest batch that is not final on L1 (its bytes may have to be
published again). Restart = newest valid snapshot + replay of the WAL through the same
``BatchExecution`` (``Engine.replay``), which checks every recorded root; a torn WAL tail is cut
by the WAL (only unacknowledged records can be in it), damage in the middle refuses to start.

Limits: ``inflight_max`` submissions accepted and not yet answered (beyond: ``NodeUnavailable``);
``DRAIN_MAX`` inbound items per sequencer step; ``HISTORY_MAX`` batch records kept for queries.

Known limits: a snapshot pauses the sequencer for a ``fork`` (copy-on-write page tables: a few
ms, tens for a large heap; Python 3.12+ warns about forking a threaded process, and
``snapshot_fork = false`` pickles in place instead, ~6 µs per resting order); queries
run on the sequencer thread between entries, so a heavy one (a deep book, an account with
thousands of orders) delays trading by its cost; recent trades and fills are kept in memory
and start empty after a restart; the embedded chain lives in memory, so a venue on it cannot
restart; batch timestamps are the node's wall clock and are not yet held back to the chain's
block time (the verifier's "not after the L1 block" rule); one process, so throughput is bound
by the GIL (recovery releases it, the STF does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from rollbook import __version__
from rollbook.commitment.batches import genesis_commitment
from rollbook.commitment.state_tree import StateCommitment
from rollbook.execution.config import InstrumentKind, VenueConfig
from rollbook.execution.crypto import keccak256, sign_digest
from rollbook.execution.encoding import ENCODING_VERSION
from rollbook.execution.margin import group_risk
from rollbook.execution.options.portfolio import Greeks, PortfolioMargin
from rollbook.execution.options.views import GroupRisk, account_risk
from rollbook.execution.oracle import oracle_message_digest
from rollbook.execution.state import State, genesis_state
from rollbook.execution.txs import (
    FundingTick,
    OraclePrice,
    OracleUpdate,
    ProcessLiquidations,
    Transaction,
)
from rollbook.node.config import NodeConfig
from rollbook.node.engine import BatchRecord, Engine, RecoveryError, scan_batches
from rollbook.node.feeds import (
    SUBSCRIBER_QUEUE_DEFAULT,
    FeedHub,
    MarketData,
    Subscription,
    parse_topic,
    position_view,
)
from rollbook.node.recovery import ROUND_SIGNATURES_MAX, prepare, prepare_round
from rollbook.node.snapshot import (
    NodeSnapshot,
    SnapshotError,
    dumps_snapshot,
    fork_and_write,
    list_snapshots,
    loads_snapshot,
    publish_temporary,
    read_snapshot,
    remove_snapshots,
    snapshot_sequence,
    temporary_path,
    write_snapshot,
)
from rollbook.node.views import (
    AccountRiskView,
    AccountView,
    Ack,
    BatchView,
    BookView,
    GreeksView,
    GroupView,
    MarketView,
    NodeStatus,
    OrderView,
    PortfolioRiskView,
    RiskGroupView,
    RiskPositionView,
    ScenarioView,
    TradeView,
)
from rollbook.runtime import SWITCH_INTERVAL
from rollbook.sequencer.admission import AdmissionState
from rollbook.sequencer.batch_data import (
    Entry,
    SignedEntry,
    encode_entry,
    system_entry,
)
from rollbook.sequencer.eip712 import Eip712Domain
from rollbook.sequencer.errors import AdmissionError
from rollbook.sequencer.recovery_processes import RecoveryProcesses
from rollbook.sequencer.signatures import (
    RECOVERY_CHUNK_MAX,
    SignedTransaction,
    VerifiedTransaction,
)
from rollbook.sequencer.wal import WalCorruptError, WalError, WriteAheadLog

__all__ = [
    "DISPUTE_RESUBMITS_MAX",
    "DRAIN_MAX",
    "HISTORY_MAX",
    "ManualPriceFeed",
    "Node",
    "NodeError",
    "NodeUnavailable",
    "PriceFeed",
]

log = logging.getLogger("rollbook.node")

DRAIN_MAX = 2_048  # inbound items per sequencer step (then: heartbeats, flush, answers)
HISTORY_MAX = 100_000  # batch records kept for queries
SNAPSHOT_HISTORY_MAX = 10_000  # of them, carried in a snapshot
DISPUTE_RESUBMITS_MAX = 3  # a batch disputed more often than this stops the publisher
PUBLISH_BACKOFF_FIRST_S = 0.1
PUBLISH_BACKOFF_MAX_S = 5.0  # retry an unreachable chain at least this often
# Garbage collection. The venue's state (resting orders, accounts, tree nodes) is a large heap
# of long-lived objects, and CPython's cyclic collector rescans every tracked object on a full
# collection: measured 100 to 220 ms at the bench's heap (a 1-2 s pause every few seconds under
# load), and 25 to 50 ms for a middle-generation one, on the GIL, so every thread waited. The
# state is freed by reference counting (the STF unlinks what it drops), so the sequencer moves
# what survived to each batch boundary into the permanent generation (``gc.freeze``, a list
# splice): collections then scan only what is younger than the latest batch. Cyclic garbage
# made of frozen objects is found by a full collection (unfreeze, collect, freeze) once the
# node has been quiet for GC_QUIET_S and GC_FULL_INTERVAL_S have passed, and at least every
# GC_FULL_INTERVAL_MAX_S even under sustained load (bounding what can accumulate, at the price
# of one pause of a full collection that often).
GC_QUIET_S = 1.0
GC_FULL_INTERVAL_S = 300.0
GC_FULL_INTERVAL_MAX_S = 3_600.0
STOP_TIMEOUT_S = 30.0  # threads get this long to drain on stop
# The GIL's switch interval while the node runs (rollbook.runtime.SWITCH_INTERVAL): the event
# loop, the recovery dispatcher and the committer come back from I/O (epoll, the workers' pipes,
# fsync) many times a batch and each time wait for the GIL, which the sequencer and the event
# loop hold in Python; with CPython's 5 ms default each of those waits can be 5 ms, which idles
# the recovery workers between rounds and delays acknowledgements.
NODE_SWITCH_INTERVAL_S = 0.0005
QUERY_TIMEOUT_S = 30.0  # a blocking query or submission waits at most this long by default
WAL_LOCK_WAIT_S = 5.0  # another process (another node, or an orphaned snapshot writer) holds it
WAL_LOCK_POLL_S = 0.02
METADATA_FILE = "node.json"
METADATA_FORMAT = 1
WAL_DIRECTORY = "wal"
SNAPSHOT_DIRECTORY = "snapshots"
ZERO_ADDRESS = bytes(20)  # the signer of system entries; the verifying contract without a chain

_T = TypeVar("_T")

# inbound items (sequencer): (kind, ...)
_K_ENTRIES = 0  # (kind, [(entry, data, tx_id, verified | AdmissionError)], waiter)
_K_SYSTEM = 1  # (kind, entry, data, tx_id, waiter | None)
_K_L1 = 2  # (kind, txs, cursor)
_K_CALL = 3  # (kind, fn, waiter): runs on the sequencer, answered once durable
_K_SUBSCRIBE = 4  # (kind, subscription, depth)
_K_UNSUBSCRIBE = 5  # (kind, topic)
_K_CLOSE_BATCH = 6  # (kind, waiter)
_K_STOP = 7  # (kind,)
# releases (committer): (kind, ...)
_R_RESULT = 0  # (kind, waiter, value): an exception value is raised to the waiter
_R_MESSAGES = 1  # (kind, messages)
_R_REGISTER = 2  # (kind, subscription, first message | None)
_R_BATCH = 3  # (kind, record)


class NodeError(RuntimeError):
    """The node cannot start (configuration against the data directory, recovery, chain)."""


class NodeUnavailable(Exception):
    """The node takes no submissions now: starting, stopping, overloaded or failed."""


class PriceFeed:
    """Where oracle heartbeats get their prices: ``prices()`` -> {index id: quantums}."""

    def prices(self) -> dict[int, int]:  # pragma: no cover - interface
        raise NotImplementedError


class ManualPriceFeed(PriceFeed):
    """The local venue's deterministic feed: prices change only when someone sets them."""

    def __init__(self, prices: dict[int, int]) -> None:
        self._lock = threading.Lock()
        self._prices = dict(prices)

    def set_price(self, index_id: int, price_quantums: int) -> None:
        if price_quantums <= 0:
            raise ValueError("a price is a positive number of quantums")
        with self._lock:
            self._prices[index_id] = price_quantums

    def prices(self) -> dict[int, int]:
        with self._lock:
            return dict(self._prices)


class _AsyncWaiter:
    """A result owed to an asyncio future on its loop."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
        self.loop = loop
        self.future = future


Waiter = Future[Any] | _AsyncWaiter


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _resolve_async(items: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, value in items:
        if future.done():  # the caller gave up (cancelled)
            continue
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)


def _resolve(waiter: Waiter, value: Any,
             per_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]],
             ) -> None:
    if isinstance(waiter, _AsyncWaiter):
        per_loop.setdefault(waiter.loop, []).append((waiter.future, value))
    elif not waiter.done():
        if isinstance(value, BaseException):
            waiter.set_exception(value)
        else:
            waiter.set_result(value)


def _flush_async(per_loop: dict[asyncio.AbstractEventLoop,
                                list[tuple[asyncio.Future[Any], Any]]]) -> None:
    for loop, items in per_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
            loop.call_soon_threadsafe(_resolve_async, items)


def _venue_fingerprint(venue: VenueConfig) -> bytes:
    # the venue parameters are part of what replay reproduces: a change breaks every root
    return keccak256(repr(venue).encode())


class Node:
    """See the module docstring and docs/node.md for the interface."""

    def __init__(self, config: NodeConfig | None = None, *,
                 price_feed: PriceFeed | None = None) -> None:
        self.config = config or NodeConfig.local()
        self.price_feed = price_feed or ManualPriceFeed(dict(self.config.oracle.prices))
        self._lifecycle = threading.Lock()
        self._started = False
        self._running = False
        self._failure: BaseException | None = None
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self._last_submission = 0.0  # monotonic time of the latest submission (GC)
        self._gc_full_at = time.monotonic()  # the latest full collection (sequencer)
        self.data_dir: Path | None = None
        self._temporary_data_dir: Path | None = None  # see ``_start``
        self.domain: Eip712Domain | None = None
        self.venue: VenueConfig | None = None
        self.link: Any = None  # ChainLink when there is a chain
        self._engine: Engine | None = None
        self._wal: WriteAheadLog | None = None
        self._pool: ThreadPoolExecutor | None = None  # recovery during WAL replay
        # live submissions: (chunk, waiter) for the recovery threads or the dispatcher; None
        # stops one of them
        self._jobs: queue.SimpleQueue[tuple[Sequence[SignedTransaction], Waiter] | None] = (
            queue.SimpleQueue())
        self._jobs_lock = threading.Lock()  # orders "closed" against every put of a job
        self._jobs_closed = False
        self._recoverers: list[threading.Thread] = []  # the recovery threads, or the dispatcher
        self._switch_lowered = False  # holds rollbook.runtime.SWITCH_INTERVAL while running
        self._recovery: RecoveryProcesses | None = None  # the dispatcher's worker processes
        self._inbound: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._hub = FeedHub()
        self._market: MarketData | None = None
        self._threads: list[threading.Thread] = []
        # sequencer-owned
        self._current: tuple[Any, ...] | None = None  # the inbound item being handled
        self._releases: list[tuple[Any, ...]] = []
        self._messages: list[tuple[Any, Any]] = []
        self._batch_deadline = 0.0
        self._next_oracle = 0.0
        self._next_funding = 0.0
        self._next_liquidations = 0.0
        self._oracle_sent: dict[int, int] = {}
        self._oracle_sent_at = 0.0
        self._l1_cursor = 0
        self._batches_since_snapshot = 0
        self._claims: dict[int, Any] = {}
        # committer
        self._commit_cond = threading.Condition()
        self._commit_queue: list[tuple[int, list[tuple[Any, ...]]]] = []
        self._commit_stop = False
        self._committer_exited = False
        # batch records (committer, publisher, sequencer, queries)
        self._history_lock = threading.Lock()
        self._history: OrderedDict[int, BatchRecord] = OrderedDict()
        self._durable_batch = 0
        self._publish_cond = threading.Condition()
        self._publish_stop = False
        self._publisher_error: str | None = None
        self._heads = (0, 0)
        # snapshots
        self._snapshots: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._snapshot_idle = threading.Event()  # no forked snapshot writer is running
        self._snapshot_idle.set()

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Node:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._running

    @property
    def recovery_worker_pids(self) -> tuple[int, ...]:
        """The signature-recovery worker processes' ids (empty on recovery threads)."""
        recovery = self._recovery
        return () if recovery is None else recovery.pids

    @property
    def chain_link(self) -> Any:
        """The ``ChainLink`` (contract clients, bridge, ``lock``), None without a chain."""
        return self.link

    @property
    def chain_lock(self) -> threading.RLock:
        """Hold it to use ``node.link.chain`` from outside the node (``Chain`` is not
        thread-safe)."""
        if self.link is None:
            raise NodeError("this node has no chain")
        lock: threading.RLock = self.link.lock
        return lock

    def start(self) -> None:
        with self._lifecycle:
            if self._started:
                raise NodeError("a Node starts once; create a new one to restart")
            self._started = True
            try:
                self._start()
            except BaseException:
                self._teardown()
                raise
            self._running = True
        log.info("node running: batch %d, root %s, data in %s", self._engine.state.batch_index
                 if self._engine else 0, self._engine.commitment.root.hex()
                 if self._engine else "", self.data_dir)

    def _start(self) -> None:
        config = self.config
        storage = config.storage
        data_dir = storage.data_dir or Path(tempfile.mkdtemp(prefix="rollbook-node-"))
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        # a directory this node made for itself: no later start can find it again (each makes
        # its own), so it is removed when the node stops rather than left behind in /tmp
        self._temporary_data_dir = data_dir if storage.data_dir is None else None
        wal_dir = data_dir / WAL_DIRECTORY
        remembered = self._read_metadata()
        chain_kind = config.chain.kind
        has_log = any(wal_dir.glob("*.wal")) and any(
            p.stat().st_size > 0 for p in wal_dir.glob("*.wal"))
        if chain_kind == "embedded" and has_log:
            raise NodeError(
                f"{data_dir} holds a venue's log, and the embedded chain does not survive a "
                "restart (its deposits and batches are gone): start with an empty data "
                "directory, or run against a JSON-RPC chain")
        if remembered is not None and remembered.get("chain") != chain_kind:
            raise NodeError(f"{data_dir} was created for chain {remembered.get('chain')!r}, "
                            f"the configuration says {chain_kind!r}")
        self._pool = ThreadPoolExecutor(max_workers=storage.recovery_threads,
                                        thread_name_prefix="rollbook-recover")
        if chain_kind == "none":
            chain_id = config.chain.chain_id
            contract = config.chain.settlement_address or ZERO_ADDRESS
        else:
            chain_id, contract = self._open_chain(remembered)
        self.domain = Eip712Domain(chain_id, contract)
        domain = {"chain_id": chain_id, "verifying_contract": "0x" + contract.hex()}
        if remembered is not None and remembered.get("domain", domain) != domain:
            raise NodeError(f"{data_dir}: its log was signed in the EIP-712 domain "
                            f"{remembered.get('domain')}, the node now admits in {domain}: the "
                            "signatures would recover to other signers on replay")
        self.venue = config.venue_config(chain_id)
        fingerprint = _venue_fingerprint(self.venue)
        if remembered is not None and remembered.get("venue") != fingerprint.hex():
            raise NodeError(f"{data_dir}: the venue configuration (markets, fees, oracle "
                            "signers, limits) changed since this data directory was created; "
                            "replaying its log under other rules would compute other roots")
        self._recover(data_dir, fingerprint)
        self._write_metadata(fingerprint)
        self._start_threads()

    def _open_chain(self, remembered: dict[str, Any] | None) -> tuple[int, bytes]:
        from rollbook.node.chain import ChainLink, ChainMetadata, LinkError

        metadata = None
        if remembered is not None and "settlement_address" in remembered:
            metadata = ChainMetadata(remembered["chain_id"],
                                     bytes.fromhex(remembered["settlement_address"][2:]),
                                     bytes.fromhex(remembered["token_address"][2:]),
                                     remembered["deploy_block"])
        # no leaf carries the chain id, so the genesis root is known before the chain is
        probe = genesis_commitment(genesis_state(self.config.venue_config(
            self.config.chain.chain_id))).root
        try:
            link = ChainLink.open(self.config.chain, metadata, probe)
        except LinkError as error:
            raise NodeError(str(error)) from error
        self.link = link
        limit = link.batch_bytes_max()
        if self.config.batch.bytes_max > limit:
            raise NodeError(f"batch.bytes_max = {self.config.batch.bytes_max} exceeds the "
                            f"settlement contract's limit of {limit} bytes per batch")
        return link.metadata.chain_id, link.metadata.settlement_address

    def _read_metadata(self) -> dict[str, Any] | None:
        assert self.data_dir is not None
        path = self.data_dir / METADATA_FILE
        if not path.exists():
            return None
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise NodeError(f"{path}: unreadable ({error})") from error
        if data.get("format") != METADATA_FORMAT:
            raise NodeError(f"{path}: unknown format {data.get('format')!r}")
        return data

    def _write_metadata(self, fingerprint: bytes) -> None:
        assert self.data_dir is not None and self.domain is not None
        data: dict[str, Any] = {
            "format": METADATA_FORMAT, "chain": self.config.chain.kind,
            "venue": fingerprint.hex(), "version": __version__,
            "domain": {"chain_id": self.domain.chain_id,
                       "verifying_contract": "0x" + self.domain.verifying_contract.hex()}}
        if self.link is not None:
            data.update(self.link.describe())
        path = self.data_dir / METADATA_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2, sort_keys=True))
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    # --- recovery -------------------------------------------------------------------------------

    def _recover(self, data_dir: Path, fingerprint: bytes) -> None:
        assert self.venue is not None and self.domain is not None
        snapshot = self._newest_snapshot(data_dir / SNAPSHOT_DIRECTORY, fingerprint)
        try:
            wal = self._open_wal(data_dir, snapshot.wal_sequence if snapshot else 0)
        except WalCorruptError as error:
            raise NodeError(f"the write-ahead log is damaged and cannot be repaired safely "
                            f"({error}); restore the data directory from a backup") from error
        except WalError as error:
            raise NodeError(f"cannot open the write-ahead log: {error}") from error
        self._wal = wal
        report = wal.recovery
        if report.truncated_bytes:
            log.warning("WAL: cut a torn tail of %d bytes (%d unacknowledged records) at %s",
                        report.truncated_bytes, report.truncated_records, report.truncated_at)
        keep_data = self.link is not None
        if snapshot is not None:
            state = snapshot.state
            commitment = snapshot.commitment
            admission = AdmissionState.restore(snapshot.admission)
            extra = snapshot.extra
            self._l1_cursor = int(extra.get("l1_cursor", 0))
            self._claims = dict(extra.get("claims", {}))
            for record in extra.get("history", []):
                self._history[record.index] = record
            start = snapshot.wal_sequence + 1
            retain_from = int(extra.get("retain_from", start))
        else:
            state = genesis_state(self.venue)
            commitment = genesis_commitment(state)
            admission = AdmissionState()
            start = 1
            retain_from = 1
        first = wal.first_sequence
        if first > max(1, min(start, retain_from)) and wal.last_sequence >= first:
            raise NodeError(f"the write-ahead log starts at sequence {first}, but recovery "
                            f"needs it from {min(start, retain_from)} (segments are missing)")
        engine = Engine(state, commitment, admission, self.domain, wal, keep_data)
        if keep_data and retain_from < start:
            # batches the snapshot covers but L1 may still need: their bytes, from the log
            for record in scan_batches(wal.read_from(max(retain_from, first)), start - 1, True):
                known = self._history.get(record.index)
                if known is not None:
                    known.data = record.data
        try:
            closed = engine.replay(wal.read_from(max(start, first)), self._pool)
        except RecoveryError as error:
            raise NodeError(f"recovery failed: {error}") from error
        for record in closed:
            self._history[record.index] = record
        engine.next_sequence = wal.last_sequence + 1
        self._engine = engine
        self._market = MarketData(state)
        if engine.execution is not None:  # the crash left a batch open: close it now
            self._close_batch()
            engine.flush()
            wal.commit()
            self._releases.clear()
            self._messages.clear()
        self._durable_batch = state.batch_index
        if self.link is not None:
            self.link.resume(self._l1_cursor, state.next_deposit_id, state.next_forced_id)
            self._reconcile_chain()
        log.info("recovered batch %d (root %s) from %s and %d WAL records",
                 state.batch_index, commitment.root.hex(),
                 f"snapshot {snapshot.batch_index}" if snapshot else "genesis",
                 wal.last_sequence - start + 1)

    def _open_wal(self, data_dir: Path, required_through_sequence: int) -> WriteAheadLog:
        """Open the log, waiting briefly for its lock: a snapshot writer forked just before a
        crash holds a copy of the lock's descriptor until its first instruction closes it."""
        deadline = time.monotonic() + WAL_LOCK_WAIT_S
        while True:
            try:
                return WriteAheadLog(data_dir / WAL_DIRECTORY,
                                     segment_bytes_target=self.config.storage.wal_segment_bytes,
                                     required_through_sequence=required_through_sequence)
            except WalError as error:
                if "locked" not in str(error) or time.monotonic() >= deadline:
                    raise
            time.sleep(WAL_LOCK_POLL_S)

    def _newest_snapshot(self, directory: Path, fingerprint: bytes) -> NodeSnapshot | None:
        for batch_index, path in list_snapshots(directory, delete_temporary=True):
            try:
                snapshot = read_snapshot(path)
            except SnapshotError as error:
                log.warning("snapshot %s skipped: %s", path.name, error)
                continue
            if snapshot.code_version != _code_version():
                log.warning("snapshot %s skipped: written by %s, this is %s", path.name,
                            snapshot.code_version, _code_version())
                continue
            if snapshot.venue_fingerprint != fingerprint:
                log.warning("snapshot %s skipped: another venue configuration", path.name)
                continue
            if snapshot.commitment.root != snapshot.root or (
                    snapshot.state.batch_index != batch_index):
                log.warning("snapshot %s skipped: inconsistent contents", path.name)
                continue
            return snapshot
        return None

    def _reconcile_chain(self) -> None:
        """Match the history with the contract: what it has, and that it is ours."""
        latest, final = self.link.heads()
        known = [index for index in self._history if index <= latest]
        # roots chain through previous_root: the newest common batch vouches for the older
        if known and self.link.root_of(max(known)) != self._history[max(known)].root:
            raise NodeError(f"the settlement contract holds another root for batch "
                            f"{max(known)} than this node's log")
        for record in self._history.values():
            if record.index <= latest:
                record.status = "final" if record.index <= final else "submitted"
            else:
                record.status = "pending"
                if record.data is None:
                    raise NodeError(f"batch {record.index} is not on the settlement contract "
                                    "and its bytes are no longer in the log")
        self._heads = (latest, final)

    # --- threads --------------------------------------------------------------------------------

    def _start_threads(self) -> None:
        engine = self._engine
        assert engine is not None
        SWITCH_INTERVAL.lower(NODE_SWITCH_INTERVAL_S)
        self._switch_lowered = True
        now = time.monotonic()
        self._next_oracle = now  # price the venue at once
        self._next_funding = now + self.config.heartbeat.funding_interval_ms / 1_000
        self._next_liquidations = now
        targets: list[tuple[str, Callable[[], None]]] = [
            ("rollbook-sequencer", self._run_sequencer),
            ("rollbook-committer", self._run_committer),
            ("rollbook-snapshots", self._run_snapshots),
        ]
        if self.link is not None:
            targets.append(("rollbook-publisher", self._run_publisher))
        for name, target in targets:
            thread = threading.Thread(target=self._guard(target), name=name, daemon=True)
            self._threads.append(thread)
            thread.start()
        processes = self.config.storage.recovery_processes
        if processes:
            self._recovery = RecoveryProcesses(processes)
            thread = threading.Thread(target=self._guard(self._run_dispatcher),
                                      name="rollbook-recover-dispatch", daemon=True)
            self._recoverers.append(thread)
            thread.start()
            return
        for number in range(self.config.storage.recovery_threads):
            thread = threading.Thread(target=self._guard(self._run_recoverer),
                                      name=f"rollbook-recover-{number}", daemon=True)
            self._recoverers.append(thread)
            thread.start()

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as error:  # a bug or an I/O failure: stop taking orders
                log.exception("%s failed", threading.current_thread().name)
                self._fail(error)

        return run

    def _fail(self, error: BaseException) -> None:
        """Stop taking work: the sequencer exits at its next step, refusing what is queued;
        the committer still releases what is durable, then refuses the rest."""
        if self._failure is None:
            self._failure = error
        self._running = False
        if threading.current_thread().name == "rollbook-sequencer":
            self._refuse_queued(NodeUnavailable(f"the node failed: {error!r}"))
        else:
            self._inbound.put((_K_STOP,))  # wake the sequencer: it sees the failure
        with self._commit_cond:
            self._commit_stop = True
            self._commit_cond.notify_all()
        with self._publish_cond:
            self._publish_stop = True
            self._publish_cond.notify_all()

    def stop(self) -> None:
        """Close the open batch, make everything durable, snapshot, stop the threads."""
        with self._lifecycle:
            if not self._threads and self._wal is None:
                return
            self._running = False
            self._close_jobs()  # finish recoveries in flight: they queue their entries
            sequencer = next((t for t in self._threads if t.name == "rollbook-sequencer"), None)
            if sequencer is not None and sequencer.is_alive():
                self._inbound.put((_K_STOP,))
                sequencer.join(STOP_TIMEOUT_S)
            with self._commit_cond:
                self._commit_stop = True
                self._commit_cond.notify_all()
            self._snapshots.put(None)
            with self._publish_cond:
                self._publish_stop = True
                self._publish_cond.notify_all()
            for thread in self._threads:
                if thread is not sequencer:
                    thread.join(STOP_TIMEOUT_S)
            self._refuse_queued(NodeUnavailable("the node stopped"))
            self._teardown()

    def _teardown(self) -> None:
        gc.unfreeze()  # what the sequencer froze is ordinary garbage-collected memory again
        self._close_jobs()
        self._close_recovery()
        self._hub.close_all()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._wal is not None:
            with contextlib.suppress(WalError):
                self._wal.close()
            self._wal = None
        if self.link is not None:  # the embedded chain's process ends with the node
            self.link.close()
        self._remove_temporary_data_dir()
        self._threads = []
        self._running = False
        if self._switch_lowered:
            self._switch_lowered = False
            SWITCH_INTERVAL.release()

    def _remove_temporary_data_dir(self) -> None:
        """Remove the data directory the node made for itself (see ``_start``), once its log
        is closed and its threads and snapshot writers have stopped."""
        directory, self._temporary_data_dir = self._temporary_data_dir, None
        if directory is None:
            return
        shutil.rmtree(directory, ignore_errors=True)
        log.info("removed the node's temporary data directory %s", directory)

    def _refuse_queued(self, refusal: BaseException) -> None:
        """Answer every inbound item nobody will sequence (the sequencer is gone)."""
        per_loop: dict[Any, Any] = {}
        while True:
            try:
                item = self._inbound.get_nowait()
            except queue.Empty:
                break
            waiter = _waiter_of(item)
            if item[0] == _K_ENTRIES:
                self._release_inflight(len(item[1]))
            if waiter is not None:
                _resolve(waiter, refusal, per_loop)
        _flush_async(per_loop)

    def _check_running(self) -> None:
        if not self._running:
            failure = self._failure
            raise NodeUnavailable("the node failed: " + repr(failure) if failure
                                  else "the node is not running")

    # --- submissions ----------------------------------------------------------------------------

    def _reserve(self, count: int) -> None:
        self._check_running()
        with self._inflight_lock:
            if self._inflight + count > self.config.storage.inflight_max:
                raise NodeUnavailable(f"overloaded: {self._inflight} submissions in flight")
            self._inflight += count
        self._last_submission = time.monotonic()

    def _release_inflight(self, count: int) -> None:
        with self._inflight_lock:
            self._inflight -= count

    def _prepare(self, signed: Sequence[SignedTransaction]) -> list[tuple[Any, ...]]:
        """On a recovery thread: recover the signer and encode; (entry, data, tx_id,
        verified|error)."""
        domain = self.domain
        assert domain is not None
        return prepare(domain, signed)

    def _submit_chunk(self, chunk: Sequence[SignedTransaction], waiter: Waiter) -> None:
        # a plain queue and long-lived workers rather than an executor: ``submit`` builds a
        # concurrent Future (a Condition) and probes an idle semaphore per call, which cost
        # the event loop ~10 µs a message when every message is one order (measured, py-spy)
        with self._jobs_lock:
            if self._jobs_closed:
                self._release_inflight(len(chunk))
                raise NodeUnavailable("the node is stopping")
            self._jobs.put((chunk, waiter))

    def _run_recoverer(self) -> None:
        """A recovery thread: prepare each job, hand it to the sequencer, in the order taken
        (two workers may overtake each other, as a pool's tasks may: nonce windows allow it)."""
        jobs = self._jobs
        inbound = self._inbound
        while True:
            job = jobs.get()
            if job is None:
                return
            chunk, waiter = job
            try:
                prepared = self._prepare(chunk)
            except BaseException as error:  # pragma: no cover - a bug in preparation
                self._fail_jobs([job], error)
                continue
            inbound.put((_K_ENTRIES, prepared, waiter))

    def _run_dispatcher(self) -> None:
        """The recovery dispatcher: each round takes every job queued (up to
        ``ROUND_SIGNATURES_MAX`` actions), has the worker processes recover them
        (``prepare_round``) and hands them to the sequencer in the order taken."""
        jobs = self._jobs
        inbound = self._inbound
        recovery = self._recovery
        domain = self.domain
        assert recovery is not None and domain is not None
        held: tuple[Sequence[SignedTransaction], Waiter] | None = None  # the next round's first
        stopping = False
        while not stopping or held is not None:
            job = held if held is not None else jobs.get()
            held = None
            if job is None:
                return
            taken = [job]
            count = len(job[0])
            while not stopping:
                try:
                    job = jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True  # finish what was queued before the stop, then exit
                elif count + len(job[0]) > ROUND_SIGNATURES_MAX:
                    held = job
                    break
                else:
                    taken.append(job)
                    count += len(job[0])
            try:
                rounds = prepare_round(recovery, domain, [chunk for chunk, _ in taken])
            except BaseException as error:  # pragma: no cover - a bug in preparation
                self._fail_jobs(taken, error)
                continue
            for (_, waiter), prepared in zip(taken, rounds, strict=True):
                inbound.put((_K_ENTRIES, prepared, waiter))

    def _fail_jobs(self, jobs: Sequence[tuple[Sequence[SignedTransaction], Waiter]],
                   error: BaseException) -> None:
        """Answer every submission of ``jobs`` with ``error`` (preparation failed: a bug)."""
        per_loop: dict[Any, Any] = {}
        for chunk, waiter in jobs:
            self._release_inflight(len(chunk))
            _resolve(waiter, error, per_loop)
        _flush_async(per_loop)

    def _close_recovery(self) -> None:
        """Stop the recovery worker processes once no dispatcher can use them (idempotent);
        they also exit by themselves when this process dies (their stdin closes)."""
        recovery, self._recovery = self._recovery, None
        if recovery is None:
            return
        if any(thread.is_alive() for thread in self._recoverers):  # pragma: no cover
            log.warning("the recovery dispatcher did not stop; closing its workers anyway")
        recovery.close()

    def _close_jobs(self) -> None:
        """Take no more submissions, let the recovery threads (or the dispatcher) finish what
        they hold (their entries reach the sequencer), and refuse whatever none of them will
        take (idempotent)."""
        with self._jobs_lock:
            if self._jobs_closed:
                return
            self._jobs_closed = True
            for _ in self._recoverers:
                self._jobs.put(None)
        current = threading.current_thread()
        for thread in self._recoverers:
            if thread is not current:
                thread.join(STOP_TIMEOUT_S)
        refusal = NodeUnavailable("the node is stopping")
        per_loop: dict[Any, Any] = {}
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._release_inflight(len(job[0]))
                _resolve(job[1], refusal, per_loop)
        _flush_async(per_loop)

    def submit_future(self, signed: SignedTransaction) -> Future[Ack]:
        """The ack (or ``AdmissionError``) of one signed action, as a concurrent future."""
        self._reserve(1)
        chunk_future: Future[list[Any]] = Future()
        result: Future[Ack] = Future()

        def unwrap(done: Future[list[Any]]) -> None:
            error = done.exception()
            value = error if error is not None else done.result()[0]
            if isinstance(value, BaseException):
                result.set_exception(value)
            else:
                result.set_result(value)

        chunk_future.add_done_callback(unwrap)
        self._submit_chunk([signed], chunk_future)
        return result

    def submit_sync(self, signed: SignedTransaction, timeout_s: float | None = QUERY_TIMEOUT_S,
                    ) -> Ack:
        return self.submit_future(signed).result(timeout_s)

    def submit_many_sync(self, signed: Sequence[SignedTransaction],
                         timeout_s: float | None = QUERY_TIMEOUT_S,
                         ) -> list[Ack | AdmissionError]:
        self._reserve(len(signed))
        futures: list[Future[list[Any]]] = []
        for start in range(0, len(signed), RECOVERY_CHUNK_MAX):
            future: Future[list[Any]] = Future()
            futures.append(future)
            self._submit_chunk(signed[start:start + RECOVERY_CHUNK_MAX], future)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        results: list[Ack | AdmissionError] = []
        for future in futures:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            results.extend(future.result(remaining))
        return results

    async def submit(self, signed: SignedTransaction) -> Ack:
        """Sequence one signed action; the ack once durable (``AdmissionError`` if refused)."""
        results = await self.submit_many([signed])
        value = results[0]
        if isinstance(value, AdmissionError):
            raise value
        return value

    async def submit_many(self, signed: Sequence[SignedTransaction],
                          ) -> list[Ack | AdmissionError]:
        """Sequence several actions in order; one result per action, in order."""
        if not signed:
            return []
        loop = asyncio.get_running_loop()
        self._reserve(len(signed))
        if len(signed) <= RECOVERY_CHUNK_MAX:  # one chunk (the common case): no gather
            single: asyncio.Future[list[Ack | AdmissionError]] = loop.create_future()
            self._submit_chunk(signed, _AsyncWaiter(loop, single))
            return await single
        futures = []
        for start in range(0, len(signed), RECOVERY_CHUNK_MAX):
            future: asyncio.Future[list[Any]] = loop.create_future()
            futures.append(future)
            self._submit_chunk(signed[start:start + RECOVERY_CHUNK_MAX],
                               _AsyncWaiter(loop, future))
        results: list[Ack | AdmissionError] = []
        for part in await asyncio.gather(*futures):
            results.extend(part)
        return results

    def submit_system(self, tx: Transaction) -> Future[Ack]:
        """Sequence a system transaction (oracle update, heartbeat, option operator action)."""
        self._check_running()
        entry = system_entry(tx)
        future: Future[Ack] = Future()
        self._inbound.put((_K_SYSTEM, entry, encode_entry(entry), keccak256(entry.body),
                           future))
        return future

    def set_oracle_price(self, index_id: int, price_quantums: int) -> None:
        """Move the local price feed; the next oracle heartbeat signs the new price."""
        if not isinstance(self.price_feed, ManualPriceFeed):
            raise NodeError("the node's price feed is not the manual (local) one")
        self.price_feed.set_price(index_id, price_quantums)
        self._next_oracle = time.monotonic()

    def close_batch_sync(self, timeout_s: float | None = QUERY_TIMEOUT_S) -> BatchView | None:
        """Close the open batch now (tests, demos); once durable, the view of the batch just
        closed, or of the latest closed one if none was open (None before any batch)."""
        self._check_running()
        future: Future[BatchView | None] = Future()
        self._inbound.put((_K_CLOSE_BATCH, future))
        return future.result(timeout_s)

    # --- queries --------------------------------------------------------------------------------

    def _call(self, fn: Callable[[], _T], waiter: Waiter) -> None:
        self._check_running()
        self._inbound.put((_K_CALL, fn, waiter))

    def _call_sync(self, fn: Callable[[], _T], timeout_s: float | None = QUERY_TIMEOUT_S) -> _T:
        future: Future[_T] = Future()
        self._call(fn, future)
        return future.result(timeout_s)

    async def _call_async(self, fn: Callable[[], _T]) -> _T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._call(fn, _AsyncWaiter(loop, future))
        return await future

    def markets_sync(self) -> list[MarketView]:
        return self._call_sync(self._markets)

    async def markets(self) -> list[MarketView]:
        return await self._call_async(self._markets)

    def book_sync(self, market_id: int, depth: int = 20) -> BookView | None:
        return self._call_sync(lambda: self._book(market_id, depth))

    async def book(self, market_id: int, depth: int = 20) -> BookView | None:
        return await self._call_async(lambda: self._book(market_id, depth))

    def account_sync(self, owner: bytes, subaccount: int = 0) -> AccountView | None:
        return self._call_sync(lambda: self._account(owner, subaccount))

    async def account(self, owner: bytes, subaccount: int = 0) -> AccountView | None:
        return await self._call_async(lambda: self._account(owner, subaccount))

    def account_risk_sync(self, owner: bytes, subaccount: int = 0) -> AccountRiskView | None:
        """Greeks and margin breakdown of a subaccount (None if unknown); read on the
        sequencer thread like every account query."""
        return self._call_sync(lambda: self._account_risk(owner, subaccount))

    async def account_risk(self, owner: bytes, subaccount: int = 0) -> AccountRiskView | None:
        return await self._call_async(lambda: self._account_risk(owner, subaccount))

    def status_sync(self) -> NodeStatus:
        return self._call_sync(self._status)

    async def status(self) -> NodeStatus:
        return await self._call_async(self._status)

    def trades_sync(self, market_id: int, limit: int = 100) -> list[TradeView]:
        """Recent trades, newest last (durable ones only; no sequencer round trip)."""
        return self._hub.trades(market_id, limit)

    async def trades(self, market_id: int, limit: int = 100) -> list[TradeView]:
        return self._hub.trades(market_id, limit)

    def batch(self, index: int) -> BatchView | None:
        with self._history_lock:
            record = self._history.get(index)
            return None if record is None or record.index > self._durable_batch else (
                record.view())

    def batches(self, start: int | None = None, limit: int = 100) -> list[BatchView]:
        """Closed batches from ``start`` (default: the ``limit`` latest), oldest first."""
        with self._history_lock:
            last = self._durable_batch
            first = max(1, last - limit + 1) if start is None else start
            views = []
            for index in range(first, min(last, first + limit - 1) + 1):
                record = self._history.get(index)
                if record is not None:
                    views.append(record.view())
            return views

    def withdrawal_claim(self, withdrawal_id: int) -> Any:
        """The proof of a withdrawal against the batch that created it (``WithdrawalClaim``),
        or None (unknown id, or no chain)."""
        claim = self._claims.get(withdrawal_id)
        if claim is None:
            return None
        return claim if self.batch(claim.batch_index) is not None else None

    def _markets(self) -> list[MarketView]:
        assert self._engine is not None
        views = []
        for market_id, market in sorted(self._engine.state.markets.items()):
            config = market.config
            book = market.book
            tier = config.margin_tiers[0]
            views.append(MarketView(
                market_id, config.symbol,
                "perpetual" if config.kind == InstrumentKind.PERPETUAL else "option",
                config.index_id, config.tick_size_quantums, config.lot_size_nanounits,
                market.index_price_quantums, market.open_interest_lots,
                config.open_interest_lots_max, config.order_size_lots_max, tier.initial_ppm,
                tier.maintenance_ppm, config.maker_fee_ppm, config.taker_fee_ppm,
                config.price_band_ppm, market.cumulative_funding_ppm, book.best_bid(),
                book.best_ask()))
        return views

    def _book(self, market_id: int, depth: int) -> BookView | None:
        engine = self._engine
        assert engine is not None and self._market is not None
        if market_id not in engine.state.markets:
            return None
        return self._market.snapshot(engine.state, market_id, depth, engine.state.batch_index)

    def _account(self, owner: bytes, number: int) -> AccountView | None:
        engine = self._engine
        assert engine is not None
        state = engine.state
        sub = state.subaccounts.get((owner, number))
        if sub is None:
            return None
        groups = []
        equity_total = 0
        for group in sub.groups():
            risk = group_risk(state.markets, group)
            equity_total += risk.equity_quantums
            positions = tuple(view for view in (
                position_view(state, owner, number, market_id)
                for market_id in sorted(group.positions)) if view is not None)
            groups.append(GroupView(group.isolated_market_id, group.collateral_quantums,
                                    risk.equity_quantums, risk.initial_quantums,
                                    risk.maintenance_quantums, positions))
        orders = tuple(OrderView(o.order_id, o.market_id, o.is_buy, o.price_ticks, o.size_lots,
                                 o.client_order_id, o.post_only) for o in sub.orders.values())
        return AccountView(owner, number, state.batch_index, equity_total, tuple(groups), orders,
                           self._hub.fills((owner, number)))

    def _account_risk(self, owner: bytes, number: int) -> AccountRiskView | None:
        engine = self._engine
        assert engine is not None
        risk = account_risk(engine.state, owner, number)
        if risk is None:
            return None
        return AccountRiskView(
            risk.owner, risk.subaccount, engine.state.batch_index, risk.portfolio_margin,
            risk.equity_quantums, risk.initial_quantums, risk.maintenance_quantums,
            _greeks_view(risk.greeks), tuple(_risk_group_view(g) for g in risk.groups))

    def _status(self) -> NodeStatus:
        engine = self._engine
        assert engine is not None and self.domain is not None
        latest, final = self._heads
        return NodeStatus(
            self._running, self.config.chain.url, self.domain.chain_id,
            None if self.link is None else self.domain.verifying_contract,
            engine.state.batch_index if engine.execution is None else engine.state.batch_index - 1,
            engine.commitment.root, engine.open_index,
            self._wal.durable_sequence if self._wal is not None else 0, latest, final,
            self._publisher_error)

    # --- subscriptions --------------------------------------------------------------------------

    def subscribe(self, topic: str, queue_max: int = SUBSCRIBER_QUEUE_DEFAULT,
                  depth: int = 20) -> Subscription:
        """Subscribe on the running event loop (see docs/node.md for topics and messages)."""
        parsed = parse_topic(topic)
        if parsed[0] in ("book", "trades") and (
                self.venue is None or parsed[1] not in {m.market_id for m in self.venue.markets}):
            raise ValueError(f"{topic!r}: unknown market")
        self._check_running()
        loop = asyncio.get_running_loop()
        subscription = Subscription(self._hub, topic, parsed, loop, queue_max,
                                    on_close=self._unsubscribed)
        self._inbound.put((_K_SUBSCRIBE, subscription, depth))
        return subscription

    def _unsubscribed(self, subscription: Subscription) -> None:
        if self._running:
            self._inbound.put((_K_UNSUBSCRIBE, subscription.topic))

    # --- the sequencer --------------------------------------------------------------------------

    def _run_sequencer(self) -> None:
        try:
            self._sequencer_loop()
        except BaseException as error:
            # answer everyone this thread owed an answer: nobody else will
            refusal = NodeUnavailable(f"the node failed: {error!r}")
            per_loop: dict[Any, Any] = {}
            current, self._current = self._current, None
            owed = [*self._releases, *([(_R_RESULT, _waiter_of(current), refusal,
                                         len(current[1]) if current[0] == _K_ENTRIES else 0)]
                                       if current is not None else [])]
            self._releases = []
            for release in owed:
                if release[0] == _R_RESULT and release[1] is not None:
                    if len(release) == 4:
                        self._release_inflight(release[3])
                    _resolve(release[1], refusal, per_loop)
            _flush_async(per_loop)
            raise

    def _sequencer_loop(self) -> None:
        inbound = self._inbound
        engine = self._engine
        assert engine is not None
        stop = False
        while not stop:
            if self._failure is not None:  # another thread failed: no graceful close
                self._refuse_queued(NodeUnavailable(f"the node failed: {self._failure!r}"))
                self._flush()
                return
            wait_s = self._until_next_duty()
            try:
                item: tuple[Any, ...] | None = (inbound.get(timeout=wait_s) if wait_s > 0
                                                else inbound.get_nowait())
            except queue.Empty:
                item = None
            handled = 0
            while item is not None:
                if item[0] == _K_STOP:
                    stop = True
                    break
                self._current = item
                self._handle(item)
                self._current = None
                handled += 1
                if handled >= DRAIN_MAX:
                    break
                try:
                    item = inbound.get_nowait()
                except queue.Empty:
                    item = None
            if not stop:
                self._duties()
            self._flush()
        if self._failure is not None:  # woken by another thread's failure: no graceful close
            self._refuse_queued(NodeUnavailable(f"the node failed: {self._failure!r}"))
            return
        # stopping: answer what is still queued as unavailable, close the batch, snapshot
        self._drain_refusing()
        if engine.execution is not None:
            self._close_live(force_snapshot=True)
        elif self._batches_since_snapshot:
            self._take_snapshot(wait=True)
        self._flush()

    def _drain_refusing(self) -> None:
        refusal = NodeUnavailable("the node is stopping")
        while True:
            try:
                item = self._inbound.get_nowait()
            except queue.Empty:
                return
            waiter = _waiter_of(item)
            if item[0] == _K_ENTRIES:
                self._releases.append((_R_RESULT, waiter, refusal, len(item[1])))
            elif waiter is not None:
                self._releases.append((_R_RESULT, waiter, refusal))

    def _until_next_duty(self) -> float:
        engine = self._engine
        assert engine is not None
        now = time.monotonic()
        due = self._next_funding
        if self.config.oracle.key is not None:
            due = min(due, self._next_oracle)
        if engine.state.liquidation_queue:
            due = min(due, self._next_liquidations)
        if engine.execution is not None:
            due = min(due, self._batch_deadline)
        return max(0.0, due - now)

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == _K_ENTRIES:
            self._handle_entries(item[1], item[2])
        elif kind == _K_SYSTEM:
            self._sequence_system(item[1], item[2], item[3], item[4])
        elif kind == _K_L1:
            for tx in item[1]:
                entry = system_entry(tx)
                self._sequence_system(entry, encode_entry(entry), keccak256(entry.body), None)
            self._l1_cursor = item[2]
        elif kind == _K_CALL:
            try:
                value = item[1]()
            except Exception as error:
                value = error
            self._releases.append((_R_RESULT, item[2], value))
        elif kind == _K_SUBSCRIBE:
            self._handle_subscribe(item[1], item[2])
        elif kind == _K_UNSUBSCRIBE:
            assert self._market is not None
            self._market.interest(item[1], -1)
        elif kind == _K_CLOSE_BATCH:
            engine = self._engine
            assert engine is not None
            if engine.execution is not None:
                record: BatchRecord | None = self._close_live()
            else:  # the cadence closed it already: answer with the latest closed batch
                with self._history_lock:
                    record = self._history.get(engine.state.batch_index)
            self._releases.append((_R_RESULT, item[1], None if record is None else
                                   record.view()))

    def _handle_entries(self, prepared: list[tuple[Any, ...]], waiter: Waiter) -> None:
        results: list[Ack | AdmissionError] = []
        for entry, data, tx_id, verified in prepared:
            if isinstance(verified, AdmissionError):
                results.append(verified)
                continue
            try:
                results.append(self._sequence(entry, data, tx_id, verified))
            except AdmissionError as error:
                results.append(error)
        self._releases.append((_R_RESULT, waiter, results, len(prepared)))

    def _sequence(self, entry: Entry, data: bytes, tx_id: bytes,
                  verified: VerifiedTransaction | None) -> Ack:
        engine = self._engine
        assert engine is not None and self._market is not None
        batch = self.config.batch
        if engine.execution is None:
            self._open_batch()
        elif engine.open_entries and not engine.room_for(entry, len(data), batch.txs_max,
                                                         batch.bytes_max):
            # (an empty batch takes any single entry: the limits' minimums fit the largest)
            self._close_live()  # what was sequenced before need not wait for the root
            self._open_batch()
        receipt, sequence = engine.execute(entry, data, verified)
        batch_index = engine.state.batch_index
        if receipt.events:
            self._market.on_entry(engine.state, receipt.events, sequence, batch_index,
                                  engine.open_timestamp_ms, self._messages)
        signer = verified.signer if verified is not None else ZERO_ADDRESS
        return Ack(tx_id, signer, sequence, batch_index, receipt)

    def _sequence_system(self, entry: Entry, data: bytes, tx_id: bytes,
                         waiter: Waiter | None) -> None:
        ack = self._sequence(entry, data, tx_id, None)
        if not ack.ok:
            log.warning("system transaction %s refused by the STF: %s",
                        type(entry.tx).__name__ if not isinstance(entry, SignedEntry) else "",
                        ack.receipt.message)
        if waiter is not None:
            self._releases.append((_R_RESULT, waiter, ack))

    def _handle_subscribe(self, subscription: Subscription, depth: int) -> None:
        engine = self._engine
        assert engine is not None and self._market is not None
        self._market.interest(subscription.topic, +1)
        first = None
        if subscription.topic[0] == "book":
            first = self._market.snapshot(engine.state, subscription.topic[1], depth,
                                          engine.state.batch_index)
        # ordered after every message produced so far, before every later one
        self._move_messages()
        self._releases.append((_R_REGISTER, subscription, first))

    def _move_messages(self) -> None:
        if self._messages:
            self._releases.append((_R_MESSAGES, self._messages))
            self._messages = []

    def _open_batch(self) -> None:
        engine = self._engine
        assert engine is not None
        engine.open_batch(_now_ms())
        self._batch_deadline = time.monotonic() + self.config.batch.interval_ms / 1_000

    def _close_live(self, force_snapshot: bool = False) -> BatchRecord:
        """Close the open batch on the running node, after handing what this step sequenced to
        the log and its answers to the committer: the state root (measured at the bench's 5,000
        orders/s: 1 ms median, 11 to 37 ms at the 99th percentile on a loaded 2-core machine)
        and a due snapshot's fork (7 to 109 ms) then run while those records sync, instead of
        delaying every answer of the step by their time. ``force_snapshot``: take a snapshot
        now and wait for it (the stop path)."""
        self._flush()
        return self._close_batch(force_snapshot=force_snapshot)

    def _close_batch(self, force_snapshot: bool = False) -> BatchRecord:
        engine = self._engine
        assert engine is not None
        first_withdrawal = engine.first_withdrawal_id
        record = engine.close_batch()
        if self.link is not None and engine.state.next_withdrawal_id > first_withdrawal:
            for claim in self.link.record_claims(engine.commitment, engine.state,
                                                 first_withdrawal):
                self._claims[claim.withdrawal_id] = claim
        with self._history_lock:
            self._history[record.index] = record
            while len(self._history) > HISTORY_MAX:
                self._history.popitem(last=False)
        self._move_messages()
        self._releases.append((_R_BATCH, record))
        self._batches_since_snapshot += 1
        if force_snapshot or (self._batches_since_snapshot
                              >= self.config.storage.snapshot_interval_batches):
            self._take_snapshot(wait=force_snapshot)
        self._collect_garbage()
        return record

    def _collect_garbage(self) -> None:
        """At a batch boundary: freeze the survivors, or now and then collect everything (see
        GC_QUIET_S)."""
        now = time.monotonic()
        since_full = now - self._gc_full_at
        quiet = now - self._last_submission >= GC_QUIET_S
        if (quiet and since_full >= GC_FULL_INTERVAL_S) or since_full >= GC_FULL_INTERVAL_MAX_S:
            gc.unfreeze()
            found = gc.collect()
            self._gc_full_at = time.monotonic()
            log.debug("full garbage collection: %d objects in %.1f ms", found,
                      (self._gc_full_at - now) * 1_000)
        gc.freeze()

    def _duties(self) -> None:
        engine = self._engine
        assert engine is not None
        now = time.monotonic()
        oracle = self.config.oracle
        if oracle.key is not None and now >= self._next_oracle:
            self._next_oracle = now + oracle.interval_ms / 1_000
            self._oracle_heartbeat(now)
        if now >= self._next_funding:
            self._next_funding = now + self.config.heartbeat.funding_interval_ms / 1_000
            if any(m.index_price_quantums for m in engine.state.markets.values()):
                entry = system_entry(FundingTick())
                self._sequence_system(entry, encode_entry(entry), keccak256(entry.body), None)
        if engine.state.liquidation_queue and now >= self._next_liquidations:
            self._next_liquidations = now + (
                self.config.heartbeat.liquidations_interval_ms / 1_000)
            entry = system_entry(ProcessLiquidations())
            self._sequence_system(entry, encode_entry(entry), keccak256(entry.body), None)
        if engine.execution is not None and time.monotonic() >= self._batch_deadline:
            self._close_live()

    def _oracle_heartbeat(self, now: float) -> None:
        engine = self._engine
        oracle = self.config.oracle
        assert engine is not None and oracle.key is not None and self.venue is not None
        known = engine.state.known_indices
        prices = {index: price for index, price in self.price_feed.prices().items()
                  if index in known and price > 0}
        if not prices:
            return
        stale = now - self._oracle_sent_at >= oracle.refresh_ms / 1_000
        if prices == self._oracle_sent and not stale:
            return
        if engine.execution is None:
            self._open_batch()
        state = engine.state
        timestamp_ms = max(engine.open_timestamp_ms, state.oracle_timestamp_ms + 1)
        if timestamp_ms > engine.open_timestamp_ms + self.venue.oracle_max_future_ms:
            return  # the oracle clock ran ahead of batch time; try again later
        update_prices = tuple(OraclePrice(index, price) for index, price in sorted(prices.items()))
        digest = oracle_message_digest(self.venue.chain_id, timestamp_ms, update_prices)
        update = OracleUpdate(timestamp_ms, update_prices, (sign_digest(oracle.key, digest),))
        entry = system_entry(update)
        self._sequence_system(entry, encode_entry(entry), keccak256(entry.body), None)
        self._oracle_sent = prices
        self._oracle_sent_at = now

    def _flush(self) -> None:
        engine = self._engine
        assert engine is not None
        last = engine.flush()
        self._move_messages()
        if self._releases:
            releases, self._releases = self._releases, []
            with self._commit_cond:
                if not self._committer_exited:
                    self._commit_queue.append((last, releases))
                    self._commit_cond.notify()
                    return
            # the committer is gone (the node failed): nobody can vouch for durability
            per_loop: dict[Any, Any] = {}
            refusal = NodeUnavailable(f"the node failed: {self._failure!r}")
            for release in releases:
                if release[0] == _R_RESULT:
                    if len(release) == 4:
                        self._release_inflight(release[3])
                    _resolve(release[1], refusal, per_loop)
            _flush_async(per_loop)

    # --- snapshots ------------------------------------------------------------------------------

    def _take_snapshot(self, wait: bool = False) -> None:
        """Snapshot the state at this batch boundary. One forked writer at a time: while one
        runs, a due snapshot waits for the next boundary (``wait``: block until it is done)."""
        engine = self._engine
        assert engine is not None and engine.execution is None and self.venue is not None
        if not self._snapshot_idle.is_set():
            if not wait:
                return
            self._snapshot_idle.wait()
        self._batches_since_snapshot = 0
        # the snapshot thread waits for the WAL to cover the close record: append it now (its
        # answers still wait in the release list for the next hand-off, which covers it)
        close_sequence = engine.flush()
        with self._history_lock:
            history = [dataclasses.replace(record, data=None)
                       for record in list(self._history.values())[-SNAPSHOT_HISTORY_MAX:]]
        extra = {"l1_cursor": self._l1_cursor, "history": history,
                 "claims": dict(self._claims), "retain_from": self._retain_from()}
        snapshot = NodeSnapshot(_code_version(), _venue_fingerprint(self.venue),
                                engine.state.batch_index, engine.commitment.root,
                                close_sequence, engine.state, engine.commitment,
                                engine.admission.snapshot(), extra)
        assert self.data_dir is not None
        started = time.perf_counter()
        if self.config.storage.snapshot_fork and hasattr(os, "fork"):
            self._snapshot_idle.clear()
            pid = fork_and_write(self.data_dir / SNAPSHOT_DIRECTORY, snapshot)
            self._snapshots.put((snapshot.batch_index, close_sequence, pid, None))
            what = "forked"
        else:
            payload = dumps_snapshot(snapshot)
            self._snapshots.put((snapshot.batch_index, close_sequence, 0, payload))
            what = f"{len(payload)} bytes pickled"
        log.debug("snapshot of batch %d: %s in %.1f ms", snapshot.batch_index, what,
                  (time.perf_counter() - started) * 1_000)

    def _retain_from(self) -> int:
        """The first WAL sequence a restart may need for republishing (1: everything)."""
        if self.link is None:
            return 1  # no chain: nothing is ever final, the log is the only history
        engine = self._engine
        assert engine is not None
        with self._history_lock:
            for record in self._history.values():
                if record.status != "final":
                    return record.open_sequence
        return engine.next_sequence

    def _run_snapshots(self) -> None:
        assert self.data_dir is not None
        directory = self.data_dir / SNAPSHOT_DIRECTORY
        while True:
            job = self._snapshots.get()
            if job is None:
                return
            batch_index, close_sequence, pid, payload = job
            wal = self._wal
            assert wal is not None
            if payload is not None:
                write_snapshot(directory, batch_index, close_sequence, payload,
                               before_rename=functools.partial(wal.wait_durable,
                                                               close_sequence))
            else:
                try:
                    _, status = os.waitpid(pid, 0)
                except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): it has exited
                    status = 0  # and the file's checksum decides
                temporary = temporary_path(directory, batch_index, pid)
                try:
                    if status != 0:
                        raise SnapshotError(f"the writer exited with status {status}")
                    wal.wait_durable(close_sequence)  # visible only once the WAL covers it
                    publish_temporary(temporary)
                except (OSError, SnapshotError) as error:
                    temporary.unlink(missing_ok=True)
                    log.error("snapshot of batch %d not written: %s", batch_index, error)
                    continue
                finally:
                    self._snapshot_idle.set()
            remove_snapshots(directory, self.config.storage.snapshots_kept)
            kept = list_snapshots(directory)
            if self.link is None or not kept:
                continue
            # the oldest kept snapshot still needs the log after it; a non-final batch needs
            # its own records to be published again
            oldest = snapshot_sequence(kept[-1][1])
            keep_from = min(oldest + 1, self._retain_from())
            removed = wal.remove_segments_before(keep_from)
            if removed:
                log.debug("removed %d WAL segments below sequence %d", removed, keep_from)

    # --- the committer --------------------------------------------------------------------------

    def _run_committer(self) -> None:
        wal = self._wal
        assert wal is not None
        while True:
            with self._commit_cond:
                while not self._commit_queue and not self._commit_stop:
                    self._commit_cond.wait()
                if not self._commit_queue:
                    self._committer_exited = True
                    return
                groups, self._commit_queue = self._commit_queue, []
            target = max(last for last, _ in groups)
            failure: BaseException | None = None
            if target > 0:
                try:
                    wal.wait_durable(target)
                except WalError as error:
                    failure = NodeUnavailable(f"the write-ahead log failed: {error}")
                    self._fail(error)
            per_loop: dict[Any, Any] = {}
            for _, releases in groups:
                for release in releases:
                    self._release(release, per_loop, failure)
            _flush_async(per_loop)

    def _release(self, release: tuple[Any, ...], per_loop: dict[Any, Any],
                 failure: BaseException | None) -> None:
        kind = release[0]
        if kind == _R_RESULT:
            if len(release) == 4:
                self._release_inflight(release[3])
            _resolve(release[1], failure or release[2], per_loop)
        elif failure is not None:
            return
        elif kind == _R_MESSAGES:
            self._hub.record(release[1])
            self._hub.publish(release[1])
        elif kind == _R_REGISTER:
            self._hub.deliver_first(release[1], release[2])
        elif kind == _R_BATCH:
            record: BatchRecord = release[1]
            with self._history_lock:
                self._durable_batch = max(self._durable_batch, record.index)
            self._hub.publish([(("batches", None), record.view())])
            with self._publish_cond:
                self._publish_cond.notify()

    # --- the publisher --------------------------------------------------------------------------

    def _run_publisher(self) -> None:
        from rollbook.settlement.bridge import BridgeError
        from rollbook.settlement.chain import ChainError

        link = self.link
        poll_s = self.config.chain.poll_interval_ms / 1_000
        backoff = PUBLISH_BACKOFF_FIRST_S
        next_poll = 0.0
        while True:
            with self._publish_cond:
                if self._publish_stop:
                    return
            try:
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + poll_s
                    txs, cursor = link.poll_l1()
                    if txs or cursor != self._l1_cursor:
                        self._inbound.put((_K_L1, txs, cursor))
                    self._refresh_statuses()
                published = self._publish_next()
                self._publisher_error = None
                backoff = PUBLISH_BACKOFF_FIRST_S
                if published:
                    continue
                # woken early by every durable batch (notify)
                wait_s = max(0.0, next_poll - time.monotonic())
            except NodeError as error:  # disputed again and again: stop publishing, not trading
                self._publisher_error = f"publisher stopped: {error}"
                log.error("%s", self._publisher_error)
                return
            except (ChainError, BridgeError, OSError) as error:
                self._publisher_error = f"{type(error).__name__}: {error}"
                log.warning("publisher: %s (retrying in %.1f s)", self._publisher_error, backoff)
                wait_s = backoff
                backoff = min(backoff * 2, PUBLISH_BACKOFF_MAX_S)
            with self._publish_cond:
                if not self._publish_stop:
                    self._publish_cond.wait(wait_s)

    def _publish_next(self) -> bool:
        """Submit the next durable batch the contract lacks; whether one was submitted."""
        latest, _ = self._heads
        with self._history_lock:
            record = self._history.get(latest + 1)
            if record is None or record.index > self._durable_batch:
                return False
        if record.disputes > DISPUTE_RESUBMITS_MAX:
            raise NodeError(f"batch {record.index} was disputed {record.disputes} times; the "
                            "publisher stops (check the verifier's findings)")
        tx_hash = self.link.publish(record)
        with self._history_lock:
            record.status = "submitted"
            record.l1_transaction_hash = tx_hash
            self._heads = (record.index, self._heads[1])
        self._hub.publish([(("batches", None), record.view())])
        return True

    def _refresh_statuses(self) -> None:
        latest, final = self.link.heads()
        changed: list[BatchRecord] = []
        with self._history_lock:
            known_latest = self._heads[0]
            if latest < known_latest:  # a dispute discarded batches latest+1 ..
                for index in range(latest + 1, known_latest + 1):
                    record = self._history.get(index)
                    if record is not None:
                        record.status = "disputed"
                        record.disputes += 1
                        changed.append(record)
            for index in range(self._heads[1] + 1, final + 1):
                record = self._history.get(index)
                if record is not None and record.status != "final":
                    record.status = "final"
                    changed.append(record)
                    if self.link is not None:
                        record.data = None  # final: never published again
            self._heads = (latest, final)
        if changed:
            self._hub.publish([(("batches", None), r.view()) for r in changed])

    # --- test and demo helpers ------------------------------------------------------------------

    def wait_for_batch(self, index: int, status: str = "pending",
                       timeout_s: float = QUERY_TIMEOUT_S) -> BatchView:
        """Block until batch ``index`` is durable and has reached ``status``
        (pending < submitted < final)."""
        order = {"pending": 0, "submitted": 1, "final": 2}
        deadline = time.monotonic() + timeout_s
        while True:
            view = self.batch(index)
            if view is not None and order.get(view.status, -1) >= order[status]:
                return view
            if time.monotonic() >= deadline:
                raise TimeoutError(f"batch {index} did not reach {status!r} in {timeout_s} s "
                                   f"(now {view.status if view else 'not closed'})")
            if self.link is not None:
                with self._publish_cond:
                    self._publish_cond.notify()
            time.sleep(0.01)

    def snapshot_state(self) -> tuple[State, StateCommitment, AdmissionState]:
        """An independent copy of (state, commitment, admission) at the sequencer's position
        (tests; the snapshot pickler, since ``copy.deepcopy`` recurses along the books)."""
        def copy_all() -> tuple[State, StateCommitment, AdmissionState]:
            engine = self._engine
            assert engine is not None and self.venue is not None
            copied = loads_snapshot(dumps_snapshot(NodeSnapshot(
                "", b"", engine.state.batch_index, engine.commitment.root, 0, engine.state,
                engine.commitment, engine.admission.snapshot())))
            return (copied.state, copied.commitment, AdmissionState.restore(copied.admission))

        return self._call_sync(copy_all)

    @property
    def engine(self) -> Engine:
        """The single writer (read it only from the sequencer, or with the node stopped)."""
        assert self._engine is not None
        return self._engine


def _waiter_of(item: tuple[Any, ...]) -> Waiter | None:
    kind = item[0]
    if kind in (_K_ENTRIES, _K_CALL):
        return item[2]  # type: ignore[no-any-return]
    if kind == _K_SYSTEM:
        return item[4]  # type: ignore[no-any-return]
    if kind == _K_CLOSE_BATCH:
        return item[1]  # type: ignore[no-any-return]
    return None


def _code_version() -> str:
    return f"{__version__}/encoding-{ENCODING_VERSION}"




def _greeks_view(greeks: Greeks) -> GreeksView:
    return GreeksView(greeks.delta_nanounits, greeks.gamma_nanounits_per_usd,
                      greeks.vega_quantums_per_vol_point, greeks.theta_quantums_per_day)


def _portfolio_view(margin: PortfolioMargin) -> PortfolioRiskView:
    worst = margin.worst_scenario
    return PortfolioRiskView(
        margin.index_id, margin.initial_quantums, margin.maintenance_quantums,
        margin.worst_loss_quantums, margin.worst_scenario_index,
        None if worst is None else ScenarioView(worst.move_ppm, worst.vol_shift_ppm,
                                                worst.weight_ppm),
        tuple(margin.scenario_losses_quantums), margin.delta_charge_quantums,
        margin.short_option_charge_quantums, margin.valuation_allowance_quantums,
        margin.options_value_quantums, _greeks_view(margin.greeks))


def _risk_group_view(group: GroupRisk) -> RiskGroupView:
    positions = []
    for p in group.positions:
        option = p.option
        positions.append(RiskPositionView(
            p.market_id, p.symbol, "perpetual" if option is None else "option",
            None if option is None else option.option_type.name.lower(),
            None if option is None else option.strike_quantums,
            None if option is None else option.expiry_ms,
            None if option is None else option.contract_size_nanounits,
            p.size_lots, p.open_bid_lots, p.open_ask_lots, p.mark_price_quantums,
            p.value_quantums, p.entry_notional_quantums, _greeks_view(p.greeks),
            p.initial_quantums, p.maintenance_quantums))
    return RiskGroupView(
        group.group, group.portfolio_margin, group.in_liquidation, group.collateral_quantums,
        group.equity_quantums, group.initial_quantums, group.maintenance_quantums,
        _greeks_view(group.greeks), tuple(positions),
        tuple(_portfolio_view(m) for m in group.portfolios))

"""``Verifier``: an independent process that rebuilds the venue from the settlement chain alone.

It reads nothing but the chain: the settlement contract's events (``Deposited``,
``ForcedWithdrawalRequested``, ``BatchSubmitted``, ``BatchDisputed``, ``Frozen``) and the
calldata of every ``submit_batch`` transaction. From the genesis state of the venue
configuration it replays every batch through ``replay_batch`` (the node's own replay path) and
runs the checks of ``rollbook.verifier.checks`` on each. A batch that fails one is disputed
inside its challenge window with the configured challenger key, and reported as a
``Divergence`` (batch, entry or None, reason, detail).

How it follows the chain:
- events are taken ``confirmations`` blocks deep, in chain order (``Chain.watch``), so a
  deposit is always known before the batch that credits it;
- ``BatchSubmitted`` of the batch after the replica's: verify (the calldata of the next batch
  is fetched, decoded and its signatures recovered on the pool while this one executes);
- after an invalid batch ``b`` the verifier *halts* at ``b - 1``: later batches build on ``b``
  and are skipped until ``BatchDisputed`` discards them (by anyone: the contract emits it for
  every dispute); the operator's resubmission is then verified from ``b - 1``;
- ``BatchDisputed(i)`` of a batch the verifier found valid (another challenger disagreed) rolls
  the replica back to ``i - 1`` too: the chain's history is what the verifier follows;
- ``Frozen``: the replica rolls back to the escape batch (later batches were discarded) and
  ``escape_kit()`` serves the proofs of the escape hatch.

Rollback: checkpoints (``Replica.dumps``) every ``checkpoint_interval_batches`` verified
batches; a rollback restores the newest checkpoint at or below the target and replays the
batches after it (their calldata kept in memory since the newest checkpoint, fetched again by
transaction hash below it). A checkpoint below a batch that was final at the time of the last
processed block is never needed again (no dispute can reach a final batch), so older ones are
dropped; beyond ``checkpoints_kept_max`` the oldest but one are thinned.

Snapshots (``snapshot_dir``): the newest checkpoint at a final batch is written to disk every
``snapshot_interval_batches`` batches and on ``close()``, with the L1 book and the position of
that batch's own event; a restart resumes there, re-processing every later event. Only the
verifier's own files are read (``rollbook.verifier.snapshot``).

Invariants:
- the replica's root is always one the chain holds at its index, or the verifier has
  reported a divergence at the next index (``halted``);
- every event is processed exactly once per run: the position (block, log index) of the last
  processed event survives a failed poll, and events at or before it are skipped next time;
- a dispute is sent only while the contract still holds the very batch found invalid (same
  root and data hash) and it is not final; otherwise the report says why not. A dispute that
  could not be sent (node unreachable, no receipt) is retried after every poll while the batch
  is still the one the verifier halted at.

Thread-safety: one thread drives a ``Verifier``. ``lock`` (for instance a node's
``ChainLink.lock``) is held around every use of the chain, never around the replay, so an
embedded chain can be shared with a node in the same process.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_canonical_address, to_checksum_address

from rollbook.commitment.batches import genesis_commitment
from rollbook.execution.state import genesis_state
from rollbook.sequencer.admission import AdmissionState
from rollbook.sequencer.batch_data import BatchDataError, decode_batch_data
from rollbook.sequencer.eip712 import Eip712Domain
from rollbook.settlement.chain import Chain, ChainError, ChainUnavailableError, Event, RevertError
from rollbook.settlement.client import (
    SETTLEMENT_EVENT_TYPES,
    BatchDisputedEvent,
    BatchSubmittedEvent,
    DepositEvent,
    ForcedWithdrawalRequestedEvent,
    FrozenEvent,
    SettlementClient,
)
from rollbook.verifier.calldata import CalldataError, read_transaction
from rollbook.verifier.checks import (
    CheckRules,
    L1Book,
    L1Deposit,
    L1ForcedRequest,
    Submission,
    check_batch,
)
from rollbook.verifier.config import VerifierConfig, venue_fingerprint
from rollbook.verifier.divergence import Divergence
from rollbook.verifier.escape import EscapeKit, build_escape_kit
from rollbook.verifier.pipeline import PREFETCH_AHEAD_BATCHES, RecoveryPipeline
from rollbook.verifier.replica import Replica
from rollbook.verifier.snapshot import (
    SnapshotHeader,
    VerifierSnapshotError,
    list_snapshots,
    read_snapshot,
    write_snapshot,
)

__all__ = [
    "PROGRESS_INTERVAL_S",
    "ROOT_LOG_MAX",
    "DisputeRecord",
    "Verifier",
    "VerifierError",
    "VerifierReport",
]

PROGRESS_INTERVAL_S = 2.0  # at most one routine progress line this often (events always say)
ROOT_LOG_MAX = 100_000  # (batch, root) pairs kept for inspection; older ones are dropped
_GENESIS_POSITION = -1  # log index "before every event" of the start block


class VerifierError(RuntimeError):
    """The verifier cannot go on: wrong venue or contract, or a chain history it cannot
    follow (the message says which)."""


@dataclass(frozen=True, slots=True)
class DisputeRecord:
    """What the verifier did about one divergence."""

    divergence: Divergence
    sent: bool
    transaction_hash: bytes | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"divergence": self.divergence.as_dict(), "sent": self.sent,
                "transaction_hash": None if self.transaction_hash is None
                else "0x" + self.transaction_hash.hex(), "note": self.note}


@dataclass(slots=True)
class VerifierReport:
    """Counters since this process started (``resumed_from`` names the snapshot's batch)."""

    batches_verified: int = 0  # batches checked (valid or not)
    roots_matched: int = 0  # batches that passed every check
    disputes_sent: int = 0
    transactions: int = 0  # entries of valid batches replayed
    rollbacks: int = 0
    skipped: int = 0  # batches built on an invalid one, never checked
    last_verified_batch: int = 0
    last_verified_root: str = ""
    halted_at: int | None = None  # the invalid batch the verifier waits to see discarded
    frozen: bool = False
    escape_batch: int | None = None
    resumed_from: int | None = None
    divergences: list[Divergence] = field(default_factory=list)
    disputes: list[DisputeRecord] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches_verified": self.batches_verified, "roots_matched": self.roots_matched,
            "disputes_sent": self.disputes_sent, "transactions": self.transactions,
            "rollbacks": self.rollbacks, "skipped": self.skipped,
            "last_verified_batch": self.last_verified_batch,
            "last_verified_root": self.last_verified_root, "halted_at": self.halted_at,
            "frozen": self.frozen, "escape_batch": self.escape_batch,
            "resumed_from": self.resumed_from,
            "divergences": [d.as_dict() for d in self.divergences],
            "disputes": [d.as_dict() for d in self.disputes],
        }


@dataclass(slots=True)
class _Verified:
    """A batch the replica verified: enough to replay it again or resume after it."""

    index: int
    root: bytes
    transaction_hash: bytes
    block_number: int
    log_index: int
    block_timestamp_s: int
    data: bytes | None  # kept while no checkpoint covers the batch


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    index: int
    root: bytes
    payload: bytes
    next_deposit_id: int
    next_forced_id: int
    block_number: int  # where the batch's own BatchSubmitted event is (resume position)
    log_index: int


class Verifier:
    """See the module docstring. ``settlement_address``: hex string or 20 bytes."""

    def __init__(self, chain: Chain, settlement_address: str | bytes, config: VerifierConfig, *,
                 lock: contextlib.AbstractContextManager[Any] | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.chain = chain
        self.config = config
        self._lock: contextlib.AbstractContextManager[Any] = lock or contextlib.nullcontext()
        self._say = progress or (lambda message: None)
        address = (settlement_address if isinstance(settlement_address, bytes)
                   else to_canonical_address(settlement_address))
        self.settlement_address = address
        with self._lock:
            self.client = SettlementClient.at(chain, to_checksum_address(address))
            chain_id = chain.chain_id
            genesis_root = self.client.genesis_root()
            self.challenge_window_s = self.client.challenge_window_s()
            forced_deadline_s = self.client.forced_deadline_s()
            challenger_allowed = (config.challenger_key is not None and self.client.is_challenger(
                Account.from_key(config.challenger_key).address))
        if config.venue.chain_id != chain_id:
            raise VerifierError(f"the venue configuration is for chain {config.venue.chain_id}, "
                                f"the endpoint serves chain {chain_id}")
        self.domain = Eip712Domain(chain_id, address)
        self.rules = CheckRules(forced_deadline_s, config.l1_time_tolerance_ms)
        self.genesis_root = genesis_root
        self._fingerprint = venue_fingerprint(config.venue)
        self.challenger: LocalAccount | None = (
            None if config.challenger_key is None else Account.from_key(config.challenger_key))
        if self.challenger is not None and not challenger_allowed:
            self._say(f"warning: {self.challenger.address} is not a challenger of the "
                      "settlement contract; disputes will revert")
        self.report = VerifierReport()
        self.book = L1Book()
        self.root_log: deque[tuple[int, bytes]] = deque(maxlen=ROOT_LOG_MAX)
        self.pipeline = RecoveryPipeline(self.domain, config.recovery_threads,
                                         processes=config.recovery_processes)
        self._checkpoints: list[_Checkpoint] = []
        self._verified: dict[int, _Verified] = {}
        self._halted: Divergence | None = None
        self._pending_dispute: tuple[Submission, Divergence] | None = None
        self._frozen: FrozenEvent | None = None
        self._lookahead: dict[tuple[int, int], Submission] = {}
        self._final_index = 0
        self._snapshot_index = -1
        self._last_progress = 0.0
        self._cursor = config.start_block
        self._done_through: tuple[int, int] = (config.start_block, _GENESIS_POSITION)
        self.replica = self._start(genesis_root)

    # --- public API -----------------------------------------------------------------------------

    @property
    def batch_index(self) -> int:
        """The last batch the replica verified (and holds the state after)."""
        return self.replica.batch_index

    @property
    def root(self) -> bytes:
        return self.replica.root

    @property
    def halted(self) -> Divergence | None:
        """The divergence the verifier stopped at, until the chain discards that batch."""
        return self._halted

    @property
    def frozen(self) -> FrozenEvent | None:
        return self._frozen

    @property
    def cursor(self) -> int:
        """The first block the next poll scans."""
        return self._cursor

    def poll(self) -> bool:
        """Process the confirmed events of one ``Chain.watch`` call; True when caught up."""
        with self._lock:
            result = self.chain.watch(self.client.handle, self._cursor,
                                      self.config.confirmations)
        events = [event for event in result.events
                  if (event.block_number, event.log_index) > self._done_through]
        for position, event in enumerate(events):
            self._handle(event, events, position)
            self._done_through = (event.block_number, event.log_index)
        self._cursor = result.cursor
        self._retry_dispute()
        if result.cursor > 0:
            self._after_poll(result.cursor - 1)
        return result.cursor > result.head - self.config.confirmations

    def sync(self, max_polls: int | None = None) -> VerifierReport:
        """Poll until caught up with the chain (``confirmations`` deep); the report."""
        polls = 0
        while not self.poll():
            polls += 1
            if max_polls is not None and polls >= max_polls:
                break
        self._routine(force=True)
        return self.report

    def run(self, should_stop: Callable[[], bool], *,
            sleep: Callable[[float], None] = time.sleep) -> VerifierReport:
        """Follow the chain until ``should_stop()``: poll, then wait ``poll_interval_ms``. An
        unreachable chain is retried every interval, never fatal."""
        interval_s = self.config.poll_interval_ms / 1_000
        while not should_stop():
            try:
                while not self.poll() and not should_stop():
                    pass
            except ChainUnavailableError as error:
                # every poll is safe to repeat (events at or before the last processed one are
                # skipped), so an outage only delays the verifier; it says so and waits
                self._say(f"chain unavailable, retrying in {interval_s:g} s: {error}")
            self._routine()
            sleep(interval_s)
        return self.report

    def escape_kit(self) -> EscapeKit:
        """The escape hatch's proofs from the replica at the escape batch (after ``Frozen``)."""
        frozen = self._frozen
        if frozen is None:
            raise VerifierError("the settlement contract is not frozen (as far as the verifier "
                                "has processed)")
        if self.replica.batch_index != frozen.escape_batch or self.replica.root != \
                frozen.escape_root:
            raise VerifierError(f"the verifier holds batch {self.replica.batch_index} "
                                f"(0x{self.replica.root.hex()}), the escape root is batch "
                                f"{frozen.escape_batch} (0x{frozen.escape_root.hex()})")
        return build_escape_kit(self.replica.state, self.replica.commitment)

    def close(self) -> None:
        """Write a final snapshot (when configured and useful) and stop signature recovery."""
        try:
            if self.config.snapshot_dir is not None and not self.replica.dirty and \
                    self._halted is None and self.replica.batch_index <= self._final_index:
                self._take_checkpoint()
                self._write_snapshot()
        finally:
            self.pipeline.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- start and resume -----------------------------------------------------------------------

    def _start(self, genesis_root: bytes) -> Replica:
        state = genesis_state(self.config.venue)
        commitment = genesis_commitment(state)
        if commitment.root != genesis_root:
            raise VerifierError(
                f"the venue configuration's genesis root 0x{commitment.root.hex()} is not the "
                f"contract's 0x{genesis_root.hex()}: give the verifier the node's venue "
                "configuration")
        genesis = Replica(state, commitment, AdmissionState(), self.domain)
        resumed = self._resume()
        if resumed is not None:
            return resumed
        self._checkpoints.append(_Checkpoint(0, genesis.root, genesis.dumps(), 1, 1,
                                             self.config.start_block, _GENESIS_POSITION))
        self.report.last_verified_root = "0x" + genesis.root.hex()
        return genesis

    def _resume(self) -> Replica | None:
        directory = self.config.snapshot_dir
        if directory is None:
            return None
        for _, path in list_snapshots(directory):
            try:
                header, payload = read_snapshot(path)
                self._check_header(header)
                replica = Replica.loads(payload, self.domain)
                if replica.root != header.root or replica.batch_index != header.batch_index:
                    raise VerifierSnapshotError("replica does not match its header")
                book = L1Book.restore(header.book)
            except (VerifierSnapshotError, ValueError, RuntimeError) as error:
                self._say(f"skipping snapshot {path.name}: {error}")
                continue
            self.book = book
            state = replica.state
            self._checkpoints.append(_Checkpoint(
                replica.batch_index, replica.root, payload, state.next_deposit_id,
                state.next_forced_id, header.resume_block, header.resume_log_index))
            self._cursor = header.resume_block
            self._done_through = (header.resume_block, header.resume_log_index)
            self._snapshot_index = replica.batch_index
            self._final_index = replica.batch_index
            self.report.resumed_from = replica.batch_index
            self.report.last_verified_batch = replica.batch_index
            self.report.last_verified_root = "0x" + replica.root.hex()
            self._say(f"resumed from {path.name}: batch {replica.batch_index}, root "
                      f"0x{replica.root.hex()[:16]}…, scanning from block {header.resume_block}")
            return replica
        return None

    def _check_header(self, header: SnapshotHeader) -> None:
        expected = (self.domain.chain_id, self.settlement_address, self.genesis_root,
                    self._fingerprint)
        found = (header.chain_id, header.settlement_address, header.genesis_root,
                 header.venue_fingerprint)
        if found != expected:
            raise VerifierSnapshotError("written for another chain, contract or venue")

    # --- events ---------------------------------------------------------------------------------

    def _handle(self, event: Event, events: list[Event], position: int) -> None:
        kind = SETTLEMENT_EVENT_TYPES.get(event.name)
        if kind is None:
            return
        typed = kind.from_event(event)
        if isinstance(typed, DepositEvent):
            self.book.add_deposit(L1Deposit(typed.deposit_id, to_canonical_address(typed.owner),
                                            typed.subaccount, typed.amount))
        elif isinstance(typed, ForcedWithdrawalRequestedEvent):
            self.book.add_forced(L1ForcedRequest(
                typed.request_id, to_canonical_address(typed.owner), typed.subaccount,
                typed.amount, typed.requested_at))
        elif isinstance(typed, BatchSubmittedEvent):
            self._on_batch(typed, event.log_index, events, position)
        elif isinstance(typed, BatchDisputedEvent):
            self._on_dispute(typed)
        elif isinstance(typed, FrozenEvent):
            self._on_frozen(typed)

    def _on_batch(self, event: BatchSubmittedEvent, log_index: int, events: list[Event],
                  position: int) -> None:
        index = event.batch_index
        halted = self._halted
        if halted is not None and index > halted.batch_index:
            self.report.skipped += 1
            self._say(f"batch {index}: skipped (it extends invalid batch {halted.batch_index})")
            return
        if index <= self.replica.batch_index or halted is not None:
            # the contract accepted it as latest + 1: everything from `index` on was discarded
            self._say(f"batch {index}: resubmitted without a dispute the verifier saw; "
                      f"rolling back to batch {index - 1}")
            self._halted = None
            self.report.halted_at = None
            self._count_rollback(index - 1)
        if index != self.replica.batch_index + 1:
            raise VerifierError(f"batch {index} submitted while the verifier is at batch "
                                f"{self.replica.batch_index}: the event stream has a gap")
        submission = self._submission(event, log_index)
        self._prefetch_next(events, position)
        outcome = check_batch(self.replica, submission, self.book, self.rules, self.pipeline)
        self.report.batches_verified += 1
        divergence = outcome.divergence
        if divergence is None:
            self._accept(submission, outcome.transactions)
            return
        if outcome.dirty:
            self._rollback_to(index - 1)
        self._halted = divergence
        self.report.halted_at = index
        self.report.divergences.append(divergence)
        self._say(f"DIVERGENCE {divergence}")
        self._dispute(submission, divergence)

    def _accept(self, submission: Submission, transactions: int) -> None:
        index = submission.batch_index
        data = submission.call.data if submission.call is not None else None
        self._verified[index] = _Verified(index, self.replica.root, submission.transaction_hash,
                                          submission.block_number, submission.log_index,
                                          submission.block_timestamp_s, data)
        self.root_log.append((index, self.replica.root))
        report = self.report
        report.roots_matched += 1
        report.transactions += transactions
        report.last_verified_batch = index
        report.last_verified_root = "0x" + self.replica.root.hex()
        if index - self._checkpoints[-1].index >= self.config.checkpoint_interval_batches:
            self._take_checkpoint()
        self._routine()

    def _on_dispute(self, event: BatchDisputedEvent) -> None:
        index = event.batch_index
        if self._halted is not None and self._halted.batch_index >= index:
            self._say(f"batch {index} disputed by {event.challenger}: invalid batch "
                      f"{self._halted.batch_index} discarded")
            self._halted = None
            self.report.halted_at = None
            if self.replica.batch_index < index:
                return
        if self.replica.batch_index >= index:
            self._say(f"batch {index} disputed by {event.challenger}: rolling back from batch "
                      f"{self.replica.batch_index} to batch {index - 1}")
            self._count_rollback(index - 1)
        else:
            self._say(f"batch {index} disputed by {event.challenger}")

    def _on_frozen(self, event: FrozenEvent) -> None:
        self._frozen = event
        self.report.frozen = True
        self.report.escape_batch = event.escape_batch
        if self._halted is not None and self._halted.batch_index > event.escape_batch:
            self._halted = None
            self.report.halted_at = None
        if self.replica.batch_index > event.escape_batch:
            self._count_rollback(event.escape_batch)
        agrees = (self.replica.batch_index == event.escape_batch
                  and self.replica.root == event.escape_root)
        self._say(f"FROZEN at escape batch {event.escape_batch} (root "
                  f"0x{event.escape_root.hex()[:16]}…, pool {event.escape_pool} quantums); "
                  + ("the verifier holds that state: escape proofs available" if agrees else
                     f"the verifier is at batch {self.replica.batch_index} and cannot serve it"))

    # --- batches: reading, prefetching, disputing -----------------------------------------------

    def _submission(self, event: BatchSubmittedEvent, log_index: int) -> Submission:
        key = (event.block_number, log_index)
        cached = self._lookahead.pop(key, None)
        if cached is not None:
            return cached
        call = None
        error = ""
        with self._lock:
            try:
                call = read_transaction(self.chain, event.transaction_hash,
                                        self.settlement_address)
            except CalldataError as failure:
                error = str(failure)
            block_timestamp_s = self.chain.block_timestamp(event.block_number)
        return Submission(event.batch_index, event.prev_root, event.new_root, event.data_hash,
                          event.deposit_count, event.forced_count, event.data_bytes,
                          event.block_number, log_index, block_timestamp_s,
                          event.transaction_hash, call, error).with_decoded()

    def _prefetch_next(self, events: list[Event], position: int) -> None:
        """Read and decode the next ``PREFETCH_AHEAD_BATCHES`` submitted batches of this poll
        and start recovering their signatures, so that they are ready when the replay reaches
        them (more than one: the recovery workers then still have work queued while this
        thread finishes a batch, or waits for a core)."""
        ahead: list[Event] = []
        for event in _after(events, position):
            if event.name == BatchSubmittedEvent.EVENT_NAME:
                ahead.append(event)
                if len(ahead) == PREFETCH_AHEAD_BATCHES:
                    break
        keys = [(event.block_number, event.log_index) for event in ahead]
        for stale in [key for key in self._lookahead if key not in keys]:
            del self._lookahead[stale]  # no longer ahead of the replay
        for key, event in zip(keys, ahead, strict=True):
            if key not in self._lookahead:
                self._lookahead[key] = self._submission(BatchSubmittedEvent.from_event(event),
                                                        event.log_index)
            decoded = self._lookahead[key].decoded
            if decoded is not None and not isinstance(decoded, BatchDataError):
                self.pipeline.prefetch(decoded)  # a no-op for a batch already under way

    def _dispute(self, submission: Submission, divergence: Divergence) -> None:
        index = submission.batch_index
        if self.challenger is None:
            self._record(divergence, False, note="no challenger key: reported only")
            return
        with self._lock:
            try:
                if self.client.latest_batch() < index:
                    self._record(divergence, False, note="already discarded on chain")
                    return
                info = self.client.batch(index)
                if (info.root, info.data_hash) != (submission.new_root, submission.data_hash):
                    self._record(divergence, False, note="already replaced on chain")
                    return
                if self.client.is_finalized(index):
                    self._record(divergence, False,
                                 note="final before the verifier saw it: too late to dispute")
                    return
                disputed = self.client.dispute(index, sender=self.challenger)
            except RevertError as error:
                self._record(divergence, False, note=f"dispute reverted: {error.reason}")
                return
            except ChainError as error:
                # unreachable node, no receipt in time: the window may still be open, so the
                # dispute is tried again after every poll while the batch stays invalid
                self._pending_dispute = (submission, divergence)
                self._say(f"batch {index}: dispute not sent yet ({error}); retrying")
                return
        self._pending_dispute = None
        self.report.disputes_sent += 1
        self._record(divergence, True, disputed.transaction_hash, "disputed")

    def _retry_dispute(self) -> None:
        pending = self._pending_dispute
        if pending is None:
            return
        if self._halted is not pending[1]:
            self._pending_dispute = None  # the chain discarded the batch meanwhile
            return
        self._dispute(*pending)

    def _record(self, divergence: Divergence, sent: bool, transaction_hash: bytes | None = None,
                note: str = "") -> None:
        self.report.disputes.append(DisputeRecord(divergence, sent, transaction_hash, note))
        self._say(f"batch {divergence.batch_index}: " + (
            f"DISPUTED in transaction 0x{transaction_hash.hex()}" if sent and transaction_hash
            else f"not disputed ({note})"))

    # --- checkpoints, rollback, finality, snapshots ---------------------------------------------

    def _take_checkpoint(self) -> None:
        replica = self.replica
        if self._checkpoints[-1].index == replica.batch_index:
            return
        verified = self._verified[replica.batch_index]
        self._checkpoints.append(_Checkpoint(
            replica.batch_index, replica.root, replica.dumps(), replica.state.next_deposit_id,
            replica.state.next_forced_id, verified.block_number, verified.log_index))
        for record in self._verified.values():
            if record.index <= replica.batch_index:
                record.data = None  # the checkpoint covers it; a deeper rollback refetches
        while len(self._checkpoints) > self.config.checkpoints_kept_max:
            # keep the oldest (the one at or below a final batch) and the newest ones
            del self._checkpoints[1]

    def _count_rollback(self, target: int) -> None:
        """A rollback the chain asked for (a dispute, a freeze, a resubmission)."""
        if self.replica.batch_index > target:
            self.report.rollbacks += 1
            self._rollback_to(target)

    def _rollback_to(self, target: int) -> None:
        """Put the replica at batch ``target``: restore the newest checkpoint at or below it
        and replay the verified batches after that (also after a failed check, which leaves
        the replica mid-batch or after the invalid batch)."""
        usable = [c for c in self._checkpoints if c.index <= target]
        if not usable:
            raise VerifierError(f"cannot roll back to batch {target}: no checkpoint at or below "
                                "it (it was final, so no dispute should reach it)")
        checkpoint = usable[-1]
        replica = Replica.loads(checkpoint.payload, self.domain)
        self.pipeline.forget()
        self._lookahead.clear()
        for index in range(checkpoint.index + 1, target + 1):
            record = self._verified[index]
            data = record.data
            if data is None:
                with self._lock:
                    data = read_transaction(self.chain, record.transaction_hash,
                                            self.settlement_address).data
            _, root = replica.apply(decode_batch_data(data), self.pipeline)
            if root != record.root:
                raise VerifierError(f"replaying batch {index} again gave another root")
        self.replica = replica
        self._checkpoints = [c for c in self._checkpoints if c.index <= target]
        for index in [i for i in self._verified if i > target]:
            del self._verified[index]
        self.report.last_verified_batch = target
        self.report.last_verified_root = "0x" + replica.root.hex()

    def _after_poll(self, last_block: int) -> None:
        """Drop what finality makes useless; write a snapshot when one is due."""
        if not self._verified:
            return
        with self._lock:
            now_s = self.chain.block_timestamp(last_block)
        final = self._final_index
        for index in sorted(self._verified):
            if index <= final:
                continue
            if self._verified[index].block_timestamp_s + self.challenge_window_s > now_s:
                break
            final = index
        self._final_index = final
        settled = [c for c in self._checkpoints if c.index <= final]
        if not settled:
            return
        base = settled[-1]
        self._checkpoints = [c for c in self._checkpoints if c.index >= base.index]
        for index in [i for i in self._verified if i < base.index]:
            del self._verified[index]
        self.book.prune(base.next_deposit_id, base.next_forced_id)
        if self.config.snapshot_dir is not None and \
                base.index - self._snapshot_index >= self.config.snapshot_interval_batches:
            self._write_snapshot()

    def _write_snapshot(self) -> None:
        """Write the newest checkpoint at a final batch, if newer than the last snapshot."""
        directory = self.config.snapshot_dir
        assert directory is not None
        settled = [c for c in self._checkpoints if c.index <= self._final_index]
        if not settled or settled[-1].index <= max(self._snapshot_index, 0):  # genesis: no use
            return
        base = settled[-1]
        header = SnapshotHeader(
            chain_id=self.domain.chain_id, settlement_address=self.settlement_address,
            genesis_root=self.genesis_root, venue_fingerprint=self._fingerprint,
            batch_index=base.index, root=base.root, resume_block=base.block_number,
            resume_log_index=base.log_index, book=self.book.snapshot(),
            counters={"batches_verified": self.report.batches_verified,
                      "transactions": self.report.transactions})
        path = write_snapshot(directory, header, base.payload)
        self._snapshot_index = base.index
        self._say(f"snapshot of batch {base.index} written to {path}")

    def _routine(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        report = self.report
        self._say(f"verified through batch {self.replica.batch_index} (root "
                  f"0x{self.replica.root.hex()[:16]}…): {report.roots_matched} batches, "
                  f"{report.transactions} transactions, {report.disputes_sent} disputes; "
                  f"block cursor {self._cursor}")


def _after(events: list[Event], position: int) -> Iterator[Event]:
    for index in range(position + 1, len(events)):
        yield events[index]

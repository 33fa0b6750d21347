"""The single writer: STF state, commitment, admission, the open batch and the WAL records.

``Engine`` is driven by one thread (the node's sequencer thread, or the recovery code before
any thread starts). It owns the venue state and is the only code that mutates it. Per entry it
runs ``batch_data.BatchExecution.execute`` (admission at the batch timestamp, then the STF) and
queues the WAL record; ``flush`` appends the queued records to the log (sequence numbers are
assigned here, in order, so an ack can name its sequence before the append). Durability is the
caller's: nothing is acknowledged before ``WriteAheadLog.wait_durable`` covers it.

Batches: ``open_batch`` fixes the index, the timestamp (never below the previous batch's) and
the previous root; ``room_for`` says whether an entry still fits (entry count, published bytes,
the STF's worst-case cost), so the caller closes first when it does not; ``close_batch`` commits
the root and writes the close record with the globals leaf's L1 counters. Replaying the log
(``replay``) runs the very same ``BatchExecution`` on the records and compares every root with
the close record: a different root means the code or the log changed, and recovery stops.

Limits: the open batch holds at most the configured entries and bytes; queued records are
bounded by the caller's flush cadence and the WAL's ``PENDING_RECORDS_MAX`` (a full log is
committed synchronously: back-pressure on the sequencer, never a lost record).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass

from rollbook.commitment.state_tree import StateCommitment
from rollbook.execution.errors import ErrorCode
from rollbook.execution.events import Receipt
from rollbook.execution.state import State
from rollbook.node.journal import (
    BatchClose,
    BatchOpen,
    EntryRecord,
    JournalError,
    decode_record,
    encode_close,
    encode_entry_record,
    encode_open,
)
from rollbook.node.views import BatchView
from rollbook.sequencer.admission import AdmissionState
from rollbook.sequencer.batch_data import (
    BATCH_HEADER_BYTES,
    BatchDataError,
    BatchExecution,
    BatchReplayError,
    Entry,
    SignedEntry,
    encode_header,
)
from rollbook.sequencer.eip712 import Eip712Domain
from rollbook.sequencer.errors import AdmissionError
from rollbook.sequencer.signatures import VerifiedTransaction, recover_signers
from rollbook.sequencer.wal import WalFullError, WriteAheadLog

__all__ = ["REPLAY_CHUNK_ENTRIES", "BatchRecord", "Engine", "RecoveryError", "scan_batches"]

# signatures recovered together on the pool during replay: large enough to keep both cores
# busy, small enough that a damaged record is reported without reading far past it
REPLAY_CHUNK_ENTRIES = 4_096


class RecoveryError(RuntimeError):
    """The log and the code disagree (a root, an order of records, a refused entry)."""


@dataclass(slots=True)
class BatchRecord:
    """A closed batch as the node tracks it until (and after) it is final on L1."""

    index: int
    timestamp_ms: int
    previous_root: bytes
    root: bytes
    entries: int
    data_bytes: int
    deposit_count: int
    forced_count: int
    open_sequence: int
    close_sequence: int
    data: bytes | None  # the published bytes, kept while the batch may need (re)publishing
    status: str = "pending"
    l1_transaction_hash: bytes | None = None
    disputes: int = 0

    def view(self) -> BatchView:
        return BatchView(self.index, self.root, self.previous_root, self.timestamp_ms,
                         self.entries, self.data_bytes, self.status, self.l1_transaction_hash,
                         self.deposit_count, self.forced_count)


class Engine:
    """See the module docstring. Not thread-safe: one driver thread."""

    def __init__(self, state: State, commitment: StateCommitment, admission: AdmissionState,
                 domain: Eip712Domain, wal: WriteAheadLog, keep_data: bool) -> None:
        self.state = state
        self.commitment = commitment
        self.admission = admission
        self.domain = domain
        self.wal = wal
        self.keep_data = keep_data
        self.execution: BatchExecution | None = None
        self.open_timestamp_ms = 0
        self.open_previous_root = b""
        self.open_sequence = 0
        self.open_entries: list[bytes] = []
        self.open_bytes = 0
        self.first_withdrawal_id = state.next_withdrawal_id
        self.records: list[bytes] = []
        self.next_sequence = wal.last_sequence + 1

    # --- live path ------------------------------------------------------------------------------

    @property
    def open_index(self) -> int | None:
        return None if self.execution is None else self.execution.index

    def open_batch(self, timestamp_ms: int) -> None:
        assert self.execution is None, "a batch is already open"
        state = self.state
        timestamp_ms = max(timestamp_ms, state.timestamp_ms, self.admission.batch_timestamp_ms)
        index = state.batch_index + 1
        self._begin(index, timestamp_ms)
        self.open_sequence = self._queue(encode_open(index, timestamp_ms,
                                                     self.open_previous_root))

    def _begin(self, index: int, timestamp_ms: int) -> None:
        self.execution = BatchExecution(self.state, self.admission, self.domain, index,
                                        timestamp_ms)
        self.open_timestamp_ms = timestamp_ms
        self.open_previous_root = self.commitment.root
        self.open_entries = []
        self.open_bytes = BATCH_HEADER_BYTES
        self.first_withdrawal_id = self.state.next_withdrawal_id

    def room_for(self, entry: Entry, entry_bytes: int, txs_max: int, bytes_max: int) -> bool:
        execution = self.execution
        assert execution is not None
        return (len(self.open_entries) < txs_max and self.open_bytes + entry_bytes <= bytes_max
                and execution.fits(entry))

    def execute(self, entry: Entry, entry_data: bytes,
                verified: VerifiedTransaction | None) -> tuple[Receipt, int]:
        """Sequence one entry in the open batch: (receipt, WAL sequence); raises
        ``AdmissionError`` having changed nothing."""
        execution = self.execution
        assert execution is not None
        receipt = execution.execute(entry, verified)
        # the caller checked room_for: a batch-capacity refusal here would be published
        assert receipt.code != ErrorCode.BATCH_COST_LIMIT
        self.open_entries.append(entry_data)
        self.open_bytes += len(entry_data)
        return receipt, self._queue(encode_entry_record(entry_data))

    def close_batch(self) -> BatchRecord:
        execution = self.execution
        assert execution is not None
        state = self.state
        root = self.commitment.commit(state)
        deposit_count = state.next_deposit_id - 1
        forced_count = state.next_forced_id - 1
        count = len(self.open_entries)
        close_sequence = self._queue(encode_close(execution.index, root, count, deposit_count,
                                                  forced_count))
        record = self._record(execution.index, root, count, deposit_count, forced_count,
                              close_sequence)
        self.execution = None
        self.open_entries = []
        return record

    def _record(self, index: int, root: bytes, count: int, deposit_count: int,
                forced_count: int, close_sequence: int) -> BatchRecord:
        data = None
        if self.keep_data:
            data = encode_header(index, self.open_timestamp_ms, self.open_previous_root,
                                 count) + b"".join(self.open_entries)
        return BatchRecord(index, self.open_timestamp_ms, self.open_previous_root, root, count,
                           self.open_bytes, deposit_count, forced_count, self.open_sequence,
                           close_sequence, data)

    def _queue(self, payload: bytes) -> int:
        self.records.append(payload)
        sequence = self.next_sequence
        self.next_sequence = sequence + 1
        return sequence

    def flush(self) -> int:
        """Append the queued records to the log; the last sequence assigned."""
        records = self.records
        if records:
            self.records = []
            try:
                appended = self.wal.append(records)
            except WalFullError:
                self.wal.commit()  # back-pressure: the committer fell behind
                appended = self.wal.append(records)
            assert appended.stop == self.next_sequence, "sequences are assigned in order"
        return self.next_sequence - 1

    # --- replay ---------------------------------------------------------------------------------

    def replay(self, records: Iterable[tuple[int, bytes]],
               executor: Executor | None = None) -> list[BatchRecord]:
        """Apply WAL records (after the state's batch) through the live path's execution;
        returns the batches closed. A trailing open batch stays open."""
        closed: list[BatchRecord] = []
        pending: list[tuple[int, Entry, bytes]] = []
        for sequence, payload in records:
            record = _decode(sequence, payload)
            if isinstance(record, EntryRecord):
                if self.execution is None:
                    raise RecoveryError(f"WAL record {sequence}: an entry outside a batch")
                pending.append((sequence, record.entry, record.data))
                if len(pending) >= REPLAY_CHUNK_ENTRIES:
                    self._replay_entries(pending, executor)
                    pending = []
                continue
            self._replay_entries(pending, executor)
            pending = []
            if isinstance(record, BatchOpen):
                self._replay_open(sequence, record)
            else:
                closed.append(self._replay_close(sequence, record))
            self.next_sequence = sequence + 1
        self._replay_entries(pending, executor)
        return closed

    def _replay_open(self, sequence: int, record: BatchOpen) -> None:
        if self.execution is not None:
            raise RecoveryError(f"WAL record {sequence}: batch {record.index} opens inside "
                                f"batch {self.execution.index}")
        if record.previous_root != self.commitment.root:
            raise RecoveryError(f"WAL record {sequence}: batch {record.index} extends "
                                f"{record.previous_root.hex()}, the state is at "
                                f"{self.commitment.root.hex()}")
        try:
            self._begin(record.index, record.timestamp_ms)
        except BatchReplayError as error:
            raise RecoveryError(f"WAL record {sequence}: {error}") from error
        self.open_sequence = sequence

    def _replay_entries(self, pending: list[tuple[int, Entry, bytes]],
                        executor: Executor | None) -> None:
        if not pending:
            return
        execution = self.execution
        assert execution is not None
        signed = [entry.signed for _, entry, _ in pending if isinstance(entry, SignedEntry)]
        recovered = iter(recover_signers(self.domain, signed, executor))
        for sequence, entry, data in pending:
            verified = next(recovered) if isinstance(entry, SignedEntry) else None
            try:
                if isinstance(verified, AdmissionError):
                    raise verified
                receipt = execution.execute(entry, verified)
            except AdmissionError as error:
                raise RecoveryError(f"WAL record {sequence}: the log holds an entry that "
                                    f"admission refuses on replay ({error})") from error
            if receipt.code == ErrorCode.BATCH_COST_LIMIT:
                raise RecoveryError(f"WAL record {sequence}: the entry exceeds its batch's "
                                    "cost limit on replay")
            self.open_entries.append(data)
            self.open_bytes += len(data)
            self.next_sequence = sequence + 1

    def _replay_close(self, sequence: int, record: BatchClose) -> BatchRecord:
        execution = self.execution
        if execution is None or execution.index != record.index:
            raise RecoveryError(f"WAL record {sequence}: close of batch {record.index} without "
                                "its open")
        if record.entries != len(self.open_entries):
            raise RecoveryError(f"WAL record {sequence}: batch {record.index} closes with "
                                f"{record.entries} entries, the log holds "
                                f"{len(self.open_entries)}")
        root = self.commitment.commit(self.state)
        if root != record.root:
            raise RecoveryError(
                f"WAL record {sequence}: batch {record.index} replays to root {root.hex()} but "
                f"the log recorded {record.root.hex()}: the code or the venue configuration "
                "changed since it was written (replay is not deterministic)")
        closed = self._record(record.index, root, record.entries, record.deposit_count,
                              record.forced_count, sequence)
        self.execution = None
        self.open_entries = []
        return closed


def _decode(sequence: int, payload: bytes) -> BatchOpen | EntryRecord | BatchClose:
    try:
        return decode_record(payload)
    except (JournalError, BatchDataError) as error:
        raise RecoveryError(f"WAL record {sequence}: not a journal record ({error})") from error


def scan_batches(records: Iterator[tuple[int, bytes]], stop_sequence: int,
                 keep_data: bool) -> list[BatchRecord]:
    """The closed batches among records up to ``stop_sequence``, without executing them
    (their bytes, for republishing batches that a snapshot already covers)."""
    closed: list[BatchRecord] = []
    current: BatchOpen | None = None
    open_sequence = 0
    entries: list[bytes] = []
    for sequence, payload in records:
        if sequence > stop_sequence:
            break
        record = _decode(sequence, payload)
        if isinstance(record, BatchOpen):
            current, open_sequence, entries = record, sequence, []
        elif isinstance(record, EntryRecord):
            entries.append(record.data)
        elif current is not None and current.index == record.index:
            header = encode_header(record.index, current.timestamp_ms, current.previous_root,
                                   len(entries))
            data_bytes = len(header) + sum(len(e) for e in entries)
            data = header + b"".join(entries) if keep_data else None
            closed.append(BatchRecord(record.index, current.timestamp_ms, current.previous_root,
                                      record.root, len(entries), data_bytes,
                                      record.deposit_count, record.forced_count, open_sequence,
                                      sequence, data))
            current = None
    return closed

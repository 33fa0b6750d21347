"""Published batch bytes, and the one path that replays them: ``replay_batch``.

What the settlement chain carries in calldata for batch n (version 1, big-endian)::

    b"RBD" | version (u8) | index (u64) | timestamp_ms (u64) | previous_root (32) |
    count (u32) | count x entry
    entry = kind (u8) | length (u16) | body (length bytes)

``kind`` 1 (``ENTRY_SIGNED``): a user action as its signer signed it, body =
``signatures.encode_signed_transaction`` (an STF user transaction or an agent registration /
revocation, with nonce and signature). ``kind`` 2 (``ENTRY_SYSTEM``): a transaction nobody
signs as a user, body = ``rollbook.execution.encoding.encode_transaction`` of one of
``SYSTEM_TRANSACTION_TYPES`` (L1 deposits and forced withdrawals, which the verifier checks
against the contract's events; oracle and volatility updates, which carry their own oracle
signatures that the STF checks; operator heartbeats and option listings).

Invariants:
- one encoding per batch: fixed widths, no optional fields, and decoding is strict (magic,
  version, kinds, lengths, each body decoded canonically and re-encoded to the same bytes, no
  trailing bytes), so bytes and batches map one to one and ``keccak256(data)`` names a batch;
- a user-signable transaction is never accepted as a system entry: it would carry no signature,
  and a verifier would execute a withdrawal nobody signed;
- ``replay_batch`` decides exactly what the sequencer decided: the same ``BatchExecution``
  (cost metering as ``stf.apply_batch``, ``AdmissionState.admit`` at the batch timestamp, then
  ``apply_transaction``) runs live in the node, in the node's WAL recovery and in the verifier.

Limits: at most ``BATCH_ENTRIES_MAX`` entries and ``BATCH_DATA_BYTES_MAX`` bytes per batch; an
entry body at most ``ENTRY_BODY_BYTES_MAX`` bytes (the largest canonical transaction).

This module is pure (no clock, no I/O): the commitment is passed in as anything with ``root``
and ``commit(state)`` (``rollbook.commitment.StateCommitment``), so the sequencer layer still
imports nothing after it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from types import FunctionType
from typing import Final, Protocol

from rollbook.execution.encoding import (
    TRANSACTION_BYTES_MAX,
    DecodeError,
    decode_transaction,
    encode_transaction,
)
from rollbook.execution.errors import ERROR_MESSAGES, ErrorCode
from rollbook.execution.events import Receipt
from rollbook.execution.pickling import register_frozen_classes
from rollbook.execution.state import State
from rollbook.execution.stf import apply_transaction, begin_batch, cost_bound_units
from rollbook.execution.txs import (
    DelistOption,
    Deposit,
    ExpireOptions,
    ForcedWithdrawal,
    FundingTick,
    ListOption,
    OracleUpdate,
    ProcessLiquidations,
    Transaction,
    VolatilityUpdate,
)
from rollbook.sequencer.admission import AdmissionState
from rollbook.sequencer.eip712 import Eip712Domain, RegisterAgent, RevokeAgent
from rollbook.sequencer.errors import AdmissionCode, AdmissionError
from rollbook.sequencer.signatures import (
    SIGNED_TRANSACTION_BYTES_MAX,
    SignedTransaction,
    VerifiedTransaction,
    decode_signed_transaction,
    encode_signed_transaction,
    recover_signer,
    recover_signers,
)

__all__ = [
    "BATCH_DATA_BYTES_MAX",
    "BATCH_DATA_MAGIC",
    "BATCH_DATA_VERSION",
    "BATCH_ENTRIES_MAX",
    "BATCH_HEADER_BYTES",
    "ENTRY_BODY_BYTES_MAX",
    "ENTRY_HEADER_BYTES",
    "ENTRY_SIGNED",
    "ENTRY_SYSTEM",
    "SYSTEM_TRANSACTION_TYPES",
    "BatchData",
    "BatchDataError",
    "BatchExecution",
    "BatchReplayError",
    "Committer",
    "Entry",
    "SignedEntry",
    "SignerRecovery",
    "SystemEntry",
    "decode_batch_data",
    "decode_entry",
    "encode_batch_data",
    "encode_entry",
    "encode_header",
    "replay_batch",
    "signed_entry",
    "system_entry",
]

# Final: the compiled build reads them as constants, not from the module's globals per entry
BATCH_DATA_MAGIC: Final = b"RBD"
BATCH_DATA_VERSION: Final = 1
ENTRY_SIGNED: Final = 1
ENTRY_SYSTEM: Final = 2
# calldata of one settlement transaction: 1 MiB is above what public mempools relay (geth: 128
# KiB per transaction), so the node's configured limit is the binding one; this bounds decoding
BATCH_DATA_BYTES_MAX: Final = 1 << 20
BATCH_ENTRIES_MAX: Final = 1 << 16
ENTRY_BODY_BYTES_MAX: Final = max(TRANSACTION_BYTES_MAX, SIGNED_TRANSACTION_BYTES_MAX)

SYSTEM_TRANSACTION_TYPES: tuple[type, ...] = (
    Deposit, ForcedWithdrawal, OracleUpdate, FundingTick, ProcessLiquidations, ListOption,
    DelistOption, VolatilityUpdate, ExpireOptions,
)

_HEADER: Final = struct.Struct(">3sBQQ32sI")
_ENTRY_HEADER: Final = struct.Struct(">BH")
BATCH_HEADER_BYTES: Final = _HEADER.size
ENTRY_HEADER_BYTES: Final = _ENTRY_HEADER.size
_ROOT_BYTES: Final = 32
_U64_MAX: Final = (1 << 64) - 1
assert ENTRY_BODY_BYTES_MAX < 1 << 16, "an entry length is a u16"
assert BATCH_ENTRIES_MAX < 1 << 32, "the entry count is a u32"


def _probe() -> None:
    """Never called: what kind of object it is tells which build runs this module."""


# mypyc compiles a module's functions into built-in functions (as in rollbook.execution.txs)
_COMPILED: Final = not isinstance(_probe, FunctionType)
_set: Final = object.__setattr__  # the interpreted path of the declared __init__
# agent actions change admission only; they cost the STF nothing
_AGENT_ACTIONS: Final = (RegisterAgent, RevokeAgent)
_AGENT_RECEIPT: Final = Receipt(ErrorCode.OK, "", (), 0)
_BATCH_FULL: Final = Receipt(ErrorCode.BATCH_COST_LIMIT,
                             ERROR_MESSAGES[ErrorCode.BATCH_COST_LIMIT], (), 0)


class BatchDataError(ValueError):
    """Bytes that are not a canonical batch (or entry) encoding."""


class BatchReplayError(ValueError):
    """A batch that does not apply: wrong header, or an entry the sequencer would have refused
    (bad signature, nonce, agent right). ``entry`` is its position (-1: the header); ``code``
    the admission refusal's code (None for a header). Carried as a field rather than read from
    ``__cause__``, which the mypyc-compiled build does not set on this re-raise."""

    def __init__(self, entry: int, message: str, code: AdmissionCode | None = None) -> None:
        self.entry = entry
        self.code = code
        super().__init__(f"entry {entry}: {message}" if entry >= 0 else message)


@dataclass(frozen=True, slots=True)
class SignedEntry:
    """A signed user action and its canonical bytes (``body``); one per decoded transaction,
    so built as ``SignedTransaction`` is (see its docstring)."""

    signed: SignedTransaction
    body: bytes

    def __init__(self, signed: SignedTransaction, body: bytes) -> None:
        if _COMPILED:  # native slot writes (no __setattr__)
            self.signed = signed  # type: ignore[misc]
            self.body = body  # type: ignore[misc]
        else:
            _set(self, "signed", signed)
            _set(self, "body", body)


@dataclass(frozen=True, slots=True)
class SystemEntry:
    """A system transaction and its canonical bytes (``body``)."""

    tx: Transaction
    body: bytes


Entry = SignedEntry | SystemEntry


@dataclass(frozen=True, slots=True)
class BatchData:
    index: int
    timestamp_ms: int
    previous_root: bytes
    entries: tuple[Entry, ...]


class SignerRecovery(Protocol):
    """An executor that recovers a batch's signers itself (``RecoveryPipeline``: from work it
    started ahead); the results must be exactly ``recover_signers(domain, signed)``."""

    def recover(self, domain: Eip712Domain, signed: Sequence[SignedTransaction],
                ) -> list[VerifiedTransaction | AdmissionError]: ...


class Committer(Protocol):
    """What ``replay_batch`` needs of a commitment: its root and ``commit``."""

    @property
    def root(self) -> bytes: ...

    def commit(self, state: State) -> bytes: ...


def signed_entry(signed: SignedTransaction) -> SignedEntry:
    """Raises ``AdmissionError`` for an action without a canonical encoding."""
    return SignedEntry(signed, encode_signed_transaction(signed))


def system_entry(tx: Transaction) -> SystemEntry:
    """Raises ``ValueError`` for a user transaction or one out of its encoding's range."""
    if not isinstance(tx, SYSTEM_TRANSACTION_TYPES):
        raise ValueError(f"{type(tx).__name__} is not a system transaction")
    return SystemEntry(tx, encode_transaction(tx))


def encode_entry(entry: Entry) -> bytes:
    kind = ENTRY_SIGNED if isinstance(entry, SignedEntry) else ENTRY_SYSTEM
    if len(entry.body) > ENTRY_BODY_BYTES_MAX:
        raise BatchDataError(f"entry body of {len(entry.body)} bytes")
    return _ENTRY_HEADER.pack(kind, len(entry.body)) + entry.body


def decode_entry(data: bytes | memoryview, offset: int = 0) -> tuple[Entry, int]:
    """The entry at ``offset`` and the offset after it; strict."""
    if isinstance(data, bytes) and offset >= 0:
        return _decode_entry(data, offset)
    _check_header_fits(offset, len(data))
    kind, length = _ENTRY_HEADER.unpack_from(data, offset)
    end = _entry_end(offset, length, len(data))
    return _decode_body(kind, bytes(data[end - length:end]), offset, end)


def _decode_entry(data: bytes, offset: int) -> tuple[Entry, int]:
    """``decode_entry`` of ``bytes`` (every batch's entries): the header read by indexing and
    the body by one slice, which the compiled build runs natively (no struct call, no copy)."""
    assert offset >= 0
    _check_header_fits(offset, len(data))
    kind = data[offset]
    length = data[offset + 1] << 8 | data[offset + 2]  # ``_ENTRY_HEADER``: u8, then a u16
    end = _entry_end(offset, length, len(data))
    return _decode_body(kind, data[end - length:end], offset, end)


def _check_header_fits(offset: int, data_bytes: int) -> None:
    if offset + ENTRY_HEADER_BYTES > data_bytes:
        raise BatchDataError(f"truncated entry header at {offset}")


def _entry_end(offset: int, length: int, data_bytes: int) -> int:
    """Where the entry at ``offset`` with a body of ``length`` bytes ends; strict."""
    end = offset + ENTRY_HEADER_BYTES + length
    if end > data_bytes:
        raise BatchDataError(f"entry at {offset} runs past the end ({end} > {data_bytes})")
    if length > ENTRY_BODY_BYTES_MAX:
        raise BatchDataError(f"entry body of {length} bytes")
    return end


def _decode_body(kind: int, body: bytes, offset: int, end: int) -> tuple[Entry, int]:
    """The entry of ``kind`` whose canonical ``body`` sat at ``offset`` (for the messages)."""
    if kind == ENTRY_SIGNED:
        try:
            signed = decode_signed_transaction(body)
        except AdmissionError as error:
            raise BatchDataError(f"signed entry at {offset}: {error}") from error
        return SignedEntry(signed, body), end
    if kind == ENTRY_SYSTEM:
        try:
            tx = decode_transaction(body)
        except DecodeError as error:
            raise BatchDataError(f"system entry at {offset}: {error}") from error
        if not isinstance(tx, SYSTEM_TRANSACTION_TYPES):
            raise BatchDataError(f"system entry at {offset}: {type(tx).__name__} is a user "
                                 "transaction and needs a signature")
        # the transaction decoders are strict field by field; re-encoding proves the bytes
        # are the canonical ones (a second spelling would give the batch a second hash)
        if encode_transaction(tx) != body:
            raise BatchDataError(f"system entry at {offset} is not canonical")
        return SystemEntry(tx, body), end
    raise BatchDataError(f"unknown entry kind {kind} at {offset}")


def encode_header(index: int, timestamp_ms: int, previous_root: bytes, count: int) -> bytes:
    if len(previous_root) != _ROOT_BYTES:
        raise BatchDataError("previous root must be 32 bytes")
    if not 0 <= index <= _U64_MAX or not 0 <= timestamp_ms <= _U64_MAX:
        raise BatchDataError("index and timestamp are u64")
    if not 0 <= count <= BATCH_ENTRIES_MAX:
        raise BatchDataError(f"{count} entries (at most {BATCH_ENTRIES_MAX})")
    return _HEADER.pack(BATCH_DATA_MAGIC, BATCH_DATA_VERSION, index, timestamp_ms,
                        previous_root, count)


def encode_batch_data(batch: BatchData) -> bytes:
    data = encode_header(batch.index, batch.timestamp_ms, batch.previous_root,
                         len(batch.entries)) + b"".join(encode_entry(e) for e in batch.entries)
    if len(data) > BATCH_DATA_BYTES_MAX:
        raise BatchDataError(f"batch of {len(data)} bytes (at most {BATCH_DATA_BYTES_MAX})")
    return data


def decode_batch_data(data: bytes) -> BatchData:
    if len(data) > BATCH_DATA_BYTES_MAX:
        raise BatchDataError(f"batch of {len(data)} bytes (at most {BATCH_DATA_BYTES_MAX})")
    if len(data) < _HEADER.size:
        raise BatchDataError("truncated batch header")
    magic, version, index, timestamp_ms, previous_root, count = _HEADER.unpack_from(data)
    if magic != BATCH_DATA_MAGIC:
        raise BatchDataError("not batch data (magic)")
    if version != BATCH_DATA_VERSION:
        raise BatchDataError(f"unsupported batch data version {version}")
    if count > BATCH_ENTRIES_MAX:
        raise BatchDataError(f"{count} entries (at most {BATCH_ENTRIES_MAX})")
    offset = _HEADER.size
    entries: list[Entry] = []
    append = entries.append
    for _ in range(count):
        entry, offset = _decode_entry(data, offset)  # bytes: each body is sliced out once
        append(entry)
    if offset != len(data):
        raise BatchDataError(f"{len(data) - offset} trailing bytes after {count} entries")
    return BatchData(index, timestamp_ms, bytes(previous_root), tuple(entries))


class BatchExecution:
    """One open batch: its header's effect, cost metering and the execution of each entry.

    The sequencer drives it live (``fits`` first, closing the batch when an entry would not fit,
    so that published batches hold no ``BATCH_COST_LIMIT`` receipts); replays call ``execute``
    for every entry, which meters exactly as ``stf.apply_batch``: an entry whose worst-case cost
    does not fit gets that receipt and changes nothing (not even admission).

    ``execute`` either raises ``AdmissionError`` having changed nothing, or sequences the entry
    (its nonce is used, even if the STF refuses the transaction) and returns the receipt.
    """

    __slots__ = ("_bounds", "admission", "domain", "index", "limit_units", "state",
                 "timestamp_ms", "used_units")

    def __init__(self, state: State, admission: AdmissionState, domain: Eip712Domain,
                 index: int, timestamp_ms: int) -> None:
        if index != state.batch_index + 1:
            raise BatchReplayError(-1, f"batch {index} does not follow batch "
                                       f"{state.batch_index}")
        if timestamp_ms < state.timestamp_ms or timestamp_ms < admission.batch_timestamp_ms:
            raise BatchReplayError(-1, f"batch time {timestamp_ms} goes back (state at "
                                       f"{state.timestamp_ms})")
        begin_batch(state, index, timestamp_ms)
        admission.advance_to(timestamp_ms)
        self.state = state
        self.admission = admission
        self.domain = domain
        self.index = index
        self.timestamp_ms = timestamp_ms
        self.limit_units = state.config.batch_cost_max
        self.used_units = 0
        self._bounds: dict[type, int] = {}

    def bound_units(self, entry: Entry) -> int:
        """The entry's worst-case cost: 0 for agent actions, else the STF's bound."""
        tx = entry.tx if isinstance(entry, SystemEntry) else entry.signed.action
        kind = type(tx)
        bound = self._bounds.get(kind)
        if bound is None:
            bound = 0 if kind in _AGENT_ACTIONS else cost_bound_units(
                self.state, tx)  # type: ignore[arg-type]
            self._bounds[kind] = bound
        return bound

    def fits(self, entry: Entry) -> bool:
        return self.used_units + self.bound_units(entry) <= self.limit_units

    def execute(self, entry: Entry, verified: VerifiedTransaction | None = None) -> Receipt:
        """Apply one entry. ``verified`` is the signer recovered ahead (on a pool); without it
        the signature is recovered here."""
        # ``fits`` inlined (one lookup per entry once its type's bound is known)
        bound = self._bounds.get(type(entry.tx if isinstance(entry, SystemEntry)
                                      else entry.signed.action))
        if bound is None:
            bound = self.bound_units(entry)
        if self.used_units + bound > self.limit_units:
            return _BATCH_FULL
        if isinstance(entry, SystemEntry):
            receipt = apply_transaction(self.state, entry.tx)
        else:
            signed = entry.signed
            if verified is None:
                verified = recover_signer(self.domain, signed)
            assert verified.signed is signed or verified.signed == signed
            self.admission.admit(verified, self.timestamp_ms)  # raises before any change
            action = signed.action
            # the classes spelled out, not _AGENT_ACTIONS: compiled, a literal tuple of native
            # classes is two type checks where a tuple object goes through the generic protocol
            if isinstance(action, (RegisterAgent, RevokeAgent)):
                receipt = _AGENT_RECEIPT
            else:
                receipt = apply_transaction(self.state, action)
        self.used_units += receipt.cost_units
        return receipt


def replay_batch(state: State, commitment: Committer, admission: AdmissionState,
                 domain: Eip712Domain, data: bytes | BatchData,
                 executor: Executor | SignerRecovery | None = None) -> tuple[list[Receipt], bytes]:
    """Apply published batch ``data`` on ``state`` (at ``commitment.root``); receipts and root.

    Checks every signature (low-s), nonce and agent right exactly as the sequencer did and
    raises ``BatchReplayError`` for anything it would have refused; the state is then
    mid-batch and must be discarded. ``executor`` recovers the signatures on a thread pool
    first (pure, so the result is the same): a ``SignerRecovery`` through its ``recover``,
    any other executor in ``recover_signers``' chunks.
    """
    batch = decode_batch_data(data) if isinstance(data, bytes) else data
    if batch.previous_root != commitment.root:
        raise BatchReplayError(-1, f"batch {batch.index} extends {batch.previous_root.hex()}, "
                                   f"the state is at {commitment.root.hex()}")
    signed = [entry.signed for entry in batch.entries if isinstance(entry, SignedEntry)]
    # told apart by the method, not isinstance: a runtime-checkable Protocol does not compile
    # with mypyc (see setup.py), and a SignerRecovery may be an Executor too (RecoveryPipeline)
    recover = getattr(executor, "recover", None)
    recovered: list[VerifiedTransaction | AdmissionError] = (
        recover(domain, signed) if recover is not None
        else recover_signers(domain, signed, executor))  # type: ignore[arg-type]  # one per signed entry, in order
    assert len(recovered) == len(signed)
    next_recovered = iter(recovered).__next__
    execution = BatchExecution(state, admission, domain, batch.index, batch.timestamp_ms)
    execute = execution.execute
    receipts: list[Receipt] = []
    append = receipts.append
    for position, entry in enumerate(batch.entries):
        verified = next_recovered() if isinstance(entry, SignedEntry) else None
        try:
            if isinstance(verified, AdmissionError):
                raise verified
            append(execute(entry, verified))
        except AdmissionError as error:
            raise BatchReplayError(position, str(error), error.code) from error
    return receipts, commitment.commit(state)


# compiled (mypyc), a frozen dataclass cannot be unpickled attribute by attribute: pickle these
# by their fields in both builds (as rollbook.execution does for its own)
register_frozen_classes(BatchData, SignedEntry, SystemEntry)

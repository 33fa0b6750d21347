"""The checks on one published batch, as pure functions of what the chain showed.

``check_batch(replica, submission, book, rules, executor)`` decides whether batch
``submission.batch_index`` is valid on top of ``replica`` (the verifier's state after the batch
before it) and, if it is, leaves the replica after it. The checks, in order (the first failure
is the one reported; see ``DivergenceReason``):

1. data availability: the ``submit_batch`` calldata was read and its arguments are the event's;
2. ``keccak256(data) == data_hash``;
3. ``decode_batch_data(data)`` (strict, canonical);
4. header: the data's index and previous root are the submission's (and the replica's root);
   the batch time does not go back and is not after the L1 block that carried the batch by
   more than ``rules.l1_time_tolerance_ms``;
5. every L1-origin entry against the contract's events: a ``Deposit`` must be the
   ``Deposited`` event of its id (owner, subaccount, amount), a ``ForcedWithdrawal`` the
   ``ForcedWithdrawalRequested`` event of its id; the events known are those that happened
   before the batch's own event on chain, so a batch cannot credit a deposit made after it;
6. replay through ``replay_batch``: every signature (low-s, recovered signer authorised) and
   nonce exactly as the sequencer decides, then the STF;
7. the submission's ``deposit_count``/``forced_count`` equal the replayed state's counters;
8. no forced-withdrawal request was left out past its deadline: the oldest request above the
   batch's ``forced_count`` must not be older than ``forced_deadline_s`` at the L1 time of the
   batch (strictly, as the contract's ``freeze`` counts it);
9. the replayed root equals the posted root.

Invariants: checks 1-5 never touch the replica; once replay starts (6) a failure leaves the
replica dirty, and ``BatchOutcome.dirty`` says so. No clock, no I/O: the L1 facts come in
``Submission`` and ``L1Book``.

Limits: an L1 time tolerance is needed because a dev chain's pending block can be stamped
before the node opened its batch (eth-tester stamps a block when the previous one is mined);
public chains stamp blocks within seconds of real time.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from rollbook.execution.crypto import keccak256
from rollbook.execution.txs import Deposit, ForcedWithdrawal
from rollbook.sequencer.batch_data import (
    BatchData,
    BatchDataError,
    BatchReplayError,
    SystemEntry,
    decode_batch_data,
)
from rollbook.sequencer.errors import AdmissionCode
from rollbook.verifier.calldata import SubmitBatchCall
from rollbook.verifier.divergence import Divergence, DivergenceReason
from rollbook.verifier.replica import Replica

__all__ = [
    "L1_TIME_TOLERANCE_MS_DEFAULT",
    "BatchOutcome",
    "CheckRules",
    "L1Book",
    "L1Deposit",
    "L1ForcedRequest",
    "Submission",
    "check_batch",
    "precheck_batch",
]

L1_TIME_TOLERANCE_MS_DEFAULT = 300_000  # 5 minutes: dev-chain stamping lag, clock skew
MS_PER_S = 1_000

_SIGNATURE_CODES = frozenset({AdmissionCode.SIGNATURE_MALFORMED, AdmissionCode.SIGNATURE_BAD_V,
                              AdmissionCode.SIGNATURE_HIGH_S, AdmissionCode.SIGNATURE_INVALID})
_AUTHORISATION_CODES = frozenset({
    AdmissionCode.SIGNER_NOT_AUTHORISED, AdmissionCode.AGENT_NOT_PERMITTED,
    AdmissionCode.AGENT_EXPIRED, AdmissionCode.AGENT_SUBACCOUNT_NOT_PERMITTED,
    AdmissionCode.AGENT_REGISTRATION_INVALID, AdmissionCode.AGENTS_LIMIT})
_NONCE_CODES = frozenset({AdmissionCode.NONCE_USED, AdmissionCode.NONCE_BELOW_WINDOW,
                          AdmissionCode.NONCE_TOO_OLD, AdmissionCode.NONCE_TOO_FAR_AHEAD})


@dataclass(frozen=True, slots=True)
class L1Deposit:
    deposit_id: int
    owner: bytes
    subaccount: int
    amount_quantums: int


@dataclass(frozen=True, slots=True)
class L1ForcedRequest:
    request_id: int
    owner: bytes
    subaccount: int
    amount_quantums: int
    requested_at_s: int


class L1Book:
    """The contract's deposits and forced-withdrawal requests seen so far, by id.

    Ids are consecutive from 1 on chain; adding the same id twice with the same content is a
    no-op (a rescan after a restart), with other content an error (the chain rewrote history
    deeper than the confirmations). ``prune`` forgets ids below what a final state credited.
    """

    __slots__ = ("deposits", "forced")

    def __init__(self) -> None:
        self.deposits: dict[int, L1Deposit] = {}
        self.forced: dict[int, L1ForcedRequest] = {}

    def add_deposit(self, deposit: L1Deposit) -> None:
        known = self.deposits.setdefault(deposit.deposit_id, deposit)
        if known != deposit:
            raise ValueError(f"deposit {deposit.deposit_id} seen twice with other content")

    def add_forced(self, request: L1ForcedRequest) -> None:
        known = self.forced.setdefault(request.request_id, request)
        if known != request:
            raise ValueError(f"forced request {request.request_id} seen twice with other content")

    def prune(self, next_deposit_id: int, next_forced_id: int) -> None:
        """Forget deposits and requests below these ids (credited by a final state)."""
        self.deposits = {i: d for i, d in self.deposits.items() if i >= next_deposit_id}
        self.forced = {i: r for i, r in self.forced.items() if i >= next_forced_id}

    def overdue(self, forced_count: int, at_s: int, deadline_s: int) -> L1ForcedRequest | None:
        """The oldest request not covered by ``forced_count`` if it is past the deadline at
        ``at_s`` (the contract's ``freeze`` rule: strictly after requested_at + deadline)."""
        oldest = self.forced.get(forced_count + 1)
        if oldest is not None and at_s > oldest.requested_at_s + deadline_s:
            return oldest
        return None

    def snapshot(self) -> dict[str, Any]:
        return {"deposits": [[d.deposit_id, d.owner.hex(), d.subaccount, d.amount_quantums]
                             for d in sorted(self.deposits.values(),
                                             key=lambda d: d.deposit_id)],
                "forced": [[r.request_id, r.owner.hex(), r.subaccount, r.amount_quantums,
                            r.requested_at_s]
                           for r in sorted(self.forced.values(), key=lambda r: r.request_id)]}

    @classmethod
    def restore(cls, data: dict[str, Any]) -> L1Book:
        book = cls()
        for deposit_id, owner, subaccount, amount in data["deposits"]:
            book.add_deposit(L1Deposit(int(deposit_id), bytes.fromhex(owner), int(subaccount),
                                       int(amount)))
        for request_id, owner, subaccount, amount, at_s in data["forced"]:
            book.add_forced(L1ForcedRequest(int(request_id), bytes.fromhex(owner),
                                            int(subaccount), int(amount), int(at_s)))
        return book


@dataclass(frozen=True, slots=True)
class Submission:
    """A ``BatchSubmitted`` event, where it happened, and its calldata.

    ``call`` is None when the transaction could not be read as a ``submit_batch`` call to the
    contract (``call_error`` says why).
    """

    batch_index: int
    prev_root: bytes
    new_root: bytes
    data_hash: bytes
    deposit_count: int
    forced_count: int
    data_bytes: int
    block_number: int
    log_index: int
    block_timestamp_s: int
    transaction_hash: bytes
    call: SubmitBatchCall | None
    call_error: str = ""
    decoded: BatchData | BatchDataError | None = field(default=None, compare=False)

    def with_decoded(self) -> Submission:
        """This submission with its data decoded once (kept for the checks and prefetching)."""
        if self.decoded is not None or self.call is None:
            return self
        try:
            decoded: BatchData | BatchDataError = decode_batch_data(self.call.data)
        except BatchDataError as error:
            decoded = error
        return Submission(self.batch_index, self.prev_root, self.new_root, self.data_hash,
                          self.deposit_count, self.forced_count, self.data_bytes,
                          self.block_number, self.log_index, self.block_timestamp_s,
                          self.transaction_hash, self.call, self.call_error, decoded)


@dataclass(frozen=True, slots=True)
class CheckRules:
    """The contract's parameters and the verifier's tolerances that the checks use."""

    forced_deadline_s: int
    l1_time_tolerance_ms: int = L1_TIME_TOLERANCE_MS_DEFAULT


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """``divergence`` None: valid, and the replica is after the batch at ``root``.
    Otherwise the replica is unchanged (``dirty`` False) or mid-batch (``dirty`` True)."""

    divergence: Divergence | None
    dirty: bool
    root: bytes
    transactions: int


def precheck_batch(replica: Replica, submission: Submission, book: L1Book,
                   rules: CheckRules) -> BatchData | Divergence:
    """Checks 1-5; the decoded batch when they pass. Never changes the replica."""
    index = submission.batch_index

    def fail(reason: DivergenceReason, detail: str, entry: int | None = None) -> Divergence:
        return Divergence(index, entry, reason, detail)

    call = submission.call
    if call is None:
        return fail(DivergenceReason.DATA_UNAVAILABLE, submission.call_error or "no calldata")
    arguments = (call.batch_index, call.prev_root, call.new_root, call.data_hash,
                 call.deposit_count, call.forced_count, len(call.data))
    logged = (submission.batch_index, submission.prev_root, submission.new_root,
              submission.data_hash, submission.deposit_count, submission.forced_count,
              submission.data_bytes)
    if arguments != logged:
        return fail(DivergenceReason.DATA_UNAVAILABLE,
                    "the submit_batch calldata does not match its BatchSubmitted event")
    actual_hash = keccak256(call.data)
    if actual_hash != submission.data_hash:
        return fail(DivergenceReason.DATA_HASH_MISMATCH,
                    f"keccak256(data) = 0x{actual_hash.hex()}, committed "
                    f"0x{submission.data_hash.hex()}")
    decoded = submission.with_decoded().decoded
    if isinstance(decoded, BatchDataError):
        return fail(DivergenceReason.DATA_UNDECODABLE, str(decoded))
    assert decoded is not None
    batch = decoded
    if batch.index != index:
        return fail(DivergenceReason.HEADER_MISMATCH,
                    f"the data is batch {batch.index}, submitted as batch {index}")
    if batch.previous_root != submission.prev_root or batch.previous_root != replica.root:
        return fail(DivergenceReason.HEADER_MISMATCH,
                    f"the data extends 0x{batch.previous_root.hex()}, the chain's previous root "
                    f"is 0x{submission.prev_root.hex()}, the verifier's 0x{replica.root.hex()}")
    if index != replica.batch_index + 1:
        return fail(DivergenceReason.HEADER_MISMATCH,
                    f"batch {index} does not follow the verifier's batch {replica.batch_index}")
    earliest_ms = max(replica.state.timestamp_ms, replica.admission.batch_timestamp_ms)
    if batch.timestamp_ms < earliest_ms:
        return fail(DivergenceReason.TIMESTAMP_INVALID,
                    f"batch time {batch.timestamp_ms} ms goes back (previous {earliest_ms} ms)")
    latest_ms = submission.block_timestamp_s * MS_PER_S + rules.l1_time_tolerance_ms
    if batch.timestamp_ms > latest_ms:
        return fail(DivergenceReason.TIMESTAMP_INVALID,
                    f"batch time {batch.timestamp_ms} ms is after its L1 block "
                    f"({submission.block_timestamp_s} s) by more than "
                    f"{rules.l1_time_tolerance_ms} ms")
    for position, entry in enumerate(batch.entries):
        if not isinstance(entry, SystemEntry):
            continue
        tx = entry.tx
        if isinstance(tx, Deposit):
            deposit = book.deposits.get(tx.deposit_id)
            expected = None if deposit is None else (deposit.owner, deposit.subaccount,
                                                     deposit.amount_quantums)
            if expected != (tx.owner, tx.subaccount, tx.amount_quantums):
                return fail(DivergenceReason.L1_DEPOSIT_MISMATCH, _l1_detail(
                    "deposit", tx.deposit_id, expected,
                    (tx.owner, tx.subaccount, tx.amount_quantums)), position)
        elif isinstance(tx, ForcedWithdrawal):
            request = book.forced.get(tx.request_id)
            expected = None if request is None else (request.owner, request.subaccount,
                                                     request.amount_quantums)
            if expected != (tx.owner, tx.subaccount, tx.amount_quantums):
                return fail(DivergenceReason.L1_FORCED_MISMATCH, _l1_detail(
                    "forced withdrawal request", tx.request_id, expected,
                    (tx.owner, tx.subaccount, tx.amount_quantums)), position)
    return batch


def check_batch(replica: Replica, submission: Submission, book: L1Book, rules: CheckRules,
                executor: Executor | None = None) -> BatchOutcome:
    """All checks; see the module docstring. ``executor`` recovers signatures in parallel."""
    checked = precheck_batch(replica, submission, book, rules)
    if isinstance(checked, Divergence):
        return BatchOutcome(checked, False, replica.root, 0)
    batch = checked
    index = submission.batch_index

    def fail(reason: DivergenceReason, detail: str, entry: int | None = None) -> BatchOutcome:
        return BatchOutcome(Divergence(index, entry, reason, detail), True, replica.root,
                            len(batch.entries))

    try:
        _, root = replica.apply(batch, executor)
    except BatchReplayError as error:
        entry = error.entry if error.entry >= 0 else None
        return fail(_admission_reason(error.code), str(error), entry)
    except Exception as error:  # the STF could not apply it at all (an assertion, a bug)
        return fail(DivergenceReason.REPLAY_FAILED, f"{type(error).__name__}: {error}")
    state = replica.state
    deposits, forced = state.next_deposit_id - 1, state.next_forced_id - 1
    if submission.deposit_count != deposits:
        return fail(DivergenceReason.DEPOSIT_COUNT_MISMATCH,
                    f"posted deposit_count {submission.deposit_count}, the state credited "
                    f"{deposits}")
    if submission.forced_count != forced:
        return fail(DivergenceReason.FORCED_COUNT_MISMATCH,
                    f"posted forced_count {submission.forced_count}, the state processed "
                    f"{forced}")
    overdue = book.overdue(forced, submission.block_timestamp_s, rules.forced_deadline_s)
    if overdue is not None:
        return fail(DivergenceReason.FORCED_WITHDRAWAL_OMITTED,
                    f"forced withdrawal request {overdue.request_id} (requested at "
                    f"{overdue.requested_at_s} s) is past its {rules.forced_deadline_s} s "
                    f"deadline at the batch's L1 time {submission.block_timestamp_s} s and "
                    f"was left out")
    if root != submission.new_root:
        return fail(DivergenceReason.ROOT_MISMATCH,
                    f"replayed root 0x{root.hex()}, posted 0x{submission.new_root.hex()}")
    return BatchOutcome(None, False, root, len(batch.entries))


def _admission_reason(code: AdmissionCode | None) -> DivergenceReason:
    if code in _SIGNATURE_CODES:
        return DivergenceReason.SIGNATURE_INVALID
    if code in _AUTHORISATION_CODES:
        return DivergenceReason.UNAUTHORISED_SIGNER
    if code in _NONCE_CODES:
        return DivergenceReason.NONCE_INVALID
    if code is None:
        return DivergenceReason.HEADER_MISMATCH  # a header refusal (entry -1) replay_batch made
    return DivergenceReason.ADMISSION_REFUSED


def _l1_detail(what: str, identifier: int, expected: tuple[bytes, int, int] | None,
               got: tuple[bytes, int, int]) -> str:
    def show(value: tuple[bytes, int, int]) -> str:
        owner, subaccount, amount = value
        return f"owner 0x{owner.hex()}, subaccount {subaccount}, {amount} quantums"

    if expected is None:
        return f"{what} {identifier} does not exist on chain before this batch ({show(got)})"
    return f"{what} {identifier} is {show(expected)} on chain, the batch says {show(got)}"

"""The node's live signer recovery: one entry point for both ways of doing it.

``prepare`` (recovery threads, ``recovery_processes = 0``) recovers and encodes one submission
chunk on the calling thread: coincurve releases the GIL for the curve work, but the thread must
take it back for every order, from a sequencer and an event loop that hold it in Python.

``prepare_round`` (worker processes, ``rollbook.sequencer.recovery_processes``) takes every
chunk the node's single dispatcher thread found queued, and:
1. encodes each action (``signed_entry``; a refusal here is the action's answer, as in
   ``prepare``, and the action is not recovered);
2. cuts what is left into at most one request per worker (contiguous, about equal, none smaller
   than ``SPLIT_SIGNATURES_MIN`` unless there is only one) and starts them: this thread checks
   the shapes and packs the struct words, the workers hash the digests and do the curve work
   on their own GILs;
3. while they work, finishes the encoding (entry bytes, transaction id);
4. collects the replies, in order: one pipe round trip per worker per round, not per order.

The answers are exactly ``prepare``'s for the same chunks (``PendingRecovery.result`` is
``recover_signers``, and a worker that is gone is replaced by in-process recovery), in the
chunks' order. ``RecoveryProcesses`` is not thread-safe: only the dispatcher calls it, and the
node closes it once the dispatcher has exited.

Limits: a round holds at most ``ROUND_SIGNATURES_MAX`` actions (the dispatcher leaves the rest
queued for the next round), so each request stays within ``REQUEST_SIGNATURES_MAX``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from rollbook.execution.crypto import keccak256
from rollbook.sequencer.batch_data import SignedEntry, encode_entry, signed_entry
from rollbook.sequencer.eip712 import Eip712Domain
from rollbook.sequencer.errors import AdmissionError
from rollbook.sequencer.recovery_processes import (
    REQUEST_SIGNATURES_MAX,
    PendingRecovery,
    RecoveryProcesses,
)
from rollbook.sequencer.signatures import (
    SignedTransaction,
    VerifiedTransaction,
    recover_signer,
)

__all__ = ["ROUND_SIGNATURES_MAX", "SPLIT_SIGNATURES_MIN", "prepare", "prepare_round"]

# actions per dispatcher round: large enough to amortise a round trip under load (the event
# loop hands over single orders or groups of up to 64), small enough that a round's first
# action does not wait long for its last
ROUND_SIGNATURES_MAX: Final = 1_024
# a request's smallest share of a round: below it, another worker's pipe round trip (a write,
# a wake-up, a read: tens of µs) costs more than the ~35 µs of curve work per action it saves
SPLIT_SIGNATURES_MIN: Final = 4
assert ROUND_SIGNATURES_MAX <= REQUEST_SIGNATURES_MAX

# one prepared action, as the sequencer takes it: (entry, data, tx_id, verified | refusal)
Prepared = tuple[Any, ...]


def prepare(domain: Eip712Domain, signed: Sequence[SignedTransaction]) -> list[Prepared]:
    """Recover the signer and encode each action, on this thread."""
    prepared: list[Prepared] = []
    for item in signed:
        try:
            entry = signed_entry(item)
            verified: VerifiedTransaction | AdmissionError = recover_signer(domain, item)
        except AdmissionError as error:
            prepared.append((None, b"", b"", error))
            continue
        prepared.append((entry, encode_entry(entry), keccak256(entry.body), verified))
    return prepared


def prepare_round(recovery: RecoveryProcesses, domain: Eip712Domain,
                  chunks: Sequence[Sequence[SignedTransaction]]) -> list[list[Prepared]]:
    """``[prepare(domain, chunk) for chunk in chunks]``, the curve work on the workers."""
    total = sum(len(chunk) for chunk in chunks)
    assert total <= ROUND_SIGNATURES_MAX, total
    # 1. encode; what has no canonical encoding is refused without a recovery
    entries: list[SignedEntry | AdmissionError] = []
    to_recover: list[SignedTransaction] = []
    for chunk in chunks:
        for item in chunk:
            try:
                entry = signed_entry(item)
            except AdmissionError as error:
                entries.append(error)
                continue
            entries.append(entry)
            to_recover.append(item)
    # 2. one request per worker at most
    count = len(to_recover)
    pending: list[PendingRecovery] = []
    if count:
        parts = max(1, min(recovery.processes, count // SPLIT_SIGNATURES_MIN))
        size = -(-count // parts)
        pending = [recovery.start(domain, to_recover[start:start + size])
                   for start in range(0, count, size)]
    # 3. the rest of the encoding, while the workers recover
    encoded: list[tuple[bytes, bytes] | None] = [
        None if isinstance(entry, AdmissionError)
        else (encode_entry(entry), keccak256(entry.body)) for entry in entries]
    # 4. the replies, in order
    verified: list[VerifiedTransaction | AdmissionError] = []
    for request in pending:
        verified.extend(request.result())
    assert len(verified) == count
    results: list[list[Prepared]] = []
    position = 0
    next_verified = iter(verified).__next__
    for chunk in chunks:
        prepared: list[Prepared] = []
        for _ in chunk:
            encoding_or_refusal = entries[position]
            encoding = encoded[position]
            position += 1
            if isinstance(encoding_or_refusal, AdmissionError):
                prepared.append((None, b"", b"", encoding_or_refusal))
                continue
            assert encoding is not None
            answer = next_verified()
            if isinstance(answer, AdmissionError):
                prepared.append((None, b"", b"", answer))
            else:
                prepared.append((encoding_or_refusal, encoding[0], encoding[1], answer))
        results.append(prepared)
    return results

"""What the verifier found wrong with a batch: a typed ``Divergence`` record.

Every check the verifier runs on a published batch has one reason code here. A divergence names
the batch (``batch_index``), the position of the batch entry that diverged when one can be
named (``entry``: the index into the batch's entries, ``None`` for a property of the whole
batch such as its hash or its root), the reason, and a human-readable ``detail``.

Invariants:
- the first failing check wins, in the order of ``DivergenceReason`` (data availability before
  decoding, decoding before replay, replay before counters, counters before the root), so one
  batch has exactly one reported reason and the report is reproducible;
- a root mismatch has no entry index: the contract commits one root per batch, not per
  transaction, so nothing on chain says where inside the batch the operator's state went
  elsewhere (``detail`` carries both roots).

Reason codes are stable strings (they appear in ``--json`` output); new ones are appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Divergence", "DivergenceReason"]


class DivergenceReason(StrEnum):
    """Why a batch is invalid, in the order the checks run."""

    # the calldata of the submit_batch transaction cannot be read as the call its event names
    DATA_UNAVAILABLE = "data_unavailable"
    # keccak256(data) differs from the data_hash the operator committed to
    DATA_HASH_MISMATCH = "data_hash_mismatch"
    # the data is not a canonical batch encoding (rollbook.sequencer.batch_data)
    DATA_UNDECODABLE = "data_undecodable"
    # the data's header names another index or previous root than the submission
    HEADER_MISMATCH = "header_mismatch"
    # the batch time goes back, or lies after the L1 block that carried it (beyond tolerance)
    TIMESTAMP_INVALID = "timestamp_invalid"
    # a Deposit entry that is not the contract's Deposited event of that id
    L1_DEPOSIT_MISMATCH = "l1_deposit_mismatch"
    # a ForcedWithdrawal entry that is not the contract's request of that id
    L1_FORCED_MISMATCH = "l1_forced_mismatch"
    # a signed entry whose signature is malformed, high-s, or recovers no key
    SIGNATURE_INVALID = "signature_invalid"
    # a signature that recovers to someone who may not sign that action (forged or altered)
    UNAUTHORISED_SIGNER = "unauthorised_signer"
    # a nonce the sequencer would have refused (used, below the window, out of its time window)
    NONCE_INVALID = "nonce_invalid"
    # any other admission refusal (field ranges, unsupported action)
    ADMISSION_REFUSED = "admission_refused"
    # the STF could not apply the batch at all (an exception, not a receipt)
    REPLAY_FAILED = "replay_failed"
    # the submission's deposit_count is not the replayed state's
    DEPOSIT_COUNT_MISMATCH = "deposit_count_mismatch"
    # the submission's forced_count is not the replayed state's
    FORCED_COUNT_MISMATCH = "forced_count_mismatch"
    # a forced-withdrawal request older than the deadline at the batch's L1 time was left out
    FORCED_WITHDRAWAL_OMITTED = "forced_withdrawal_omitted"
    # the replayed root differs from the posted root
    ROOT_MISMATCH = "root_mismatch"


@dataclass(frozen=True, slots=True)
class Divergence:
    """One invalid batch: which batch, which entry (or None), why, and the details."""

    batch_index: int
    entry: int | None
    reason: DivergenceReason
    detail: str

    def __str__(self) -> str:
        where = f"batch {self.batch_index}" + (
            f", entry {self.entry}" if self.entry is not None else "")
        return f"{where}: {self.reason.value}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {"batch_index": self.batch_index, "entry": self.entry,
                "reason": self.reason.value, "detail": self.detail}

"""The verifier's own copy of the venue at a batch boundary, and its checkpoints.

A ``Replica`` is the STF state, its commitment (tree and slot map) and the admission state
(nonce windows, agent grants) after batch ``batch_index``, built from the genesis state by
``replay_batch`` alone. It never takes anything from the operator: no operator snapshot, no
operator state, only batch bytes read from the chain.

``dumps``/``loads`` turn a replica into bytes and back (checkpoints in memory, the verifier's
snapshot files on disk). The payload is ``rollbook.node.snapshot.dumps_snapshot`` of a
``NodeSnapshot``: that pickler already carries the STF's object graph without deep recursion
through the order book's links, and the node's tests hold it to exact round trips. Only the
bytes' framing (magic, checksum, what the verifier keeps beside the state) is the verifier's.

Invariants:
- ``root == commitment.root`` and ``batch_index == state.batch_index`` at every boundary;
- after a failed ``apply`` the replica is *dirty* (mid-batch) and refuses to be used again: the
  caller restores a checkpoint (``Replica.loads``).

Trust: ``loads`` unpickles, which runs code named in the payload. Feed it only bytes this
process produced or the verifier's own checksummed snapshot files.
"""

from __future__ import annotations

from concurrent.futures import Executor

from rollbook import __version__
from rollbook.commitment.state_tree import StateCommitment
from rollbook.execution.events import Receipt
from rollbook.execution.state import State
from rollbook.node.snapshot import NodeSnapshot, dumps_snapshot, loads_snapshot
from rollbook.sequencer.admission import AdmissionState
from rollbook.sequencer.batch_data import BatchData, replay_batch
from rollbook.sequencer.eip712 import Eip712Domain

__all__ = ["Replica", "ReplicaError"]


class ReplicaError(RuntimeError):
    """A replica used after a failed replay, or a payload that is not a replica."""


class Replica:
    """State + commitment + admission after ``batch_index``; see the module docstring."""

    __slots__ = ("_dirty", "admission", "commitment", "domain", "state")

    def __init__(self, state: State, commitment: StateCommitment, admission: AdmissionState,
                 domain: Eip712Domain) -> None:
        self.state = state
        self.commitment = commitment
        self.admission = admission
        self.domain = domain
        self._dirty = False

    @property
    def batch_index(self) -> int:
        return self.state.batch_index

    @property
    def root(self) -> bytes:
        return self.commitment.root

    @property
    def dirty(self) -> bool:
        return self._dirty

    def apply(self, batch: BatchData,
              executor: Executor | None = None) -> tuple[list[Receipt], bytes]:
        """Replay ``batch`` through ``replay_batch``; raises what it raises, leaving the
        replica dirty (then restore a checkpoint)."""
        if self._dirty:
            raise ReplicaError("the replica is mid-batch after a failed replay; restore it")
        self._dirty = True
        receipts, root = replay_batch(self.state, self.commitment, self.admission, self.domain,
                                      batch, executor)
        self._dirty = False
        return receipts, root

    def dumps(self) -> bytes:
        if self._dirty:
            raise ReplicaError("a dirty replica cannot be checkpointed")
        return dumps_snapshot(NodeSnapshot(
            code_version=__version__, venue_fingerprint=b"", batch_index=self.batch_index,
            root=self.root, wal_sequence=0, state=self.state, commitment=self.commitment,
            admission=self.admission.snapshot()))

    @classmethod
    def loads(cls, payload: bytes, domain: Eip712Domain) -> Replica:
        try:
            snapshot = loads_snapshot(payload)
            admission = AdmissionState.restore(snapshot.admission)
        except Exception as error:  # SnapshotError, ValueError from restore, pickle errors
            raise ReplicaError(f"not a replica: {error}") from error
        replica = cls(snapshot.state, snapshot.commitment, admission, domain)
        if replica.root != snapshot.root or replica.batch_index != snapshot.batch_index:
            raise ReplicaError("replica payload disagrees with itself (root or batch index)")
        return replica

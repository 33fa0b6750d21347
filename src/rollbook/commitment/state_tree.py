"""The state root: the venue's state mapped onto one SHA-256 Merkle tree, updated per batch.

Slot map (docs/settlement.md): slot 0 holds the globals leaf; every other record (index price,
market, subaccount, resting order, pending withdrawal, liquidation-queue entry, option terms,
volatility smile, option expiry, portfolio-margin flag, quote ladder) takes a slot when
it first exists at the end of a batch and frees it when it no longer exists. A new record takes
the lowest free slot; the records of one batch are freed first, then placed in ascending
``LeafKey`` order. The slot map is therefore a function of the sequence of batches: every
replica that applies the same batches (the node, a verifier, a restarted node) assigns the same
slots and computes the same roots. Slots stay dense, which the tree's dense storage needs.

Incremental: ``commit`` re-encodes only the records the STF marked as touched
(``State.touched_*``: subaccounts, orders, markets with their option terms, expiries with their
smiles, quote ladders, portfolio-margin flags), the globals and the insurance fund (changed by
most batches), and the
small collections it diffs against what it last committed (index prices, the liquidation queue,
new withdrawals); then the tree rehashes only the dirty paths (O(touched x depth)).

``check`` recomputes every leaf from the state and compares it with the tree, slot by slot: the
test suite runs it after every batch so that a mutation the STF forgot to mark fails loudly
instead of producing a silently stale root.

Known limits: pending withdrawals are never pruned (the STF does not learn which were claimed);
the slot map is not itself committed (it is derivable only by replay), so snapshots must carry
it (``copy``).
"""

from __future__ import annotations

from dataclasses import dataclass

from rollbook.commitment.changes import (
    all_leaves,
    collect_updates,
    place_updates,
    store_leaves,
)
from rollbook.commitment.leaves import LeafKey, globals_leaf
from rollbook.commitment.merkle import MerkleTree, hash_leaf
from rollbook.execution.state import GroupKey, State, start_touch_epoch

__all__ = [
    "GLOBALS_SLOT",
    "TREE_DEPTH",
    "LeafProof",
    "StateCommitment",
    "canonical_root",
]

TREE_DEPTH = 32  # 4 billion slots; the contract verifies exactly this many siblings
GLOBALS_SLOT = 0


@dataclass(frozen=True, slots=True)
class LeafProof:
    """What a claimant sends the settlement contract: the leaf, where it is, and the path."""

    leaf_index: int
    leaf: bytes
    siblings: tuple[bytes, ...]
    root: bytes


class StateCommitment:
    """The tree, the slot map and what was last committed of the diffed collections."""

    __slots__ = ("_free", "_indexes", "_leaves", "_next_slot", "_queue", "_slots", "_tree",
                 "_withdrawals_next")

    def __init__(self) -> None:
        self._tree = MerkleTree(TREE_DEPTH)
        self._slots: dict[LeafKey, int] = {}
        # slot -> leaf bytes (None: free), for proofs and checks. A list, not a dict, because
        # slots are dense: a write is an index store, not a probe of a million-entry table.
        self._leaves: list[bytes | None] = [None]
        self._free: list[int] = []  # min-heap of freed slots below _next_slot
        self._next_slot = GLOBALS_SLOT + 1
        self._indexes: dict[int, int] = {}
        self._queue: dict[GroupKey, int] = {}
        self._withdrawals_next = 1

    @property
    def root(self) -> bytes:
        return self._tree.root()

    @property
    def leaf_count(self) -> int:
        """Leaves in the tree, the globals included: the slots ever taken less the free ones."""
        return self._next_slot - len(self._free)

    def copy(self) -> StateCommitment:
        """An independent copy (a snapshot of the tree and the slot map at this batch)."""
        other = StateCommitment.__new__(StateCommitment)
        other._tree = self._tree.copy()
        other._slots = dict(self._slots)
        other._leaves = list(self._leaves)
        other._free = list(self._free)
        other._next_slot = self._next_slot
        other._indexes = dict(self._indexes)
        other._queue = dict(self._queue)
        other._withdrawals_next = self._withdrawals_next
        return other

    def commit(self, state: State) -> bytes:
        """Fold everything the state changed since the last commit into the tree; the root."""
        updates = collect_updates(state, self._indexes, self._queue, self._withdrawals_next)
        self._indexes = dict(state.index_prices)
        self._queue = dict(state.liquidation_queue)
        self._withdrawals_next = state.next_withdrawal_id
        start_touch_epoch(state)
        state.touched_markets.clear()
        state.touched_expiries.clear()
        state.touched_quotes.clear()
        state.touched_risk_modes.clear()
        slot_updates, self._next_slot = place_updates(self._slots, self._free, self._next_slot,
                                                      updates)
        slot_updates[GLOBALS_SLOT] = globals_leaf(state)
        store_leaves(self._leaves, slot_updates, self._next_slot)
        self._tree.set_leaves(slot_updates)
        return self._tree.root()

    def slot_of(self, key: LeafKey) -> int | None:
        return self._slots.get(key)

    def proof(self, key: LeafKey) -> LeafProof:
        """The proof of a committed record against the current root (KeyError if absent)."""
        slot = GLOBALS_SLOT if key == (GLOBALS_SLOT,) else self._slots[key]
        leaf = self._leaves[slot]
        assert leaf is not None, f"slot {slot} of {key} holds no leaf"
        return LeafProof(slot, leaf, self._tree.proof(slot), self._tree.root())

    def check(self, state: State) -> None:
        """Raise AssertionError unless the tree holds exactly the state's leaves.

        O(state): for tests and audits, after ``commit``.
        """
        expected = all_leaves(state)
        assert set(expected) == set(self._slots), (
            f"slot map differs: missing {sorted(set(expected) - set(self._slots))[:3]}, "
            f"extra {sorted(set(self._slots) - set(expected))[:3]}")
        for key, leaf in expected.items():
            slot = self._slots[key]
            assert self._leaves[slot] == leaf, f"stale leaf for {key} at slot {slot}"
            assert self._tree.leaf_hash(slot) == hash_leaf(leaf), f"stale hash at slot {slot}"
        assert self._leaves[GLOBALS_SLOT] == globals_leaf(state), "stale globals leaf"
        assert len(self._leaves) == self._next_slot, "the leaf list does not cover the slots"
        assert all(self._leaves[slot] is None for slot in self._free), \
            "a freed slot still holds a leaf"
        assert self.leaf_count == len(expected) + 1, "slots in use differ from the records"


def canonical_root(state: State) -> bytes:
    """The root of ``state`` committed in one step from a fresh slot map.

    Equal for equal states whatever their history (slots are assigned in key order, exactly as
    a fresh ``StateCommitment`` would), so it is the fingerprint for comparing two states; a
    live venue's root is ``StateCommitment.root``, whose slots follow its batch history.
    """
    leaves = all_leaves(state)
    updates: dict[int, bytes | None] = {GLOBALS_SLOT: globals_leaf(state)}
    for slot, key in enumerate(sorted(leaves), start=GLOBALS_SLOT + 1):
        updates[slot] = leaves[key]
    tree = MerkleTree(TREE_DEPTH)
    tree.set_leaves(updates)
    return tree.root()

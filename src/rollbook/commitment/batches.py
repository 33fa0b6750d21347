"""Executing a batch and committing its root: the one place the STF and the tree meet.

A batch names the root it extends (``Batch.previous_root``); it applies only on that root, and
its result is the new root after the STF ran every transaction. The node, the verifier and the
tests all go through ``apply_and_commit``, so "the root of batch n" means one thing.
"""

from __future__ import annotations

from rollbook.commitment.state_tree import StateCommitment
from rollbook.execution.events import Receipt
from rollbook.execution.state import State, mark_order, mark_subaccount
from rollbook.execution.stf import apply_batch
from rollbook.execution.txs import Batch

__all__ = ["RootMismatch", "apply_and_commit", "genesis_commitment"]


class RootMismatch(ValueError):
    """The batch does not extend the state it was applied to."""


def genesis_commitment(state: State) -> StateCommitment:
    """The commitment of a genesis state; its root is the settlement contract's genesis root."""
    assert state.batch_index == 0, "genesis is the state before batch 1"
    # every record is new to a fresh commitment, whatever an earlier commitment saw
    for sub in state.subaccounts.values():
        mark_subaccount(state, sub)
    for order in state.orders.values():
        mark_order(state, order)
    state.touched_markets.update(state.markets)
    state.touched_expiries.update(state.expiries)
    state.touched_quotes.update(state.quotes)
    state.touched_risk_modes.update(state.subaccounts)
    commitment = StateCommitment()
    commitment.commit(state)
    return commitment


def apply_and_commit(state: State, commitment: StateCommitment,
                     batch: Batch) -> tuple[list[Receipt], bytes]:
    """Apply ``batch`` on the state whose root ``commitment`` holds; the receipts, new root."""
    if batch.previous_root != commitment.root:
        raise RootMismatch(f"batch {batch.index} extends {batch.previous_root.hex()}, "
                           f"the state is at {commitment.root.hex()}")
    receipts = apply_batch(state, batch)
    return receipts, commitment.commit(state)

"""Commitment: the state root after each batch, and proofs of its leaves.

The venue's state is mapped onto one SHA-256 Merkle tree of depth 32 (``state_tree``), one
ABI-encoded leaf per record (``leaves``), updated incrementally after each batch
(``apply_and_commit``). The settlement contract stores the roots and verifies proofs of
withdrawal, subaccount and market leaves with the algorithm of ``merkle.verify_proof``. The
layout is specified in docs/settlement.md.
"""

from rollbook.commitment.batches import RootMismatch, apply_and_commit, genesis_commitment
from rollbook.commitment.merkle import MerkleTree, hash_leaf, verify_proof
from rollbook.commitment.state_tree import (
    TREE_DEPTH,
    LeafProof,
    StateCommitment,
    canonical_root,
)

__all__ = [
    "TREE_DEPTH",
    "LeafProof",
    "MerkleTree",
    "RootMismatch",
    "StateCommitment",
    "apply_and_commit",
    "canonical_root",
    "genesis_commitment",
    "hash_leaf",
    "verify_proof",
]

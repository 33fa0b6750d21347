"""Commitment: what the venue commits to after each batch.

Today the state digest is a flat SHA-256 over the canonical state leaves
(``digest.state_digest``). ``merkle`` holds the incremental keccak-256 Merkle tree and the
proof verifier that the settlement contract will mirror; mapping the state's leaves onto it
(and replacing the flat digest with its root) is the next step of the settlement issue.
"""

from rollbook.commitment.digest import state_digest
from rollbook.commitment.merkle import MerkleTree, verify_proof

__all__ = ["MerkleTree", "state_digest", "verify_proof"]

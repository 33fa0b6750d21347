"""Commitment: a digest of the whole state after each batch.

Today a flat SHA-256 over the canonical state leaves (``digest.state_digest``); the Merkle
commitment with proofs for the settlement contract replaces it in the settlement issue, over the
same leaves.
"""

from rollbook.commitment.digest import state_digest

__all__ = ["state_digest"]

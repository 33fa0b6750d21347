"""Flat state digest: SHA-256 over the length-prefixed canonical state leaves.

Equal digests mean byte-identical canonical state; the digest changes with any field of any
leaf, including book order (price-time priority is state) and the liquidation queue order.
"""

from __future__ import annotations

import hashlib

from rollbook.execution.encoding import state_leaves
from rollbook.execution.state import State

__all__ = ["DIGEST_DOMAIN_TAG", "state_digest"]

DIGEST_DOMAIN_TAG = b"rollbook/state-digest/v1"


def state_digest(state: State) -> bytes:
    hasher = hashlib.sha256(DIGEST_DOMAIN_TAG)
    update = hasher.update
    for leaf in state_leaves(state):
        update(len(leaf).to_bytes(2, "big"))
        update(leaf)
    return hasher.digest()

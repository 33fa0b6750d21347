"""Signed volatility updates: one raw-SVI smile per (index, expiry), verified inside the STF.

A ``VolatilityUpdate`` carries smiles and signatures from the venue's oracle signers over
``volatility_message_digest``: the same signer set, threshold and low-s rules as price updates
(``oracle.check_oracle_signatures``), under its own domain tag so that neither kind of message
can be replayed as the other. It is accepted whole or not at all:

- 1 to ``VOLATILITY_SMILES_MAX`` smiles, each for an (index, expiry) with a live, unsettled
  option (``VOLATILITY_UNKNOWN_EXPIRY``), at most once per update;
- each smile passes ``SviSmile``'s checks, observed at the update's timestamp
  (``VOLATILITY_INVALID``: shape, Lee's wing bound, non-negative variance, horizon);
- the timestamp lies within the oracle's age and future window of batch time and is newer than
  every smile it replaces (``ORACLE_STALE``), so an old signed smile cannot come back.

Applying it stores the smiles, drops the scenario cache, recomputes the marks of the options of
those expiries and returns them, so that their holders are re-checked for maintenance.
"""

from __future__ import annotations

from rollbook.execution.crypto import keccak256
from rollbook.execution.errors import ErrorCode, TxRejected
from rollbook.execution.options.engine import refresh_option_marks
from rollbook.execution.options.smile import SviSmile
from rollbook.execution.oracle import (
    ORACLE_SIGNATURES_MAX,
    check_oracle_signatures,
    check_oracle_timestamp,
)
from rollbook.execution.state import EXPIRY_SETTLED, ExpiryKey, State
from rollbook.execution.txs import SviParameters, VolatilityUpdate

__all__ = [
    "VOLATILITY_DOMAIN_TAG",
    "VOLATILITY_SMILES_MAX",
    "apply_volatility_update",
    "volatility_message_digest",
]

VOLATILITY_DOMAIN_TAG = b"rollbook/volatility/v1"
VOLATILITY_SMILES_MAX = 64  # fits TRANSACTION_BYTES_MAX with every signature (encoding)


def volatility_message_digest(chain_id: int, timestamp_ms: int,
                              smiles: tuple[SviParameters, ...]) -> bytes:
    parts = [VOLATILITY_DOMAIN_TAG, chain_id.to_bytes(32, "big"), timestamp_ms.to_bytes(8, "big"),
             len(smiles).to_bytes(2, "big")]
    for smile in smiles:
        parts.append(smile.index_id.to_bytes(4, "big"))
        parts.append(smile.expiry_ms.to_bytes(8, "big"))
        parts.append(smile.a_wad.to_bytes(16, "big", signed=True))
        parts.append(smile.b_wad.to_bytes(16, "big"))
        parts.append(smile.rho_wad.to_bytes(16, "big", signed=True))
        parts.append(smile.m_wad.to_bytes(16, "big", signed=True))
        parts.append(smile.sigma_svi_wad.to_bytes(16, "big"))
    return keccak256(b"".join(parts))


def _smiles(state: State, tx: VolatilityUpdate) -> dict[ExpiryKey, SviSmile]:
    if (not 0 < len(tx.smiles) <= VOLATILITY_SMILES_MAX
            or len(tx.signatures) > ORACLE_SIGNATURES_MAX):
        raise TxRejected(ErrorCode.MALFORMED_TRANSACTION, "smile or signature count")
    smiles: dict[ExpiryKey, SviSmile] = {}
    for params in tx.smiles:
        key = (params.index_id, params.expiry_ms)
        expiry = state.expiries.get(key)
        if expiry is None or expiry.status == EXPIRY_SETTLED:
            raise TxRejected(ErrorCode.VOLATILITY_UNKNOWN_EXPIRY,
                             f"index {params.index_id} expiry {params.expiry_ms}")
        if key in smiles:
            raise TxRejected(ErrorCode.MALFORMED_TRANSACTION, "duplicate smile")
        try:
            smile = SviSmile(params.index_id, params.expiry_ms, tx.timestamp_ms, params.a_wad,
                             params.b_wad, params.rho_wad, params.m_wad, params.sigma_svi_wad)
        except ValueError as error:
            raise TxRejected(ErrorCode.VOLATILITY_INVALID, str(error)) from error
        current = state.smiles.get(key)
        if current is not None and tx.timestamp_ms <= current.observed_ms:
            raise TxRejected(ErrorCode.ORACLE_STALE, "older than the current smile")
        smiles[key] = smile
    check_oracle_timestamp(state, tx.timestamp_ms)
    return smiles


def apply_volatility_update(state: State, tx: VolatilityUpdate) -> list[int]:
    """Verify and apply; returns the option markets whose holders need a margin check."""
    smiles = _smiles(state, tx)
    digest = volatility_message_digest(state.config.chain_id, tx.timestamp_ms, tx.smiles)
    check_oracle_signatures(state, digest, tx.signatures)
    affected: list[int] = []
    for key in sorted(smiles):
        state.smiles[key] = smiles[key]
        state.touched_expiries.add(key)
        affected.extend(state.expiries[key].market_ids)
    state.risk.invalidate()
    refresh_option_marks(state, affected)
    return affected

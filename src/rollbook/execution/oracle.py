"""Oracle price updates: signed by a configured key set, verified inside the STF.

Prices never come from the machine: they enter as ``OracleUpdate`` transactions carrying
signatures from the venue's oracle signers over ``oracle_message_digest`` (which binds the
chain id, so an update cannot be replayed on another venue). An update needs
``oracle_threshold`` distinct configured signers; any malformed, high-s or unknown signature
rejects it whole. Its timestamp must be newer than the current one and within
``oracle_max_age_ms`` / ``oracle_max_future_ms`` of the batch timestamp.

After the prices move, every group holding a position in an affected market is re-checked and
those below maintenance margin enter the liquidation queue (see ``liquidation``).

Options: each update is an index sample for the settlement of every unsettled expiry on its
indices (``options.lifecycle.record_index_sample``), moves the valuation time, so the scenario
cache is dropped and every live option's mark is recomputed (``options.engine``), and the
holders of every live option are re-checked. An index that has an option class is capped at
``config.OPTION_PRICE_QUANTUMS_MAX``, inside Black-76's domain.
"""

from __future__ import annotations

from rollbook.execution.config import OPTION_PRICE_QUANTUMS_MAX
from rollbook.execution.crypto import keccak256, recover_address
from rollbook.execution.errors import ErrorCode, TxRejected
from rollbook.execution.options.engine import live_option_market_ids, refresh_option_marks
from rollbook.execution.options.lifecycle import record_index_sample
from rollbook.execution.state import State
from rollbook.execution.txs import OraclePrice, OracleUpdate

__all__ = [
    "ORACLE_DOMAIN_TAG",
    "apply_oracle_update",
    "check_oracle_signatures",
    "check_oracle_timestamp",
    "oracle_message_digest",
]

ORACLE_DOMAIN_TAG = b"rollbook/oracle/v1"
ORACLE_PRICES_MAX = 256
ORACLE_SIGNATURES_MAX = 32
ORACLE_PRICE_QUANTUMS_MAX = 10**24


def oracle_message_digest(chain_id: int, timestamp_ms: int,
                          prices: tuple[OraclePrice, ...]) -> bytes:
    parts = [ORACLE_DOMAIN_TAG, chain_id.to_bytes(32, "big"), timestamp_ms.to_bytes(8, "big"),
             len(prices).to_bytes(2, "big")]
    for price in prices:
        parts.append(price.index_id.to_bytes(4, "big"))
        parts.append(price.price_quantums.to_bytes(16, "big"))
    return keccak256(b"".join(parts))


def _check_shape(state: State, tx: OracleUpdate) -> None:
    if not 0 < len(tx.prices) <= ORACLE_PRICES_MAX or len(tx.signatures) > ORACLE_SIGNATURES_MAX:
        raise TxRejected(ErrorCode.MALFORMED_TRANSACTION, "price or signature count")
    known = state.known_indices
    seen: set[int] = set()
    for price in tx.prices:
        if price.index_id not in known:
            raise TxRejected(ErrorCode.ORACLE_UNKNOWN_INDEX, f"index {price.index_id}")
        if price.index_id in seen:
            raise TxRejected(ErrorCode.MALFORMED_TRANSACTION, "duplicate index")
        seen.add(price.index_id)
        if not 0 < price.price_quantums <= ORACLE_PRICE_QUANTUMS_MAX:
            raise TxRejected(ErrorCode.MALFORMED_TRANSACTION, "price out of range")
        if price.price_quantums > OPTION_PRICE_QUANTUMS_MAX and (
                state.config.option_class(price.index_id) is not None):
            raise TxRejected(ErrorCode.MALFORMED_TRANSACTION, "price out of range")
    if tx.timestamp_ms <= state.oracle_timestamp_ms:
        raise TxRejected(ErrorCode.ORACLE_STALE)
    check_oracle_timestamp(state, tx.timestamp_ms)


def check_oracle_timestamp(state: State, timestamp_ms: int) -> None:
    """A signed update must lie within the configured age and future of batch time."""
    config = state.config
    if (timestamp_ms < state.timestamp_ms - config.oracle_max_age_ms
            or timestamp_ms > state.timestamp_ms + config.oracle_max_future_ms):
        raise TxRejected(ErrorCode.ORACLE_STALE)


def _check_signatures(state: State, tx: OracleUpdate) -> None:
    digest = oracle_message_digest(state.config.chain_id, tx.timestamp_ms, tx.prices)
    check_oracle_signatures(state, digest, tx.signatures)


def check_oracle_signatures(state: State, digest: bytes, signatures: tuple[bytes, ...]) -> None:
    """``oracle_threshold`` distinct configured signers over ``digest``; any bad one rejects."""
    config = state.config
    allowed = set(config.oracle_signers)
    signers: list[bytes] = []
    for signature in signatures:
        signer = recover_address(digest, signature)
        if signer is None or signer not in allowed or signer in signers:
            raise TxRejected(ErrorCode.ORACLE_SIGNATURE_INVALID)
        signers.append(signer)
    if len(signers) < config.oracle_threshold:
        raise TxRejected(ErrorCode.ORACLE_SIGNATURES_INSUFFICIENT,
                         f"{len(signers)} of {config.oracle_threshold}")


def apply_oracle_update(state: State, tx: OracleUpdate) -> list[int]:
    """Verify and apply; returns the ids of markets whose holders need a margin check."""
    _check_shape(state, tx)
    _check_signatures(state, tx)
    state.oracle_timestamp_ms = tx.timestamp_ms
    changed_indices: dict[int, None] = {}
    for price in tx.prices:
        if state.index_prices.get(price.index_id) != price.price_quantums:
            state.index_prices[price.index_id] = price.price_quantums
            changed_indices[price.index_id] = None
    changed_markets: list[int] = []
    for market_id, market in state.markets.items():
        if market.option is None and market.config.index_id in changed_indices:
            market.index_price_quantums = state.index_prices[market.config.index_id]
            changed_markets.append(market_id)
    state.touched_markets.update(changed_markets)
    state.risk.invalidate()  # the valuation time moved, and maybe the prices
    if state.expiries:
        for price in tx.prices:
            record_index_sample(state, price.index_id, tx.timestamp_ms, price.price_quantums)
        live = live_option_market_ids(state)
        refresh_option_marks(state, live)
        changed_markets.extend(live)  # time moved: every option's risk changed
    return changed_markets

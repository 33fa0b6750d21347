"""The state's leaves: one ABI-encoded record per committed object (see docs/settlement.md).

Every leaf is ``abi.encode(kind, ...fields)`` as Solidity and Vyper encode a tuple: 32-byte
big-endian words, unsigned values zero-padded, signed values two's complement (``int256``),
addresses left-padded with 12 zero bytes, and the subaccount leaf's two dynamic arrays placed
after the head with byte offsets. That is what lets the settlement contract hash a leaf it was
given, check the proof, and read the fields with one ``abi_decode``. The encoders here are
written by hand (struct packing), because they run for every touched record of every batch;
a test pins them to ``eth_abi.encode`` and golden vectors pin the bytes.

Keys: each record also has a ``LeafKey`` (kind first, then its identity) that names its slot in
the commitment's slot map and sorts records of the same batch deterministically.

Invariants: a leaf is a pure function of its record; equal records give equal bytes; every
field fits its ABI type (enforced by ``int.to_bytes``/``struct``, which raise rather than
truncate).
"""

from __future__ import annotations

import struct

from rollbook.execution.state import Order, PendingWithdrawal, State, Subaccount

__all__ = [
    "LEAF_GLOBALS",
    "LEAF_INDEX_PRICE",
    "LEAF_LIQUIDATION",
    "LEAF_MARKET",
    "LEAF_ORDER",
    "LEAF_SUBACCOUNT",
    "LEAF_WITHDRAWAL",
    "STATE_ENCODING_VERSION",
    "LeafKey",
    "globals_leaf",
    "index_price_leaf",
    "liquidation_leaf",
    "market_leaf",
    "order_leaf",
    "subaccount_leaf",
    "withdrawal_leaf",
]

STATE_ENCODING_VERSION = 1

LEAF_GLOBALS = 1
LEAF_INDEX_PRICE = 2
LEAF_MARKET = 3
LEAF_SUBACCOUNT = 4
LEAF_ORDER = 5
LEAF_WITHDRAWAL = 6
LEAF_LIQUIDATION = 7

LeafKey = tuple[int, ...] | tuple[int, bytes, int] | tuple[int, bytes, int, int]

WORD_BYTES = 32
_SUBACCOUNT_HEAD_WORDS = 5  # kind, owner, number, offset of collaterals, offset of positions
_COLLATERAL_WORDS = 2
_POSITION_WORDS = 6

# Static leaves whose fields are all unsigned and below 2**64 pack in one call: each word is 24
# zero bytes and a u64 (an address word is 12 zero bytes and the 20 address bytes).
_U64 = "24xQ"
_ADDRESS = "12x20s"
_ORDER = struct.Struct(">" + _U64 * 3 + _ADDRESS + _U64 * 7)
_WITHDRAWAL = struct.Struct(">" + _U64 * 2 + _ADDRESS + _U64 * 3)
_LIQUIDATION = struct.Struct(">" + _U64 * 2 + _ADDRESS + _U64 * 2)


_u64_word = struct.Struct(">24xQ").pack  # one word holding a value below 2**64
_ADDRESS_PAD = bytes(12)
_SUBACCOUNT_KIND_WORD = _u64_word(LEAF_SUBACCOUNT)
_COLLATERALS_OFFSET = _SUBACCOUNT_HEAD_WORDS * WORD_BYTES
_COLLATERALS_OFFSET_WORD = _u64_word(_COLLATERALS_OFFSET)


def _uint(value: int) -> bytes:
    return value.to_bytes(WORD_BYTES, "big")


def _int(value: int) -> bytes:
    return value.to_bytes(WORD_BYTES, "big", signed=True)


def globals_leaf(state: State) -> bytes:
    """Counters and totals of the whole venue (slot 0)."""
    return b"".join((
        _uint(LEAF_GLOBALS), _uint(STATE_ENCODING_VERSION), _uint(state.batch_index),
        _uint(state.timestamp_ms), _uint(state.oracle_timestamp_ms),
        _int(state.fee_pool_quantums), _uint(state.deposits_quantums_total),
        _uint(state.withdrawals_quantums_total), _uint(state.next_deposit_id - 1),
        _uint(state.next_forced_id - 1), _uint(state.next_order_id),
        _uint(state.next_withdrawal_id), _uint(state.next_liquidation_seq),
    ))


def index_price_leaf(index_id: int, price_quantums: int) -> bytes:
    return _uint(LEAF_INDEX_PRICE) + _uint(index_id) + _uint(price_quantums)


def market_leaf(state: State, market_id: int) -> bytes:
    """Oracle price, open interest and funding state of one market, and the config fields the
    contract needs to value a position (lot and tick size)."""
    market = state.markets[market_id]
    config = market.config
    return b"".join((
        _uint(LEAF_MARKET), _uint(market_id), _uint(config.kind), _uint(config.index_id),
        _uint(market.index_price_quantums), _uint(config.lot_size_nanounits),
        _uint(config.tick_size_quantums), _uint(market.open_interest_lots),
        _int(market.cumulative_funding_ppm), _int(market.premium_sum_ppm),
        _uint(market.premium_sample_count), _uint(market.last_sample_ms),
        _int(market.last_funding_ms),
    ))


def subaccount_leaf(sub: Subaccount) -> bytes:
    """Owner, number, each group's collateral and every non-empty position record.

    ``collaterals`` lists the cross group (0) then isolated groups by market id; ``positions``
    lists records by (group, market id). Empty records (no size, no open orders) are left out,
    so a record the engine keeps only transiently never changes the root.
    """
    isolated = sub.isolated
    groups = [sub.cross] if not isolated else [sub.cross, *(isolated[m] for m in sorted(isolated))]
    collaterals: list[bytes] = []
    positions: list[bytes] = []
    for group in groups:
        group_word = _u64_word(group.isolated_market_id)
        collaterals.append(group_word + _int(group.collateral_quantums))
        if not group.positions:
            continue
        for market_id in sorted(group.positions):
            p = group.positions[market_id]
            if p.is_empty():
                continue
            positions.append(b"".join((
                group_word, _u64_word(market_id), _int(p.size_lots),
                _int(p.entry_notional_quantums), _u64_word(p.open_bid_lots),
                _u64_word(p.open_ask_lots),
            )))
    positions_offset = _COLLATERALS_OFFSET + WORD_BYTES * (
        1 + _COLLATERAL_WORDS * len(collaterals))
    return b"".join((
        _SUBACCOUNT_KIND_WORD, _ADDRESS_PAD, sub.owner, _u64_word(sub.number),
        _COLLATERALS_OFFSET_WORD, _u64_word(positions_offset),
        _u64_word(len(collaterals)), *collaterals,
        _u64_word(len(positions)), *positions,
    ))


def order_leaf(order: Order) -> bytes:
    """A resting order; within a price level, priority is ascending order id."""
    return _ORDER.pack(LEAF_ORDER, order.order_id, order.market_id, order.subaccount.owner,
                       order.subaccount.number, order.is_buy, order.price_ticks,
                       order.size_lots, order.client_order_id, order.post_only,
                       order.self_trade)


def withdrawal_leaf(withdrawal: PendingWithdrawal) -> bytes:
    """What the owner claims on the settlement contract against a final root."""
    return _WITHDRAWAL.pack(LEAF_WITHDRAWAL, withdrawal.withdrawal_id, withdrawal.owner,
                            withdrawal.subaccount, withdrawal.amount_quantums,
                            withdrawal.batch_index)


def liquidation_leaf(seq: int, owner: bytes, number: int, group_id: int) -> bytes:
    """A margin group waiting in the liquidation queue; the queue is ordered by ``seq``."""
    return _LIQUIDATION.pack(LEAF_LIQUIDATION, seq, owner, number, group_id)

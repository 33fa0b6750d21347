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
from typing import Final

from rollbook.execution.options.smile import SviSmile
from rollbook.execution.state import (
    MarketState,
    OptionExpiry,
    Order,
    PendingWithdrawal,
    QuoteLadder,
    State,
    Subaccount,
)

__all__ = [
    "LEAF_GLOBALS",
    "LEAF_INDEX_PRICE",
    "LEAF_LIQUIDATION",
    "LEAF_MARKET",
    "LEAF_OPTION_EXPIRY",
    "LEAF_OPTION_MARKET",
    "LEAF_ORDER",
    "LEAF_PORTFOLIO_MARGIN",
    "LEAF_QUOTES",
    "LEAF_SUBACCOUNT",
    "LEAF_VOLATILITY",
    "LEAF_WITHDRAWAL",
    "STATE_ENCODING_VERSION",
    "LeafKey",
    "globals_leaf",
    "index_price_leaf",
    "liquidation_leaf",
    "market_leaf",
    "option_expiry_leaf",
    "option_market_leaf",
    "order_leaf",
    "portfolio_margin_leaf",
    "quotes_leaf",
    "subaccount_leaf",
    "volatility_leaf",
    "withdrawal_leaf",
]

# Final: the compiled build (mypyc) inlines them instead of looking each up in the module's
# globals per use (per record in ``changes``)
STATE_ENCODING_VERSION: Final = 1

LEAF_GLOBALS: Final = 1
LEAF_INDEX_PRICE: Final = 2
LEAF_MARKET: Final = 3
LEAF_SUBACCOUNT: Final = 4
LEAF_ORDER: Final = 5
LEAF_WITHDRAWAL: Final = 6
LEAF_LIQUIDATION: Final = 7
LEAF_OPTION_MARKET: Final = 8
LEAF_VOLATILITY: Final = 9
LEAF_OPTION_EXPIRY: Final = 10
LEAF_PORTFOLIO_MARGIN: Final = 11
LEAF_QUOTES: Final = 12

LeafKey = tuple[int, ...] | tuple[int, bytes, int] | tuple[int, bytes, int, int]

WORD_BYTES: Final = 32
_SUBACCOUNT_HEAD_WORDS: Final = 5  # kind, owner, number, offset of collaterals, offset of positions
_COLLATERAL_WORDS: Final = 2
_POSITION_WORDS: Final = 6

# Static leaves whose fields are all unsigned and below 2**64 pack in one call: each word is 24
# zero bytes and a u64 (an address word is 12 zero bytes and the 20 address bytes).
_U64 = "24xQ"
_ADDRESS = "12x20s"
# their bound ``pack``s: compiled, ``_ORDER.pack(...)`` looks the method up on every call
_ORDER_PACK: Final = struct.Struct(">" + _U64 * 3 + _ADDRESS + _U64 * 7).pack
_WITHDRAWAL_PACK: Final = struct.Struct(">" + _U64 * 2 + _ADDRESS + _U64 * 3).pack
_LIQUIDATION_PACK: Final = struct.Struct(">" + _U64 * 2 + _ADDRESS + _U64 * 2).pack


_u64_word: Final = struct.Struct(">24xQ").pack  # one word holding a value below 2**64
_ADDRESS_PAD: Final = bytes(12)
_COLLATERALS_OFFSET: Final = _SUBACCOUNT_HEAD_WORDS * WORD_BYTES
# kind, owner, number, the two array offsets, and the collaterals' length
_SUBACCOUNT_HEAD_PACK: Final = struct.Struct(">" + _U64 + _ADDRESS + _U64 * 4).pack
_COLLATERAL_PACK: Final = struct.Struct(">" + _U64 + "32s").pack  # group, signed collateral
_POSITION_PACK: Final = struct.Struct(">" + _U64 * 2 + "32s32s" + _U64 * 2).pack
assert struct.calcsize(">" + _U64 * 2 + "32s32s" + _U64 * 2) == _POSITION_WORDS * WORD_BYTES
# The same records when their signed values fit an int64, as they do on any live venue: an
# int256 word of such a value is 24 sign bytes and the value's own two's-complement int64
# ("24s" + "q"), so the record packs in one call with no int.to_bytes per signed field. Larger
# values take the ``_int`` words above; both give the same bytes (tested against eth_abi).
# The bound is 2**62 rather than 2**63: the compiled build holds ints below 2**62 in magnitude
# unboxed, and a comparison with a constant beyond that range takes its slow path every time.
_FAST_BOUND: Final = (1 << 62) - 1  # fast path: -_FAST_BOUND <= value <= _FAST_BOUND
_POSITIVE_SIGN: Final = bytes(24)
_NEGATIVE_SIGN: Final = b"\xff" * 24
_COLLATERAL_PACK_64: Final = struct.Struct(">" + _U64 + "24sq").pack
_POSITION_PACK_64: Final = struct.Struct(">" + _U64 * 2 + "24sq24sq" + _U64 * 2).pack
assert struct.calcsize(">" + _U64 * 2 + "24sq24sq" + _U64 * 2) == _POSITION_WORDS * WORD_BYTES


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
    """Mark price, open interest and funding state of one market, and the config fields the
    contract needs to value a position (lot and tick size). The mark is the oracle index for a
    perpetual and the Black-76 mark for an option."""
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
    so a record the engine keeps only transiently never changes the root. Each tuple is packed
    in one ``struct`` call: this runs for every touched account of every batch.
    """
    isolated = sub.isolated
    groups = [sub.cross] if not isolated else [sub.cross, *(isolated[m] for m in sorted(isolated))]
    parts = [b""]  # the head, filled in once the collaterals are counted
    positions: list[bytes] = []
    pack_position = _POSITION_PACK
    for group in groups:
        group_id = group.isolated_market_id
        collateral = group.collateral_quantums
        if -_FAST_BOUND <= collateral <= _FAST_BOUND:
            parts.append(_COLLATERAL_PACK_64(
                group_id, _NEGATIVE_SIGN if collateral < 0 else _POSITIVE_SIGN, collateral))
        else:
            parts.append(_COLLATERAL_PACK(group_id, _int(collateral)))
        if not group.positions:
            continue
        for market_id in sorted(group.positions):
            p = group.positions[market_id]
            if p.is_empty():
                continue
            size = p.size_lots
            notional = p.entry_notional_quantums
            if -_FAST_BOUND <= size <= _FAST_BOUND and -_FAST_BOUND <= notional <= _FAST_BOUND:
                positions.append(_POSITION_PACK_64(
                    group_id, market_id, _NEGATIVE_SIGN if size < 0 else _POSITIVE_SIGN, size,
                    _NEGATIVE_SIGN if notional < 0 else _POSITIVE_SIGN, notional,
                    p.open_bid_lots, p.open_ask_lots))
            else:
                positions.append(pack_position(group_id, market_id, _int(size), _int(notional),
                                               p.open_bid_lots, p.open_ask_lots))
    collaterals = len(groups)
    positions_offset = _COLLATERALS_OFFSET + WORD_BYTES * (1 + _COLLATERAL_WORDS * collaterals)
    parts[0] = _SUBACCOUNT_HEAD_PACK(LEAF_SUBACCOUNT, sub.owner, sub.number, _COLLATERALS_OFFSET,
                                   positions_offset, collaterals)
    parts.append(_u64_word(len(positions)))
    parts.extend(positions)
    return b"".join(parts)


def order_leaf(order: Order) -> bytes:
    """A resting order; within a price level, priority is ascending order id."""
    return _ORDER_PACK(LEAF_ORDER, order.order_id, order.market_id, order.subaccount.owner,
                       order.subaccount.number, order.is_buy, order.price_ticks,
                       order.size_lots, order.client_order_id, order.post_only,
                       order.self_trade)


def withdrawal_leaf(withdrawal: PendingWithdrawal) -> bytes:
    """What the owner claims on the settlement contract against a final root."""
    return _WITHDRAWAL_PACK(LEAF_WITHDRAWAL, withdrawal.withdrawal_id, withdrawal.owner,
                            withdrawal.subaccount, withdrawal.amount_quantums,
                            withdrawal.batch_index)


def liquidation_leaf(seq: int, owner: bytes, number: int, group_id: int) -> bytes:
    """A margin group waiting in the liquidation queue; the queue is ordered by ``seq``."""
    return _LIQUIDATION_PACK(LEAF_LIQUIDATION, seq, owner, number, group_id)


# --- options ---------------------------------------------------------------------------------


def option_market_leaf(market: MarketState) -> bytes:
    """An option market's terms: which index, expiry, strike and type its mark refers to."""
    option = market.option
    assert option is not None
    spec = option.spec
    return b"".join((
        _uint(LEAF_OPTION_MARKET), _uint(market.config.market_id), _uint(spec.index_id),
        _uint(spec.expiry_ms), _uint(spec.strike_quantums), _uint(spec.option_type),
    ))


def volatility_leaf(smile: SviSmile) -> bytes:
    """The oracle's SVI slice for one (index, expiry), as signed (observed at ``observed_ms``)."""
    return b"".join((
        _uint(LEAF_VOLATILITY), _uint(smile.index_id), _uint(smile.expiry_ms),
        _uint(smile.observed_ms), _int(smile.a_wad), _uint(smile.b_wad), _int(smile.rho_wad),
        _int(smile.m_wad), _uint(smile.sigma_svi_wad),
    ))


def option_expiry_leaf(expiry: OptionExpiry) -> bytes:
    """Settlement state of one (index, expiry): status (0 listed, 1 closed, 2 settled), the
    window, the sample accumulator (last sample time, -1 before the first, and price; weighted
    sum over the window in quantums x ms; covered ms) and the settlement price (0 until set)."""
    return b"".join((
        _uint(LEAF_OPTION_EXPIRY), _uint(expiry.index_id), _uint(expiry.expiry_ms),
        _uint(expiry.status), _uint(expiry.window_ms), _uint(expiry.sample_count),
        _int(expiry.last_sample_ms), _uint(expiry.last_sample_price_quantums),
        _uint(expiry.weighted_quantums_ms), _uint(expiry.covered_ms),
        _uint(expiry.settlement_price_quantums),
    ))


def portfolio_margin_leaf(owner: bytes, number: int) -> bytes:
    """A subaccount whose cross group uses portfolio margin (absent: standard margin)."""
    return _uint(LEAF_PORTFOLIO_MARGIN) + _ADDRESS_PAD + owner + _uint(number) + _uint(1)


_QUOTES_HEAD_WORDS = 14


def quotes_leaf(ladder: QuoteLadder) -> bytes:
    """A market maker's quote ladder and protection on one index.

    ``(kind, owner, number, index, enabled, window_ms, frozen_ms, quantity_limit, delta_limit,
    vega_limit, frozen_until_ms (int256; -1 not frozen, -2 until reset), last_fill_ms,
    fills (uint256 timestamp_ms, int256 quantity, int256 delta, int256 vega)[],
    quote_order_ids uint256[])``; limits are 0 where unset.
    """
    owner, number, index_id = ladder.key
    window = ladder.mmp
    fills: tuple[tuple[int, int, int, int], ...] = ()
    if window is None:
        config_words = [_uint(0)] * 6
        frozen_until, last_ms = -1, 0
    else:
        config = window.config
        config_words = [
            _uint(1), _uint(config.window_ms), _uint(config.frozen_ms),
            _uint(config.quantity_limit_nanounits or 0),
            _uint(config.delta_limit_nanounits or 0), _uint(config.vega_limit_quantums or 0)]
        frozen_until, last_ms, fills = window.state()
    fills_words = [_uint(len(fills))]
    for timestamp_ms, quantity, delta, vega in fills:
        fills_words.extend((_uint(timestamp_ms), _int(quantity), _int(delta), _int(vega)))
    ids_words = [_uint(len(ladder.quote_order_ids))]
    ids_words.extend(_uint(order_id) for order_id in ladder.quote_order_ids)
    fills_offset = _QUOTES_HEAD_WORDS * WORD_BYTES
    ids_offset = fills_offset + WORD_BYTES * len(fills_words)
    return b"".join((
        _uint(LEAF_QUOTES), _ADDRESS_PAD, owner, _uint(number), _uint(index_id), *config_words,
        _int(frozen_until), _uint(last_ms), _uint(fills_offset), _uint(ids_offset),
        *fills_words, *ids_words,
    ))

"""Canonical, versioned binary encoding of transactions and batches.

One encoding, one hash: every field has a fixed width and big-endian byte order, so a value has
exactly one encoding and decoding is strict (wrong version, unknown tag, out-of-range field or
trailing bytes are errors). Layouts are pinned by golden vectors in the tests.

Transaction: ``version (u8) | tag (u8) | fields``. Addresses are 20 bytes; ids, prices and
sizes are u64; amounts are u64 (signed i64 where they can be negative); oracle prices and option
strikes u128; SVI parameters 16 bytes each (two's complement for ``a``, ``rho`` and ``m``);
signatures are 65 bytes, preceded by a u8 count; a mass quote's quotes are preceded by a u8
count.

Layouts after version and tag (big-endian):
``ListOption``: market u16, index u32, expiry_ms u64, strike u128, type u8;
``DelistOption``: market u16; ``ExpireOptions``: index u32, expiry_ms u64;
``VolatilityUpdate``: timestamp_ms u64, count u16, count x (index u32, expiry_ms u64, a i128,
b u128, rho i128, m i128, s u128), signature count u8, signatures;
``SetPortfolioMargin``: owner, subaccount u16, enabled u8;
``SetMmp``: owner, subaccount u16, index u32, window_ms u32, frozen_ms u32, quantity limit u64,
delta limit u64, vega limit u64;
``MassQuote``: owner, subaccount u16, index u32, count u8, count x (market u16, side u8,
price u64, size u64).

Batch: ``b"RBB" | version (u8) | index (u64) | timestamp_ms (u64) | previous_root (32) |
count (u32) | count x (length (u32) | transaction)``.

The state's encoding is its Merkle leaves (``rollbook.commitment.leaves``): ABI words, so the
settlement contract can decode the leaves it must check.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any, Final, TypeVar

from rollbook.execution.options.protection import MASS_QUOTE_QUOTES_MAX
from rollbook.execution.options.volatility import VOLATILITY_SMILES_MAX
from rollbook.execution.oracle import ORACLE_PRICES_MAX, ORACLE_SIGNATURES_MAX
from rollbook.execution.txs import (
    Batch,
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    DelistOption,
    Deposit,
    ExpireOptions,
    ForcedWithdrawal,
    FundingTick,
    ListOption,
    MassQuote,
    ModifyOrder,
    MoveIsolatedMargin,
    OptionType,
    OraclePrice,
    OracleUpdate,
    OrderType,
    PlaceOrder,
    ProcessLiquidations,
    Quote,
    SelfTradePrevention,
    SetMarginMode,
    SetMmp,
    SetPortfolioMargin,
    Side,
    SviParameters,
    TimeInForce,
    Transaction,
    Transfer,
    VolatilityUpdate,
    Withdraw,
)

__all__ = [
    "ENCODING_VERSION",
    "DecodeError",
    "decode_batch",
    "decode_transaction",
    "encode_batch",
    "encode_transaction",
    "enum_members",
]

ENCODING_VERSION: Final = 1
BATCH_MAGIC: Final = b"RBB"
TRANSACTIONS_PER_BATCH_MAX: Final = 1 << 20
# fits the largest oracle update the STF accepts (checked below)
TRANSACTION_BYTES_MAX: Final = 8192
SIGNATURE_BYTES: Final = 65


def _oracle_bytes_max() -> int:
    return 2 + 8 + 2 + ORACLE_PRICES_MAX * 20 + 1 + ORACLE_SIGNATURES_MAX * SIGNATURE_BYTES


assert _oracle_bytes_max() <= TRANSACTION_BYTES_MAX, "every valid oracle update must encode"


def _volatility_bytes_max() -> int:
    return 2 + 8 + 2 + VOLATILITY_SMILES_MAX * 92 + 1 + ORACLE_SIGNATURES_MAX * SIGNATURE_BYTES


assert _volatility_bytes_max() <= TRANSACTION_BYTES_MAX, "every valid smile update must encode"
assert MASS_QUOTE_QUOTES_MAX <= 255, "a mass quote's count is one byte"


class DecodeError(ValueError):
    """Bytes that are not a canonical encoding."""


# tag -> (type, struct layout after version and tag)
_TAG_DEPOSIT: Final = 1
_TAG_WITHDRAW: Final = 2
_TAG_TRANSFER: Final = 3
_TAG_PLACE: Final = 4
_TAG_CANCEL: Final = 5
_TAG_CANCEL_CLIENT: Final = 6
_TAG_CANCEL_ALL: Final = 7
_TAG_MODIFY: Final = 8
_TAG_ORACLE: Final = 9
_TAG_FUNDING: Final = 10
_TAG_LIQUIDATIONS: Final = 11
_TAG_MARGIN_MODE: Final = 12
_TAG_MOVE_MARGIN: Final = 13
_TAG_FORCED_WITHDRAWAL: Final = 14
_TAG_LIST_OPTION: Final = 15
_TAG_DELIST_OPTION: Final = 16
_TAG_VOLATILITY: Final = 17
_TAG_EXPIRE_OPTIONS: Final = 18
_TAG_PORTFOLIO_MARGIN: Final = 19
_TAG_SET_MMP: Final = 20
_TAG_MASS_QUOTE: Final = 21

_HEADER: Final = struct.Struct(">BB")
_DEPOSIT: Final = struct.Struct(">Q20sHQ")
_WITHDRAW: Final = struct.Struct(">20sHQ")
_TRANSFER: Final = struct.Struct(">20sH20sHQ")
_PLACE: Final = struct.Struct(">20sHHBQQBBBQB")  # bools are u8 0/1, checked on decode
_CANCEL: Final = struct.Struct(">20sHQ")
_CANCEL_CLIENT: Final = struct.Struct(">20sHQ")
_CANCEL_ALL: Final = struct.Struct(">20sHH")
_MODIFY: Final = struct.Struct(">20sHQQQ")
_ORACLE_HEAD: Final = struct.Struct(">QH")
_ORACLE_PRICE: Final = struct.Struct(">I16s")
_MARGIN_MODE: Final = struct.Struct(">20sHHB")
_MOVE_MARGIN: Final = struct.Struct(">20sHHq")
_FORCED_WITHDRAWAL: Final = struct.Struct(">Q20sHQ")
_LIST_OPTION: Final = struct.Struct(">HIQ16sB")
_DELIST_OPTION: Final = struct.Struct(">H")
_VOLATILITY_HEAD: Final = struct.Struct(">QH")
_SMILE: Final = struct.Struct(">IQ16s16s16s16s16s")
_EXPIRE_OPTIONS: Final = struct.Struct(">IQ")
_PORTFOLIO_MARGIN: Final = struct.Struct(">20sHB")
_SET_MMP: Final = struct.Struct(">20sHIIIQQQ")
_MASS_QUOTE_HEAD: Final = struct.Struct(">20sHIB")
_QUOTE: Final = struct.Struct(">HBQQ")
_BATCH_HEAD: Final = struct.Struct(">3sBQQ32sI")
_LENGTH: Final = struct.Struct(">I")
# read once (every name above is ``Final``: the compiled build reads a ``Final`` from a C static
# or inlines it, and any other module global through a dictionary lookup at every use)
_HEADER_BYTES: Final = _HEADER.size
_unpack_place: Final = _PLACE.unpack_from


def _head(tag: int) -> bytes:
    return _HEADER.pack(ENCODING_VERSION, tag)


def encode_transaction(tx: Transaction) -> bytes:
    """The canonical bytes of ``tx``; raises ``struct.error``/``ValueError`` if out of range."""
    if isinstance(tx, PlaceOrder):
        return _head(_TAG_PLACE) + _PLACE.pack(
            tx.owner, tx.subaccount, tx.market_id, tx.side, tx.price_ticks, tx.size_lots,
            tx.order_type, tx.time_in_force, tx.reduce_only, tx.client_order_id, tx.self_trade)
    if isinstance(tx, CancelOrder):
        return _head(_TAG_CANCEL) + _CANCEL.pack(tx.owner, tx.subaccount, tx.order_id)
    if isinstance(tx, ModifyOrder):
        return _head(_TAG_MODIFY) + _MODIFY.pack(tx.owner, tx.subaccount, tx.order_id,
                                                 tx.price_ticks, tx.size_lots)
    if isinstance(tx, Deposit):
        return _head(_TAG_DEPOSIT) + _DEPOSIT.pack(tx.deposit_id, tx.owner, tx.subaccount,
                                                   tx.amount_quantums)
    if isinstance(tx, Withdraw):
        return _head(_TAG_WITHDRAW) + _WITHDRAW.pack(tx.owner, tx.subaccount, tx.amount_quantums)
    if isinstance(tx, Transfer):
        return _head(_TAG_TRANSFER) + _TRANSFER.pack(tx.owner, tx.subaccount, tx.to_owner,
                                                     tx.to_subaccount, tx.amount_quantums)
    if isinstance(tx, CancelOrderByClientId):
        return _head(_TAG_CANCEL_CLIENT) + _CANCEL_CLIENT.pack(tx.owner, tx.subaccount,
                                                               tx.client_order_id)
    if isinstance(tx, CancelAll):
        return _head(_TAG_CANCEL_ALL) + _CANCEL_ALL.pack(tx.owner, tx.subaccount, tx.market_id)
    if isinstance(tx, OracleUpdate):
        return _encode_oracle(tx)
    if isinstance(tx, FundingTick):
        return _head(_TAG_FUNDING)
    if isinstance(tx, ProcessLiquidations):
        return _head(_TAG_LIQUIDATIONS)
    if isinstance(tx, SetMarginMode):
        return _head(_TAG_MARGIN_MODE) + _MARGIN_MODE.pack(tx.owner, tx.subaccount,
                                                           tx.market_id, tx.isolated)
    if isinstance(tx, MoveIsolatedMargin):
        return _head(_TAG_MOVE_MARGIN) + _MOVE_MARGIN.pack(tx.owner, tx.subaccount,
                                                           tx.market_id, tx.amount_quantums)
    if isinstance(tx, ForcedWithdrawal):
        return _head(_TAG_FORCED_WITHDRAWAL) + _FORCED_WITHDRAWAL.pack(
            tx.request_id, tx.owner, tx.subaccount, tx.amount_quantums)
    return _encode_option_transaction(tx)


def _encode_option_transaction(tx: Transaction) -> bytes:
    if isinstance(tx, MassQuote):
        if len(tx.quotes) > 255:
            raise ValueError("a mass quote carries at most 255 quotes")
        return b"".join([
            _head(_TAG_MASS_QUOTE),
            _MASS_QUOTE_HEAD.pack(tx.owner, tx.subaccount, tx.index_id, len(tx.quotes)),
            *(_QUOTE.pack(q.market_id, q.side, q.price_ticks, q.size_lots) for q in tx.quotes)])
    if isinstance(tx, SetMmp):
        return _head(_TAG_SET_MMP) + _SET_MMP.pack(
            tx.owner, tx.subaccount, tx.index_id, tx.window_ms, tx.frozen_ms,
            tx.quantity_limit_nanounits, tx.delta_limit_nanounits, tx.vega_limit_quantums)
    if isinstance(tx, VolatilityUpdate):
        return _encode_volatility(tx)
    if isinstance(tx, ListOption):
        return _head(_TAG_LIST_OPTION) + _LIST_OPTION.pack(
            tx.market_id, tx.index_id, tx.expiry_ms, tx.strike_quantums.to_bytes(16, "big"),
            tx.option_type)
    if isinstance(tx, DelistOption):
        return _head(_TAG_DELIST_OPTION) + _DELIST_OPTION.pack(tx.market_id)
    if isinstance(tx, ExpireOptions):
        return _head(_TAG_EXPIRE_OPTIONS) + _EXPIRE_OPTIONS.pack(tx.index_id, tx.expiry_ms)
    if isinstance(tx, SetPortfolioMargin):
        return _head(_TAG_PORTFOLIO_MARGIN) + _PORTFOLIO_MARGIN.pack(tx.owner, tx.subaccount,
                                                                     tx.enabled)
    raise ValueError(f"not a transaction: {type(tx).__name__}")


def _encode_signatures(signatures: tuple[bytes, ...]) -> list[bytes]:
    if len(signatures) > 255 or any(len(s) != SIGNATURE_BYTES for s in signatures):
        raise ValueError("oracle signatures must be 65 bytes, at most 255 of them")
    return [bytes([len(signatures)]), *signatures]


def _encode_volatility(tx: VolatilityUpdate) -> bytes:
    parts = [_head(_TAG_VOLATILITY), _VOLATILITY_HEAD.pack(tx.timestamp_ms, len(tx.smiles))]
    parts.extend(_SMILE.pack(
        p.index_id, p.expiry_ms, p.a_wad.to_bytes(16, "big", signed=True),
        p.b_wad.to_bytes(16, "big"), p.rho_wad.to_bytes(16, "big", signed=True),
        p.m_wad.to_bytes(16, "big", signed=True), p.sigma_svi_wad.to_bytes(16, "big"))
        for p in tx.smiles)
    parts.extend(_encode_signatures(tx.signatures))
    encoded = b"".join(parts)
    if len(encoded) > TRANSACTION_BYTES_MAX:
        raise ValueError(f"volatility update encodes to {len(encoded)} > "
                         f"{TRANSACTION_BYTES_MAX} bytes")
    return encoded


def _encode_oracle(tx: OracleUpdate) -> bytes:
    if len(tx.signatures) > 255 or any(len(s) != SIGNATURE_BYTES for s in tx.signatures):
        raise ValueError("oracle signatures must be 65 bytes, at most 255 of them")
    parts = [_head(_TAG_ORACLE), _ORACLE_HEAD.pack(tx.timestamp_ms, len(tx.prices))]
    parts.extend(_ORACLE_PRICE.pack(p.index_id, p.price_quantums.to_bytes(16, "big"))
                 for p in tx.prices)
    parts.append(bytes([len(tx.signatures)]))
    parts.extend(tx.signatures)
    encoded = b"".join(parts)
    if len(encoded) > TRANSACTION_BYTES_MAX:  # decode_transaction would refuse it
        raise ValueError(f"oracle update encodes to {len(encoded)} > {TRANSACTION_BYTES_MAX} bytes")
    return encoded


def _unpack(layout: struct.Struct, data: bytes) -> tuple[Any, ...]:
    """Fields of a fixed layout; their Python types are fixed by the layout's format codes."""
    if len(data) != _HEADER_BYTES + layout.size:
        raise DecodeError(f"expected {_HEADER_BYTES + layout.size} bytes, got {len(data)}")
    return layout.unpack_from(data, _HEADER_BYTES)


_Enum = TypeVar("_Enum", bound=IntEnum)


def enum_members(kind: type[_Enum]) -> dict[int, _Enum]:
    """``value -> member`` for every value ``kind(value)`` accepts (aliases share their
    canonical member's value, so iterating the canonical members is enough).

    The decoders look enum fields up here instead of calling the constructor (which costs
    microseconds per field on the verifier's hot path); ``tests/sequencer`` checks that the
    table answers exactly as the constructor does, refusals included. No decoded enum may
    define ``_missing_``: the table could not answer for it.
    """
    own_classes = kind.__mro__[:kind.__mro__.index(IntEnum)]
    assert not any("_missing_" in vars(cls) for cls in own_classes), (
        f"{kind.__name__} defines _missing_")
    return {int(member): member for member in kind}


_SIDES: Final = enum_members(Side)
_ORDER_TYPES: Final = enum_members(OrderType)
_TIMES_IN_FORCE: Final = enum_members(TimeInForce)
_SELF_TRADE_PREVENTIONS: Final = enum_members(SelfTradePrevention)
_OPTION_TYPES: Final = enum_members(OptionType)


def _enum(kind: type[_Enum], members: dict[int, _Enum], value: int) -> _Enum:
    """The member of ``kind`` with ``value`` (``members`` is ``enum_members(kind)``)."""
    member = members.get(value)
    if member is None:
        raise DecodeError(f"invalid {kind.__name__}: {value}")
    return member


def _bool(value: int) -> bool:
    """A canonical bool is the byte 0 or 1 (struct's ``?`` would read any non-zero as True)."""
    if value != 0 and value != 1:
        raise DecodeError(f"invalid bool byte: {value}")
    return value == 1


def decode_transaction(data: bytes) -> Transaction:
    if len(data) < _HEADER_BYTES or len(data) > TRANSACTION_BYTES_MAX:
        raise DecodeError("transaction length out of range")
    # the header's two u8 (``_HEADER``), read by indexing: no struct call
    version = data[0]
    tag = data[1]
    if version != ENCODING_VERSION:
        raise DecodeError(f"unsupported encoding version {version}")
    if tag == _TAG_PLACE:  # most of a venue's traffic: no struct.error can escape it
        return _decode_place(data)
    try:
        return _decode_body(tag, data)
    except struct.error as error:
        raise DecodeError(str(error)) from error


_PLACE_BYTES: Final = _HEADER_BYTES + _PLACE.size


def _decode_place(data: bytes) -> PlaceOrder:
    """A ``PlaceOrder`` in one pass: the enum tables and the bool byte checked inline; a bad
    field is reported as ``_enum``/``_bool`` report it, the first in field order."""
    if len(data) != _PLACE_BYTES:
        raise DecodeError(f"expected {_PLACE_BYTES} bytes, got {len(data)}")
    (owner, sub, market, side, price, size, order_type, tif, reduce_only, cid,
     stp) = _unpack_place(data, _HEADER_BYTES)
    side_member = _SIDES.get(side)
    type_member = _ORDER_TYPES.get(order_type)
    tif_member = _TIMES_IN_FORCE.get(tif)
    stp_member = _SELF_TRADE_PREVENTIONS.get(stp)
    if (side_member is None or type_member is None or tif_member is None
            or stp_member is None or reduce_only > 1):
        _enum(Side, _SIDES, side)
        _enum(OrderType, _ORDER_TYPES, order_type)
        _enum(TimeInForce, _TIMES_IN_FORCE, tif)
        _bool(reduce_only)
        _enum(SelfTradePrevention, _SELF_TRADE_PREVENTIONS, stp)
        raise AssertionError("unreachable: one of the checks above raises")
    return PlaceOrder(owner, sub, market, side_member, price, size, type_member, tif_member,
                      reduce_only == 1, cid, stp_member)


def _decode_body(tag: int, data: bytes) -> Transaction:
    # cancels and modifies (the next most frequent) as positional calls, which the compiled
    # build makes native; a star-call goes through the generic call protocol
    if tag == _TAG_CANCEL:
        owner, sub, order_id = _unpack(_CANCEL, data)
        return CancelOrder(owner, sub, order_id)
    if tag == _TAG_MODIFY:
        owner, sub, order_id, price, size = _unpack(_MODIFY, data)
        return ModifyOrder(owner, sub, order_id, price, size)
    if tag == _TAG_DEPOSIT:
        return Deposit(*_unpack(_DEPOSIT, data))
    if tag == _TAG_WITHDRAW:
        return Withdraw(*_unpack(_WITHDRAW, data))
    if tag == _TAG_TRANSFER:
        return Transfer(*_unpack(_TRANSFER, data))
    if tag == _TAG_CANCEL_CLIENT:
        return CancelOrderByClientId(*_unpack(_CANCEL_CLIENT, data))
    if tag == _TAG_CANCEL_ALL:
        return CancelAll(*_unpack(_CANCEL_ALL, data))
    if tag == _TAG_ORACLE:
        return _decode_oracle(data)
    if tag == _TAG_FUNDING:
        _expect_length(data, _HEADER_BYTES)
        return FundingTick()
    if tag == _TAG_LIQUIDATIONS:
        _expect_length(data, _HEADER_BYTES)
        return ProcessLiquidations()
    if tag == _TAG_MARGIN_MODE:
        owner, sub, market, isolated = _unpack(_MARGIN_MODE, data)
        return SetMarginMode(owner, sub, market, _bool(isolated))
    if tag == _TAG_MOVE_MARGIN:
        return MoveIsolatedMargin(*_unpack(_MOVE_MARGIN, data))
    if tag == _TAG_FORCED_WITHDRAWAL:
        return ForcedWithdrawal(*_unpack(_FORCED_WITHDRAWAL, data))
    return _decode_option_body(tag, data)


def _decode_option_body(tag: int, data: bytes) -> Transaction:
    if tag == _TAG_MASS_QUOTE:
        return _decode_mass_quote(data)
    if tag == _TAG_SET_MMP:
        return SetMmp(*_unpack(_SET_MMP, data))
    if tag == _TAG_VOLATILITY:
        return _decode_volatility(data)
    if tag == _TAG_LIST_OPTION:
        market, index, expiry_ms, strike, option_type = _unpack(_LIST_OPTION, data)
        return ListOption(market, index, expiry_ms, int.from_bytes(strike, "big"),
                          _enum(OptionType, _OPTION_TYPES, option_type))
    if tag == _TAG_DELIST_OPTION:
        return DelistOption(*_unpack(_DELIST_OPTION, data))
    if tag == _TAG_EXPIRE_OPTIONS:
        return ExpireOptions(*_unpack(_EXPIRE_OPTIONS, data))
    if tag == _TAG_PORTFOLIO_MARGIN:
        owner, sub, enabled = _unpack(_PORTFOLIO_MARGIN, data)
        return SetPortfolioMargin(owner, sub, _bool(enabled))
    raise DecodeError(f"unknown transaction tag {tag}")


def _decode_mass_quote(data: bytes) -> MassQuote:
    offset = _HEADER_BYTES
    owner, sub, index_id, count = _MASS_QUOTE_HEAD.unpack_from(data, offset)
    offset += _MASS_QUOTE_HEAD.size
    _expect_length(data, offset + count * _QUOTE.size)
    quotes = []
    for _ in range(count):
        market, side, price, size = _QUOTE.unpack_from(data, offset)
        offset += _QUOTE.size
        quotes.append(Quote(market, _enum(Side, _SIDES, side), price, size))
    return MassQuote(owner, sub, index_id, tuple(quotes))


def _decode_signatures(data: bytes, offset: int) -> tuple[tuple[bytes, ...], int]:
    if offset >= len(data):
        raise DecodeError("missing signature count")
    signature_count = data[offset]
    offset += 1
    signatures = []
    for _ in range(signature_count):
        signature = data[offset:offset + SIGNATURE_BYTES]
        if len(signature) != SIGNATURE_BYTES:
            raise DecodeError("truncated signature")
        signatures.append(signature)
        offset += SIGNATURE_BYTES
    return tuple(signatures), offset


def _decode_volatility(data: bytes) -> VolatilityUpdate:
    offset = _HEADER_BYTES
    timestamp_ms, count = _VOLATILITY_HEAD.unpack_from(data, offset)
    offset += _VOLATILITY_HEAD.size
    smiles = []
    for _ in range(count):
        index_id, expiry_ms, a, b, rho, m, sigma = _SMILE.unpack_from(data, offset)
        offset += _SMILE.size
        smiles.append(SviParameters(
            index_id, expiry_ms, int.from_bytes(a, "big", signed=True), int.from_bytes(b, "big"),
            int.from_bytes(rho, "big", signed=True), int.from_bytes(m, "big", signed=True),
            int.from_bytes(sigma, "big")))
    signatures, offset = _decode_signatures(data, offset)
    _expect_length(data, offset)
    return VolatilityUpdate(timestamp_ms, tuple(smiles), signatures)


def _expect_length(data: bytes, length: int) -> None:
    if len(data) != length:
        raise DecodeError(f"expected {length} bytes, got {len(data)}")


def _decode_oracle(data: bytes) -> OracleUpdate:
    offset = _HEADER_BYTES
    timestamp_ms, count = _ORACLE_HEAD.unpack_from(data, offset)
    offset += _ORACLE_HEAD.size
    prices = []
    for _ in range(count):
        index_id, raw_price = _ORACLE_PRICE.unpack_from(data, offset)
        offset += _ORACLE_PRICE.size
        prices.append(OraclePrice(index_id, int.from_bytes(raw_price, "big")))
    if offset >= len(data):
        raise DecodeError("missing signature count")
    signature_count = data[offset]
    offset += 1
    signatures = []
    for _ in range(signature_count):
        signature = data[offset:offset + SIGNATURE_BYTES]
        if len(signature) != SIGNATURE_BYTES:
            raise DecodeError("truncated signature")
        signatures.append(signature)
        offset += SIGNATURE_BYTES
    _expect_length(data, offset)
    return OracleUpdate(timestamp_ms, tuple(prices), tuple(signatures))


def encode_batch(batch: Batch) -> bytes:
    if len(batch.previous_root) != 32:
        raise ValueError("previous root must be 32 bytes")
    parts = [_BATCH_HEAD.pack(BATCH_MAGIC, ENCODING_VERSION, batch.index, batch.timestamp_ms,
                              batch.previous_root, len(batch.transactions))]
    for tx in batch.transactions:
        encoded = encode_transaction(tx)
        parts.append(_LENGTH.pack(len(encoded)))
        parts.append(encoded)
    return b"".join(parts)


def decode_batch(data: bytes) -> Batch:
    if len(data) < _BATCH_HEAD.size:
        raise DecodeError("batch header truncated")
    magic, version, index, timestamp_ms, previous_root, count = _BATCH_HEAD.unpack_from(data)
    if magic != BATCH_MAGIC or version != ENCODING_VERSION:
        raise DecodeError("not a rollbook batch of a supported version")
    if count > TRANSACTIONS_PER_BATCH_MAX:
        raise DecodeError("too many transactions")
    offset = _BATCH_HEAD.size
    transactions = []
    for _ in range(count):
        if offset + _LENGTH.size > len(data):
            raise DecodeError("batch truncated")
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + length > len(data):
            raise DecodeError("batch truncated")
        transactions.append(decode_transaction(data[offset:offset + length]))
        offset += length
    if offset != len(data):
        raise DecodeError("trailing bytes after the last transaction")
    return Batch(index, timestamp_ms, previous_root, tuple(transactions))

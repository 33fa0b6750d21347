"""The decoders' fast paths answer exactly as the straightforward decoding they replace.

``rollbook.execution.encoding`` looks enum fields up in ``enum_members`` tables and decodes a
``PlaceOrder`` in one pass; ``decode_signed_transaction`` checks the action's type with a set.
Each is held here against a reference that uses the Enum constructors, field by field: the same
values, the same refusals, the same first-reported field and message.
"""

from __future__ import annotations

import struct
from enum import IntEnum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seq_helpers import DOMAIN, OWNER_KEY, T0_MS, any_action

from rollbook.execution.encoding import (
    DecodeError,
    decode_transaction,
    encode_transaction,
    enum_members,
)
from rollbook.execution.txs import (
    Deposit,
    OptionType,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from rollbook.sequencer import (
    AdmissionCode,
    AdmissionError,
    decode_signed_transaction,
    encode_signed_transaction,
    sign_action,
)

DECODED_ENUMS: tuple[type[IntEnum], ...] = (Side, OrderType, TimeInForce, SelfTradePrevention,
                                             OptionType)
BYTE_VALUES = range(256)  # every enum field is a u8 on the wire
PLACE_HEAD = bytes([1, 4])  # encoding version 1, tag PlaceOrder
PLACE = struct.Struct(">20sHHBQQBBBQB")


@pytest.mark.parametrize("kind", DECODED_ENUMS)
def test_enum_tables_answer_as_the_constructor(kind: type[IntEnum]) -> None:
    table = enum_members(kind)
    for value in BYTE_VALUES:
        try:
            expected = kind(value)
        except ValueError:
            assert value not in table
        else:
            assert table[value] is expected


def test_an_enum_with_its_own_missing_hook_cannot_get_a_table() -> None:
    class Lenient(IntEnum):
        ONE = 1

        @classmethod
        def _missing_(cls, value: object) -> Lenient:
            return cls.ONE

    with pytest.raises(AssertionError):
        enum_members(Lenient)


def _reference_place(body: bytes) -> PlaceOrder:
    """The decoding before the fast path: constructors, in field order."""
    if len(body) != len(PLACE_HEAD) + PLACE.size:
        raise DecodeError(f"expected {len(PLACE_HEAD) + PLACE.size} bytes, got {len(body)}")
    (owner, sub, market, side, price, size, order_type, tif, reduce_only, cid,
     stp) = PLACE.unpack_from(body, len(PLACE_HEAD))

    def enum(kind: type[IntEnum], value: int) -> IntEnum:
        try:
            return kind(value)
        except ValueError as error:
            raise DecodeError(f"invalid {kind.__name__}: {value}") from error

    def boolean(value: int) -> bool:
        if value not in (0, 1):
            raise DecodeError(f"invalid bool byte: {value}")
        return value == 1

    return PlaceOrder(owner, sub, market, enum(Side, side), price, size,  # type: ignore[arg-type]
                      enum(OrderType, order_type), enum(TimeInForce, tif),  # type: ignore[arg-type]
                      boolean(reduce_only), cid,
                      enum(SelfTradePrevention, stp))  # type: ignore[arg-type]


def _outcome(decode: object, body: bytes) -> object:
    assert callable(decode)
    try:
        return decode(body)
    except DecodeError as error:
        return ("refused", str(error))


small_bytes = st.integers(0, 5)  # around the defined values of every PlaceOrder enum


@settings(max_examples=400)
@given(side=small_bytes, order_type=small_bytes, tif=small_bytes, reduce_only=small_bytes,
       stp=small_bytes, owner=st.binary(min_size=20, max_size=20),
       price=st.integers(0, (1 << 64) - 1))
def test_place_order_decodes_as_the_reference(side: int, order_type: int, tif: int,
                                              reduce_only: int, stp: int, owner: bytes,
                                              price: int) -> None:
    body = PLACE_HEAD + PLACE.pack(owner, 3, 1, side, price, 7, order_type, tif, reduce_only, 9,
                                   stp)
    fast, reference = _outcome(decode_transaction, body), _outcome(_reference_place, body)
    assert fast == reference
    if isinstance(fast, PlaceOrder):
        assert type(fast.side) is Side and type(fast.reduce_only) is bool
        assert encode_transaction(fast) == body


@pytest.mark.parametrize("length_change", [-1, 1])
def test_a_place_order_of_the_wrong_length_is_refused(length_change: int) -> None:
    body = encode_transaction(PlaceOrder(bytes(20), 0, 1, Side.BUY, 5, 6))
    bad = body[:length_change] if length_change < 0 else body + bytes(length_change)
    assert _outcome(decode_transaction, bad) == _outcome(_reference_place, bad)


def test_the_first_bad_field_is_the_one_reported() -> None:
    body = PLACE_HEAD + PLACE.pack(bytes(20), 0, 1, 1, 5, 6, 9, 9, 7, 0, 9)
    with pytest.raises(DecodeError, match="invalid OrderType: 9"):
        decode_transaction(body)
    body = PLACE_HEAD + PLACE.pack(bytes(20), 0, 1, 1, 5, 6, 1, 1, 7, 0, 9)
    with pytest.raises(DecodeError, match="invalid bool byte: 7"):
        decode_transaction(body)


@settings(max_examples=200)
@given(action=any_action, nonce_ms=st.integers(T0_MS, T0_MS + 10**9))
def test_signed_transactions_round_trip_through_the_fast_decoder(action: object,
                                                                 nonce_ms: int) -> None:
    signed = sign_action(OWNER_KEY, DOMAIN, action, nonce_ms)  # type: ignore[arg-type]
    encoded = encode_signed_transaction(signed)
    decoded = decode_signed_transaction(encoded)
    assert decoded == signed and type(decoded.action) is type(signed.action)


def test_a_system_transaction_is_not_a_signed_action() -> None:
    signed = sign_action(OWNER_KEY, DOMAIN, PlaceOrder(bytes(20), 0, 1, Side.BUY, 5, 6), T0_MS)
    prefix = encode_signed_transaction(signed)[:75]
    with pytest.raises(AdmissionError) as refused:
        decode_signed_transaction(prefix + encode_transaction(Deposit(1, bytes(20), 0, 5)))
    assert refused.value.code is AdmissionCode.MALFORMED_ENCODING
    assert "Deposit is not a user action" in str(refused.value)

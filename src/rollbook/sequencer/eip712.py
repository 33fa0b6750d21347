"""EIP-712 typed data for every action a user signs, and its hand-computed signing digest.

A user (or an agent key acting for one) signs ``keccak256(0x19 0x01 || domainSeparator ||
hashStruct(action))``. The domain is ``EIP712Domain(string name, string version, uint256
chainId, address verifyingContract)`` with name ``"rollbook"``, version ``"1"``, the settlement
chain's id and the settlement contract's address, so a signature made for one venue, one chain
or one deployment recovers to an unrelated address anywhere else.

Primary types (each action's fields, then ``uint64 nonce``, a millisecond timestamp)::

    PlaceOrder(address owner,uint16 subaccount,uint16 marketId,uint8 side,uint64 priceTicks,
        uint64 sizeLots,uint8 orderType,uint8 timeInForce,bool reduceOnly,uint64 clientOrderId,
        uint8 selfTradePrevention,uint64 nonce)
    CancelOrder(address owner,uint16 subaccount,uint64 orderId,uint64 nonce)
    CancelOrderByClientId(address owner,uint16 subaccount,uint64 clientOrderId,uint64 nonce)
    CancelAll(address owner,uint16 subaccount,uint16 marketId,uint64 nonce)
    ModifyOrder(address owner,uint16 subaccount,uint64 orderId,uint64 priceTicks,
        uint64 sizeLots,uint64 nonce)
    Withdraw(address owner,uint16 subaccount,uint64 amountQuantums,uint64 nonce)
    Transfer(address owner,uint16 subaccount,address toOwner,uint16 toSubaccount,
        uint64 amountQuantums,uint64 nonce)
    SetMarginMode(address owner,uint16 subaccount,uint16 marketId,bool isolated,uint64 nonce)
    MoveIsolatedMargin(address owner,uint16 subaccount,uint16 marketId,int64 amountQuantums,
        uint64 nonce)
    RegisterAgent(address owner,bool allSubaccounts,uint16 subaccount,address agent,
        uint64 expiryMs,uint64 nonce)
    RevokeAgent(address owner,address agent,uint64 nonce)
    SetPortfolioMargin(address owner,uint16 subaccount,bool enabled,uint64 nonce)
    SetMmp(address owner,uint16 subaccount,uint32 indexId,uint32 windowMs,uint32 frozenMs,
        uint64 quantityLimitNanounits,uint64 deltaLimitNanounits,uint64 vegaLimitQuantums,
        uint64 nonce)
    MassQuote(address owner,uint16 subaccount,uint32 indexId,Quote[] quotes,uint64 nonce)
        Quote(uint16 marketId,uint8 side,uint64 priceTicks,uint64 sizeLots)

``MassQuote`` is the one type with a struct array: its ``encodeType`` is the primary type
followed by ``Quote(...)`` (EIP-712 appends referenced types sorted by name), and
``encodeData`` of ``quotes`` is ``keccak256(hashStruct(q0) || hashStruct(q1) || ...)``
(``keccak256("")`` for no quotes, the ladder pull). At most ``MASS_QUOTE_QUOTES_MAX`` quotes (the
STF's bound) are accepted, checked before anything is hashed, so a signer cannot make the node
hash an unbounded array.

Invariants:
- every field's EIP-712 type has exactly the width of its canonical binary encoding
  (``rollbook.execution.encoding``), so a value that signs also encodes, and back;
- a value outside its type (or an enum value the STF does not define, a bool that is not a
  ``bool``, an address that is not 20 bytes) is refused with ``FIELD_OUT_OF_RANGE`` before
  anything is hashed: one action has one digest;
- the digest equals ``eth_account.messages.encode_typed_data`` over ``typed_data(...)`` (a
  property test checks every type); the hand-computed path exists because the hot path cannot
  afford eth-account (~5k/s against coincurve's ~20k recoveries/s).

``RegisterAgent.subaccount`` is ``None`` for an agent of every subaccount; it signs as
``allSubaccounts = true, subaccount = 0`` so that each grant has one spelling.

Known gaps: arrays and nested structs only as ``MassQuote.quotes`` needs them (one level, one
element type); no other action uses them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from operator import attrgetter
from typing import Any

from rollbook.execution.crypto import keccak256
from rollbook.execution.options.protection import MASS_QUOTE_QUOTES_MAX
from rollbook.execution.pickling import register_frozen_classes
from rollbook.execution.txs import (
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    MassQuote,
    ModifyOrder,
    MoveIsolatedMargin,
    OrderType,
    PlaceOrder,
    Quote,
    SelfTradePrevention,
    SetMarginMode,
    SetMmp,
    SetPortfolioMargin,
    Side,
    TimeInForce,
    Transfer,
    Withdraw,
)
from rollbook.sequencer.errors import AdmissionCode, AdmissionError

__all__ = [
    "ADDRESS_BYTES",
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "MASS_QUOTE_QUOTES_MAX",
    "USER_ACTION_TYPES",
    "Eip712Domain",
    "RegisterAgent",
    "RevokeAgent",
    "UserAction",
    "check_fields",
    "digest_of_struct",
    "primary_type",
    "signing_digest",
    "struct_words",
    "type_string",
    "typed_data",
]

DOMAIN_NAME = "rollbook"
DOMAIN_VERSION = "1"
ADDRESS_BYTES = 20
CHAIN_ID_MAX = (1 << 256) - 1  # chainId is a uint256
_WORD_BYTES = 32
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_EIP191_TYPED_DATA_PREFIX = b"\x19\x01"


@dataclass(frozen=True, slots=True)
class RegisterAgent:
    """The owner lets ``agent`` trade for it until ``expiry_ms`` (batch time).

    ``subaccount`` None grants every subaccount of the owner. Re-registering an agent replaces
    its expiry and scope. Only the owner's own key may sign this.
    """

    owner: bytes
    agent: bytes
    expiry_ms: int
    subaccount: int | None = None


@dataclass(frozen=True, slots=True)
class RevokeAgent:
    """The owner withdraws ``agent``'s rights at once (idempotent). Only the owner signs this."""

    owner: bytes
    agent: bytes


UserAction = (
    PlaceOrder
    | CancelOrder
    | CancelOrderByClientId
    | CancelAll
    | ModifyOrder
    | Withdraw
    | Transfer
    | SetMarginMode
    | MoveIsolatedMargin
    | RegisterAgent
    | RevokeAgent
    | SetPortfolioMargin
    | SetMmp
    | MassQuote
)


def _word(value: int) -> bytes:
    return value.to_bytes(_WORD_BYTES, "big")


@dataclass(frozen=True, slots=True)
class Eip712Domain:
    """The venue's signing domain; ``separator`` is its precomputed ``hashStruct``."""

    chain_id: int
    verifying_contract: bytes
    separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.chain_id <= CHAIN_ID_MAX:
            raise ValueError(f"chain id out of range: {self.chain_id}")
        if len(self.verifying_contract) != ADDRESS_BYTES:
            raise ValueError("verifying contract must be a 20-byte address")
        type_hash = keccak256(b"EIP712Domain(string name,string version,uint256 chainId,"
                              b"address verifyingContract)")
        separator = keccak256(type_hash + keccak256(DOMAIN_NAME.encode())
                              + keccak256(DOMAIN_VERSION.encode()) + _word(self.chain_id)
                              + bytes(12) + self.verifying_contract)
        object.__setattr__(self, "separator", separator)

    def as_typed_data(self) -> dict[str, Any]:
        return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": self.chain_id,
                "verifyingContract": "0x" + self.verifying_contract.hex()}


# --- type specifications ------------------------------------------------------------------------

# one 32-byte word per field; the struct codes range-check every integer to its EIP-712 width
_WORD_LAYOUT = {
    "address": "12x20s",
    "bool": "31xB",
    "uint8": "31xB",
    "uint16": "30xH",
    "uint32": "28xI",
    "uint64": "24xQ",
    "int64": "32s",  # sign-extended by hand: struct cannot pad with 0xff
    "Quote[]": "32s",  # keccak256 of the elements' hashStruct, computed by hand
}


@dataclass(frozen=True, slots=True)
class _Field:
    name: str  # the EIP-712 member name
    kind: str  # its Solidity type
    enum: type[IntEnum] | None = None  # uint8 fields that must hold a defined enum value


_NONCE = _Field("nonce", "uint64")


class _TypeSpec:
    """One primary type: its type string and hash, a packing layout and a field extractor."""

    __slots__ = ("address_at", "array_at", "bool_at", "enum_at", "fields", "int64_at", "layout",
                 "name", "type_hash", "type_string", "values")

    def __init__(self, name: str, fields: tuple[_Field, ...],
                 values: Callable[[Any], Any], *, nonce: bool = True,
                 referenced: tuple[_TypeSpec, ...] = ()) -> None:
        self.name = name
        self.fields = (*fields, _NONCE) if nonce else fields
        # encodeType: the primary type, then the types it references sorted by name
        self.type_string = "".join(
            f"{spec_name}(" + ",".join(f"{f.kind} {f.name}" for f in spec_fields) + ")"
            for spec_name, spec_fields in [(name, self.fields), *sorted(
                (r.name, r.fields) for r in referenced)])
        self.type_hash = keccak256(self.type_string.encode())
        self.layout = struct.Struct(">32s" + "".join(_WORD_LAYOUT[f.kind] for f in self.fields))
        self.values = values  # action -> tuple of field values, in ``fields`` order (no nonce)
        self.address_at = tuple(i for i, f in enumerate(self.fields) if f.kind == "address")
        self.bool_at = tuple(i for i, f in enumerate(self.fields) if f.kind == "bool")
        self.int64_at = tuple(i for i, f in enumerate(self.fields) if f.kind == "int64")
        self.array_at = tuple(i for i, f in enumerate(self.fields) if f.kind.endswith("[]"))
        self.enum_at = tuple((i, frozenset(int(m) for m in f.enum))
                             for i, f in enumerate(self.fields) if f.enum is not None)
        assert self.layout.size == _WORD_BYTES * (1 + len(self.fields))


def _register_agent_values(action: RegisterAgent) -> tuple[Any, ...]:
    every = action.subaccount is None
    return (action.owner, every, 0 if every else action.subaccount, action.agent,
            action.expiry_ms)


_OWNER = _Field("owner", "address")
_SUBACCOUNT = _Field("subaccount", "uint16")
_MARKET = _Field("marketId", "uint16")
_INDEX = _Field("indexId", "uint32")

# the element type of MassQuote.quotes (a struct of its own: no nonce)
_QUOTE_SPEC = _TypeSpec("Quote", (
    _MARKET, _Field("side", "uint8", Side), _Field("priceTicks", "uint64"),
    _Field("sizeLots", "uint64"),
), attrgetter("market_id", "side", "price_ticks", "size_lots"), nonce=False)

_SPECS: dict[type, _TypeSpec] = {
    PlaceOrder: _TypeSpec("PlaceOrder", (
        _OWNER, _SUBACCOUNT, _MARKET, _Field("side", "uint8", Side),
        _Field("priceTicks", "uint64"), _Field("sizeLots", "uint64"),
        _Field("orderType", "uint8", OrderType), _Field("timeInForce", "uint8", TimeInForce),
        _Field("reduceOnly", "bool"), _Field("clientOrderId", "uint64"),
        _Field("selfTradePrevention", "uint8", SelfTradePrevention),
    ), attrgetter("owner", "subaccount", "market_id", "side", "price_ticks", "size_lots",
                  "order_type", "time_in_force", "reduce_only", "client_order_id",
                  "self_trade")),
    CancelOrder: _TypeSpec("CancelOrder", (_OWNER, _SUBACCOUNT, _Field("orderId", "uint64")),
                           attrgetter("owner", "subaccount", "order_id")),
    CancelOrderByClientId: _TypeSpec(
        "CancelOrderByClientId", (_OWNER, _SUBACCOUNT, _Field("clientOrderId", "uint64")),
        attrgetter("owner", "subaccount", "client_order_id")),
    CancelAll: _TypeSpec("CancelAll", (_OWNER, _SUBACCOUNT, _MARKET),
                         attrgetter("owner", "subaccount", "market_id")),
    ModifyOrder: _TypeSpec("ModifyOrder", (
        _OWNER, _SUBACCOUNT, _Field("orderId", "uint64"), _Field("priceTicks", "uint64"),
        _Field("sizeLots", "uint64"),
    ), attrgetter("owner", "subaccount", "order_id", "price_ticks", "size_lots")),
    Withdraw: _TypeSpec("Withdraw", (_OWNER, _SUBACCOUNT, _Field("amountQuantums", "uint64")),
                        attrgetter("owner", "subaccount", "amount_quantums")),
    Transfer: _TypeSpec("Transfer", (
        _OWNER, _SUBACCOUNT, _Field("toOwner", "address"), _Field("toSubaccount", "uint16"),
        _Field("amountQuantums", "uint64"),
    ), attrgetter("owner", "subaccount", "to_owner", "to_subaccount", "amount_quantums")),
    SetMarginMode: _TypeSpec("SetMarginMode", (
        _OWNER, _SUBACCOUNT, _MARKET, _Field("isolated", "bool"),
    ), attrgetter("owner", "subaccount", "market_id", "isolated")),
    MoveIsolatedMargin: _TypeSpec("MoveIsolatedMargin", (
        _OWNER, _SUBACCOUNT, _MARKET, _Field("amountQuantums", "int64"),
    ), attrgetter("owner", "subaccount", "market_id", "amount_quantums")),
    RegisterAgent: _TypeSpec("RegisterAgent", (
        _OWNER, _Field("allSubaccounts", "bool"), _SUBACCOUNT, _Field("agent", "address"),
        _Field("expiryMs", "uint64"),
    ), _register_agent_values),
    RevokeAgent: _TypeSpec("RevokeAgent", (_OWNER, _Field("agent", "address")),
                           attrgetter("owner", "agent")),
    SetPortfolioMargin: _TypeSpec("SetPortfolioMargin", (
        _OWNER, _SUBACCOUNT, _Field("enabled", "bool"),
    ), attrgetter("owner", "subaccount", "enabled")),
    SetMmp: _TypeSpec("SetMmp", (
        _OWNER, _SUBACCOUNT, _INDEX, _Field("windowMs", "uint32"), _Field("frozenMs", "uint32"),
        _Field("quantityLimitNanounits", "uint64"), _Field("deltaLimitNanounits", "uint64"),
        _Field("vegaLimitQuantums", "uint64"),
    ), attrgetter("owner", "subaccount", "index_id", "window_ms", "frozen_ms",
                  "quantity_limit_nanounits", "delta_limit_nanounits", "vega_limit_quantums")),
    MassQuote: _TypeSpec("MassQuote", (
        _OWNER, _SUBACCOUNT, _INDEX, _Field("quotes", "Quote[]"),
    ), attrgetter("owner", "subaccount", "index_id", "quotes"), referenced=(_QUOTE_SPEC,)),
}

USER_ACTION_TYPES: tuple[type, ...] = tuple(_SPECS)


def _spec(action: object) -> _TypeSpec:
    spec = _SPECS.get(type(action))
    if spec is None:
        raise AdmissionError(AdmissionCode.UNSUPPORTED_ACTION, type(action).__name__)
    return spec


def type_string(action_type: type) -> str:
    """The EIP-712 ``encodeType`` of an action class (what wallets show as the type)."""
    return _SPECS[action_type].type_string


def primary_type(action: UserAction) -> str:
    return _spec(action).name


def _quotes_word(quotes: object) -> bytes:
    """``encodeData`` of a ``Quote[]``: keccak256 of the elements' ``hashStruct``, in order."""
    if type(quotes) is not tuple:  # the STF's type; a list would not compare equal after decode
        raise AdmissionError(AdmissionCode.FIELD_OUT_OF_RANGE, "quotes must be a tuple")
    if len(quotes) > MASS_QUOTE_QUOTES_MAX:  # before any hashing: the work stays bounded
        raise AdmissionError(AdmissionCode.FIELD_OUT_OF_RANGE,
                             f"{len(quotes)} > {MASS_QUOTE_QUOTES_MAX} quotes")
    hashes = []
    for quote in quotes:
        if type(quote) is not Quote:
            raise AdmissionError(AdmissionCode.FIELD_OUT_OF_RANGE, "quotes[] must be Quote")
        hashes.append(keccak256(_pack_struct(_QUOTE_SPEC, _field_values(_QUOTE_SPEC, quote, None))))
    return keccak256(b"".join(hashes))


def _field_values(spec: _TypeSpec, action: object, nonce_ms: int | None) -> list[Any]:
    """The action's field values with the nonce (if the type has one), range-checked; int64
    and arrays already as their words."""
    values = [*spec.values(action)]
    if nonce_ms is not None:
        values.append(nonce_ms)
    for i in spec.address_at:
        address = values[i]
        if type(address) is not bytes or len(address) != ADDRESS_BYTES:
            raise AdmissionError(AdmissionCode.FIELD_OUT_OF_RANGE,
                                 f"{spec.fields[i].name} must be a 20-byte address")
    for i in spec.bool_at:
        if type(values[i]) is not bool:  # an int 2 would sign as "true" but not encode
            raise AdmissionError(AdmissionCode.FIELD_OUT_OF_RANGE,
                                 f"{spec.fields[i].name} must be a bool")
    for i, allowed in spec.enum_at:
        if values[i] not in allowed:
            raise AdmissionError(AdmissionCode.FIELD_OUT_OF_RANGE,
                                 f"{spec.fields[i].name} = {values[i]!r}")
    for i in spec.int64_at:
        value = values[i]
        if type(value) is not int or not _INT64_MIN <= value <= _INT64_MAX:
            raise AdmissionError(AdmissionCode.FIELD_OUT_OF_RANGE,
                                 f"{spec.fields[i].name} = {value!r}")
        values[i] = value.to_bytes(_WORD_BYTES, "big", signed=True)
    for i in spec.array_at:
        values[i] = _quotes_word(values[i])
    return values


def _pack_struct(spec: _TypeSpec, values: list[Any]) -> bytes:
    try:
        return spec.layout.pack(spec.type_hash, *values)
    except struct.error as error:  # an integer outside its uintN width, or not an integer
        raise AdmissionError(AdmissionCode.FIELD_OUT_OF_RANGE, f"{spec.name}: {error}") from error


def _pack(spec: _TypeSpec, action: object, nonce_ms: int) -> bytes:
    return _pack_struct(spec, _field_values(spec, action, nonce_ms))


def check_fields(action: UserAction, nonce_ms: int) -> None:
    """Refuse (``UNSUPPORTED_ACTION``/``FIELD_OUT_OF_RANGE``) what has no typed-data value."""
    _pack(_spec(action), action, nonce_ms)


def signing_digest(domain: Eip712Domain, action: UserAction, nonce_ms: int) -> bytes:
    """The 32-byte EIP-712 digest a signer signs for ``action`` at ``nonce_ms``.

    Raises ``AdmissionError`` (``UNSUPPORTED_ACTION`` or ``FIELD_OUT_OF_RANGE``).
    """
    return digest_of_struct(domain.separator, struct_words(action, nonce_ms))


def struct_words(action: UserAction, nonce_ms: int) -> bytes:
    """EIP-712 ``encodeData`` of (``action``, ``nonce_ms``): the type hash and one 32-byte word
    per field, what the struct hash hashes (the two halves of ``signing_digest`` are apart so
    that the hashing can run elsewhere: ``rollbook.sequencer.recovery_processes``). Raises as
    ``signing_digest`` does."""
    return _pack(_spec(action), action, nonce_ms)


def digest_of_struct(domain_separator: bytes, words: bytes) -> bytes:
    """The digest of ``struct_words``' output in the domain whose separator is given."""
    digest = keccak256(_EIP191_TYPED_DATA_PREFIX + domain_separator + keccak256(words))
    assert len(digest) == _WORD_BYTES
    return digest


def typed_data(domain: Eip712Domain, action: UserAction, nonce_ms: int) -> dict[str, Any]:
    """The full EIP-712 message (``eth_signTypedData_v4`` / eth-account ``full_message``).

    Clients and wallets sign this; its hash is ``signing_digest`` (checked in tests).
    """
    spec = _spec(action)
    _pack(spec, action, nonce_ms)  # the same validation as the digest
    message = _message(spec, [*spec.values(action), nonce_ms])
    types: dict[str, Any] = {spec.name: [{"name": f.name, "type": f.kind} for f in spec.fields]}
    if spec.array_at:
        types[_QUOTE_SPEC.name] = [{"name": f.name, "type": f.kind} for f in _QUOTE_SPEC.fields]
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            **types,
        },
        "primaryType": spec.name,
        "domain": domain.as_typed_data(),
        "message": message,
    }


def _message(spec: _TypeSpec, raw: list[Any]) -> dict[str, Any]:
    message: dict[str, Any] = {}
    for f, value in zip(spec.fields, raw, strict=True):
        if f.kind == "address":
            message[f.name] = "0x" + value.hex()
        elif f.kind == "bool":
            message[f.name] = bool(value)
        elif f.kind == "Quote[]":
            message[f.name] = [_message(_QUOTE_SPEC, [*_QUOTE_SPEC.values(q)]) for q in value]
        else:
            message[f.name] = int(value)
    return message


# compiled (mypyc), a frozen dataclass cannot be unpickled attribute by attribute: pickle these
# by their fields in both builds (as rollbook.execution does for its own)
register_frozen_classes(RegisterAgent, RevokeAgent, Eip712Domain, _Field)

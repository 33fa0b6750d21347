"""Signed actions on the wire: strict JSON schemas and their mapping to ``SignedTransaction``.

A signed action in JSON is the action's fields (snake_case, as the STF names them), the
signer's ``nonce`` (a millisecond timestamp) and ``signature`` (``0x`` + hex of ``r || s || v``,
65 bytes), tagged by ``type``::

    {"type": "place_order", "owner": "0x…", "subaccount": 0, "market_id": 1, "side": "buy",
     "price_ticks": 1000000, "size_lots": 10, "time_in_force": "gtc", "nonce": 1700000000000,
     "signature": "0x…"}

The same object is the body of the HTTP route for its type (where ``type`` may be left out),
an element of a batch, and the ``action`` of a WebSocket order message. Both the gateway and
the SDK (``rollbook.client``) use this module, so a client and the server cannot disagree on
the layout.

Invariants:
- decoding is strict (msgspec): unknown fields, wrong JSON types (``"1"`` for an integer,
  ``1`` for a boolean, a float anywhere) and values outside a field's schema are refused
  before anything is hashed; enum fields are lowercase names;
- ``to_signed`` and ``from_signed`` are inverse on every action the EIP-712 types can carry,
  so the digest the client signed is the digest the node recovers;
- the upper bounds of ``uint64`` fields are left to ``rollbook.sequencer.eip712``
  (``FIELD_OUT_OF_RANGE``), because msgspec constraints stop at int64; a JSON integer past 64
  bits is refused by the decoder itself.

Limits: a signature string is at most ``SIGNATURE_HEX_CHARS_MAX`` characters; a wrong length
within that passes the schema and is refused by admission as ``SIGNATURE_MALFORMED`` (a code a
client can act on). Duplicate JSON keys: the last one wins (msgspec), and what is signed is the
decoded value, so a duplicate cannot make the node execute something other than what it
verified.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

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
from rollbook.sequencer.eip712 import (
    MASS_QUOTE_QUOTES_MAX,
    RegisterAgent,
    RevokeAgent,
    UserAction,
)
from rollbook.sequencer.errors import AdmissionCode, AdmissionError
from rollbook.sequencer.signatures import SIGNATURE_BYTES, SignedTransaction

__all__ = [
    "ACTION_STRUCTS",
    "ACTION_TYPE_NAMES",
    "SIGNATURE_HEX_PATTERN",
    "Address",
    "CancelAllAction",
    "CancelByClientIdAction",
    "CancelOrderAction",
    "MassQuoteAction",
    "ModifyOrderAction",
    "MoveIsolatedMarginAction",
    "PlaceOrderAction",
    "QuoteIn",
    "RegisterAgentAction",
    "RevokeAgentAction",
    "SetMarginModeAction",
    "SetMmpAction",
    "SetPortfolioMarginAction",
    "SignedAction",
    "TransferAction",
    "WithdrawAction",
    "address_bytes",
    "address_hex",
    "from_signed",
    "market_of",
    "markets_of",
    "to_signed",
]

SIGNATURE_HEX_CHARS_MAX = 2 + 4 * SIGNATURE_BYTES  # room for a wrong length to be named as such
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1

_ADDRESS_HEX_CHARS = 2 + 2 * 20
# the length as well as the pattern: Python's ``$`` (msgspec matches with ``re``) also matches
# before a final newline, which ``bytes.fromhex`` would then skip (JSON Schema's ``$`` would not)
Address = Annotated[str, msgspec.Meta(
    pattern="^0x[0-9a-fA-F]{40}$", min_length=_ADDRESS_HEX_CHARS, max_length=_ADDRESS_HEX_CHARS,
    description="a 20-byte address, 0x-prefixed hex")]
# 0x and hex pairs. The 65-byte signature every action carries matches the first group in one
# bounded repeat of a character class; Python's re takes about 3 µs for the same string as 65
# repeats of a pair group, which was most of the event loop's decoding time per action (the
# language matched is the same: an even number of hex digits).
SIGNATURE_HEX_PATTERN = (
    f"^0x(?:[0-9a-fA-F]{{{2 * SIGNATURE_BYTES}}})?(?:[0-9a-fA-F]{{2}})*$")
SignatureHex = Annotated[str, msgspec.Meta(
    pattern=SIGNATURE_HEX_PATTERN, max_length=SIGNATURE_HEX_CHARS_MAX,
    description="65-byte r || s || v (v = 27 or 28, low s), 0x-prefixed hex")]
U16 = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)]
U32 = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF_FFFF)]
U64 = Annotated[int, msgspec.Meta(ge=0, description="unsigned 64-bit integer")]
I64 = Annotated[int, msgspec.Meta(ge=_INT64_MIN, le=_INT64_MAX)]
Nonce = Annotated[int, msgspec.Meta(
    ge=0, description="the signer's nonce: a millisecond timestamp, unused by this signer")]
SideName = Literal["buy", "sell"]
OrderTypeName = Literal["limit", "market"]
TimeInForceName = Literal["gtc", "ioc", "fok", "post_only"]
SelfTradeName = Literal["expire_maker", "expire_taker", "expire_both"]

_SIDE = {"buy": Side.BUY, "sell": Side.SELL}
_ORDER_TYPE = {"limit": OrderType.LIMIT, "market": OrderType.MARKET}
_TIF = {"gtc": TimeInForce.GTC, "ioc": TimeInForce.IOC, "fok": TimeInForce.FOK,
        "post_only": TimeInForce.POST_ONLY}
_STP = {"expire_maker": SelfTradePrevention.EXPIRE_MAKER,
        "expire_taker": SelfTradePrevention.EXPIRE_TAKER,
        "expire_both": SelfTradePrevention.EXPIRE_BOTH}
_SIDE_NAME: dict[Side, SideName] = {Side.BUY: "buy", Side.SELL: "sell"}
_ORDER_TYPE_NAME: dict[OrderType, OrderTypeName] = {OrderType.LIMIT: "limit",
                                                     OrderType.MARKET: "market"}
_TIF_NAME: dict[TimeInForce, TimeInForceName] = {
    TimeInForce.GTC: "gtc", TimeInForce.IOC: "ioc", TimeInForce.FOK: "fok",
    TimeInForce.POST_ONLY: "post_only"}
_STP_NAME: dict[SelfTradePrevention, SelfTradeName] = {
    SelfTradePrevention.EXPIRE_MAKER: "expire_maker",
    SelfTradePrevention.EXPIRE_TAKER: "expire_taker",
    SelfTradePrevention.EXPIRE_BOTH: "expire_both"}
assert all(_SIDE[name] == side for side, name in _SIDE_NAME.items())
assert all(_ORDER_TYPE[name] == kind for kind, name in _ORDER_TYPE_NAME.items())
assert all(_TIF[name] == tif for tif, name in _TIF_NAME.items())
assert all(_STP[name] == stp for stp, name in _STP_NAME.items())


class _Action(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, frozen=True,
              kw_only=True):
    """Fields every signed action carries."""

    nonce: Nonce
    signature: SignatureHex


class PlaceOrderAction(_Action, tag="place_order", kw_only=True, frozen=True):
    """Place an order: limit (GTC/IOC/FOK/post-only) or market (IOC/FOK, ``price_ticks`` is
    the worst price). ``client_order_id`` 0 means none."""

    owner: Address
    subaccount: U16 = 0
    market_id: U16
    side: SideName
    price_ticks: U64
    size_lots: U64
    order_type: OrderTypeName = "limit"
    time_in_force: TimeInForceName = "gtc"
    reduce_only: bool = False
    client_order_id: U64 = 0
    self_trade: SelfTradeName = "expire_maker"


class CancelOrderAction(_Action, tag="cancel_order", kw_only=True, frozen=True):
    """Cancel one open order by its venue id."""

    owner: Address
    subaccount: U16 = 0
    order_id: U64


class CancelByClientIdAction(_Action, tag="cancel_by_client_id", kw_only=True, frozen=True):
    """Cancel the open order that carries this client order id."""

    owner: Address
    subaccount: U16 = 0
    client_order_id: U64


class CancelAllAction(_Action, tag="cancel_all", kw_only=True, frozen=True):
    """Cancel every open order of the subaccount in one market (``market_id`` 0: in all)."""

    owner: Address
    subaccount: U16 = 0
    market_id: U16 = 0


class ModifyOrderAction(_Action, tag="modify_order", kw_only=True, frozen=True):
    """Cancel-replace an open order; priority is kept only for a size decrease at the same
    price. ``size_lots`` is the new remaining size."""

    owner: Address
    subaccount: U16 = 0
    order_id: U64
    price_ticks: U64
    size_lots: U64


class WithdrawAction(_Action, tag="withdraw", kw_only=True, frozen=True):
    """Move collateral out of the venue into a withdrawal leaf, claimable on chain once the
    batch's root is final. Owner key only."""

    owner: Address
    subaccount: U16 = 0
    amount_quantums: U64


class TransferAction(_Action, tag="transfer", kw_only=True, frozen=True):
    """Move collateral to another subaccount (of anyone). Owner key only."""

    owner: Address
    subaccount: U16 = 0
    to_owner: Address
    to_subaccount: U16 = 0
    amount_quantums: U64


class SetMarginModeAction(_Action, tag="set_margin_mode", kw_only=True, frozen=True):
    """Cross (``isolated`` false) or isolated margin for one market, while flat."""

    owner: Address
    subaccount: U16 = 0
    market_id: U16
    isolated: bool


class MoveIsolatedMarginAction(_Action, tag="move_isolated_margin", kw_only=True, frozen=True):
    """Move collateral into (positive) or out of (negative) an isolated position."""

    owner: Address
    subaccount: U16 = 0
    market_id: U16
    amount_quantums: I64


class RegisterAgentAction(_Action, tag="register_agent", kw_only=True, frozen=True):
    """Let ``agent`` trade (never withdraw or transfer) for ``owner`` until ``expiry_ms``
    (batch time); ``subaccount`` null grants every subaccount. Owner key only."""

    owner: Address
    agent: Address
    expiry_ms: U64
    subaccount: U16 | None = None


class RevokeAgentAction(_Action, tag="revoke_agent", kw_only=True, frozen=True):
    """Withdraw an agent's rights at once. Owner key only."""

    owner: Address
    agent: Address


class SetPortfolioMarginAction(_Action, tag="set_portfolio_margin", kw_only=True, frozen=True):
    """Portfolio margin (``enabled`` true: scenario-based, per index) or standard per-position
    margin for the subaccount's cross group. Owner key only (it changes the account's leverage)."""

    owner: Address
    subaccount: U16 = 0
    enabled: bool


class SetMmpAction(_Action, tag="set_mmp", kw_only=True, frozen=True):
    """Market-maker protection for the subaccount's quotes on an option index: when fills in
    ``window_ms`` reach a limit (quantity in nanounits of the underlying, absolute delta in
    nanounits, vega in quantums per vol point; 0: no limit), the ladder is pulled and quoting is
    frozen for ``frozen_ms`` (0: until the next SetMmp). All limits 0 turns protection off;
    setting it again lifts a freeze. An agent may sign this."""

    owner: Address
    subaccount: U16 = 0
    index_id: U32
    window_ms: U32
    frozen_ms: U32 = 0
    quantity_limit_nanounits: U64 = 0
    delta_limit_nanounits: U64 = 0
    vega_limit_quantums: U64 = 0


class QuoteIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One post-only quote of a mass quote."""

    market_id: U16
    side: SideName
    price_ticks: U64
    size_lots: U64


Quotes = Annotated[list[QuoteIn], msgspec.Meta(
    max_length=MASS_QUOTE_QUOTES_MAX,
    description=f"at most {MASS_QUOTE_QUOTES_MAX} quotes; empty pulls the ladder")]


class MassQuoteAction(_Action, tag="mass_quote", kw_only=True, frozen=True):
    """Replace the subaccount's quote ladder on an option index with ``quotes`` (post-only,
    all or nothing); no quotes pulls the ladder. An agent may sign this."""

    owner: Address
    subaccount: U16 = 0
    index_id: U32
    quotes: Quotes


SignedAction = (
    PlaceOrderAction
    | CancelOrderAction
    | CancelByClientIdAction
    | CancelAllAction
    | ModifyOrderAction
    | WithdrawAction
    | TransferAction
    | SetMarginModeAction
    | MoveIsolatedMarginAction
    | RegisterAgentAction
    | RevokeAgentAction
    | SetPortfolioMarginAction
    | SetMmpAction
    | MassQuoteAction
)

ACTION_STRUCTS: tuple[type[_Action], ...] = (
    PlaceOrderAction, CancelOrderAction, CancelByClientIdAction, CancelAllAction,
    ModifyOrderAction, WithdrawAction, TransferAction, SetMarginModeAction,
    MoveIsolatedMarginAction, RegisterAgentAction, RevokeAgentAction, SetPortfolioMarginAction,
    SetMmpAction, MassQuoteAction,
)
ACTION_TYPE_NAMES: dict[type[_Action], str] = {
    cls: str(cls.__struct_config__.tag) for cls in ACTION_STRUCTS}


# --- conversions --------------------------------------------------------------------------------

def address_bytes(value: str) -> bytes:
    """``0x`` + 40 hex characters (already checked by the schema) to 20 bytes."""
    return bytes.fromhex(value[2:])


def address_hex(value: bytes) -> str:
    return "0x" + value.hex()


def _signature(value: str) -> bytes:
    if value[-1:] == "\n":  # the one character the schema's ``$`` lets through (see Address)
        raise AdmissionError(AdmissionCode.SIGNATURE_MALFORMED, "a newline after the hex")
    raw = bytes.fromhex(value[2:])
    if len(raw) != SIGNATURE_BYTES:
        raise AdmissionError(AdmissionCode.SIGNATURE_MALFORMED, f"{len(raw)} bytes")
    return raw


def _place(a: Any) -> UserAction:
    return PlaceOrder(address_bytes(a.owner), a.subaccount, a.market_id, _SIDE[a.side],
                      a.price_ticks, a.size_lots, _ORDER_TYPE[a.order_type],
                      _TIF[a.time_in_force], a.reduce_only, a.client_order_id,
                      _STP[a.self_trade])


def _set_mmp(a: Any) -> UserAction:
    return SetMmp(address_bytes(a.owner), a.subaccount, a.index_id, a.window_ms, a.frozen_ms,
                  a.quantity_limit_nanounits, a.delta_limit_nanounits, a.vega_limit_quantums)


def _mass_quote(a: Any) -> UserAction:
    return MassQuote(address_bytes(a.owner), a.subaccount, a.index_id, tuple(
        Quote(q.market_id, _SIDE[q.side], q.price_ticks, q.size_lots) for q in a.quotes))


_TO_ACTION: dict[type[_Action], Callable[[Any], UserAction]] = {
    PlaceOrderAction: _place,
    CancelOrderAction: lambda a: CancelOrder(address_bytes(a.owner), a.subaccount, a.order_id),
    CancelByClientIdAction: lambda a: CancelOrderByClientId(
        address_bytes(a.owner), a.subaccount, a.client_order_id),
    CancelAllAction: lambda a: CancelAll(address_bytes(a.owner), a.subaccount, a.market_id),
    ModifyOrderAction: lambda a: ModifyOrder(address_bytes(a.owner), a.subaccount, a.order_id,
                                             a.price_ticks, a.size_lots),
    WithdrawAction: lambda a: Withdraw(address_bytes(a.owner), a.subaccount, a.amount_quantums),
    TransferAction: lambda a: Transfer(address_bytes(a.owner), a.subaccount,
                                       address_bytes(a.to_owner), a.to_subaccount,
                                       a.amount_quantums),
    SetMarginModeAction: lambda a: SetMarginMode(address_bytes(a.owner), a.subaccount,
                                                 a.market_id, a.isolated),
    MoveIsolatedMarginAction: lambda a: MoveIsolatedMargin(
        address_bytes(a.owner), a.subaccount, a.market_id, a.amount_quantums),
    RegisterAgentAction: lambda a: RegisterAgent(address_bytes(a.owner), address_bytes(a.agent),
                                                 a.expiry_ms, a.subaccount),
    RevokeAgentAction: lambda a: RevokeAgent(address_bytes(a.owner), address_bytes(a.agent)),
    SetPortfolioMarginAction: lambda a: SetPortfolioMargin(address_bytes(a.owner), a.subaccount,
                                                           a.enabled),
    SetMmpAction: _set_mmp,
    MassQuoteAction: _mass_quote,
}
assert set(_TO_ACTION) == set(ACTION_STRUCTS)


# the action types that name one market (by exact type: wire structs are final; a set, not an
# ``A | B`` union, which ``isinstance`` would have rebuilt on every call: every order's check)
_NAMES_ONE_MARKET: frozenset[type] = frozenset(
    (PlaceOrderAction, CancelAllAction, SetMarginModeAction, MoveIsolatedMarginAction))


def to_signed(wire: SignedAction) -> SignedTransaction:
    """The signed transaction a decoded wire action stands for.

    Raises ``AdmissionError(SIGNATURE_MALFORMED)`` for a signature that is not 65 bytes.
    """
    return SignedTransaction(_TO_ACTION[type(wire)](wire), wire.nonce, _signature(wire.signature))


def market_of(wire: SignedAction) -> int | None:
    """The market an action names (None when it names none; 0 is "every market")."""
    if type(wire) in _NAMES_ONE_MARKET:
        return wire.market_id  # type: ignore[union-attr]
    return None


def markets_of(wire: SignedAction) -> tuple[int, ...]:
    """Every market an action names, in order, without repeats (a mass quote names several)."""
    kind = type(wire)
    if kind in _NAMES_ONE_MARKET:  # first: every order is checked here
        return (wire.market_id,)  # type: ignore[union-attr]
    if kind is MassQuoteAction:
        return tuple(dict.fromkeys(q.market_id for q in wire.quotes))  # type: ignore[union-attr]
    return ()


def from_signed(signed: SignedTransaction) -> SignedAction:
    """The wire form of a signed transaction (what a client sends)."""
    a = signed.action
    nonce = signed.nonce_ms
    sig = "0x" + signed.signature.hex()
    if isinstance(a, PlaceOrder):
        return PlaceOrderAction(
            owner=address_hex(a.owner), subaccount=a.subaccount, market_id=a.market_id,
            side=_SIDE_NAME[a.side], price_ticks=a.price_ticks, size_lots=a.size_lots,
            order_type=_ORDER_TYPE_NAME[a.order_type], time_in_force=_TIF_NAME[a.time_in_force],
            reduce_only=a.reduce_only, client_order_id=a.client_order_id,
            self_trade=_STP_NAME[a.self_trade], nonce=nonce, signature=sig)
    if isinstance(a, CancelOrder):
        return CancelOrderAction(owner=address_hex(a.owner), subaccount=a.subaccount,
                                 order_id=a.order_id, nonce=nonce, signature=sig)
    if isinstance(a, CancelOrderByClientId):
        return CancelByClientIdAction(owner=address_hex(a.owner), subaccount=a.subaccount,
                                      client_order_id=a.client_order_id, nonce=nonce,
                                      signature=sig)
    if isinstance(a, CancelAll):
        return CancelAllAction(owner=address_hex(a.owner), subaccount=a.subaccount,
                               market_id=a.market_id, nonce=nonce, signature=sig)
    if isinstance(a, ModifyOrder):
        return ModifyOrderAction(owner=address_hex(a.owner), subaccount=a.subaccount,
                                 order_id=a.order_id, price_ticks=a.price_ticks,
                                 size_lots=a.size_lots, nonce=nonce, signature=sig)
    if isinstance(a, Withdraw):
        return WithdrawAction(owner=address_hex(a.owner), subaccount=a.subaccount,
                              amount_quantums=a.amount_quantums, nonce=nonce, signature=sig)
    if isinstance(a, Transfer):
        return TransferAction(owner=address_hex(a.owner), subaccount=a.subaccount,
                              to_owner=address_hex(a.to_owner), to_subaccount=a.to_subaccount,
                              amount_quantums=a.amount_quantums, nonce=nonce, signature=sig)
    if isinstance(a, SetMarginMode):
        return SetMarginModeAction(owner=address_hex(a.owner), subaccount=a.subaccount,
                                   market_id=a.market_id, isolated=a.isolated, nonce=nonce,
                                   signature=sig)
    if isinstance(a, MoveIsolatedMargin):
        return MoveIsolatedMarginAction(owner=address_hex(a.owner), subaccount=a.subaccount,
                                        market_id=a.market_id,
                                        amount_quantums=a.amount_quantums, nonce=nonce,
                                        signature=sig)
    if isinstance(a, RegisterAgent):
        return RegisterAgentAction(owner=address_hex(a.owner), agent=address_hex(a.agent),
                                   expiry_ms=a.expiry_ms, subaccount=a.subaccount, nonce=nonce,
                                   signature=sig)
    if isinstance(a, RevokeAgent):
        return RevokeAgentAction(owner=address_hex(a.owner), agent=address_hex(a.agent),
                                 nonce=nonce, signature=sig)
    if isinstance(a, SetPortfolioMargin):
        return SetPortfolioMarginAction(owner=address_hex(a.owner), subaccount=a.subaccount,
                                        enabled=a.enabled, nonce=nonce, signature=sig)
    if isinstance(a, SetMmp):
        return SetMmpAction(owner=address_hex(a.owner), subaccount=a.subaccount,
                            index_id=a.index_id, window_ms=a.window_ms, frozen_ms=a.frozen_ms,
                            quantity_limit_nanounits=a.quantity_limit_nanounits,
                            delta_limit_nanounits=a.delta_limit_nanounits,
                            vega_limit_quantums=a.vega_limit_quantums, nonce=nonce,
                            signature=sig)
    if isinstance(a, MassQuote):
        return MassQuoteAction(owner=address_hex(a.owner), subaccount=a.subaccount,
                               index_id=a.index_id, quotes=[
                                   QuoteIn(market_id=q.market_id, side=_SIDE_NAME[q.side],
                                           price_ticks=q.price_ticks, size_lots=q.size_lots)
                                   for q in a.quotes], nonce=nonce, signature=sig)
    raise AdmissionError(AdmissionCode.UNSUPPORTED_ACTION, type(a).__name__)

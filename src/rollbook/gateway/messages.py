"""Request and response envelopes of the HTTP and WebSocket API (shared with the SDK).

HTTP: every action route answers an ``ActionResult`` (``ack`` when the action was sequenced,
``error`` when it was refused; both when the STF refused a sequenced action), every refusal an
``ErrorResponse``; a batch answers ``BatchResult`` (one ``ActionResult`` per action, in order).

WebSocket (``/ws``), client to server, one JSON object per text frame, tagged by ``op``:

- ``{"op": "order", "id": 7, "action": {...signed action...}}`` -> ``{"type": "result",
  "id": 7, "status": 200, "ack": {...}, "error": null}``
- ``{"op": "batch", "id": 8, "actions": [...]}`` -> ``{"type": "results", "id": 8,
  "results": [...]}``
- ``{"op": "subscribe", "id": 9, "channel": "book", "market_id": 1}`` (channels ``book``,
  ``trades``: a market; ``account``: an ``owner``; ``batches``) -> ``{"type": "subscribed",
  "id": 9, "topic": "book:1"}``, then ``{"type": "update", "topic": "book:1", "kind":
  "book_snapshot" | "book_delta" | "trade" | "account" | "batch", "data": {...}}``
- ``{"op": "unsubscribe", "id": 10, "topic": "book:1"}`` -> ``{"type": "unsubscribed",
  "id": 10, "topic": "book:1", "reason": "requested"}``; a subscriber that fell behind gets
  ``{"type": "unsubscribed", "id": null, "topic": ..., "reason": "lagged"}`` and resubscribes
  (a fresh snapshot follows);
- ``{"op": "ping", "id": 11}`` -> ``{"type": "pong", "id": 11}``;
- anything refused -> ``{"type": "error", "id": <the id, or null if unreadable>, "status":
  400, "error": {...}}``.

``id`` is the client's (an integer or a string of at most ``REQUEST_ID_CHARS_MAX``); answers to
actions may arrive in any order and carry the ``id`` they answer. Book updates carry the node's
``sequence``: a delta's sequence is one more than the previous update's on that topic.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from rollbook.gateway.actions import Address, SignedAction
from rollbook.gateway.views import EventOut
from rollbook.sequencer.limits import ACTIONS_PER_REQUEST_MAX

__all__ = [
    "CHANNELS",
    "REQUEST_ID_CHARS_MAX",
    "AckOut",
    "ActionResult",
    "BatchRequest",
    "BatchResult",
    "ErrorBody",
    "ErrorResponse",
    "RequestId",
    "WsBatch",
    "WsOrder",
    "WsPing",
    "WsRequest",
    "WsSubscribe",
    "WsUnsubscribe",
]

REQUEST_ID_CHARS_MAX = 64
RequestId = int | Annotated[str, msgspec.Meta(max_length=REQUEST_ID_CHARS_MAX)] | None
Actions = Annotated[list[SignedAction], msgspec.Meta(min_length=1,
                                                     max_length=ACTIONS_PER_REQUEST_MAX)]
CHANNELS = ("book", "trades", "account", "batches")
Channel = Literal["book", "trades", "account", "batches"]


class ErrorBody(msgspec.Struct, frozen=True):
    """A refusal: ``code`` is stable (0-99 STF, 100-199 admission, 200-299 gateway)."""

    code: int
    name: str
    message: str
    status: int


class ErrorResponse(msgspec.Struct, frozen=True):
    error: ErrorBody


class AckOut(msgspec.Struct, frozen=True):
    """A sequenced action: durable in the node's log at ``sequence``, in batch
    ``batch_index``. ``ok`` false means the STF refused it (``code``/``message``); its nonce is
    used either way. ``order_id`` is the order a place or modify created, when it did."""

    tx_id: str
    signer: str
    sequence: int
    batch_index: int
    ok: bool
    code: int
    name: str
    message: str
    order_id: int | None
    events: list[EventOut]


class ActionResult(msgspec.Struct, frozen=True):
    status: int
    ack: AckOut | None = None
    error: ErrorBody | None = None


class BatchRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    actions: Actions


class BatchResult(msgspec.Struct, frozen=True):
    results: list[ActionResult]


class _WsOp(msgspec.Struct, tag_field="op", forbid_unknown_fields=True, frozen=True,
            kw_only=True):
    id: RequestId = None


class WsOrder(_WsOp, tag="order", kw_only=True, frozen=True):
    action: SignedAction


class WsBatch(_WsOp, tag="batch", kw_only=True, frozen=True):
    actions: Actions


class WsSubscribe(_WsOp, tag="subscribe", kw_only=True, frozen=True):
    channel: Channel
    market_id: Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)] | None = None
    owner: Address | None = None


class WsUnsubscribe(_WsOp, tag="unsubscribe", kw_only=True, frozen=True):
    topic: Annotated[str, msgspec.Meta(max_length=64)]


class WsPing(_WsOp, tag="ping", kw_only=True, frozen=True):
    pass


WsRequest = WsOrder | WsBatch | WsSubscribe | WsUnsubscribe | WsPing

"""The wire types of the node's views: one msgspec Struct per view, shared by server and SDK.

Derived by ``rollbook.gateway.schemas.wire_type`` from ``rollbook.node.views`` (and the bridge's
``WithdrawalClaim``), so the OpenAPI document, the server's answers and the SDK's decoding come
from one definition. ``PositionView`` is tagged (``"type": "position_view"``) because it shares
``AccountEvent.event``'s union with the STF events.
"""

from __future__ import annotations

from typing import Any

import msgspec

from rollbook.execution.events import Event
from rollbook.gateway.actions import Address
from rollbook.gateway.schemas import tag_record, wire_type
from rollbook.node.views import (
    AccountEvent,
    AccountRiskView,
    AccountView,
    BatchView,
    BookDelta,
    BookView,
    MarketView,
    NodeStatus,
    PositionView,
    TradeView,
)
from rollbook.settlement.bridge import WithdrawalClaim

__all__ = [
    "UPDATE_TYPES",
    "AccountEventOut",
    "AccountOut",
    "AccountRiskOut",
    "BatchOut",
    "BookDeltaOut",
    "BookOut",
    "DomainOut",
    "EventOut",
    "InfoOut",
    "MarketOut",
    "StatusOut",
    "TradeOut",
    "WithdrawalProofOut",
]

tag_record(PositionView)

MarketOut: Any = wire_type(MarketView)
BookOut: Any = wire_type(BookView)
BookDeltaOut: Any = wire_type(BookDelta)
TradeOut: Any = wire_type(TradeView)
AccountOut: Any = wire_type(AccountView)
AccountEventOut: Any = wire_type(AccountEvent)
AccountRiskOut: Any = wire_type(AccountRiskView)
BatchOut: Any = wire_type(BatchView)
StatusOut: Any = wire_type(NodeStatus)
WithdrawalProofOut: Any = wire_type(WithdrawalClaim)
EventOut: Any = wire_type(Event)


class DomainOut(msgspec.Struct, frozen=True):
    """The EIP-712 domain every action is signed in."""

    name: str
    version: str
    chain_id: int
    verifying_contract: Address


class InfoOut(msgspec.Struct, frozen=True):
    domain: DomainOut
    collateral_decimals: int
    status: StatusOut
    markets: list[MarketOut]


# the ``kind`` of a WebSocket update -> the type of its ``data``
UPDATE_TYPES: dict[str, Any] = {
    "book_snapshot": BookOut,
    "book_delta": BookDeltaOut,
    "trade": TradeOut,
    "account": AccountEventOut,
    "batch": BatchOut,
}

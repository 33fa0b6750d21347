"""The wire output of the ack path and the views is pinned: the fast paths (generated record
converters, the receipt-code table in ``ack_result``, trade and fill views built when read) must
answer byte for byte what the straightforward definitions do.

``_reference_jsonable`` is the per-field definition ``rollbook.gateway.schemas`` used before its
converters were generated; the golden ack messages were produced by the previous
``ack_result``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import typing
from enum import IntEnum
from typing import Any

import msgspec
import pytest

from rollbook.execution.errors import ErrorCode
from rollbook.execution.events import (
    CancelReason,
    DepositCredited,
    Fill,
    MmpTriggered,
    OrderCancelled,
    OrderPlaced,
    OrderReduced,
    Receipt,
    TransferDone,
)
from rollbook.execution.txs import CancelOrderByClientId, PlaceOrder, Side
from rollbook.gateway.schemas import EVENT_TYPES, event_tag, jsonable
from rollbook.gateway.server import ack_result
from rollbook.node.feeds import FeedHub, Subscription, fill_view, trade_view
from rollbook.node.views import (
    AccountEvent,
    AccountView,
    Ack,
    BatchView,
    BookLevel,
    BookView,
    FillView,
    GroupView,
    NodeStatus,
    OrderView,
    PositionView,
    TradeView,
)
from rollbook.sequencer.signatures import SignedTransaction

OWNER = bytes(range(20))
OTHER = bytes(range(1, 21))
TX_ID = b"\x11" * 32
SIGNATURE = b"\x01" * 65
FILL = Fill(1, 100, 200, OTHER, 0, OWNER, 3, True, 1_000_005, 3, -1, 5)
PLACED = OrderPlaced(200, 1, OWNER, 0, True, 1_000_010, 2, 77)
CANCELLED = OrderCancelled(150, 1, 4, CancelReason.USER)
POSITION = PositionView(OWNER, 0, 0, 1, -3, -300, 100, -297, 3, 0, 5)


def _reference_jsonable(value: Any, hint: Any = None) -> Any:
    """The per-field conversion, as ``schemas.jsonable`` was written before it was generated."""
    if value is None:
        return None
    if hint is int:
        return int(value)
    if hint is bytes or (hint is None and isinstance(value, bytes)):
        return "0x" + value.hex()
    if isinstance(value, IntEnum) and hint is not int:
        return value.name.lower()
    if dataclasses.is_dataclass(value) or (isinstance(value, tuple) and hasattr(value, "_fields")
                                           and not isinstance(value, BookLevel)):
        cls = type(value)
        hints = typing.get_type_hints(cls)
        names = ([f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls)
                 else list(cls._fields))  # type: ignore[attr-defined]
        tagged = cls in EVENT_TYPES or cls is PositionView
        out: dict[str, Any] = {"type": event_tag(cls)} if tagged else {}
        for name in names:
            out[name] = _reference_jsonable(getattr(value, name), hints[name])
        return out
    if isinstance(value, tuple | list):
        return [_reference_jsonable(item) for item in value]
    return value


RECORDS: list[Any] = [
    FILL, PLACED, CANCELLED, OrderReduced(200, 1, 1, 1),
    DepositCredited(1, OWNER, 0, 10**13), TransferDone(OWNER, 0, OTHER, 2, 5),
    MmpTriggered(OWNER, 0, 1, (5, 6, 7), -1),
    TradeView(1, 9, 2, 1_700_000_000_000, 1_000_005, 3, False, 100, 200),
    FillView(1, 9, 2, 100, True, False, 1_000_005, 3, -1),
    BookView(1, 4, 2, (BookLevel(99, 5, 1), BookLevel(98, 1, 2)), ()),
    AccountView(OWNER, 0, 2, 1_000, (GroupView(0, 1_000, 997, 10, 5, (POSITION,)),),
                (OrderView(7, 1, True, 99, 5, 0, False),),
                (FillView(1, 9, 2, 100, True, False, 1_000_005, 3, -1),)),
    AccountEvent(OWNER, 0, 9, 2, "fill", FILL),
    AccountEvent(OWNER, 0, 9, 2, "position", POSITION),
    BatchView(2, b"\x22" * 32, b"\x33" * 32, 1_700_000_000_000, 10, 500, "pending", None, 1, 0),
    NodeStatus(True, "none", 31337, None, 2, b"\x22" * 32, None, 40, 0, 0, None),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_generated_converters_answer_the_reference_bytes(record: Any) -> None:
    expected = msgspec.json.encode(_reference_jsonable(record))
    assert msgspec.json.encode(jsonable(record)) == expected
    assert jsonable(record) == _reference_jsonable(record)


def _ack(code: ErrorCode, message: str, events: tuple[Any, ...]) -> Ack:
    return Ack(TX_ID, OWNER, 12345, 7, Receipt(code, message, events, 10))


PLACE = SignedTransaction(PlaceOrder(OWNER, 0, 1, Side.BUY, 1_000_010, 5, client_order_id=77),
                          1_700_000_000_000, SIGNATURE)
CANCEL = SignedTransaction(CancelOrderByClientId(OWNER, 0, 5), 1_700_000_000_001, SIGNATURE)
_ACK_HEAD = ('{"status":200,"ack":{"tx_id":"0x' + "11" * 32 + '","signer":"0x'
             + OWNER.hex() + '","sequence":12345,"batch_index":7,"ok":true,"code":0,'
             '"name":"OK","message":"","order_id":200,"events":[')
_FILL_JSON = ('{"type":"fill","market_id":1,"maker_order_id":100,"taker_order_id":200,'
              '"maker_owner":"0x' + OTHER.hex() + '","maker_subaccount":0,"taker_owner":"0x'
              + OWNER.hex() + '","taker_subaccount":3,"taker_is_buy":true,"price_ticks":1000005,'
              '"size_lots":3,"maker_fee_quantums":-1,"taker_fee_quantums":5}')
_PLACED_JSON = ('{"type":"order_placed","order_id":200,"market_id":1,"owner":"0x' + OWNER.hex()
                + '","subaccount":0,"is_buy":true,"price_ticks":1000010,"size_lots":2,'
                '"client_order_id":77}')
GOLDEN_ACKS = [
    (PLACE, _ack(ErrorCode.OK, "", (FILL, PLACED)),
     _ACK_HEAD + _FILL_JSON + "," + _PLACED_JSON + ']},"error":null}'),
    (PLACE, _ack(ErrorCode.OK, "", (PLACED,)), _ACK_HEAD + _PLACED_JSON + ']},"error":null}'),
    (CANCEL, _ack(ErrorCode.ORDER_NOT_FOUND, "no such order", ()),
     '{"status":422,"ack":{"tx_id":"0x' + "11" * 32 + '","signer":"0x' + OWNER.hex()
     + '","sequence":12345,"batch_index":7,"ok":false,"code":43,"name":"ORDER_NOT_FOUND",'
     '"message":"no such order","order_id":null,"events":[]},"error":{"code":43,'
     '"name":"ORDER_NOT_FOUND","message":"no such order","status":422}}'),
    (CANCEL, _ack(ErrorCode.OK, "", (CANCELLED,)),
     '{"status":200,"ack":{"tx_id":"0x' + "11" * 32 + '","signer":"0x' + OWNER.hex()
     + '","sequence":12345,"batch_index":7,"ok":true,"code":0,"name":"OK","message":"",'
     '"order_id":null,"events":[{"type":"order_cancelled","order_id":150,"market_id":1,'
     '"size_lots":4,"reason":' + str(int(CancelReason.USER)) + '}]},"error":null}'),
]


@pytest.mark.parametrize(("signed", "ack", "golden"), GOLDEN_ACKS)
def test_ack_result_answers_the_golden_bytes(signed: SignedTransaction, ack: Ack,
                                             golden: str) -> None:
    assert msgspec.json.encode(ack_result(signed, ack)).decode() == golden


def test_trade_and_fill_views_built_when_read() -> None:
    traded = (FILL, 9, 2, 1_700_000_000_000)
    assert trade_view(traded) == TradeView(1, 9, 2, 1_700_000_000_000, 1_000_005, 3, True, 100,
                                           200)
    assert fill_view(traded, True) == FillView(1, 9, 2, 100, True, False, 1_000_005, 3, -1)
    assert fill_view(traded, False) == FillView(1, 9, 2, 200, False, True, 1_000_005, 3, 5)
    hub = FeedHub()
    hub.record([(("traded", 1), traded), (("book", 1), None)])
    assert hub.trades(1, 10) == [trade_view(traded)]
    assert hub.fills((OTHER, 0)) == (fill_view(traded, True),)
    assert hub.fills((OWNER, 3)) == (fill_view(traded, False),)


def test_a_trades_subscriber_gets_the_trade_view() -> None:
    async def scenario() -> list[Any]:
        hub = FeedHub()
        subscription = Subscription(hub, "trades:1", ("trades", 1), asyncio.get_running_loop(),
                                    10)
        hub.add(subscription)
        traded = (FILL, 9, 2, 1_700_000_000_000)
        hub.publish([(("traded", 2), (FILL, 1, 1, 1)), (("traded", 1), traded)])
        received = [await asyncio.wait_for(subscription.__anext__(), 5)]
        subscription.close()
        return received

    assert asyncio.run(scenario()) == [TradeView(1, 9, 2, 1_700_000_000_000, 1_000_005, 3, True,
                                                 100, 200)]

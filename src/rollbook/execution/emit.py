"""Constructors for the events and receipts the order path emits on every transaction.

Events and receipts are NamedTuples declared in ``events`` (left interpreted in the compiled
build; see ``setup.py``). Calling a NamedTuple class runs its generated, interpreted ``__new__``,
whose whole body is ``tuple.__new__(cls, (field, ...))``; in the compiled build that frame was a
large share of the cost of every order. These helpers make that same call directly, with the
fields in declaration order, so they build the same object (same class, equal values) without
the interpreted frame. Their typed parameters keep mypy checking each field, and
``tests/execution/test_emit.py`` pins each helper's parameters to its class's ``_fields``.

As everywhere in the compiled build, an ``int`` parameter given an ``IntEnum`` member (a cancel
reason) stores a plain ``int`` there (equal to the member, encoded alike); interpreted, the
member itself.

Only the hot path uses them (placing, cancelling, modifying and matching orders, and every
receipt); elsewhere the classes are called directly.
"""

from __future__ import annotations

from typing import Final

from rollbook.execution.errors import ErrorCode
from rollbook.execution.events import (
    Event,
    Fill,
    OrderCancelled,
    OrderPlaced,
    OrderReduced,
    Receipt,
)

__all__ = ["fill_event", "order_cancelled", "order_placed", "order_reduced", "receipt"]

# read once into constants: a compiled module reads a plain global (or ``tuple.__new__``)
# through a dictionary lookup at every use
_new: Final = tuple.__new__
_OrderPlaced: Final = OrderPlaced
_OrderReduced: Final = OrderReduced
_OrderCancelled: Final = OrderCancelled
_Fill: Final = Fill
_Receipt: Final = Receipt


def order_placed(order_id: int, market_id: int, owner: bytes, subaccount: int, is_buy: bool,
                 price_ticks: int, size_lots: int, client_order_id: int) -> OrderPlaced:
    return _new(_OrderPlaced, (order_id, market_id, owner, subaccount, is_buy, price_ticks,
                               size_lots, client_order_id))


def order_reduced(order_id: int, market_id: int, removed_lots: int,
                  remaining_lots: int) -> OrderReduced:
    return _new(_OrderReduced, (order_id, market_id, removed_lots, remaining_lots))


def order_cancelled(order_id: int, market_id: int, size_lots: int,
                    reason: int) -> OrderCancelled:
    return _new(_OrderCancelled, (order_id, market_id, size_lots, reason))


def fill_event(market_id: int, maker_order_id: int, taker_order_id: int, maker_owner: bytes,
               maker_subaccount: int, taker_owner: bytes, taker_subaccount: int,
               taker_is_buy: bool, price_ticks: int, size_lots: int, maker_fee_quantums: int,
               taker_fee_quantums: int) -> Fill:
    return _new(_Fill, (market_id, maker_order_id, taker_order_id, maker_owner, maker_subaccount,
                        taker_owner, taker_subaccount, taker_is_buy, price_ticks, size_lots,
                        maker_fee_quantums, taker_fee_quantums))


def receipt(code: ErrorCode, message: str, events: tuple[Event, ...],
            cost_units: int) -> Receipt:
    return _new(_Receipt, (code, message, events, cost_units))

"""The receipt and the order path's events, as records the compiled build constructs natively.

Every transaction returns a ``Receipt``, and nearly every one on the order path emits an
``OrderPlaced``, ``OrderCancelled``, ``OrderReduced`` or ``Fill``, so building them is a fixed
part of the cost of each order. They are frozen, slotted dataclasses (the other events stay
NamedTuples in ``events``, which re-exports these five) and declare their ``__init__`` the way
the order path's transactions do (see ``txs``): compiled (mypyc), the constructor writes each
native slot directly, and ``int`` fields hold unboxed integers; interpreted, it sets each field
through ``object.__setattr__`` as ``dataclass``'s generated one does. A NamedTuple built from
compiled code went through a Python-level call of ``tuple.__new__`` (an argument tuple, a
temporary tuple, every int boxed): as native records, ``apply_batch`` on a 40,000-operation
replay of the standard workload fell from 515M to 412M instructions (callgrind). Interpreted,
the declared ``__init__`` costs more than a NamedTuple's construction (about 570 ns against
220 ns for eight fields): the pure build pays that for the compiled build's gain.

To their readers they are the same records as before: fields by name in the same order, equal
and hashed by value, the same ``repr``, immutable, pickled alike in both builds (``pickling``),
and, for the gateway's wire schema (``rollbook.gateway.schemas``), dataclasses with ``int``,
``bytes`` and ``bool`` fields. ``tests/execution/test_receipts.py`` pins each ``__init__`` to the
fields. What they no longer are is tuples: no indexing, unpacking or ``_fields``.

As everywhere in the compiled build, an ``int`` field given an ``IntEnum`` member (a cancel
reason) stores a plain ``int`` (equal to the member, encoded alike); interpreted, the member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rollbook.execution.errors import ErrorCode
from rollbook.execution.txs import _COMPILED, _set

if TYPE_CHECKING:  # events imports this module
    from rollbook.execution.events import Event

__all__ = ["Fill", "OrderCancelled", "OrderPlaced", "OrderReduced", "Receipt"]


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    order_id: int
    market_id: int
    owner: bytes
    subaccount: int
    is_buy: bool
    price_ticks: int
    size_lots: int
    client_order_id: int

    def __init__(self, order_id: int, market_id: int, owner: bytes, subaccount: int,
                 is_buy: bool, price_ticks: int, size_lots: int, client_order_id: int) -> None:
        if _COMPILED:  # native slot writes (no __setattr__): see the module docstring
            self.order_id = order_id  # type: ignore[misc]
            self.market_id = market_id  # type: ignore[misc]
            self.owner = owner  # type: ignore[misc]
            self.subaccount = subaccount  # type: ignore[misc]
            self.is_buy = is_buy  # type: ignore[misc]
            self.price_ticks = price_ticks  # type: ignore[misc]
            self.size_lots = size_lots  # type: ignore[misc]
            self.client_order_id = client_order_id  # type: ignore[misc]
        else:
            _set(self, "order_id", order_id)
            _set(self, "market_id", market_id)
            _set(self, "owner", owner)
            _set(self, "subaccount", subaccount)
            _set(self, "is_buy", is_buy)
            _set(self, "price_ticks", price_ticks)
            _set(self, "size_lots", size_lots)
            _set(self, "client_order_id", client_order_id)


@dataclass(frozen=True, slots=True)
class OrderReduced:
    """A modify shrank a resting order in place; it stays live and keeps its priority."""

    order_id: int
    market_id: int
    removed_lots: int
    remaining_lots: int

    def __init__(self, order_id: int, market_id: int, removed_lots: int,
                 remaining_lots: int) -> None:
        if _COMPILED:  # native slot writes (no __setattr__): see the module docstring
            self.order_id = order_id  # type: ignore[misc]
            self.market_id = market_id  # type: ignore[misc]
            self.removed_lots = removed_lots  # type: ignore[misc]
            self.remaining_lots = remaining_lots  # type: ignore[misc]
        else:
            _set(self, "order_id", order_id)
            _set(self, "market_id", market_id)
            _set(self, "removed_lots", removed_lots)
            _set(self, "remaining_lots", remaining_lots)


@dataclass(frozen=True, slots=True)
class Fill:
    market_id: int
    maker_order_id: int
    taker_order_id: int  # 0 for liquidation fills that never rest
    maker_owner: bytes
    maker_subaccount: int
    taker_owner: bytes
    taker_subaccount: int
    taker_is_buy: bool
    price_ticks: int
    size_lots: int
    maker_fee_quantums: int  # negative is a rebate paid to the maker
    taker_fee_quantums: int  # for liquidations, the penalty paid to the insurance fund

    def __init__(self, market_id: int, maker_order_id: int, taker_order_id: int,
                 maker_owner: bytes, maker_subaccount: int, taker_owner: bytes,
                 taker_subaccount: int, taker_is_buy: bool, price_ticks: int, size_lots: int,
                 maker_fee_quantums: int, taker_fee_quantums: int) -> None:
        if _COMPILED:  # native slot writes (no __setattr__): see the module docstring
            self.market_id = market_id  # type: ignore[misc]
            self.maker_order_id = maker_order_id  # type: ignore[misc]
            self.taker_order_id = taker_order_id  # type: ignore[misc]
            self.maker_owner = maker_owner  # type: ignore[misc]
            self.maker_subaccount = maker_subaccount  # type: ignore[misc]
            self.taker_owner = taker_owner  # type: ignore[misc]
            self.taker_subaccount = taker_subaccount  # type: ignore[misc]
            self.taker_is_buy = taker_is_buy  # type: ignore[misc]
            self.price_ticks = price_ticks  # type: ignore[misc]
            self.size_lots = size_lots  # type: ignore[misc]
            self.maker_fee_quantums = maker_fee_quantums  # type: ignore[misc]
            self.taker_fee_quantums = taker_fee_quantums  # type: ignore[misc]
        else:
            _set(self, "market_id", market_id)
            _set(self, "maker_order_id", maker_order_id)
            _set(self, "taker_order_id", taker_order_id)
            _set(self, "maker_owner", maker_owner)
            _set(self, "maker_subaccount", maker_subaccount)
            _set(self, "taker_owner", taker_owner)
            _set(self, "taker_subaccount", taker_subaccount)
            _set(self, "taker_is_buy", taker_is_buy)
            _set(self, "price_ticks", price_ticks)
            _set(self, "size_lots", size_lots)
            _set(self, "maker_fee_quantums", maker_fee_quantums)
            _set(self, "taker_fee_quantums", taker_fee_quantums)


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    order_id: int
    market_id: int
    size_lots: int  # the remaining size removed
    reason: int  # a CancelReason

    def __init__(self, order_id: int, market_id: int, size_lots: int, reason: int) -> None:
        if _COMPILED:  # native slot writes (no __setattr__): see the module docstring
            self.order_id = order_id  # type: ignore[misc]
            self.market_id = market_id  # type: ignore[misc]
            self.size_lots = size_lots  # type: ignore[misc]
            self.reason = reason  # type: ignore[misc]
        else:
            _set(self, "order_id", order_id)
            _set(self, "market_id", market_id)
            _set(self, "size_lots", size_lots)
            _set(self, "reason", reason)


@dataclass(frozen=True, slots=True)
class Receipt:
    """``code`` is ``ErrorCode.OK`` or the stable rejection code; a rejected transaction has
    no events and changed no state."""

    code: ErrorCode
    message: str
    events: tuple[Event, ...]
    cost_units: int

    def __init__(self, code: ErrorCode, message: str, events: tuple[Event, ...],
                 cost_units: int) -> None:
        if _COMPILED:  # native slot writes (no __setattr__): see the module docstring
            self.code = code  # type: ignore[misc]
            self.message = message  # type: ignore[misc]
            self.events = events  # type: ignore[misc]
            self.cost_units = cost_units  # type: ignore[misc]
        else:
            _set(self, "code", code)
            _set(self, "message", message)
            _set(self, "events", events)
            _set(self, "cost_units", cost_units)

    @property
    def ok(self) -> bool:
        return self.code == ErrorCode.OK

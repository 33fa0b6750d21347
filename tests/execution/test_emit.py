"""The hot path's event constructors (``execution.emit``) build exactly the events' classes."""

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from rollbook.execution import emit
from rollbook.execution.errors import ErrorCode
from rollbook.execution.events import (
    CancelReason,
    Fill,
    OrderCancelled,
    OrderPlaced,
    OrderReduced,
    Receipt,
)

OWNER = bytes(range(20))
CASES: list[tuple[Callable[..., Any], type, tuple[Any, ...]]] = [
    (emit.order_placed, OrderPlaced, (7, 1, OWNER, 0, True, 1_000_000, 5, 0)),
    (emit.order_reduced, OrderReduced, (7, 1, 2, 3)),
    (emit.order_cancelled, OrderCancelled, (7, 1, 5, CancelReason.USER)),
    (emit.fill_event, Fill, (1, 7, 9, OWNER, 0, OWNER[::-1], 3, False, 1_000_001, 4, -2, 11)),
    (emit.receipt, Receipt, (ErrorCode.OK, "", (OrderReduced(7, 1, 2, 3),), 14)),
]


@pytest.mark.parametrize(("helper", "cls", "args"), CASES,
                         ids=[cls.__name__ for _, cls, _ in CASES])
def test_helper_builds_the_class_with_its_fields_in_order(helper: Callable[..., Any], cls: type,
                                                          args: tuple[Any, ...]) -> None:
    # the helper's parameters are the class's fields, by name and in order
    assert tuple(inspect.signature(helper).parameters) == cls._fields
    built = helper(*args)
    assert type(built) is cls
    assert built == cls(*args)
    assert built._asdict() == cls(*args)._asdict()

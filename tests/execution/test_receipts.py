"""The receipt and the order path's events (``execution.receipts``), in whichever build runs.

Each class declares its ``__init__`` (compiled: native slot writes; interpreted: set as
``dataclass`` does). Each must take the fields as its parameters (names and order), set every
field to its argument, and keep the instance frozen, hashable, equal-comparable, printed and
pickled as a record of its fields; the gateway's wire schema must still read its field types.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import typing
from typing import Any

import pytest

from declared_init import assert_declares_init
from rollbook._pure import is_compiled
from rollbook.execution import events, receipts
from rollbook.execution.errors import ErrorCode
from rollbook.execution.events import CancelReason
from rollbook.execution.receipts import Fill, OrderCancelled, OrderPlaced, OrderReduced, Receipt

OWNER = bytes(range(20))
SAMPLES: dict[type, tuple[Any, ...]] = {
    OrderPlaced: (7, 1, OWNER, 2, True, 1_000_000, 5, 3),
    OrderReduced: (7, 1, 2, 3),
    OrderCancelled: (7, 1, 5, int(CancelReason.USER)),
    Fill: (1, 7, 9, OWNER, 0, OWNER[::-1], 3, False, 1_000_001, 4, -2, 11),
    Receipt: (ErrorCode.OK, "", (OrderReduced(7, 1, 2, 3),), 14),
}
CLASSES = list(SAMPLES)
EVENT_CLASSES = [cls for cls in CLASSES if cls is not Receipt]


def test_every_class_of_the_module_is_covered() -> None:
    defined = {value for value in vars(receipts).values()
               if isinstance(value, type) and value.__module__ == receipts.__name__}
    assert defined == set(CLASSES)


def test_events_reexports_them_and_lists_the_events_in_its_union() -> None:
    for cls in CLASSES:
        assert getattr(events, cls.__name__) is cls
    assert set(EVENT_CLASSES) <= set(typing.get_args(events.Event))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_declared_init_takes_the_fields_in_order(cls: type) -> None:
    assert_declares_init(cls)
    names = [field.name for field in dataclasses.fields(cls)]
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except ValueError:  # mypyc gives no text signature in some cases
        if not is_compiled():
            raise
        return
    assert [p.name for p in parameters] == names
    assert all(p.default is inspect.Parameter.empty for p in parameters)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_declared_init_sets_every_field_and_stays_frozen(cls: type) -> None:
    values = dict(zip([f.name for f in dataclasses.fields(cls)], SAMPLES[cls], strict=True))
    positional = cls(*values.values())
    by_keyword = cls(**values)
    for name, value in values.items():
        assert getattr(positional, name) == value
    assert dataclasses.astuple(positional) == dataclasses.astuple(by_keyword)
    assert positional == by_keyword and hash(positional) == hash(by_keyword)
    assert repr(positional) == repr(by_keyword)
    assert repr(positional).startswith(f"{cls.__name__}({next(iter(values))}=")
    changed = dataclasses.replace(positional, cost_units=1) if cls is Receipt else (
        dataclasses.replace(positional, market_id=99))
    assert changed != positional
    for name in values:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(positional, name, values[name])
    for copied in (pickle.loads(pickle.dumps(positional)), copy.copy(positional),
                   copy.deepcopy(positional)):
        assert copied == positional and type(copied) is cls


def test_events_of_different_kinds_never_compare_equal() -> None:
    assert OrderReduced(7, 1, 5, 1) != OrderCancelled(7, 1, 5, 1)


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.__name__)
def test_field_types_stay_readable_for_the_wire_schema(cls: type) -> None:
    """The gateway derives the events' JSON shapes from these hints (compiled: mypyc's)."""
    hints = typing.get_type_hints(cls)
    assert [hints[f.name] for f in dataclasses.fields(cls)] == [
        type(value) for value in SAMPLES[cls]]


def test_receipt_ok() -> None:
    assert Receipt(ErrorCode.OK, "", (), 0).ok
    assert not Receipt(ErrorCode.INSUFFICIENT_MARGIN, "no", (), 4).ok

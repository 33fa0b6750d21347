"""The transaction classes' constructors, in whichever build runs (pure or compiled).

The order-path classes declare their own ``__init__`` (see ``execution.txs``): compiled, it
writes the slots natively; interpreted, it sets them as ``dataclass`` does. Each path must set
every field to its argument, take the parameters ``dataclass`` would generate (names, order,
defaults), and keep the instance frozen, hashable, equal-comparable and picklable.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import typing
from enum import IntEnum
from types import FunctionType
from typing import Any

import pytest

from declared_init import assert_declares_init
from rollbook._pure import is_compiled
from rollbook.execution import txs

TX_CLASSES = sorted((value for value in vars(txs).values()
                     if isinstance(value, type) and dataclasses.is_dataclass(value)
                     and value.__module__ == txs.__name__), key=lambda cls: cls.__name__)
# the classes with their own __init__ (the order path); the others keep dataclass's
DECLARED_INIT = ("CancelAll", "CancelOrder", "CancelOrderByClientId", "ModifyOrder",
                 "PlaceOrder", "Quote")
DECLARED = [cls for cls in TX_CLASSES if cls.__name__ in DECLARED_INIT]


def _sample(cls: type) -> dict[str, Any]:
    """A value per field, each distinct and none equal to the field's default."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for position, field in enumerate(dataclasses.fields(cls)):
        kind = hints[field.name]
        if kind is bytes:
            values[field.name] = bytes([position + 1]) * 20
        elif kind is bool:
            values[field.name] = True
        elif kind is int:
            values[field.name] = 10_000 + position
        elif isinstance(kind, type) and issubclass(kind, IntEnum):
            values[field.name] = max(kind)
        else:
            raise AssertionError(f"{cls.__name__}.{field.name}: no sample for {kind}")
        assert values[field.name] != field.default
    return values


def test_the_build_flag_names_the_running_build() -> None:
    assert is_compiled() == txs._COMPILED


def test_the_order_path_classes_declare_their_init() -> None:
    assert {cls.__name__ for cls in DECLARED} == set(DECLARED_INIT)
    for cls in DECLARED:
        assert dataclasses.fields(cls)  # still a dataclass (the gateway's schema reads them)
        assert_declares_init(cls)
    for cls in set(TX_CLASSES) - set(DECLARED):
        assert isinstance(vars(cls)["__init__"], FunctionType)  # dataclass's, in either build


@pytest.mark.parametrize("cls", TX_CLASSES, ids=lambda cls: cls.__name__)
def test_constructor_parameters_are_the_fields(cls: type) -> None:
    """Names, order and defaults: what ``dataclass`` would generate."""
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except ValueError:  # mypyc gives no text signature where a default is not a literal
        if not is_compiled():
            raise
        pytest.skip("compiled: no text signature (the pure run checks it)")
    expected = [(field.name, inspect.Parameter.empty if field.default is dataclasses.MISSING
                 else field.default) for field in dataclasses.fields(cls)]
    assert [(p.name, p.default) for p in parameters] == expected
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters)


@pytest.mark.parametrize("cls", DECLARED, ids=lambda cls: cls.__name__)
def test_declared_init_sets_every_field_and_stays_frozen(cls: type) -> None:
    values = _sample(cls)
    positional = cls(*values.values())
    by_keyword = cls(**values)
    for name, value in values.items():
        assert getattr(positional, name) == value
        assert getattr(by_keyword, name) == value
    assert dataclasses.astuple(positional) == tuple(values.values())
    assert positional == by_keyword and hash(positional) == hash(by_keyword)
    assert repr(positional) == repr(by_keyword)
    changed_name = next(name for name, value in values.items() if type(value) is int)
    changed = dataclasses.replace(positional, **{changed_name: values[changed_name] + 1})
    assert changed != positional and getattr(changed, changed_name) == values[changed_name] + 1
    for name in values:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(positional, name, values[name])
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(positional, name)
    for copied in (pickle.loads(pickle.dumps(positional)), copy.copy(positional),
                   copy.deepcopy(positional)):
        assert copied == positional and type(copied) is cls


@pytest.mark.parametrize("cls", DECLARED, ids=lambda cls: cls.__name__)
def test_declared_init_applies_the_defaults(cls: type) -> None:
    values = _sample(cls)
    required = {f.name: values[f.name] for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING}
    made = cls(**required)
    for field in dataclasses.fields(cls):
        expected = values[field.name] if field.default is dataclasses.MISSING else field.default
        assert getattr(made, field.name) == expected
        assert type(getattr(made, field.name)) is type(expected)

"""JSON shapes of everything the API returns, derived from the node's typed views.

The node answers queries with frozen dataclasses and the STF emits events as frozen dataclasses
(the receipt and the order path's events) or NamedTuples (the rest; ``rollbook.node.views``,
``rollbook.execution.events``). This module derives, once per class, a msgspec ``Struct`` with
the same field names (``wire_type``), and converts a value into JSON-ready builtins
(``jsonable``) by the same rules, so the OpenAPI document, the server's answers and the SDK's
typed decoding all come from one definition:

- ``bytes`` become ``0x``-prefixed lowercase hex strings (addresses, roots, hashes, leaves);
- ``IntEnum`` values become their lowercase names (``"buy"``, ``"perpetual"``), never
  numbers, so a client reads them without a table; ``bool`` stays ``bool``;
- ``tuple[X, ...]`` and ``list[X]`` become arrays, fixed tuples become arrays of their items;
- a dataclass becomes an object; a STF event (of either kind) becomes an object tagged
  ``"type"`` with the snake_case of its class name (``Fill`` -> ``"fill"``), and so does any
  record registered with ``tag_record`` (records that share a union with others need a tag:
  ``rollbook.node.views.PositionView`` beside the events in ``AccountEvent.event``);
- any other NamedTuple becomes a fixed-length array of its fields (``BookLevel`` ->
  ``[price_ticks, size_lots, order_count]``), the compact form order books use.

Invariants: ``jsonable(v)`` always validates against ``wire_type(type(v))`` (tested for every
view and event); integers are never turned into floats or strings (JSON numbers of arbitrary
size; every rollbook integer fits in 256 bits). A record's converter is Python source generated
once per class (one dict display: every event of every ack is converted on the gateway's event
loop); ``tests/gateway/test_wire_output.py`` pins its bytes to the per-field definition.

Limits: only the annotation forms above (plus ``X | None``, ``int``, ``str``, ``bool``) are
supported; anything else raises ``TypeError`` at derivation, i.e. at import time of the
gateway, never while serving.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from enum import IntEnum
from typing import Annotated, Any

import msgspec

from rollbook.execution import events as stf_events

__all__ = [
    "EVENT_TYPES",
    "HexBytes",
    "event_tag",
    "jsonable",
    "tag_record",
    "wire_type",
]

HexBytes = Annotated[str, msgspec.Meta(pattern="^0x([0-9a-f]{2})*$",
                                       description="bytes as 0x-prefixed lowercase hex")]

EVENT_TYPES: tuple[type, ...] = typing.get_args(stf_events.Event)

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_structs: dict[type, Any] = {}
_converters: dict[type, Callable[[Any], Any]] = {}
_tagged: set[type] = set(EVENT_TYPES)


def tag_record(cls: type) -> None:
    """Tag ``cls``'s objects with ``"type"`` (call before its first use)."""
    if cls in _structs or cls in _converters:
        raise RuntimeError(f"{cls.__name__} was derived untagged already")
    _tagged.add(cls)


def event_tag(cls: type) -> str:
    """``PositionDeleveraged`` -> ``"position_deleveraged"``."""
    return _CAMEL.sub("_", cls.__name__).lower()


def _is_named_tuple(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")


def _is_record(cls: type) -> bool:
    """An object on the wire: a dataclass, an event or a tagged NamedTuple."""
    return dataclasses.is_dataclass(cls) or (_is_named_tuple(cls) and cls in _tagged)


def _record_fields(cls: type) -> list[tuple[str, Any]]:
    hints = typing.get_type_hints(cls)
    if dataclasses.is_dataclass(cls):
        return [(f.name, hints[f.name]) for f in dataclasses.fields(cls)]
    return [(name, hints[name]) for name in cls._fields]  # type: ignore[attr-defined]


def wire_type(py_type: Any) -> Any:
    """The msgspec type that describes ``jsonable`` of a value of ``py_type``."""
    if py_type is bytes:
        return HexBytes
    if py_type in (int, str, bool, type(None)):
        return py_type
    if isinstance(py_type, type) and issubclass(py_type, IntEnum):
        return typing.Literal[tuple(m.name.lower() for m in py_type)]
    origin = typing.get_origin(py_type)
    args = typing.get_args(py_type)
    if origin in (types.UnionType, typing.Union):
        return typing.Union[tuple(wire_type(a) for a in args)]  # noqa: UP007
    if origin in (tuple, list):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return tuple[tuple(wire_type(a) for a in args)]  # type: ignore[misc]
        return list[wire_type(args[0])]  # type: ignore[misc]
    if origin is dict:
        raise TypeError("dict fields are not part of the wire schema")
    if isinstance(py_type, type) and _is_record(py_type):
        return _struct_of(py_type)
    if _is_named_tuple(py_type):
        return tuple[tuple(wire_type(hint) for _, hint in _record_fields(py_type))]  # type: ignore[misc]
    raise TypeError(f"no wire type for {py_type!r}")


def _struct_of(cls: type) -> Any:
    cached = _structs.get(cls)
    if cached is not None:
        return cached
    fields = [(name, wire_type(hint)) for name, hint in _record_fields(cls)]
    tagged = cls in _tagged
    struct = msgspec.defstruct(
        cls.__name__, fields, kw_only=True, forbid_unknown_fields=False,
        tag_field="type" if tagged else None, tag=event_tag(cls) if tagged else None,
        module=__name__)
    doc = (cls.__doc__ or "").strip()
    if doc and not doc.startswith(cls.__name__ + "("):  # skip auto-generated signatures
        struct.__doc__ = doc
    _structs[cls] = struct
    return struct


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _enum_name(value: IntEnum) -> str:
    return value.name.lower()


def _field_converter(hint: Any) -> Callable[[Any], Any]:
    """How to convert a field of declared type ``hint`` (the declaration decides: an IntEnum
    value in an ``int`` field stays a number, as its schema says)."""
    if hint is int:
        return int
    if hint is bytes:
        return _hex
    if hint in (bool, str):
        return _identity
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return _enum_name
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if (origin in (tuple, list) and len(args) == 2 and args[1] is Ellipsis) or origin is list:
        inner = _field_converter(args[0])
        return lambda items: [inner(item) for item in items]
    if isinstance(hint, type) and _is_record(hint):
        return _converter(hint)
    return jsonable


def _identity(value: Any) -> Any:
    return value


_PLAIN = (bool, str)  # a tuple, not ``bool | str``: that union is rebuilt on every call


def _converter(cls: type) -> Callable[[Any], Any]:
    """The converter of one record class: a function generated once per class that builds the
    object in one dict display (see ``_converter_source``)."""
    conv = _converters.get(cls)
    if conv is not None:
        return conv
    fields = [(name, _field_converter(hint)) for name, hint in _record_fields(cls)]
    tag = event_tag(cls) if cls in _tagged else None
    source, namespace = _converter_source(tag, fields)
    exec(source, namespace)  # our own source, built from the class's field names
    conv = typing.cast(Callable[[Any], Any], namespace["convert"])
    _converters[cls] = conv
    return conv


def _converter_source(tag: str | None, fields: list[tuple[str, Callable[[Any], Any]]],
                      ) -> tuple[str, dict[str, Any]]:
    """Python source of ``convert(value) -> dict`` and the namespace it runs in.

    Every event of every ack is converted here, and a loop over the fields with a call per
    field cost ~1 µs for a ``Fill`` on the event loop (the gateway's hot path). The generated
    function reads each field once, inline: ``bool``, ``str`` and ``int`` fields as stored,
    ``bytes`` as ``"0x" + hex``, an ``IntEnum`` through a member -> name table, anything else
    through its converter, ``None`` kept as ``None``, keys in declaration order after the tag.
    ``int`` fields are not passed through ``int``: the only non-``int`` they can hold is an
    ``IntEnum`` member (the interpreted build's cancel reasons), which JSON encodes as the same
    number."""
    namespace: dict[str, Any] = {}
    items = [] if tag is None else [f"'type': {tag!r}"]
    for index, (name, field_conv) in enumerate(fields):
        if not name.isidentifier():  # pragma: no cover - dataclass and NamedTuple fields are
            raise TypeError(f"field {name!r} is not an identifier")
        read = f"value.{name}"
        if field_conv is int or field_conv is _identity:
            expression = read
        elif field_conv is _hex:
            expression = f"(None if (x{index} := {read}) is None else '0x' + x{index}.hex())"
        else:
            helper = f"_conv{index}"
            namespace[helper] = field_conv
            expression = f"(None if (x{index} := {read}) is None else {helper}(x{index}))"
        items.append(f"{name!r}: {expression}")
    body = ", ".join(items)
    return f"def convert(value):\n    return {{{body}}}\n", namespace


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready builtins, by the rules of the module docstring."""
    cls = type(value)
    conv = _converters.get(cls)  # first: a record seen before (every event of every ack)
    if conv is not None:
        return conv(value)
    if value is None or isinstance(value, _PLAIN):
        return value
    if isinstance(value, IntEnum):
        return value.name.lower()
    if isinstance(value, int):
        return value
    if isinstance(value, bytes):
        return _hex(value)
    if _is_record(cls):
        return _converter(cls)(value)
    if isinstance(value, tuple | list):
        return [jsonable(item) for item in value]
    raise TypeError(f"cannot serialise {cls.__name__}")

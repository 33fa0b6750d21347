"""Pickle and copy support for the STF's frozen dataclasses, compiled (mypyc) or interpreted.

A mypyc-compiled frozen dataclass cannot be restored attribute by attribute (its ``__setattr__``
refuses, and its ``__new__`` runs ``__init__``), so each frozen dataclass of the given modules is
reduced to a call of its class with its ``init`` fields: the same pickle either way.
"""

from __future__ import annotations

import copyreg
import dataclasses
from types import ModuleType
from typing import Any

__all__ = ["register_frozen_classes", "register_frozen_dataclasses"]


def _reduce_frozen(obj: Any) -> tuple[type, tuple[Any, ...]]:
    """``obj`` as ``(cls, init field values)``: rebuilt by calling the class, its checks run."""
    return type(obj), tuple(getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init)


def register_frozen_classes(*classes: type) -> None:
    """Register ``_reduce_frozen`` with ``copyreg`` for each of these frozen dataclasses (the
    compiled modules outside ``rollbook.execution`` name theirs)."""
    for cls in classes:
        params = getattr(cls, "__dataclass_params__", None)
        assert params is not None and params.frozen, f"{cls.__name__} is not a frozen dataclass"
        copyreg.pickle(cls, _reduce_frozen)


def register_frozen_dataclasses(*modules: ModuleType) -> None:
    """Register ``_reduce_frozen`` with ``copyreg`` for every frozen dataclass defined in
    ``modules``. Registered in both builds (by ``rollbook.execution``), so that the builds
    pickle these classes alike and a snapshot written by one loads in the other."""
    for module in modules:
        for value in vars(module).values():
            params = getattr(value, "__dataclass_params__", None)
            if (isinstance(value, type) and value.__module__ == module.__name__
                    and params is not None and params.frozen):
                copyreg.pickle(value, _reduce_frozen)

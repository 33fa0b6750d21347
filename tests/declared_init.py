"""One check for the frozen dataclasses that declare their own ``__init__`` (the order path's
transactions, the receipt and its events): still a frozen, comparable dataclass, and the
constructor that runs is the declared one (native when compiled), not dataclass's."""

from __future__ import annotations

from types import FunctionType

from rollbook._pure import is_compiled


def assert_declares_init(cls: type) -> None:
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen and params.eq and params.init
    init = vars(cls)["__init__"]
    if is_compiled():  # the native constructor, not dataclass's interpreted function
        assert not isinstance(init, FunctionType)
    else:  # the declared one (dataclass's is named ``__create_fn__.<locals>.__init__``)
        assert init.__qualname__ == f"{cls.__name__}.__init__"

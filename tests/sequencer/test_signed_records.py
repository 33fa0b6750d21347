"""``SignedTransaction`` and ``SignedEntry`` declare their ``__init__`` (one of each per decoded
transaction; see ``sequencer.signatures``): in whichever build runs (pure or compiled), every
field is set from its argument, positionally or by keyword, and the instances stay frozen
dataclasses, hashable, equal-comparable, copyable and picklable."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from types import FunctionType
from typing import Any

import pytest

from rollbook._pure import is_compiled
from rollbook.execution.txs import PlaceOrder, Side
from rollbook.sequencer import batch_data, signatures
from rollbook.sequencer.batch_data import SignedEntry
from rollbook.sequencer.signatures import SignedTransaction

ACTION = PlaceOrder(b"\x01" * 20, 0, 1, Side.BUY, 100, 5)
SIGNED = SignedTransaction(ACTION, 1_700_000_000_000, b"\x02" * 65)
SAMPLES: list[tuple[type, dict[str, Any]]] = [
    (SignedTransaction, {"action": ACTION, "nonce_ms": 1_700_000_000_000,
                         "signature": b"\x02" * 65}),
    (SignedEntry, {"signed": SIGNED, "body": b"\x03" * 130}),
]


def test_the_build_flags_name_the_running_build() -> None:
    assert signatures._COMPILED == is_compiled() == batch_data._COMPILED


@pytest.mark.parametrize(("cls", "values"), SAMPLES, ids=lambda item: getattr(item, "__name__", ""))
def test_fields_are_set_and_the_record_stays_frozen(cls: type, values: dict[str, Any]) -> None:
    names = [field.name for field in dataclasses.fields(cls)]
    assert names == list(values), "the declared __init__ takes the fields, in order"
    init = vars(cls)["__init__"]
    assert isinstance(init, FunctionType) != is_compiled()  # the native constructor compiled
    positional, by_keyword = cls(*values.values()), cls(**values)
    for record in (positional, by_keyword):
        assert {name: getattr(record, name) for name in names} == values
    assert positional == by_keyword and hash(positional) == hash(by_keyword)
    assert positional != dataclasses.replace(positional, **{names[-1]: b""})
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(positional, names[0], None)
    assert pickle.loads(pickle.dumps(positional)) == positional
    assert copy.deepcopy(positional) == positional

"""Replay a rollbook op stream into the PyPI ``matching-engine`` peer and time it.

Standalone: run by path under a Python >= 3.12 interpreter whose environment has
``matching-engine`` installed (see ``rollbook.bench.peers``). It must not import
rollbook, which lives in a different interpreter.

Usage::

    python _peer_matching_engine.py STREAM.json

STREAM.json is a JSON array of ops for one market:

* ``["L", order_id, side, price_ticks, size_lots, tif]``: side "B"/"S", tif "GTC"/"IOC";
* ``["C", order_id]``: cancel (a no-op if the order is already gone);
* ``["M", order_id, new_price_ticks, new_size_lots]``: modify (cancel-replace).

The peer is driven through ``MatchingEngine.process(SequencedCommand)``, its
deterministic single-market core (the layer its gateway worker and WAL replay
call), with no sequencer clock, WAL or HTTP. Every command object is built
before the timer; only the replay loop is timed. One JSON object is printed.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib.metadata import version
from typing import Any, TypeAlias

# The peer is installed only in its own >= 3.12 venv, never where rollbook is type-checked.
from matching_engine.domain import (  # type: ignore[import-not-found, unused-ignore]
    CancelOrder,
    NewOrder,
    OrderType,
    SelfTradePrevention,
    SequencedCommand,
    Side,
    TimeInForce,
)
from matching_engine.engine import MatchingEngine  # type: ignore[import-not-found, unused-ignore]
from matching_engine.events import OrderCancelled  # type: ignore[import-not-found, unused-ignore]

PEER_NAME = "matching-engine"
# One account for the whole stream; self-trade prevention off, so every cross
# trades at pure price-time priority (rollbook's stream has no accounts).
ACCOUNT = 1
SIDES = {"B": Side.BUY, "S": Side.SELL}
TIFS = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC}

NOTES = (
    "driven via matching_engine.engine.MatchingEngine.process(SequencedCommand) "
    "(in-process core: no sequencer clock, WAL or gateway); one account, stp=none; "
    "the peer has no native modify: 'M' is CancelOrder then, only if the cancel "
    "succeeded, NewOrder GTC limit with the same id (queue priority always lost, "
    "new size is the full new quantity, the replacement may cross); "
    "a cancel of a gone order is rejected by the peer (unknown_order) and counted as an op; "
    "fills = number of Trade events (one per maker order touched)"
)

# A plan entry is one SequencedCommand, or (cancel, replacement) for a modify.
PlanItem: TypeAlias = SequencedCommand | tuple[SequencedCommand, SequencedCommand]


def _new_order(order_id: int, side: Side, price: int, size: int, tif: TimeInForce) -> NewOrder:
    return NewOrder(
        order_id,
        ACCOUNT,
        side,
        price,
        size,
        OrderType.LIMIT,
        tif,
        False,
        SelfTradePrevention.NONE,
    )


def build_plan(ops: list[list[Any]]) -> list[PlanItem]:
    """Turn the ops into pre-sequenced peer commands (the untimed part)."""
    plan: list[PlanItem] = []
    sides: dict[int, Side] = {}  # side of every order id seen, for modifies
    seq = 0
    for op in ops:
        kind = op[0]
        if kind == "L":
            _, oid, side_code, price, size, tif_code = op
            side = SIDES[side_code]
            sides[oid] = side
            seq += 1
            order = _new_order(oid, side, price, size, TIFS[tif_code])
            plan.append(SequencedCommand(seq, seq, order))
        elif kind == "C":
            seq += 1
            plan.append(SequencedCommand(seq, seq, CancelOrder(op[1], ACCOUNT)))
        elif kind == "M":
            _, oid, price, size = op
            # An id never placed cannot be resting: the cancel is rejected and the
            # replacement skipped, so its side does not matter.
            side = sides.get(oid, Side.BUY)
            cancel = SequencedCommand(seq + 1, seq + 1, CancelOrder(oid, ACCOUNT))
            replace = _new_order(oid, side, price, size, TimeInForce.GTC)
            seq += 2
            plan.append((cancel, SequencedCommand(seq, seq, replace)))
        else:
            raise ValueError(f"unknown op kind {kind!r} in {op!r}")
    return plan


def replay(engine: MatchingEngine, plan: list[PlanItem]) -> float:
    """Apply the plan; return the elapsed seconds of the loop alone."""
    process = engine.process
    cancelled = OrderCancelled
    start = time.perf_counter()
    for item in plan:
        if isinstance(item, tuple):
            cancel, replace = item
            if type(process(cancel)[0]) is cancelled:
                process(replace)
        else:
            process(item)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} STREAM.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        ops = json.load(fh)
    plan = build_plan(ops)
    engine = MatchingEngine()
    elapsed = replay(engine, plan)
    result = {
        "name": PEER_NAME,
        "version": version(PEER_NAME),
        "orders_per_s": len(ops) / elapsed if elapsed > 0 else 0.0,
        "ops": len(ops),
        "fills": engine.next_trade_id - 1,  # trade ids are 1, 2, ... one per Trade event
        "resting_orders_end": len(engine.book),
        "elapsed_s": elapsed,
        "python": platform.python_version(),
        "notes": NOTES,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""The state transition function: ``apply_batch(state, batch) -> receipts``.

Pure and deterministic: time is the batch timestamp, prices come from signed oracle
transactions in the batch, and nothing here reads the machine. Each transaction is atomic:
handlers validate and plan before they mutate, and a rejection becomes a receipt with a stable
error code that changed no state.

Metering: every transaction has a deterministic cost (a base per kind plus a cost per event it
emitted). Before a transaction runs, its worst-case cost must fit in what is left of
``batch_cost_max``; otherwise it is rejected with BATCH_COST_LIMIT, so a batch's work is
bounded before it is executed.

After each oracle update or funding payment, groups holding positions in the affected markets
are checked and underwater ones queued; the queue is then worked through (bounded per
transaction). See ``liquidation``.

Options (``options.*``): volatility updates and expiries are heartbeats too (their work scales
with the holders of the affected options), bounded like oracle updates; delisting cancels a whole
book, bounded the same way. A venue with option classes raises the bound of an order or modify by
one event per fill (a fill can trigger market-maker protection, one event per maker) and bounds a
mass quote by its quotes plus the ladder it replaces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, cast

from rollbook.execution import accounts, orders
from rollbook.execution.config import HEARTBEAT_COST_BOUND_UNITS, VenueConfig
from rollbook.execution.errors import ERROR_MESSAGES, ErrorCode, TxRejected
from rollbook.execution.events import Event
from rollbook.execution.funding import funding_tick
from rollbook.execution.liquidation import enqueue_underwater_groups, process_liquidation_queue
from rollbook.execution.options import lifecycle, quotes
from rollbook.execution.options.protection import MASS_QUOTE_QUOTES_MAX
from rollbook.execution.options.volatility import apply_volatility_update
from rollbook.execution.oracle import apply_oracle_update
from rollbook.execution.orders import cancel_order, modify_order, place_order
from rollbook.execution.receipts import Receipt
from rollbook.execution.state import State
from rollbook.execution.txs import (
    Batch,
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    DelistOption,
    Deposit,
    ExpireOptions,
    ForcedWithdrawal,
    FundingTick,
    ListOption,
    MassQuote,
    ModifyOrder,
    MoveIsolatedMargin,
    OracleUpdate,
    PlaceOrder,
    ProcessLiquidations,
    SetMarginMode,
    SetMmp,
    SetPortfolioMargin,
    Transaction,
    Transfer,
    VolatilityUpdate,
    Withdraw,
)

__all__ = ["apply_batch", "apply_transaction", "begin_batch", "cost_bound_units"]

EVENT_COST_UNITS: Final = 2
BASE_COST_UNITS: dict[type, int] = {
    Deposit: 10,
    Withdraw: 20,
    Transfer: 20,
    PlaceOrder: 10,
    CancelOrder: 4,
    CancelOrderByClientId: 4,
    CancelAll: 8,
    ModifyOrder: 12,
    OracleUpdate: 100,
    FundingTick: 100,
    ProcessLiquidations: 100,
    SetMarginMode: 10,
    MoveIsolatedMargin: 20,
    ForcedWithdrawal: 20,
    ListOption: 50,
    DelistOption: 20,
    VolatilityUpdate: 100,
    ExpireOptions: 100,
    SetPortfolioMargin: 20,
    SetMmp: 10,
    MassQuote: 20,
}


def _oracle_update(state: State, tx: OracleUpdate, events: list[object]) -> None:
    changed = apply_oracle_update(state, tx)
    enqueue_underwater_groups(state, changed)
    process_liquidation_queue(state, events)


def _funding_tick(state: State, tx: FundingTick, events: list[object]) -> None:
    paid = funding_tick(state, events)
    enqueue_underwater_groups(state, paid)
    process_liquidation_queue(state, events)


def _process_liquidations(state: State, tx: ProcessLiquidations, events: list[object]) -> None:
    process_liquidation_queue(state, events)


def _volatility_update(state: State, tx: VolatilityUpdate, events: list[object]) -> None:
    affected = apply_volatility_update(state, tx)
    enqueue_underwater_groups(state, affected)
    process_liquidation_queue(state, events)


Handler = Callable[[State, Any, list[object]], None]

HANDLERS: dict[type, Handler] = {
    Deposit: accounts.deposit,
    Withdraw: accounts.withdraw,
    Transfer: accounts.transfer,
    PlaceOrder: orders.place_order,
    CancelOrder: orders.cancel_order,
    CancelOrderByClientId: orders.cancel_order_by_client_id,
    CancelAll: orders.cancel_all,
    ModifyOrder: orders.modify_order,
    OracleUpdate: _oracle_update,
    FundingTick: _funding_tick,
    ProcessLiquidations: _process_liquidations,
    SetMarginMode: accounts.set_margin_mode,
    MoveIsolatedMargin: accounts.move_isolated_margin,
    ForcedWithdrawal: accounts.forced_withdrawal,
    ListOption: lifecycle.list_option,
    DelistOption: lifecycle.delist_option,
    VolatilityUpdate: _volatility_update,
    ExpireOptions: lifecycle.expire_options,
    SetPortfolioMargin: accounts.set_portfolio_margin,
    SetMmp: quotes.set_mmp,
    MassQuote: quotes.mass_quote,
}
assert set(HANDLERS) == set(BASE_COST_UNITS)
_HEARTBEATS = (OracleUpdate, FundingTick, ProcessLiquidations, VolatilityUpdate, ExpireOptions,
               DelistOption)


def cost_bound_units(state: State, tx: Transaction) -> int:
    """Worst-case cost of ``tx``, known before it runs (the sequencer cuts batches with it)."""
    return _kind_cost_bound(state.config, type(tx))


def _kind_cost_bound(config: VenueConfig, kind: type) -> int:
    """The bound depends only on the transaction's kind and the venue configuration."""
    if kind is PlaceOrder or kind is ModifyOrder:
        # a sweep's steps, plus the taker's own placement/cancel and the replaced order; with
        # options, each fill may also trigger one maker's protection (one event)
        protection = config.fills_per_order_max if config.option_classes else 0
        return BASE_COST_UNITS[kind] + EVENT_COST_UNITS * (
            config.fills_per_order_max + 2 + protection)
    if kind is CancelAll:
        return BASE_COST_UNITS[kind] + EVENT_COST_UNITS * config.open_orders_per_subaccount_max
    if kind is MassQuote:
        # the new quotes, and the cancels of the ladder it replaces
        return BASE_COST_UNITS[kind] + EVENT_COST_UNITS * 2 * MASS_QUOTE_QUOTES_MAX
    if kind in _HEARTBEATS:
        return HEARTBEAT_COST_BOUND_UNITS
    return BASE_COST_UNITS[kind] + EVENT_COST_UNITS


def _static_cost_bounds(config: VenueConfig) -> dict[type, int]:
    return {kind: _kind_cost_bound(config, kind) for kind in HANDLERS}


# kind -> (handler, base cost): one lookup per transaction on the hot path
_DISPATCH: Final[dict[type, tuple[Handler, int]]] = {
    kind: (handler, BASE_COST_UNITS[kind]) for kind, handler in HANDLERS.items()}
_PLACE_ORDER_BASE_UNITS: Final = BASE_COST_UNITS[PlaceOrder]
_CANCEL_ORDER_BASE_UNITS: Final = BASE_COST_UNITS[CancelOrder]
_MODIFY_ORDER_BASE_UNITS: Final = BASE_COST_UNITS[ModifyOrder]
assert (HANDLERS[PlaceOrder], HANDLERS[CancelOrder], HANDLERS[ModifyOrder]) == (
    place_order, cancel_order, modify_order)
_OK: Final = ErrorCode.OK
_BATCH_FULL: Final = Receipt(ErrorCode.BATCH_COST_LIMIT,
                             ERROR_MESSAGES[ErrorCode.BATCH_COST_LIMIT], (), 0)


def apply_transaction(state: State, tx: Transaction) -> Receipt:
    """Apply one transaction; a rejection returns its receipt and leaves the state untouched."""
    return _apply_transaction(state, tx, [])


def _apply_transaction(state: State, tx: Transaction, events: list[object]) -> Receipt:
    """``apply_transaction`` with the events appended to ``events`` (what it holds already is
    left alone); a rejection appends none.

    ``apply_batch`` passes one list for the whole batch and never empties it: a list built and
    freed per transaction, or one emptied after each (which frees its item array, so the next
    append allocates it again), is a fixed part of every order's cost. The receipt holds a tuple
    copy of this transaction's events, never the list.
    """
    start = len(events)
    kind = type(tx)
    # the order kinds (nearly all traffic) are called by name, which the compiled build turns
    # into native calls (a call through the table or through ``orders.`` is a Python-level
    # call); the base costs are the table's, and it holds the same functions (asserted)
    if kind is PlaceOrder:
        base = _PLACE_ORDER_BASE_UNITS
    elif kind is CancelOrder:
        base = _CANCEL_ORDER_BASE_UNITS
    elif kind is ModifyOrder:
        base = _MODIFY_ORDER_BASE_UNITS
    else:
        entry = _DISPATCH.get(kind)
        if entry is None:
            unknown = TxRejected(ErrorCode.MALFORMED_TRANSACTION, "unknown transaction kind")
            return Receipt(unknown.code, unknown.message, (), 0)
        base = entry[1]
    try:
        if kind is PlaceOrder:
            place_order(state, cast(PlaceOrder, tx), events)
        elif kind is CancelOrder:
            cancel_order(state, cast(CancelOrder, tx), events)
        elif kind is ModifyOrder:
            modify_order(state, cast(ModifyOrder, tx), events)
        else:
            _DISPATCH[kind][0](state, tx, events)
    except TxRejected as rejected:
        del events[start:]  # what a rejected handler appended before raising is dropped
        return Receipt(rejected.code, rejected.message, (), base)
    count = len(events) - start
    if count == 0:
        return Receipt(_OK, "", (), base)
    typed_events = _events_tuple(events, start, count)
    return Receipt(_OK, "", typed_events, base + EVENT_COST_UNITS * count)


def _events_tuple(events: list[object], start: int, count: int) -> tuple[Event, ...]:
    """``tuple(events[start:])``, which holds ``count`` events; most transactions emit one,
    whose tuple is built directly (no slice list)."""
    if count == 1:
        return cast("tuple[Event, ...]", (events[start],))
    return cast("tuple[Event, ...]", tuple(events[start:]))


def begin_batch(state: State, index: int, timestamp_ms: int) -> None:
    """Open batch ``index`` at ``timestamp_ms``: the header's only effect on the state.

    A sequencer that executes transactions as they arrive opens the batch with this, applies
    each transaction with ``apply_transaction`` while the batch's used cost plus the next
    transaction's ``cost_bound_units`` fits in ``batch_cost_max`` (else it closes the batch
    first), and so produces exactly what ``apply_batch`` computes when a verifier replays it.
    """
    assert index == state.batch_index + 1, "batches apply in index order"
    assert timestamp_ms >= state.timestamp_ms, "batch time never goes backwards"
    state.batch_index = index
    state.timestamp_ms = timestamp_ms


def apply_batch(state: State, batch: Batch) -> list[Receipt]:
    """Apply a batch in order under its cost limit; returns one receipt per transaction."""
    begin_batch(state, batch.index, batch.timestamp_ms)
    limit = state.config.batch_cost_max
    used = 0
    transactions = batch.transactions
    # sized once and filled by index: appending grows the list step by step, each step a
    # reallocation that copies what it holds (a batch holds thousands of receipts)
    receipts: list[Receipt] = [_BATCH_FULL] * len(transactions)
    bounds = _static_cost_bounds(state.config)
    # the order kinds' bounds read once (a dict lookup per transaction costs more than the checks)
    place_bound = bounds[PlaceOrder]
    cancel_bound = bounds[CancelOrder]
    # every transaction appends its events here (see _apply_transaction); dropped at the end
    events: list[object] = []
    for index, tx in enumerate(transactions):
        kind = type(tx)
        # ``bound`` stays a plain int (an ``int | None`` is boxed in the compiled build)
        if kind is PlaceOrder:
            bound = place_bound
        elif kind is CancelOrder:
            bound = cancel_bound
        else:
            kind_bound = bounds.get(kind)
            if kind_bound is None:
                # an unknown kind: a rejection receipt
                receipts[index] = _apply_transaction(state, tx, events)
                continue
            bound = kind_bound
        if used + bound > limit:
            continue  # its receipt is already _BATCH_FULL
        receipt = _apply_transaction(state, tx, events)
        used += receipt.cost_units
        receipts[index] = receipt
    return receipts

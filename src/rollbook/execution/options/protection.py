"""Market-maker protection in the STF: count quote fills, cancel the ladder when a limit trips.

Protected orders are a subaccount's *quotes* on one underlying: the orders its latest
``MassQuote`` on that index placed (``QuoteLadder.quote_order_ids``). When such a quote fills as
a maker, the fill is recorded in the ladder's ``mmp.MmpWindow`` (if ``SetMmp`` configured one)
at batch time, with its quantity (lots x contract size, signed from the maker's side), delta and
vega (``portfolio.position_risk`` of the filled lots at the current marks). When the window
exceeds a quantity, delta or vega limit it triggers: at the end of the matching step (after every
planned fill of the taker's sweep, so one sweep's fills complete), the ladder's quotes still
resting are cancelled, one ``MmpTriggered`` event lists them, and new mass quotes on the index
are refused until the freeze ends (or until ``SetMmp`` resets it).

Bounded: a trigger cancels at most one ladder (``MASS_QUOTE_QUOTES_MAX`` quotes) and emits one
event; a sweep triggers at most once per maker it fills, so a taker's cost bound grows by one
event per fill at most (``stf``). The window holds at most ``MMP_FILLS_IN_WINDOW_STF_MAX``
fills (reaching that many triggers), which bounds its leaf.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollbook.execution.events import MmpTriggered
from rollbook.execution.options.portfolio import position_risk
from rollbook.execution.positions import remove_resting_order
from rollbook.execution.state import MarketState, QuoteLadder, State

if TYPE_CHECKING:  # matching imports this module
    from rollbook.execution.matching import MatchStep

__all__ = [
    "MASS_QUOTE_QUOTES_MAX",
    "MMP_FILLS_IN_WINDOW_STF_MAX",
    "cancel_ladder_quotes",
    "record_quote_fills",
]

MASS_QUOTE_QUOTES_MAX = 64
MMP_FILLS_IN_WINDOW_STF_MAX = 64
_FROZEN_UNTIL_RESET = -1


def cancel_ladder_quotes(state: State, ladder: QuoteLadder) -> tuple[int, ...]:
    """Remove the ladder's quotes still resting; returns their ids (the ladder is emptied)."""
    cancelled: list[int] = []
    orders = state.orders
    for order_id in ladder.quote_order_ids:
        order = orders.get(order_id)
        if order is not None:
            remove_resting_order(state, state.markets[order.market_id], order)
            cancelled.append(order_id)
    ladder.quote_order_ids = []
    state.touched_quotes.add(ladder.key)
    return tuple(cancelled)


def record_quote_fills(state: State, market: MarketState,
                       steps: list[MatchStep],
                       events: list[object]) -> None:
    """After a sweep of an option market's book: count protected fills, trigger, cancel."""
    option = market.option
    assert option is not None
    spec = option.spec
    index_id = spec.index_id
    now_ms = state.timestamp_ms
    triggered: list[QuoteLadder] = []
    for step in steps:
        fill_lots = step.fill_lots
        if step.cancel_reason or fill_lots == 0:
            continue
        order = step.order
        sub = order.subaccount
        ladder = state.quotes.get((sub.owner, sub.number, index_id))
        if ladder is None or ladder.mmp is None or order.order_id not in ladder.quote_order_ids:
            continue
        signed_lots = fill_lots if order.is_buy else -fill_lots
        greeks = position_risk(spec, signed_lots, state.risk.cache()).greeks
        state.touched_quotes.add(ladder.key)
        if ladder.mmp.record_fill(now_ms, signed_lots * spec.contract_size_nanounits,
                                  greeks.delta_nanounits, greeks.vega_quantums_per_vol_point):
            triggered.append(ladder)
    for ladder in triggered:
        cancelled = cancel_ladder_quotes(state, ladder)
        assert ladder.mmp is not None
        until = ladder.mmp.frozen_until_ms
        events.append(MmpTriggered(ladder.key[0], ladder.key[1], index_id, cancelled,
                                   _FROZEN_UNTIL_RESET if until is None else until))

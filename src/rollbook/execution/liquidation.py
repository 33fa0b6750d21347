"""Liquidation: book first, then the insurance-fund backstop, then auto-deleveraging.

Trigger: after every transaction that moves prices or balances outside trading (oracle
updates, funding payments), each group holding a position in an affected market is checked,
and those with equity < maintenance requirement join the liquidation queue in key order. The
queue is worked through, at most ``liquidations_per_tx_max`` groups per transaction, at the end
of those transactions and by ``ProcessLiquidations`` heartbeats. A queued group can place no
risk-increasing order (it fails initial margin) and can move no collateral out.

For one group, in order, stopping as soon as equity >= maintenance:
1. cancel its open orders in the group's markets (releases reserved margin);
2. per position (by market id), close ``liquidation_step_ppm`` of it at a time through the
   book, never beyond the bankruptcy price (the price at which closing the whole remaining
   position leaves equity at zero), paying a penalty of ``liquidation_penalty_ppm`` of the
   notional to the insurance fund, capped at the equity left, so the penalty never creates debt;
3. whatever the book cannot absorb within that bound is taken over by the insurance fund, if
   the fund stays above its own maintenance margin and under ``backstop_notional_quantums_max``
   (the JELLY lesson: cap the backstop's exposure);
4. otherwise the position is auto-deleveraged against opposite positions with positive equity,
   ranked by profit x leverage (then by key). A counterparty takes only as many lots as leave
   it with non-negative equity (one that joined after the group went bankrupt may be unable to
   carry its share); counterparties pushed below maintenance are queued in turn;
5. a group still holding a position below maintenance (ADL could not place all of it) goes
   back to the end of the queue and is retried by a later transaction: backpressure, never
   debt pushed onto a counterparty.

Every path has the same terms: the liquidated group pays a penalty of
``liquidation_penalty_ppm`` of the notional it gives up to the insurance fund, capped at its
positive equity, and keeps the rest of its equity. Only a deficit (negative equity) moves at the
bankruptcy price: the fund covers it on the backstop path, the counterparties on the ADL path,
so flat accounts never pay.

Money is conserved at every step: the book path is ordinary fills, the backstop and ADL move
exactly the quote amount that one side pays and the other receives.
"""

from __future__ import annotations

from rollbook.execution.events import CancelReason, Liquidated, PositionDeleveraged
from rollbook.execution.margin import (
    GroupRisk,
    group_risk,
    notional_quantums,
    position_value_quantums,
)
from rollbook.execution.matching import apply_plan, plan_match
from rollbook.execution.orders import cancel_orders_of_group_markets
from rollbook.execution.positions import (
    ensure_position,
    release_position_if_empty,
    settle_trade_side,
)
from rollbook.execution.state import GroupKey, MarginGroup, MarketState, Position, State
from rollbook.execution.txs import SelfTradePrevention
from rollbook.execution.units import PPM, div_ceil, div_floor, div_trunc, mul_div_ceil

__all__ = [
    "enqueue_groups_if_underwater",
    "enqueue_underwater_groups",
    "process_liquidation_queue",
]

LIQUIDATION_STEPS_PER_POSITION_MAX = 64


def _below_maintenance(risk: GroupRisk) -> bool:
    return risk.equity_quantums < risk.maintenance_quantums


def enqueue_underwater_groups(state: State, market_ids: list[int]) -> None:
    """Queue every group holding a position in ``market_ids`` that is below maintenance."""
    candidates: dict[GroupKey, MarginGroup] = {}
    for market_id in market_ids:
        for key, position in state.markets[market_id].holders.items():
            candidates[key] = position.group
    _enqueue_if_underwater(state, candidates)


def enqueue_groups_if_underwater(state: State,
                                 candidates: dict[GroupKey, MarginGroup]) -> None:
    """Queue, in key order, each of ``candidates`` that is below maintenance."""
    _enqueue_if_underwater(state, candidates)


def _enqueue_if_underwater(state: State, candidates: dict[GroupKey, MarginGroup]) -> None:
    queue = state.liquidation_queue
    for key in sorted(candidates):
        if key not in queue and _below_maintenance(group_risk(state.markets, candidates[key])):
            _enqueue(state, key)


def _enqueue(state: State, key: GroupKey) -> None:
    """Append ``key`` to the queue under the next sequence number (its committed order)."""
    assert key not in state.liquidation_queue
    state.liquidation_queue[key] = state.next_liquidation_seq
    state.next_liquidation_seq += 1


def process_liquidation_queue(state: State, events: list[object]) -> int:
    """Liquidate queued groups in FIFO order, at most ``liquidations_per_tx_max``.

    A group that could not be brought back above maintenance (step 5 of the module doc) is
    queued again at the end, after this transaction's work, so it is retried once per call.
    """
    processed = 0
    queue = state.liquidation_queue
    deferred: list[GroupKey] = []
    while queue and processed < state.config.liquidations_per_tx_max:
        key = next(iter(queue))
        del queue[key]
        group = state.group_by_key(key)
        if group is not None and not _liquidate_group(state, group, events):
            deferred.append(key)
        processed += 1
    for key in deferred:
        _enqueue(state, key)
    return processed


def _liquidate_group(state: State, group: MarginGroup, events: list[object]) -> bool:
    """Liquidate ``group``; False if it still holds a position below maintenance."""
    markets = state.markets
    if not _below_maintenance(group_risk(markets, group)):
        return True
    market_ids = set(group.positions)
    cancel_orders_of_group_markets(state, group.subaccount, market_ids, CancelReason.LIQUIDATION,
                                   events)
    for market_id in _liquidation_order(state, group):
        if not _below_maintenance(group_risk(markets, group)):
            return True
        position = group.positions.get(market_id)
        if position is None or position.size_lots == 0:
            continue
        _liquidate_position(state, group, position, markets[market_id], events)
    risk = group_risk(markets, group)
    assert risk.equity_quantums >= 0 or group.has_exposure()
    return not (group.has_exposure() and _below_maintenance(risk))


def _liquidation_order(state: State, group: MarginGroup) -> list[int]:
    """The positions to close, in order: by market id, except for a group holding options,
    where short options go first (the contingent risk), then perpetuals, then long options
    (often the hedge). Options past expiry are left to their settlement."""
    if not group.option_positions:
        return sorted(group.positions)
    ranked: list[tuple[int, int]] = []
    now_ms = state.timestamp_ms
    for market_id, position in group.positions.items():
        option = state.markets[market_id].option
        if option is None:
            ranked.append((1, market_id))
        elif now_ms < option.spec.expiry_ms:
            ranked.append((0 if position.size_lots < 0 else 2, market_id))
    return [market_id for _, market_id in sorted(ranked)]


def _liquidate_position(state: State, group: MarginGroup, position: Position,
                        market: MarketState, events: list[object]) -> None:
    sub = group.subaccount
    size_start = position.size_lots
    book_lots, penalty = _close_through_book(state, group, position, market, events)
    backstop_lots = 0
    adl_lots = 0
    if position.size_lots != 0 and _below_maintenance(group_risk(state.markets, group)):
        remaining = abs(position.size_lots)
        backstop_penalty = _backstop(state, group, position, market)
        if backstop_penalty is not None:
            backstop_lots = remaining
            penalty += backstop_penalty
        else:
            adl_lots, adl_penalty = _deleverage(state, group, position, market, events)
            penalty += adl_penalty
    release_position_if_empty(position)
    assert book_lots + backstop_lots + adl_lots <= abs(size_start)
    if book_lots or backstop_lots or adl_lots or penalty:
        events.append(Liquidated(sub.owner, sub.number, market.config.market_id, book_lots,
                                 backstop_lots, adl_lots, penalty))


def bankruptcy_price_ticks(market: MarketState, equity_quantums: int,
                           size_lots: int) -> int | None:
    """The worst price at which closing ``size_lots`` leaves the group's equity >= 0."""
    value = position_value_quantums(size_lots, market.index_price_quantums,
                                    market.config.lot_size_nanounits)
    per_tick = abs(size_lots) * market.quantums_per_lot_tick
    if size_lots > 0:  # selling: need size x price >= value - equity
        return max(1, div_ceil(value - equity_quantums, per_tick))
    bound = div_floor(equity_quantums - value, per_tick)  # buying back: size x price <= eq - v
    return bound if bound >= 1 else None


def _close_through_book(state: State, group: MarginGroup, position: Position,
                        market: MarketState, events: list[object]) -> tuple[int, int]:
    markets = state.markets
    market_id = market.config.market_id
    step_lots = max(1, mul_div_ceil(abs(position.size_lots), state.config.liquidation_step_ppm,
                                    PPM))
    closed = 0
    penalty_total = 0
    # the fund's own liquidation pays no penalty: it would only pay itself
    penalty_ppm = 0 if group is state.insurance.cross else market.config.liquidation_penalty_ppm
    for _ in range(LIQUIDATION_STEPS_PER_POSITION_MAX):
        risk = group_risk(markets, group)
        size = position.size_lots
        if size == 0 or not _below_maintenance(risk):
            break
        bound = bankruptcy_price_ticks(market, risk.equity_quantums, size)
        if bound is None:
            break
        chunk = min(step_lots, abs(size))
        is_buy = size < 0
        plan = plan_match(state, market, group, group.subaccount.owner, is_buy, bound, chunk,
                          SelfTradePrevention.EXPIRE_MAKER, penalty_ppm, True)
        if plan.filled_lots == 0:
            if plan.steps:  # expired makers only: apply, then try again
                apply_plan(state, market, plan, position, is_buy, 0, True, 0, events)
                continue
            break
        d_size = plan.filled_lots if is_buy else -plan.filled_lots
        after = group_risk(markets, group, market_id, d_size, 0, 0, -plan.quote_quantums)
        cap = max(0, after.equity_quantums)
        penalty_total += apply_plan(state, market, plan, position, is_buy, 0, True, cap, events)
        closed += plan.filled_lots
        if plan.filled_lots < chunk:
            break
    return closed, penalty_total


def liquidation_penalty_quantums(market: MarketState, size_lots: int,
                                 equity_quantums: int) -> int:
    """The penalty for liquidating ``size_lots``: ``liquidation_penalty_ppm`` of its notional,
    capped at the group's positive equity so that it never creates a deficit."""
    notional = notional_quantums(abs(size_lots), market.index_price_quantums,
                                 market.config.lot_size_nanounits)
    charge = div_ceil(notional * market.config.liquidation_penalty_ppm, PPM)
    return min(charge, max(equity_quantums, 0))


def _backstop(state: State, group: MarginGroup, position: Position,
              market: MarketState) -> int | None:
    """The insurance fund takes the position, if it can carry it; returns the penalty it got.

    Same terms as any liquidation: the group keeps its equity less the penalty; only a deficit
    moves at the bankruptcy price, and the fund covers it.
    """
    insurance = state.insurance.cross
    if group is insurance:
        return None
    markets = state.markets
    market_id = market.config.market_id
    size = position.size_lots
    value = position_value_quantums(size, market.index_price_quantums,
                                    market.config.lot_size_nanounits)
    equity = group_risk(markets, group).equity_quantums
    penalty = liquidation_penalty_quantums(market, size, equity)
    # the fund pays the index value, less the penalty; a deficit (negative equity) it covers
    quote = value - min(equity, 0) - penalty
    after = group_risk(markets, insurance, market_id, size, 0, 0, -quote)
    held = insurance.positions.get(market_id)
    held_lots = size + (0 if held is None else held.size_lots)
    notional = abs(position_value_quantums(held_lots, market.index_price_quantums,
                                           market.config.lot_size_nanounits))
    if (after.equity_quantums < after.maintenance_quantums or after.equity_quantums < 0
            or notional > state.config.backstop_notional_quantums_max):
        return None
    settle_trade_side(state, market, position, -size, -quote, 0)
    fund_position = ensure_position(insurance, market_id, market.option is not None)
    settle_trade_side(state, market, fund_position, size, quote, 0)
    # the fund may have held exactly the opposite position: a flat record must not linger
    release_position_if_empty(fund_position)
    return penalty


def _adl_rank_key(state: State, position: Position) -> int:
    """Profit ratio x leverage, scaled to an integer (higher is deleveraged first)."""
    market = state.markets[position.market_id]
    value = position_value_quantums(position.size_lots, market.index_price_quantums,
                                    market.config.lot_size_nanounits)
    profit = value - position.entry_notional_quantums
    equity = group_risk(state.markets, position.group).equity_quantums
    assert equity > 0, "only counterparties with equity are ranked"
    return div_floor(profit * abs(value) * PPM,
                     max(1, abs(position.entry_notional_quantums)) * equity)


def _deleverage(state: State, group: MarginGroup, position: Position, market: MarketState,
                events: list[object]) -> tuple[int, int]:
    """Close what counterparties can carry of ``position``; returns (lots placed, penalty).

    Counterparties take the lots at the index value, plus their share of any deficit (the
    bankruptcy price); a group with equity left pays the usual penalty to the insurance fund
    on the lots placed, as on every liquidation path.
    """
    size = position.size_lots
    value = position_value_quantums(size, market.index_price_quantums,
                                    market.config.lot_size_nanounits)
    equity = group_risk(state.markets, group).equity_quantums
    quote_total = value - min(equity, 0)  # a deficit is carried by the counterparties
    counterparties = sorted(
        ((-_adl_rank_key(state, p), key, p) for key, p in market.holders.items()
         if p.group is not group and (p.size_lots > 0) != (size > 0)
         and group_risk(state.markets, p.group).equity_quantums > 0),
        key=lambda item: (item[0], item[1]))
    remaining = abs(size)
    quote_allocated = 0
    touched: dict[GroupKey, MarginGroup] = {}
    for _, key, counterparty in counterparties:
        if remaining == 0:
            break
        take, quote = _solvent_take(state, market, counterparty, size,
                                    min(remaining, abs(counterparty.size_lots)), remaining,
                                    quote_total, quote_allocated)
        if take == 0:
            continue  # it cannot carry even one lot's share of the deficit
        lots_signed = take if size > 0 else -take  # what the counterparty buys
        settle_trade_side(state, market, position, -lots_signed, -quote, 0)
        settle_trade_side(state, market, counterparty, lots_signed, quote, 0)
        release_position_if_empty(counterparty)
        cp_sub = counterparty.group.subaccount
        events.append(PositionDeleveraged(market.config.market_id, cp_sub.owner, cp_sub.number,
                                          lots_signed, -quote))
        touched[key] = counterparty.group
        remaining -= take
        quote_allocated += quote
    _enqueue_if_underwater(state, touched)
    placed = abs(size) - remaining
    penalty = 0
    if placed and group is not state.insurance.cross:  # the fund never pays itself
        # capped at the equity left after the trades settled, so rounding never makes a deficit
        settled_equity = group_risk(state.markets, group).equity_quantums
        penalty = liquidation_penalty_quantums(market, placed, settled_equity)
    group.collateral_quantums -= penalty
    state.insurance.cross.collateral_quantums += penalty
    return placed, penalty


def _solvent_take(state: State, market: MarketState, counterparty: Position, size_lots: int,
                  take_max: int, remaining: int, quote_total: int,
                  quote_allocated: int) -> tuple[int, int]:
    """The most lots (<= ``take_max``) ``counterparty`` can take of a liquidated position of
    ``size_lots`` at its bankruptcy quote while keeping non-negative equity, with their quote;
    (0, 0) when none. The lot that completes the position carries the rounding remainder.

    Each lot carries the same share of the deficit, so equity after the take does not rise as
    the take grows (up to a quantum of rounding): a binary search finds the take in at most
    log2(take_max) risk evaluations, and only a take checked to be solvent is returned.
    """
    markets = state.markets
    market_id = market.config.market_id
    size_abs = abs(size_lots)

    def quote_for(take: int) -> int:
        if take == remaining:
            return quote_total - quote_allocated
        return div_trunc(quote_total * take, size_abs)

    def solvent(take: int) -> bool:
        lots_signed = take if size_lots > 0 else -take
        after = group_risk(markets, counterparty.group, market_id, lots_signed, 0, 0,
                           -quote_for(take))
        return after.equity_quantums >= 0

    if solvent(take_max):
        return take_max, quote_for(take_max)
    low, high = 0, take_max  # invariant: low == 0 or solvent(low); not solvent(high)
    while high - low > 1:
        middle = div_floor(low + high, 2)
        if solvent(middle):
            low = middle
        else:
            high = middle
    return (low, quote_for(low)) if low else (0, 0)

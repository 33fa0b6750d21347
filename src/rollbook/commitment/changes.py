"""What a batch changed in the state root's records, and where new records go in the slot map.

The per-batch work of ``StateCommitment.commit`` that runs per record (leaf encodings of the
touched records, slot assignment), kept apart from ``state_tree`` so that it is compiled with
mypyc in the fast build (``MYPYC_EXTRA`` in setup.py); ``state_tree`` keeps the classes the
rest of the code pickles and inspects. The slot rules are ``state_tree``'s (see its docstring):
removed records free their slots first, then new records take the lowest free slots in
ascending ``LeafKey`` order.
"""

from __future__ import annotations

import heapq

from rollbook.commitment.leaves import (
    LEAF_INDEX_PRICE,
    LEAF_LIQUIDATION,
    LEAF_MARKET,
    LEAF_OPTION_EXPIRY,
    LEAF_OPTION_MARKET,
    LEAF_ORDER,
    LEAF_PORTFOLIO_MARGIN,
    LEAF_QUOTES,
    LEAF_SUBACCOUNT,
    LEAF_VOLATILITY,
    LEAF_WITHDRAWAL,
    LeafKey,
    index_price_leaf,
    liquidation_leaf,
    market_leaf,
    option_expiry_leaf,
    option_market_leaf,
    order_leaf,
    portfolio_margin_leaf,
    quotes_leaf,
    subaccount_leaf,
    volatility_leaf,
    withdrawal_leaf,
)
from rollbook.execution.state import GroupKey, State, mark_subaccount

__all__ = ["all_leaves", "collect_updates", "place_updates", "store_leaves"]


def place_updates(slots: dict[LeafKey, int], free: list[int], next_slot: int,
                  updates: dict[LeafKey, bytes | None]) -> tuple[dict[int, bytes | None], int]:
    """Apply ``updates`` to the slot map (``slots``, the min-heap ``free``, ``next_slot``):
    the leaf (or None: freed) for every slot that changed, and the next never-used slot."""
    slot_updates: dict[int, bytes | None] = {}
    created: list[LeafKey] = []
    for key, leaf in updates.items():
        slot = slots.get(key)
        if leaf is None:
            if slot is not None:
                del slots[key]
                heapq.heappush(free, slot)
                slot_updates[slot] = None
        elif slot is None:
            created.append(key)
        else:
            slot_updates[slot] = leaf
    created.sort()
    for key in created:
        if free:
            slot = heapq.heappop(free)
        else:
            slot = next_slot
            next_slot += 1
        slots[key] = slot
        slot_updates[slot] = updates[key]
    return slot_updates, next_slot


def store_leaves(leaves: list[bytes | None], slot_updates: dict[int, bytes | None],
                 next_slot: int) -> None:
    """Write ``place_updates``' slot updates into the slot -> leaf list (grown to
    ``next_slot``, the slots ever taken); compiled, where a Python loop costs a few steps per
    slot."""
    if next_slot > len(leaves):  # slots are taken in order: grow to the highest
        leaves.extend([None] * (next_slot - len(leaves)))
    for slot, leaf in slot_updates.items():
        leaves[slot] = leaf


def collect_updates(state: State, committed_indexes: dict[int, int],
                     committed_queue: dict[GroupKey, int],
                     withdrawals_next: int) -> dict[LeafKey, bytes | None]:
    """Leaf bytes (or None: removed) for every record that may have changed."""
    updates: dict[LeafKey, bytes | None] = {}
    for index_id, price in state.index_prices.items():
        if committed_indexes.get(index_id) != price:
            updates[(LEAF_INDEX_PRICE, index_id)] = index_price_leaf(index_id, price)
    markets = state.markets
    for market_id in state.touched_markets:
        market = markets.get(market_id)
        if market is None:  # a delisted option
            updates[(LEAF_MARKET, market_id)] = None
            updates[(LEAF_OPTION_MARKET, market_id)] = None
            continue
        updates[(LEAF_MARKET, market_id)] = market_leaf(state, market_id)
        if market.option is not None:
            updates[(LEAF_OPTION_MARKET, market_id)] = option_market_leaf(market)
    if state.touched_expiries or state.touched_quotes or state.touched_risk_modes:
        _collect_option_updates(state, updates)
    # the touched lists hold the records themselves, possibly a record twice (see ``State``): a
    # repeat writes the same leaf again. Subaccounts are never removed
    mark_subaccount(state, state.insurance)  # fees, penalties, residuals: always
    for sub in state.touched_subaccounts:
        updates[(LEAF_SUBACCOUNT, sub.owner, sub.number)] = subaccount_leaf(sub)
    orders = state.orders
    for order in state.touched_orders:
        # an order marked and since removed (filled, cancelled) is no longer under its id (looked
        # up by ``Order.key``, the resting order's own key object)
        updates[(LEAF_ORDER, order.order_id)] = (
            order_leaf(order) if orders.get(order.key) is order else None)
    for withdrawal_id in range(withdrawals_next, state.next_withdrawal_id):
        withdrawal = state.pending_withdrawals[withdrawal_id]
        updates[(LEAF_WITHDRAWAL, withdrawal_id)] = withdrawal_leaf(withdrawal)
    queue = state.liquidation_queue
    for group_key, seq in committed_queue.items():
        if queue.get(group_key) != seq:
            updates[(LEAF_LIQUIDATION, seq)] = None
    for group_key, seq in queue.items():
        if committed_queue.get(group_key) != seq:
            updates[(LEAF_LIQUIDATION, seq)] = liquidation_leaf(seq, *group_key)
    return updates


def _collect_option_updates(state: State, updates: dict[LeafKey, bytes | None]) -> None:
    for index_id, expiry_ms in state.touched_expiries:
        expiry = state.expiries.get((index_id, expiry_ms))
        smile = state.smiles.get((index_id, expiry_ms))
        updates[(LEAF_OPTION_EXPIRY, index_id, expiry_ms)] = (
            None if expiry is None else option_expiry_leaf(expiry))
        updates[(LEAF_VOLATILITY, index_id, expiry_ms)] = (
            None if smile is None else volatility_leaf(smile))
    for key in state.touched_quotes:
        ladder = state.quotes.get(key)
        updates[(LEAF_QUOTES, *key)] = None if ladder is None else quotes_leaf(ladder)
    subaccounts = state.subaccounts
    for owner, number in state.touched_risk_modes:
        sub = subaccounts.get((owner, number))
        enabled = sub is not None and sub.cross.portfolio_margin
        updates[(LEAF_PORTFOLIO_MARGIN, owner, number)] = (
            portfolio_margin_leaf(owner, number) if enabled else None)


def all_leaves(state: State) -> dict[LeafKey, bytes]:
    """Every record's leaf, computed from scratch (the reference for ``check``)."""
    leaves: dict[LeafKey, bytes] = {}
    for index_id, price in state.index_prices.items():
        leaves[(LEAF_INDEX_PRICE, index_id)] = index_price_leaf(index_id, price)
    for market_id in state.markets:
        leaves[(LEAF_MARKET, market_id)] = market_leaf(state, market_id)
    for key, sub in state.subaccounts.items():
        leaves[(LEAF_SUBACCOUNT, *key)] = subaccount_leaf(sub)
    for order_id, order in state.orders.items():
        leaves[(LEAF_ORDER, order_id)] = order_leaf(order)
    for withdrawal_id, withdrawal in state.pending_withdrawals.items():
        leaves[(LEAF_WITHDRAWAL, withdrawal_id)] = withdrawal_leaf(withdrawal)
    for group_key, seq in state.liquidation_queue.items():
        leaves[(LEAF_LIQUIDATION, seq)] = liquidation_leaf(seq, *group_key)
    for market_id, market in state.markets.items():
        if market.option is not None:
            leaves[(LEAF_OPTION_MARKET, market_id)] = option_market_leaf(market)
    for (index_id, expiry_ms), expiry in state.expiries.items():
        leaves[(LEAF_OPTION_EXPIRY, index_id, expiry_ms)] = option_expiry_leaf(expiry)
    for (index_id, expiry_ms), smile in state.smiles.items():
        leaves[(LEAF_VOLATILITY, index_id, expiry_ms)] = volatility_leaf(smile)
    for quote_key, ladder in state.quotes.items():
        leaves[(LEAF_QUOTES, *quote_key)] = quotes_leaf(ladder)
    for (owner, number), sub in state.subaccounts.items():
        if sub.cross.portfolio_margin:
            leaves[(LEAF_PORTFOLIO_MARGIN, owner, number)] = portfolio_margin_leaf(owner, number)
    return leaves

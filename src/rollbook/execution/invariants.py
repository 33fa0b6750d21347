"""Money and safety invariants of the venue, checked by tests after every transaction.

``check_invariants`` raises ``InvariantViolation`` naming the first broken rule:
- conservation: sum of every margin group's collateral (the insurance fund included) + fee pool
  == deposits - withdrawals, exactly;
- per market, long open interest == short open interest == the tracked open interest, and the
  holders index lists exactly the non-zero positions;
- the book is not crossed, levels' totals match their orders, and every order's remaining lots
  are counted in its position's open bid/ask lots (every resting order is accounted for in
  margin);
- every group with a position meets maintenance margin or waits in the liquidation queue;
- no flat group has negative equity outside the queue (nobody is left owing without a position);
- options: each group's ``option_positions`` counts its records in option markets; every option
  market belongs to its expiry and the expiry lists exactly its markets; an expiry past its
  close has no order left on its books; a settled expiry has a settlement price and no position
  left (every position was settled: conservation above covers the money); a live option whose
  index and smile exist has a mark and no option trades before its smile; smiles exist only for
  unsettled expiries; quote ladders are not empty records.
"""

from __future__ import annotations

from rollbook.execution.margin import group_risk
from rollbook.execution.state import EXPIRY_LISTED, EXPIRY_SETTLED, State

__all__ = ["InvariantViolation", "check_invariants", "total_collateral_quantums"]


class InvariantViolation(AssertionError):
    pass


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvariantViolation(message)


def total_collateral_quantums(state: State) -> int:
    return sum(group.collateral_quantums for sub in state.subaccounts.values()
               for group in sub.groups())


def check_invariants(state: State) -> None:
    _check_conservation(state)
    _check_open_interest(state)
    _check_books(state)
    _check_margin(state)
    _check_options(state)


def _check_conservation(state: State) -> None:
    held = total_collateral_quantums(state) + state.fee_pool_quantums
    expected = state.deposits_quantums_total - state.withdrawals_quantums_total
    _require(held == expected, f"conservation: held {held} != deposits - withdrawals {expected}")
    _require(state.fee_pool_quantums >= 0, "fee pool is negative")
    pending = sum(w.amount_quantums for w in state.pending_withdrawals.values())
    _require(pending == state.withdrawals_quantums_total, "pending withdrawals != withdrawn")


def _check_open_interest(state: State) -> None:
    for market_id, market in state.markets.items():
        longs = 0
        shorts = 0
        holders = 0
        for sub in state.subaccounts.values():
            for group in sub.groups():
                position = group.positions.get(market_id)
                if position is None:
                    continue
                _require(not position.is_empty(), f"empty position record in {group.key}")
                size = position.size_lots
                if size > 0:
                    longs += size
                elif size < 0:
                    shorts -= size
                if size != 0:
                    holders += 1
                    _require(market.holders.get(group.key) is position,
                             f"holder index misses {group.key}")
        _require(longs == shorts, f"market {market_id}: long OI {longs} != short OI {shorts}")
        _require(longs == market.open_interest_lots, f"market {market_id}: tracked OI drifted")
        _require(holders == len(market.holders), f"market {market_id}: stale holder entries")


def _check_books(state: State) -> None:
    reserved: dict[tuple[bytes, int, int, int, bool], int] = {}
    for market_id, market in state.markets.items():
        book = market.book
        best_bid, best_ask = book.best_bid(), book.best_ask()
        _require(best_bid is None or best_ask is None or best_bid < best_ask,
                 f"market {market_id}: book crossed {best_bid} >= {best_ask}")
        for is_buy in (True, False):
            levels = book.bids if is_buy else book.asks
            prices = book.bid_prices if is_buy else book.ask_prices
            _require(sorted(levels) == prices, f"market {market_id}: price index drifted")
            for price in prices:
                level = levels[price]
                total = 0
                count = 0
                order = level.head
                while order is not None:
                    _require(order.size_lots > 0 and order.price_ticks == price,
                             f"order {order.order_id} malformed")
                    _require(state.orders.get(order.order_id) is order,
                             f"order {order.order_id} not indexed")
                    group = order.position.group
                    _require(group.positions.get(market_id) is order.position,
                             f"order {order.order_id} reserves margin in a detached position")
                    key = (*group.key, market_id, is_buy)
                    reserved[key] = reserved.get(key, 0) + order.size_lots
                    total += order.size_lots
                    count += 1
                    order = order.next
                _require(total == level.size_lots and count == level.order_count,
                         f"market {market_id} level {price}: totals drifted")
    for sub in state.subaccounts.values():
        for group in sub.groups():
            for market_id, position in group.positions.items():
                bids = reserved.pop((*group.key, market_id, True), 0)
                asks = reserved.pop((*group.key, market_id, False), 0)
                _require(position.open_bid_lots == bids and position.open_ask_lots == asks,
                         f"{group.key} market {market_id}: open order lots not reserved")
    _require(not reserved, "orders reserve margin in groups that do not list them")


def _check_margin(state: State) -> None:
    for sub in state.subaccounts.values():
        for group in sub.groups():
            if group.key in state.liquidation_queue:
                continue
            risk = group_risk(state.markets, group)
            if group.has_exposure():
                _require(risk.equity_quantums >= risk.maintenance_quantums,
                         f"{group.key} below maintenance and not queued: {risk}")
            else:
                _require(risk.equity_quantums >= 0, f"flat {group.key} has negative equity")


def _check_options(state: State) -> None:
    for sub in state.subaccounts.values():
        for group in sub.groups():
            counted = sum(1 for p in group.positions.values() if p.is_option)
            actual = sum(1 for m in group.positions if state.markets[m].option is not None)
            _require(counted == actual == group.option_positions,
                     f"{group.key}: option position count drifted")
            _require(not group.portfolio_margin or group.isolated_market_id == 0,
                     f"{group.key}: portfolio margin on an isolated group")
            _require(group.uses_engine == (group.option_positions > 0 or group.portfolio_margin),
                     f"{group.key}: engine flag drifted")
    listed: dict[tuple[int, int], list[int]] = {}
    for market_id, market in state.markets.items():
        option = market.option
        if option is None:
            continue
        spec = option.spec
        key = (spec.index_id, spec.expiry_ms)
        _require(state.expiries.get(key) is option.expiry, f"market {market_id}: stale expiry")
        listed.setdefault(key, []).append(market_id)
    for key, expiry in state.expiries.items():
        _require(sorted(listed.get(key, [])) == expiry.market_ids,
                 f"expiry {key}: market list drifted")
        _require(bool(expiry.market_ids), f"expiry {key} without markets")
        for market_id in expiry.market_ids:
            market = state.markets[market_id]
            book = market.book
            if expiry.status != EXPIRY_LISTED:
                _require(not book.bid_prices and not book.ask_prices,
                         f"market {market_id}: orders left on an expired book")
            if expiry.status == EXPIRY_SETTLED:
                _require(market.open_interest_lots == 0 and not market.holders,
                         f"market {market_id}: a position survived settlement")
        if expiry.status == EXPIRY_SETTLED:
            _require(expiry.settlement_price_quantums > 0, f"expiry {key}: no settlement price")
            _require(key not in state.smiles, f"expiry {key}: smile kept after settlement")
    for key in state.smiles:
        _require(key in state.expiries, f"smile {key} without an expiry")
    for quote_key, ladder in state.quotes.items():
        _require(not ladder.is_empty() and ladder.key == quote_key,
                 f"quote ladder {quote_key} is empty")

"""Market-maker protection in the STF: quote fills counted, the ladder cancelled on a trigger.

A maker (ALICE) quotes a ladder with ``MassQuote`` under ``SetMmp`` limits; takers hit it. The
fill that takes a measure strictly above its limit triggers: after the taker's sweep, the
ladder's remaining quotes are cancelled (one ``MmpTriggered`` event) and mass quotes on the
index are refused until the freeze ends or ``SetMmp`` resets it. Orders outside the ladder are
not protected and their fills do not count.
"""

from __future__ import annotations

import pytest
from option_venue import CALL, PUT, STRIKES, OptionVenue, option_venue, order

from conftest import ALICE, BOB, BTC, USDC, assert_rejected
from rollbook.commitment.leaves import LEAF_QUOTES, quotes_leaf
from rollbook.execution import (
    ErrorCode,
    MassQuote,
    Quote,
    SetMmp,
    Side,
    TimeInForce,
)
from rollbook.execution.events import Fill, MmpTriggered
from rollbook.execution.invariants import check_invariants

K100 = 100_000 * USDC
LOT_NANOUNITS = 10_000_000  # 0.01 BTC


def _ladder(v: OptionVenue, size: int = 5) -> tuple[Quote, ...]:
    quotes = []
    for strike in STRIKES:
        for option_type in (CALL, PUT):
            market_id = v.oid(strike, option_type)
            mark = v.mark_ticks(market_id)
            quotes.append(Quote(market_id, Side.BUY, max(1, mark - 50), size))
            quotes.append(Quote(market_id, Side.SELL, mark + 50, size))
    return tuple(quotes)


@pytest.fixture
def quoted() -> OptionVenue:
    v = option_venue()
    v.fund([ALICE, BOB], 1_000_000 * USDC)
    # 10 lots (0.1 BTC) of gross fills in 10 s; frozen for a minute
    v.run_ok(SetMmp(ALICE, 0, BTC, 10_000, 60_000, 10 * LOT_NANOUNITS, 0, 0))
    v.run_ok(MassQuote(ALICE, 0, BTC, _ladder(v)))
    return v


def _hit_bid(v: OptionVenue, market_id: int, lots: int) -> list[object]:
    bid = v.market(market_id).book.best_bid()
    assert bid is not None
    (receipt,) = v.run_ok(order(BOB, market_id, Side.SELL, bid, lots, TimeInForce.IOC))
    return list(receipt.events)


def _best_bid_id(v: OptionVenue, market_id: int) -> int:
    book = v.market(market_id).book
    head = book.bids[book.bid_prices[-1]].head
    assert head is not None
    return head.order_id


def test_quantity_limit_triggers_and_cancels_the_ladder(quoted: OptionVenue) -> None:
    v = quoted
    ladder = v.state.quotes[(ALICE, 0, BTC)]
    ids = list(ladder.quote_order_ids)
    a, b, c = v.oid(K100, CALL), v.oid(K100, PUT), v.oid(STRIKES[0], CALL)
    exhausted = {_best_bid_id(v, a), _best_bid_id(v, b)}
    assert not any(isinstance(e, MmpTriggered) for e in _hit_bid(v, a, 5))  # 0.05 BTC
    assert not any(isinstance(e, MmpTriggered) for e in _hit_bid(v, b, 5))  # 0.10: not above
    leaf_before = quotes_leaf(ladder)
    events = _hit_bid(v, c, 1)  # 0.11 BTC > 0.1: trigger
    fills = [e for e in events if isinstance(e, Fill)]
    (triggered,) = [e for e in events if isinstance(e, MmpTriggered)]
    assert len(fills) == 1 and fills[0].size_lots == 1
    assert triggered.owner == ALICE and triggered.index_id == BTC
    assert triggered.frozen_until_ms == v.state.timestamp_ms + 60_000
    # every quote still resting went, the partly filled one included
    assert set(triggered.cancelled_order_ids) == set(ids) - exhausted
    assert fills[0].maker_order_id in triggered.cancelled_order_ids
    assert not any(i in v.state.orders for i in ids)
    assert ladder.quote_order_ids == []
    assert quotes_leaf(ladder) != leaf_before
    assert v.commitment.slot_of((LEAF_QUOTES, ALICE, 0, BTC)) is not None
    # frozen: no new ladder for a minute; then quoting resumes
    assert_rejected(v.state, MassQuote(ALICE, 0, BTC, _ladder(v)), ErrorCode.MMP_FROZEN,
                    f"until {triggered.frozen_until_ms}")
    v.run_ok(advance_ms=60_000)
    v.run_ok(MassQuote(ALICE, 0, BTC, _ladder(v)))
    check_invariants(v.state)


def test_regular_orders_are_not_protected(quoted: OptionVenue) -> None:
    v = quoted
    market_id = v.oid(K100, CALL)
    mark = v.mark_ticks(market_id)
    v.run_ok(MassQuote(ALICE, 0, BTC, ()))  # pull the ladder
    v.run_ok(order(ALICE, market_id, Side.BUY, mark - 10, 50))  # a plain order
    events = _hit_bid(v, market_id, 30)  # 0.3 BTC: would trip a quote's limit
    assert not any(isinstance(e, MmpTriggered) for e in events)
    assert v.state.quotes[(ALICE, 0, BTC)].mmp.measures(v.state.timestamp_ms)[0] == 0  # type: ignore[union-attr]


def test_delta_limit_and_a_freeze_until_reset() -> None:
    v = option_venue()
    v.fund([ALICE, BOB], 1_000_000 * USDC)
    # net delta above 0.05 BTC trips; frozen until the maker resets it
    v.run_ok(SetMmp(ALICE, 0, BTC, 10_000, 0, 0, 5 * LOT_NANOUNITS, 0))
    v.run_ok(MassQuote(ALICE, 0, BTC, _ladder(v, size=20)))
    call = v.oid(K100, CALL)  # delta ~0.5: 20 lots bought = 0.1 BTC of delta
    events = _hit_bid(v, call, 20)
    (triggered,) = [e for e in events if isinstance(e, MmpTriggered)]
    assert triggered.frozen_until_ms == -1
    v.run_ok(advance_ms=3_600_000)
    assert_rejected(v.state, MassQuote(ALICE, 0, BTC, _ladder(v)), ErrorCode.MMP_FROZEN,
                    "until reset")
    v.run_ok(SetMmp(ALICE, 0, BTC, 10_000, 0, 0, 5 * LOT_NANOUNITS, 0))  # reset
    v.run_ok(MassQuote(ALICE, 0, BTC, _ladder(v)))


def test_offsetting_fills_keep_net_delta_under_its_limit() -> None:
    v = option_venue()
    v.fund([ALICE, BOB], 1_000_000 * USDC)
    v.run_ok(SetMmp(ALICE, 0, BTC, 10_000, 0, 0, 5 * LOT_NANOUNITS, 0))
    v.run_ok(MassQuote(ALICE, 0, BTC, _ladder(v, size=8)))
    call = v.oid(K100, CALL)
    assert not any(isinstance(e, MmpTriggered) for e in _hit_bid(v, call, 8))  # +0.04 delta
    ask = v.market(call).book.best_ask()
    assert ask is not None
    (receipt,) = v.run_ok(order(BOB, call, Side.BUY, ask, 8, TimeInForce.IOC))  # -0.04
    assert not any(isinstance(e, MmpTriggered) for e in receipt.events)
    window = v.state.quotes[(ALICE, 0, BTC)].mmp
    assert window is not None
    count, gross, net_delta, _ = window.measures(v.state.timestamp_ms)
    assert count == 2 and gross == 16 * LOT_NANOUNITS and net_delta < 5 * LOT_NANOUNITS


def test_fills_leave_the_window(quoted: OptionVenue) -> None:
    v = quoted
    a, b = v.oid(K100, CALL), v.oid(K100, PUT)
    _hit_bid(v, a, 5)
    v.run_ok(advance_ms=10_000)  # the first fill leaves the 10 s window
    assert not any(isinstance(e, MmpTriggered) for e in _hit_bid(v, b, 5))
    assert not any(isinstance(e, MmpTriggered) for e in _hit_bid(v, v.oid(STRIKES[2], PUT), 1))

"""Forced withdrawals (L1 requests the operator must include) and the limits that keep every
subaccount leaf decodable by the settlement contract."""

from __future__ import annotations

import dataclasses

from test_rejections import assert_rejected

from conftest import ALICE, BOB, BTC, INDEX_100K_QUANTUMS, PRICE_100K_TICKS, USDC, Venue
from rollbook.execution import (
    ErrorCode,
    ForcedWithdrawal,
    PlaceOrder,
    SetMarginMode,
    Side,
    TimeInForce,
    default_venue_config,
    perpetual_market,
)
from rollbook.execution.config import GROUPS_PER_SUBACCOUNT_MAX, POSITIONS_PER_SUBACCOUNT_MAX
from rollbook.execution.events import ForcedWithdrawalProcessed, WithdrawalQueued
from rollbook.execution.margin import withdrawable_quantums

P = PRICE_100K_TICKS
FUNDS = 100_000 * USDC


def test_forced_withdrawal_of_free_collateral(venue: Venue) -> None:
    venue.fund([ALICE], FUNDS)
    (receipt,) = venue.run_ok(ForcedWithdrawal(1, ALICE, 0, 40_000 * USDC))
    queued, processed = receipt.events
    assert queued == WithdrawalQueued(1, ALICE, 0, 40_000 * USDC)
    assert processed == ForcedWithdrawalProcessed(1, ALICE, 0, 40_000 * USDC, 40_000 * USDC, 1)
    assert venue.state.subaccounts[(ALICE, 0)].cross.collateral_quantums == 60_000 * USDC
    assert venue.state.pending_withdrawals[1].amount_quantums == 40_000 * USDC
    assert venue.state.next_forced_id == 2


def test_forced_withdrawal_is_capped_by_the_margin_rules(venue: Venue) -> None:
    venue.fund([ALICE, BOB], FUNDS)
    venue.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, P, 5_000))
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, P, 5_000, time_in_force=TimeInForce.IOC))
    group = venue.state.subaccounts[(ALICE, 0)].cross
    free = withdrawable_quantums(venue.state.markets, group,
                                 venue.state.config.withdrawal_margin_floor_ppm)
    assert 0 < free < FUNDS
    (receipt,) = venue.run_ok(ForcedWithdrawal(1, ALICE, 0, 10**15))
    processed = receipt.events[-1]
    assert isinstance(processed, ForcedWithdrawalProcessed)
    assert processed.withdrawn_quantums == free
    # nothing more is free now: the next request is processed with nothing withdrawn
    (receipt,) = venue.run_ok(ForcedWithdrawal(2, ALICE, 0, USDC))
    assert receipt.events == (ForcedWithdrawalProcessed(2, ALICE, 0, USDC, 0, 0),)


def test_forced_withdrawal_from_an_unknown_account_is_processed_empty(venue: Venue) -> None:
    (receipt,) = venue.run_ok(ForcedWithdrawal(1, BOB, 7, USDC))
    assert receipt.events == (ForcedWithdrawalProcessed(1, BOB, 7, USDC, 0, 0),)
    assert venue.state.next_forced_id == 2 and not venue.state.pending_withdrawals


def test_forced_withdrawals_go_in_request_order(venue: Venue) -> None:
    venue.fund([ALICE], FUNDS)
    assert_rejected(venue.state, ForcedWithdrawal(2, ALICE, 0, USDC),
                    ErrorCode.FORCED_WITHDRAWAL_OUT_OF_ORDER, "expected 1, got 2")
    venue.run_ok(ForcedWithdrawal(1, ALICE, 0, USDC))
    assert_rejected(venue.state, ForcedWithdrawal(1, ALICE, 0, USDC),
                    ErrorCode.FORCED_WITHDRAWAL_ALREADY_PROCESSED, "request 1")


def _many_markets_venue(count: int) -> Venue:
    base = default_venue_config(Venue().state.config.oracle_signers)
    markets = tuple(
        perpetual_market(market_id, f"M{market_id}-PERP", BTC, tick_size_quantums=100_000,
                         lot_size_nanounits=100_000)
        for market_id in range(1, count + 1))
    v = Venue(dataclasses.replace(base, markets=markets))
    v.run_ok(v.oracle(INDEX_100K_QUANTUMS))
    v.fund([ALICE], FUNDS * 10)
    return v


def test_positions_limit_keeps_the_leaf_decodable() -> None:
    v = _many_markets_venue(POSITIONS_PER_SUBACCOUNT_MAX + 1)
    v.run_ok(*(PlaceOrder(ALICE, 0, m, Side.BUY, P - 100, 1)
               for m in range(1, POSITIONS_PER_SUBACCOUNT_MAX + 1)))
    assert v.state.subaccounts[(ALICE, 0)].position_record_count() == (
        POSITIONS_PER_SUBACCOUNT_MAX)
    extra = POSITIONS_PER_SUBACCOUNT_MAX + 1
    assert_rejected(v.state, PlaceOrder(ALICE, 0, extra, Side.BUY, P - 100, 1),
                    ErrorCode.POSITIONS_LIMIT, f"{POSITIONS_PER_SUBACCOUNT_MAX} markets")
    v.run_ok(PlaceOrder(ALICE, 0, 1, Side.BUY, P - 101, 1))  # an existing market is fine


def test_isolated_groups_limit() -> None:
    v = _many_markets_venue(GROUPS_PER_SUBACCOUNT_MAX)
    v.run_ok(*(SetMarginMode(ALICE, 0, m, True) for m in range(1, GROUPS_PER_SUBACCOUNT_MAX)))
    assert_rejected(v.state, SetMarginMode(ALICE, 0, GROUPS_PER_SUBACCOUNT_MAX, True),
                    ErrorCode.ISOLATED_GROUPS_LIMIT, f"{GROUPS_PER_SUBACCOUNT_MAX - 1}")

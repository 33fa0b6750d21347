"""Stateful property test: random venue activity with the money invariants checked after every step.

A hypothesis ``RuleBasedStateMachine`` drives deposits, every order type, cancels, modifies,
transfers (insurance-fund top-ups included), withdrawals, isolated margin, oracle moves (small,
and big ones of 5-40% that cause liquidations, backstops and auto-deleveraging), funding ticks and
liquidation heartbeats from seven subaccounts of six traders. After every transaction it checks:

- ``check_invariants`` (conservation, open interest, books, reservations, margin, flat groups);
- a rejected transaction changed no state (state digest before == after);
- no group without a position lost collateral in a step it took no part in (it did not sign the
  transaction and was not a maker of one of its fills): flat accounts never pay for someone
  else's liquidation, deleveraging or funding.

``StressVenueMachine`` runs the same rules under a configuration whose limits bind (one
liquidation per transaction, so bankrupt groups wait in the queue while others trade; a maker
rebate equal to the taker fee; tiny fill and open-order limits).

``VenueMachine.coverage`` counts what the runs reached; ``test_machine_reaches_every_outcome``
runs a long derandomised machine and requires fills, book liquidations, backstops, ADL and
funding payments to have happened. Every rule is reachable from the primitive rules alone;
``leveraged_crash`` chains quotes, a leveraged position and a move against it so that
liquidations (and, when the maker pulls its quotes, backstops and ADL) are frequent.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from conftest import (
    ALICE,
    BOB,
    BTC,
    CAROL,
    DAVE,
    INDEX_100K_QUANTUMS,
    ORACLE_KEY,
    USDC,
    signed_oracle,
    venue_config,
)
from rollbook.commitment import canonical_root, genesis_commitment
from rollbook.execution import (
    Batch,
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    Deposit,
    ForcedWithdrawal,
    FundingTick,
    ModifyOrder,
    MoveIsolatedMargin,
    OracleUpdate,
    OrderType,
    PlaceOrder,
    ProcessLiquidations,
    Receipt,
    SelfTradePrevention,
    SetMarginMode,
    Side,
    TimeInForce,
    Transaction,
    Transfer,
    VenueConfig,
    Withdraw,
    apply_batch,
    apply_transaction,
    genesis_state,
)
from rollbook.execution.events import Fill, FundingPaid, Liquidated, PositionDeleveraged
from rollbook.execution.invariants import check_invariants
from rollbook.execution.margin import group_risk
from rollbook.execution.state import INSURANCE_OWNER, GroupKey

ERIN = b"\xe7" * 20
FRANK = b"\xf2" * 20
STRANGER = b"\x5e" * 20  # never funded: transfers may create it
MAKER = (DAVE, 0)  # quotes ladders around the index
ACCOUNTS = ((ALICE, 0), (ALICE, 1), (BOB, 0), (CAROL, 0), (DAVE, 0), (ERIN, 0), (FRANK, 0))
# transfers may top up the insurance fund (its subaccount 0); its subaccount 1 is rejected
TRANSFER_DESTINATIONS = (*ACCOUNTS, (STRANGER, 0), (INSURANCE_OWNER, 0), (INSURANCE_OWNER, 1))
TICK_QUANTUMS = 100_000  # $0.1 per tick
LOT_NANOUNITS = 100_000  # 0.0001 BTC per lot
NANOUNITS_PER_UNIT = 10**9
PPM = 10**6
INDEX_MIN_QUANTUMS = 30_000 * USDC
INDEX_MAX_QUANTUMS = 300_000 * USDC
ORDER_KINDS = ("gtc", "ioc", "fok", "post_only", "market", "reduce_only")
STP_MODES = tuple(SelfTradePrevention)

accounts = st.sampled_from(ACCOUNTS)
amounts_quantums = st.one_of(
    st.integers(1, 60_000).map(lambda usdc: usdc * USDC),
    st.integers(1, 10**6),
)


class VenueMachine(RuleBasedStateMachine):
    """One venue, its own batch clock, and the checks of the module doc after each step."""

    coverage: ClassVar[Counter[str]] = Counter()

    @staticmethod
    def config() -> VenueConfig:
        return venue_config()

    def __init__(self) -> None:
        super().__init__()
        self.state = genesis_state(self.config())
        self.commitment = genesis_commitment(self.state)
        self.clock_ms = 1_000_000
        self.index_quantums = INDEX_100K_QUANTUMS
        assert self._oracle(self.index_quantums).ok

    # --- the step: one transaction in its own batch, then every check ---------------------

    def _apply(self, tx: Transaction, advance_ms: int = 1_000) -> Receipt:
        state = self.state
        self.clock_ms += advance_ms
        # the batch header moves time; the transaction itself is applied alone so that its
        # effect (or, when rejected, its lack of effect) can be compared digest to digest
        apply_batch(state, Batch(state.batch_index + 1, self.clock_ms, bytes(32), ()))
        flat_before = self._flat_collateral()
        digest_before = canonical_root(state)
        receipt = apply_transaction(state, tx)
        if not receipt.ok:
            assert receipt.events == ()
            assert canonical_root(state) == digest_before, f"rejected {tx} changed state"
        check_invariants(state)
        # the incremental root must hold exactly the state's leaves after every step
        self.commitment.commit(state)
        self.commitment.check(state)
        self._check_flat_groups_not_charged(tx, receipt, flat_before)
        self._record(tx, receipt)
        return receipt

    def _flat_collateral(self) -> dict[GroupKey, int]:
        state = self.state
        return {group.key: group.collateral_quantums
                for sub in state.subaccounts.values() if sub is not state.insurance
                for group in sub.groups() if not group.has_exposure()}

    def _check_flat_groups_not_charged(self, tx: Transaction, receipt: Receipt,
                                       flat_before: dict[GroupKey, int]) -> None:
        involved: set[tuple[bytes, int]] = set()
        owner = getattr(tx, "owner", None)
        if owner is not None:
            involved.add((owner, getattr(tx, "subaccount", 0)))
        if isinstance(tx, Transfer):
            involved.add((tx.to_owner, tx.to_subaccount))
        for ev in receipt.events:
            if isinstance(ev, Fill):
                involved.add((ev.maker_owner, ev.maker_subaccount))
        for key, collateral_before in flat_before.items():
            if (key[0], key[1]) in involved:
                continue
            group = self.state.group_by_key(key)
            assert group is not None, f"{key} vanished without acting"
            assert not group.has_exposure(), f"flat {key} was handed a position"
            assert group.collateral_quantums >= collateral_before, (
                f"flat {key} charged {collateral_before - group.collateral_quantums} by {tx}")

    def _record(self, tx: Transaction, receipt: Receipt) -> None:
        event(f"{type(tx).__name__}: {receipt.code.name}")
        heartbeat = isinstance(tx, OracleUpdate | FundingTick | ProcessLiquidations)
        for ev in receipt.events:
            if isinstance(ev, FundingPaid):
                assert isinstance(tx, FundingTick)
                assert ev.residual_quantums >= 0
                assert ev.paid_quantums == ev.received_quantums + ev.residual_quantums
            elif isinstance(ev, Liquidated | PositionDeleveraged):
                assert heartbeat, f"{tx} liquidated someone"
            if isinstance(ev, Liquidated):
                assert min(ev.size_lots_book, ev.size_lots_backstop, ev.size_lots_deleveraged,
                           ev.penalty_quantums) >= 0
            if isinstance(ev, Fill):
                self.coverage["fill"] += 1
                if ev.taker_order_id == 0:
                    self.coverage["liquidation_fill"] += 1
            elif isinstance(ev, Liquidated):
                self.coverage["liquidation"] += 1
                if ev.size_lots_backstop > 0:
                    self.coverage["backstop"] += 1
                    event("backstop")
                if ev.size_lots_deleveraged > 0:
                    self.coverage["adl_liquidation"] += 1
            elif isinstance(ev, PositionDeleveraged):
                self.coverage["adl"] += 1
                event("deleveraged")
            elif isinstance(ev, FundingPaid):
                self.coverage["funding"] += 1
                if ev.paid_quantums > 0:
                    self.coverage["funding_nonzero"] += 1

    # --- helpers ----------------------------------------------------------------------------

    def _oracle(self, price_quantums: int, stale: bool = False) -> Receipt:
        timestamp_ms = self.state.oracle_timestamp_ms if stale else self.clock_ms + 1_000
        tx = signed_oracle(self.state, timestamp_ms, price_quantums, BTC, ORACLE_KEY)
        receipt = self._apply(tx)
        if receipt.ok:
            self.index_quantums = price_quantums
        return receipt

    def _index_ticks(self) -> int:
        return self.index_quantums // TICK_QUANTUMS

    def _price_ticks(self, offset_ppm: int) -> int:
        return max(1, self._index_ticks() * (PPM + offset_ppm) // PPM)

    def _position_lots(self, account: tuple[bytes, int]) -> int:
        sub = self.state.subaccounts.get(account)
        if sub is None:
            return 0
        position = sub.group_for(BTC).positions.get(BTC)
        return 0 if position is None else position.size_lots

    def _open_order_ids(self, account: tuple[bytes, int]) -> list[int]:
        sub = self.state.subaccounts.get(account)
        return [] if sub is None else sorted(sub.orders)

    # --- rules: collateral ------------------------------------------------------------------

    @initialize(maker_usdc=st.sampled_from([20_000, 200_000, 2_000_000]),
                trader_usdc=st.lists(st.sampled_from([0, 300, 2_000, 20_000]),
                                     min_size=len(ACCOUNTS), max_size=len(ACCOUNTS)))
    def fund_everyone(self, maker_usdc: int, trader_usdc: list[int]) -> None:
        for (owner, number), usdc in zip(ACCOUNTS, trader_usdc, strict=True):
            amount = maker_usdc if (owner, number) == MAKER else usdc
            if amount:
                deposit_id = self.state.next_deposit_id
                assert self._apply(Deposit(deposit_id, owner, number, amount * USDC)).ok

    @rule(account=accounts, amount=amounts_quantums,
          id_offset=st.sampled_from([0, 0, 0, 0, 0, 0, -1, 1]))
    def deposit(self, account: tuple[bytes, int], amount: int, id_offset: int) -> None:
        deposit_id = self.state.next_deposit_id + id_offset
        receipt = self._apply(Deposit(deposit_id, account[0], account[1], amount))
        assert receipt.ok == (id_offset == 0)

    @rule(account=accounts, amount=amounts_quantums)
    def withdraw(self, account: tuple[bytes, int], amount: int) -> None:
        self._apply(Withdraw(account[0], account[1], amount))

    @rule(account=accounts, amount=amounts_quantums, id_offset=st.sampled_from((0, 0, 0, 1, -1)))
    def forced_withdrawal(self, account: tuple[bytes, int], amount: int, id_offset: int) -> None:
        request_id = self.state.next_forced_id + id_offset
        receipt = self._apply(ForcedWithdrawal(request_id, account[0], account[1], amount))
        assert receipt.ok == (id_offset == 0)  # only the request order can reject it

    @rule(account=accounts, to=st.sampled_from(TRANSFER_DESTINATIONS), amount=amounts_quantums)
    def transfer(self, account: tuple[bytes, int], to: tuple[bytes, int], amount: int) -> None:
        receipt = self._apply(Transfer(account[0], account[1], to[0], to[1], amount))
        if to == (INSURANCE_OWNER, 1):
            assert not receipt.ok

    @rule(account=accounts, isolated=st.booleans())
    def set_margin_mode(self, account: tuple[bytes, int], isolated: bool) -> None:
        self._apply(SetMarginMode(account[0], account[1], BTC, isolated))

    @rule(account=accounts, amount=st.integers(-20_000, 20_000).map(lambda u: u * USDC))
    def move_isolated_margin(self, account: tuple[bytes, int], amount: int) -> None:
        self._apply(MoveIsolatedMargin(account[0], account[1], BTC, amount))

    # --- rules: orders ----------------------------------------------------------------------

    @rule(account=accounts, is_buy=st.booleans(),
          offset_ppm=st.one_of(st.integers(-40_000, 40_000), st.integers(-150_000, 150_000)),
          size=st.one_of(st.integers(1, 50), st.integers(1, 3_000)),
          kind=st.sampled_from(ORDER_KINDS), client_order_id=st.integers(0, 6),
          self_trade=st.sampled_from(STP_MODES))
    def place_order(self, account: tuple[bytes, int], is_buy: bool, offset_ppm: int, size: int,
                    kind: str, client_order_id: int, self_trade: SelfTradePrevention) -> None:
        order_type = OrderType.MARKET if kind == "market" else OrderType.LIMIT
        tif = {"gtc": TimeInForce.GTC, "ioc": TimeInForce.IOC, "fok": TimeInForce.FOK,
               "post_only": TimeInForce.POST_ONLY, "market": TimeInForce.IOC,
               "reduce_only": TimeInForce.IOC}[kind]
        if kind == "reduce_only":
            position = self._position_lots(account)
            if position != 0:  # mostly valid reduce-only orders; invalid ones are rejected
                is_buy = position < 0
                size = min(size, abs(position))
        tx = PlaceOrder(account[0], account[1], BTC, Side.BUY if is_buy else Side.SELL,
                        self._price_ticks(offset_ppm if is_buy else -offset_ppm), size,
                        order_type, tif, kind == "reduce_only", client_order_id, self_trade)
        self._apply(tx)

    @rule(account=accounts, is_buy=st.booleans(), leverage_tenths=st.integers(20, 98))
    def open_leveraged(self, account: tuple[bytes, int], is_buy: bool,
                       leverage_tenths: int) -> None:
        """Take liquidity up to ``leverage`` x equity: the positions that big moves liquidate."""
        sub = self.state.subaccounts.get(account)
        if sub is None:
            return
        risk = group_risk(self.state.markets, sub.group_for(BTC))
        lot_value = self.index_quantums * LOT_NANOUNITS // NANOUNITS_PER_UNIT
        lots = risk.equity_quantums * leverage_tenths // 10 // lot_value
        lots -= self._position_lots(account) if is_buy else -self._position_lots(account)
        if lots <= 0:
            return
        bound = self._price_ticks(30_000 if is_buy else -30_000)
        self._apply(PlaceOrder(account[0], account[1], BTC, Side.BUY if is_buy else Side.SELL,
                               bound, min(lots, 10_000_000), OrderType.MARKET, TimeInForce.IOC))

    @rule(levels=st.integers(1, 4), spread_ppm=st.integers(200, 15_000),
          size=st.integers(20, 2_500))
    def maker_quotes(self, levels: int, spread_ppm: int, size: int) -> None:
        self._maker_quotes(levels, spread_ppm, size)

    def _maker_quotes(self, levels: int, spread_ppm: int, size: int) -> None:
        for level in range(1, levels + 1):
            for is_buy in (True, False):
                offset = -spread_ppm * level if is_buy else spread_ppm * level
                self._apply(PlaceOrder(MAKER[0], MAKER[1], BTC,
                                       Side.BUY if is_buy else Side.SELL,
                                       self._price_ticks(offset), size,
                                       time_in_force=TimeInForce.POST_ONLY))

    @rule(account=accounts, pick=st.integers(0, 1_000), bogus=st.booleans())
    def cancel(self, account: tuple[bytes, int], pick: int, bogus: bool) -> None:
        ids = self._open_order_ids(account)
        order_id = ids[pick % len(ids)] if ids and not bogus else pick + 10**6
        receipt = self._apply(CancelOrder(account[0], account[1], order_id))
        assert receipt.ok == (order_id in ids)

    @rule(account=accounts, client_order_id=st.integers(0, 6))
    def cancel_by_client_id(self, account: tuple[bytes, int], client_order_id: int) -> None:
        self._apply(CancelOrderByClientId(account[0], account[1], client_order_id))

    @rule(account=accounts, market_id=st.sampled_from([0, BTC, 7]))
    def cancel_all(self, account: tuple[bytes, int], market_id: int) -> None:
        receipt = self._apply(CancelAll(account[0], account[1], market_id))
        if receipt.ok:
            assert not self._open_order_ids(account)

    @rule(account=accounts, pick=st.integers(0, 1_000),
          offset_ppm=st.one_of(st.just(0), st.integers(-50_000, 50_000)),
          size=st.integers(1, 3_000))
    def modify(self, account: tuple[bytes, int], pick: int, offset_ppm: int, size: int) -> None:
        ids = self._open_order_ids(account)
        if not ids:
            return
        order = self.state.orders[ids[pick % len(ids)]]
        price = order.price_ticks if offset_ppm == 0 else self._price_ticks(offset_ppm)
        self._apply(ModifyOrder(account[0], account[1], order.order_id, price, size))

    # --- rules: oracle, funding, liquidation ------------------------------------------------

    @rule(move_ppm=st.integers(-20_000, 20_000), stale=st.booleans())
    def oracle_drift(self, move_ppm: int, stale: bool) -> None:
        self._oracle(self._moved_index(move_ppm), stale and move_ppm % 5 == 0)

    @rule(move_ppm=st.integers(50_000, 400_000), down=st.booleans(), maker_pulls=st.booleans())
    def oracle_jump(self, move_ppm: int, down: bool, maker_pulls: bool) -> None:
        """A 5-40% move; when the maker pulls its quotes first, the book cannot absorb."""
        if maker_pulls:
            self._apply(CancelAll(MAKER[0], MAKER[1]))
        self._oracle(self._moved_index(-move_ppm if down else move_ppm))

    @rule(account=accounts, is_long=st.booleans(), leverage_tenths=st.integers(50, 98),
          move_ppm=st.integers(30_000, 400_000), maker_pulls=st.booleans(),
          spread_ppm=st.integers(200, 5_000))
    def leveraged_crash(self, account: tuple[bytes, int], is_long: bool, leverage_tenths: int,
                        move_ppm: int, maker_pulls: bool, spread_ppm: int) -> None:
        """Quotes, a leveraged position against them, then a move against that position.

        The primitive rules reach this sequence too, but rarely; this makes liquidations through
        the book (maker keeps its stale quotes), backstops and ADL (maker pulls) frequent.
        """
        self._maker_quotes(2, spread_ppm, 5_000)
        self.open_leveraged(account, is_long, leverage_tenths)
        self.oracle_jump(move_ppm, is_long, maker_pulls)

    def _moved_index(self, move_ppm: int) -> int:
        price = self.index_quantums * (PPM + move_ppm) // PPM
        if not INDEX_MIN_QUANTUMS <= price <= INDEX_MAX_QUANTUMS:  # bounce back toward 100k
            price = self.index_quantums * (PPM - move_ppm) // PPM
        return price

    @rule(advance_s=st.sampled_from([1, 30, 59, 60, 61, 600, 1_800, 3_599, 3_600, 3_601]))
    def funding_tick(self, advance_s: int) -> None:
        receipt = self._apply(FundingTick(), advance_ms=advance_s * 1_000)
        assert receipt.ok

    @rule()
    def process_liquidations(self) -> None:
        assert self._apply(ProcessLiquidations()).ok


class StressVenueMachine(VenueMachine):
    """The same traffic under limits that bind: a maker rebate as large as the taker fee (the
    fee pool nets nothing on a fill), one liquidation per transaction (queues form), 10% steps,
    four fills per order, five open orders per subaccount and a small backstop cap."""

    @staticmethod
    def config() -> VenueConfig:
        base = venue_config()
        market = dataclasses.replace(base.markets[0], maker_fee_ppm=-500, taker_fee_ppm=500)
        return dataclasses.replace(
            base, markets=(market,), liquidations_per_tx_max=1, liquidation_step_ppm=100_000,
            fills_per_order_max=4, open_orders_per_subaccount_max=5,
            backstop_notional_quantums_max=20_000 * USDC)


TestStressVenueMachine = StressVenueMachine.TestCase
TestStressVenueMachine.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TestVenueMachine = VenueMachine.TestCase
TestVenueMachine.settings = settings(
    max_examples=300, stateful_step_count=60, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.slow
def test_machine_reaches_every_outcome() -> None:
    """A long derandomised run reaches fills, liquidations, backstops, ADL and funding."""
    VenueMachine.coverage = Counter()
    run_state_machine_as_test(VenueMachine, settings=settings(
        max_examples=600, stateful_step_count=100, deadline=None, database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]))
    coverage = VenueMachine.coverage
    for outcome in ("fill", "liquidation_fill", "liquidation", "backstop", "adl",
                    "funding_nonzero"):
        assert coverage[outcome] > 0, f"never reached {outcome}: {dict(coverage)}"

"""Stateful property test of a venue trading options: every money invariant after every step.

A hypothesis ``RuleBasedStateMachine`` runs a venue with the BTC perpetual and BTC options on two
expiries (one expires during the run): deposits, withdrawals, transfers, option and perpetual
orders of every type, mass quotes under market-maker protection, portfolio/standard mode
switches, index moves (small and large, so option portfolios are liquidated), volatility
updates, funding ticks, liquidation heartbeats, time passing, expiry (books closing, then cash
settlement), delisting and listing. After every transaction it checks:

- ``check_invariants`` (conservation through fills, funding, liquidation and settlement; open
  interest; books; reservations; margin; option bookkeeping: nothing left open at expiry);
- the incremental state root equals a full recomputation (``StateCommitment.check``);
- a rejected transaction changed no state;
- no flat group lost collateral in a step it took no part in.

``test_options_machine_reaches_its_outcomes`` runs it derandomised and requires option fills,
a settlement, a market-maker protection trigger and an option liquidation to have happened.
"""

from __future__ import annotations

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
    USDC,
    flat_smile,
    options_config,
    signed_oracle,
    signed_volatility,
    skewed_smile,
)
from rollbook._pure import is_compiled
from rollbook.commitment import canonical_root, genesis_commitment
from rollbook.execution import (
    Batch,
    CancelAll,
    DelistOption,
    Deposit,
    ExpireOptions,
    FundingTick,
    ListOption,
    MassQuote,
    OptionType,
    OrderType,
    PlaceOrder,
    ProcessLiquidations,
    Quote,
    Receipt,
    SetMmp,
    SetPortfolioMargin,
    Side,
    TimeInForce,
    Transaction,
    Transfer,
    Withdraw,
    apply_batch,
    apply_transaction,
    genesis_state,
)
from rollbook.execution.events import (
    ExpirySettled,
    Fill,
    Liquidated,
    MmpTriggered,
    OptionSettled,
)
from rollbook.execution.invariants import check_invariants
from rollbook.execution.margin import group_risk
from rollbook.execution.state import EXPIRY_SETTLED, GroupKey

ERIN = b"\xe7" * 20
MAKER = DAVE
ACCOUNTS = (ALICE, BOB, CAROL, DAVE, ERIN)
START_MS = 1_000_000
NEAR_MS = START_MS + 1_800_000  # expires during a run: 30 minutes
FAR_MS = START_MS + 7 * 86_400_000
K = 1_000 * USDC
NEAR_STRIKES = (95 * K, 100 * K, 105 * K)
FAR_STRIKES = (100 * K,)
LOT_NANOUNITS = 10_000_000
PPM = 10**6
ORDER_KINDS = ("gtc", "ioc", "post_only", "market", "reduce_only", "fok")

accounts = st.sampled_from(ACCOUNTS)


class OptionsMachine(RuleBasedStateMachine):
    coverage: ClassVar[Counter[str]] = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.state = genesis_state(options_config())
        self.commitment = genesis_commitment(self.state)
        self.clock_ms = START_MS
        self.index = INDEX_100K_QUANTUMS
        self.next_market_id = 100
        assert self._apply(self._oracle_tx(self.index)).ok
        listings = [(NEAR_MS, strike) for strike in NEAR_STRIKES] + [
            (FAR_MS, strike) for strike in FAR_STRIKES]
        for expiry_ms, strike in listings:
            for option_type in (OptionType.CALL, OptionType.PUT):
                assert self._apply(self._list_tx(expiry_ms, strike, option_type)).ok
        assert self._vol(600_000, skew=False).ok

    # --- the step ---------------------------------------------------------------------------

    def _apply(self, tx: Transaction, advance_ms: int = 1_000) -> Receipt:
        state = self.state
        self.clock_ms += advance_ms
        apply_batch(state, Batch(state.batch_index + 1, self.clock_ms, bytes(32), ()))
        flat_before = {group.key: group.collateral_quantums
                       for sub in state.subaccounts.values() if sub is not state.insurance
                       for group in sub.groups() if not group.has_exposure()}
        digest_before = canonical_root(state)
        receipt = apply_transaction(state, tx)
        if not receipt.ok:
            assert receipt.events == ()
            assert canonical_root(state) == digest_before, f"rejected {tx} changed state"
        check_invariants(state)
        self.commitment.commit(state)
        self.commitment.check(state)
        self._check_flat(tx, receipt, flat_before)
        self._record(tx, receipt)
        return receipt

    def _check_flat(self, tx: Transaction, receipt: Receipt,
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
        for key, before in flat_before.items():
            if (key[0], key[1]) in involved:
                continue
            group = self.state.group_by_key(key)
            assert group is not None and not group.has_exposure()
            assert group.collateral_quantums >= before, f"flat {key} charged by {tx}"

    def _record(self, tx: Transaction, receipt: Receipt) -> None:
        event(f"{type(tx).__name__}: {receipt.code.name}")
        cashflows = 0
        for ev in receipt.events:
            if isinstance(ev, Fill) and self.state.markets.get(ev.market_id) is not None and (
                    ev.market_id != BTC):
                self.coverage["option_fill"] += 1
            elif isinstance(ev, OptionSettled):
                cashflows += ev.cashflow_quantums
            elif isinstance(ev, ExpirySettled):
                self.coverage["settlement"] += 1
                if ev.shortfall_quantums == 0:  # then settlement alone nets to zero
                    assert cashflows + ev.residual_quantums == 0
                if ev.shortfall_quantums:
                    self.coverage["shortfall"] += 1
            elif isinstance(ev, MmpTriggered):
                self.coverage["mmp"] += 1
            elif isinstance(ev, Liquidated) and ev.market_id != BTC:
                self.coverage["option_liquidation"] += 1
                if ev.size_lots_book:
                    self.coverage["option_liquidation_book"] += 1

    # --- helpers ----------------------------------------------------------------------------

    def _oracle_tx(self, price: int) -> Transaction:
        return signed_oracle(self.state, self.clock_ms + 1_000, price)

    def _list_tx(self, expiry_ms: int, strike: int, option_type: OptionType) -> ListOption:
        market_id = self.next_market_id
        self.next_market_id += 1
        return ListOption(market_id, BTC, expiry_ms, strike, option_type)

    def _vol(self, vol_ppm: int, skew: bool) -> Receipt:
        observed = self.clock_ms + 1_000
        make = skewed_smile if skew else flat_smile
        smiles = tuple(make(BTC, expiry_ms, observed, vol_ppm)
                       for (index_id, expiry_ms), e in sorted(self.state.expiries.items())
                       if e.status != EXPIRY_SETTLED and expiry_ms - observed >= 1_000)
        if not smiles:
            return self._apply(FundingTick())
        return self._apply(signed_volatility(self.state, observed, smiles))

    def _options(self) -> list[int]:
        return sorted(m for m, market in self.state.markets.items() if market.option is not None)

    def _pick_option(self, pick: int) -> int | None:
        options = self._options()
        return options[pick % len(options)] if options else None

    def _mark_ticks(self, market_id: int) -> int:
        market = self.state.markets[market_id]
        return max(1, market.index_price_quantums // market.config.tick_size_quantums)

    def _position(self, owner: bytes, market_id: int) -> int:
        sub = self.state.subaccounts.get((owner, 0))
        if sub is None:
            return 0
        position = sub.group_for(market_id).positions.get(market_id)
        return 0 if position is None else position.size_lots

    # --- rules ------------------------------------------------------------------------------

    # the simplest draws (first in each list) are already meaningful: funded accounts
    @initialize(maker_usdc=st.sampled_from([500_000, 50_000]),
                usdc=st.lists(st.sampled_from([20_000, 2_000, 100_000, 0]), min_size=4,
                              max_size=4),
                portfolio=st.lists(st.booleans(), min_size=5, max_size=5))
    def fund(self, maker_usdc: int, usdc: list[int], portfolio: list[bool]) -> None:
        amounts = dict(zip((ALICE, BOB, CAROL, ERIN), usdc, strict=True))
        amounts[MAKER] = maker_usdc
        for owner in ACCOUNTS:
            if amounts[owner]:
                assert self._apply(Deposit(self.state.next_deposit_id, owner, 0,
                                           amounts[owner] * USDC)).ok
        for owner, enabled in zip(ACCOUNTS, portfolio, strict=True):
            if enabled and amounts[owner]:
                self._apply(SetPortfolioMargin(owner, 0, True))

    @rule(owner=accounts, usdc=st.integers(1, 50_000))
    def deposit(self, owner: bytes, usdc: int) -> None:
        assert self._apply(Deposit(self.state.next_deposit_id, owner, 0, usdc * USDC)).ok

    @rule(owner=accounts, usdc=st.integers(1, 50_000))
    def withdraw(self, owner: bytes, usdc: int) -> None:
        self._apply(Withdraw(owner, 0, usdc * USDC))

    @rule(owner=accounts, to=accounts, usdc=st.integers(1, 20_000))
    def transfer(self, owner: bytes, to: bytes, usdc: int) -> None:
        self._apply(Transfer(owner, 0, to, 0, usdc * USDC))

    @rule(owner=accounts, enabled=st.booleans())
    def set_portfolio(self, owner: bytes, enabled: bool) -> None:
        self._apply(SetPortfolioMargin(owner, 0, enabled))

    @rule(owner=accounts, pick=st.integers(0, 100), is_buy=st.booleans(),
          offset_ppm=st.integers(-300_000, 300_000), size=st.integers(1, 60),
          kind=st.sampled_from(ORDER_KINDS))
    def option_order(self, owner: bytes, pick: int, is_buy: bool, offset_ppm: int, size: int,
                     kind: str) -> None:
        market_id = self._pick_option(pick)
        if market_id is None:
            return
        mark = self._mark_ticks(market_id)
        price = max(1, mark * (PPM + (offset_ppm if is_buy else -offset_ppm)) // PPM)
        if kind == "reduce_only":
            position = self._position(owner, market_id)
            if position:
                is_buy, size = position < 0, min(size, abs(position))
        tif = {"gtc": TimeInForce.GTC, "ioc": TimeInForce.IOC, "post_only": TimeInForce.POST_ONLY,
               "market": TimeInForce.IOC, "reduce_only": TimeInForce.IOC,
               "fok": TimeInForce.FOK}[kind]
        order_type = OrderType.MARKET if kind == "market" else OrderType.LIMIT
        self._apply(PlaceOrder(owner, 0, market_id, Side.BUY if is_buy else Side.SELL, price,
                               size, order_type, tif, kind == "reduce_only"))

    @rule(owner=accounts, is_buy=st.booleans(), offset_ppm=st.integers(-20_000, 20_000),
          size=st.integers(1, 3_000), ioc=st.booleans())
    def perp_order(self, owner: bytes, is_buy: bool, offset_ppm: int, size: int,
                   ioc: bool) -> None:
        ticks = self.index // 100_000 * (PPM + offset_ppm) // PPM
        self._apply(PlaceOrder(owner, 0, BTC, Side.BUY if is_buy else Side.SELL, max(1, ticks),
                               size, time_in_force=TimeInForce.IOC if ioc else TimeInForce.GTC))

    @rule(owner=accounts, is_short=st.booleans(), pick=st.integers(0, 100),
          leverage_tenths=st.integers(5, 10))
    def leveraged_option(self, owner: bytes, is_short: bool, pick: int,
                         leverage_tenths: int) -> None:
        """Take the maker's quotes for a position sized to the account's initial margin."""
        market_id = self._pick_option(pick)
        sub = self.state.subaccounts.get((owner, 0))
        if market_id is None or sub is None or owner == MAKER:
            return
        self._maker_ladder(40, 60)
        risk = group_risk(self.state.markets, sub.cross)
        free = risk.equity_quantums - risk.initial_quantums
        lot_value = max(1, self.state.markets[market_id].index_price_quantums
                        * LOT_NANOUNITS // 10**9)
        # a short option needs ~15% of the index per unit on top of its value
        unit_risk = self.index * 15 // 100 * LOT_NANOUNITS // 10**9 + lot_value
        lots = free * leverage_tenths // 10 // (unit_risk if is_short else lot_value)
        if lots <= 0:
            return
        mark = self._mark_ticks(market_id)
        bound = max(1, mark // 2) if is_short else mark * 3 // 2
        self._apply(PlaceOrder(owner, 0, market_id, Side.SELL if is_short else Side.BUY, bound,
                               min(lots, 500), OrderType.MARKET, TimeInForce.IOC))

    @rule(owner=accounts, pick=st.integers(0, 100), leverage_tenths=st.integers(7, 10),
          move_ppm=st.integers(120_000, 250_000), pull=st.booleans())
    def short_option_squeeze(self, owner: bytes, pick: int, leverage_tenths: int,
                             move_ppm: int, pull: bool) -> None:
        """A short option near its initial margin, then a move against it: liquidations."""
        market_id = self._pick_option(pick)
        if market_id is None:
            return
        self.leveraged_option(owner, True, pick, leverage_tenths)
        option = self.state.markets[market_id].option
        assert option is not None
        if pull:
            self._apply(MassQuote(MAKER, 0, BTC, ()))
        self._move(move_ppm if option.spec.option_type == OptionType.CALL else -move_ppm)

    def _maker_ladder(self, size: int, width_ticks: int) -> Receipt:
        quotes = []
        for market_id in self._options():
            option = self.state.markets[market_id].option
            if option is None or self.state.timestamp_ms + 1_000 >= option.spec.expiry_ms:
                continue
            mark = self._mark_ticks(market_id)
            quotes.append(Quote(market_id, Side.BUY, max(1, mark - width_ticks), size))
            quotes.append(Quote(market_id, Side.SELL, mark + width_ticks, size))
        return self._apply(MassQuote(MAKER, 0, BTC, tuple(quotes[:64])))

    @rule(size=st.integers(1, 40), width=st.integers(1, 400))
    def mass_quote(self, size: int, width: int) -> None:
        self._maker_ladder(size, width)

    @rule(quantity_lots=st.integers(0, 80), delta_lots=st.integers(0, 40),
          frozen_ms=st.sampled_from([0, 5_000, 60_000]))
    def set_mmp(self, quantity_lots: int, delta_lots: int, frozen_ms: int) -> None:
        self._apply(SetMmp(MAKER, 0, BTC, 30_000, frozen_ms, quantity_lots * LOT_NANOUNITS,
                           delta_lots * LOT_NANOUNITS, 0))

    @rule(owner=accounts)
    def cancel_all(self, owner: bytes) -> None:
        self._apply(CancelAll(owner, 0))

    @rule(move_ppm=st.integers(-30_000, 30_000))
    def oracle_drift(self, move_ppm: int) -> None:
        self._move(move_ppm)

    @rule(move_ppm=st.integers(60_000, 300_000), down=st.booleans(), pull=st.booleans())
    def oracle_jump(self, move_ppm: int, down: bool, pull: bool) -> None:
        if pull:
            self._apply(MassQuote(MAKER, 0, BTC, ()))
        self._move(-move_ppm if down else move_ppm)

    def _move(self, move_ppm: int) -> None:
        price = self.index * (PPM + move_ppm) // PPM
        if not 40 * K <= price <= 250 * K:
            price = self.index * (PPM - move_ppm) // PPM
        if self._apply(self._oracle_tx(price)).ok:
            self.index = price

    @rule(vol_ppm=st.integers(200_000, 1_500_000), skew=st.booleans())
    def volatility(self, vol_ppm: int, skew: bool) -> None:
        self._vol(vol_ppm, skew)

    @rule(advance_s=st.sampled_from([1, 60, 300, 900, 1_800]))
    def time_passes(self, advance_s: int) -> None:
        self._apply(FundingTick(), advance_ms=advance_s * 1_000)
        self._apply(self._oracle_tx(self.index))  # keep the oracle near batch time

    @rule(quote_first=st.booleans())
    def run_to_expiry(self, quote_first: bool) -> None:
        """The clock runs to the next unsettled expiry, then it closes and settles."""
        pending = sorted(e for (_, e), expiry in self.state.expiries.items()
                         if expiry.status != EXPIRY_SETTLED)
        if not pending:
            return
        if quote_first:
            self._maker_ladder(10, 30)
        gap_ms = max(1_000, pending[0] - self.clock_ms)
        self._apply(FundingTick(), advance_ms=gap_ms)
        self._apply(ExpireOptions(BTC, pending[0]))  # the books close
        self._apply(self._oracle_tx(self.index))  # the first sample after expiry
        self._apply(ExpireOptions(BTC, pending[0]))  # settlement

    @rule()
    def expire(self) -> None:
        for (index_id, expiry_ms), expiry in sorted(self.state.expiries.items()):
            if expiry.status != EXPIRY_SETTLED:
                self._apply(ExpireOptions(index_id, expiry_ms))

    @rule()
    def process_liquidations(self) -> None:
        assert self._apply(ProcessLiquidations()).ok

    @rule(pick=st.integers(0, 100), any_market=st.sampled_from([False, False, False, True]))
    def delist(self, pick: int, any_market: bool) -> None:
        """Mostly settled markets; sometimes a live one (refused while it has positions)."""
        settled = [m for m in self._options()
                   if self.state.markets[m].option.expiry.status == EXPIRY_SETTLED]  # type: ignore[union-attr]
        candidates = self._options() if any_market else settled
        if candidates:
            self._apply(DelistOption(candidates[pick % len(candidates)]))

    @rule(strike_k=st.integers(80, 120), is_call=st.booleans(), far=st.booleans())
    def list_option(self, strike_k: int, is_call: bool, far: bool) -> None:
        self._apply(self._list_tx(FAR_MS if far else NEAR_MS, strike_k * K,
                                  OptionType.CALL if is_call else OptionType.PUT))


TestOptionsMachine = OptionsMachine.TestCase
TestOptionsMachine.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.skipif(is_compiled(), reason="Hypothesis generates other steps on the compiled "
                    "build; its behaviour is compared step by step in "
                    "test_options_compiled_replay instead")
def test_options_machine_reaches_its_outcomes() -> None:
    OptionsMachine.coverage = Counter()
    run_state_machine_as_test(OptionsMachine, settings=settings(
        max_examples=60, stateful_step_count=50, deadline=None, database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]))
    coverage = OptionsMachine.coverage
    for outcome in ("option_fill", "settlement", "mmp", "option_liquidation"):
        assert coverage[outcome] > 0, f"never reached {outcome}: {dict(coverage)}"

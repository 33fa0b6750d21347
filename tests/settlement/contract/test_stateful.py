"""Hypothesis stateful test: the settlement contract against a model of an honest venue.

The machine drives one deployed contract through random sequences of deposits, batches (honest
ones built from a small venue model, and bad ones that a verifier must dispute), disputes, time
travel, withdrawal claims, forced-withdrawal requests, the freeze, escape registrations and
payments, and refunds. Every rule first works out what the contract must do (succeed, or revert
with which reason) and checks it; after every step the invariants below hold:

- no withdrawal id is paid twice (the model's expectation would fail first), and the contract's
  token balance is exactly what came in minus what went out;
- no batch is final inside its window, and no disputed or bad root is ever final;
- the balance covers what the contract still owes (unpaid withdrawals of the latest final root
  and uncredited deposits before a freeze; refunds and the payouts of unpaid claims after it),
  and the total paid out never exceeds the total deposited;
- nothing is registered or paid by the escape hatch before a freeze.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import boa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rollbook.settlement import reference as ref

from .conftest import (
    LeafTree,
    account_leaf,
    deploy_system,
    market_leaf,
    withdrawal_leaf,
)

WINDOW_S = 100
DEADLINE_S = 300
PERIOD_S = 3_000  # long against the waits between actions, so registrations often fit
MARKET_ID = 1
PRICE_QUANTUMS = 500_000  # 0.5 USDC per unit
LOT_NANOUNITS = 10**9  # one unit per lot
# Alice long, Bob short, once both hold an account: 1 USDC of value, so Bob is bankrupt (and
# the escape pool short) only when he holds less than that
PAIR_LOTS = 2
MARKET_SLOT = 1
ACCOUNT_SLOT_FIRST = 2  # Alice, Bob, Carol
WITHDRAWAL_SLOT_FIRST = 10  # + withdrawal id
BAD_WITHDRAWAL_QUANTUMS = 10**12  # what a bad root would steal if it ever finalised
TIME_STEPS_S = (1, 50, WINDOW_S - 1, WINDOW_S, WINDOW_S + 1, DEADLINE_S, DEADLINE_S + 1,
                PERIOD_S - 1, PERIOD_S, 2 * PERIOD_S)

users = st.integers(0, 2)
# time that passes after an action, so that windows and deadlines run out between actions
waits = st.sampled_from((0, 0, WINDOW_S // 3, WINDOW_S + 20, DEADLINE_S + 50))


@dataclass
class VenueState:
    """The part of an honest venue's state that the contract can see through leaves."""

    credited: int = 0
    forced_processed: int = 0
    collateral: dict[int, int] = field(default_factory=dict)  # user index -> quantums
    withdrawals: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> (user, amount)
    next_withdrawal_id: int = 1


@dataclass
class BatchModel:
    state: VenueState
    tree: LeafTree
    submitted_at: int
    bad: bool = False


class SettlementMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.nonce = 0
        genesis_state = VenueState()
        genesis = self._tree(genesis_state)
        self.system = deploy_system(genesis, challenge_window_s=WINDOW_S,
                                    forced_deadline_s=DEADLINE_S, escape_period_s=PERIOD_S)
        self.s = self.system.settlement
        self.users = self.system.users
        self.chain = [BatchModel(genesis_state, genesis, boa.env.timestamp)]
        self.deposits: list[tuple[int, int]] = []  # (user, amount), id = position + 1
        self.forced: list[tuple[int, int, int]] = []  # (user, amount, requested_at)
        self.disputed_roots: set[bytes] = set()
        self.bad_roots: set[bytes] = set()
        self.withdrawals_paid: dict[int, int] = {}
        self.total_in = 0
        self.total_out = 0
        self.frozen = False
        self.frozen_at = 0
        self.escape: BatchModel | None = None
        self.pool = 0
        self.markets_registered = False
        self.account_claims: dict[int, int] = {}  # user -> claim
        self.accounts_paid: set[int] = set()
        self.withdrawal_claims: dict[int, tuple[int, int]] = {}  # id -> (user, claim)
        self.refunded: set[int] = set()
        self.censoring = False

    def teardown(self) -> None:
        self._anchor.__exit__(None, None, None)

    # --- model helpers

    @property
    def now(self) -> int:
        timestamp: int = boa.env.timestamp
        return timestamp

    def _final(self, index: int) -> bool:
        return index == 0 or self.now >= self.chain[index].submitted_at + WINDOW_S

    def _latest_final(self) -> int:
        return max(i for i in range(len(self.chain)) if self._final(i))

    def _tree(self, state: VenueState, *, bad: bool = False) -> LeafTree:
        self.nonce += 1
        leaves = {MARKET_SLOT: market_leaf(MARKET_ID, PRICE_QUANTUMS, LOT_NANOUNITS)}
        paired = 0 in state.collateral and 1 in state.collateral
        for user, collateral in state.collateral.items():
            size = (PAIR_LOTS if user == 0 else -PAIR_LOTS) if paired and user < 2 else 0
            positions = ((MARKET_ID, size),) if size else ()
            leaves[ACCOUNT_SLOT_FIRST + user] = account_leaf(self.users[user], 0, (collateral,),
                                                             positions)
        for withdrawal_id, (user, amount) in state.withdrawals.items():
            leaves[WITHDRAWAL_SLOT_FIRST + withdrawal_id] = withdrawal_leaf(
                withdrawal_id, self.users[user], amount)
        if bad:  # pays the stranger what nobody deposited
            bad_id = state.next_withdrawal_id
            leaves[WITHDRAWAL_SLOT_FIRST + bad_id] = withdrawal_leaf(
                bad_id, self.system.stranger, BAD_WITHDRAWAL_QUANTUMS)
        return LeafTree(leaves, nonce=self.nonce)

    def _pay_check(self, receiver: Any, amount: int, call: Any) -> None:
        before = self.system.token.balanceOf(receiver)
        call()
        assert self.system.token.balanceOf(receiver) - before == amount
        self.total_out += amount

    def _expect(self, reason: str | None, call: Any) -> bool:
        if reason is None:
            call()
            return True
        # a revert cannot move anything in the EVM; the unit tests check it with fingerprints,
        # here the invariants after the step would see any difference from the model
        with boa.reverts(reason):
            call()
        return False

    def _registration_reason(self) -> str | None:
        if not self.frozen:
            return "Settlement: not frozen"
        if self.now >= self.frozen_at + PERIOD_S:
            return "Settlement: escape period over"
        return None

    def _payment_reason(self) -> str | None:
        if not self.frozen:
            return "Settlement: not frozen"
        if self.now < self.frozen_at + PERIOD_S:
            return "Settlement: escape period not over"
        return None

    def _claims_total(self) -> int:
        return sum(self.account_claims.values()) + sum(
            claim for _, claim in self.withdrawal_claims.values())

    # --- rules: before the freeze

    @rule(user=users, amount=st.integers(1, 10**8), wait=waits)
    def deposit(self, user: int, amount: int, wait: int = 0) -> None:
        def call() -> None:
            with boa.env.prank(self.users[user]):
                assert self.s.deposit(0, amount) == len(self.deposits) + 1
        if self._expect("Settlement: frozen" if self.frozen else None, call):
            self.deposits.append((user, amount))
            self.total_in += amount
        self._wait(wait)

    def _wait(self, seconds: int) -> None:
        if seconds:
            self.advance_time(seconds)

    @initialize(amounts=st.lists(st.integers(1, 10**8), min_size=3, max_size=3),
                censoring=st.booleans())
    def fund_everyone(self, amounts: list[int], censoring: bool) -> None:
        """Every user deposits and a first batch credits them; a censoring operator never
        processes forced withdrawals (so the freeze and the escape hatch get exercised)."""
        self.censoring = censoring
        for user, amount in enumerate(amounts):
            self.deposit(user, amount)
        self.submit(credit=True, process_forced=False, withdraw=None)

    @rule(credit=st.booleans(), process_forced=st.booleans(),
          withdraw=st.none() | st.tuples(users, st.integers(1, 100)), wait=waits)
    def submit(self, credit: bool, process_forced: bool,
               withdraw: tuple[int, int] | None, wait: int = 0) -> None:
        """An honest batch: credits the pending deposits (or none), processes the pending
        forced withdrawals (unless censoring), and withdraws a percentage of a collateral."""
        state = copy.deepcopy(self.chain[-1].state)
        for user, amount in self.deposits[state.credited:] if credit else []:
            state.collateral[user] = state.collateral.get(user, 0) + amount
            state.credited += 1
        processing = process_forced and not self.censoring
        requests = self.forced[state.forced_processed:] if processing else []
        withdrawals = [(user, amount) for user, amount, _ in requests]
        state.forced_processed += len(requests)
        if withdraw is not None:
            user, percent = withdraw
            withdrawals.append((user, max(0, state.collateral.get(user, 0)) * percent // 100))
        for user, wanted in withdrawals:  # an honest STF never pays more than the collateral
            amount = min(wanted, max(0, state.collateral.get(user, 0)))
            if user in state.collateral:
                state.collateral[user] -= amount
            state.withdrawals[state.next_withdrawal_id] = (user, amount)
            state.next_withdrawal_id += 1
        self._submit(state, self._tree(state))
        self._wait(wait)

    @rule()
    def submit_bad(self) -> None:
        state = copy.deepcopy(self.chain[-1].state)
        tree = self._tree(state, bad=True)
        if self._submit(state, tree, bad=True):
            self.bad_roots.add(tree.root)

    def _submit(self, state: VenueState, tree: LeafTree, bad: bool = False) -> bool:
        index = len(self.chain)

        def call() -> None:
            with boa.env.prank(self.system.operator):
                self.s.submit_batch(index, self.chain[-1].tree.root, tree.root, b"\x0d" * 32,
                                    state.credited, state.forced_processed, b"batch")
        if self._expect("Settlement: frozen" if self.frozen else None, call):
            self.chain.append(BatchModel(state, tree, self.now, bad))
            return True
        return False

    @rule(data=st.data())
    def dispute(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.chain)), label="batch")
        self._dispute(index)

    def _dispute(self, index: int) -> None:
        reason = None
        if self.frozen:
            reason = "Settlement: frozen"
        elif index >= len(self.chain):
            reason = "Settlement: no such batch"
        elif self._final(index):
            reason = "Settlement: batch is final"

        def call() -> None:
            with boa.env.prank(self.system.challenger):
                self.s.dispute(index)
        if self._expect(reason, call):
            event("dispute")
            self.disputed_roots.update(batch.tree.root for batch in self.chain[index:])
            del self.chain[index:]

    @rule(seconds=st.sampled_from(TIME_STEPS_S))
    def advance_time(self, seconds: int) -> None:
        # the honest verifier disputes a bad batch before its window can close
        if not self.frozen:
            bad = [i for i, batch in enumerate(self.chain) if batch.bad]
            if bad:
                self._dispute(bad[0])
        boa.env.time_travel(seconds=seconds)

    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        candidates = [(i, wid) for i, batch in enumerate(self.chain) if not batch.bad
                      for wid in batch.state.withdrawals]
        if not candidates:
            return
        index, withdrawal_id = data.draw(st.sampled_from(candidates), label="claim")
        batch = self.chain[index]
        user, amount = batch.state.withdrawals[withdrawal_id]
        reason = None
        if self.frozen:
            reason = "Settlement: frozen"
        elif not self._final(index):
            reason = "Settlement: batch not final"
        elif withdrawal_id in self.withdrawals_paid:
            reason = "Settlement: withdrawal already paid"
        elif amount == 0:
            reason = "Settlement: zero withdrawal"
        slot = WITHDRAWAL_SLOT_FIRST + withdrawal_id

        def call() -> None:
            self.s.claim_withdrawal(index, *batch.tree.args(slot))
        if reason is not None:
            self._expect(reason, call)
            return
        self._pay_check(self.users[user], amount, call)
        self.withdrawals_paid[withdrawal_id] = amount
        event("withdrawal claimed")

    @rule(user=users, amount=st.integers(1, 10**9), wait=waits)
    def request_forced(self, user: int, amount: int, wait: int = 0) -> None:
        def call() -> None:
            with boa.env.prank(self.users[user]):
                self.s.request_forced_withdrawal(0, amount)
        if self._expect("Settlement: frozen" if self.frozen else None, call):
            self.forced.append((user, amount, self.now))
        self._wait(wait)

    @rule(wait_out=st.sampled_from((False, False, True)))
    def freeze(self, wait_out: bool = False) -> None:
        """Freezes; with ``wait_out`` a user first asks for a forced withdrawal and nobody
        submits a batch until its deadline has passed (a censoring operator)."""
        if wait_out and not self.frozen:
            self.request_forced(0, 1)
            self.advance_time(DEADLINE_S + 1)  # the verifier still disputes bad batches
        oldest = self.chain[-1].state.forced_processed  # index of the oldest uncovered request
        reason = None
        if self.frozen:
            reason = "Settlement: already frozen"
        elif oldest >= len(self.forced) or self.now <= self.forced[oldest][2] + DEADLINE_S:
            reason = "Settlement: no overdue forced withdrawal"
        if not self._expect(reason, self.s.freeze):
            return
        escape_index = self._latest_final()
        del self.chain[escape_index + 1:]
        self.escape = self.chain[escape_index]
        credited = self.escape.state.credited
        uncredited = sum(amount for _, amount in self.deposits[credited:])
        self.pool = ref.escape_pool(self.total_in - self.total_out, uncredited)
        self.frozen, self.frozen_at = True, self.now
        event("frozen")
        assert (self.s.escape_batch(), self.s.escape_root(), self.s.escape_pool()) == (
            escape_index, self.escape.tree.root, self.pool)

    # --- rules: the escape hatch

    def _proof_tree(self) -> BatchModel:
        """The escape root's batch, or before a freeze the latest final one."""
        return self.escape if self.escape is not None else self.chain[self._latest_final()]

    def _register_market(self) -> None:
        reason = self._registration_reason()
        if reason is None and self.markets_registered:
            reason = "Settlement: market already registered"
        tree = self._proof_tree().tree
        if self._expect(reason, lambda: self.s.escape_register_market(*tree.args(MARKET_SLOT))):
            self.markets_registered = True

    def _register_account(self, user: int) -> None:
        batch = self._proof_tree()
        slot = ACCOUNT_SLOT_FIRST + user
        if slot not in batch.tree.leaves:
            return
        leaf = batch.tree.leaves[slot]
        account = ref.decode_subaccount_leaf(leaf)
        reason = self._registration_reason()
        equity = 0
        if reason is None and user in self.account_claims:
            reason = "Settlement: account already registered"
        elif reason is None and account.positions and not self.markets_registered:
            reason = "Settlement: market not registered"
        elif reason is None:
            markets = {MARKET_ID: ref.EscapeMarket(PRICE_QUANTUMS, LOT_NANOUNITS)}
            equity = ref.escape_equity(account, markets)
            assert self.s.escape_equity(leaf) == equity
            if equity <= 0:
                reason = "Settlement: no positive equity"
        if self._expect(reason, lambda: self.s.escape_register_account(*batch.tree.args(slot))):
            self.account_claims[user] = ref.escape_claim(equity)
            event("escape account registered")
            assert self.s.escape_account_claim(self.users[user], 0) == equity

    def _register_withdrawal(self, withdrawal_id: int) -> None:
        batch = self._proof_tree()
        if withdrawal_id not in batch.state.withdrawals:
            return
        user, amount = batch.state.withdrawals[withdrawal_id]
        reason = self._registration_reason()
        if reason is None and withdrawal_id in self.withdrawals_paid:
            reason = "Settlement: withdrawal already paid"
        elif reason is None and withdrawal_id in self.withdrawal_claims:
            reason = "Settlement: withdrawal already registered"
        elif reason is None and amount == 0:
            reason = "Settlement: zero withdrawal"
        slot = WITHDRAWAL_SLOT_FIRST + withdrawal_id
        if self._expect(reason,
                        lambda: self.s.escape_register_withdrawal(*batch.tree.args(slot))):
            self.withdrawal_claims[withdrawal_id] = (user, amount)

    def _withdraw_account(self, user: int) -> None:
        reason = self._payment_reason()
        if reason is None and user not in self.account_claims:
            reason = "Settlement: account not registered"
        elif reason is None and user in self.accounts_paid:
            reason = "Settlement: account already paid"

        def call() -> None:
            self.s.escape_withdraw_account(self.users[user], 0)
        if reason is not None:
            event(f"escape payment refused: {reason}")
            self._expect(reason, call)
            return
        amount = ref.escape_payout(self.account_claims[user], self.pool, self._claims_total())
        event("escape paid " + ("with a haircut" if self._claims_total() > self.pool
                                else "in full"))
        self._pay_check(self.users[user], amount, call)
        self.accounts_paid.add(user)

    def _withdraw_withdrawal(self, withdrawal_id: int) -> None:
        reason = self._payment_reason()
        if reason is None and withdrawal_id not in self.withdrawal_claims:
            reason = "Settlement: withdrawal not registered"
        elif reason is None and withdrawal_id in self.withdrawals_paid:
            reason = "Settlement: withdrawal already paid"

        def call() -> None:
            self.s.escape_withdraw_withdrawal(withdrawal_id)
        if reason is not None:
            self._expect(reason, call)
            return
        user, claim = self.withdrawal_claims[withdrawal_id]
        amount = ref.escape_payout(claim, self.pool, self._claims_total())
        event("escape withdrawal paid")
        self._pay_check(self.users[user], amount, call)
        self.withdrawals_paid[withdrawal_id] = amount

    @rule(kind=st.sampled_from(("market", "account", "withdrawal")), user=users,
          withdrawal_id=st.integers(1, 8))
    def escape_register(self, kind: str, user: int, withdrawal_id: int) -> None:
        if kind == "market":
            self._register_market()
        elif kind == "account":
            self._register_account(user)
        else:
            self._register_withdrawal(withdrawal_id)

    @rule(kind=st.sampled_from(("account", "withdrawal")), user=users,
          withdrawal_id=st.integers(1, 8))
    def escape_withdraw(self, kind: str, user: int, withdrawal_id: int) -> None:
        if kind == "account":
            self._withdraw_account(user)
        else:
            self._withdraw_withdrawal(withdrawal_id)

    @precondition(lambda self: self.frozen)
    @rule(register=st.booleans())
    def escape_round(self, register: bool) -> None:
        """Everyone registers whatever they can (if ``register``), the escape period ends, and
        everyone tries to get paid and refunded; each call with its expected outcome."""
        assert self.escape is not None
        if register:
            self._register_market()
            for user in range(len(self.users)):
                self._register_account(user)
            for withdrawal_id in sorted(self.escape.state.withdrawals):
                self._register_withdrawal(withdrawal_id)
        self._wait(max(0, self.frozen_at + PERIOD_S - self.now))
        for user in range(len(self.users)):
            self._withdraw_account(user)
        for withdrawal_id in sorted(self.withdrawal_claims):
            self._withdraw_withdrawal(withdrawal_id)
        for deposit_id in range(1, len(self.deposits) + 1):
            self.refund_one(deposit_id)

    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        self.refund_one(data.draw(st.integers(0, len(self.deposits) + 1), label="deposit"))

    def refund_one(self, deposit_id: int) -> None:
        reason = None
        if not self.frozen:
            reason = "Settlement: not frozen"
        elif not 1 <= deposit_id <= len(self.deposits):
            reason = "Settlement: no such deposit"
        elif self.escape is not None and deposit_id <= self.escape.state.credited:
            reason = "Settlement: deposit was credited"
        elif deposit_id in self.refunded:
            reason = "Settlement: deposit already refunded"

        def call() -> None:
            self.s.refund_deposit(deposit_id)
        if reason is not None:
            self._expect(reason, call)
            return
        user, amount = self.deposits[deposit_id - 1]
        self._pay_check(self.users[user], amount, call)
        self.refunded.add(deposit_id)
        event("deposit refunded")

    # --- invariants

    @invariant()
    def chain_matches_the_model(self) -> None:
        assert self.s.latest_batch() == len(self.chain) - 1
        assert self.s.batch(len(self.chain) - 1)[0] == self.chain[-1].tree.root

    @invariant()
    def no_batch_final_inside_its_window_and_no_bad_root_final(self) -> None:
        # final batches are a prefix of the chain (in the model by construction, in the
        # contract by its binary search): its end and the first batch after it tell all
        latest_final = self._latest_final()
        assert self.s.latest_finalized_batch() == latest_final
        assert self.s.is_finalized(latest_final)
        assert self.s.batch(latest_final)[0] == self.chain[latest_final].tree.root
        if latest_final + 1 < len(self.chain):
            assert not self.s.is_finalized(latest_final + 1)
            assert self.now < self.chain[latest_final + 1].submitted_at + WINDOW_S
        for batch in self.chain[:latest_final + 1]:
            assert batch.tree.root not in self.disputed_roots
            assert batch.tree.root not in self.bad_roots

    @invariant()
    def tokens_are_conserved_and_cover_what_is_owed(self) -> None:
        balance = self.system.token.balanceOf(self.s)
        assert balance == self.total_in - self.total_out
        assert self.total_out <= self.total_in
        if not self.frozen:
            state = self.chain[self._latest_final()].state
            unpaid = sum(amount for wid, (_, amount) in state.withdrawals.items()
                         if wid not in self.withdrawals_paid)
            uncredited = sum(amount for _, amount in self.deposits[state.credited:])
            assert balance >= unpaid + uncredited
            return
        assert self.escape is not None
        refunds = sum(amount for i, (_, amount) in enumerate(self.deposits, start=1)
                      if i > self.escape.state.credited and i not in self.refunded)
        total = self._claims_total()
        claims = [claim for user, claim in self.account_claims.items()
                  if user not in self.accounts_paid]
        claims += [claim for wid, (_, claim) in self.withdrawal_claims.items()
                   if wid not in self.withdrawals_paid]
        owed = refunds + sum(ref.escape_payout(claim, self.pool, total) for claim in claims)
        assert balance >= owed
        assert self.s.escape_total_claims() == total

    @invariant()
    def escape_only_after_a_freeze(self) -> None:
        assert self.s.frozen() == self.frozen
        if not self.frozen:
            assert self.s.escape_total_claims() == 0
            assert self.s.escape_paid_total() == 0
            assert not self.account_claims and not self.withdrawal_claims and not self.refunded


SettlementMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestSettlementMachine = SettlementMachine.TestCase

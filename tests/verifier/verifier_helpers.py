"""Test operators for the verifier: an honest one, and the misbehaving one built on it.

``TestOperator`` is a venue without a node: the STF, the commitment and admission driven the way
the node's sequencer drives them (``BatchExecution``, live), the settlement contract deployed on
a test chain, the bridge's L1 scan, and ``submit_batch`` with the published batch bytes
(``rollbook.sequencer.batch_data``). Its misbehaviour lives only here, in the test suite:

- ``forged``: execute entries *without* admission (a signed entry whose signature is not the
  owner's is applied anyway) and publish the root of that execution;
- ``publish(built, new_root=..., data_hash=...)``: post a root or a data commitment other than
  the batch's own;
- ``build(include_l1=False)``: leave out the L1 inputs (a forced withdrawal past its deadline).

``snapshot``/``restore`` put the operator back at a published good batch after a dispute, so it
can resubmit honestly (``Replica.dumps``/``loads``: the same pickling the node's snapshots use).

(A module with its own name rather than a second ``conftest.py`` helper: the suite imports the
root conftest as ``conftest``.)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import coincurve
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_canonical_address

from rollbook.commitment import StateCommitment, genesis_commitment
from rollbook.execution import (
    CancelAll,
    CancelOrder,
    FundingTick,
    ModifyOrder,
    OraclePrice,
    OracleUpdate,
    OrderType,
    PlaceOrder,
    Receipt,
    Side,
    State,
    TimeInForce,
    Transaction,
    VenueConfig,
    Withdraw,
    apply_transaction,
    default_venue_config,
    genesis_state,
)
from rollbook.execution.crypto import address_of_public_key, keccak256, sign_digest
from rollbook.execution.margin import group_risk
from rollbook.execution.oracle import oracle_message_digest
from rollbook.execution.stf import begin_batch
from rollbook.sequencer import (
    AdmissionError,
    AdmissionState,
    Eip712Domain,
    SignedTransaction,
    sign_action,
)
from rollbook.sequencer.batch_data import (
    BatchData,
    BatchExecution,
    Entry,
    SignedEntry,
    encode_batch_data,
    signed_entry,
    system_entry,
)
from rollbook.sequencer.eip712 import RegisterAgent, RevokeAgent, UserAction
from rollbook.settlement import Chain
from rollbook.settlement.bridge import SettlementBridge, WithdrawalClaim
from rollbook.settlement.client import (
    BatchSubmittedEvent,
    SettlementClient,
    SettlementParams,
    TokenClient,
)
from rollbook.verifier import Replica, Verifier, VerifierConfig

USDC = 10**6
BTC = 1
WINDOW_S = 600
FORCED_DEADLINE_S = 3_600
ESCAPE_PERIOD_S = 1_800
PRICE_QUANTUMS = 100_000 * USDC
TICK_QUANTUMS = 100_000  # $0.1
PRICE_TICKS = PRICE_QUANTUMS // TICK_QUANTUMS
START_MS = 1_700_000_000_000  # batch time; before every test chain's block time
ORACLE_KEY = (0x0A11CE).to_bytes(32, "big")
ORACLE_ADDRESS = address_of_public_key(
    coincurve.PrivateKey(ORACLE_KEY).public_key.format(compressed=False))
OPERATOR, CHALLENGER = 0, 1  # dev account indexes; traders are 2..9


def venue_config(chain_id: int) -> VenueConfig:
    return default_venue_config((ORACLE_ADDRESS,), chain_id=chain_id)


def address(account: LocalAccount) -> bytes:
    return to_canonical_address(account.address)


@dataclass
class Built:
    """A batch executed by the operator, ready to publish."""

    index: int
    previous_root: bytes
    root: bytes
    data: bytes
    deposit_count: int
    forced_count: int
    receipts: list[Receipt] = field(default_factory=list)
    entries: tuple[Entry, ...] = ()


class TestOperator:
    """See the module docstring."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, chain: Chain, *, challengers: Sequence[str] = (),
                 window_s: int = WINDOW_S, forced_deadline_s: int = FORCED_DEADLINE_S,
                 escape_period_s: int = ESCAPE_PERIOD_S, confirmations: int = 0,
                 venue: VenueConfig | None = None) -> None:
        self.chain = chain
        self.operator = chain.dev_accounts[OPERATOR]
        self.venue = venue or venue_config(chain.chain_id)
        self.state: State = genesis_state(self.venue)
        self.commitment: StateCommitment = genesis_commitment(self.state)
        self.admission = AdmissionState()
        self.start_block = chain.head_block()
        self.token = TokenClient.deploy(chain, sender=self.operator)
        self.settlement = SettlementClient.deploy(
            chain, self.token, SettlementParams(
                self.operator.address, self.commitment.root, window_s, forced_deadline_s,
                escape_period_s, tuple(challengers)), sender=self.operator)
        self.domain = Eip712Domain(chain.chain_id, to_canonical_address(self.settlement.address))
        self.confirmations = confirmations
        self.bridge = SettlementBridge(self.settlement, self.operator, confirmations)
        self.clock_ms = START_MS
        self.nonces: dict[bytes, int] = {}
        self.roots: dict[int, bytes] = {0: self.commitment.root}
        self.claims: dict[int, WithdrawalClaim] = {}
        self.signed_count = 0

    # --- users ----------------------------------------------------------------------------------

    def fund(self, account: LocalAccount, amount_quantums: int, subaccount: int = 0) -> None:
        """Mint test USDC and deposit it on chain (credited by a later batch's L1 scan)."""
        self.token.mint(account.address, amount_quantums, sender=account)
        self.settlement.deposit(subaccount, amount_quantums, sender=account)

    def sign(self, account: LocalAccount, action: UserAction,
             key: bytes | None = None) -> SignedTransaction:
        """Sign ``action`` with ``key`` (default: the account's own) at a fresh nonce."""
        signer = address(account)
        nonce = max(self.clock_ms, self.nonces.get(signer, 0) + 1)
        self.nonces[signer] = nonce
        return sign_action(key or bytes(account.key), self.domain, action, nonce)

    def oracle(self, price_quantums: int, advance_ms: int = 1_000) -> OracleUpdate:
        """An oracle update stamped with the time of the next batch (``advance_ms`` ahead)."""
        timestamp = self.clock_ms + advance_ms
        prices = (OraclePrice(BTC, price_quantums),)
        digest = oracle_message_digest(self.venue.chain_id, timestamp, prices)
        return OracleUpdate(timestamp, prices, (sign_digest(ORACLE_KEY, digest),))

    def equity(self, account: LocalAccount | bytes, subaccount: int = 0) -> int:
        owner = account if isinstance(account, bytes) else address(account)
        sub = self.state.subaccounts[(owner, subaccount)]
        return sum(group_risk(self.state.markets, group).equity_quantums
                   for group in sub.groups())

    # --- honest batches -------------------------------------------------------------------------

    def build(self, signed: Sequence[SignedTransaction] = (),
              system: Sequence[Transaction] = (), *, include_l1: bool = True,
              advance_ms: int = 1_000) -> Built:
        """Execute a batch as the sequencer does: L1 inputs, system transactions, then the
        signed actions, each admitted (a refused one is left out, as the node refuses it)."""
        l1 = self.bridge.l1_transactions() if include_l1 else []
        self.clock_ms += advance_ms
        index = self.state.batch_index + 1
        previous = self.commitment.root
        first_withdrawal = self.state.next_withdrawal_id
        execution = BatchExecution(self.state, self.admission, self.domain, index,
                                   self.clock_ms)
        entries: list[Entry] = []
        receipts: list[Receipt] = []
        items: list[Entry] = [*(system_entry(tx) for tx in (*l1, *system)),
                              *(signed_entry(s) for s in signed)]
        for item in items:
            assert execution.fits(item), "test batches stay under the cost limit"
            try:
                receipts.append(execution.execute(item))
            except AdmissionError:  # the node refuses it at the door: never sequenced
                continue
            entries.append(item)
        root = self.commitment.commit(self.state)
        for claim in self.bridge.record_withdrawal_proofs(self.commitment, self.state,
                                                          first_withdrawal):
            self.claims[claim.withdrawal_id] = claim
        data = encode_batch_data(BatchData(index, self.clock_ms, previous, tuple(entries)))
        self.signed_count += sum(isinstance(e, SignedEntry) for e in entries)
        return Built(index, previous, root, data, self.state.next_deposit_id - 1,
                     self.state.next_forced_id - 1, receipts, tuple(entries))

    def publish(self, built: Built, *, new_root: bytes | None = None,
                data_hash: bytes | None = None, data: bytes | None = None,
                deposit_count: int | None = None) -> BatchSubmittedEvent:
        """Submit ``built`` (optionally lying about its root, data commitment or counters)."""
        event = self.settlement.submit_batch(
            built.index, built.previous_root, built.root if new_root is None else new_root,
            built.deposit_count if deposit_count is None else deposit_count,
            built.forced_count, built.data if data is None else data,
            sender=self.operator, data_hash=data_hash)
        self.roots[built.index] = built.root if new_root is None else new_root
        return event

    def run(self, signed: Sequence[SignedTransaction] = (), system: Sequence[Transaction] = (),
            *, include_l1: bool = True, advance_ms: int = 1_000) -> Built:
        built = self.build(signed, system, include_l1=include_l1, advance_ms=advance_ms)
        self.publish(built)
        return built

    # --- misbehaviour ---------------------------------------------------------------------------

    def forged(self, items: Sequence[SignedTransaction | Transaction], *,
               advance_ms: int = 1_000) -> Built:
        """Execute ``items`` with no signature or nonce check at all (what a thief running the
        sequencer would do) and return the batch it would publish, with its root."""
        self.clock_ms += advance_ms
        index = self.state.batch_index + 1
        previous = self.commitment.root
        begin_batch(self.state, index, self.clock_ms)
        entries: list[Entry] = []
        receipts = []
        for item in items:
            if isinstance(item, SignedTransaction):
                entries.append(signed_entry(item))
                action = item.action
                assert not isinstance(action, RegisterAgent | RevokeAgent)
                receipts.append(apply_transaction(self.state, action))
            else:
                entries.append(system_entry(item))
                receipts.append(apply_transaction(self.state, item))
        root = self.commitment.commit(self.state)
        data = encode_batch_data(BatchData(index, self.clock_ms, previous, tuple(entries)))
        return Built(index, previous, root, data, self.state.next_deposit_id - 1,
                     self.state.next_forced_id - 1, receipts, tuple(entries))

    def snapshot(self) -> bytes:
        return Replica(self.state, self.commitment, self.admission, self.domain).dumps()

    def restore(self, payload: bytes, clock_ms: int | None = None) -> None:
        """Back to a snapshot (after a dispute): state, commitment, admission, the L1 scan."""
        replica = Replica.loads(payload, self.domain)
        self.state, self.commitment, self.admission = (replica.state, replica.commitment,
                                                       replica.admission)
        self.bridge = SettlementBridge(self.settlement, self.operator, self.confirmations,
                                       self.start_block,
                                       next_deposit_id=self.state.next_deposit_id,
                                       next_forced_id=self.state.next_forced_id)
        if clock_ms is not None:
            self.clock_ms = clock_ms

    # --- verifiers ------------------------------------------------------------------------------

    def verifier(self, *, challenger: LocalAccount | None = None, confirmations: int = 0,
                 progress: Callable[[str], None] | None = None, **options: Any) -> Verifier:
        """A verifier of this venue, from nothing (only the chain and the venue config)."""
        config = VerifierConfig(
            venue=self.venue, challenger_key=None if challenger is None else bytes(
                challenger.key),
            confirmations=confirmations, start_block=self.start_block, **options)
        return Verifier(self.chain, self.settlement.address, config, progress=progress)


def forged_hash(data: bytes) -> bytes:
    return keccak256(data + b"something else")


# --- a long honest venue life ---------------------------------------------------------------------

@dataclass
class WorkloadReport:
    batches: int = 0
    signed: int = 0
    fills: int = 0
    liquidations: int = 0
    funding_payments: int = 0
    withdrawals: int = 0
    deposits: int = 0


LADDER_LEVELS = 6
LADDER_STEP_TICKS = 50
LADDER_LOTS = 2_000


def venue_life(operator: TestOperator, traders: Sequence[LocalAccount], *, batches: int,
               signed_per_batch: int, seed: int = 7, advance_ms: int = 180_000,
               crash_batch: int | None = None,
               after_batch: Callable[[Built], None] | None = None) -> WorkloadReport:
    """A venue life with every part: a market maker's ladder, takers, random limit orders,
    cancels and modifies, an over-levered trader liquidated in a crash, funding sampled and
    paid hourly, withdrawals, and deposits arriving on chain mid-run. Deterministic per seed.

    ``traders[0]`` makes markets, ``traders[1]`` is the risky one; each must have deposited
    already. ``after_batch(built)`` runs after each publish (a following verifier, say).
    """
    from rollbook.execution.events import (
        DepositCredited,
        Fill,
        FundingPaid,
        Liquidated,
        WithdrawalQueued,
    )

    rng = random.Random(seed)
    maker, risky, others = traders[0], traders[1], list(traders[2:])
    report = WorkloadReport()
    price = PRICE_QUANTUMS
    crash = crash_batch if crash_batch is not None else batches // 2
    for number in range(batches):
        if number == crash:
            price -= price * 75_000 // 1_000_000  # -7.5%: the risky trader is underwater
        elif number > 0:
            price += rng.randint(-20, 20) * TICK_QUANTUMS * 10
        mid = price // TICK_QUANTUMS
        signed: list[SignedTransaction] = []
        m = address(maker)
        signed.append(operator.sign(maker, CancelAll(m, 0)))
        for level in range(1, LADDER_LEVELS + 1):
            for side, sign in ((Side.BUY, -1), (Side.SELL, 1)):
                signed.append(operator.sign(maker, PlaceOrder(
                    m, 0, BTC, side, mid + sign * level * LADDER_STEP_TICKS, LADDER_LOTS,
                    time_in_force=TimeInForce.POST_ONLY)))
        if number == 1:  # about 8x leverage on its collateral, near the limit
            r = address(risky)
            signed.append(operator.sign(risky, PlaceOrder(
                r, 0, BTC, Side.BUY, mid + 1_000, 12_000, order_type=OrderType.MARKET,
                time_in_force=TimeInForce.IOC)))
        while len(signed) < signed_per_batch:
            trader = rng.choice(others)
            owner = address(trader)
            draw = rng.random()
            live = [o for o in operator.state.orders.values()
                    if o.subaccount.owner == owner] if draw >= 0.7 else []
            if draw < 0.45:
                offset = rng.randint(5, 200)
                is_buy = rng.random() < 0.5
                action: UserAction = PlaceOrder(
                    owner, 0, BTC, Side.BUY if is_buy else Side.SELL,
                    mid - offset if is_buy else mid + offset, rng.randint(1, 200))
            elif draw < 0.65:
                is_buy = rng.random() < 0.52
                action = PlaceOrder(owner, 0, BTC, Side.BUY if is_buy else Side.SELL,
                                    mid + (400 if is_buy else -400), rng.randint(10, 800),
                                    order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC)
            elif draw < 0.7:
                action = Withdraw(owner, 0, rng.randint(1, 50) * USDC)
            elif live and draw < 0.9:
                action = CancelOrder(owner, 0, rng.choice(live).order_id)
            elif live:
                order = rng.choice(live)
                action = ModifyOrder(owner, 0, order.order_id, order.price_ticks,
                                     max(1, order.size_lots // 2))
            else:
                action = CancelAll(owner, 0)
            signed.append(operator.sign(trader, action))
        if number % 5 == 2:  # a deposit arrives on chain; a later batch credits it
            operator.fund(rng.choice(others), rng.randint(100, 1_000) * USDC)
        system: list[Transaction] = [operator.oracle(price, advance_ms), FundingTick()]
        built = operator.build(signed, system, advance_ms=advance_ms)
        operator.publish(built)
        report.batches += 1
        report.signed += sum(isinstance(e, SignedEntry) for e in built.entries)
        for receipt in built.receipts:
            for event in receipt.events:
                if isinstance(event, Fill):
                    report.fills += 1
                elif isinstance(event, Liquidated):
                    report.liquidations += 1
                elif isinstance(event, FundingPaid):
                    report.funding_payments += 1
                elif isinstance(event, WithdrawalQueued):
                    report.withdrawals += 1
                elif isinstance(event, DepositCredited):
                    report.deposits += 1
        if after_batch is not None:
            after_batch(built)
    return report

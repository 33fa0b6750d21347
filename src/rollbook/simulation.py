"""``rollbook simulate``: a whole venue life through the state transition function.

A market maker quotes a ladder around the oracle price, takers trade against it, the oracle
walks and then drops sharply, funding is sampled every minute and paid hourly, an over-levered
trader is liquidated, and a trader withdraws. Every batch is checked against the money
invariants. Deterministic for a given seed: the final state root is reproducible.

This drives the STF in-process; the node (sequencer, durable log, API and chain) wraps the same
STF and arrives with its issue.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import coincurve

from rollbook.commitment import apply_and_commit, genesis_commitment
from rollbook.execution import (
    Batch,
    CancelAll,
    Deposit,
    FundingTick,
    OraclePrice,
    OracleUpdate,
    OrderType,
    PlaceOrder,
    Receipt,
    Side,
    State,
    TimeInForce,
    Transaction,
    Withdraw,
    default_venue_config,
    genesis_state,
)
from rollbook.execution.crypto import address_of_public_key, sign_digest
from rollbook.execution.events import (
    DepositCredited,
    Fill,
    FundingPaid,
    Liquidated,
    PositionDeleveraged,
    WithdrawalQueued,
)
from rollbook.execution.invariants import check_invariants
from rollbook.execution.oracle import oracle_message_digest

__all__ = ["SimulationReport", "run_simulation"]

# A well-known development key: the simulation is public and deterministic, never a secret.
SIMULATION_ORACLE_KEY = (0x51A1).to_bytes(32, "big")
USDC = 10**6
MARKET_ID = 1
START_PRICE_QUANTUMS = 100_000 * USDC
TICK_QUANTUMS = 100_000  # $0.1
MINUTE_MS = 60_000
ROUNDS = 75  # one minute each: past the hourly funding payment
CRASH_ROUND = 40
CRASH_PPM = 75_000  # the oracle drops 7.5% at once
LADDER_LEVELS = 8
LADDER_STEP_TICKS = 50  # $5 between quotes
LADDER_LOTS = 2_000  # 0.2 BTC per quote
TAKERS = 4
TAKER_LOTS_MAX = 1_500


def _address(tag: int) -> bytes:
    return (0xB00C_0000 + tag).to_bytes(20, "big")


MAKER = _address(1)
RISKY = _address(2)
TAKER_ADDRESSES = tuple(_address(10 + i) for i in range(TAKERS))


@dataclass
class SimulationReport:
    seed: int
    batches: int = 0
    transactions: int = 0
    rejected: int = 0
    deposits: int = 0
    fills: int = 0
    volume_quantums: int = 0
    liquidations: int = 0
    deleveraged: int = 0
    funding_payments: int = 0
    withdrawals: int = 0
    insurance_fund_quantums: int = 0
    fee_pool_quantums: int = 0
    open_interest_lots: int = 0
    final_price_quantums: int = 0
    final_root: str = ""
    invariant_checks: int = 0
    timeline: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every part of a venue's life happened."""
        return (self.deposits > 0 and self.fills > 0 and self.liquidations > 0
                and self.funding_payments > 0 and self.withdrawals > 0)


class _Venue:
    def __init__(self, seed: int, say: Callable[[str], None]) -> None:
        oracle = address_of_public_key(
            coincurve.PrivateKey(SIMULATION_ORACLE_KEY).public_key.format(compressed=False))
        self.state: State = genesis_state(default_venue_config((oracle,)))
        self.commitment = genesis_commitment(self.state)
        self.rng = random.Random(seed)
        self.clock_ms = 1_700_000_000_000
        self.price = START_PRICE_QUANTUMS
        self.report = SimulationReport(seed)
        self.say = say
        self.next_deposit = 1

    def run(self, txs: list[Transaction], advance_ms: int = MINUTE_MS) -> list[Receipt]:
        self.clock_ms += advance_ms
        batch = Batch(self.state.batch_index + 1, self.clock_ms, self.commitment.root, tuple(txs))
        receipts, root = apply_and_commit(self.state, self.commitment, batch)
        self.report.final_root = root.hex()
        check_invariants(self.state)
        self.report.invariant_checks += 1
        self._account(receipts)
        return receipts

    def _account(self, receipts: list[Receipt]) -> None:
        report = self.report
        report.batches += 1
        report.transactions += len(receipts)
        for receipt in receipts:
            if not receipt.ok:
                report.rejected += 1
            for event in receipt.events:
                self._account_event(event)

    def _account_event(self, event: object) -> None:
        report = self.report
        if isinstance(event, Fill):
            report.fills += 1
            report.volume_quantums += (event.size_lots * event.price_ticks
                                       * self.state.markets[MARKET_ID].quantums_per_lot_tick)
        elif isinstance(event, DepositCredited):
            report.deposits += 1
        elif isinstance(event, FundingPaid):
            report.funding_payments += 1
            self.say(f"  funding paid: rate {event.rate_ppm} ppm, {event.paid_quantums / USDC:,.2f}"
                     f" USDC from payers, residual {event.residual_quantums} quantums")
        elif isinstance(event, Liquidated):
            report.liquidations += 1
            self.say(f"  liquidated 0x{event.owner.hex()[-6:]}: {event.size_lots_book} lots "
                     f"through the book, {event.size_lots_backstop} to the backstop, "
                     f"{event.size_lots_deleveraged} deleveraged, penalty "
                     f"{event.penalty_quantums / USDC:,.2f} USDC")
        elif isinstance(event, PositionDeleveraged):
            report.deleveraged += 1
        elif isinstance(event, WithdrawalQueued):
            report.withdrawals += 1

    def oracle(self) -> OracleUpdate:
        timestamp = self.clock_ms + MINUTE_MS  # stamped with the batch that carries it
        prices = (OraclePrice(MARKET_ID, self.price),)
        digest = oracle_message_digest(self.state.config.chain_id, timestamp, prices)
        return OracleUpdate(timestamp, prices, (sign_digest(SIMULATION_ORACLE_KEY, digest),))

    def deposit(self, owner: bytes, amount_usdc: int) -> Deposit:
        tx = Deposit(self.next_deposit, owner, 0, amount_usdc * USDC)
        self.next_deposit += 1
        return tx

    def mid_ticks(self) -> int:
        return self.price // TICK_QUANTUMS

    def ladder(self) -> list[Transaction]:
        mid = self.mid_ticks()
        txs: list[Transaction] = [CancelAll(MAKER, 0)]
        for level in range(1, LADDER_LEVELS + 1):
            offset = level * LADDER_STEP_TICKS
            txs.append(PlaceOrder(MAKER, 0, MARKET_ID, Side.BUY, mid - offset, LADDER_LOTS,
                                  time_in_force=TimeInForce.POST_ONLY))
            txs.append(PlaceOrder(MAKER, 0, MARKET_ID, Side.SELL, mid + offset, LADDER_LOTS,
                                  time_in_force=TimeInForce.POST_ONLY))
        return txs

    def taker_flow(self) -> list[Transaction]:
        txs: list[Transaction] = []
        mid = self.mid_ticks()
        for owner in TAKER_ADDRESSES:
            if self.rng.random() < 0.6:
                is_buy = self.rng.random() < 0.55  # a mild buying bias lifts the premium
                bound = mid + 10 * LADDER_STEP_TICKS if is_buy else mid - 10 * LADDER_STEP_TICKS
                txs.append(PlaceOrder(owner, 0, MARKET_ID, Side.BUY if is_buy else Side.SELL,
                                      bound, self.rng.randint(100, TAKER_LOTS_MAX),
                                      order_type=OrderType.MARKET,
                                      time_in_force=TimeInForce.IOC))
        return txs


def run_simulation(seed: int = 7, say: Callable[[str], None] | None = None) -> SimulationReport:
    """Run the scripted venue life; ``say`` receives human-readable progress lines."""
    venue = _Venue(seed, say or (lambda line: None))
    report = venue.report
    venue.say("genesis: BTC-PERP listed; oracle, market maker, four takers and a risky trader")
    venue.run([venue.deposit(MAKER, 2_000_000), venue.deposit(RISKY, 12_000),
               *(venue.deposit(owner, 50_000) for owner in TAKER_ADDRESSES), venue.oracle(),
               FundingTick()])
    venue.run(venue.ladder())
    # the risky trader buys 1 BTC (~$100k) on $12k: about 8x leverage, close to the limit
    venue.run([PlaceOrder(RISKY, 0, MARKET_ID, Side.BUY, venue.mid_ticks() + 1_000, 10_000,
                          order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC)])
    for round_index in range(ROUNDS):
        if round_index == CRASH_ROUND:
            venue.price -= venue.price * CRASH_PPM // 1_000_000
            venue.say(f"round {round_index}: the index drops 7.5% to "
                      f"{venue.price / USDC:,.2f} USD")
        else:
            venue.price += venue.rng.randint(-20, 20) * TICK_QUANTUMS * 10
        venue.run([venue.oracle(), *venue.ladder(), *venue.taker_flow(), FundingTick()])
    venue.run([Withdraw(TAKER_ADDRESSES[0], 0, 1_000 * USDC)])
    state = venue.state
    report.insurance_fund_quantums = state.insurance.cross.collateral_quantums
    report.fee_pool_quantums = state.fee_pool_quantums
    report.open_interest_lots = state.markets[MARKET_ID].open_interest_lots
    report.final_price_quantums = venue.price
    return report

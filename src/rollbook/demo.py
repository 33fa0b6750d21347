"""``rollbook demo``: a whole venue life through the real node, its API and the embedded chain.

What happens, in order (every trader action is EIP-712 signed by the SDK and goes through the
gateway over HTTP or WebSocket; nothing touches the node's state from the side):

1. A node starts on the embedded EVM (it deploys the test USDC and the settlement contract) and
   a gateway listens on 127.0.0.1 (an ephemeral port).
2. Traders deposit USDC **on chain** (mint, approve, ``deposit``); the node credits the
   deposits from the contract's events.
3. A market maker quotes a post-only ladder around the mark through the SDK (one WebSocket,
   batched cancel-all + quotes), re-quoting every round; a risky trader buys 1 BTC on about 8x
   leverage; takers send market orders each round.
4. The operator's oracle feed walks the price, then drops it 7.5%: the risky account falls
   below maintenance margin and is liquidated through the book (seen on its account stream).
5. Funding: the operator's ``FundingTick`` samples the premium every second and pays every
   ``FUNDING_INTERVAL_S`` (a short interval so that a demo sees payments).
6. A taker withdraws 1,000 USDC through the API; once the batch holding it is on chain, the
   demo travels the embedded chain's clock past the challenge window, the root finalises, and
   the taker's withdrawal is claimed **on chain** with the Merkle proof served by
   ``GET /v1/withdrawals/{id}/proof``; the token balance rises by exactly the amount.

The report counts what the node and the chain say (deposits credited, fills on the trades
stream, liquidations on the account stream, funding payments in the ticks' receipts,
withdrawals paid by the contract, batches final on chain, the last root). ``complete`` is true
only if every part happened; the CLI exits 0 only then. The traders' random flow is seeded, but
batch timestamps are wall-clock time, so roots differ from run to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from eth_account.signers.local import LocalAccount

from rollbook.client import ApiRefused, AsyncClient, Signer, Stream
from rollbook.execution.config import perpetual_market
from rollbook.execution.events import FundingPaid
from rollbook.execution.txs import CancelAll, FundingTick
from rollbook.gateway import Gateway, GatewayConfig
from rollbook.node.config import HEARTBEAT_MS_MAX, NodeConfig
from rollbook.node.core import Node

__all__ = ["DemoReport", "demo_config", "run_demo"]

USDC = 10**6
MARKET_ID = 1
INDEX_ID = 1
START_PRICE_USD = 100_000
CHALLENGE_WINDOW_S = 600
FUNDING_INTERVAL_S = 3  # short, so that a demo of seconds sees funding paid
FUNDING_SAMPLE_INTERVAL_S = 1
ROUNDS = 14
CRASH_ROUND = 8
CRASH_PPM = 75_000  # the index drops 7.5% at once
ROUND_S = 0.5
LADDER_LEVELS = 8
LADDER_STEP_USD = 5
LADDER_SIZE_BTC = "0.2"
TAKERS = 3
MAKER_DEPOSIT_USD = 2_000_000
TAKER_DEPOSIT_USD = 50_000
RISKY_DEPOSIT_USD = 12_000
RISKY_SIZE_BTC = "1"
WITHDRAW_USD = 1_000
WAIT_S = 60.0  # the longest the demo waits for any one thing before it gives up
POLL_S = 0.05


@dataclass
class DemoReport:
    deposits: int = 0
    fills: int = 0
    volume_usd: float = 0.0
    liquidations: int = 0
    funding_payments: int = 0
    withdrawals_claimed_onchain: int = 0
    withdrawn_usd: float = 0.0
    batches_finalized: int = 0
    batches_closed: int = 0
    final_root: str = ""
    actions_acked: int = 0
    actions_refused: int = 0
    api_url: str = ""
    seconds: float = 0.0
    timeline: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return (self.deposits > 0 and self.fills > 0 and self.liquidations > 0
                and self.funding_payments > 0 and self.withdrawals_claimed_onchain > 0
                and self.batches_finalized > 0 and bool(self.final_root))


def demo_config() -> NodeConfig:
    """The local venue, tuned so that a short demo sees funding, liquidation and finality."""
    base = NodeConfig.local()
    btc = dataclasses.replace(
        perpetual_market(MARKET_ID, "BTC-PERP", INDEX_ID, tick_size_quantums=100_000,
                         lot_size_nanounits=100_000),
        funding_interval_s=FUNDING_INTERVAL_S, funding_sample_interval_s=FUNDING_SAMPLE_INTERVAL_S)
    return base.replace(
        markets=(btc,),
        # Settlement.vy takes at most 64 KiB of batch data (see docs/node.md)
        batch=dataclasses.replace(base.batch, interval_ms=100, bytes_max=65_536),
        chain=dataclasses.replace(base.chain, challenge_window_s=CHALLENGE_WINDOW_S,
                                  poll_interval_ms=100, confirmations=0),
        oracle=dataclasses.replace(base.oracle, interval_ms=100,
                                   prices=((INDEX_ID, START_PRICE_USD * USDC),)),
        # the demo sends the funding ticks itself, so that it sees every payment's receipt
        heartbeat=dataclasses.replace(base.heartbeat, funding_interval_ms=HEARTBEAT_MS_MAX,
                                      liquidations_interval_ms=200),
    )


class _Demo:
    def __init__(self, seed: int, say: Callable[[str], None]) -> None:
        self.rng = random.Random(seed)
        self.say_progress = say
        self.report = DemoReport()
        self.node = Node(demo_config())
        self.gateway: Gateway | None = None
        self.price_usd = START_PRICE_USD
        self.clients: list[AsyncClient] = []

    def note(self, line: str) -> None:
        self.report.timeline.append(line)
        self.say_progress(line)

    async def _blocking(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    async def wait_for(self, what: str, check: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + WAIT_S
        while True:
            value = await check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up waiting for {what}")
            await asyncio.sleep(POLL_S)

    # --- setup ----------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._blocking(self.node.start)
        self.gateway = Gateway(self.node, GatewayConfig(port=0))
        await self.gateway.start()
        self.report.api_url = self.gateway.url
        self.note(f"node up on the embedded EVM; API at {self.gateway.url} "
                  f"(OpenAPI at /openapi.json)")

    async def stop(self) -> None:
        for client in self.clients:
            await client.close()
        if self.gateway is not None:
            await self.gateway.stop()
        await self._blocking(self.node.stop)

    def accounts(self) -> list[LocalAccount]:
        accounts: list[LocalAccount] = self.node.link.chain.dev_accounts
        return accounts

    async def deposit(self, account: LocalAccount, amount_usd: int) -> None:
        link = self.node.link

        def send() -> None:
            with self.node.chain_lock:
                link.token.mint(account.address, amount_usd * USDC, sender=account)
                link.settlement.deposit(0, amount_usd * USDC, sender=account)

        await self._blocking(send)

    async def client_for(self, account: LocalAccount) -> AsyncClient:
        assert self.gateway is not None
        client = AsyncClient(self.gateway.url, Signer.from_account(account))
        await client.connect()
        self.clients.append(client)
        return client

    async def credited(self, client: AsyncClient) -> Any:
        async def check() -> Any:
            try:
                return await client.account()
            except ApiRefused:
                return None

        return await self.wait_for("a deposit to be credited", check)

    # --- trading --------------------------------------------------------------------------------

    async def mark_usd(self, client: AsyncClient) -> float:
        markets = await client.market_list()
        mark: int = markets[0].mark_price_quantums
        return mark / USDC

    async def quote(self, maker: AsyncClient) -> None:
        mid = round(await self.mark_usd(maker))
        actions = [maker.sign(_cancel_all(maker))]
        for level in range(1, LADDER_LEVELS + 1):
            offset = level * LADDER_STEP_USD
            actions.append(maker.place_order_action(MARKET_ID, "buy", LADDER_SIZE_BTC,
                                                    mid - offset, time_in_force="post_only"))
            actions.append(maker.place_order_action(MARKET_ID, "sell", LADDER_SIZE_BTC,
                                                    mid + offset, time_in_force="post_only"))
        for result in await maker.submit_batch(actions):
            self._count(result.status)

    def _count(self, status: int) -> None:
        if status == 200:
            self.report.actions_acked += 1
        else:
            self.report.actions_refused += 1

    async def market_order(self, client: AsyncClient, side: Literal["buy", "sell"],
                           size_btc: str) -> None:
        bound = self.price_usd * (1.05 if side == "buy" else 0.95)
        result = await client.submit(client.place_order_action(
            MARKET_ID, side, size_btc, round(bound), order_type="market", time_in_force="ioc"))
        self._count(result.status)

    async def funding_tick(self) -> None:
        ack = await asyncio.wrap_future(self.node.submit_system(FundingTick()))
        for event in ack.receipt.events:
            if isinstance(event, FundingPaid):
                self.report.funding_payments += 1
                self.note(f"  funding paid: rate {event.rate_ppm} ppm, "
                          f"{event.paid_quantums / USDC:,.2f} USDC from payers, residual "
                          f"{event.residual_quantums} quantums to the insurance fund")

    async def set_price(self, price_usd: int) -> None:
        self.price_usd = price_usd
        self.node.set_oracle_price(INDEX_ID, price_usd * USDC)

    # --- the life -------------------------------------------------------------------------------

    async def run(self) -> DemoReport:
        started = time.monotonic()
        await self.start()
        try:
            await self.life()
        finally:
            await self.stop()
        self.report.seconds = round(time.monotonic() - started, 1)
        return self.report

    async def life(self) -> None:
        operator, maker_acct, risky_acct, *rest = self.accounts()[:3 + TAKERS + 1]
        taker_accts, stranger = rest[:TAKERS], rest[TAKERS]
        del operator  # the node's: it deploys and publishes
        for account, amount in ((maker_acct, MAKER_DEPOSIT_USD), (risky_acct, RISKY_DEPOSIT_USD),
                                *((t, TAKER_DEPOSIT_USD) for t in taker_accts)):
            await self.deposit(account, amount)
        self.note(f"deposited on chain: maker {MAKER_DEPOSIT_USD:,} USDC, risky trader "
                  f"{RISKY_DEPOSIT_USD:,}, {TAKERS} takers {TAKER_DEPOSIT_USD:,} each")
        maker = await self.client_for(maker_acct)
        risky = await self.client_for(risky_acct)
        takers = [await self.client_for(t) for t in taker_accts]
        for client in (maker, risky, *takers):
            await self.credited(client)
        await maker.connect_ws()  # the market maker's order entry goes over one WebSocket
        self.note("deposits credited by the node from the contract's events")

        stream = maker.stream({"channel": "trades", "market_id": MARKET_ID},
                              {"channel": "account", "owner": risky_acct.address},
                              {"channel": "book", "market_id": MARKET_ID})
        consumer = asyncio.create_task(self.consume(stream))
        try:
            await self.trade(maker, risky, takers)
            await self.withdraw_and_claim(takers[0], taker_accts[0], stranger)
            await asyncio.sleep(0.3)  # the last trades and account events reach the stream
        finally:
            await stream.close()
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await consumer
        status = await maker.status()
        self.report.batches_finalized = status.final_batch
        self.report.batches_closed = status.batch_index
        final = await maker.batch(status.final_batch)
        self.report.final_root = final.root
        self.report.deposits = final.deposit_count
        self.note(f"batches closed: {status.batch_index}; final on chain: {status.final_batch}"
                  f" (root {final.root[:18]}…)")

    async def consume(self, stream: Stream) -> None:
        async for update in stream:
            if update.kind == "trade":
                self.report.fills += 1
                self.report.volume_usd += (update.data.size_lots * update.data.price_ticks
                                           * 10 / USDC)  # one lot-tick = 10 quantums
            elif update.kind == "account" and update.data.kind == "liquidated":
                self.report.liquidations += 1
                event = update.data.event
                self.note(f"  liquidated the risky trader: {event.size_lots_book} lots through "
                          f"the book, {event.size_lots_backstop} to the backstop, penalty "
                          f"{event.penalty_quantums / USDC:,.2f} USDC")

    async def trade(self, maker: AsyncClient, risky: AsyncClient,
                    takers: list[AsyncClient]) -> None:
        await self.funding_tick()  # starts the market's funding clock
        await self.quote(maker)
        self.note(f"market maker quotes {LADDER_LEVELS} levels a side, "
                  f"{LADDER_SIZE_BTC} BTC each, ${LADDER_STEP_USD} apart")
        ack = await risky.place_order(MARKET_ID, "buy", RISKY_SIZE_BTC,
                                      round(self.price_usd * 1.02), order_type="market",
                                      time_in_force="ioc")
        self._count(200)
        self.note(f"risky trader buys {RISKY_SIZE_BTC} BTC at market on "
                  f"{RISKY_DEPOSIT_USD:,} USDC (~8x), {len(ack.events)} events")
        for round_index in range(ROUNDS):
            if round_index == CRASH_ROUND:
                crashed = self.price_usd - self.price_usd * CRASH_PPM // 1_000_000
                await self.set_price(crashed)
                self.note(f"round {round_index}: the oracle drops 7.5% to ${crashed:,}")
            else:
                await self.set_price(self.price_usd + self.rng.randint(-20, 20))
            await asyncio.sleep(ROUND_S / 2)  # the feed signs the new price into a batch
            await self.quote(maker)
            for taker in takers:
                if self.rng.random() < 0.7:
                    side: Literal["buy", "sell"] = (
                        "buy" if self.rng.random() < 0.55 else "sell")
                    size = f"0.{self.rng.randint(1, 15):02d}"
                    await self.market_order(taker, side, size)
            await self.funding_tick()
            await asyncio.sleep(ROUND_S / 2)
        await self.wait_for("the liquidation", self._liquidated)

    async def _liquidated(self) -> bool:
        return self.report.liquidations > 0

    async def withdraw_and_claim(self, taker: AsyncClient, account: LocalAccount,
                                 stranger: LocalAccount) -> None:
        ack = await taker.withdraw(WITHDRAW_USD)
        self._count(200)
        withdrawal_id = next(e.withdrawal_id for e in ack.events
                             if type(e).__name__ == "WithdrawalQueued")
        self.note(f"a taker withdraws {WITHDRAW_USD:,} USDC (withdrawal {withdrawal_id}, "
                  f"batch {ack.batch_index})")

        async def submitted() -> bool:
            batch = await taker.batch(ack.batch_index) if await self._closed(
                taker, ack.batch_index) else None
            return batch is not None and batch.status in ("submitted", "final")

        await self.wait_for("the withdrawal's batch on chain", submitted)
        link = self.node.link

        def travel() -> None:
            with self.node.chain_lock:
                link.chain.increase_time(CHALLENGE_WINDOW_S + 1)

        await self._blocking(travel)
        self.note(f"batch {ack.batch_index} is on chain; the chain's clock travels "
                  f"{CHALLENGE_WINDOW_S + 1} s past the challenge window")

        async def final() -> bool:
            return bool((await taker.batch(ack.batch_index)).status == "final")

        await self.wait_for("the withdrawal's batch to finalise", final)
        proof = await taker.withdrawal_proof(withdrawal_id)

        def claim() -> int:
            with self.node.chain_lock:
                before = link.token.balance_of(account.address)
                link.settlement.claim_withdrawal(
                    proof.batch_index, proof.proof.leaf_index, _hex(proof.proof.leaf),
                    [_hex(s) for s in proof.proof.siblings], sender=stranger)
                paid: int = link.token.balance_of(account.address) - before
                return paid

        paid = await self._blocking(claim)
        if paid == WITHDRAW_USD * USDC:
            self.report.withdrawals_claimed_onchain += 1
            self.report.withdrawn_usd += paid / USDC
        self.note(f"withdrawal {withdrawal_id} claimed on chain with its Merkle proof: the "
                  f"taker's wallet received {paid / USDC:,.2f} USDC")

    async def _closed(self, client: AsyncClient, index: int) -> bool:
        status = await client.status()
        return bool(status.batch_index >= index)


def _hex(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _cancel_all(client: AsyncClient) -> CancelAll:
    assert client.signer is not None
    return CancelAll(client.signer.owner, 0, MARKET_ID)


def run_demo(seed: int = 7, say: Callable[[str], None] | None = None) -> DemoReport:
    """Run the venue life; ``say`` receives progress lines as they happen."""
    demo = _Demo(seed, say or (lambda line: None))
    return asyncio.run(demo.run())

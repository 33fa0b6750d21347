"""``AsyncClient``: the asyncio SDK for a rollbook node (HTTP, WebSocket order entry, streams).

Usage::

    async with AsyncClient("http://127.0.0.1:8600", Signer.from_account(account)) as client:
        ack = await client.place_order(1, "buy", size="0.01", price="99950.05")
        await client.cancel_order(ack.order_id)
        book = await client.book(1)

``connect`` (done by ``async with``) reads ``/v1/info``: the EIP-712 domain every action is
signed in and each market's tick and lot. Actions are signed here (``Signer``: EIP-712, nonces
as strictly increasing millisecond timestamps) and sent over HTTP, or over one WebSocket after
``connect_ws()`` (acks matched by request id). Prices and sizes may be given in human units and
are rounded to the market (buys' prices down, sells' up, sizes down; see
``rollbook.client.signing``), or exactly as ``price_ticks`` / ``size_lots``.

A refused action raises ``ApiRefused`` (``code``, ``name``, ``message``, ``status``, and
``ack`` when the action was sequenced and the STF refused it: its nonce is used). ``submit`` and
``submit_batch`` return the raw ``ActionResult`` without raising.

``stream(...)`` is a WebSocket subscription that survives disconnects: it reconnects with
exponential backoff (``RECONNECT_BACKOFF_FIRST_S`` doubling to ``RECONNECT_BACKOFF_MAX_S``),
resubscribes every topic, and keeps an ``L2Book`` per book topic that always restarts from a
fresh snapshot (after a reconnect, a server "lagged" notice, or a sequence gap); it never
applies a delta whose sequence is not the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import aiohttp
import msgspec

from rollbook.client.signing import MarketRounding, Number, Signer, pow10, to_decimal
from rollbook.execution.txs import (
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    MassQuote,
    ModifyOrder,
    MoveIsolatedMargin,
    OrderType,
    PlaceOrder,
    Quote,
    SelfTradePrevention,
    SetMarginMode,
    SetMmp,
    SetPortfolioMargin,
    Side,
    TimeInForce,
    Transfer,
    Withdraw,
)
from rollbook.gateway import actions as wire
from rollbook.gateway.messages import AckOut, ActionResult, ErrorBody
from rollbook.gateway.views import (
    UPDATE_TYPES,
    AccountOut,
    AccountRiskOut,
    BatchOut,
    BookOut,
    InfoOut,
    MarketOut,
    StatusOut,
    TradeOut,
    WithdrawalProofOut,
)
from rollbook.sequencer.eip712 import Eip712Domain, RegisterAgent, RevokeAgent, UserAction

__all__ = [
    "RECONNECT_BACKOFF_FIRST_S",
    "RECONNECT_BACKOFF_MAX_S",
    "ApiRefused",
    "AsyncClient",
    "L2Book",
    "Stream",
    "Update",
]

REQUEST_TIMEOUT_S = 30.0
RECONNECT_BACKOFF_FIRST_S = 0.05
RECONNECT_BACKOFF_MAX_S = 5.0
WS_MESSAGE_BYTES_MAX = 16 << 20  # book snapshots of deep books are the largest messages
T = TypeVar("T")

SideLike = Side | Literal["buy", "sell"]
# a quote: a ``Quote``, or (market_id, side, price_ticks, size_lots)
QuoteLike = Quote | tuple[int, SideLike, int, int]
_ORDER_TYPES = {"limit": OrderType.LIMIT, "market": OrderType.MARKET}
_TIFS = {"gtc": TimeInForce.GTC, "ioc": TimeInForce.IOC, "fok": TimeInForce.FOK,
         "post_only": TimeInForce.POST_ONLY}
_STPS = {"expire_maker": SelfTradePrevention.EXPIRE_MAKER,
         "expire_taker": SelfTradePrevention.EXPIRE_TAKER,
         "expire_both": SelfTradePrevention.EXPIRE_BOTH}


class ApiRefused(Exception):
    """The node refused a request; ``code`` is stable (see ``rollbook.gateway.errors``)."""

    def __init__(self, error: ErrorBody, ack: AckOut | None = None) -> None:
        self.code = error.code
        self.name = error.name
        self.status = error.status
        self.message = error.message
        self.ack = ack  # set when the action was sequenced (its nonce is used)
        super().__init__(f"{error.status} {error.name} ({error.code}): {error.message}")


def _side(side: SideLike) -> Side:
    if isinstance(side, Side):
        return side
    return {"buy": Side.BUY, "sell": Side.SELL}[side]


def _quote(quote: QuoteLike) -> Quote:
    if isinstance(quote, Quote):
        return quote
    market_id, side, price_ticks, size_lots = quote
    return Quote(market_id, _side(side), price_ticks, size_lots)


def _address(value: bytes | str) -> bytes:
    if isinstance(value, bytes):
        return value
    return bytes.fromhex(value.removeprefix("0x"))


@dataclass
class Update:
    """One message of a stream: ``kind`` is ``book_snapshot``, ``book_delta``, ``trade``,
    ``account`` or ``batch``; ``data`` is the typed view."""

    topic: str
    kind: str
    data: Any


@dataclass
class L2Book:
    """A market's aggregated book kept from a snapshot and consecutive deltas."""

    market_id: int
    sequence: int = -1
    bids: dict[int, int] = field(default_factory=dict)  # price_ticks -> size_lots
    asks: dict[int, int] = field(default_factory=dict)

    def reset(self, snapshot: Any) -> None:
        self.sequence = snapshot.sequence
        self.bids = {level[0]: level[1] for level in snapshot.bids}
        self.asks = {level[0]: level[1] for level in snapshot.asks}

    def apply(self, delta: Any) -> bool:
        """Apply the next delta; False (and nothing applied) if it is not the next one."""
        if delta.sequence != self.sequence + 1:
            return False
        for side, levels in ((self.bids, delta.bids), (self.asks, delta.asks)):
            for price_ticks, size_lots in levels:
                if size_lots:
                    side[price_ticks] = size_lots
                else:
                    side.pop(price_ticks, None)
        self.sequence = delta.sequence
        return True

    def best_bid(self) -> int | None:
        return max(self.bids) if self.bids else None

    def best_ask(self) -> int | None:
        return min(self.asks) if self.asks else None

    def levels(self, depth: int = 20) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids = sorted(self.bids.items(), reverse=True)[:depth]
        asks = sorted(self.asks.items())[:depth]
        return bids, asks


class _WsOrders:
    """One WebSocket for order entry: requests carry ids, answers resolve their futures."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        error: BaseException = ConnectionError("WebSocket closed")
        try:
            async for message in self.ws:
                if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    break
                reply = msgspec.json.decode(message.data)
                future = self.pending.pop(reply.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(reply)
        except Exception as failure:  # pragma: no cover - transport failures
            error = failure
        finally:
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(error)
            self.pending.clear()

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        request_id = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        await self.ws.send_bytes(msgspec.json.encode({**message, "id": request_id}))
        reply: dict[str, Any] = await future
        return reply

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.reader


def _result_of(reply: dict[str, Any]) -> ActionResult:
    if reply.get("type") == "error":
        return ActionResult(reply["status"], None, msgspec.convert(reply["error"], ErrorBody))
    return msgspec.convert({k: reply.get(k) for k in ("status", "ack", "error")}, ActionResult)


class AsyncClient:
    """Typed access to every endpoint; actions signed by ``signer`` (None: read only)."""

    def __init__(self, url: str, signer: Signer | None = None, *,
                 timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.signer = signer
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.domain: Eip712Domain | None = None
        self.markets: dict[int, MarketRounding] = {}
        self.collateral_decimals = 6
        self._session: aiohttp.ClientSession | None = None
        self._orders: _WsOrders | None = None

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def connect(self) -> InfoOut:
        """Read the signing domain and the markets' ticks and lots."""
        info = await self.info()
        self.collateral_decimals = info.collateral_decimals
        self.domain = Eip712Domain(info.domain.chain_id,
                                   _address(info.domain.verifying_contract))
        self.markets = {m.market_id: MarketRounding(m.market_id, m.tick_size_quantums,
                                                    m.lot_size_nanounits,
                                                    info.collateral_decimals)
                        for m in info.markets}
        return info

    async def connect_ws(self) -> None:
        """Send actions over one WebSocket from now on (lower latency than HTTP)."""
        if self._orders is None:
            ws = await self.session.ws_connect(self.url + "/ws", max_msg_size=WS_MESSAGE_BYTES_MAX)
            self._orders = _WsOrders(ws)

    async def close(self) -> None:
        if self._orders is not None:
            await self._orders.close()
            self._orders = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- HTTP plumbing --------------------------------------------------------------------------

    async def _get(self, path: str, kind: type[T], params: dict[str, int] | None = None) -> T:
        async with self.session.get(self.url + path, params=params) as response:
            body = await response.read()
        if response.status != 200:
            raise ApiRefused(msgspec.json.decode(body, type=_ErrorEnvelope).error)
        return msgspec.json.decode(body, type=kind)

    async def _post(self, path: str, payload: Any, kind: type[T]) -> T:
        async with self.session.post(self.url + path, data=msgspec.json.encode(payload),
                                     headers={"Content-Type": "application/json"}) as response:
            body = await response.read()
        return msgspec.json.decode(body, type=kind)

    # --- queries --------------------------------------------------------------------------------

    async def info(self) -> InfoOut:
        return await self._get("/v1/info", InfoOut)

    async def status(self) -> Any:
        return await self._get("/v1/status", StatusOut)

    async def market_list(self) -> list[Any]:
        return await self._get("/v1/markets", list[MarketOut])

    async def book(self, market_id: int, depth: int = 20) -> Any:
        return await self._get(f"/v1/markets/{market_id}/book", BookOut, {"depth": depth})

    async def trades(self, market_id: int, limit: int = 100) -> list[Any]:
        return await self._get(f"/v1/markets/{market_id}/trades", list[TradeOut],
                               {"limit": limit})

    async def account(self, owner: bytes | str | None = None, subaccount: int = 0) -> Any:
        """The account state (``owner`` defaults to the signer's owner)."""
        who = self._owner() if owner is None else _address(owner)
        return await self._get(f"/v1/accounts/0x{who.hex()}/{subaccount}", AccountOut)

    async def account_risk(self, owner: bytes | str | None = None, subaccount: int = 0) -> Any:
        """Greeks per position, group and account, and the margin breakdown (equity, initial,
        maintenance; per index in portfolio mode every scenario's loss and the worst one)."""
        who = self._owner() if owner is None else _address(owner)
        return await self._get(f"/v1/accounts/0x{who.hex()}/{subaccount}/risk", AccountRiskOut)

    async def batches(self, start: int | None = None, limit: int = 100) -> list[Any]:
        params = {"limit": limit} if start is None else {"limit": limit, "start": start}
        return await self._get("/v1/batches", list[BatchOut], params)

    async def batch(self, index: int) -> Any:
        return await self._get(f"/v1/batches/{index}", BatchOut)

    async def withdrawal_proof(self, withdrawal_id: int) -> Any:
        return await self._get(f"/v1/withdrawals/{withdrawal_id}/proof", WithdrawalProofOut)

    async def openapi(self) -> dict[str, Any]:
        return await self._get("/openapi.json", dict[str, Any])

    # --- signing --------------------------------------------------------------------------------

    def _owner(self) -> bytes:
        if self.signer is None:
            raise ValueError("this client has no signer")
        return self.signer.owner

    def rounding(self, market_id: int) -> MarketRounding:
        try:
            return self.markets[market_id]
        except KeyError:
            raise ValueError(f"unknown market {market_id} (connect() first?)") from None

    def sign(self, action: UserAction, nonce_ms: int | None = None) -> wire.SignedAction:
        """The wire form of ``action`` signed by this client's signer."""
        if self.signer is None:
            raise ValueError("this client has no signer")
        if self.domain is None:
            raise ValueError("connect() first: the signing domain comes from the node")
        return wire.from_signed(self.signer.sign(self.domain, action, nonce_ms))

    def place_order_action(
            self, market_id: int, side: SideLike, size: Number | None = None,
            price: Number | None = None, *, size_lots: int | None = None,
            price_ticks: int | None = None,
            order_type: Literal["limit", "market"] = "limit",
            time_in_force: Literal["gtc", "ioc", "fok", "post_only"] = "gtc",
            reduce_only: bool = False, client_order_id: int = 0,
            self_trade: Literal["expire_maker", "expire_taker", "expire_both"] = "expire_maker",
            subaccount: int = 0, nonce_ms: int | None = None) -> wire.SignedAction:
        """A signed order; a market order's price is its worst acceptable price."""
        side_enum = _side(side)
        rounding = self.rounding(market_id)
        if (price is None) == (price_ticks is None):
            raise ValueError("give exactly one of price and price_ticks")
        if (size is None) == (size_lots is None):
            raise ValueError("give exactly one of size and size_lots")
        ticks = rounding.price_ticks(price, side_enum) if price is not None else price_ticks
        lots = rounding.size_lots(size) if size is not None else size_lots
        assert ticks is not None and lots is not None
        return self.sign(PlaceOrder(
            self._owner(), subaccount, market_id, side_enum, ticks, lots,
            _ORDER_TYPES[order_type], _TIFS[time_in_force], reduce_only, client_order_id,
            _STPS[self_trade]), nonce_ms)

    # --- actions --------------------------------------------------------------------------------

    async def submit(self, action: wire.SignedAction) -> ActionResult:
        """Send one signed action; the raw result (never raises for a refusal)."""
        if self._orders is not None:
            return _result_of(await self._orders.request({"op": "order", "action": action}))
        return await self._post("/v1/actions", action, ActionResult)

    async def submit_batch(self, actions: Sequence[wire.SignedAction]) -> list[ActionResult]:
        """Up to 64 signed actions, in order; one result each (never raises for a refusal)."""
        if self._orders is not None:
            reply = await self._orders.request({"op": "batch", "actions": list(actions)})
            if reply.get("type") == "error":
                return [_result_of(reply)] * len(actions)
            return msgspec.convert(reply["results"], list[ActionResult])
        result = await self._post("/v1/orders/batch", {"actions": list(actions)}, _BatchOrError)
        if result.results is None:
            assert result.error is not None
            return [ActionResult(result.status or 400, None, result.error)] * len(actions)
        return result.results

    async def act(self, action: wire.SignedAction) -> AckOut:
        """Send one signed action; its ack, or ``ApiRefused``."""
        result = await self.submit(action)
        if result.error is not None:
            raise ApiRefused(result.error, result.ack)
        assert result.ack is not None
        return result.ack

    async def place_order(self, market_id: int, side: SideLike, size: Number | None = None,
                          price: Number | None = None, **options: Any) -> AckOut:
        """Place an order (see ``place_order_action`` for the options)."""
        return await self.act(self.place_order_action(market_id, side, size, price, **options))

    async def cancel_order(self, order_id: int, subaccount: int = 0) -> AckOut:
        return await self.act(self.sign(CancelOrder(self._owner(), subaccount, order_id)))

    async def cancel_by_client_id(self, client_order_id: int, subaccount: int = 0) -> AckOut:
        return await self.act(self.sign(CancelOrderByClientId(self._owner(), subaccount,
                                                              client_order_id)))

    async def cancel_all(self, market_id: int = 0, subaccount: int = 0) -> AckOut:
        """Cancel every open order in ``market_id`` (0: in every market)."""
        return await self.act(self.sign(CancelAll(self._owner(), subaccount, market_id)))

    async def modify_order(self, order_id: int, market_id: int, side: SideLike,
                           size: Number | None = None, price: Number | None = None, *,
                           size_lots: int | None = None, price_ticks: int | None = None,
                           subaccount: int = 0) -> AckOut:
        """Cancel-replace; ``market_id`` and ``side`` say how to round (they are not sent)."""
        rounding = self.rounding(market_id)
        ticks = rounding.price_ticks(price, _side(side)) if price is not None else price_ticks
        lots = rounding.size_lots(size) if size is not None else size_lots
        if ticks is None or lots is None:
            raise ValueError("give a price (or price_ticks) and a size (or size_lots)")
        return await self.act(self.sign(ModifyOrder(self._owner(), subaccount, order_id, ticks,
                                                    lots)))

    def _quantums(self, amount: Number | None, amount_quantums: int | None) -> int:
        if (amount is None) == (amount_quantums is None):
            raise ValueError("give exactly one of amount and amount_quantums")
        if amount_quantums is not None:
            return amount_quantums
        assert amount is not None
        num, den = to_decimal(amount).as_integer_ratio()
        return num * pow10(self.collateral_decimals) // den  # down: never more than asked

    async def withdraw(self, amount: Number | None = None, *, amount_quantums: int | None = None,
                       subaccount: int = 0) -> AckOut:
        """Withdraw collateral (USDC, rounded down to a quantum); claim it on chain with
        ``withdrawal_proof`` once its batch is final."""
        return await self.act(self.sign(Withdraw(self._owner(), subaccount,
                                                 self._quantums(amount, amount_quantums))))

    async def transfer(self, to_owner: bytes | str, amount: Number | None = None, *,
                       amount_quantums: int | None = None, to_subaccount: int = 0,
                       subaccount: int = 0) -> AckOut:
        return await self.act(self.sign(Transfer(
            self._owner(), subaccount, _address(to_owner), to_subaccount,
            self._quantums(amount, amount_quantums))))

    async def set_margin_mode(self, market_id: int, isolated: bool,
                              subaccount: int = 0) -> AckOut:
        return await self.act(self.sign(SetMarginMode(self._owner(), subaccount, market_id,
                                                      isolated)))

    async def move_isolated_margin(self, market_id: int, amount_quantums: int,
                                   subaccount: int = 0) -> AckOut:
        return await self.act(self.sign(MoveIsolatedMargin(self._owner(), subaccount, market_id,
                                                           amount_quantums)))

    async def set_portfolio_margin(self, enabled: bool, subaccount: int = 0) -> AckOut:
        """Portfolio (True) or standard margin for the cross group (owner key only)."""
        return await self.act(self.sign(SetPortfolioMargin(self._owner(), subaccount, enabled)))

    async def set_mmp(self, index_id: int, window_ms: int, frozen_ms: int = 0, *,
                      quantity_limit_nanounits: int = 0, delta_limit_nanounits: int = 0,
                      vega_limit_quantums: int = 0, subaccount: int = 0) -> AckOut:
        """Market-maker protection on an option index (all limits 0: off; also lifts a
        freeze)."""
        return await self.act(self.sign(SetMmp(
            self._owner(), subaccount, index_id, window_ms, frozen_ms, quantity_limit_nanounits,
            delta_limit_nanounits, vega_limit_quantums)))

    def mass_quote_action(self, index_id: int, quotes: Sequence[QuoteLike], *,
                          subaccount: int = 0, nonce_ms: int | None = None,
                          ) -> wire.SignedAction:
        """A signed mass quote (exact ticks and lots; an empty ladder pulls every quote)."""
        return self.sign(MassQuote(self._owner(), subaccount, index_id,
                                   tuple(_quote(q) for q in quotes)), nonce_ms)

    async def mass_quote(self, index_id: int, quotes: Sequence[QuoteLike], *,
                         subaccount: int = 0) -> AckOut:
        """Replace the quote ladder on ``index_id`` (post-only, all or nothing)."""
        return await self.act(self.mass_quote_action(index_id, quotes, subaccount=subaccount))

    async def register_agent(self, agent: bytes | str, expiry_ms: int,
                             subaccount: int | None = None) -> AckOut:
        """Let ``agent`` trade for this owner until ``expiry_ms`` (owner key only)."""
        return await self.act(self.sign(RegisterAgent(self._owner(), _address(agent), expiry_ms,
                                                      subaccount)))

    async def revoke_agent(self, agent: bytes | str) -> AckOut:
        return await self.act(self.sign(RevokeAgent(self._owner(), _address(agent))))

    # --- streams --------------------------------------------------------------------------------

    def stream(self, *subscriptions: dict[str, Any],
               backoff_first_s: float = RECONNECT_BACKOFF_FIRST_S,
               backoff_max_s: float = RECONNECT_BACKOFF_MAX_S) -> Stream:
        """A reconnecting subscription, e.g. ``client.stream({"channel": "book",
        "market_id": 1}, {"channel": "account", "owner": "0x…"})``."""
        return Stream(self, list(subscriptions), backoff_first_s, backoff_max_s)


class _ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


class _BatchOrError(msgspec.Struct):
    results: list[ActionResult] | None = None
    status: int | None = None
    error: ErrorBody | None = None
    ack: None = None


class Stream:
    """Subscriptions on a WebSocket that reconnects and resubscribes; iterate for updates.

    ``books`` holds an ``L2Book`` per subscribed market, valid whenever its ``sequence`` is
    not -1 (it is -1 from a reconnect until the fresh snapshot arrives). ``reconnects`` counts
    the connections after the first.
    """

    def __init__(self, client: AsyncClient, subscriptions: list[dict[str, Any]],
                 backoff_first_s: float, backoff_max_s: float) -> None:
        self.client = client
        self.subscriptions = subscriptions
        self.backoff_first_s = backoff_first_s
        self.backoff_max_s = backoff_max_s
        self.books: dict[int, L2Book] = {
            s["market_id"]: L2Book(s["market_id"]) for s in subscriptions
            if s.get("channel") == "book"}
        self.reconnects = 0
        self.resyncs = 0
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._closed = False
        self._ids = itertools.count(1)

    async def close(self) -> None:
        self._closed = True
        if self._ws is not None:
            await self._ws.close()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_bytes(msgspec.json.encode({**message, "id": next(self._ids)}))

    async def _resubscribe(self, topic: str) -> None:
        """A fresh snapshot for ``topic``: unsubscribe, then subscribe again."""
        self.resyncs += 1
        for sub in self.subscriptions:
            if _topic_of(sub) == topic:
                if sub.get("channel") == "book":
                    self.books[sub["market_id"]].sequence = -1
                await self._send({"op": "unsubscribe", "topic": topic})
                await self._send({"op": "subscribe", **sub})

    def __aiter__(self) -> AsyncIterator[Update]:
        return self._run()

    async def _run(self) -> AsyncIterator[Update]:
        backoff = self.backoff_first_s
        first = True
        while not self._closed:
            try:
                self._ws = await self.client.session.ws_connect(
                    self.client.url + "/ws", max_msg_size=WS_MESSAGE_BYTES_MAX)
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            if not first:
                self.reconnects += 1
            first = False
            backoff = self.backoff_first_s  # a connection that opened resets the backoff
            for book in self.books.values():
                book.sequence = -1
            try:
                for sub in self.subscriptions:
                    await self._send({"op": "subscribe", **sub})
                async for message in self._ws:
                    if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        break
                    update = await self._handle(msgspec.json.decode(message.data))
                    if update is not None:
                        yield update
            except (aiohttp.ClientError, OSError, ConnectionError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    await self._ws.close()
            if not self._closed:
                await asyncio.sleep(backoff)

    async def _handle(self, message: dict[str, Any]) -> Update | None:
        kind = message.get("type")
        if kind == "unsubscribed" and message.get("reason") in ("lagged", "ended"):
            await self._resubscribe(message["topic"])
            return None
        if kind == "error":
            raise ApiRefused(msgspec.convert(message["error"], ErrorBody))
        if kind != "update":
            return None
        update_kind = message["kind"]
        data = msgspec.convert(message["data"], UPDATE_TYPES.get(update_kind, Any))
        topic = message["topic"]
        if update_kind in ("book_snapshot", "book_delta"):
            book = self.books.get(data.market_id)
            if book is None:
                return None
            if update_kind == "book_snapshot":
                book.reset(data)
            elif book.sequence < 0:
                return None  # waiting for the fresh snapshot
            elif not book.apply(data):
                await self._resubscribe(topic)  # a gap: never apply out of order
                return None
        return Update(topic, update_kind, data)


def _topic_of(sub: dict[str, Any]) -> str:
    channel = sub["channel"]
    if channel in ("book", "trades"):
        return f"{channel}:{sub['market_id']}"
    if channel == "account":
        return "account:" + str(sub["owner"]).lower()
    return "batches"

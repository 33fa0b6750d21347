"""The gateway: HTTP + WebSocket in front of one in-process ``rollbook.node.Node``.

It decodes, validates and rate-limits; it holds no business logic. Every request that passes
becomes one call on the node (``submit_many``, a query or ``subscribe``), except that single
WebSocket orders read together share one ``submit_many`` (each still answered alone, see
``Gateway._ws_flush_orders``); every request that does not is answered with an HTTP status,
a stable code and a message (``rollbook.gateway.errors``) and never reaches the node, so no
refusal at the door can change venue state or use a nonce.

Order of checks for an action (cheapest first, each refusal final):
1. size: the body (HTTP) or message (WebSocket) is at most ``REQUEST_BYTES_MAX`` bytes, a batch
   at most ``ACTIONS_PER_REQUEST_MAX`` actions (``PAYLOAD_TOO_LARGE``);
2. strict decoding (msgspec): malformed JSON, wrong types, unknown or missing fields, values
   outside their schema (``MALFORMED_JSON`` .. ``INVALID_VALUE``);
3. the market an action names exists (``UNKNOWN_MARKET``), and the signature is 65 bytes;
4. the owner's token bucket (``RATE_LIMITED``; owners share one bucket with their agents);
5. the node: signature recovery (low-s, the venue's EIP-712 domain: another chain id or
   contract recovers an unrelated signer), nonce window and agent rights; then the STF.

Routes (``/openapi.json`` documents every one; a test checks that nothing is left out):
``/v1/info``, ``/v1/markets``, ``/v1/markets/{market_id}/book``,
``/v1/markets/{market_id}/trades``, ``/v1/accounts/{owner}/{subaccount}``, ``/v1/batches``,
``/v1/batches/{index}``, ``/v1/withdrawals/{withdrawal_id}/proof``, ``/v1/status``; the action
routes ``POST /v1/orders`` (place), ``/v1/orders/cancel``, ``/v1/orders/cancel-by-client-id``,
``/v1/orders/cancel-all``, ``/v1/orders/modify``, ``/v1/orders/batch``, ``/v1/withdraw``,
``/v1/transfer``, ``/v1/margin/mode``, ``/v1/margin/isolated``, ``/v1/margin/portfolio``,
``/v1/mmp``, ``/v1/quotes/mass``, ``/v1/agents/register``, ``/v1/agents/revoke``,
``/v1/actions`` (any action, tagged by ``type``); the risk view
``/v1/accounts/{owner}/{subaccount}/risk``; and ``GET /ws``
(protocol in ``rollbook.gateway.messages``).

Limits: per connection at most ``ws_in_flight_max`` unanswered actions (``TOO_MANY_IN_FLIGHT``)
and ``ws_subscriptions_max`` subscriptions; an outgoing queue of ``ws_send_queue_max`` messages,
past which a slow reader is disconnected (close code 1008) rather than buffered without bound;
messages over ``WS_MESSAGE_BYTES_HARD_MAX`` close the connection (1009). Listens on loopback
unless told otherwise. Known gaps: no per-IP limit (put a reverse proxy in front), no TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from struct import Struct
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from rollbook.execution.errors import ErrorCode
from rollbook.execution.events import Fill, OrderCancelled, OrderPlaced, OrderReduced
from rollbook.execution.txs import ModifyOrder, PlaceOrder
from rollbook.gateway import actions as wire
from rollbook.gateway.errors import ApiError, GatewayCode, status_of
from rollbook.gateway.messages import (
    AckOut,
    ActionResult,
    BatchRequest,
    BatchResult,
    ErrorBody,
    ErrorResponse,
    RequestId,
    WsBatch,
    WsOrder,
    WsPing,
    WsRequest,
    WsSubscribe,
    WsUnsubscribe,
)
from rollbook.gateway.schemas import jsonable
from rollbook.node.core import Node, NodeUnavailable
from rollbook.node.feeds import SubscriptionLagged
from rollbook.node.views import Ack
from rollbook.sequencer.errors import AdmissionCode, AdmissionError
from rollbook.sequencer.limits import (
    ACTIONS_PER_REQUEST_MAX,
    REQUEST_BYTES_MAX,
    RateLimit,
    RateLimiter,
    action_cost_tokens,
)
from rollbook.sequencer.signatures import SignedTransaction

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "WS_MESSAGE_BYTES_HARD_MAX",
    "Gateway",
    "GatewayConfig",
    "Route",
]

log = logging.getLogger("rollbook.gateway")

DEFAULT_HOST = "127.0.0.1"  # loopback: exposing a venue is a deliberate act (--host)
DEFAULT_PORT = 8600
# past this a WebSocket message is not even read: the connection closes with 1009; between
# REQUEST_BYTES_MAX and this, the client gets a PAYLOAD_TOO_LARGE answer and stays connected
WS_MESSAGE_BYTES_HARD_MAX = 4 * REQUEST_BYTES_MAX
WS_HEARTBEAT_S = 30.0
# single WebSocket orders read together and submitted as one group at most (a bound on how
# long the first of them waits for the others' recovery; a batch message has its own limit)
WS_ORDERS_COALESCED_MAX = 256
# outgoing messages written to a socket in one call (see ``_Connection``)
WS_COALESCED_WRITE_BYTES_MAX = 256 << 10
WS_WRITE_BUFFER_BYTES_MAX = 1 << 20  # unsent bytes past which the writer waits for the socket
# RFC 6455 frame header: FIN + opcode 1 (text); 7-bit length, or 126 / 127 + 16 / 64-bit length
_FIN_TEXT = 0x81
_FRAME_LENGTH_16 = 126
_FRAME_LENGTH_64 = 127
_FRAME_HEADER_16 = Struct("!BBH")
_FRAME_HEADER_64 = Struct("!BBQ")
SHUTDOWN_TIMEOUT_S = 1.0  # in-flight HTTP requests get this long when the gateway stops
BOOK_DEPTH_DEFAULT = 20
BOOK_DEPTH_MAX = 1_000
TRADES_LIMIT_DEFAULT = 100
TRADES_LIMIT_MAX = 1_000
BATCHES_LIMIT_DEFAULT = 100
BATCHES_LIMIT_MAX = 1_000
SUBACCOUNT_MAX = 0xFFFF
INDEX_MAX = (1 << 63) - 1
_JSON = "application/json"
DEFAULT_RATE_LIMIT = RateLimit(burst_tokens=8_000, refill_tokens_per_s=2_000)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0: an ephemeral port (tests)
    # per owner (agents share it): 1,000 actions/s sustained (cancels cost half), 4,000 burst
    rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT
    ws_in_flight_max: int = 16_384
    ws_subscriptions_max: int = 64
    ws_send_queue_max: int = 65_536


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: str  # "path" or "query"
    schema: dict[str, Any]
    description: str
    required: bool = True


@dataclass(frozen=True, slots=True)
class Route:
    """One HTTP route: what the OpenAPI document says about it, and its handler."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    body: Any = None  # the msgspec type of the JSON body
    response: Any = None  # the msgspec type of a 200 answer
    params: tuple[Param, ...] = ()
    statuses: tuple[int, ...] = ()  # refusal statuses the route can answer
    description: str = ""


def _int_schema(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


_MARKET_PARAM = Param("market_id", "path", _int_schema(1, 0xFFFF), "market id")
_OWNER_PARAM = Param("owner", "path", {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
                     "owner address")
_SUBACCOUNT_PARAM = Param("subaccount", "path", _int_schema(0, SUBACCOUNT_MAX),
                          "subaccount number")
_ACTION_STATUSES = (400, 401, 403, 404, 409, 413, 422, 429, 503)
_QUERY_STATUSES = (400, 404, 503)


def _encode(value: Any) -> bytes:
    return msgspec.json.encode(value)


def _json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(value), status=status, content_type=_JSON)


def _error_body(error: ApiError) -> ErrorBody:
    return ErrorBody(int(error.code), error.code.name, error.message, error.status)


def _error_response(error: ApiError) -> web.Response:
    return _json_response(ErrorResponse(_error_body(error)), error.status)


def decode_error(error: Exception) -> ApiError:
    """The gateway code for a msgspec refusal (the message names the field)."""
    text = str(error)
    # ValidationError subclasses DecodeError: a JSON document of the wrong shape
    if not isinstance(error, msgspec.ValidationError):
        return ApiError(GatewayCode.MALFORMED_JSON, text[:200])
    if text.startswith("Object contains unknown field"):
        return ApiError(GatewayCode.UNKNOWN_FIELD, text)
    if text.startswith("Object missing required field"):
        return ApiError(GatewayCode.MISSING_FIELD, text)
    if text.startswith("Expected `") and ", got `" in text:
        return ApiError(GatewayCode.WRONG_TYPE, text)
    return ApiError(GatewayCode.INVALID_VALUE, text)


# tuples, not ``A | B`` unions: those are built anew on every evaluation (per ack and event)
_CREATES_ORDER = (PlaceOrder, ModifyOrder)
_NAMES_ORDER = (OrderPlaced, OrderCancelled, OrderReduced)


def _order_id(signed: SignedTransaction, events: Sequence[Any]) -> int | None:
    """The id of the order a place or modify created (ids only grow, so the largest); a
    modify that only shrank the order keeps its id (``OrderReduced``). ``events``: those of an
    accepted action."""
    if not isinstance(signed.action, _CREATES_ORDER):
        return None
    found = None
    for event in events:
        if isinstance(event, _NAMES_ORDER):
            candidate = event.order_id
        elif isinstance(event, Fill):
            candidate = event.taker_order_id
        else:
            continue
        if found is None or candidate > found:
            found = candidate
    return found


# a receipt code -> (number, name, HTTP status, accepted): ``IntEnum.name`` is a property
# that costs ~0.3 µs, and was read twice for every refused ack
_RECEIPT_CODES: dict[ErrorCode, tuple[int, str, int, bool]] = {
    code: (int(code), code.name, status_of(code), code == ErrorCode.OK) for code in ErrorCode}
_OK_STATUS = status_of(ErrorCode.OK)


def ack_result(signed: SignedTransaction, ack: Ack) -> ActionResult:
    receipt = ack.receipt
    code, name, status, ok = _RECEIPT_CODES[receipt.code]
    events = receipt.events
    out = AckOut("0x" + ack.tx_id.hex(), "0x" + ack.signer.hex(), ack.sequence,
                 ack.batch_index, ok, code, name, receipt.message,
                 _order_id(signed, events) if ok else None, list(map(jsonable, events)))
    if ok:
        return ActionResult(_OK_STATUS, out)
    # the receipt's message already carries the STF's detail
    return ActionResult(status, out, ErrorBody(code, name, receipt.message, status))


def error_result(error: ApiError) -> ActionResult:
    return ActionResult(error.status, None, _error_body(error))


def _text_frame(payload: bytes) -> bytes:
    """A final, unmasked, uncompressed text frame (RFC 6455 section 5.2), as a server sends it."""
    length = len(payload)
    if length < _FRAME_LENGTH_16:
        return bytes((_FIN_TEXT, length)) + payload
    if length < 1 << 16:
        return _FRAME_HEADER_16.pack(_FIN_TEXT, _FRAME_LENGTH_16, length) + payload
    return _FRAME_HEADER_64.pack(_FIN_TEXT, _FRAME_LENGTH_64, length) + payload


class _Connection:
    """One WebSocket: its outgoing queue, writer task, subscriptions and in-flight count.

    The writer sends what is queued in order. Several messages queued together (the answers to
    single orders read together) go to the socket in one write, framed here: aiohttp writes
    each frame with its own ``send`` system call, which cost the event loop about a fifth of
    its time when every order is its own message. Only while the socket keeps up (the
    transport's buffer under ``WS_WRITE_BUFFER_BYTES_MAX``); otherwise one frame at a time
    through aiohttp, which waits for the socket to drain."""

    def __init__(self, gateway: Gateway, ws: web.WebSocketResponse,
                 transport: asyncio.BaseTransport | None) -> None:
        self.gateway = gateway
        self.ws = ws
        self.transport = transport if isinstance(transport, asyncio.WriteTransport) else None
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.subscriptions: dict[str, asyncio.Task[None]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.in_flight = 0
        self.closing = False
        # single orders read but not yet handed to the node (see ``Gateway._ws_message``)
        self.pending_orders: list[WsOrder] = []
        self.writer = asyncio.create_task(self._write())

    def send(self, message: Any) -> None:
        if self.closing:
            return
        if self.queue.qsize() >= self.gateway.config.ws_send_queue_max:
            # a reader this far behind is dropped: buffering for it would grow without bound
            self.closing = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(_encode(message))

    async def _write(self) -> None:
        ws = self.ws
        queue = self.queue
        try:
            while True:
                data = await queue.get()
                if data is not None and not queue.empty() and self._coalescing():
                    if not self._write_queued(data):
                        continue
                    data = None  # the end-of-stream mark followed what was written
                if data is None:
                    await ws.close(code=1008, message=b"too slow: send queue full")
                    return
                await ws.send_frame(data, WSMsgType.TEXT)
        except (ConnectionError, RuntimeError):  # the peer went away mid-write
            return

    def _coalescing(self) -> bool:
        transport = self.transport
        return (transport is not None and not transport.is_closing()
                and transport.get_write_buffer_size() < WS_WRITE_BUFFER_BYTES_MAX)

    def _write_queued(self, first: bytes) -> bool:
        """Write ``first`` and what is queued after it as one write, up to
        ``WS_COALESCED_WRITE_BYTES_MAX``; whether the queue's end-of-stream mark came next."""
        assert self.transport is not None
        queue = self.queue
        frames = [_text_frame(first)]
        size = len(frames[0])
        closed = False
        while size < WS_COALESCED_WRITE_BYTES_MAX and not queue.empty():
            data = queue.get_nowait()
            if data is None:
                closed = True
                break
            frame = _text_frame(data)
            frames.append(frame)
            size += len(frame)
        self.transport.write(b"".join(frames))
        return closed

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        self.closing = True
        for task in [*self.subscriptions.values(), *self.tasks]:
            task.cancel()
        for task in [*self.subscriptions.values(), *self.tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.writer


@dataclass
class _Stats:
    http_requests: int = 0
    ws_connections: int = 0
    actions: int = 0
    refused: int = 0
    connections: set[_Connection] = field(default_factory=set)


class Gateway:
    """HTTP + WebSocket server for ``node``; ``start`` / ``stop`` on the running event loop."""

    def __init__(self, node: Node, config: GatewayConfig | None = None) -> None:
        self.node = node
        self.config = config or GatewayConfig()
        self.limiter = (None if self.config.rate_limit is None
                        else RateLimiter(self.config.rate_limit))
        self.stats = _Stats()
        self._market_ids: frozenset[int] = frozenset()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port: int | None = None
        self.routes: tuple[Route, ...] = self._route_table()
        self.app = self._build_app()
        self._action_decoder = msgspec.json.Decoder(wire.SignedAction)
        self._ws_decoder = msgspec.json.Decoder(WsRequest)
        self._batch_decoder = msgspec.json.Decoder(BatchRequest)
        self._openapi: bytes | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._refresh_markets()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await self._site.start()
        server = self._site._server  # the bound socket tells the ephemeral port
        assert server is not None
        sockets = getattr(server, "sockets", None) or ()
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port

    @property
    def url(self) -> str:
        assert self.port is not None, "start() first"
        return f"http://{self.config.host}:{self.port}"

    async def stop(self) -> None:
        for connection in list(self.stats.connections):
            await connection.close()
            with contextlib.suppress(Exception):
                await connection.ws.close(code=1001, message=b"gateway stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- app and routes -------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        # one byte over the limit lets aiohttp refuse bigger bodies itself; our own check
        # answers in the API's format
        app = web.Application(middlewares=[self._middleware],
                              client_max_size=REQUEST_BYTES_MAX + 1)
        for route in self.routes:
            app.router.add_route(route.method, route.path, route.handler)
        app.router.add_get("/openapi.json", self._openapi_handler)
        app.router.add_get("/ws", self._ws_handler)
        return app

    def _route_table(self) -> tuple[Route, ...]:
        from rollbook.gateway.queries import query_routes

        routes = list(query_routes(self))
        for path, op, summary, struct in (
            ("/v1/orders", "placeOrder", "Place an order", wire.PlaceOrderAction),
            ("/v1/orders/cancel", "cancelOrder", "Cancel an order", wire.CancelOrderAction),
            ("/v1/orders/cancel-by-client-id", "cancelByClientId",
             "Cancel an order by client order id", wire.CancelByClientIdAction),
            ("/v1/orders/cancel-all", "cancelAll", "Cancel all orders (of one market or all)",
             wire.CancelAllAction),
            ("/v1/orders/modify", "modifyOrder", "Modify (cancel-replace) an order",
             wire.ModifyOrderAction),
            ("/v1/withdraw", "withdraw", "Withdraw collateral (claimable on chain when final)",
             wire.WithdrawAction),
            ("/v1/transfer", "transfer", "Transfer collateral to another subaccount",
             wire.TransferAction),
            ("/v1/margin/mode", "setMarginMode", "Cross or isolated margin for a market",
             wire.SetMarginModeAction),
            ("/v1/margin/isolated", "moveIsolatedMargin",
             "Move collateral into or out of an isolated position",
             wire.MoveIsolatedMarginAction),
            ("/v1/agents/register", "registerAgent", "Register an agent (API) key",
             wire.RegisterAgentAction),
            ("/v1/agents/revoke", "revokeAgent", "Revoke an agent key", wire.RevokeAgentAction),
            ("/v1/margin/portfolio", "setPortfolioMargin",
             "Portfolio or standard margin for the cross group", wire.SetPortfolioMarginAction),
            ("/v1/mmp", "setMmp", "Market-maker protection for an option index's quotes",
             wire.SetMmpAction),
            ("/v1/quotes/mass", "massQuote", "Replace the quote ladder on an option index",
             wire.MassQuoteAction),
        ):
            routes.append(Route("POST", path, op, summary, "actions",
                                self._action_handler(struct), body=struct,
                                response=ActionResult, statuses=_ACTION_STATUSES,
                                description=(struct.__doc__ or "").strip()))
        routes.append(Route("POST", "/v1/actions", "submitAction",
                            "Submit any signed action (tagged by type)", "actions",
                            self._action_handler(None), body=wire.SignedAction,
                            response=ActionResult, statuses=_ACTION_STATUSES))
        routes.append(Route("POST", "/v1/orders/batch", "submitBatch",
                            f"Submit up to {ACTIONS_PER_REQUEST_MAX} signed actions in order",
                            "actions", self._batch_handler, body=BatchRequest,
                            response=BatchResult, statuses=_ACTION_STATUSES))
        return tuple(routes)

    async def _openapi_handler(self, request: web.Request) -> web.Response:
        if self._openapi is None:
            from rollbook.gateway.openapi import openapi_document

            self._openapi = _encode(openapi_document(self.routes))
        return web.Response(body=self._openapi, content_type=_JSON)

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                          ) -> web.StreamResponse:
        self.stats.http_requests += 1
        try:
            return await handler(request)
        except ApiError as error:
            self.stats.refused += 1
            return _error_response(error)
        except AdmissionError as error:
            self.stats.refused += 1
            return _error_response(ApiError.from_admission(error))
        except NodeUnavailable as error:
            return _error_response(ApiError(GatewayCode.NODE_UNAVAILABLE, str(error)))
        except web.HTTPRequestEntityTooLarge:
            return _error_response(ApiError(AdmissionCode.PAYLOAD_TOO_LARGE,
                                            f"body over {REQUEST_BYTES_MAX} bytes"))
        except web.HTTPMethodNotAllowed as error:
            return _error_response(ApiError(GatewayCode.METHOD_NOT_ALLOWED, error.method))
        except web.HTTPNotFound:
            return _error_response(ApiError(GatewayCode.NOT_FOUND, request.path[:200]))
        except web.HTTPException:
            raise
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: log it, answer 500, keep serving
            log.exception("internal error on %s %s", request.method, request.path)
            return _error_response(ApiError(GatewayCode.INTERNAL))

    # --- shared checks --------------------------------------------------------------------------

    async def _refresh_markets(self) -> None:
        markets = await self.node.markets()
        self._market_ids = frozenset(m.market_id for m in markets)

    async def check_market(self, market_id: int) -> None:
        if market_id in self._market_ids:
            return
        await self._refresh_markets()  # options may have been listed since
        if market_id not in self._market_ids:
            raise ApiError(GatewayCode.UNKNOWN_MARKET, str(market_id))

    async def _prepare(self, action: wire.SignedAction) -> SignedTransaction:
        """Steps 3 and 4 of the module docstring; the signed transaction for the node."""
        for market_id in wire.markets_of(action):
            if market_id != 0:
                await self.check_market(market_id)
        return self._signed_for(action)

    def _markets_known(self, action: wire.SignedAction) -> bool:
        """Whether every market ``action`` names is listed already (step 3 needs no wait)."""
        known = self._market_ids
        for market_id in wire.markets_of(action):
            if market_id != 0 and market_id not in known:
                return False
        return True

    def _signed_for(self, action: wire.SignedAction) -> SignedTransaction:
        """Step 4 of the module docstring, once the markets are checked."""
        signed = wire.to_signed(action)
        if self.limiter is not None:
            self.limiter.acquire(signed.action.owner, action_cost_tokens(signed.action))
        return signed

    async def submit(self, action: wire.SignedAction) -> ActionResult:
        """One action through every check and the node; never raises for a refusal."""
        self.stats.actions += 1
        try:
            signed = await self._prepare(action)
            ack = await self.node.submit(signed)
        except ApiError as error:
            self.stats.refused += 1
            return error_result(error)
        except AdmissionError as error:
            self.stats.refused += 1
            return error_result(ApiError.from_admission(error))
        return ack_result(signed, ack)

    async def submit_batch(self, batch: Sequence[wire.SignedAction]) -> list[ActionResult]:
        """Actions in order; refusals at the door keep their place in the answer."""
        self.stats.actions += len(batch)
        results: list[ActionResult | None] = [None] * len(batch)
        to_node: list[SignedTransaction] = []
        positions: list[int] = []
        refused = 0
        for i, action in enumerate(batch):
            try:
                # the common case without a coroutine per action: every market known already
                to_node.append(self._signed_for(action) if self._markets_known(action)
                               else await self._prepare(action))
                positions.append(i)
            except ApiError as error:
                results[i] = error_result(error)
                refused += 1
            except AdmissionError as error:
                results[i] = error_result(ApiError.from_admission(error))
                refused += 1
        if to_node:
            answers = await self.node.submit_many(to_node)
            for i, signed, answer in zip(positions, to_node, answers, strict=True):
                result = (error_result(ApiError.from_admission(answer))
                          if isinstance(answer, AdmissionError) else ack_result(signed, answer))
                results[i] = result
                if result.status != _OK_STATUS:
                    refused += 1
        self.stats.refused += refused
        final = [r for r in results if r is not None]
        assert len(final) == len(batch)
        return final

    # --- HTTP handlers --------------------------------------------------------------------------

    async def read_body(self, request: web.Request) -> bytes:
        length = request.content_length
        if length is not None and length > REQUEST_BYTES_MAX:
            raise ApiError(AdmissionCode.PAYLOAD_TOO_LARGE,
                           f"body {length} > {REQUEST_BYTES_MAX} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as error:  # a chunked body past the limit
            raise ApiError(AdmissionCode.PAYLOAD_TOO_LARGE,
                           f"body over {REQUEST_BYTES_MAX} bytes") from error
        if len(body) > REQUEST_BYTES_MAX:
            raise ApiError(AdmissionCode.PAYLOAD_TOO_LARGE,
                           f"body {len(body)} > {REQUEST_BYTES_MAX} bytes")
        return body

    def _action_handler(self, struct: type | None,
                        ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        decoder = msgspec.json.Decoder(struct if struct is not None else wire.SignedAction)

        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                _no_query(request)
                body = await self.read_body(request)
                action = self._decode_action(decoder, struct, body)
            except ApiError as error:  # action routes always answer an ActionResult
                self.stats.refused += 1
                result = error_result(error)
            else:
                result = await self.submit(action)
            return _json_response(result, result.status)

        return handle

    @staticmethod
    def _decode_action(decoder: msgspec.json.Decoder[Any], struct: type | None,
                       body: bytes) -> wire.SignedAction:
        try:
            action: wire.SignedAction = decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as error:
            if struct is not None and "at `$.type`" in str(error):
                raise ApiError(GatewayCode.ACTION_TYPE_MISMATCH,
                               f"this route takes {wire.ACTION_TYPE_NAMES[struct]!r}"
                               ) from error
            raise decode_error(error) from error
        return action

    async def _batch_handler(self, request: web.Request) -> web.StreamResponse:
        try:
            _no_query(request)
            body = await self.read_body(request)
            batch = self._batch_decoder.decode(body)
        except ApiError as error:
            self.stats.refused += 1
            result = error_result(error)
            return _json_response(result, result.status)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as error:
            self.stats.refused += 1
            refusal = (ApiError(AdmissionCode.PAYLOAD_TOO_LARGE,
                                f"more than {ACTIONS_PER_REQUEST_MAX} actions")
                       if _too_many_actions(error) else decode_error(error))
            result = error_result(refusal)
            return _json_response(result, result.status)
        return _json_response(BatchResult(await self.submit_batch(batch.actions)))

    # --- WebSocket ------------------------------------------------------------------------------

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=WS_MESSAGE_BYTES_HARD_MAX, compress=False,
                                   heartbeat=WS_HEARTBEAT_S, decode_text=False)
        await ws.prepare(request)
        connection = _Connection(self, ws, request.transport)
        self.stats.connections.add(connection)
        self.stats.ws_connections += 1
        try:
            async for message in ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    data = message.data
                    self._ws_message(connection, data if isinstance(data, bytes)
                                     else data.encode())
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self.stats.connections.discard(connection)
            await connection.close()
        return ws

    def _ws_error(self, connection: _Connection, request_id: RequestId, error: ApiError) -> None:
        self.stats.refused += 1
        connection.send({"type": "error", "id": request_id, "status": error.status,
                         "error": _error_body(error)})

    def _ws_message(self, connection: _Connection, data: bytes) -> None:
        if len(data) > REQUEST_BYTES_MAX:
            self._ws_error(connection, None, ApiError(
                AdmissionCode.PAYLOAD_TOO_LARGE, f"message {len(data)} > {REQUEST_BYTES_MAX}"))
            return
        try:
            request = self._ws_decoder.decode(data)
        except msgspec.ValidationError as error:
            code = (ApiError(AdmissionCode.PAYLOAD_TOO_LARGE,
                             f"more than {ACTIONS_PER_REQUEST_MAX} actions")
                    if _too_many_actions(error) else decode_error(error))
            self._ws_error(connection, _salvage_id(data), code)
            return
        except (msgspec.DecodeError, RecursionError) as error:
            self._ws_error(connection, None, decode_error(error))
            return
        if isinstance(request, WsOrder):
            if connection.in_flight + 1 > self.gateway_in_flight_max:
                self._ws_error(connection, request.id, ApiError(
                    GatewayCode.TOO_MANY_IN_FLIGHT, f"{connection.in_flight} unanswered"))
                return
            connection.in_flight += 1
            if not connection.pending_orders:  # after every message read so far
                asyncio.get_running_loop().call_soon(self._ws_flush_orders, connection)
            connection.pending_orders.append(request)
            if len(connection.pending_orders) >= WS_ORDERS_COALESCED_MAX:
                self._ws_flush_orders(connection)
            return
        # anything else keeps its place after the orders read before it
        self._ws_flush_orders(connection)
        if isinstance(request, WsBatch):
            count = len(request.actions)
            if connection.in_flight + count > self.gateway_in_flight_max:
                self._ws_error(connection, request.id, ApiError(
                    GatewayCode.TOO_MANY_IN_FLIGHT, f"{connection.in_flight} unanswered"))
                return
            connection.in_flight += count
            connection.spawn(self._ws_actions(connection, request, count))
        elif isinstance(request, WsSubscribe):
            connection.spawn(self._ws_subscribe(connection, request))
        elif isinstance(request, WsUnsubscribe):
            task = connection.subscriptions.pop(request.topic, None)
            if task is not None:
                task.cancel()
            connection.send({"type": "unsubscribed", "id": request.id, "topic": request.topic,
                             "reason": "requested"})
        else:
            assert isinstance(request, WsPing)
            connection.send({"type": "pong", "id": request.id})

    @property
    def gateway_in_flight_max(self) -> int:
        return self.config.ws_in_flight_max

    def _ws_flush_orders(self, connection: _Connection) -> None:
        """Hand the connection's pending single orders to the node as one submission.

        Single orders that arrive together (read in one pass of the event loop) become one
        ``submit_many``: one recovery job, one sequencer item and one wake-up of the event
        loop for all of them instead of one each, and the node sequences them in the order
        they were read. Each still gets its own ``result`` (or ``error``) message, exactly as
        if it had been submitted alone; a coalesced group holds at most
        ``WS_ORDERS_COALESCED_MAX`` orders."""
        orders = connection.pending_orders
        if orders:
            connection.pending_orders = []
            if connection.closing:  # never submitted, never answered: as if never read
                connection.in_flight -= len(orders)
                return
            connection.spawn(self._ws_orders(connection, orders))

    async def _ws_orders(self, connection: _Connection, orders: list[WsOrder]) -> None:
        try:
            results = await self._guarded(self.submit_batch([o.action for o in orders]))
            if isinstance(results, ApiError):
                for order in orders:
                    self._ws_error(connection, order.id, results)
                return
            for order, result in zip(orders, results, strict=True):
                connection.send({"type": "result", "id": order.id, "status": result.status,
                                 "ack": result.ack, "error": result.error})
        finally:
            connection.in_flight -= len(orders)

    async def _ws_actions(self, connection: _Connection, request: WsBatch, count: int) -> None:
        try:
            results = await self._guarded(self.submit_batch(request.actions))
            if isinstance(results, ApiError):
                self._ws_error(connection, request.id, results)
            else:
                connection.send({"type": "results", "id": request.id, "results": results})
        finally:
            connection.in_flight -= count

    async def _guarded(self, call: Awaitable[Any]) -> Any:
        """The call's result, or the ApiError for the node being unavailable or a bug."""
        try:
            return await call
        except NodeUnavailable as error:
            return ApiError(GatewayCode.NODE_UNAVAILABLE, str(error))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("internal error on a WebSocket action")
            return ApiError(GatewayCode.INTERNAL)

    async def _ws_subscribe(self, connection: _Connection, request: WsSubscribe) -> None:
        try:
            topic = await self._topic(request)
        except ApiError as error:
            self._ws_error(connection, request.id, error)
            return
        if topic in connection.subscriptions:
            connection.send({"type": "subscribed", "id": request.id, "topic": topic})
            return
        if len(connection.subscriptions) >= self.config.ws_subscriptions_max:
            self._ws_error(connection, request.id, ApiError(
                GatewayCode.TOO_MANY_SUBSCRIPTIONS, str(self.config.ws_subscriptions_max)))
            return
        try:
            subscription = self.node.subscribe(topic)
        except ValueError as error:
            self._ws_error(connection, request.id, ApiError(GatewayCode.INVALID_VALUE, str(error)))
            return
        except NodeUnavailable as error:
            self._ws_error(connection, request.id,
                           ApiError(GatewayCode.NODE_UNAVAILABLE, str(error)))
            return
        connection.send({"type": "subscribed", "id": request.id, "topic": topic})
        task = asyncio.ensure_future(self._pump(connection, topic, subscription))
        connection.subscriptions[topic] = task

    async def _topic(self, request: WsSubscribe) -> str:
        channel = request.channel
        if channel in ("book", "trades"):
            if request.market_id is None or request.owner is not None:
                raise ApiError(GatewayCode.MISSING_FIELD, f"{channel} takes market_id only")
            await self.check_market(request.market_id)
            return f"{channel}:{request.market_id}"
        if channel == "account":
            if request.owner is None or request.market_id is not None:
                raise ApiError(GatewayCode.MISSING_FIELD, "account takes owner only")
            return "account:" + request.owner.lower()
        if request.owner is not None or request.market_id is not None:
            raise ApiError(GatewayCode.UNKNOWN_FIELD, "batches takes no parameters")
        return "batches"

    async def _pump(self, connection: _Connection, topic: str, subscription: Any) -> None:
        reason = "ended"
        try:
            async for item in subscription:
                connection.send({"type": "update", "topic": topic, "kind": update_kind(item),
                                 "data": jsonable(item)})
        except SubscriptionLagged:
            reason = "lagged"
        finally:
            with contextlib.suppress(Exception):
                subscription.close()
            if connection.subscriptions.get(topic) is asyncio.current_task():
                del connection.subscriptions[topic]
                connection.send({"type": "unsubscribed", "id": None, "topic": topic,
                                 "reason": reason})


_UPDATE_KINDS = {"BookView": "book_snapshot", "BookDelta": "book_delta", "TradeView": "trade",
                 "AccountEvent": "account", "BatchView": "batch"}


def update_kind(item: object) -> str:
    name = type(item).__name__
    return _UPDATE_KINDS.get(name, name.lower())


def _too_many_actions(error: Exception) -> bool:
    """The batch's own action array is too long (not, say, a mass quote's quotes inside it)."""
    text = str(error)
    return "Expected `array` of length <=" in text and text.endswith("at `$.actions`")


def _salvage_id(data: bytes) -> RequestId:
    """The request's ``id`` when the rest of it was refused (so the client can match)."""
    try:
        probe = msgspec.json.decode(data, type=_IdProbe)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    return probe.id


class _IdProbe(msgspec.Struct):
    id: RequestId = None


def _no_query(request: web.Request) -> None:
    if request.query:
        raise ApiError(GatewayCode.UNKNOWN_FIELD, f"query parameter {next(iter(request.query))!r}")


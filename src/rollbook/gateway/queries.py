"""The read side of the HTTP API: venue info, markets, books, trades, accounts, batches, proofs.

Each handler parses its path and query parameters strictly (unknown parameters are
``UNKNOWN_FIELD``, malformed or out-of-range values ``INVALID_VALUE``), asks the node one query
and answers the view as JSON (``rollbook.gateway.schemas.jsonable``). Views are consistent
snapshots at the node's durable position; nothing here changes state.

``GET /v1/info`` carries what a client needs to sign: the EIP-712 domain (chain id and
settlement contract) and every market's tick and lot.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from rollbook.gateway.errors import ApiError, GatewayCode
from rollbook.gateway.schemas import jsonable
from rollbook.gateway.views import (
    AccountOut,
    AccountRiskOut,
    BatchOut,
    BookOut,
    DomainOut,
    InfoOut,
    MarketOut,
    StatusOut,
    TradeOut,
    WithdrawalProofOut,
)
from rollbook.sequencer.eip712 import DOMAIN_NAME, DOMAIN_VERSION

if TYPE_CHECKING:
    from rollbook.gateway.server import Gateway, Route

__all__ = ["COLLATERAL_DECIMALS", "query_routes"]

COLLATERAL_DECIMALS = 6  # USDC quantums
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_UINT = re.compile(r"^[0-9]{1,20}$")


def _uint_param(raw: str, name: str, low: int, high: int) -> int:
    if not _UINT.fullmatch(raw):  # fullmatch: ``$`` alone allows a final newline
        raise ApiError(GatewayCode.INVALID_VALUE, f"{name} must be an integer, got {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(GatewayCode.INVALID_VALUE, f"{name} must be in [{low}, {high}]")
    return value


def _query(request: web.Request, allowed: dict[str, tuple[int, int, int]]) -> dict[str, int]:
    """Integer query parameters by name -> (default, low, high); anything else is refused."""
    values = {name: default for name, (default, _, _) in allowed.items()}
    seen: set[str] = set()
    for key, raw in request.query.items():
        if key not in allowed:
            raise ApiError(GatewayCode.UNKNOWN_FIELD, f"query parameter {key[:40]!r}")
        if key in seen:
            raise ApiError(GatewayCode.INVALID_VALUE, f"query parameter {key!r} repeated")
        seen.add(key)
        _, low, high = allowed[key]
        values[key] = _uint_param(raw, key, low, high)
    return values


def _owner(raw: str) -> bytes:
    if not _ADDRESS.fullmatch(raw):
        raise ApiError(GatewayCode.INVALID_VALUE, "owner must be 0x + 40 hex characters")
    return bytes.fromhex(raw[2:])


def _json(value: Any) -> web.Response:
    return web.Response(body=msgspec.json.encode(value), content_type="application/json")


def query_routes(gateway: Gateway) -> list[Route]:
    """The read routes of ``gateway`` (its node answers them)."""
    from rollbook.gateway import server as s

    node = gateway.node

    async def info(request: web.Request) -> web.StreamResponse:
        _query(request, {})
        status = await node.status()
        domain = node.domain
        if domain is None:
            raise ApiError(GatewayCode.NODE_UNAVAILABLE, "not started")
        markets = await node.markets()
        return _json({
            "domain": DomainOut(DOMAIN_NAME, DOMAIN_VERSION, domain.chain_id,
                                "0x" + domain.verifying_contract.hex()),
            "collateral_decimals": COLLATERAL_DECIMALS,
            "status": jsonable(status),
            "markets": jsonable(markets),
        })

    async def status(request: web.Request) -> web.StreamResponse:
        _query(request, {})
        return _json(jsonable(await node.status()))

    async def markets(request: web.Request) -> web.StreamResponse:
        _query(request, {})
        return _json(jsonable(await node.markets()))

    async def market_id_of(request: web.Request) -> int:
        market_id = _uint_param(request.match_info["market_id"], "market_id", 0, 0xFFFF)
        await gateway.check_market(market_id)
        return market_id

    async def book(request: web.Request) -> web.StreamResponse:
        params = _query(request, {"depth": (s.BOOK_DEPTH_DEFAULT, 1, s.BOOK_DEPTH_MAX)})
        market_id = await market_id_of(request)
        return _json(jsonable(await node.book(market_id, params["depth"])))

    async def trades(request: web.Request) -> web.StreamResponse:
        params = _query(request, {"limit": (s.TRADES_LIMIT_DEFAULT, 1, s.TRADES_LIMIT_MAX)})
        market_id = await market_id_of(request)
        return _json(jsonable(await node.trades(market_id, params["limit"])))

    async def account(request: web.Request) -> web.StreamResponse:
        _query(request, {})
        owner = _owner(request.match_info["owner"])
        subaccount = _uint_param(request.match_info["subaccount"], "subaccount", 0,
                                 s.SUBACCOUNT_MAX)
        view = await node.account(owner, subaccount)
        if view is None:
            raise ApiError(GatewayCode.UNKNOWN_ACCOUNT,
                           f"{request.match_info['owner']}/{subaccount}")
        return _json(jsonable(view))

    async def account_risk(request: web.Request) -> web.StreamResponse:
        _query(request, {})
        owner = _owner(request.match_info["owner"])
        subaccount = _uint_param(request.match_info["subaccount"], "subaccount", 0,
                                 s.SUBACCOUNT_MAX)
        view = await node.account_risk(owner, subaccount)
        if view is None:
            raise ApiError(GatewayCode.UNKNOWN_ACCOUNT,
                           f"{request.match_info['owner']}/{subaccount}")
        return _json(jsonable(view))

    async def batches(request: web.Request) -> web.StreamResponse:
        params = _query(request, {"start": (-1, 0, s.INDEX_MAX),
                                  "limit": (s.BATCHES_LIMIT_DEFAULT, 1, s.BATCHES_LIMIT_MAX)})
        start = None if params["start"] < 0 else params["start"]
        return _json(jsonable(node.batches(start, params["limit"])))

    async def batch(request: web.Request) -> web.StreamResponse:
        _query(request, {})
        index = _uint_param(request.match_info["index"], "index", 0, s.INDEX_MAX)
        view = node.batch(index)
        if view is None:
            raise ApiError(GatewayCode.UNKNOWN_BATCH, str(index))
        return _json(jsonable(view))

    async def withdrawal_proof(request: web.Request) -> web.StreamResponse:
        _query(request, {})
        withdrawal_id = _uint_param(request.match_info["withdrawal_id"], "withdrawal_id", 1,
                                    s.INDEX_MAX)
        claim = node.withdrawal_claim(withdrawal_id)
        if claim is None:
            raise ApiError(GatewayCode.UNKNOWN_WITHDRAWAL, str(withdrawal_id))
        return _json(jsonable(claim))

    depth = s.Param("depth", "query", {"type": "integer", "minimum": 1,
                                       "maximum": s.BOOK_DEPTH_MAX,
                                       "default": s.BOOK_DEPTH_DEFAULT},
                    "price levels per side", required=False)
    limit_trades = s.Param("limit", "query", {"type": "integer", "minimum": 1,
                                              "maximum": s.TRADES_LIMIT_MAX,
                                              "default": s.TRADES_LIMIT_DEFAULT},
                           "most recent trades", required=False)
    start = s.Param("start", "query", {"type": "integer", "minimum": 0},
                    "first batch index (default: the most recent ones)", required=False)
    limit_batches = s.Param("limit", "query", {"type": "integer", "minimum": 1,
                                               "maximum": s.BATCHES_LIMIT_MAX,
                                               "default": s.BATCHES_LIMIT_DEFAULT},
                            "batches to return", required=False)
    index = s.Param("index", "path", {"type": "integer", "minimum": 0}, "batch index")
    withdrawal = s.Param("withdrawal_id", "path", {"type": "integer", "minimum": 1},
                         "withdrawal id (from the WithdrawalQueued event)")

    def get(path: str, op: str, summary: str,
            handler: Callable[[web.Request], Any], response: Any,
            params: tuple[s.Param, ...] = (), description: str = "") -> Route:
        return s.Route("GET", path, op, summary, "queries", handler, response=response,
                       params=params, statuses=s._QUERY_STATUSES, description=description)

    return [
        get("/v1/info", "info", "Venue info: signing domain, markets, node status", info,
            InfoOut, description=__doc__.split("\n\n")[-1].strip() if __doc__ else ""),
        get("/v1/status", "status", "Node status", status, StatusOut),
        get("/v1/markets", "markets", "Markets with their marks, open interest and funding",
            markets, list[MarketOut]),
        get("/v1/markets/{market_id}/book", "book", "L2 order book", book,
            BookOut, (s._MARKET_PARAM, depth)),
        get("/v1/markets/{market_id}/trades", "trades", "Recent trades", trades,
            list[TradeOut], (s._MARKET_PARAM, limit_trades)),
        get("/v1/accounts/{owner}/{subaccount}", "account",
            "Account state: collateral, positions, margin, open orders, recent fills", account,
            AccountOut, (s._OWNER_PARAM, s._SUBACCOUNT_PARAM)),
        get("/v1/accounts/{owner}/{subaccount}/risk", "accountRisk",
            "Account risk: Greeks per position, group and account; equity, initial and "
            "maintenance margin; per index in portfolio mode every scenario's loss and the "
            "worst one", account_risk, AccountRiskOut, (s._OWNER_PARAM, s._SUBACCOUNT_PARAM),
            description="Integers with units in their names: delta in nanounits of the "
                        "underlying, gamma in nanounits per USD, vega in quantums per vol "
                        "point, theta in quantums per day; margin in quantums (10^-6 USDC)."),
        get("/v1/batches", "batches", "Batches with their roots and L1 status", batches,
            list[BatchOut], (start, limit_batches)),
        get("/v1/batches/{index}", "batch", "One batch with its root and L1 status", batch,
            BatchOut, (index,)),
        get("/v1/withdrawals/{withdrawal_id}/proof", "withdrawalProof",
            "Merkle proof of a withdrawal leaf against the root of the batch that created it "
            "(claim on chain once that batch is final)", withdrawal_proof,
            WithdrawalProofOut, (withdrawal,)),
    ]


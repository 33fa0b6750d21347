"""End to end over real HTTP and WebSocket: the option actions and the risk view.

The node's configuration cannot list option classes yet (``rollbook.node.config`` has no
``[[option_classes]]``), so no option market can be listed on a local node: ``SetMmp`` and
``MassQuote`` are signed, admitted and sequenced, and the STF refuses them with
``OPTION_CLASS_UNKNOWN`` (their receipts prove they went all the way through).
``SetPortfolioMargin`` and ``/risk`` run on the BTC perpetual.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account

from live_venue import LiveVenue, serve_venue
from rollbook.client import ApiRefused, Client, Signer
from rollbook.execution.txs import Quote, Side
from rollbook.sequencer import MASS_QUOTE_QUOTES_MAX

BTC = 1
BTC_INDEX = 1
LOT_NANOUNITS = 100_000  # the default BTC-PERP lot


@pytest.fixture(scope="module")
def live() -> Iterator[LiveVenue]:
    yield from serve_venue()


@pytest.fixture(scope="module")
def traders(live: LiveVenue) -> Iterator[tuple[Client, Client]]:
    maker_account, taker_account = live.accounts()[1:3]
    live.fund(maker_account, taker_account, amount_usd=1_000_000)
    maker = Client(live.url, Signer.from_account(maker_account))
    taker = Client(live.url, Signer.from_account(taker_account))
    try:
        yield maker, taker
    finally:
        maker.close()
        taker.close()


def _refused_by_stf(refused: pytest.ExceptionInfo[ApiRefused], name: str) -> None:
    """Sequenced (an ack with a receipt), then refused by the state machine."""
    assert refused.value.status == 422 and refused.value.name == name
    ack = refused.value.ack
    assert ack is not None and not ack.ok and ack.name == name and ack.sequence > 0


def test_portfolio_margin_and_risk_view(traders: tuple[Client, Client]) -> None:
    maker, taker = traders
    assert maker.place_order(BTC, "sell", size_lots=100, price_ticks=1_000_100,
                             time_in_force="post_only").ok
    fill = taker.place_order(BTC, "buy", size_lots=100, price_ticks=1_000_100,
                             order_type="market", time_in_force="ioc")
    assert any(type(e).__name__ == "Fill" for e in fill.events)

    assert taker.signer is not None
    risk = taker.account_risk()
    assert risk.owner == "0x" + taker.signer.owner.hex()
    assert risk.portfolio_margin is False
    [cross] = risk.groups
    [position] = cross.positions
    assert (position.market_id, position.kind, position.size_lots) == (BTC, "perpetual", 100)
    assert position.option_type is None and position.strike_quantums is None
    assert position.greeks.delta_nanounits == 100 * LOT_NANOUNITS  # a perpetual's exposure
    assert position.greeks.vega_quantums_per_vol_point == 0
    assert position.initial_quantums is not None and position.initial_quantums > 0
    assert risk.greeks == cross.greeks
    assert risk.equity_quantums == taker.account().equity_quantums
    assert 0 < risk.maintenance_quantums <= risk.initial_quantums
    assert cross.portfolios == []

    ack = taker.set_portfolio_margin(True)
    assert ack.ok and ack.name == "OK"
    risk = taker.account_risk()
    assert risk.portfolio_margin is True
    [cross] = risk.groups
    assert cross.portfolio_margin is True
    assert cross.positions[0].initial_quantums is None  # the portfolio carries it
    [portfolio] = cross.portfolios
    assert portfolio.index_id == BTC_INDEX
    assert portfolio.worst_scenario is not None
    assert portfolio.worst_loss_quantums == max(0, max(portfolio.scenario_losses_quantums))
    assert portfolio.scenario_losses_quantums[portfolio.worst_scenario_index] \
        == portfolio.worst_loss_quantums
    assert portfolio.worst_scenario.move_ppm < 0  # a long loses when the index falls
    assert portfolio.greeks.delta_nanounits == 100 * LOT_NANOUNITS
    assert taker.set_portfolio_margin(False).ok
    assert taker.account_risk().portfolio_margin is False


def test_mmp_and_mass_quote_are_signed_admitted_and_sequenced(
        traders: tuple[Client, Client]) -> None:
    maker, _ = traders
    with pytest.raises(ApiRefused) as refused:
        maker.set_mmp(BTC_INDEX, 1_000, 5_000, quantity_limit_nanounits=10**9)
    _refused_by_stf(refused, "OPTION_CLASS_UNKNOWN")
    with pytest.raises(ApiRefused) as refused:
        maker.mass_quote(BTC_INDEX, [(BTC, "buy", 999_000, 1), Quote(BTC, Side.SELL, 1_001_000, 1)])
    _refused_by_stf(refused, "OPTION_CLASS_UNKNOWN")
    with pytest.raises(ApiRefused) as refused:
        maker.mass_quote(BTC_INDEX, [])  # pulling the ladder
    _refused_by_stf(refused, "OPTION_CLASS_UNKNOWN")
    # a quote in a market the venue does not have is refused at the door
    with pytest.raises(ApiRefused) as unknown:
        maker.mass_quote(BTC_INDEX, [(BTC, "buy", 999_000, 1), (77, "sell", 1, 1)])
    assert (unknown.value.status, unknown.value.name, unknown.value.ack) \
        == (404, "UNKNOWN_MARKET", None)


def test_agent_may_quote_but_not_change_the_margin_regime(
        live: LiveVenue, traders: tuple[Client, Client]) -> None:
    maker, _ = traders
    assert maker.signer is not None
    agent_key = Account.create()
    assert maker.register_agent(agent_key.address, int(time.time() * 1000) + 3_600_000).ok
    agent = Client(live.url, Signer.agent(agent_key, maker.signer.owner))
    try:
        with pytest.raises(ApiRefused) as refused:
            agent.set_mmp(BTC_INDEX, 1_000, 0, delta_limit_nanounits=5)
        _refused_by_stf(refused, "OPTION_CLASS_UNKNOWN")  # admitted: past the agent check
        assert refused.value.ack is not None
        assert refused.value.ack.signer == agent_key.address.lower()
        with pytest.raises(ApiRefused) as refused:
            agent.mass_quote(BTC_INDEX, [(BTC, "buy", 999_000, 1)])
        _refused_by_stf(refused, "OPTION_CLASS_UNKNOWN")
        with pytest.raises(ApiRefused) as denied:
            agent.set_portfolio_margin(True)
        assert (denied.value.status, denied.value.name, denied.value.ack) \
            == (403, "AGENT_NOT_PERMITTED", None)
    finally:
        agent.close()
        assert maker.revoke_agent(agent_key.address).ok


def test_websocket_order_entry_takes_the_new_actions(live: LiveVenue,
                                                     traders: tuple[Client, Client]) -> None:
    _, taker = traders
    quote = taker.mass_quote_action(BTC_INDEX, [(BTC, "sell", 1_002_000, 1)])
    replies = live.ws_exchange([json.dumps({"op": "order", "id": 1, "action": _plain(quote)}),
                                json.dumps({"op": "batch", "id": 2, "actions": [
                                    _plain(taker.mass_quote_action(BTC_INDEX, []))]})], 2)
    by_id = {reply["id"]: reply for reply in replies}
    assert by_id[1]["type"] == "result" and by_id[1]["status"] == 422
    assert by_id[1]["ack"]["name"] == "OPTION_CLASS_UNKNOWN"
    [result] = by_id[2]["results"]
    assert result["ack"]["name"] == "OPTION_CLASS_UNKNOWN"
    # and through the SDK's own WebSocket
    client = Client(live.url, taker.signer)
    try:
        client.connect_ws()
        assert client.set_portfolio_margin(False).ok
    finally:
        client.close()


def _plain(action: Any) -> Any:
    import msgspec

    return msgspec.to_builtins(action)


def _action(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "owner": "0x" + "11" * 20, "nonce": 1, "signature": "0x" + "00" * 65,
            **fields}


_QUOTE = {"market_id": BTC, "side": "buy", "price_ticks": 1, "size_lots": 1}


@pytest.mark.parametrize("path, body, code", [
    ("/v1/margin/portfolio", _action("set_portfolio_margin", enabled=1), "WRONG_TYPE"),
    ("/v1/margin/portfolio", _action("set_portfolio_margin", enabled=True, leverage=3),
     "UNKNOWN_FIELD"),
    ("/v1/margin/portfolio", _action("set_portfolio_margin"), "MISSING_FIELD"),
    ("/v1/margin/portfolio", _action("set_mmp", index_id=1, window_ms=1),
     "ACTION_TYPE_MISMATCH"),
    ("/v1/mmp", _action("set_mmp", index_id="1", window_ms=1), "WRONG_TYPE"),
    ("/v1/mmp", _action("set_mmp", index_id=1 << 32, window_ms=1), "INVALID_VALUE"),
    ("/v1/mmp", _action("set_mmp", index_id=1, window_ms=1, frozen_ms=-1), "INVALID_VALUE"),
    ("/v1/mmp", _action("set_mmp", index_id=1, window_ms=1, vega_limit_quantums=1.5),
     "WRONG_TYPE"),
    ("/v1/mmp", _action("set_mmp", index_id=1, window_ms=1, delta=1), "UNKNOWN_FIELD"),
    ("/v1/quotes/mass", _action("mass_quote", index_id=1, quotes={}), "WRONG_TYPE"),
    ("/v1/quotes/mass", _action("mass_quote", index_id=1, quotes=[{**_QUOTE, "tif": "gtc"}]),
     "UNKNOWN_FIELD"),
    ("/v1/quotes/mass", _action("mass_quote", index_id=1, quotes=[{**_QUOTE, "side": "up"}]),
     "INVALID_VALUE"),
    ("/v1/quotes/mass", _action("mass_quote", index_id=1, quotes=[{**_QUOTE, "size_lots": "1"}]),
     "WRONG_TYPE"),
    ("/v1/quotes/mass", _action("mass_quote", index_id=1,
                                quotes=[_QUOTE] * (MASS_QUOTE_QUOTES_MAX + 1)), "INVALID_VALUE"),
    ("/v1/quotes/mass", _action("mass_quote", quotes=[]), "MISSING_FIELD"),
    ("/v1/quotes/mass", _action("mass_quote", index_id=1, quotes=[],
                                signature="0x" + "00" * 64), "SIGNATURE_MALFORMED"),
])
def test_bad_input_gets_stable_codes(live: LiveVenue, path: str, body: dict[str, Any],
                                     code: str) -> None:
    status, answer = live.request("POST", path, json.dumps(body).encode())
    assert answer["error"]["name"] == code, answer
    assert status == answer["error"]["status"] and status == answer["status"]
    assert answer["ack"] is None


def test_a_batch_with_too_many_quotes_names_the_quotes(live: LiveVenue) -> None:
    mass = _action("mass_quote", index_id=1, quotes=[_QUOTE] * (MASS_QUOTE_QUOTES_MAX + 1))
    status, answer = live.request("POST", "/v1/orders/batch",
                                  json.dumps({"actions": [mass]}).encode())
    assert (status, answer["error"]["name"]) == (400, "INVALID_VALUE")
    assert "quotes" in answer["error"]["message"]


def test_risk_route_refusals(live: LiveVenue, traders: tuple[Client, Client]) -> None:
    nobody = "0x" + "42" * 20
    status, answer = live.request("GET", f"/v1/accounts/{nobody}/0/risk")
    assert (status, answer["error"]["name"]) == (404, "UNKNOWN_ACCOUNT")
    status, answer = live.request("GET", "/v1/accounts/0x12/0/risk")
    assert (status, answer["error"]["name"]) == (400, "INVALID_VALUE")
    status, answer = live.request("GET", f"/v1/accounts/{nobody}/65536/risk")
    assert (status, answer["error"]["name"]) == (400, "INVALID_VALUE")
    maker, _ = traders
    assert maker.signer is not None
    owner = "0x" + maker.signer.owner.hex()
    status, answer = live.request("GET", f"/v1/accounts/{owner}/0/risk?depth=1")
    assert (status, answer["error"]["name"]) == (400, "UNKNOWN_FIELD")
    status, answer = live.request("POST", f"/v1/accounts/{owner}/0/risk")
    assert (status, answer["error"]["name"]) == (405, "METHOD_NOT_ALLOWED")
    status, answer = live.request("GET", f"/v1/accounts/{owner}/0/risk")
    assert status == 200 and answer["owner"] == owner and "greeks" in answer


def test_openapi_documents_the_new_routes(traders: tuple[Client, Client]) -> None:
    document = traders[0].openapi()
    paths = document["paths"]
    for path in ("/v1/margin/portfolio", "/v1/mmp", "/v1/quotes/mass"):
        assert "post" in paths[path]
    assert "get" in paths["/v1/accounts/{owner}/{subaccount}/risk"]
    schemas = document["components"]["schemas"]
    assert {"SetPortfolioMarginAction", "SetMmpAction", "MassQuoteAction", "QuoteIn",
            "AccountRiskView", "GreeksView", "PortfolioRiskView"} <= set(schemas)

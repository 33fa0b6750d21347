"""Hostile and malformed requests: each refused with its status and stable code, none changing
state, none hurting the node (a valid order still goes through afterwards).

"State unchanged" is checked on what an attacker could touch: the victim's subaccount
(collateral, positions, open orders), the book, the admission nonces of the signers involved,
and the venue's id counters (orders, withdrawals).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from eth_account import Account

from live_venue import LiveVenue, serve_venue
from rollbook.execution.crypto import SECP256K1_N
from rollbook.execution.txs import CancelOrder, PlaceOrder, Side, TimeInForce
from rollbook.gateway import Gateway, GatewayConfig
from rollbook.gateway.actions import from_signed
from rollbook.sequencer.eip712 import Eip712Domain
from rollbook.sequencer.limits import RateLimit
from rollbook.sequencer.signatures import sign_action

BTC = 1
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def live() -> Iterator[LiveVenue]:
    yield from serve_venue()


class Attack:
    def __init__(self, live: LiveVenue) -> None:
        self.live = live
        self.victim = live.accounts()[4]
        self.key = bytes(self.victim.key)
        self.owner = bytes.fromhex(self.victim.address[2:])
        assert live.node.domain is not None
        self.domain = live.node.domain
        self.nonce = int(time.time() * 1000)

    def next_nonce(self) -> int:
        self.nonce += 1
        return self.nonce

    def order(self, **changes: Any) -> PlaceOrder:
        fields: dict[str, Any] = {"owner": self.owner, "subaccount": 0, "market_id": BTC,
                                  "side": Side.BUY, "price_ticks": 990_000, "size_lots": 10,
                                  "time_in_force": TimeInForce.POST_ONLY}
        fields.update(changes)
        return PlaceOrder(**fields)

    def signed(self, action: Any = None, key: bytes | None = None,
               domain: Eip712Domain | None = None, nonce: int | None = None) -> dict[str, Any]:
        signed = sign_action(key or self.key, domain or self.domain,
                             action if action is not None else self.order(),
                             nonce if nonce is not None else self.next_nonce())
        body: dict[str, Any] = msgspec.to_builtins(from_signed(signed))
        return body

    def fingerprint(self) -> Any:
        state, _, admission = self.live.node.snapshot_state()
        sub = state.subaccounts.get((self.owner, 0))
        book = state.markets[BTC].book
        return (
            None if sub is None else (
                [g.collateral_quantums for g in sub.groups()],
                sorted((p.market_id, p.size_lots) for g in sub.groups()
                       for p in g.positions.values()),
                sorted(sub.orders)),
            sorted(book.bids), sorted(book.asks),
            admission.nonces_of(self.owner),
            state.next_order_id, state.next_withdrawal_id,
        )


@pytest.fixture(scope="module")
def attack(live: LiveVenue) -> Iterator[Attack]:
    attacker = Attack(live)
    live.fund(attacker.victim, amount_usd=100_000)
    yield attacker


def _post(live: LiveVenue, path: str, body: Any) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return live.request("POST", path, raw, JSON)


def _code(answer: Any) -> tuple[int, str]:
    error = answer["error"]
    return error["code"], error["name"]


def _high_s(signature_hex: str) -> str:
    raw = bytes.fromhex(signature_hex[2:])
    s = int.from_bytes(raw[32:64], "big")
    # s -> n - s is the other valid signature of the same digest, with the parity of v flipped
    flipped = raw[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - raw[64]])
    return "0x" + flipped.hex()


def _mutate(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(body)
    for key, value in changes.items():
        if value is _DROP:
            out.pop(key)
        else:
            out[key] = value
    return out


_DROP = object()


def _cases(a: Attack) -> list[tuple[str, str, Any, int, int]]:
    """(name, path, body, expected status, expected code)."""
    good = a.signed()
    wrong_chain = Eip712Domain(a.domain.chain_id + 1, a.domain.verifying_contract)
    wrong_contract = Eip712Domain(a.domain.chain_id, bytes(19) + b"\x01")
    stranger = bytes(Account.create().key)
    return [
        ("malformed json", "/v1/orders", b'{"type": "place_order",', 400, 200),
        ("empty body", "/v1/orders", b"", 400, 200),
        ("not utf-8", "/v1/orders", b"\xff\xfe{}", 400, 200),
        ("deeply nested", "/v1/actions", b"[" * 100_00 + b"]" * 100_00, 400, 201),
        ("array, not object", "/v1/orders", [], 400, 201),
        ("string for integer", "/v1/orders", _mutate(good, price_ticks="990000"), 400, 201),
        ("float for integer", "/v1/orders", _mutate(good, size_lots=10.0), 400, 201),
        ("int for bool", "/v1/orders", _mutate(good, reduce_only=1), 400, 201),
        ("unknown field", "/v1/orders", _mutate(good, leverage=100), 400, 202),
        ("missing signature", "/v1/orders", _mutate(good, signature=_DROP), 400, 203),
        ("negative size", "/v1/orders", _mutate(good, size_lots=-5), 400, 204),
        ("unknown side", "/v1/orders", _mutate(good, side="up"), 400, 204),
        ("bad address", "/v1/orders", _mutate(good, owner="0x1234"), 400, 204),
        # Python's ``$`` matches before a final newline, which ``bytes.fromhex`` would skip
        ("newline after the address", "/v1/orders", _mutate(good, owner=good["owner"] + "\n"),
         400, 204),
        ("newline after the signature", "/v1/orders",
         _mutate(good, signature=good["signature"] + "\n"), 401, 110),
        ("integer past 64 bits", "/v1/orders", _mutate(good, price_ticks=1 << 70), 400, 101),
        ("a 5000-digit integer", "/v1/orders", b'{"price_ticks": 1' + b"0" * 5000 + b"}",
         400, 204),
        ("uint64 overflow", "/v1/orders", a.signed(a.order()) | {"price_ticks": 1 << 64},
         400, 101),
        ("unknown action type", "/v1/actions", _mutate(good, type="mint_money"), 400, 204),
        ("wrong route for type", "/v1/orders",
         a.signed(CancelOrder(a.owner, 0, 1)), 400, 211),
        ("unknown market", "/v1/orders", a.signed(a.order(market_id=999)), 404, 207),
        ("high-s signature", "/v1/orders",
         _mutate(good, signature=_high_s(good["signature"])), 401, 112),
        ("bad v", "/v1/orders",
         _mutate(good, signature=good["signature"][:-2] + "1d"), 401, 111),
        ("short signature", "/v1/orders",
         _mutate(good, signature=good["signature"][:-2]), 401, 110),
        ("zero r", "/v1/orders",
         _mutate(good, signature="0x" + "00" * 32 + good["signature"][66:]), 401, 113),
        ("wrong chain id in the domain", "/v1/orders", a.signed(domain=wrong_chain), 401, 120),
        ("wrong contract in the domain", "/v1/orders", a.signed(domain=wrong_contract),
         401, 120),
        ("altered field after signing", "/v1/orders", _mutate(a.signed(), size_lots=11),
         401, 120),
        ("someone else's key", "/v1/orders", a.signed(key=stranger), 401, 120),
        ("nonce a week ahead", "/v1/orders",
         a.signed(nonce=a.nonce + 7 * 86_400_000), 400, 133),
        ("nonce from the epoch", "/v1/orders", a.signed(nonce=1), 400, 132),
        ("huge payload", "/v1/orders", b'{"pad": "' + b"x" * (1 << 20) + b'"}', 413, 140),
        ("too many actions", "/v1/orders/batch", {"actions": [good] * 65}, 413, 140),
        ("query parameter on an action", "/v1/orders?x=1", good, 400, 202),
    ]


def test_hostile_http_requests_are_refused_without_changing_state(attack: Attack) -> None:
    live = attack.live
    cases = _cases(attack)
    before = attack.fingerprint()
    for name, path, body, status, code in cases:
        got_status, answer = _post(live, path, body)
        assert got_status == status, (name, answer)
        assert isinstance(answer, dict) and "error" in answer, (name, answer)
        assert _code(answer)[0] == code, (name, answer)
        assert answer["error"]["message"], name
        if "ack" in answer:
            assert answer["ack"] is None, name  # refused at the door: nothing sequenced
    assert attack.fingerprint() == before
    # the node is unharmed: a valid order from the same key still goes through
    status, answer = _post(live, "/v1/orders", attack.signed())
    assert status == 200 and answer["ack"]["ok"], answer


def test_replayed_nonce_is_refused(attack: Attack) -> None:
    live = attack.live
    body = attack.signed(attack.order(price_ticks=980_000))
    status, first = _post(live, "/v1/orders", body)
    assert status == 200 and first["ack"]["ok"]
    before = attack.fingerprint()
    for path in ("/v1/orders", "/v1/actions"):
        status, again = _post(live, path, body)
        assert (status, _code(again)) == (409, (130, "NONCE_USED"))
    # the same nonce on a different action is refused too (the nonce is marked, not the
    # signature)
    other = attack.signed(attack.order(price_ticks=980_001), nonce=body["nonce"])
    status, answer = _post(live, "/v1/orders", other)
    assert (status, _code(answer)) == (409, (130, "NONCE_USED"))
    assert attack.fingerprint() == before


def test_hostile_queries(live: LiveVenue, attack: Attack) -> None:
    owner = "0x" + attack.owner.hex()
    for path, status, code in [
        ("/v1/nowhere", 404, 205),
        ("/v1/markets/999/book", 404, 207),
        ("/v1/markets/abc/book", 400, 204),
        ("/v1/markets/1/book?depth=0", 400, 204),
        ("/v1/markets/1/book?depth=1e3", 400, 204),
        ("/v1/markets/1/book?depth=5&depth=6", 400, 204),
        ("/v1/markets/1/book?side=bid", 400, 202),
        ("/v1/accounts/0x1234/0", 400, 204),
        (f"/v1/accounts/{owner}%0A/0", 400, 204),  # a final newline: ``$`` alone would pass it
        (f"/v1/accounts/{owner}/0%0A", 400, 204),
        ("/v1/markets/1/book?depth=5%0A", 400, 204),
        (f"/v1/accounts/{owner}/70000", 400, 204),
        ("/v1/accounts/0x" + "ab" * 20 + "/0", 404, 208),
        ("/v1/withdrawals/999999/proof", 404, 209),
        ("/v1/batches/999999999", 404, 210),
    ]:
        got, answer = live.request("GET", path)
        assert (got, answer["error"]["code"]) == (status, code), (path, answer)
    got, answer = live.request("GET", "/v1/orders")
    assert (got, answer["error"]["code"]) == (405, 206)


def test_hostile_websocket_messages(live: LiveVenue, attack: Attack) -> None:
    before = attack.fingerprint()
    good = attack.signed()
    high_s = _mutate(good, signature=_high_s(good["signature"]))
    replies = live.ws_exchange([
        b"{not json",
        json.dumps({"op": "launch", "id": 1}),
        json.dumps({"op": "order", "id": 2, "action": high_s}),
        json.dumps({"op": "order", "id": 3, "action": _mutate(good, size_lots="ten")}),
        json.dumps({"op": "subscribe", "id": 4, "channel": "book", "market_id": 999}),
        json.dumps({"op": "subscribe", "id": 5, "channel": "book"}),
        json.dumps({"op": "batch", "id": 6, "actions": [good] * 65}),
        json.dumps({"op": "ping", "id": 7, "extra": True}),
        b'{"op": "ping", "id": 8, "pad": "' + b"x" * (100 << 10) + b'"}',
        json.dumps({"op": "ping", "id": 9}),
    ], replies=10)
    by_id = {r.get("id"): r for r in replies}
    errors_without_id = [r for r in replies if r.get("id") is None]
    assert [(r["status"], r["error"]["code"]) for r in errors_without_id] == [(400, 200),
                                                                               (413, 140)]
    assert (by_id[1]["status"], by_id[1]["error"]["code"]) == (400, 204)
    assert by_id[2]["type"] == "result" and by_id[2]["error"]["code"] == 112
    assert by_id[2]["ack"] is None
    assert (by_id[3]["type"], by_id[3]["error"]["code"]) == ("error", 201)
    assert (by_id[4]["status"], by_id[4]["error"]["code"]) == (404, 207)
    assert by_id[5]["error"]["code"] == 203
    assert (by_id[6]["status"], by_id[6]["error"]["code"]) == (413, 140)
    assert by_id[7]["error"]["code"] == 202
    assert by_id[9] == {"type": "pong", "id": 9}  # still connected and serving
    # past the hard limit the connection is closed (1009: message too big)
    [closed] = live.ws_exchange([b"x" * (300 << 10)], replies=1)
    assert closed == {"closed": 1009}
    assert attack.fingerprint() == before


def test_rate_limit(live: LiveVenue, attack: Attack) -> None:
    tight = Gateway(live.node, GatewayConfig(port=0, rate_limit=RateLimit(
        burst_tokens=4, refill_tokens_per_s=1)))
    live.run(tight.start())
    try:
        statuses = []
        for _ in range(4):
            body = json.dumps(attack.signed(attack.order(price_ticks=970_000))).encode()
            status, answer = live.run(_raw_post(tight.url + "/v1/orders", body))
            statuses.append((status, answer["error"]["code"] if answer.get("error") else 0))
        assert statuses[:2] == [(200, 0), (200, 0)]  # an order costs 2 tokens
        assert statuses[2:] == [(429, 141), (429, 141)]
    finally:
        live.run(tight.stop())


async def _raw_post(url: str, body: bytes) -> tuple[int, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.post(url, data=body,
                                                                headers=JSON) as response:
        return response.status, await response.json()

"""WebSocket end to end: order entry with acks carrying the request id, and subscriptions
(book snapshot + consecutive deltas that rebuild the REST book, trades, the user's account
events, batch events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import msgspec
import pytest

from live_venue import LiveVenue, serve_venue
from rollbook.client import AsyncClient, Signer
from rollbook.gateway.server import _text_frame

BTC = 1


@pytest.fixture(scope="module")
def live() -> Iterator[LiveVenue]:
    yield from serve_venue()


async def _collect(ws: aiohttp.ClientWebSocketResponse, until: Any,
                   timeout_s: float = 15.0) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout_s):
            while not until(seen):
                message = await ws.receive()
                assert message.type == aiohttp.WSMsgType.TEXT, message
                seen.append(json.loads(message.data))
    except TimeoutError:
        raise AssertionError(f"timed out; seen: {seen}") from None
    return seen


async def _send(ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]) -> None:
    await ws.send_str(msgspec.json.encode(message).decode())


def test_order_entry_and_subscriptions(live: LiveVenue) -> None:
    maker_account, taker_account = live.accounts()[5:7]
    live.fund(maker_account, taker_account)

    async def scenario() -> None:
        async with AsyncClient(live.url, Signer.from_account(maker_account)) as maker, \
                AsyncClient(live.url, Signer.from_account(taker_account)) as taker, \
                aiohttp.ClientSession() as session, \
                session.ws_connect(live.ws_url) as ws:
            owner = maker_account.address.lower()
            for i, sub in enumerate([{"channel": "book", "market_id": BTC},
                                     {"channel": "trades", "market_id": BTC},
                                     {"channel": "account", "owner": maker_account.address},
                                     {"channel": "batches"}], start=1):
                await _send(ws, {"op": "subscribe", "id": f"s{i}", **sub})
            first = await _collect(ws, lambda seen: sum(
                1 for m in seen if m["type"] == "subscribed") == 4 and any(
                m.get("kind") == "book_snapshot" for m in seen))
            topics = {m["topic"] for m in first if m["type"] == "subscribed"}
            assert topics == {"book:1", "trades:1", f"account:{owner}", "batches"}
            snapshot = next(m for m in first if m.get("kind") == "book_snapshot")["data"]
            book = {("bids", level[0]): level[1] for level in snapshot["bids"]}
            book.update({("asks", level[0]): level[1] for level in snapshot["asks"]})
            sequence = snapshot["sequence"]

            # order entry over the same socket: acks carry the request ids
            signed = [maker.place_order_action(BTC, side, size_lots=100, price_ticks=price,
                                               time_in_force="post_only")
                      for side, price in (("buy", 999_000), ("sell", 1_001_000))]
            await _send(ws, {"op": "order", "id": "o1", "action": signed[0]})
            await _send(ws, {"op": "batch", "id": 77, "actions": [signed[1]]})
            await _send(ws, {"op": "ping", "id": "p"})
            # the maker's quotes are acknowledged (durable) before the taker trades into them
            seen = await _collect(ws, lambda seen: any(m.get("id") == "o1" for m in seen)
                                  and any(m.get("id") == 77 for m in seen))
            taker_ack = await taker.place_order(BTC, "buy", size_lots=40,
                                                price_ticks=1_001_000,
                                                order_type="market", time_in_force="ioc")
            assert taker_ack.ok
            seen += await _collect(ws, lambda more: (
                any(m.get("kind") == "trade" for m in more)
                and any(m.get("kind") == "account" and m["data"]["kind"] == "fill"
                        for m in more)
                and any(m.get("kind") == "batch" for m in more)))
            result = next(m for m in seen if m.get("id") == "o1")
            assert (result["type"], result["status"], result["ack"]["ok"]) == ("result", 200,
                                                                              True)
            batch_result = next(m for m in seen if m.get("id") == 77)
            assert batch_result["type"] == "results"
            assert [r["status"] for r in batch_result["results"]] == [200]
            assert any(m == {"type": "pong", "id": "p"} for m in seen)
            trade = next(m for m in seen if m.get("kind") == "trade")["data"]
            assert (trade["price_ticks"], trade["size_lots"], trade["taker_is_buy"]) == (
                1_001_000, 40, True)
            account_kinds = [m["data"]["kind"] for m in seen if m.get("kind") == "account"]
            assert "order_placed" in account_kinds and "fill" in account_kinds
            batch = next(m for m in seen if m.get("kind") == "batch")["data"]
            assert batch["status"] in ("pending", "submitted", "final")
            assert len(batch["root"]) == 66

            # the deltas, applied in sequence, rebuild the book REST serves
            for message in seen:
                if message.get("kind") != "book_delta":
                    continue
                delta = message["data"]
                assert delta["sequence"] == sequence + 1, "deltas are consecutive"
                sequence = delta["sequence"]
                for side in ("bids", "asks"):
                    for price, size in delta[side]:
                        if size:
                            book[(side, price)] = size
                        else:
                            book.pop((side, price), None)
            rest = await maker.book(BTC, depth=1_000)
            if rest.sequence == sequence:  # no change since the last delta we read
                expected = {("bids", level[0]): level[1] for level in rest.bids}
                expected.update({("asks", level[0]): level[1] for level in rest.asks})
                assert book == expected
            assert book[("bids", 999_000)] == 100 and book[("asks", 1_001_000)] == 60

            await _send(ws, {"op": "unsubscribe", "id": "u", "topic": "book:1"})
            seen = await _collect(ws, lambda seen: any(m.get("id") == "u" for m in seen))
            assert seen[-1] == {"type": "unsubscribed", "id": "u", "topic": "book:1",
                                "reason": "requested"}
            await maker.cancel_all()

    live.run(scenario())


def test_single_orders_sent_together_are_each_answered(live: LiveVenue) -> None:
    """Single ``order`` messages read together go to the node as one submission (the gateway
    coalesces them); each still gets its own ``result`` with its own ack or refusal, and a
    message of another kind keeps its place after them."""
    (account,) = live.accounts()[7:8]
    live.fund(account)

    async def scenario() -> None:
        async with AsyncClient(live.url, Signer.from_account(account)) as client, \
                aiohttp.ClientSession() as session, \
                session.ws_connect(live.ws_url) as ws:
            signed = [client.place_order_action(BTC, "buy", size_lots=1,
                                                price_ticks=900_000 + i,
                                                time_in_force="post_only")
                      for i in range(24)]
            unknown_market = msgspec.structs.replace(
                client.place_order_action(BTC, "buy", size_lots=1, price_ticks=900_100),
                market_id=999)
            frames = [msgspec.json.encode({"op": "order", "id": i, "action": action})
                      for i, action in enumerate(signed)]
            frames.insert(10, msgspec.json.encode(
                {"op": "order", "id": "refused", "action": unknown_market}))
            frames.append(msgspec.json.encode({"op": "ping", "id": "p"}))
            for frame in frames:  # no await between them beyond the writes
                await ws.send_bytes(frame)
            seen = await _collect(ws, lambda seen: len(seen) == len(frames))
            answers = {m["id"]: m for m in seen}
            assert len(answers) == len(frames), "one answer per message"
            assert answers["p"] == {"type": "pong", "id": "p"}
            refused = answers["refused"]
            assert (refused["type"], refused["ack"]) == ("result", None)
            assert refused["error"]["name"] == "UNKNOWN_MARKET"
            acks = [answers[i] for i in range(len(signed))]
            assert all((a["type"], a["status"], a["ack"]["ok"]) == ("result", 200, True)
                       for a in acks)
            sequences = [a["ack"]["sequence"] for a in acks]
            assert len(set(sequences)) == len(sequences)
            await client.cancel_all()

    live.run(scenario())


@pytest.mark.parametrize("length", [0, 125, 126, 65_535, 65_536, 200_000])
def test_coalesced_writes_frame_each_message_as_rfc_6455_says(length: int) -> None:
    """The writer frames queued messages itself when it writes several at once: a final text
    frame, unmasked, with the 7-bit, 16-bit or 64-bit length form (RFC 6455 section 5.2)."""
    payload = bytes(range(256)) * (length // 256) + bytes(length % 256)
    frame = _text_frame(payload)
    assert frame[0] == 0x81  # FIN, opcode 1
    assert frame[1] & 0x80 == 0  # a server never masks
    if length < 126:
        header, declared = 2, frame[1]
    elif length < 1 << 16:
        assert frame[1] == 126
        header, declared = 4, int.from_bytes(frame[2:4], "big")
    else:
        assert frame[1] == 127
        header, declared = 10, int.from_bytes(frame[2:10], "big")
    assert declared == length and frame[header:] == payload

"""The SDK's stream survives its server: it reconnects with backoff, resubscribes, and rebuilds
the book from a fresh snapshot; a sequence gap or a lag notice resynchronises the book."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from live_venue import LiveVenue, serve_venue
from rollbook.client import AsyncClient, L2Book, Signer, Stream
from rollbook.gateway import Gateway, GatewayConfig

BTC = 1


@pytest.fixture(scope="module")
def live() -> Iterator[LiveVenue]:
    yield from serve_venue()


def test_reconnects_and_resumes_the_book_from_a_fresh_snapshot(live: LiveVenue) -> None:
    maker_account = live.accounts()[7]
    live.fund(maker_account)

    async def scenario() -> None:
        first = Gateway(live.node, GatewayConfig(port=0))
        await first.start()
        port = first.port
        url = first.url
        async with AsyncClient(url, Signer.from_account(maker_account)) as maker:
            stream = maker.stream({"channel": "book", "market_id": BTC},
                                  backoff_first_s=0.02, backoff_max_s=0.2)
            updates = stream.__aiter__()

            async def next_kind(kind: str) -> Any:
                async with asyncio.timeout(15):
                    while True:
                        update = await updates.__anext__()
                        if update.kind == kind:
                            return update

            await next_kind("book_snapshot")
            await maker.place_order(BTC, "buy", size_lots=7, price_ticks=998_000,
                                    time_in_force="post_only")
            await next_kind("book_delta")
            assert stream.books[BTC].bids.get(998_000) == 7

            await first.stop()  # the server goes away; the stream keeps trying
            await asyncio.sleep(0.3)
            second = Gateway(live.node, GatewayConfig(port=port))
            await second.start()
            try:
                # a change made while the stream was away arrives in the fresh snapshot
                await maker.place_order(BTC, "buy", size_lots=3, price_ticks=997_000,
                                        time_in_force="post_only")
                snapshot = await next_kind("book_snapshot")
                assert stream.reconnects >= 1
                book = stream.books[BTC]
                assert book.sequence == snapshot.data.sequence
                rest = await maker.book(BTC, depth=1_000)
                if rest.sequence == book.sequence:
                    assert book.bids == {level[0]: level[1] for level in rest.bids}
                assert book.bids.get(998_000) == 7 and book.bids.get(997_000) == 3
                await maker.cancel_all()
                await next_kind("book_delta")
            finally:
                await stream.close()
                await second.stop()

    live.run(scenario())


class _Recorder(Stream):
    """A stream whose sends are recorded instead of written to a socket."""

    def __init__(self) -> None:
        client = AsyncClient("http://127.0.0.1:9")
        super().__init__(client, [{"channel": "book", "market_id": BTC}], 0.01, 0.1)
        self.sent: list[dict[str, Any]] = []

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


def _update(kind: str, sequence: int, bids: list[list[int]]) -> dict[str, Any]:
    data = {"market_id": BTC, "sequence": sequence, "batch_index": 1, "bids": bids,
            "asks": []}
    if kind == "book_snapshot":
        data["bids"] = [[p, s, 1] for p, s in bids]
    return {"type": "update", "topic": "book:1", "kind": kind, "data": data}


def test_a_sequence_gap_resubscribes_instead_of_applying() -> None:
    async def scenario() -> None:
        stream = _Recorder()
        assert await stream._handle(_update("book_snapshot", 5, [[100, 1]])) is not None
        assert await stream._handle(_update("book_delta", 6, [[101, 2]])) is not None
        assert stream.books[BTC].bids == {100: 1, 101: 2}
        assert await stream._handle(_update("book_delta", 8, [[102, 3]])) is None  # 7 lost
        assert stream.books[BTC].bids == {100: 1, 101: 2} and stream.books[BTC].sequence == -1
        assert [m["op"] for m in stream.sent] == ["unsubscribe", "subscribe"]
        assert await stream._handle(_update("book_delta", 9, [[103, 1]])) is None  # waits
        await stream._handle(_update("book_snapshot", 9, [[100, 1], [102, 3]]))
        assert stream.books[BTC].bids == {100: 1, 102: 3}
        await stream._handle({"type": "unsubscribed", "id": None, "topic": "book:1",
                              "reason": "lagged"})
        assert [m["op"] for m in stream.sent][-2:] == ["unsubscribe", "subscribe"]
        assert stream.resyncs == 2

    asyncio.run(scenario())


def test_l2_book_levels() -> None:
    book = L2Book(BTC)
    book.sequence = 0
    assert book.apply(_Delta(1, [(10, 5), (11, 2)], [(12, 1)]))
    assert book.apply(_Delta(2, [(11, 0)], []))
    assert not book.apply(_Delta(4, [(9, 9)], []))
    assert (book.best_bid(), book.best_ask()) == (10, 12)
    assert book.levels(1) == ([(10, 5)], [(12, 1)])


class _Delta:
    def __init__(self, sequence: int, bids: list[tuple[int, int]],
                 asks: list[tuple[int, int]]) -> None:
        self.sequence, self.bids, self.asks = sequence, bids, asks

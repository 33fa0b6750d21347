"""End to end over real HTTP: a funded trader uses every endpoint through the blocking SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from eth_account import Account

from live_venue import USDC, LiveVenue, serve_venue
from rollbook.client import ApiRefused, Client, Signer

BTC = 1


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


def _wait(predicate: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


def test_info_and_markets(live: LiveVenue, traders: tuple[Client, Client]) -> None:
    maker, _ = traders
    info = maker.info()
    assert live.node.domain is not None
    assert info.domain.chain_id == live.node.domain.chain_id
    assert info.domain.verifying_contract == "0x" + live.node.domain.verifying_contract.hex()
    assert info.collateral_decimals == 6
    [market] = maker.market_list()
    assert (market.market_id, market.symbol, market.kind) == (BTC, "BTC-PERP", "perpetual")
    assert market.mark_price_quantums == 100_000 * USDC
    assert maker.status().running is True


def test_order_lifecycle_book_trades_account(traders: tuple[Client, Client]) -> None:
    maker, taker = traders
    maker.cancel_all()
    # a buy at 99,950.07 rounds down to the tick, a sell at 100,050.01 up
    bid = maker.place_order(BTC, "buy", "0.05", "99950.07", client_order_id=11)
    ask = maker.place_order(BTC, "sell", "0.05", "100050.01", client_order_id=12)
    assert bid.ok and ask.ok and bid.order_id and ask.order_id
    placed = bid.events[0]
    assert (placed.price_ticks, placed.size_lots) == (999_500, 500)
    assert ask.events[0].price_ticks == 1_000_501
    book = maker.book(BTC, depth=5)
    assert (999_500, 500, 1) in [tuple(level) for level in book.bids]
    assert (1_000_501, 500, 1) in [tuple(level) for level in book.asks]

    fill = taker.place_order(BTC, "buy", "0.01", "100100", order_type="market",
                             time_in_force="ioc")
    assert any(type(e).__name__ == "Fill" for e in fill.events)
    trades = taker.trades(BTC, limit=10)
    assert trades and trades[-1].price_ticks == 1_000_501 and trades[-1].size_lots == 100

    account = taker.account()
    [cross] = account.groups
    [position] = cross.positions
    assert position.size_lots == 100 and position.market_id == BTC
    assert any(f.size_lots == 100 for f in account.recent_fills)
    maker_view = maker.account()
    assert {o.client_order_id for o in maker_view.open_orders} >= {11, 12}

    modified = maker.modify_order(bid.order_id, BTC, "buy", "0.02", "99960")
    assert modified.ok and modified.order_id and modified.order_id != bid.order_id
    by_client = maker.cancel_by_client_id(12)
    assert by_client.ok
    cancelled = maker.cancel_order(modified.order_id)
    assert cancelled.ok
    assert maker.account().open_orders == []


def test_batch_of_orders_and_cancel_all(traders: tuple[Client, Client]) -> None:
    maker, _ = traders
    actions = [maker.place_order_action(BTC, "buy", size_lots=10, price_ticks=990_000 + i,
                                        time_in_force="post_only") for i in range(10)]
    results = maker.submit_batch(actions)
    assert [r.status for r in results] == [200] * 10
    assert len(maker.account().open_orders) == 10
    ack = maker.cancel_all(BTC)
    assert sum(1 for e in ack.events if type(e).__name__ == "OrderCancelled") == 10
    assert maker.account().open_orders == []


def test_stf_refusal_is_422_with_the_ack(traders: tuple[Client, Client]) -> None:
    maker, _ = traders
    with pytest.raises(ApiRefused) as refused:
        maker.cancel_order(987_654_321)
    assert (refused.value.status, refused.value.name) == (422, "ORDER_NOT_FOUND")
    assert refused.value.ack is not None and refused.value.ack.ok is False  # nonce used


def test_transfer_and_withdraw_with_proof(live: LiveVenue,
                                          traders: tuple[Client, Client]) -> None:
    maker, taker = traders
    assert maker.signer is not None and taker.signer is not None
    before = taker.account().groups[0].collateral_quantums
    maker.transfer(taker.signer.owner, "10.5")
    assert taker.account().groups[0].collateral_quantums == before + 10_500_000
    ack = taker.withdraw(5)
    [queued] = [e for e in ack.events if type(e).__name__ == "WithdrawalQueued"]
    assert queued.amount_quantums == 5 * USDC
    _wait(lambda: live.node.withdrawal_claim(queued.withdrawal_id) is not None)
    proof = taker.withdrawal_proof(queued.withdrawal_id)
    assert proof.batch_index == ack.batch_index
    assert len(proof.proof.siblings) == 32
    batch = taker.batch(ack.batch_index)
    assert batch.root == proof.proof.root
    assert batch.status in ("pending", "submitted", "final")
    recent = taker.batches(limit=5)
    assert recent and all(b.index <= taker.status().batch_index for b in recent)


def test_agent_key_trades_but_never_withdraws(live: LiveVenue,
                                              traders: tuple[Client, Client]) -> None:
    maker, _ = traders
    assert maker.signer is not None
    agent_key = Account.create()
    expiry_ms = int(time.time() * 1000) + 3_600_000
    assert maker.register_agent(agent_key.address, expiry_ms).ok
    agent = Client(live.url, Signer.agent(agent_key, maker.signer.owner))
    try:
        placed = agent.place_order(BTC, "buy", "0.01", "99000", time_in_force="post_only")
        assert placed.ok and placed.signer == agent_key.address.lower()
        with pytest.raises(ApiRefused) as refused:
            agent.withdraw(1)
        assert (refused.value.status, refused.value.name) == (403, "AGENT_NOT_PERMITTED")
        assert maker.revoke_agent(agent_key.address).ok
        with pytest.raises(ApiRefused) as revoked:
            agent.cancel_order(placed.order_id or 0)
        assert (revoked.value.status, revoked.value.name) == (401, "SIGNER_NOT_AUTHORISED")
        assert maker.cancel_order(placed.order_id or 0).ok
    finally:
        agent.close()


def test_websocket_order_entry_from_the_sdk(traders: tuple[Client, Client]) -> None:
    maker, _ = traders
    maker.connect_ws()  # from here on, the SDK's actions go over one WebSocket
    ack = maker.place_order(BTC, "sell", "0.01", "101000", time_in_force="post_only")
    assert ack.ok and ack.order_id
    actions = [maker.place_order_action(BTC, "sell", size_lots=5, price_ticks=1_010_100 + i,
                                        time_in_force="post_only") for i in range(3)]
    assert [r.status for r in maker.submit_batch(actions)] == [200, 200, 200]
    with pytest.raises(ApiRefused) as refused:
        maker.place_order(BTC, "buy", "0.01", "1000000", time_in_force="post_only")
    assert refused.value.name == "PRICE_OUTSIDE_BAND"
    cancelled = maker.cancel_all()
    assert sum(1 for e in cancelled.events if type(e).__name__ == "OrderCancelled") == 4

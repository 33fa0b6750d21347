"""A real node + gateway for end-to-end tests of the API and the SDK.

``LiveVenue`` starts a ``rollbook.node.Node`` (the local venue on the embedded EVM unless a
config says otherwise, data in a fresh temporary directory) and a ``Gateway`` on 127.0.0.1 with
an ephemeral port, served from an event loop in a background thread, so that tests talk to it
over real HTTP and WebSocket with the blocking ``Client``, ``requests``-style calls through
aiohttp, or raw sockets. Deposits go on chain (mint, approve, deposit) and are credited by the
node from the contract's events, as in production.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import aiohttp
from eth_account.signers.local import LocalAccount

from rollbook.gateway import Gateway, GatewayConfig
from rollbook.node.config import NodeConfig
from rollbook.node.core import Node

T = TypeVar("T")
USDC = 10**6
CREDIT_TIMEOUT_S = 30.0


def quick_config(**chain_changes: Any) -> NodeConfig:
    """The local venue with a quick cadence (tests wait for batches and L1 polls)."""
    base = NodeConfig.local()
    return base.replace(
        batch=dataclasses.replace(base.batch, interval_ms=50, bytes_max=65_536),
        chain=dataclasses.replace(base.chain, poll_interval_ms=50, **chain_changes),
    )


class LiveVenue:
    def __init__(self, config: NodeConfig | None = None,
                 gateway_config: GatewayConfig | None = None) -> None:
        self.node = Node(config or quick_config())
        self.gateway_config = gateway_config or GatewayConfig(port=0)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.gateway: Gateway | None = None

    def start(self) -> LiveVenue:
        self.node.start()
        self.thread.start()
        self.gateway = Gateway(self.node, self.gateway_config)
        self.run(self.gateway.start())
        return self

    def stop(self) -> None:
        if self.gateway is not None:
            self.run(self.gateway.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.node.stop()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    @property
    def url(self) -> str:
        assert self.gateway is not None
        return self.gateway.url

    @property
    def ws_url(self) -> str:
        return self.url + "/ws"

    def accounts(self) -> list[LocalAccount]:
        accounts: list[LocalAccount] = self.node.link.chain.dev_accounts
        return accounts

    def deposit(self, account: LocalAccount, amount_usd: int) -> None:
        link = self.node.link
        with self.node.chain_lock:
            link.token.mint(account.address, amount_usd * USDC, sender=account)
            link.settlement.deposit(0, amount_usd * USDC, sender=account)

    def wait_credited(self, *accounts: LocalAccount) -> None:
        deadline = time.monotonic() + CREDIT_TIMEOUT_S
        owners = [bytes.fromhex(a.address[2:]) for a in accounts]
        while any(self.node.account_sync(owner) is None for owner in owners):
            assert time.monotonic() < deadline, "deposits were never credited"
            time.sleep(0.05)

    def fund(self, *accounts: LocalAccount, amount_usd: int = 1_000_000) -> None:
        for account in accounts:
            self.deposit(account, amount_usd)
        self.wait_credited(*accounts)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """One raw HTTP request: (status, decoded JSON body or the raw text)."""
        async def go() -> tuple[int, Any]:
            async with aiohttp.ClientSession() as session, session.request(
                    method, self.url + path, data=body, headers=headers) as response:
                raw = await response.read()
            try:
                import json

                return response.status, json.loads(raw)
            except ValueError:
                return response.status, raw.decode(errors="replace")

        return self.run(go())

    def ws_exchange(self, messages: list[bytes | str], replies: int,
                    timeout_s: float = 10.0) -> list[Any]:
        """Send raw WebSocket messages, collect ``replies`` JSON answers (or the close)."""
        async def go() -> list[Any]:
            import json

            out: list[Any] = []
            async with aiohttp.ClientSession() as session, session.ws_connect(
                    self.ws_url, max_msg_size=64 << 20) as ws:
                for message in messages:
                    if isinstance(message, bytes):
                        await ws.send_bytes(message)
                    else:
                        await ws.send_str(message)
                async with asyncio.timeout(timeout_s):
                    while len(out) < replies:
                        received = await ws.receive()
                        if received.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                            out.append(json.loads(received.data))
                        else:
                            out.append({"closed": ws.close_code})
                            break
            return out

        return self.run(go())


def serve_venue() -> Iterator[LiveVenue]:
    """Body of a module-scoped ``live`` fixture: one node per test module (each module
    defines the fixture itself, because a ``conftest.py`` here would shadow the root one that
    other tests import by name)."""
    venue = LiveVenue().start()
    try:
        yield venue
    finally:
        venue.stop()

"""``Client``: the blocking SDK, the same API as ``AsyncClient`` without ``await``.

It runs one ``AsyncClient`` on a private event loop in a daemon thread and waits for each call,
so every behaviour (signing, nonces, rounding, refusals as ``ApiRefused``, WebSocket order
entry, reconnecting streams) is the async client's. Thread-safe: calls from several threads
are serialised onto the one loop (nonces stay strictly increasing). ``close()`` (or ``with``)
stops the loop and its thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from rollbook.client.aio import AsyncClient, QuoteLike, Stream, Update
from rollbook.client.signing import MarketRounding, Number, Signer
from rollbook.gateway.actions import SignedAction
from rollbook.gateway.messages import AckOut, ActionResult
from rollbook.gateway.views import InfoOut
from rollbook.sequencer.eip712 import UserAction

__all__ = ["Client", "SyncStream"]

T = TypeVar("T")
CALL_TIMEOUT_S = 120.0  # a blocking call never waits forever on a wedged loop


class Client:
    """Blocking twin of ``AsyncClient``; see there for every method."""

    def __init__(self, url: str, signer: Signer | None = None, *,
                 timeout_s: float = 30.0, connect: bool = True) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rollbook-client",
                                        daemon=True)
        self._thread.start()
        self._async = AsyncClient(url, signer, timeout_s=timeout_s)
        if connect:
            try:
                self.connect()
            except BaseException:
                self.close()
                raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT_S)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            self._run(self._async.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    @property
    def aio(self) -> AsyncClient:
        """The underlying async client (use only from its loop)."""
        return self._async

    @property
    def signer(self) -> Signer | None:
        return self._async.signer

    @property
    def markets(self) -> dict[int, MarketRounding]:
        return self._async.markets

    def connect(self) -> InfoOut:
        return self._run(self._async.connect())

    def connect_ws(self) -> None:
        self._run(self._async.connect_ws())

    # queries
    def info(self) -> InfoOut:
        return self._run(self._async.info())

    def status(self) -> Any:
        return self._run(self._async.status())

    def market_list(self) -> list[Any]:
        return self._run(self._async.market_list())

    def book(self, market_id: int, depth: int = 20) -> Any:
        return self._run(self._async.book(market_id, depth))

    def trades(self, market_id: int, limit: int = 100) -> list[Any]:
        return self._run(self._async.trades(market_id, limit))

    def account(self, owner: bytes | str | None = None, subaccount: int = 0) -> Any:
        return self._run(self._async.account(owner, subaccount))

    def account_risk(self, owner: bytes | str | None = None, subaccount: int = 0) -> Any:
        return self._run(self._async.account_risk(owner, subaccount))

    def batches(self, start: int | None = None, limit: int = 100) -> list[Any]:
        return self._run(self._async.batches(start, limit))

    def batch(self, index: int) -> Any:
        return self._run(self._async.batch(index))

    def withdrawal_proof(self, withdrawal_id: int) -> Any:
        return self._run(self._async.withdrawal_proof(withdrawal_id))

    def openapi(self) -> dict[str, Any]:
        return self._run(self._async.openapi())

    # signing (no I/O: run here)
    def rounding(self, market_id: int) -> MarketRounding:
        return self._async.rounding(market_id)

    def sign(self, action: UserAction, nonce_ms: int | None = None) -> SignedAction:
        return self._async.sign(action, nonce_ms)

    def place_order_action(self, market_id: int, side: Any, size: Number | None = None,
                           price: Number | None = None, **options: Any) -> SignedAction:
        return self._async.place_order_action(market_id, side, size, price, **options)

    # actions
    def submit(self, action: SignedAction) -> ActionResult:
        return self._run(self._async.submit(action))

    def submit_batch(self, actions: Sequence[SignedAction]) -> list[ActionResult]:
        return self._run(self._async.submit_batch(actions))

    def act(self, action: SignedAction) -> AckOut:
        return self._run(self._async.act(action))

    def place_order(self, market_id: int, side: Any, size: Number | None = None,
                    price: Number | None = None, **options: Any) -> AckOut:
        return self._run(self._async.place_order(market_id, side, size, price, **options))

    def cancel_order(self, order_id: int, subaccount: int = 0) -> AckOut:
        return self._run(self._async.cancel_order(order_id, subaccount))

    def cancel_by_client_id(self, client_order_id: int, subaccount: int = 0) -> AckOut:
        return self._run(self._async.cancel_by_client_id(client_order_id, subaccount))

    def cancel_all(self, market_id: int = 0, subaccount: int = 0) -> AckOut:
        return self._run(self._async.cancel_all(market_id, subaccount))

    def modify_order(self, order_id: int, market_id: int, side: Any,
                     size: Number | None = None, price: Number | None = None,
                     **options: Any) -> AckOut:
        return self._run(self._async.modify_order(order_id, market_id, side, size, price,
                                                  **options))

    def withdraw(self, amount: Number | None = None, **options: Any) -> AckOut:
        return self._run(self._async.withdraw(amount, **options))

    def transfer(self, to_owner: bytes | str, amount: Number | None = None,
                 **options: Any) -> AckOut:
        return self._run(self._async.transfer(to_owner, amount, **options))

    def set_margin_mode(self, market_id: int, isolated: bool, subaccount: int = 0) -> AckOut:
        return self._run(self._async.set_margin_mode(market_id, isolated, subaccount))

    def move_isolated_margin(self, market_id: int, amount_quantums: int,
                             subaccount: int = 0) -> AckOut:
        return self._run(self._async.move_isolated_margin(market_id, amount_quantums,
                                                          subaccount))

    def set_portfolio_margin(self, enabled: bool, subaccount: int = 0) -> AckOut:
        return self._run(self._async.set_portfolio_margin(enabled, subaccount))

    def set_mmp(self, index_id: int, window_ms: int, frozen_ms: int = 0,
                **options: Any) -> AckOut:
        return self._run(self._async.set_mmp(index_id, window_ms, frozen_ms, **options))

    def mass_quote_action(self, index_id: int, quotes: Sequence[QuoteLike],
                          **options: Any) -> SignedAction:
        return self._async.mass_quote_action(index_id, quotes, **options)

    def mass_quote(self, index_id: int, quotes: Sequence[QuoteLike],
                   subaccount: int = 0) -> AckOut:
        return self._run(self._async.mass_quote(index_id, quotes, subaccount=subaccount))

    def register_agent(self, agent: bytes | str, expiry_ms: int,
                       subaccount: int | None = None) -> AckOut:
        return self._run(self._async.register_agent(agent, expiry_ms, subaccount))

    def revoke_agent(self, agent: bytes | str) -> AckOut:
        return self._run(self._async.revoke_agent(agent))

    def stream(self, *subscriptions: dict[str, Any], **options: Any) -> SyncStream:
        return SyncStream(self, self._async.stream(*subscriptions, **options))


class SyncStream:
    """A blocking iterator over a reconnecting ``Stream``; ``next`` waits up to ``timeout_s``."""

    def __init__(self, client: Client, stream: Stream, timeout_s: float = CALL_TIMEOUT_S) -> None:
        self._client = client
        self.stream = stream
        self.timeout_s = timeout_s
        self._iterator = stream.__aiter__()

    def __iter__(self) -> Iterator[Update]:
        return self

    def __next__(self) -> Update:
        async def step() -> Update:
            return await self._iterator.__anext__()

        future = asyncio.run_coroutine_threadsafe(step(), self._client._loop)
        try:
            return future.result(self.timeout_s)
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        self._client._run(self.stream.close())

    def __enter__(self) -> SyncStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


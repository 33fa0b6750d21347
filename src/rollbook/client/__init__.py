"""The rollbook SDK: ``Client`` (blocking) and ``AsyncClient`` (asyncio) for a rollbook node.

Both sign every action with EIP-712 (an owner's eth-account key or an agent key: ``Signer``),
hand out strictly increasing millisecond nonces, round human prices and sizes to the market's
tick and lot (buys' prices down, sells' up, sizes down), expose every HTTP endpoint, send
actions over HTTP or one WebSocket, and stream subscriptions over a WebSocket that reconnects
with backoff and resubscribes (books restart from a fresh snapshot). Refusals raise
``ApiRefused`` with the API's stable code.
"""

from rollbook.client.aio import ApiRefused, AsyncClient, L2Book, Stream, Update
from rollbook.client.signing import MarketRounding, NonceSource, Signer
from rollbook.client.sync import Client, SyncStream

__all__ = [
    "ApiRefused",
    "AsyncClient",
    "Client",
    "L2Book",
    "MarketRounding",
    "NonceSource",
    "Signer",
    "Stream",
    "SyncStream",
    "Update",
]

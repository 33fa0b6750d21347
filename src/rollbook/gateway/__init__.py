"""The gateway: HTTP + WebSocket API of a rollbook node, with its OpenAPI 3.1 document.

``Gateway(node, GatewayConfig(...))`` serves one in-process ``rollbook.node.Node``: strict
decoding (msgspec), payload and rate limits, then one node call per request; no business
logic. Wire formats live in ``actions`` (signed actions), ``messages`` (envelopes, WebSocket
protocol) and ``views`` (query answers); ``errors`` holds the stable codes and their HTTP
statuses; ``openapi`` generates the document from the route table.
"""

from rollbook.gateway.errors import ApiError, GatewayCode, status_of
from rollbook.gateway.server import DEFAULT_HOST, DEFAULT_PORT, Gateway, GatewayConfig

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ApiError",
    "Gateway",
    "GatewayCode",
    "GatewayConfig",
    "status_of",
]

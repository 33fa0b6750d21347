"""The OpenAPI 3.1 document, generated from the gateway's route table and msgspec schemas.

Nothing here is written by hand per route: each ``Route`` names its body and answer types, its
parameters and the refusal statuses it can give, and ``openapi_document`` turns that into paths
and ``components.schemas`` (msgspec's JSON Schema 2020-12 output, which OpenAPI 3.1 accepts).
``/ws`` is documented as a GET answering 101, with the client and server message schemas under
``x-websocket``; ``/openapi.json`` documents itself. A test checks that every route the server
has is in the document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from rollbook import __version__
from rollbook.execution.errors import ErrorCode
from rollbook.gateway.errors import GatewayCode
from rollbook.gateway.messages import ActionResult, ErrorResponse, WsRequest
from rollbook.gateway.server import Route
from rollbook.sequencer.errors import AdmissionCode

__all__ = ["OPENAPI_VERSION", "openapi_document"]

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{name}"
_DESCRIPTION = """\
HTTP and WebSocket API of a rollbook node. Actions are EIP-712 signed (domain: GET /v1/info);
every refusal has an HTTP status and a stable `code` (0-99 STF receipt codes, 100-199
admission, 200-299 gateway) with a `message`. Integers are exact JSON integers; byte strings
are 0x-prefixed hex; units are in every field name (quantums = 10^-6 USDC, lots, ticks)."""
_STATUS_TEXT = {
    400: "refused: malformed JSON, wrong types, unknown or missing fields, bad values",
    401: "refused: the signature does not prove an authorised signer",
    403: "refused: the signer may not do this (agent rights)",
    404: "unknown route, market, account, batch or withdrawal",
    409: "refused: the nonce was used or is below the signer's window",
    413: "refused: payload too large",
    422: "sequenced, and refused by the state machine (see `ack` and `error`)",
    429: "refused: rate limited",
    503: "the node is unavailable; retry",
}


class _WsServerMessage(msgspec.Struct):
    """A message from the server on /ws (see rollbook.gateway.messages)."""

    type: str
    id: int | str | None = None
    topic: str | None = None
    kind: str | None = None
    status: int | None = None
    data: Any = None
    ack: Any = None
    error: Any = None
    results: list[ActionResult] | None = None
    reason: str | None = None


def _content(ref: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    types: list[Any] = [ErrorResponse, ActionResult, WsRequest, _WsServerMessage]
    for route in routes:
        for kind in (route.body, route.response):
            if kind is not None:
                types.append(kind)
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    ref_of = {id(kind): ref for kind, ref in zip(types, refs, strict=True)}
    error_ref, action_result_ref, ws_request_ref, ws_server_ref = refs[:4]

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "responses": {},
        }
        if route.description:
            operation["description"] = route.description
        if route.params:
            operation["parameters"] = [
                {"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                 "description": p.description, "schema": p.schema}
                for p in route.params]
        if route.body is not None:
            operation["requestBody"] = {"required": True,
                                        "content": _content(ref_of[id(route.body)])}
        answer = ref_of[id(route.response)] if route.response is not None else {}
        operation["responses"]["200"] = {"description": "OK", "content": _content(answer)}
        refusal = action_result_ref if route.tag == "actions" else error_ref
        for status in route.statuses:
            operation["responses"][str(status)] = {
                "description": _STATUS_TEXT.get(status, "refused"), "content": _content(refusal)}
        paths.setdefault(route.path, {})[route.method.lower()] = operation

    paths["/ws"] = {"get": {
        "operationId": "websocket",
        "summary": "WebSocket: order entry (acks carry the request id) and subscriptions "
                   "(book snapshot + deltas with sequence numbers, trades, account, batches)",
        "tags": ["websocket"],
        "responses": {"101": {"description": "Switching Protocols"}},
        "x-websocket": {"client": ws_request_ref, "server": ws_server_ref},
    }}
    paths["/openapi.json"] = {"get": {
        "operationId": "openapi",
        "summary": "This document",
        "tags": ["meta"],
        "responses": {"200": {"description": "OpenAPI 3.1 document",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "rollbook node API", "version": __version__,
                 "description": _DESCRIPTION},
        "tags": [{"name": "queries"}, {"name": "actions"}, {"name": "websocket"},
                 {"name": "meta"}],
        "paths": paths,
        "components": {"schemas": components},
        "x-error-codes": {
            "stf": {code.name: int(code) for code in ErrorCode},
            "admission": {code.name: int(code) for code in AdmissionCode},
            "gateway": {code.name: int(code) for code in GatewayCode},
        },
    }

"""The OpenAPI 3.1 document: generated from the route table, complete, and self-consistent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from live_venue import LiveVenue, serve_venue
from rollbook.gateway.actions import ACTION_STRUCTS

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def live() -> Iterator[LiveVenue]:
    yield from serve_venue()


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_refs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_refs(item))
    return found


def test_every_route_of_the_server_is_documented(live: LiveVenue) -> None:
    status, doc = live.request("GET", "/openapi.json")
    assert status == 200
    assert doc["openapi"] == "3.1.0"
    assert live.gateway is not None
    served = set()
    for route in live.gateway.app.router.routes():
        if route.method.lower() not in HTTP_METHODS:
            continue  # aiohttp adds HEAD twins of GET routes
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        served.add((route.method.lower(), path))
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert served, "the server has routes"
    assert served <= documented, f"undocumented: {sorted(served - documented)}"
    assert documented <= served, f"documented but not served: {sorted(documented - served)}"


def test_document_is_self_consistent(live: LiveVenue) -> None:
    _, doc = live.request("GET", "/openapi.json")
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in schemas, f"dangling {ref}"
    operation_ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path
            if method == "post":
                assert operation["requestBody"]["required"] is True


def test_every_signed_action_has_a_strict_schema(live: LiveVenue) -> None:
    _, doc = live.request("GET", "/openapi.json")
    schemas = doc["components"]["schemas"]
    for struct in ACTION_STRUCTS:
        schema = schemas[struct.__name__]
        assert schema["additionalProperties"] is False
        assert {"nonce", "signature", "type"} <= set(schema["required"])
    codes = doc["x-error-codes"]
    assert codes["admission"]["SIGNATURE_HIGH_S"] == 112
    assert codes["gateway"]["MALFORMED_JSON"] == 200
    assert codes["stf"]["UNKNOWN_MARKET"] == 30

"""Every operation of the NGSI-LD v1.8.1 OpenAPI has a route: implemented, or a 501.

The paths and methods are read from the ETSI OpenAPI file in ``shared/spec``;
the router resolves each (with sample path parameters) to a handler, never to
aiohttp's 404 or 405.  The operations this broker does not implement answer
501 with an OperationNotSupported ProblemDetails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, make_mocked_request

from broker.app import create_app
from broker.config import Settings
from broker.routes.unsupported import PARTS, PREFIX
from conformance.shared_data import shared_dir

_PATH = re.compile(r"^  (/[^\s:]*):\s*$")
_METHOD = re.compile(r"^    (get|post|put|patch|delete):\s*$")


def _spec_operations() -> list[tuple[str, str]]:
    try:
        spec = shared_dir() / "spec" / "ngsi-ld-api-1.8.1.yaml"
    except FileNotFoundError:
        spec = Path("/nonexistent")
    if not spec.is_file():
        pytest.skip("the ETSI OpenAPI file (shared/spec) is not beside the checkout")
    operations, path = [], None
    for line in spec.read_text(encoding="utf-8").splitlines():
        if (found := _PATH.match(line)) is not None:
            path = found.group(1)
        elif path is not None and (found := _METHOD.match(line)) is not None:
            operations.append((found.group(1).upper(), path))
    return operations


def _sample(path: str) -> str:
    return PREFIX + re.sub(r"\{[^}]+\}", "urn:ngsi-ld:X:1", path)


async def test_every_operation_of_the_openapi_is_routed() -> None:
    operations = _spec_operations()
    assert len(operations) > 40  # the file was read
    app = create_app(Settings(store="memory:"))
    missing = []
    for method, path in operations:
        match = await app.router.resolve(make_mocked_request(method, _sample(path)))
        if match.http_exception is not None:
            missing.append((method, path, match.http_exception.status))
    assert not missing


async def test_operations_not_implemented_answer_501(client: TestClient) -> None:
    for part, operations in PARTS.items():
        for method, path in operations:
            resp = await client.request(method, _sample(path), json={})
            body = await resp.json()
            assert resp.status == 501, (method, path, body)
            assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/OperationNotSupported"
            assert part in body["detail"] and body["status"] == 501
    # every part is implemented now: an unknown Entity map (trailing slash too) is 404
    resp = await client.get(PREFIX + "/entityMap/urn:ngsi-ld:EntityMap:1/")
    assert resp.status == 404
    assert (await resp.json())["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"

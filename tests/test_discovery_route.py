"""5.7.5 to 5.7.10 over HTTP: repeated discovery requests are answered from memory
while nothing was written, and every write is seen by the next request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from broker.app import BROKER, create_app
from broker.config import Settings

JSON = {"Content-Type": "application/json"}


@pytest.fixture(params=["memory:", "sqlite"])
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestClient]:
    store = request.param if request.param == "memory:" else f"sqlite:///{tmp_path}/d.db"
    c = TestClient(TestServer(create_app(Settings(store=store))))
    await c.start_server()
    yield c
    await c.close()


async def _create(client: TestClient, entity_id: str, kind: str) -> None:
    body = {"id": entity_id, "type": kind, "p": {"type": "Property", "value": 1}}
    resp = await client.post("/ngsi-ld/v1/entities", json=body, headers=JSON)
    assert resp.status == 201


async def test_summaries_are_reused_until_the_next_write(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = client.app[BROKER].store
    calls: list[str] = []
    for method in ("type_summaries", "attribute_summaries"):
        original = getattr(store, method)

        async def counted(*args: Any, _original: Any = original, _name: str = method,
                          **kwargs: Any) -> Any:
            calls.append(_name)
            return await _original(*args, **kwargs)

        monkeypatch.setattr(store, method, counted)
    await _create(client, "urn:ngsi-ld:A:1", "A")
    paths = ["/ngsi-ld/v1/types?details=true", "/ngsi-ld/v1/types/A",
             "/ngsi-ld/v1/attributes?details=true", "/ngsi-ld/v1/attributes/p"]
    first = [await (await client.get(path)).json() for path in paths]
    again = [await (await client.get(path)).json() for path in paths]
    assert again == first and len(calls) == 4  # the repeats read no summary
    await _create(client, "urn:ngsi-ld:B:1", "B")
    types = await (await client.get(paths[0])).json()
    assert sorted(t["typeName"] for t in types) == ["A", "B"] and len(calls) == 5
    (p,) = [a for a in await (await client.get(paths[2])).json() if a["attributeName"] == "p"]
    assert p["attributeCount"] == 2 and sorted(p["typeNames"]) == ["A", "B"]
    assert (await client.get("/ngsi-ld/v1/types/C")).status == 404  # refusals are not kept
    await _create(client, "urn:ngsi-ld:C:1", "C")
    assert (await client.get("/ngsi-ld/v1/types/C")).status == 200

"""Distributed operations are per tenant (4.3.6, 4.20): a registration in one tenant never
sends another tenant's requests to its source, nor takes them off the local read paths."""

from __future__ import annotations

from aiohttp import web
from test_federation_forwarding import JSON, Federation, fed, lamp, registration

from broker.app import BROKER

__all__ = ["fed"]

A = {"NGSILD-Tenant": "district-a"}
B = {"NGSILD-Tenant": "district-b"}


async def test_a_registration_in_one_tenant_is_not_asked_for_another(fed: Federation) -> None:
    calls: list[str] = []

    async def source(request: web.Request) -> web.Response:
        calls.append(request.path_qs)
        if request.path.endswith("/entities"):
            return web.json_response([lamp(7, power=70)])
        return web.json_response(lamp(7, power=70))

    fed.register(registration(await fed.mock(source)), tenant="district-a")
    await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(1, power=1), headers={**JSON, **B})
    await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(2, power=2), headers={**JSON, **A})
    sources = fed.hub.app[BROKER].service.sources
    # tenant B keeps the local read paths (answer cache, versioned reads)
    assert sources.serves("district-b") is False and sources.serves("district-a") is True
    for _ in range(2):
        found = await (await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp", headers=B)).json()
        assert [e["id"] for e in found] == ["urn:ngsi-ld:Lamp:1"]
    one = await fed.hub.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Lamp:7", headers=B)
    assert one.status == 404 and "NGSILD-Warning" not in one.headers
    posted = await fed.hub.post("/ngsi-ld/v1/entityOperations/query", headers={**JSON, **B},
                                json={"type": "Query", "entities": [{"type": "Lamp"}]})
    assert [e["id"] for e in await posted.json()] == ["urn:ngsi-ld:Lamp:1"]
    assert calls == []
    # tenant A's reads are forwarded and merged
    merged = await (await fed.hub.get("/ngsi-ld/v1/entities?type=Lamp", headers=A)).json()
    assert [e["id"] for e in merged] == ["urn:ngsi-ld:Lamp:2", "urn:ngsi-ld:Lamp:7"]
    assert calls

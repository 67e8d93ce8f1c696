"""Distributed discovery (4.3.6, 5.7.5 to 5.7.10): GET /types and /attributes, with and
without details, include what registered sources hold; local=true keeps it local; a dead
or slow source costs its timeout and a warning."""

from __future__ import annotations

import asyncio

from aiohttp import web
from test_federation_forwarding import JSON, Federation, fed, lamp, registration, url_of

__all__ = ["fed"]

VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


def thing(n: int, kind: str, **attrs: int) -> dict[str, object]:
    return {"id": f"urn:ngsi-ld:{kind}:{n}", "type": kind,
            **{k: {"type": "Property", "value": v} for k, v in attrs.items()}}


async def test_types_and_attributes_include_the_sources(fed: Federation) -> None:
    source = await fed.source()
    await source.post("/ngsi-ld/v1/entities", json=lamp(2, power=5, colour=1), headers=JSON)
    await source.post("/ngsi-ld/v1/entities", json=thing(1, "Bench", seats=3), headers=JSON)
    await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(1, power=1), headers=JSON)
    await fed.hub.post("/ngsi-ld/v1/entities", json=thing(1, "Bin", fill=1), headers=JSON)
    # a source of Lamps and Benches, registered for every discovery operation (the default)
    fed.register(registration(url_of(source), information=[
        {"entities": [{"type": "Lamp"}, {"type": "Bench"}]}]))
    hub = fed.hub

    types = await (await hub.get("/ngsi-ld/v1/types")).json()
    assert types["typeList"] == ["Bench", "Bin", "Lamp"]
    local = await (await hub.get("/ngsi-ld/v1/types?local=true")).json()
    assert local["typeList"] == ["Bin", "Lamp"]

    details = await (await hub.get("/ngsi-ld/v1/types?details=true")).json()
    by_name = {t["typeName"]: t for t in details}
    assert sorted(by_name) == ["Bench", "Bin", "Lamp"]
    assert by_name["Lamp"]["attributeNames"] == ["colour", "power"]
    assert by_name["Bench"]["id"] == VOCAB + "Bench"

    info = await (await hub.get("/ngsi-ld/v1/types/Lamp")).json()
    assert info["entityCount"] == 2
    assert [d["attributeName"] for d in info["attributeDetails"]] == ["colour", "power"]
    bench = await hub.get("/ngsi-ld/v1/types/Bench")
    assert bench.status == 200 and (await bench.json())["entityCount"] == 1
    assert (await hub.get("/ngsi-ld/v1/types/Bench?local=true")).status == 404

    attrs = await (await hub.get("/ngsi-ld/v1/attributes")).json()
    assert attrs["attributeList"] == ["colour", "fill", "power", "seats"]
    attr_details = await (await hub.get("/ngsi-ld/v1/attributes?details=true")).json()
    power = next(a for a in attr_details if a["attributeName"] == "power")
    assert power["attributeCount"] == 2 and power["typeNames"] == ["Lamp"]
    seats = await (await hub.get("/ngsi-ld/v1/attributes/seats")).json()
    assert seats["typeNames"] == ["Bench"] and seats["attributeTypes"] == ["Property"]
    assert (await hub.get("/ngsi-ld/v1/attributes/seats?local=true")).status == 404
    assert (await hub.get("/ngsi-ld/v1/attributes/nothing")).status == 404


async def test_a_source_without_discovery_or_the_type_is_not_asked(fed: Federation) -> None:
    asked: list[str] = []

    async def source(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.json_response({"id": "urn:x", "type": "EntityTypeList",
                                  "typeList": ["Ghost"]})

    url = await fed.mock(source)
    await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(1), headers=JSON)
    fed.register(registration(url, operations=["retrieveOps"]))
    fed.register(registration(url, "urn:ngsi-ld:ContextSourceRegistration:r2",
                              information=[{"entities": [{"type": "Bench"}]}]))
    assert (await (await fed.hub.get("/ngsi-ld/v1/types/Lamp")).json())["entityCount"] == 1
    assert asked == []  # r1 has no discovery, r2 no Lamps
    types = await (await fed.hub.get("/ngsi-ld/v1/types")).json()
    assert types["typeList"] == ["Ghost", "Lamp"] and asked == ["/ngsi-ld/v1/types"]


async def test_a_dead_or_slow_source_costs_its_timeout_and_a_warning(fed: Federation) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.json_response({})

    await fed.hub.post("/ngsi-ld/v1/entities", json=lamp(1, power=1), headers=JSON)
    fed.register(registration(await fed.mock(slow), management={"timeout": 300}))
    fed.register(registration("http://127.0.0.1:9", "urn:ngsi-ld:ContextSourceRegistration:dead"))
    for path in ("/types", "/types?details=true", "/types/Lamp", "/attributes",
                 "/attributes?details=true", "/attributes/power"):
        resp = await fed.hub.get("/ngsi-ld/v1" + path)
        assert resp.status == 200, path
        assert "Lamp" in await resp.text() or "power" in await resp.text()
        # the slow source was given up at its timeout (else it would have answered, 10 s on)
        assert sorted(w[:3] for w in resp.headers.getall("NGSILD-Warning")) == ["199", "199"]

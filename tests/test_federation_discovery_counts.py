"""Counts of distributed discovery (5.7.7 entityCount, 5.7.9 and 5.7.10 attributeCount) count
an entity, or an attribute instance, once however many parties hold it: the sources are
asked which they hold; a source that cannot say leaves the sum (docs/federation.md)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from test_federation_forwarding import JSON, Federation, fed, lamp, registration, url_of

__all__ = ["fed"]

API = "/ngsi-ld/v1"
DATASET = "urn:ngsi-ld:Dataset:spare"


async def _two_sources_and_the_hub(fed: Federation) -> None:
    """Lamp 1 everywhere, Lamp 3 at both sources, Lamp 2 at the hub, Lamp 4 at the second
    source (with a second instance of power)."""
    first, second = await fed.source(), await fed.source()
    for client, entities in (
            (fed.hub, [lamp(1, power=1), lamp(2, power=2)]),
            (first, [lamp(1, power=1), lamp(3, power=3, colour=1)]),
            (second, [lamp(1, power=1), lamp(3, power=3), lamp(4, power=4)])):
        for entity in entities:
            created = await client.post(API + "/entities", json=entity, headers=JSON)
            assert created.status == 201, await created.text()
    spare = {"power": {"type": "Property", "value": 40, "datasetId": DATASET}}
    appended = await second.post(f"{API}/entities/urn:ngsi-ld:Lamp:4/attrs", json=spare,
                                 headers=JSON)
    assert appended.status == 204, await appended.text()
    fed.register(registration(url_of(first)))
    fed.register(registration(url_of(second), "urn:ngsi-ld:ContextSourceRegistration:r2"))


async def test_an_entity_held_in_several_places_is_counted_once(fed: Federation) -> None:
    await _two_sources_and_the_hub(fed)
    info = await (await fed.hub.get(API + "/types/Lamp")).json()
    assert info["entityCount"] == 4  # Lamps 1 to 4, not 2 + 2 + 3
    assert (await (await fed.hub.get(API + "/types/Lamp?local=true")).json())[
        "entityCount"] == 2

    # power: Lamps 1 to 4 without datasetId and Lamp 4's spare instance (not 2 + 2 + 4)
    power = await (await fed.hub.get(API + "/attributes/power")).json()
    assert power["attributeCount"] == 5 and power["typeNames"] == ["Lamp"]
    details = await (await fed.hub.get(API + "/attributes?details=true")).json()
    counts = {a["attributeName"]: a["attributeCount"] for a in details}
    assert counts == {"power": 5, "colour": 1}
    local = await (await fed.hub.get(API + "/attributes?details=true&local=true")).json()
    assert {a["attributeName"]: a["attributeCount"] for a in local} == {"power": 2}


async def test_a_source_that_cannot_say_what_it_holds_leaves_the_sum(fed: Federation) -> None:
    asked: list[str] = []

    async def counts_only(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.json_response({"id": "https://uri.etsi.org/ngsi-ld/default-context/Lamp",
                                  "type": "EntityTypeInfo", "typeName": "Lamp",
                                  "entityCount": 3, "attributeDetails": []})

    for n in (1, 2):
        await fed.hub.post(API + "/entities", json=lamp(n, power=n), headers=JSON)
    # registered for discovery only: it cannot be asked which entities it holds
    fed.register(registration(await fed.mock(counts_only),
                              operations=["retrieveEntityTypeInfo"]))
    info: Any = await (await fed.hub.get(API + "/types/Lamp")).json()
    assert info["entityCount"] == 5  # the sum, an upper bound
    assert asked == [API + "/types/Lamp"]


async def test_a_source_failing_to_say_what_it_holds_leaves_the_sum(fed: Federation) -> None:
    async def no_query(request: web.Request) -> web.Response:
        if request.path.endswith("/entities"):
            return web.json_response({"type": "https://uri.etsi.org/ngsi-ld/errors/InternalError",
                                      "title": "down"}, status=500)
        return web.json_response({"id": "urn:x", "type": "Attribute", "attributeName": "power",
                                  "attributeCount": 7, "attributeTypes": ["Property"],
                                  "typeNames": ["Lamp"]})

    await fed.hub.post(API + "/entities", json=lamp(1, power=1), headers=JSON)
    fed.register(registration(await fed.mock(no_query)))
    power = await (await fed.hub.get(API + "/attributes/power")).json()
    assert power["attributeCount"] == 8

"""Temporal writes forwarded to context sources (4.3.6, 5.6.11.4 to 5.6.16.4): the six writes
of the temporal API go to the registrations whose operations allow them (Table 4.20-1:
upsertTemporal, appendAttrsTemporal, deleteAttrsTemporal, updateAttrInstanceTemporal,
deleteAttrInstanceTemporal, deleteTemporal), with the entity writes' machinery: exclusive
and redirect sources keep what they hold out of the hub, inclusive ones get a copy, Via
and loops, a failing or slow source is a part of a 207, local=true stays local."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from test_federation_forwarding import JSON, Federation, fed, fed_alias, registration, url_of
from test_federation_temporal import TEMPORAL, at, history, points

__all__ = ["fed"]

LAMP1 = "urn:ngsi-ld:Lamp:1"
WRITES = ["upsertTemporal", "appendAttrsTemporal", "deleteAttrsTemporal",
          "updateAttrInstanceTemporal", "deleteAttrInstanceTemporal", "deleteTemporal"]
RID = "urn:ngsi-ld:ContextSourceRegistration:r1"


async def held(client: TestClient, entity_id: str = LAMP1) -> dict[str, Any] | None:
    """The temporal Entity ``client`` holds itself (None: 404)."""
    resp = await client.get(f"{TEMPORAL}/{entity_id}?local=true")
    if resp.status == 404:
        return None
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


def values(entity: dict[str, Any] | None, name: str) -> list[Any]:
    return [] if entity is None else [v for _, v in points(entity, name)]


class Recorder:
    """A mock source that records the requests it gets and answers ``status``."""

    def __init__(self, status: int = 204, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.calls: list[tuple[str, str, dict[str, str], str, dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((request.method, request.path, dict(request.query),
                           await request.text(), dict(request.headers)))
        await asyncio.sleep(self.delay)
        if self.status >= 400:
            return web.json_response({"type": "https://uri.etsi.org/ngsi-ld/errors/InternalError",
                                      "title": "down", "status": self.status},
                                     status=self.status)
        return web.Response(status=self.status)


async def test_upsert_and_append_go_to_an_inclusive_source_as_well(fed: Federation) -> None:
    source = await fed.source()
    fed.register(registration(url_of(source), operations=WRITES))
    resp = await fed.hub.post(TEMPORAL, json=history(1, power=[(1, 10)]), headers=JSON)
    assert resp.status == 201, await resp.text()
    assert values(await held(fed.hub), "power") == [10]
    assert values(await held(source), "power") == [10]
    appended = await fed.hub.post(f"{TEMPORAL}/{LAMP1}/attrs", headers=JSON, json={
        "colour": [{"type": "Property", "value": 7, "observedAt": at(2)}]})
    assert appended.status == 204, await appended.text()
    assert values(await held(fed.hub), "colour") == [7]
    assert values(await held(source), "colour") == [7]
    # local=true: the hub's own history only
    await fed.hub.post(f"{TEMPORAL}?local=true", json=history(1, power=[(3, 30)]), headers=JSON)
    assert values(await held(fed.hub), "power") == [10, 30]
    assert values(await held(source), "power") == [10]
    # read back through the hub: an observation both hold (each with its own
    # instanceId) is shown once
    fed.registry.remove("", RID)
    fed.register(registration(url_of(source), operations=[*WRITES, "retrieveTemporal"]))
    merged = await (await fed.hub.get(f"{TEMPORAL}/{LAMP1}")).json()
    assert values(merged, "power") == [10, 30] and values(merged, "colour") == [7]


async def test_a_registration_without_the_operation_gets_nothing(fed: Federation) -> None:
    source = await fed.source()
    fed.register(registration(url_of(source), operations=["retrieveTemporal", "updateOps"]))
    resp = await fed.hub.post(TEMPORAL, json=history(1, power=[(1, 10)]), headers=JSON)
    assert resp.status == 201
    assert await held(source) is None


async def test_exclusive_attributes_go_to_the_source_only(fed: Federation) -> None:
    source = await fed.source()
    await source.post(TEMPORAL, json=history(1, power=[(0, 0)]), headers=JSON)
    fed.register(registration(url_of(source), mode="exclusive", operations=WRITES, information=[
        {"entities": [{"id": LAMP1, "type": "Lamp"}], "propertyNames": ["power"]}]))
    resp = await fed.hub.post(TEMPORAL, headers=JSON,
                              json=history(1, power=[(1, 10)], colour=[(1, 7)]))
    assert resp.status == 201, await resp.text()
    hub, at_source = await held(fed.hub), await held(source)
    assert values(hub, "colour") == [7] and "power" not in (hub or {})
    assert values(at_source, "power") == [0, 10] and "colour" not in (at_source or {})


async def test_an_exclusive_source_without_the_operation_is_a_conflict_part(
        fed: Federation) -> None:
    recorder = Recorder()
    fed.register(registration(await fed.mock(recorder.handle), mode="exclusive",
                              operations=["retrieveTemporal"], information=[
        {"entities": [{"id": LAMP1, "type": "Lamp"}], "propertyNames": ["power"]}]))
    resp = await fed.hub.post(TEMPORAL, headers=JSON,
                              json=history(1, power=[(1, 10)], colour=[(1, 7)]))
    body = await resp.json()
    assert resp.status == 207, body
    (error,) = body["errors"]
    assert error["registrationId"] == RID and error["error"]["status"] == 409
    assert recorder.calls == []
    hub = await held(fed.hub)
    assert values(hub, "colour") == [7] and "power" not in (hub or {})


async def test_redirect_sources_hold_the_whole_entity(fed: Federation) -> None:
    source = await fed.source()
    fed.register(registration(url_of(source), mode="redirect", operations=WRITES))
    created = await fed.hub.post(TEMPORAL, json=history(1, power=[(1, 10), (2, 20)]),
                                 headers=JSON)
    assert created.status == 201, await created.text()
    assert created.headers["Location"] == f"{TEMPORAL}/{LAMP1}"
    assert await held(fed.hub) is None
    at_source = await held(source)
    assert values(at_source, "power") == [10, 20]
    first = at_source["power"][0]["instanceId"] if at_source else ""
    last = at_source["power"][1]["instanceId"] if at_source else ""
    # PATCH and DELETE of one instance, by the source's instanceId
    patched = await fed.hub.patch(f"{TEMPORAL}/{LAMP1}/attrs/power/{first}", headers=JSON,
                                  json={"value": 11, "observedAt": at(1)})
    assert patched.status == 204, await patched.text()
    removed = await fed.hub.delete(f"{TEMPORAL}/{LAMP1}/attrs/power/{last}")
    assert removed.status == 204, await removed.text()
    assert values(await held(source), "power") == [11]
    # the whole temporal Entity
    assert (await fed.hub.delete(f"{TEMPORAL}/{LAMP1}")).status == 204
    assert await held(source) is None


async def test_deleting_an_attribute_passes_datasetid_and_deleteall(fed: Federation) -> None:
    source = await fed.source()
    fed.register(registration(url_of(source), operations=WRITES))
    both = {"id": LAMP1, "type": "Lamp", "power": [
        {"type": "Property", "value": 1, "observedAt": at(1)},
        {"type": "Property", "value": 2, "observedAt": at(1), "datasetId": "urn:ds:b"}]}
    assert (await fed.hub.post(TEMPORAL, json=both, headers=JSON)).status == 201
    resp = await fed.hub.delete(f"{TEMPORAL}/{LAMP1}/attrs/power?datasetId=urn:ds:b")
    assert resp.status == 204, await resp.text()
    for client in (fed.hub, source):
        assert values(await held(client), "power") == [1]
    resp = await fed.hub.delete(f"{TEMPORAL}/{LAMP1}/attrs/power?deleteAll=true")
    assert resp.status == 204, await resp.text()
    for client in (fed.hub, source):
        assert "power" not in (await held(client) or {})
    assert (await fed.hub.delete(f"{TEMPORAL}/{LAMP1}")).status == 204
    assert await held(fed.hub) is None and await held(source) is None


async def test_what_the_source_is_sent(fed: Federation) -> None:
    recorder = Recorder()
    fed.register(registration(await fed.mock(recorder.handle), operations=WRITES))
    await fed.hub.post(TEMPORAL, json=history(1, power=[(1, 10)]), headers=JSON)
    await fed.hub.delete(f"{TEMPORAL}/{LAMP1}/attrs/power?datasetId=urn:ds:a&deleteAll=false")
    methods = [(m, p, q) for m, p, q, _, _ in recorder.calls]
    assert methods == [("POST", TEMPORAL, {}),
                       ("DELETE", f"{TEMPORAL}/{LAMP1}/attrs/power",
                        {"datasetId": "urn:ds:a", "deleteAll": "false"})]
    _, _, _, body, headers = recorder.calls[0]
    assert '"power"' in body and '"observedAt"' in body
    assert headers["Via"].endswith(fed_alias(fed))


async def test_a_failing_or_slow_source_is_a_part_beside_the_local_write(
        fed: Federation) -> None:
    failing = Recorder(status=500)
    fed.register(registration(await fed.mock(failing.handle), operations=WRITES))
    resp = await fed.hub.post(TEMPORAL, json=history(1, power=[(1, 10)]), headers=JSON)
    body = await resp.json()
    assert resp.status == 207, body
    assert body["success"] == [LAMP1]
    assert [e["registrationId"] for e in body["errors"]] == [RID]
    assert values(await held(fed.hub), "power") == [10]
    fed.registry.remove("", RID)
    slow = Recorder(delay=10)
    fed.register(registration(await fed.mock(slow.handle), operations=WRITES,
                              management={"timeout": 200}))
    resp = await fed.hub.post(f"{TEMPORAL}/{LAMP1}/attrs", headers=JSON, json={
        "colour": [{"type": "Property", "value": 7, "observedAt": at(2)}]})
    assert resp.status == 207, await resp.text()
    assert resp.headers["NGSILD-Warning"].startswith("199 ")
    assert values(await held(fed.hub), "colour") == [7]


async def test_a_write_that_comes_back(fed: Federation) -> None:
    recorder = Recorder()
    fed.register(registration(await fed.mock(recorder.handle), operations=WRITES))
    via = {"Via": f"1.1 {fed_alias(fed)}", **JSON}
    # an inclusive source the write came through is not asked again: written here only
    resp = await fed.hub.post(TEMPORAL, json=history(1, power=[(1, 10)]), headers=via)
    assert resp.status == 201 and recorder.calls == []
    fed.registry.remove("", RID)
    fed.register(registration(await fed.mock(recorder.handle), mode="redirect", operations=WRITES))
    looped = await fed.hub.delete(f"{TEMPORAL}/{LAMP1}", headers=via)
    assert looped.status == 508
    assert (await looped.json())["type"].endswith("/LoopDetected")
    assert recorder.calls == []


async def test_an_instance_is_named_by_the_party_that_holds_it(fed: Federation) -> None:
    source = await fed.source()
    # another Entity first, so the source's instanceIds are not the hub's
    await source.post(TEMPORAL, json=history(9, power=[(1, 1), (2, 2)]), headers=JSON)
    fed.register(registration(url_of(source), operations=WRITES))
    assert (await fed.hub.post(TEMPORAL, json=history(1, power=[(1, 10), (2, 20)]),
                               headers=JSON)).status == 201
    hub = await held(fed.hub)
    mine = hub["power"][0]["instanceId"] if hub else ""
    # the source has its own instanceIds: its 404 beside the hub's success is no failure
    patched = await fed.hub.patch(f"{TEMPORAL}/{LAMP1}/attrs/power/{mine}", headers=JSON,
                                  json={"value": 11, "observedAt": at(1)})
    assert patched.status == 204, await patched.text()
    assert values(await held(fed.hub), "power") == [11, 20]
    assert values(await held(source), "power") == [10, 20]
    # an instance no party holds: 404
    gone = await fed.hub.delete(f"{TEMPORAL}/{LAMP1}/attrs/power/urn:ngsi-ld:Instance:none")
    assert gone.status == 404, await gone.text()

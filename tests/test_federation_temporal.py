"""Temporal reads forwarded to context sources (4.3.6, 5.7.3, 5.7.4): a hub broker asks the
registrations supporting retrieveTemporal / queryTemporal and merges their instances with
its own history per Attribute; lastN, timerel and aggregation apply to the merged series;
a failing source is a warning; local=true and Via keep the read local."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from test_federation_forwarding import JSON, Federation, fed, fed_alias, registration, url_of

__all__ = ["fed"]

TEMPORAL = "/ngsi-ld/v1/temporal/entities"
OPS = ["retrieveTemporal", "queryTemporal"]


def at(hour: int) -> str:
    return f"2024-01-01T{hour:02d}:00:00Z"


def history(n: int, **series: list[tuple[int, int]]) -> dict[str, Any]:
    """A temporal Lamp ``n`` with each attribute's (hour, value) instances."""
    return {"id": f"urn:ngsi-ld:Lamp:{n}", "type": "Lamp",
            **{name: [{"type": "Property", "value": v, "observedAt": at(h)} for h, v in points]
               for name, points in series.items()}}


def points(entity: dict[str, Any], name: str) -> list[tuple[str, Any]]:
    return [(i["observedAt"], i["value"]) for i in entity.get(name, [])]


async def seeded(fed: Federation, **members: Any) -> str:
    """Hub: Lamp 1 power at 1h and 3h.  Source: Lamp 1 power at 2h and 4h, Lamp 2."""
    source = await fed.source()
    for client, body in ((fed.hub, history(1, power=[(1, 10), (3, 30)])),
                         (source, history(1, power=[(2, 20), (4, 40)])),
                         (source, history(2, power=[(5, 50)]))):
        resp = await client.post(TEMPORAL, json=body, headers=JSON)
        assert resp.status in (201, 204), await resp.text()
    fed.register(registration(url_of(source), **{"operations": OPS, **members}))
    return url_of(source)


async def test_retrieve_merges_the_sources_instances_in_time_order(fed: Federation) -> None:
    await seeded(fed)
    resp = await fed.hub.get(f"{TEMPORAL}/urn:ngsi-ld:Lamp:1")
    assert resp.status == 200
    assert points(await resp.json(), "power") == [(at(1), 10), (at(2), 20), (at(3), 30),
                                                  (at(4), 40)]
    # lastN and timerel apply to the merged series
    last = await (await fed.hub.get(f"{TEMPORAL}/urn:ngsi-ld:Lamp:1?lastN=3")).json()
    assert [v for _, v in points(last, "power")] == [20, 30, 40]
    before = await (await fed.hub.get(
        f"{TEMPORAL}/urn:ngsi-ld:Lamp:1?timerel=before&timeAt={at(3)}")).json()
    assert [v for _, v in points(before, "power")] == [10, 20]
    local = await (await fed.hub.get(f"{TEMPORAL}/urn:ngsi-ld:Lamp:1?local=true")).json()
    assert [v for _, v in points(local, "power")] == [10, 30]
    # an Entity only the source holds
    only = await fed.hub.get(f"{TEMPORAL}/urn:ngsi-ld:Lamp:2")
    assert only.status == 200 and points(await only.json(), "power") == [(at(5), 50)]
    assert (await fed.hub.get(f"{TEMPORAL}/urn:ngsi-ld:Lamp:2?local=true")).status == 404


async def test_queries_by_get_and_post_include_the_sources(fed: Federation) -> None:
    await seeded(fed)
    window = f"timerel=after&timeAt={at(0)}"
    got = await (await fed.hub.get(f"{TEMPORAL}?type=Lamp&{window}")).json()
    assert {e["id"]: [v for _, v in points(e, "power")] for e in got} == {
        "urn:ngsi-ld:Lamp:1": [10, 20, 30, 40], "urn:ngsi-ld:Lamp:2": [50]}
    posted = await fed.hub.post("/ngsi-ld/v1/temporal/entityOperations/query", json={
        "type": "Query", "entities": [{"type": "Lamp"}],
        "temporalQ": {"timerel": "before", "timeAt": at(4)}}, headers=JSON)
    assert posted.status == 200
    assert {e["id"]: [v for _, v in points(e, "power")] for e in await posted.json()} == {
        "urn:ngsi-ld:Lamp:1": [10, 20, 30]}
    counted = await fed.hub.get(f"{TEMPORAL}?type=Lamp&{window}&count=true&limit=1")
    assert counted.headers["NGSILD-Results-Count"] == "2"
    assert [e["id"] for e in await counted.json()] == ["urn:ngsi-ld:Lamp:1"]
    local = await (await fed.hub.get(f"{TEMPORAL}?type=Lamp&{window}&local=true")).json()
    assert [e["id"] for e in local] == ["urn:ngsi-ld:Lamp:1"]


async def test_aggregation_is_of_the_merged_series(fed: Federation) -> None:
    await seeded(fed)
    resp = await fed.hub.get(f"{TEMPORAL}/urn:ngsi-ld:Lamp:1?options=aggregatedValues"
                             "&aggrMethods=sum,max&aggrPeriodDuration=P1D")
    assert resp.status == 200, await resp.text()
    power = (await resp.json())["power"]
    assert power["sum"][0][0] == 100 and power["max"][0][0] == 40


async def test_a_registration_without_temporal_operations_is_not_asked(fed: Federation) -> None:
    await seeded(fed, operations=["federationOps"])
    resp = await fed.hub.get(f"{TEMPORAL}/urn:ngsi-ld:Lamp:1")
    assert [v for _, v in points(await resp.json(), "power")] == [10, 30]
    assert (await fed.hub.get(f"{TEMPORAL}/urn:ngsi-ld:Lamp:2")).status == 404


async def test_an_interval_missing_the_window_rules_the_source_out(fed: Federation) -> None:
    await seeded(fed, observationInterval={"startAt": at(3), "endAt": at(6)})
    early = await (await fed.hub.get(
        f"{TEMPORAL}/urn:ngsi-ld:Lamp:1?timerel=before&timeAt={at(2)}")).json()
    assert [v for _, v in points(early, "power")] == [10]
    late = await (await fed.hub.get(
        f"{TEMPORAL}/urn:ngsi-ld:Lamp:1?timerel=after&timeAt={at(3)}")).json()
    assert [v for _, v in points(late, "power")] == [30, 40]


async def test_failing_and_slow_sources_are_warnings_beside_the_local_history(
        fed: Federation) -> None:
    async def failing(request: web.Request) -> web.Response:
        return web.json_response({"type": "x", "title": "down"}, status=500)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.json_response([])

    await fed.hub.post(TEMPORAL, json=history(1, power=[(1, 10)]), headers=JSON)
    fed.register(registration(await fed.mock(failing), operations=OPS))
    resp = await fed.hub.get(f"{TEMPORAL}/urn:ngsi-ld:Lamp:1")
    assert resp.status == 200 and resp.headers["NGSILD-Warning"].startswith("299 ")
    assert [v for _, v in points(await resp.json(), "power")] == [10]
    fed.registry.remove("", "urn:ngsi-ld:ContextSourceRegistration:r1")
    fed.register(registration(await fed.mock(slow), operations=OPS,
                              management={"timeout": 200}))
    slowed = await fed.hub.get(f"{TEMPORAL}?type=Lamp&timerel=after&timeAt={at(0)}")
    assert slowed.status == 200 and slowed.headers["NGSILD-Warning"].startswith("199 ")
    assert [e["id"] for e in await slowed.json()] == ["urn:ngsi-ld:Lamp:1"]


async def test_the_forwarded_read_and_a_request_that_comes_back(fed: Federation) -> None:
    calls: list[web.Request] = []

    async def record(request: web.Request) -> web.Response:
        calls.append(request)
        return web.json_response([], headers={"Content-Type": "application/json"})

    endpoint = await fed.mock(record)
    await fed.hub.post(TEMPORAL, json=history(1, power=[(1, 10)]), headers=JSON)
    fed.register(registration(endpoint, operations=OPS))
    resp = await fed.hub.get(f"{TEMPORAL}?type=Lamp&attrs=power&timerel=after&timeAt={at(0)}"
                             "&lastN=2&aggrMethods=sum&aggrPeriodDuration=P1D"
                             "&options=aggregatedValues")
    assert resp.status == 200
    (sent,) = calls
    assert sent.path == TEMPORAL
    # in the client's terms, the same window, never aggregated at the source
    assert sent.query["type"] == "Lamp" and sent.query["attrs"] == "power"
    assert sent.query["timerel"] == "after" and sent.query["lastN"] == "2"
    assert "aggrMethods" not in sent.query and "options" not in sent.query
    assert sent.headers["Via"].endswith(fed_alias(fed))
    # 6.3.18: a request that passed through the hub is answered from its own history
    calls.clear()
    via = {"Via": f"1.1 {fed_alias(fed)}"}
    back = await fed.hub.get(f"{TEMPORAL}/urn:ngsi-ld:Lamp:1", headers=via)
    assert back.status == 200 and calls == []


async def test_a_loop_on_a_redirect_source_is_508(fed: Federation) -> None:
    calls: list[str] = []

    async def record(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response([])

    fed.register(registration(await fed.mock(record), mode="redirect", operations=OPS,
                              information=[{"entities": [{"type": "Lamp"}]}]))
    via = {"Via": f"1.1 {fed_alias(fed)}"}
    looped = await fed.hub.get(f"{TEMPORAL}?type=Lamp&timerel=after&timeAt={at(0)}",
                               headers=via)
    assert looped.status == 508
    assert (await looped.json())["type"].endswith("/LoopDetected")
    assert calls == []
    # without the loop, the redirect source is asked
    assert (await fed.hub.get(f"{TEMPORAL}?type=Lamp&timerel=after&timeAt={at(0)}")).status \
        == 200
    assert calls == [TEMPORAL]

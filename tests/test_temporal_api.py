"""The temporal API over HTTP (5.6.11 to 5.6.16, 5.7.3, 5.7.4), on the embedded store
and in memory: history recorded by every write of the entity API, the options,
reads, aggregations and pagination as a client sees them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from broker.app import create_app
from broker.config import Settings, load_settings
from broker.retention import RetentionSweeper
from broker.service import Service
from broker.state import BROKER
from ngsi_ld.temporal import TemporalQuery, format_micros, parse_duration, to_micros
from ngsi_ld.timeutil import now_iso

LD = {"Content-Type": "application/ld+json"}
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
E = "urn:ngsi-ld:Streetlight:1"


def entity(**attrs: Any) -> dict[str, Any]:
    return {"id": E, "type": "Streetlight", "@context": CORE, **attrs}


def prop(value: Any, observed: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": value}
    if observed is not None:
        out["observedAt"] = observed
    return out


def service_of_app(app: Any) -> Service:
    return app[BROKER].service


async def started(settings: Settings) -> TestClient:
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    return client


@pytest.fixture(params=["memory", "sqlite"])
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestClient]:
    store = "memory:" if request.param == "memory" else f"sqlite://{tmp_path}/t.db"
    c = await started(Settings(store=store))
    yield c
    await c.close()


async def history(client: TestClient, query: str = "", status: int = 200) -> Any:
    response = await client.get(f"/ngsi-ld/v1/temporal/entities/{E}?{query}")
    assert response.status == status, await response.text()
    return await response.json()


async def test_every_write_of_the_entity_api_is_recorded(client: TestClient) -> None:
    v1 = "/ngsi-ld/v1"
    assert (await client.post(f"{v1}/entities", json=entity(pm10=prop(10)),
                              headers=LD)).status == 201
    assert (await client.patch(f"{v1}/entities/{E}/attrs", json={"pm10": prop(11)})).status == 204
    assert (await client.post(f"{v1}/entities/{E}/attrs", json={"pm25": prop(5)})).status == 204
    assert (await client.patch(f"{v1}/entities/{E}", json={"pm10": prop(12)})).status == 204
    assert (await client.patch(f"{v1}/entities/{E}/attrs/pm10", json={"value": 13})).status \
        == 204
    assert (await client.put(f"{v1}/entities/{E}/attrs/pm10", json=prop(14))).status == 204
    batch = [{"id": E, "type": "Streetlight", "pm10": prop(15)}]
    assert (await client.post(f"{v1}/entityOperations/upsert?options=update",
                              json=batch)).status == 204
    assert (await client.delete(f"{v1}/entities/{E}/attrs/pm25")).status == 204
    assert (await client.put(f"{v1}/entities/{E}", json={"type": "Streetlight",
                                                         "pm10": prop(16)})).status == 204
    assert (await client.delete(f"{v1}/entities/{E}")).status == 204

    written = await history(client, "timeproperty=modifiedAt"
                            "&options=temporalValues&lastN=10")
    assert [v for v, _ in written["pm10"]["values"]] == [10, 11, 12, 13, 14, 15, 16][-7:]
    deleted = await history(client, "timeproperty=deletedAt&options=sysAttrs")
    assert [i["value"] for i in deleted["pm25"]] == ["urn:ngsi-ld:null"]
    assert [i["value"] for i in deleted["pm10"]] == ["urn:ngsi-ld:null"]
    assert "deletedAt" in deleted  # the Entity's own deletion


async def test_observations_and_hourly_averages(client: TestClient) -> None:
    v1 = "/ngsi-ld/v1"
    await client.post(f"{v1}/entities", json=entity(pm10=prop(0, "2026-01-01T00:00:00Z")),
                      headers=LD)
    for minute in range(10, 180, 10):
        at = f"2026-01-01T{minute // 60:02d}:{minute % 60:02d}:00Z"
        response = await client.patch(f"{v1}/entities/{E}/attrs",
                                      json={"pm10": prop(minute, at)})
        assert response.status == 204
    day = "timerel=between&timeAt=2026-01-01T00:00:00Z&endTimeAt=2026-01-02T00:00:00Z"
    hourly = await history(client, f"{day}&aggrMethods=avg,max,totalCount"
                           "&aggrPeriodDuration=PT1H&format=aggregatedValues")
    assert hourly["pm10"]["avg"] == [
        [25.0, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"],
        [85.0, "2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"],
        [145.0, "2026-01-01T02:00:00Z", "2026-01-01T03:00:00Z"],
    ]
    assert [m[0] for m in hourly["pm10"]["max"]] == [50.0, 110.0, 170.0]
    assert [m[0] for m in hourly["pm10"]["totalCount"]] == [6, 6, 6]
    # the query over the type gives the same series, for every lamppost
    response = await client.get(f"{v1}/temporal/entities?type=Streetlight&attrs=pm10&{day}"
                                "&aggrMethods=avg&aggrPeriodDuration=PT1H"
                                "&format=aggregatedValues")
    assert response.status == 200
    (one,) = await response.json()
    assert one["pm10"]["avg"] == hourly["pm10"]["avg"]


async def test_more_instances_than_the_limit_answer_206_with_a_range(
    client: TestClient,
) -> None:
    v1 = "/ngsi-ld/v1"
    await client.post(f"{v1}/entities", json=entity(pm10=prop(0, "2026-01-01T00:00:00Z")),
                      headers=LD)
    for n in range(1, 15):
        await client.patch(f"{v1}/entities/{E}/attrs",
                           json={"pm10": prop(n, f"2026-01-01T00:{n:02d}:00Z")})
    response = await client.get(f"{v1}/temporal/entities/{E}")
    assert response.status == 206
    assert response.headers["Content-Range"] == \
        "date-time 2026-01-01T00:00:00Z-2026-01-01T00:09:00Z/*"
    assert len((await response.json())["pm10"]) == 10
    last = await history(client, "lastN=3&options=temporalValues")
    assert [v for v, _ in last["pm10"]["values"]] == [12, 13, 14]


async def test_temporal_writes_edit_history(client: TestClient) -> None:
    v1 = "/ngsi-ld/v1/temporal/entities"
    body = {"id": E, "type": "Streetlight", "@context": CORE,
            "pm10": [prop(1, "2026-01-01T00:00:00Z"), prop(2, "2026-01-01T00:01:00Z")]}
    response = await client.post(v1, json=body, headers=LD)
    assert response.status == 201 and response.headers["Location"] == f"{v1}/{E}"
    assert (await client.post(v1, json=body, headers=LD)).status == 204
    current = await client.get(f"/ngsi-ld/v1/entities/{E}")
    assert (await current.json())["pm10"]["value"] == 2  # the latest observation
    found = await history(client)
    assert [i["value"] for i in found["pm10"]] == [1, 2]
    first = found["pm10"][0]["instanceId"]
    patched = await client.patch(f"{v1}/{E}/attrs/pm10/{first}", json={"value": 7})
    assert patched.status == 204
    assert [i["value"] for i in (await history(client))["pm10"]] == [7, 2]
    assert (await client.delete(f"{v1}/{E}/attrs/pm10/{first}")).status == 204
    assert (await client.delete(f"{v1}/{E}/attrs/pm10/{first}")).status == 404
    assert (await client.delete(f"{v1}/{E}/attrs/pm10")).status == 204
    assert (await client.delete(f"{v1}/{E}")).status == 204
    await history(client, status=404)


@pytest.mark.parametrize(("query", "status"), [
    ("timerel=before", 400), ("lastN=0", 400), ("timeproperty=when", 400),
    ("options=aggregatedValues", 400), ("format=fancy", 400), ("aggrMethods=median", 400),
])
async def test_bad_parameters_are_problem_details(client: TestClient, query: str,
                                                  status: int) -> None:
    await client.post("/ngsi-ld/v1/entities", json=entity(pm10=prop(1)), headers=LD)
    response = await client.get(f"/ngsi-ld/v1/temporal/entities/{E}?{query}")
    assert response.status == status
    assert (await response.json())["type"].startswith("https://uri.etsi.org/ngsi-ld/errors/")


async def test_temporal_off_records_nothing_and_answers_501(tmp_path: Path) -> None:
    client = await started(Settings(store=f"sqlite://{tmp_path}/off.db", temporal=False))
    try:
        await client.post("/ngsi-ld/v1/entities", json=entity(pm10=prop(1)), headers=LD)
        response = await client.get(f"/ngsi-ld/v1/temporal/entities/{E}")
        assert response.status == 501
        service = service_of_app(client.app)
        assert service.history is None
        assert await service.store.history.temporal_entities("") == []
    finally:
        await client.close()


async def test_expiry_is_recorded_as_a_deletion(client: TestClient) -> None:
    soon = format_micros(to_micros(now_iso()) + 600_000)
    body = entity(pm10={**prop(1), "expiresAt": soon})
    created = await client.post("/ngsi-ld/v1/entities", json=body, headers=LD)
    assert created.status == 201, await created.text()
    # the attribute expires: its deletion is recorded, with its expiresAt, so that reads
    # after it hide the transient attribute's history as 4.22 asks
    records = service_of_app(client.app).history
    assert records is not None
    for _ in range(50):
        instances = (await records.read_history(
            "", [E], None, TemporalQuery(timeproperty="deletedAt")))[E]
        if any(i.is_deletion for i in instances):
            break
        await asyncio.sleep(0.1)
    (deletion,) = [i for i in instances if i.is_deletion]
    assert deletion.attribute.endswith("pm10") and deletion.expires_at == soon


async def test_retention_sweeper_drops_old_history(client: TestClient) -> None:
    v1 = "/ngsi-ld/v1"
    await client.post(f"{v1}/entities", json=entity(pm10=prop(1, "2020-01-01T00:00:00Z")),
                      headers=LD)
    await client.patch(f"{v1}/entities/{E}/attrs", json={"pm10": prop(2, now_iso())})
    history_store = service_of_app(client.app).history
    assert history_store is not None
    removed = await RetentionSweeper(history_store, parse_duration("P90D")).sweep()
    assert removed == 1
    assert [i["value"] for i in (await history(client))["pm10"]] == [2]


@pytest.mark.parametrize("value", ["P0D", "90 days", "PT"])
def test_a_retention_that_is_no_duration_is_refused(value: str) -> None:
    with pytest.raises(SystemExit):
        load_settings(["--temporal-retention", value])


def test_the_temporal_options_parse() -> None:
    settings = load_settings(["--temporal", "off", "--temporal-retention", "P90D",
                              "--temporal-instance-limit", "100"])
    assert (settings.temporal, settings.temporal_retention,
            settings.temporal_instance_limit) == (False, "P90D", 100)

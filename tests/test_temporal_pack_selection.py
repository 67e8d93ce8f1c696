"""A temporal read of some attributes settles only the packs that may hold them
(storage/sqlite/history_packs.py, schema 12): over many Entities of one type, most
batch-upserted without the attribute asked, the query by type and attrs (plain,
aggregated, counted, paged, by POST) answers what it answers once every pack is
settled, and leaves the packs without the attribute packed; a file of schema 11
opens, upgrades and answers the same."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from broker.app import create_app
from broker.config import Settings
from storage.sqlite.sql import SCHEMA_VERSION

LD = {"Content-Type": "application/ld+json"}
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
V1 = "/ngsi-ld/v1"
DAY = "2026-01-01"
WINDOW = f"timerel=between&timeAt={DAY}T00:00:00Z&endTimeAt=2026-01-02T00:00:00Z"

#: Streetlights batch-upserted without pm10 (their packs hold none)
WITHOUT = [f"urn:ngsi-ld:Streetlight:w{n:02d}" for n in range(40)]
#: Streetlights batch-upserted with a pm10 reading (their packs hold it)
PACKED = [f"urn:ngsi-ld:Streetlight:p{n:02d}" for n in range(4)]
#: Streetlights created, then their pm10 PATCHed (per-series rows)
PATCHED = [f"urn:ngsi-ld:Streetlight:s{n:02d}" for n in range(4)]
#: a Streetlight with a Scope and no pm10, an Entity of another type with pm10
SCOPED = "urn:ngsi-ld:Streetlight:scoped"
OTHER = "urn:ngsi-ld:Sensor:o1"

QUERIES = [
    f"type=Streetlight&attrs=pm10&{WINDOW}",
    f"type=Streetlight&attrs=pm10&{WINDOW}&count=true&limit=3&offset=2",
    f"type=Streetlight&attrs=pm10&{WINDOW}&lastN=2",
    f"type=Streetlight&attrs=pm10&{WINDOW}&aggrMethods=avg,totalCount"
    "&aggrPeriodDuration=PT1H&format=aggregatedValues",
    f"type=Streetlight&attrs=pm10&{WINDOW}&aggrMethods=sum&aggrPeriodDuration=PT1H"
    "&format=aggregatedValues&count=true&limit=2",
    f"type=Streetlight,Sensor&attrs=pm10,status&{WINDOW}&format=temporalValues",
    f"type=Streetlight&attrs=status&{WINDOW}&count=true&limit=5",
    f"type=(Streetlight|Sensor)&attrs=pm10&{WINDOW}&count=true",
]


def prop(value: Any, minute: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": value}
    if minute is not None:
        out["observedAt"] = f"{DAY}T{minute // 60:02d}:{minute % 60:02d}:00Z"
    return out


def streetlight(entity_id: str, n: int, **extra: Any) -> dict[str, Any]:
    return {"id": entity_id, "type": "Streetlight", "@context": CORE,
            "status": prop("on", n), "powerConsumption": prop(n, n),
            "illuminanceLevel": prop(n * 2, n), **extra}


async def started(path: Path) -> TestClient:
    client = TestClient(TestServer(create_app(Settings(store=f"sqlite://{path}"))))
    await client.start_server()
    return client


async def write_all(client: TestClient) -> None:
    batch = [streetlight(e, n) for n, e in enumerate(WITHOUT)]
    batch += [streetlight(e, n, pm10=prop(n * 10, 30 + n)) for n, e in enumerate(PACKED)]
    batch.append(streetlight(SCOPED, 7, scope="/city/north"))
    batch.append({"id": OTHER, "type": "Sensor", "@context": CORE, "pm10": prop(5, 12),
                  "status": prop("ok", 12)})
    response = await client.post(f"{V1}/entityOperations/upsert", json=batch, headers=LD)
    assert response.status in (201, 204), await response.text()
    for n, entity_id in enumerate(PATCHED):
        response = await client.post(f"{V1}/entities", json={
            "id": entity_id, "type": "Streetlight", "@context": CORE,
            "pm10": prop(n, 0)}, headers=LD)
        assert response.status == 201, await response.text()
        for minute in range(10, 130, 20):
            response = await client.patch(f"{V1}/entities/{entity_id}/attrs",
                                          json={"pm10": prop(n + minute, minute)})
            assert response.status == 204, await response.text()
    # a second batch: the packed ones' later readings, the others' new status
    again = [streetlight(e, n + 1) for n, e in enumerate(WITHOUT[:10])]
    again += [streetlight(e, n, pm10=prop(n * 10 + 1, 90 + n)) for n, e in enumerate(PACKED)]
    response = await client.post(f"{V1}/entityOperations/upsert", json=again, headers=LD)
    assert response.status in (201, 204), await response.text()


async def answers(client: TestClient) -> list[tuple[int, dict[str, str], Any]]:
    out = []
    for query in QUERIES:
        response = await client.get(f"{V1}/temporal/entities?{query}")
        headers = {k: v for k, v in response.headers.items()
                   if k in ("NGSILD-Results-Count", "Content-Range")}
        out.append((response.status, headers, await response.json()))
    response = await client.post(f"{V1}/temporal/entityOperations/query", json={
        "type": "Query", "entities": [{"type": "Streetlight"}], "attrs": ["pm10"],
        "temporalQ": {"timerel": "between", "timeAt": f"{DAY}T00:00:00Z",
                      "endTimeAt": "2026-01-02T00:00:00Z"}, "@context": CORE}, headers=LD)
    out.append((response.status, {}, await response.json()))
    return out


def packed_ids(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {eid for (eid,) in conn.execute("SELECT DISTINCT entity_id FROM temporal_packs")}


async def settle_all(client: TestClient) -> None:
    """A read of every attribute of every Entity: every pack settled."""
    for kind in ("Streetlight", "Sensor"):
        response = await client.get(f"{V1}/temporal/entities?type={kind}&{WINDOW}")
        assert response.status == 200, await response.text()


async def test_a_query_by_type_and_attrs_settles_only_the_packs_that_hold_them(
        tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    client = await started(path)
    try:
        await write_all(client)
        assert packed_ids(path) >= {*WITHOUT, *PACKED, SCOPED, OTHER}
        before = await answers(client)
        assert not packed_ids(path) & {*PACKED, OTHER}
        await settle_all(client)
        assert packed_ids(path) == set()
        assert await answers(client) == before
        ids = {e["id"] for e in before[0][2]}
        assert ids == {*PACKED, *PATCHED}  # 5.7.4.4: only those with pm10 instances
    finally:
        await client.close()


async def test_packs_without_the_attribute_asked_stay_packed(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    client = await started(path)
    try:
        await write_all(client)
        for query in QUERIES[:5]:  # pm10 alone
            response = await client.get(f"{V1}/temporal/entities?{query}")
            assert response.status == 200, await response.text()
        left = packed_ids(path)
        # the packs holding pm10 are settled; those without it are not, but the
        # Scope's (a read of attrs also reads the Scope, 5.7.4.4)
        assert not left & {*PACKED, SCOPED}
        assert OTHER in left  # a Sensor: not of the type asked
        assert left >= set(WITHOUT)
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM temporal_packs WHERE sig IS NULL"
                                ).fetchone() == (0,)
    finally:
        await client.close()


async def test_a_file_of_schema_11_upgrades_and_answers_the_same(tmp_path: Path) -> None:
    reference, path = tmp_path / "r.db", tmp_path / "t.db"
    for target in (reference, path):
        client = await started(target)
        try:
            await write_all(client)
        finally:
            await client.close()
    with sqlite3.connect(path) as conn:  # the packs as schema 11 kept them: no sig
        assert conn.execute("SELECT count(*) FROM temporal_packs").fetchone()[0] > 40
        conn.executescript(
            "ALTER TABLE temporal_packs RENAME TO new_packs;"
            "CREATE TABLE temporal_packs (tenant TEXT NOT NULL, entity_id TEXT NOT NULL,"
            " iid INTEGER NOT NULL, tmin INTEGER NOT NULL, body BLOB NOT NULL,"
            " PRIMARY KEY (tenant, entity_id, iid));"
            "INSERT INTO temporal_packs SELECT tenant, entity_id, iid, tmin, body"
            " FROM new_packs; DROP TABLE new_packs;"
            "UPDATE meta SET value = '11' WHERE key = 'schema_version';")
    results = []
    for target in (reference, path):
        client = await started(target)
        try:
            results.append(await answers(client))
        finally:
            await client.close()
    assert results[0] == results[1]
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(temporal_packs)")]
        assert columns[-1] == "sig"  # added at open, after the body
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone() == (str(SCHEMA_VERSION),)

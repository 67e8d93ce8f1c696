"""A temporal read of some attributes settles only the packs that may hold them
(storage/sqlite/history_packs.py, schema 12): over many Entities of one type, most
batch-upserted without the attribute asked, the query by type and attrs (plain,
aggregated, counted, paged, by POST) answers what it answers once every pack is
settled, and leaves the packs without the attribute packed; a file of schema 11
opens, upgrades and answers the same.

Schema 13: such a query reads only the records of the Entities that may have the
attributes (a series of one of them by the series' index by attribute, a pack whose
signature meets theirs by the packs' index by signature:
``TemporalHistory.entities_with``); it answers what the general path answers, every
history backend tells a superset of the Entities with those attributes.

Schema 14: the names of each pack signature are kept (storage/sqlite/pack_names.py):
``PM10`` has ``pm10``'s bit, and the packs of Entities with ``PM10`` (not ``pm10``)
are neither read nor settled by a query of ``pm10``, unless a pack of the same
signature holds ``pm10`` (the names of one signature are the union of its packs')."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from mongo_standin import StandInClient

import storage.sqlite.history
from broker.app import create_app
from broker.config import Settings
from ngsi_ld.temporal import SCOPE, EntityRecord, History, Instance, TemporalQuery
from storage import MemoryStore, SqliteStore
from storage.base import Store
from storage.mongo import MongoStore
from storage.sqlite import history_packs, history_sql, pack_names
from storage.sqlite.history import SqliteHistory
from storage.sqlite.sql import SCHEMA_VERSION

T = TypeVar("T")

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
#: Entities with PM10 (whose signature bit is pm10's) and NO2, no pm10: their packs'
#: signature meets pm10's, its names do not include it
AIR = [f"urn:ngsi-ld:AirQualityObserved:a{n}" for n in range(3)] + [
    "urn:ngsi-ld:Streetlight:air"]
#: a Streetlight with PM10 where PACKED have pm10, written first: the same signature
#: as theirs, its names noted first (then theirs added)
LOOKALIKE = "urn:ngsi-ld:Streetlight:lookalike"

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
    # schema 13: ids and idPattern among the Entities with the attribute; a q filter
    # (the general path); a type expression matched in Python
    f"id={PACKED[0]},{WITHOUT[0]},{PATCHED[1]},{SCOPED}&type=Streetlight&attrs=pm10"
    f"&{WINDOW}",
    f"idPattern=.*:(p01|s02|w03)$&type=Streetlight&attrs=pm10,status&{WINDOW}&count=true",
    f"type=Streetlight&attrs=pm10&q=pm10>2&{WINDOW}",
    f"type=Streetlight;Streetlight&attrs=pm10&{WINDOW}&aggrMethods=max"
    "&aggrPeriodDuration=PT1H&format=aggregatedValues",
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
    first = [streetlight(LOOKALIKE, 3, PM10=prop(3, 3))]
    first += [{"id": e, "type": e.split(":")[2], "@context": CORE, "PM10": prop(n, n),
               "NO2": prop(n, n), "status": prop("ok", n)} for n, e in enumerate(AIR)]
    response = await client.post(f"{V1}/entityOperations/upsert", json=first, headers=LD)
    assert response.status == 201, await response.text()
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
    for entities in ([{"type": "Streetlight"}],
                     [{"type": "Sensor"}, {"id": PATCHED[0], "type": "Streetlight"},
                      {"idPattern": ".*:w0.*", "type": "Streetlight"}]):
        response = await client.post(f"{V1}/temporal/entityOperations/query", json={
            "type": "Query", "entities": entities, "attrs": ["pm10"],
            "temporalQ": {"timerel": "between", "timeAt": f"{DAY}T00:00:00Z",
                          "endTimeAt": "2026-01-02T00:00:00Z"}, "@context": CORE}, headers=LD)
        out.append((response.status, {}, await response.json()))
    return out


async def on_each(paths: tuple[Path, ...], step: Callable[[TestClient], Awaitable[T]]
                  ) -> list[T]:
    """``step`` on a broker started on each file in turn (stopped after it)."""
    results = []
    for path in paths:
        client = await started(path)
        try:
            results.append(await step(client))
        finally:
            await client.close()
    return results


def packed_ids(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {eid for (eid,) in conn.execute("SELECT DISTINCT entity_id FROM temporal_packs")}


async def settle_all(client: TestClient) -> None:
    """A read of every attribute of every Entity: every pack settled."""
    for kind in ("Streetlight", "Sensor", "AirQualityObserved"):
        response = await client.get(f"{V1}/temporal/entities?type={kind}&{WINDOW}")
        assert response.status == 200, await response.text()


async def test_a_query_by_type_and_attrs_settles_only_the_packs_that_hold_them(
        tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    client = await started(path)
    try:
        await write_all(client)
        assert packed_ids(path) >= {*WITHOUT, *PACKED, SCOPED, OTHER, *AIR, LOOKALIKE}
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
        # schema 14: PM10 shares pm10's bit, but their packs' names are known to hold
        # no pm10; the lookalike's signature is the one PACKED's have, its names theirs
        # too (pm10 among them): settled with them
        assert left >= set(AIR)
        assert LOOKALIKE not in left
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM temporal_packs WHERE sig IS NULL"
                                ).fetchone() == (0,)
    finally:
        await client.close()


async def test_a_file_of_schema_11_upgrades_and_answers_the_same(tmp_path: Path) -> None:
    reference, path = tmp_path / "r.db", tmp_path / "t.db"
    await on_each((reference, path), write_all)
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
    results = await on_each((reference, path), answers)
    assert results[0] == results[1]
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(temporal_packs)")]
        assert columns[-1] == "sig"  # added at open, after the body
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone() == (str(SCHEMA_VERSION),)
    with sqlite3.connect(path) as conn:  # schema 13's indexes, created at open
        indexes = {name for (name,) in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'index'")}
        assert {"temporal_series_attribute", "temporal_packs_sig"} <= indexes


async def test_a_file_of_schema_12_gets_the_indexes_and_answers_the_same(
        tmp_path: Path) -> None:
    reference, path = tmp_path / "r.db", tmp_path / "t.db"
    await on_each((reference, path), write_all)
    with sqlite3.connect(path) as conn:  # as schema 12 left it: neither index
        conn.executescript(
            "DROP INDEX temporal_series_attribute; DROP INDEX temporal_packs_sig;"
            "UPDATE meta SET value = '12' WHERE key = 'schema_version';")
    results = await on_each((reference, path), answers)
    assert results[0] == results[1]
    with sqlite3.connect(path) as conn:
        indexes = {name for (name,) in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'index'")}
        assert {"temporal_series_attribute", "temporal_packs_sig"} <= indexes


async def test_a_query_by_attrs_reads_only_the_records_of_entities_with_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The records read are those of the Entities with pm10 (in series or packs) or a
    Scope, never the 40 without; and every answer is the general path's (the store
    saying it cannot tell), before and after the packs are settled."""
    path = tmp_path / "t.db"
    read: list[set[str] | None] = []
    original = SqliteHistory.temporal_entities

    async def spied(self: SqliteHistory, tenant: str, *, ids: Any = None,
                    types: Any = None) -> Any:
        read.append(None if ids is None else set(ids))
        return await original(self, tenant, ids=ids, types=types)

    monkeypatch.setattr(SqliteHistory, "temporal_entities", spied)
    client = await started(path)
    try:
        await write_all(client)
        narrowed = await answers(client)
        assert len(read) == len(QUERIES) + 4  # one a selector
        for n in (0, 1, 2, 3, 4, 7, 8, 11, 12, 13, 14, 15):  # pm10 alone, without q
            ids = read[n]
            assert ids is not None and not ids & set(WITHOUT), QUERIES[n:n + 1]
            assert ids <= {*PACKED, *PATCHED, SCOPED, OTHER, LOOKALIKE}
            assert not ids & set(AIR)  # schema 14: PM10's packs, known not to hold pm10
        assert read[5] is not None and read[5] >= set(WITHOUT)  # status: in their packs
        assert read[8] == {PACKED[0], PATCHED[1], SCOPED}  # the ids asked that may have it
        assert read[10] is None  # q: every record of the type, as before
        assert PATCHED[0] in read[0] and PACKED[0] in read[0]  # series, packs
        assert SCOPED in read[0]  # the Scope is read with any attrs (5.7.4.4)

        async def cannot_tell(self: SqliteHistory, tenant: str,
                              attributes: Any) -> set[str] | None:
            return None

        monkeypatch.setattr(SqliteHistory, "entities_with", cannot_tell)
        assert await answers(client) == narrowed
        await settle_all(client)
        assert await answers(client) == narrowed
        monkeypatch.undo()
        assert await answers(client) == narrowed
    finally:
        await client.close()


def test_the_indexes_find_what_the_reads_of_every_row_find(tmp_path: Path) -> None:
    """``with_packs`` gives the Entities ``packed`` finds one by one, for signatures
    met by some packs, all, none, and NULL ones; ``with_attribute`` those with a series
    of the attribute."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    history_sql.create_tables(conn)
    history_packs.create(conn)
    names = [f"https://example.org/a{n}" for n in range(12)]
    ids = [f"urn:e:{n}" for n in range(30)]
    rows = []
    for n, entity_id in enumerate(ids):
        for k in range(n % 3):  # none, one or two packs, of varied names
            held = names[(n + k) % 12:(n + k) % 12 + 1 + n % 4]
            sig = None if n == 7 else history_packs.signature(held)
            rows.append(("t" if n == 10 else "", entity_id, n * 10 + k, 0, sig, b"[]"))
        if n % 5 == 0:
            conn.execute("INSERT INTO temporal_series (tenant, entity_id, attribute)"
                         " VALUES ('', ?, ?)", (entity_id, names[n % 12]))
    history_packs.add(conn, rows)
    # schema 14: the names of the signatures of every third Entity's packs known
    pack_names.note(conn, {}, [(sig, names[(n + k) % 12:(n + k) % 12 + 1 + n % 4])
                               for n in range(0, 30, 3) for k in range(n % 3)
                               if (sig := rows_sig(rows, ids[n], n * 10 + k)) is not None])
    for asked in ([names[0]], names[3:5], [SCOPE], names, ["https://example.org/none"]):
        holding = history_packs.Holding(conn, asked)
        one_by_one = {e for e in ids if history_packs.packed(conn, "", [e], holding)}
        assert set(history_packs.packed(conn, "", ids, holding)) == one_by_one
        assert history_packs.with_packs(conn, "", holding) == one_by_one
        assert "urn:e:7" in one_by_one  # its pack's signature unknown
        with_series = set(history_sql.with_series(conn, "", ids, asked))
        assert history_sql.with_attribute(conn, "", asked) == with_series
    assert history_packs.with_packs(conn, "t", history_packs.Holding(conn, names)) == {
        "urn:e:10"}


def rows_sig(rows: list[tuple[Any, ...]], entity_id: str, iid: int) -> int | None:
    (sig,) = [row[4] for row in rows if row[1] == entity_id and row[2] == iid]
    return sig  # type: ignore[no-any-return]


def test_a_signature_s_names_tell_the_packs_that_hold_a_name_of_its_bits() -> None:
    """Two names of one bit (``PM10``, ``pm10``): a pack of one is not among the packs
    that may hold the other once its signature's names are known; packs of one
    signature but of other names (the second noted after the first) are all found;
    a signature of unknown names (NULL: a file of schema 13) may hold any."""
    default = "https://uri.etsi.org/ngsi-ld/default-context/"
    upper, lower, no2, status = (default + n for n in ("PM10", "pm10", "NO2", "status"))
    assert history_packs.signature([upper]) == history_packs.signature([lower])
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    history_sql.create_tables(conn)
    history_packs.create(conn)
    air, same = [upper, no2, status], [upper, status]
    known: pack_names.Known = {}
    written = [("urn:air", air), ("urn:upper", same), ("urn:lower", [lower, status])]
    rows = [("", e, n, 0, history_packs.signature(held), b"[]")
            for n, (e, held) in enumerate(written)]
    assert rows[1][4] == rows[2][4] != rows[0][4]  # upper's and lower's: one signature
    for row, (_, held) in zip(rows, written, strict=True):  # one pack a transaction
        pack_names.note(conn, known, [(row[4], held)])
        history_packs.add(conn, [row])

    def holding(*asked: str) -> set[str]:
        found = history_packs.with_packs(conn, "", history_packs.Holding(conn, asked))
        one_by_one = {e for e, _ in written if history_packs.packed(
            conn, "", [e], history_packs.Holding(conn, asked))}
        assert found == one_by_one
        return found

    assert holding(lower) == {"urn:upper", "urn:lower"}  # their signature holds pm10
    assert holding(upper) == {"urn:air", "urn:upper", "urn:lower"}
    assert holding(no2) == {"urn:air"}
    assert holding(default + "pm25") == set()  # pm10's bit too, no pack names it
    # the union of the names, noted once; a new writer (memo forgotten) notes nothing
    assert dict(pack_names.rows(conn)) == {
        rows[0][4]: orjson.dumps(sorted(air)).decode(),
        rows[1][4]: orjson.dumps(sorted([upper, lower, status])).decode()}
    before = conn.total_changes
    pack_names.note(conn, {}, [(rows[2][4], [lower]), (rows[0][4], air)])
    assert conn.total_changes == before
    # a signature of unknown names, as schema 13's are: any name
    conn.execute("UPDATE temporal_pack_names SET names = NULL WHERE sig = ?", (rows[0][4],))
    assert holding(default + "pm25") == {"urn:air"}
    pack_names.note(conn, {}, [(rows[0][4], [no2])])  # stays unknown
    assert dict(pack_names.rows(conn))[rows[0][4]] is None


async def test_a_file_of_schema_13_gets_the_names_and_answers_the_same(
        tmp_path: Path) -> None:
    reference, path = tmp_path / "r.db", tmp_path / "t.db"
    await on_each((reference, path), write_all)
    with sqlite3.connect(path) as conn:  # as schema 13 left it: no names
        sigs = {sig for (sig,) in conn.execute(
            "SELECT DISTINCT sig FROM temporal_packs WHERE sig IS NOT NULL")}
        assert len(sigs) >= 3
        conn.executescript("DROP TABLE temporal_pack_names;"
                           "UPDATE meta SET value = '13' WHERE key = 'schema_version';")
    results = await on_each((reference, path), answers)
    assert results[0] == results[1]
    with sqlite3.connect(path) as conn:  # their names unknown: every pack may hold any
        assert dict(pack_names.rows(conn)) == dict.fromkeys(sigs)
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone() == (str(SCHEMA_VERSION),)
    assert AIR[-1] not in packed_ids(path)  # a Streetlight with PM10: settled, as in 13


async def test_a_query_of_a_name_that_shares_a_bit_answers_as_the_general_path(
        tmp_path: Path) -> None:
    """A query of PM10 (pm10's bit) and of pm10: the same answers before and after
    every pack is settled; PM10's holds the AirQualityObserved Entities and the
    lookalike, pm10's none of them."""
    path = tmp_path / "t.db"
    queries = [f"type=AirQualityObserved,Streetlight&attrs=PM10&{WINDOW}",
               f"type=AirQualityObserved,Streetlight&attrs=pm10,NO2&{WINDOW}&count=true",
               f"type=AirQualityObserved,Streetlight&attrs=pm10&{WINDOW}&aggrMethods=max"
               "&aggrPeriodDuration=PT1H&format=aggregatedValues"]

    async def asked(client: TestClient) -> list[Any]:
        out = []
        for query in queries:
            response = await client.get(f"{V1}/temporal/entities?{query}")
            assert response.status == 200, await response.text()
            out.append(await response.json())
        return out

    client = await started(path)
    try:
        await write_all(client)
        before = await asked(client)
        await settle_all(client)
        assert packed_ids(path) == set()
        assert await asked(client) == before
        assert {e["id"] for e in before[0]} == {*AIR, LOOKALIKE}
        assert {e["id"] for e in before[2]} == {*PACKED, *PATCHED}
        assert {e["id"] for e in before[1]} >= set(AIR)  # by NO2
    finally:
        await client.close()


async def test_a_read_of_many_entities_packs_settles_them_in_bounded_transactions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More than ``SETTLE_CHUNK`` Entities with packs the read needs: settled in
    transactions of at most that many, then read on a reader; a pack written between
    two of them is settled too (on the writer, with the read), and the answer is what
    the same read gives afterwards."""
    path = tmp_path / "t.db"
    await on_each((path,), write_all)
    monkeypatch.setattr(storage.sqlite.history, "SETTLE_CHUNK", 8)
    store = SqliteStore(path)
    await store.open()
    try:
        history = store.history
        assert isinstance(history, SqliteHistory)
        with sqlite3.connect(path) as conn:
            names = {n for row in pack_names.rows(conn) for n in orjson.loads(row[1])}
        (status,) = [n for n in names if n.endswith("/status")]
        ids = [*WITHOUT, *PACKED, *PATCHED, SCOPED, LOOKALIKE]
        settled: list[int] = []
        original_settle, original_write = storage.sqlite.history.settle, history._write

        def counted(conn: sqlite3.Connection, tenant: str, part: Any, *args: Any) -> None:
            settled.append(len(part))
            original_settle(conn, tenant, part, *args)

        late = EntityRecord(WITHOUT[0], ("https://uri.etsi.org/ngsi-ld/default-context/"
                                         "Streetlight",), "2026-01-01T00:00:00Z",
                            "2026-01-01T05:00:00Z")

        async def writing(job: Any) -> Any:
            result = await original_write(job)
            if len(settled) == 2:  # between the second chunk and the third: a pack
                await original_write(lambda conn: history.record(conn, "", [History(
                    late, tuple(Instance(name, history.new_instance_id(), "Property", 99,
                                         observed_at="2026-01-01T05:00:00Z")
                                for name in (status, status + "2")))]))
            return result

        monkeypatch.setattr(storage.sqlite.history, "settle", counted)
        history._write = writing  # type: ignore[method-assign]
        found = await history.read_history("", ids, [status], TemporalQuery())
        # the 46 with packs of status (PATCHED's hold pm10 alone), 8 a transaction,
        # then the late pack, settled with the read (the ids it was asked of)
        assert settled == [8, 8, 8, 8, 8, 6, len(ids)]
        assert 99 in [i.value for i in found[WITHOUT[0]]]
        history._write = original_write  # type: ignore[method-assign]
        assert await history.read_history("", ids, [status], TemporalQuery()) == found
        assert len(settled) == 7  # nothing left to settle
    finally:
        await store.close()


@pytest.fixture(params=["memory", "sqlite", "mongodb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    backend: Store
    if request.param == "memory":
        backend = MemoryStore()
    elif request.param == "sqlite":
        backend = SqliteStore(tmp_path / "h.db")
    else:
        backend = MongoStore("mongodb://stand-in/h", client_factory=StandInClient)
    await backend.open()
    yield backend
    await backend.close()


async def test_every_history_tells_the_entities_with_an_attribute(store: Store) -> None:
    """``entities_with``: every Entity with an instance of one of the attributes or of
    the Scope, exactly those when every record was written with this version."""
    history = store.history
    assert history is not None
    pm10, status = "https://example.org/pm10", "https://example.org/status"

    def written(entity_id: str, *attributes: str) -> History:
        record = EntityRecord(entity_id, ("https://example.org/T",), "2026-01-01T00:00:00Z",
                              "2026-01-01T00:00:00Z")
        return History(record, tuple(
            Instance(name, history.new_instance_id(), "Property", n,
                     observed_at=f"2026-01-01T00:00:0{n}Z")
            for n, name in enumerate(attributes)))

    await history.add_history("", [written("urn:e:1", pm10, status),
                                   written("urn:e:2", status),
                                   written("urn:e:3", SCOPE),
                                   written("urn:e:4", pm10)])
    await history.add_history("other", [written("urn:e:5", pm10)])
    assert await history.entities_with("", [pm10]) == {"urn:e:1", "urn:e:3", "urn:e:4"}
    assert await history.entities_with("", [status]) == {"urn:e:1", "urn:e:2", "urn:e:3"}
    assert await history.entities_with("", ["https://example.org/none"]) == {"urn:e:3"}
    assert await history.entities_with("other", [pm10]) == {"urn:e:5"}

"""The MongoDB backend (storage/mongo/store.py) on the stand-in of the PyMongo API.

What is pinned here: the documents, filters, updates, pipelines and indexes the
backend sends for each operation (recorded by the stand-in), its settings, how it
survives losing the server, and races between two broker processes (two stores
on one stand-in server).  The stand-in is not MongoDB (see mongo_standin.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mongo_standin import Call, OneServer
from storage_contract import U, add_attr, create, delete, entity, fresh_tenant, put
from test_mongo_filters import entities as random_entities
from test_mongo_filters import queries as random_queries

from ngsi_ld.errors import BadRequestData, ServiceUnavailable
from ngsi_ld.query import EntityQuery, QExpr, TypeName, parse_geo_query, parse_q, resolve_names
from storage import ContextRecord, MemoryStore
from storage.mongo import MongoStore

T = "https://example.org/T"
P = "https://example.org/p"
ENC_P = "https://example%2Eorg/p"
LOC = "https://example.org/loc"


def q(text: str) -> QExpr:
    """A q expression whose names are expanded as in the store (https://example.org/NAME)."""
    return resolve_names(parse_q(text), lambda name: "https://example.org/" + name)


class Server(OneServer):
    """One stand-in server shared by every store (broker process) of a test, its calls
    recorded."""

    @property
    def calls(self) -> list[Call]:
        assert self.client is not None
        return self.client.calls

    def take(self, method: str) -> list[Call]:
        """The recorded calls of ``method`` since the last take, then forget all calls."""
        found = [c for c in self.calls if c.method == method]
        self.calls.clear()
        return found


@pytest.fixture
def server() -> Server:
    return Server()


async def _store(server: Server, url: str = "mongodb://h/orion", **options: Any) -> MongoStore:
    store = MongoStore(url, client_factory=server.factory, **options)
    await store.open()
    return store


# -- client options -------------------------------------------------------------------------------


async def test_options_reach_the_client(server: Server) -> None:
    store = await _store(server, "mongodb://h/x?replicaSet=rs", max_pool_size=7)
    assert server.client is not None
    assert server.client.url == "mongodb://h/x?replicaSet=rs"
    assert server.client.options["maxPoolSize"] == 7
    await store.close()
    assert server.client.closed


# -- layout, indexes and documents -----------------------------------------------------------


async def test_start_up_creates_indexes_of_the_default_database(server: Server) -> None:
    await _store(server)
    indexes = [(c.database, c.collection, c.args[0], c.kwargs) for c in server.take("create_index")]
    assert indexes == [
        ("orion", "entities", [("type", 1)], {"name": "type"}),
        ("orion", "entities", [("attrNames", 1)], {"name": "attrNames"}),
        ("orion", "entities", [("createdAt", 1)], {"name": "createdAt"}),
        ("orion", "entities", [("modifiedAt", 1)], {"name": "modifiedAt"}),
        ("orion", "entities", [("expiry", 1)], {"name": "expiry", "sparse": True}),
    ]


async def test_tenant_database_and_registry(server: Server) -> None:
    store = await _store(server)
    tenant = fresh_tenant()
    server.calls.clear()
    await store.modify(tenant, "urn:x", create(entity("urn:x", p=1)))
    registry = [c for c in server.calls if c.method == "update_one" and c.collection == "tenants"]
    assert [(c.database, c.collection, c.args) for c in registry] == [
        ("orion", "tenants", ({"_id": tenant}, {"$setOnInsert": {"_id": tenant}}))
    ]
    assert {c.database for c in server.calls if c.method == "create_index"} == {f"orion-{tenant}"}
    (insert,) = [c for c in server.calls if c.method == "insert_one"]
    assert (insert.database, insert.collection) == (f"orion-{tenant}", "entities")
    with pytest.raises(BadRequestData):
        await store.ensure_tenant("a.b")


async def test_entity_document(server: Server) -> None:
    store = await _store(server)
    e = entity("urn:ngsi-ld:T:1", p=1)
    e["attrs"][LOC] = [
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1.0, 2.0]}},
        {
            "type": "GeoProperty",
            "datasetId": "urn:d",
            "value": {"type": "Point", "coordinates": [9, 99]},
        },
    ]
    e["attrs"][P][0]["value"] = {"a.b": 1, "$c": [2]}
    server.calls.clear()
    await store.modify("", e["id"], create(e))
    (insert,) = server.take("insert_one")
    doc = insert.args[0]
    assert doc["_id"] == e["id"] and "id" not in doc
    assert doc["type"] == [T] and doc["version"] == 1 and len(doc["writeId"]) == 32
    assert doc["attrNames"] == [LOC, P]
    assert doc["attrs"][ENC_P] == [{"type": "Property", "value": {"a%2Eb": 1, "%24c": [2]}}]
    assert doc["attrMeta"] == [
        {"name": LOC, "kinds": ["GeoProperty"], "count": 2},
        {"name": P, "kinds": ["Property"], "count": 1},
    ]
    # latitude 99 is not valid GeoJSON: not indexed (it could never match a geo-query)
    assert doc["geo"] == {
        "https://example%2Eorg/loc": [{"type": "Point", "coordinates": [1.0, 2.0]}]
    }
    assert await store.get_entity("", e["id"]) == e


async def test_update_is_conditional_on_the_version(server: Server) -> None:
    store = await _store(server)
    await store.modify("", "urn:x", create(entity("urn:x", p=1)))
    server.calls.clear()
    await store.modify("", "urn:x", add_attr("q", 2))
    (replace,) = server.take("replace_one")
    assert replace.args[0] == {"_id": "urn:x", "version": 1}
    assert replace.args[1]["version"] == 2
    await store.modify("", "urn:x", delete)
    (deletion,) = server.take("delete_one")
    assert deletion.args[0] == {"_id": "urn:x", "version": 2}


# -- transient entities (clause 4.22) ------------------------------------------------------------


async def test_expiries_are_a_sparse_indexed_field(server: Server) -> None:
    store = await _store(server)
    transient = {**entity("urn:e:1", p=1), "expiresAt": "2030-01-01T00:00:00Z"}
    await store.modify("", "urn:e:1", create(transient))
    await store.modify("", "urn:e:2", create(entity("urn:e:2", p=1)))
    docs = [c.args[0] for c in server.calls if c.method == "insert_one"]
    assert docs[0]["expiry"] == 1893456000000 and "expiry" not in docs[1]
    server.calls.clear()
    assert await store.due_expiries(1893456000000, 10) == [("", "urn:e:1")]
    assert await store.next_expiry() == 1893456000000
    due, upcoming = [c for c in server.calls if c.method == "find" and c.collection == "entities"]
    assert due.args[0] == {"expiry": {"$lte": 1893456000000}}
    assert (due.kwargs["sort"], due.kwargs["limit"]) == ([("expiry", 1)], 10)
    assert upcoming.args[0] == {"expiry": {"$exists": True}}
    assert (upcoming.kwargs["sort"], upcoming.kwargs["limit"]) == ([("expiry", 1)], 1)
    assert await store.get_entity("", "urn:e:1") == transient  # the field is not the entity's


# -- queries -----------------------------------------------------------------------------------


async def test_exact_query_pages_and_counts_in_mongodb(server: Server) -> None:
    store = await _store(server)
    for n in range(5):
        await store.modify("", f"urn:e:{n}", create(entity(f"urn:e:{n}", p=n)))
    server.calls.clear()
    query = EntityQuery(type_expr=TypeName(T), q=q("p>=1"))
    found, total = await store.query_entities("", query, offset=1, limit=2, count=True)
    assert [e["id"] for e in found] == ["urn:e:2", "urn:e:3"] and total == 4
    (find,) = [c for c in server.calls if c.method == "find"]
    assert find.kwargs["sort"] == [("_id", 1)]
    assert (find.kwargs["skip"], find.kwargs["limit"]) == (1, 2)
    (count,) = [c for c in server.calls if c.method == "count_documents"]
    assert count.args[0] == find.args[0]


async def test_inexact_query_is_post_filtered(server: Server) -> None:
    store = await _store(server)
    for n in range(4):
        e = entity(f"urn:e:{n}", p=n)
        e["attrs"][P][0]["observedAt"] = f"2026-01-0{n + 1}T00:00:00.000Z"
        await store.modify("", e["id"], create(e))
    server.calls.clear()
    query = EntityQuery(q=q("p.observedAt>2026-01-02T12:00:00Z"))
    found, total = await store.query_entities("", query, count=True)
    assert [e["id"] for e in found] == ["urn:e:2", "urn:e:3"] and total == 2
    (find,) = [c for c in server.calls if c.method == "find"]
    assert find.kwargs["skip"] == 0 and find.kwargs["limit"] == 0  # paged in Python
    assert not [c for c in server.calls if c.method == "count_documents"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=st.data(),
    query=random_queries,
    offset=st.integers(0, 3),
    limit=st.none() | st.integers(0, 3),
)
async def test_queries_page_and_count_as_the_memory_store(
    data: st.DataObject, query: EntityQuery, offset: int, limit: int | None
) -> None:
    """Exact and post-filtered plans both page and count like the reference store."""
    population = [data.draw(random_entities(n)) for n in range(data.draw(st.integers(0, 6)))]
    mongo = await _store(Server())
    memory = MemoryStore()
    for store in (mongo, memory):
        await store.modify_many("", [(e["id"], create(e)) for e in population])
    for count in (False, True):
        expected = await memory.query_entities("", query, offset=offset, limit=limit, count=count)
        assert (
            await mongo.query_entities("", query, offset=offset, limit=limit, count=count)
            == expected
        )


async def test_geo_query_creates_its_2dsphere_index_once(server: Server) -> None:
    store = await _store(server)
    e = entity("urn:g")
    e["attrs"][LOC] = [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 1]}}]
    await store.modify("", e["id"], create(e))
    server.calls.clear()
    geo = parse_geo_query("near;maxDistance==1000", "Point", [1, 1.001], LOC)
    for _ in range(2):
        found, _ = await store.query_entities("", EntityQuery(geo_q=geo))
        assert [x["id"] for x in found] == ["urn:g"]
    (index,) = server.take("create_index")
    assert index.args[0] == [("geo.https://example%2Eorg/loc", "2dsphere")]


async def test_discovery_names_by_pipelines_details_by_counters(server: Server) -> None:
    store = await _store(server)
    server.calls.clear()
    await store.modify("", "urn:a", create(entity("urn:a", p=1)))
    # the write sends its counters' changes: $inc upserts, one bulk write
    (counted,) = server.take("bulk_write")
    assert counted.collection == "discoveryStats"
    assert [(args["filter"]["_id"], args["update"]) for _, args in counted.args[0]] == [
        (f"\n{P}\nProperty",
         {"$inc": {"n": 1}, "$setOnInsert": {"type": "", "attr": P, "kind": "Property"}}),
        (f"{T}\n\n", {"$inc": {"n": 1}, "$setOnInsert": {"type": T, "attr": "", "kind": ""}}),
        (f"{T}\n{P}\nProperty",
         {"$inc": {"n": 1}, "$setOnInsert": {"type": T, "attr": P, "kind": "Property"}}),
    ]
    # a value change changes no counter: nothing is sent
    await store.modify("", "urn:a", add_attr("p", 2))
    assert server.take("bulk_write") == []
    assert await store.type_names("") == [T]
    (pipeline,) = [c.args[0] for c in server.take("aggregate")]
    assert pipeline == [{"$unwind": "$type"}, {"$group": {"_id": "$type"}}, {"$sort": {"_id": 1}}]
    server.calls.clear()
    (summary,) = await store.attribute_summaries("", [P])
    assert (summary.instance_count, summary.kinds, summary.type_names) == (1, {"Property"}, {T})
    reads = [(c.method, c.collection, c.args[0]) for c in server.calls]
    assert reads == [  # no entity is read
        ("find_one", "discoveryStats", {"_id": "#counted"}),
        ("find", "discoveryStats",
         {"n": {"$gt": 0}, "type": {"$exists": True}, "attr": {"$in": [P]}}),
    ]


async def test_discovery_counts_a_database_written_before_the_counters(server: Server) -> None:
    store = await _store(server)
    await store.modify("", "urn:a", create(entity("urn:a", p=1)))
    await store.modify("", "urn:b", create(entity("urn:b", [T, U], p=2, q=3)))
    # as a database of an older version: no counters, no marker
    assert server.client is not None
    await server.client["orion"]["discoveryStats"].delete_many({})
    server.calls.clear()
    (summary,) = await store.type_summaries("", [U])
    assert (summary.entity_count, set(summary.attributes)) == (1, {P, "https://example.org/q"})
    (p,) = await store.attribute_summaries("", [P])
    assert (p.instance_count, p.type_names) == (2, {T, U})
    assert [c.args[0] for c in server.take("update_one")
            if c.collection == "discoveryStats"] == [{"_id": "#counted"}]


# -- contexts and records ----------------------------------------------------------------------


async def test_contexts_keep_odd_keys_and_live_in_the_default_database(server: Server) -> None:
    store = await _store(server)
    record = ContextRecord("urn:ctx", "Hosted", {"@context": {"a.b": "x:y", "$t": "z"}}, "now")
    await store.put_context(record)
    (write,) = server.take("replace_one")
    assert (write.database, write.collection) == ("orion", "contexts")
    assert write.args[1]["document"] == {"@context": {"a%2Eb": "x:y", "%24t": "z"}}
    assert await store.get_context("urn:ctx") == record


async def test_records(server: Server) -> None:
    store = await _store(server)
    tenant = fresh_tenant()
    await store.put_record("", "subscriptions", "urn:s:2", {"q": "a.b", "x.y": {"$z": 1}})
    await store.put_record("", "subscriptions", "urn:s:1", {"n": 1})
    await store.put_record(tenant, "subscriptions", "urn:s:3", {"n": 3})
    assert await store.get_record("", "subscriptions", "urn:s:2") == {"q": "a.b", "x.y": {"$z": 1}}
    assert await store.get_record("", "subscriptions", "urn:none") is None
    assert [r["n"] for r in await store.list_records("", "subscriptions") if "n" in r] == [1]
    assert len(await store.list_records("", "subscriptions")) == 2
    assert await store.tenant_exists(tenant)
    assert sorted((t, sorted(d)) for t, d in await store.all_records("subscriptions")) == sorted(
        [("", ["q", "x.y"]), ("", ["n"]), (tenant, ["n"])]
    )
    assert await store.delete_record("", "subscriptions", "urn:s:1") is True
    assert await store.delete_record("", "subscriptions", "urn:s:1") is False
    with pytest.raises(ValueError):
        await store.put_record("", "entities", "x", {})


# -- several broker processes on one server ----------------------------------------------------


async def test_two_processes_writing_one_entity_lose_nothing(server: Server) -> None:
    first, second = await _store(server), await _store(server)
    await first.modify("", "urn:hot", create(entity("urn:hot")))
    await asyncio.gather(
        *(
            (first if n % 2 else second).modify("", "urn:hot", add_attr(f"a{n}", n))
            for n in range(30)
        )
    )
    got = await first.get_entity("", "urn:hot")
    assert got is not None and len(got["attrs"]) == 30
    # the two processes did conflict: some replace_one matched nothing and was redone
    replaces = [c for c in server.calls if c.method == "replace_one"]
    assert len(replaces) > 30


# -- faults ------------------------------------------------------------------------------------


async def test_unreachable_at_start_up_logs_retries_and_recovers(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    client = server.factory("mongodb://h/orion")
    client.go_down()
    store = MongoStore("mongodb://u:pw@h/orion", client_factory=server.factory, retry_interval=0.01)
    with caplog.at_level(logging.ERROR, logger="storage.mongo"):
        await store.open()  # does not raise
    assert "unreachable at start-up" in caplog.text and "pw" not in caplog.text
    with pytest.raises(ServiceUnavailable) as info:
        await store.get_entity("", "urn:x")
    assert info.value.to_problem()["status"] == 503
    with pytest.raises(ServiceUnavailable):
        await store.health()
    client.come_back()
    for _ in range(100):
        if store._reconnect is not None and store._reconnect.done():
            break
        await asyncio.sleep(0.01)
    assert any(c.method == "create_index" for c in client.calls)
    assert (await store.health())["kind"] == "mongodb"
    await store.close()


async def test_lost_while_serving_is_503_per_request_then_recovers(server: Server) -> None:
    store = await _store(server)
    await store.modify("", "urn:x", create(entity("urn:x", p=1)))
    assert server.client is not None
    server.client.go_down()
    for call in (
        store.get_entity("", "urn:x"),
        store.modify("", "urn:x", add_attr("q", 1)),
        store.modify_many("", [("urn:y", put(entity("urn:y")))]),
        store.query_entities("", EntityQuery(type_expr=TypeName(T))),
        store.type_names(""),
        store.list_contexts(),
    ):
        with pytest.raises(ServiceUnavailable):
            await call
    server.client.come_back()
    assert (await store.get_entity("", "urn:x")) == entity("urn:x", p=1)
    await store.modify("", "urn:x", add_attr("q", 1))
    got = await store.get_entity("", "urn:x")
    assert got is not None and len(got["attrs"]) == 2


async def test_drop_databases(server: Server) -> None:
    store = await _store(server)
    tenant = fresh_tenant()
    await store.modify(tenant, "urn:x", create(entity("urn:x")))
    await store.modify("", "urn:y", create(entity("urn:y")))
    await store.drop_databases()
    dropped = [c.database for c in server.take("drop_database")]
    assert dropped == [f"orion-{tenant}", "orion"]
    assert not await store.tenant_exists(tenant)
    assert await store.get_entity("", "urn:y") is None


async def test_real_driver_without_a_server_starts_and_answers_503(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PyMongo's own AsyncMongoClient against a port nobody listens on."""
    store = MongoStore(
        "mongodb://127.0.0.1:9/orion", server_selection_timeout_ms=100, retry_interval=30
    )
    with caplog.at_level(logging.ERROR, logger="storage.mongo"):
        await store.open()
    assert "unreachable at start-up" in caplog.text
    try:
        with pytest.raises(ServiceUnavailable):
            await store.get_entity("", "urn:x")
        with pytest.raises(ServiceUnavailable):
            await store.modify("", "urn:x", create(entity("urn:x")))
    finally:
        await store.close()

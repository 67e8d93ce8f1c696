"""What the MongoDB history sends: documents, indexes, filters and the aggregation
pipeline (on the stand-in of tests/mongo_standin.py, which records every call)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mongo_standin import Call, OneServer, StandInClient

from ngsi_ld.temporal import (
    SCOPE,
    Aggregation,
    Instance,
    TemporalQuery,
    history_of_write,
    parse_duration,
    to_micros,
)
from storage.mongo import MongoStore
from storage.mongo.history import aggregation_pipeline, instance_document, series_cut_pipeline
from storage.temporal import INSTANCE_PREFIX, EntityRecord, History

DAY = to_micros("2026-01-01T00:00:00Z")


@pytest.fixture
async def store() -> AsyncIterator[MongoStore]:
    backend = MongoStore("mongodb://stand-in/h", client_factory=StandInClient)
    await backend.open()
    yield backend
    await backend.close()


def calls(store: MongoStore, method: str) -> list[Call]:
    client: Any = store.client
    found = [c for c in client.calls if c.method == method]
    client.calls.clear()
    return found


def test_an_instance_document_keeps_numbers_apart_and_the_instance_as_text() -> None:
    inst = Instance("https://x/p", f"{INSTANCE_PREFIX}7", "Property", 2.5,
                    observed_at="2026-01-01T00:00:10Z", modified_at="2026-01-01T00:00:11.000Z",
                    members={"unitCode": "GQ", "$odd.key": 1})
    doc = instance_document("urn:e:1", inst, 7)
    assert (doc["_id"], doc["e"], doc["a"], doc["d"], doc["k"]) == \
        (7, "urn:e:1", "https://x/p", None, "Property")
    assert doc["t"] == DAY + 10_000_000 and doc["o"] is True and doc["n"] == 2.5
    assert doc["at"].timestamp() == 1767225610.0
    assert '"$odd.key":1' in doc["j"]  # a key MongoDB refuses stays inside the text
    text = instance_document("urn:e:1", Instance("p", "i", "Property", "high"), 1)
    assert text["n"] is None and text["o"] is False
    assert instance_document("urn:e:1", Instance("p", "i", "Property", True), 1)["n"] is None


def test_the_aggregation_pipeline_groups_by_series_kind_and_period() -> None:
    query = TemporalQuery("between", DAY, DAY + 86_400_000_000)
    pipeline = aggregation_pipeline(["urn:e:1"], ["https://x/p"], query,
                                    Aggregation(("avg", "max"), parse_duration("PT1H")))
    match, group, sort = pipeline
    assert match == {"$match": {
        "e": {"$in": ["urn:e:1"]}, "del": False, "o": True,
        "t": {"$gte": DAY, "$lt": DAY + 86_400_000_000},
        "a": {"$in": ["https://x/p", "https://uri.etsi.org/ngsi-ld/scope"]}}}
    assert group["$group"]["_id"]["p"] == {
        "$floor": {"$divide": [{"$subtract": ["$t", DAY]}, 3_600_000_000]}}
    assert group["$group"]["sd"] == {"$stdDevPop": "$n"}
    assert sort == {"$sort": {"_id.e": 1, "_id.a": 1, "_id.p": 1}}


def layout_store(version: tuple[int, int]) -> MongoStore:
    def factory(url: str, **options: Any) -> StandInClient:
        return StandInClient(url, version=version, **options)

    return MongoStore("mongodb://stand-in/h", client_factory=factory)


@pytest.fixture(params=[(8, 0), (6, 0)], ids=["time-series", "plain"])
async def laid_out(request: pytest.FixtureRequest) -> AsyncIterator[MongoStore]:
    """A store on a server with time-series history (MongoDB 8) or without (6)."""
    backend = layout_store(request.param)
    await backend.open()
    yield backend
    await backend.close()


def record_at(stamp: str) -> Any:
    def record(before: Any, after: Any, new_id: Any) -> Any:
        return history_of_write(before, after, stamp, new_id)
    return record


async def test_a_write_records_its_history_and_indexes_the_instances(
    laid_out: MongoStore,
) -> None:
    store = laid_out
    series = store.client.version >= (7, 0)
    entity = {"id": "urn:e:1", "type": ["urn:T"], "attrs": {"urn:p": [
        {"type": "Property", "value": 3, "observedAt": "2026-01-01T00:00:00Z"}]}}
    calls(store, "")
    await store.modify("", "urn:e:1", lambda current: entity,
                       record=record_at("2026-01-01T00:00:01Z"))
    client: Any = store.client
    creates = [c for c in client.calls if c.method == "command" and c.args[0] == "create"]
    if series:
        assert [(c.args, c.kwargs) for c in creates] == [(
            ("create", "temporal_instances"),
            {"timeseries": {"timeField": "at", "metaField": "s", "granularity": "seconds"}})]
    else:
        assert creates == []
    made = [c for c in client.calls if c.collection == "temporal_instances"]
    assert [c.method for c in made] == ["create_index", "insert_many"]
    assert made[0].args == ([("e", 1), ("a", 1), ("t", -1)],)
    (doc,) = made[1].args[0]
    assert doc["n"] == 3
    assert doc.get("s") == ({"e": "urn:e:1", "a": "urn:p", "d": None} if series else None)
    records = [c for c in client.calls if c.collection == "temporal_entities"]
    assert records[-1].method == "update_one"
    assert records[-1].args[1]["$addToSet"]["types"] == {"$each": ["urn:T"]}


async def test_an_existing_collection_keeps_its_kind() -> None:
    old = layout_store((6, 0))
    await old.open()
    await old.modify("", "urn:e:1", lambda _: {"id": "urn:e:1", "type": ["urn:T"], "attrs": {
        "urn:p": [{"type": "Property", "value": 1}]}}, record=record_at("2026-01-01T00:00:01Z"))
    client: Any = old.client
    newer = MongoStore("mongodb://stand-in/h", client_factory=lambda url, **kw: client)
    client.version = (8, 0)  # the server was upgraded; the collection stays plain
    await newer.open()
    client.calls.clear()
    await newer.modify("", "urn:e:1", lambda _: None, record=record_at("2026-01-01T00:00:02Z"))
    creates = [c for c in client.calls if c.method == "command" and c.args[0] == "create"]
    assert len(creates) == 1  # tried, refused: the collection exists
    listed = [c for c in client.calls if c.method == "command"
              and c.args[0] == "listCollections"]
    assert listed[0].kwargs == {"filter": {"name": "temporal_instances"}}
    inserted = [c for c in client.calls if c.method == "insert_many"]
    assert all("s" not in doc for doc in inserted[0].args[0])
    await newer.close()


async def test_a_replacement_in_a_time_series_is_a_delete_then_an_insert() -> None:
    store = layout_store((8, 0))
    await store.open()
    entity = {"id": "urn:e:1", "type": ["urn:T"], "attrs": {"urn:p": [
        {"type": "Property", "value": 3, "observedAt": "2026-01-01T00:00:00Z"}]}}
    await store.modify("", "urn:e:1", lambda _: entity, record=record_at("2026-01-01T00:00:01Z"))
    query = TemporalQuery(None, None, None)
    found = await store.history.read_history("", ["urn:e:1"], None, query)
    (first,) = [i for i in found["urn:e:1"] if i.attribute == "urn:p"]
    calls(store, "")
    changed = Instance(first.attribute, first.instance_id, "Property", 4,
                       observed_at=first.observed_at)
    assert await store.history.replace_history_instance("", "urn:e:1", changed)
    client: Any = store.client
    sent = [c.method for c in client.calls if c.collection == "temporal_instances"]
    assert sent == ["delete_one", "insert_one"]
    found = await store.history.read_history("", ["urn:e:1"], None, query)
    assert [i.value for i in found["urn:e:1"] if i.attribute == "urn:p"] == [4]
    await store.close()


async def test_retention_is_a_ttl_index_or_the_time_series_expiry(laid_out: MongoStore) -> None:
    store = laid_out
    calls(store, "")
    await store.history.drop_history_before(DAY)
    client: Any = store.client
    if client.version >= (7, 0):
        (mod,) = [c for c in calls(store, "command") if c.args[0] == "collMod"]
        assert mod.args == ("collMod", "temporal_instances")
        assert mod.kwargs["expireAfterSeconds"] > 0
    else:
        (index,) = [c for c in calls(store, "create_index") if c.kwargs.get("name")]
        assert index.args == ([("at", 1)],) and index.kwargs["expireAfterSeconds"] > 0
    await store.history.drop_history_before(DAY)
    (delete,) = calls(store, "delete_many")
    assert delete.args == ({"t": {"$lt": DAY}},)


def test_the_series_cut_keeps_the_last_n_of_each_series_on_the_server() -> None:
    query = TemporalQuery("after", DAY, None, last_n=3)
    assert series_cut_pipeline(["urn:e:1", "urn:e:2"], ["urn:p", SCOPE], query, 4) == [
        {"$match": {"e": {"$in": ["urn:e:1", "urn:e:2"]}, "o": True, "t": {"$gte": DAY},
                    "a": {"$in": ["urn:p"]}}},
        {"$group": {"_id": {"e": "$e", "a": "$a", "d": "$d"},
                    "docs": {"$topN": {"n": 4, "sortBy": {"t": -1, "_id": -1},
                                       "output": "$$ROOT"}}}},
        {"$unwind": "$docs"},
        {"$replaceRoot": {"newRoot": "$docs"}},
        {"$sort": {"t": 1, "_id": 1}},
    ]
    first = series_cut_pipeline(["urn:e:1"], None, TemporalQuery("after", DAY, None), 2)
    assert first[0]["$match"]["a"] == {"$ne": SCOPE}
    assert first[1]["$group"]["docs"]["$topN"]["sortBy"] == {"t": 1, "_id": 1}


@pytest.mark.parametrize("version", [(8, 0), (5, 0)])
async def test_a_read_with_last_n_is_cut_by_mongodb_where_it_can(version) -> None:
    store = layout_store(version)
    await store.open()
    for n in range(6):
        stamp = f"2026-01-01T00:00:0{n}Z"
        await store.modify("", "urn:e:1", lambda _, n=n, stamp=stamp: {
            "id": "urn:e:1", "type": ["urn:T"], "attrs": {
                "urn:p": [{"type": "Property", "value": n, "observedAt": stamp}],
                "urn:q": [{"type": "Property", "value": -n, "observedAt": stamp}]}},
            record=record_at(stamp))
    calls(store, "")
    query = TemporalQuery(None, None, None, last_n=2)
    found = await store.history.read_history("", ["urn:e:1"], None, query, per_series=2)
    client: Any = store.client
    sent = [c.method for c in client.calls if c.collection == "temporal_instances"]
    values = [(i.attribute, i.value) for i in found["urn:e:1"]]
    if version >= (5, 2):
        assert sent == ["aggregate", "find"]  # the cut series, then the Scope whole
        assert values == [("urn:p", 4), ("urn:q", -4), ("urn:p", 5), ("urn:q", -5)]
    else:
        assert sent == ["find"]  # every instance: the service cuts
        assert len(values) == 12
    await store.close()


async def test_the_records_keep_the_attributes_a_query_by_attrs_reads_first(
    store: MongoStore,
) -> None:
    """``entities_with`` asks the records' ``attrs`` index (one entry per attribute an
    Entity's history has had), never the instances; a record written before ``attrs``
    was kept says nothing, so it stays a candidate of every query, and a later write
    does not make it claim only the new names."""
    def entity(entity_id: str, *names: str) -> Any:
        return {"id": entity_id, "type": ["urn:T"], "attrs": {
            name: [{"type": "Property", "value": 1}] for name in names}}

    for entity_id, names in (("urn:e:1", ("urn:p",)), ("urn:e:2", ("urn:q",)),
                             ("urn:e:1", ("urn:p", "urn:r"))):
        written_entity = entity(entity_id, *names)
        await store.modify("", entity_id, lambda _, e=written_entity: e,
                           record=record_at("2026-01-01T00:00:01Z"))
    client: Any = store.client
    indexes = [c.args for c in client.calls
               if c.method == "create_index" and c.collection == "temporal_entities"]
    assert indexes == [([("attrs", 1)],)]
    written = [c.args[1]["$addToSet"] for c in client.calls
               if c.method == "update_one" and c.collection == "temporal_entities"]
    assert [grow["attrs"] for grow in written] == [
        {"$each": ["urn:p"]}, {"$each": ["urn:q"]}, {"$each": ["urn:r"]}]
    history = store.history
    assert history is not None
    calls(store, "")
    assert await history.entities_with("", ["urn:r"]) == {"urn:e:1"}
    (asked,) = calls(store, "find")
    assert (asked.collection, asked.args[0]) == ("temporal_entities", {
        "$or": [{"attrs": {"$in": ["urn:r", SCOPE]}}, {"attrs": {"$exists": False}}]})
    # a record of an older version: no attrs
    records = client._mock[asked.database]["temporal_entities"]
    assert records.find_one({"_id": "urn:e:1"})["attrs"] == ["urn:p", "urn:r"]
    records.update_one({"_id": "urn:e:2"}, {"$unset": {"attrs": ""}})
    assert await history.entities_with("", ["urn:r"]) == {"urn:e:1", "urn:e:2"}
    await store.modify("", "urn:e:2", lambda _: entity("urn:e:2", "urn:s"),
                       record=record_at("2026-01-01T00:00:02Z"))
    assert "attrs" not in records.find_one({"_id": "urn:e:2"})
    assert await history.entities_with("", ["urn:p"]) == {"urn:e:1", "urn:e:2"}


async def test_two_histories_of_one_entity_recorded_at_once_both_count(
    store: MongoStore,
) -> None:
    """Two processes (here two tasks) recording writes of one Entity at the same time:
    the record's types and attrs grow on the server ($addToSet), so neither write's
    names are lost, as a read-then-replace of the record would lose one."""
    history = store.history
    assert history is not None

    def written(kind: str, name: str) -> History:
        record = EntityRecord("urn:e:1", (kind,), "2026-01-01T00:00:00Z",
                              "2026-01-01T00:00:00Z")
        return History(record, (Instance(name, history.new_instance_id(), "Property", 1,
                                         observed_at="2026-01-01T00:00:01Z"),))

    await asyncio.gather(history.add_history("", [written("urn:T", "urn:p")]),
                         history.add_history("", [written("urn:U", "urn:q")]))
    assert await history.entities_with("", ["urn:p"]) == {"urn:e:1"}
    assert await history.entities_with("", ["urn:q"]) == {"urn:e:1"}
    (record,) = await history.temporal_entities("", ids=["urn:e:1"])
    assert sorted(record.types) == ["urn:T", "urn:U"]


def _entity_of(entity_id: str, *names: str) -> Any:
    return {"id": entity_id, "type": ["urn:T"], "attrs": {
        name: [{"type": "Property", "value": 1, "observedAt": "2026-01-01T00:00:00Z"}]
        for name in names}}


async def _answer(store: MongoStore, name: str) -> set[str]:
    """The Entities a query by attrs ``name`` answers with (candidates, then their read)."""
    history = store.history
    candidates = await history.entities_with("", [name])
    assert candidates is not None
    found = await history.read_history("", sorted(candidates), [name],
                                       TemporalQuery(None, None, None))
    return {e for e, insts in found.items() if any(i.attribute == name for i in insts)}


async def test_records_of_an_older_version_get_their_attrs_when_a_store_starts() -> None:
    """A record written before ``attrs`` was kept is given them, from its instances,
    when a store (another process here: a second store on the same server) starts:
    once, by rounds, only where still missing; a query by attrs then no longer reads
    it, and answers as before."""
    server = OneServer()
    first = MongoStore("mongodb://stand-in/h", client_factory=server.factory)
    await first.open()
    client: Any = first.client
    for entity_id, names in (("urn:e:1", ("urn:p",)), ("urn:e:2", ("urn:q", "urn:r")),
                             ("urn:e:3", ("urn:p",))):
        written = _entity_of(entity_id, *names)
        await first.modify("", entity_id, lambda _, e=written: e,
                           record=record_at("2026-01-01T00:00:01Z"))
    records = client._mock["h"]["temporal_entities"]
    records.update_many({"_id": {"$in": ["urn:e:1", "urn:e:2"]}}, {"$unset": {"attrs": ""}})
    before = await _answer(first, "urn:r")
    assert before == {"urn:e:2"}
    assert await first.history.entities_with("", ["urn:r"]) == {"urn:e:1", "urn:e:2"}

    client.calls.clear()
    second = MongoStore("mongodb://stand-in/h", client_factory=server.factory)
    await second.open()
    sent = [(c.method, c.collection, c.args, c.kwargs.get("limit")) for c in client.calls
            if c.collection in ("temporal_entities", "temporal_instances")
            and c.method in ("find", "aggregate", "bulk_write")]
    old = ({"attrs": {"$exists": False}},)
    asked = [{"$match": {"e": {"$in": ["urn:e:1", "urn:e:2"]}}},
             {"$group": {"_id": "$e", "a": {"$addToSet": "$a"}}}]

    def set_missing(entity_id: str, attrs: list[str]) -> Any:
        return ("update_one", {"filter": {"_id": entity_id, "attrs": {"$exists": False}},
                               "update": {"$set": {"attrs": attrs}}, "upsert": False})

    assert sent == [
        ("find", "temporal_entities", old, 500),
        ("aggregate", "temporal_instances", (asked,), None),
        ("bulk_write", "temporal_entities",
         ([set_missing("urn:e:1", ["urn:p"]), set_missing("urn:e:2", ["urn:q", "urn:r"])],),
         None),
        ("aggregate", "temporal_instances", (asked,), None),  # nothing new: no second write
        ("find", "temporal_entities", old, 500),
    ]
    assert records.find_one({"_id": "urn:e:2"})["attrs"] == ["urn:q", "urn:r"]
    assert await second.history.entities_with("", ["urn:r"]) == {"urn:e:2"}
    assert await _answer(second, "urn:r") == before
    # idempotent: the next start asks once and writes nothing
    client.calls.clear()
    assert await second.history.backfill_attrs("") == 0
    assert [c.method for c in client.calls if c.collection == "temporal_entities"] == ["find"]
    await second.close()


async def test_a_write_racing_the_backfill_adds_its_names(store: MongoStore) -> None:
    """A write that read a record without ``attrs`` does not add its names (they would
    look like the whole list); if a backfill set ``attrs`` meanwhile, from instances
    asked before this write's were inserted, the write adds its names after its
    insert, guarded on ``attrs`` being set; and a backfill finding instances inserted
    between its ``$set`` and its second ask adds them."""
    client: Any = store.client
    await store.modify("", "urn:e:1", lambda _: _entity_of("urn:e:1", "urn:p"),
                       record=record_at("2026-01-01T00:00:01Z"))
    records = client._mock["h"]["temporal_entities"]
    records.update_one({"_id": "urn:e:1"}, {"$unset": {"attrs": ""}})
    enter = client._enter

    async def backfill_meanwhile(method: str, database: str, collection: str, *rest: Any,
                                 **kw: Any) -> None:
        if (method, collection) == ("insert_many", "temporal_instances"):
            records.update_one({"_id": "urn:e:1"}, {"$set": {"attrs": ["urn:p"]}})
        await enter(method, database, collection, *rest, **kw)

    client._enter = backfill_meanwhile
    client.calls.clear()
    await store.modify("", "urn:e:1", lambda _: _entity_of("urn:e:1", "urn:p", "urn:s"),
                       record=record_at("2026-01-01T00:00:02Z"))
    client._enter = enter
    guarded = [c.args for c in client.calls
               if c.method == "update_one" and c.collection == "temporal_entities"][-1]
    assert guarded == ({"_id": "urn:e:1", "attrs": {"$exists": True}},
                       {"$addToSet": {"attrs": {"$each": ["urn:s"]}}})
    assert records.find_one({"_id": "urn:e:1"})["attrs"] == ["urn:p", "urn:s"]

    # the backfill's second ask: an instance inserted after its first
    records.update_one({"_id": "urn:e:1"}, {"$unset": {"attrs": ""}})
    history = store.history
    asked = history._attribute_names
    rounds = 0

    async def insert_after_first(tenant: str, ids: list[str]) -> dict[str, list[str]]:
        nonlocal rounds
        rounds += 1
        if rounds == 2:
            await history.record("", History(
                EntityRecord("urn:e:1", ("urn:T",), None, "2026-01-01T00:00:03Z"),
                (Instance("urn:t", history.new_instance_id(), "Property", 1),)))
        return await asked(tenant, ids)

    history._attribute_names = insert_after_first  # type: ignore[method-assign]
    assert await history.backfill_attrs("") == 1
    assert records.find_one({"_id": "urn:e:1"})["attrs"] == ["urn:p", "urn:s", "urn:t"]

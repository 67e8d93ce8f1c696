"""What the MongoDB history sends: documents, indexes, filters and the aggregation
pipeline (on the stand-in of tests/mongo_standin.py, which records every call)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from mongo_standin import Call, StandInClient

from ngsi_ld.temporal import (
    Aggregation,
    Instance,
    TemporalQuery,
    history_of_write,
    parse_duration,
    to_micros,
)
from storage.mongo import MongoStore
from storage.mongo.history import aggregation_pipeline, instance_document
from storage.temporal import INSTANCE_PREFIX

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


async def test_a_write_records_its_history_and_indexes_the_instances(
    store: MongoStore,
) -> None:
    entity = {"id": "urn:e:1", "type": ["urn:T"], "attrs": {"urn:p": [
        {"type": "Property", "value": 3, "observedAt": "2026-01-01T00:00:00Z"}]}}
    calls(store, "")

    def record(before: Any, after: Any, new_id: Any) -> Any:
        return history_of_write(before, after, "2026-01-01T00:00:01Z", new_id)

    await store.modify("", "urn:e:1", lambda current: entity, record=record)
    client: Any = store.client
    made = [c for c in client.calls if c.collection == "temporal_instances"]
    assert [c.method for c in made] == ["create_index", "insert_one"]
    assert made[0].args == ([("e", 1), ("a", 1), ("t", -1)],)
    assert made[1].args[0]["n"] == 3
    records = [c for c in client.calls if c.collection == "temporal_entities"]
    assert records[-1].method == "replace_one"
    assert records[-1].args[1]["types"] == ["urn:T"]


async def test_retention_sets_a_ttl_index_and_deletes_by_time(store: MongoStore) -> None:
    calls(store, "")
    await store.history.drop_history_before(DAY)
    (index,) = [c for c in calls(store, "create_index") if c.kwargs.get("name")]
    assert index.args == ([("at", 1)],) and index.kwargs["expireAfterSeconds"] > 0
    await store.history.drop_history_before(DAY)
    (delete,) = calls(store, "delete_many")
    assert delete.args == ({"t": {"$lt": DAY}},)

"""The temporal history of the MongoDB backend (docs/temporal.md 3.4).

Per tenant database, two collections:

- ``temporal_entities``: the Entity records (``_id`` the entity id, ``types``,
  ``created``, ``modified``, ``deleted``, and ``attrs``, the names of the attributes
  the Entity's history has had, indexed: what a query by attrs reads first; never
  fewer: a deleted attribute's Entity stays a candidate, which the read drops; a
  record written before ``attrs`` was kept gets them once, at the store's start, from
  its instances (:meth:`MongoHistory.backfill_attrs`); until then it has none, and
  every such query reads it);
- ``temporal_instances``: one document per instance: ``_id`` its number (the
  instanceId is ``urn:ngsi-ld:Instance:<_id>``), ``e``/``a``/``d`` its entity,
  attribute and datasetId, ``t`` its time in µs (observedAt, else when it was
  written; ``o`` true when observed), ``at`` the same as a BSON date (the
  time-series time field, and what retention reads), ``k`` the kind, ``n`` the value
  when it is a number (what the aggregation pipeline reads), ``x`` true when the
  instance is transient, ``j`` the instance itself as JSON text (values and
  members may hold keys MongoDB refuses), and in a time-series collection ``s``,
  the series ``{e, a, d}`` (its metaField).  A time-series collection on MongoDB 7
  and later, else a plain one; a compound index ``(e, a, t)`` on both
  (storage/mongo/history_layout.py).

Reads cut each series on the server: with a lastN (or the page limit of clause
6.3.10), one pipeline keeps the first or last N instances of each series in the
window (``$group`` with ``$topN``, MongoDB 5.2 and later); older servers send
every instance of the window.

Aggregations are one pipeline: ``$match`` on the window, ``$group`` by series,
kind and period index ``floor((t - start) / period)``, with ``$sum``, ``$min``,
``$max`` and ``$stdDevPop``; cases the pipeline cannot say (calendar periods,
distinctCount, strings...) are left to the service, as on SQLite.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from pymongo import UpdateOne

from ngsi_ld.temporal import (
    SCOPE,
    AggregatedSeries,
    Aggregation,
    EntityRecord,
    History,
    Instance,
    TemporalQuery,
    to_micros,
)

from ..temporal import (
    INSTANCE_PREFIX,
    AggregatedHistory,
    TemporalHistory,
    instance_number,
    merge_times,
    one_per_key,
)
from . import history_layout as layout
from .history_layout import INSTANCES
from .support import faults

__all__ = [
    "INSTANCES", "RECORDS", "MongoHistory", "aggregation_pipeline", "instance_document",
    "series_cut_pipeline",
]

RECORDS = "temporal_entities"
#: the records' index of the attributes their Entity's history has had (multikey)
ATTRS_INDEX: list[tuple[str, Any]] = [("attrs", 1)]
#: the records given their ``attrs`` per round of :meth:`MongoHistory.backfill_attrs`
BACKFILL_BATCH = 500
#: the first MongoDB with ``$topN``
TOP_N_VERSION = (5, 2)
NUMERIC_METHODS = frozenset({"totalCount", "sum", "avg", "min", "max", "stddev", "sumsq"})
_EXACT = 2**53

#: (tenant, collection name) -> the collection
Collections = Callable[[str, str], Any]
#: tenant -> its database
Databases = Callable[[str], Any]


def instance_document(entity_id: str, inst: Instance, iid: int) -> dict[str, Any]:
    """The document of one instance (see the module docstring)."""
    observed = inst.observed_at is not None
    times = [inst.observed_at, inst.modified_at, inst.deleted_at, inst.created_at]
    t = next((to_micros(x) for x in times if x is not None), 0)
    value = inst.value
    number = value if (isinstance(value, int | float) and not isinstance(value, bool)
                       and -_EXACT < value < _EXACT) else None
    own = {"kind": inst.kind, "value": value, "datasetId": inst.dataset_id,
           "observedAt": inst.observed_at, "createdAt": inst.created_at,
           "modifiedAt": inst.modified_at, "deletedAt": inst.deleted_at,
           "members": dict(inst.members)}
    return {
        "_id": iid, "e": entity_id, "a": inst.attribute, "d": inst.dataset_id, "t": t,
        "o": observed, "at": datetime.fromtimestamp(t / 1e6, UTC), "k": inst.kind,
        "n": number, "x": inst.expires_at is not None, "del": inst.deleted_at is not None,
        "j": orjson.dumps(own).decode(),
    }


def _instance(doc: dict[str, Any]) -> Instance:
    own = orjson.loads(doc["j"])
    return Instance(doc["a"], f"{INSTANCE_PREFIX}{doc['_id']}", own["kind"], own["value"],
                    own["datasetId"], own["observedAt"], own["createdAt"], own["modifiedAt"],
                    own["deletedAt"], own["members"])


def _record(doc: dict[str, Any]) -> EntityRecord:
    return EntityRecord(doc["_id"], tuple(doc.get("types", ())), doc.get("created"),
                        doc.get("modified"), doc.get("deleted"))


def _window(query: TemporalQuery) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if query.lower is not None:
        bounds["$gte"] = query.lower
    if query.upper is not None:
        bounds["$lt"] = query.upper
    return {"o": True, **({"t": bounds} if bounds else {})}


def aggregation_pipeline(entity_ids: Sequence[str], attributes: Sequence[str] | None,
                         query: TemporalQuery, aggregation: Aggregation) -> list[dict[str, Any]]:
    """The pipeline of one aggregation (a fixed period from the window's lower bound)."""
    assert query.lower is not None
    start = query.lower
    period = aggregation.period.boundary(start, 1) - start
    match: dict[str, Any] = {"e": {"$in": list(entity_ids)}, "del": False, **_window(query)}
    if attributes is not None:
        match["a"] = {"$in": [*attributes, SCOPE]}
    return [
        {"$match": match},
        {"$group": {
            "_id": {"e": "$e", "a": "$a", "d": "$d", "k": "$k",
                    "p": {"$floor": {"$divide": [{"$subtract": ["$t", start]}, period]}}},
            "n": {"$sum": 1},
            "nn": {"$sum": {"$cond": [{"$eq": ["$n", None]}, 0, 1]}},
            "x": {"$max": "$x"},
            "s": {"$sum": "$n"}, "mn": {"$min": "$n"}, "mx": {"$max": "$n"},
            "sq": {"$sum": {"$multiply": ["$n", "$n"]}},
            "sd": {"$stdDevPop": "$n"},
        }},
        {"$sort": {"_id.e": 1, "_id.a": 1, "_id.p": 1}},
    ]


def series_cut_pipeline(entity_ids: Sequence[str], attributes: Sequence[str] | None,
                        query: TemporalQuery, per_series: int) -> list[dict[str, Any]]:
    """The pipeline keeping ``per_series`` instances of each series in the observedAt
    window: the last ones when ``query.last_n`` is set, else the first; oldest first.
    The Scope is read whole apart (its validity starts before the window)."""
    match: dict[str, Any] = {"e": {"$in": list(entity_ids)}, **_window(query)}
    match["a"] = ({"$ne": SCOPE} if attributes is None
                  else {"$in": [a for a in attributes if a != SCOPE]})
    order = -1 if query.last_n is not None else 1
    return [
        {"$match": match},
        {"$group": {"_id": {"e": "$e", "a": "$a", "d": "$d"},
                    "docs": {"$topN": {"n": per_series, "sortBy": {"t": order, "_id": order},
                                       "output": "$$ROOT"}}}},
        {"$unwind": "$docs"},
        {"$replaceRoot": {"newRoot": "$docs"}},
        {"$sort": {"t": 1, "_id": 1}},
    ]


def _result(method: str, row: dict[str, Any]) -> Any:
    n = row["n"]
    if method == "totalCount":
        return n
    if method == "avg":
        return float(row["s"]) / n
    key = {"sum": "s", "min": "mn", "max": "mx", "sumsq": "sq", "stddev": "sd"}[method]
    return float(row[key])


def grow_names(history: History) -> dict[str, Any]:
    """The ``$addToSet`` of a record's ``attrs`` by ``history``'s attribute names."""
    return {"attrs": {"$each": sorted({inst.attribute for inst in history.instances})}}


class MongoHistory(TemporalHistory):
    """Temporal evolutions in the tenant databases (see the module docstring)."""

    def __init__(self, collection: Collections,
                 tenants: Callable[[], Awaitable[list[str]]],
                 database: Databases, client: Callable[[], Any]) -> None:
        self._coll = collection
        self._tenants = tenants
        self._db = database
        self._client = client
        self._version: tuple[int, int] | None = None
        self._series: dict[str, bool] = {}  # tenant -> its instances are a time-series
        self._ttl: set[tuple[str, int]] = set()
        # ids unique across processes: microseconds x 1000 + a counter from a random start
        self._counter = itertools.count(int.from_bytes(os.urandom(2)) % 1000)

    def new_instance_id(self) -> str:
        micros = time.time_ns() // 1000
        return f"{INSTANCE_PREFIX}{micros * 1000 + next(self._counter) % 1000}"

    async def version(self) -> tuple[int, int]:
        """The server's (major, minor), asked once."""
        if self._version is None:
            self._version = await layout.server_version(self._client())
        return self._version

    async def _instances(self, tenant: str) -> Any:
        if tenant not in self._series:
            self._series[tenant] = await layout.prepare(self._db(tenant), await self.version())
            with faults("history collection"):
                await self._coll(tenant, RECORDS).create_index(ATTRS_INDEX)
        return self._coll(tenant, INSTANCES)

    def _document(self, tenant: str, entity_id: str, inst: Instance,
                  iid: int) -> dict[str, Any]:
        doc = instance_document(entity_id, inst, iid)
        if self._series.get(tenant):
            doc["s"] = layout.series_of(doc)
        return doc

    async def record(self, tenant: str, history: History, *, upserting: bool = False,
                     recovering: bool = False) -> None:
        """Write what a write or a temporal POST records; ``recovering``: an outbox
        document's history (storage/mongo/outbox.py), whose instances may be written
        already."""
        records = self._coll(tenant, RECORDS)
        entity_id = history.entity.entity_id
        with faults("history write"):
            stored = await records.find_one({"_id": entity_id})
            created, modified, deleted = merge_times(
                None if stored is None else _record(stored), history.entity)
            coll = await self._instances(tenant)
            # types and attrs grow by $addToSet: two processes recording writes of one
            # Entity at once both add theirs (a read-then-replace would lose one)
            grow: dict[str, Any] = {"types": {"$each": list(history.entity.types)}}
            if stored is None or "attrs" in stored:
                grow.update(grow_names(history))
            await records.update_one({"_id": entity_id}, {
                "$set": {"created": created, "modified": modified, "deleted": deleted},
                "$addToSet": grow}, upsert=True)
            late = stored is not None and "attrs" not in stored
            docs = []
            incoming = one_per_key(history.instances) if upserting else history.instances
            for inst in incoming:
                iid = instance_number(inst.instance_id)
                assert iid is not None, "instanceIds of new instances come from the store"
                made = self._document(tenant, entity_id, inst, iid)
                if upserting and inst.observed_at is not None:
                    # of several stored instances of the key, the newest (ngsi_ld.temporal.upsert)
                    old = await coll.find_one({"e": entity_id, "a": inst.attribute,
                                               "d": inst.dataset_id, "t": made["t"], "o": True},
                                              sort=[("_id", -1)])
                    if old is not None:
                        kept = _instance(old)
                        made = self._document(tenant, entity_id, replace(
                            inst, created_at=kept.created_at or inst.created_at), old["_id"])
                        await layout.replace(coll, self._series[tenant],
                                             {"_id": old["_id"], "e": entity_id}, made)
                        continue
                docs.append(made)
            if docs and recovering:
                found = await coll.find({"e": entity_id, "_id": {"$in": [d["_id"] for d in docs]}},
                                        {"_id": 1}).to_list()
                done = {doc["_id"] for doc in found}
                docs = [doc for doc in docs if doc["_id"] not in done]
            if docs:
                await coll.insert_many(docs)
            if late:
                # the record had no attrs when read: if a backfill gave it some since,
                # they may miss these instances' names (backfill_attrs's race)
                await records.update_one({"_id": entity_id, "attrs": {"$exists": True}},
                                         {"$addToSet": grow_names(history)})

    async def backfill_attrs(self, tenant: str) -> int:
        """Give the records written before ``attrs`` was kept their ``attrs``: the
        names of their instances' attributes; how many records were given them.

        Idempotent, by rounds of :data:`BACKFILL_BATCH` records (one find, one
        aggregation, two bulk writes a round), and safe beside other processes
        writing or backfilling: ``attrs`` is set only where still missing, then the
        instances are asked again and their names added (``$addToSet``).  A write
        that read the record before the ``$set`` and inserts its instances after the
        first ask is then seen by the second ask, or, inserting after that, adds its
        names itself (:meth:`record` adds them when it finds ``attrs`` set since)."""
        records = self._coll(tenant, RECORDS)
        done = 0
        with faults("history attrs backfill"):
            while True:
                old = await records.find({"attrs": {"$exists": False}}, {"_id": 1},
                                         limit=BACKFILL_BATCH).to_list()
                if not old:
                    return done
                ids = [doc["_id"] for doc in old]
                names = await self._attribute_names(tenant, ids)
                await records.bulk_write([
                    UpdateOne({"_id": i, "attrs": {"$exists": False}},
                              {"$set": {"attrs": names.get(i, [])}}) for i in ids],
                    ordered=False)
                again = await self._attribute_names(tenant, ids)
                fresh = [UpdateOne({"_id": i}, {"$addToSet": {"attrs": {"$each": again[i]}}})
                         for i in ids if set(again.get(i, ())) - set(names.get(i, ()))]
                if fresh:
                    await records.bulk_write(fresh, ordered=False)
                done += len(ids)

    async def _attribute_names(self, tenant: str, ids: list[str]) -> dict[str, list[str]]:
        """entity id -> the sorted names of its instances' attributes."""
        pipeline = [{"$match": {"e": {"$in": ids}}},
                    {"$group": {"_id": "$e", "a": {"$addToSet": "$a"}}}]
        rows = await (await (await self._instances(tenant)).aggregate(pipeline)).to_list()
        return {row["_id"]: sorted(row["a"]) for row in rows}

    # -- reads --------------------------------------------------------------------------
    async def temporal_entities(
        self, tenant: str, *, ids: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
    ) -> list[EntityRecord]:
        flt: dict[str, Any] = {}
        if ids is not None:
            flt["_id"] = {"$in": list(ids)}
        if types is not None:
            flt["types"] = {"$in": list(types)}
        with faults("history read"):
            docs = await self._coll(tenant, RECORDS).find(flt, sort=[("_id", 1)]).to_list()
        return [_record(doc) for doc in docs]

    async def entities_with(self, tenant: str, attributes: Sequence[str]) -> set[str] | None:
        """By the records' ``attrs`` index (the instances' only index leads by Entity,
        ``(e, a, t)``, so asking them would walk it whole): those whose history has had
        one of ``attributes`` or the Scope, and those whose record does not say."""
        await self._instances(tenant)  # the index, on a process's first read
        flt = {"$or": [{"attrs": {"$in": [*attributes, SCOPE]}},
                       {"attrs": {"$exists": False}}]}
        with faults("history read"):
            docs = await self._coll(tenant, RECORDS).find(flt, {"_id": 1}).to_list()
        return {doc["_id"] for doc in docs}

    async def read_history(
        self, tenant: str, entity_ids: Sequence[str], attributes: Sequence[str] | None,
        query: TemporalQuery, per_series: int | None = None,
    ) -> dict[str, list[Instance]]:
        flt: dict[str, Any] = {"e": {"$in": list(entity_ids)}}
        if attributes is not None:
            flt["a"] = {"$in": [*attributes, SCOPE]}
        coll = await self._instances(tenant)
        cut = (per_series is not None and query.timeproperty == "observedAt"
               and await self.version() >= TOP_N_VERSION)
        with faults("history read"):
            if cut:
                assert per_series is not None
                pipeline = series_cut_pipeline(entity_ids, attributes, query, per_series)
                docs = await (await coll.aggregate(pipeline)).to_list()
                scope = {**flt, "a": SCOPE}
                docs += await coll.find(scope, sort=[("t", 1), ("_id", 1)]).to_list()
                docs.sort(key=lambda doc: (doc["t"], doc["_id"]))
            else:
                if query.timeproperty == "observedAt":
                    # the window on observedAt; the Scope whole (its validity starts before)
                    flt["$or"] = [{"a": SCOPE}, _window(query)]
                docs = await coll.find(flt, sort=[("t", 1)]).to_list()
        out: dict[str, list[Instance]] = {}
        for doc in docs:
            out.setdefault(doc["e"], []).append(_instance(doc))
        return out

    async def aggregate_history(
        self, tenant: str, entity_ids: Sequence[str], attributes: Sequence[str] | None,
        query: TemporalQuery, aggregation: Aggregation,
    ) -> AggregatedHistory | None:
        period = aggregation.period
        if (not entity_ids or query.timeproperty != "observedAt" or query.lower is None
                or period.is_zero or period.is_calendar
                or not NUMERIC_METHODS.issuperset(aggregation.methods)):
            return None
        pipeline = aggregation_pipeline(entity_ids, attributes, query, aggregation)
        with faults("history aggregation"):
            rows = await (await (await self._instances(tenant)).aggregate(pipeline)).to_list()
        start, step = query.lower, period.boundary(query.lower, 1) - query.lower
        out: AggregatedHistory = {}
        series: dict[tuple[Any, ...], AggregatedSeries] = {}
        for row in rows:
            key = row["_id"]
            if row["nn"] != row["n"] or row["x"]:
                return None  # not numbers only, or transient: the service aggregates
            ident = (key["e"], key["a"], key["d"], key["k"])
            found = series.get(ident)
            if found is None:
                found = series[ident] = AggregatedSeries(
                    key["a"], key["k"], key["d"], {m: [] for m in aggregation.methods})
                out.setdefault(key["e"], {}).setdefault(key["a"], []).append(found)
            k = int(key["p"])
            for method in aggregation.methods:
                found.results[method].append(
                    (_result(method, row), start + k * step, start + (k + 1) * step))
        return out

    # -- the temporal API's writes ------------------------------------------------------
    async def add_history(self, tenant: str, histories: Sequence[History]) -> None:
        for history in histories:
            await self.record(tenant, history, upserting=True)

    async def delete_history(self, tenant: str, entity_id: str) -> bool:
        with faults("history deletion"):
            done = await self._coll(tenant, RECORDS).delete_one({"_id": entity_id})
            await (await self._instances(tenant)).delete_many({"e": entity_id})
        return bool(done.deleted_count)

    async def delete_history_attribute(
        self, tenant: str, entity_id: str, attribute: str, dataset_id: str | None,
        delete_all: bool,
    ) -> int:
        flt: dict[str, Any] = {"e": entity_id, "a": attribute}
        if not delete_all:  # 5.6.13: one dataset, the default one without datasetId
            flt["d"] = None if dataset_id in (None, "@none") else dataset_id
        with faults("history deletion"):
            done = await (await self._instances(tenant)).delete_many(flt)
        return int(done.deleted_count)

    async def history_instance(
        self, tenant: str, entity_id: str, attribute: str, instance_id: str
    ) -> Instance | None:
        iid = instance_number(instance_id)
        if iid is None:
            return None
        with faults("history read"):
            doc = await (await self._instances(tenant)).find_one(
                {"_id": iid, "e": entity_id, "a": attribute})
        return None if doc is None else _instance(doc)

    async def replace_history_instance(self, tenant: str, entity_id: str,
                                       instance: Instance) -> bool:
        iid = instance_number(instance.instance_id)
        if iid is None:
            return False
        coll = await self._instances(tenant)
        doc = self._document(tenant, entity_id, instance, iid)
        with faults("history write"):
            return await layout.replace(coll, self._series[tenant],
                                        {"_id": iid, "e": entity_id, "a": instance.attribute},
                                        doc)

    async def delete_history_instance(
        self, tenant: str, entity_id: str, attribute: str, instance_id: str
    ) -> bool:
        iid = instance_number(instance_id)
        if iid is None:
            return False
        with faults("history deletion"):
            done = await (await self._instances(tenant)).delete_one(
                {"_id": iid, "e": entity_id, "a": attribute})
        return bool(done.deleted_count)

    async def drop_history_before(self, cutoff: int) -> int:
        # the TTL index lets MongoDB itself drop what falls out of the retention between
        # two sweeps; the sweep removes what was there before the index
        # (rounded up, and a second more: nothing at or after the cut-off expires early)
        keep = max(1, -(-(time.time_ns() // 1000 - cutoff) // 1_000_000) + 1)
        removed = 0
        for tenant in await self._tenants():
            coll = await self._instances(tenant)
            if (tenant, keep) not in self._ttl:
                await layout.retain(self._db(tenant), self._series[tenant], keep)
                self._ttl.add((tenant, keep))
            with faults("history retention"):
                done = await coll.delete_many({"t": {"$lt": cutoff}})
            removed += int(done.deleted_count)
        return removed

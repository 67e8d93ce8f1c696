"""An in-memory stand-in for the part of PyMongo's asyncio API the MongoDB backend uses.

It is **not MongoDB**: it lets the backend's own code paths (encoding, filters,
conditional writes, batches, retries, fault handling) run in CI, where no
MongoDB server can be installed.  Documents live in mongomock collections, whose
matching engine evaluates the non-geo part of filters (its ``$eq``, ``$ne``, ``$in``
and ``$nin`` made to compare as BSON does: tests/mongo_standin_match.py); the geo operators the
backend sends (``$nearSphere``, ``$geoWithin``, ``$geoIntersects`` and ``$not``
of it, as top-level fields) are evaluated here with shapely on the plane, not on
the sphere as MongoDB does.  ``bulk_write`` is implemented here (mongomock's does
not work with PyMongo 4.20) and reports failures as PyMongo's BulkWriteError.

Change streams (``client.watch``), with the pre-images turned on by ``collMod``,
are those of tests/mongo_standin_streams.py; sessions and transactions
(``client.start_session``) those of tests/mongo_standin_sessions.py.
``StandInClient(standalone=True)`` answers ``hello`` as a standalone server and
refuses change streams and transactions;
``version=(major, minor)`` is what ``buildInfo`` reports (default 8.0); ``ping``
answers with the ``operationTime`` of the newest change event (what the backend's
``feed_mark`` reads; none on a standalone stand-in).

Extras for tests: ``client.calls`` records every call (method, database,
collection, arguments); ``client.go_down()`` makes every call fail like an
unreachable server until ``client.come_back()``; ``client.changes`` is the log
of changes the streams read.
"""

from __future__ import annotations

import asyncio
import copy
import statistics
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import mongomock
from mongo_standin_match import install
from mongo_standin_sessions import StandInSession
from mongo_standin_streams import ChangeLog, StandInChangeStream, watch
from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import (
    BulkWriteError,
    DuplicateKeyError,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from ngsi_ld.query.geo import distance_m, entity_shape

_GEO_OPERATORS = ("$nearSphere", "$geoWithin", "$geoIntersects", "$not")

install()  # mongomock compares booleans with numbers: not as MongoDB


@dataclass(slots=True)
class Call:
    """One recorded call: ``method`` on ``database``.``collection`` with its arguments."""

    method: str
    database: str
    collection: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


class StandInCursor:
    """The result of ``find`` / ``aggregate``: async iteration and ``to_list``."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self._docs = docs

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        for doc in self._docs:
            await asyncio.sleep(0)
            yield doc

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        """Every document (or the first ``length``)."""
        await asyncio.sleep(0)
        return self._docs if length is None else self._docs[:length]

    async def close(self) -> None:
        """Nothing to release."""


@dataclass(slots=True)
class _Result:
    """What insert/replace/update/delete return (the attributes the backend reads)."""

    matched_count: int = 0
    modified_count: int = 0
    deleted_count: int = 0
    inserted_id: Any = None
    upserted_id: Any = None
    acknowledged: bool = True


class StandInClient:
    """Stands in for ``pymongo.AsyncMongoClient`` (the backend's ``client_factory``)."""

    def __init__(self, url: str = "mongodb://stand-in/", *, standalone: bool = False,
                 version: tuple[int, int] = (8, 0), **options: Any) -> None:
        self.url = url
        self.options = options
        self.calls: list[Call] = []
        self.down = False
        self.closed = False
        self.standalone = standalone
        self.version = version
        self.changes = ChangeLog()
        #: (database, collection) created as time-series collections: they take no update
        self.timeseries: set[tuple[str, str]] = set()
        #: every transaction run (StandInSession objects, in order)
        self.transactions: list[StandInSession] = []
        self._mock: mongomock.MongoClient = mongomock.MongoClient()

    def go_down(self) -> None:
        """Every call fails as with an unreachable server, until :meth:`come_back`."""
        self.down = True
        self.changes.wake()  # open change streams fail too

    def come_back(self) -> None:
        """The server is reachable again; the data are still there."""
        self.down = False

    def __getitem__(self, name: str) -> StandInDatabase:
        return StandInDatabase(self, name)

    @property
    def admin(self) -> StandInDatabase:
        return StandInDatabase(self, "admin")

    async def list_database_names(self) -> list[str]:
        await self._enter("list_database_names", "", "", ())
        return list(self._mock.list_database_names())

    async def drop_database(self, name: str) -> None:
        await self._enter("drop_database", name, "", ())
        self._mock.drop_database(name)

    async def close(self) -> None:
        self.closed = True

    def start_session(self, **_: Any) -> StandInSession:
        """A session for transactions (tests/mongo_standin_sessions.py)."""
        return StandInSession(self)

    async def watch(self, pipeline: list[dict[str, Any]] | None = None,
                    **kw: Any) -> StandInChangeStream:
        """A change stream over every database (tests/mongo_standin_streams.py)."""
        return await watch(self, pipeline, **kw)

    async def _enter(
        self, method: str, db: str, coll: str, args: tuple[Any, ...], **kw: Any
    ) -> None:
        self.calls.append(Call(method, db, coll, copy.deepcopy(args), copy.deepcopy(kw)))
        await asyncio.sleep(0)
        if self.down:
            raise ServerSelectionTimeoutError("stand-in: no server reachable (go_down)")


class OneServer:
    """One stand-in server every store (broker process) of a test connects to: its
    ``factory`` (a store's ``client_factory``) hands each the same :class:`StandInClient`,
    made by the first call with ``options`` (e.g. ``version``, ``standalone``)."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.client: StandInClient | None = None

    def factory(self, url: str, **kw: Any) -> StandInClient:
        if self.client is None:
            self.client = StandInClient(url, **self.options, **kw)
        return self.client


class StandInDatabase:
    """Stands in for ``AsyncDatabase``."""

    def __init__(self, client: StandInClient, name: str) -> None:
        self.client = client
        self.name = name

    def __getitem__(self, name: str) -> StandInCollection:
        return StandInCollection(self.client, self.name, name)

    async def command(self, name: str, *args: Any, **kw: Any) -> dict[str, Any]:
        await self.client._enter("command", self.name, "", (name, *args), **kw)
        client = self.client
        if name == "ping":  # a read: the time of the newest oplog entry (replica set)
            if client.standalone:
                return {"ok": 1.0}
            return {"ok": 1.0, "operationTime": client.changes.operation_time()}
        if name == "hello":
            if client.standalone:
                return {"ok": 1.0, "isWritablePrimary": True}
            return {"ok": 1.0, "isWritablePrimary": True, "setName": "stand-in-rs"}
        if name == "buildInfo":
            major, minor = client.version
            return {"ok": 1.0, "version": f"{major}.{minor}.0-stand-in",
                    "versionArray": [major, minor, 0, 0]}
        if name == "listCollections":
            wanted = kw.get("filter", {}).get("name")
            batch = [{"name": coll, "type": "timeseries" if (self.name, coll)
                      in client.timeseries else "collection"}
                     for coll in client._mock[self.name].list_collection_names()
                     if wanted in (None, coll)]
            return {"ok": 1.0, "cursor": {"firstBatch": batch}}
        if name in ("collMod", "create"):
            coll = args[0]
            exists = coll in client._mock[self.name].list_collection_names()
            if name == "collMod" and not exists:
                raise OperationFailure(f"ns does not exist: {self.name}.{coll}", code=26)
            if name == "create":
                if exists:
                    raise OperationFailure(f"Collection {self.name}.{coll} already exists",
                                           code=48)
                client._mock[self.name].create_collection(coll)
                if "timeseries" in kw:
                    client.timeseries.add((self.name, coll))
            if kw.get("changeStreamPreAndPostImages", {}).get("enabled"):
                client.changes.pre_images.add((self.name, coll))
        return {"ok": 1.0}

    async def list_collection_names(self) -> list[str]:
        await self.client._enter("list_collection_names", self.name, "", ())
        return list(self.client._mock[self.name].list_collection_names())


class StandInCollection:
    """Stands in for ``AsyncCollection``: the methods the backend calls."""

    def __init__(self, client: StandInClient, database: str, name: str) -> None:
        self.client = client
        self.database = database
        self.name = name
        self._coll = client._mock[database][name]
        self._session: StandInSession | None = None

    async def _enter(self, method: str, *args: Any, **kw: Any) -> None:
        await self.client._enter(method, self.database, self.name, args, **kw)
        # the transaction the write is part of, if any (tests/mongo_standin_sessions.py)
        session = kw.get("session")
        self._session = session if session is not None and session.in_transaction else None
        if self._session is not None:
            self._session.check(self.database, self.name)

    # -- reads ------------------------------------------------------------------------
    def _select(self, flt: dict[str, Any], sort: Any = None) -> list[dict[str, Any]]:
        rest, geo = _split_geo(flt)
        docs = list(self._coll.find(rest, sort=sort))
        return [d for d in docs if all(_geo_applies(path, op, d) for path, op in geo)]

    async def find_one(self, flt: dict[str, Any], *args: Any, sort: Any = None,
                       **kw: Any) -> dict[str, Any] | None:
        await self._enter("find_one", flt, *args, sort=sort, **kw)
        found = self._select(flt, sort)
        return found[0] if found else None

    def find(
        self,
        flt: dict[str, Any] | None = None,
        projection: Any = None,
        *,
        sort: Any = None,
        skip: int = 0,
        limit: int = 0,
        **kw: Any,
    ) -> _LazyCursor:
        return _LazyCursor(self, flt or {}, sort, skip, limit, kw)

    async def count_documents(self, flt: dict[str, Any], **kw: Any) -> int:
        await self._enter("count_documents", flt, **kw)
        rest, geo = _split_geo(flt)
        if geo:
            raise ValueError("stand-in: count_documents does not take geo operators (as MongoDB)")
        return int(self._coll.count_documents(rest))

    async def aggregate(self, pipeline: list[dict[str, Any]], **kw: Any) -> StandInCursor:
        await self._enter("aggregate", pipeline, **kw)
        stages, deviations = _without_std_dev(pipeline)
        docs = _with_top_n(self._coll, stages)
        for doc in docs:  # $stdDevPop, which mongomock lacks: over the numbers, as MongoDB
            for name in deviations:
                numbers = [v for v in doc.pop(name) if isinstance(v, int | float)
                           and not isinstance(v, bool)]
                doc[name] = statistics.pstdev(numbers) if numbers else None
        return StandInCursor(docs)

    # -- writes -----------------------------------------------------------------------
    async def insert_one(self, doc: dict[str, Any], **kw: Any) -> _Result:
        await self._enter("insert_one", doc, **kw)
        return self._insert(doc)

    async def insert_many(self, docs: Iterable[dict[str, Any]], ordered: bool = True,
                          **kw: Any) -> _Result:
        docs = list(docs)
        await self._enter("insert_many", docs, ordered=ordered, **kw)
        errors: list[dict[str, Any]] = []
        for index, doc in enumerate(docs):
            try:
                self._insert(doc)
            except DuplicateKeyError as exc:
                errors.append({"index": index, "code": 11000, "errmsg": str(exc)})
                if ordered:
                    break
        if errors:
            raise BulkWriteError({"writeErrors": errors, "writeConcernErrors": [],
                                  "nInserted": len(docs) - len(errors)})
        return _Result()

    def _log(self, op: str, key: Any, before: dict[str, Any] | None) -> None:
        after = None if op == "delete" else self._coll.find_one({"_id": key})
        event = (op, self.database, self.name, key, before, after)
        if self._session is not None:  # held back until the transaction commits
            self._session.journal.append((self._coll, op, key, before))
            self._session.events.append(event)
        else:
            self.client.changes.append(*event)

    def _insert(self, doc: dict[str, Any]) -> _Result:
        self._coll.insert_one(copy.deepcopy(doc))
        self._log("insert", doc.get("_id"), None)
        return _Result(inserted_id=doc.get("_id"))

    async def replace_one(self, flt: dict[str, Any], doc: dict[str, Any], **kw: Any) -> _Result:
        await self._enter("replace_one", flt, doc, **kw)
        return self._replace(flt, doc, bool(kw.get("upsert")))

    def _no_update(self) -> None:
        if (self.database, self.name) in self.client.timeseries:
            raise OperationFailure("stand-in: a time-series collection takes no update "
                                   "(sent by the backend only on MongoDB 8)", code=72)

    def _replace(self, flt: dict[str, Any], doc: dict[str, Any], upsert: bool) -> _Result:
        self._no_update()
        before = self._coll.find_one(flt)
        result = self._coll.replace_one(flt, copy.deepcopy(doc), upsert=upsert)
        if result.matched_count and before is not None:
            self._log("replace", before["_id"], before)
        elif result.upserted_id is not None:
            self._log("insert", result.upserted_id, None)
        return _Result(result.matched_count, result.modified_count, upserted_id=result.upserted_id)

    def _update(self, flt: dict[str, Any], update: dict[str, Any], upsert: bool) -> _Result:
        self._no_update()
        before = self._coll.find_one(flt)
        result = self._coll.update_one(flt, update, upsert=upsert)
        if result.matched_count and before is not None:
            self._log("update", before["_id"], before)
        elif result.upserted_id is not None:
            self._log("insert", result.upserted_id, None)
        return _Result(result.matched_count, result.modified_count, upserted_id=result.upserted_id)

    async def update_one(self, flt: dict[str, Any], update: dict[str, Any], **kw: Any) -> _Result:
        await self._enter("update_one", flt, update, **kw)
        return self._update(flt, update, bool(kw.get("upsert")))

    async def update_many(self, flt: dict[str, Any], update: dict[str, Any],
                          **kw: Any) -> _Result:
        await self._enter("update_many", flt, update, **kw)
        matched = modified = 0
        for doc in list(self._coll.find(flt)):
            done = self._update({"_id": doc["_id"]}, update, False)
            matched += done.matched_count
            modified += done.modified_count
        return _Result(matched, modified)

    async def find_one_and_update(self, flt: dict[str, Any], update: dict[str, Any],
                                  projection: Any = None, **kw: Any) -> dict[str, Any] | None:
        await self._enter("find_one_and_update", flt, update, projection, **kw)
        before = self._coll.find_one(flt)
        if before is None and not kw.get("upsert"):
            return None
        done = self._update(flt, update, bool(kw.get("upsert")))
        key = before["_id"] if before is not None else done.upserted_id
        if kw.get("return_document"):  # ReturnDocument.AFTER
            return self._coll.find_one({"_id": key}, projection)
        return before

    def _delete(self, flt: dict[str, Any]) -> int:
        before = self._coll.find_one(flt)
        if before is None:
            return 0
        self._coll.delete_one({"_id": before["_id"]})
        self._log("delete", before["_id"], before)
        return 1

    async def delete_one(self, flt: dict[str, Any], **kw: Any) -> _Result:
        await self._enter("delete_one", flt, **kw)
        return _Result(deleted_count=self._delete(flt))

    async def delete_many(self, flt: dict[str, Any], **kw: Any) -> _Result:
        await self._enter("delete_many", flt, **kw)
        keys = [doc["_id"] for doc in self._coll.find(flt)]
        return _Result(deleted_count=sum(self._delete({"_id": key}) for key in keys))

    async def bulk_write(self, requests: Iterable[Any], ordered: bool = True, **kw: Any) -> Any:
        ops = list(requests)
        await self._enter("bulk_write", [_describe(op) for op in ops], ordered=ordered, **kw)
        counts = {"nInserted": 0, "nMatched": 0, "nModified": 0, "nRemoved": 0, "nUpserted": 0}
        errors: list[dict[str, Any]] = []
        for index, op in enumerate(ops):
            kind, args = _describe(op)
            try:
                if kind == "insert_one":
                    self._insert(args["document"])
                    counts["nInserted"] += 1
                elif kind == "replace_one":
                    result = self._replace(args["filter"], args["document"], False)
                    counts["nMatched"] += result.matched_count
                    counts["nModified"] += result.modified_count
                elif kind == "update_one":
                    done = self._update(args["filter"], args["update"], args["upsert"])
                    counts["nMatched"] += done.matched_count
                    counts["nModified"] += done.modified_count
                    counts["nUpserted"] += done.upserted_id is not None
                else:
                    counts["nRemoved"] += self._delete(args["filter"])
            except DuplicateKeyError as exc:
                errors.append({"index": index, "code": 11000, "errmsg": str(exc), "op": args})
                if ordered:
                    break
        details = {**counts, "writeErrors": errors, "writeConcernErrors": [], "upserted": []}
        if errors:
            raise BulkWriteError(details)
        return _BulkResult(details)

    async def create_index(self, keys: Any, **kw: Any) -> str:
        await self._enter("create_index", keys, **kw)
        if any(kind == "2dsphere" for _, kind in keys):
            return str(kw.get("name", "geo"))  # mongomock has no geo index; nothing to build
        return str(self._coll.create_index(keys, **kw))


class _LazyCursor:
    """``find`` is not a coroutine in PyMongo: the call is recorded when iterated."""

    def __init__(
        self,
        coll: StandInCollection,
        flt: dict[str, Any],
        sort: Any,
        skip: int,
        limit: int,
        kw: dict[str, Any],
    ) -> None:
        self._coll, self._filter, self._sort = coll, flt, sort
        self._skip, self._limit, self._kw = skip, limit, kw
        self._docs: list[dict[str, Any]] | None = None

    async def _load(self) -> list[dict[str, Any]]:
        if self._docs is None:
            await self._coll._enter(
                "find", self._filter, sort=self._sort, skip=self._skip, limit=self._limit
            )
            docs = self._coll._select(self._filter, self._sort)[self._skip :]
            self._docs = docs[: self._limit] if self._limit else docs
        return self._docs

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        for doc in await self._load():
            await asyncio.sleep(0)
            if self._coll.client.down:
                raise ServerSelectionTimeoutError("stand-in: connection lost while reading")
            yield copy.deepcopy(doc)

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        docs = copy.deepcopy(await self._load())
        return docs if length is None else docs[:length]

    async def close(self) -> None:
        """Nothing to release."""


@dataclass(slots=True)
class _BulkResult:
    bulk_api_result: dict[str, Any]

    @property
    def matched_count(self) -> int:
        return int(self.bulk_api_result["nMatched"])

    @property
    def deleted_count(self) -> int:
        return int(self.bulk_api_result["nRemoved"])

    @property
    def inserted_count(self) -> int:
        return int(self.bulk_api_result["nInserted"])


def _with_top_n(coll: Any, stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run ``stages``; a ``$group`` whose accumulators are all ``$topN`` of ``$$ROOT``
    (which mongomock lacks) is done here, the stages around it by mongomock."""
    at = next((i for i, stage in enumerate(stages) if "$group" in stage and any(
        isinstance(v, dict) and "$topN" in v for v in stage["$group"].values())), None)
    if at is None:
        return list(coll.aggregate(stages))
    docs = list(coll.aggregate(stages[:at])) if at else list(coll.find({}))
    group = stages[at]["$group"]
    rows: dict[str, dict[str, Any]] = {}
    for doc in docs:
        key = {name: next(iter(_values(doc, ref[1:])), None)
               for name, ref in group["_id"].items()}
        row = rows.setdefault(repr(sorted(key.items())), {"_id": key})
        for name in group:
            if name != "_id":
                row.setdefault(name, []).append(doc)
    for row in rows.values():
        for name, spec in group.items():
            if name == "_id":
                continue
            top = spec["$topN"]
            if top["output"] != "$$ROOT":
                raise NotImplementedError("stand-in: $topN of $$ROOT only")
            for field_name, order in reversed(list(top["sortBy"].items())):
                row[name].sort(key=lambda d, f=field_name: d[f], reverse=order < 0)
            row[name] = row[name][: top["n"]]
    if not rows or at + 1 == len(stages):
        return list(rows.values())
    scratch = mongomock.MongoClient()["stand-in"]["scratch"]  # the rest, on the groups
    scratch.insert_many(list(rows.values()))
    return list(scratch.aggregate(stages[at + 1:]))


def _without_std_dev(pipeline: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The pipeline with each ``$stdDevPop`` of a ``$group`` made a ``$push`` of its values
    (computed afterwards), and the names of those fields."""
    names: list[str] = []
    stages = []
    for stage in pipeline:
        group = stage.get("$group")
        if group is not None:
            group = dict(group)
            for name, spec in group.items():
                if isinstance(spec, dict) and "$stdDevPop" in spec:
                    group[name] = {"$push": spec["$stdDevPop"]}
                    names.append(name)
            stage = {"$group": group}
        stages.append(stage)
    return stages, names


def _describe(op: Any) -> tuple[str, dict[str, Any]]:
    """The kind and arguments of a PyMongo bulk request (InsertOne, ReplaceOne, DeleteOne,
    UpdateOne: the discovery counters' upserts)."""
    if isinstance(op, InsertOne):
        return "insert_one", {"document": op._doc}
    if isinstance(op, ReplaceOne):
        return "replace_one", {"filter": op._filter, "document": op._doc}
    if isinstance(op, DeleteOne):
        return "delete_one", {"filter": op._filter}
    if isinstance(op, UpdateOne):
        return "update_one", {"filter": op._filter, "update": op._doc, "upsert": bool(op._upsert)}
    raise TypeError(f"stand-in: unknown bulk request {op!r}")


# -- geo operators, evaluated on the plane ------------------------------------------------


def _split_geo(flt: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    rest: dict[str, Any] = {}
    geo: list[tuple[str, dict[str, Any]]] = []
    for key, value in flt.items():
        if (
            key.startswith("geo.")
            and isinstance(value, dict)
            and any(op in value for op in _GEO_OPERATORS)
        ):
            geo.append((key, value))
        else:
            rest[key] = value
    return rest, geo


def _values(doc: dict[str, Any], path: str) -> list[Any]:
    node: Any = doc
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return []
    return node if isinstance(node, list) else [node]


def _geo_applies(path: str, ops: dict[str, Any], doc: dict[str, Any]) -> bool:
    shapes = [s for s in (entity_shape(v) for v in _values(doc, path)) if s is not None]
    if "$exists" in ops and bool(shapes) != bool(ops["$exists"]):
        return False
    if "$nearSphere" in ops:
        near = ops["$nearSphere"]
        lon, lat = near["$geometry"]["coordinates"][:2]
        low, high = near.get("$minDistance", 0.0), near.get("$maxDistance", float("inf"))
        return any(low <= distance_m(lon, lat, s) <= high for s in shapes)
    if "$geoWithin" in ops:
        target = entity_shape(ops["$geoWithin"]["$geometry"])
        return target is not None and any(s.within(target) for s in shapes)
    if "$geoIntersects" in ops:
        target = entity_shape(ops["$geoIntersects"]["$geometry"])
        return target is not None and any(s.intersects(target) for s in shapes)
    if "$not" in ops:
        target = entity_shape(ops["$not"]["$geoIntersects"]["$geometry"])
        return target is not None and not any(s.intersects(target) for s in shapes)
    return True


__all__ = [
    "Call", "OneServer", "StandInChangeStream", "StandInClient", "StandInCollection",
    "StandInCursor", "StandInDatabase",
]

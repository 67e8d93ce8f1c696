"""The MongoDB backend (``mongodb://`` and ``mongodb+srv://`` storage URLs).

PyMongo's asyncio API (``pymongo.AsyncMongoClient``).  Layout, as Orion-LD: one
database per tenant (``<db>`` for the default tenant, ``<db>-<tenant>`` for the
others) holding ``entities`` and the record collections (``subscriptions``,
``registrations``...); the default tenant's database also holds ``tenants`` (the
tenant registry) and ``contexts`` (broker-wide).  Documents: ``mongo_schema``;
filters: ``mongo_filters``; the whole schema: docs/mongodb.md.

Writes are optimistic: read the entity, apply the mutation (a pure function),
write back on condition that ``version`` is unchanged (retrying on conflict),
insert under the unique ``_id`` for a creation.  Within one process writes to
one entity are also queued on a lock, so conflicts only come from other
processes.  A batch is one ``bulk_write(ordered=False)``; entities whose write
lost a race are redone one by one.

Several processes may share the store (``share``, storage/mongo/shared.py): they
follow each other's changes on a change stream and hold subscriptions by leases.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from ngsi_ld.errors import NgsiLdError, ServiceUnavailable
from ngsi_ld.query import EntityQuery, matches
from ngsi_ld.temporal import History

from ..base import (
    DEFAULT_TENANT,
    Change,
    Entity,
    Mutation,
    Outcome,
    Recorder,
    Store,
)
from ..discovery import stats_delta
from ..helpers import check_page
from .batch import run_batch
from .discovery import DiscoveryMixin
from .filters import compile_query
from .history import MongoHistory
from .outbox import Abort, HistoryOutbox
from .records import (
    ENTITIES,
    TENANTS,
    RecordsMixin,
)
from .schema import ENTITY_INDEXES, EXPIRY, from_document, geo_index, to_document
from .shared import SharedMixin
from .support import (
    KeyLocks,
    database_name,
    faults,
    log,
    parse_settings,
    redact,
)

#: conditional writes of one entity before giving up (only other processes conflict)
MAX_ATTEMPTS = 20

ClientFactory = Callable[..., Any]


class MongoStore(SharedMixin, DiscoveryMixin, RecordsMixin, Store):
    """Entities, tenants, contexts and records in MongoDB.

    ``url`` is a MongoDB connection string; the keywords override its options:
    ``database`` (default: the URL path, else ``orion``), ``max_pool_size``,
    ``min_pool_size``, ``server_selection_timeout_ms`` (default 5000: how long a
    request waits for an unreachable server before its 503),
    ``connect_timeout_ms``, ``socket_timeout_ms``, ``retry_writes``,
    ``max_time_ms`` (a server-side limit per query: TooComplexQuery beyond it),
    ``retry_interval`` (seconds between start-up connection attempts) and
    ``client_factory`` (default ``AsyncMongoClient``; tests pass the stand-in).
    """

    kind = "mongodb"

    def __init__(
        self,
        url: str,
        *,
        client_factory: ClientFactory | None = None,
        retry_interval: float = 2.0,
        **options: Any,
    ) -> None:
        self.settings = parse_settings(url, **options)
        self.database = self.settings.database
        self._factory: ClientFactory = client_factory or AsyncMongoClient
        self._retry_interval = retry_interval
        self._client: Any = None
        self._ready: set[str] = set()  # databases whose indexes exist
        self._geo_ready: set[tuple[str, str]] = set()
        self._tenants: set[str] = {DEFAULT_TENANT}
        self._locks = KeyLocks()
        self._reconnect: asyncio.Task[None] | None = None
        self._history = MongoHistory(self._coll, self._every_tenant, self._db,
                                     lambda: self.client)
        self._outbox = HistoryOutbox(lambda: self.client, self._coll, self._history.record)

    @property
    def history(self) -> MongoHistory:
        """The temporal history, in the tenant databases (storage/mongo/history.py)."""
        return self._history

    async def _every_tenant(self) -> list[str]:
        return [DEFAULT_TENANT, *await self.list_tenants()]

    @property
    def outbox(self) -> HistoryOutbox:
        """Entity writes with their history (storage/mongo/outbox.py)."""
        return self._outbox

    def history_of(self, record: Recorder | None, before: Entity | None,
                    after: Entity | None) -> History | None:
        """What ``record`` makes of a change (None: nothing to record)."""
        if record is None or (before is None and after is None):
            return None
        return record(before, after, self._history.new_instance_id)

    # -- life cycle ------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The driver client (opened by :meth:`open`)."""
        if self._client is None:
            raise ServiceUnavailable("the MongoDB store is not open")
        return self._client

    async def open(self) -> None:
        """Create the client and the indexes; an unreachable server is logged and retried."""
        self._client = self._factory(self.settings.url, **self.settings.client_options)
        try:
            await self._start()
        except (NgsiLdError, PyMongoError) as exc:
            log.error(
                "MongoDB at %s is unreachable at start-up (%s); the broker runs and answers "
                "503 until it is reachable, retrying every %.0f s",
                redact(self.settings.url),
                exc,
                self._retry_interval,
            )
            self._reconnect = asyncio.create_task(self._keep_trying())

    async def _start(self) -> None:
        with faults("start-up"):
            await self.client.admin.command("ping")
        await self._ensure_indexes(DEFAULT_TENANT)
        for tenant in await self._every_tenant():
            await self._outbox.recover(tenant)  # history a stopped process left behind
            await self._history.backfill_attrs(tenant)  # records of an older version
        log.info("MongoDB store ready at %s, database %s", redact(self.settings.url), self.database)

    async def _keep_trying(self) -> None:
        delay = self._retry_interval
        while True:
            await asyncio.sleep(delay)
            try:
                await self._start()
            except (NgsiLdError, PyMongoError) as exc:
                log.warning("MongoDB still not usable: %s", exc)
                delay = min(delay * 2, 60.0)
            else:
                log.info("MongoDB reachable again")
                return

    async def close(self) -> None:
        """Stop following the change stream, stop retrying and close the client."""
        await self.close_feed()
        if self._reconnect is not None:
            self._reconnect.cancel()
            self._reconnect = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def drop_databases(self) -> None:
        """Drop the default database and every tenant's: everything this store holds (tests)."""
        names = [database_name(self.database, t) for t in await self.list_tenants()]
        with faults("database drop"):
            for name in [*names, self.database]:
                await self.client.drop_database(name)
        self._ready.clear()
        self._geo_ready.clear()
        self._tenants = {DEFAULT_TENANT}

    async def health(self) -> dict[str, Any]:
        """Ping the server; ServiceUnavailable if it does not answer."""
        with faults("health check"):
            await self.client.admin.command("ping")
        return {"kind": self.kind, "database": self.database}

    # -- layout ----------------------------------------------------------------------
    def _db(self, tenant: str) -> Any:
        return self.client[database_name(self.database, tenant)]

    def _coll(self, tenant: str, name: str) -> Any:
        return self._db(tenant)[name]

    async def _ensure_indexes(self, tenant: str) -> None:
        name = database_name(self.database, tenant)
        if name in self._ready:
            return
        entities = self._coll(tenant, ENTITIES)
        await self._with_pre_images(tenant)
        with faults("index creation"):
            for keys, options in ENTITY_INDEXES:
                await entities.create_index(keys, **options)
        await self.mark_counted(tenant)
        self._ready.add(name)

    async def _ensure_geo_index(self, tenant: str, attr: str) -> bool:
        """Create the 2dsphere index of a GeoProperty; False if MongoDB refuses to build it."""
        key = (database_name(self.database, tenant), attr)
        if key in self._geo_ready:
            return True
        keys, options = geo_index(attr)
        with faults("index creation"):
            try:
                await self._coll(tenant, ENTITIES).create_index(keys, **options)
            except OperationFailure as exc:
                # e.g. a stored geometry MongoDB's S2 rejects: query without the index
                log.error("no 2dsphere index on %s in %s: %s", attr, key[0], exc)
                return False
        self._geo_ready.add(key)
        return True

    # -- tenants -----------------------------------------------------------------------
    async def tenant_exists(self, tenant: str) -> bool:
        """True for the default tenant and every tenant in the registry."""
        if tenant in self._tenants:
            return True
        with faults("tenant lookup"):
            found = await self._coll(DEFAULT_TENANT, TENANTS).find_one({"_id": tenant})
        if found is not None:
            self._tenants.add(tenant)
        return found is not None

    async def ensure_tenant(self, tenant: str) -> None:
        """Register the tenant (its database is created with its first document)."""
        if tenant in self._tenants:
            return
        database_name(self.database, tenant)  # BadRequestData for an impossible name
        with faults("tenant creation"):
            await self._coll(DEFAULT_TENANT, TENANTS).update_one(
                {"_id": tenant}, {"$setOnInsert": {"_id": tenant}}, upsert=True
            )
        self._tenants.add(tenant)
        await self._ensure_indexes(tenant)

    async def list_tenants(self) -> list[str]:
        """Every registered tenant but the default one, sorted."""
        with faults("tenant listing"):
            docs = await self._coll(DEFAULT_TENANT, TENANTS).find({}, sort=[("_id", 1)]).to_list()
        return [d["_id"] for d in docs if d["_id"] != DEFAULT_TENANT]

    # -- entities ----------------------------------------------------------------------
    async def get_entity(self, tenant: str, entity_id: str) -> Entity | None:
        """The stored entity, or None."""
        with faults("entity read"):
            doc = await self._coll(tenant, ENTITIES).find_one({"_id": entity_id})
        return None if doc is None else from_document(doc)

    async def modify(self, tenant: str, entity_id: str, mutation: Mutation, *,
                     record: Recorder | None = None,
                     posted: Sequence[History] = ()) -> Change:
        """Apply ``mutation`` atomically (conditional write on ``version``, retried).

        ``record``: the write's history, committed with it (storage/mongo/outbox.py).
        ``posted`` (a temporal POST's instances): upserted right after the write, not in
        its transaction (the outbox records appended history only); a failure between the
        two leaves the entity written and the posted instances not, and the client's retry
        of the temporal POST completes it.
        """
        async with self._locks.hold([(tenant, entity_id)]):
            change = await self.modify_unlocked(tenant, entity_id, mutation, record=record)
            if posted:
                await self._history.add_history(tenant, posted)
            return change

    async def modify_unlocked(self, tenant: str, entity_id: str, mutation: Mutation, *,
                              record: Recorder | None = None) -> Change:
        """:meth:`modify` for a caller that holds the entity's lock; the discovery
        counters follow the write."""
        change = await self._write_one(tenant, entity_id, mutation, record)
        await self.add_counts(tenant, stats_delta(change.before, change.after))
        return change

    async def _write_one(self, tenant: str, entity_id: str, mutation: Mutation,
                         record: Recorder | None) -> Change:
        coll = self._coll(tenant, ENTITIES)
        for attempt in range(MAX_ATTEMPTS):
            with faults("entity read"):
                doc = await coll.find_one({"_id": entity_id})
            before = None if doc is None else from_document(doc)
            after = mutation(None if doc is None else from_document(doc))
            if after is None and doc is None:
                return Change(entity_id, None, None)
            version = None if doc is None else doc.get("version")
            history = self.history_of(record, before, after)
            new = None if after is None else self.stamp(to_document(after, (version or 0) + 1))
            if new is not None:
                new["_id"] = entity_id
            if doc is None:
                await self.ensure_tenant(tenant)
            if after is None:
                self.deleting(tenant, entity_id, version)
            done = False
            try:
                done = await self._outbox.run(
                    tenant, partial(self._put, coll, entity_id, version, new,
                                    creating=doc is None),
                    partial(_if_written, history), recording=history is not None)
            except Abort:
                done = False  # a creation that lost its race: read again
            finally:
                if after is None:
                    self.deleted(tenant, entity_id, version, done)
            if done:
                return Change(entity_id, before, after)
            # another process wrote in between: read again and redo
            await asyncio.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 8)))
        raise ServiceUnavailable(
            f"entity {entity_id} is changed by other writers too often; retry later"
        )

    async def _put(self, coll: Any, entity_id: str, version: Any,
                   new: dict[str, Any] | None, session: Any, *, creating: bool) -> bool:
        """The conditional write of one entity; False if another process wrote first
        (Abort for an insert whose id is taken: the transaction must not commit)."""
        if new is None:
            with faults("entity deletion"):
                done = await coll.delete_one({"_id": entity_id, "version": version},
                                             session=session)
            return bool(done.deleted_count)
        if creating:
            with faults("entity creation"):
                try:
                    await coll.insert_one(new, session=session)
                except DuplicateKeyError:
                    raise Abort(entity_id) from None
            return True
        with faults("entity update"):
            done = await coll.replace_one({"_id": entity_id, "version": version}, new,
                                          session=session)
        return bool(done.matched_count)

    async def modify_many(
        self, tenant: str, mutations: Sequence[tuple[str, Mutation]], *,
        record: Recorder | None = None,
    ) -> list[Outcome]:
        """Each mutation whole or not at all; one ``bulk_write(ordered=False)`` (mongo_batch)."""
        if not mutations:
            return []
        async with self._locks.hold({(tenant, entity_id) for entity_id, _ in mutations}):
            return await run_batch(self, tenant, self._coll(tenant, ENTITIES),
                                   list(mutations), record)

    # -- transient entities (clause 4.22) ------------------------------------------------
    async def due_expiries(self, now: int, limit: int) -> list[tuple[str, str]]:
        """The entities a part of which expired at ``now`` (ms), earliest first, over the
        tenant databases (the sparse ``expiry`` index holds transient entities only)."""
        due: list[tuple[int, str, str]] = []
        for tenant in [DEFAULT_TENANT, *await self.list_tenants()]:
            with faults("expiry lookup"):
                cursor = self._coll(tenant, ENTITIES).find(
                    {EXPIRY: {"$lte": now}}, {"_id": 1, EXPIRY: 1},
                    sort=[(EXPIRY, 1)], limit=limit,
                )
                docs = await cursor.to_list()
            due.extend((doc[EXPIRY], tenant, doc["_id"]) for doc in docs)
        return [(tenant, entity_id) for _, tenant, entity_id in sorted(due)[:limit]]

    async def next_expiry(self) -> int | None:
        """When the first part of any entity expires (ms), or None."""
        found: list[int] = []
        for tenant in [DEFAULT_TENANT, *await self.list_tenants()]:
            with faults("expiry lookup"):
                cursor = self._coll(tenant, ENTITIES).find(
                    {EXPIRY: {"$exists": True}}, {"_id": 1, EXPIRY: 1},
                    sort=[(EXPIRY, 1)], limit=1,
                )
                docs = await cursor.to_list()
            found.extend(doc[EXPIRY] for doc in docs)
        return min(found, default=None)

    async def query_entities(
        self,
        tenant: str,
        query: EntityQuery,
        *,
        offset: int = 0,
        limit: int | None = None,
        count: bool = False,
    ) -> tuple[list[Entity], int | None]:
        """Matching entities sorted by id, paged: the compiled filter, then ``matches``."""
        check_page(offset, limit)
        if not await self.tenant_exists(tenant):
            return [], (0 if count else None)
        compiled = compile_query(query)
        flt = compiled.filter
        if compiled.geo_attr is not None and not await self._ensure_geo_index(
            tenant, compiled.geo_attr
        ):
            flt = {k: v for k, v in flt.items() if not k.startswith("geo.")}  # post-filter only

        def keep(found: Entity) -> bool:
            return matches(found, query)

        return await self._select(tenant, flt, compiled.exact, keep, offset, limit, count)

    async def _select(
        self,
        tenant: str,
        flt: dict[str, Any],
        exact: bool,
        keep: Callable[[Entity], bool],
        offset: int,
        limit: int | None,
        count: bool,
    ) -> tuple[list[Entity], int | None]:
        """A page of the documents ``flt`` (and ``keep``, unless exact) select, sorted by _id."""
        coll = self._coll(tenant, ENTITIES)
        extra: dict[str, Any] = {}
        if self.settings.max_time_ms is not None:
            extra["max_time_ms"] = self.settings.max_time_ms
        if exact:
            with faults("query"):
                docs: list[dict[str, Any]] = []
                if limit != 0:
                    cursor = coll.find(
                        flt, sort=[("_id", 1)], skip=offset, limit=limit or 0, **extra
                    )
                    docs = await cursor.to_list()
                counting = {"maxTimeMS": extra["max_time_ms"]} if extra else {}
                total = await coll.count_documents(flt, **counting) if count else None
            return [from_document(d) for d in docs], total
        stop = None if count or limit is None else offset + limit
        selected: list[Entity] = []
        matched = 0
        with faults("query"):
            cursor = coll.find(flt, sort=[("_id", 1)], **extra)
            try:
                async for doc in cursor:
                    candidate = from_document(doc)
                    if not keep(candidate):
                        continue
                    matched += 1
                    if matched > offset and (limit is None or len(selected) < limit):
                        selected.append(candidate)
                    if stop is not None and matched >= stop:
                        break
            finally:
                await cursor.close()
        return selected, (matched if count else None)


def _if_written(history: History | None, written: bool) -> list[History]:
    return [history] if written and history is not None else []


__all__ = ["MongoStore"]

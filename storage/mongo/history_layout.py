"""Which collection holds the attribute instances on MongoDB, and how it is kept in bounds.

Issue 15, docs/temporal.md 3.4.  ``temporal_instances`` is, per tenant database:

* a **time-series collection** (``timeField`` ``at``, ``metaField`` ``s`` holding the
  series ``{e, a, d}``, granularity seconds) on MongoDB 7.0 and later: instances of one
  series are stored together in compressed buckets.  7.0 is where deletes by any
  filter are allowed on time-series collections, which the temporal API's deletions
  need; no update is ever sent to it (a replacement is a delete then an insert);
* otherwise, or when the server refuses the ``create`` (an older server, a
  deployment that forbids it), a plain collection, as before;
* both with the compound index ``(e, a, t)`` serving windows and lastN.

An existing collection is kept as it is (its kind is read with ``listCollections``),
so a database written by an older broker keeps working.

Retention (``--temporal-retention``): MongoDB drops expired instances itself:
``expireAfterSeconds`` of the time-series collection (``collMod``), or a TTL index on
``at`` for the plain collection (``collMod`` of that index when the retention changes,
since recreating an index with other options is refused).
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import OperationFailure

from .support import faults, log

INSTANCES = "temporal_instances"
#: the first MongoDB whose time-series collections take deletes by any filter
TIMESERIES_VERSION = (7, 0)
#: the options of the time-series collection
TIMESERIES = {"timeField": "at", "metaField": "s", "granularity": "seconds"}
SERIES_INDEX: list[tuple[str, Any]] = [("e", 1), ("a", 1), ("t", -1)]
RETENTION_INDEX = "temporal_retention"

_NAMESPACE_EXISTS = 48
_INDEX_OPTIONS_CONFLICT = 85


async def server_version(client: Any) -> tuple[int, int]:
    """(major, minor) of the server (``buildInfo``)."""
    with faults("server version"):
        info = await client.admin.command("buildInfo")
    major, minor = [*info.get("versionArray", []), 0, 0][:2]
    return int(major), int(minor)


async def prepare(db: Any, version: tuple[int, int]) -> bool:
    """Create the instances collection of one database if needed, and its index;
    True if it is a time-series collection."""
    series = False
    with faults("history collection"):
        if version >= TIMESERIES_VERSION:
            try:
                await db.command("create", INSTANCES, timeseries=TIMESERIES)
                series = True
            except OperationFailure as exc:
                if exc.code == _NAMESPACE_EXISTS:
                    series = await _is_timeseries(db)
                else:  # refused: the plain collection, as on older servers
                    log.warning("no time-series collection for the history in %s (%s); "
                                "a plain collection is used", db.name, exc)
        else:
            series = await _is_timeseries(db)
        await db[INSTANCES].create_index(SERIES_INDEX)
    return series


async def _is_timeseries(db: Any) -> bool:
    found = await db.command("listCollections", filter={"name": INSTANCES})
    batch = found.get("cursor", {}).get("firstBatch", [])
    return bool(batch) and batch[0].get("type") == "timeseries"


async def retain(db: Any, series: bool, keep: int) -> None:
    """Let MongoDB drop the instances of one database older than ``keep`` seconds."""
    with faults("history retention"):
        if series:
            await db.command("collMod", INSTANCES, expireAfterSeconds=keep)
            return
        try:
            await db[INSTANCES].create_index([("at", 1)], name=RETENTION_INDEX,
                                             expireAfterSeconds=keep)
        except OperationFailure as exc:
            if exc.code != _INDEX_OPTIONS_CONFLICT:
                raise
            await db.command("collMod", INSTANCES,
                             index={"name": RETENTION_INDEX, "expireAfterSeconds": keep})


async def replace(coll: Any, series: bool, flt: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Replace the instance ``flt`` selects by ``doc``; True if there was one.  A
    time-series collection takes no update: delete, then insert."""
    if not series:
        return bool((await coll.replace_one(flt, doc)).matched_count)
    if not (await coll.delete_one(flt)).deleted_count:
        return False
    await coll.insert_one(doc)
    return True


def series_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The metaField of an instance document: its series."""
    return {"e": doc["e"], "a": doc["a"], "d": doc["d"]}


__all__ = [
    "INSTANCES", "SERIES_INDEX", "TIMESERIES", "TIMESERIES_VERSION", "prepare", "replace",
    "retain", "series_of", "server_version",
]

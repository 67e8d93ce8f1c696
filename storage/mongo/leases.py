"""Leases of the MongoDB store: one owner per subscription among broker processes.

A lease is one document of ``<db>.leases`` (the default tenant's database)::

    {"_id": "subscription:<tenant>\\0<id>", "owner": "host:pid:rnd",
     "until": ISODate(...), "epoch": 3}

It is held while ``until`` is in the future.  Every change is ONE conditional
write, so two processes can never both believe they hold it:

* renewal by its owner: ``find_one_and_update({_id, owner: me, until >= now})``;
* otherwise take-over or creation: ``find_one_and_update({_id, until < now},
  {$set: owner, until; $inc: epoch}, upsert=True)``: an expired lease matches
  and changes hands (``epoch`` + 1, the fencing counter); a missing one is
  inserted with epoch 1; a lease held by another process matches nothing, the
  upsert then collides on ``_id`` (DuplicateKeyError) and the claim fails.

A write guarded by a lease (the delivery counters of a subscription:
:func:`put_fenced`) runs in ONE transaction with an update of the lease filtered
on its holder and epoch, ``update_one({_id, owner: me, epoch: e}, {$set:
{fencedAt}})``: matching nothing (the lease changed hands), the guarded write is
not made; a take-over racing the transaction writes the same lease document, so
MongoDB lets only one of them through (a write conflict: the transaction is
retried and then matches nothing, or the take-over waits for its commit).  The
record and its lease are in two collections, hence the transaction rather than
a filter on the record itself; the feature needs a replica set anyway (change
streams).

``until`` is the writing process's clock plus the TTL: hosts need synchronized
clocks (NTP), with a skew well under the TTL.  A TTL index on ``until`` removes
leases a day after they expired (those of processes that died).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from ..sharing import Fence
from .support import faults

#: (keys, options) of the index that removes long-expired leases
LEASE_INDEX: tuple[list[tuple[str, Any]], dict[str, Any]] = (
    [("until", 1)], {"name": "lease_expiry", "expireAfterSeconds": 86400})


def _now() -> datetime:
    return datetime.now(UTC)


async def acquire(coll: Any, name: str, owner: str, ttl: float) -> bool:
    """Hold ``name`` for ``ttl`` seconds if it is free, expired or ours; True if held."""
    now = _now()
    until = now + timedelta(seconds=ttl)
    with faults("lease"):
        renewed = await coll.find_one_and_update(
            {"_id": name, "owner": owner, "until": {"$gte": now}},
            {"$set": {"until": until}}, projection={"_id": 1})
        if renewed is not None:
            return True
        try:
            await coll.find_one_and_update(
                {"_id": name, "until": {"$lt": now}},
                {"$set": {"owner": owner, "until": until}, "$inc": {"epoch": 1}},
                projection={"_id": 1}, upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            return False  # held by another process
    return True


async def renew(coll: Any, owner: str, ttl: float) -> list[str]:
    """Extend every unexpired lease of ``owner``; the names it still holds."""
    now = _now()
    mine = {"owner": owner, "until": {"$gte": now}}
    with faults("lease"):
        await coll.update_many(mine, {"$set": {"until": now + timedelta(seconds=ttl)}})
        docs = await coll.find({"owner": owner, "until": {"$gte": now}}, {"_id": 1},
                               sort=[("_id", 1)]).to_list()
    return [doc["_id"] for doc in docs]


async def release(coll: Any, owner: str, names: list[str] | None) -> None:
    """Give up some (None: all) leases of ``owner``."""
    flt: dict[str, Any] = {"owner": owner}
    if names is not None:
        flt["_id"] = {"$in": list(names)}
    with faults("lease"):
        await coll.delete_many(flt)


async def drop(coll: Any, name: str) -> None:
    """Remove a lease whoever holds it."""
    with faults("lease"):
        await coll.delete_one({"_id": name})


async def epoch(coll: Any, name: str, owner: str) -> int | None:
    """The epoch of the lease ``name`` if ``owner`` holds it (unexpired), else None."""
    with faults("lease"):
        doc = await coll.find_one({"_id": name, "owner": owner, "until": {"$gte": _now()}},
                                  {"epoch": 1})
    return None if doc is None else int(doc.get("epoch", 0))


async def put_fenced(client: Any, leases: Any, records: Any, doc: dict[str, Any],
                     lease: Fence) -> bool:
    """Replace the existing record ``doc`` (its ``_id``) in ``records`` while ``lease``
    is held with its epoch (see the module docstring); True if written."""

    async def write(session: Any) -> bool:
        held = await leases.update_one(
            {"_id": lease.name, "owner": lease.owner, "epoch": lease.epoch},
            {"$set": {"fencedAt": _now()}}, session=session)
        if not held.matched_count:
            return False  # taken over since: the write of a former holder is dropped
        done = await records.replace_one({"_id": doc["_id"]}, doc, session=session)
        return bool(done.matched_count)

    with faults("record write"):
        async with client.start_session() as session:
            written: bool = await session.with_transaction(write)
    return written


async def holders(coll: Any, prefix: str) -> dict[str, str]:
    """Unexpired leases whose name starts with ``prefix``: name -> owner."""
    flt = {"_id": {"$gte": prefix, "$lt": prefix + "\U0010ffff"}, "until": {"$gte": _now()}}
    with faults("lease"):
        docs = await coll.find(flt, {"_id": 1, "owner": 1}, sort=[("_id", 1)]).to_list()
    return {doc["_id"]: doc["owner"] for doc in docs}


__all__ = ["LEASE_INDEX", "acquire", "drop", "epoch", "holders", "put_fenced", "release",
           "renew"]

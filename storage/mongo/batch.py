"""Batches on MongoDB: many mutations, one ``bulk_write(ordered=False)``.

1. One ``find`` reads every entity the batch names.
2. The mutations run in order on those states (a second mutation of an entity
   sees the first one's result); one that raises is that entry's error.
3. One write per entity with its final state: ``InsertOne`` for a new entity
   (the unique ``_id`` refuses it if another writer created it meanwhile),
   ``ReplaceOne`` / ``DeleteOne`` conditional on the ``version`` read in step 1.
4. ``bulk_write(ordered=False)``: a write error names its request index, hence
   its entity (BulkWriteError details); a duplicate key is a lost race.  When
   fewer conditional writes matched than were sent, the ``writeId`` of each
   entity is read back to find the ones another writer changed first.
5. Entities that lost a race are redone one mutation at a time with the
   conditional single-entity path (``MongoStore.modify_unlocked``), so no write
   is lost; other write errors become those entries' errors.

The history of the entities written goes in the bulk write's transaction where
there are transactions (storage/mongo/outbox.py).  A write error aborts a
transaction whole: then every entity of the batch is redone alone (step 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pymongo import DeleteOne, InsertOne, ReplaceOne
from pymongo.errors import BulkWriteError

from ngsi_ld.errors import BadRequestData, NgsiLdError
from ngsi_ld.temporal import History

from ..base import Change, Entity, Mutation, Outcome, Recorder
from ..discovery import StatKey, add_stats, stats_delta
from ..helpers import as_ngsi_error, copy_entity
from .outbox import Abort
from .schema import from_document, to_document
from .support import faults, log

if TYPE_CHECKING:
    from .store import MongoStore

_LOST_RACE = "lost race"


async def run_batch(
    store: MongoStore, tenant: str, coll: Any, mutations: Sequence[tuple[str, Mutation]],
    record: Recorder | None = None,
) -> list[Outcome]:
    """Apply ``mutations`` (the caller holds the entities' locks); one Outcome per entry."""
    ids = list(dict.fromkeys(entity_id for entity_id, _ in mutations))
    with faults("batch read"):
        docs = {d["_id"]: d for d in await coll.find({"_id": {"$in": ids}}).to_list()}
    states: dict[str, Entity | None] = {
        i: from_document(docs[i]) if i in docs else None for i in ids
    }
    originals = dict(states)
    outcomes: list[Outcome] = []
    positions: dict[str, list[int]] = {i: [] for i in ids}
    changed: set[str] = set()
    for index, (entity_id, mutation) in enumerate(mutations):
        positions[entity_id].append(index)
        current = states[entity_id]
        try:
            after = mutation(None if current is None else copy_entity(current))
            if after is not None:
                to_document(after, 0)  # not JSON: this entry's error, nothing written
        except Exception as exc:
            outcomes.append(Outcome(entity_id, error=as_ngsi_error(entity_id, exc)))
            continue
        outcomes.append(Outcome(entity_id, change=Change(entity_id, current, after)))
        states[entity_id] = None if after is None else copy_entity(after)
        changed.add(entity_id)

    requests: list[Any] = []
    owners: list[str] = []
    written: dict[str, dict[str, Any] | None] = {}
    for entity_id in ids:
        doc, final = docs.get(entity_id), states[entity_id]
        if entity_id not in changed or (doc is None and final is None):
            continue
        version = None if doc is None else doc.get("version")
        condition = {"_id": entity_id, "version": version}
        if final is None:
            requests.append(DeleteOne(condition))
            written[entity_id] = None
        else:
            new = store.stamp(to_document(final, (version or 0) + 1))
            new["_id"] = entity_id
            requests.append(InsertOne(new) if doc is None else ReplaceOne(condition, new))
            written[entity_id] = new
        owners.append(entity_id)
    histories: dict[str, list[History]] = {}
    for outcome in outcomes:
        if outcome.change is not None:
            found = store.history_of(record, outcome.change.before, outcome.change.after)
            if found is not None:
                histories.setdefault(outcome.entity_id, []).append(found)

    def recorded(problems: dict[str, Any]) -> list[History]:
        # the entities written, and those created and deleted within the batch
        return [h for entity_id, found in histories.items() if entity_id not in problems
                for h in found]

    if not requests:
        await store.outbox.run(tenant, _nothing, lambda _: recorded({}),
                               recording=bool(histories))
        return outcomes
    if any(isinstance(r, InsertOne) for r in requests):
        await store.ensure_tenant(tenant)

    deletions = [(i, docs[i].get("version")) for i, new in written.items() if new is None]
    for entity_id, version in deletions:
        store.deleting(tenant, entity_id, version)
    problems: dict[str, Any] = dict.fromkeys(owners, _LOST_RACE)
    try:
        problems = await store.outbox.run(
            tenant, lambda session: _bulk(coll, requests, owners, docs, written, session),
            recorded, recording=bool(histories))
    except Abort:  # a write error aborted the transaction: each entity alone
        problems = dict.fromkeys(owners, _LOST_RACE)
    finally:  # the change feed skips this process's own deletions, and only those
        for entity_id, version in deletions:
            store.deleted(tenant, entity_id, version, entity_id not in problems)
    # the discovery counters follow what was written (an entity redone below counts its own)
    delta: dict[StatKey, int] = {}
    for entity_id in owners:
        if entity_id not in problems:
            add_stats(delta, stats_delta(originals[entity_id], states[entity_id]))
    await store.add_counts(tenant, delta)
    for entity_id, problem in problems.items():
        if problem == _LOST_RACE:
            await _redo(store, tenant, entity_id, mutations, positions[entity_id], outcomes,
                        record)
        else:
            for index in positions[entity_id]:
                outcomes[index] = Outcome(entity_id, error=problem)
    return outcomes


async def _nothing(session: Any) -> None:
    return None


async def _bulk(
    coll: Any,
    requests: list[Any],
    owners: list[str],
    docs: dict[str, dict[str, Any]],
    written: dict[str, dict[str, Any] | None],
    session: Any = None,
) -> dict[str, Any]:
    """Send the writes; entity id -> _LOST_RACE or the NgsiLdError of each write not done.
    In a transaction (``session``), a write error aborts it (Abort)."""
    problems: dict[str, Any] = {}
    with faults("batch write"):
        try:
            result = await coll.bulk_write(requests, ordered=False, session=session)
            details = result.bulk_api_result
        except BulkWriteError as exc:
            if session is not None:
                raise Abort("batch write") from None
            details = exc.details
    for error in details.get("writeErrors", []):
        entity_id = owners[error["index"]]
        if error.get("code") == 11000:
            problems[entity_id] = _LOST_RACE
        else:
            log.warning("batch write of entity %s failed: %s", entity_id, error.get("errmsg"))
            problems[entity_id] = BadRequestData(
                f"entity {entity_id} could not be stored: {error.get('errmsg', 'write error')}"
            )
    conditional = [
        (i, entity_id)
        for i, entity_id in enumerate(owners)
        if entity_id in docs and entity_id not in problems
    ]
    applied = int(details.get("nMatched", 0)) + int(details.get("nRemoved", 0))
    if applied < len(conditional):
        # some conditional write matched nothing: find whose, by the writeId it would have left
        wanted = [entity_id for _, entity_id in conditional]
        with faults("batch check"):
            cursor = coll.find({"_id": {"$in": wanted}}, {"writeId": 1}, session=session)
            now = {d["_id"]: d.get("writeId") for d in await cursor.to_list()}
        for _, entity_id in conditional:
            new = written[entity_id]
            done = entity_id not in now if new is None else now.get(entity_id) == new["writeId"]
            if not done:
                problems[entity_id] = _LOST_RACE
    return problems


async def _redo(
    store: MongoStore,
    tenant: str,
    entity_id: str,
    mutations: Sequence[tuple[str, Mutation]],
    indexes: list[int],
    outcomes: list[Outcome],
    record: Recorder | None,
) -> None:
    """Apply one entity's mutations again, one by one, on its current state."""
    for index in indexes:
        try:
            change = await store.modify_unlocked(tenant, entity_id, mutations[index][1],
                                                 record=record)
        except NgsiLdError as exc:
            if exc.status == 503:
                raise
            outcomes[index] = Outcome(entity_id, error=exc)
        except Exception as exc:
            outcomes[index] = Outcome(entity_id, error=as_ngsi_error(entity_id, exc))
        else:
            outcomes[index] = Outcome(entity_id, change=change)


__all__ = ["run_batch"]

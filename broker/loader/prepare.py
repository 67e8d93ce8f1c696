"""A batch of raw items made ready for the store, wherever it runs (here or in a worker).

Everything of a load but the store's own work happens here: decoding the raw
items (``sources.Decoder``: JSON, CSV with its mapping, GeoJSON), expanding
each entity as the broker would (``sinks.Expander``), the schema check, and the
entity as a batch upsert creates it (5.6.8: ``batch_upsert_mutation`` on an
absent entity), stamped with the batch's time.  What comes out is plain data
(bytes, numbers, strings) that crosses a process boundary cheaply; the writer
(``sinks.StoreSink``) turns each :class:`Ready` entity into the store's mutation
(``ReadyMutation``): an absent entity takes the prepared bytes as they are, an
existing one is upserted from the expanded entity as before, so the store ends
up exactly as with the in-process path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import orjson

from broker.loader.expander import Expander
from broker.loader.sources import Decoder, Record
from broker.schemas import ModelSchemas, SchemaViolation
from broker.schemas.models import Violation
from broker.schemas.store import checked
from ngsi_ld.batch import UPSERT_MODES, batch_upsert_mutation
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.instances import clone
from ngsi_ld.model import Entity
from ngsi_ld.operations import KEEPS_CURRENT
from storage.prepared import PreparedCreation


@dataclass(slots=True)
class Refused:
    """A record refused before the store: unreadable, not an entity, or invalid."""

    number: int
    entity_id: str | None
    reason: str
    violations: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Ready:
    """One entity ready to write: from a worker as orjson bytes (smaller to send than a
    pickle, and decoded in C), prepared in-process as the objects themselves."""

    number: int
    entity_id: str
    created: bytes | Entity  # the entity as an upsert creates it (when the store has none)
    expanded: bytes | Entity  # the expanded entity (an upsert of an existing one starts there)
    violations: list[Violation] = field(default_factory=list)  # of ``created``
    #: what the store writes for ``created`` where it has no such entity (from a worker;
    #: None: the store runs the mutation)
    prepared: PreparedCreation | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled as a call of the class: a slots dataclass restores its state in Python,
        # field by field (measured: twice the cost for a worker's batch of small entities)
        return Ready, (self.number, self.entity_id, self.created, self.expanded,
                       self.violations, self.prepared)


@dataclass(slots=True)
class PreparedBatch:
    """One batch of records, in file order: those refused and those ready to write."""

    last: int  # the number of its last record (the resume point once it is written)
    count: int  # records it holds
    now: str  # the time its entities are written at
    refused: list[Refused] = field(default_factory=list)
    ready: list[Ready] = field(default_factory=list)  # into a store
    records: list[Record] = field(default_factory=list)  # to a broker, as read
    #: the worker process that prepared it and its CPU seconds so far (the benchmark's)
    worker: tuple[int, float] | None = None


@dataclass(frozen=True, slots=True)
class CreationRows:
    """How a worker prepares the rows of the entities it creates (``storage.prepared``)."""

    #: the store's pure function (``PreparedWrites.prepare``)
    make: Callable[[Entity, bytes | None, str | None], PreparedCreation]
    temporal: bool  # the load records history

    def prepare(self, entity: Entity, doc: bytes, now: str) -> PreparedCreation:
        return self.make(entity, doc, now if self.temporal else None)


def _refused(record: Record, exc: NgsiLdError) -> Refused:
    violations = exc.violations if isinstance(exc, SchemaViolation) else []
    return Refused(record.number, record.entity_id, exc.detail, [v.to_json() for v in violations])


async def prepare_batch(expander: Expander, schemas: ModelSchemas | None, decoder: Decoder,
                        items: Sequence[tuple[int, Any]], now: str, mode: str,
                        encode: bool = False, rows: CreationRows | None = None,
                        compiled: bool = True) -> PreparedBatch:
    """Decode, expand, check and stamp ``items`` (``encode``: the entities as bytes, to
    send to another process; ``rows``: the rows each creation stores, prepared too;
    ``compiled``: CSV rows made by their compiled mapping where it can, else all the
    usual way, ``broker.loader.template``)."""
    batch = PreparedBatch(items[-1][0] if items else 0, len(items), now)
    template = await expander.template(decoder) \
        if compiled and mode in UPSERT_MODES else None
    for number, raw in items:
        if template is not None and (cells := decoder.cells(raw)) is not None \
                and (made := template.entity(cells, now)) is not None:
            expanded, expanded_doc, fresh = made
            if not encode:  # the created entity shares no value with the expanded one
                fresh = clone(fresh)
            _add_ready(batch, number, expanded, expanded_doc, fresh, schemas, now, encode, rows)
            continue
        record = decoder(number, raw)
        if record.error is not None:
            batch.refused.append(Refused(number, None, record.error))
            continue
        try:
            entity: Entity = await expander.expand(record)
            doc = None
            if encode:  # sent as bytes: encoded before the creation stamps it in place
                with suppress(TypeError):  # not plain JSON: as before, below
                    doc = orjson.dumps(entity)
            # 5.6.8 on an absent entity: created, stamped ``now`` (what most loads write)
            created = batch_upsert_mutation(entity, now, mode, owned=doc is not None)(None)
        except NgsiLdError as exc:
            batch.refused.append(_refused(record, exc))
            continue
        assert created is not None
        _add_ready(batch, number, entity, doc, created, schemas, now, encode, rows)
    return batch


def _add_ready(batch: PreparedBatch, number: int, entity: Entity, doc: bytes | None,
          created: Entity, schemas: ModelSchemas | None, now: str, encode: bool,
          rows: CreationRows | None) -> None:
    """One entity made ready (expanded: ``entity``, encoded as ``doc`` if known) added to
    ``batch``: schema-checked, encoded and its rows prepared as asked."""
    found = schemas.violations(created) if schemas else []
    if encode:
        created_doc = orjson.dumps(created)
        # from the entity itself, as the store computes its rows when prepared in-process
        # (the mutation hands it the entity: plain JSON values, as it decodes them)
        prepared = (rows.prepare(created, created_doc, now)
                    if rows is not None and not found else None)
        batch.ready.append(Ready(number, entity["id"], created_doc,
                                 doc if doc is not None else orjson.dumps(entity),
                                 list(found), prepared))
    else:
        batch.ready.append(Ready(number, entity["id"], created, entity, list(found)))


class ReadyMutation:
    """The store's mutation for one ready entity: what ``batch_upsert_mutation`` of its
    expanded form, checked by ``schemas`` as ``broker.schemas.validating`` does, does.

    One slotted object an entity (a batch makes a thousand; a closure would be four
    objects and its KEEPS_CURRENT mark a dict), never changing the entity it is given."""

    __slots__ = ("_handed", "_mode", "_now", "_ready", "_schemas")

    def __init__(self, ready: Ready, now: str, mode: str,
                 schemas: ModelSchemas | None) -> None:
        self._ready, self._now, self._mode, self._schemas = ready, now, mode, schemas
        self._handed = False  # an entity prepared in-process: handed out itself, once

    def __call__(self, current: Entity | None) -> Entity | None:
        ready = self._ready
        if current is None:
            if ready.violations:
                raise SchemaViolation(ready.entity_id, ready.violations)
            created = ready.created
            if isinstance(created, bytes):
                fresh: Entity = orjson.loads(created)  # a fresh copy at every call
                return fresh
            if not self._handed:  # (as create_entity does)
                self._handed = True
                return created
            return clone(created)
        expanded = ready.expanded
        upsert = batch_upsert_mutation(
            orjson.loads(expanded) if isinstance(expanded, bytes) else expanded, self._now,
            self._mode)
        if self._schemas:
            upsert = checked(self._schemas, ready.entity_id, upsert)
        return upsert(current)


setattr(ReadyMutation, KEEPS_CURRENT, True)  # it never changes the entity it is given

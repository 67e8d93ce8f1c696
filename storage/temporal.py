"""The temporal history a store keeps (ETSI GS CIM 009 v1.9.1, 4.5.6 to 4.5.8, 5.6.11
to 5.6.16, 5.7.3, 5.7.4): the interface every backend implements.

History is written two ways: by the entity writes themselves, in their
transaction (``Store.modify(..., record=...)``, docs/temporal.md 3.1), and by the
temporal API (:meth:`TemporalHistory.add_history`, 5.6.11 and 5.6.12).  Reads
return :class:`~ngsi_ld.temporal.Instance` records; the service selects, pages,
aggregates and renders them with the pure ``ngsi_ld.temporal`` package, which
is also the oracle of the stores' own aggregations (tests/storage_contract.py).

Instance ids: a store allocates them (:meth:`TemporalHistory.new_instance_id`);
they are URIs ``urn:ngsi-ld:Instance:<n>``, and an id of another form is simply
not found.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from ngsi_ld.temporal import (
    AggregatedSeries,
    Aggregation,
    EntityRecord,
    History,
    Instance,
    TemporalQuery,
    upsert,
)

__all__ = ["INSTANCE_PREFIX", "AggregatedHistory", "RecordTimes", "TemporalHistory",
           "instance_number", "merge_record", "merge_times", "one_per_key"]

#: the prefix of the instanceIds the stores allocate (4.5.7: a URI)
INSTANCE_PREFIX = "urn:ngsi-ld:Instance:"

#: entity id -> attribute -> its aggregated series (one per datasetId and kind)
AggregatedHistory = dict[str, dict[str, list[AggregatedSeries]]]


def instance_number(instance_id: str) -> int | None:
    """The number of an instanceId this broker allocated, None for any other URI."""
    if not instance_id.startswith(INSTANCE_PREFIX):
        return None
    digits = instance_id[len(INSTANCE_PREFIX):]
    if not digits.isdigit() or len(digits) > 19 or int(digits) >= 2**63:
        return None  # not one of ours: an int64 (SQLite, MongoDB) holds them all
    return int(digits)


def one_per_key(instances: Sequence[Instance]) -> list[Instance]:
    """What a temporal add (5.6.11) records of one Entity's posted ``instances``: two
    of one key (series, observedAt) in the request are one, the later (at the
    first's place), as :func:`ngsi_ld.temporal.upsert` makes them of stored ones.  A
    store that upserts the request's instances one by one against what it holds
    (SQLite, MongoDB) would otherwise keep both: it calls this first."""
    return upsert((), instances)


#: (createdAt, modifiedAt, deletedAt) of an Entity record
RecordTimes = tuple[str | None, str | None, str | None]


def merge_times(stored: EntityRecord | None, new: EntityRecord) -> RecordTimes:
    """The times of the Entity record after a write: the first createdAt, the latest
    modifiedAt, and deletedAt as the write says (a re-creation clears it).  What a
    store whose types grow on the server (MongoDB's ``$addToSet``) merges itself."""
    if stored is None:
        return new.created_at, new.modified_at, new.deleted_at
    return (stored.created_at or new.created_at, new.modified_at or stored.modified_at,
            new.deleted_at)


def merge_record(stored: EntityRecord | None, new: EntityRecord) -> EntityRecord:
    """The Entity record after a write: the types it has had (a later write adds its
    types, ETSI 5611_01_01) and the times :func:`merge_times` gives."""
    if stored is None:
        return new
    types = tuple(dict.fromkeys((*stored.types, *new.types)))
    if types == new.types and new.modified_at \
            and (stored.created_at or new.created_at) == new.created_at:
        # what the merge gives (the usual write of an entity recorded before), told
        # without the times' tuple (70 ns of 440 a call, measured)
        return new
    return EntityRecord(new.entity_id, types, *merge_times(stored, new))


class TemporalHistory(abc.ABC):
    """The temporal evolution of the Entities of every tenant of one store."""

    @abc.abstractmethod
    def new_instance_id(self) -> str:
        """A fresh instanceId (only called where the store writes, e.g. its writer thread)."""

    # -- reads ----------------------------------------------------------------------
    @abc.abstractmethod
    async def temporal_entities(
        self, tenant: str, *, ids: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
    ) -> list[EntityRecord]:
        """The records of the Entities with a temporal evolution, sorted by id: those of
        ``ids`` when given, and having one of ``types`` when given (expanded names)."""

    async def entities_with(self, tenant: str, attributes: Sequence[str]) -> set[str] | None:
        """The ids of the Entities whose history may hold an instance of one of
        ``attributes`` (expanded names) or of the Scope: every Entity of which
        :meth:`read_history` or :meth:`aggregate_history` of those attributes finds an
        instance is among them (more may be); None when the store cannot tell without
        reading every Entity's (a query by attrs then reads the records it selects, as
        before).  A query of some attributes over many Entities of a type, few of which
        have them, reads only these (5.7.4.4: the others are not part of its answer)."""
        return None

    @abc.abstractmethod
    async def read_history(
        self, tenant: str, entity_ids: Sequence[str], attributes: Sequence[str] | None,
        query: TemporalQuery, per_series: int | None = None,
    ) -> dict[str, list[Instance]]:
        """The recorded instances of ``entity_ids`` (entity id -> instances): of the
        Attributes ``attributes`` (None: all) and of the Scope, always all of it.

        A store may leave out what :func:`ngsi_ld.temporal.select` would not keep
        (outside ``query``'s window), and, given ``per_series``, keep only that many
        instances of each (Attribute, datasetId) in the window: the last ones when
        ``query.last_n`` is set, else the first ones; what :func:`~ngsi_ld.temporal.paginate`
        makes of the result must be the same as of every instance.
        """

    async def aggregate_history(
        self, tenant: str, entity_ids: Sequence[str], attributes: Sequence[str] | None,
        query: TemporalQuery, aggregation: Aggregation,
    ) -> AggregatedHistory | None:
        """The aggregation of each Entity's selected Attributes, computed by the store
        as :func:`ngsi_ld.temporal.aggregate` would; None when the store cannot answer
        this one (the caller then aggregates the instances itself)."""
        return None

    # -- the temporal API's writes ------------------------------------------------------
    @abc.abstractmethod
    async def add_history(self, tenant: str, histories: Sequence[History]) -> None:
        """Record posted instances (5.6.11, 5.6.12): one with the key (series,
        observedAt) of a stored one replaces it, keeping its instanceId and createdAt
        (:func:`ngsi_ld.temporal.upsert`); the Entity records merge (:func:`merge_record`)."""

    @abc.abstractmethod
    async def delete_history(self, tenant: str, entity_id: str) -> bool:
        """5.6.16: forget the Entity's temporal evolution; False if it had none."""

    @abc.abstractmethod
    async def delete_history_attribute(
        self, tenant: str, entity_id: str, attribute: str, dataset_id: str | None,
        delete_all: bool,
    ) -> int:
        """5.6.13: remove the instances :func:`ngsi_ld.temporal.attribute_selector`
        selects; how many were removed."""

    @abc.abstractmethod
    async def history_instance(
        self, tenant: str, entity_id: str, attribute: str, instance_id: str
    ) -> Instance | None:
        """One recorded instance of the Attribute, by instanceId, or None."""

    @abc.abstractmethod
    async def replace_history_instance(self, tenant: str, entity_id: str,
                                       instance: Instance) -> bool:
        """5.6.14: store ``instance`` in place of the one with its instanceId."""

    @abc.abstractmethod
    async def delete_history_instance(
        self, tenant: str, entity_id: str, attribute: str, instance_id: str
    ) -> bool:
        """5.6.15: remove one instance; False if the Attribute has no such instance."""

    @abc.abstractmethod
    async def drop_history_before(self, cutoff: int) -> int:
        """``--temporal-retention``: remove the instances whose time (observedAt, else
        when they were written) is before ``cutoff`` (µs), in every tenant; how many."""

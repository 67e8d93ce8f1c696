"""The temporal instance model: one recorded attribute instance, one entity record.

Clause 4.5.6 to 4.5.8: the temporal evolution of an Entity is, per Attribute, an
array of Attribute instances, each a Property (or Relationship...) as in the
normalized representation plus its ``instanceId`` (4.5.7), and the system
temporal Properties ``createdAt``, ``modifiedAt`` and, for what was deleted,
``deletedAt`` (4.8).  The Entity's Scope has a temporal evolution too (4.5.6):
a Property whose value is the scope, under the Attribute name :data:`SCOPE`.

:class:`Instance` is that record, defined once for every part of the temporal
API: history recording, the stores, the representations and the aggregations.
Names are whatever the caller uses (the broker keeps expanded IRIs), times are
ISO 8601 strings as written (:mod:`ngsi_ld.temporal.instants` compares them).

An Instance keeps the main member apart (``kind`` and ``value``: the value of
``value``, ``object``, ``languageMap``... as :data:`MAIN_MEMBER` maps them), the
members every query reads as fields, and everything else (``unitCode``,
``objectType``, ``valueType``, sub-attributes under ``sub``...) in ``members``,
as the internal form of docs/architecture.md holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ngsi_ld.errors import BadRequestData
from ngsi_ld.instances import DELETE, MAIN_MEMBER
from ngsi_ld.temporal.instants import to_micros

__all__ = [
    "MAIN_MEMBER",
    "NULL",
    "SCOPE",
    "TIME_PROPERTIES",
    "EntityRecord",
    "History",
    "Instance",
    "InstanceIds",
    "TimeProperty",
    "deletion_value",
    "from_internal",
    "split_internal",
]

#: The NGSI-LD Null (5.2.1): the value a deletion instance carries (4.5.7)
NULL = DELETE
#: 4.5.6: the Attribute name under which the Scope's temporal evolution is kept.
#: The core @context maps the term "scope" to this IRI, so it compacts back to "scope".
SCOPE = "https://uri.etsi.org/ngsi-ld/scope"

TimeProperty = Literal["observedAt", "createdAt", "modifiedAt", "deletedAt"]
#: 4.8 and 5.2.21: the temporal Properties a temporal query may name (``timeproperty``)
TIME_PROPERTIES: tuple[TimeProperty, ...] = ("observedAt", "createdAt", "modifiedAt", "deletedAt")

#: A source of fresh instanceIds (URIs), injected so that recording stays pure.
InstanceIds = Callable[[], str]

# Members an Instance keeps as fields; everything else goes to ``members``.
_FIELDS = frozenset({"type", "datasetId", "observedAt", "createdAt", "modifiedAt",
                     "deletedAt", "instanceId"})
# Per kind, the members that are not ``members``: the fields and the main member.
_NOT_MEMBERS = {kind: _FIELDS | {main} for kind, main in MAIN_MEMBER.items()}
# The NGSI-LD Null in the shape of each kind's main member (5.2.1, 4.5.7, 4.5.18).
_NULL_OF_KIND: dict[str, Any] = {
    "LanguageProperty": {"@none": DELETE},
    "ListProperty": [DELETE],
    "ListRelationship": [DELETE],
}


def deletion_value(kind: str) -> Any:
    """The main member's value of a deletion instance of ``kind`` (4.5.7, 020_17).

    ``urn:ngsi-ld:null``; ``{"@none": "urn:ngsi-ld:null"}`` for a LanguageProperty;
    ``["urn:ngsi-ld:null"]`` for the list kinds.
    """
    null = _NULL_OF_KIND.get(kind, DELETE)
    return dict(null) if isinstance(null, dict) else list(null) if isinstance(null, list) else null


@dataclass(frozen=True, slots=True)
class Instance:
    """One recorded Attribute instance (4.5.7, 4.5.8): what the history of one
    Attribute holds for one point in its life."""

    attribute: str
    instance_id: str
    kind: str
    value: Any
    dataset_id: str | None = None
    observed_at: str | None = None
    created_at: str | None = None
    modified_at: str | None = None
    deleted_at: str | None = None
    members: Mapping[str, Any] = field(default_factory=dict)

    def time(self, prop: TimeProperty) -> str | None:
        """The value of the temporal Property ``prop`` (4.8), None when absent."""
        if prop == "observedAt":
            return self.observed_at
        if prop == "createdAt":
            return self.created_at
        if prop == "modifiedAt":
            return self.modified_at
        return self.deleted_at

    def instant(self, prop: TimeProperty) -> int | None:
        """The time of ``prop`` in microseconds since the epoch, None when absent."""
        text = self.time(prop)
        return None if text is None else to_micros(text)

    @property
    def expires_at(self) -> str | None:
        """4.22: when a transient instance stops being stored (its ``expiresAt``)."""
        expires = self.members.get("expiresAt")
        return expires if isinstance(expires, str) else None

    @property
    def is_deletion(self) -> bool:
        """True for the record of a deletion (it carries ``deletedAt``, 4.5.7)."""
        return self.deleted_at is not None

    @property
    def series(self) -> tuple[str, str | None]:
        """(attribute, datasetId): the series the instance belongs to (4.5.5).

        lastN and the per-attribute instance limit count instances per series.
        """
        return self.attribute, self.dataset_id

    @property
    def key(self) -> tuple[str, str | None, int] | None:
        """What identifies an observation: (attribute, datasetId, observedAt instant).

        5.6.11: a temporal upsert bringing an instance with the key of a stored one
        replaces it (ETSI 008_01); an instance without observedAt has no key and is
        always added.
        """
        if self.observed_at is None:
            return None
        return self.attribute, self.dataset_id, to_micros(self.observed_at)

    def to_internal(self) -> dict[str, Any]:
        """The instance as an internal-form attribute instance (docs/architecture.md),
        with ``instanceId`` and the temporal members: what renderers and the q
        evaluator read."""
        out: dict[str, Any] = {"type": self.kind, MAIN_MEMBER[self.kind]: self.value}
        out.update(self.members)
        if self.dataset_id is not None:
            out["datasetId"] = self.dataset_id
        if self.observed_at is not None:
            out["observedAt"] = self.observed_at
        if self.created_at is not None:
            out["createdAt"] = self.created_at
        if self.modified_at is not None:
            out["modifiedAt"] = self.modified_at
        if self.deleted_at is not None:
            out["deletedAt"] = self.deleted_at
        out["instanceId"] = self.instance_id
        return out


def split_internal(attribute: str, instance: Mapping[str, Any]
                   ) -> tuple[str, Any, dict[str, Any]]:
    """(kind, main member's value, other members) of an internal-form attribute instance,
    as an :class:`Instance` keeps them; BadRequestData when the instance has no known
    kind or lacks its main member."""
    kind = instance.get("type")
    if not isinstance(kind, str) or (skip := _NOT_MEMBERS.get(kind)) is None:
        raise BadRequestData(f"attribute {attribute}: {kind!r} is not an attribute type")
    main = MAIN_MEMBER[kind]
    if main not in instance:
        raise BadRequestData(f"attribute {attribute}: a {kind} needs the member {main!r}")
    return kind, instance[main], {k: v for k, v in instance.items() if k not in skip}


def from_internal(
    attribute: str,
    instance: Mapping[str, Any],
    instance_id: str,
    *,
    observed_at: str | None = None,
    deleted_at: str | None = None,
) -> Instance:
    """An :class:`Instance` of an internal-form attribute instance.

    ``observed_at`` fills in an instance that has none (the Scope, 4.5.6);
    ``deleted_at`` makes it the record of a deletion.  BadRequestData when the
    instance has no known kind or lacks its main member.
    """
    kind, value, members = split_internal(attribute, instance)
    get = instance.get
    # positional, in the order of the fields: a third faster than by keyword, and a
    # creation records one per attribute
    return Instance(
        attribute, instance_id, kind, value, get("datasetId"),
        get("observedAt", observed_at), get("createdAt"), get("modifiedAt"),
        deleted_at if deleted_at is not None else get("deletedAt"), members,
    )


@dataclass(frozen=True, slots=True)
class EntityRecord:
    """What the temporal evolution keeps of the Entity itself (4.5.6): its id, the
    types it has had, and its own system temporal Properties."""

    entity_id: str
    types: tuple[str, ...]
    created_at: str | None = None
    modified_at: str | None = None
    #: set when the Entity was deleted; cleared when it is created again
    deleted_at: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled as a call of the class: a frozen dataclass's own state restoring sets
        # each field in Python, 2 to 4 times slower (a load's prepared history pickles
        # one record per entity)
        return EntityRecord, (self.entity_id, self.types, self.created_at, self.modified_at,
                              self.deleted_at)


@dataclass(frozen=True, slots=True)
class History:
    """What one write adds to the temporal evolution of one Entity."""

    entity: EntityRecord
    instances: tuple[Instance, ...] = ()

"""The internal entity form, typed once for every package (docs/architecture.md).

One shape serves validation output, storage and rendering; names in it are
expanded IRIs once a context expanded them, kind and member names are core
terms.  Every package imports these names from here:

- :class:`Entity` — an entity: ``id``, ``type`` (always a list), optional
  ``scope``, system attributes, and ``attrs``: name -> list of instances;
- :class:`Instance` — one attribute instance (clause 4.5.5: at most one without
  ``datasetId``); sub-attributes are a dict name -> one instance;
- :data:`Mutation` — a pure function from the stored entity (None: absent) to
  the new one (None: delete it), raising an NgsiLdError to refuse the change
  (:func:`keeps_current` marks one that never changes the entity it is given);
- :class:`Change` — what one committed write did: the states before and after.

The TypedDicts document the members and let mypy check the literal ones;
members are optional (``total=False``) because fragments, projections and
renderings hold parts of an entity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any, TypedDict


class InstanceMembers(TypedDict, total=False):
    """The members an attribute instance may hold; ``type`` is its kind (Property...).

    Instances are handled as plain JSON objects (:data:`Instance`): the
    operations build and merge them member by member, names not known here.
    """

    type: str
    value: Any
    object: str | list[str]
    objectType: str | list[str]
    languageMap: dict[str, Any]
    vocab: str | list[str]
    json: Any
    valueList: list[Any]
    objectList: list[str]
    datasetId: str
    observedAt: str
    unitCode: str
    createdAt: str
    modifiedAt: str
    expiresAt: str
    sub: dict[str, Instance]


#: one attribute instance, a JSON object with the members of :class:`InstanceMembers`
Instance = dict[str, Any]


class Entity(TypedDict, total=False):
    """An entity in the internal form (``attrs``: expanded name -> instances)."""

    id: str
    type: list[str]
    scope: list[str]
    createdAt: str
    modifiedAt: str
    deletedAt: str
    expiresAt: str
    attrs: dict[str, list[Instance]]


Mutation = Callable[[Entity | None], Entity | None]

#: Set on a mutation that only reads the entity it is given: a store may then pass
#: the state it decoded for ``before`` instead of a private copy (one decode less).
KEEPS_CURRENT = "keeps_current"


def keeps_current(mutation: Mutation) -> Mutation:
    """Mark ``mutation`` as never changing the entity it is given (see KEEPS_CURRENT)."""
    setattr(mutation, KEEPS_CURRENT, True)
    return mutation


@dataclass(slots=True)
class Change:
    """The outcome of one entity write: the state before and after (None: absent)."""

    entity_id: str
    before: Entity | None
    after: Entity | None
    #: when the first part of ``after`` expires (ms since the epoch; None: nothing does),
    #: if the store worked it out as it wrote it (clause 4.22); ``...``: not told
    expires: int | EllipsisType | None = field(default=..., compare=False)


__all__ = ["KEEPS_CURRENT", "Change", "Entity", "Instance", "InstanceMembers", "Mutation",
           "keeps_current"]

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

from collections.abc import Callable, Collection
from types import EllipsisType
from typing import Any, TypedDict

import orjson


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


def written_types(old: Collection[str], new: Collection[str]) -> Collection[str]:
    """The types a write touches, from the entity's types before (``old``) and after
    (``new``; ``()`` for none): one set only when they differ (a write keeps them
    mostly), else one of them as it is."""
    return new if old == new or not old else (old if not new else {*old, *new})


class Change:
    """The outcome of one entity write: the state before and after (None: absent).

    A store may hand ``before`` over as the bytes it read (:meth:`stored`) when it
    was told that nobody is likely to read it (``Store.wants_before``): the bytes are
    then decoded the first time ``before`` is read, so that a reader that does come
    (a subscription created while the write was in flight, a commit listener) reads
    the same state.  A batch upsert of 100 Streetlights freed each decoded ``before``
    on the event loop, cold, ~8 µs an entity (benchmarks/README.md).  ``after`` may be
    handed over the same way, as the bytes the store wrote (:meth:`stored`'s
    ``after_stored``), so that the decoded state is freed by the store's thread that
    just wrote it, hot, rather than by the event loop (benchmarks/README.md, slcut).
    """

    __slots__ = ("_after", "_after_stored", "_after_types", "_before", "_stored", "_types",
                 "entity_id", "expires")
    __hash__ = None  # type: ignore[assignment]  # compared by value, as a dataclass

    def __init__(self, entity_id: str, before: Entity | None, after: Entity | None,
                 expires: int | EllipsisType | None = ...) -> None:
        self.entity_id = entity_id
        self._before = before
        self._stored: bytes | None = None
        self._types: list[str] | tuple[()] = ()
        self._after = after
        self._after_stored: bytes | None = None
        self._after_types: list[str] | tuple[()] = ()
        #: when the first part of ``after`` expires (ms since the epoch; None: nothing
        #: does), if the store worked it out as it wrote it (clause 4.22); ``...``: not
        #: told
        self.expires = expires

    @classmethod
    def stored(cls, entity_id: str, stored: bytes, types: list[str] | tuple[()],
               after: Entity | None, expires: int | EllipsisType | None = ..., *,
               after_stored: bytes | None = None,
               after_types: list[str] | tuple[()] = ()) -> Change:
        """The change whose ``before`` is the entity encoded as ``stored`` (JSON), with
        the types ``types`` (its ``type``, or ``()`` without one), decoded when read.
        ``after_stored``: ``after`` (then None) given the same way, the entity the
        write stored encoded as these bytes, with the types ``after_types``."""
        change = cls(entity_id, None, after, expires)
        change._stored = stored
        change._types = types
        if after_stored is not None:
            change._after_stored = after_stored
            change._after_types = after_types
        return change

    @property
    def before(self) -> Entity | None:
        """The entity before the write (None: absent)."""
        stored = self._stored
        if stored is not None:
            self._before = orjson.loads(stored)
            self._stored = None
        return self._before

    @property
    def after(self) -> Entity | None:
        """The entity after the write (None: absent, deleted)."""
        stored = self._after_stored
        if stored is not None:
            self._after = orjson.loads(stored)
            self._after_stored = None
        return self._after

    @property
    def decoded(self) -> bool:
        """Whether ``before`` is at hand (reading it decodes nothing)."""
        return self._stored is None

    @property
    def existed(self) -> bool:
        """Whether the entity existed before the write (``before`` is not None),
        told without decoding it."""
        return self._stored is not None or self._before is not None

    @property
    def exists(self) -> bool:
        """Whether the entity exists after the write (``after`` is not None), told
        without decoding it."""
        return self._after_stored is not None or self._after is not None

    @property
    def before_types(self) -> list[str] | tuple[()]:
        """``before``'s ``type`` (``()`` when absent or without one), told without
        decoding it."""
        if self._stored is not None:
            return self._types
        before = self._before
        return () if before is None else before.get("type", ())

    @property
    def after_types(self) -> list[str] | tuple[()]:
        """``after``'s ``type`` (``()`` when absent or without one), told without
        decoding it."""
        if self._after_stored is not None:
            return self._after_types
        after = self._after
        return () if after is None else after.get("type", ())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Change):
            return NotImplemented
        return (self.entity_id, self.before, self.after) == \
            (other.entity_id, other.before, other.after)

    def __repr__(self) -> str:
        return (f"Change(entity_id={self.entity_id!r}, before={self.before!r}, "
                f"after={self.after!r}, expires={self.expires!r})")


__all__ = ["KEEPS_CURRENT", "Change", "Entity", "Instance", "InstanceMembers", "Mutation",
           "keeps_current", "written_types"]

"""The rows of a new entity, computed without a connection (:mod:`storage.prepared`).

:func:`prepare_creation` gives what :class:`.bulk.Rows` and the packed history
(:mod:`.history_rows`, :mod:`.history_packs`) compute for the write of an entity
where there was none; :mod:`.writes` stores it as they would have.  The names
stay names (the writer numbers them, :mod:`.names`) and the instances are not
numbered (the writer numbers them): a pack's body leaves them out, each
implied by its position (:func:`.history_packs.prepared_body`).

The names are interned, and the tuples of names and counters that entities
share (those of one type and attribute set) are one object: a pickle of a batch
(the worker's answer) writes each once, its reader creates each once (measured:
the counters' change made anew for each entity were most of what reading a
prepared batch cost), and the writer adds the counters once per distinct tuple.
"""

from __future__ import annotations

import sys
from itertools import count
from typing import Any, TypeVar

import orjson

from ngsi_ld.errors import NgsiLdError
from ngsi_ld.expiry import earliest_expiry

from ..base import Entity
from ..discovery import StatKey, stats_delta
from ..helpers import entity_attr_names, entity_types
from ..prepared import PreparedCreation, PreparedHistory
from . import index as sqlite_index
from .history_packs import prepared_body
from .history_rows import PACK_FROM, encode_write
from .pack_signature import signature

__all__ = ["creation_shape", "prepare_creation"]


def _name(name: str) -> str:
    """``name`` interned; a str subclass as the plain str it equals (``sys.intern``
    refuses subclasses: one such name failed its whole transaction)."""
    return sys.intern(name if name.__class__ is str else str.__str__(name))


#: the shared tuples (see the module docstring); emptied when this large
_SHARED_MAX = 10_000
_shared: dict[tuple[Any, ...], tuple[Any, ...]] = {}
#: (types, attribute names, counters' change) by entity shape (``_shape``)
_Shaped = tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[StatKey, int], ...]]
_by_shape: dict[tuple[Any, ...], _Shaped] = {}
_NOT_AN_INSTANCE = object()  # in a shape: an instance that is not a JSON object


T = TypeVar("T", bound=tuple[Any, ...])


def _one(value: T) -> T:
    """``value``, or the equal tuple met before."""
    if len(_shared) >= _SHARED_MAX:
        _shared.clear()
    found: T = _shared.setdefault(value, value)  # type: ignore[assignment]
    return found


def prepare_creation(entity: Entity, doc: bytes | None = None,
                     at: str | None = None) -> PreparedCreation:
    """What storing ``entity`` where there was none writes; ``doc``: its encoding if the
    caller has it; ``at``: the time of its recorded history (None: none prepared).
    Pure: the loader's workers call it."""
    entity_id = entity["id"]
    if doc is None:
        doc = orjson.dumps(entity)
    created, modified = entity.get("createdAt"), entity.get("modifiedAt")
    # as bulk.Rows.add does for a creation
    expires = earliest_expiry(entity) if doc.find(b'"expiresAt"') >= 0 else None
    types, attrs, stats = creation_shape(entity)
    values: tuple[Any, ...] = ()
    boxes: tuple[tuple[str, str, float, float, float, float], ...] = ()
    if attrs:
        rows, found = sqlite_index.creation_rows(entity)
        rows[::3] = map(_name, rows[::3])
        values = tuple(rows)
        boxes = tuple([(entity_id, *box) for box in found])
    return PreparedCreation(
        entity_id, doc, created if isinstance(created, str) else None,
        modified if isinstance(modified, str) else None, expires, types, attrs, values, boxes,
        stats, None if at is None else _history(entity, at))


def creation_shape(entity: Entity) -> _Shaped:
    """The types, attribute names and counters' change of the creation of ``entity``
    (what its shape alone gives), computed once a shape: the tuples shared."""
    key = _shape(entity)
    try:
        shaped = _by_shape.get(key) if key is not None else None
    except TypeError:  # a type or kind that is not hashable: not cached
        key = shaped = None
    if shaped is None:
        shaped = _shaped(entity)
        if key is not None:
            if len(_by_shape) >= _SHARED_MAX:
                _by_shape.clear()
            _by_shape[key] = shaped
    return shaped


def _shaped(entity: Entity) -> _Shaped:
    """Its types, attribute names and counters' change: what its shape alone gives."""
    names = sqlite_index.changed_names(None, entity)
    stats = _one(tuple(((_name(t), _name(a), kind), n)
                       for (t, a, kind), n in stats_delta(None, entity, names).items()))
    attrs = _one(tuple(map(_name, entity_attr_names(entity)))) if names else ()
    return _one(tuple(map(_name, entity_types(entity)))), attrs, stats


def _shape(entity: Entity) -> tuple[Any, ...] | None:
    """What ``_shaped`` reads of ``entity``: its types, and its attributes' names and the
    kinds of their instances, in order (None: not in the usual internal form)."""
    doc: Any = entity  # read as it is: compiled, the TypedDict's .get() checks its type
    types, attrs = doc.get("type"), doc.get("attrs")
    if types.__class__ is not list or attrs.__class__ is not dict:
        return None
    key: list[Any] = [tuple(types)]
    for name, instances in attrs.items():
        if instances.__class__ is not list:
            return None
        if len(instances) == 1:  # the usual attribute, without a list's comprehension
            inst = instances[0]
            key.append((name, inst.get("type") if inst.__class__ is dict else _NOT_AN_INSTANCE))
            continue
        key.append((name, *[inst.get("type") if inst.__class__ is dict else _NOT_AN_INSTANCE
                            for inst in instances]))
    return tuple(key)


def _history(entity: Entity, at: str) -> PreparedHistory | None:
    """The packed history of the creation, when it is one pack of attribute instances
    (the usual creation); else None (the writer records it the usual way)."""
    try:
        written = encode_write(None, entity, at, count(1).__next__)
    except NgsiLdError:  # refused: the usual way refuses the write
        return None
    if written is None or written.rows or len(written.raw) < PACK_FROM:
        return None
    return PreparedHistory(at, written.entity, prepared_body(written.raw), len(written.raw),
                           min(r[3] for r in written.raw), signature(r[0] for r in written.raw))


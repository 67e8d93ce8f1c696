"""The rows of a new entity, computed without a connection (:mod:`storage.prepared`).

:func:`prepare_creation` gives what :class:`.bulk.Rows` and the packed history
(:mod:`.history_rows`, :mod:`.history_packs`) compute for the write of an entity
where there was none; :mod:`.writes` stores it as they would have.  The names
stay names (the writer numbers them, :mod:`.names`) and the instances are not
numbered (the writer numbers them): a pack's body is kept as each instance's
encoding up to its number, completed by :func:`.history_packs.pack_body`.
"""

from __future__ import annotations

from itertools import count
from typing import Any

import orjson

from ngsi_ld.errors import NgsiLdError
from ngsi_ld.expiry import earliest_expiry

from ..base import Entity
from ..discovery import stats_delta
from ..helpers import entity_attr_names, entity_types
from ..prepared import PreparedCreation, PreparedHistory
from . import index as sqlite_index
from .history_rows import PACK_FROM, encode_write

__all__ = ["prepare_creation"]


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
    expires = earliest_expiry(entity) if b'"expiresAt"' in doc else None
    names = sqlite_index.changed_names(None, entity)
    stats = tuple(stats_delta(None, entity, names).items())
    attrs: tuple[str, ...] = ()
    values: tuple[tuple[str, str, Any, int], ...] = ()
    boxes: tuple[tuple[str, str, float, float, float, float], ...] = ()
    if names:
        attrs = tuple(entity_attr_names(entity))
        values = tuple((a, entity_id, v, k) for a, v, k in sqlite_index.value_rows(entity, names))
        boxes = tuple((entity_id, *box) for box in sqlite_index.geo_boxes(entity))
    return PreparedCreation(
        entity_id, doc, created if isinstance(created, str) else None,
        modified if isinstance(modified, str) else None, expires,
        tuple(entity_types(entity)), attrs, values, boxes, stats,
        None if at is None else _history(entity, at))


def _history(entity: Entity, at: str) -> PreparedHistory | None:
    """The packed history of the creation, when it is one pack of attribute instances
    (the usual creation); else None (the writer records it the usual way)."""
    try:
        written = encode_write(None, entity, at, count(1).__next__)
    except NgsiLdError:  # refused: the usual way refuses the write
        return None
    if written is None or written.rows or len(written.raw) < PACK_FROM:
        return None
    # orjson's compact form: [name, instance, iid] is [name, instance then ",iid]"
    pieces = tuple(orjson.dumps([name, inst])[:-1] for name, inst, _, _ in written.raw)
    return PreparedHistory(at, written.entity, pieces, min(r[3] for r in written.raw))


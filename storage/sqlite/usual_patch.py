"""The writer's lane for the usual PATCH of one attribute: its index decision and history
told from that attribute alone.

A 5.6.2 Update Entity Attributes that ``ngsi_ld.operations`` wrote the usual way (one
attribute, one instance of scalar members) marks its mutation
(:data:`~ngsi_ld.operations.USUAL`: the attribute's name).  Its result is then known
by construction: the entity and its ``attrs`` are shallow copies of the state given,
that attribute alone replaced by a list of one new instance without datasetId, every
other member (types, scope, the other attributes) the same object.  What the writer
asks of every update (:func:`.attribute_walk.walk`: the attributes whose index rows may
differ and the history's changes; :func:`.history_rows.one_instance`: the Scope's
change and the one instance's row) is then told here from that attribute's instance
before and after, without the walk over the entity's attributes and the Scope's
comparison (issue 19; benchmarks/README.md, the patchlane section).

What is told is exactly what the general steps give (tests/test_usual_patch.py); a
write whose instance is equal before and after (nothing recorded) goes the general way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ngsi_ld.temporal.history import live_record

from ..base import Entity
from .attribute_walk import usual_names
from .history_rows import OneInstance
from .history_sql import encode_internal

__all__ = ["usual_patch"]


def usual_patch(before: Entity, after: Entity, name: str, now: str,
                iids: Callable[[], int]) -> tuple[set[str], OneInstance] | None:
    """``walk(before, after)``'s names and ``one_instance(before, after, now, iids,
    changes)`` of the usual write of the attribute ``name`` (the module docstring: the
    caller's promise); None when that write records nothing (its instance equal before
    and after), no number taken from ``iids``.  Raises what the history's encoding
    raises, as :func:`.history_rows.one_instance` does."""
    old: Any = before.get("attrs")
    new: Any = after.get("attrs")
    a, b = old[name], new[name]
    x, y = a[0], b[0]
    # attribute_walk._usual's test of a change (the same datasetId, None, both sides)
    if x.get("modifiedAt") == y.get("modifiedAt") and x == y:
        return None
    names = usual_names(name, a, b)
    iid = iids()  # numbered before it is encoded, as one_instance numbers it
    return names, OneInstance(*live_record(after, now), name, "",
                              encode_internal(name, y, iid))

"""Edits of a stored temporal evolution by the temporal API (clauses 5.6.11 to 5.6.16).

The operations that change history itself rather than record new writes: adding
instances to an existing evolution, correcting one instance, deleting an
Attribute's instances, and the retention cut-off.  Each is the reference the
stores implement in their own query language.

- 5.6.11 and 5.6.12 (:func:`upsert`): an incoming instance replaces the stored one
  of the same series observed at the same instant (ETSI 008_01 posts a corrected
  value for an existing observedAt and expects one instance, not two); it keeps
  the stored instanceId and createdAt.  Every other instance is added.  Ordinary
  writes may have recorded several instances of one key (a merge keeps the
  attribute's observedAt): the newest of them, the value the Entity showed last,
  is the one replaced.
- 5.6.14 (:func:`patch_instance`): the members the fragment has replace the
  instance's; a new kind needs its main member; the instanceId stays (ETSI
  016_01); modifiedAt becomes the time of the correction.
- 5.6.13 (:func:`attribute_selector`): deleteAll removes every instance of the
  Attribute, a datasetId those of that dataset, neither the default dataset's.
- ``--temporal-retention`` (:func:`retention_cutoff`): instances whose
  ``modifiedAt`` is older than the cut-off are the ones to drop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ngsi_ld.errors import BadRequestData
from ngsi_ld.identifiers import is_iri
from ngsi_ld.instances import MAIN_MEMBER
from ngsi_ld.temporal.duration import Duration
from ngsi_ld.temporal.instants import to_micros
from ngsi_ld.temporal.model import Instance

__all__ = [
    "attribute_selector",
    "check_instance_id",
    "patch_instance",
    "retention_cutoff",
    "upsert",
]

# members an instance fragment cannot set (the broker's, or the series it belongs to)
_FIXED = frozenset({"instanceId", "createdAt", "modifiedAt", "deletedAt", "datasetId"})


def upsert(stored: Sequence[Instance], incoming: Sequence[Instance]) -> list[Instance]:
    """The instances of a series-mixed history after adding ``incoming`` (5.6.11):
    same key (series, observedAt instant), same instance, corrected; the order is
    the stored one (the order of recording), new instances after it."""
    # several stored instances of one key: the last one recorded wins the position
    position = {inst.key: i for i, inst in enumerate(stored) if inst.key is not None}
    out = list(stored)
    for inst in incoming:
        key = inst.key
        if key is not None and key in position:
            old = out[position[key]]
            out[position[key]] = replace(inst, instance_id=old.instance_id,
                                         created_at=old.created_at or inst.created_at)
        else:
            if key is not None:
                position[key] = len(out)
            out.append(inst)
    return out


def patch_instance(stored: Instance, fragment: Mapping[str, Any], now: str) -> Instance:
    """5.6.14: ``stored`` corrected by an instance fragment (as
    :func:`ngsi_ld.temporal.body.parse_instance_fragment` gives it)."""
    kind = fragment.get("type", stored.kind)
    if kind not in MAIN_MEMBER:
        raise BadRequestData(f"{kind!r} is not an attribute type")
    main = MAIN_MEMBER[kind]
    if main in fragment:
        value = fragment[main]
    elif kind == stored.kind:
        value = stored.value
    else:
        raise BadRequestData(f"a {kind} needs the member {main!r}")
    members = dict(stored.members)
    for key, member in fragment.items():
        if key in ("type", "observedAt", main) or key in _FIXED:
            continue
        if key == "sub":
            members["sub"] = {**members.get("sub", {}), **member}
        else:
            members[key] = member
    if kind != stored.kind:  # the old kind's own members go with it
        members.pop("objectType", None)
    return replace(stored, kind=kind, value=value, members=members, modified_at=now,
                   observed_at=fragment.get("observedAt", stored.observed_at))


def attribute_selector(dataset_id: str | None = None,
                       delete_all: bool = False) -> Callable[[Instance], bool]:
    """5.6.13: which instances of the Attribute a deletion removes."""
    if delete_all:
        return lambda inst: True
    wanted = None if dataset_id in (None, "@none") else dataset_id
    return lambda inst: inst.dataset_id == wanted


def check_instance_id(text: object) -> str:
    """An instanceId from a URI path (5.6.14, 5.6.15): a URI, else BadRequestData
    (ETSI 016_02_03, 017_02_03)."""
    if not isinstance(text, str) or not is_iri(text):
        raise BadRequestData(f"instanceId {text!r} is not a URI")
    return text


def retention_cutoff(now: str, retention: Duration) -> int:
    """The instant before which recorded instances fall out of the retention period."""
    if retention.is_zero:
        raise BadRequestData("the temporal retention must be longer than zero")
    return retention.before(to_micros(now))

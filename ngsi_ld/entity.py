"""Parsing and validation of NGSI-LD entities and entity fragments.

Clause 4.5 (entity representations), 5.2.4 (Entity), 4.18 (scopes).  The
output is the internal form of docs/architecture.md with names as the user
gave them; the JSON-LD engine expands them afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ngsi_ld.attributes import is_iri, is_term, parse_attribute
from ngsi_ld.errors import BadRequestData
from ngsi_ld.identifiers import is_entity_id
from ngsi_ld.instances import DELETE
from ngsi_ld.model import Entity
from ngsi_ld.timeutil import is_utc_datetime

__all__ = [
    "Fragment",
    "parse_attributes",
    "parse_entity",
    "parse_fragment",
    "parse_scope",
    "parse_types",
    "stamp",
]

# Entity members sent by clients but owned by the broker.
_SYSTEM = frozenset({"createdAt", "modifiedAt", "deletedAt", "@context"})
# 4.4: the core @context maps these terms to @id and @type and is protected, so as
# entity type names they can only ever mean the JSON-LD keywords, never a type.
_KEYWORD_ALIASES = frozenset({"id", "type"})
# 4.18 Scopes: "/a/b/c"; "#" and "+" are query wildcards, not allowed in values.
_SCOPE = re.compile(r"(?:/[^/\s#+]+)+")


@dataclass(slots=True)
class Fragment:
    """A parsed fragment body (append, update, merge): attributes and the optional
    id/type/scope/expiresAt."""

    attrs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    id: str | None = None
    type: list[str] | None = None
    scope: list[str] | None = None
    #: 4.22: when the entity expires (a UTC DateTime), or the NGSI-LD Null (merge)
    expires_at: str | None = None


def parse_entity(
    body: Any, *, key_values: bool = False, require_type: bool = True, now: str | None = None
) -> Entity:
    """Validate an entity body (decoded JSON) and return the internal form.

    ``key_values`` reads attributes as simplified values (``options=keyValues``);
    ``now`` stamps ``createdAt``/``modifiedAt`` on the entity and every instance.
    """
    if not isinstance(body, dict):
        raise BadRequestData("An entity must be a JSON object")
    if "id" not in body and "@id" not in body:
        raise BadRequestData("The entity has no 'id'")
    fragment = parse_fragment(body, key_values=key_values)
    entity: Entity = {"id": fragment.id}  # type: ignore[typeddict-item]  # checked above
    if fragment.type is None:
        if require_type:
            raise BadRequestData(f"Entity {fragment.id!r} has no 'type'")
    else:
        entity["type"] = fragment.type
    if fragment.scope:
        entity["scope"] = fragment.scope
    if fragment.expires_at is not None:
        entity["expiresAt"] = fragment.expires_at
    entity["attrs"] = fragment.attrs
    if now is not None:
        stamp(entity, now)
    return entity


def parse_fragment(
    body: Any, *, key_values: bool = False, allow_null: bool = False, merge: bool = False
) -> Fragment:
    """Validate an entity fragment: every member is an attribute but id/type/scope/expiresAt.

    ``id``, ``type``, ``scope`` and ``expiresAt`` are checked when present and
    returned for the caller to compare with the target entity or to apply (5.6.3,
    5.6.17).  ``merge``: a Merge Entity fragment, where the NGSI-LD Null may also
    remove a member of a JSON object value or the entity's expiresAt (5.5.4, 5.5.12).
    """
    if not isinstance(body, dict):
        raise BadRequestData("The request body must be a JSON object")
    fragment = Fragment()
    for name, value in body.items():
        if name in ("id", "@id"):
            # 5.5.4: the NGSI-LD Null cannot be a first level member value, nor an id
            if not is_entity_id(value) or value == DELETE:
                raise BadRequestData(f"Entity id {value!r} is not an absolute URI")
            fragment.id = value
        elif name in ("type", "@type"):
            fragment.type = parse_types(value)
        elif name == "scope":
            if merge and value in (DELETE, [DELETE]):
                fragment.scope = [DELETE]
            else:
                fragment.scope = parse_scope(value)
        elif name == "expiresAt":
            fragment.expires_at = _expires_at(value, merge)
        elif name in _SYSTEM:
            continue
        else:
            fragment.attrs[name] = parse_attribute(
                name, value, key_values=key_values, allow_null=allow_null or merge,
                null_in_objects=merge,
            )
    return fragment


def _expires_at(value: Any, merge: bool) -> str:
    # 4.22: expiresAt is a system temporal Property, a DateTime (4.6.3); a merge
    # may remove it with the NGSI-LD Null.  A time already past is accepted: the
    # entity is then expired at once (no clause forbids it for entities).
    if merge and value == DELETE:
        return DELETE
    if not is_utc_datetime(value):
        raise BadRequestData(f"expiresAt {value!r} is not a UTC date-time (YYYY-MM-DDThh:mm:ssZ)")
    return str(value)


def parse_attributes(
    body: Any, *, key_values: bool = False, allow_null: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """The attributes of a fragment body (see :func:`parse_fragment` for id/type/scope)."""
    return parse_fragment(body, key_values=key_values, allow_null=allow_null).attrs


def parse_types(value: Any) -> list[str]:
    """Validate an entity type member (a name or a non-empty list of names)."""
    names = value if isinstance(value, list) else [value]
    if not names:
        raise BadRequestData("Entity 'type' cannot be an empty list")
    out: list[str] = []
    for name in names:
        if not (is_term(name) or is_iri(name)) or name in _KEYWORD_ALIASES:
            raise BadRequestData(f"Entity type {name!r} is not a valid type name or IRI")
        if name not in out:
            out.append(name)
    return out


def parse_scope(value: Any) -> list[str]:
    """Validate a ``scope`` member (clause 4.18): ``/a/b`` strings (``[]`` means none)."""
    scopes = value if isinstance(value, list) else [value]
    for scope in scopes:
        if not isinstance(scope, str) or _SCOPE.fullmatch(scope) is None:
            raise BadRequestData(f"scope {scope!r} is not of the form '/a/b'")
    return list(scopes)


def stamp(target: Entity | dict[str, Any] | list[dict[str, Any]], now: str) -> None:
    """Set ``modifiedAt`` to ``now`` and ``createdAt`` where missing, in place.

    ``target`` is an entity (stamped with all its attributes and
    sub-attributes) or a list of instances.
    """
    if isinstance(target, list):
        for instance in target:
            _stamp_instance(instance, now)
        return
    target.setdefault("createdAt", now)
    target["modifiedAt"] = now
    for instances in target.get("attrs", {}).values():
        for instance in instances:
            _stamp_instance(instance, now)


def _stamp_instance(instance: dict[str, Any], now: str) -> None:
    instance.setdefault("createdAt", now)
    instance["modifiedAt"] = now
    for sub in instance.get("sub", {}).values():
        _stamp_instance(sub, now)

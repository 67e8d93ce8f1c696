"""Entities of one shape parsed and expanded by a template compiled once (issue 19).

The entities of a batch, and the entities of one type in a stream of creates,
almost always share a *shape*: the same members in the same order, each
attribute of the same kind with the same members and sub-attributes.  The
usual way (``parse_entity`` then ``ActiveContext.expand_entity``) classifies
every member, checks every name and expands it again for each entity.  Here the
first entity of a shape goes the usual way and leaves a template: the expanded
names and, per slot, what the usual way checks there.  The following entities
of that shape only have their values checked and put in place.

It gives exactly what the usual way gives, or nothing: each value is checked by
the functions the usual way checks it with (``main_value``, ``check_member``,
``is_entity_id``, ``parse_types``, ``parse_scope``, ``is_utc_datetime``), and
anything a template does not take exactly (a value refused, a datasetId
``@none``, a sub-attribute of another form, a concise attribute that is not a
scalar) is left to the usual way, which then gives its result or its error.
Shapes the templates do not cover at all (keyValues bodies, geo-named
Properties, ngsildproof, concise object values) always go the usual way.
tests/test_shapes.py compares both ways on random entities.

A body finds its template by its members' names and classes; each attribute's
own members are checked by its slot as it is filled (compared in order where
their order tells in the result, else counted, each of them read).  Where the
attributes under one such key have other members than its first body's, the
key says so and the shapes under it are told apart by their attributes' members
too.  A main value of the form the first body had there (a typed literal of its
@type, a plain GeoJSON Point, a JSON object that is no typed literal) is tested
at once (``values.literal_check``, ``geojson.is_plain_point``,
``values.kept_as_sent``) rather than encoded and walked by ``main_value``; a value
of any other form is checked the usual way.  The slots, one attribute's form each,
are :mod:`ngsi_ld.shape_slots`.

The attributes of an Update Entity Attributes body (5.6.2) have templates of
their own (:func:`expanded_attrs`): a PATCH stream sends the same few
attributes over and over.  There the NGSI-LD Null asks for a deletion, which
the usual way keeps as sent.  A body of one attribute whose template makes a
plain Property or Relationship at once also has a lane (kept under the
attribute's name): the plain instance of that kind is made without the key.

An instance (or sub-attribute) whose main member is the NGSI-LD Null always goes
the usual way: what a template makes never holds it where
``instances.reject_nulls`` looks (clause 5.2.1), so the writes that refuse the
Null need not look again (:func:`parse_checked`).  Create and upsert bodies
rarely hold it; there it is an error.

A Create Entity (5.6.1) hands its time to :func:`parse_checked`: an entity a template
makes then comes stamped as ``operations.stamp_entity`` would stamp it, the plain
instances in the dict literal that makes them (issue 19).

Templates live with their @context (``ActiveContext.shapes``), at most
``SHAPES_PER_CONTEXT`` of them, the least recently used forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, cast

from ngsi_ld.attributes import GEO_NAMES
from ngsi_ld.entity import parse_entity, parse_fragment, parse_scope, parse_types
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.identifiers import is_entity_id
from ngsi_ld.instances import DELETE, restamp_owned
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity
from ngsi_ld.shape_slots import SCALARS, Expand, Instance, Miss, Multi, Slot, make_slot
from ngsi_ld.timeutil import is_utc_datetime

__all__ = ["MAX_MEMBERS", "SHAPES_PER_CONTEXT", "expanded_attrs", "parse_checked",
           "parse_expanded"]

#: templates kept per @context (a stream rarely has more than a few shapes)
SHAPES_PER_CONTEXT = 64
#: bodies with more members go the usual way (a template holds a slot per member)
MAX_MEMBERS = 256

_SYSTEM = frozenset({"createdAt", "modifiedAt", "deletedAt", "@context"})  # as parse_entity
#: the members of a fragment that are not attributes (an attributes-only body has none)
_NOT_ATTRS = frozenset({"id", "@id", "type", "@type", "scope", "expiresAt"})
#: the shape key's first part for the attributes of an update (``require_type`` for entities)
_ATTRS = "attrs"
_UNSEEN = object()
#: what the shapes hold under a key of names and classes whose bodies' attributes have
#: other members than its first one's: they are told apart by :func:`_members_key`
_MIXED = object()

# what one member of an entity is (the commonest attributes have steps of their own: an
# instance of nothing but its type and main member, ``Instance.plain``, a Property, a
# Relationship, or one whose main member has a quick check, ``Instance.quick``)
_ID, _TYPE, _SCOPE, _EXPIRES, _ATTR, _PROPERTY, _RELATIONSHIP, _QUICK = range(8)


#: what a template meets where the usual way refuses the entity (expand_entity turns
#: TypeError, AttributeError and ValueError into its own BadRequestData), or where an
#: attribute lacks a member of the template's (KeyError): the usual way then decides
_FALLBACK = (Miss, NgsiLdError, TypeError, AttributeError, ValueError, KeyError)


class _Template:
    """One entity shape compiled against one @context (``attrs_only``: the attributes of
    an update, :func:`expanded_attrs`)."""

    __slots__ = ("attrs_only", "members", "steps")

    def __init__(self, steps: tuple[tuple[int, str, Any, Any], ...], attrs_only: bool) -> None:
        self.steps = steps
        self.attrs_only = attrs_only
        #: the :func:`_members_key` of its first body
        self.members: tuple[Any, ...] = ()

    def fill(self, body: dict[str, Any], expand: Expand, now: str | None = None) -> Entity:
        entity_id: str | None = None
        types: list[str] | None = None
        scope: list[str] | None = None
        expires: str | None = None
        attrs: dict[str, list[dict[str, Any]]] = {}
        # a creation (``now``): the plain instances made here come stamped, the slots'
        # are stamped at the end (filled: the attributes other than plain instances)
        filled: dict[str, list[dict[str, Any]]] | None = None if now is None else {}
        for op, name, iri, slot in self.steps:
            value = body[name]
            # a plain instance whose main member is a scalar (a URI), or of the form its
            # slot tests quickly, made here, without its slot's call; anything else its
            # slot fills, or refuses
            if op == _PROPERTY:
                if len(value) == 2 and value["type"] == "Property" \
                        and (made := value["value"]).__class__ in SCALARS \
                        and (made.__class__ is not str or made != DELETE):
                    attrs[iri] = [{"type": "Property", "value": made} if filled is None else
                                  {"type": "Property", "value": made, "createdAt": now,
                                   "modifiedAt": now}]
                    continue
                attrs[iri] = [slot.fill(value, expand)]
            elif op == _RELATIONSHIP:
                if len(value) == 2 and value["type"] == "Relationship" \
                        and (made := value["object"]).__class__ is str \
                        and made != DELETE and is_entity_id(made):
                    attrs[iri] = [{"type": "Relationship", "object": made} if filled is None
                                  else {"type": "Relationship", "object": made,
                                        "createdAt": now, "modifiedAt": now}]
                    continue
                attrs[iri] = [slot.fill(value, expand)]
            elif op == _QUICK:
                if len(value) == 2 and value["type"] == slot.kind \
                        and slot.quick(made := value[slot.main]):
                    if slot.literal is not None:
                        made = {**made, "@type": slot.literal}
                    attrs[iri] = [{"type": slot.kind, slot.main: made} if filled is None else
                                  {"type": slot.kind, slot.main: made, "createdAt": now,
                                   "modifiedAt": now}]
                    continue
                attrs[iri] = [slot.fill(value, expand)]
            elif op == _ATTR:
                made = slot.fill(value, expand)
                attrs[iri] = made if made.__class__ is list else [made]
            else:
                if op == _ID:
                    if not is_entity_id(value) or value == DELETE:
                        raise Miss
                    entity_id = value
                elif op == _TYPE:
                    raw, expanded = iri, slot
                    if value == raw:
                        types = list(expanded)
                    else:
                        types = [expand(t) for t in parse_types(value)]
                elif op == _SCOPE:
                    scope = parse_scope(value)
                elif not is_utc_datetime(value):  # _EXPIRES
                    raise Miss
                else:
                    expires = str(value)
                continue
            if filled is not None:  # an attribute its slot filled
                filled[iri] = attrs[iri]
        if self.attrs_only:
            return {"attrs": attrs}
        entity: Entity = {"id": entity_id}  # type: ignore[typeddict-item]  # in the shape
        if types is not None:
            entity["type"] = types
        if scope:
            entity["scope"] = scope
        if expires is not None:
            entity["expiresAt"] = expires
        if filled is not None and now is not None:
            # created at ``now``: stamped as operations.stamp_entity stamps
            _stamp_created(filled, now)
            entity["createdAt"] = now
            entity["modifiedAt"] = now
        entity["attrs"] = attrs
        return entity


def _stamp_created(attrs: dict[str, list[dict[str, Any]]], now: str) -> None:
    """The instances a template just made (its own) stamped as created at ``now``, as
    ``restamp_owned(instance, None, now)`` stamps each, most without its call."""
    for instances in attrs.values():
        for n, inst in enumerate(instances):
            if "sub" in inst or "createdAt" in inst or "modifiedAt" in inst:
                instances[n] = restamp_owned(inst, None, now)
            else:  # restamp_owned's own common case, inline
                inst["createdAt"] = now
                inst["modifiedAt"] = now


def parse_expanded(ctx: ActiveContext, body: Any, *, key_values: bool = False,
                   require_type: bool = True) -> Entity:
    """``ctx.expand_entity(parse_entity(body, ...))``, through the template of the
    body's shape where there is one (see the module docstring); the same errors."""
    return parse_checked(ctx, body, key_values=key_values, require_type=require_type)[0]


def parse_checked(ctx: ActiveContext, body: Any, *, key_values: bool = False,
                  require_type: bool = True, now: str | None = None) -> tuple[Entity, bool]:
    """:func:`parse_expanded`'s entity, and whether it is known to be free of the
    NGSI-LD Null: True for an entity a template made, which
    ``instances.reject_nulls`` passes (see the module docstring); False where that
    is still to be checked.

    ``now`` (a creation's time, 5.6.1): an entity a template made (True) comes stamped
    as ``operations.stamp_entity(entity, now, owned=True)`` stamps it, in the same
    pass (issue 19); one made the usual way (False) is not stamped."""
    if key_values or body.__class__ is not dict or len(body) > MAX_MEMBERS:
        return ctx.expand_entity(parse_entity(body, key_values=key_values,
                                              require_type=require_type)), False
    made = _filled(ctx, body, require_type, now)
    return (_usual(ctx, body, require_type), False) if made is None else made


# 5.6.2 Update Entity Attributes
def expanded_attrs(ctx: ActiveContext, body: Any) -> Entity | None:
    """The attributes of an Update Entity Attributes body made only of attributes, the
    NGSI-LD Null allowed, expanded: ``{"attrs": ...}`` as
    ``ctx.expand_entity({"attrs": parse_fragment(body, allow_null=True).attrs})`` makes
    it, through the template of the body's shape; the same errors.  None where the
    caller's usual way decides: a body that is not an object or has an id, type, scope
    or expiresAt, a shape without template, a value its template does not take."""
    if body.__class__ is not dict or len(body) > MAX_MEMBERS or not _NOT_ATTRS.isdisjoint(body):
        return None
    if len(body) == 1:  # the usual PATCH: one attribute, most often a plain instance
        ((name, value),) = body.items()
        lane = ctx.shapes.get(name)  # under a str: the attribute's lane (_learn)
        if lane is not None:
            plain = _plain(cast(tuple[str, str, str], lane), value)
            if plain is not None:
                return plain
        return _one_attr(ctx, body, name, learn=lane is None)
    made = _filled(ctx, body, _ATTRS)
    return None if made is None else made[0]


def _one_attr(ctx: ActiveContext, body: dict[str, Any], name: str, *,
              learn: bool) -> Entity | None:
    """:func:`expanded_attrs` of a body of the one attribute ``name`` through its template,
    and its lane learnt from the template (``learn``) when that made it."""
    made = _filled(ctx, body, _ATTRS)
    if made is None:
        return None
    if learn and made[1]:
        _learn(ctx.shapes, body, name)
    return made[0]


def _plain(lane: tuple[str, str, str], value: Any) -> Entity | None:
    """The attributes of a body of one attribute whose lane is ``lane`` (its kind, main
    member and expanded name), when ``value`` is the plain instance its template's step
    makes at once (:meth:`_Template.fill`): what that template makes of the body; else
    None (the template decides)."""
    kind, main, iri = lane
    if value.__class__ is not dict or len(value) != 2 or value.get("type") != kind:
        return None
    made = value.get(main)
    if made.__class__ not in SCALARS or made == DELETE:
        return None
    if main == "object" and (made.__class__ is not str or not is_entity_id(made)):
        return None
    return {"attrs": {iri: [{"type": kind, main: made}]}}


def _learn(shapes: OrderedDict[Hashable, object], body: dict[str, Any], name: str) -> None:
    """The lane of a body of the one attribute ``name`` (:func:`expanded_attrs`), kept under
    the name itself (a str: no shape's key, which are tuples) when the template of its
    shape makes a plain Property or Relationship there at once (its one step's kind)."""
    template = shapes.get(_shape_key(body, _ATTRS))
    if not isinstance(template, _Template) or len(template.steps) != 1:
        return
    op, _, iri, _ = template.steps[0]
    if op == _PROPERTY:
        _remember(shapes, name, ("Property", "value", iri))
    elif op == _RELATIONSHIP:
        _remember(shapes, name, ("Relationship", "object", iri))


def _filled(ctx: ActiveContext, body: dict[str, Any], mode: bool | str,
            now: str | None = None) -> tuple[Entity, bool] | None:
    """``body`` through the template of its shape (``mode``: ``require_type`` for an
    entity, :data:`_ATTRS` for an update's attributes), and whether the template made
    it (:func:`parse_checked`; stamped at ``now`` if given); the first body of a shape
    is made the usual way, which leaves the template.  None where the usual way
    decides."""
    shapes = ctx.shapes
    key = _shape_key(body, mode)
    template = shapes.get(key, _UNSEEN)
    if template is _MIXED:
        key = _members_key(body, mode)
        template = shapes.get(key, _UNSEEN)
    if template is _UNSEEN:
        made = _usual(ctx, body, mode)
        template = _compiled(ctx, body, made, attrs_only=mode == _ATTRS)
        if template is not None:
            template.members = _members_key(body, mode)
        elif key[-1] is not _MIXED:  # other attribute members under this key may fit one
            _remember(shapes, key, _MIXED)
            key = _members_key(body, mode)
        _remember(shapes, key, template)
        return made, False
    if isinstance(template, _Template):
        try:  # noqa: SIM105 (contextlib.suppress: a context manager object each entity)
            shapes.move_to_end(key)
        except KeyError:  # forgotten meanwhile (another thread's shape)
            pass
        try:
            return template.fill(body, ctx.expand_name, now), True
        except _FALLBACK:
            # a body whose attributes have other members than the template's first one:
            # from now on the shapes under this key are told apart by them
            if key[-1] is not _MIXED and _members_key(body, mode) != template.members:
                shapes[key] = _MIXED
                return _filled(ctx, body, mode, now)
    return None


def _usual(ctx: ActiveContext, body: dict[str, Any], mode: bool | str) -> Entity:
    """What the usual way makes of ``body`` (``mode`` as :func:`_filled`'s)."""
    if mode == _ATTRS:
        return ctx.expand_entity({"attrs": parse_fragment(body, allow_null=True).attrs})
    return ctx.expand_entity(parse_entity(body, require_type=bool(mode)))


def _shape_key(body: dict[str, Any], mode: bool | str) -> tuple[Any, ...]:
    """The members' names in order and their classes (an attribute's own members are
    checked by its slot as it is filled: :class:`Instance`)."""
    return mode, tuple(body), tuple(map(type, body.values()))


def _members_key(body: dict[str, Any], mode: bool | str) -> tuple[Any, ...]:
    """The members' names in order, and the members of each (an object) or its class:
    the key of a shape whose :func:`_shape_key` other shapes share."""
    return mode, tuple(body), tuple([tuple(value) if value.__class__ is dict else value.__class__
                                     for value in body.values()]), _MIXED


def _remember(shapes: OrderedDict[Hashable, object], key: Hashable,
              template: object) -> None:
    """``template`` (a template, None: the usual way, or :data:`_MIXED`) kept under
    ``key``, the least recently used forgotten beyond :data:`SHAPES_PER_CONTEXT`."""
    shapes[key] = template
    while len(shapes) > SHAPES_PER_CONTEXT:
        try:
            shapes.popitem(last=False)
        except KeyError:
            break


def _compiled(ctx: ActiveContext, body: dict[str, Any], entity: Entity, *,
              attrs_only: bool) -> _Template | None:
    """The template of ``body``'s shape (``entity``: what the usual way made of it), or
    None where its shape goes the usual way (``attrs_only``: see :class:`_Template`)."""
    expand = ctx.expand_name
    # (what a step is, the member's name, and for an attribute its expanded name and its
    # slot, for the type the type as sent and expanded)
    steps: list[tuple[int, str, Any, Any]] = []
    try:
        for name, value in body.items():
            if name in ("id", "@id"):
                steps.append((_ID, name, None, None))
            elif name in ("type", "@type"):
                expanded = tuple(expand(t) for t in parse_types(value))
                steps.append((_TYPE, name, _json_copy(value), expanded))
            elif name == "scope":
                steps.append((_SCOPE, name, None, None))
            elif name == "expiresAt":
                steps.append((_EXPIRES, name, None, None))
            elif name not in _SYSTEM:
                slot = make_slot(name, value, expand, top=True)
                if name in GEO_NAMES and not _all_geo(slot):
                    return None  # 4.7.1: a Property there must hold a geometry
                steps.append((_attr_op(slot), name, expand(name), slot))
        template = _Template(tuple(steps), attrs_only)
        # the first entity of the shape made both ways: a template that would not give
        # exactly what the usual way gave is not kept
        if not same_json(template.fill(body, expand), entity):
            return None
    except _FALLBACK:
        return None
    return template


def _attr_op(slot: Slot) -> int:
    """The step of a top-level attribute of ``slot``'s form."""
    if isinstance(slot, Instance) and slot.plain():
        if slot.quick is not None:
            return _QUICK
        if slot.kind == "Property":
            return _PROPERTY
        if slot.kind == "Relationship":
            return _RELATIONSHIP
    return _ATTR


def _all_geo(slot: Slot) -> bool:
    items = slot.items if isinstance(slot, Multi) else (slot,)
    return all(isinstance(item, Instance) and item.kind == "GeoProperty" for item in items)


def _json_copy(value: Any) -> Any:
    return [_json_copy(v) for v in value] if value.__class__ is list else value


def same_json(a: Any, b: Any) -> bool:
    """Equal JSON values with their members in the same order and of the same classes
    (``==`` alone takes ``1`` for ``True`` and ignores the order of members)."""
    if a.__class__ is not b.__class__:
        return False
    if a.__class__ is dict:
        return list(a) == list(b) and all(same_json(a[k], b[k]) for k in a)
    if a.__class__ is list:
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)

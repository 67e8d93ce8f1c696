"""The slots of an entity template (``ngsi_ld.shapes``): one attribute's form, filled.

A template (:mod:`ngsi_ld.shapes`) holds one slot per attribute of its shape.  A slot
knows the form its first body had there (the kind, the members in order, the
sub-attributes, a quick test of the main value) and fills the next bodies' values of
that form, each checked by the function the usual way (``parse_entity`` then
``ActiveContext.expand_entity``) checks it with.  A value of another form, or one the
usual way would refuse, raises :class:`Miss`: the usual way then decides.

- :class:`Concise`: a concise attribute given as a bare scalar (4.5.1);
- :class:`Instance`: a normalized instance, its sub-attributes slots of their own;
- :class:`Multi`: a multi-attribute, instances with unique datasetIds (4.5.5).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ngsi_ld.attributes import (
    IGNORED_MEMBERS,
    INSTANCE_MEMBERS,
    KINDS,
    MAIN_MEMBER,
    PROOF,
    check_member,
    is_null_main,
)
from ngsi_ld.geojson import is_plain_point
from ngsi_ld.identifiers import is_entity_id, is_iri
from ngsi_ld.instances import DELETE
from ngsi_ld.timeutil import is_utc_datetime
from ngsi_ld.values import kept_as_sent, literal_check, main_value

__all__ = ["SCALARS", "Concise", "Expand", "Instance", "Miss", "Multi", "Quick", "Slot",
           "make_slot"]

#: the values whose check is their class alone
SCALARS = frozenset({str, int, float, bool})
_MAPPED = frozenset({"objectType", "valueType", "entityTypeSealed"})  # names expand_entity maps

#: a name expanded against the template's @context
Expand = Callable[[str], str]

# what one member of an instance takes (its check, then its place)
_TIME, _UNIT, _DATASET, _MEMBER, _SUB = range(5)


class Miss(Exception):
    """This entity is not one the template takes exactly: the usual way decides."""


class Concise:
    """A concise attribute or sub-attribute given as a bare scalar (4.5.1)."""

    __slots__ = ()

    def fill(self, raw: Any, expand: Expand) -> dict[str, Any]:
        if raw.__class__ not in SCALARS or raw == DELETE:
            raise Miss
        return {"type": "Property", "value": raw}


class Instance:
    """A normalized instance: its kind, its members in order, its sub-attributes."""

    __slots__ = ("check_keys", "keys", "kind", "literal", "main", "name", "quick", "steps",
                 "top", "where")

    def __init__(self, name: str, kind: str, keys: tuple[str, ...], top: bool,
                 steps: tuple[tuple[str, int, Any], ...],
                 quick: tuple[Quick, str | None] | None) -> None:
        self.name = name
        self.kind = kind
        self.main = MAIN_MEMBER[kind]
        self.keys = keys
        self.top = top
        # a sub-attribute's members, and a top-level attribute's whose order tells in what
        # it makes (two members or more besides type and main member) or which it does not
        # all read (ignored members), are compared in order; a top-level attribute's other
        # members counted (its fill reads each of them, and makes the same in any order)
        self.check_keys = not top or len(steps) > 1 or len(keys) != len(steps) + 2
        self.where = f"Attribute {name!r}" if top else f"Sub-attribute {name!r}"
        self.steps = steps
        #: a test of main values of the form the first one had (:func:`_quick`), and for
        #: typed literals their @type expanded
        self.quick: Quick | None = None
        self.literal: str | None = None
        if quick is not None:
            self.quick, self.literal = quick

    def plain(self) -> bool:
        """An attribute of nothing but its type and main member (ignored members aside)."""
        return self.top and not self.check_keys and not self.steps

    def fill(self, raw: Any, expand: Expand) -> dict[str, Any]:
        if self.check_keys:
            if raw.__class__ is not dict or tuple(raw) != self.keys:
                raise Miss
        elif raw.__class__ is not dict or len(raw) != len(self.keys):
            raise Miss
        kind = self.kind
        if raw["type"] != kind:
            raise Miss
        main = self.main
        value = raw[main]
        quick = self.quick
        if quick is not None and quick(value):
            if self.literal is not None:
                value = {**value, "@type": self.literal}
        else:
            value = self._value(value, expand)
        inst: dict[str, Any] = {"type": kind, main: value}
        sub: dict[str, Any] | None = None
        for key, op, arg in self.steps:
            val = raw[key]
            if op == _SUB:
                if sub is None:
                    sub = {}
                sub[arg[0]] = arg[1].fill(val, expand)
            elif op == _TIME:
                if not is_utc_datetime(val):
                    raise Miss
                inst[key] = val
            elif op == _UNIT:
                if val.__class__ is not str or not val:
                    raise Miss
                inst[key] = val
            elif op == _DATASET:
                if val == "@none":
                    continue  # 4.5.5.1: the default instance, which has no datasetId
                if val == DELETE or not is_iri(val):
                    raise Miss
                inst[key] = val
            else:
                check_member(self.where, self.name, kind, key, val, inst, top=self.top)
                if key in _MAPPED:
                    inst[key] = _names(inst[key], expand)
        if sub:
            inst["sub"] = sub
        return inst

    def _value(self, sent: Any, expand: Expand) -> Any:
        """The main member ``sent``, checked and made as the usual way makes it."""
        kind = self.kind
        value = sent
        if is_null_main(value):
            raise Miss  # the NGSI-LD Null: see the module docstring
        if kind == "Property":
            if value.__class__ not in SCALARS:
                value = main_value(self.where, kind, value)
        elif kind != "Relationship" or value.__class__ is not str:
            value = main_value(self.where, kind, value)
            if kind == "VocabProperty":
                value = _names(value, expand)
        elif not is_entity_id(value):
            raise Miss
        if value is not sent and is_null_main(value):
            raise Miss  # (an objectList of ``{"object": Null}``)
        if self.main == "value" and value.__class__ is dict and "@type" in value:
            value = dict(value)  # a typed literal: its @type expanded (as expand_entity)
            value["@type"] = _names(value["@type"], expand)
        return value


#: a test of main values of one form (:func:`_quick`)
Quick = Callable[[Any], bool]


def _literal(literal_type: str) -> Quick:
    """The test of typed literals of ``literal_type`` (4.6.3) whose @value is a string."""
    check = literal_check(literal_type)

    def test(value: Any) -> bool:
        if value.__class__ is dict and len(value) == 2 and value.get("@type") == literal_type:
            text = value.get("@value")
            return text.__class__ is str and text != DELETE and (check is None or check(text))
        return False

    return test


def _quick(kind: str, sample: Any, expand: Expand) -> tuple[Quick, str | None] | None:
    """A test of main values of the form of ``sample`` (the first entity's): true of a
    value of that form that passes the usual checks, which keep it as it is (a typed
    literal: its @type expanded, the second item); false of any other value, which
    :meth:`Instance._value` then takes.  None where the form has no such test."""
    if kind == "GeoProperty":
        return (is_plain_point, None) if is_plain_point(sample) else None
    if kind != "Property":
        return None
    if sample.__class__ is dict and len(sample) == 2 and "@value" in sample:
        literal_type = sample.get("@type")
        if literal_type.__class__ is str and literal_type != DELETE:
            return _literal(literal_type), expand(literal_type)
    return (kept_as_sent, None) if kept_as_sent(sample) else None


class Multi:
    """A multi-attribute (4.5.5): normalized instances, datasetIds unique."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[Instance, ...]) -> None:
        self.items = items

    def fill(self, raw: Any, expand: Expand) -> list[dict[str, Any]]:
        if len(raw) != len(self.items):
            raise Miss
        out = [item.fill(one, expand) for item, one in zip(self.items, raw, strict=True)]
        if len({inst.get("datasetId") for inst in out}) != len(out):
            raise Miss
        return out


Slot = Concise | Instance | Multi


def make_slot(name: str, raw: Any, expand: Expand, *, top: bool) -> Slot:
    """The slot of an attribute (``top``) or sub-attribute ``name`` of the form of
    ``raw``, as the usual way took it; :class:`Miss` where no slot takes that form."""
    if name in PROOF:
        raise Miss  # its value is checked as a proof, at any level
    if raw.__class__ in SCALARS:
        return Concise()
    if raw.__class__ is dict:
        return _instance(name, raw, expand, top=top)
    if raw.__class__ is list and top and raw:
        return Multi(tuple(_instance(name, item, expand, top=True, check_keys=True)
                            for item in raw))
    raise Miss


def _instance(name: str, raw: Any, expand: Expand, *, top: bool,
              check_keys: bool = False) -> Instance:
    kind = raw.get("type") if raw.__class__ is dict else None
    if kind.__class__ is not str or kind not in KINDS or MAIN_MEMBER[kind] not in raw:
        raise Miss  # concise or a fragment: the usual way reads it
    main = MAIN_MEMBER[kind]
    steps: list[tuple[str, int, Any]] = []
    for key, val in raw.items():
        if key == "type" or key == main or key in IGNORED_MEMBERS:
            continue
        if key in ("observedAt", "expiresAt"):
            steps.append((key, _TIME, None))
        elif key == "unitCode":
            steps.append((key, _UNIT, None))
        elif key == "datasetId" and top:
            steps.append((key, _DATASET, None))
        elif key in INSTANCE_MEMBERS:
            steps.append((key, _MEMBER, None))
        else:  # the usual way took it, so it is a sub-attribute
            steps.append((key, _SUB, (expand(key), make_slot(key, val, expand, top=False))))
    made = Instance(name, kind, tuple(raw), top, tuple(steps), _quick(kind, raw[main], expand))
    made.check_keys = made.check_keys or check_keys
    return made


def _names(names: Any, expand: Expand) -> Any:
    if names.__class__ is list:
        return [expand(n) for n in names]
    return expand(names)

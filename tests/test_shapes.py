"""Entity shapes (ngsi_ld.shapes): the template of a shape gives exactly what the usual
way gives (parse_entity, then expand_entity; for an update's attributes parse_fragment
with the NGSI-LD Null allowed, then expand_entity), or the same ProblemDetails error.

Random entities come in runs of one shape: a first entity, then copies of it whose
leaves are redrawn (good values, bad values, the NGSI-LD Null, other kinds), so that
the first compiles a template and the others go through it.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.suite.scenarios import STREETLIGHT_CONTEXT, STREETLIGHT_EXAMPLE
from ngsi_ld.batch import batch_create_mutation, batch_upsert_mutation
from ngsi_ld.entity import parse_entity, parse_fragment
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.jsonld import ActiveContext, compile_context, core_context_url
from ngsi_ld.operations import create_entity
from ngsi_ld.shapes import (
    SHAPES_PER_CONTEXT,
    expanded_attrs,
    parse_checked,
    parse_expanded,
    same_json,
)

_USER_CONTEXT = {
    "temperature": "https://example.org/temperature",
    "brand": "https://example.org/brand#",
    "Streetlight": "https://example.org/Streetlight",
    "nothing": None,  # a term mapped to null: expanding it is refused
    "twinA": "https://example.org/twin",  # two terms for one IRI: refused together
    "twinB": "https://example.org/twin",
    "when": {"@id": "https://example.org/when", "@type": "@vocab"},
}
CTX = compile_context(_USER_CONTEXT, {}, core_context_url())

NULL = "urn:ngsi-ld:null"
_NAMES = ["temperature", "name", "brand:model", "https://example.org/x", "refA", "twinA",
          "twinB", "nothing", "when", "location", "observationSpace", "ngsildproof",
          "unitCode", "id", "value", "@context"]
_SUB_NAMES = ["accuracy", "temperature", "providedBy", "datasetId", "observedAt", "nothing",
              "name", "ngsildproof"]
_TIMES = st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5Z", "2024-01-01",
                          "yesterday", "2024-01-01T00:00:00+01:00", NULL])
_URNS = st.sampled_from(["urn:ngsi-ld:Thing:1", "urn:ngsi-ld:Thing:2", "not a uri", NULL, "",
                         "https://example.org/t"])
_SCALARS = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                     st.booleans(), st.text(max_size=5), st.just(NULL), st.none())
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(["a", "b", "@type", "@value", "type"]),
                                       inner, max_size=3), max_leaves=6)
_LITERALS = st.fixed_dictionaries({
    "@type": st.sampled_from(["DateTime", "Date", "when", "https://example.org/T", 5]),
    "@value": st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01", "12:00:00", "bad"])})
_GEOMETRIES = st.one_of(
    st.builds(lambda x, y: {"type": "Point", "coordinates": [x, y]},
              st.floats(-200, 200), st.floats(-100, 100)),
    st.just({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}),
    st.just('{"type": "Point", "coordinates": [1, 2]}'),
    st.just({"type": "GeometryCollection", "geometries": []}),
    st.just({"type": "Point", "coordinates": [1, 2], "@type": "when"}),
    st.just({"type": "Point"}))
_MAIN = {
    "Property": ("value", st.one_of(_SCALARS, _JSON, _LITERALS, _GEOMETRIES)),
    "Relationship": ("object", st.one_of(_URNS, st.lists(_URNS, max_size=2))),
    "GeoProperty": ("value", _GEOMETRIES),
    "LanguageProperty": ("languageMap", st.one_of(
        st.dictionaries(st.sampled_from(["en", "fr-CA", "@none", "bad tag"]),
                        st.one_of(st.text(max_size=3), st.lists(st.text(max_size=3),
                                                                 max_size=2), st.integers()),
                        max_size=2), _SCALARS)),
    "VocabProperty": ("vocab", st.one_of(st.sampled_from(["temperature", "brand:a", ""]),
                                         st.lists(st.sampled_from(["when", "x"]), max_size=2))),
    "JsonProperty": ("json", _JSON),
    "ListProperty": ("valueList", st.one_of(st.lists(_SCALARS, max_size=2), _SCALARS)),
    "ListRelationship": ("objectList", st.one_of(
        st.lists(st.one_of(_URNS, st.builds(lambda u: {"object": u}, _URNS)), max_size=2),
        _URNS)),
}
_MEMBERS: dict[str, st.SearchStrategy[Any]] = {
    "observedAt": _TIMES,
    "expiresAt": _TIMES,
    "unitCode": st.sampled_from(["CEL", "", 5]),
    "datasetId": st.sampled_from(["urn:ngsi-ld:Dataset:a", "urn:ngsi-ld:Dataset:b", "@none",
                                  "not a uri", NULL]),
    "objectType": st.sampled_from(["Thing", "temperature", ["Thing", "brand:x"], 5]),
    "valueType": st.sampled_from(["langString", "when", "Thing", ""]),
    "createdAt": st.just("2020-01-01T00:00:00Z"),
    "entityIdSealed": st.just("urn:ngsi-ld:Thing:1"),
}
_KINDS = list(_MAIN)


_GOOD_MAIN = {
    "Property": st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                          st.text(max_size=5), st.lists(st.integers(), max_size=2),
                          st.fixed_dictionaries({"@type": st.just("DateTime"),
                                                 "@value": st.just("2024-01-01T00:00:00Z")}),
                          st.dictionaries(st.sampled_from(["a", "b"]), st.integers(),
                                          max_size=2)),
    "Relationship": st.sampled_from(["urn:ngsi-ld:Thing:1", ["urn:ngsi-ld:Thing:2"]]),
    "GeoProperty": st.builds(lambda x, y: {"type": "Point", "coordinates": [x, y]},
                             st.floats(-180, 180), st.floats(-90, 90)),
    "LanguageProperty": st.just({"en": "hi", "fr": ["salut"]}),
    "VocabProperty": st.sampled_from(["temperature", ["when", "x"]]),
    "JsonProperty": st.just({"a": [1, {"type": "x"}]}),
    "ListProperty": st.lists(st.integers(), max_size=2),
    "ListRelationship": st.just(["urn:ngsi-ld:Thing:1", {"object": "urn:ngsi-ld:Thing:2"}]),
}
_GOOD_MEMBERS = {
    "observedAt": st.just("2024-01-01T00:00:00Z"),
    "expiresAt": st.just("2030-01-01T00:00:00Z"),
    "unitCode": st.just("CEL"),
    "datasetId": st.sampled_from(["urn:ngsi-ld:Dataset:a", "@none"]),
    "objectType": st.sampled_from(["Thing", ["Thing", "brand:x"]]),
    "valueType": st.sampled_from(["langString", "when"]),
    "createdAt": st.just("2020-01-01T00:00:00Z"),
}


def _good_members(kind: str, top: bool) -> list[str]:
    members = ["observedAt", "expiresAt", "createdAt"]
    if kind not in ("Relationship", "ListRelationship", "JsonProperty"):
        members.append("unitCode")
    if kind in ("Relationship", "ListRelationship"):
        members.append("objectType")
    members.append("valueType")
    if top:
        members.append("datasetId")
    return members


@st.composite
def instances(draw: st.DrawFn, good: bool, depth: int = 0) -> Any:
    """One attribute instance; ``good``: valid (mostly), else anything."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.text(max_size=3), st.integers()) if good else _SCALARS)
    kind = draw(st.sampled_from(_KINDS))
    main, values = _MAIN[kind]
    inst: dict[str, Any] = {"type": kind, main: draw(_GOOD_MAIN[kind] if good else values)}
    members = _good_members(kind, depth == 0) if good else list(_MEMBERS)
    for member in draw(st.lists(st.sampled_from(members), max_size=3, unique=True)):
        value = _GOOD_MEMBERS[member] if good else _MEMBERS[member]
        if member == "valueType" and good:
            value = st.just("langString" if kind == "LanguageProperty" else "when")
        inst[member] = draw(value)
    if depth < 2:
        names = [n for n in _SUB_NAMES if not good or n not in _BAD_NAMES]
        for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
            inst[name] = draw(instances(good, depth + 1))
    if draw(st.integers(0, 19)) == 0:
        inst = dict(reversed(list(inst.items())))  # members in another order
    return inst


@st.composite
def attributes(draw: st.DrawFn, good: bool) -> Any:
    if draw(st.integers(0, 5)) == 0:  # a multi-attribute
        items = draw(st.lists(instances(good), min_size=1, max_size=3))
        for number, item in enumerate(items):
            if isinstance(item, dict) and (good or draw(st.booleans())):
                item["datasetId"] = f"urn:ngsi-ld:Dataset:{number}" if good \
                    else draw(_MEMBERS["datasetId"])
        return items
    return draw(instances(good))


#: names refused as attribute names, or in a @context that refuses them
_BAD_NAMES = frozenset({"nothing", "twinB", "unitCode", "id", "value", "@context",
                        "ngsildproof", "datasetId", "observedAt", "location",
                        "observationSpace"})


@st.composite
def entities(draw: st.DrawFn) -> dict[str, Any]:
    """An entity, valid more often than not (a valid one compiles its shape)."""
    good = draw(st.integers(0, 3)) > 0
    body: dict[str, Any] = {
        "id": draw(st.just("urn:ngsi-ld:Thing:0") if good else _URNS),
        "type": draw(st.sampled_from(["Streetlight", "Thing", ["Thing", "brand:T"], [], 5,
                                      "id", "https://example.org/T"])),
    }
    if good:
        body["type"] = draw(st.sampled_from(["Streetlight", ["Thing", "brand:T"]]))
    if draw(st.integers(0, 4)) == 0:
        del body["type"]
    names = [n for n in _NAMES if not good or n not in _BAD_NAMES]
    for name in draw(st.lists(st.sampled_from(names), max_size=5, unique=True)):
        body[name] = draw(attributes(good))
    if good and draw(st.integers(0, 3)) == 0:
        body["location"] = {"type": "GeoProperty", "value": draw(_GOOD_MAIN["GeoProperty"])}
    extra = draw(st.sampled_from([None, "scope", "expiresAt", "createdAt", "@id"]))
    if extra == "scope":
        body["scope"] = draw(st.sampled_from(["/a/b", ["/a", "/b"], []] if good
                                             else ["/a/b", "a", [], NULL]))
    elif extra == "expiresAt":
        body["expiresAt"] = draw(st.just("2030-01-01T00:00:00Z") if good else _TIMES)
    elif extra == "createdAt":
        body["createdAt"] = "2020-01-01T00:00:00Z"
    elif extra == "@id":
        body["@id"] = draw(st.just("urn:ngsi-ld:Thing:9") if good else _URNS)
    return body


def _leaf(key: str | None) -> st.SearchStrategy[Any]:
    if key in _MEMBERS:
        return _MEMBERS[key]
    if key == "type":
        return st.sampled_from(["Property", "Relationship", "Thing", "Streetlight"])
    if key in ("id", "@id", "object"):
        return _URNS
    for main, values in _MAIN.values():
        if key == main:
            return values
    return _SCALARS


def revalued(draw: st.DrawFn, value: Any, key: str | None = None) -> Any:
    """``value`` with the same members in the same order, its leaves redrawn now and then
    (mostly as the key takes them, sometimes anything): the same shape, other values."""
    if isinstance(value, dict) and key not in ("value", "json", "languageMap"):
        return {k: revalued(draw, v, k) for k, v in value.items()}
    if isinstance(value, list) and key not in ("value", "json", "valueList", "objectList",
                                               "object", "type"):
        return [revalued(draw, v, key) for v in value]
    choice = draw(st.integers(0, 5))
    if choice <= 2:
        return value
    if choice <= 4:
        return draw(_leaf(key))
    return draw(_JSON)


def _usual(ctx: ActiveContext, body: Any, **options: Any) -> Any:
    try:
        return ctx.expand_entity(parse_entity(body, **options))
    except NgsiLdError as exc:
        return exc.__class__, exc.to_problem()


def _shaped(ctx: ActiveContext, body: Any, **options: Any) -> Any:
    try:
        return parse_expanded(ctx, body, **options)
    except NgsiLdError as exc:
        return exc.__class__, exc.to_problem()


def _check(ctx: ActiveContext, body: Any, **options: Any) -> None:
    sent = repr(body)
    usual, shaped = _usual(ctx, body, **options), _shaped(ctx, body, **options)
    assert same_json(shaped, usual) if isinstance(usual, dict) else shaped == usual, body
    assert repr(body) == sent, "the body was changed"


@given(st.data(), entities(), st.booleans())
def test_a_shape_gives_what_the_usual_way_gives(data: st.DataObject, first: dict[str, Any],
                                               require_type: bool) -> None:
    _check(CTX, first, require_type=require_type)
    for _ in range(4):
        _check(CTX, revalued(data.draw, first), require_type=require_type)


@st.composite
def remembered(draw: st.DrawFn, first: dict[str, Any]) -> dict[str, Any]:
    """A body of ``first``'s members' names and classes whose attributes (objects) are
    drawn anew now and then: other members, other kinds, the same members in another
    order, or the same with other values."""
    body = {}
    for name, value in first.items():
        choice = draw(st.integers(0, 5)) if isinstance(value, dict) else 0
        if choice == 1:
            value = dict(reversed(list(value.items())))
        elif choice == 2:
            value = revalued(draw, value)
        elif choice >= 3:
            value = draw(instances(choice > 3))
        body[name] = value if isinstance(value, dict) else first[name]
    return body


@given(st.data(), entities(), st.booleans())
def test_bodies_of_one_key_with_other_attribute_members_give_what_the_usual_way_gives(
        data: st.DataObject, first: dict[str, Any], attrs_only: bool) -> None:
    ctx = compile_context(_USER_CONTEXT, {}, core_context_url())
    if attrs_only:
        first = {k: v for k, v in first.items() if k not in _NOT_ATTRS}
    for body in [first] + [data.draw(remembered(first)) for _ in range(6)]:
        if attrs_only:
            _check_attrs(ctx, body)
        else:
            _check(ctx, body)


def test_attribute_members_the_fill_would_not_tell_apart_go_their_own_way() -> None:
    """Under one key of names and classes: a member ignored in the first body and another
    one later (counted alike), two members after the main one in another order (their
    order is the result's), an attribute of another kind."""
    ctx = compile_context(_USER_CONTEXT, {}, core_context_url())

    def body(temperature: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
        return {"id": "urn:ngsi-ld:Thing:1", "type": "Thing", "temperature": temperature,
                "brand:model": model}

    when = "2024-01-01T00:00:00Z"
    first = body({"type": "Property", "value": 1, "createdAt": when},
                 {"type": "Property", "value": 2, "observedAt": when, "unitCode": "CEL"})
    for made in (first,
                 body({"type": "Property", "value": 1, "observedAt": when},
                      {"type": "Property", "value": 2, "observedAt": when, "unitCode": "CEL"}),
                 body({"type": "Property", "value": 1, "createdAt": when},
                      {"type": "Property", "value": 2, "unitCode": "CEL", "observedAt": when}),
                 body({"type": "Relationship", "object": "urn:ngsi-ld:Thing:2",
                       "createdAt": when},
                      {"type": "Property", "value": 2, "observedAt": when, "unitCode": "CEL"}),
                 first):
        _check(ctx, made)
        assert parse_checked(ctx, made)[1], "made by a template of its own members"


@given(st.data(), entities())
def test_key_values_and_non_objects_go_the_usual_way(data: st.DataObject,
                                                     body: dict[str, Any]) -> None:
    _check(CTX, body, key_values=True)
    _check(CTX, data.draw(_JSON))


def usual_attrs(ctx: ActiveContext, body: Any) -> Any:
    try:
        return ctx.expand_entity({"attrs": parse_fragment(body, allow_null=True).attrs})
    except NgsiLdError as exc:
        return exc.__class__, exc.to_problem()


def shaped_attrs(ctx: ActiveContext, body: Any) -> Any:
    """:func:`expanded_attrs`, the usual way where it declines (as its callers do)."""
    try:
        made = expanded_attrs(ctx, body)
    except NgsiLdError as exc:
        return exc.__class__, exc.to_problem()
    return usual_attrs(ctx, body) if made is None else made


def _check_attrs(ctx: ActiveContext, body: Any) -> None:
    sent = repr(body)
    usual, shaped = usual_attrs(ctx, body), shaped_attrs(ctx, body)
    assert same_json(shaped, usual) if isinstance(usual, dict) else shaped == usual, body
    assert repr(body) == sent, "the body was changed"


#: the members of an entity that are not attributes
_NOT_ATTRS = ("id", "@id", "type", "scope", "expiresAt")


@given(st.data(), entities(), st.booleans())
def test_an_updates_attributes_shape_gives_what_the_usual_way_gives(
        data: st.DataObject, entity: dict[str, Any], attrs_only: bool) -> None:
    first = {k: v for k, v in entity.items() if k not in _NOT_ATTRS} if attrs_only else entity
    _check_attrs(CTX, first)
    for _ in range(4):
        _check_attrs(CTX, revalued(data.draw, first))


def test_an_update_deleting_with_the_null_goes_the_usual_way_in_a_known_shape() -> None:
    ctx = compile_context(_USER_CONTEXT, {}, core_context_url())
    shapes = [({"type": "Property", "value": 1}, [NULL]),
              ({"type": "VocabProperty", "vocab": "when"}, NULL),
              ({"type": "LanguageProperty", "languageMap": {"@none": "x"}}, {"@none": NULL}),
              ({"type": "Relationship", "object": "urn:ngsi-ld:Thing:1"}, NULL)]
    for kept, null in shapes:
        body = {"temperature": kept}
        assert same_json(expanded_attrs(ctx, body), usual_attrs(ctx, body))
        deleting = {"temperature": {**kept, next(k for k in kept if k != "type"): null}}
        assert same_json(shaped_attrs(ctx, deleting), usual_attrs(ctx, deleting))
    sub = {"temperature": {"type": "Property", "value": 1,
                           "accuracy": {"type": "Property", "value": 0.5}}}
    assert same_json(expanded_attrs(ctx, sub), usual_attrs(ctx, sub))
    sub["temperature"]["accuracy"]["value"] = [NULL]
    assert expanded_attrs(ctx, sub) is None  # the usual way keeps it as sent
    assert expanded_attrs(ctx, {"id": "urn:ngsi-ld:Thing:1", **sub}) is None


def _streetlight_context() -> ActiveContext:
    url = "https://example.org/streetlighting.jsonld"
    return compile_context(url, {url: orjson.loads(STREETLIGHT_CONTEXT.read_bytes())},
                           core_context_url())


def _streetlight(number: int) -> dict[str, Any]:
    body = orjson.loads(STREETLIGHT_EXAMPLE.read_bytes())
    body.pop("@context", None)
    body["id"] = f"urn:ngsi-ld:Streetlight:{number}"
    return body


def test_streetlights_share_one_template_whose_entities_match_the_usual_way() -> None:
    ctx = _streetlight_context()
    first = parse_expanded(ctx, _streetlight(0))
    assert len(ctx.shapes) == 1 and next(iter(ctx.shapes.values())) is not None
    second = _streetlight(1)
    second["powerState"]["value"] = "on"
    second["current"]["observedAt"] = "2024-05-01T10:00:00Z"
    made = parse_expanded(ctx, second)
    assert made["id"] == "urn:ngsi-ld:Streetlight:1" and made["attrs"] != first["attrs"]
    assert same_json(made, _usual(ctx, second))
    assert len(ctx.shapes) == 2  # observedAt added a member: another shape


def test_a_bad_value_in_a_known_shape_is_refused_with_the_usual_reason() -> None:
    ctx = _streetlight_context()
    parse_expanded(ctx, _streetlight(0))
    bad = _streetlight(1)
    bad["refStreetlightGroup"]["object"] = "not a uri"
    bad["dateLastLampChange"]["value"]["@value"] = "yesterday"
    assert _shaped(ctx, bad) == _usual(ctx, bad)
    assert "dateLastLampChange" in _shaped(ctx, bad)[1]["detail"]  # the first in order


def test_templates_are_bounded_per_context() -> None:
    ctx = _streetlight_context()
    for number in range(SHAPES_PER_CONTEXT + 10):
        body = {"id": f"urn:ngsi-ld:Thing:{number}", "type": "Thing",
                f"a{number}": {"type": "Property", "value": number}}
        assert same_json(parse_expanded(ctx, body), _usual(ctx, body))
    assert len(ctx.shapes) == SHAPES_PER_CONTEXT


def test_a_proof_sub_attribute_is_checked_as_a_proof_in_every_entity_of_its_shape() -> None:
    def body(proof: Any) -> dict[str, Any]:
        return {"id": "urn:ngsi-ld:Thing:1", "type": "Thing",
                "temperature": {"type": "Property", "value": 20,
                                "ngsildproof": {"type": "Property", "value": proof}}}

    assert same_json(parse_expanded(CTX, body({"proof": 1})), _usual(CTX, body({"proof": 1})))
    refused = _shaped(CTX, body(5))
    assert refused == _usual(CTX, body(5)) and refused[1]["status"] == 400


_NOW = "2024-06-01T00:00:00Z"


def _written(ctx: ActiveContext, body: Any, require_type: bool, *, checked: bool) -> Any:
    """What a create and an upsert of ``body`` make of it (or their errors): the entity
    parsed the usual way and the Null looked for, or (``checked``) as the batch and
    create routes do, through :func:`parse_checked` and its word on the Null."""
    try:
        if checked:
            entity, null_free = parse_checked(ctx, body, require_type=require_type)
        else:
            entity, null_free = ctx.expand_entity(parse_entity(
                body, require_type=require_type)), False
    except NgsiLdError as exc:
        return exc.__class__, exc.to_problem()
    made = []
    for build in (lambda e, c: batch_create_mutation(e, _NOW, check_nulls=c),
                  lambda e, c: batch_upsert_mutation(e, _NOW, check_nulls=c)):
        try:
            made.append(build(entity, not null_free)(None))
        except NgsiLdError as exc:
            made.append((exc.__class__, exc.to_problem()))
    return made


@given(st.data(), entities(), st.booleans())
def test_a_write_that_trusts_a_template_on_the_null_refuses_what_the_usual_way_refuses(
        data: st.DataObject, first: dict[str, Any], require_type: bool) -> None:
    ctx = compile_context(_USER_CONTEXT, {}, core_context_url())
    for body in [first] + [revalued(data.draw, first) for _ in range(4)]:
        usual = _written(ctx, body, require_type, checked=False)
        checked = _written(ctx, body, require_type, checked=True)
        assert same_json(checked, usual) if isinstance(usual, list) else checked == usual


def test_a_null_in_a_known_shape_goes_the_usual_way_and_is_refused() -> None:
    ctx = _streetlight_context()
    assert parse_checked(ctx, _streetlight(0))[1] is False  # the first of its shape
    assert parse_checked(ctx, _streetlight(1))[1] is True
    for path, null in ((("powerState", "value"), NULL),
                       (("refStreetlightGroup", "object"), NULL),
                       (("municipalityInfo", "value"), [NULL]),
                       (("municipalityInfo", "deviceInfo", "value"), NULL)):
        body = _streetlight(2)
        where = body
        for key in path[:-1]:
            where = where[key]
        where[path[-1]] = null
        entity, null_free = parse_checked(ctx, body)
        assert null_free is False and same_json(entity, _usual(ctx, body))
        refused = _written(ctx, body, True, checked=True)
        assert refused == _written(ctx, body, True, checked=False)
        assert all(r[1]["status"] == 400 for r in refused), refused


def _created(ctx: ActiveContext, body: Any, *, stamped: bool) -> Any:
    """What Create Entity (5.6.1) stores of ``body`` at :data:`_NOW`, or its error: the
    entity parsed the usual way then stamped by the mutation, or (``stamped``) as the
    create route does, through :func:`parse_checked` stamping a template's entity."""
    try:
        if stamped:
            entity, made = parse_checked(ctx, body, now=_NOW)
            mutation = create_entity(entity, _NOW, owned=True, check_nulls=not made,
                                     stamped=made)
        else:
            # the parsed entity is the request's own, as the create route had it before
            # (``owned``: no orjson copy, which would turn a non-finite float into null;
            # such floats never come from a decoded body, and the store encodes both alike)
            entity = ctx.expand_entity(parse_entity(body))
            mutation = create_entity(entity, _NOW, owned=True)
        return mutation(None)
    except NgsiLdError as exc:
        return exc.__class__, exc.to_problem()


@given(st.data(), entities())
def test_a_created_entity_stamped_by_its_template_is_what_the_usual_create_stores(
        data: st.DataObject, first: dict[str, Any]) -> None:
    ctx = compile_context(_USER_CONTEXT, {}, core_context_url())
    for body in [first] + [data.draw(remembered(first)) for _ in range(2)] \
            + [revalued(data.draw, first) for _ in range(3)]:
        sent = repr(body)
        usual = _created(ctx, body, stamped=False)
        stamped = _created(ctx, body, stamped=True)
        assert same_json(stamped, usual) if isinstance(usual, dict) else stamped == usual
        assert repr(body) == sent, "the body was changed"


def test_a_streetlight_made_by_its_template_comes_stamped() -> None:
    ctx = _streetlight_context()
    first, made = parse_checked(ctx, _streetlight(0), now=_NOW)
    assert made is False and "createdAt" not in first  # the usual way: stamped later
    second, made = parse_checked(ctx, _streetlight(1), now=_NOW)
    assert made is True and second["createdAt"] == second["modifiedAt"] == _NOW
    assert all(i["createdAt"] == _NOW for instances in second["attrs"].values()
               for i in instances)
    assert same_json(second, _created(ctx, _streetlight(1), stamped=False))

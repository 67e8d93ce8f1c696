"""The quick checks of a template's main values (ngsi_ld.shape_slots ``Instance.quick``): a
Streetlight-like body gives through its template what the usual way gives (the entity,
or the same ProblemDetails, as each element of a batch answers it), whatever its typed
literals, its location Point and its object values hold, malformed ones included; and
each quick check says yes only where the usual check passes the value unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.suite.scenarios import STREETLIGHT_CONTEXT, STREETLIGHT_EXAMPLE
from ngsi_ld.batch import batch_upsert_mutation
from ngsi_ld.entity import parse_entity
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.geojson import is_plain_point, validate_geometry
from ngsi_ld.jsonld import compile_context, core_context_url
from ngsi_ld.shapes import parse_checked, same_json
from ngsi_ld.values import MAX_VALUE_DEPTH, kept_as_sent, main_value

_URL = "https://example.org/streetlighting.jsonld"
CTX = compile_context(_URL, {_URL: orjson.loads(STREETLIGHT_CONTEXT.read_bytes())},
                      core_context_url())
NULL = "urn:ngsi-ld:null"
_NOW = "2024-06-01T00:00:00Z"


def _example() -> dict[str, Any]:
    body = orjson.loads(STREETLIGHT_EXAMPLE.read_bytes())
    body.pop("@context", None)
    return body


_STRINGS = st.sampled_from(["2016-07-08T08:02:21.753Z", "2021-01-11T15:51:02+05:30",
                            "2016-07-08", "12:00:00", "yesterday", "", NULL,
                            "x" + NULL + "y", "DateTime"])
_SCALARS = st.one_of(_STRINGS, st.integers(-2**63, 2**63), st.floats(), st.booleans(),
                     st.none())
_LITERAL_TYPES = st.sampled_from(["DateTime", "Date", "Time", "Text",
                                  "https://uri.etsi.org/ngsi-ld/DateTime", "dateLastLampChange",
                                  NULL, "", 5, None, ["DateTime"]])
_NUMBERS = st.one_of(st.floats(-200, 200), st.floats(), st.integers(-200, 200),
                     st.integers(-2**63, 2**63), st.booleans(), st.just("1"), st.none())


def _deep(levels: int) -> Any:
    value: Any = {"a": 1}
    for _ in range(levels):
        value = [value]
    return value


_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(["a", "b", "@type", "@value", "@none",
                                                        "type", NULL]), inner, max_size=3),
                     max_leaves=8)


@st.composite
def _reshaped(draw: st.DrawFn, value: dict[str, Any]) -> Any:
    """``value`` with a member more, one less, or its members in another order."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return {**value, draw(st.sampled_from(["extra", "@type", "type"])): draw(_SCALARS)}
    if choice == 1 and value:
        return dict(list(value.items())[1:])
    if choice == 2:
        return dict(reversed(list(value.items())))
    return value


@st.composite
def literals(draw: st.DrawFn) -> Any:
    """A typed literal, mostly of the form the Streetlight's are, sometimes not."""
    return draw(_reshaped({"@type": draw(_LITERAL_TYPES),
                           "@value": draw(st.one_of(_STRINGS, _SCALARS))}))


@st.composite
def points(draw: st.DrawFn) -> Any:
    """A GeoJSON Point, mostly plain, with coordinates good or bad."""
    coordinates = draw(st.one_of(
        st.lists(_NUMBERS, min_size=2, max_size=3),
        st.lists(_NUMBERS, max_size=4),
        st.lists(st.lists(_NUMBERS, min_size=2, max_size=2), min_size=1, max_size=2)))
    kind = draw(st.sampled_from(["Point", "Point", "Point", "LineString", "point",
                                 "GeometryCollection", NULL]))
    point = draw(_reshaped({"type": kind, "coordinates": coordinates}))
    if draw(st.integers(0, 9)) == 0:  # 4.7.2: a geometry encoded in a string
        try:
            return orjson.dumps(point).decode()
        except orjson.JSONEncodeError:
            pass
    return point


_OBJECTS = st.one_of(_JSON, st.dictionaries(st.sampled_from(["district", "cityId", "wardNum"]),
                                            _SCALARS, max_size=4),
                     st.sampled_from([_deep(MAX_VALUE_DEPTH - 2), _deep(MAX_VALUE_DEPTH),
                                      {"a": _deep(MAX_VALUE_DEPTH - 1)}, [NULL], {"@none": NULL},
                                      {"a": NULL}, [{"a": NULL}], {"a": ["[[[", "{{{"]}]))
_VALUES = st.one_of(literals(), points(), _OBJECTS, _SCALARS)

#: the attributes of the example whose values the templates check quickly, and the
#: values each may take: mostly its own form
_QUICK = {
    "dateLastLampChange": st.one_of(literals(), _VALUES),
    "observationDateTime": st.one_of(literals(), _VALUES),
    "location": st.one_of(points(), _VALUES),
    "municipalityInfo": st.one_of(_OBJECTS, _VALUES),
}


@st.composite
def streetlights(draw: st.DrawFn) -> dict[str, Any]:
    """The Streetlight example, its quickly checked values (and the sub-attribute's, and
    now and then another attribute's) redrawn, sometimes a kind or a member changed."""
    body = _example()
    body["id"] = draw(st.sampled_from(["urn:ngsi-ld:Streetlight:1", "urn:ngsi-ld:Streetlight:2"]))
    for name, values in _QUICK.items():
        if draw(st.booleans()):
            body[name] = {**body[name], "value": draw(values)}
    if draw(st.integers(0, 3)) == 0:
        info = body["municipalityInfo"]
        info["deviceInfo"] = {**info["deviceInfo"], "value": draw(st.one_of(_OBJECTS, _VALUES))}
    if draw(st.integers(0, 5)) == 0:
        name = draw(st.sampled_from(sorted(_QUICK)))
        body[name] = {**body[name], "type": draw(st.sampled_from(
            ["Property", "GeoProperty", "JsonProperty", "Relationship"]))}
    if draw(st.integers(0, 5)) == 0:
        body[draw(st.sampled_from(["powerState", "current"]))]["value"] = draw(_VALUES)
    if draw(st.integers(0, 9)) == 0:
        name = draw(st.sampled_from(sorted(_QUICK)))
        body[name] = {**body[name], "observedAt": draw(_STRINGS)}
    return body


def _usual(body: Any) -> Any:
    """What a batch element comes to the usual way: the entity its upsert writes, or its
    error's ProblemDetails."""
    try:
        entity = CTX.expand_entity(parse_entity(body))
        return batch_upsert_mutation(entity, _NOW)(None)
    except NgsiLdError as exc:
        return exc.__class__, exc.to_problem()


def _through_template(body: Any) -> Any:
    """The same through :func:`parse_checked` and its word on the NGSI-LD Null, as the
    batch routes do."""
    try:
        entity, null_free = parse_checked(CTX, body)
        return batch_upsert_mutation(entity, _NOW, check_nulls=not null_free)(None)
    except NgsiLdError as exc:
        return exc.__class__, exc.to_problem()


def _same(body: Any) -> None:
    sent = repr(body)
    usual, made = _usual(body), _through_template(body)
    assert same_json(made, usual) if isinstance(usual, dict) else made == usual, body
    assert repr(body) == sent, "the body was changed"


@given(st.lists(streetlights(), min_size=1, max_size=6), st.booleans())
def test_streetlight_like_bodies_give_what_the_usual_way_gives(
        bodies: list[dict[str, Any]], example_first: bool) -> None:
    CTX.shapes.clear()
    if example_first:  # the template compiled from the example's own values
        _same(_example())
    for body in bodies:
        _same(body)


def test_the_examples_values_take_the_quick_checks() -> None:
    """The Streetlight's typed literals, Point and object values are made by the quick
    checks (a guard that the property above exercises them)."""
    CTX.shapes.clear()
    parse_checked(CTX, _example())
    template = next(iter(CTX.shapes.values()))
    quick = {name: getattr(slot, "quick", None)
             for _, name, _, slot in template.steps}  # type: ignore[attr-defined]
    assert all(quick[name] is not None for name in _QUICK), quick
    body = _example()
    assert parse_checked(CTX, body)[1]  # made by the template


@given(points())
def test_a_plain_point_is_what_validate_geometry_accepts_as_it_is(value: Any) -> None:
    if is_plain_point(value):
        validate_geometry(value)
        assert main_value("location", "GeoProperty", value) is value
        assert list(value) in (["type", "coordinates"], ["coordinates", "type"])


@given(_OBJECTS)
def test_a_value_kept_as_sent_is_what_main_value_keeps(value: Any) -> None:
    if kept_as_sent(value):
        assert main_value("municipalityInfo", "Property", value) is value
        assert not (isinstance(value, dict) and ("@type" in value or "@value" in value))

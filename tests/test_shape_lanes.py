"""The lanes of one-attribute updates (ngsi_ld.shapes.expanded_attrs, issue 19).

An Update Entity Attributes body of one attribute whose template makes a plain
Property or Relationship at once is read, from then on, through the attribute's
lane: the same result as the template and the usual way (parse_fragment with the
NGSI-LD Null allowed, then expand_entity), or None where they decide.  Streams of
one-attribute bodies (a few names, of every kind and form: plain, with more
members, malformed, the Null) go through one @context both ways.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_shapes import shaped_attrs, usual_attrs

from ngsi_ld.jsonld import compile_context, core_context_url
from ngsi_ld.shapes import expanded_attrs, same_json

_CONTEXT = {"temperature": "https://example.org/temperature",
            "nothing": None,  # a term mapped to null: expanding it is refused
            "twinA": "https://example.org/twin", "twinB": "https://example.org/twin",
            "when": {"@id": "https://example.org/when", "@type": "@vocab"}}
NULL = "urn:ngsi-ld:null"

_names = st.sampled_from(["temperature", "temperature", "p", "rel", "nothing", "twinA",
                          "when", "location", "@context", "createdAt", "https://e.org/x"])
_scalars = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.booleans(),
                     st.text(max_size=4), st.just(NULL), st.none(),
                     st.sampled_from(["urn:ngsi-ld:Car:1", "not a uri", ""]))
#: mostly URIs, the objects of a run of plain Relationships
_objects = st.one_of(st.sampled_from(["urn:ngsi-ld:Car:1", "urn:ngsi-ld:Car:2",
                                      "https://e.org/c"]), _scalars)
_mains = st.one_of(_scalars, st.lists(_scalars, max_size=2),
                   st.dictionaries(st.sampled_from(["@type", "@value", "type", "a"]),
                                   _scalars, max_size=2))
_kinds = st.sampled_from(["Property", "Property", "Relationship", "Relationship",
                          "GeoProperty", "LanguageProperty", "Bogus", 5, None])
_mains_of = st.sampled_from(["value", "object", "languageMap", "valueList", "unitCode"])


@st.composite
def _instances(draw: st.DrawFn, kind: str) -> Any:
    """An instance of a one-attribute body: mostly a plain one of ``kind`` (Property or
    Relationship), else another kind, member, extra member, missing type, no object."""
    form = draw(st.integers(0, 9))
    if form <= 4:
        if kind == "Property":
            return {"type": kind, "value": draw(_scalars)}
        return {"type": kind, "object": draw(_objects)}
    if form == 5:
        return {"type": "Relationship", "object": draw(_scalars)}
    if form == 6:
        return {"type": draw(_kinds), draw(_mains_of): draw(_mains)}
    if form == 7:
        main = "value" if kind == "Property" else "object"
        plain = {"type": kind, main: draw(_objects),
                 draw(st.sampled_from(["unitCode", "observedAt", "datasetId", "q"])):
                     draw(_scalars)}
        return dict(reversed(plain.items())) if draw(st.booleans()) else plain
    if form == 8:
        return {draw(_mains_of): draw(_scalars)}
    return draw(_mains)


@st.composite
def _streams(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """A stream of one-attribute bodies: runs of one name and kind (so its template and
    its lane are made and used), now and then another name."""
    stream = []
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.one_of(st.sampled_from(["temperature", "rel"]), _names))
        kind = draw(st.sampled_from(["Property", "Relationship"]))
        stream += [(name if draw(st.integers(0, 5)) else draw(_names), draw(_instances(kind)))
                   for _ in range(draw(st.integers(3, 12)))]
    return stream


@settings(max_examples=300, deadline=None)
@given(_streams())
def test_one_attribute_updates_give_what_the_usual_way_gives(
        bodies: list[tuple[str, Any]]) -> None:
    ctx = compile_context(_CONTEXT, {}, core_context_url())
    for name, instance in bodies:
        body = {name: instance}
        sent = repr(body)
        usual, shaped = usual_attrs(ctx, body), shaped_attrs(ctx, body)
        assert same_json(shaped, usual) if isinstance(usual, dict) else shaped == usual, body
        assert repr(body) == sent, "the body was changed"


def test_a_stream_of_one_attribute_goes_through_its_lane() -> None:
    """After the template of a plain Property, the plain Properties of that attribute
    give what the usual way gives through the lane; other forms go on to the template."""
    ctx = compile_context(_CONTEXT, {}, core_context_url())
    iri = "https://example.org/temperature"
    for value in (1, 2, "x", 2.5, False):
        body = {"temperature": {"type": "Property", "value": value}}
        assert same_json(expanded_attrs(ctx, body), usual_attrs(ctx, body))
    assert ctx.shapes.get("temperature") == ("Property", "value", iri)
    for other in ({"type": "Property", "value": NULL}, {"type": "Property", "value": [1]},
                  {"type": "Property", "value": 3, "unitCode": "CEL"},
                  {"type": "Relationship", "object": "urn:ngsi-ld:Car:1"},
                  {"value": 4, "type": "Property"}):
        body = {"temperature": other}
        assert same_json(shaped_attrs(ctx, body), usual_attrs(ctx, body)), body
    rel = {"rel": {"type": "Relationship", "object": "urn:ngsi-ld:Car:1"}}
    for _ in range(2):
        assert same_json(expanded_attrs(ctx, rel), usual_attrs(ctx, rel))
    assert ctx.shapes.get("rel") is not None
    for target in ("not a uri", NULL, 5):
        body = {"rel": {"type": "Relationship", "object": target}}
        assert same_json(shaped_attrs(ctx, body), usual_attrs(ctx, body)), body

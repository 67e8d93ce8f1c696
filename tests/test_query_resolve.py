"""Expanding the names of parsed queries with a @context."""

from __future__ import annotations

from ngsi_ld.query import (
    And,
    AttrPath,
    Comparison,
    EntityQuery,
    Exists,
    Number,
    Text,
    Uri,
    ValueList,
    expand_values,
    format_q,
    parse_geo_query,
    parse_q,
    parse_type_expr,
    resolve_names,
)

CTX = {
    "speed": "https://ex.org/speed",
    "accuracy": "https://ex.org/accuracy",
    "location": "https://uri.etsi.org/ngsi-ld/location",
    "Car": "https://ex.org/Car",
}


def expand(name: str) -> str:
    return CTX.get(name, "https://default.org/" + name)


def test_attribute_and_sub_attribute_names_expand_but_not_keys_or_members() -> None:
    expr = resolve_names(parse_q("speed.accuracy.observedAt>2020-01-01;speed[city.zip]"), expand)
    assert isinstance(expr, And)
    first, second = expr.terms
    assert isinstance(first, Comparison) and isinstance(second, Exists)
    assert first.path == AttrPath(("https://ex.org/speed", "https://ex.org/accuracy"), "observedAt")
    assert second.path == AttrPath(("https://ex.org/speed",), None, ("city", "zip"))


def test_resolution_keeps_structure_and_values() -> None:
    text = '(speed>3|!x);y=="a",1'
    resolved = resolve_names(parse_q(text), expand)
    assert format_q(resolved) == (
        '(https://ex.org/speed>3|!https://default.org/x);https://default.org/y=="a",1'
    )


def test_vocab_expansion_is_not_syntax() -> None:
    plain = parse_q('speed=="fast"')
    resolved = resolve_names(plain, lambda n: n, lambda v: "https://v.org/" + v)
    assert resolved == plain
    assert resolved.value == Text("fast")  # type: ignore[union-attr]
    assert resolved.value.vocab_iri == "https://v.org/fast"  # type: ignore[union-attr]


def test_entity_query_resolves_every_named_selector() -> None:
    query = EntityQuery(
        type_expr=parse_type_expr("Car"),
        attrs=["speed"],
        q=parse_q("speed"),
        geo_q=parse_geo_query("within", "Point", "[1, 2]"),
        ids=["urn:x:1"],
    )
    resolved = resolve_names(query, expand)
    assert resolved.type_expr == parse_type_expr("https://ex.org/Car")
    assert resolved.attrs == ("https://ex.org/speed",)
    assert resolved.q == parse_q("https://ex.org/speed")
    assert resolved.geo_q is not None
    assert resolved.geo_q.geoproperty == "https://uri.etsi.org/ngsi-ld/location"
    assert resolved.ids == ("urn:x:1",)


def test_expand_values_expands_the_values_of_the_named_attributes() -> None:
    def expand(term: str) -> str:
        return "https://ex.org/" + term

    expr = expand_values(parse_q('gender==Male;kind=="a",b;other==Male;gender.observedAt>1'),
                         {"gender", "kind"}, expand)
    assert expr == And((
        Comparison(AttrPath(("gender",)), "==", Uri("https://ex.org/Male")),
        Comparison(AttrPath(("kind",)), "==",
                   ValueList((Uri("https://ex.org/a"), Uri("https://ex.org/b")))),
        Comparison(AttrPath(("other",)), "==", Uri("Male")),
        Comparison(AttrPath(("gender",), "observedAt"), ">", Number(1)),
    ))
    assert expand_values(parse_q("a==b"), set(), expand) == parse_q("a==b")

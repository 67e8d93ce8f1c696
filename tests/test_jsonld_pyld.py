"""Property tests: the ActiveContext fast path names things exactly as pyld does.

For random NGSI-LD entities over several real contexts, the names produced by
``expand_entity`` / ``compact_entity`` on the internal form must equal the names
in ``pyld.jsonld.expand`` / ``compact`` of the equivalent normalized document.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyld import jsonld
from pyld.context_resolver import ContextResolver

from conformance.shared_data import smart_data_models_dir
from ngsi_ld.errors import BadRequestData
from ngsi_ld.jsonld import ActiveContext, bundled_document, compile_context, core_context_url

CORE = core_context_url("1.8")
NGSI = "https://uri.etsi.org/ngsi-ld/"


SDM = smart_data_models_dir()
SDM_FILES = sorted(SDM.glob("*.context.jsonld"))
DOCUMENTS: dict[str, Any] = {
    f"https://fake.example.org/sdm/{path.name}": orjson.loads(path.read_bytes())
    for path in SDM_FILES
}
SDM_URLS = sorted(DOCUMENTS)
WEATHER_URL = next((u for u in SDM_URLS if "Weather" in u), None)

INLINE = {
    "ex": "http://example.org/ns#",
    "schema": "http://schema.org/",
    "temperature": "ex:temperature",
    "Room": "ex:Room",
    "brand": {"@id": "schema:brand"},
    "sensor": {"@id": "ex:sensor", "@type": "@id"},
    "owner": {"@id": "ex:owner", "@type": "@vocab"},
    "tags": {"@id": "ex:tags", "@container": "@set"},
}

CONTEXTS: dict[str, Any] = {"core": None, "inline": INLINE}
for _url in SDM_URLS:
    CONTEXTS[_url.rsplit("/", 1)[1]] = _url
if SDM_URLS:
    CONTEXTS["nested-array"] = [
        SDM_URLS[0],
        {"myAttr": "http://example.org/myAttr", "ex": INLINE["ex"]},
    ]
if WEATHER_URL:
    CONTEXTS["import"] = {
        "@version": 1.1,
        "@import": WEATHER_URL,
        "rainfall": "http://example.org/rainfall",
        "Station": "http://example.org/Station",
    }

# Members of an entity or attribute instance: never attribute names.
MEMBERS = {
    "id", "type", "scope", "createdAt", "modifiedAt", "deletedAt", "observedAt", "unitCode",
    "datasetId", "value", "object", "objectType", "languageMap", "vocab", "json", "valueList",
    "objectList", "lang", "location", "observationSpace", "operationSpace",
}  # fmt: skip


def _loader(url: str, options: Any = None) -> dict[str, Any]:
    document = bundled_document(url, CORE)
    if document is None:
        document = copy.deepcopy(DOCUMENTS[url])
    return {"contextUrl": None, "documentUrl": url, "document": document}


def _options() -> dict[str, Any]:
    # A fresh resolver each time: pyld's process-wide resolved-context cache mixes up a
    # URL first seen as a plain reference with the same URL seen through @import.
    return {"documentLoader": _loader, "contextResolver": ContextResolver({}, _loader)}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _document_context(user: Any) -> list[Any]:
    return [*_as_list(user), CORE]


@cache
def _compiled(name: str) -> ActiveContext:
    return compile_context(CONTEXTS[name], DOCUMENTS, CORE)


@cache
def _member_iris() -> frozenset[str]:
    core = _compiled("core")
    return frozenset(core.expand_term(m) for m in MEMBERS)


# ------------------------------------------------------------ conversions


def to_document(entity: dict[str, Any], context: Any) -> dict[str, Any]:
    """Internal form -> normalized NGSI-LD JSON-LD (attributes at top level)."""
    document: dict[str, Any] = {"@context": context, "id": entity["id"], "type": entity["type"]}
    for name, instances in entity["attrs"].items():
        bodies = [_instance_document(i) for i in instances]
        document[name] = bodies[0] if len(bodies) == 1 else bodies
    return document


def _instance_document(instance: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in instance.items() if k != "sub"}
    for name, sub in instance.get("sub", {}).items():
        body[name] = _instance_document(sub)
    return body


def internal_names(entity: dict[str, Any]) -> dict[str, Any]:
    """Every renamed thing of an internal-form entity, in a comparable shape."""
    return {
        "type": _as_list(entity["type"]),
        "attrs": {k: [_instance_names(i) for i in v] for k, v in entity["attrs"].items()},
    }


def _instance_names(instance: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    value = instance.get("value")
    if isinstance(value, dict) and "@type" in value:
        out["valueType"] = value["@type"]
    if "objectType" in instance:
        out["objectType"] = _as_list(instance["objectType"])
    if "vocab" in instance:
        out["vocab"] = _as_list(instance["vocab"])
    subs = {k: _instance_names(v) for k, v in instance.get("sub", {}).items()}
    if subs:
        out["sub"] = subs
    return out


def expanded_names(node: dict[str, Any]) -> dict[str, Any]:
    """The same shape read from a pyld-expanded node."""
    attrs = {k: [_expanded_instance(i) for i in v] for k, v in node.items() if k[0] != "@"}
    return {"type": node["@type"], "attrs": attrs}


def _expanded_instance(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    value = node.get(NGSI + "hasValue", [{}])[0]
    if "@type" in value:
        out["valueType"] = value["@type"]
    if NGSI + "hasObjectType" in node:
        out["objectType"] = [v["@id"] for v in node[NGSI + "hasObjectType"]]
    if NGSI + "hasVocab" in node:
        out["vocab"] = [v["@id"] for v in node[NGSI + "hasVocab"]]
    members = _member_iris()
    subs = {
        k: _expanded_instance(v[0]) for k, v in node.items() if k[0] != "@" and k not in members
    }
    if subs:
        out["sub"] = subs
    return out


def compacted_names(document: dict[str, Any]) -> dict[str, Any]:
    """The same shape read from a pyld-compacted document."""
    attrs = {
        k: [_compacted_instance(i) for i in _as_list(v)]
        for k, v in document.items()
        if k not in ("@context", "id", "type")
    }
    return {"type": _as_list(document["type"]), "attrs": attrs}


def _compacted_instance(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    value = body.get("value")
    if isinstance(value, dict) and "@value" in value:
        # pyld writes the keyword through its alias: "type" (core: "type": "@type").
        out["valueType"] = value.get("@type", value.get("type"))
    if "objectType" in body:
        out["objectType"] = _as_list(body["objectType"])
    if "vocab" in body:
        out["vocab"] = _as_list(body["vocab"])
    # A term with "@container": "@set" compacts to an array even for one value.
    subs = {k: _compacted_instance(_as_list(v)[0]) for k, v in body.items() if k not in MEMBERS}
    if subs:
        out["sub"] = subs
    return out


# ------------------------------------------------------------- strategies

WORD = st.from_regex(r"[a-z][a-zA-Z0-9]{0,7}", fullmatch=True)


def _usable_terms(ctx: ActiveContext) -> list[str]:
    """Terms a client can use as attribute names: no container/@json, not a member."""
    members = _member_iris()
    return sorted(
        term
        for term, d in ctx.definitions.items()
        if d.iri
        and d.iri[0] != "@"
        and d.iri not in members
        and term not in MEMBERS
        and d.container in ((), ("@set",))
        and d.type != "@json"
    )


def _unique_terms(ctx: ActiveContext) -> list[str]:
    """Usable terms that are the only term for their IRI (compaction must give them back)."""
    by_iri: dict[str, int] = {}
    for d in ctx.definitions.values():
        if d.iri:
            by_iri[d.iri] = by_iri.get(d.iri, 0) + 1
    # JSON-LD compaction picks a term for a node value only if it coerces to @id or
    # nothing: a term coercing to @vocab or a datatype gives way to a compact IRI.
    return [
        t
        for t in _usable_terms(ctx)
        if by_iri[ctx.definitions[t].iri or ""] == 1 and ctx.definitions[t].type in (None, "@id")
    ]


def names(ctx: ActiveContext) -> st.SearchStrategy[str]:
    """Attribute names and types: terms, absolute IRIs, compact IRIs, unknown words."""
    terms = _usable_terms(ctx)
    prefixes = sorted(t for t, d in ctx.definitions.items() if d.prefix and ":" not in t)
    absolute = st.builds("http://example.org/{}".format, WORD) | st.sampled_from(
        sorted({ctx.definitions[t].iri or "" for t in terms})
    )
    compact = st.builds("{}:{}".format, st.sampled_from(prefixes), WORD)
    unknown = WORD.filter(lambda w: w not in ctx.definitions)
    members = _member_iris()
    return (
        (st.sampled_from(terms) | absolute | compact | unknown)
        .filter(lambda n: n not in ctx.definitions or n in terms)
        .filter(lambda n: ctx.expand_term(n) not in members)
    )


LITERAL = st.integers(-1000, 1000) | st.text("abcxyz ", max_size=6)
DATETIME = st.builds(
    lambda t: {"@type": t, "@value": "2026-11-22T00:00:00.000Z"},
    st.just("DateTime"),
)


@st.composite
def instance(draw: st.DrawFn, name: st.SearchStrategy[str], depth: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Property", "DateTime", "Typed", "Relationship", "VocabProperty"]))
    body: dict[str, Any]
    if kind == "Property":
        body = {"type": "Property", "value": draw(LITERAL)}
    elif kind == "DateTime":
        body = {"type": "Property", "value": draw(DATETIME)}
    elif kind == "Typed":
        body = {"type": "Property", "value": {"@type": draw(name), "@value": draw(WORD)}}
    elif kind == "Relationship":
        body = {"type": "Relationship", "object": f"urn:ngsi-ld:Thing:{draw(WORD)}"}
        if draw(st.booleans()):
            body["objectType"] = draw(name | st.lists(name, min_size=1, max_size=2, unique=True))
    else:
        vocab = draw(name | st.lists(name, min_size=1, max_size=2, unique=True))
        body = {"type": "VocabProperty", "vocab": vocab}
    if depth > 0:
        sub = draw(st.dictionaries(name, instance(name, depth - 1), max_size=2))
        if sub:
            body["sub"] = sub
    return body


@st.composite
def entities(draw: st.DrawFn, name: st.SearchStrategy[str]) -> dict[str, Any]:
    types = draw(st.lists(name, min_size=1, max_size=2, unique=True))
    attrs: dict[str, Any] = {}
    for attr in draw(st.lists(name, max_size=4, unique=True)):
        count = draw(st.integers(1, 2))
        instances = [draw(instance(name, 2)) for _ in range(count)]
        for i, inst in enumerate(instances[1:], start=1):
            inst["datasetId"] = f"urn:ngsi-ld:Dataset:{i}"
        attrs[attr] = instances
    return {"id": f"urn:ngsi-ld:Thing:{draw(WORD)}", "type": types, "attrs": attrs}


def _pyld_expand(entity: dict[str, Any], user: Any) -> list[dict[str, Any]]:
    expanded: list[dict[str, Any]] = jsonld.expand(
        to_document(entity, _document_context(user)), _options()
    )
    return expanded


def _collides(ctx: ActiveContext, mapping: dict[str, Any]) -> bool:
    """Two names of one attribute map (or sub-attribute map) stand for the same IRI."""
    iris = [ctx.expand_term(n) for n in mapping]
    if len(set(iris)) != len(iris):
        return True
    return any(
        _collides(ctx, inst.get("sub", {}))
        for instances in mapping.values()
        for inst in _as_list(instances)
    )


# ------------------------------------------------------------------ tests

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("context_name", sorted(CONTEXTS))
def test_expand_and_compact_match_pyld(context_name: str) -> None:
    ctx = _compiled(context_name)
    user = CONTEXTS[context_name]

    @SETTINGS
    @given(entities(names(ctx)))
    def check(entity: dict[str, Any]) -> None:
        before = copy.deepcopy(entity)
        expanded = _pyld_expand(entity, user)
        assert len(expanded) == 1
        node = expanded[0]
        if _collides(ctx, entity["attrs"]):
            # Two names of one entity stand for the same IRI: refused, not merged.
            with pytest.raises(BadRequestData):
                ctx.expand_entity(entity)
            return
        ours = ctx.expand_entity(entity)
        assert entity == before, "expand_entity mutated its input"
        assert internal_names(ours) == expanded_names(node)

        compacted = jsonld.compact(node, _document_context(user), _options())
        ours_compacted = ctx.compact_entity(ours)
        assert internal_names(ours_compacted) == compacted_names(compacted)

    check()


@pytest.mark.parametrize("context_name", sorted(CONTEXTS))
def test_compact_of_expand_gives_back_term_names(context_name: str) -> None:
    ctx = _compiled(context_name)
    terms = _unique_terms(ctx)
    if not terms:
        pytest.skip("context has no term with a unique IRI")
    name = st.sampled_from(terms)

    @SETTINGS
    @given(entities(name))
    def check(entity: dict[str, Any]) -> None:
        before = copy.deepcopy(entity)
        expanded = ctx.expand_entity(entity)
        assert ctx.compact_entity(expanded) == entity
        assert entity == before

    check()

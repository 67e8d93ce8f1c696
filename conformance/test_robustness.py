"""5.5.2 ProblemDetails for any input: generated bodies and queries never get a 5xx.

Each case sends inputs drawn by hypothesis (valid, odd and malformed alike)
and checks the one rule that holds for all of them: the answer is a success
or a 4xx ProblemDetails with an NGSI-LD error type, never a server error and
never a half-written entity.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.client import Client, Reply, entity_path
from conformance.data import ENTITIES, ERR

SUBSCRIPTIONS = "/ngsi-ld/v1/subscriptions"
UPSERT = "/ngsi-ld/v1/entityOperations/upsert"
RUN = uuid.uuid4().hex[:8]
TYPE = f"Robust{RUN}"

CASES = settings(max_examples=60, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])

_KEYS = st.one_of(st.text(max_size=6), st.sampled_from([
    "type", "value", "object", "coordinates", "@value", "@type", "@id", "languageMap",
    "vocab", "json", "observedAt", "datasetId", "unitCode", "objectList", "valueList",
]))
_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
JSON = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)), max_leaves=8)
KINDS = st.sampled_from(["Property", "Relationship", "GeoProperty", "LanguageProperty",
                         "VocabProperty", "JsonProperty", "ListProperty", "ListRelationship",
                         "Unknown"])
# values shaped like GeoJSON or JSON-LD value objects, with members of any JSON type
OBJECT_VALUES = st.builds(lambda kind, members: {"type": kind, **members},
                          JSON, st.dictionaries(_KEYS, JSON, max_size=2))
ATTRIBUTE = st.one_of(
    JSON,
    st.builds(lambda kind, members: {"type": kind, **members},
              KINDS, st.dictionaries(_KEYS, JSON, max_size=3)),
    st.builds(lambda value: {"type": "Property", "value": value}, OBJECT_VALUES),
    OBJECT_VALUES.map(lambda value: {"value": value}),
)
NAMES = st.sampled_from(["a", "b", "location", "observationSpace", "x:y",
                         "http://example.org/p", "", "a b", "@context"])


def answered_properly(reply: Reply, *ok: int) -> bool:
    """A success in ``ok``, or a 4xx whose body is an NGSI-LD ProblemDetails."""
    if reply.status in ok:
        return True
    body = reply.json if reply.raw else None
    return (400 <= reply.status < 500 and isinstance(body, dict)
            and str(body.get("type", "")).startswith(ERR) and body.get("status") == reply.status)


# 5.6.1 Create Entity, 5.7.1 Retrieve Entity
@pytest.mark.clause("5.5.2")
@CASES
@given(attrs=st.dictionaries(NAMES, ATTRIBUTE, max_size=3))
def test_any_entity_body(client: Client, attrs: dict[str, Any]) -> None:
    entity_id = f"urn:ngsi-ld:{TYPE}:{uuid.uuid4().hex}"
    reply = client.post(ENTITIES, {**attrs, "id": entity_id, "type": TYPE})
    assert answered_properly(reply, 201), (reply.status, reply.raw)
    read = client.get(entity_path(entity_id))
    # created whole or not at all
    assert read.status == (200 if reply.status == 201 else 404), (read.status, read.raw)
    for options in ("keyValues", "concise", "sysAttrs"):
        view = client.get(entity_path(entity_id) + "?options=" + options)
        assert answered_properly(view, 200, 404), (view.status, view.raw)


# 5.6.2 Update Entity Attributes, 5.6.3 Append Entity Attributes
@pytest.mark.clause("5.5.2")
@CASES
@given(fragment=st.dictionaries(NAMES, ATTRIBUTE, max_size=3),
       method=st.sampled_from(["PATCH", "POST"]))
def test_any_attribute_fragment(client: Client, fragment: dict[str, Any], method: str) -> None:
    entity_id = f"urn:ngsi-ld:{TYPE}:frag{RUN}"
    client.post(ENTITIES, {"id": entity_id, "type": TYPE, "a": {"type": "Property", "value": 1}})
    before = client.get(entity_path(entity_id)).json
    reply = client.request(method, entity_path(entity_id) + "/attrs", fragment)
    assert answered_properly(reply, 204, 207), (reply.status, reply.raw)
    after = client.get(entity_path(entity_id))
    assert after.status == 200
    if reply.status >= 400:
        assert after.json == before  # a refused fragment leaves the entity as it was


_PATHS = st.sampled_from(["a", "b", "a.b", "a[b]", "a[b.c]", "a.observedAt", "a[0]", "id",
                          "a..b", "a[", "x:y"])
_OPS = st.sampled_from(["==", "!=", ">", ">=", "<", "<=", "~=", "!~="])
_VALUES = st.one_of(
    st.integers(-2**70, 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(['"on"', "true", "null", "2020-01-01T00:00:00Z", "1..5", "1,2,3",
                     '".*"', '"(("', "1e400", "urn:x:1", '"a".."b"', "()"]),
)
_TERMS = st.one_of(st.tuples(_PATHS, _OPS, _VALUES).map("".join), _PATHS,
                   _PATHS.map(lambda p: "!" + p))
Q = st.recursive(_TERMS, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from([";", "|"]), inner).map("".join),
    inner.map(lambda text: f"({text})")), max_leaves=4)
STORED = st.one_of(JSON, st.just({"@type": "DateTime", "@value": "2020-01-01T00:00:00Z"}),
                   st.just({"b": {"c": 1}}))


# 5.7.2 Query Entities, 4.9 q, 5.8.1 Create Subscription (the same q)
@pytest.mark.clause("5.5.2")
@CASES
@given(values=st.lists(st.dictionaries(st.sampled_from(["a", "b"]), STORED, max_size=2),
                       max_size=3), q=Q, count=st.booleans())
def test_any_q_on_any_values(
    client: Client, values: list[dict[str, Any]], q: str, count: bool
) -> None:
    kind = f"{TYPE}Q"
    entities = [{"id": f"urn:ngsi-ld:{kind}:{i}", "type": kind,
                 **{name: {"type": "Property", "value": v} for name, v in attrs.items()}}
                for i, attrs in enumerate(values)]
    if entities:
        assert answered_properly(client.post(UPSERT, entities), 201, 204, 207)
    query = f"{ENTITIES}?type={kind}&q={quote(q, safe='')}" + ("&count=true" if count else "")
    reply = client.get(query)
    assert answered_properly(reply, 200), (q, reply.status, reply.raw)
    subscription = {"type": "Subscription", "entities": [{"type": kind}], "q": q,
                    "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}}
    made = client.post(SUBSCRIPTIONS, subscription)
    assert answered_properly(made, 201), (q, made.status, made.raw)
    if made.status == 201:
        client.delete(made.header("Location") or "")


# 5.8.1 Create Subscription, 5.8.2 Update Subscription
@pytest.mark.clause("5.5.2")
@CASES
@given(members=st.dictionaries(st.sampled_from([
    "entities", "watchedAttributes", "q", "geoQ", "timeInterval", "throttling", "expiresAt",
    "isActive", "lang", "scopeQ"]), JSON, max_size=3),
    notification=st.dictionaries(st.sampled_from([
        "attributes", "format", "sysAttrs", "showChanges", "pick", "omit"]), JSON, max_size=2),
    patch=st.dictionaries(st.sampled_from(["q", "throttling", "notification", "entities"]),
                          JSON, max_size=2))
def test_any_subscription(
    client: Client, members: dict[str, Any], notification: dict[str, Any], patch: dict[str, Any]
) -> None:
    body = {"type": "Subscription", "entities": [{"type": TYPE}], **members,
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}, **notification}}
    made = client.post(SUBSCRIPTIONS, body)
    assert answered_properly(made, 201), (made.status, made.raw)
    if made.status == 201:
        location = made.header("Location") or ""
        changed = client.patch(location, patch)
        assert answered_properly(changed, 204), (changed.status, changed.raw)
        assert client.get(location).status == 200
        client.delete(location)


def _nest(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


# 4.5 attribute values of any depth; 5.5.2 an answer for everything
@pytest.mark.clause("5.5.2")
@pytest.mark.parametrize("depth", [300, 1000])
def test_deeply_nested_bodies_are_refused_not_failed(client: Client, depth: int) -> None:
    entity_id = f"urn:ngsi-ld:{TYPE}:deep{depth}"
    chain = '{"type":"Property","value":1}'
    for _ in range(depth):
        chain = '{"type":"Property","value":1,"s":' + chain + "}"
    head = '{"id":"' + entity_id + '","type":"T",'
    bodies = [
        head + '"a":{"type":"Property","value":' + _nest(depth) + "}}",
        head + '"a":' + _nest(depth) + "}",
        head + '"a":' + chain + "}",
        head + '"location":{"type":"Polygon","coordinates":' + _nest(depth, "1.0") + "}}",
    ]
    for body in bodies:
        reply = client.request("POST", ENTITIES, raw=body.encode())
        assert answered_properly(reply), (reply.status, reply.raw[:300])
        assert len(reply.raw) < 2000  # the detail does not echo the input
        assert client.get(entity_path(entity_id)).status == 404
    coordinates = quote(_nest(depth, "1.0"), safe="")
    reply = client.get(f"{ENTITIES}?type=T&georel=within&geometry=Polygon"
                       f"&coordinates={coordinates}")
    assert answered_properly(reply), (reply.status, reply.raw[:300])


@pytest.mark.clause("4.5.2")
def test_values_nested_twenty_levels_are_stored_as_sent(client: Client) -> None:
    entity_id = f"urn:ngsi-ld:{TYPE}:nested20"
    value: Any = "leaf"
    for n in range(20):
        value = {"k": value, "n": n} if n % 2 else [value, n]
    chain: dict[str, Any] = {"type": "Property", "value": 0}
    for n in range(8):
        chain = {"type": "Property", "value": n + 1, "s": chain}
    reply = client.post(ENTITIES, {"id": entity_id, "type": TYPE,
                                   "a": {"type": "Property", "value": value},
                                   "j": {"type": "JsonProperty", "json": value}, "c": chain})
    assert reply.status == 201, reply.raw
    stored = client.get(entity_path(entity_id)).json
    assert stored["a"]["value"] == value and stored["j"]["json"] == value
    assert stored["c"]["s"]["s"]["value"] == 6


# 4.9 q of any size within the length limit; the same answer as the short form
@pytest.mark.clause("4.9")
@pytest.mark.parametrize(("long_q", "short_q"), [
    (";".join(["a==1"] * 600), "a==1"),
    ("|".join(["a==1"] * 600), "a==1"),
    (";".join(['(a==1|b=="x")'] * 300), 'a==1|b=="x"'),
])
def test_a_q_of_hundreds_of_terms_answers_like_its_short_form(
    client: Client, long_q: str, short_q: str
) -> None:
    kind = f"{TYPE}Long"
    entities = [{"id": f"urn:ngsi-ld:{kind}:{n}", "type": kind,
                 "a": {"type": "Property", "value": n % 3},
                 "b": {"type": "Property", "value": "x" if n % 4 == 0 else "y"}}
                for n in range(12)]
    assert answered_properly(client.post(UPSERT, entities), 201, 204)
    answers = []
    for q in (long_q, short_q):
        reply = client.post("/ngsi-ld/v1/entityOperations/query?count=true",
                            {"type": "Query", "entities": [{"type": kind}], "q": q})
        assert reply.status == 200, (reply.status, reply.raw[:300])
        answers.append(([e["id"] for e in reply.json], reply.header("NGSILD-Results-Count")))
    assert answers[0] == answers[1] and answers[0][0]


_PARAMS = st.dictionaries(
    st.sampled_from(["type", "id", "idPattern", "attrs", "pick", "omit", "q", "scopeQ", "lang",
                     "options", "format", "limit", "offset", "count", "georel", "geometry",
                     "coordinates", "geoproperty", "geometryProperty", "datasetId", "local",
                     "orderBy", "orderFrom", "orderGeometry", "collation", "expandValues",
                     "csf"]),
    st.one_of(st.text(max_size=12), st.sampled_from([
        "T", "keyValues", "concise,sysAttrs", "geojson", "simplified", "0", "5", "-1", "true",
        "near;maxDistance==1000", "Point", "[8.5,47.3]", "location", "@none", "*", "en",
        "urn:ngsi-ld:T:1", "^urn:ngsi-ld:", "a,b", "a==1", "/a/#", "a;desc,id",
        "location;dist-asc", "und-u-ks-level1", "a{b}", "LineString", "[[0,0],[1,1]]"])),
    max_size=6,
)


# 5.7.2 Query Entities, 5.7.1 Retrieve Entity: any combination of parameters
@pytest.mark.clause("5.5.2")
@CASES
@given(params=_PARAMS, accept=st.sampled_from(["application/json", "application/ld+json",
                                               "application/geo+json", "*/*", "text/csv"]))
def test_any_query_parameters(client: Client, params: dict[str, str], accept: str) -> None:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    for path in (f"{ENTITIES}?{query}", f"{ENTITIES}/urn:ngsi-ld:{TYPE}:none?{query}"):
        reply = client.get(path, headers={"Accept": accept})
        assert answered_properly(reply, 200), (path, reply.status, reply.raw[:300])

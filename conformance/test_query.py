"""5.7.2 Query Entities (GET /entities and POST /entityOperations/query), 4.9 q, 4.17 types,
4.19 scopeQ, 6.3.10 paging and 6.3.13 counting."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from conformance.client import Client, link
from conformance.data import (
    BAD_DATA,
    ENTITIES,
    ERR,
    INVALID,
    create,
    eid,
    entity,
    is_problem,
    prop,
    rel,
)

QUERY = "/ngsi-ld/v1/entityOperations/query"


def kind(name: str, uid: str) -> str:
    """A type of its own per case, so other cases never pollute the results."""
    return f"{name}{uid}"


def ids_of(reply: Any) -> list[str]:
    assert reply.status == 200, (reply.status, reply.raw)
    return [item["id"] for item in reply.json]


def q(text: str) -> str:
    return quote(text, safe="")


def lamps(client: Client, uid: str, n: int = 6) -> tuple[str, list[str]]:
    """n lamps of a fresh type: height 6+i, on when i is even, one group relationship."""
    t = kind("Lamp", uid)
    made = []
    for i in range(n):
        entity_id = eid("Lamp", uid, i)
        create(client, entity(entity_id, t, height=prop(6 + i),
                              state=prop("on" if i % 2 == 0 else "off"),
                              group=rel(f"urn:ngsi-ld:Group:{i % 2}"),
                              name=prop(f"lamp {i}")))
        made.append(entity_id)
    return t, made


@pytest.mark.clause("5.7.2")
def test_query_by_type_returns_every_entity_sorted(client: Client, uid: str) -> None:
    t, made = lamps(client, uid)
    assert ids_of(client.get(f"{ENTITIES}?type={t}")) == sorted(made)


@pytest.mark.clause("4.9")
@pytest.mark.parametrize(("expr", "wanted"), [
    ("height>8", [3, 4, 5]),
    ("height>=7;height<=9", [1, 2, 3]),
    ('state=="on"', [0, 2, 4]),
    ('state=="on";height>7', [2, 4]),
    ('state=="off"|height==6', [0, 1, 3, 5]),
    ("height==6..8", [0, 1, 2]),
    ("height==6,11", [0, 5]),
    ("height!=6", [1, 2, 3, 4, 5]),
    ('name~="lamp [12]"', [1, 2]),
    ("group==urn:ngsi-ld:Group:1", [1, 3, 5]),
    ("height", [0, 1, 2, 3, 4, 5]),
    ("!height", []),
    ("(height<7|height>10);state==\"on\"", [0]),
])
def test_q_selects(client: Client, uid: str, expr: str, wanted: list[int]) -> None:
    t, made = lamps(client, uid)
    reply = client.get(f"{ENTITIES}?type={t}&q={q(expr)}")
    assert ids_of(reply) == [made[i] for i in wanted]


@pytest.mark.clause("4.17")
def test_type_expressions(client: Client, uid: str) -> None:
    a, b = kind("A", uid), kind("B", uid)
    create(client, entity(eid("X", uid, 1), a))
    create(client, {"id": eid("X", uid, 2), "type": [a, b]})
    create(client, entity(eid("X", uid, 3), b))
    assert ids_of(client.get(f"{ENTITIES}?type={a},{b}")) == [eid("X", uid, n) for n in (1, 2, 3)]
    assert ids_of(client.get(f"{ENTITIES}?type={q(a + '|' + b)}")) == [
        eid("X", uid, n) for n in (1, 2, 3)]
    assert ids_of(client.get(f"{ENTITIES}?type={q(a + ';' + b)}")) == [eid("X", uid, 2)]


@pytest.mark.clause("5.7.2")
def test_id_list_and_id_pattern(client: Client, uid: str) -> None:
    t, made = lamps(client, uid)
    reply = client.get(f"{ENTITIES}?type={t}&id={made[4]},{made[1]}")
    assert ids_of(reply) == [made[1], made[4]]
    pattern = q(f"^urn:ngsi-ld:Lamp:{uid}-[0-2]$")
    assert ids_of(client.get(f"{ENTITIES}?type={t}&idPattern={pattern}")) == made[:3]
    # Table 6.4.3.2-1: ids or idPattern alone are too broad, unless the query is local
    assert is_problem(client.get(f"{ENTITIES}?id={made[4]},{made[1]}"), 400, BAD_DATA)
    assert is_problem(client.get(f"{ENTITIES}?idPattern={pattern}"), 400, BAD_DATA)
    assert ids_of(client.get(f"{ENTITIES}?idPattern={pattern}&local=true")) == made[:3]


@pytest.mark.clause("5.7.2")
def test_attrs_selects_and_projects(client: Client, uid: str) -> None:
    t, made = lamps(client, uid, 2)
    create(client, entity(eid("Lamp", uid, "bare"), t))
    reply = client.get(f"{ENTITIES}?type={t}&attrs=height")
    assert ids_of(reply) == made
    assert all(set(item) == {"id", "type", "height"} for item in reply.json)


@pytest.mark.clause("5.7.2")
def test_names_are_expanded_with_the_link_context(
    client: Client, uid: str, context_server: Any
) -> None:
    url = context_server.add(f"/q{uid}.jsonld", {"@context": {
        "Hot": "https://example.org/Hot" + uid, "temp": "https://example.org/temp"}})
    headers = {"Link": link(url)}
    create(client, entity(eid("H", uid), "Hot", temp=prop(30)), headers=headers)
    reply = client.get(f"{ENTITIES}?type=Hot&q=temp>20", headers=headers)
    assert ids_of(reply) == [eid("H", uid)]
    assert reply.json[0]["type"] == "Hot" and reply.json[0]["temp"]["value"] == 30
    # without the context the short names mean other IRIs
    assert ids_of(client.get(f"{ENTITIES}?type=Hot&q=temp>20")) == []


@pytest.mark.clause("4.19")
def test_scope_query(client: Client, uid: str) -> None:
    t = kind("S", uid)
    create(client, {**entity(eid("S", uid, 1), t), "scope": "/Madrid/Gardens"})
    create(client, {**entity(eid("S", uid, 2), t), "scope": ["/Madrid/Parks", "/Bonn"]})
    create(client, entity(eid("S", uid, 3), t))
    assert ids_of(client.get(f"{ENTITIES}?type={t}&scopeQ=/Madrid/%23")) == [
        eid("S", uid, 1), eid("S", uid, 2)]
    assert ids_of(client.get(f"{ENTITIES}?scopeQ=/Madrid/Gardens&type={t}")) == [eid("S", uid, 1)]


@pytest.mark.clause("6.3.10")
def test_paging_is_stable_with_links(client: Client, uid: str) -> None:
    t, made = lamps(client, uid, 7)
    seen: list[str] = []
    path = f"{ENTITIES}?type={t}&limit=3"
    for _ in range(5):
        reply = client.get(path)
        seen += ids_of(reply)
        nexts = [m for m in re.findall(r'<([^>]*)>;\s*rel="next"', reply.header("Link") or "")]
        if not nexts:
            break
        path = nexts[0][nexts[0].index("/ngsi-ld/"):]
    assert seen == sorted(made)
    reply = client.get(f"{ENTITIES}?type={t}&limit=3&offset=3")
    assert ids_of(reply) == sorted(made)[3:6]
    assert 'rel="prev"' in (reply.header("Link") or "")


@pytest.mark.clause("6.3.13")
def test_count_header_and_count_only(client: Client, uid: str) -> None:
    t, _ = lamps(client, uid, 5)
    reply = client.get(f"{ENTITIES}?type={t}&q=height>7&count=true&limit=1")
    assert reply.header("NGSILD-Results-Count") == "3"
    assert len(ids_of(reply)) == 1
    reply = client.get(f"{ENTITIES}?type={t}&count=true&limit=0")
    assert reply.status == 200 and reply.json == []
    assert reply.header("NGSILD-Results-Count") == "5"
    assert client.get(f"{ENTITIES}?type={t}").header("NGSILD-Results-Count") is None


@pytest.mark.clause("6.3.10")
def test_default_page_size_applies(client: Client, uid: str) -> None:
    t = kind("Many", uid)
    reply = client.post("/ngsi-ld/v1/entityOperations/create",
                        [entity(eid("M", uid, f"{n:02d}"), t) for n in range(25)])
    assert reply.status in (201, 204), reply.raw
    assert len(ids_of(client.get(f"{ENTITIES}?type={t}"))) == 20


@pytest.mark.clause("5.7.2")
def test_key_values_and_concise(client: Client, uid: str) -> None:
    t, _ = lamps(client, uid, 1)
    item = client.get(f"{ENTITIES}?type={t}&options=keyValues").json[0]
    assert item["height"] == 6 and item["state"] == "on"
    item = client.get(f"{ENTITIES}?type={t}&format=concise").json[0]
    assert item["height"] == {"value": 6} or item["height"] == 6


@pytest.mark.clause("5.7.2")
def test_ld_json_puts_context_in_each_entity(client: Client, uid: str) -> None:
    t, _ = lamps(client, uid, 2)
    reply = client.get(f"{ENTITIES}?type={t}", headers={"Accept": "application/ld+json"})
    assert reply.status == 200
    assert all("@context" in item for item in reply.json)


@pytest.mark.clause("5.7.2")
def test_post_query(client: Client, uid: str) -> None:
    t, made = lamps(client, uid)
    other = kind("Other", uid)
    create(client, entity(eid("O", uid), other, height=prop(100)))
    body = {"type": "Query", "entities": [{"type": t}, {"type": other}], "q": "height>9"}
    assert ids_of(client.post(QUERY, body)) == [made[4], made[5], eid("O", uid)]
    body = {"type": "Query", "entities": [{"id": made[0], "type": t}], "attrs": ["state"]}
    reply = client.post(QUERY + "?options=keyValues", body)
    assert reply.json == [{"id": made[0], "type": t, "state": "on"}]
    reply = client.post(QUERY + "?count=true&limit=2", {"type": "Query", "entities": [{"type": t}]})
    assert ids_of(reply) == made[:2] and reply.header("NGSILD-Results-Count") == "6"


@pytest.mark.clause("5.7.2")
def test_post_query_with_many_id_selectors(client: Client, uid: str) -> None:
    t, made = lamps(client, uid, 8)
    other = kind("Other", uid)
    create(client, entity(eid("O", uid), other, height=prop(1)))
    # Table 5.2.33-1: a selector always names a type, "*" for any type
    selectors = [{"id": made[i], "type": "*"} for i in (5, 1, 5)]  # any order, repeated
    selectors += [{"id": made[i], "type": t} for i in (2, 3)]
    selectors += [{"id": made[4], "type": other}]  # wrong type: not selected
    selectors += [{"id": f"urn:ngsi-ld:Lamp:{uid}:missing{i}", "type": t} for i in range(200)]
    selectors += [{"id": eid("O", uid), "type": f"{other}|{t}"}]
    body = {"type": "Query", "entities": selectors, "attrs": ["height"]}
    reply = client.post(QUERY + "?count=true&limit=3", body)
    expected = sorted([made[1], made[2], made[3], made[5], eid("O", uid)])
    assert ids_of(reply) == expected[:3] and reply.header("NGSILD-Results-Count") == "5"
    reply = client.post(QUERY + "?limit=3&offset=3", body)
    assert ids_of(reply) == expected[3:]
    body["q"] = "height>7"
    assert ids_of(client.post(QUERY, body)) == [made[2], made[3], made[5]]


@pytest.mark.clause("5.7.2")
@pytest.mark.parametrize(("params", "members"), [
    ("?options=keyValues,concise", {}),
    ("", {"pick": ["state"], "omit": ["height"]}),
])
def test_post_query_view_conflicts_are_400(
    client: Client, uid: str, params: str, members: dict[str, Any]
) -> None:
    body = {"type": "Query", "entities": [{"type": kind("Lamp", uid)}], **members}
    assert is_problem(client.post(QUERY + params, body), 400, BAD_DATA)


@pytest.mark.clause("5.7.2")
@pytest.mark.parametrize("body", [
    {"entities": [{"type": "T"}]},
    {"type": "Query"},
    {"type": "Query", "entities": []},
    {"type": "Query", "entities": [{"type": "T"}], "q": "a=="},
    {"type": "Query", "entities": [{"type": "T"}], "geoQ": {"georel": "near;maxDistance==1",
                                                            "geometry": "Point"}},
    ["not", "an", "object"],
])
def test_bad_post_query_is_400(client: Client, body: Any) -> None:
    assert is_problem(client.post(QUERY, body), 400, BAD_DATA, ERR + "InvalidRequest")


@pytest.mark.clause("5.7.2")
@pytest.mark.parametrize("query", [
    "",
    "limit=10",
    "options=keyValues",
])
def test_query_without_selector_is_400(client: Client, query: str) -> None:
    assert is_problem(client.get(f"{ENTITIES}?{query}"), 400, BAD_DATA)


@pytest.mark.clause("4.9")
def test_malformed_q_names_the_position(client: Client) -> None:
    reply = client.get(f"{ENTITIES}?type=T&q={q('a==1;;b==2')}")
    assert is_problem(reply, 400, BAD_DATA)
    assert re.search(r"\d", reply.json["detail"])


@pytest.mark.clause("6.3.10")
@pytest.mark.parametrize("param", ["limit=-1", "limit=abc", "offset=-3", "offset=1.5",
                                   "limit=0"])
def test_bad_paging_is_400(client: Client, param: str) -> None:
    assert is_problem(client.get(f"{ENTITIES}?type=T&{param}"), 400, BAD_DATA)


@pytest.mark.clause("6.3.20")
@pytest.mark.parametrize("param", ["options=fancy", "options=keyValues,fancy", "format=fancy"])
def test_an_invalid_option_or_format_is_invalid_request(client: Client, param: str) -> None:
    assert is_problem(client.get(f"{ENTITIES}?type=T&{param}"), 400, INVALID)


@pytest.mark.clause("6.3.10")
def test_limit_over_the_maximum_is_403(client: Client) -> None:
    reply = client.get(f"{ENTITIES}?type=T&limit=1000000")
    assert is_problem(reply, 403, ERR + "TooManyResults")


@pytest.mark.clause("4.9")
@pytest.mark.parametrize("param", ["idPattern=" + q("urn:(("), "q=" + q('a~="[z"')])
def test_invalid_regex_is_400(client: Client, param: str) -> None:
    assert is_problem(client.get(f"{ENTITIES}?type=T&{param}"), 400, BAD_DATA)


@pytest.mark.clause("4.9")
def test_catastrophic_regex_is_answered_or_refused_not_hung(client: Client, uid: str) -> None:
    t = kind("R", uid)
    create(client, entity(eid("R", uid), t, text=prop("a" * 50 + "!")))
    # a linear-time engine answers what a backtracking one could not
    linear, fallback = q('text~="(a|aa)+$"'), q('text~="(?=a)(a|aa)+$"')
    reply = client.get(f"{ENTITIES}?type={t}&q={linear}")
    assert reply.status == 200 and reply.json == []
    # a look-ahead needs the backtracking engine: bounded by a time-out per match
    reply = client.get(f"{ENTITIES}?type={t}&q={fallback}")
    assert is_problem(reply, 403, ERR + "TooComplexQuery")


@pytest.mark.clause("5.7.2")
def test_repeated_query_sees_every_write(client: Client, uid: str) -> None:
    t, made = lamps(client, uid, 2)
    path = f"{ENTITIES}?type={t}&q={q('height>=7')}"
    assert ids_of(client.get(path)) == [made[1]]
    assert ids_of(client.get(path)) == [made[1]]
    assert client.patch(f"{ENTITIES}/{made[0]}/attrs", {"height": prop(9)}).status == 204
    assert ids_of(client.get(path)) == made
    assert client.delete(f"{ENTITIES}/{made[1]}").status == 204
    assert ids_of(client.get(path)) == [made[0]]


@pytest.mark.clause("5.7.2")
def test_pick_omit_and_dataset_id(client: Client, uid: str) -> None:
    t = kind("D", uid)
    create(client, entity(eid("D", uid), t, speed=[prop(1), prop(2, datasetId="urn:ngsi-ld:ds:b")],
                          colour=prop("red")))
    item = client.get(f"{ENTITIES}?type={t}&pick=id,speed").json[0]
    assert set(item) == {"id", "speed"}
    item = client.get(f"{ENTITIES}?type={t}&omit=speed").json[0]
    assert set(item) == {"id", "type", "colour"}
    # datasetId: only the instances of that dataset count, for the selection and the output
    reply = client.get(f"{ENTITIES}?type={t}&q=speed==2&datasetId=urn:ngsi-ld:ds:b")
    assert ids_of(reply) == [eid("D", uid)]
    assert reply.json[0]["speed"]["value"] == 2
    assert ids_of(client.get(f"{ENTITIES}?type={t}&q=speed==2&datasetId=@none")) == []


@pytest.mark.clause("4.15")
def test_lang_picks_one_language(client: Client, uid: str) -> None:
    t = kind("L", uid)
    create(client, entity(eid("L", uid), t, name={"type": "LanguageProperty",
                                                  "languageMap": {"en": "Bridge", "fr": "Pont"}}))
    expr = q('name[fr]=="Pont"')
    reply = client.get(f"{ENTITIES}?type={t}&lang=fr&q={expr}")
    assert ids_of(reply) == [eid("L", uid)]
    assert reply.json[0]["name"]["type"] == "Property"
    assert reply.json[0]["name"]["value"] == "Pont"

"""5.7.2 Query Entities: what the request may and must carry (Table 6.4.3.2-1 and 5.2.23),
paging links (4.12, 6.3.10) and the conventions real clients rely on."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from conformance.client import CORE_CONTEXT, Client
from conformance.data import BAD_DATA, ENTITIES, create, eid, entity, is_problem, prop

QUERY = "/ngsi-ld/v1/entityOperations/query"


def ids_of(reply: Any) -> list[str]:
    assert reply.status == 200, (reply.status, reply.raw)
    return [item["id"] for item in reply.json]


def three(client: Client, uid: str) -> tuple[str, list[str]]:
    kind = f"P{uid}"
    made = [eid("P", uid, n) for n in range(3)]
    for n, entity_id in enumerate(made):
        create(client, entity(entity_id, kind, n=prop(n)))
    return kind, made


def page_links(reply: Any) -> dict[str, str]:
    """rel -> the whole link (URL and parameters) of the paging links of an answer."""
    found = {}
    for part in (reply.header("Link") or "").split(","):
        rel = re.search(r'rel="(prev|next)"', part)
        if rel:
            found[rel.group(1)] = part.strip()
    return found


@pytest.mark.clause("4.12")
def test_paging_links_name_the_resource_with_sorted_parameters(client: Client, uid: str) -> None:
    kind, made = three(client, uid)
    pattern = f"urn:ngsi-ld:P:{uid}.*"
    reply = client.get(f"{ENTITIES}/?type={kind}&idPattern={quote(pattern)}&count=true"
                       "&limit=1&offset=1")
    assert ids_of(reply) == [made[1]]
    links = page_links(reply)
    base = f"/ngsi-ld/v1/entities?count=true&idPattern={pattern}"
    assert links["prev"] == (f'<{base}&limit=1&offset=0&type={kind}>; rel="prev"; '
                             'type="application/json"')
    assert links["next"] == (f'<{base}&limit=1&offset=2&type={kind}>; rel="next"; '
                             'type="application/json"')
    last = client.get(f"{ENTITIES}?type={kind}&limit=2&offset=2")
    assert ids_of(last) == [made[2]] and set(page_links(last)) == {"prev"}


@pytest.mark.clause("6.3.10")
def test_paging_links_keep_parameters_that_need_encoding(client: Client, uid: str) -> None:
    kind, made = three(client, uid)
    reply = client.get(f"{ENTITIES}?type={kind}&q={quote('n>=0;n<5')}&limit=1")
    nxt = page_links(reply)["next"]
    path = nxt[nxt.index("<") + 1:nxt.index(">")]
    assert ids_of(client.get(path)) == [made[1]]


@pytest.mark.clause("6.3.13")
def test_options_count_means_count_true(client: Client, uid: str) -> None:
    kind, _ = three(client, uid)
    reply = client.get(f"{ENTITIES}?type={kind}&options=count&limit=1")
    assert reply.status == 200 and reply.header("NGSILD-Results-Count") == "3"
    reply = client.get(f"{ENTITIES}?type={kind}&options=keyValues,count&limit=0")
    assert reply.json == [] and reply.header("NGSILD-Results-Count") == "3"


@pytest.mark.clause("4.17")
def test_type_wildcard_selects_every_type(client: Client, uid: str) -> None:
    create(client, entity(eid("WA", uid), f"A{uid}"))
    create(client, entity(eid("WB", uid), f"B{uid}"))
    pattern = quote(f"urn:ngsi-ld:W[AB]:{uid}")
    assert ids_of(client.get(f"{ENTITIES}?type=*&idPattern={pattern}")) == [
        eid("WA", uid), eid("WB", uid)]
    assert ids_of(client.get(f"{ENTITIES}?type=*&local=true&idPattern={pattern}")) == [
        eid("WA", uid), eid("WB", uid)]
    # "*" implies local=true, which cannot then be false
    assert is_problem(client.get(f"{ENTITIES}?type=*&local=false"), 400, BAD_DATA)


@pytest.mark.clause("5.7.2")
def test_local_query_needs_no_selector(client: Client, uid: str) -> None:
    kind, made = three(client, uid)
    reply = client.get(f"{ENTITIES}?local=true&idPattern={quote(f'urn:ngsi-ld:P:{uid}')}")
    assert ids_of(reply) == made
    assert client.get(f"{ENTITIES}?local=true&limit=1").status == 200
    assert is_problem(client.get(f"{ENTITIES}?id={made[0]}"), 400, BAD_DATA)
    assert is_problem(client.get(f"{ENTITIES}?scopeQ=/a"), 400, BAD_DATA)
    assert is_problem(client.get(f"{ENTITIES}?local=maybe&type={kind}"), 400, BAD_DATA)


@pytest.mark.clause("5.7.2")
@pytest.mark.parametrize("attrs", ["id", "type", "id,type", "n,type"])
def test_attrs_naming_entity_members_is_400(client: Client, attrs: str) -> None:
    assert is_problem(client.get(f"{ENTITIES}?type=T&attrs={attrs}"), 400, BAD_DATA)


@pytest.mark.clause("5.7.2")
def test_geometry_property_needs_the_geojson_representation(client: Client, uid: str) -> None:
    kind, _ = three(client, uid)
    path = f"{ENTITIES}?type={kind}&geometryProperty=location"
    assert is_problem(client.get(path, headers={"Accept": "application/json"}), 400, BAD_DATA)
    reply = client.get(path, headers={"Accept": "application/geo+json"})
    assert reply.status == 200 and reply.json["type"] == "FeatureCollection"
    # 4.5.16.3: the collection carries the @context, its features do not
    assert reply.json["@context"] == CORE_CONTEXT
    assert all("@context" not in feature for feature in reply.json["features"])
    body = {"type": "Query", "entities": [{"type": kind}, {"type": f"Other{uid}"}]}
    reply = client.post(QUERY, body, headers={"Accept": "application/geo+json"})
    assert reply.status == 200 and "@context" in reply.json


@pytest.mark.clause("5.2.33")
def test_post_selector_takes_an_id_array_and_needs_a_type(client: Client, uid: str) -> None:
    kind, made = three(client, uid)
    body = {"type": "Query", "entities": [{"type": kind, "id": [made[2], made[0]]}]}
    assert ids_of(client.post(QUERY, body)) == [made[0], made[2]]
    for selector in ({"id": made[0]}, {"type": kind, "id": [made[0], 5]},
                     {"type": kind, "id": "not a uri"}, {"type": kind, "id": []}):
        body = {"type": "Query", "entities": [selector]}
        assert is_problem(client.post(QUERY, body), 400, BAD_DATA), selector


@pytest.mark.clause("5.2.23")
def test_post_query_refuses_temporal_q(client: Client, uid: str) -> None:
    body = {"type": "Query", "entities": [{"type": f"T{uid}"}],
            "temporalQ": {"timerel": "after", "timeAt": "2020-01-01T00:00:00Z"}}
    assert is_problem(client.post(QUERY, body), 400, BAD_DATA)


@pytest.mark.clause("4.21")
@pytest.mark.parametrize("params", [
    "pick=id;name", "pick=id,locatedAt{name", "pick=id,locatedAt{{name}", "pick=id,,name",
    "pick=id,locatedAt{,name}", "pick=id,locatedAt{}", "omit=name;id",
    "pick=name&attrs=name", "omit=name&attrs=name",
    "pick=id,locatedAt{name}",  # a Linked Entity projection needs join
])
def test_bad_projections_are_400(client: Client, params: str) -> None:
    assert is_problem(client.get(f"{ENTITIES}?type=T&{params}"), 400, BAD_DATA)


@pytest.mark.clause("4.21")
def test_pick_leaves_out_entities_it_empties(client: Client, uid: str) -> None:
    kind = f"K{uid}"
    create(client, entity(eid("K", uid, 1), kind, name=prop("a"), x=prop(1)))
    create(client, entity(eid("K", uid, 2), kind, x=prop(2)))
    reply = client.get(f"{ENTITIES}?type={kind}&pick=name")
    assert reply.status == 200 and reply.json == [{"name": {"type": "Property", "value": "a"}}]
    assert client.get(f"{ENTITIES}?type={kind}&pick=id|x").json == [
        {"id": eid("K", uid, 1), "x": {"type": "Property", "value": 1}},
        {"id": eid("K", uid, 2), "x": {"type": "Property", "value": 2}}]
    body = {"type": "Query", "entities": [{"type": kind}], "pick": ["name"]}
    assert client.post(QUERY, body).json == [{"name": {"type": "Property", "value": "a"}}]


@pytest.mark.clause("5.7.2")
@pytest.mark.parametrize("params", [
    "attrs=createdAt", "q=" + quote('modifiedAt>"2020-01-01T00:00:00Z"'),
    "type=T&csf=" + quote("))bad(("),
])
def test_too_wide_or_invalid_selection_is_400(client: Client, params: str) -> None:
    # 5.7.2.4: system attributes alone do not narrow a query; csf must be valid
    assert is_problem(client.get(f"{ENTITIES}?{params}"), 400, BAD_DATA)


@pytest.mark.clause("5.7.2")
def test_a_valid_context_source_filter_is_accepted(client: Client, uid: str) -> None:
    kind, made = three(client, uid)
    assert ids_of(client.get(f"{ENTITIES}?type={kind}&csf={quote('mode==push')}")) == made

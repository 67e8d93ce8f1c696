"""4.5.23 Linked Entity retrieval: join=inline|flat, joinLevel, containedBy, with 4.21 projections.

Retrieve Entity (5.7.1) and Query Entities (5.7.2, GET and POST).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from conformance.client import Client
from conformance.data import (
    BAD_DATA,
    ENTITIES,
    create,
    eid,
    entity,
    get,
    is_problem,
    prop,
    rel,
    stored,
)

QUERY = "/ngsi-ld/v1/entityOperations/query"


def chain(client: Client, uid: str) -> tuple[str, str, str]:
    """Building -locatedAt-> City -isInCountry-> Country; ids of the three."""
    building, city, country = eid("Building", uid), eid("City", uid), eid("Country", uid)
    create(client, entity(building, "Building", name=prop("Tower"), locatedAt=rel(city)))
    create(client, entity(city, "City", name=prop("Paris"), description=prop("capital"),
                          isInCountry=rel(country)))
    create(client, entity(country, "Country", name=prop("France")))
    return building, city, country


@pytest.mark.clause("4.5.23.2")
def test_inline_adds_the_linked_entity_to_the_relationship(client: Client, uid: str) -> None:
    building, city, _ = chain(client, uid)
    got = stored(client, building, "join=inline")
    assert got["locatedAt"]["object"] == city
    linked = got["locatedAt"]["entity"]
    assert linked["id"] == city and linked["name"] == prop("Paris")
    # joinLevel defaults to 1: the city's own relationship is not followed
    assert "entity" not in linked["isInCountry"]


@pytest.mark.clause("4.5.23.2")
def test_inline_two_levels_and_simplified(client: Client, uid: str) -> None:
    building, city, country = chain(client, uid)
    got = stored(client, building, "join=inline&joinLevel=2")
    assert got["locatedAt"]["entity"]["isInCountry"]["entity"]["id"] == country
    simple = stored(client, building, "join=inline&joinLevel=2&options=keyValues")
    # 4.5.4: simplified, the relationship is the linked entity itself
    assert simple["locatedAt"] == {"id": city, "type": "City", "name": "Paris",
                                   "description": "capital",
                                   "isInCountry": {"id": country, "type": "Country",
                                                   "name": "France"}}


@pytest.mark.clause("4.5.23.3")
def test_flat_is_an_array_of_the_entity_and_its_linked_entities(client: Client, uid: str) -> None:
    building, city, country = chain(client, uid)
    got = get(client, building, "join=flat&joinLevel=2&options=keyValues").json
    assert [e["id"] for e in got] == [building, city, country]
    assert got[0]["locatedAt"] == city  # relationships keep their object
    # 4.5.23.3 "always an array": also when no linked entity is held here
    lonely = eid("Building", uid, 2)
    create(client, entity(lonely, "Building", locatedAt=rel("urn:ngsi-ld:City:nowhere")))
    assert [e["id"] for e in get(client, lonely, "join=flat").json] == [lonely]


@pytest.mark.clause("4.5.23.1")
def test_a_target_not_held_here_is_not_linked(client: Client, uid: str) -> None:
    building = eid("Building", uid)
    create(client, entity(building, "Building", locatedAt=rel("urn:ngsi-ld:City:nowhere")))
    got = stored(client, building, "join=inline")
    assert got["locatedAt"] == rel("urn:ngsi-ld:City:nowhere")
    assert stored(client, building, "join=inline&options=keyValues")["locatedAt"] == \
        "urn:ngsi-ld:City:nowhere"


@pytest.mark.clause("4.5.23.1")
def test_loops_stop_and_flat_lists_each_entity_once(client: Client, uid: str) -> None:
    a, b = eid("Node", uid, "a"), eid("Node", uid, "b")
    create(client, entity(a, "Node", next=rel(b)))
    create(client, entity(b, "Node", next=rel(a), prev=rel(a)))
    inline = stored(client, a, "join=inline&joinLevel=5")
    linked_b = inline["next"]["entity"]
    assert linked_b["id"] == b
    assert "entity" not in linked_b["next"] and "entity" not in linked_b["prev"]
    flat = get(client, a, "join=flat&joinLevel=5").json
    assert [e["id"] for e in flat] == [a, b]


@pytest.mark.clause("4.5.23")
def test_contained_by_entities_are_not_retrieved_again(client: Client, uid: str) -> None:
    building, city, _country = chain(client, uid)
    got = get(client, building, f"join=flat&joinLevel=2&containedBy={city}").json
    assert [e["id"] for e in got] == [building]


@pytest.mark.clause("4.5.23.2")
def test_list_relationships_and_object_arrays_link_every_target(client: Client, uid: str) -> None:
    route, s1, s2 = eid("Route", uid), eid("Stop", uid, 1), eid("Stop", uid, 2)
    for stop in (s1, s2):
        create(client, entity(stop, "Stop"))
    create(client, entity(route, "Route",
                          stops={"type": "ListRelationship", "objectList": [s2, s1]},
                          ends=rel([s1, "urn:ngsi-ld:Stop:gone", s2])))
    got = stored(client, route, "join=inline")
    assert [e["id"] for e in got["stops"]["entityList"]] == [s2, s1]
    assert [e["id"] for e in got["ends"]["entity"]] == [s1, s2]
    simple = stored(client, route, "join=inline&options=keyValues")
    assert [e["id"] for e in simple["stops"]] == [s2, s1]
    assert [e if isinstance(e, str) else e["id"] for e in simple["ends"]] == \
        [s1, "urn:ngsi-ld:Stop:gone", s2]


@pytest.mark.clause("4.21")
def test_pick_selects_in_the_linked_entities(client: Client, uid: str) -> None:
    building, city, country = chain(client, uid)
    got = stored(client, building, "join=inline&joinLevel=2&pick=id,locatedAt{id,name}")
    assert got == {"id": building, "locatedAt": {
        **rel(city), "entity": {"id": city, "name": prop("Paris")}}}
    deeper = get(client, building,
                 "join=flat&joinLevel=2&pick=id,locatedAt{name,isInCountry{name}}").json
    assert deeper == [
        {"id": building, "locatedAt": rel(city)},
        {"name": prop("Paris"), "isInCountry": rel(country)},
        {"name": prop("France")},
    ]


@pytest.mark.clause("4.21")
def test_omit_in_braces_omits_in_the_linked_entity_only(client: Client, uid: str) -> None:
    building, city, _country = chain(client, uid)
    got = stored(client, building, "join=inline&joinLevel=2&omit=type,locatedAt{name}")
    assert "type" not in got and got["locatedAt"]["object"] == city
    linked = got["locatedAt"]["entity"]
    assert "name" not in linked and linked["type"] == "City"
    assert linked["isInCountry"]["entity"]["name"] == prop("France")  # no omit down there


@pytest.mark.clause("5.7.1.4")
@pytest.mark.parametrize("query", [
    "pick=locatedAt{name}",                          # no join
    "join=@none&pick=locatedAt{name}",
    "join=inline&joinLevel=1&omit=locatedAt{isInCountry{name}}",   # deeper than joinLevel
    "join=sideways",
    "join=inline&joinLevel=0",
    "join=inline&joinLevel=x",
    "join=flat&containedBy=not-a-uri",
])
def test_bad_linked_entity_requests_are_bad_request_data(client: Client, uid: str,
                                                         query: str) -> None:
    building, _, _ = chain(client, uid)
    assert is_problem(get(client, building, query), 400, BAD_DATA)


@pytest.mark.clause("4.5.23.3")
def test_flat_geojson_is_a_feature_collection(client: Client, uid: str) -> None:
    building, city, _ = chain(client, uid)
    got = get(client, building, "join=flat", headers={"Accept": "application/geo+json"}).json
    assert got["type"] == "FeatureCollection"
    assert [f["id"] for f in got["features"]] == [building, city]


def _ids(reply: Any) -> list[str]:
    assert reply.status == 200, (reply.status, reply.raw)
    return [item["id"] for item in reply.json]


@pytest.mark.clause("5.7.2")
def test_query_inline_and_flat(client: Client, uid: str) -> None:
    building, city, country = chain(client, uid)
    other = eid("Building", uid, 2)
    create(client, entity(other, "Building", locatedAt=rel(city)))
    kind = "type=Building&q=locatedAt==%22" + city + "%22"
    inline = client.get(f"{ENTITIES}?{kind}&join=inline")
    assert _ids(inline) == [building, other]
    assert all(e["locatedAt"]["entity"]["id"] == city for e in inline.json)
    # flat: the page's entities, then each linked entity once
    flat = client.get(f"{ENTITIES}?{kind}&join=flat&joinLevel=2&count=true")
    assert _ids(flat) == [building, other, city, country]
    assert flat.header("NGSILD-Results-Count") == "2"  # the matching entities only
    # paging pages the linking entities
    page = client.get(f"{ENTITIES}?{kind}&join=flat&limit=1")
    assert _ids(page) == [building, city]


@pytest.mark.clause("5.2.23")
def test_query_post_takes_join_from_the_body(client: Client, uid: str) -> None:
    building, city, _country = chain(client, uid)
    body = {"type": "Query", "entities": [{"id": building, "type": "Building"}],
            "join": "flat", "joinLevel": 2, "pick": ["id", "locatedAt{id}"]}
    reply = client.post(QUERY, body)
    assert reply.json == [{"id": building, "locatedAt": rel(city)}, {"id": city}]
    # other cases made Buildings too: select this one, or it may be past the first page
    body = {"type": "Query", "entities": [{"type": "Building", "idPattern": f".*{uid}.*"}],
            "join": "inline"}
    linked = [e for e in client.post(QUERY, body).json if e["id"] == building]
    assert linked[0]["locatedAt"]["entity"]["id"] == city
    for bad in ({"joinLevel": 0}, {"joinLevel": "2"}, {"join": "both"},
                {"pick": "locatedAt{name}", "join": "@none"}):
        body = {"type": "Query", "entities": [{"type": "Building"}], "join": "inline", **bad}
        assert is_problem(client.post(QUERY, body), 400, BAD_DATA), bad


def buildings_where(client: Client, q: str, extra: str = "&join=inline") -> Any:
    return client.get(f"{ENTITIES}?type=Building&q={quote(q, safe='')}{extra}")


@pytest.mark.clause("4.9")
def test_q_on_linked_entity_attributes(client: Client, uid: str) -> None:
    building, _, _ = chain(client, uid)
    other = eid("Building", uid, 2)
    create(client, entity(other, "Building", locatedAt=rel(eid("City", uid, "none"))))
    mine = f"&idPattern={uid}&join=inline"  # other cases made Buildings too

    def where(q: str, extra: str = "") -> list[str]:
        return _ids(buildings_where(client, q, mine + extra))

    assert where('locatedAt{name}=="Paris"') == [building]
    # EXAMPLE 14: a type hint restricts the linked entities considered
    assert where('locatedAt{City:name}=="Paris"') == [building]
    assert where('locatedAt{Country:name}=="Paris"') == []
    # two hops need joinLevel 2
    assert where('locatedAt{isInCountry{name}}=="France"', "&joinLevel=2") == [building]
    # an existence check, negated, and together with an ordinary term
    assert where('locatedAt{description};name=="Tower"') == [building]
    assert where("!locatedAt{description}") == [other]
    body = {"type": "Query", "entities": [{"type": "Building", "idPattern": uid}],
            "join": "flat", "q": 'locatedAt{name}=="Paris"'}
    assert _ids(client.post(QUERY, body))[0] == building


@pytest.mark.clause("5.7.2.4")
@pytest.mark.parametrize("q, extra", [
    ('locatedAt{name}=="Paris"', ""),                                # no join: too deep
    ("locatedAt{isInCountry{name}}", "&join=inline&joinLevel=1"),    # deeper than joinLevel
    ("locatedAt.name{x}==1", "&join=inline"),                        # not after a Relationship
])
def test_q_on_linked_entities_needs_a_deep_enough_join(client: Client, q: str,
                                                       extra: str) -> None:
    assert is_problem(buildings_where(client, q, extra), 400, BAD_DATA)

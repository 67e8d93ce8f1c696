"""4.23 Entity ordering: orderBy, orderFrom/orderGeometry and collation on GET /entities,
the ``ordering`` member (OrderingParams, 5.2.43) of POST /entityOperations/query."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from conformance.client import Client
from conformance.data import BAD_DATA, ENTITIES, create, eid, entity, is_problem, prop

QUERY = "/ngsi-ld/v1/entityOperations/query"


def ids_of(reply: Any) -> list[str]:
    assert reply.status == 200, (reply.status, reply.raw)
    return [item["id"] for item in reply.json]


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def buildings(client: Client, uid: str) -> tuple[str, dict[str, str]]:
    """Four entities created in the order c, a, d, b (ids sort a, b, c, d)."""
    kind = f"O{uid}"
    ids = {n: eid("O", uid, n) for n in "abcd"}
    create(client, entity(ids["c"], kind, name=prop("Cedar", rank=prop(2)), rank=prop(1),
                          location=point(10, 45), address=prop({"city": "Zurich"})))
    create(client, entity(ids["a"], kind, name=prop("apple", rank=prop(3)), rank=prop("x"),
                          location=point(8.01, 40.01), address=prop({"city": "Amsterdam"})))
    create(client, entity(ids["d"], kind, name=prop("Banana", rank=prop(1)), rank=prop(7),
                          location=point(9, 41), address=prop({"city": "Berlin"})))
    create(client, entity(ids["b"], kind, name=prop("ápple", rank=prop(4))))
    return kind, ids


def ordered(client: Client, kind: str, order: str, extra: str = "") -> list[str]:
    return ids_of(client.get(f"{ENTITIES}?type={kind}&orderBy={quote(order)}{extra}"))


@pytest.mark.clause("4.23")
def test_order_by_value_member_and_direction(client: Client, uid: str) -> None:
    kind, ids = buildings(client, uid)
    a, b, c, d = (ids[n] for n in "abcd")
    # code point order by default: upper case before lower case, "á" after "a".."z"
    assert ordered(client, kind, "name") == [d, c, a, b]
    assert ordered(client, kind, "name;asc") == [d, c, a, b]
    assert ordered(client, kind, "name;desc") == [b, a, c, d]
    assert ordered(client, kind, "id;desc") == [d, c, b, a]
    # creations in the same millisecond tie on createdAt and fall back on the id:
    # the expected orders come from the timestamps the broker gave
    got = client.get(f"{ENTITIES}?type={kind}&options=sysAttrs").json
    created = sorted((e["createdAt"], e["id"]) for e in got)
    assert ordered(client, kind, "createdAt") == [i for _, i in created]
    # descending on the timestamp; equal timestamps stay in id order
    named = sorted(got, key=lambda e: e["id"])
    named.sort(key=lambda e: e["name"]["createdAt"], reverse=True)
    assert ordered(client, kind, "name.createdAt;desc") == [e["id"] for e in named]
    assert ordered(client, kind, "name.rank") == [d, c, a, b]
    assert ordered(client, kind, "address[city];desc") == [c, d, a, b]


@pytest.mark.clause("4.23.2")
def test_mixed_datatypes_rank_numbers_strings_then_absent(client: Client, uid: str) -> None:
    kind, ids = buildings(client, uid)
    a, b, c, d = (ids[n] for n in "abcd")
    assert ordered(client, kind, "rank") == [c, d, a, b]
    # descending reverses the values; an absent attribute stays last
    assert ordered(client, kind, "rank;desc") == [a, d, c, b]
    # equal on the first term: the next one decides, then the id
    assert ordered(client, kind, "type,location;dist-asc", "&orderFrom=[8,40]") == [a, d, c, b]


@pytest.mark.clause("4.23.3")
def test_order_by_distance(client: Client, uid: str) -> None:
    kind, ids = buildings(client, uid)
    a, b, c, d = (ids[n] for n in "abcd")
    assert ordered(client, kind, "location;dist-asc", "&orderFrom=[8,40]") == [a, d, c, b]
    assert ordered(client, kind, "location;dist-desc", "&orderFrom=[8,40]") == [c, d, a, b]
    line = quote("[[8,40],[8,39]]")
    assert ordered(client, kind, "location;dist-asc",
                   f"&orderFrom={line}&orderGeometry=LineString") == [a, d, c, b]
    path = f"{ENTITIES}?type={kind}&orderBy={quote('location;dist-asc')}"
    assert is_problem(client.get(path), 400, BAD_DATA)  # no orderFrom
    assert is_problem(client.get(path + "&orderFrom=8,40"), 400, BAD_DATA)


@pytest.mark.clause("4.23.3")
def test_collation(client: Client, uid: str) -> None:
    kind, ids = buildings(client, uid)
    a, b, c, d = (ids[n] for n in "abcd")
    # the root collation ranks accents and case after the base letter
    assert ordered(client, kind, "name", "&collation=und") == [a, b, d, c]
    # base letters only: "apple" and "ápple" are equal, and stay in id order
    assert ordered(client, kind, "name;desc", "&collation=und-u-ks-level1") == [c, d, a, b]
    assert ordered(client, kind, "name", "&collation=de-u-co-phonebk") == [a, b, d, c]


@pytest.mark.clause("4.23.3")
@pytest.mark.parametrize("params", [
    "orderBy=name&collation=" + quote("!!nope"),
    "orderBy=name&collation=" + quote("not a tag"),
    "orderBy=name;sideways",
    "orderBy=" + quote("name,,id"),
    "orderBy=" + quote("a==1"),
    "orderFrom=[8,40]",
])
def test_bad_ordering_is_400(client: Client, params: str) -> None:
    assert is_problem(client.get(f"{ENTITIES}?type=T&{params}"), 400, BAD_DATA)


@pytest.mark.clause("4.23")
def test_ordered_pages_and_count(client: Client, uid: str) -> None:
    kind, ids = buildings(client, uid)
    a, c = ids["a"], ids["c"]
    reply = client.get(f"{ENTITIES}?type={kind}&orderBy=name;desc&limit=2&offset=1&count=true")
    assert ids_of(reply) == [a, c] and reply.header("NGSILD-Results-Count") == "4"
    assert 'rel="next"' in (reply.header("Link") or "")


@pytest.mark.clause("5.2.43")
def test_post_query_ordering(client: Client, uid: str) -> None:
    kind, ids = buildings(client, uid)
    a, b, c, d = (ids[n] for n in "abcd")

    def post(ordering: Any) -> Any:
        return client.post(QUERY, {"type": "Query", "entities": [{"type": kind}],
                                   "ordering": ordering})

    assert ids_of(post({"orderBy": ["location;dist-asc"], "coordinates": [8, 40],
                        "geometry": "Point"})) == [a, d, c, b]
    assert ids_of(post({"orderBy": ["name;asc"], "collation": "und"})) == [a, b, d, c]
    for bad in ({"orderBy": ["location;dist-asc"]},
                {"orderBy": ["location;dist-asc"], "coordinates": "8,40"},
                {"orderBy": ["id;asc"], "geometry": 5},
                {"orderBy": ["id;asc"], "collation": "not a bcp47 tag!!"},
                {"orderBy": [5]}, "name"):
        assert is_problem(post(bad), 400, BAD_DATA), bad

"""4.10 Geo-queries and 4.11 their geometries on GET /entities and POST query;
4.5.16 / 4.5.17 GeoJSON results (6.3.7)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from conformance.client import Client
from conformance.data import BAD_DATA, ENTITIES, create, eid, entity, is_problem, prop

QUERY = "/ngsi-ld/v1/entityOperations/query"
# Hong Kong: Central, Tsim Sha Tsui (about 2.2 km apart) and Sha Tin (about 10 km away)
PLACES = {"central": [114.158, 22.282], "tst": [114.172, 22.297], "shatin": [114.188, 22.383]}


def point(coords: list[float]) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": coords}}


def places(client: Client, uid: str) -> tuple[str, dict[str, str]]:
    t = f"Place{uid}"
    ids = {}
    for name, coords in PLACES.items():
        ids[name] = eid("Place", uid, name)
        create(client, entity(ids[name], t, location=point(coords), label=prop(name)))
    return t, ids


def geo(georel: str, geometry: str, coordinates: Any, extra: str = "") -> str:
    coords = quote(json.dumps(coordinates), safe="")
    return f"georel={quote(georel, safe='')}&geometry={geometry}&coordinates={coords}{extra}"


def ids_of(reply: Any) -> list[str]:
    assert reply.status == 200, (reply.status, reply.raw)
    return [item["id"] for item in reply.json]


@pytest.mark.clause("4.10")
@pytest.mark.parametrize(("georel", "wanted"), [
    ("near;maxDistance==3000", ["central", "tst"]),
    ("near;maxDistance==500", ["central"]),
    ("near;minDistance==5000", ["shatin"]),
])
def test_near(client: Client, uid: str, georel: str, wanted: list[str]) -> None:
    t, ids = places(client, uid)
    reply = client.get(f"{ENTITIES}?type={t}&{geo(georel, 'Point', PLACES['central'])}")
    assert ids_of(reply) == sorted(ids[name] for name in wanted)


@pytest.mark.clause("4.10")
def test_within_intersects_disjoint_polygon(client: Client, uid: str) -> None:
    t, ids = places(client, uid)
    box = [[[114.1, 22.25], [114.2, 22.25], [114.2, 22.32], [114.1, 22.32], [114.1, 22.25]]]
    for georel, wanted in (("within", ["central", "tst"]), ("intersects", ["central", "tst"]),
                           ("disjoint", ["shatin"])):
        reply = client.get(f"{ENTITIES}?type={t}&{geo(georel, 'Polygon', box)}")
        assert ids_of(reply) == sorted(ids[name] for name in wanted), georel


@pytest.mark.clause("4.10")
def test_geoproperty_other_than_location(client: Client, uid: str) -> None:
    t = f"Route{uid}"
    create(client, entity(eid("Route", uid), t, start=point(PLACES["central"]),
                          location=point(PLACES["shatin"])))
    near = geo("near;maxDistance==100", "Point", PLACES["central"])
    assert ids_of(client.get(f"{ENTITIES}?type={t}&{near}&geoproperty=start")) == [
        eid("Route", uid)]
    assert ids_of(client.get(f"{ENTITIES}?type={t}&{near}")) == []


@pytest.mark.clause("4.10")
def test_geo_query_alone_is_a_selector(client: Client, uid: str) -> None:
    _, ids = places(client, uid)
    reply = client.get(f"{ENTITIES}?{geo('near;maxDistance==10', 'Point', PLACES['tst'])}"
                       f"&q=label%3D%3D%22tst%22")
    assert ids[("tst")] in ids_of(reply)


@pytest.mark.clause("5.7.2")
def test_post_query_geo_q(client: Client, uid: str) -> None:
    t, ids = places(client, uid)
    body = {"type": "Query", "entities": [{"type": t}],
            "geoQ": {"georel": "near;maxDistance==3000", "geometry": "Point",
                     "coordinates": PLACES["tst"]}}
    assert ids_of(client.post(QUERY, body)) == sorted([ids["central"], ids["tst"]])


@pytest.mark.clause("4.5.17")
def test_geojson_feature_collection(client: Client, uid: str) -> None:
    t, ids = places(client, uid)
    for extra in ({"headers": {"Accept": "application/geo+json"}}, {}):
        path = f"{ENTITIES}?type={t}" + ("" if extra else "&format=geojson")
        reply = client.get(path, **extra)
        assert reply.status == 200
        assert (reply.header("Content-Type") or "").startswith("application/geo+json")
        body = reply.json
        assert body["type"] == "FeatureCollection"
        features = {f["id"]: f for f in body["features"]}
        assert set(features) == set(ids.values())
        assert features[ids["tst"]]["geometry"] == {"type": "Point",
                                                   "coordinates": PLACES["tst"]}


@pytest.mark.clause("6.3.6")
def test_geojson_carries_its_context_in_the_body_unless_prefer_body_json(
    client: Client, uid: str
) -> None:
    t, ids = places(client, uid)
    geo = {"Accept": "application/geo+json"}
    collection = client.get(f"{ENTITIES}?type={t}", headers=geo)
    assert collection.status == 200 and "@context" in collection.json
    assert all("@context" not in f for f in collection.json["features"])
    assert collection.header("Link") is None
    feature = client.get(f"{ENTITIES}/{ids['tst']}", headers=geo)
    assert feature.status == 200 and "@context" in feature.json
    for path in (f"{ENTITIES}?type={t}", f"{ENTITIES}/{ids['tst']}"):
        linked = client.get(path, headers={**geo, "Prefer": "body=json"})
        assert linked.status == 200 and "@context" not in linked.json
        assert "json-ld#context" in (linked.header("Link") or "")


@pytest.mark.clause("4.10")
@pytest.mark.parametrize("params", [
    geo("nearby;maxDistance==10", "Point", [1, 2]),
    geo("near;maxDistance==10", "Polygon", [1, 2]),
    geo("within", "Point", [[1, 2], [3, 4]]),
    geo("within", "Polygon", [[[0, 0], [1, 0], [1, 1], [0, 0.5]]]),
    "georel=near%3BmaxDistance%3D%3D10&geometry=Point&coordinates=%5B1%2C",
    "georel=near%3BmaxDistance%3D%3D10&geometry=Point",
    geo("near;maxDistance==-5", "Point", [1, 2]),
    geo("near;maxDistance==10", "Point", [200, 2]),
    geo("near", "Point", [1, 2]),
])
def test_bad_geo_query_is_400(client: Client, params: str) -> None:
    assert is_problem(client.get(f"{ENTITIES}?type=T&{params}"), 400, BAD_DATA)

"""Purge Entities: DELETE /entities with query selectors (ETSI GS CIM 009 v1.9.1 6.4.3.3)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from conformance.client import Client
from conformance.data import (
    BAD_DATA,
    ENTITIES,
    INVALID,
    absent,
    create,
    eid,
    entity,
    is_problem,
    prop,
)


def fleet(client: Client, uid: str, n: int = 5) -> tuple[str, list[str]]:
    t = f"Car{uid}"
    made = []
    for i in range(n):
        made.append(eid("Car", uid, i))
        create(client, entity(made[-1], t, speed=prop(10 * i)))
    return t, made


def remaining(client: Client, t: str) -> list[str]:
    reply = client.get(f"{ENTITIES}?type={t}&limit=100")
    assert reply.status == 200
    return [item["id"] for item in reply.json]


@pytest.mark.clause("6.4.3.3")
def test_purge_by_type_and_q(client: Client, uid: str) -> None:
    t, made = fleet(client, uid)
    reply = client.delete(f"{ENTITIES}?type={t}&q={quote('speed>=20', safe='')}")
    assert reply.status == 204
    assert remaining(client, t) == made[:2]
    assert all(absent(client, i) for i in made[2:])


@pytest.mark.clause("6.4.3.3")
def test_purge_by_id_pattern_and_ids(client: Client, uid: str) -> None:
    t, made = fleet(client, uid)
    assert client.delete(f"{ENTITIES}?type={t}&id={made[0]},{made[4]}").status == 204
    assert remaining(client, t) == made[1:4]
    pattern = quote(f"^urn:ngsi-ld:Car:{uid}-[12]$", safe="")
    assert client.delete(f"{ENTITIES}?type={t}&idPattern={pattern}").status == 204
    assert remaining(client, t) == [made[3]]
    # 5.6.21.4: ids or an idPattern alone are too wide a purge, unless it is local
    assert client.delete(f"{ENTITIES}?id={made[3]}").status == 400
    assert client.delete(f"{ENTITIES}?idPattern=.*").status == 400
    assert remaining(client, t) == [made[3]]
    assert client.delete(f"{ENTITIES}?id={made[3]}&local=true").status == 204
    assert remaining(client, t) == []


@pytest.mark.clause("5.6.21")
@pytest.mark.parametrize("query", [
    "id={first}", "idPattern=.*", "attrs=createdAt", "attrs=createdAt,modifiedAt",
    "q=" + quote('modifiedAt>"2020-01-01T00:00:00Z"', safe=""), "scopeQ=/a", "local=false",
    "type={t}&keep=speed&drop=speed", "type={t}&attrs=" + quote("owner{name}", safe=""),
    "type={t}&drop=" + quote("owner{name}", safe=""), "type={t}&keep=",
])
def test_a_purge_too_wide_or_malformed_is_refused_before_anything_is_deleted(
    client: Client, uid: str, query: str
) -> None:
    # 5.6.21.4: a type, a non-system attribute, a geo-query or the local scope is needed;
    # keep and drop exclude each other; Linked Entity retrieval is not allowed
    t, made = fleet(client, uid, 2)
    reply = client.delete(f"{ENTITIES}?" + query.format(first=made[0], t=t))
    assert is_problem(reply, 400, BAD_DATA)
    assert remaining(client, t) == made


@pytest.mark.clause("5.6.21")
def test_purge_drop_removes_only_the_listed_attributes(client: Client, uid: str) -> None:
    t = f"Car{uid}"
    car = entity(eid("Car", uid), t, speed=prop(1), name=prop("a"), colour=prop("red"))
    create(client, car)
    assert client.delete(f"{ENTITIES}?type={t}&drop=name,colour").status == 204
    got = client.get(f"{ENTITIES}/{car['id']}").json
    assert got["speed"] == prop(1) and "name" not in got and "colour" not in got


@pytest.mark.clause("5.6.21")
def test_purge_keep_removes_every_other_attribute(client: Client, uid: str) -> None:
    t = f"Car{uid}"
    car = entity(eid("Car", uid), t, speed=prop(1), name=prop("a"), colour=prop("red"))
    create(client, car)
    assert client.delete(f"{ENTITIES}?id={car['id']}&type={t}&keep=name").status == 204
    got = client.get(f"{ENTITIES}/{car['id']}").json
    assert got == {"id": car["id"], "type": t, "name": prop("a")}


@pytest.mark.clause("5.6.21")
def test_purge_in_the_local_scope_alone_purges_the_tenant(client: Client, uid: str) -> None:
    tenant = {"NGSILD-Tenant": f"purge{uid}"}
    made = [eid("Car", uid, i) for i in range(3)]
    for i, entity_id in enumerate(made):
        assert client.post(ENTITIES, entity(entity_id, f"T{i}"), headers=tenant).status == 201
    assert client.delete(f"{ENTITIES}?local=true", headers=tenant).status == 204
    for entity_id in made:
        assert client.get(f"{ENTITIES}/{entity_id}", headers=tenant).status == 404


@pytest.mark.clause("6.4.3.3")
def test_purge_of_nothing_is_204(client: Client, uid: str) -> None:
    t, made = fleet(client, uid, 2)
    assert client.delete(f"{ENTITIES}?type={t}&q=speed>1000").status == 204
    assert remaining(client, t) == made


@pytest.mark.clause("6.4.3.3")
@pytest.mark.parametrize("query", ["", "?type=T&q=speed%3D%3D"])
def test_purge_without_selector_or_bad_is_400(client: Client, query: str) -> None:
    assert is_problem(client.delete(f"{ENTITIES}{query}"), 400, BAD_DATA)


@pytest.mark.clause("6.4.3.3")
@pytest.mark.parametrize("query", ["?limit=5", "?type=T&limit=2", "?type=T&count=true"])
def test_purge_takes_no_paging_parameters(client: Client, query: str) -> None:
    assert is_problem(client.delete(f"{ENTITIES}{query}"), 400, INVALID)

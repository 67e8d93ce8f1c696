"""6.3 HTTP binding: media types, Accept negotiation, bodies, paths, tenants, version."""

from __future__ import annotations

import pytest

from conformance.client import Client, entity_path

ERR = "https://uri.etsi.org/ngsi-ld/errors/"


def _entity(uid: str) -> dict:
    return {"id": f"urn:ngsi-ld:Http:{uid}", "type": "Http", "p": {"type": "Property", "value": 1}}


@pytest.mark.clause("6.3.4")
def test_unsupported_content_type_is_415(client: Client, uid: str) -> None:
    reply = client.post("/ngsi-ld/v1/entities", _entity(uid), content_type="text/plain")
    assert reply.status == 415 and reply.problem_type.startswith(ERR)


@pytest.mark.clause("6.3.4")
def test_invalid_json_is_400_invalid_request(client: Client) -> None:
    reply = client.post("/ngsi-ld/v1/entities", raw=b"{not json")
    assert reply.status == 400 and reply.problem_type == ERR + "InvalidRequest"


@pytest.mark.clause("6.3.4")
def test_body_over_the_limit_is_413(client: Client, uid: str) -> None:
    huge = {**_entity(uid), "blob": {"type": "Property", "value": "x" * (9 * 1024 * 1024)}}
    reply = client.post("/ngsi-ld/v1/entities", huge)
    assert reply.status == 413
    assert client.get(entity_path(_entity(uid)["id"])).status == 404


@pytest.mark.clause("6.3.6")
@pytest.mark.parametrize(
    "accept,expected",
    [
        ("application/json", "application/json"),
        ("application/ld+json", "application/ld+json"),
        ("*/*", "application/json"),
        ("application/ld+json;q=0.5, application/json;q=0.9", "application/json"),
        ("text/html, application/*;q=0.1", "application/json"),
        # 6.3.4: equal weights select in the order of its list, not of the header
        ("application/ld+json, application/json", "application/json"),
        ("application/geo+json, application/json", "application/json"),
        # RFC 9110 12.5.1: the most specific range gives the weight; 0 refuses
        ("application/json;q=0, */*", "application/ld+json"),
        ("*/*;q=0.9, application/ld+json;q=0.8", "application/json"),
        ("application/ld+json;q=notanumber", "application/ld+json"),
    ],
)
def test_accept_negotiation(client: Client, uid: str, accept: str, expected: str) -> None:
    assert client.post("/ngsi-ld/v1/entities", _entity(uid)).status == 201
    reply = client.get(entity_path(_entity(uid)["id"]), headers={"Accept": accept})
    assert reply.status == 200
    assert (reply.header("Content-Type") or "").startswith(expected)


@pytest.mark.clause("6.3.6")
def test_unacceptable_accept_is_406(client: Client, uid: str) -> None:
    assert client.post("/ngsi-ld/v1/entities", _entity(uid)).status == 201
    reply = client.get(entity_path(_entity(uid)["id"]), headers={"Accept": "text/html"})
    assert reply.status == 406 and reply.problem_type.startswith(ERR)


@pytest.mark.clause("6.3.2")
def test_trailing_slash_works_without_redirect(client: Client, uid: str) -> None:
    reply = client.post("/ngsi-ld/v1/entityOperations/upsert/", [_entity(uid)])
    assert reply.status in (201, 204)
    assert client.get(entity_path(_entity(uid)["id"]) + "/").status == 200


@pytest.mark.clause("4.14")
def test_tenants_are_separate(client: Client, uid: str) -> None:
    tenant = {"NGSILD-Tenant": f"t{uid}"}
    assert client.post("/ngsi-ld/v1/entities", _entity(uid), headers=tenant).status == 201
    path = entity_path(_entity(uid)["id"])
    assert client.get(path, headers=tenant).status == 200
    assert client.get(path).status == 404
    # Fiware-Service is an alias of NGSILD-Tenant
    assert client.get(path, headers={"Fiware-Service": f"t{uid}"}).status == 200


@pytest.mark.clause("4.14")
def test_unknown_tenant_is_404_nonexistent_tenant(client: Client, uid: str) -> None:
    reply = client.get(entity_path(_entity(uid)["id"]), headers={"NGSILD-Tenant": f"none{uid}"})
    assert reply.status == 404 and reply.problem_type == ERR + "NonexistentTenant"


@pytest.mark.clause("5.5.2")
def test_unknown_entity_is_404_problem_details(client: Client, uid: str) -> None:
    reply = client.get(entity_path(f"urn:ngsi-ld:Nothing:{uid}"))
    assert reply.status == 404
    body = reply.json
    assert body["type"] == ERR + "ResourceNotFound"
    assert body["status"] == 404 and body["detail"]


@pytest.mark.clause("broker")
def test_version_endpoints(client: Client) -> None:
    for path in ("/version", "/ngsi-ld/ex/v1/version"):
        reply = client.get(path)
        assert reply.status == 200
        assert {"name", "version"} <= set(reply.json)

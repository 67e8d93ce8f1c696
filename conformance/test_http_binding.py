"""6.3 HTTP binding: media types, Accept negotiation, bodies, paths, tenants, version."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest

from conformance.client import Client, Reply, entity_path

ERR = "https://uri.etsi.org/ngsi-ld/errors/"


def _entity(uid: str) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Http:{uid}", "type": "Http", "p": {"type": "Property", "value": 1}}


@pytest.mark.clause("6.3.4")
def test_unsupported_content_type_is_415(client: Client, uid: str) -> None:
    reply = client.post("/ngsi-ld/v1/entities", _entity(uid), content_type="text/plain")
    assert reply.status == 415 and (reply.problem_type or "").startswith(ERR)


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
    assert reply.status == 406 and (reply.problem_type or "").startswith(ERR)


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


def _chunked(client: Client, method: str, path: str, headers: dict[str, str]) -> Reply:
    """A request whose body is sent chunked, so without Content-Length."""
    body = iter([json.dumps({"id": "urn:ngsi-ld:Http:chunked", "type": "Http"}).encode()])
    req = urllib.request.Request(client.base + path, data=body, method=method,
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=client.timeout) as resp:
            return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()},
                         resp.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


@pytest.mark.clause("6.3.4")
@pytest.mark.parametrize("method,path", [
    ("POST", "/ngsi-ld/v1/entities"),
    ("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:Http:chunked/attrs"),
    ("PUT", "/ngsi-ld/v1/entities/urn:ngsi-ld:Http:chunked"),
])
def test_body_without_content_length_is_a_bare_411(
    client: Client, uid: str, method: str, path: str
) -> None:
    # decided before anything else: even an unknown tenant does not make it a 404
    for headers in ({}, {"NGSILD-Tenant": f"none{uid}"}):
        reply = _chunked(client, method, path, headers)
        assert reply.status == 411 and reply.raw == b""
    assert client.get(entity_path("urn:ngsi-ld:Http:chunked")).status == 404


@pytest.mark.clause("6.3.4")
def test_accept_is_checked_before_the_resource_is_looked_up(client: Client, uid: str) -> None:
    for accept in ("text/html", "application/geo+json"):  # GeoJSON is for entities only
        reply = client.get(f"/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:{uid}",
                           headers={"Accept": accept})
        assert reply.status == 406 and (reply.problem_type or "").startswith(ERR)
    reply = client.get(entity_path(f"urn:ngsi-ld:Nothing:{uid}"), headers={"Accept": "text/xml"})
    assert reply.status == 406


@pytest.mark.clause("6.3.4")
def test_content_type_is_checked_before_the_resource_is_looked_up(
    client: Client, uid: str
) -> None:
    reply = client.patch(f"/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:{uid}",
                         {"description": "x"}, content_type="text/plain")
    assert reply.status == 415 and (reply.problem_type or "").startswith(ERR)


@pytest.mark.clause("6.3.4")
def test_every_patch_takes_merge_patch_json(client: Client, uid: str) -> None:
    sent = _entity(uid)
    assert client.post("/ngsi-ld/v1/entities", sent).status == 201
    path = entity_path(sent["id"])
    merge = "application/merge-patch+json"
    assert client.patch(path + "/attrs/p", {"value": 2}, content_type=merge).status == 204
    assert client.patch(path + "/attrs", {"p": {"type": "Property", "value": 3}},
                        content_type=merge).status == 204
    assert client.get(path).json["p"]["value"] == 3


@pytest.mark.clause("6.3.14")
def test_the_tenant_header_is_echoed(client: Client, uid: str) -> None:
    tenant = {"NGSILD-Tenant": f"echo{uid}"}
    created = client.post("/ngsi-ld/v1/entities", _entity(uid), headers=tenant)
    assert created.status == 201 and created.header("NGSILD-Tenant") == f"echo{uid}"
    missing = client.get(entity_path(_entity(uid)["id"]), headers={"NGSILD-Tenant": f"no{uid}"})
    assert missing.status == 404 and missing.header("NGSILD-Tenant") == f"no{uid}"
    assert client.get(entity_path(_entity(uid)["id"])).header("NGSILD-Tenant") is None


@pytest.mark.clause("6.3")
@pytest.mark.parametrize("path,methods,patch", [
    ("/ngsi-ld/v1/entities", {"GET", "POST", "DELETE", "OPTIONS"}, False),
    ("/ngsi-ld/v1/entities/urn:ngsi-ld:X:1", {"GET", "PATCH", "PUT", "DELETE", "OPTIONS"}, True),
    ("/ngsi-ld/v1/entities/urn:ngsi-ld:X:1/attrs/p/", {"PATCH", "PUT", "DELETE", "OPTIONS"}, True),
    ("/ngsi-ld/v1/entityOperations/upsert", {"POST", "OPTIONS"}, False),
    ("/ngsi-ld/v1/jsonldContexts", {"GET", "POST", "OPTIONS"}, False),
])
def test_options_answers_the_allowed_methods(
    client: Client, path: str, methods: set[str], patch: bool
) -> None:
    reply = client.request("OPTIONS", path)
    assert reply.status == 204
    assert {m.strip() for m in (reply.header("Allow") or "").split(",")} == methods
    accept_patch = reply.header("Accept-Patch") or ""
    assert ("application/merge-patch+json" in accept_patch) == patch


@pytest.mark.clause("5.15.1")
def test_context_source_identity(client: Client, uid: str) -> None:
    path = "/ngsi-ld/v1/info/sourceIdentity"
    default = client.get(path)
    assert default.status == 200
    body = default.json
    assert body["type"] == "ContextSourceIdentity" and body["id"].startswith("urn:")
    assert re.match(r"^P(?!$)(\d+D)?(T(?!$)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$",
                    body["contextSourceUptime"])
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", body["contextSourceTimeAt"])
    # one alias per tenant, stable, and no tenant needs to exist to ask for it
    tenant_a = client.get(path, headers={"NGSILD-Tenant": f"a{uid}"})
    tenant_b = client.get(path, headers={"NGSILD-Tenant": f"b{uid}"})
    assert tenant_a.status == tenant_b.status == 200
    aliases = [r.json["contextSourceAlias"] for r in (default, tenant_a, tenant_b)]
    assert len(set(aliases)) == 3
    again = client.get(path, headers={"NGSILD-Tenant": f"a{uid}"})
    assert again.json["contextSourceAlias"] == aliases[1]
    ld = client.get(path, headers={"Accept": "application/ld+json"})
    assert ld.status == 200 and "@context" in ld.json

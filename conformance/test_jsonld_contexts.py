"""5.13 @context source management: /ngsi-ld/v1/jsonldContexts."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from conformance.client import Client, entity_path, link
from conformance.contexts_server import ContextServer

BASE = "/ngsi-ld/v1/jsonldContexts"


def _add(client: Client, uid: str) -> str:
    body = {"@context": {"speed": f"https://example.org/{uid}/speed"}}
    reply = client.post(BASE, body)
    assert reply.status == 201, reply.raw
    return reply.header("Location") or ""


@pytest.mark.clause("5.13.2")
def test_add_then_serve_hosted_context(client: Client, uid: str) -> None:
    location = _add(client, uid)
    assert location.startswith(BASE + "/")
    served = client.get(location)
    assert served.status == 200
    assert served.json == {"@context": {"speed": f"https://example.org/{uid}/speed"}}


@pytest.mark.clause("5.13.2")
@pytest.mark.parametrize("body", [{"@context": 5}, {"@context": [1]}, [1, 2], {"@context": True}])
def test_add_invalid_context_is_400(client: Client, body: object) -> None:
    reply = client.post(BASE, body)
    assert reply.status == 400
    assert reply.problem_type == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


@pytest.mark.clause("5.13.2")
@pytest.mark.parametrize("body", [{"speed": "x"}, "a string", 5])
def test_add_without_context_member_is_invalid_request(client: Client, body: object) -> None:
    reply = client.post(BASE, body)
    assert reply.status == 400
    assert reply.problem_type == "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest"


@pytest.mark.clause("5.13.2")
def test_add_a_bare_array_of_contexts(client: Client, uid: str, broker_url: str) -> None:
    # ngsi-go's "create ldContext" posts the array itself
    contexts = [{"speed": f"https://example.org/{uid}/array/speed"}]
    reply = client.post(BASE, contexts)
    assert reply.status == 201, reply.raw
    location = reply.header("Location") or ""
    assert client.get(location).json == {"@context": contexts}
    entity: dict[str, Any] = {"id": f"urn:ngsi-ld:Car:{uid}a", "type": "Car",
              "speed": {"type": "Property", "value": 1}}
    made = client.post("/ngsi-ld/v1/entities", entity,
                       headers={"Link": link(broker_url + location)})
    assert made.status == 201
    assert f"https://example.org/{uid}/array/speed" in client.get(entity_path(entity["id"])).json


@pytest.mark.clause("5.13.3")
def test_list_contexts_with_kind_and_details(client: Client, uid: str) -> None:
    location = _add(client, uid)
    urls = client.get(BASE + "?kind=Hosted").json
    assert any(url.endswith(location) for url in urls)
    details = client.get(BASE + "?kind=Hosted&details=true").json
    mine = [d for d in details if d["URL"].endswith(location)]
    assert mine and mine[0]["kind"] == "Hosted" and mine[0]["createdAt"].endswith("Z")
    assert set(mine[0]) <= {"URL", "localId", "kind", "createdAt", "lastUsage", "numberOfHits"}
    assert client.get(BASE + "?kind=Bogus").status == 400


@pytest.mark.clause("5.13.3")
def test_the_core_context_is_listed_with_and_without_details(client: Client) -> None:
    urls = client.get(BASE).json
    details = client.get(BASE + "?details=true").json
    assert urls[0] == details[0]["URL"] and "ngsi-ld-core-context" in urls[0]
    assert details[0]["kind"] == "Cached"
    cached = client.get(BASE + "?kind=Cached&details=true").json
    assert cached[0]["URL"] == urls[0]
    assert all(d["URL"] != urls[0] for d in client.get(BASE + "?kind=Hosted&details=true").json)
    core = quote(urls[0], safe="")
    assert client.get(f"{BASE}/{core}?details=true").json["URL"] == urls[0]
    assert client.get(f"{BASE}/{details[0]['localId']}?details=true").json["kind"] == "Cached"


@pytest.mark.clause("5.13.5")
def test_the_core_context_cannot_be_deleted_and_reloads_as_a_no_op(client: Client) -> None:
    core = quote(client.get(BASE).json[0], safe="")
    for query in ("", "?reload=false"):
        reply = client.delete(f"{BASE}/{core}{query}")
        assert reply.status == 400
        assert reply.problem_type == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert client.delete(f"{BASE}/{core}?reload=true").status == 204
    assert client.get(f"{BASE}/{core}?details=true").status == 200


@pytest.mark.clause("5.13.5")
@pytest.mark.parametrize("query", ["?reload=true", "?reload=xxx"])
def test_reload_of_an_unknown_context_or_a_bad_reload_value_is_400(
    client: Client, uid: str, query: str
) -> None:
    reply = client.delete(f"{BASE}/unknown-{uid}{query}")
    assert reply.status == 400
    assert reply.problem_type == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert client.delete(f"{BASE}/unknown-{uid}").status == 404


@pytest.mark.clause("5.13.4")
def test_a_served_context_is_json_unless_json_ld_is_asked_for(client: Client, uid: str) -> None:
    location = _add(client, uid)
    assert client.get(location).header("Content-Type") == "application/json"
    ld = client.get(location, headers={"Accept": "application/ld+json"})
    assert ld.header("Content-Type") == "application/ld+json"
    assert client.get(location + "?details=true").header("Content-Type") == "application/json"


@pytest.mark.clause("5.13.4")
def test_a_hosted_context_is_private_to_its_tenant(client: Client, uid: str) -> None:
    body = {"@context": {"private": f"https://example.org/{uid}/private"}}
    reply = client.post(BASE, body, headers={"NGSILD-Tenant": f"a{uid}"})
    assert reply.status == 201
    location = reply.header("Location") or ""
    local_id = location.rsplit("/", 1)[1]
    other = {"NGSILD-Tenant": f"b{uid}"}
    assert client.get(location, headers=other).status == 404
    assert client.get(location + "?details=true", headers=other).status == 404
    assert local_id not in client.get(BASE + "?details=true", headers=other).raw.decode()
    assert local_id not in client.get(BASE).raw.decode()  # nor to the default tenant
    assert client.delete(location, headers=other).status == 404
    owner = {"NGSILD-Tenant": f"a{uid}"}
    assert client.get(location, headers=owner).json == body
    assert local_id in client.get(BASE, headers=owner).raw.decode()
    assert client.delete(location, headers=owner).status == 204


@pytest.mark.clause("5.13.4")
def test_hosted_context_url_resolves_locally(client: Client, uid: str, broker_url: str) -> None:
    location = _add(client, uid)
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Car:{uid}",
        "type": "Car",
        "speed": {"type": "Property", "value": 80},
    }
    hosted = broker_url + location
    assert client.post("/ngsi-ld/v1/entities", entity, headers={"Link": link(hosted)}).status == 201
    full = client.get(entity_path(entity["id"])).json
    assert f"https://example.org/{uid}/speed" in full


@pytest.mark.clause("5.13.4")
def test_an_empty_hosted_context_is_usable(client: Client, uid: str, broker_url: str) -> None:
    reply = client.post(BASE, {"@context": []})
    assert reply.status == 201, reply.raw
    hosted = broker_url + (reply.header("Location") or "")
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Car:{uid}e", "type": "Car", "speed": {"type": "Property", "value": 80}
    }
    made = client.post("/ngsi-ld/v1/entities", entity, headers={"Link": link(hosted)})
    assert made.status == 201, made.raw
    found = client.get("/ngsi-ld/v1/entities?type=Car&q=speed==80", headers={"Link": link(hosted)})
    assert found.status == 200 and entity["id"] in [e["id"] for e in found.json]


@pytest.mark.clause("5.13.5")
def test_delete_hosted_context(client: Client, uid: str) -> None:
    location = _add(client, uid)
    assert client.delete(location).status == 204
    assert client.get(location).status == 404
    assert client.delete(location).status == 404


@pytest.mark.clause("5.13.5")
def test_cached_context_reload_and_delete(
    client: Client, context_server: ContextServer, uid: str
) -> None:
    path = f"/cached-{uid}.jsonld"
    url = context_server.add(path, {"@context": {"speed": "https://example.org/v1/speed"}})
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Car:{uid}",
        "type": "Car",
        "speed": {"type": "Property", "value": 1},
    }
    assert client.post("/ngsi-ld/v1/entities", entity, headers={"Link": link(url)}).status == 201
    cached = [d for d in client.get(BASE + "?kind=Cached&details=true").json if d["URL"] == url]
    assert cached, "a fetched context is listed as Cached"
    local_id = cached[0]["localId"]
    # the content of a Cached context is not served, its details are
    assert client.get(f"{BASE}/{local_id}").status == 422
    assert client.get(f"{BASE}/{local_id}?details=true").json["URL"] == url
    context_server.documents[path] = {"@context": {"speed": "https://example.org/v2/speed"}}
    assert client.delete(f"{BASE}/{local_id}?reload=true").status == 204
    assert context_server.hits[path] == 2
    fresh = client.get(entity_path(entity["id"]), headers={"Link": link(url)}).json
    assert "https://example.org/v1/speed" in fresh  # stored data keep their IRIs
    assert client.delete(f"{BASE}/{local_id}").status == 204
    assert all(d["URL"] != url for d in client.get(BASE + "?details=true").json)


@pytest.mark.clause("5.13.5")
@pytest.mark.parametrize("broken", [None, b"not json", {"no": "context"}])
def test_a_failed_reload_is_504_and_keeps_the_cached_context(
    client: Client, context_server: ContextServer, uid: str, broken: object
) -> None:
    path = f"/reload-{uid}-{type(broken).__name__}.jsonld"
    url = context_server.add(path, {"@context": {"speed": "https://example.org/v1/speed"}})
    entity: dict[str, Any] = {"id": f"urn:ngsi-ld:Car:{uid}{type(broken).__name__}", "type": "Car",
              "speed": {"type": "Property", "value": 1}}
    assert client.post("/ngsi-ld/v1/entities", entity, headers={"Link": link(url)}).status == 201
    if broken is None:
        del context_server.documents[path]  # the origin no longer has it
    else:
        context_server.documents[path] = broken
    target = f"{BASE}/{quote(url, safe='')}"
    reply = client.delete(target + "?reload=true")
    assert reply.status == 504
    assert reply.problem_type == "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable"
    assert client.get(target + "?details=true").json["kind"] == "Cached"
    assert client.delete(target).status == 204
    assert client.get(target + "?details=true").status == 404

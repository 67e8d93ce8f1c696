"""5.13 @context source management: /ngsi-ld/v1/jsonldContexts."""

from __future__ import annotations

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
@pytest.mark.parametrize("body", [{"speed": "x"}, {"@context": 5}, [1, 2]])
def test_add_invalid_context_is_400(client: Client, body: object) -> None:
    reply = client.post(BASE, body)
    assert reply.status == 400
    assert reply.problem_type == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


@pytest.mark.clause("5.13.3")
def test_list_contexts_with_kind_and_details(client: Client, uid: str) -> None:
    location = _add(client, uid)
    urls = client.get(BASE + "?kind=Hosted").json
    assert any(url.endswith(location) for url in urls)
    details = client.get(BASE + "?kind=Hosted&details=true").json
    mine = [d for d in details if d["URL"].endswith(location)]
    assert mine and mine[0]["kind"] == "Hosted" and "timestamp" in mine[0]
    assert client.get(BASE + "?kind=Bogus").status == 400


@pytest.mark.clause("5.13.4")
def test_hosted_context_url_resolves_locally(client: Client, uid: str, broker_url: str) -> None:
    location = _add(client, uid)
    entity = {
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
    entity = {"id": f"urn:ngsi-ld:Car:{uid}e", "type": "Car", "speed": {"type": "Property",
                                                                         "value": 80}}
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
    entity = {
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

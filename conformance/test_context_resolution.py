"""6.3.5 JSON-LD @context resolution: where a request's @context comes from, and its errors."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.client import CORE_CONTEXT, Client, entity_path, link
from conformance.contexts_server import ContextServer

BAD = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
pytestmark = pytest.mark.clause("6.3.5")


def _entity(uid: str, **attrs: object) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Ctx:{uid}",
        "type": "Ctx",
        "temperature": {"type": "Property", "value": 21},
        **attrs,
    }


def test_context_in_json_body_is_rejected(client: Client, uid: str) -> None:
    reply = client.post("/ngsi-ld/v1/entities", {**_entity(uid), "@context": CORE_CONTEXT})
    assert reply.status == 400 and reply.problem_type == BAD


def test_link_header_with_ld_json_is_rejected(client: Client, uid: str) -> None:
    reply = client.post(
        "/ngsi-ld/v1/entities",
        {**_entity(uid), "@context": CORE_CONTEXT},
        content_type="application/ld+json",
        headers={"Link": link(CORE_CONTEXT)},
    )
    assert reply.status == 400 and reply.problem_type == BAD


def test_ld_json_without_context_is_rejected(client: Client, uid: str) -> None:
    reply = client.post("/ngsi-ld/v1/entities", _entity(uid), content_type="application/ld+json")
    assert reply.status == 400 and reply.problem_type == BAD


@pytest.mark.parametrize(
    "header",
    [
        "not a link",
        '<https://example.org/ctx.jsonld; rel="http://www.w3.org/ns/json-ld#context"',
        '<ftp://example.org/c.jsonld>; rel="http://www.w3.org/ns/json-ld#context"',
    ],
)
def test_malformed_link_header_is_rejected(client: Client, uid: str, header: str) -> None:
    reply = client.post("/ngsi-ld/v1/entities", _entity(uid), headers={"Link": header})
    assert reply.status == 400 and reply.problem_type == BAD


def test_link_context_expands_and_compacts(
    client: Client, context_server: ContextServer, uid: str
) -> None:
    url = context_server.add(
        f"/ctx-{uid}.jsonld",
        {
            "@context": {
                "temperature": "https://example.org/vocab/temperature",
                "Ctx": "https://example.org/Ctx",
            }
        },
    )
    assert (
        client.post("/ngsi-ld/v1/entities", _entity(uid), headers={"Link": link(url)}).status == 201
    )
    path = entity_path(f"urn:ngsi-ld:Ctx:{uid}")
    # without the context the broker answers with full IRIs
    plain = client.get(path).json
    assert "https://example.org/vocab/temperature" in plain
    assert plain["type"] == "https://example.org/Ctx"
    # with it, with the short names, and the Link header echoes the context
    short = client.get(path, headers={"Link": link(url)})
    assert short.json["temperature"]["value"] == 21 and short.json["type"] == "Ctx"
    assert url in (short.header("Link") or "")


def test_inline_context_gets_a_hosted_context_url(client: Client, uid: str) -> None:
    body = {**_entity(uid), "@context": {"temperature": "https://example.org/inline/temperature"}}
    reply = client.post("/ngsi-ld/v1/entities", body, content_type="application/ld+json")
    assert reply.status == 201
    header = reply.header("Link") or ""
    assert "/ngsi-ld/v1/jsonldContexts/" in header
    hosted = header[header.index("<") + 1 : header.index(">")]
    served = client.get(hosted[hosted.index("/ngsi-ld/") :])
    assert served.status == 200
    assert served.json["@context"] == body["@context"]


def test_unreachable_remote_context_is_504(
    client: Client, context_server: ContextServer, uid: str
) -> None:
    missing = f"{context_server.base}/missing-{uid}.jsonld"
    reply = client.post("/ngsi-ld/v1/entities", _entity(uid), headers={"Link": link(missing)})
    assert reply.status == 504
    assert reply.problem_type == "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable"
    assert client.get(entity_path(f"urn:ngsi-ld:Ctx:{uid}")).status == 404


@pytest.mark.clause("5.5.6")
@pytest.mark.parametrize("document", [b"this is { not json", b'{"note": "no context member"}'])
def test_remote_context_that_is_not_a_context_is_400(
    client: Client, context_server: ContextServer, uid: str, document: bytes
) -> None:
    url = context_server.add(f"/invalid-{uid}-{len(document)}.jsonld", document)
    body = {**_entity(uid), "@context": url}
    reply = client.post("/ngsi-ld/v1/entities", body, content_type="application/ld+json")
    assert reply.status == 400
    assert reply.problem_type == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert client.get(entity_path(f"urn:ngsi-ld:Ctx:{uid}")).status == 404


def test_remote_context_is_fetched_once(
    client: Client, context_server: ContextServer, uid: str
) -> None:
    path = f"/once-{uid}.jsonld"
    url = context_server.add(path, {"@context": {"temperature": "https://example.org/t"}})
    for n in range(3):
        body = _entity(f"{uid}-{n}")
        assert client.post("/ngsi-ld/v1/entities", body, headers={"Link": link(url)}).status == 201
    assert context_server.hits[path] == 1


def test_ld_json_response_carries_context_in_body(client: Client, uid: str) -> None:
    assert client.post("/ngsi-ld/v1/entities", _entity(uid)).status == 201
    reply = client.get(
        entity_path(f"urn:ngsi-ld:Ctx:{uid}"), headers={"Accept": "application/ld+json"}
    )
    assert reply.status == 200
    assert (reply.header("Content-Type") or "").startswith("application/ld+json")
    context = reply.json["@context"]
    assert CORE_CONTEXT in (context if isinstance(context, list) else [context])
    assert reply.header("Link") is None

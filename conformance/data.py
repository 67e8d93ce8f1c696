"""Shared data and helpers for the entity API conformance cases (any broker)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from conformance.client import Client, Reply, entity_path, link
from conformance.shared_data import smart_data_models_dir

ENTITIES = "/ngsi-ld/v1/entities"
BATCH = "/ngsi-ld/v1/entityOperations"
CONTEXTS = "/ngsi-ld/v1/jsonldContexts"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
BAD_DATA = ERR + "BadRequestData"
INVALID = ERR + "InvalidRequest"
NOT_FOUND = ERR + "ResourceNotFound"
EXISTS = ERR + "AlreadyExists"
NULL = "urn:ngsi-ld:null"

SDM_DIR = smart_data_models_dir()
# the Smart Data Models examples that are valid NGSI-LD as published
SDM_VALID = ["AirQualityObserved", "Dataset", "Distribution", "Streetlight",
             "TrafficFlowObserved", "WeatherObserved"]


def eid(kind: str, uid: str, n: int | str = "") -> str:
    """A unique entity id ``urn:ngsi-ld:<kind>:<uid>[-n]``."""
    return f"urn:ngsi-ld:{kind}:{uid}" + (f"-{n}" if n != "" else "")


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def rel(obj: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"type": "Relationship", "object": obj, **extra}


def entity(entity_id: str, kind: str = "Thing", **attrs: Any) -> dict[str, Any]:
    return {"id": entity_id, "type": kind, **attrs}


def every_kind(entity_id: str) -> dict[str, Any]:
    """An entity with one attribute of every NGSI-LD attribute kind (clause 4.5)."""
    return {
        "id": entity_id,
        "type": "Thing",
        "temperature": prop(21.5, unitCode="CEL", observedAt="2024-01-02T03:04:05.000Z"),
        "owner": rel("urn:ngsi-ld:Person:alice"),
        "members": rel(["urn:ngsi-ld:Person:bob", "urn:ngsi-ld:Person:carol"]),
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [2.35, 48.85]}},
        "name": {"type": "LanguageProperty", "languageMap": {"en": "Bridge", "fr": "Pont"}},
        "category": {"type": "VocabProperty", "vocab": "urn:ngsi-ld:Category:road"},
        "config": {"type": "JsonProperty", "json": {"a": [1, {"b": None}], "@id": "x"}},
        "readings": {"type": "ListProperty", "valueList": [3, 1, 2]},
        "route": {"type": "ListRelationship",
                  "objectList": [{"object": "urn:ngsi-ld:Stop:b"},
                                 {"object": "urn:ngsi-ld:Stop:a"}]},
        "installed": prop({"@type": "DateTime", "@value": "2020-05-06T07:08:09.000Z"}),
        "status": prop("ok", quality=prop(0.9, source=rel("urn:ngsi-ld:Sensor:s1"))),
    }


def create(client: Client, body: dict[str, Any], **kw: Any) -> Reply:
    """POST an entity and insist on 201 (a precondition, not the case under test)."""
    reply = client.post(ENTITIES, body, **kw)
    assert reply.status == 201, (reply.status, reply.raw)
    return reply


def get(client: Client, entity_id: str, query: str = "", **kw: Any) -> Reply:
    return client.get(entity_path(entity_id) + (f"?{query}" if query else ""), **kw)


def stored(client: Client, entity_id: str, query: str = "", **kw: Any) -> dict[str, Any]:
    """GET an entity that must exist; its JSON body."""
    reply = get(client, entity_id, query, **kw)
    assert reply.status == 200, (reply.status, reply.raw)
    body: dict[str, Any] = reply.json
    return body


def absent(client: Client, entity_id: str, **kw: Any) -> bool:
    return get(client, entity_id, **kw).status == 404


def attr_path(entity_id: str, attr: str) -> str:
    return entity_path(entity_id) + "/attrs/" + attr


def without_context(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "@context"}


def is_problem(reply: Reply, status: int, *types: str) -> bool:
    """The reply is a ProblemDetails with ``status`` and one of ``types``."""
    body = reply.json if reply.raw else None
    return (reply.status == status and isinstance(body, dict)
            and body.get("type") in types and bool(body.get("detail") or body.get("title")))


# Smart Data Models: local copies of the published examples and their contexts.

def sdm_example(name: str, normalized: bool = True) -> dict[str, Any]:
    """A Smart Data Models example (``example-normalized.jsonld`` or ``example.jsonld``)."""
    file = "example-normalized.jsonld" if normalized else "example.jsonld"
    data: dict[str, Any] = json.loads((SDM_DIR / name / file).read_text())
    return data


def sdm_context_file(example: dict[str, Any]) -> Path:
    """The local ``dataModel.X.context.jsonld`` matching the example's remote @context."""
    refs = example["@context"] if isinstance(example["@context"], list) else [example["@context"]]
    for ref in refs:
        for part in str(ref).split("/"):
            if part.startswith("dataModel.") and (SDM_DIR / f"{part}.context.jsonld").exists():
                return SDM_DIR / f"{part}.context.jsonld"
    raise LookupError(f"no local context for {refs}")


def host_context(client: Client, broker_url: str, document: dict[str, Any]) -> str:
    """Add ``document`` to the broker's hosted contexts (5.13.2); its absolute URL."""
    reply = client.post(CONTEXTS, document, content_type="application/ld+json")
    assert reply.status == 201, (reply.status, reply.raw)
    location = reply.header("Location") or ""
    return location if location.startswith("http") else broker_url + location


def sdm_link(client: Client, broker_url: str, name: str) -> dict[str, str]:
    """A Link header naming the hosted copy of the example's data model context."""
    document = json.loads(sdm_context_file(sdm_example(name)).read_text())
    return {"Link": link(host_context(client, broker_url, document))}


def with_id(body: dict[str, Any], entity_id: str) -> dict[str, Any]:
    out = copy.deepcopy(without_context(body))
    out["id"] = entity_id
    return out

"""Unknown URI query parameters answer 400 InvalidRequest (6.3.20 test purposes, 059_01).

A misspelt parameter (``tpye=``, ``limt=``) would otherwise be ignored and the
client would get an answer to a question it did not ask.  The refusal comes before
the body is read: even a request whose body is wrong gets InvalidRequest.
"""

from __future__ import annotations

import pytest

from conformance.client import Client
from conformance.data import ENTITIES, INVALID, create, eid, entity, is_problem, prop

ONE = ENTITIES + "/urn:ngsi-ld:Thing:x"
CASES = [
    ("POST", ENTITIES),
    ("GET", ENTITIES + "?type=Thing"),
    ("DELETE", ENTITIES + "?type=Thing"),
    ("GET", ONE),
    ("DELETE", ONE),
    ("PATCH", ONE),
    ("PUT", ONE),
    ("POST", ONE + "/attrs"),
    ("PATCH", ONE + "/attrs"),
    ("PATCH", ONE + "/attrs/speed"),
    ("PUT", ONE + "/attrs/speed"),
    ("DELETE", ONE + "/attrs/speed"),
    ("POST", "/ngsi-ld/v1/entityOperations/create"),
    ("POST", "/ngsi-ld/v1/entityOperations/upsert"),
    ("POST", "/ngsi-ld/v1/entityOperations/update"),
    ("POST", "/ngsi-ld/v1/entityOperations/merge"),
    ("POST", "/ngsi-ld/v1/entityOperations/delete"),
    ("POST", "/ngsi-ld/v1/entityOperations/query"),
    ("GET", "/ngsi-ld/v1/types"),
    ("GET", "/ngsi-ld/v1/types/Thing"),
    ("GET", "/ngsi-ld/v1/attributes"),
    ("GET", "/ngsi-ld/v1/attributes/speed"),
    ("POST", "/ngsi-ld/v1/subscriptions"),
    ("GET", "/ngsi-ld/v1/subscriptions"),
    ("GET", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:x"),
    ("PATCH", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:x"),
    ("DELETE", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:x"),
    ("POST", "/ngsi-ld/v1/jsonldContexts"),
    ("GET", "/ngsi-ld/v1/jsonldContexts"),
    ("GET", "/ngsi-ld/v1/jsonldContexts/x"),
    ("DELETE", "/ngsi-ld/v1/jsonldContexts/x"),
]


@pytest.mark.clause("6.3.20")
@pytest.mark.parametrize(("method", "path"), CASES)
def test_unknown_parameter_is_invalid_request(client: Client, method: str, path: str) -> None:
    joiner = "&" if "?" in path else "?"
    reply = client.request(method, f"{path}{joiner}invalidParam=invalidValue",
                           raw=b'"not the body this operation takes"')
    assert is_problem(reply, 400, INVALID), (reply.status, reply.raw[:200])
    assert "invalidParam" in reply.json["detail"]


@pytest.mark.clause("6.3.20")
def test_known_parameters_still_work(client: Client, uid: str) -> None:
    made = eid("Thing", uid)
    create(client, entity(made, "Thing", speed=prop(3)))
    reply = client.get(f"{ENTITIES}/{made}?options=keyValues&attrs=speed&local=true")
    assert reply.status == 200
    reply = client.get(f"{ENTITIES}?type=Thing&id={made}&limit=5&offset=0&count=true&local=true")
    assert reply.status == 200 and reply.header("NGSILD-Results-Count") == "1"

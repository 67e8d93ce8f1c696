"""5.16 Snapshots and 6.3.22 NGSILD-Snapshot: a frozen copy of what queries selected."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from conformance.client import Client, entity_path
from conformance.data import (
    BAD_DATA,
    ENTITIES,
    NOT_FOUND,
    create,
    eid,
    entity,
    is_problem,
    prop,
)

SNAPSHOTS = "/ngsi-ld/v1/snapshots"


@pytest.fixture
def made(client: Client) -> Iterator[list[str]]:
    """Snapshot paths a case created; deleted afterwards."""
    paths: list[str] = []
    yield paths
    for path in paths:
        client.delete(path)


def snapshot(client: Client, made: list[str], body: dict[str, Any]) -> str:
    reply = client.post(SNAPSHOTS, {"type": "Snapshot", **body})
    assert reply.status == 201, reply.raw
    location = reply.header("Location") or ""
    path = location[location.index("/ngsi-ld/"):]
    made.append(path)
    return path


def _fleet(client: Client, uid: str) -> tuple[str, str, str]:
    kind = f"Car{uid}"
    fast, slow = eid(kind, uid, "fast"), eid(kind, uid, "slow")
    create(client, entity(fast, kind, speed=prop(80)))
    create(client, entity(slow, kind, speed=prop(30)))
    return kind, fast, slow


@pytest.mark.clause("5.16.1")
def test_a_snapshot_freezes_what_its_queries_select(client: Client, uid: str,
                                                    made: list[str]) -> None:
    kind, fast, slow = _fleet(client, uid)
    path = snapshot(client, made, {"snapshotQueries": [
        {"type": "Query", "entities": [{"type": kind}], "q": "speed>50"}]})
    status = client.get(path).json
    assert status["snapshotStatus"] == "success" and status["snapshotPriority"] == 5
    assert status["snapshotQueriesDetails"][0]["resultStatus"] == "success"
    assert status["lastUsedAt"] and "storeTenant" not in status
    frozen = {"NGSILD-Snapshot": status["id"]}
    assert client.patch(entity_path(fast) + "/attrs", {"speed": prop(10)}).status == 204
    listed = client.get(f"{ENTITIES}?type={kind}", headers=frozen)
    assert listed.status == 200 and listed.header("NGSILD-Snapshot") == status["id"]
    assert [e["id"] for e in listed.json] == [fast]
    assert client.get(entity_path(fast), headers=frozen).json["speed"]["value"] == 80
    assert client.get(entity_path(slow), headers=frozen).status == 404
    assert client.get(entity_path(fast)).json["speed"]["value"] == 10  # live data moved on
    assert is_problem(client.patch(entity_path(fast) + "/attrs", {"speed": prop(1)},
                                   headers=frozen), 400, BAD_DATA)


@pytest.mark.clause("6.3.22")
def test_an_unknown_snapshot_is_not_found(client: Client) -> None:
    reply = client.get(f"{ENTITIES}?type=Car", headers={"NGSILD-Snapshot": "urn:ngsi-ld:S:no"})
    assert is_problem(reply, 404, NOT_FOUND)


@pytest.mark.clause("5.16.4")
def test_update_clone_delete_and_purge(client: Client, uid: str, made: list[str]) -> None:
    kind, fast, _ = _fleet(client, uid)
    path = snapshot(client, made, {"snapshotQueries": [
        {"type": "Query", "entities": [{"type": kind}]}]})
    reply = client.patch(path, {"snapshotPriority": 2})
    assert reply.status == 200 and reply.json["snapshotPriority"] == 2
    assert is_problem(client.patch(path, {"snapshotQueries": []}), 400, BAD_DATA)
    reply = client.post(path + "/clone", {"type": "Snapshot", "snapshotPriority": 9})
    assert reply.status == 201
    location = reply.header("Location") or ""
    clone = location[location.index("/ngsi-ld/"):]
    made.append(clone)
    clone_id = client.get(clone).json["id"]
    assert is_problem(client.delete(f"{SNAPSHOTS}?q=speed>50"), 400, BAD_DATA)
    assert client.delete(f"{SNAPSHOTS}?q=snapshotPriority<5").status == 204
    assert client.get(path).status == 404 and client.get(clone).status == 200
    listed = client.get(f"{ENTITIES}?type={kind}", headers={"NGSILD-Snapshot": clone_id})
    assert len(listed.json) == 2 and fast in [e["id"] for e in listed.json]
    assert client.delete(clone).status == 204
    assert client.delete(SNAPSHOTS + "/" + quote(clone_id, safe=":")).status == 404


@pytest.mark.clause("5.16.1")
@pytest.mark.parametrize("body", [
    {},
    {"snapshotQueries": [{"type": "Query", "entities": [{"type": "V"}],
                          "temporalQ": {"timerel": "after", "timeAt": "2020-01-01T00:00:00Z"}}]},
    {"snapshotQueries": [{"type": "Query", "q": "speed>>"}]},
])
def test_an_invalid_snapshot_is_bad_request_data(client: Client, body: dict[str, Any]) -> None:
    assert is_problem(client.post(SNAPSHOTS, {"type": "Snapshot", **body}), 400, BAD_DATA)

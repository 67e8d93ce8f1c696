"""Linked Entity retrieval over HTTP on the memory store: the bound on cascades (4.5.23.1)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from broker.service import linked

E = "/ngsi-ld/v1/entities"


async def test_an_answer_links_at_most_max_linked_entities(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linked, "MAX_LINKED", 3)
    targets = [f"urn:ngsi-ld:T:{i}" for i in range(6)]
    for target in targets:
        assert (await client.post(E, json={"id": target, "type": "T",
                                           "next": {"type": "Relationship",
                                                    "object": targets}})).status == 201
    hub = {"id": "urn:ngsi-ld:Hub:1", "type": "Hub",
           "to": {"type": "Relationship", "object": targets}}
    assert (await client.post(E, json=hub)).status == 201
    flat = await (await client.get(f"{E}/urn:ngsi-ld:Hub:1?join=flat&joinLevel=5")).json()
    assert [e["id"] for e in flat] == ["urn:ngsi-ld:Hub:1", *targets[:3]]
    inline = await (await client.get(f"{E}/urn:ngsi-ld:Hub:1?join=inline&joinLevel=5")).json()
    assert len(inline["to"]["entity"]) == 3
    assert "entity" not in inline["to"]["entity"][0]["next"]  # the budget is spent


async def test_an_entity_linking_itself_is_not_inlined_in_itself(client: TestClient) -> None:
    me = {"id": "urn:ngsi-ld:T:me", "type": "T",
          "self": {"type": "Relationship", "object": "urn:ngsi-ld:T:me"}}
    assert (await client.post(E, json=me)).status == 201
    got = await (await client.get(f"{E}/urn:ngsi-ld:T:me?join=inline&joinLevel=3")).json()
    assert got["self"] == {"type": "Relationship", "object": "urn:ngsi-ld:T:me"}
    flat = await (await client.get(f"{E}/urn:ngsi-ld:T:me?join=flat&joinLevel=3")).json()
    assert [e["id"] for e in flat] == ["urn:ngsi-ld:T:me"]


async def test_a_linked_q_term_matching_too_many_entities_is_too_complex(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linked, "MAX_LINKED_MATCHES", 2)
    for n in range(3):
        person = {"id": f"urn:ngsi-ld:P:{n}", "type": "P",
                  "name": {"type": "Property", "value": "x"}}
        assert (await client.post(E, json=person)).status == 201
    reply = await client.get(E, params={"type": "T", "q": 'owner{name}=="x"', "join": "inline"})
    assert reply.status == 403
    assert (await reply.json())["type"].endswith("TooComplexQuery")
    monkeypatch.setattr(linked, "MAX_LINKED_MATCHES", 3)
    reply = await client.get(E, params={"type": "T", "q": 'owner{name}=="x"', "join": "inline"})
    assert reply.status == 200 and await reply.json() == []

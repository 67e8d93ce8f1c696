"""The service layer without HTTP: operations called directly with plain inputs (issue 14).

Each test builds a :class:`broker.service.Service` on a store and a resolver,
calls operation functions with a :class:`Call` (query parameters and header
values) and a :class:`Body`, and reads the :class:`Reply`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from broker.config import Settings
from broker.contexts import ContextResolver
from broker.service import (
    LOCAL,
    Call,
    NoSources,
    Plan,
    Reply,
    Service,
    batch,
    entities,
    purge,
    queries,
)
from ngsi_ld.bodies import JSON, Body
from ngsi_ld.errors import BadRequestData, NonexistentTenant, ResourceNotFound
from ngsi_ld.model import Change, Entity
from ngsi_ld.params import QueryParams
from ngsi_ld.query import EntityQuery
from storage import MemoryStore, SqliteStore, Store

CORE = "https://uri.etsi.org/ngsi-ld/default-context/"
ID = "urn:ngsi-ld:Room:1"
ROOM = {"id": ID, "type": "Room", "temperature": {"type": "Property", "value": 21}}


async def _service(store: Store, **settings: Any) -> Service:
    await store.open()
    resolver = ContextResolver(store)
    return Service(Settings(store="memory:", **settings), store, resolver)


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    service = await _service(MemoryStore(), multi_tenancy=True)
    yield service
    await service.store.close()


@pytest.fixture
async def sqlite_service(tmp_path: Path) -> AsyncIterator[Service]:
    service = await _service(SqliteStore(tmp_path / "broker.db"))
    yield service
    await service.store.close()


def call(**params: str) -> Call:
    return Call(params=QueryParams(params), path="/ngsi-ld/v1/entities",
                path_qs="/ngsi-ld/v1/entities?" + "&".join(f"{k}={v}" for k, v in params.items()))


def body(data: Any) -> Body:
    return Body(data=data, media_type=JSON, client_context=None)


def decoded(reply: Reply) -> Any:
    assert reply.body is not None
    return orjson.loads(reply.body)


async def test_create_then_retrieve(service: Service) -> None:
    created = await entities.create_entity(service, call(), body(dict(ROOM)))
    assert created.status == 201 and created.headers["Location"].endswith(ID)
    reply = await entities.retrieve_entity(service, call(), ID)
    assert reply.status == 200 and reply.content_type == "application/json"
    assert decoded(reply)["temperature"]["value"] == 21
    assert "Link" in reply.headers  # 6.3.5: JSON answers carry the @context in a Link
    key_values = await entities.retrieve_entity(service, call(options="keyValues"), ID)
    assert decoded(key_values) == {"id": ID, "type": "Room", "temperature": 21}


async def test_writes_are_committed_then_published(service: Service) -> None:
    heard: list[tuple[str, Change]] = []
    undo = service.on_commit(lambda tenant, change: heard.append((tenant, change)))
    await entities.create_entity(service, call(), body(dict(ROOM)))
    reply = await entities.update_attrs(
        service, call(), ID, body({"temperature": {"type": "Property", "value": 22}}))
    assert reply.status == 204
    assert [c.before is None for _, c in heard] == [True, False]
    assert heard[-1][1].after is not None
    events: list[Any] = []
    service.events.subscribe(events.append)
    undo()
    await entities.delete_entity(service, call(), ID)
    assert len(heard) == 2  # the listener is gone
    assert len(events) == 1 and events[0].after is None  # the change bus still hears


async def test_a_refused_write_publishes_nothing(service: Service) -> None:
    heard: list[Change] = []
    service.on_commit(lambda tenant, change: heard.append(change))
    with pytest.raises(ResourceNotFound):
        await entities.update_attrs(service, call(), ID, body({"t": {"value": 1}}))
    assert heard == []


async def test_tenants(service: Service) -> None:
    other = Call(params=QueryParams(), ngsild_tenant="acme")
    with pytest.raises(NonexistentTenant):
        await entities.retrieve_entity(service, other, ID)
    await entities.create_entity(service, other, body(dict(ROOM)))  # creating creates it
    assert (await entities.retrieve_entity(service, other, ID)).status == 200
    with pytest.raises(ResourceNotFound):  # not in the default tenant
        await entities.retrieve_entity(service, call(), ID)


async def test_a_snapshot_header_refuses_writes(service: Service) -> None:
    frozen = Call(params=QueryParams(), snapshot="urn:ngsi-ld:Snapshot:1")
    with pytest.raises(BadRequestData, match="reads only"):
        await entities.create_entity(service, frozen, body(dict(ROOM)))


async def test_the_versioned_read_path_and_its_caches(sqlite_service: Service) -> None:
    service = sqlite_service
    await entities.create_entity(service, call(), body(dict(ROOM)))
    first = await entities.retrieve_entity(service, call(), ID)
    second = await entities.retrieve_entity(service, call(), ID)
    assert first.body == second.body
    assert service.caches.versions.hits >= 1  # the second read needed no store read
    assert service.caches.renders.hits >= 1


async def test_query_answers_are_kept_while_nothing_changes(sqlite_service: Service) -> None:
    service = sqlite_service
    await entities.create_entity(service, call(), body(dict(ROOM)))
    one = await queries.query_entities(service, call(type="Room"))
    again = await queries.query_entities(service, call(type="Room"))
    assert await queries.query_entities(service, call(type="Room")) is again  # nothing ran
    assert again.body == one.body
    assert [e["id"] for e in decoded(one)] == [ID]
    await entities.delete_entity(service, call(), ID)
    assert decoded(await queries.query_entities(service, call(type="Room"))) == []


async def test_query_selectors_are_parsed_once(service: Service) -> None:
    await entities.create_entity(service, call(), body(dict(ROOM)))
    for _ in range(3):
        reply = await queries.query_entities(service, call(type="Room", q="temperature>20"))
        assert [e["id"] for e in decoded(reply)] == [ID]
    assert len(service.caches.parsers._queries) == 1  # parsed and resolved once
    with pytest.raises(BadRequestData):
        await queries.query_entities(service, call(type="Room", q="temperature>>"))


async def test_query_paging_links_and_count(service: Service) -> None:
    for n in range(3):
        await entities.create_entity(service, call(), body({**ROOM, "id": f"{ID}{n}"}))
    reply = await queries.query_entities(service, call(type="Room", limit="1", count="true"))
    assert reply.headers["NGSILD-Results-Count"] == "3"
    assert 'rel="next"' in reply.headers["Link"]


async def test_batch_upsert_and_purge(service: Service) -> None:
    rooms = [{**ROOM, "id": f"{ID}{n}"} for n in range(3)]
    created = await batch.batch_upsert(service, call(), body(rooms))
    assert created.status == 201 and decoded(created) == [r["id"] for r in rooms]
    assert (await batch.batch_upsert(service, call(), body(rooms))).status == 204
    assert (await purge.purge_entities(service, call(type="Room"))).status == 204
    assert decoded(await queries.query_entities(service, call(type="Room"))) == []


class FakeSources(NoSources):
    """Context sources holding one more Room, and a remote attribute of the local one
    (what it does not override: as without sources)."""

    def __init__(self) -> None:
        self.forwarded: list[tuple[str, str]] = []

    def serves(self, tenant: str) -> bool:
        return True

    def plan(self, tenant: str, operation: str, query: EntityQuery, call: Call,
             write: Entity | None = None) -> Plan:
        if call.via:
            raise BadRequestData("a loop: this broker already forwarded the request")
        return Plan(local=True, remote=("source",))

    async def fetch(self, tenant: str, operation: str, query: EntityQuery, plan: Plan,
                    call: Call, local: Sequence[Entity] = ()) -> list[Entity]:
        remote: list[Entity] = [
            {"id": "urn:ngsi-ld:Room:remote", "type": [CORE + "Room"], "attrs": {}},
            {"id": ID, "type": [CORE + "Room"],
             "attrs": {CORE + "humidity": [{"type": "Property", "value": 40}]}},
        ]
        ids = query.ids
        return [e for e in remote if ids is None or e["id"] in ids]

    def merge(self, plan: Plan, local: Sequence[Entity],
              remote: Sequence[Any]) -> list[Entity]:
        merged: dict[str, Entity] = {e["id"]: e for e in local}
        for entity in remote:
            mine = merged.get(entity["id"])
            if mine is None:
                merged[entity["id"]] = entity
            else:
                merged[entity["id"]] = {**mine, "attrs": {**mine.get("attrs", {}),
                                                          **entity.get("attrs", {})}}
        return [merged[i] for i in sorted(merged)]

    async def forward(self, tenant: str, operation: str, entity_id: str, body: Any,
                      plan: Plan, call: Call) -> list[int]:
        self.forwarded.append((operation, entity_id))
        return [207]

    def outcome(self, plan: Plan, local: Reply | None, parts: Sequence[Any]) -> Reply:
        return Reply(207) if 207 in parts else local or Reply(204)

    def holders(self, answers: Sequence[Any]) -> dict[str, list[str]]:
        return {"source": [e["id"] for e in answers]}


async def test_the_sources_seam_merges_remote_answers(sqlite_service: Service) -> None:
    service = sqlite_service
    await entities.create_entity(service, call(), body(dict(ROOM)))
    sources = FakeSources()
    service.sources = sources
    assert ("createEntity", ID) not in sources.forwarded
    one = decoded(await entities.retrieve_entity(service, call(), ID))
    assert one["temperature"]["value"] == 21 and one["humidity"]["value"] == 40
    found = decoded(await queries.query_entities(service, call(type="Room")))
    assert [e["id"] for e in found] == [ID, "urn:ngsi-ld:Room:remote"]
    reply = await entities.update_attrs(
        service, call(), ID, body({"temperature": {"type": "Property", "value": 5}}))
    assert sources.forwarded == [("updateAttributes", ID)] and reply.status == 207
    looped = Call(params=QueryParams(), headers={"Via": "1.1 broker-a, 1.1 broker-b"})
    assert looped.via == ("1.1 broker-a", "1.1 broker-b")
    with pytest.raises(BadRequestData, match="loop"):
        await entities.retrieve_entity(service, looped, ID)


def test_no_sources_answers_locally() -> None:
    assert NoSources().plan("", "queryEntities", EntityQuery(), Call()) is LOCAL
    assert NoSources().serves("") is False

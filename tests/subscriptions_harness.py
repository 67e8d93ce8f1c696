"""Test support for subscriptions: a store with records, the broker in-process.

:class:`RecordMemoryStore` is the memory store plus the generic record methods
subscriptions persist with; :class:`Harness` runs the broker with aiohttp's test
server next to a real notification receiver (:mod:`notify_receiver`).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from notify_receiver import Receiver

from broker.app import create_app
from broker.config import Settings
from broker.routes.subscriptions import MANAGER, SUBSCRIPTIONS
from broker.service.entities import ENTITIES
from storage.memory import MemoryStore
from subscriptions import SubscriptionManager


class RecordMemoryStore(MemoryStore):
    """MemoryStore + put_record/get_record/list_records/delete_record/all_records.

    Documents are kept serialised, as a real backend would, so a document
    that is not JSON-serialisable fails here too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[tuple[str, str, str], bytes] = {}

    async def put_record(self, tenant: str, collection: str, record_id: str,
                         document: dict[str, Any]) -> None:
        self.records[(collection, tenant, record_id)] = orjson.dumps(copy.deepcopy(document))

    async def get_record(self, tenant: str, collection: str,
                         record_id: str) -> dict[str, Any] | None:
        raw = self.records.get((collection, tenant, record_id))
        return None if raw is None else orjson.loads(raw)

    async def list_records(self, tenant: str, collection: str) -> list[dict[str, Any]]:
        return [orjson.loads(raw) for (c, t, _), raw in sorted(self.records.items())
                if c == collection and t == tenant]

    async def delete_record(self, tenant: str, collection: str, record_id: str) -> bool:
        return self.records.pop((collection, tenant, record_id), None) is not None

    async def all_records(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        return [(t, orjson.loads(raw)) for (c, t, _), raw in sorted(self.records.items())
                if c == collection]


class Harness:
    """The broker in-process (aiohttp test server) with a record store and a receiver."""

    def __init__(self, store: RecordMemoryStore | None = None,
                 settings: Settings | None = None) -> None:
        self.store = store if store is not None else RecordMemoryStore()
        # the receiver is on loopback, which the outbound policy refuses by default
        self.settings = settings or Settings(store="memory:", outbound_allow="127.0.0.0/8")
        self.receiver = Receiver()
        self.client: TestClient[Any, Any] | None = None

    async def start(self, receiver: Receiver | None = None) -> Harness:
        if receiver is not None:
            self.receiver = receiver
        elif not self.receiver.port:
            await self.receiver.start()
        app = create_app(self.settings, store=self.store)
        self.client = TestClient(TestServer(app))
        await self.client.start_server()
        return self

    async def stop(self) -> None:
        """Stop the broker (the receiver stays up: a restart can reuse it)."""
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def close(self) -> None:
        await self.stop()
        await self.receiver.close()

    @property
    def app(self) -> web.Application:
        assert self.client is not None and isinstance(self.client.server, TestServer)
        return self.client.server.app

    @property
    def manager(self) -> SubscriptionManager:
        return self.app[MANAGER]

    async def request(self, method: str, path: str, body: Any = None,
                      headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        """(status, parsed body or None, headers)."""
        assert self.client is not None
        all_headers = dict(headers or {})
        data = None
        if body is not None:
            data = orjson.dumps(body)
            all_headers.setdefault("Content-Type", "application/json")
        async with self.client.request(method, path, data=data, headers=all_headers) as resp:
            raw = await resp.read()
            return resp.status, (orjson.loads(raw) if raw else None), resp.headers

    async def subscribe(self, body: dict[str, Any], **headers: str) -> str:
        status, problem, resp_headers = await self.request(
            "POST", SUBSCRIPTIONS, {"type": "Subscription", **body}, headers)
        assert status == 201, problem
        return str(resp_headers["Location"]).rsplit("/", 1)[1]

    async def subscription(self, sub_id: str) -> dict[str, Any]:
        status, body, _ = await self.request("GET", f"{SUBSCRIPTIONS}/{sub_id}")
        assert status == 200, body
        return dict(body)

    async def create(self, entity: dict[str, Any]) -> None:
        status, body, _ = await self.request("POST", ENTITIES, entity)
        assert status == 201, body

    async def update(self, entity_id: str, attrs: dict[str, Any]) -> None:
        status, body, _ = await self.request("PATCH", f"{ENTITIES}/{entity_id}/attrs", attrs)
        assert status in (204, 207), body

    async def append(self, entity_id: str, attrs: dict[str, Any]) -> None:
        status, body, _ = await self.request("POST", f"{ENTITIES}/{entity_id}/attrs", attrs)
        assert status in (204, 207), body

    async def delete_attr(self, entity_id: str, name: str) -> None:
        status, body, _ = await self.request("DELETE", f"{ENTITIES}/{entity_id}/attrs/{name}")
        assert status == 204, body

    async def delete(self, entity_id: str) -> None:
        status, body, _ = await self.request("DELETE", f"{ENTITIES}/{entity_id}")
        assert status == 204, body


def room(n: int | str, temperature: float = 20.0, **attrs: Any) -> dict[str, Any]:
    """A small test entity of type Room."""
    entity: dict[str, Any] = {"id": f"urn:ngsi-ld:Room:{n}", "type": "Room",
                              "temperature": {"type": "Property", "value": temperature}}
    entity.update(attrs)
    return entity

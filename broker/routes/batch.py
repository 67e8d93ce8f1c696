"""Batch entity operations over HTTP (5.6.7 to 5.6.10, 5.6.20): /ngsi-ld/v1/entityOperations/*.

Adapters of ``broker.service.batch``: the body's @context rules are checked
element by element there, so the body is decoded with ``item_contexts``; its
bytes are read once the operation has checked its options, and decoded when the
operation asks (``batch.BodySource``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from broker.http import decode_body, read_bytes
from broker.service import Call, Reply, Service, batch
from broker.state import service_of
from broker.web import Handler, add_route, call_of, response_of
from ngsi_ld.bodies import Body

BASE = "/ngsi-ld/v1/entityOperations"

Operation = Callable[[Service, Call, batch.BodySource], Awaitable[Reply]]


def _batch(operation: Operation) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        service = service_of(request)

        async def body() -> Callable[[], Body]:  # read once the options are checked
            raw, content_type = await read_bytes(request, service.settings.max_body_size)
            return lambda: decode_body(request, raw, content_type, item_contexts=True)

        call = call_of(request)
        return response_of(await operation(service, call, body), call)

    return handler


def setup(app: web.Application) -> None:
    add_route(app, "POST", BASE + "/create", _batch(batch.batch_create), "batchCreate")
    add_route(app, "POST", BASE + "/upsert", _batch(batch.batch_upsert), "batchUpsert")
    add_route(app, "POST", BASE + "/update", _batch(batch.batch_update), "batchUpdate")
    add_route(app, "POST", BASE + "/merge", _batch(batch.batch_merge), "batchMerge")
    add_route(app, "POST", BASE + "/delete", _batch(batch.batch_delete), "batchDelete")

"""The explorer's routes: the page, its assets, its live change stream, the tenant list.

``GET /explorer/`` serves the page (``static/index.html``); the page then uses
the ordinary NGSI-LD API for everything it shows, and
``GET /explorer/events?tenant=T&context=URL`` for live updates: a
server-sent-event stream fed by the broker's change events (``broker.explorer.live``),
one ``changes`` event per batch of writes::

    event: changes
    data: {"changes": [{"id": ..., "type": [...], "trigger": "entityUpdated",
                        "attributes": [...], "entity": {keyValues} | null}]}

and a ``reset`` event when the page fell too far behind and should reload.
Names are compacted with the ``context`` the page uses (default: the core
context).  ``GET /explorer/tenants`` lists the tenants for the page's selector;
``GET /explorer/features`` tells the page what this broker serves
(``{"temporal": bool}``), so that it asks the temporal API only when it is on
(a request that answers 501 would be an error in the browser's console).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from broker.explorer.live import LiveFeeds
from broker.http import json_response
from broker.state import BROKER, Broker, broker_of
from broker.web import around
from ngsi_ld.changes import ChangeEvent
from ngsi_ld.errors import NonexistentTenant, ResourceNotFound
from ngsi_ld.headers import tenant_name
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.representation import render_entity

log = logging.getLogger("broker.explorer")

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/explorer"
FEEDS = web.AppKey("explorer_feeds", LiveFeeds)
ASSETS = web.AppKey("explorer_assets", dict[str, Path])
#: entities rendered between two yields to the event loop (other requests go on)
RENDER_SLICE = 200


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def asset(request: web.Request) -> web.StreamResponse:
    """One of the built files (a fixed list: nothing else of the disk is reachable)."""
    name = request.match_info["name"]
    path = request.app[ASSETS].get(name)
    if path is None:
        raise ResourceNotFound(f"the explorer has no asset named {name!r}")
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


async def to_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(PREFIX + "/")


async def tenants(request: web.Request) -> web.Response:
    names = await broker_of(request).store.list_tenants()
    return json_response({"tenants": ["", *sorted(names)]})


async def features(request: web.Request) -> web.Response:
    settings = broker_of(request).settings
    return json_response({"temporal": settings.temporal})


async def _tenant(broker: Broker, request: web.Request) -> str:
    # the rule of the NGSILD-Tenant header (6.3.14): names compare lower-cased
    tenant = tenant_name(request.query.get("tenant"), None, broker.settings.multi_tenancy)
    if tenant and not await broker.store.tenant_exists(tenant):
        raise NonexistentTenant(f"tenant {tenant!r} does not exist")
    return tenant


def describe(ctx: ActiveContext, event: ChangeEvent) -> dict[str, Any]:
    """One change as the page receives it, names compacted with ``ctx``."""
    compact = ctx.compact_iri
    source = event.after if event.after is not None else event.before or {}
    return {
        "id": event.entity_id,
        "type": [compact(t) for t in source.get("type", ())],
        "trigger": event.trigger,
        "attributes": [compact(name) for name in event.attributes],
        "entity": None if event.after is None else render_entity(
            event.after, fmt="keyValues", compact=compact),
    }


async def events(request: web.Request) -> web.StreamResponse:
    """The server-sent-event stream of one page (see the module docstring)."""
    broker = broker_of(request)
    tenant = await _tenant(broker, request)
    ctx = await broker.resolver.active(request.query.get("context") or None)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",  # proxies must not hold the stream back
    })
    await response.prepare(request)
    feeds = request.app[FEEDS]
    feed = feeds.connect(tenant)
    try:
        await response.write(b": connected\n\n")
        while True:
            changes, overflowed = await feed.next()
            if feed.closed:
                break
            if overflowed:
                await response.write(b"event: reset\ndata: {}\n\n")
            if changes:
                await response.write(await _message(ctx, changes))
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the page went away (or the broker stops): nothing to tell anyone
    finally:
        feeds.disconnect(feed)
    return response


async def _message(ctx: ActiveContext, changes: list[ChangeEvent]) -> bytes:
    described: list[dict[str, Any]] = []
    for start in range(0, len(changes), RENDER_SLICE):
        described.extend(describe(ctx, event) for event in changes[start:start + RENDER_SLICE])
        await asyncio.sleep(0)  # a large batch must not hold up other requests
    return b"event: changes\ndata: " + orjson.dumps({"changes": described}) + b"\n\n"


async def _close_streams(app: web.Application) -> None:
    app[FEEDS].close_all()


def setup(app: web.Application) -> None:
    """Mount the explorer under /explorer (the broker's --explorer option)."""
    broker: Broker = app[BROKER]
    app[FEEDS] = LiveFeeds(broker.events)
    app.on_shutdown.append(_close_streams)
    app.router.add_get(PREFIX, around(app, to_page))
    app.router.add_get(PREFIX + "/", around(app, page))
    app.router.add_get(PREFIX + "/events", around(app, events))
    app.router.add_get(PREFIX + "/tenants", around(app, tenants))
    app.router.add_get(PREFIX + "/features", around(app, features))
    app[ASSETS] = {p.name: p for p in STATIC.iterdir() if p.is_file() and p.name != "index.html"}
    app.router.add_get(PREFIX + "/assets/{name}", around(app, asset))

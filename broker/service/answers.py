"""Entities rendered into answers: the render cache, transient entities, @context placement.

An entity renders as a View says (``ngsi_ld.view``) with the request's
ActiveContext; its bytes are kept in the render cache under (tenant, id,
version, view, client_context), so a later read of the same version renders nothing
(see :mod:`broker.service.caches`).  A transient entity (4.22) is shown as
valid now and never cached.  The answer then carries its @context in the body
or in a Link header (6.3.5, 6.3.6: ``ngsi_ld.bodies.context_in_body``).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import orjson

from broker.expiry import now_millis
from broker.service.caches import EMPTY, join_array, with_context
from broker.service.core import Service
from broker.service.reply import Reply, json_reply
from ngsi_ld.bodies import GEO_JSON, context_in_body
from ngsi_ld.expiry import earliest_expiry, without_expired
from ngsi_ld.headers import link_header
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity
from ngsi_ld.view import View
from storage.versioned import Versioned, Wanted

__all__ = [
    "EMPTY", "entity_reply", "inline_context", "link_only", "live", "render_cached",
    "render_page", "rendered_at", "rendered_body", "rendered_reply", "uncached",
]

def live(entity: Entity) -> Entity | None:
    """The entity as valid now (clause 4.22): None if it expired, else without the
    attribute instances and sub-attributes that expired, whether swept yet or not."""
    return without_expired(entity, now_millis())


def render_cached(
    service: Service, tenant: str, view: View, ctx: ActiveContext, item: Versioned
) -> bytes | None:
    """The JSON of one entity as ``view`` renders it, from the render cache when it has it.

    None when the cache lacks it and ``item`` carries no document, or when the
    entity expired (clause 4.22).
    """
    key: Hashable = (tenant, item.entity_id, item.version, view.key, ctx)
    body = service.caches.renders.get(key)
    return _rendered(service, key, view, ctx, item) if body is None else body


def render_page(
    service: Service, tenant: str, view: View, ctx: ActiveContext, items: list[Versioned]
) -> list[bytes | None]:
    """:func:`render_cached` of each of ``items`` (a query's page), the cache asked once."""
    view_key = view.key
    keys: list[Hashable] = [(tenant, item.entity_id, item.version, view_key, ctx)
                            for item in items]
    bodies = service.caches.renders.get_many(keys)
    if None in bodies:
        for n, body in enumerate(bodies):
            if body is None:
                bodies[n] = _rendered(service, keys[n], view, ctx, items[n])
    return bodies


def _rendered(
    service: Service, key: Hashable, view: View, ctx: ActiveContext, item: Versioned
) -> bytes | None:
    """The rendering of ``item`` the cache lacks (kept under ``key``); None without a
    document, or for an entity that expired (clause 4.22)."""
    if not item.has_document:
        return None
    entity = item.entity
    if earliest_expiry(entity) is not None:
        # 4.22: a transient entity is shown as valid now (None once it expired,
        # swept or not) and never cached, for what it shows changes with time
        current = live(entity)
        return None if current is None else orjson.dumps(view.render(ctx, current))
    body = orjson.dumps(view.render(ctx, entity))
    service.caches.renders.put(key, body)
    return body


def rendered_at(service: Service, tenant: str, entity_id: str, version: int, view: View,
                ctx: ActiveContext) -> bytes | None:
    """The cached rendering of one version of an entity, or None."""
    return service.caches.renders.get((tenant, entity_id, version, view.key, ctx))


def uncached(service: Service, tenant: str, view: View, ctx: ActiveContext) -> Wanted:
    """``wanted(entity_id, version)`` for a versioned read: True when not cached."""
    cache, view_key = service.caches.renders, view.key

    def wanted(entity_id: str, version: int) -> bool:
        return (tenant, entity_id, version, view_key, ctx) not in cache

    return wanted


async def entity_reply(
    service: Service,
    data: Any,
    media_type: str,
    client_context: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    prefer: str | None = None,
    tenant: str,
) -> Reply:
    """A JSON reply with its @context: in the Link header for JSON, in the body for
    JSON-LD (clause 6.3.5) and for GeoJSON unless ``prefer`` says body=json (6.3.6).

    A GeoJSON ``data`` is one object (a Feature or a FeatureCollection) that gets
    the @context at its top level."""
    headers = dict(headers or {})
    if context_in_body(media_type, prefer):
        body_context = service.resolver.body_context(client_context)
        if isinstance(data, list):
            data = [{"@context": body_context, **item} for item in data]
        elif media_type == GEO_JSON:
            data = {**data, "@context": body_context}
        else:
            data = {"@context": body_context, **data}
    else:
        headers["Link"] = link_header(await service.resolver.response_url(client_context, tenant))
    return json_reply(data, status, media_type, headers)


async def rendered_reply(
    service: Service,
    parts: list[bytes] | bytes,
    media_type: str,
    client_context: Any,
    headers: dict[str, str] | None = None,
    *,
    prefer: str | None = None,
    tenant: str,
) -> Reply:
    """As :func:`entity_reply` for entities already encoded: one (bytes) or an array (list).

    The bytes are those ``entity_reply`` would produce from the decoded entities.
    """
    headers = dict(headers or {})
    body_context = None
    if context_in_body(media_type, prefer):
        body_context = orjson.dumps(service.resolver.body_context(client_context))
    else:
        headers["Link"] = link_header(await service.resolver.response_url(client_context, tenant))
    if media_type == GEO_JSON:
        if isinstance(parts, bytes):  # one Feature
            body = parts if body_context is None else with_context(body_context, parts)
        else:
            body = b'{"type":"FeatureCollection","features":' + join_array(parts)
            body += b"}" if body_context is None else b',"@context":' + body_context + b"}"
    elif isinstance(parts, bytes):
        body = parts if body_context is None else with_context(body_context, parts)
    else:
        body = rendered_body(parts, body_context)
    return Reply(200, body, media_type, headers)


def rendered_body(parts: list[bytes], body_context: bytes | None) -> bytes:
    """The JSON array of encoded entities (JSON or JSON-LD, not GeoJSON), each given the
    encoded ``body_context`` as its @context when there is one (6.3.5)."""
    if body_context is None:
        return join_array(parts)
    return join_array([with_context(body_context, part) for part in parts])


def inline_context(client_context: Any) -> bool:
    """True if the request carried an inline @context (not none, not a URL): the one a
    bodiless answer links to once hosted (see :func:`link_only`)."""
    return client_context is not None and not isinstance(client_context, str)


async def link_only(service: Service, client_context: Any, tenant: str) -> dict[str, str]:
    """Headers for a bodiless answer to a request that carried an inline @context
    (hosted as ImplicitlyCreated for ``tenant``, the tenant the request names)."""
    if not inline_context(client_context):
        return {}
    return {"Link": link_header(await service.resolver.response_url(client_context, tenant))}

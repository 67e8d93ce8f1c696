"""Pieces every entity route shares: ids, contexts, representations, change events."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import orjson
from aiohttp import web

from broker.app import Broker
from broker.expiry import now_millis
from broker.http import (
    GEO_JSON,
    JSON,
    LD_JSON,
    json_response,
    link_header,
    parse_prefer,
    requested_version,
    version_applied,
)
from broker.render_cache import join_array, with_context
from broker.routes.view import (
    FORMATS,
    READ_OPTIONS,
    View,
    csv,
    expanded_names,
    make_view,
    preferred_version,
    projection,
    view_of,
)
from ngsi_ld.attributes import is_iri
from ngsi_ld.errors import BadRequestData
from ngsi_ld.expiry import earliest_expiry, without_expired
from ngsi_ld.jsonld import ActiveContext
from storage.base import Change, Mutation, Outcome
from storage.versioned import Versioned, Wanted

ENTITIES = "/ngsi-ld/v1/entities"


def path_entity_id(request: web.Request) -> str:
    """The ``{entityId}`` of the path, which must be an absolute URI (clause 4.5.2)."""
    entity_id = request.match_info["entityId"]
    if not is_iri(entity_id):
        raise BadRequestData(f"entity id {entity_id!r} is not an absolute URI")
    return entity_id


def render_cached(
    broker: Broker, tenant: str, view: View, ctx: ActiveContext, item: Versioned
) -> bytes | None:
    """The JSON of one entity as ``view`` renders it, from the render cache when it has it.

    None when the cache lacks it and ``item`` carries no document, or when the
    entity expired (clause 4.22).
    """
    key: Hashable = (tenant, item.entity_id, item.version, view.key, ctx)
    cache = broker.renders
    body = cache.get(key)
    if body is None:
        if not item.has_document:
            return None
        entity = item.entity
        if earliest_expiry(entity) is not None:
            # 4.22: a transient entity is shown as valid now (None once it expired,
            # swept or not) and never cached, for what it shows changes with time
            current = live(entity)
            return None if current is None else orjson.dumps(view.render(ctx, current))
        body = orjson.dumps(view.render(ctx, entity))
        cache.put(key, body)
    return body


def live(entity: dict[str, Any]) -> dict[str, Any] | None:
    """The entity as valid now (clause 4.22): None if it expired, else without the
    attribute instances and sub-attributes that expired, whether swept yet or not."""
    return without_expired(entity, now_millis())


def rendered_at(
    broker: Broker, tenant: str, entity_id: str, version: int, view: View, ctx: ActiveContext
) -> bytes | None:
    """The cached rendering of one version of an entity, or None."""
    return broker.renders.get((tenant, entity_id, version, view.key, ctx))


def uncached(broker: Broker, tenant: str, view: View, ctx: ActiveContext) -> Wanted:
    """``wanted(entity_id, version)`` for a versioned read: True when not cached."""
    cache, view_key = broker.renders, view.key

    def wanted(entity_id: str, version: int) -> bool:
        return (tenant, entity_id, version, view_key, ctx) not in cache

    return wanted


def context_in_body(media_type: str, prefer: str | None) -> bool:
    """Whether a response carries its @context in the body rather than a Link header.

    6.3.5: JSON-LD always does, JSON never.  6.3.6: GeoJSON does too, at the top
    level of the Feature or FeatureCollection, unless the request's ``Prefer``
    header asks for ``body=json`` (RFC 7240), which moves it to the Link header.
    """
    if media_type == LD_JSON:
        return True
    return media_type == GEO_JSON and not prefers_json_body(prefer)


def prefers_json_body(prefer: str | None) -> bool:
    """True when a ``Prefer`` header holds the preference ``body=json`` (RFC 7240)."""
    return prefer is not None and parse_prefer(prefer).get("body", "").lower() == "json"


async def respond(
    broker: Broker,
    data: Any,
    media_type: str,
    context: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    prefer: str | None = None,
) -> web.Response:
    """A JSON response with its @context: in the Link header for JSON, in the body
    for JSON-LD (clause 6.3.5) and for GeoJSON unless ``prefer`` says body=json (6.3.6).

    A GeoJSON ``data`` is one object (a Feature or a FeatureCollection) that gets
    the @context at its top level."""
    headers = dict(headers or {})
    if context_in_body(media_type, prefer):
        body_context = broker.resolver.body_context(context)
        if isinstance(data, list):
            data = [{"@context": body_context, **item} for item in data]
        elif media_type == GEO_JSON:
            data = {**data, "@context": body_context}
        else:
            data = {"@context": body_context, **data}
    else:
        headers["Link"] = link_header(await broker.resolver.response_url(context))
    return json_response(data, status=status, content_type=media_type, headers=headers)


async def respond_rendered(
    broker: Broker,
    parts: list[bytes] | bytes,
    media_type: str,
    context: Any,
    headers: dict[str, str] | None = None,
    *,
    prefer: str | None = None,
) -> web.Response:
    """As :func:`respond` for entities already encoded: one (bytes) or an array (list).

    The bytes are those ``respond`` would produce from the decoded entities.
    """
    headers = dict(headers or {})
    body_context = None
    if context_in_body(media_type, prefer):
        body_context = orjson.dumps(broker.resolver.body_context(context))
    else:
        headers["Link"] = link_header(await broker.resolver.response_url(context))
    if media_type == GEO_JSON:
        if isinstance(parts, bytes):  # one Feature
            body = parts if body_context is None else with_context(body_context, parts)
        else:
            body = b'{"type":"FeatureCollection","features":' + join_array(parts)
            body += b"}" if body_context is None else b',"@context":' + body_context + b"}"
    elif body_context is not None:
        if isinstance(parts, bytes):
            body = with_context(body_context, parts)
        else:
            body = join_array([with_context(body_context, part) for part in parts])
    elif isinstance(parts, bytes):
        body = parts
    else:
        body = join_array(parts)
    return web.Response(body=body, status=200, content_type=media_type, headers=headers)


async def link_only(broker: Broker, context: Any) -> dict[str, str]:
    """Headers for a bodiless answer to a request that carried an inline @context."""
    if context is None or isinstance(context, str):
        return {}
    return {"Link": link_header(await broker.resolver.response_url(context))}


def publish(broker: Broker, tenant: str, change: Change) -> None:
    """Tell the subscriptions what changed (one event per entity write), and the expiry
    sweeper what may expire (clause 4.22)."""
    broker.events.publish_change(tenant, change.entity_id, change.before, change.after)
    if broker.expiry is not None and change.after is not None:
        broker.expiry.note(change.after)


async def commit(broker: Broker, tenant: str, entity_id: str, mutation: Mutation) -> Change:
    """Write one entity through the store (atomically) and publish its change event."""
    change = await broker.store.modify(tenant, entity_id, mutation)
    publish(broker, tenant, change)
    return change


async def commit_many(
    broker: Broker, tenant: str, mutations: Sequence[tuple[str, Mutation]]
) -> list[Outcome]:
    """Write several entities (each whole or not at all); publish every change that happened."""
    outcomes = await broker.store.modify_many(tenant, mutations) if mutations else []
    for outcome in outcomes:
        if outcome.change is not None:
            publish(broker, tenant, outcome.change)
    return outcomes


def wants_key_values(opts: set[str]) -> bool:
    """``options=keyValues`` (or its alias ``simplified``): attributes sent as bare values."""
    return bool(opts & {"keyValues", "simplified"})


READ_MEDIA = (JSON, LD_JSON, GEO_JSON)

__all__ = [
    "ENTITIES", "FORMATS", "READ_MEDIA", "READ_OPTIONS", "View", "commit", "commit_many",
    "context_in_body", "csv", "expanded_names", "link_only", "make_view", "path_entity_id",
    "preferred_version", "prefers_json_body", "projection", "publish", "render_cached",
    "rendered_at",
    "requested_version", "respond", "respond_rendered", "uncached", "version_applied",
    "view_of", "wants_key_values",
]

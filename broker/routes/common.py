"""Pieces every entity route shares: ids, contexts, representations, change events."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from broker.app import Broker
from broker.expiry import now_millis
from broker.http import GEO_JSON, JSON, LD_JSON, json_response, link_header, options
from broker.render_cache import join_array, with_context
from broker.storage.base import Change, Mutation, Outcome
from broker.storage.versioned import Versioned, Wanted
from ngsi_ld.attributes import is_iri
from ngsi_ld.errors import BadRequestData
from ngsi_ld.expiry import earliest_expiry, without_expired
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.projection import parse_projection
from ngsi_ld.representation import (
    DuplicateName,
    Format,
    render_entity,
    select_attributes,
    to_feature,
)

ENTITIES = "/ngsi-ld/v1/entities"
READ_OPTIONS = frozenset({"keyValues", "simplified", "concise", "normalized", "sysAttrs"})
FORMATS: dict[str, Format] = {
    "keyValues": "keyValues",
    "simplified": "keyValues",
    "concise": "concise",
    "normalized": "normalized",
}


def path_entity_id(request: web.Request) -> str:
    """The ``{entityId}`` of the path, which must be an absolute URI (clause 4.5.2)."""
    entity_id = request.match_info["entityId"]
    if not is_iri(entity_id):
        raise BadRequestData(f"entity id {entity_id!r} is not an absolute URI")
    return entity_id


def csv(request: web.Request, name: str) -> list[str] | None:
    """A comma-separated query parameter, or None when absent."""
    raw = request.query.getall(name, None)
    if raw is None:
        return None
    items = [item.strip() for value in raw for item in value.split(",") if item.strip()]
    if not items:
        raise BadRequestData(f"query parameter {name} is empty")
    return items


@dataclass(slots=True)
class View:
    """How to render entities for one request (5.7.1 retrieval options)."""

    media_type: str
    fmt: Format
    sys_attrs: bool
    lang: str | None
    attrs: set[str] | None
    pick: set[str] | None
    omit: set[str] | None
    dataset_ids: list[str] | None
    geometry_property: str
    _key: tuple[Any, ...] | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> tuple[Any, ...]:
        """Everything that decides the rendering of an entity but the entity and context."""
        if self._key is None:

            def names(values: Iterable[str] | None) -> frozenset[str] | None:
                return None if values is None else frozenset(values)

            self._key = (
                self.media_type,
                self.fmt,
                self.sys_attrs,
                self.lang,
                names(self.attrs),
                names(self.pick),
                names(self.omit),
                None if self.dataset_ids is None else tuple(self.dataset_ids),
                self.geometry_property if self.media_type == GEO_JSON else None,
            )
        return self._key

    def select(self, entity: dict[str, Any]) -> dict[str, Any]:
        if (
            self.attrs is None
            and self.pick is None
            and self.omit is None
            and self.dataset_ids is None
        ):
            return entity
        return select_attributes(
            entity, attrs=self.attrs, pick=self.pick, omit=self.omit, dataset_ids=self.dataset_ids
        )

    def render(self, ctx: ActiveContext, entity: dict[str, Any]) -> dict[str, Any]:
        """Select (on expanded names), compact, then render one entity."""
        selected = self.select(entity)
        if self.media_type != GEO_JSON:
            try:
                # one pass renaming while rendering: the same as compacting first
                return render_entity(
                    selected,
                    fmt=self.fmt,
                    sys_attrs=self.sys_attrs,
                    lang=self.lang,
                    compact=ctx.compact_iri,
                )
            except DuplicateName:
                pass  # compact_entity names the clash in a BadRequestData
        compacted = ctx.compact_entity(selected)
        if self.media_type == GEO_JSON:
            return to_feature(
                compacted,
                geometry_property=ctx.compact_iri(self.geometry_property),
                fmt=self.fmt,
                sys_attrs=self.sys_attrs,
                lang=self.lang,
            )
        return render_entity(
            compacted,
            fmt=self.fmt,
            sys_attrs=self.sys_attrs,
            lang=self.lang,
        )


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


def expanded_names(ctx: ActiveContext, names: Iterable[str] | None) -> set[str] | None:
    """Attribute names expanded with ``ctx`` (id, type and scope stay as they are)."""
    if names is None:
        return None
    return {name if name in ("id", "type", "scope") else ctx.expand_term(name) for name in names}


def view_of(
    request: web.Request,
    ctx: ActiveContext,
    media_type: str,
    allowed: frozenset[str] = READ_OPTIONS,
) -> View:
    """Parse the retrieval options of a GET (options, format, attrs, pick, omit, lang...).

    ``allowed`` are the ``options`` values the operation accepts.
    """
    fmt_param = request.query.get("format")
    if fmt_param is not None and fmt_param not in FORMATS:
        raise BadRequestData(
            f"unknown format {fmt_param!r}; use normalized, concise, keyValues or simplified"
        )
    return make_view(
        request, ctx, media_type, fmt_param,
        attrs=csv(request, "attrs"), pick=request.query.getall("pick", None),
        omit=request.query.getall("omit", None),
        dataset_ids=csv(request, "datasetId"), lang=request.query.get("lang"),
        geometry=request.query.get("geometryProperty", "location"), allowed=allowed,
        linked="join" in request.query,
    )


def make_view(
    request: web.Request,
    ctx: ActiveContext,
    media_type: str,
    fmt_param: str | None = None,
    *,
    attrs: list[str] | None,
    pick: list[str] | None,
    omit: list[str] | None,
    dataset_ids: list[str] | None,
    lang: str | None,
    geometry: str = "location",
    allowed: frozenset[str] = READ_OPTIONS,
    linked: bool = False,
) -> View:
    """A View from the request's ``options`` (and ``format``) and the given members,
    names expanded with ``ctx``: one representation at most, pick or omit.

    ``pick`` and ``omit`` are in the projection language (4.21); ``linked`` says the
    request asks for Linked Entities (``join``), which a nested projection needs.
    """
    opts = options(request, allowed)
    formats = {FORMATS[o] for o in opts if o in FORMATS}
    if fmt_param is not None:
        formats.add(FORMATS[fmt_param])
    if len(formats) > 1:
        raise BadRequestData(f"conflicting representations requested: {', '.join(sorted(formats))}")
    if pick is not None and omit is not None:
        raise BadRequestData("pick and omit cannot be used together")
    if attrs is not None and (pick is not None or omit is not None):
        # 4.21: attrs is the older projection; it is not combined with pick or omit
        raise BadRequestData("attrs cannot be used together with pick or omit")
    pick, omit = _projected(pick, "pick", linked), _projected(omit, "omit", linked)
    return View(
        media_type=media_type,
        fmt=formats.pop() if formats else "normalized",
        sys_attrs="sysAttrs" in opts,
        lang=lang,
        attrs=expanded_names(ctx, attrs),
        pick=expanded_names(ctx, pick),
        omit=expanded_names(ctx, omit),
        dataset_ids=dataset_ids,
        geometry_property=ctx.expand_term(geometry),
    )


def _projected(values: list[str] | None, what: str, linked: bool) -> list[str] | None:
    """The names a pick or omit lists (4.21); its Linked Entity parts need ``join``."""
    if values is None:
        return None
    projection = parse_projection(",".join(values), what)
    if projection.linked and not linked:
        raise BadRequestData(
            f"{what} names attributes of Linked Entities ({', '.join(projection.linked)}{{...}}):"
            " that needs join (4.5.23)"
        )
    return list(projection.names)


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
    """True when a ``Prefer`` header holds the preference ``body=json``."""
    if not prefer:
        return False
    for preference in prefer.split(","):
        name, _, value = preference.split(";", 1)[0].partition("=")
        if name.strip().lower() == "body" and value.strip().strip('"').lower() == "json":
            return True
    return False


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

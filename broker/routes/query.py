"""Clause 5.7.2 Query Entities (GET) and Purge Entities over HTTP.

The request's selectors become one :class:`ngsi_ld.query.EntityQuery` whose
names are expanded with the request's @context; the store executes it (sorted
by id, paged) and the entities are rendered like a retrieval (5.7.1 options).
:func:`answer` also serves the POST form (``query_post``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from broker.app import Broker, add_route, broker_of
from broker.http import GEO_JSON, flag, negotiate, parse_link_context
from broker.render_cache import AnswerCache
from broker.routes.common import (
    ENTITIES,
    READ_MEDIA,
    View,
    body_json,
    commit_many,
    csv,
    render_cached,
    respond,
    respond_rendered,
    uncached,
    version_applied,
    view_of,
)
from broker.routes.linked import render_entities
from broker.storage.base import Entity
from broker.storage.versioned import VersionedReads, versioned
from ngsi_ld import operations
from ngsi_ld.attributes import is_iri
from ngsi_ld.errors import BadRequestData, TooManyResults
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.query import (
    EntityQuery,
    GeoQuery,
    parse_geo_query,
    parse_q,
    parse_scope_q,
    parse_type_expr,
    resolve_names,
)
from ngsi_ld.representation import to_feature_collection

RESULTS_COUNT = "NGSILD-Results-Count"
_GEO_PARAMS = ("georel", "geometry", "coordinates")
#: entities deleted per store transaction by a purge
PURGE_BATCH = 500


def uri_list(values: list[str] | None, what: str = "id") -> list[str] | None:
    if values is None:
        return None
    for value in values:
        if not is_iri(value):
            raise BadRequestData(f"{what} {value!r} is not an absolute URI")
    return values


def geo_of(params: Mapping[str, Any], where: str) -> GeoQuery | None:
    """4.10: georel, geometry and coordinates come together (geoproperty is optional)."""
    given = [name for name in _GEO_PARAMS if params.get(name) is not None]
    if not given:
        if params.get("geoproperty") is not None:
            raise BadRequestData(f"geoproperty in {where} needs georel, geometry and coordinates")
        return None
    missing = [name for name in _GEO_PARAMS if params.get(name) is None]
    if missing:
        raise BadRequestData(f"a geo-query in {where} also needs {', '.join(missing)}")
    geoproperty = params.get("geoproperty") or "location"
    return parse_geo_query(params["georel"], params["geometry"], params["coordinates"],
                           geoproperty)


def _integer(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit():
        raise BadRequestData(f"{name} must be a non-negative integer, not {raw!r}")
    return int(raw)


def page_of(broker: Broker, request: web.Request, count: bool) -> tuple[int, int]:
    """offset and limit (6.3.10): the configured default, 403 TooManyResults over the maximum."""
    settings = broker.settings
    offset = _integer(request, "offset") or 0
    limit = _integer(request, "limit")
    if limit is None:
        limit = settings.default_page_size
    if limit > settings.max_page_size:
        raise TooManyResults(
            f"limit {limit} exceeds the maximum page size {settings.max_page_size}"
        )
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true")
    return offset, limit


# Type selectors repeat from request to request; their AST is immutable.
cached_type_expr = lru_cache(maxsize=256)(parse_type_expr)
# Dashboards repeat their q texts; the ASTs are immutable, so parses are shared
# (errors are not cached: a bad q is parsed, and refused, every time).
cached_q = lru_cache(maxsize=1024)(parse_q)


def resolve(ctx: ActiveContext, query: EntityQuery) -> EntityQuery:
    return resolve_names(query, ctx.expand_term, ctx.expand_term)


#: the parameters that make up an EntityQuery (query_of reads nothing else)
_SELECTORS = frozenset((
    "id", "idPattern", "type", "attrs", "q", "scopeQ", *_GEO_PARAMS, "geoproperty",
    "datasetId", "lang",
))
#: resolved queries by (context, selector parameters): a repeated query skips its
#: parsing and name expansion; errors are raised again, never cached
_QUERIES: OrderedDict[tuple[Any, ...], EntityQuery] = OrderedDict()
_QUERIES_MAX = 1024


def query_of(request: web.Request, ctx: ActiveContext) -> EntityQuery:
    """The selectors of GET /entities (5.7.2) and of a purge, names expanded."""
    params = request.query
    key = (ctx, *((k, v) for k, v in params.items() if k in _SELECTORS))
    query = _QUERIES.get(key)
    if query is not None:
        _QUERIES.move_to_end(key)
        return query
    query = _parse_query(request, ctx)
    _QUERIES[key] = query
    if len(_QUERIES) > _QUERIES_MAX:
        _QUERIES.popitem(last=False)
    return query


def _parse_query(request: web.Request, ctx: ActiveContext) -> EntityQuery:
    params = request.query
    type_text = params.get("type")
    q_text, scope_text = params.get("q"), params.get("scopeQ")
    query = EntityQuery(
        ids=uri_list(csv(request, "id")),
        id_pattern=params.get("idPattern"),
        type_expr=None if type_text is None else cached_type_expr(type_text),
        attrs=csv(request, "attrs"),
        q=None if q_text is None else cached_q(q_text),
        scope_q=None if scope_text is None else parse_scope_q(scope_text),
        geo_q=geo_of(params, "the query"),
        dataset_ids=csv(request, "datasetId"),
        lang=params.get("lang"),
    )
    if not query.has_selector:
        raise BadRequestData(
            "a query needs at least one of type, id, idPattern, attrs, q, scopeQ or a geo-query"
        )
    return resolve(ctx, query)


@lru_cache(maxsize=256)
def _link_prefix(path: str, rest: tuple[tuple[str, str], ...]) -> str:
    base = urlencode(rest)
    return f"{path}?{base}&" if base else f"{path}?"


def _paging_links(request: web.Request, offset: int, limit: int, more: bool) -> list[str]:
    links: list[str] = []
    if not (more or offset > 0) or limit <= 0:
        return links
    rest = tuple((k, v) for k, v in request.query.items() if k not in ("offset", "limit"))
    prefix = _link_prefix(request.path, rest)

    def url(at: int) -> str:
        return f"{prefix}limit={limit}&offset={at}"

    if offset > 0 and limit > 0:
        links.append(f'<{url(max(0, offset - limit))}>; rel="prev"')
    if more and limit > 0:
        links.append(f'<{url(offset + limit)}>; rel="next"')
    return links


async def _rendered_page(
    broker: Broker,
    store: VersionedReads,
    tenant: str,
    query: EntityQuery,
    view: View,
    ctx: ActiveContext,
    page: tuple[int, int, bool],
) -> tuple[list[bytes], int | None, bool]:
    """The page rendered, the count and whether more follow; only cache misses are decoded."""
    offset, limit, count = page
    # one more than the page tells whether a next page exists without counting
    items, total = await store.query_versioned(
        tenant, query, uncached(broker, tenant, view, ctx),
        offset=offset, limit=limit if count else limit + 1, count=count,
    )
    more = offset + limit < total if total is not None else len(items) > limit
    parts = []
    for item in items[:limit]:
        body = render_cached(broker, tenant, view, ctx, item)
        if body is None:  # dropped from the cache since the read: read it again
            again = await store.read_versioned(tenant, item.entity_id)
            body = b"" if again is None else render_cached(broker, tenant, view, ctx, again)
        if body:
            parts.append(body)
    return parts, total, more


async def answer(
    broker: Broker,
    request: web.Request,
    tenant: str,
    queries: list[EntityQuery],
    view: View,
    ctx: ActiveContext,
    context: Any,
) -> web.Response:
    """Run the queries (OR-ed), page, render; count and paging headers (6.3.10, 6.3.13)."""
    count = flag(request, "count")
    offset, limit = page_of(broker, request, count)
    total: int | None
    store = broker.store
    reads = versioned(store)
    headers = version_applied(request)
    link_context = body_json(request)
    if len(queries) == 1 and reads is not None and view.plain:
        parts, total, more = await _rendered_page(
            broker, reads, tenant, queries[0], view, ctx, (offset, limit, count)
        )
        if count:
            headers[RESULTS_COUNT] = str(total)
        response = await respond_rendered(broker, parts, view.media_type, context, headers,
                                          link_context=link_context)
    else:
        if len(queries) == 1:
            found, total = await store.query_entities(
                tenant, queries[0], offset=offset, limit=limit if count else limit + 1,
                count=count,
            )
            more = offset + limit < total if total is not None else len(found) > limit
            found = found[:limit]
        else:
            merged: dict[str, Entity] = {}
            for query in queries:
                every, _ = await store.query_entities(tenant, query)
                merged.update((e["id"], e) for e in every)
            ordered = [merged[i] for i in sorted(merged)]
            found, total = ordered[offset:offset + limit], len(ordered)
            more = offset + limit < total
        # 4.5.23: the page's Linked Entities (inline, or appended when flat)
        rendered = await render_entities(store, tenant, view, ctx, found)
        data: Any = rendered.entities
        if view.media_type == GEO_JSON:
            data = to_feature_collection(data)
        if count:
            headers[RESULTS_COUNT] = str(total)
        response = await respond(broker, data, view.media_type, context,
                                 status=203 if rendered.altered else 200, headers=headers,
                                 link_context=link_context)
    links = _paging_links(request, offset, limit, more)
    if links:
        # one Link header (some clients keep only one): the context link, then the pages
        response.headers["Link"] = ", ".join(filter(None, [response.headers.get("Link"), *links]))
    return response


def _without_geojson_format(request: web.Request) -> tuple[web.Request, bool]:
    # format=geojson selects the GeoJSON media type (6.3.7); the rest of format is a view option
    if request.query.get("format") != "geojson":
        return request, False
    rest = [(k, v) for k, v in request.query.items() if k != "format"]
    return request.clone(rel_url=request.rel_url.with_query(rest)), True


ANSWERS = web.AppKey("query_answers", AnswerCache)


# 5.7.2 Query Entities (GET)
async def query_entities(request: web.Request) -> web.StreamResponse:
    broker = broker_of(request)
    context = parse_link_context(request.headers.get("Link"))
    ctx = await broker.resolver.active(context)
    tenant = await broker.tenant(request)
    version = broker.store.data_version(tenant)  # before the query runs

    async def compute() -> web.Response:
        plain, geojson = _without_geojson_format(request)
        media = GEO_JSON if geojson else negotiate(plain.headers.get("Accept"), READ_MEDIA)
        view = view_of(plain, ctx, media)
        query = query_of(plain, ctx)
        return await answer(broker, plain, tenant, [query], view, ctx, context)

    return await request.app[ANSWERS].serve(request, tenant, version, ctx, compute)


# Purge Entities (DELETE /entities with query selectors; ETSI GS CIM 009 v1.9.1 6.4.3.3)
async def purge_entities(request: web.Request) -> web.Response:
    broker = broker_of(request)
    context = parse_link_context(request.headers.get("Link"))
    ctx = await broker.resolver.active(context)
    query = query_of(request, ctx)
    tenant = await broker.tenant(request)
    found, _ = await broker.store.query_entities(tenant, query)
    ids = [entity["id"] for entity in found]
    for start in range(0, len(ids), PURGE_BATCH):
        chunk = ids[start:start + PURGE_BATCH]
        await commit_many(broker, tenant, [(i, operations.delete_entity(i)) for i in chunk])
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app[ANSWERS] = AnswerCache()
    add_route(app, "GET", ENTITIES, query_entities, "queryEntities")
    add_route(app, "DELETE", ENTITIES, purge_entities, "purgeEntities")


__all__ = [
    "AnswerCache", "answer", "cached_q", "geo_of", "page_of", "query_of", "resolve", "setup",
    "uri_list",
]

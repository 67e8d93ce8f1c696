"""Clause 5.7.2 Query Entities (GET) over HTTP (Purge Entities: ``broker.routes.purge``).

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
from urllib.parse import quote

from aiohttp import web

from broker.app import Broker, add_route, broker_of
from broker.http import GEO_JSON, flag, negotiate, options, parse_link_context
from broker.render_cache import AnswerCache
from broker.routes.common import (
    ENTITIES,
    READ_MEDIA,
    READ_OPTIONS,
    View,
    csv,
    live,
    render_cached,
    respond,
    respond_rendered,
    uncached,
    version_applied,
    view_of,
)
from broker.routes.linked import render_entities, resolve_linked_q
from broker.routes.ordering import ordered_page, ordering_of
from ngsi_ld.attributes import is_iri
from ngsi_ld.errors import BadRequestData, TooManyResults
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.query import (
    EntityQuery,
    GeoQuery,
    TypeExpr,
    expand_values,
    parse_geo_query,
    parse_q,
    parse_scope_q,
    parse_type_expr,
    resolve_names,
)
from ngsi_ld.query.ordering import Ordering
from ngsi_ld.representation import to_feature_collection
from storage.base import Entity
from storage.versioned import VersionedReads, versioned

RESULTS_COUNT = "NGSILD-Results-Count"
#: ``type=*``: every Entity Type (Table 6.4.3.2-1)
WILDCARD = "*"
NOT_ATTRIBUTES = frozenset({"id", "type"})
#: an entity a pick reduced to nothing: left out of the answer (4.21)
EMPTY = b"{}"
#: the options of a query: a retrieval's, and ``count``
QUERY_OPTIONS = READ_OPTIONS | {"count"}
_GEO_PARAMS = ("georel", "geometry", "coordinates")


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
    "datasetId", "lang", "local", "expandValues", "csf",
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


def type_selector(text: str | None) -> TypeExpr | None:
    """The type expression of a ``type`` selector; ``*`` (every type, Table 6.4.3.2-1) is None."""
    if text is None or text == WILDCARD:
        return None
    return cached_type_expr(text)


def check_local_scope(request: web.Request, wildcard: bool, query: EntityQuery) -> None:
    """Table 6.4.3.2-1: a query names a type, attrs, q or a geo-query unless it is local;
    ``type=*`` implies ``local=true`` and contradicts an explicit ``local=false``."""
    local = flag(request, "local")
    if wildcard and "local" in request.query and not local:
        raise BadRequestData("type=* implies local=true; it cannot be combined with local=false")
    if not (local or wildcard or query.has_required_selector):
        raise BadRequestData(
            "a query needs at least one of type, attrs, q or a geo-query (or local=true)"
        )


def _parse_query(request: web.Request, ctx: ActiveContext) -> EntityQuery:
    params = request.query
    type_text = params.get("type")
    q_text, scope_text = params.get("q"), params.get("scopeQ")
    # 4.9: q may filter on Linked Entity attributes (resolve_linked_q, with join)
    q = None if q_text is None else cached_q(q_text, True)
    csf = params.get("csf")
    if csf is not None:
        # 4.9: a context source filter is a query on registrations; none are matched
        # here, but a filter that is not valid is refused (5.7.2.4)
        cached_q(csf)
    expand = csv(request, "expandValues")
    if q is not None and expand is not None:
        q = expand_values(q, expand, ctx.expand_term)
    attrs = csv(request, "attrs")
    if attrs is not None and not NOT_ATTRIBUTES.isdisjoint(attrs):
        # 4.5.x: id and type are Entity members, never Attribute names
        raise BadRequestData("attrs lists Attribute names; id and type are not Attributes")
    query = EntityQuery(
        ids=uri_list(csv(request, "id")),
        id_pattern=params.get("idPattern"),
        type_expr=type_selector(type_text),
        attrs=attrs,
        q=q,
        scope_q=None if scope_text is None else parse_scope_q(scope_text),
        geo_q=geo_of(params, "the query"),
        dataset_ids=csv(request, "datasetId"),
        lang=params.get("lang"),
    )
    check_local_scope(request, type_text == WILDCARD, query)
    return resolve(ctx, query)


#: characters a link keeps as they are: RFC 3986 allows them in a query component, and
#: none of them separates parameters (``&``, ``=`` and ``+`` are encoded)
_QUERY_SAFE = ":/@!$'()*,;?"


@lru_cache(maxsize=256)
def _link_prefix(rest: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    return tuple(f"{quote(k, safe=_QUERY_SAFE)}={quote(v, safe=_QUERY_SAFE)}" for k, v in rest)


# 4.12 and 6.3.10: the previous and next pages as Link headers.  The link names the
# resource (its path without a trailing slash) with the request's parameters sorted by
# name and limit/offset of the page, and the media type of the answer
def _paging_links(
    request: web.Request, offset: int, limit: int, more: bool, media_type: str
) -> list[str]:
    links: list[str] = []
    if not (more or offset > 0) or limit <= 0:
        return links
    rest = tuple(sorted(
        (k, v) for k, v in request.query.items() if k not in ("offset", "limit")
    ))
    params = _link_prefix(rest)
    path = request.path.rstrip("/") or "/"

    def url(at: int) -> str:
        page = sorted((*params, f"limit={limit}", f"offset={at}"))
        return f"{path}?{'&'.join(page)}"

    if offset > 0:
        links.append(f'<{url(max(0, offset - limit))}>; rel="prev"; type="{media_type}"')
    if more:
        links.append(f'<{url(offset + limit)}>; rel="next"; type="{media_type}"')
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
        if body and body != EMPTY:
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
    ordering: Ordering | None = None,
) -> web.Response:
    """Run the queries (OR-ed), order (4.23), page, render; count and paging headers
    (6.3.10, 6.3.13)."""
    # options=count is count=true (as ngsi-go asks for it)
    count = flag(request, "count") or "count" in options(request, QUERY_OPTIONS)
    offset, limit = page_of(broker, request, count)
    total: int | None
    store = broker.store
    reads = versioned(store)
    headers = version_applied(request)
    prefer = request.headers.get("Prefer")
    if ordering is None and len(queries) == 1 and reads is not None and view.plain:
        parts, total, more = await _rendered_page(
            broker, reads, tenant, queries[0], view, ctx, (offset, limit, count)
        )
        if count:
            headers[RESULTS_COUNT] = str(total)
        response = await respond_rendered(broker, parts, view.media_type, context, headers,
                                          prefer=prefer)
    else:
        if ordering is not None:
            found, total = await ordered_page(store, tenant, queries, ordering, offset, limit)
            more = offset + limit < total
            total = total if count else None
        elif len(queries) == 1:
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
        # 4.22: nothing expired is shown
        found = [e for e in (live(entity) for entity in found) if e is not None]
        # 4.5.23: the page's Linked Entities (inline, or appended when flat)
        rendered = await render_entities(store, tenant, view, ctx, found)
        # 4.21: an entity a pick reduced to nothing is left out
        data: Any = [item for item in rendered.entities if item]
        if view.media_type == GEO_JSON:
            data = to_feature_collection(data)  # respond gives it its @context
        if count:
            headers[RESULTS_COUNT] = str(total)
        response = await respond(broker, data, view.media_type, context,
                                 status=203 if rendered.altered else 200, headers=headers,
                                 prefer=prefer)
    links = _paging_links(request, offset, limit, more, view.media_type)
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
        if media != GEO_JSON and "geometryProperty" in plain.query:
            # 5.7.2.4: geometryProperty only chooses the geometry of a GeoJSON answer
            raise BadRequestData("geometryProperty needs the GeoJSON representation "
                                 "(Accept: application/geo+json)")
        view = view_of(plain, ctx, media, QUERY_OPTIONS)
        query = await resolve_linked_q(broker.store, tenant, query_of(plain, ctx), view.join)
        ordering = ordering_of(plain.query, ctx)
        return await answer(broker, request, tenant, [query], view, ctx, context, ordering)

    return await request.app[ANSWERS].serve(request, tenant, version, ctx, compute)


def setup(app: web.Application) -> None:
    app[ANSWERS] = AnswerCache()
    add_route(app, "GET", ENTITIES, query_entities, "queryEntities")


__all__ = [
    "AnswerCache", "answer", "cached_q", "geo_of", "page_of", "query_of", "resolve", "setup",
    "uri_list",
]

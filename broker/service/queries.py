"""Clause 5.7.2 Query Entities, by GET and by POST: selectors, the read path, the answer.

A GET's answer is kept in the answer cache while the store's data_version
holds (a repeated query costs a dictionary look-up); otherwise its selectors
become one EntityQuery (parsed once per distinct text, names expanded), and
one of two read paths runs:

- **versioned**: one unordered query, a store that reads versions, entities
  rendered one by one (no join, no version amendment) and no registered
  source: only the entities the render cache lacks are decoded and rendered;
- **plain**: everything else (ordering 4.23, several POST selectors OR-ed,
  Linked Entities 4.5.23, an earlier version 4.3.6.8, registered sources):
  entities are read, merged with what sources answer, ordered, paged and rendered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from broker.collation import string_key
from broker.service import entitymaps
from broker.service.answers import (
    EMPTY,
    entity_reply,
    live,
    render_cached,
    render_page,
    rendered_reply,
    uncached,
)
from broker.service.core import Call, Service
from broker.service.entities import READ_MEDIA
from broker.service.linked import render_entities, resolve_linked_q
from broker.service.reply import Reply, json_reply
from broker.service.source_renders import PageRendering
from ngsi_ld.bodies import GEO_JSON, Body, context_in_body
from ngsi_ld.errors import BadRequestData, TooManyResults
from ngsi_ld.federation import LOCAL as LOCAL_SOURCE
from ngsi_ld.federation import Pager, TemporalQuery, parse_temporal_query, render_entity_map
from ngsi_ld.headers import negotiate, parse_link_context
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity
from ngsi_ld.paging import entity_page_links, page_of
from ngsi_ld.params import Params, QueryParams, flag, options_of
from ngsi_ld.prefer import version_applied
from ngsi_ld.query import EntityQuery
from ngsi_ld.query.body import check_body_scope, post_queries
from ngsi_ld.query.ordering import Ordering, order_entities
from ngsi_ld.query.ordering_options import ordering_of, ordering_of_body
from ngsi_ld.query.selectors import SELECTORS, query_of_params, resolve
from ngsi_ld.representation import to_feature_collection
from ngsi_ld.timeutil import parse_datetime
from ngsi_ld.view import READ_OPTIONS, View, make_view, view_of
from storage.versioned import VersionedReads, versioned

__all__ = [
    "MAX_ORDERED",
    "QUERY_OPTIONS",
    "RESULTS_COUNT",
    "every_match",
    "ordered_page",
    "query_entities",
    "query_entity_map",
    "query_of",
    "query_post",
    "query_temporal_entity_map",
    "rendered_page",
]

RESULTS_COUNT = "NGSILD-Results-Count"
#: the options of a query: a retrieval's, and ``count``
QUERY_OPTIONS = READ_OPTIONS | {"count"}
#: the most entities one ordered query may sort
MAX_ORDERED = 100_000
#: sorting more entities than this runs in a worker thread
_SORT_INLINE = 500


def query_of(service: Service, params: Params, ctx: ActiveContext) -> EntityQuery:
    """The selectors of GET /entities (5.7.2) and of a purge, names expanded; a repeated
    set of selectors skips its parsing (errors are raised again, never kept)."""
    parsers = service.caches.parsers
    key = (ctx, *((k, v) for k, v in params.items() if k in SELECTORS))
    return parsers.query(key, lambda: query_of_params(params, ctx, parsers))


# 5.7.2 Query Entities (GET)
async def query_entities(service: Service, call: Call) -> Reply:
    """The answer of ``GET /entities``, from the answer cache while nothing changed
    (unless the request says ``Cache-Control: no-cache``: ``Call.fresh``)."""
    client_context = parse_link_context(call.link)
    ctx = call.active = await service.resolver.active(client_context)
    tenant = await service.tenant(call, read=True)
    version = service.store.data_version(tenant)  # before the query runs
    if service.sources.serves(tenant) or entitymaps.HEADER in call.headers \
            or "entityMap" in call.params:
        # what sources hold changes without this store knowing; an Entity map is
        # created, or walked and pruned, by the query
        version = None

    async def compute() -> Reply:
        params = call.params
        media = None
        if params.get("format") == "geojson":
            # format=geojson selects the GeoJSON media type (6.3.7); the rest of format
            # is a view option
            params = QueryParams((k, v) for k, v in params.items() if k != "format")
            media = GEO_JSON
        media = media or negotiate(call.accept, READ_MEDIA)
        if media != GEO_JSON and "geometryProperty" in params:
            # 5.7.2.4: geometryProperty only chooses the geometry of a GeoJSON answer
            raise BadRequestData("geometryProperty needs the GeoJSON representation "
                                 "(Accept: application/geo+json)")
        view = view_of(params, ctx, media, call.prefer, QUERY_OPTIONS)
        query = await resolve_linked_q(service.store, tenant, query_of(service, params, ctx),
                                       view.join)
        ordering = ordering_of(params, ctx)
        return await answer(service, call, tenant, [query], view, ctx, client_context, ordering)

    key = (tenant, call.path_qs, call.accept or "", call.link or "", call.prefer or "")
    return await service.caches.answers.serve(key, version, ctx, compute, fresh=call.fresh)


# 5.7.2 Query Entities (POST /entityOperations/query, the body is a Query 5.2.23)
async def query_post(service: Service, call: Call, body: Body) -> Reply:
    media = negotiate(call.accept, READ_MEDIA)
    ctx = call.active = await service.resolver.active(body.client_context)
    parsers = service.caches.parsers
    queries, members = post_queries(body.data, ctx.expand_term, parsers)
    check_body_scope(call.params, body.data, queries)
    view = make_view(
        call.params, ctx, media, call.prefer, attrs=members["attrs"], pick=members["pick"],
        omit=members["omit"], dataset_ids=members["datasetId"], lang=members["lang"],
        join=members["join"], allowed=QUERY_OPTIONS,
    )
    tenant = await service.tenant(call, read=True)
    resolved = [await resolve_linked_q(service.store, tenant, resolve(ctx, query), view.join)
                for query in queries]
    ordering = ordering_of_body(body.data.get("ordering"), ctx)
    return await answer(service, call, tenant, resolved, view, ctx, body.client_context, ordering)


async def answer(
    service: Service,
    call: Call,
    tenant: str,
    queries: list[EntityQuery],
    view: View,
    ctx: ActiveContext,
    client_context: Any,
    ordering: Ordering | None = None,
) -> Reply:
    """Run the queries (OR-ed), order (4.23), page, render; count and paging headers
    (6.3.10, 6.3.13)."""
    params = call.params
    # options=count is count=true (as ngsi-go asks for it)
    count = flag(params, "count") or "count" in options_of(params, QUERY_OPTIONS)
    settings = service.settings
    offset, limit = page_of(params, count, settings.default_page_size, settings.max_page_size)
    total: int | None
    store = service.store
    reads = versioned(store)
    headers = version_applied(call.prefer)
    prefer = call.prefer
    map_header = call.headers.get(entitymaps.HEADER)
    wants_map = flag(params, "entityMap")
    if (ordering is None and len(queries) == 1 and reads is not None and view.plain
            and not service.sources.serves(tenant) and map_header is None and not wants_map):
        parts, total, more = await rendered_page(
            service, reads, tenant, queries[0], view, ctx, (offset, limit, count)
        )
        if count:
            headers[RESULTS_COUNT] = str(total)
        reply = await rendered_reply(service, parts, view.media_type, client_context, headers,
                                     prefer=prefer, tenant=service.tenant_named(call))
    else:
        status = 200
        rendering: PageRendering | None = None
        if map_header is not None:  # 5.5.9.3: the pages walk the Entity map
            found, total, more = await _map_page(service, call, tenant, queries, offset,
                                                 limit, count, map_header)
            headers[entitymaps.HEADER] = map_header
        elif wants_map:  # 6.4.3.2 entityMap=true: the query's map is created, 201
            found, total, more, location = await _new_map_page(service, call, tenant, queries,
                                                               ordering, offset, limit)
            headers[entitymaps.HEADER] = location
            status = 201
        else:
            if (ordering is None and view.plain and view.media_type != GEO_JSON
                    and not context_in_body(view.media_type, prefer)
                    and service.sources.serves(tenant)):
                # the sources' entities may be rendered from their kept renderings
                rendering = call.rendering = PageRendering(view.key, ctx)
            found, total, more = await _page(service, call, tenant, queries, ordering, offset,
                                             limit, count)
            call.rendering = None
        # 4.22: nothing expired is shown
        found = [e for e in (live(entity) for entity in found) if e is not None]
        data: Any
        altered = False
        if rendering is not None and rendering.used:
            data = rendering.render(view, ctx, found)
        else:
            # 4.5.23: the page's Linked Entities (inline, or appended when flat)
            rendered = await render_entities(store, tenant, view, ctx, found)
            altered = rendered.altered
            # 4.21: an entity a pick reduced to nothing is left out
            data = [item for item in rendered.entities if item]
        if view.media_type == GEO_JSON:
            data = to_feature_collection(data)  # entity_reply gives it its @context
        if count:
            headers[RESULTS_COUNT] = str(total)
        reply = await entity_reply(service, data, view.media_type, client_context,
                                   status=203 if altered and status == 200 else status,
                                   headers=headers, prefer=prefer,
                                   tenant=service.tenant_named(call))
    reply.add_links(entity_page_links(call.path, params, offset, limit, more,
                                      view.media_type))
    return reply


async def rendered_page(
    service: Service,
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
        tenant, query, uncached(service, tenant, view, ctx),
        offset=offset, limit=limit if count else limit + 1, count=count,
    )
    more = offset + limit < total if total is not None else len(items) > limit
    parts = []
    shown = items[:limit]
    for item, body in zip(shown, render_page(service, tenant, view, ctx, shown), strict=True):
        if body is None:  # dropped from the cache since the read: read it again
            again = await store.read_versioned(tenant, item.entity_id)
            body = b"" if again is None else render_cached(service, tenant, view, ctx, again)
        if body and body != EMPTY:
            parts.append(body)
    return parts, total, more


async def _page(
    service: Service, call: Call, tenant: str, queries: list[EntityQuery],
    ordering: Ordering | None,
    offset: int, limit: int, count: bool,
) -> tuple[list[Entity], int | None, bool]:
    """The page of the plain read path: (entities, total if counted, more follow)."""
    store = service.store
    sources = service.sources
    if ordering is not None:
        found, total = await ordered_page(service, call, tenant, queries, ordering, offset,
                                          limit)
        return found, total if count else None, offset + limit < total
    if len(queries) == 1 and not sources.serves(tenant):
        found, counted = await store.query_entities(
            tenant, queries[0], offset=offset, limit=limit if count else limit + 1,
            count=count,
        )
        more = offset + limit < counted if counted is not None else len(found) > limit
        return found[:limit], counted, more
    # without a count, the first offset + limit + 1 matches of every party make the page
    # (sources answer in a stable order, merged by id: broker.federation.sources)
    ordered = await every_match(service, call, tenant, queries,
                                 None if count else offset + limit + 1)
    total = len(ordered)
    return list(ordered[offset:offset + limit]), total, offset + limit < total


async def every_match(service: Service, call: Call, tenant: str,
                      queries: Sequence[EntityQuery], limit: int | None = None,
                      holders: dict[str, list[str]] | None = None, *,
                      whole: bool = False) -> Sequence[Entity]:
    """Every entity the queries select (OR-ed), by id, merged with the sources' answers;
    ``holders`` is told who answered which (``@none``: this broker), for Entity maps.

    A single query of a page (``whole`` False) may have the sources' entities
    outside the request's page counted but not read (``broker.federation``); the
    union of several queries, or ``whole``, has every entity read."""
    merged: dict[str, Entity] = {}
    sources = service.sources
    operation = ("queryEntitiesAll" if whole
                 else "queryEntities" if len(queries) == 1 else "queryEntitiesPost")
    for query in queries:
        plan = sources.plan(tenant, operation, query, call) if sources.serves(tenant) else None
        local: list[Entity] = []
        if plan is None or plan.local:
            local, _ = await service.store.query_entities(tenant, query, limit=limit)
        if holders is not None:
            holders.setdefault(LOCAL_SOURCE, []).extend(e["id"] for e in local)
        found: Sequence[Entity] = local
        if plan is not None and plan.remote:
            answers = await sources.fetch(tenant, operation, query, plan, call, local)
            found = sources.merge(plan, local, answers)
            if holders is not None:
                for source, ids in sources.holders(answers).items():
                    holders.setdefault(source, []).extend(ids)
            if len(queries) == 1:
                # the merge answers each entity once, by id (``Sources.merge``): a page
                # far into a distributed query has hundreds, not indexed and sorted again
                return found
        merged.update((e["id"], e) for e in found)
        if limit is not None and len(merged) >= limit:
            break
    return [merged[i] for i in sorted(merged)]


# 5.14.4 Create EntityMap for Query Entities (GET /entityMaps?<query>)
async def query_entity_map(service: Service, call: Call) -> Reply:
    """The map of the query's matches (201, NGSILD-EntityMap names it)."""
    params = call.params
    entitymaps.check_wide_enough(params)
    ctx = call.active = await service.resolver.active(parse_link_context(call.link))
    tenant = await service.tenant(call, read=True)
    query = query_of(service, params, ctx)
    holders: dict[str, list[str]] = {}
    call.source_maps = {}  # 5.2.39: the sources' own maps become the linkedMaps
    await every_match(service, call, tenant, [query], MAX_ORDERED, holders)
    entity_map = await entitymaps.create_map(service, tenant, holders, params,
                                             call.source_maps)
    reply = json_reply(render_entity_map(entity_map), status=201)
    reply.headers[entitymaps.HEADER] = entitymaps.location(entity_map.id)
    return reply


# 5.14.5 Create EntityMap for Query Temporal Evolution of Entities
async def query_temporal_entity_map(service: Service, call: Call) -> Reply:
    """The map of the entities with an instance in the temporal query's window (201)."""
    params = call.params
    temporal = parse_temporal_query(params.get("timerel"), params.get("timeAt"),
                                    params.get("endTimeAt"), params.get("timeproperty"))
    if temporal is None:  # 5.14.5.4
        raise BadRequestData("a temporal Entity map needs a temporal query (timerel, timeAt)")
    ctx = call.active = await service.resolver.active(parse_link_context(call.link))
    tenant = await service.tenant(call, read=True)
    query = query_of(service, params, ctx)
    holders: dict[str, list[str]] = {}
    found = await every_match(service, call, tenant, [query], MAX_ORDERED, holders,
                              whole=True)
    inside = {e["id"] for e in found if _in_window(e, temporal)}
    kept = {source: [i for i in ids if i in inside] for source, ids in holders.items()}
    entity_map = await entitymaps.create_map(service, tenant, kept, params)
    reply = json_reply(render_entity_map(entity_map), status=201)
    reply.headers[entitymaps.HEADER] = entitymaps.location(entity_map.id)
    return reply


def _in_window(entity: Entity, temporal: TemporalQuery) -> bool:
    """True if the entity (or one of its attribute instances) has ``timeproperty`` in the
    window: what the broker holds of its evolution without a history."""
    start, end = temporal.window()
    name = temporal.timeproperty
    stamps: list[Any] = [entity.get(name)] if name in ("createdAt", "modifiedAt") else []
    for instances in (entity.get("attrs") or {}).values():
        stamps += [instance.get(name) for instance in instances]
    for stamp in stamps:
        if isinstance(stamp, str):
            at = parse_datetime(stamp)
            if (start is None or at >= start) and (end is None or at < end):
                return True
    return False


async def _new_map_page(
    service: Service, call: Call, tenant: str, queries: list[EntityQuery],
    ordering: Ordering | None, offset: int, limit: int,
) -> tuple[list[Entity], int, bool, str]:
    """5.14.4 by a query: every match read once, the map of who holds them stored, and
    the page of the answer cut from it (entities, total, more, the map's location)."""
    holders: dict[str, list[str]] = {}
    call.source_maps = {}  # 5.2.39: the sources' own maps become the linkedMaps
    entities = await every_match(service, call, tenant, queries, MAX_ORDERED, holders)
    entity_map = await entitymaps.create_map(service, tenant, holders, call.params,
                                             call.source_maps)
    if ordering is not None:
        key = await string_key(ordering.collation)
        entities = order_entities(entities, ordering, key)
    total = len(entities)
    return list(entities[offset:offset + limit]), total, offset + limit < total, \
        entitymaps.location(entity_map.id)


def _restricted(query: EntityQuery, ids: Sequence[str]) -> EntityQuery | None:
    """``query`` narrowed to ``ids`` (None when nothing is left)."""
    wanted = [i for i in ids if query.ids is None or i in query.ids]
    return replace(query, ids=wanted) if wanted else None


async def _fitting(service: Service, call: Call, tenant: str, queries: Sequence[EntityQuery],
                   ids: Sequence[str]) -> dict[str, Entity]:
    """Those of ``ids`` the queries still select, merged from their holders (5.5.9.3)."""
    narrowed = [q for q in (_restricted(query, ids) for query in queries) if q is not None]
    if not narrowed:
        return {}
    return {e["id"]: e for e in await every_match(service, call, tenant, narrowed)}


async def _map_page(
    service: Service, call: Call, tenant: str, queries: list[EntityQuery],
    offset: int, limit: int, count: bool, header: str,
) -> tuple[list[Entity], int | None, bool]:
    """5.5.9.3: one page walking the Entity map ``header`` names, each entity rechecked;
    those that no longer fit are pruned from the map, and the page filled from the next."""
    entity_map = await entitymaps.load_map(service, tenant, entitymaps.map_id_of(header))
    # 5.2.39: each source is asked within its own map, when it made one
    call.linked_maps = entity_map.linked_maps
    # a query naming its entities walks only those of the map (a hub narrowing its
    # pages to the ids it holds here never prunes the others)
    named: set[str] | None = None
    if queries and all(q.ids is not None for q in queries):
        named = {i for q in queries for i in q.ids or ()}
    walked = entity_map if named is None else entity_map.without(
        [i for i in entity_map.ids if i not in named])
    total: int | None = None
    if count:  # the matching total over every candidate of the map
        still = await _fitting(service, call, tenant, queries, walked.ids)
        gone = [i for i in walked.ids if i not in still]
        if gone:
            entity_map = entity_map.without(gone)
            walked = walked.without(gone)
            await entitymaps.save_map(service, tenant, entity_map)
        total = len(walked.ids)
    pager = Pager(walked, offset, limit)
    found: dict[str, Entity] = {}
    while ids := pager.wanted():
        fits = await _fitting(service, call, tenant, queries, ids)
        found.update(fits)
        pager.found(fits)
    if pager.pruned:
        await entitymaps.save_map(service, tenant, entity_map.without(pager.pruned))
    return [found[i] for i in pager.page], total, pager.more


async def ordered_page(
    service: Service, call: Call, tenant: str, queries: Sequence[EntityQuery],
    ordering: Ordering, offset: int, limit: int,
) -> tuple[list[Entity], int]:
    """One page of the entities the queries select (OR-ed), in ``ordering``; and their total.

    Ordering needs every match before the first page can be cut: at most
    :data:`MAX_ORDERED` (more answers 403 TooManyResults), sorted by
    :func:`ngsi_ld.query.ordering.order_entities` (in a thread when many).
    """
    entities = await every_match(service, call, tenant, queries, MAX_ORDERED + 1)
    if len(entities) > MAX_ORDERED:
        raise TooManyResults(
            f"an ordered query may sort at most {MAX_ORDERED} entities; narrow it down"
        )
    key = await string_key(ordering.collation)
    if len(entities) > _SORT_INLINE:
        ordered = await asyncio.to_thread(order_entities, entities, ordering, key)
    else:
        ordered = order_entities(entities, ordering, key)
    return ordered[offset:offset + limit], len(ordered)

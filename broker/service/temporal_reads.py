"""Clauses 5.7.3 and 5.7.4 of ETSI GS CIM 009 v1.9.1: reading the temporal evolution.

Retrieve (GET /temporal/entities/{id}), Query by GET and by POST
(/temporal/entityOperations/query).  Every one runs the same steps
(docs/temporal.md 3.5):

1. the parameters: the temporal query (4.11), the representation (6.3.12), the
   entity selectors of Query Entities and the projections (4.21);
2. the Entities, from the store's Entity records (an Entity deleted from the
   current state keeps its history), ids, idPattern and types matched here;
3. their instances, the store cutting each series to what one answer can hold
   when no filter needs more; q, geo-queries and scopeQ on the windowed instances
   (5.7.4.4, :func:`ngsi_ld.temporal.select_entity`);
4. the aggregation by the store when it can (SQL GROUP BY), else by
   :func:`ngsi_ld.temporal.aggregate`; otherwise the instance limit and
   Content-Range of 6.3.10 (:func:`ngsi_ld.temporal.paginate`);
5. the representation (:func:`ngsi_ld.temporal.render_temporal`), compacted by the
   request's @context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from broker.service import entitymaps
from broker.service.answers import entity_reply
from broker.service.core import Call, Service
from broker.service.entities import check_entity_id
from broker.service.ports import Plan, RemoteHistory
from broker.service.queries import RESULTS_COUNT, query_of
from broker.service.reply import Reply
from broker.service.temporal import history_of
from ngsi_ld.bodies import JSON, LD_JSON, Body
from ngsi_ld.errors import BadRequestData, ResourceNotFound
from ngsi_ld.headers import negotiate, parse_link_context
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.paging import page_of
from ngsi_ld.params import Params, comma_list, flag
from ngsi_ld.projection import Projection
from ngsi_ld.query import EntityQuery, matches
from ngsi_ld.query.body import post_queries
from ngsi_ld.query.linked import linked_depth
from ngsi_ld.query.selectors import resolve, type_selector
from ngsi_ld.query.typeexpr import any_of_names
from ngsi_ld.temporal import (
    SCOPE,
    AggregatedSeries,
    EntityRecord,
    Instance,
    TemporalEntity,
    TemporalOptions,
    TemporalQuery,
    aggregate,
    check_projection,
    instance_limit,
    paginate,
    parse_temporal_options,
    parse_temporal_order,
    parse_temporal_post,
    parse_temporal_query,
    render_temporal,
    select_entity,
    to_micros,
)
from ngsi_ld.temporal.body import SIMPLIFIED_MEMBERS
from ngsi_ld.temporal.window import Series
from ngsi_ld.timeutil import now_iso
from ngsi_ld.view import expanded_names, projection
from storage.temporal import TemporalHistory

__all__ = ["query_temporal", "query_temporal_post", "retrieve_temporal"]

MEDIA = (JSON, LD_JSON)


@dataclass(slots=True)
class _Read:
    """One temporal read, parsed: what to select and how to represent it."""

    query: TemporalQuery
    options: TemporalOptions
    selectors: Sequence[EntityQuery]
    attrs: list[str] | None
    dataset_ids: list[str] | None
    lang: str | None
    pick: frozenset[str] | None
    omit: frozenset[str] | None

    def check(self) -> _Read:
        """5.7.4.4: a temporal query has no Linked Entity retrieval, so no q term on a
        Linked Entity's attributes (ETSI 5741_01_03)."""
        for selector in self.selectors:
            if selector.q is not None and linked_depth(selector.q):
                raise BadRequestData("a temporal query cannot filter on Linked Entity "
                                     "attributes (5.7.4.4)")
        return self

    @property
    def filtered(self) -> bool:
        """True when instances decide which Entities are selected (q, geo, scopeQ)."""
        return any(s.q is not None or s.geo_q is not None or s.scope_q is not None
                   for s in self.selectors)


def _plain(params: Params) -> dict[str, str]:
    return {name: value for name, value in params.items()}


def _names(ctx: ActiveContext, projected: Projection | None) -> frozenset[str] | None:
    if projected is None:
        return None
    return frozenset(n if n in ("id", "type", "scope") else ctx.expand_term(n)
                     for n in projected.names)


def _representation(params: Params, ctx: ActiveContext, query: TemporalQuery,
                    options: TemporalOptions,
                    selectors: Sequence[EntityQuery]) -> _Read:
    attrs = comma_list(params, "attrs")
    pick, omit = projection(params, "pick"), projection(params, "omit")
    check_projection(attrs, pick, omit)
    names = expanded_names(ctx, attrs)
    return _Read(query, options, selectors, None if names is None else sorted(names),
                 comma_list(params, "datasetId"), params.get("lang"),
                 _names(ctx, pick), _names(ctx, omit))


async def _context(service: Service, call: Call) -> tuple[str, Any, ActiveContext]:
    media = negotiate(call.accept, MEDIA)
    client_context = parse_link_context(call.link)
    return media, client_context, await service.resolver.active(client_context)


# 5.7.3 Retrieve Temporal Evolution of an Entity
async def retrieve_temporal(service: Service, call: Call, entity_id: str) -> Reply:
    history = history_of(service)
    check_entity_id(entity_id)
    media, client_context, ctx = await _context(service, call)
    params = call.params
    plain = _plain(params)
    query, options = parse_temporal_query(plain), parse_temporal_options(plain)
    selector = resolve(ctx, EntityQuery(ids=[entity_id],
                                        type_expr=type_selector(params.get("type"))))
    read = _representation(params, ctx, query, options, [selector])
    tenant = await service.tenant(call, read=True)
    records = await _records(history, tenant, read.selectors)
    remote = await _remote(service, call, tenant, "retrieveTemporal", read)
    records = _with_remote(records, remote)
    if not records:
        raise ResourceNotFound(f"temporal entity {entity_id} not found")
    found = await _select(service, history, tenant, records, read, remote=remote)
    if not found:
        raise ResourceNotFound(f"temporal entity {entity_id} has none of the attributes asked")
    data, headers, status = _answer(service, ctx, read, found)
    if not data[0]:
        # 4.21 and 5.7.3.4: pick and omit left nothing of the Entity (ETSI 020_23)
        raise ResourceNotFound(f"pick and omit leave nothing of temporal entity {entity_id}")
    # 5.7.3.4: entityMap=true, or a map named in NGSILD-EntityMap, answered 200 with the
    # map's location (the Entity is held here: "@none")
    _, map_location, _ = await entitymaps.local_map(service, call, tenant, [entity_id])
    if map_location is not None:
        headers[entitymaps.HEADER] = map_location
    return await entity_reply(service, data[0], media, client_context, status, headers,
                              tenant=service.tenant_named(call))


# 5.7.4 Query Temporal Evolution of Entities (GET)
async def query_temporal(service: Service, call: Call) -> Reply:
    history = history_of(service)
    media, client_context, ctx = await _context(service, call)
    params = call.params
    plain = _plain(params)
    query = parse_temporal_query(plain, required=True)
    options = parse_temporal_options(plain)
    selector = query_of(service, params, ctx)
    read = _representation(params, ctx, query, options, [selector])
    return await _query(service, history, call, ctx, media, client_context, read.check())


# 5.7.4 Query Temporal Evolution of Entities (POST /temporal/entityOperations/query)
async def query_temporal_post(service: Service, call: Call, body: Body) -> Reply:
    history = history_of(service)
    media, client_context, ctx = await _context(service, call)
    data = body.data
    if not isinstance(data, dict):
        raise BadRequestData("the body must be a Query object")
    query, options = parse_temporal_post(data, _plain(call.params))
    core = {k: v for k, v in data.items() if k not in ("temporalQ", "aggrParams", "@context")}
    selectors, view = post_queries(core, ctx.expand_term, service.caches.parsers)
    pick, omit = view.get("pick"), view.get("omit")
    attrs = view.get("attrs")
    check_projection(attrs, pick, omit)
    names = expanded_names(ctx, attrs)
    read = _Read(query, options, [resolve(ctx, s) for s in selectors],
                 None if names is None else sorted(names), view.get("datasetId"),
                 view.get("lang"), _names(ctx, pick), _names(ctx, omit))
    return await _query(service, history, call, ctx, media, client_context, read.check())


async def _query(service: Service, history: TemporalHistory, call: Call, ctx: ActiveContext,
                 media: str, client_context: Any, read: _Read) -> Reply:
    params = call.params
    count = flag(params, "count") or "count" in (params.get("options") or "").split(",")
    offset, limit = page_of(params, count, service.settings.default_page_size,
                            service.settings.max_page_size)
    order = params.get("orderBy")
    descending = parse_temporal_order(order) if order is not None else False
    tenant = await service.tenant(call, read=True)
    remote = await _remote(service, call, tenant, "queryTemporal", read)
    # an Entity deleted from the current state keeps its evolution, retrieved by id
    # (5.7.3, ETSI 422_07_03), but a query selects the Entities that exist (see
    # docs/temporal.md, phase 2 readings)
    records = [r for r in await _records(history, tenant, read.selectors,
                                         _attribute_side(read, remote))
               if r.deleted_at is None]
    records = _with_remote(records, remote)
    if descending:
        records.reverse()
    # 5.7.4.4: an Entity without instances in the window is not part of the answer
    # (ETSI 021_13): which ones are is only known after reading them, then paged
    found = await _select(service, history, tenant, records, read, in_window=True,
                          remote=remote)
    # 5.7.4.4: a live Entity map named by the request fixes the Entities considered;
    # entityMap=true (or a map that is gone) records a new one, answered 201
    shown, map_location, created = await entitymaps.local_map(
        service, call, tenant, [f.record.entity_id for f in found])
    if shown is not None:
        kept = set(shown)
        found = [f for f in found if f.record.entity_id in kept]
    total = len(found)
    found = found[offset:offset + limit]
    data, headers, status = _answer(service, ctx, read, found)
    if count:
        headers[RESULTS_COUNT] = str(total)
    if map_location is not None:
        headers[entitymaps.HEADER] = map_location
        if created and status == 200:
            status = 201
    return await entity_reply(service, data, media, client_context, status, headers,
                              tenant=service.tenant_named(call))


def _attribute_side(read: _Read, remote: _Federated) -> list[str] | None:
    """The attributes whose Entities alone a query may read (None: every Entity its
    selectors select).  5.7.4.4: with ``attrs``, an Entity without an instance of one
    of them in the window is not part of the answer; the store's read of those
    attributes returns the Scope's instances too, so an Entity with a Scope only is
    read as before (:meth:`~storage.temporal.TemporalHistory.entities_with` includes
    it).  Not when instances decide the selection (q, geoQ, scopeQ: the general path
    is kept for those), nor with registered sources (their Entities are merged with
    the local records, which must all be there)."""
    if read.attrs is None or read.filtered or remote:
        return None
    return read.attrs


async def _records(history: TemporalHistory, tenant: str,
                   selectors: Sequence[EntityQuery],
                   attributes: Sequence[str] | None = None) -> list[EntityRecord]:
    """The Entity records any selector selects by id, idPattern and type, by id (the
    store chooses by the type names of a plain selector, then every selector is
    matched here); with ``attributes``, only among the Entities the store says may have
    an instance of one of them (:meth:`~storage.temporal.TemporalHistory.entities_with`:
    a query by type and attrs over 100,000 Entities of the type, a hundred of which
    have the attribute, reads a hundred records, not 100,000)."""
    chosen: dict[str, EntityRecord] = {}
    having = None if attributes is None else await history.entities_with(tenant, attributes)
    for selector in selectors:
        bare = EntityQuery(ids=selector.ids, id_pattern=selector.id_pattern,
                           type_expr=selector.type_expr)
        types = any_of_names(selector.type_expr)
        ids = selector.ids
        if having is not None:
            ids = list(having) if ids is None else [i for i in ids if i in having]
        found = await history.temporal_entities(tenant, ids=ids, types=types)
        if types is not None and selector.id_pattern is None:
            # the store selected by ids and by these names exactly as the match would
            # (one of the names among the record's types): 100,000 Streetlights matched
            # again here were two thirds of a query's event loop time
            for record in found:
                chosen.setdefault(record.entity_id, record)
            continue
        for record in found:
            entity = {"id": record.entity_id, "type": list(record.types), "attrs": {}}
            if record.entity_id not in chosen and matches(entity, bare):
                chosen[record.entity_id] = record
    return [chosen[k] for k in sorted(chosen)]


@dataclass(slots=True)
class _Remote:
    """What the sources hold of one Entity: its types and their answers."""

    types: list[str]
    held: list[RemoteHistory]


@dataclass(slots=True)
class _Federated:
    """The sources' part of a temporal read: their Entities by id and the plans (one per
    entity selector) the registration modes are applied with."""

    held: dict[str, _Remote] = field(default_factory=dict)
    plans: list[Plan] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.plans)


# 4.3.6, 5.7.3.4, 5.7.4.4: the temporal evolution held by registered sources
async def _remote(service: Service, call: Call, tenant: str, operation: str,
                  read: _Read) -> _Federated:
    """The sources' temporal Entities for ``read``, by id (none unless the tenant has
    registrations); their instances are merged with the local ones per Attribute."""
    sources = service.sources
    out = _Federated()
    if not sources.serves(tenant):
        return out
    for selector in read.selectors:
        asked = selector if read.attrs is None else EntityQuery(
            ids=selector.ids, id_pattern=selector.id_pattern, type_expr=selector.type_expr,
            attrs=read.attrs, q=selector.q, geo_q=selector.geo_q, scope_q=selector.scope_q,
            dataset_ids=selector.dataset_ids)
        answered = await sources.history(tenant, operation, asked, read.query, call)
        if not answered.federated:
            continue
        out.plans.append(answered.plan)
        for held in answered.entities:
            entry = out.held.setdefault(held.entity_id, _Remote([], []))
            entry.types += [t for t in held.types if t not in entry.types]
            entry.held.append(held)
    return out


def _with_remote(records: list[EntityRecord], remote: _Federated) -> list[EntityRecord]:
    """The local Entity records and those only sources hold, by id."""
    if not remote.held:
        return records
    known = {r.entity_id for r in records}
    extra = [EntityRecord(entity_id, tuple(held.types))
             for entity_id, held in remote.held.items() if entity_id not in known]
    return sorted([*records, *extra], key=lambda r: r.entity_id)


def _merged(service: Service, record: EntityRecord, local: Sequence[Instance],
            remote: _Federated | None, window: TemporalQuery) -> list[Instance] | None:
    """The local instances and the sources', by the registration modes (None: the
    Entity is not shown, a redirect registration holds it)."""
    if not remote:
        return list(local)
    held = remote.held.get(record.entity_id)
    return service.sources.merge_history(remote.plans, record.entity_id, record.types, local,
                                         () if held is None else held.held, window)


@dataclass(slots=True)
class _Found:
    record: EntityRecord
    series: Series
    aggregated: dict[str, list[AggregatedSeries]] | None = None


def _in_datasets(inst: Instance, dataset_ids: list[str] | None) -> bool:
    if dataset_ids is None or inst.attribute == SCOPE:
        return True
    return (inst.dataset_id or "@none") in dataset_ids


async def _select(service: Service, history: TemporalHistory, tenant: str,
                  records: list[EntityRecord], read: _Read, *,
                  in_window: bool = False,
                  remote: _Federated | None = None) -> list[_Found]:
    """The Entities of ``records`` the read selects, with their instances or aggregation;
    ``in_window``: only those with instances in the window."""
    if not records:
        return []
    ids = [r.entity_id for r in records]
    query, aggregation = read.query, read.options.aggregation
    if (aggregation is not None and not read.filtered and read.dataset_ids is None
            and not remote):  # the sources' part and the registration modes: merged here
        stored = await history.aggregate_history(tenant, ids, read.attrs, query, aggregation)
        if stored is not None:
            return [_Found(r, {}, _shown(stored.get(r.entity_id, {}), read))
                    for r in records
                    if not (in_window or read.attrs is not None) or stored.get(r.entity_id)]
    per_series = None
    if aggregation is None and not read.filtered:
        per_series = instance_limit(query, service.settings.temporal_instance_limit)[0] + 1
    instances = await history.read_history(tenant, ids, read.attrs, query, per_series)
    now = to_micros(now_iso())
    found = []
    for record in records:
        merged = _merged(service, record, instances.get(record.entity_id, ()), remote, query)
        if merged is None:
            continue
        mine = [i for i in merged if _in_datasets(i, read.dataset_ids)]
        series: Series | None = None
        for selector in read.selectors:
            series = select_entity(record.entity_id, record.types, mine, query, q=selector.q,
                                   geo_q=selector.geo_q, scope_q=selector.scope_q,
                                   dataset_ids=selector.dataset_ids, now=now)
            if series is not None:
                break
        if series is None:
            continue
        if read.attrs is not None:
            series.pop(SCOPE, None)
        if not series and (in_window or read.attrs is not None):
            continue
        aggregated = None if aggregation is None else _shown(aggregate(series, aggregation,
                                                                       query), read)
        found.append(_Found(record, series, aggregated))
    return found


def _shown(aggregated: dict[str, list[AggregatedSeries]],
           read: _Read) -> dict[str, list[AggregatedSeries]]:
    if read.attrs is None:
        return aggregated
    return {k: v for k, v in aggregated.items() if k != SCOPE}


def _answer(service: Service, ctx: ActiveContext, read: _Read,
            found: list[_Found]) -> tuple[list[dict[str, Any]], dict[str, str], int]:
    """The representations of ``found``, the Content-Range header and the status."""
    options = read.options
    headers: dict[str, str] = {}
    status = 200
    kinds: list[dict[str, str]] = [
        {name: insts[0].kind for name, insts in f.series.items() if insts} for f in found]
    if options.aggregation is None:
        page = paginate([f.series for f in found], read.query,
                        service.settings.temporal_instance_limit)
        for f, series in zip(found, page.entities, strict=True):
            f.series = series
        if page.content_range is not None:
            headers["Content-Range"] = page.content_range.header()
            status = 206
    data = []
    for f, kind_of in zip(found, kinds, strict=True):
        record = f.record
        entity = TemporalEntity(record.entity_id, record.types, f.series, record.created_at,
                                record.modified_at, record.deleted_at)
        rendered = render_temporal(
            entity, fmt=options.format, timeproperty=read.query.timeproperty,
            sys_attrs=options.sys_attrs, lang=read.lang, compact=ctx.compact_iri,
            pick=read.pick, omit=read.omit, aggregated=f.aggregated)
        if options.format == "temporalValues":
            _emptied(rendered, f.series, kind_of, ctx)
        data.append(rendered)
    return data, headers, status


def _emptied(rendered: dict[str, Any], series: Series, kind_of: dict[str, str],
             ctx: ActiveContext) -> None:
    """4.5.9: an Attribute the page cut to nothing is still a simplified Attribute, with
    no pairs (ETSI 021_15_07 reads its ``values``)."""
    for name, kind in kind_of.items():
        if name == SCOPE or series.get(name):
            continue
        shown = ctx.compact_iri(name)
        if rendered.get(shown) == []:
            rendered[shown] = {"type": kind, SIMPLIFIED_MEMBERS.get(kind, "values"): []}

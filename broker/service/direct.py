"""Query Entities (5.7.2) of the common shape, answered from a kept plan of the request.

Most ``GET /entities`` requests are a few selectors (``type``, ``q``...), a page
(``limit``, ``offset``) and a representation, sent again and again with other
pages or thresholds.  The general path (``queries.query_entities``) works out
from the request, every time, what this module works out once per distinct
request and keeps as a :class:`QueryPlan`: the tenant, the compiled @context,
the parsed and expanded query, the View, the page, the Link headers.  The same
request again (the same request target and the headers that decide the answer)
then costs the store's read of the page, the render cache and the joining of
the bytes: the answer is the one the general path gives, byte for byte (a
property test compares them).

A plan is only made for requests of the shape the versioned read path of
``queries.answer`` serves as it is: one query, no ordering (4.23), a plain View
(no Linked Entities 4.5.23, no earlier version 4.3.6.8), JSON or JSON-LD, no
Entity map (5.14), no Snapshot (6.3.22), no Prefer, and a tenant no context
source serves (``Sources.serves``).  Anything else returns no plan and the
general path answers.  Errors are never kept: a request whose plan cannot be
made raises what the general path raises, in the same order (the same parsers
run in the same sequence).

A plan holds while the compilation of its @context is the resolver's (checked
again when the resolver's generation moves: a hosted context deleted, a cached
one evicted) and no source serves its tenant (checked on every request).  The
data is never kept in a plan: every answer reads the store, or the answer cache
of the general path under the same key (``caches.AnswerCache``).

A request found off the shape (GeoJSON, Linked Entity terms in ``q``, a tenant
sources serve...) is remembered as such by the same key: the same request
again goes to the general path at once, without a Call or the planner's part
of the resolution, which the general path would only do again.  What decided
it is the request itself, the compiled @context and whether sources serve the
tenant: the memory is dropped when the resolver's generation moves or the
tenant's sources come or go, and the request is planned again.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TypeVar

import orjson

from broker.service import entitymaps
from broker.service.answers import rendered_body
from broker.service.core import Call, Service
from broker.service.entities import READ_MEDIA
from broker.service.queries import QUERY_OPTIONS, RESULTS_COUNT, query_of, rendered_page
from broker.service.reply import Reply
from ngsi_ld.bodies import GEO_JSON, context_in_body
from ngsi_ld.errors import NgsiLdError, NotAcceptable
from ngsi_ld.headers import link_header, negotiate, parse_link_context
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.paging import entity_page_links, page_of
from ngsi_ld.params import Params, flag, options_of
from ngsi_ld.query import EntityQuery
from ngsi_ld.query.linked import linked_depth
from ngsi_ld.query.ordering_options import ordering_of
from ngsi_ld.view import View, view_of
from storage.versioned import versioned

__all__ = ["PARAMETERS", "DirectQueries", "QueryPlan", "answer", "of_shape"]

#: the query parameters of the shape (5.7.2.4): entity selectors, the page, the count
#: and the representation; any other parameter leaves the request to the general path
PARAMETERS = frozenset({
    "id", "idPattern", "type", "attrs", "q", "scopeQ", "lang", "pick", "omit",
    "limit", "offset", "count", "options",
})

T = TypeVar("T")


@dataclass(slots=True)
class QueryPlan:
    """What one distinct request of the shape asks, worked out once."""

    tenant: str
    #: the request's @context (a URL, or None: the core context) and its compilation
    client_context: str | None
    ctx: ActiveContext
    #: the resolver's generation ``ctx`` was last checked under
    generation: int
    query: EntityQuery
    view: View
    offset: int
    limit: int
    count: bool
    #: 6.3.5: the @context member of each entity (JSON-LD), or None (JSON: Link header)
    body_context: bytes | None
    #: the Link header when more pages follow and when none does (6.3.5, 6.3.13)
    link_more: str | None
    link_last: str | None
    #: the key of the answer cache the general path shares (``queries.query_entities``)
    answer_key: Hashable


class DirectQueries:
    """Plans of the requests of the shape, by the request as sent; bounded, oldest out.
    The requests found off the shape are remembered too (:meth:`missed`)."""

    __slots__ = ("_misses", "_plans", "hits", "size")

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._plans: dict[Hashable, QueryPlan] = {}
        #: key -> (the tenant the request names or None, whether sources served it,
        #: the resolver's generation before it was tried): see :meth:`missed`
        self._misses: dict[Hashable, tuple[str | None, bool, int]] = {}
        #: requests answered from a plan kept since an earlier one
        self.hits = 0

    def __len__(self) -> int:
        return len(self._plans)

    def kept(self, service: Service, key: Hashable) -> QueryPlan | None:
        """The plan kept for ``key`` if it still holds, else None (then :meth:`plan`)."""
        plan = self._plans.get(key)
        if plan is None or service.sources.serves(plan.tenant):
            return None
        resolver = service.resolver
        if resolver.generation != plan.generation:
            # a compiled @context was dropped or replaced since: this one, perhaps
            if not resolver.still_active(plan.client_context, plan.ctx):
                del self._plans[key]
                return None
            plan.generation = resolver.generation
        self.hits += 1
        return plan

    def missed(self, service: Service, key: Hashable) -> bool:
        """True when :meth:`plan` found the request of ``key`` off the shape and nothing
        that decided it moved since (the compiled @context: the resolver's generation;
        the sources of the tenant): the general path answers it, no plan is tried."""
        miss = self._misses.get(key)
        if miss is None:
            return False
        tenant, served, generation = miss
        if generation != service.resolver.generation \
                or (tenant is not None and service.sources.serves(tenant) != served):
            del self._misses[key]
            return False
        return True

    async def plan(self, service: Service, key: Hashable, call: Call) -> QueryPlan | None:
        """The plan of ``call`` (kept for ``key``), None when it is not of the shape
        (remembered: :meth:`missed`); raises the error the general path answers the
        request with (never remembered)."""
        generation = service.resolver.generation  # before anything is resolved
        plan = await _plan_of(service, call)
        if plan is None:
            try:
                tenant: str | None = service.tenant_named(call)
            except NgsiLdError:  # two tenants named: the general path's 400 every time
                tenant = None
            served = tenant is not None and service.sources.serves(tenant)
            _keep(self._misses, key, (tenant, served, generation), self.size)
        else:
            self._misses.pop(key, None)
            _keep(self._plans, key, plan, self.size)
        return plan


def _keep(kept: dict[Hashable, T], key: Hashable, value: T, size: int) -> None:
    """``kept[key] = value``, the oldest entry dropped first when ``size`` are kept."""
    if len(kept) >= size and key not in kept:
        kept.pop(next(iter(kept)))
    kept[key] = value


def of_shape(params: Params, call: Call) -> bool:
    """True when the request may have a plan: its parameters and headers are of the
    shape (see the module docstring), and it passes the preconditions of 6.3.4 (which
    the general path checks first); what they hold is checked by :func:`_plan_of`."""
    if (call.prefer is not None or call.snapshot is not None
            or not PARAMETERS.issuperset(params.keys()) or entitymaps.HEADER in call.headers):
        return False
    try:
        return negotiate(call.accept, READ_MEDIA) != GEO_JSON
    except NotAcceptable:  # 406: the general path answers it
        return False


# 5.7.2 Query Entities: the steps of queries.query_entities and queries.answer, in their
# order, stopping where the general path leaves the versioned read path
async def _plan_of(service: Service, call: Call) -> QueryPlan | None:
    params = call.params
    if versioned(service.store) is None or not of_shape(params, call):
        # a store without versioned reads (MongoDB, memory) is never planned: asked
        # first, before the request's @context, tenant and query are worked out for
        # nothing and then again by the general path
        return None
    try:
        named = service.tenant_named(call)
    except NgsiLdError:  # two tenants named: the general path answers, in its order
        return None
    if service.sources.serves(named):  # what sources hold is asked on every request
        return None
    client_context = parse_link_context(call.link)
    resolver = service.resolver
    generation = resolver.generation
    ctx = call.active = await resolver.active(client_context)
    tenant = await service.tenant(call, read=True)
    if service.sources.serves(tenant):
        return None
    media = negotiate(call.accept, READ_MEDIA)
    view = view_of(params, ctx, media, call.prefer, QUERY_OPTIONS)
    query = query_of(service, params, ctx)
    if query.q is not None and linked_depth(query.q):
        return None  # 4.9: Linked Entity terms are resolved against the store each time
    if ordering_of(params, ctx) is not None or not view.plain:
        return None
    count = flag(params, "count") or "count" in options_of(params, QUERY_OPTIONS)
    settings = service.settings
    offset, limit = page_of(params, count, settings.default_page_size, settings.max_page_size)
    body_context = None
    context_link = None
    if context_in_body(media, call.prefer):
        body_context = orjson.dumps(resolver.body_context(client_context))
    else:
        context_link = link_header(await resolver.response_url(client_context, named))

    def links(more: bool) -> str | None:
        # Reply.add_links: one Link header, the @context link first
        pages = entity_page_links(call.path, params, offset, limit, more, media)
        return ", ".join(filter(None, [context_link, *pages])) or None

    return QueryPlan(
        tenant=tenant, client_context=client_context, ctx=ctx, generation=generation,
        query=query, view=view, offset=offset, limit=limit, count=count,
        body_context=body_context, link_more=links(True), link_last=links(False),
        answer_key=(tenant, call.path_qs, call.accept or "", call.link or "", ""),
    )


async def answer(service: Service, plan: QueryPlan, *, fresh: bool = False) -> Reply:
    """The answer of a request of ``plan``: what ``queries.query_entities`` answers;
    ``fresh`` (``Cache-Control: no-cache``, RFC 9111 5.2.1.4) reads the store even when
    the answer cache holds the answer (the plan is no answer: it holds no data)."""
    tenant, ctx = plan.tenant, plan.ctx
    answers = service.caches.answers
    store = service.store
    version = store.data_version(tenant)  # before the query runs
    if version is not None and not fresh:
        kept = answers.get(plan.answer_key, version, ctx)
        if kept is not None:
            return kept
    reads = versioned(store)
    assert reads is not None  # a plan is only made for a store of versioned reads
    view = plan.view
    parts, total, more = await rendered_page(
        service, reads, tenant, plan.query, view, ctx, (plan.offset, plan.limit, plan.count))
    headers: dict[str, str] = {}
    if plan.count:
        headers[RESULTS_COUNT] = str(total)
    link = plan.link_more if more else plan.link_last
    if link is not None:
        headers["Link"] = link
    reply = Reply(200, rendered_body(parts, plan.body_context), view.media_type, headers)
    if version is not None:  # the reply is new and only read from now on: kept as it is
        answers.put(plan.answer_key, version, ctx, reply, copy=False)
    return reply

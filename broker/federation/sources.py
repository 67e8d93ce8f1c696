"""FederatedSources: the service's Sources seam, filled (4.3.6 distributed operations).

For each request the service plans (:meth:`FederatedSources.plan`), the
tenant's registrations are matched by the pure planner of
:mod:`ngsi_ld.federation` (5.12), the ``Via`` of the request is checked for a
loop (6.3.18), and the plan says whether the broker answers too.  Reads are
then sent to every planned source concurrently (:class:`ForwardingClient`),
read defensively (:mod:`broker.federation.wire`) and merged with the local
entities by the 4.5.5 rules, the claims of exclusive and redirect
registrations hiding what the broker must not answer itself.  Writes go to
the sources their registration names and the parts fold into 204/201, the
one error, or 207.

Every source that fails, times out or answers nonsense becomes one
``NGSILD-Warning`` (6.3.17) on the answer, never an error of the request.

Paging (6.3.10) of a distributed query: the merged answer is ordered by id,
and every party is asked for its first ``offset + limit + 1`` matches only
(NGSI-LD brokers answer in a stable order; ours by id), so a page costs what
it shows, not every match of every source.  A counted query reads every
match (up to the bound of ordered queries) since the merged count needs the
union of the ids.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from broker.federation.client import ForwardingClient, Incoming, Outgoing
from broker.federation.registry import RegistrationSource
from broker.federation.wire import (
    API,
    InvalidAnswer,
    RawEntity,
    base_url,
    expand_raw,
    purge_request,
    raw_entities,
    read_request,
    restrict_body,
    write_method,
)
from broker.service.call import Call
from broker.service.ports import LOCAL, BatchParts, ContextResolving, Plan
from broker.service.reply import Reply, json_reply
from ngsi_ld.errors import BadRequestData, ServiceUnavailable
from ngsi_ld.federation import (
    LOCAL as LOCAL_SOURCE,
)
from ngsi_ld.federation import (
    QUERY,
    RETRIEVE,
    Fragment,
    Hop,
    PartResult,
    ReadPlan,
    Registration,
    Selection,
    SourceRequest,
    WritePlan,
    append_via,
    forward_headers,
    group_batch,
    guard_loop,
    merge_entity,
    parse_via,
    plan_reads,
    plan_write,
    source_warning,
    visited,
    write_outcome,
)
from ngsi_ld.federation.operations import table_operation
from ngsi_ld.headers import parse_link_context
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity
from ngsi_ld.params import Params, QueryParams, flag
from ngsi_ld.query import EntityQuery, matches, parse_q, parse_type_expr, resolve_names
from ngsi_ld.source_identity import source_alias

__all__ = ["FederatedSources", "ReadJob", "WriteJob"]

#: the most entities one source is asked for in one page
SOURCE_PAGE = 1000
#: the most entities a distributed query reads from one party (as ordered queries)
MAX_READ = 100_000
_READS = {"retrieveEntity": RETRIEVE, "queryEntities": QUERY, "queryEntitiesPost": QUERY,
          "purgeEntities": ("purgeEntity",)}
#: what ``splitEntities=true`` does not forward (5.7.2.4)
SPLIT_STRIPPED = frozenset({"q", "scopeQ", "georel", "geometry", "coordinates",
                            "geoproperty"})
_ATTRIBUTE_OPS = frozenset({"updateAttrs", "replaceAttrs", "deleteAttrs"})


@dataclass(frozen=True)
class ReadJob:
    """The remote part of a read: the pure plan and the hops the request came through."""

    plan: ReadPlan
    hops: tuple[Hop, ...]
    alias: str
    #: the request's selectors, applied to the merged answer when ``split``
    query: EntityQuery | None = None
    #: 5.7.2.4 ``splitEntities=true``: filters are not forwarded but applied here
    split: bool = False


@dataclass(frozen=True)
class SourceAnswer:
    """What one source answered a read: its entities, unexpanded until used."""

    source: str
    auxiliary: bool
    entities: list[RawEntity]
    #: what the source was asked, and whether it gave the ids only (ids-first paging)
    request: SourceRequest | None = None
    ids_only: bool = False


@dataclass
class Fetched:
    """The sources' answers to one read, and what the merge needs to know of the request:
    the page it shows (None: every entity is used) and where warnings go."""

    answers: list[SourceAnswer]
    page: tuple[int, int] | None
    warnings: list[str]
    agent: str
    registrations: dict[str, Registration]


@dataclass(frozen=True)
class WriteJob:
    """The remote part of a write of one entity."""

    plan: WritePlan
    hops: tuple[Hop, ...]
    alias: str
    entity_id: str


def _hops(call: Call) -> tuple[Hop, ...]:
    headers: Any = call.headers
    values = headers.getall("Via", ()) if hasattr(headers, "getall") else \
        [v for k, v in headers.items() if k.lower() == "via"]
    return parse_via(values)


def _selection(query: EntityQuery, call: Call, operation: str) -> Selection:
    """What the request selects: the query's selectors, ``csf`` (4.9, on the registrations)
    and, for Retrieve Entity, the ``attrs`` and ``type`` it asks for (names expanded)."""
    ctx = call.active
    params = call.params
    selection = Selection.of_query(query)
    if ctx is None:
        return selection
    csf_text = params.get("csf")
    if csf_text is not None:
        selection = replace(selection, csf=resolve_names(parse_q(csf_text), ctx.expand_term))
    if operation == "retrieveEntity":
        attrs = params.get("attrs")
        if attrs:
            names = frozenset(ctx.expand_term(a.strip()) for a in attrs.split(",") if a.strip())
            selection = replace(selection, attrs=names)
        wanted = params.get("type")
        if wanted:
            selection = replace(selection, type_expr=resolve_names(parse_type_expr(wanted),
                                                                   ctx.expand_term))
    return selection


def _page_of(call: Call, default_limit: int) -> tuple[int, int]:
    """(offset, limit) of the request (defaults as the broker's, 6.3.10)."""
    params = call.params
    try:
        return int(params.get("offset") or 0), int(params.get("limit") or default_limit)
    except ValueError:
        return 0, MAX_READ


def _names_all(registration: Registration, attrs: Sequence[str] | None) -> bool:
    """True if the registration names each of ``attrs`` (propertyNames, relationshipNames)."""
    if not attrs:
        return False
    named: set[str] = set()
    for info in registration.information:
        named |= info.attributes or frozenset()
    return all(a in named for a in attrs)


def _expiring(entity: Mapping[str, Any]) -> bool:
    """True if an instance of the entity may have expired (4.22): the merge drops those."""
    return any("expiresAt" in instance for instances in (entity.get("attrs") or {}).values()
               for instance in instances)


def _now() -> datetime:
    return datetime.now(UTC)


class FederatedSources:
    """Registered Context Sources answer with the broker (``broker.service.ports.Sources``)."""

    def __init__(self, registrations: RegistrationSource, client: ForwardingClient,
                 resolver: ContextResolving, *, digest: str, timeout: float = 5.0,
                 default_limit: int = 20, clock: Callable[[], datetime] = _now) -> None:
        self.registrations = registrations
        self.client = client
        self.resolver = resolver
        self.digest = digest
        #: the broker's deadline of a forwarded request, seconds (a registration's may be less)
        self.timeout = timeout
        #: the page size of a query without ``limit`` (the broker's --default-page-size)
        self.default_limit = default_limit
        self.clock = clock
        #: registration id -> monotonic time before which it is not contacted (5.2.34 cooldown)
        self._cooling: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        """True once any tenant has a registration: until then the fast paths stay."""
        return not self.registrations.empty

    def alias(self, tenant: str) -> str:
        """This broker's contextSourceAlias for ``tenant`` (5.2.40, what Via names)."""
        return source_alias(self.digest, tenant)

    # -- planning ----------------------------------------------------------------------------
    def plan(self, tenant: str, operation: str, query: EntityQuery, call: Call,
             write: Entity | None = None) -> Plan:
        if flag(call.params, "local"):
            return LOCAL  # 4.3.6.4: this broker's own data only
        now = self.clock()
        registrations = self.registrations.of(tenant, now)
        if not registrations:
            return LOCAL
        hops = _hops(call)
        alias = self.alias(tenant)
        seen = visited(hops)
        reads = _READS.get(operation)
        if reads is not None:
            plan = plan_reads(registrations, _selection(query, call, operation), reads,
                              now=now, visited=seen)
            if not plan.requests and not plan.claims:
                return LOCAL
            if not guard_loop(alias, hops, [r.registration.mode.proxied for r in plan.requests]):
                return LOCAL
            if plan.requests and "orderBy" in call.params:
                # D011_05: sources cannot be asked for one order of the whole
                raise BadRequestData("orderBy is not supported on a query that context "
                                     "sources answer too; add local=true")
            split = flag(call.params, "splitEntities")
            return Plan(True, (ReadJob(plan, hops, alias, query, split),))
        table = table_operation(operation)
        if table is None:
            return LOCAL
        entity_id = query.ids[0] if query.ids else ""
        attrs = None
        if write is not None and table not in ("deleteEntity",):
            attrs = list((write.get("attrs") or {}).keys())
        types = list(write.get("type") or ()) if write is not None and write.get("type") else None
        wplan = plan_write(table, entity_id, registrations, attrs=attrs, types=types, now=now,
                           visited=seen)
        if not wplan.forwards and not wplan.refusals:
            return LOCAL if wplan.local else Plan(False, (WriteJob(wplan, hops, alias,
                                                                   entity_id),))
        if not guard_loop(alias, hops, [f.registration.mode.proxied for f in wplan.forwards]):
            return LOCAL
        local_attrs = None if wplan.local_attrs is None else frozenset(wplan.local_attrs)
        return Plan(wplan.local, (WriteJob(wplan, hops, alias, entity_id),), local_attrs)

    # -- reads -------------------------------------------------------------------------------
    def _deadline(self, registration: Registration) -> float:
        own = registration.timeout_ms
        return self.timeout if own is None else min(self.timeout, max(own, 1.0) / 1000)

    def _cooling_down(self, registration: Registration) -> bool:
        until = self._cooling.get(registration.id)
        if until is None:
            return False
        if time.monotonic() >= until:
            del self._cooling[registration.id]
            return False
        return True

    def _delivered(self, tenant: str, registration: Registration, ok: bool) -> None:
        """Table 5.2.9-2 status members, and the cooldown (5.2.34) after a failure."""
        self.registrations.record_delivery(tenant, registration.id, ok)
        if ok:
            return
        cooldown = registration.cooldown_ms
        if cooldown:
            self._cooling[registration.id] = time.monotonic() + cooldown / 1000

    async def _context(self, client_context: Any) -> str:
        """The URL naming the request's @context to a source (the core context's if none;
        an inline context is hosted here)."""
        return await self.resolver.response_url(client_context)

    async def fetch(self, tenant: str, operation: str, query: EntityQuery, plan: Plan,
                    call: Call, local: Sequence[Entity] = ()) -> Sequence[Any]:
        job = plan.remote[0]
        assert isinstance(job, ReadJob)
        if not job.plan.requests:
            return ()
        client_context = parse_link_context(call.link)
        ctx = call.active or await self.resolver.active(client_context)
        context_url = await self._context(client_context if client_context is not None
                                          else ctx.user_context)
        via = append_via(job.hops, job.alias)
        window = self._window(call, operation)
        params = call.params
        if job.split:  # 5.7.2.4: the filters are removed before forwarding
            params = QueryParams((k, v) for k, v in params.items() if k not in SPLIT_STRIPPED)
        page = None
        if (operation == "queryEntities" and not job.split and not job.plan.claims
                and "NGSILD-EntityMap" not in call.headers):
            # only the page's entities are expanded and merged; the others are counted
            page = _page_of(call, self.default_limit)
        # past the first page, the sources are asked for the ids of the window first and
        # then for the page's entities only: a page costs them what it shows
        ids_first = page is not None and page[0] > 0
        results = await asyncio.gather(*(
            self._read_one(tenant, request, ctx, context_url, via, call, params, window,
                           job.alias, ids_only=ids_first and request.attrs is None)
            for request in job.plan.requests))
        answers: list[SourceAnswer] = []
        for answer, warnings in results:
            call.warnings.extend(warnings)
            if answer is not None:
                answers.append(answer)
        if ids_first and page is not None:
            await self._fill_page(tenant, answers, local, page, ctx, context_url, via, call,
                                  params, job.alias)
        registrations = {r.registration.id: r.registration for r in job.plan.requests}
        return (Fetched(answers, page, call.warnings, job.alias, registrations),)

    async def _fill_page(self, tenant: str, answers: list[SourceAnswer],
                         local: Sequence[Entity], page: tuple[int, int], ctx: Any,
                         context_url: str | None, via: str, call: Call, params: Params,
                         agent: str) -> None:
        """The second step of an ids-first read: the page's ids (local and remote, merged
        by id) asked of the sources that hold them, by id, with every attribute."""
        offset, limit = page
        every = {e["id"] for e in local}
        for answer in answers:
            every.update(raw.id for raw in answer.entities)
        in_page = set(sorted(every)[offset:offset + limit])

        async def complete(index: int, answer: SourceAnswer) -> None:
            request = answer.request
            wanted = tuple(raw.id for raw in answer.entities if raw.id in in_page)
            if not answer.ids_only or request is None or not wanted:
                return
            narrowed = replace(request, ids=wanted, id_pattern=None)
            full, warnings = await self._read_one(tenant, narrowed, ctx, context_url, via,
                                                  call, params, len(wanted), agent)
            call.warnings.extend(warnings)
            found = {raw.id: raw for raw in full.entities} if full is not None else {}
            answers[index] = replace(answer, ids_only=False, entities=[
                found.get(raw.id, raw) for raw in answer.entities
                if raw.id not in in_page or raw.id in found])

        await asyncio.gather(*(complete(i, a) for i, a in enumerate(answers)))

    def _window(self, call: Call, operation: str) -> int:
        """How many matches each party must give for the page asked (see the module doc)."""
        if operation == "retrieveEntity":
            return 1
        params = call.params
        if flag(params, "count") or "orderBy" in params:
            return MAX_READ
        try:
            offset = int(params.get("offset") or 0)
            limit = int(params.get("limit") or self.default_limit)
        except ValueError:
            return MAX_READ
        return min(MAX_READ, offset + limit + 1)

    async def _read_one(self, tenant: str, request: SourceRequest, ctx: Any,
                        context_url: str | None, via: str, call: Call, params: Params,
                        window: int, agent: str,
                        ids_only: bool = False) -> tuple[SourceAnswer | None, list[str]]:
        registration = request.registration
        if self._cooling_down(registration):
            text = source_warning(registration, agent, timed_out=True)
            return None, [text] if text else []
        outbound = forward_headers(registration, via=via, context_url=context_url,
                                   incoming=call.headers,
                                   has_body=request.operation == "queryBatch")
        if request.operation == "purgeEntity":  # 5.6.21: the same purge at the source
            incoming = await self.client.send(purge_request(
                request, outbound, ctx, params, timeout=self._deadline(registration)))
            problem = None if incoming.status == 404 else \
                self._problem(registration, incoming, agent)
            self._delivered(tenant, registration, problem is None)
            return None, [*_relayed_warnings(incoming), *([problem] if problem else [])]
        deadline = time.monotonic() + self._deadline(registration)
        many = request.operation != "retrieveEntity"
        entities: list[RawEntity] = []
        offset = 0
        relayed: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            size = min(SOURCE_PAGE, window - offset) if many else None
            outgoing = read_request(request, outbound, ctx, params,
                                    timeout=max(remaining, 0.001), offset=offset, limit=size,
                                    ids_only=ids_only)
            incoming = await self.client.send(outgoing)
            if ids_only and incoming.status == 400 and not entities:
                # a source without pick (4.21, v1.8): asked for the entities themselves
                return await self._read_one(tenant, request, ctx, context_url, via, call,
                                            params, window, agent)
            relayed += _relayed_warnings(incoming)
            if incoming.status == 404 and not entities:
                self._delivered(tenant, registration, True)
                return None, relayed  # 6.3.17: not abnormal
            problem = self._problem(registration, incoming, agent)
            page: list[RawEntity] = []
            if problem is None:
                try:
                    page = await raw_entities(incoming.body, incoming.headers, self.resolver,
                                              context_url, many=many)
                except InvalidAnswer:
                    problem = source_warning(registration, agent, status=incoming.status,
                                             invalid=True)
            if problem is not None:
                self._delivered(tenant, registration, False)
                return None, [*relayed, problem]
            entities += page
            offset += len(page)
            if not many or size is None or len(page) < size or offset >= window:
                break
        self._delivered(tenant, registration, True)
        return SourceAnswer(registration.id, request.auxiliary, entities, request,
                            ids_only), relayed

    @staticmethod
    def _problem(registration: Registration, incoming: Incoming, agent: str) -> str | None:
        if incoming.status is None or incoming.timed_out:
            return source_warning(registration, agent, timed_out=True)
        if incoming.too_big:
            return source_warning(registration, agent, status=incoming.status, invalid=True)
        if incoming.status >= 300:
            return source_warning(registration, agent, status=max(incoming.status, 400))
        return None

    def merge(self, plan: Plan, local: Sequence[Entity], answers: Sequence[Any]) -> list[Entity]:
        job = plan.remote[0]
        assert isinstance(job, ReadJob)
        fetched = next((a for a in answers if isinstance(a, Fetched)), None)
        visible = job.plan.visible
        # entity id -> (source, entity or raw, auxiliary) of every party that answered it
        by_id: dict[str, list[tuple[str, Entity | RawEntity, bool]]] = {}
        for entity in local:
            by_id.setdefault(entity["id"], []).append((LOCAL_SOURCE, entity, False))
        for answer in fetched.answers if fetched is not None else ():
            for raw in answer.entities:
                by_id.setdefault(raw.id, []).append((answer.source, raw, answer.auxiliary))
        ids = sorted(by_id)
        wanted: set[str] | None = None
        if fetched is not None and fetched.page is not None:
            offset, limit = fetched.page
            wanted = set(ids[offset:offset + limit])
        now = self.clock()
        invalid: set[str] = set()
        merged: list[Entity] = []
        for entity_id in ids:
            if wanted is not None and entity_id not in wanted:
                # outside the page: counted and ordered, never shown, so not expanded
                merged.append({"id": entity_id, "type": [], "attrs": {}})
                continue
            fragments: list[Fragment] = []
            for source, item, auxiliary in by_id[entity_id]:
                if isinstance(item, RawEntity):
                    try:
                        item = expand_raw(item)
                    except InvalidAnswer:
                        invalid.add(source)
                        continue
                shown = visible(dict(item), source)
                if shown is not None:
                    fragments.append(Fragment(shown, source, auxiliary))
            if len(fragments) == 1 and not _expiring(fragments[0].entity):
                merged.append(fragments[0].entity)  # type: ignore[arg-type]
            elif fragments:
                merged.append(merge_entity(fragments, now=now))  # type: ignore[arg-type]
        if invalid and fetched is not None:
            for source in sorted(invalid):
                text = source_warning(fetched.registrations[source], fetched.agent,
                                      status=200, invalid=True)
                if text:
                    fetched.warnings.append(text)
        if job.split and job.query is not None:
            query = job.query
            merged = [e for e in merged if matches(e, query)]
        return merged

    def holders(self, answers: Sequence[Any]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for fetched in answers:
            if isinstance(fetched, Fetched):
                for answer in fetched.answers:
                    out.setdefault(answer.source, []).extend(e.id for e in answer.entities)
        return out

    # -- writes ------------------------------------------------------------------------------
    async def forward(self, tenant: str, operation: str, entity_id: str, body: Any,
                      plan: Plan, call: Call) -> Sequence[Any]:
        job = plan.remote[0]
        assert isinstance(job, WriteJob)
        wplan = job.plan
        parts: list[PartResult] = [PartResult(r.registration.id, r.error().to_problem())
                                   for r in wplan.refusals]
        if not wplan.forwards:
            return parts
        client_context = body.get("@context") if isinstance(body, dict) else None
        if client_context is None:
            client_context = parse_link_context(call.link)
        ctx = await self.resolver.active(client_context)
        context_url = await self._context(client_context)
        via = append_via(job.hops, job.alias)
        path = call.path[len(API):] if call.path.startswith(API) else call.path
        passed = [(k, v) for k, v in call.params.items() if k in ("options", "type")]
        query = f"?{urlencode(passed)}" if passed else ""
        method = write_method(wplan.operation)
        requests: list[Outgoing] = []
        for fwd in wplan.forwards:
            data = None if method == "DELETE" else (
                body if wplan.operation in _ATTRIBUTE_OPS else restrict_body(body, fwd.attrs, ctx))
            if isinstance(data, dict) and "@context" in data:
                data = {k: v for k, v in data.items() if k != "@context"}
            outbound = forward_headers(fwd.registration, via=via, context_url=context_url,
                                       incoming=call.headers, has_body=data is not None)
            payload = None
            if data is not None:
                if outbound.inline_context and outbound.context_url is not None \
                        and isinstance(data, dict):
                    data = {**data, "@context": outbound.context_url}
                payload = orjson.dumps(data)
            url = base_url(fwd.registration.endpoint) + API + path + query
            requests.append(Outgoing(method, url, outbound.headers, payload,
                                     self._deadline(fwd.registration)))
        answers = await self.client.send_all(requests)
        for fwd, incoming in zip(wplan.forwards, answers, strict=True):
            registration = fwd.registration
            call.warnings.extend(_relayed_warnings(incoming))
            parts.append(PartResult(registration.id, _write_error(registration, incoming)))
            self._delivered(tenant, registration, incoming.status is not None)
            if incoming.status is None:
                text = source_warning(registration, job.alias, timed_out=True)
                if text:
                    call.warnings.append(text)
        return parts

    async def forward_batch(self, tenant: str, operation: str,
                            items: Sequence[tuple[str, Entity | None, Any]],
                            call: Call) -> BatchParts:
        everything = frozenset(range(len(items)))
        table = table_operation(operation)
        registrations = () if table is None or flag(call.params, "local") else \
            self.registrations.of(tenant, self.clock())
        if not registrations:
            return BatchParts(everything)
        hops = _hops(call)
        alias = self.alias(tenant)
        seen = visited(hops)
        now = self.clock()
        assert table is not None
        plans: list[WritePlan] = []
        for entity_id, entity, _ in items:
            attrs = None if entity is None else list((entity.get("attrs") or {}).keys())
            types = None if entity is None or not entity.get("type") else list(entity["type"])
            plans.append(plan_write(table, entity_id, registrations, attrs=attrs, types=types,
                                    now=now, visited=seen))
        errors: list[dict[str, Any]] = [
            {"entityId": items[i][0], "error": r.error().to_problem(),
             "registrationId": r.registration.id}
            for i, wplan in enumerate(plans) for r in wplan.refusals]
        groups = group_batch(plans)
        if groups and not guard_loop(alias, hops, [g.registration.mode.proxied for g in groups]):
            return BatchParts(everything)
        via = append_via(hops, alias)
        client_context = parse_link_context(call.link)
        ctx = call.active or await self.resolver.active(client_context)
        context_url = await self._context(client_context if client_context is not None
                                          else ctx.user_context)
        passed = [(k, v) for k, v in call.params.items() if k == "options"]
        query = f"?{urlencode(passed)}" if passed else ""
        requests: list[Outgoing] = []
        for group in groups:
            if table == "deleteBatch":
                payload: list[Any] = [items[i][0] for i, _ in group.items]
            else:
                payload = [restrict_body(items[i][2], attrs, await self._item_context(items[i][2],
                                                                                      ctx))
                           for i, attrs in group.items]
            contexts = [items[i][2].get("@context") if isinstance(items[i][2], dict) else None
                        for i, _ in group.items]
            shared_context = context_url
            if contexts and contexts[0] is not None and all(c == contexts[0] for c in contexts):
                # one @context for every element: named once, in the Link header (6.3.5)
                shared_context = await self._context(contexts[0])
                contexts = [None] * len(contexts)
            outbound = forward_headers(group.registration, via=via, context_url=shared_context,
                                       incoming=call.headers, has_body=True)
            headers = outbound.headers
            if any(c is not None for c in contexts) and table != "deleteBatch":
                # elements that carry their own @context (6.3.5) travel as JSON-LD with it
                payload = [{**p, "@context": items[i][2].get("@context", context_url)}
                           if isinstance(p, dict) else p
                           for p, (i, _) in zip(payload, group.items, strict=True)]
                headers = tuple((k, v) for k, v in headers if k not in ("Link", "Content-Type"))
                headers += (("Content-Type", "application/ld+json"),)
            elif outbound.inline_context and outbound.context_url is not None:
                payload = [{**p, "@context": outbound.context_url} if isinstance(p, dict) else p
                           for p in payload]
            url = (base_url(group.registration.endpoint) + API + "/entityOperations/"
                   + _BATCH_PATHS[table] + query)
            requests.append(Outgoing("POST", url, headers, orjson.dumps(payload),
                                     self._deadline(group.registration)))
        forwarded: list[str] = []
        for group, incoming in zip(groups, await self.client.send_all(requests), strict=True):
            ids = [items[i][0] for i, _ in group.items]
            call.warnings.extend(_relayed_warnings(incoming))
            self._delivered(tenant, group.registration, incoming.status is not None)
            failed = _batch_errors(group.registration, ids, incoming)
            errors += failed
            gone = {e["entityId"] for e in failed}
            forwarded += [i for i in ids if i not in gone]
        local = frozenset(i for i, wplan in enumerate(plans) if wplan.local)
        return BatchParts(local, tuple(errors), tuple(dict.fromkeys(forwarded)))

    async def _item_context(self, item: Any, shared: ActiveContext) -> ActiveContext:
        """The @context a batch element is written in (its own, 6.3.5, else the request's)."""
        if isinstance(item, dict) and "@context" in item:
            return await self.resolver.active(item["@context"])
        return shared

    def outcome(self, plan: Plan, local: Reply | None, parts: Sequence[Any]) -> Reply:
        job = plan.remote[0]
        assert isinstance(job, WriteJob)
        results: list[PartResult] = [p for p in parts if isinstance(p, PartResult)]
        if local is not None:
            error = None
            if local.status >= 400:
                error = orjson.loads(local.body) if local.body else {"status": local.status}
            # an attribute the broker does not hold, written by a source that registered
            # it by name, is not a failed part: an IoT Agent's command attribute exists
            # at the agent only (inclusive, 4.3.6.2); anything else missing here is
            # (D005_01_inc, D002_02_02_inc: 207)
            took = {p.registration_id for p in results
                    if p.registration_id is not None and p.error is None}
            taken = any(f.registration.id in took and _names_all(f.registration, f.attrs)
                        for f in job.plan.forwards)
            if not (local.status == 404 and taken):
                results.insert(0, PartResult(None, error))
            else:
                local = None
        folded = write_outcome(results)
        if folded.status == 0:
            if local is not None and local.status < 300:
                return local
            if job.plan.operation == "createEntity":
                return Reply(201, headers={"Location": f"{API}/entities/{job.entity_id}"})
            return Reply(204)
        if folded.status != 207:
            error = folded.errors[0].error or {}
            return json_reply(error, status=folded.status,
                              content_type="application/json")
        body = {
            "success": [] if local is None or local.status >= 400 else [job.entity_id],
            "errors": [
                {"entityId": job.entity_id, "error": part.error,
                 **({"registrationId": part.registration_id}
                    if part.registration_id is not None else {})}
                for part in folded.errors
            ],
        }
        return json_reply(body, status=207)


#: Table 4.20-1 batch operations -> the path of their binding (6.14 to 6.18, 6.31)
_BATCH_PATHS = {"createBatch": "create", "upsertBatch": "upsert", "updateBatch": "update",
                "deleteBatch": "delete", "mergeBatch": "merge"}


def _batch_errors(registration: Registration, ids: Sequence[str],
                  incoming: Incoming) -> list[dict[str, Any]]:
    """The BatchEntityErrors (5.2.17) of one source's part of a batch, naming it."""
    status = incoming.status
    if status is not None and 200 <= status < 300 and status != 207:
        return []
    found: list[dict[str, Any]] = []
    if status == 207:
        try:
            data = orjson.loads(incoming.body)
        except orjson.JSONDecodeError:
            data = None
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, list):
            found = [{**e, "registrationId": registration.id} for e in errors
                     if isinstance(e, dict) and isinstance(e.get("entityId"), str)]
            return found
    error = _write_error(registration, incoming) or {}
    return [{"entityId": i, "error": error, "registrationId": registration.id} for i in ids]


def _relayed_warnings(incoming: Incoming) -> list[str]:
    """The NGSILD-Warning values a source returned (a cascade's failures surface at the top)."""
    value = next((v for k, v in incoming.headers.items() if k.lower() == "ngsild-warning"), None)
    return [value] if value else []


def _write_error(registration: Registration, incoming: Incoming) -> dict[str, Any] | None:
    """None when the source took its part of a write, else the ProblemDetails of the part."""
    status = incoming.status
    if status is not None and 200 <= status < 300 and status != 207:
        return None
    if status is not None and incoming.body:
        try:
            data = orjson.loads(incoming.body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and "type" in data:
            return {**data, "status": data.get("status", status)}
    detail = (f"context source registration {registration.id} at {registration.endpoint} "
              + (f"answered {status}" if status is not None else incoming.reason or "failed"))
    problem = ServiceUnavailable(detail).to_problem()
    if status is not None and status >= 400:
        problem["status"] = status
    return problem

"""Distributed reads (4.3.6, 5.7.1, 5.7.2, 5.6.21): the sources asked concurrently, each
within its deadline, their answers read and merged with the local entities (4.5.5).

Paging (6.3.10) of a distributed query: the merged answer is ordered by id,
and every party is asked for its first ``offset + limit + 1`` matches only
(NGSI-LD brokers answer in a stable order; ours by id); past the first page
the sources give the window's ids first and the page's entities by id, so a
page costs what it shows.  Only the page's entities are expanded and merged.
A counted query reads every match (up to 100,000): the count is of the union.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, overload
from urllib.parse import urljoin

from broker.federation.base import (
    MAX_READ,
    SOURCE_PAGE,
    SPLIT_STRIPPED,
    Fetched,
    ReadJob,
    SourceAnswer,
    SourcesBase,
    answer_problem,
    expiring,
    page_of,
    relayed_warnings,
)
from broker.federation.client import Outgoing, header
from broker.federation.wire import (
    InvalidAnswer,
    RawEntity,
    purge_request,
    raw_entities,
    raw_ids,
    read_request,
)
from broker.service.call import Call
from broker.service.ports import Plan
from ngsi_ld.federation import (
    LOCAL as LOCAL_SOURCE,
)
from ngsi_ld.federation import (
    Fragment,
    Registration,
    SourceRequest,
    append_via,
    forward_headers,
    merge_entity,
    source_warning,
)
from ngsi_ld.headers import parse_link_context
from ngsi_ld.model import Entity
from ngsi_ld.params import Params, QueryParams, flag
from ngsi_ld.query import EntityQuery, matches

__all__ = ["Paged", "Reads", "sorted_union"]

#: 5.5.9.3, 6.3.23: the header naming an Entity map
ENTITY_MAP = "NGSILD-EntityMap"


def _with_maps(outgoing: Outgoing, registration: Registration, call: Call, *,
               first: bool) -> Outgoing:
    """5.2.39 linkedMaps: a source walked within its own map (the one the map being
    walked links), or asked to make one while a map is made here (first page only)."""
    linked = call.linked_maps.get(registration.id)
    if linked is not None:
        return replace(outgoing, headers=(*outgoing.headers, (ENTITY_MAP, linked)))
    if first and call.source_maps is not None and outgoing.method == "GET":
        return replace(outgoing, url=outgoing.url + "&entityMap=true")
    return outgoing


class Paged(Sequence[Entity]):
    """The merged answer of a page (``Fetched.page``): the page's entities between the
    ids of the matches before and after it, which are counted and ordered but never
    shown, so neither read nor expanded.  Their entities (the id alone) are made only
    if asked for: the page cut from the answer (``answer[offset:offset + limit]``) is
    the page's entities as they are, while a page far into the query has hundreds of
    ids before it."""

    __slots__ = ("_after", "_before", "_page")

    def __init__(self, before: list[str], page: list[Entity], after: list[str]) -> None:
        self._before, self._page, self._after = before, page, after

    def __len__(self) -> int:
        return len(self._before) + len(self._page) + len(self._after)

    @overload
    def __getitem__(self, index: int) -> Entity: ...

    @overload
    def __getitem__(self, index: slice) -> list[Entity]: ...

    def __getitem__(self, index: int | slice) -> Entity | list[Entity]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            first = len(self._before)
            if step == 1 and first == start <= stop <= first + len(self._page):
                return self._page[:stop - first]
            return [self[i] for i in range(start, stop, step)]
        if index < 0:
            index += len(self)
        first = len(self._before)
        if index < 0 or index >= len(self):
            raise IndexError(index)
        if index < first:
            return _unread(self._before[index])
        if index < first + len(self._page):
            return self._page[index - first]
        return _unread(self._after[index - first - len(self._page)])

    def __iter__(self) -> Iterator[Entity]:
        yield from map(_unread, self._before)
        yield from self._page
        yield from map(_unread, self._after)


def sorted_union(*parts: Iterable[str]) -> list[str]:
    """The ids of ``parts``, each once, sorted (``sorted(set().union(*parts))``).

    Each party answers its ids sorted (by id, the merged order), so their
    concatenation is a few sorted runs, which Timsort merges in linear time, and
    the ids met twice are neighbours; a set's order is random, and sorting it
    compares n log n pairs of long ids with a common prefix (five times the time
    for the thousand ids of a page far into a query).  The order of the parts only
    decides the speed, never the result.  The ids met twice are dropped by
    ``dict.fromkeys`` (it keeps the first of equal keys, in order), in C: a Python
    walk over the neighbours cost about half as much again (125-140 against 75-90 µs
    for two lists of 1,001 ids)."""
    every: list[str] = []
    for part in parts:
        every.extend(part)
    every.sort()
    return list(dict.fromkeys(every))


def _unread(entity_id: str) -> Entity:
    """The entity of an id outside the page of a merged answer (``Paged``)."""
    return {"id": entity_id, "type": [], "attrs": {}}


class Reads(SourcesBase):
    """The read half of :class:`~broker.federation.FederatedSources`."""

    async def fetch(self, tenant: str, operation: str, query: EntityQuery, plan: Plan,
                    call: Call, local: Sequence[Entity] = ()) -> Sequence[Any]:
        job = plan.remote[0]
        assert isinstance(job, ReadJob)
        if not job.plan.requests:
            return ()
        client_context = parse_link_context(call.link)
        ctx = call.active or await self.resolver.active(client_context)
        context_url = await self._context(client_context if client_context is not None
                                          else ctx.user_context, tenant)
        via = append_via(job.hops, job.alias)
        window = self._window(call, operation)
        params = call.params
        if job.split:  # 5.7.2.4: the filters are removed before forwarding
            params = QueryParams((k, v) for k, v in params.items() if k not in SPLIT_STRIPPED)
        elif job.filters:  # a Query body's or a Snapshot's filters, so the sources filter
            params = QueryParams([*params.items(), *job.filters])
        page = None
        if (operation == "queryEntities" and not job.split and not job.refilter
                and not job.plan.claims
                and "NGSILD-EntityMap" not in call.headers):
            # only the page's entities are expanded and merged; the others are counted
            page = page_of(call, self.default_limit)
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
        return (Fetched(answers, page, call.warnings, job.alias, registrations,
                        call.rendering),)

    async def _fill_page(self, tenant: str, answers: list[SourceAnswer],
                         local: Sequence[Entity], page: tuple[int, int], ctx: Any,
                         context_url: str | None, via: str, call: Call, params: Params,
                         agent: str) -> None:
        """The second step of an ids-first read: the page's ids (local and remote, merged
        by id) asked of the sources that hold them, by id, with every attribute."""
        offset, limit = page
        every = sorted_union([e["id"] for e in local],
                             *([raw.id for raw in a.entities] for a in answers),
                             *(a.unread for a in answers))
        in_page = set(every[offset:offset + limit])

        async def complete(index: int, answer: SourceAnswer) -> None:
            request = answer.request
            if not answer.ids_only or request is None:
                return
            wanted = tuple(i for i in answer.unread if i in in_page)
            if not wanted:
                return
            narrowed = replace(request, ids=wanted, id_pattern=None)
            full, warnings = await self._read_one(tenant, narrowed, ctx, context_url, via,
                                                  call, params, len(wanted), agent)
            call.warnings.extend(warnings)
            found = {raw.id: raw for raw in full.entities} if full is not None else {}
            # a page's id the source no longer holds (gone since it gave the ids) is left
            # out; the others stay counted and ordered, unread
            answers[index] = replace(
                answer, ids_only=False, entities=[found[i] for i in wanted if i in found],
                unread=[i for i in answer.unread if i not in in_page])

        await asyncio.gather(*(complete(i, a) for i, a in enumerate(answers)))

    def _window(self, call: Call, operation: str) -> int:
        """How many matches each party must give for the page asked (see the module doc)."""
        if operation == "retrieveEntity":
            return 1
        if operation == "queryEntitiesAll":
            return MAX_READ
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
                answer_problem(registration, incoming, agent)
            self._delivered(tenant, registration, problem is None)
            return None, [*relayed_warnings(incoming), *([problem] if problem else [])]
        deadline = time.monotonic() + self._deadline(registration)
        many = request.operation != "retrieveEntity"
        entities: list[RawEntity] = []
        ids: list[str] = []  # of an ids-only read
        offset = 0
        relayed: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            size = min(SOURCE_PAGE, window - offset) if many else None
            outgoing = read_request(request, outbound, ctx, params,
                                    timeout=max(remaining, 0.001), offset=offset, limit=size,
                                    ids_only=ids_only)
            outgoing = _with_maps(outgoing, registration, call, first=offset == 0 and many)
            incoming = await self.client.send(outgoing)
            if offset == 0 and call.source_maps is not None:
                own = header(incoming.headers, ENTITY_MAP)
                if own:  # 5.2.39: the source's own map, linked from the one made here
                    call.source_maps[registration.id] = urljoin(outgoing.url, own)
            if ids_only and incoming.status == 400 and not ids:
                # a source without pick (4.21, v1.8): asked for the entities themselves
                return await self._read_one(tenant, request, ctx, context_url, via, call,
                                            params, window, agent)
            relayed += relayed_warnings(incoming)
            if incoming.status == 404 and not entities and not ids:
                self._delivered(tenant, registration, True)
                return None, relayed  # 6.3.17: not abnormal
            problem = answer_problem(registration, incoming, agent)
            got = 0
            if problem is None:
                try:
                    if ids_only:
                        page_ids = await raw_ids(incoming.body, incoming.headers,
                                                 self.resolver, context_url, self.parsed)
                        ids += page_ids
                        got = len(page_ids)
                    else:
                        page = await raw_entities(incoming.body, incoming.headers,
                                                  self.resolver, context_url, many=many,
                                                  parsed=self.parsed)
                        entities += page
                        got = len(page)
                except InvalidAnswer:
                    problem = source_warning(registration, agent, status=incoming.status,
                                             invalid=True)
            if problem is not None:
                self._delivered(tenant, registration, False)
                return None, [*relayed, problem]
            offset += got
            if not many or size is None or got < size or offset >= window:
                break
        self._delivered(tenant, registration, True)
        return SourceAnswer(registration.id, request.auxiliary, entities, request,
                            ids_only, ids), relayed

    def merge(self, plan: Plan, local: Sequence[Entity],
              answers: Sequence[Any]) -> Sequence[Entity]:
        job = plan.remote[0]
        assert isinstance(job, ReadJob)
        fetched = next((a for a in answers if isinstance(a, Fetched)), None)
        visible = job.plan.visible
        # entity id -> (source, entity or raw, auxiliary) of every party that answered it
        by_id: dict[str, list[tuple[str, Entity | RawEntity, bool]]] = {}
        for entity in local:
            by_id.setdefault(entity["id"], []).append((LOCAL_SOURCE, entity, False))
        unread: list[Sequence[str]] = []  # ids-first paging: ids counted and ordered, not read
        for answer in fetched.answers if fetched is not None else ():
            for raw in answer.entities:
                by_id.setdefault(raw.id, []).append((answer.source, raw, answer.auxiliary))
            unread.append(answer.unread)
        ids = sorted_union(by_id, *unread)
        before: list[str] = []
        after: list[str] = []
        if fetched is not None and fetched.page is not None:
            offset, limit = fetched.page
            before, after = ids[:offset], ids[offset + limit:]
            ids = ids[offset:offset + limit]
        now = self.clock()
        invalid: set[str] = set()
        merged: list[Entity] = []
        # a source's entity shown as it is (the only fragment of its id, no claim, no
        # filter here) may be rendered from the rendering kept of its content
        # (broker.service.source_renders)
        rendering = fetched.rendering if fetched is not None and not job.plan.claims \
            and not job.split and not job.refilter else None
        expansions = self.expansions
        for entity_id in ids:
            parties: Sequence[tuple[str, Entity | RawEntity, bool]] = by_id.get(entity_id, ())
            single = parties[0][1] if rendering is not None and len(parties) == 1 else None
            if rendering is not None and isinstance(single, RawEntity):
                source = parties[0][0]
                key = expansions.key(single)
                kept = expansions.rendered(key, rendering.view_key, rendering.ctx)
                if kept is not None:
                    merged.append(rendering.stand_in(*kept))
                    continue
                try:
                    entity = expansions.expand(single, key)
                except InvalidAnswer:
                    invalid.add(source)
                    continue
                # without claims, ``visible`` shows every party's entity as it is
                if not expiring(entity):
                    rendering.offer(entity, partial(expansions.keep_rendering, key,
                                                    rendering.view_key, rendering.ctx))
                    merged.append(entity)
                    continue
                parties = [(source, entity, parties[0][2])]
            fragments: list[Fragment] = []
            for source, item, auxiliary in parties:
                if isinstance(item, RawEntity):
                    try:
                        item = self.expansions.expand(item)
                    except InvalidAnswer:
                        invalid.add(source)
                        continue
                shown = visible(dict(item), source)
                if shown is not None:
                    fragments.append(Fragment(shown, source, auxiliary))
            if len(fragments) == 1 and not expiring(fragments[0].entity):
                merged.append(fragments[0].entity)  # type: ignore[arg-type]
            elif fragments:
                merged.append(merge_entity(fragments, now=now))  # type: ignore[arg-type]
        if invalid and fetched is not None:
            for source in sorted(invalid):
                text = source_warning(fetched.registrations[source], fetched.agent,
                                      status=200, invalid=True)
                if text:
                    fetched.warnings.append(text)
        if before or after:
            return Paged(before, merged, after)
        if (job.split or job.refilter) and job.query is not None:
            query = job.query
            merged = [e for e in merged if matches(e, query)]
        return merged

    def holders(self, answers: Sequence[Any]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for fetched in answers:
            if isinstance(fetched, Fetched):
                for answer in fetched.answers:
                    held = out.setdefault(answer.source, [])
                    held.extend(e.id for e in answer.entities)
                    held.extend(answer.unread)
        return out

    # -- writes ------------------------------------------------------------------------------

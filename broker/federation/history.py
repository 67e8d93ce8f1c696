"""Distributed temporal reads (4.3.6, 5.7.3, 5.7.4): the temporal evolution held by the
registered sources, asked concurrently, each within its deadline.

Retrieve Temporal Evolution of an Entity asks the registrations supporting
``retrieveTemporal``, Query Temporal Evolution of Entities (GET and POST) those
supporting ``queryTemporal`` (Table 4.20-1; neither is in ``federationOps``, a
source names them, or ``retrieveTemporal``/``queryTemporal`` through its own
list).  A registration with an ``observationInterval`` (or
``managementInterval`` for ``timeproperty=modifiedAt``/``createdAt``) is asked
only when it overlaps the query's window (5.12).

Each source is asked with a GET in the client's terms (its @context as Link),
for the same window (``timerel``, ``timeAt``, ``endTimeAt``, ``timeproperty``,
``lastN``) and filters, always in the normalized representation and never
aggregated: the instances are merged with the local ones by the service, and
``lastN``, the instance limit, paging and aggregation apply to the merged
series.  A failing, slow or invalid source is one ``NGSILD-Warning`` (6.3.17);
``Via`` and loops as for the entity reads (6.3.18).

The registration modes (4.3.6.2, 4.3.6.3) rule the merge as they rule the
entity reads', with the same plan (:meth:`ngsi_ld.federation.ReadPlan.visible`)
and the same gap rule (:func:`ngsi_ld.federation.fill_gaps`): the Attributes an
exclusive or redirect registration covers come from its source only, the local
history's and any other source's instances of them left out (a redirect
registration of the whole Entity leaves nothing of the local one); an
auxiliary source's series of an Attribute and datasetId is used only where
no other party (the broker or a regular source) has one in the window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from broker.federation.base import (
    SOURCE_PAGE,
    ReadJob,
    SourcesBase,
    answer_problem,
    hops_of,
    relayed_warnings,
)
from broker.federation.client import Outgoing
from broker.federation.wire import (
    API,
    InvalidAnswer,
    RawEntity,
    base_url,
    entity_selectors,
    raw_entities,
)
from broker.service.call import Call
from broker.service.ports import Histories, Plan, RemoteHistory
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.federation import (
    LOCAL,
    ReadPlan,
    Selection,
    SourceRequest,
    append_via,
    fill_gaps,
    forward_headers,
    guard_loop,
    plan_reads,
    source_warning,
    visited,
)
from ngsi_ld.federation.selection import TemporalQuery as SourceWindow
from ngsi_ld.headers import parse_link_context
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.params import flag
from ngsi_ld.query import EntityQuery
from ngsi_ld.temporal import Instance, TemporalQuery, parse_temporal_entity
from ngsi_ld.temporal.instants import format_micros, to_datetime
from ngsi_ld.temporal.model import from_internal

__all__ = ["HistoryReads"]

#: the client's filters a source is asked with as they are (already in the client's terms)
_PASSED = ("q", "scopeQ", "georel", "geometry", "coordinates", "geoproperty", "datasetId")


def _window(temporal: TemporalQuery) -> list[tuple[str, str]]:
    """The temporal query in wire terms (4.11)."""
    out: list[tuple[str, str]] = []
    if temporal.timerel is not None and temporal.time_at is not None:
        out += [("timerel", temporal.timerel), ("timeAt", format_micros(temporal.time_at))]
        if temporal.end_time_at is not None:
            out.append(("endTimeAt", format_micros(temporal.end_time_at)))
    if temporal.timeproperty != "observedAt":
        out.append(("timeproperty", temporal.timeproperty))
    if temporal.last_n is not None:
        out.append(("lastN", str(temporal.last_n)))
    return out


def _selection(query: EntityQuery, temporal: TemporalQuery) -> Selection:
    window = None
    if temporal.timerel is not None and temporal.time_at is not None:
        end = None if temporal.end_time_at is None else to_datetime(temporal.end_time_at)
        window = SourceWindow(temporal.timerel, to_datetime(temporal.time_at), end,
                              temporal.timeproperty)
    plain = Selection.of_query(query)
    return Selection(ids=plain.ids, id_pattern=plain.id_pattern, type_expr=plain.type_expr,
                     attrs=plain.attrs, geo_q=plain.geo_q, scope_q=plain.scope_q,
                     dataset_ids=plain.dataset_ids, temporal=window, history=True)


def _request_url(request: SourceRequest, ctx: ActiveContext, call: Call,
                 temporal: TemporalQuery) -> str:
    base = base_url(request.registration.endpoint) + API + "/temporal/entities"
    query = _window(temporal)
    if request.attrs is not None:
        query.append(("attrs", ",".join(ctx.compact_iri(a) for a in request.attrs)))
    query += [(name, str(call.params.get(name))) for name in _PASSED if name in call.params]
    if request.local_only:
        query.append(("local", "true"))  # 4.3.6.4
    if request.operation == "retrieveTemporal" and request.ids and len(request.ids) == 1:
        return f"{base}/{quote(request.ids[0], safe=':')}?{urlencode(query)}"
    selectors = entity_selectors(request, ctx)
    return f"{base}?{urlencode(selectors + query + [('limit', str(SOURCE_PAGE))])}"


def remote_history(raw: RawEntity, request: SourceRequest | None = None) -> RemoteHistory:
    """A source's temporal Entity (normalized representation) read into instances, names
    expanded with the answer's @context (InvalidAnswer if it is not one)."""
    try:
        parsed = parse_temporal_entity(raw.item, require_type=False)
        expanded = raw.ctx.expand_entity({k: v for k, v in parsed.items() if k != "scope"})
        instances: list[Instance] = []
        for name, insts in (expanded.get("attrs") or {}).items():
            for n, inst in enumerate(insts):
                instance_id = inst.get("instanceId")
                if not isinstance(instance_id, str):
                    instance_id = f"urn:ngsi-ld:source-instance:{raw.id}:{name}:{n}"
                instances.append(from_internal(name, inst, instance_id))
    except NgsiLdError as exc:
        raise InvalidAnswer(f"temporal entity {raw.id} is not valid: {exc}") from None
    source = "" if request is None else request.registration.id
    auxiliary = request is not None and request.auxiliary
    return RemoteHistory(raw.id, tuple(expanded.get("type") or ()), tuple(instances), source,
                         auxiliary)


def _observation(instance: Instance) -> tuple[Any, ...] | None:
    """What makes two parties' instances one observation (None: not observed)."""
    if instance.observed_at is None:
        return None
    try:
        value: Any = orjson.dumps(instance.value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # a number orjson does not write: compared as Python shows it
        value = repr(instance.value)
    return (instance.attribute, instance.dataset_id, instance.observed_at, instance.kind, value)


def _in_window(instance: Instance, window: TemporalQuery) -> bool:
    instant = instance.instant(window.timeproperty)
    return instant is not None and window.contains(instant)


def _claims_of(plans: Sequence[Plan]) -> ReadPlan:
    """The claims of exclusive and redirect registrations of every plan (one per entity
    selector of the read): each says itself which Entities it covers."""
    return ReadPlan((), tuple(claim for plan in plans for job in plan.remote
                              if isinstance(job, ReadJob) for claim in job.plan.claims))


class HistoryReads(SourcesBase):
    """The temporal half of :class:`~broker.federation.FederatedSources`."""

    async def history(self, tenant: str, operation: str, query: EntityQuery,
                      temporal: TemporalQuery, call: Call) -> Histories:
        if flag(call.params, "local"):
            return Histories()  # 4.3.6.4
        now = self.clock()
        registrations = self.registrations.of(tenant, now)
        if not registrations:
            return Histories()
        hops = hops_of(call)
        alias = self.alias(tenant)
        plan = plan_reads(registrations, _selection(query, temporal), (operation,), now=now,
                          visited=visited(hops))
        if not plan.requests and not plan.claims:
            return Histories()
        # 6.3.18: a request that came back is answered locally, or 508 when its only
        # sources are exclusive or redirect
        if not guard_loop(alias, hops, [r.registration.mode.proxied for r in plan.requests]):
            return Histories()
        planned = Plan(True, (ReadJob(plan, hops, alias),))
        if not plan.requests:
            return Histories(planned)  # claimed by sources not asked for history
        client_context = parse_link_context(call.link)
        ctx = call.active or await self.resolver.active(client_context)
        context_url = await self._context(client_context if client_context is not None
                                          else ctx.user_context, tenant)
        via = append_via(hops, alias)
        results = await asyncio.gather(*(
            self._history_one(tenant, request, ctx, context_url, via, call, temporal, alias)
            for request in plan.requests))
        out: list[RemoteHistory] = []
        for found, warnings in results:
            call.warnings.extend(warnings)
            out.extend(found)
        return Histories(planned, tuple(out))

    def merge_history(self, plans: Sequence[Plan], entity_id: str, types: Sequence[str],
                      local: Sequence[Instance], remote: Sequence[RemoteHistory],
                      window: TemporalQuery) -> list[Instance] | None:
        claims = _claims_of(plans)
        parties = [(LOCAL, False, local), *((r.source, r.auxiliary, r.instances)
                                            for r in remote)]
        shown_parts: list[tuple[bool, list[Instance]]] = []
        for source, auxiliary, instances in parties:
            series: dict[str, list[Instance]] = {}
            for instance in instances:
                series.setdefault(instance.attribute, []).append(instance)
            # 4.3.6.3: what a proxied registration covers comes from its source alone
            shown = claims.visible({"id": entity_id, "type": list(types), "attrs": series},
                                   source)
            if shown is not None:
                shown_parts.append((auxiliary, [i for kept in shown["attrs"].values()
                                                for i in kept]))
        if not shown_parts:
            return None
        # 4.3.6.2: an auxiliary series of an Attribute and datasetId is used only where no
        # other party has one in the window (the gap rule of the entity reads' merge)
        chosen = fill_gaps(((i.attribute, i.dataset_id), auxiliary, auxiliary)
                           for auxiliary, instances in shown_parts for i in instances
                           if _in_window(i, window))
        gaps = {key for key, flags in chosen.items() if flags[0]}  # only auxiliary ones
        out: list[Instance] = []
        seen: set[tuple[str, str]] = set()
        # an observation two parties both hold (a write forwarded to an inclusive source
        # is recorded at both, with their own instanceIds) is shown once
        observed: dict[tuple[Any, ...], int] = {}
        for party, (auxiliary, instances) in enumerate(shown_parts):
            for instance in instances:
                if auxiliary and (instance.attribute, instance.dataset_id) not in gaps:
                    continue
                key = (instance.attribute, instance.instance_id)
                same = _observation(instance)
                if key in seen or (same is not None and observed.get(same, party) != party):
                    continue  # each instance once, the local one first
                seen.add(key)
                if same is not None:
                    observed[same] = party
                out.append(instance)
        return out

    async def _history_one(self, tenant: str, request: SourceRequest, ctx: ActiveContext,
                           context_url: str | None, via: str, call: Call,
                           temporal: TemporalQuery,
                           agent: str) -> tuple[list[RemoteHistory], list[str]]:
        registration = request.registration
        if self._cooling_down(registration):
            text = source_warning(registration, agent, timed_out=True)
            return [], [text] if text else []
        outbound = forward_headers(registration, via=via, context_url=context_url,
                                   incoming=call.headers, has_body=False)
        url = _request_url(request, ctx, call, temporal)
        incoming = await self.client.send(Outgoing("GET", url, outbound.headers, None,
                                                   self._deadline(registration)))
        relayed = relayed_warnings(incoming)
        if incoming.status == 404:
            self._delivered(tenant, registration, True)
            return [], relayed  # 6.3.17: not abnormal
        problem = answer_problem(registration, incoming, agent)
        found: list[RemoteHistory] = []
        if problem is None:
            try:
                raws = await raw_entities(incoming.body, incoming.headers, self.resolver,
                                          context_url,
                                          many=request.operation != "retrieveTemporal")
                found = [remote_history(raw, request) for raw in raws]
            except InvalidAnswer:
                problem = source_warning(registration, agent, status=incoming.status,
                                         invalid=True)
        self._delivered(tenant, registration, problem is None)
        if problem is not None:
            return [], [*relayed, problem]
        return found, relayed



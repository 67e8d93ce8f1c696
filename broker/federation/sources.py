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

The reads are :mod:`broker.federation.reads`, the writes
:mod:`broker.federation.writes`, what both share :mod:`broker.federation.base`;
this module plans.
"""

from __future__ import annotations

from dataclasses import replace

from broker.federation.base import READS, WHOLE_ENTITY_OPS, ReadJob, WriteJob, hops_of
from broker.federation.history import HistoryReads
from broker.federation.holdings import Holdings
from broker.federation.reads import Reads
from broker.federation.wire import filter_params
from broker.federation.writes import Writes
from broker.service.call import Call
from broker.service.ports import LOCAL, Plan
from ngsi_ld.errors import BadRequestData
from ngsi_ld.federation import (
    Selection,
    guard_loop,
    plan_reads,
    plan_write,
    visited,
)
from ngsi_ld.federation.operations import table_operation
from ngsi_ld.model import Entity
from ngsi_ld.params import flag
from ngsi_ld.query import EntityQuery, parse_q, parse_type_expr, resolve_names

__all__ = ["FederatedSources", "ReadJob", "WriteJob"]


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



class FederatedSources(Reads, Writes, Holdings, HistoryReads):
    """Registered Context Sources answer with the broker (``broker.service.ports.Sources``)."""

    # -- planning ----------------------------------------------------------------------------
    def plan(self, tenant: str, operation: str, query: EntityQuery, call: Call,
             write: Entity | None = None) -> Plan:
        if flag(call.params, "local"):
            return LOCAL  # 4.3.6.4: this broker's own data only
        now = self.clock()
        registrations = self.registrations.of(tenant, now)
        if not registrations:
            return LOCAL
        hops = hops_of(call)
        alias = self.alias(tenant)
        seen = visited(hops)
        reads = READS.get(operation)
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
            # filters the request's parameters do not carry (a Query body's, a Snapshot's)
            # are forwarded as parameters; one that cannot be written is applied to the
            # merged answer instead
            filters: tuple[tuple[str, str], ...] = ()
            unsent = any(value is not None and name not in call.params for name, value in (
                ("q", query.q), ("scopeQ", query.scope_q), ("georel", query.geo_q)))
            if unsent and call.active is not None and not split:
                filters, unsent = filter_params(query, call.params, call.active)
            return Plan(True, (ReadJob(plan, hops, alias, query, split, unsent, filters),))
        table = table_operation(operation)
        if table is None:
            return LOCAL
        entity_id = query.ids[0] if query.ids else ""
        attrs = None
        if write is not None and table not in WHOLE_ENTITY_OPS:
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

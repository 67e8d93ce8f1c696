"""Purge Entities (ETSI GS CIM 009 v1.9.1 clause 5.6.21): delete what a query selects.

The selectors are those of GET /entities, checked first by
:func:`ngsi_ld.purge.check_purge` so that a refused purge deletes nothing; the
matches are deleted (or only some of their attributes, ``keep``/``drop``) in
transactions of :data:`PURGE_BATCH` entities, each change published.
"""

from __future__ import annotations

from broker.service.core import Call, Service
from broker.service.queries import query_of
from broker.service.reply import Reply, empty
from ngsi_ld.headers import parse_link_context
from ngsi_ld.purge import check_purge, purge_mutation
from ngsi_ld.query import EntityQuery
from ngsi_ld.timeutil import now_iso

__all__ = ["PURGE_BATCH", "purge_entities"]

#: entities changed per store transaction by a purge
PURGE_BATCH = 500
#: parameters of a purge that select no entities
_NOT_SELECTORS = frozenset({"local", "keep", "drop"})


# 5.6.21 Purge Entities
async def purge_entities(service: Service, call: Call) -> Reply:
    """Delete the matching entities, or only some of their attributes (keep, drop)."""
    params = call.params
    q_text = params.get("q")
    keep, drop = check_purge(params, None if q_text is None else service.caches.parsers.q(q_text))
    ctx = await service.resolver.active(parse_link_context(call.link))
    # local=true alone (5.6.21.4 e) selects every entity: this broker's data are all local
    selectors = set(params.keys()) - _NOT_SELECTORS
    query = query_of(service, params, ctx) if selectors else EntityQuery()
    kept = {ctx.expand_term(name) for name in keep} if keep else None
    dropped = {ctx.expand_term(name) for name in drop} if drop else None
    tenant = await service.tenant(call)
    call.active = ctx
    sources = service.sources
    if sources.serves(tenant):  # 4.3.6: the sources registered for the entities purge theirs
        plan = sources.plan(tenant, "purgeEntities", query, call)
        if plan.remote:
            await sources.fetch(tenant, "purgeEntities", query, plan, call)
        if not plan.local:
            return empty(204)
    found, _ = await service.store.query_entities(tenant, query)
    ids = [entity["id"] for entity in found]
    now = now_iso()
    for start in range(0, len(ids), PURGE_BATCH):
        chunk = ids[start:start + PURGE_BATCH]
        await service.commit_many(tenant, [(i, purge_mutation(i, kept, dropped, now))
                                           for i in chunk])
    return empty(204)

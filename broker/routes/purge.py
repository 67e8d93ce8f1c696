"""Purge Entities over HTTP: DELETE /ngsi-ld/v1/entities (v1.9.1 5.6.21, 6.4.3.3).

The selectors are those of GET /entities (``query_of``), checked first by
:func:`ngsi_ld.purge.check_purge` so that a refused purge deletes nothing.
"""

from __future__ import annotations

from aiohttp import web

from broker.app import add_route, broker_of
from broker.http import parse_link_context
from broker.routes.common import ENTITIES, commit_many
from broker.routes.query import cached_q, query_of
from ngsi_ld.purge import check_purge, purge_mutation
from ngsi_ld.query import EntityQuery
from ngsi_ld.timeutil import now_iso

#: entities changed per store transaction by a purge
PURGE_BATCH = 500
#: parameters of a purge that select no entities
_NOT_SELECTORS = frozenset({"local", "keep", "drop"})


# 5.6.21 Purge Entities
async def purge_entities(request: web.Request) -> web.Response:
    """Delete the matching entities, or only some of their attributes (keep, drop)."""
    broker = broker_of(request)
    params = request.query
    q_text = params.get("q")
    keep, drop = check_purge(params, None if q_text is None else cached_q(q_text))
    context = parse_link_context(request.headers.get("Link"))
    ctx = await broker.resolver.active(context)
    # local=true alone (5.6.21.4 e) selects every entity: this broker's data are all local
    selectors = set(params) - _NOT_SELECTORS
    query = query_of(request, ctx) if selectors else EntityQuery()
    kept = {ctx.expand_term(name) for name in keep} if keep else None
    dropped = {ctx.expand_term(name) for name in drop} if drop else None
    tenant = await broker.tenant(request)
    found, _ = await broker.store.query_entities(tenant, query)
    ids = [entity["id"] for entity in found]
    now = now_iso()
    for start in range(0, len(ids), PURGE_BATCH):
        chunk = ids[start:start + PURGE_BATCH]
        await commit_many(broker, tenant, [(i, purge_mutation(i, kept, dropped, now))
                                           for i in chunk])
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    add_route(app, "DELETE", ENTITIES, purge_entities, "purgeEntities")

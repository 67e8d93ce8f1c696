"""One write of one entity, answered by this broker and the registered sources (4.3.6).

The steps every distributed write of one entity shares (5.6.x.4): the plan of
the tenant's registrations (``Sources.plan``: which sources take the write,
whether the broker keeps a part, ``local=true``, ``Via`` and loops), the write
forwarded to the sources, the local part, and the parts folded into one reply
(204/201, the one error, or 207 naming the registrations of failed parts).
The deletions of entities and attributes and the writes of the temporal API
(5.6.11 to 5.6.16) go through :func:`distributed_write`; the entity writes with
a body do the same steps in ``broker.service.entities._Write``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from broker.service.core import Call, Service
from broker.service.ports import LOCAL, Plan
from broker.service.reply import Reply, json_reply
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.model import Entity
from ngsi_ld.query import EntityQuery

__all__ = ["LocalPart", "distributed_write"]

#: the broker's own part of a write, given the plan (its ``local_attrs``: what it keeps)
LocalPart = Callable[[Plan], Awaitable[Reply]]


async def distributed_write(service: Service, call: Call, tenant: str, operation: str,
                            entity_id: str, write: Entity | None, body: Any,
                            local: LocalPart) -> Reply:
    """Write ``entity_id`` here (``local``, unless the plan leaves the broker no part) and
    at the sources the plan names; ``operation`` is the broker's operation name,
    ``write`` the expanded entity or fragment written (its attributes and types choose
    the registrations; None: the whole entity), ``body`` what the client sent."""
    sources = service.sources
    plan = LOCAL
    if sources.serves(tenant):
        plan = sources.plan(tenant, operation, EntityQuery(ids=[entity_id]), call, write)
    if not plan.remote:
        return await local(plan)
    parts = await sources.forward(tenant, operation, entity_id, body, plan, call)
    reply: Reply | None = None
    if plan.local:
        try:
            reply = await local(plan)
        except NgsiLdError as exc:
            if not parts:
                raise
            # one part of several: 5.6.x.4 folds it into the outcome
            reply = json_reply(exc.to_problem(), status=exc.status)
    return sources.outcome(plan, reply, parts)

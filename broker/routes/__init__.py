"""The HTTP adapters, one module per part of the API: each reads a request's bytes and
parameters, calls the service (``broker.service``) and writes the reply.
"""

from __future__ import annotations

from aiohttp import web

from broker.routes import (
    batch,
    csource_registrations,
    discovery,
    entities,
    entitymaps,
    jsonld_contexts,
    query,
    remote_notify,
    snapshots,
    source_identity,
    subscriptions,
    system,
    temporal,
    unsupported,
)

__all__ = ["setup"]


def setup(app: web.Application) -> None:
    """Route every part of the API on ``app`` (the composition root calls it once)."""
    system.setup(app)
    jsonld_contexts.setup(app)
    entities.setup(app)
    batch.setup(app)
    query.setup(app)
    subscriptions.setup(app)  # and /csourceSubscriptions
    csource_registrations.setup(app)
    discovery.setup(app)
    snapshots.setup(app)
    entitymaps.setup(app)
    remote_notify.setup(app)
    source_identity.setup(app)
    temporal.setup(app)
    unsupported.setup(app)  # last: only what the others left unrouted

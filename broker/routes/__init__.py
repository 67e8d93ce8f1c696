"""HTTP routes, one module per part of the API."""

from __future__ import annotations

from aiohttp import web


def setup_routes(app: web.Application) -> None:
    from broker.routes import (
        batch,
        discovery,
        entities,
        jsonld_contexts,
        purge,
        query,
        query_post,
        snapshots,
        source_identity,
        subscriptions,
        system,
        unsupported,
    )

    system.setup(app)
    jsonld_contexts.setup(app)
    entities.setup(app)
    batch.setup(app)
    query.setup(app)
    purge.setup(app)
    query_post.setup(app)
    discovery.setup(app)
    subscriptions.setup(app)
    snapshots.setup(app)
    source_identity.setup(app)
    unsupported.setup(app)  # last: only what the others left unrouted

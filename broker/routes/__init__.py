"""HTTP routes, one module per part of the API."""

from __future__ import annotations

from aiohttp import web


def setup_routes(app: web.Application) -> None:
    from broker.routes import batch, entities, jsonld_contexts, system

    system.setup(app)
    jsonld_contexts.setup(app)
    entities.setup(app)
    batch.setup(app)

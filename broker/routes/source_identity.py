"""Clause 5.15.1 Retrieve Context Source Identity: GET /ngsi-ld/v1/info/sourceIdentity."""

from __future__ import annotations

import time

from aiohttp import web

from broker.app import add_route, broker_of
from broker.http import JSON, LD_JSON, negotiate, tenant_of
from broker.routes.common import respond
from broker.routes.system import PACKAGE_VERSION
from ngsi_ld.source_identity import identity, source_digest
from ngsi_ld.timeutil import now_iso

PATH = "/ngsi-ld/v1/info/sourceIdentity"


# 5.15.1 Retrieve Context Source Identity Information
async def source_identity(request: web.Request) -> web.Response:
    """The ContextSourceIdentity (5.2.40) of this broker for the request's tenant.

    The tenant need not exist: the answer describes the Context Source, it reads
    no tenant data, and a peer asks for the alias before it registers anything.
    """
    broker = broker_of(request)
    media = negotiate(request.headers.get("Accept"), (JSON, LD_JSON))
    tenant = tenant_of(request, broker.settings.multi_tenancy)
    settings = broker.settings
    body = identity(
        source_digest(settings.base_url, settings.store),
        tenant,
        time.time() - broker.started,
        now_iso(),
        {"broker": "ngsi-ld-broker", "version": PACKAGE_VERSION},
    )
    return await respond(broker, body, media, None)


def setup(app: web.Application) -> None:
    add_route(app, "GET", PATH, source_identity, "retrieveSourceIdentity")

"""Clause 5.15.1 Retrieve Context Source Identity: GET /ngsi-ld/v1/info/sourceIdentity."""

from __future__ import annotations

import time

from aiohttp import web

from broker.http import JSON, LD_JSON, negotiate
from broker.routes.system import PACKAGE_VERSION
from broker.service.answers import entity_reply
from broker.state import service_of
from broker.web import add_route, call_of, response_of
from ngsi_ld.source_identity import identity, source_digest
from ngsi_ld.timeutil import now_iso

PATH = "/ngsi-ld/v1/info/sourceIdentity"


# 5.15.1 Retrieve Context Source Identity Information
async def source_identity(request: web.Request) -> web.Response:
    """The ContextSourceIdentity (5.2.40) of this broker for the request's tenant.

    The tenant need not exist: the answer describes the Context Source, it reads
    no tenant data, and a peer asks for the alias before it registers anything.
    """
    service = service_of(request)
    media = negotiate(request.headers.get("Accept"), (JSON, LD_JSON))
    call = call_of(request)
    tenant = service.tenant_named(call)
    settings = service.settings
    body = identity(
        source_digest(settings.base_url, settings.store),
        tenant,
        time.time() - service.started,
        now_iso(),
        {"broker": "ngsi-ld-broker", "version": PACKAGE_VERSION},
    )
    return response_of(await entity_reply(service, body, media, None, tenant=tenant), call)


def setup(app: web.Application) -> None:
    add_route(app, "GET", PATH, source_identity, "retrieveSourceIdentity")

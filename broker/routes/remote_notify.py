"""Where the context sources' notifications of subscription copies arrive (5.8.1.4).

``/ngsi-ld/ex/...`` paths are outside the NGSI-LD API: the spec leaves the
notification endpoint of a copied subscription to the implementation (ETSI
5814_01 posts to ``/ngsi-ld/ex/remote-notify``).  Adapters of
``broker.federation.DistributedSubscriptions``.
"""

from __future__ import annotations

from aiohttp import web

from broker.federation import CSOURCE_NOTIFY, REMOTE_NOTIFY
from broker.http import read_body
from broker.service import Reply
from broker.state import DISTRIBUTED, service_of
from broker.web import add_route, call_of, response_of


async def remote_notification(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size)
    call = call_of(request)
    await request.app[DISTRIBUTED].notified(body.data, call.link)
    return response_of(Reply(200), call)


async def registration_notification(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size)
    call = call_of(request)
    await request.app[DISTRIBUTED].registrations_changed(body.data)
    return response_of(Reply(200), call)


def setup(app: web.Application) -> None:
    add_route(app, "POST", REMOTE_NOTIFY, remote_notification)
    add_route(app, "POST", CSOURCE_NOTIFY, registration_notification)

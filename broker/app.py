"""The composition root: ``create_app`` builds the application and everything it runs.

The store (wrapped by the schema validation when ``--model-schemas`` is on),
the @context resolver, the service (``broker.service``), the expiry sweeper,
the cluster node, the subscription manager, the routes and the explorer are
built here and nowhere else; the other modules receive what they need and
never import this one (``tests/test_import_cycles.py`` keeps it so).  Also
here: the edge (``edge``) every request passes through (ProblemDetails,
request ids, tenant echo, metrics, CORS).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from functools import partial
from time import perf_counter

from aiohttp import hdrs, web

from broker import explorer, routes
from broker.auth import Authentication
from broker.cluster import ClusterNode, process_id
from broker.config import Settings
from broker.contexts import ContextResolver
from broker.expiry import ExpirySweeper
from broker.federation import DistributedSubscriptions, FederatedSources, ForwardingClient
from broker.http import (
    BODY_TIMEOUT,
    PREFER,
    PREFERENCE_APPLIED,
    REQUEST_ID,
    TENANT,
    ClientGone,
    json_response,
    version_applied,
)
from broker.metrics import Metrics, RouteStats
from broker.outbound import OutboundPolicy
from broker.preconditions import BODY_METHODS, length_required
from broker.retention import RetentionSweeper
from broker.routes.entities import HOT
from broker.schemas import ModelSchemas, validating
from broker.service import Service
from broker.service.registry import COLLECTION as REGISTRATIONS
from broker.state import BROKER, CSOURCE_SUBSCRIPTIONS, DISTRIBUTED, MANAGER, Broker, broker_of
from broker.web import AROUND, CALL, Handler, Wrapper, add_route, add_warnings, twins_last
from ngsi_ld.errors import BadRequestData, InternalError, NgsiLdError
from ngsi_ld.source_identity import source_digest
from ngsi_ld.temporal import parse_duration
from storage import open_store
from storage.base import Store
from storage.sharing import shared
from subscriptions import Delivery, LeaseOwner, SubscriptionManager
from subscriptions.registrations import COLLECTION as CSOURCE_COLLECTION
from subscriptions.registrations import RegistrationSubscriptions
from subscriptions.repository import COLLECTION

__all__ = ["AUTHENTICATION", "BROKER", "Broker", "add_route", "broker_of", "create_app",
           "problem_response"]

log = logging.getLogger("broker")

#: seconds the rest of an unread request body is waited for after the answer (aiohttp: 10)
LINGERING_TIME = 1.0
#: the status a request is counted under when its client went away (nginx's 499)
CLIENT_CLOSED = 499

# Request ids: a per-process prefix and a counter; uuid4 per request cost 10% of a GET.
_REQUEST_IDS = itertools.count(1)
_REQUEST_PREFIX = os.urandom(4).hex() + "-"


def problem_response(error: NgsiLdError, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(error.to_problem(), status=error.status, headers=headers)


def _http_problem(exc: web.HTTPException) -> web.Response:
    names = {404: "ResourceNotFound", 405: "InvalidRequest", 413: "PayloadTooLarge",
             408: "InvalidRequest"}
    body = {
        "type": "https://uri.etsi.org/ngsi-ld/errors/" + names.get(exc.status, "InvalidRequest"),
        "title": exc.reason,
        "status": exc.status,
        "detail": exc.text if exc.status not in (404, 405) else exc.reason,
    }
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return json_response(body, status=exc.status, headers=headers)


def edge(metrics: Metrics, settings: Settings) -> Wrapper:
    """The edge around a handler: errors as ProblemDetails, request ids, tenant echo,
    metrics and CORS for every request.

    Every handler runs inside it (``broker.web.AROUND``), those of paths no route
    matches too (:func:`unmatched`).  A closure over what it reads on every request
    (the metrics, the settings): a GET answered from a kept answer spends a fifth of
    its CPU here (issue 19), so the common case reads as little as it can.
    """

    #: the metrics of each route of one method (``_route_name``), found once
    counted: dict[web.AbstractRoute, RouteStats] = {}

    def at_edge(handler: Handler) -> Handler:
        async def edge_of(request: web.Request) -> web.StreamResponse:
            started = perf_counter()
            headers = request.headers
            request_id = headers.get(REQUEST_ID) or f"{_REQUEST_PREFIX}{next(_REQUEST_IDS):x}"
            try:
                # 6.3.4: only a POST, PATCH or PUT may lack its Content-Length
                bare = length_required(request) if request.method in BODY_METHODS else None
                if bare is not None:
                    response: web.StreamResponse = bare
                else:
                    response = await handler(request)
            except asyncio.CancelledError:
                # with handler cancellation on (aiohttp's test server), a client going away
                # cancels its handler: counted as gone, and the cancellation goes on
                transport = request.transport
                if transport is None or transport.is_closing():
                    _client_gone(request, request_id, "connection closed", started)
                raise
            except Exception as exc:
                response = _failed(request, exc, request_id, started)
            response_headers = response.headers
            response_headers[REQUEST_ID] = request_id
            # the request's state is empty unless a route took a Call from it (a kept
            # answer took none): a lookup of a missing key costs a KeyError
            call = request.get(CALL) if len(request) else None
            if call is not None and call.warnings:  # 6.3.17: error answers carry them too
                add_warnings(response, call)
            tenant = headers.get(TENANT)
            if tenant is not None:  # 6.3.14: present in the request, present in the response
                response_headers[TENANT] = tenant
            if PREFER in headers and response.status == 200 \
                    and PREFERENCE_APPLIED not in response_headers:
                # 4.3.6.8: payloads other than Entity data have no version fallbacks, they
                # conform as they are (entity routes amend and answer the header themselves)
                response_headers.update(version_applied(request))
            origin = settings.cors_origin
            if origin:
                response_headers.update(_cors(origin))
            route = request.match_info.route
            stats = counted.get(route)
            if stats is None:
                stats = metrics.route(request.method, _route_name(request))
                if route.method != hdrs.METH_ANY:  # the catch-all's method is the request's
                    counted[route] = stats
            stats.observe(response.status, perf_counter() - started)
            return response

        return edge_of

    return at_edge


def _cors(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, POST, PATCH, PUT, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": (
            "Content-Type, Accept, Link, NGSILD-Tenant, Fiware-Service, Authorization, X-API-Key"
        ),
        "Access-Control-Expose-Headers": (
            "Link, Location, NGSILD-Results-Count, NGSILD-Tenant, X-Request-Id, WWW-Authenticate"
        ),
    }


def _failed(request: web.Request, exc: Exception, request_id: str,
            started: float) -> web.StreamResponse:
    """The answer to a request whose handler raised ``exc``; raises what is not answered
    (a cancellation, an HTTP exception below 400)."""
    if isinstance(exc, NgsiLdError):
        return problem_response(exc)
    if isinstance(exc, ClientGone):
        # the client closed its connection before its request was read: nothing to
        # answer, nothing wrong with the broker (counted apart from server errors)
        _client_gone(request, request_id, str(exc), started)
        response = web.Response(status=CLIENT_CLOSED)
        response.force_close()
        return response
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        response = _http_problem(exc)
        if exc.status == 408:  # a slow upload: its connection is not kept
            response.force_close()
        if exc.status == 405 and _names_no_entity(request):
            response = problem_response(
                BadRequestData(f"{request.method} needs the id of the entity in the path")
            )
        return response
    if isinstance(exc, RecursionError):
        # Only input nested past every limit gets here (parsers and the attribute
        # checks bound nesting); logged in case it is a bug after all.
        log.warning("recursion limit in %s %s", request.method, request.path, exc_info=True,
                    extra={"request_id": request_id})
        return problem_response(BadRequestData("the request nests too deeply"))
    log.exception(
        "unexpected error in %s %s",
        request.method,
        request.path,
        extra={"request_id": request_id},
    )
    return problem_response(
        InternalError(f"internal error; the broker log has the details (request id {request_id})")
    )


def _route_name(request: web.Request) -> str:
    route = request.match_info.route.resource
    return route.canonical if route is not None and route.name != UNMATCHED else UNMATCHED


#: the name of the route of every path no other route matches (registered last)
UNMATCHED = "unmatched"


async def unmatched(request: web.Request) -> web.StreamResponse:
    """A path no route matches: 404, or 405 if routes match it with other methods; a CORS
    preflight (OPTIONS with ``--cors-origin``) of any path is 204."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.name != UNMATCHED:
            allowed |= (await resource.resolve(request))[1]
    if request.method == "OPTIONS" and request.app[BROKER].settings.cors_origin:
        return web.Response(status=204)
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def _client_gone(request: web.Request, request_id: str, reason: str, started: float) -> None:
    """Log (INFO, no traceback) and count a request whose client went away."""
    log.info("client went away during %s %s: %s", request.method, request.path, reason,
             extra={"request_id": request_id})
    broker = request.app[BROKER]
    broker.metrics.incr("client_disconnects")
    broker.metrics.observe(request.method, _route_name(request), CLIENT_CLOSED,
                           perf_counter() - started)


def _names_no_entity(request: web.Request) -> bool:
    # 5.6.17.4 and 5.6.18.4: a merge or replace of /entities/ is a request whose entity
    # id is "not present", BadRequestData, rather than a method the collection lacks
    return request.method in ("PATCH", "PUT") and request.path.rstrip("/") == _ENTITIES


_ENTITIES = "/ngsi-ld/v1/entities"


def _checking(auth: Authentication, handler: Handler) -> Handler:
    return partial(auth.middleware, handler=handler)


#: the authentication of an application that checks credentials (``--auth``)
AUTHENTICATION = web.AppKey("authentication", Authentication)


def create_app(settings: Settings, store: Store | None = None) -> web.Application:
    """The broker application; the store is opened at start-up and closed at cleanup."""
    store = store if store is not None else open_store(settings.store)
    # 4.22: what expires is removed by the broker itself, whatever a model schema requires
    unchecked = store
    if settings.model_schemas:  # SchemaLoadError is a ValueError: the CLI reports it
        schemas = ModelSchemas.load(settings.model_schemas, settings.core_context_version)
        store = validating(store, schemas)
    outbound = OutboundPolicy.parse(settings.outbound_allow)
    resolver = ContextResolver(
        store,
        core_version=settings.core_context_version,
        base_url=settings.base_url,
        timeout=settings.context_timeout,
        max_size=settings.context_max_size,
        cache_size=settings.context_cache_size,
        preload_dir=settings.context_dir,
        outbound=outbound,
        failure_ttl=settings.context_failure_ttl,
        max_remote=settings.context_max_remote,
    )
    metrics = Metrics()
    service = Service(settings, store, resolver, metrics=metrics)
    # 4.3.6: requests the tenant's registrations match are forwarded to their sources
    forwarding = ForwardingClient(outbound=outbound)
    service.sources = FederatedSources(
        service.registry, forwarding, resolver,
        digest=source_digest(settings.base_url, settings.store),
        timeout=settings.forward_timeout, default_limit=settings.default_page_size,
    )
    sweeper = service.expiry = ExpirySweeper(unchecked, partial(service.commit, store=unchecked))
    history = service.history
    retention = (RetentionSweeper(history, parse_duration(settings.temporal_retention))
                 if history is not None and settings.temporal_retention else None)
    node = _cluster_node(settings, service, resolver)
    if node is not None:
        node.on_record(REGISTRATIONS, service.registry.reload)
    manager = _subscription_manager(settings, service, resolver, node, outbound)
    # 5.11: same delivery (HTTP pool, MQTT connections, retries) as entity subscriptions
    csource_subs = RegistrationSubscriptions(
        service.store, resolver, service.registry.of, manager.delivery, service.metrics,
        queue_size=settings.notification_queue_size)
    if node is not None:
        node.on_record(CSOURCE_COLLECTION, csource_subs.reload)
    at_edge = edge(metrics, settings)
    wrappers: list[Wrapper] = [at_edge]
    auth = None
    if settings.auth != "off":  # ValueError for options that do not fit: the CLI reports it
        auth = Authentication.from_settings(settings)
        wrappers.append(partial(_checking, auth))
    app = web.Application(
        client_max_size=settings.max_body_size,
        # long request lines: GET /entities?id=... with hundreds of ids (aiohttp: 8190)
        handler_args={"max_field_size": 16384, "max_line_size": 32768,
                      # after an answer to a request whose body was not read (a 408, a
                      # 413...), wait this long for the rest of it before closing
                      "lingering_time": LINGERING_TIME},
    )
    app[AROUND] = wrappers
    if auth is not None:
        app[AUTHENTICATION] = auth
    app[BROKER] = Broker(service=service, resolver=resolver, subscriptions=manager, node=node)
    app[MANAGER] = manager
    app[CSOURCE_SUBSCRIPTIONS] = csource_subs
    # 5.8.1.4: entity subscriptions copied to the registered sources
    distributed = DistributedSubscriptions(
        service.registry, forwarding, resolver, service.store, manager,
        base_url=settings.base_url, digest=source_digest(settings.base_url, settings.store),
        timeout=settings.forward_timeout)
    distributed.csource_subs = csource_subs
    app[DISTRIBUTED] = distributed
    unfollowed = service.registry.on_change(distributed.on_registration, remote=False)
    unheard = service.registry.on_change(csource_subs.on_registration, remote=False)
    app[BODY_TIMEOUT] = settings.body_timeout
    unsubscribe = service.events.subscribe(manager.on_change, concerns=manager.index.concerns)
    # the notifications a write queued are in the store before it is answered
    unsettled = service.before_answer(manager.journal)
    # and those of registration subscriptions, before a registration change is answered
    unsettled_csource = service.before_answer(csource_subs.journal)

    async def startup(app: web.Application) -> None:
        await store.open()
        await resolver.start()
        if node is not None:
            await node.begin()  # before anything is loaded: no change falls in between
        await service.registry.load()
        await distributed.load()  # before the registration subscriptions notify
        await manager.start()
        await csource_subs.start()

    async def follow(app: web.Application) -> None:
        if node is not None:
            node.start()
        sweeper.start()  # after the subscriptions loaded: they hear of the deletions
        service.registry.start()
        if retention is not None:
            retention.start()

    async def shutdown(app: web.Application) -> None:
        unsubscribe()
        unsettled()
        unsettled_csource()
        unheard()
        unfollowed()
        await csource_subs.close()  # before the manager closes the delivery they share
        await manager.close()

    async def cleanup(app: web.Application) -> None:
        await sweeper.close()
        await service.registry.close()
        if retention is not None:
            await retention.close()
        if node is not None:
            await node.close()
        await distributed.close()
        await forwarding.close()
        await resolver.close()
        await store.close()

    app.on_startup.append(startup)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(cleanup)
    if auth is not None:
        app.on_startup.append(auth.start)
        app.on_cleanup.append(auth.close)
    with twins_last(app):
        routes.setup(app)
    # requests answered from kept answers: what Cache-Control: no-cache (RFC 9111
    # 5.2.1.4) turns off is seen here
    caches, hot = service.caches, app[HOT]
    metrics.counted("kept_query_answers_served", lambda: caches.answers.hits)
    metrics.counted("kept_discovery_answers_served", lambda: caches.summaries.hits)
    metrics.counted("kept_retrievals_served", lambda: hot.hits)
    if settings.explorer:
        explorer.setup(app)
    app.router.add_route("*", "/{tail:.*}", at_edge(unmatched), name=UNMATCHED)  # last
    app.on_startup.append(follow)  # last: every component has loaded its state
    return app


def _subscription_manager(settings: Settings, service: Service, resolver: ContextResolver,
                          node: ClusterNode | None,
                          outbound: OutboundPolicy) -> SubscriptionManager:
    """The subscriptions of this process, told of every change the service publishes."""
    delivery = Delivery(
        retries=settings.notification_retries,
        backoff=settings.notification_backoff,
        default_timeout=settings.notification_timeout,
        outbound=outbound,
    )
    ownership = None
    if node is not None:
        ownership = LeaseOwner(node.store, node.origin, settings.cluster_lease_ttl)
    manager = SubscriptionManager(
        service.store, resolver, service.metrics, delivery=delivery,
        queue_size=settings.notification_queue_size, ownership=ownership)
    if node is not None:
        node.on_record(COLLECTION, manager.reload)
    # notifications queued and in flight, over every subscription of this process
    service.metrics.gauge("notifications_pending", manager.queued)
    return manager


def _cluster_node(settings: Settings, service: Service,
                  resolver: ContextResolver) -> ClusterNode | None:
    """A ClusterNode if this process shares its store with others (docs/scaling.md)."""
    wanted = settings.cluster or settings.workers > 1
    if not (wanted or settings.reuse_port):
        return None
    store = shared(service.store)
    if store is None:
        if wanted:
            raise ValueError(
                f"--cluster needs a store that processes can share (sqlite:PATH, or "
                f"mongodb:// on a replica set); "
                f"{service.store.kind} cannot be"
            )
        log.warning("--reuse-port with the %s store: every process has its own data",
                    service.store.kind)
        return None
    origin = process_id()
    store.share(origin)
    return ClusterNode(store, service.events, resolver.invalidate, origin=origin,
                       poll_interval=settings.cluster_poll_interval)

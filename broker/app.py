"""The aiohttp application: state, middlewares, start-up and shutdown, routes."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from broker.cluster import ClusterNode, process_id
from broker.config import Settings
from broker.contexts import ContextResolver
from broker.events import ChangeBus
from broker.expiry import ExpirySweeper
from broker.http import PREFERENCE_APPLIED, json_response, tenant_of, version_applied
from broker.metrics import Metrics
from broker.preconditions import checked, length_required, options
from broker.render_cache import KnownVersions, RenderCache
from broker.schemas import ModelSchemas, validating
from ngsi_ld import snapshots
from ngsi_ld.errors import (
    BadRequestData,
    InternalError,
    NgsiLdError,
    NonexistentTenant,
    ResourceNotFound,
)
from storage import open_store
from storage.base import Store
from storage.sharing import shared

log = logging.getLogger("broker")

# Request ids: a per-process prefix and a counter; uuid4 per request cost 10% of a GET.
_REQUEST_IDS = itertools.count(1)
_REQUEST_PREFIX = os.urandom(4).hex()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROBLEM_JSON = "application/json"


@dataclass
class Broker:
    """Everything a request handler needs, kept on the application."""

    settings: Settings
    store: Store
    resolver: ContextResolver
    metrics: Metrics = field(default_factory=Metrics)
    events: ChangeBus = field(default_factory=ChangeBus)
    started: float = field(default_factory=time.time)
    #: rendered entities by (tenant, id, version, view, context), see broker.render_cache
    renders: RenderCache = field(default_factory=RenderCache)
    #: entity versions valid while the store's data_version holds (retrieve without a read)
    versions: KnownVersions = field(default_factory=KnownVersions)
    #: set when this process shares its store with others (broker.cluster)
    node: ClusterNode | None = None
    #: deletes expired entities and attributes (clause 4.22), set by create_app
    expiry: ExpirySweeper | None = None
    _tenants: set[str] = field(default_factory=set)

    async def tenant(self, request: web.Request, *, create: bool = False) -> str:
        """The request's tenant; an unknown one is 404 unless the operation creates entities.

        With ``NGSILD-Snapshot`` (6.3.22) a read is answered from the Snapshot's
        frozen entities: the tenant that holds them.
        """
        tenant = tenant_of(request, self.settings.multi_tenancy)
        if tenant and tenant not in self._tenants:
            if create:
                await self.store.ensure_tenant(tenant)
            elif not await self.store.tenant_exists(tenant):
                raise NonexistentTenant(f"tenant {tenant!r} does not exist")
            self._tenants.add(tenant)
        snapshot = request.headers.get(snapshots.HEADER)
        if snapshot is not None:
            return await self._snapshot_tenant(request, tenant, snapshot.strip())
        return tenant

    async def _snapshot_tenant(self, request: web.Request, tenant: str, snapshot: str) -> str:
        if request.method != "GET" and request.path != _QUERY_POST:
            raise BadRequestData(f"{snapshots.HEADER} applies to reads only: a Snapshot is frozen")
        record = await self.store.get_record(tenant, snapshots.RECORDS, snapshot)
        frozen = None if record is None else record.get(snapshots.STORE_TENANT)
        if not isinstance(frozen, str):
            raise ResourceNotFound(f"Snapshot {snapshot} not found")
        request[SNAPSHOT] = snapshot
        return frozen


BROKER = web.AppKey("broker", Broker)
#: the Snapshot a read was answered from (set by Broker.tenant, echoed in the answer)
SNAPSHOT = "ngsild_snapshot"
_QUERY_POST = "/ngsi-ld/v1/entityOperations/query"


def broker_of(request: web.Request) -> Broker:
    return request.app[BROKER]


def problem_response(error: NgsiLdError, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(error.to_problem(), status=error.status, headers=headers)


def _http_problem(exc: web.HTTPException) -> web.Response:
    names = {404: "ResourceNotFound", 405: "InvalidRequest", 413: "PayloadTooLarge"}
    body = {
        "type": "https://uri.etsi.org/ngsi-ld/errors/" + names.get(exc.status, "InvalidRequest"),
        "title": exc.reason,
        "status": exc.status,
        "detail": exc.text if exc.status not in (404, 405) else exc.reason,
    }
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return json_response(body, status=exc.status, headers=headers)


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors as ProblemDetails, request ids, tenant echo, metrics and CORS for every request."""
    broker = request.app[BROKER]
    started = time.perf_counter()
    request_id = request.headers.get("X-Request-Id") or f"{_REQUEST_PREFIX}-{next(_REQUEST_IDS):x}"
    origin = broker.settings.cors_origin
    try:
        bare = length_required(request)
        if bare is not None:
            response: web.StreamResponse = bare
        elif origin and request.method == "OPTIONS" and request.match_info.http_exception:
            response = web.Response(status=204)  # a CORS preflight of any path
        else:
            response = await handler(request)
    except NgsiLdError as exc:
        response = problem_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _http_problem(exc)
        if exc.status == 405 and _names_no_entity(request):
            response = problem_response(
                BadRequestData(f"{request.method} needs the id of the entity in the path")
            )
    except RecursionError:
        # Only input nested past every limit gets here (parsers and the attribute
        # checks bound nesting); logged in case it is a bug after all.
        log.warning("recursion limit in %s %s", request.method, request.path, exc_info=True,
                    extra={"request_id": request_id})
        response = problem_response(BadRequestData("the request nests too deeply"))
    except Exception:
        log.exception(
            "unexpected error in %s %s",
            request.method,
            request.path,
            extra={"request_id": request_id},
        )
        response = problem_response(
            InternalError(
                f"internal error; the broker log has the details (request id {request_id})"
            )
        )
    response.headers["X-Request-Id"] = request_id
    tenant = request.headers.get("NGSILD-Tenant")
    if tenant is not None:  # 6.3.14: present in the request, present in the response
        response.headers["NGSILD-Tenant"] = tenant
    if "Prefer" in request.headers and response.status == 200 \
            and PREFERENCE_APPLIED not in response.headers:
        # 4.3.6.8: payloads other than Entity data have no version fallbacks, they
        # conform as they are (entity routes amend and answer the header themselves)
        response.headers.update(version_applied(request))
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, PUT, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = (
            "Content-Type, Accept, Link, NGSILD-Tenant, Fiware-Service, Authorization"
        )
        response.headers["Access-Control-Expose-Headers"] = (
            "Link, Location, NGSILD-Results-Count, NGSILD-Tenant, X-Request-Id"
        )
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    broker.metrics.observe(request.method, name, response.status, time.perf_counter() - started)
    return response


def _names_no_entity(request: web.Request) -> bool:
    # 5.6.17.4 and 5.6.18.4: a merge or replace of /entities/ is a request whose entity
    # id is "not present", BadRequestData, rather than a method the collection lacks
    return request.method in ("PATCH", "PUT") and request.path.rstrip("/") == _ENTITIES


_ENTITIES = "/ngsi-ld/v1/entities"
_RESOURCES = web.AppKey("resources_by_path", dict[str, web.Resource])


def add_route(
    app: web.Application, method: str, path: str, handler: Handler, operation: str | None = None
) -> None:
    """Register ``path`` and ``path/``: IoT Agents post with a trailing slash, no redirect.

    ``operation`` names the NGSI-LD operation (``ngsi_ld.parameters``): a query
    parameter it does not define answers 400 InvalidRequest before anything else;
    under /ngsi-ld/v1/ the media type preconditions of 6.3.4 are checked first
    (``broker.preconditions``).  Every resource answers OPTIONS with its methods.
    Every method of one path shares one resource: aiohttp tries the resources
    under a path prefix one by one, so one resource per method made every
    request of /entities/... try some twenty patterns.
    """
    handler = checked(handler, method, path, operation)
    resources = app.get(_RESOURCES)
    if resources is None:
        resources = app[_RESOURCES] = {}
    for each in (path, path.rstrip("/") + "/"):
        resource = resources.get(each)
        if resource is None:
            resource = resources[each] = app.router.add_resource(each)
            resource.add_route("OPTIONS", options)
        resource.add_route(method, handler)


def create_app(settings: Settings, store: Store | None = None) -> web.Application:
    """The broker application; the store is opened at start-up and closed at cleanup."""
    store = store if store is not None else open_store(settings.store)
    # 4.22: what expires is removed by the broker itself, whatever a model schema requires
    unchecked = store
    if settings.model_schemas:  # SchemaLoadError is a ValueError: the CLI reports it
        schemas = ModelSchemas.load(settings.model_schemas, settings.core_context_version)
        store = validating(store, schemas)
    resolver = ContextResolver(
        store,
        core_version=settings.core_context_version,
        base_url=settings.base_url,
        timeout=settings.context_timeout,
        max_size=settings.context_max_size,
        cache_size=settings.context_cache_size,
        preload_dir=settings.context_dir,
    )
    app = web.Application(
        middlewares=[edge_middleware],
        client_max_size=settings.max_body_size,
        # long request lines: GET /entities?id=... with hundreds of ids (aiohttp: 8190)
        handler_args={"max_field_size": 16384, "max_line_size": 32768},
    )
    broker = app[BROKER] = Broker(settings=settings, store=store, resolver=resolver)
    node = broker.node = _cluster_node(settings, broker)
    sweeper = broker.expiry = ExpirySweeper(unchecked, broker.events)

    async def startup(app: web.Application) -> None:
        await store.open()
        await resolver.start()
        if node is not None:
            await node.begin()  # before anything is loaded: no change falls in between

    async def follow(app: web.Application) -> None:
        if node is not None:
            node.start()
        sweeper.start()  # after the subscriptions loaded: they hear of the deletions

    async def cleanup(app: web.Application) -> None:
        await sweeper.close()
        if node is not None:
            await node.close()
        await resolver.close()
        await store.close()

    async def echo_snapshot(request: web.Request, response: web.StreamResponse) -> None:
        # 6.3.22: the answer of a read from a Snapshot names it
        snapshot = request.get(SNAPSHOT)
        if snapshot is not None and response.status < 400:
            response.headers[snapshots.HEADER] = snapshot

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.on_response_prepare.append(echo_snapshot)

    from broker import explorer
    from broker.routes import setup_routes

    setup_routes(app)
    if settings.explorer:
        explorer.setup(app)
    app.on_startup.append(follow)  # last: every component has loaded its state
    return app


def _cluster_node(settings: Settings, broker: Broker) -> ClusterNode | None:
    """A ClusterNode if this process shares its store with others (docs/scaling.md)."""
    wanted = settings.cluster or settings.workers > 1
    if not (wanted or settings.reuse_port):
        return None
    store = shared(broker.store)
    if store is None:
        if wanted:
            raise ValueError(
                f"--cluster needs a store that processes can share (sqlite:PATH); "
                f"{broker.store.kind} cannot be"
            )
        log.warning("--reuse-port with the %s store: every process has its own data",
                    broker.store.kind)
        return None
    origin = process_id()
    store.share(origin)
    return ClusterNode(store, broker.events, broker.resolver.invalidate, origin=origin,
                       poll_interval=settings.cluster_poll_interval)

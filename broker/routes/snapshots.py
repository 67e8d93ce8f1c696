"""Clause 5.16 Snapshots over HTTP: resources 6.36 /snapshots, 6.37 /snapshots/{id} and
6.38 /snapshots/{id}/clone.  Adapters of ``broker.service.snapshots``.
"""

from __future__ import annotations

from aiohttp import web

from broker.http import read_body
from broker.service import snapshots
from broker.state import service_of
from broker.web import add_route, call_of, response_of

SNAPSHOTS = "/ngsi-ld/v1/snapshots"


async def create_snapshot(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size)
    call = call_of(request)
    return response_of(await snapshots.create_snapshot(service, call, body), call)


async def retrieve_snapshot(request: web.Request) -> web.Response:
    call = call_of(request)
    snapshot_id = request.match_info["snapshotId"]
    return response_of(await snapshots.retrieve_snapshot(service_of(request), call,
                                                         snapshot_id), call)


async def update_snapshot(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size)
    call = call_of(request)
    snapshot_id = request.match_info["snapshotId"]
    return response_of(await snapshots.update_snapshot(service, call, snapshot_id, body), call)


async def delete_snapshot(request: web.Request) -> web.Response:
    call = call_of(request)
    snapshot_id = request.match_info["snapshotId"]
    return response_of(await snapshots.delete_snapshot(service_of(request), call,
                                                       snapshot_id), call)


async def clone_snapshot(request: web.Request) -> web.Response:
    service = service_of(request)
    body = await read_body(request, service.settings.max_body_size)
    call = call_of(request)
    snapshot_id = request.match_info["snapshotId"]
    return response_of(await snapshots.clone_snapshot(service, call, snapshot_id, body), call)


async def purge_snapshots(request: web.Request) -> web.Response:
    call = call_of(request)
    return response_of(await snapshots.purge_snapshots(service_of(request), call), call)


def setup(app: web.Application) -> None:
    one = SNAPSHOTS + "/{snapshotId}"
    add_route(app, "POST", SNAPSHOTS, create_snapshot, "createSnapshot")
    add_route(app, "DELETE", SNAPSHOTS, purge_snapshots, "purgeSnapshots")
    add_route(app, "GET", one, retrieve_snapshot, "retrieveSnapshot")
    add_route(app, "PATCH", one, update_snapshot, "updateSnapshot")
    add_route(app, "DELETE", one, delete_snapshot, "deleteSnapshot")
    add_route(app, "POST", one + "/clone", clone_snapshot, "cloneSnapshot")

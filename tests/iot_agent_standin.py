"""A small IoT Agent stand-in on loopback, speaking NGSI-LD northbound as the FIWARE
IoT Agent library does: lazy attributes read from the device on GET, commands
taken by PATCH of the command attribute (answered 204), both with the device's
tenant in ``NGSILD-Tenant`` and the @context in a Link header."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

CONTEXT_LINK = ('<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; '
                'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"')


@dataclass
class Device:
    """One device: its entity, the lazy values it reads on demand, the commands it got."""

    entity_id: str
    entity_type: str
    lazy: dict[str, Any]
    commands: list[tuple[str, Any]] = field(default_factory=list)
    reads: int = 0


class IotAgent:
    """The northbound NGSI-LD side of an IoT Agent serving ``devices``."""

    def __init__(self, *devices: Device, command_names: tuple[str, ...] = ()) -> None:
        self.devices = {d.entity_id: d for d in devices}
        self.command_names = command_names
        self.tenants: list[str | None] = []
        self.app = web.Application()
        self.app.router.add_get("/ngsi-ld/v1/entities/{id}", self.retrieve)
        self.app.router.add_patch("/ngsi-ld/v1/entities/{id}/attrs/{attr}", self.command)

    async def retrieve(self, request: web.Request) -> web.Response:
        self.tenants.append(request.headers.get("NGSILD-Tenant"))
        device = self.devices.get(request.match_info["id"])
        if device is None:
            return web.json_response({"type": "https://uri.etsi.org/ngsi-ld/errors/"
                                      "ResourceNotFound", "title": "not found"}, status=404)
        device.reads += 1
        wanted = request.query.get("attrs")
        names = wanted.split(",") if wanted else list(device.lazy)
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body: dict[str, Any] = {"id": device.entity_id, "type": device.entity_type}
        for name in names:
            if name in device.lazy:
                body[name] = {"type": "Property", "value": device.lazy[name], "observedAt": now}
        return web.json_response(body, headers={"Link": CONTEXT_LINK})

    async def command(self, request: web.Request) -> web.Response:
        self.tenants.append(request.headers.get("NGSILD-Tenant"))
        device = self.devices.get(request.match_info["id"])
        attr = request.match_info["attr"]
        if device is None or attr not in self.command_names:
            return web.json_response({"type": "https://uri.etsi.org/ngsi-ld/errors/"
                                      "ResourceNotFound", "title": "not found"}, status=404)
        body = await request.json()
        device.commands.append((attr, body.get("value")))
        return web.Response(status=204)

"""The federation scenario (issue 16 item 7): a query a hub answers from two sources.

Two more brokers are started (the sources, each with ``size`` Streetlights of
its own ids, pinned with the load generator: the measured core is the hub's);
the hub, the broker of this run, registers both in a tenant of their own
(``fed``) where it holds nothing.  The same ``2 * size`` entities are loaded
into another tenant of the hub (``fedlocal``), answered locally: the ratio of
the two closed-loop rates is the scenario's (target: 40%).  The query pages
through the Streetlights, ``limit=100`` at ten offsets, as a dashboard would,
with ``Cache-Control: no-cache``: neither side is served from kept answers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.suite import servers
from benchmarks.suite.datasets import UPSERT, point
from benchmarks.suite.spec import RequestSpec

__all__ = ["FED_TENANT", "LOCAL_TENANT", "Federation", "fed_entity", "query_spec",
           "start_federation"]

FED_TENANT = "fed"
LOCAL_TENANT = "fedlocal"
JSON = "application/json"
#: what the scenario asks: pages of 100 Streetlights at ten offsets
PATHS = tuple(f"/ngsi-ld/v1/entities?type=Streetlight&limit=100&offset={o}"
              for o in range(0, 1000, 100))


def fed_entity(source: str, i: int) -> dict[str, Any]:
    """Streetlight ``i`` of ``source`` (ids distinct across sources)."""
    rng = random.Random(f"{source}{i}")
    return {
        "id": f"urn:ngsi-ld:Streetlight:{source}:{i:06d}",
        "type": "Streetlight",
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": point(rng)}},
        "powerState": {"type": "Property", "value": rng.choice(["on", "off"])},
        "powerConsumption": {"type": "Property", "value": round(rng.uniform(50, 250), 1),
                             "unitCode": "WTT", "observedAt": "2026-11-01T00:00:00.000Z"},
        "status": {"type": "Property", "value": "ok"},
    }


def query_spec(tenant: str) -> RequestSpec:
    """The measured request stream, in ``tenant``: ``Cache-Control: no-cache`` (RFC 9111
    5.2.1.4), so that the local side computes every answer as the hub must (the ten
    pages would else be served from kept answers, a comparison of a cache hit with
    federated work: 1% until 2026-12-07)."""
    return RequestSpec("GET", PATHS, headers={"NGSILD-Tenant": tenant,
                                              "Cache-Control": "no-cache"})


@dataclass
class Federation:
    """The two source brokers started for the scenario."""

    sources: list[servers.ServerGroup] = field(default_factory=list)

    def stop(self) -> None:
        for group in self.sources:
            group.stop()


async def _upsert(session: aiohttp.ClientSession, url: str, entities: list[dict[str, Any]],
                  tenant: str | None = None) -> None:
    headers = {"Content-Type": JSON, **({"NGSILD-Tenant": tenant} if tenant else {})}
    for first in range(0, len(entities), 1000):
        async with session.post(url + UPSERT, data=orjson.dumps(entities[first:first + 1000]),
                                headers=headers) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"upsert at {url} answered {resp.status}: "
                                   f"{(await resp.text())[:200]}")


async def start_federation(session: aiohttp.ClientSession, hub: str, size: int,
                           workdir: Path, cpus: str | None) -> Federation:
    """Start and load the two sources, register them at ``hub``, load the local copy."""
    federation = Federation()
    names = ("central", "kwuntong")
    for name in names:
        port = servers.free_port()
        url = f"http://127.0.0.1:{port}"
        commands = servers.broker_commands(port, "memory:", 1, cpus)
        group = servers.start_group(f"source-{name}", commands, url,
                                    workdir / f"source-{name}.log")
        federation.sources.append(group)
        await servers.wait_ready(group, url)
    everything: list[dict[str, Any]] = []
    for name, group in zip(names, federation.sources, strict=True):
        entities = [fed_entity(name, i) for i in range(size)]
        everything += entities
        await _upsert(session, group.url, entities)
        registration = {
            "type": "ContextSourceRegistration", "endpoint": group.url,
            "information": [{"entities": [{"type": "Streetlight"}]}],
        }
        async with session.post(hub + "/ngsi-ld/v1/csourceRegistrations",
                                data=orjson.dumps(registration),
                                headers={"Content-Type": JSON,
                                         "NGSILD-Tenant": FED_TENANT}) as resp:
            if resp.status != 201:
                raise RuntimeError(f"registration at the hub answered {resp.status}: "
                                   f"{(await resp.text())[:200]}")
    await _upsert(session, hub, everything, LOCAL_TENANT)
    return federation

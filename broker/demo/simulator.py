"""The demo's simulator: new readings for every lamppost every few seconds.

It is an ordinary NGSI-LD client of the broker: each tick sends the changed
attributes of every lamppost's entities as batch upserts (``options=update``)
over HTTP, through the same write path as any other client, so subscriptions
fire, the explorer sees the change events and (once the temporal API exists)
history accumulates.  Readings come from ``broker.demo.curves``, deterministic
for a seed and an instant.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from broker.demo.dataset import EntityBody, Lamppost, observed_attributes, readings_of
from broker.smartdatamodels import context_url

log = logging.getLogger("broker.demo")

UPSERT = "/ngsi-ld/v1/entityOperations/upsert"
#: entities per batch request (the broker's default --max-batch-size)
BATCH = 1000


class BrokerClient:
    """Batch upserts to an NGSI-LD broker (entities carrying their @context)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, tenant: str = "") -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.headers = {"Content-Type": "application/ld+json"}
        if tenant:
            self.headers["NGSILD-Tenant"] = tenant

    async def upsert(self, entities: Sequence[EntityBody], *, update: bool = False) -> int:
        """Send ``entities`` in batches; the number the broker refused (logged)."""
        url = self.base_url + UPSERT + ("?options=update" if update else "")
        refused = 0
        for first in range(0, len(entities), BATCH):
            chunk = orjson.dumps(list(entities[first:first + BATCH]))
            async with self.session.post(url, data=chunk, headers=self.headers) as resp:
                body = await resp.read()
                if resp.status == 207:
                    errors = orjson.loads(body).get("errors", [])
                    refused += len(errors)
                    for error in errors[:3]:
                        log.warning("demo: %s refused: %s", error.get("entityId"),
                                    error.get("error", {}).get("detail"))
                elif resp.status >= 300:
                    raise RuntimeError(f"upsert answered {resp.status}: {body[:300]!r}")
        return refused


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Simulator:
    """Updates the readings of ``lampposts`` every ``interval`` seconds."""

    def __init__(self, client: BrokerClient, lampposts: Sequence[Lamppost], seed: int,
                 interval: float, clock: Callable[[], datetime] = now_utc) -> None:
        self.client = client
        self.lampposts = list(lampposts)
        self.seed = seed
        self.interval = interval
        self.clock = clock
        self.ticks = 0

    def updates(self, when: datetime) -> list[EntityBody]:
        """The attribute updates of every lamppost's four entities at ``when``."""
        out: list[EntityBody] = []
        for post in self.lampposts:
            attributes = observed_attributes(post, readings_of(post, self.seed, when), when)
            for kind, attrs in attributes.items():
                entity: dict[str, Any] = {"id": post.entity_id(kind), "type": kind, **attrs,
                                          "@context": context_url(kind)}
                out.append(entity)
        return out

    async def tick(self) -> None:
        await self.client.upsert(self.updates(self.clock()), update=True)
        self.ticks += 1

    async def run(self) -> None:
        """Tick until cancelled; a failed tick is logged and the next one tried."""
        while True:
            started = time.monotonic()
            try:
                await self.tick()
            except (aiohttp.ClientError, RuntimeError) as exc:
                log.warning("demo: simulator tick failed: %s", exc)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

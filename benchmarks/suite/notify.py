"""Notification latency: PATCHes at a fixed rate, a subscription, and a local receiver
timing each notification from the moment its PATCH was sent (clause 5.8, 5.11)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from benchmarks.suite.openloop import run_open_loop
from benchmarks.suite.scenarios import JSON, BenchContext, Skip, small_entity
from benchmarks.suite.servers import free_port
from benchmarks.suite.spec import RequestSpec
from benchmarks.suite.stats import summarize

SUBSCRIPTIONS = "/ngsi-ld/v1/subscriptions"
NOTIFY_TYPE = "BenchNotify"
POOL = 100


@dataclass(kw_only=True)
class Notified:
    """Updates sent at ``rate`` a second and the notifications a receiver timed for them
    (this scenario's and the fan-out's, ``benchmarks.suite.fanout``)."""

    rate: float
    sent: int = 0
    update_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def lost(self) -> int:
        """Updates accepted whose notification never came."""
        return max(0, self.sent - self.update_errors - len(self.latencies_ms))

    def summary(self) -> dict[str, float | None]:
        return summarize(self.latencies_ms)


@dataclass(kw_only=True)
class NotifyResult(Notified):
    """What the receiver saw."""

    #: updates/s the broker carried in a closed loop with the subscription notifying
    saturation: float | None = None


def notified_values(payload: Any) -> list[int]:
    """The ``temperature`` values carried by a notification (normalized or keyValues)."""
    values: list[int] = []
    if not isinstance(payload, dict):
        return values
    for entity in payload.get("data") or []:
        if not isinstance(entity, dict):
            continue
        attr = next((v for k, v in entity.items() if k.endswith("temperature")), None)
        if isinstance(attr, list) and attr:
            attr = attr[0]
        value = attr.get("value") if isinstance(attr, dict) else attr
        if isinstance(value, int | float) and not isinstance(value, bool):
            values.append(int(value))
    return values


class Arrivals:
    """Times the notifications of updates sent at ``result.rate`` a second: update i
    (from 1) carries the value i and was due at start + (i - 1) / rate; the first
    notification of each value goes into ``result.latencies_ms``."""

    def __init__(self, result: Notified) -> None:
        self.result = result
        #: when update 1 was due (``time.perf_counter``), once the open loop started
        self.start: float | None = None
        self.seen: set[int] = set()
        self._all = asyncio.Event()

    def started(self, start: float) -> None:
        """The open loop's ``on_start``."""
        self.start = start

    def note(self, payload: Any, now: float) -> None:
        """A notification (its decoded body) received at ``now``."""
        result, start = self.result, self.start
        for value in notified_values(payload):
            if start is not None and value >= 1 and value not in self.seen:
                self.seen.add(value)
                result.latencies_ms.append((now - start - (value - 1) / result.rate) * 1000)
        if result.sent and len(self.seen) >= result.sent - result.update_errors:
            self._all.set()

    async def wait(self, grace_s: float) -> None:
        """Once the updates are sent: wait, ``grace_s`` at most, for the notifications
        of those the broker accepted still to come."""
        result = self.result
        if len(self.seen) < result.sent - result.update_errors:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all.wait(), grace_s)


Saturate = Callable[[RequestSpec], Awaitable[float]]


async def run_notifications(
    ctx: BenchContext, *, rate: float, duration_s: float, grace_s: float = 5.0,
    saturate: Saturate | None = None, settle: Callable[[], Awaitable[None]] | None = None,
) -> NotifyResult:
    """Subscribe, update at ``rate`` for ``duration_s``, collect notifications.

    With ``saturate`` (a closed-loop run returning updates/s), the updates are first
    sent as fast as the broker takes them WITH the subscription notifying, and the
    open loop then runs at half that rate: 50% of the load the broker can carry
    when every update also sends a notification.  Those saturation updates carry
    negative values, which the receiver does not time.

    Raises Skip when the broker has no subscriptions (probe answered 4xx/5xx).
    """
    result = NotifyResult(rate=rate)
    arrivals = Arrivals(result)

    async def receive(request: web.Request) -> web.Response:
        now = time.perf_counter()
        try:
            payload = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.Response(status=400)
        arrivals.note(payload, now)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/notify", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    subscription_url: str | None = None
    try:
        # Values start above the pool's own so the set-up upsert never counts.
        await ctx.upsert([
            orjson.loads(small_entity(f"urn:ngsi-ld:{NOTIFY_TYPE}:{i}", NOTIFY_TYPE, "-1"))
            for i in range(POOL)
        ])
        subscription = {
            "id": f"urn:ngsi-ld:Subscription:bench:{ctx.run_id}",
            "type": "Subscription",
            "entities": [{"type": NOTIFY_TYPE}],
            "watchedAttributes": ["temperature"],
            "notification": {
                "attributes": ["temperature"],
                "format": "normalized",
                "endpoint": {"uri": f"http://127.0.0.1:{port}/notify", "accept": JSON},
            },
        }
        async with ctx.session.post(
            ctx.base_url + SUBSCRIPTIONS, data=orjson.dumps(subscription),
            headers={"Content-Type": JSON},
        ) as resp:
            await resp.read()
            if resp.status >= 400:
                raise Skip(f"feature not available (HTTP {resp.status} on probe)")
            location = resp.headers.get("Location", "")
            subscription_url = (location if location.startswith("http")
                                else ctx.base_url + location) if location else None
        await asyncio.sleep(0.2)  # let the subscription settle (initial notifications)

        path = f"/ngsi-ld/v1/entities/urn:ngsi-ld:{NOTIFY_TYPE}:__N__/attrs"
        spec = RequestSpec(
            "PATCH", (path,), '{"temperature":{"type":"Property","value":__I__}}',
            count=POOL, headers={"Content-Type": JSON},
        )
        if saturate is not None:
            saturation = await saturate(RequestSpec(
                "PATCH", (path,), '{"temperature":{"type":"Property","value":-__I__}}',
                count=POOL, headers={"Content-Type": JSON}))
            if saturation > 0:
                result.saturation = saturation
                result.rate = rate = saturation / 2
            await asyncio.sleep(1.0)  # the notifications of that burst drain
            if settle is not None:
                await settle()
        updates = await run_open_loop(ctx.base_url, spec, rate=rate, duration_s=duration_s,
                                      run_id=ctx.run_id, on_start=arrivals.started)
        result.sent = updates.sent
        result.update_errors = updates.errors
        result.duration_s = updates.duration_s
        await arrivals.wait(grace_s)
    finally:
        if subscription_url:
            try:
                async with ctx.session.delete(subscription_url) as resp:
                    await resp.read()
            except aiohttp.ClientError:
                pass
        await runner.cleanup()
    return result

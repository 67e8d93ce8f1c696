"""Notifications among many subscriptions: 10,000 subscriptions of mixed filters (type,
q, watchedAttributes, idPattern, geoQ), updates at a fixed rate (issue #19: 500/s).

Each of the 100 updated entities is matched by exactly one of five *live*
subscriptions, one per filter kind, so every update must cause exactly one
notification; the other subscriptions are *noise* of the same kinds that the
broker must evaluate (most of them name the updated entities' type) and reject.
Latency runs from the update's scheduled send to its notification's arrival;
``lost`` counts acknowledged updates never notified within the grace period,
``spurious`` notifications of noise subscriptions (a matching bug).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from benchmarks.suite.notify import Arrivals, Notified
from benchmarks.suite.openloop import run_open_loop
from benchmarks.suite.scenarios import JSON, BenchContext, Skip
from benchmarks.suite.servers import free_port
from benchmarks.suite.spec import RequestSpec

SUBSCRIPTIONS = "/ngsi-ld/v1/subscriptions"
ENTITIES = "/ngsi-ld/v1/entities"
FAN_TYPE = "BenchFan"
GROUPS = 5
PER_GROUP = 20
NEAR = [114.20, 22.30]  # group 2 stands here; the geo subscription looks here
ELSEWHERE = [113.90, 22.45]


def fan_id(group: int, j: int) -> str:
    return f"urn:ngsi-ld:{FAN_TYPE}:g{group}:{j}"


def fan_entity(group: int, j: int) -> dict[str, Any]:
    """An updated entity; group 4 has a type of its own, group 2 stands at NEAR."""
    return {
        "id": fan_id(group, j),
        "type": FAN_TYPE + ("4" if group == 4 else ""),
        "temperature": {"type": "Property", "value": -1},
        "group": {"type": "Property", "value": group},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": NEAR if group == 2 else ELSEWHERE}},
    }


def _near(point: list[float], metres: int) -> dict[str, Any]:
    return {"georel": f"near;maxDistance=={metres}", "geometry": "Point", "coordinates": point}


def live_subscriptions() -> list[dict[str, Any]]:
    """Five subscriptions; group k's entities match exactly subscription k."""
    fan = [{"type": FAN_TYPE}]
    return [
        {"entities": fan, "q": "group==0"},
        {"entities": [{"type": FAN_TYPE, "idPattern": f"^urn:ngsi-ld:{FAN_TYPE}:g1:"}]},
        {"entities": fan, "geoQ": _near(NEAR, 200)},
        {"entities": fan, "q": "group==3", "watchedAttributes": ["temperature"]},
        {"entities": [{"type": FAN_TYPE + "4"}]},
    ]


def noise_subscription(j: int) -> dict[str, Any]:
    """Subscription ``j`` of the noise: never matches an update of the scenario."""
    fan = [{"type": FAN_TYPE}]
    kind = j % 5
    if kind == 0:
        return {"entities": [{"type": f"BenchOther{j % 1000}"}]}
    if kind == 1:
        return {"entities": fan, "q": f"group=={100 + j}"}
    if kind == 2:
        return {"entities": fan, "watchedAttributes": ["humidity"]}
    if kind == 3:
        return {"entities": [{"type": FAN_TYPE, "idPattern": f"^urn:ngsi-ld:BenchOther:{j}:"}]}
    far = [114.35 + (j % 97) * 1e-4, 22.20 + (j % 89) * 1e-4]
    return {"entities": fan, "geoQ": _near(far, 100)}


@dataclass(kw_only=True)
class FanoutResult(Notified):
    subscriptions: int
    spurious: int = 0
    setup_s: float = 0.0


async def _post_all(ctx: BenchContext, bodies: list[bytes], concurrency: int = 16) -> None:
    queue = list(reversed(bodies))

    async def worker() -> None:
        while queue:
            body = queue.pop()
            async with ctx.session.post(ctx.base_url + SUBSCRIPTIONS, data=body,
                                        headers={"Content-Type": JSON}) as resp:
                text = await resp.text()
                if resp.status >= 400:
                    raise Skip(f"creating a subscription answered HTTP {resp.status}: "
                               f"{text[:200]}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_fanout(ctx: BenchContext, *, subscriptions: int, rate: float,
                     duration_s: float, grace_s: float = 5.0) -> FanoutResult:
    """Create the subscriptions and entities, update at ``rate``, collect notifications."""
    result = FanoutResult(subscriptions=subscriptions, rate=rate)
    arrivals = Arrivals(result)

    async def live(request: web.Request) -> web.Response:
        now = time.perf_counter()
        arrivals.note(orjson.loads(await request.read()), now)
        return web.Response(status=200)

    async def noise(request: web.Request) -> web.Response:
        await request.read()
        result.spurious += 1
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/live", live)
    app.router.add_post("/noise", noise)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    run = ctx.run_id
    try:
        started = time.perf_counter()
        bodies = []
        for k, members in enumerate(live_subscriptions()):
            bodies.append(orjson.dumps({
                "id": f"urn:ngsi-ld:Subscription:fan:{run}:live{k}", "type": "Subscription",
                **members, "notification": {
                    "attributes": ["temperature"],
                    "endpoint": {"uri": f"http://127.0.0.1:{port}/live", "accept": JSON}}}))
        for j in range(max(0, subscriptions - len(bodies))):
            bodies.append(orjson.dumps({
                "id": f"urn:ngsi-ld:Subscription:fan:{run}:noise{j}", "type": "Subscription",
                **noise_subscription(j), "notification": {
                    "endpoint": {"uri": f"http://127.0.0.1:{port}/noise", "accept": JSON}}}))
        await _post_all(ctx, bodies)
        await ctx.upsert([fan_entity(g, j) for g in range(GROUPS) for j in range(PER_GROUP)])
        result.setup_s = time.perf_counter() - started
        await asyncio.sleep(1.0)  # the creations' notifications (value -1) drain

        paths = tuple(f"{ENTITIES}/{fan_id(g, j)}/attrs"
                      for j in range(PER_GROUP) for g in range(GROUPS))
        spec = RequestSpec("PATCH", paths, '{"temperature":{"type":"Property","value":__I__}}',
                           headers={"Content-Type": JSON})
        updates = await run_open_loop(ctx.base_url, spec, rate=rate, duration_s=duration_s,
                                      run_id=run, on_start=arrivals.started)
        result.sent, result.update_errors = updates.sent, updates.errors
        result.duration_s = updates.duration_s
        await arrivals.wait(grace_s)
    finally:
        await runner.cleanup()
    return result

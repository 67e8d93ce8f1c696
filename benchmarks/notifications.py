"""Notification scenario: updates at a fixed rate, notifications timed end to end.

``python -m benchmarks.notifications`` starts the broker (pinned to CPU 0 with
``taskset`` when available, embedded SQLite store in a temporary directory)
or uses ``--url``; a local receiver records every notification.  Two cases:

* ``type``: one subscription on an entity type, updates spread over 100 entities;
* ``per-entity``: 1,000 subscriptions each on one entity id, updates spread
  over those 1,000 entities (the matching index keeps this as cheap as ``type``).

Each update PATCHes ``temperature`` with a sequence number; the receiver maps
each notified value back to the instant its update was sent.  Reported:
notified changes per second (and the number of notification requests: changes
queued behind a delivery in progress share one notification), latency p50 and
p99 (update sent -> notification received) and the number of updates whose
notification never came (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

ENTITIES = "/ngsi-ld/v1/entities"
SUBSCRIPTIONS = "/ngsi-ld/v1/subscriptions"
JSON = {"Content-Type": "application/json"}


@dataclass
class Result:
    case: str
    rate: float
    sent: int = 0
    errors: int = 0
    sent_at: dict[int, float] = field(default_factory=dict)
    received_at: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    messages: int = 0  # notification requests (one may carry several changes)

    @property
    def lost(self) -> int:
        return self.sent - self.errors - len(self.received_at)

    def latencies_ms(self) -> list[float]:
        return sorted((self.received_at[s] - self.sent_at[s]) * 1000 for s in self.received_at
                      if s in self.sent_at)

    def row(self) -> dict[str, Any]:
        lat = self.latencies_ms()
        span = (max(self.received_at.values()) - min(self.sent_at.values())
                if self.received_at else 0.0)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

        return {"case": self.case, "rate": self.rate, "updates": self.sent,
                "update_errors": self.errors, "notified_changes": len(self.received_at),
                "notified_changes_per_s": round(len(self.received_at) / span, 1) if span else 0,
                "notification_requests": self.messages,
                "p50_ms": pct(0.50), "p99_ms": pct(0.99), "lost": self.lost,
                "duplicates": self.duplicates}


class Receiver:
    """The notification endpoint: records when each sequence number arrived."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.result: Result | None = None
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{path:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.host, 0).start()
        self.port = self.runner.addresses[0][1]

    async def handle(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        body = orjson.loads(await request.read())
        result = self.result
        if result is not None:
            result.messages += 1
            for entity in body.get("data", ()):
                seq = entity.get("temperature")
                if isinstance(seq, dict):  # normalized or concise
                    seq = seq.get("value")
                if isinstance(seq, int):
                    if seq in result.received_at:
                        result.duplicates += 1
                    result.received_at.setdefault(seq, now)
        return web.Response(status=204)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}/{path}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker(store: str) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "broker", "--host", "127.0.0.1", "--port", str(port),
           "--store", store, "--log-level", "WARNING",
               "--outbound-allow", "127.0.0.0/8"]  # receivers on this machine
    pinning = "not pinned (taskset not found)"
    if shutil.which("taskset") and 0 in os.sched_getaffinity(0):
        cmd = ["taskset", "-c", "0", *cmd]
        pinning = "broker pinned to CPU 0"
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc, f"http://127.0.0.1:{port}", pinning


async def wait_ready(session: aiohttp.ClientSession, url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with session.get(url + "/version") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no broker answers at {url}")
        await asyncio.sleep(0.1)


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> None:
    async with session.post(url, data=orjson.dumps(body), headers=JSON) as resp:
        if resp.status not in (201, 204):
            raise RuntimeError(f"POST {url}: {resp.status} {await resp.text()}")


async def gather_limited(jobs: list[Any], limit: int = 32) -> None:
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Any) -> None:
        async with semaphore:
            await job

    await asyncio.gather(*(run(job) for job in jobs))


async def run_case(session: aiohttp.ClientSession, url: str, receiver: Receiver, case: str,
                   rate: float, duration: float) -> Result:
    kind = f"Bench{uuid.uuid4().hex[:8]}"
    count = 100 if case == "type" else 1000
    ids = [f"urn:ngsi-ld:{kind}:{n}" for n in range(count)]
    result = Result(case, rate)
    subs: list[dict[str, Any]] = []
    if case == "type":
        subs.append({"entities": [{"type": kind}], "watchedAttributes": ["temperature"]})
    else:
        subs += [{"entities": [{"type": kind, "id": i}], "watchedAttributes": ["temperature"]}
                 for i in ids]
    await gather_limited([post(session, url + SUBSCRIPTIONS, {
        "type": "Subscription", **s, "notification": {
            "format": "keyValues", "endpoint": {"uri": receiver.url(f"{case}/{n}")}}})
        for n, s in enumerate(subs)])
    # creations are not timed: the receiver ignores them (no integer temperature yet)
    await gather_limited([post(session, url + ENTITIES, {
        "id": i, "type": kind, "temperature": {"type": "Property", "value": -1.5}})
        for i in ids])
    await asyncio.sleep(0.5)
    receiver.result = result
    total = int(rate * duration)
    started = time.monotonic()
    in_flight: set[asyncio.Task[None]] = set()

    async def update(seq: int) -> None:
        target = f"{url}{ENTITIES}/{ids[seq % count]}/attrs"
        body = orjson.dumps({"temperature": {"type": "Property", "value": seq}})
        result.sent_at[seq] = time.monotonic()
        try:
            async with session.patch(target, data=body, headers=JSON) as resp:
                if resp.status != 204:
                    result.errors += 1
        except aiohttp.ClientError:
            result.errors += 1

    for seq in range(total):
        delay = started + seq / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(update(seq))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        result.sent += 1
    await asyncio.gather(*in_flight)
    deadline = time.monotonic() + 15
    while len(result.received_at) < result.sent - result.errors and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    receiver.result = None
    return result


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    proc = None
    tmp = tempfile.TemporaryDirectory()
    url = args.url
    pinning = "external broker"
    if url is None:
        store = args.store or f"sqlite:///{tmp.name}/bench.db"
        proc, url, pinning = start_broker(store)
    rows = []
    try:
        receiver = Receiver(args.receiver_host)
        await receiver.start()
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_ready(session, url)
            print(f"# broker {url} ({pinning}); {args.rate}/s for {args.duration}s per case",
                  flush=True)
            for case in args.cases:
                row = (await run_case(session, url, receiver, case, args.rate,
                                      args.duration)).row()
                print(orjson.dumps(row).decode(), flush=True)
                rows.append(row)
        assert receiver.runner is not None
        await receiver.runner.cleanup()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        tmp.cleanup()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an already running broker (default: start one)")
    parser.add_argument("--store", help="store URL of the started broker (default: sqlite)")
    parser.add_argument("--rate", type=float, default=200.0, help="updates per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per case")
    parser.add_argument("--cases", nargs="+", default=["type", "per-entity"],
                        choices=["type", "per-entity"])
    parser.add_argument("--receiver-host", default="127.0.0.1",
                        help="address the receiver listens on (the broker must reach it)")
    args = parser.parse_args(argv)
    rows = asyncio.run(main_async(args))
    print("\n| case | updates/s | notified changes/s | notification requests | p50 ms "
          "| p99 ms | lost |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['rate']:g} | {r['notified_changes_per_s']} "
              f"| {r['notification_requests']} | {r['p50_ms']} | {r['p99_ms']} | {r['lost']} |")
    return 0 if all(r["lost"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

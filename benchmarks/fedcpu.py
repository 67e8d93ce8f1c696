"""CPU time a hub spends per federated query, against the same query answered locally.

    python -m benchmarks.fedcpu                        # 10,000 Streetlights a source
    python -m benchmarks.fedcpu --source /tmp/old      # the hub of another checkout
    python -m benchmarks.fedcpu --profile /tmp/prof    # py-spy raw profile of the hub
    python -m benchmarks.fedcpu --cache                # without ``Cache-Control: no-cache``

The setting of ``federation-query-2x10k`` (``suite/federation.py``): a hub on a
fresh embedded store (pinned with ``--cpus``, default 0), two source brokers of
this checkout (memory store, pinned with ``--source-cpus``, default 1) each
holding ``--size`` Streetlights registered at the hub in tenant ``fed``, the
same entities loaded into the hub's tenant ``fedlocal``.  The scenario's ten
pages are sent from this process (``--connections``) in both tenants in turn,
``--rounds`` times, and the hub's user+system CPU time is read from ``/proc``
before and after: CPU microseconds per request of the hub alone, the figure to
compare on a shared machine (the wall rate is printed beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from benchmarks.suite.federation import FED_TENANT, LOCAL_TENANT, PATHS, start_federation
from benchmarks.suite.servers import broker_commands
from benchmarks.writecpu import cpu_seconds, served

__all__ = ["main"]


async def _send(session: aiohttp.ClientSession, url: str, tenant: str, requests: int,
                connections: int, fresh: bool) -> None:
    headers = {"NGSILD-Tenant": tenant}
    if fresh:
        headers["Cache-Control"] = "no-cache"
    counter = iter(range(requests))

    async def worker() -> None:
        for i in counter:
            async with session.get(url + PATHS[i % len(PATHS)], headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{tenant}: HTTP {resp.status}")

    await asyncio.gather(*(worker() for _ in range(connections)))


async def _measure(url: str, pid: int, args: argparse.Namespace, workdir: Path) -> None:
    connector = aiohttp.TCPConnector(limit=args.connections * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        federation = await start_federation(session, url, args.size, workdir,
                                            args.source_cpus)
        try:
            for tenant in (FED_TENANT, LOCAL_TENANT):  # warm both
                await _send(session, url, tenant, 20, 2, not args.cache)
            figures: dict[str, list[tuple[float, float]]] = {FED_TENANT: [], LOCAL_TENANT: []}
            for _ in range(args.rounds):
                for tenant in (FED_TENANT, LOCAL_TENANT):
                    requests = args.requests if tenant == FED_TENANT else args.requests * 5
                    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
                    await _send(session, url, tenant, requests, args.connections,
                                not args.cache)
                    cpu, wall = cpu_seconds(pid) - cpu0, time.perf_counter() - wall0
                    figures[tenant].append((cpu * 1e6 / requests, requests / wall))
                    print(f"{tenant:9} {cpu * 1e6 / requests:9.0f} CPU us/request "
                          f"{requests / wall:9.0f} req/s", flush=True)
            fed = sorted(f[0] for f in figures[FED_TENANT])[len(figures[FED_TENANT]) // 2]
            local = sorted(f[0] for f in figures[LOCAL_TENANT])[len(figures[LOCAL_TENANT]) // 2]
            print(f"median: fed {fed:.0f} us, local {local:.0f} us, "
                  f"local/fed {local / fed:.1%}", flush=True)
        finally:
            federation.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fedcpu")
    parser.add_argument("--size", type=int, default=10_000, help="Streetlights a source")
    parser.add_argument("--requests", type=int, default=400,
                        help="federated requests a round (five times as many local ones)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--port", type=int, default=18755)
    parser.add_argument("--cpus", default="0", help="the hub's CPU list (taskset)")
    parser.add_argument("--source-cpus", default="1", help="the sources' CPU list")
    parser.add_argument("--source", metavar="DIR", help="run the hub of this checkout")
    parser.add_argument("--cache", action="store_true",
                        help="send no Cache-Control: no-cache (kept answers may serve)")
    parser.add_argument("--profile", metavar="FILE",
                        help="run the hub under py-spy record (raw format) into FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (command,) = broker_commands(args.port, f"sqlite:{tmp}/hub.db", 1, args.cpus)
        if args.profile:
            command = ["py-spy", "record", "--format", "raw", "--rate", "250",
                       "--nonblocking", "-o", args.profile, "--", *command]
        with served(command, args.port, args.source,
                    profiled=bool(args.profile)) as (url, pid):
            asyncio.run(_measure(url, pid, args, Path(tmp)))


if __name__ == "__main__":
    main()

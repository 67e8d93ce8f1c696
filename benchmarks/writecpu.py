"""CPU time the broker spends per write, the yardstick of the write path on a shared machine.

    python -m benchmarks.writecpu                       # the four write scenarios
    python -m benchmarks.writecpu --requests 4000 --scenario update-attr
    python -m benchmarks.writecpu --broker-arg=--temporal --broker-arg=off
    python -m benchmarks.writecpu --profile /tmp/prof   # py-spy raw profiles per scenario
    python -m benchmarks.writecpu --source /work/main   # the broker of another checkout
    taskset -c 1 python -m benchmarks.writecpu --cpus 0 # the broker on one core, as the suite

Starts ``python -m broker`` on a fresh embedded store, prepares what the
scenarios of ``python -m benchmarks`` prepare (the pool of 1,000 entities, the
idle subscription on their type, the hosted Streetlight @context), sends each
scenario's own request stream (``benchmarks/suite/scenarios.py``) from this
process with 16 connections, and reads the broker's user+system CPU time from
``/proc`` before and after: CPU microseconds per request (per entity for a
batch) of the broker alone.  Neighbours on the machine slow the wall clock, not
this figure (much).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import aiohttp

from benchmarks.suite import scenarios as sc
from benchmarks.suite.datasets import DatasetLoader
from benchmarks.suite.servers import broker_commands, wait_ready
from benchmarks.suite.spec import RequestSpec


@dataclass(frozen=True)
class WriteScenario:
    name: str
    build: object
    per_request: int = 1


SCENARIOS = (
    WriteScenario("create-entity", sc.build_create),
    WriteScenario("update-attr", sc.build_update),
    WriteScenario("streetlight-create", sc.build_streetlight_create),
    WriteScenario("streetlight-batch-upsert", sc.build_streetlight_batch, 100),
)


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU time of process ``pid`` (and its threads) in seconds; of its
    thread ``tid`` alone when given."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_seconds(pid: int) -> dict[int, float]:
    """The CPU time of every thread of process ``pid`` (thread id -> seconds)."""
    times = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            times[int(tid)] = cpu_seconds(pid, int(tid))
        except OSError:  # the thread ended meanwhile
            continue
    return times


async def send(session: aiohttp.ClientSession, url: str, spec: RequestSpec, first: int,
               count: int, uid: str, connections: int = 16) -> int:
    """Send requests ``first``..``first+count-1`` of ``spec``; the number of errors."""
    errors = 0
    counter = iter(range(first, first + count))

    async def worker() -> None:
        nonlocal errors
        for number in counter:
            path, body = spec.render(number, f"{uid}-{number}")
            async with session.request(spec.method, url + path, data=body,
                                       headers=spec.headers) as resp:
                await resp.read()
                if resp.status >= 400:
                    errors += 1

    await asyncio.gather(*(worker() for _ in range(connections)))
    return errors


async def measure(url: str, pid: int, chosen: list[WriteScenario], requests: int,
                  rounds: int) -> None:
    async with aiohttp.ClientSession() as session:
        ctx = sc.BenchContext(url, "cpu", session, DatasetLoader(url))
        for scenario in chosen:
            spec = await scenario.build(ctx)  # type: ignore[operator]
            count = max(requests // scenario.per_request, 20)
            await send(session, url, spec, 1, count // 4, "warm")  # warm caches, first writes
            figures = []
            splits = []
            number = count
            for round_ in range(rounds):
                await asyncio.sleep(0.3)
                before = cpu_seconds(pid)
                threads = thread_seconds(pid)
                errors = await send(session, url, spec, number, count, f"r{round_}")
                used = cpu_seconds(pid) - before
                deltas = {t: s - threads.get(t, 0.0) for t, s in thread_seconds(pid).items()}
                number += count
                per = 1e6 / (count * scenario.per_request)
                figures.append(used * per)
                # the event loop runs on the main thread (its id is the pid); the writer
                # is the busiest of the others during a write scenario
                others = sorted((s for t, s in deltas.items() if t != pid), reverse=True)
                splits.append((deltas.get(pid, 0.0) * per, (others or [0.0])[0] * per))
                if errors:
                    print(f"  {scenario.name}: {errors} errors", file=sys.stderr)
            figures.sort()
            unit = "entity" if scenario.per_request > 1 else "request"
            per_s = 1e6 / figures[len(figures) // 2]
            print(f"{scenario.name:26} {figures[len(figures) // 2]:8.0f} us CPU/{unit} "
                  f"(rounds {', '.join(f'{f:.0f}' for f in figures)}; "
                  f"{per_s:,.0f} {unit}s per CPU second)", flush=True)
            splits.sort(key=lambda split: split[1])
            loop_us, writer_us = splits[len(splits) // 2]
            print(f"{'':26} event loop {loop_us:.0f} us, writer thread {writer_us:.0f} us"
                  f" (writer rounds {', '.join(f'{w:.0f}' for _, w in splits)})", flush=True)


@contextmanager
def served(command: list[str], port: int, source: str | None, *,
           profiled: bool = False) -> Iterator[tuple[str, int]]:
    """The broker of ``command`` started (from checkout ``source`` if given) and ready:
    its URL and the pid to measure (py-spy's child when ``profiled``: the command runs
    under ``py-spy record``); stopped by SIGINT on exit, which makes py-spy write its
    profile."""
    env = {**os.environ, "PYTHONPATH": source} if source else None
    proc = subprocess.Popen(command, cwd=source, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        # a broker started under py-spy imports far slower (each sample stops it)
        asyncio.run(wait_ready(None, url + "/health", 180.0 if profiled else 30.0))
        pid = proc.pid
        if profiled:  # py-spy's child is the broker
            time.sleep(0.5)
            pid = int(subprocess.check_output(["pgrep", "-P", str(proc.pid)]).split()[0])
        yield url, pid
    finally:
        proc.send_signal(2)  # SIGINT: py-spy writes its profile, the broker stops
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.writecpu")
    parser.add_argument("--requests", type=int, default=3000,
                        help="requests (entities for a batch) per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenario", action="append", default=[])
    parser.add_argument("--port", type=int, default=18655)
    parser.add_argument("--broker-arg", action="append", default=[])
    parser.add_argument("--profile", metavar="DIR",
                        help="run the broker under py-spy record, one profile per scenario")
    parser.add_argument("--gil", action="store_true",
                        help="with --profile: sample only the thread holding the GIL, at "
                             "1,000 Hz (the Python work, without the writer's waits)")
    parser.add_argument("--native", action="store_true",
                        help="with --profile: native frames too (the cyclic collector, "
                             "SQLite, orjson)")
    parser.add_argument("--cpus", metavar="LIST",
                        help="run the broker under taskset -c LIST (e.g. 0: one core, as "
                             "python -m benchmarks pins it; its threads then share the core)")
    parser.add_argument("--source", metavar="DIR",
                        help="run the broker of this checkout (before/after comparisons)")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if not args.scenario or any(p in s.name for p in args.scenario)]
    for scenario in chosen:
        with tempfile.TemporaryDirectory() as tmp:
            (command,) = broker_commands(args.port, f"sqlite:{tmp}/broker.db", 1,
                                         args.cpus, args.broker_arg)
            if args.profile:
                os.makedirs(args.profile, exist_ok=True)
                spy = ["--gil", "--rate", "1000"] if args.gil else ["--rate", "250"]
                # sampled without stopping it: a broker under SCHED_BATCH (broker.threadsched)
                # stopped and resumed at each sample waits for py-spy's own time slice on a
                # shared core each time, and did not finish starting in 180 s
                spy += ["--nonblocking"]
                spy += ["--native"] if args.native else []
                command = ["py-spy", "record", "--format", "raw", *spy, "-o",
                           f"{args.profile}/{scenario.name}.txt", "--", *command]
            with served(command, args.port, args.source,
                        profiled=bool(args.profile)) as (url, pid):
                asyncio.run(measure(url, pid, [scenario], args.requests, args.rounds))


if __name__ == "__main__":
    main()

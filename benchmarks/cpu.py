"""CPU time per request of the read scenarios, for comparisons on a busy machine.

Wall-clock rates swing with the neighbours' load; the CPU time the server process
spends per answered request (user + system of all its threads, from ``/proc``)
moves much less.  This starts a server (the broker of the code at ``--code``, or
the bare aiohttp baseline), drives it with wrk and ``lua/request.lua`` for
``--seconds``, and prints the CPU microseconds per request::

    python -m benchmarks.cpu prepare --db /tmp/bench.db          # 1k + 100k entities
    python -m benchmarks.cpu run --db /tmp/bench.db get-json query baseline-get

The store file is copied before each run, so every run starts from the same data.
``--code DIR`` runs the broker of another checkout (e.g. ``git archive`` of main):
``python -m broker`` imports from its working directory first.
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
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import orjson

from benchmarks.suite.datasets import DatasetLoader, query_paths
from benchmarks.suite.scenarios import small_entity
from benchmarks.suite.servers import baseline_command, cpu_seconds, pinned, wait_ready
from benchmarks.suite.wrk import parse_wrk_output

REPO = Path(__file__).resolve().parent.parent
LUA = REPO / "benchmarks" / "lua" / "request.lua"
ENTITIES = "/ngsi-ld/v1/entities"
POOL = 1000
JSON, LD_JSON = "application/json", "application/ld+json"

#: name: (paths, count, Accept, served by the baseline)
SCENARIOS: dict[str, tuple[tuple[str, ...], int, str, bool]] = {
    "get-json": ((ENTITIES + "/urn:ngsi-ld:BenchEntity:__N__",), POOL, JSON, False),
    "get-ldjson": ((ENTITIES + "/urn:ngsi-ld:BenchEntity:__N__",), POOL, LD_JSON, False),
    "query": (query_paths(), 1, JSON, False),
    "baseline-get-json": ((ENTITIES + "/urn:ngsi-ld:BenchEntity:__N__",), POOL, JSON, True),
    "baseline-query": (query_paths(), 1, JSON, True),
}


#: the port servers listen on (``--port``); 0: a free one each time
PORT = 0
#: the CPUs the servers are pinned to (``--server-cpus``, as ``python -m benchmarks``
#: pins the broker to one core); None: not pinned
CPUS: str | None = None


def _free_port() -> int:
    if PORT:
        return PORT
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _broker(code: Path, port: int, db: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        pinned([sys.executable, "-m", "broker", "--host", "127.0.0.1", "--port", str(port),
                "--store", f"sqlite:///{db}", "--log-level", "WARNING"], CPUS),
        cwd=code,
    )


async def _prepare(db: Path, size: int) -> None:
    port = _free_port()
    process = _broker(REPO, port, db)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(None, url + ENTITIES + "?type=X")
        async with aiohttp.ClientSession() as session:
            pool = [
                orjson.loads(small_entity(f"urn:ngsi-ld:BenchEntity:{i}", "BenchEntity", str(i)))
                for i in range(POOL)
            ]
            async with session.post(
                url + "/ngsi-ld/v1/entityOperations/upsert",
                data=orjson.dumps(pool),
                headers={"Content-Type": JSON},
            ) as resp:
                resp.raise_for_status()
        await DatasetLoader(url).ensure(size)
    finally:
        process.terminate()
        process.wait()


def _thread_seconds(pid: int) -> float:
    """CPU time of the main thread (the event loop) of process ``pid``."""
    try:
        fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _size_of(url: str, path: str, accept: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + path.replace("__N__", "1"), headers={"Accept": accept}) as resp,
    ):
        return len(await resp.read())


def _wrk(
    url: str,
    paths_file: Path,
    count: int,
    headers: dict[str, str],
    seconds: float,
    connections: int,
) -> int:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-s",
        str(LUA),
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += [url, "--", "GET", str(paths_file), "-", str(count), "cpu"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr.strip()} {done.stdout.strip()[-500:]}")
    return parse_wrk_output(done.stdout).requests


async def _measure(name: str, args: argparse.Namespace, workdir: Path) -> float:
    paths, count, accept, baseline = SCENARIOS[name]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    paths_file = workdir / "paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    headers = {"Accept": accept}
    if baseline:
        size = args.size.get(name.removeprefix("baseline-"), 200)
        process = subprocess.Popen(baseline_command(port, CPUS), cwd=REPO)
        headers["X-Bench-Size"] = str(size)
    else:
        db = workdir / "store.db"
        for suffix in ("", "-wal", "-shm"):
            if Path(str(args.db) + suffix).exists():
                shutil.copy(str(args.db) + suffix, str(db) + suffix)
        process = _broker(args.code, port, db)
    try:
        await wait_ready(None, url + ENTITIES + "?type=X")
        if not baseline:
            args.size[name.removeprefix("baseline-")] = await _size_of(url, paths[0], accept)
        await asyncio.to_thread(_wrk, url, paths_file, count, headers, 1, args.connections)
        before = cpu_seconds(process.pid) or 0.0
        loop_before = _thread_seconds(process.pid)
        requests = await asyncio.to_thread(
            _wrk, url, paths_file, count, headers, args.seconds, args.connections
        )
        used = (cpu_seconds(process.pid) or 0.0) - before
        loop_used = _thread_seconds(process.pid) - loop_before
        args.loop_share = loop_used / used if used else 0.0
    finally:
        process.terminate()
        process.wait()
    return used / max(requests, 1) * 1e6


async def _run(args: argparse.Namespace) -> None:
    args.size = {}
    codes = args.code or [REPO]
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name in args.scenarios:
                for code in codes if not SCENARIOS[name][3] else codes[:1]:
                    args.code = code
                    try:
                        per_request = await _measure(name, args, Path(tmp))
                    except RuntimeError as exc:  # a busy machine: say so, go on
                        print(f"{code.name} {name}: {exc}", flush=True)
                        continue
                    print(
                        f"{time.strftime('%H:%M:%S')} {args.code.resolve().name:12} {name:18}"
                        f" {per_request:7.1f} us CPU/request"
                        f" ({args.loop_share:.0%} on the event loop's thread)",
                        flush=True,
                    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prepare = sub.add_parser("prepare", help="create the store file")
    prepare.add_argument("--db", type=Path, required=True)
    prepare.add_argument("--size", type=int, default=100_000)
    run = sub.add_parser("run", help="measure scenarios")
    run.add_argument("scenarios", nargs="+", choices=sorted(SCENARIOS))
    run.add_argument("--db", type=Path, required=True)
    run.add_argument(
        "--code",
        type=Path,
        action="append",
        help="checkout whose broker runs (repeatable: alternated; default this one)",
    )
    run.add_argument("--seconds", type=float, default=5)
    run.add_argument("--connections", type=int, default=32)
    run.add_argument("--rounds", type=int, default=1)
    for command in (prepare, run):
        command.add_argument("--port", type=int, default=0,
                             help="the servers' port (default: a free one each time)")
    run.add_argument("--server-cpus", default="",
                     help="pin the servers to these CPUs (taskset -c), e.g. 0")
    args = parser.parse_args(argv)
    global PORT, CPUS
    PORT = args.port
    if args.command == "run" and args.server_cpus:
        CPUS = args.server_cpus
    if args.command == "prepare":
        asyncio.run(_prepare(args.db, args.size))
    else:
        asyncio.run(_run(args))


if __name__ == "__main__":
    main()

"""What ``--model-schemas`` costs a create: the same POST /entities load with and without it.

    python -m benchmarks.validation            # 3 interleaved runs of 5 s per broker
    python -m benchmarks.validation --quick    # 1 run of 3 s

Two brokers on fresh embedded stores (``--store`` to change), one with the
bundled Smart Data Models schemas, both with their contexts pre-loaded; wrk
posts the demo's 15-attribute Streetlight (unique ids, the Streetlighting
@context in a Link header) to each in turn, the broker pinned to CPU 0 and wrk
to CPU 1 when taskset allows.  The median rates and their ratio are printed,
and the broker's CPU time per create (from /proc: steadier than the rate on a
shared machine): the issue's bound is a cost of at most 30% (ratio >= 0.70).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import orjson

from benchmarks.suite.servers import cpu_seconds, usable_cpus
from benchmarks.suite.wrk import run_wrk, wrk_command, wrk_path
from broker.demo import HONG_KONG, lampposts
from broker.demo.dataset import lamppost_entities
from broker.smartdatamodels import DIRECTORY, context_url
from conformance.process import BrokerProcess

LINK = f'<{context_url("Streetlight")}>; rel="http://www.w3.org/ns/json-ld#context"; ' \
       'type="application/ld+json"'


def body_template() -> str:
    """The demo's Streetlight with a ``__UID__`` placeholder in its id."""
    post = lampposts(HONG_KONG, 1, seed=1)[0]
    entity = lamppost_entities(post, 1, datetime(2026, 12, 4, 12, tzinfo=UTC))[0]
    entity.pop("@context")
    entity["id"] = "urn:ngsi-ld:Streetlight:bench:__UID__"
    return orjson.dumps(entity).decode()


async def measure(url: str, pid: int, work: Path, run_id: str, seconds: float,
                  cpus: str | None) -> tuple[float, float]:
    """(creates per second, broker CPU microseconds per create) of one wrk run."""
    paths, body = work / "paths.txt", work / "body.json"
    paths.write_text("/ngsi-ld/v1/entities\n")
    body.write_text(body_template())
    command = wrk_command(url, method="POST", paths_file=paths, body_file=body, count=1,
                          run_id=run_id, connections=32, duration_s=seconds,
                          headers={"Content-Type": "application/json", "Link": LINK},
                          cpus=cpus, wrk=wrk_path())
    before = cpu_seconds(pid) or 0.0
    result = await run_wrk(command)
    used = (cpu_seconds(pid) or 0.0) - before
    if result.errors:
        raise SystemExit(f"errors during the run: {result}")
    return result.rate, used / max(1, result.requests) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.validation")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--store", default="sqlite", help="sqlite (fresh files) or memory:")
    args = parser.parse_args()
    runs, seconds = (1, 3.0) if args.quick else (3, 5.0)
    server_cpus, client_cpus, note = usable_cpus("0", "1")
    rates: dict[str, list[float]] = {"without": [], "with": []}
    costs: dict[str, list[float]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        brokers = {}
        for name in rates:
            store = "memory:" if args.store == "memory:" else f"sqlite:{work}/{name}.db"
            extra = ["--context-dir", str(DIRECTORY)]
            if name == "with":
                extra += ["--model-schemas", str(DIRECTORY)]
            brokers[name] = BrokerProcess(store, extra=extra, log=str(work / f"{name}.log"))
            process = brokers[name].start().process
            if server_cpus is not None and process is not None:
                subprocess.run(["taskset", "-p", "-c", server_cpus, str(process.pid)],
                               check=False, capture_output=True)
        try:
            for run in range(runs):
                for name, broker in brokers.items():
                    assert broker.process is not None
                    rate, cost = asyncio.run(measure(broker.url, broker.process.pid, work,
                                                     f"{name}{run}", seconds, client_cpus))
                    rates[name].append(rate)
                    costs[name].append(cost)
                    print(f"run {run + 1} {name:>7} schemas: {rate:,.0f} creates/s, "
                          f"{cost:,.0f} us CPU a create", flush=True)
        finally:
            for broker in brokers.values():
                broker.stop()
    without, with_ = statistics.median(rates["without"]), statistics.median(rates["with"])
    print(f"\n{note}; store {args.store}")
    print(f"create without schemas: {without:,.0f}/s, with: {with_:,.0f}/s, "
          f"ratio {with_ / without:.2f} (cost {1 - with_ / without:.0%}; bound: 30%)")
    cpu_without, cpu_with = statistics.median(costs["without"]), statistics.median(costs["with"])
    print(f"broker CPU a create without schemas: {cpu_without:,.0f} us, with: {cpu_with:,.0f} us:"
          f" throughput ratio {cpu_without / cpu_with:.2f} when CPU-bound")


if __name__ == "__main__":
    main()

"""Latency of single requests that follow a write: counts over a q term and discovery.

A live city writes all the time, so a count or a ``/types?details=true`` is mostly the
first request after some write: the broker cannot answer it from a cache that the
write invalidated.  Each sample is an untimed write (a value PATCH on one entity of
the data set, which changes the store's data version), then the timed request,
sent one at a time from the harness's core.  p50 and p99 of the timed requests are
reported; the targets are on p50 (issue #19's "under 5 ms", "under 20 ms").
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote

from benchmarks.suite.datasets import DATASET_PREFIX
from benchmarks.suite.scenarios import JSON, BenchContext, Skip
from benchmarks.suite.spec import RequestSpec
from benchmarks.suite.stats import summarize

ENTITIES = "/ngsi-ld/v1/entities"


@dataclass(frozen=True)
class Probe:
    """A timed ``read`` after each untimed ``write``."""

    write: RequestSpec
    read: RequestSpec


def value_write(size: int) -> RequestSpec:
    """PATCH ``powerConsumption`` of one of the data set's first Streetlights, in turn.

    Entity ``i`` of the data set is a Streetlight unless ``i % 4 == 3``: ids ``4n``
    always are.  The value changes with every request.
    """
    ids = range(0, max(4, min(size, 1024)), 4)
    return RequestSpec(
        "PATCH", tuple(f"{ENTITIES}/{DATASET_PREFIX}{i}/attrs" for i in ids),
        '{"powerConsumption":{"type":"Property","value":__I__.5}}',
        headers={"Content-Type": JSON},
    )


def count_probe(size: int) -> Probe:
    """``count=true`` over ``lanternHeight==10``: about 11% of the Streetlights."""
    q = quote("lanternHeight==10", safe="")
    read = RequestSpec("GET", (f"{ENTITIES}?type=Streetlight&q={q}&count=true&limit=0",),
                       headers={"Accept": JSON})
    return Probe(value_write(size), read)


def discovery_probe(size: int, path: str) -> Probe:
    """A discovery request (5.7.5 to 5.7.12) after each value write."""
    return Probe(value_write(size), RequestSpec("GET", (path,), headers={"Accept": JSON}))


@dataclass
class ProbeResult:
    latencies_ms: list[float]
    errors: int
    count_header: str | None = None

    def summary(self) -> dict[str, float | None]:
        return summarize(self.latencies_ms)


async def run_probe(ctx: BenchContext, probe: Probe, samples: int) -> ProbeResult:
    """``samples`` times: the write (untimed), then the read (timed)."""
    latencies: list[float] = []
    errors = 0
    header = None
    for i in range(1, samples + 1):
        path, body = probe.write.render(i, ctx.run_id)
        async with ctx.session.request(probe.write.method, ctx.base_url + path, data=body,
                                       headers=probe.write.headers) as resp:
            await resp.read()
            if resp.status >= 400:
                raise Skip(f"setup write answered HTTP {resp.status}")
        path, body = probe.read.render(i, ctx.run_id)
        started = time.perf_counter()
        async with ctx.session.request(probe.read.method, ctx.base_url + path, data=body,
                                       headers=probe.read.headers) as resp:
            await resp.read()
            elapsed = (time.perf_counter() - started) * 1000
            if resp.status >= 400:
                if i == 1:
                    raise Skip(f"feature not available (HTTP {resp.status} on probe)")
                errors += 1
                continue
            header = resp.headers.get("NGSILD-Results-Count", header)
        latencies.append(elapsed)
    return ProbeResult(latencies, errors, header)

"""The scenarios: what each one sends, what it needs in the broker first, its target."""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.suite.datasets import DatasetLoader
from benchmarks.suite.spec import RequestSpec

ENTITIES = "/ngsi-ld/v1/entities"
UPSERT = "/ngsi-ld/v1/entityOperations/upsert"
CONTEXTS = "/ngsi-ld/v1/jsonldContexts"
JSON = "application/json"
LD_JSON = "application/ld+json"
LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'

# shared/ sits beside the checkout (CI) or at /work/shared.
_SDM = next(
    (
        base / "shared" / "data" / "smart-data-models"
        for base in (Path(__file__).resolve().parents[3], Path("/work"))
        if (base / "shared" / "data" / "smart-data-models").is_dir()
    ),
    Path("/work/shared/data/smart-data-models"),
)
STREETLIGHT_EXAMPLE = _SDM / "Streetlight" / "example-normalized.jsonld"
STREETLIGHT_CONTEXT = _SDM / "dataModel.Streetlighting.context.jsonld"


class Skip(Exception):
    """The scenario cannot run against this broker (the reason is reported)."""


@dataclass
class BenchContext:
    """What scenarios share during one run."""

    base_url: str
    run_id: str
    session: aiohttp.ClientSession
    loader: DatasetLoader
    pool: int = 1000  # pre-created entities that GET/PATCH rotate over
    prepared: set[str] = field(default_factory=set)
    streetlight_link: str | None = None
    notes: list[str] = field(default_factory=list)
    rates: dict[str, float] = field(default_factory=dict)  # name -> closed-loop req/s
    store_file: Path | None = None  # the embedded store's file, when the run started it

    async def upsert(self, entities: Sequence[dict[str, Any]],
                     headers: dict[str, str] | None = None) -> None:
        """Batch upsert ``entities`` (in chunks of 1000); Skip when the broker refuses."""
        for first in range(0, len(entities), 1000):
            chunk = orjson.dumps(list(entities[first:first + 1000]))
            async with self.session.post(
                self.base_url + UPSERT, data=chunk,
                headers={"Content-Type": JSON, **(headers or {})},
            ) as resp:
                text = await resp.text()
                if resp.status >= 300:
                    raise Skip(f"setup failed: upsert answered HTTP {resp.status}: {text[:200]}")


@dataclass
class Target:
    """The issue's goal for a scenario; None members are not checked."""

    min_rate: float | None = None  # in the scenario's unit
    min_ratio: float | None = None  # of the baseline
    text: str = ""
    max_rate: float | None = None  # for scenarios whose "rate" is a duration (s)
    max_p50_ms: float | None = None
    max_p99_ms: float | None = None
    max_lost: int | None = None
    max_rss_mb: float | None = None

    def met(self, rate: float | None, ratio: float | None) -> bool | None:
        if rate is None:
            return None
        if self.min_rate is not None and rate < self.min_rate:
            return False
        if self.max_rate is not None and rate > self.max_rate:
            return False
        return not (self.min_ratio is not None and (ratio is None or ratio < self.min_ratio))

    def latency_met(self, p50: float | None, p99: float | None, lost: int | None) -> bool | None:
        """The latency and loss members (None: nothing measured)."""
        if p50 is None and p99 is None:
            return None
        checks = [(self.max_p50_ms, p50), (self.max_p99_ms, p99)]
        if any(limit is not None and (value is None or value >= limit)
               for limit, value in checks):
            return False
        return not (self.max_lost is not None and (lost is None or lost > self.max_lost))


@dataclass
class Scenario:
    """One measured workload.

    ``build`` does the setup the scenario needs and returns its request stream;
    ``kind`` "notify" scenarios are run by notify.py instead of wrk.
    """

    name: str
    description: str
    build: Callable[[BenchContext], Awaitable[RequestSpec]]
    connections: int = 32
    per_request: int = 1
    unit: str = "req/s"
    dataset: int = 0
    kind: str = "wrk"
    probe: str | None = None  # GET before setup (queries: do not load data for nothing)
    target: Target | None = None
    min_duration: float = 0.0  # seconds: slow requests need a few to measure anything
    #: what the non-wrk kinds need ("probe": path; "fanout": subscriptions, rate)
    settings: dict[str, Any] = field(default_factory=dict)


def select(scenarios: Iterable[Scenario], patterns: Sequence[str]) -> list[Scenario]:
    """The scenarios whose name contains one of ``patterns`` (all when none given).

    A pattern with ``*`` or ``?`` is matched as a glob against the whole name.
    """
    chosen = []
    for scenario in scenarios:
        if not patterns or any(
            fnmatch.fnmatchcase(scenario.name, p) if any(c in p for c in "*?[")
            else p in scenario.name
            for p in patterns
        ):
            chosen.append(scenario)
    return chosen


def small_entity(entity_id: str, entity_type: str, value: str = "21.5") -> str:
    """A 3-attribute entity as JSON text (``value`` may be a template placeholder)."""
    return (
        f'{{"id":"{entity_id}","type":"{entity_type}","temperature":{{"type":"Property",'
        f'"value":{value},"unitCode":"CEL"}},"status":{{"type":"Property","value":"ok"}},'
        '"location":{"type":"GeoProperty","value":{"type":"Point",'
        '"coordinates":[114.1694,22.3193]}}}'
    )


async def _pool(ctx: BenchContext) -> None:
    if "pool" in ctx.prepared:
        return
    await ctx.upsert([
        orjson.loads(small_entity(f"urn:ngsi-ld:BenchEntity:{i}", "BenchEntity", str(i)))
        for i in range(ctx.pool)
    ])
    ctx.prepared.add("pool")


async def _streetlight_link(ctx: BenchContext) -> dict[str, str]:
    """Host the Smart Data Models context in the broker; its Link header (5.13.2)."""
    if "streetlight-context" not in ctx.prepared:
        ctx.prepared.add("streetlight-context")
        async with ctx.session.post(
            ctx.base_url + CONTEXTS, data=STREETLIGHT_CONTEXT.read_bytes(),
            headers={"Content-Type": LD_JSON},
        ) as resp:
            location = resp.headers.get("Location")
            if resp.status == 201 and location:
                ctx.streetlight_link = (
                    location if location.startswith("http") else ctx.base_url + location
                )
            else:
                ctx.notes.append(
                    f"hosting the Streetlight @context answered HTTP {resp.status}: "
                    "Streetlight scenarios use no user @context"
                )
    if ctx.streetlight_link is None:
        return {}
    return {"Link": f"<{ctx.streetlight_link}>; {LINK_REL}"}


def streetlight_body(entity_id: str, power: str | None = None) -> str:
    """The Smart Data Models Streetlight example as a JSON body, with id ``entity_id``.

    ``power`` (a template placeholder such as ``__I__``) replaces the value of
    ``powerConsumption``, so each request of a template reports a new reading.
    """
    entity = orjson.loads(STREETLIGHT_EXAMPLE.read_bytes())
    entity.pop("@context", None)
    entity["id"] = entity_id
    if power is None:
        return orjson.dumps(entity).decode()
    # the placeholder encoded as a string, then unquoted: the rendered value is a number
    entity["powerConsumption"]["value"] = power
    return orjson.dumps(entity).decode().replace(f'"{power}"', power, 1)


# 5.6.1 Create Entity
async def build_create(ctx: BenchContext) -> RequestSpec:
    body = small_entity("urn:ngsi-ld:BenchCreate:__UID__", "BenchCreate")
    return RequestSpec("POST", (ENTITIES,), body, headers={"Content-Type": JSON})


async def _idle_subscription(ctx: BenchContext) -> None:
    """A subscription on the updated type that the updates never trigger (it watches
    another attribute): every PATCH is matched against it, none is notified."""
    if "idle-subscription" in ctx.prepared:
        return
    ctx.prepared.add("idle-subscription")
    body = {"type": "Subscription", "entities": [{"type": "BenchEntity"}],
            "watchedAttributes": ["status"],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/never"}}}
    async with ctx.session.post(ctx.base_url + "/ngsi-ld/v1/subscriptions",
                                data=orjson.dumps(body),
                                headers={"Content-Type": JSON}) as resp:
        await resp.read()
        if resp.status >= 300:
            ctx.notes.append(f"update-attr: the subscription answered HTTP {resp.status}; "
                             "updates measured without one")


# 5.6.3 Update Entity Attributes
async def build_update(ctx: BenchContext) -> RequestSpec:
    await _pool(ctx)
    await _idle_subscription(ctx)
    return RequestSpec(
        "PATCH", (ENTITIES + "/urn:ngsi-ld:BenchEntity:__N__/attrs",),
        '{"temperature":{"type":"Property","value":__N__}}',
        count=ctx.pool, headers={"Content-Type": JSON},
    )


# 5.7.1 Retrieve Entity
def build_get(accept: str) -> Callable[[BenchContext], Awaitable[RequestSpec]]:
    async def build(ctx: BenchContext) -> RequestSpec:
        await _pool(ctx)
        return RequestSpec("GET", (ENTITIES + "/urn:ngsi-ld:BenchEntity:__N__",),
                           count=ctx.pool, headers={"Accept": accept})
    return build


async def build_streetlight_create(ctx: BenchContext) -> RequestSpec:
    link = await _streetlight_link(ctx)
    body = streetlight_body("urn:ngsi-ld:Streetlight:bench:__UID__")
    return RequestSpec("POST", (ENTITIES,), body, headers={"Content-Type": JSON, **link})


async def build_streetlight_get(ctx: BenchContext) -> RequestSpec:
    link = await _streetlight_link(ctx)
    count = min(ctx.pool, 100)
    if "streetlights" not in ctx.prepared:
        await ctx.upsert(
            [orjson.loads(streetlight_body(f"urn:ngsi-ld:Streetlight:benchget:{i}"))
             for i in range(count)],
            headers=link,
        )
        ctx.prepared.add("streetlights")
    return RequestSpec("GET", (ENTITIES + "/urn:ngsi-ld:Streetlight:benchget:__N__",),
                       count=count, headers={"Accept": JSON, **link})


# 5.6.8 Batch Entity Upsert of 18-attribute Streetlights (10 rotating id sets)
async def build_streetlight_batch(ctx: BenchContext) -> RequestSpec:
    link = await _streetlight_link(ctx)
    # each request reports a new powerConsumption (the request counter), as a feed
    # of readings does: a replacement by the very content stored is not what this
    # scenario measures (benchmarks/README.md, 2026-12-06 18:30)
    body = "[" + ",".join(
        streetlight_body(f"urn:ngsi-ld:Streetlight:benchbatch:__N__:{k}", "__I__")
        for k in range(100)
    ) + "]"
    return RequestSpec("POST", (UPSERT,), body, count=10,
                       headers={"Content-Type": JSON, **link})


# 5.6.8 Batch Entity Upsert
def build_batch(size: int) -> Callable[[BenchContext], Awaitable[RequestSpec]]:
    async def build(ctx: BenchContext) -> RequestSpec:
        body = "[" + ",".join(
            small_entity(f"urn:ngsi-ld:BenchBatch{size}:__N__:{k}", "BenchBatch", str(k))
            for k in range(size)
        ) + "]"
        return RequestSpec("POST", (UPSERT,), body, count=10,
                           headers={"Content-Type": JSON})
    return build


# 5.7.2 Query Entities
def build_query(size: int, paths: tuple[str, ...]) -> Callable[
        [BenchContext], Awaitable[RequestSpec]]:
    async def build(ctx: BenchContext) -> RequestSpec:
        await ctx.loader.ensure(size)
        return RequestSpec("GET", paths, headers={"Accept": JSON})
    return build


async def no_spec(ctx: BenchContext) -> RequestSpec:  # notify scenarios build their own
    raise Skip("not a wrk scenario")

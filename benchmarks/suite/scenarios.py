"""The scenarios: what each one sends, what it needs in the broker first, its target."""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.suite.datasets import DatasetLoader, near_paths, query_paths, within_paths
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

    def met(self, rate: float | None, ratio: float | None) -> bool | None:
        if rate is None:
            return None
        if self.min_rate is not None and rate < self.min_rate:
            return False
        return not (self.min_ratio is not None and (ratio is None or ratio < self.min_ratio))


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


def _streetlight_body(entity_id: str) -> str:
    entity = orjson.loads(STREETLIGHT_EXAMPLE.read_bytes())
    entity.pop("@context", None)
    entity["id"] = entity_id
    return orjson.dumps(entity).decode()


# 5.6.1 Create Entity
async def build_create(ctx: BenchContext) -> RequestSpec:
    body = small_entity("urn:ngsi-ld:BenchCreate:__UID__", "BenchCreate")
    return RequestSpec("POST", (ENTITIES,), body, headers={"Content-Type": JSON})


# 5.6.3 Update Entity Attributes
async def build_update(ctx: BenchContext) -> RequestSpec:
    await _pool(ctx)
    return RequestSpec(
        "PATCH", (ENTITIES + "/urn:ngsi-ld:BenchEntity:__N__/attrs",),
        '{"temperature":{"type":"Property","value":__N__}}',
        count=ctx.pool, headers={"Content-Type": JSON},
    )


# 5.7.1 Retrieve Entity
def _build_get(accept: str) -> Callable[[BenchContext], Awaitable[RequestSpec]]:
    async def build(ctx: BenchContext) -> RequestSpec:
        await _pool(ctx)
        return RequestSpec("GET", (ENTITIES + "/urn:ngsi-ld:BenchEntity:__N__",),
                           count=ctx.pool, headers={"Accept": accept})
    return build


async def build_streetlight_create(ctx: BenchContext) -> RequestSpec:
    link = await _streetlight_link(ctx)
    body = _streetlight_body("urn:ngsi-ld:Streetlight:bench:__UID__")
    return RequestSpec("POST", (ENTITIES,), body, headers={"Content-Type": JSON, **link})


async def build_streetlight_get(ctx: BenchContext) -> RequestSpec:
    link = await _streetlight_link(ctx)
    count = min(ctx.pool, 100)
    if "streetlights" not in ctx.prepared:
        await ctx.upsert(
            [orjson.loads(_streetlight_body(f"urn:ngsi-ld:Streetlight:benchget:{i}"))
             for i in range(count)],
            headers=link,
        )
        ctx.prepared.add("streetlights")
    return RequestSpec("GET", (ENTITIES + "/urn:ngsi-ld:Streetlight:benchget:__N__",),
                       count=count, headers={"Accept": JSON, **link})


# 5.6.8 Batch Entity Upsert
def _build_batch(size: int) -> Callable[[BenchContext], Awaitable[RequestSpec]]:
    async def build(ctx: BenchContext) -> RequestSpec:
        body = "[" + ",".join(
            small_entity(f"urn:ngsi-ld:BenchBatch{size}:__N__:{k}", "BenchBatch", str(k))
            for k in range(size)
        ) + "]"
        return RequestSpec("POST", (UPSERT,), body, count=10,
                           headers={"Content-Type": JSON})
    return build


# 5.7.2 Query Entities
def _build_query(size: int, paths: tuple[str, ...]) -> Callable[
        [BenchContext], Awaitable[RequestSpec]]:
    async def build(ctx: BenchContext) -> RequestSpec:
        await ctx.loader.ensure(size)
        return RequestSpec("GET", paths, headers={"Accept": JSON})
    return build


async def _no_spec(ctx: BenchContext) -> RequestSpec:  # notify scenarios build their own
    raise Skip("not a wrk scenario")


def _label(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size)


def build_scenarios(dataset_sizes: Sequence[int]) -> list[Scenario]:
    """Every scenario, data-set ones for each size (geo at the largest size only)."""
    get_target = Target(5000, 0.5, ">= 5,000 req/s and >= 50% of baseline")
    scenarios = [
        Scenario("create-entity", "POST /entities, 3 attributes, unique ids",
                 build_create, target=Target(2000, text=">= 2,000 req/s")),
        Scenario("update-attr", "PATCH /entities/{id}/attrs one attribute, rotating ids",
                 build_update, target=Target(2500, text=">= 2,500 req/s")),
        Scenario("get-entity-json", "GET /entities/{id}, application/json + Link header",
                 _build_get(JSON), target=get_target),
        Scenario("get-entity-ldjson", "GET /entities/{id}, application/ld+json (@context in body)",
                 _build_get(LD_JSON), target=get_target),
        Scenario("streetlight-create", "POST the 18-attribute Streetlight, SDM @context by Link",
                 build_streetlight_create),
        Scenario("streetlight-get", "GET the 18-attribute Streetlight with its Link header",
                 build_streetlight_get),
        Scenario("batch-upsert-100", "POST /entityOperations/upsert, 100 entities a request",
                 _build_batch(100), connections=4, per_request=100, unit="entities/s",
                 target=Target(10000, text=">= 10,000 entities/s")),
        Scenario("batch-upsert-1000", "POST /entityOperations/upsert, 1000 entities a request",
                 _build_batch(1000), connections=2, per_request=1000, unit="entities/s",
                 min_duration=3.0,
                 target=Target(10000, text=">= 10,000 entities/s")),
    ]
    for size in dataset_sizes:
        scenarios.append(Scenario(
            f"query-type-q-{_label(size)}",
            f"GET /entities?type=Streetlight&q=...&limit=20 over {size:,} entities",
            _build_query(size, query_paths()), dataset=size, probe=query_paths()[0],
            target=Target(2500, text=">= 2,500 req/s")))
    if dataset_sizes:
        size = max(dataset_sizes)
        scenarios += [
            Scenario(f"geo-near-1km-{_label(size)}",
                     f"georel=near;maxDistance==1000 around Hong Kong points, {size:,} entities",
                     _build_query(size, near_paths()), dataset=size, probe=near_paths()[0]),
            Scenario(f"geo-within-{_label(size)}",
                     f"georel=within a ~2 km square in Hong Kong, {size:,} entities",
                     _build_query(size, within_paths()), dataset=size,
                     probe=within_paths()[0]),
        ]
    scenarios.append(Scenario(
        "notifications", "PATCH at 50% of update saturation; subscription notifies a local "
        "receiver; latency from PATCH sent to notification received",
        _no_spec, kind="notify", unit="notifications/s",
        target=Target(text="p50 < 5 ms, p99 < 50 ms, 0 lost")))
    return scenarios

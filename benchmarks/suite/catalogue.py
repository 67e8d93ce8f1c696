"""Every scenario of the suite, with the targets of issue #19 (one server core, embedded
store, 100k Streetlights): what ``--list`` shows and ``--scenario`` selects from."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.suite.datasets import near_paths, query_paths, within_paths
from benchmarks.suite.scenarios import (
    JSON,
    LD_JSON,
    Scenario,
    Target,
    build_batch,
    build_create,
    build_get,
    build_query,
    build_streetlight_batch,
    build_streetlight_create,
    build_streetlight_get,
    build_update,
    no_spec,
)
from benchmarks.suite.temporal import build_temporal

#: 5.7.5 to 5.7.12: the discovery requests timed after a write
DISCOVERY = (
    ("types-details", "/ngsi-ld/v1/types?details=true"),
    ("attributes-details", "/ngsi-ld/v1/attributes?details=true"),
    ("type-info", "/ngsi-ld/v1/types/Streetlight"),
)


def label(size: int) -> str:
    """1000 -> "1k", 1000000 -> "1000k", 500 -> "500"."""
    return f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size)


def build_scenarios(dataset_sizes: Sequence[int], *, subscriptions: int = 10_000,
                    fan_rate: float = 500.0) -> list[Scenario]:
    """Every scenario, data-set ones for each size (geo, probes at the largest only)."""
    get_target = Target(min_ratio=0.7, text=">= 70% of baseline")
    scenarios = [
        Scenario("create-entity", "POST /entities, 3 attributes, unique ids",
                 build_create, target=Target(min_ratio=0.35, text=">= 35% of baseline")),
        Scenario("update-attr", "PATCH /entities/{id}/attrs one attribute, rotating ids, "
                 "a subscription on the type present (watching another attribute)",
                 build_update, target=Target(min_ratio=0.55, text=">= 55% of baseline")),
        Scenario("get-entity-json", "GET /entities/{id}, application/json + Link header",
                 build_get(JSON), target=get_target),
        Scenario("get-entity-ldjson", "GET /entities/{id}, application/ld+json (@context in body)",
                 build_get(LD_JSON), target=get_target),
        Scenario("streetlight-create", "POST the 18-attribute Streetlight, SDM @context by Link",
                 build_streetlight_create,
                 target=Target(min_ratio=0.2, text=">= 20% of baseline")),
        Scenario("streetlight-get", "GET the 18-attribute Streetlight with its Link header",
                 build_streetlight_get),
        Scenario("streetlight-batch-upsert",
                 "POST /entityOperations/upsert, 100 Streetlights (18 attributes) a request",
                 build_streetlight_batch, connections=4, per_request=100, unit="entities/s",
                 target=Target(10_000, text=">= 10,000 entities/s")),
        Scenario("batch-upsert-100", "POST /entityOperations/upsert, 100 entities a request",
                 build_batch(100), connections=4, per_request=100, unit="entities/s",
                 target=Target(10_000, text=">= 10,000 entities/s")),
        Scenario("batch-upsert-1000", "POST /entityOperations/upsert, 1000 entities a request",
                 build_batch(1000), connections=2, per_request=1000, unit="entities/s",
                 min_duration=3.0, target=Target(10_000, text=">= 10,000 entities/s")),
    ]
    query_target = Target(3200, 0.35, ">= 3,200 req/s and >= 35% of baseline")
    for size in dataset_sizes:
        scenarios.append(Scenario(
            f"query-type-q-{label(size)}",
            f"GET /entities?type=Streetlight&q=...&limit=20 over {size:,} entities",
            build_query(size, query_paths()), dataset=size, probe=query_paths()[0],
            target=query_target))
    if dataset_sizes:
        size = max(dataset_sizes)
        scenarios += [
            Scenario(f"geo-near-1km-{label(size)}",
                     f"georel=near;maxDistance==1000 around Hong Kong points, {size:,} entities",
                     build_query(size, near_paths()), dataset=size, probe=near_paths()[0]),
            Scenario(f"geo-within-{label(size)}",
                     f"georel=within a ~2 km square in Hong Kong, {size:,} entities",
                     build_query(size, within_paths()), dataset=size,
                     probe=within_paths()[0]),
            Scenario(f"count-q-{label(size)}",
                     f"count=true over lanternHeight==10 (~11% of the Streetlights) after a "
                     f"write, {size:,} entities", no_spec, kind="probe", unit="ms",
                     dataset=size, settings={"path": "count"},
                     target=Target(max_p50_ms=5, text="p50 < 5 ms")),
        ]
        for name, path in DISCOVERY:
            scenarios.append(Scenario(
                f"discovery-{name}-{label(size)}", f"GET {path} after a write, {size:,} entities",
                no_spec, kind="probe", unit="ms", dataset=size, settings={"path": path},
                target=Target(max_p50_ms=20, text="p50 < 20 ms")))
    readings = 8640 if max(dataset_sizes, default=0) >= 1000 else 360
    day = f"100 lampposts x {readings:,} pm10 readings"
    scenarios += [
        Scenario("temporal-lastn", f"GET /temporal/entities/{{id}}?lastN=100, {day}",
                 build_temporal("lastn", readings),
                 target=Target(2000, text=">= 2,000 req/s")),
        Scenario("temporal-hourly-one", f"one lamppost's day as hourly avg,max, {day}",
                 build_temporal("hourly-one", readings),
                 target=Target(300, text=">= 300 req/s")),
        Scenario("temporal-hourly-all", f"the 100 lampposts' day as hourly avg, {day}",
                 build_temporal("hourly-all", readings), connections=2, min_duration=3.0,
                 target=Target(max_p50_ms=250, text="p50 < 250 ms")),
        Scenario("temporal-ingest", "PATCH /entities/{id}/attrs pm10 of 100 lampposts "
                 "(history as the broker is started: compare with --broker-arg=--temporal "
                 "--broker-arg=off)", build_temporal("ingest", readings),
                 target=Target(text="history on >= 75% of off")),
    ]
    scenarios.append(Scenario(
        "notifications", "PATCH at 50% of update saturation; subscription notifies a local "
        "receiver; latency from PATCH sent to notification received",
        no_spec, kind="notify", unit="notifications/s",
        target=Target(max_p50_ms=5, max_p99_ms=50, max_lost=0,
                      text="p50 < 5 ms, p99 < 50 ms, 0 lost")))
    scenarios.append(Scenario(
        f"notifications-{label(subscriptions)}-subscriptions",
        f"{subscriptions:,} subscriptions of mixed filters (type, q, watchedAttributes, "
        f"idPattern, geoQ), PATCH at {fan_rate:g}/s, each matched by one subscription",
        no_spec, kind="fanout", unit="notifications/s",
        settings={"subscriptions": subscriptions, "rate": fan_rate},
        target=Target(max_p99_ms=100, max_lost=0, text="0 lost, p99 < 100 ms")))
    scenarios.append(Scenario(
        "auth-read-entity", "GET /entities/{id} with --auth oidc (API key, JWT, a new JWT "
        "each request) vs --auth off, two brokers started for it; broker CPU time per "
        "request, rounds interleaved; ratio: requests per CPU-second with a JWT / auth off",
        no_spec, kind="auth", unit="req/CPU-s",
        target=Target(min_ratio=0.8, text="JWT >= 80% of auth off per CPU-second")))
    federated = min(10_000, max(dataset_sizes))
    scenarios.append(Scenario(
        f"federation-query-2x{label(federated)}",
        f"GET /entities?type=Streetlight&limit=100 (ten offsets) at a hub answering from two "
        f"source brokers of {federated:,} entities each; baseline: the same query over the "
        "same entities held by the hub", no_spec, kind="federation",
        settings={"size": federated},
        target=Target(min_ratio=0.4, text=">= 40% of the same query answered locally")))
    return scenarios


def million_scenarios(size: int = 1_000_000) -> list[Scenario]:
    """``--million``: a store of ``size`` entities, the broker restarted on it."""
    return [
        Scenario(f"restart-{label(size)}",
                 f"{size:,} entities stored; broker stopped and started again: seconds to the "
                 "first answered query; RSS loaded and after the restart", no_spec,
                 kind="restart", unit="s", dataset=size,
                 target=Target(max_rate=5.0, text="< 5 s to the first answered request")),
        Scenario(f"query-type-q-{label(size)}",
                 f"GET /entities?type=Streetlight&q=...&limit=20 over {size:,} entities",
                 build_query(size, query_paths()), dataset=size, probe=query_paths()[0],
                 target=Target(max_rss_mb=400, text=f"RSS < 400 MB with {size:,} entities")),
    ]

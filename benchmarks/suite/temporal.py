"""The temporal scenarios (issue 15, item 5): 100 lampposts reporting every 10 s for a
day, 864,000 instances of ``pm10``, loaded through the temporal API (one POST of a
lamppost's day each); then lastN, one entity's hourly aggregation, the 100
entities' hourly aggregation, and the cost of history on updates.

History on versus off: run ``temporal-ingest`` once as is and once with
``--broker-arg=--temporal --broker-arg=off``, and compare the two ratios to the
baseline (each run's own baseline).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from benchmarks.suite.scenarios import JSON, BenchContext, Skip
from benchmarks.suite.spec import RequestSpec

__all__ = ["DAY", "aggregated_paths", "build_temporal", "lamppost_day", "store_size"]

TEMPORAL = "/ngsi-ld/v1/temporal/entities"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
DAY = "2026-01-01T00:00:00Z"
NEXT_DAY = "2026-01-02T00:00:00Z"
LAMPPOSTS = 100
WINDOW = f"timerel=between&timeAt={DAY}&endTimeAt={NEXT_DAY}"


def lamppost_id(n: int) -> str:
    return f"urn:ngsi-ld:Streetlight:lamp-{n}"


def lamppost_day(n: int, readings: int, step_s: int = 10) -> dict[str, object]:
    """A lamppost's day as a temporal representation: ``readings`` pm10 instances."""
    instances = []
    for i in range(readings):
        seconds = i * step_s
        at = f"2026-01-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z"
        instances.append({"type": "Property", "value": round(20 + (i * 7 + n) % 300 / 10, 1),
                          "observedAt": at})
    return {"id": lamppost_id(n), "type": "Streetlight", "@context": CORE, "pm10": instances}


async def load_day(ctx: BenchContext, readings: int) -> None:
    """POST every lamppost's day (once per run)."""
    if "temporal-day" in ctx.prepared:
        return
    for n in range(LAMPPOSTS):
        async with ctx.session.post(ctx.base_url + TEMPORAL,
                                    data=orjson.dumps(lamppost_day(n, readings)),
                                    headers={"Content-Type": "application/ld+json"}) as resp:
            text = await resp.text()
            if resp.status >= 300:
                raise Skip(f"setup failed: temporal POST answered {resp.status}: {text[:200]}")
    ctx.prepared.add("temporal-day")


def store_size(path: Path) -> tuple[int, float] | None:
    """(instances, bytes per instance of the history's tables and indexes) of an
    embedded store file, None when it cannot be read."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            count = conn.execute("SELECT count(*) FROM temporal_instances").fetchone()[0]
            size = conn.execute(
                "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'temporal%'"
                " OR name LIKE 'sqlite_autoindex_temporal%'").fetchone()[0]
    except sqlite3.Error:
        return None
    return (count, size / count) if count else None


def aggregated_paths(one: bool) -> tuple[str, ...]:
    """The hourly aggregation of one lamppost's day (rotating), or of all 100."""
    if one:
        return (f"{TEMPORAL}/urn:ngsi-ld:Streetlight:lamp-__N__?{WINDOW}"
                "&aggrMethods=avg,max&aggrPeriodDuration=PT1H&format=aggregatedValues",)
    return (f"{TEMPORAL}?type=Streetlight&attrs=pm10&{WINDOW}&aggrMethods=avg"
            "&aggrPeriodDuration=PT1H&format=aggregatedValues&limit=100",)


def build_temporal(case: str, readings: int) -> Callable[[BenchContext], Awaitable[RequestSpec]]:
    """The request stream of one temporal scenario (``case``: lastn, hourly-one,
    hourly-all, ingest), after the day is loaded."""

    async def build(ctx: BenchContext) -> RequestSpec:
        headers = {"Accept": JSON, "Link": f'<{CORE}>; rel="http://www.w3.org/ns/json-ld#context"'}
        if case == "ingest":  # the lampposts' current state, whether history is on or off
            await ctx.upsert([{"id": lamppost_id(n), "type": "Streetlight", "@context": CORE,
                               "pm10": {"type": "Property", "value": 0}}
                              for n in range(LAMPPOSTS)],
                             headers={"Content-Type": "application/ld+json"})
            return RequestSpec(
                "PATCH", ("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:lamp-__N__/attrs",),
                '{"pm10":{"type":"Property","value":__N__}}', count=LAMPPOSTS,
                headers={"Content-Type": JSON})
        await load_day(ctx, readings)
        if ctx.store_file is not None and "temporal-size" not in ctx.prepared:
            measured = store_size(ctx.store_file)
            if measured is not None:
                ctx.notes.append(f"temporal: {measured[0]:,} instances, "
                                 f"{measured[1]:.1f} bytes per instance on disk")
            ctx.prepared.add("temporal-size")
        if case == "lastn":
            paths: tuple[str, ...] = (
                f"{TEMPORAL}/urn:ngsi-ld:Streetlight:lamp-__N__?lastN=100",)
        else:
            paths = aggregated_paths(case == "hourly-one")
        return RequestSpec("GET", paths, count=LAMPPOSTS, headers=headers)

    return build

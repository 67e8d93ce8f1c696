"""The scenarios that are not a stream of requests under wrk: latency probes after a
write, notifications among 10,000 subscriptions, and the restart of a large store."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from benchmarks.suite import servers
from benchmarks.suite.auth import MODES, measure_auth
from benchmarks.suite.fanout import run_fanout
from benchmarks.suite.latency import Probe, count_probe, discovery_probe, run_probe
from benchmarks.suite.report import ScenarioResult
from benchmarks.suite.scenarios import BenchContext, Scenario

#: the query that must answer for a restarted broker to count as serving
FIRST_QUERY = "/ngsi-ld/v1/entities?type=Streetlight&limit=1"


def _result(scenario: Scenario) -> ScenarioResult:
    return ScenarioResult(scenario.name, description=scenario.description, unit=scenario.unit)


async def probe_scenario(ctx: BenchContext, scenario: Scenario, samples: int) -> ScenarioResult:
    """``samples`` timed requests, each after an untimed write (``latency.py``)."""
    await ctx.loader.ensure(scenario.dataset)
    path = scenario.settings["path"]
    probe: Probe = (count_probe(scenario.dataset) if path == "count"
                    else discovery_probe(scenario.dataset, path))
    measured = await run_probe(ctx, probe, samples)
    summary = measured.summary()
    result = _result(scenario)
    result.p50_ms, result.p99_ms = summary["p50"], summary["p99"]
    result.errors = measured.errors
    result.extra = {"samples": len(measured.latencies_ms), "max_ms": summary["max"]}
    if measured.count_header is not None:
        result.extra["results_count"] = measured.count_header
    return result


async def fanout_scenario(ctx: BenchContext, scenario: Scenario, *, duration_s: float,
                          grace_s: float) -> ScenarioResult:
    """Updates at a fixed rate among many subscriptions (``fanout.py``)."""
    measured = await run_fanout(ctx, subscriptions=scenario.settings["subscriptions"],
                                rate=scenario.settings["rate"], duration_s=duration_s,
                                grace_s=grace_s)
    summary = measured.summary()
    result = _result(scenario)
    result.rate = len(measured.latencies_ms) / measured.duration_s if measured.duration_s else 0
    result.open_rate = measured.rate
    result.p50_ms, result.p99_ms = summary["p50"], summary["p99"]
    result.errors = measured.update_errors + measured.spurious
    result.lost = measured.lost
    result.extra = {"subscriptions": measured.subscriptions, "updates_sent": measured.sent,
                    "spurious": measured.spurious, "setup_s": round(measured.setup_s, 1)}
    return result


async def auth_scenario(ctx: BenchContext, scenario: Scenario, workdir: Path,
                        cpus: str | None, *, smoke: bool) -> ScenarioResult:
    """GET one entity with --auth on and off, broker CPU time per request (``auth.py``)."""
    measured = await measure_auth(ctx.session, workdir, cpus,
                                  requests=200 if smoke else 2000, rounds=2 if smoke else 5)
    off = measured.median_cpu_us("off")
    result = _result(scenario)
    result.rate = 1e6 / measured.median_cpu_us("jwt")
    result.baseline_rate = 1e6 / off
    result.errors = measured.errors
    result.extra = {
        "cpu_us_per_request": {m: round(measured.median_cpu_us(m), 1) for m in MODES},
        "cpu_ratio_to_off": {m: round(measured.median_cpu_us(m) / off, 3) for m in MODES},
        "cpu_us_rounds": {m: [round(v, 1) for v in measured.cpu_us[m]] for m in MODES},
        "wall_req_per_s": {m: round(measured.median_rate(m)) for m in MODES},
    }
    return result


async def restart_scenario(ctx: BenchContext, scenario: Scenario, group: servers.ServerGroup,
                           log_path: Path) -> tuple[ScenarioResult, servers.ServerGroup]:
    """Load the data set, stop the broker, start it again: seconds to the first query
    answered (``rate`` holds them, unit s) and the RSS before and after."""
    await ctx.loader.ensure(scenario.dataset)
    result = _result(scenario)
    rss_loaded = group.rss_mb()
    group.stop()
    started = time.perf_counter()
    fresh = servers.start_group("broker", group.commands, group.url, log_path)
    async with aiohttp.ClientSession() as session:
        while True:
            fresh.check_alive()
            try:
                async with session.get(group.url + FIRST_QUERY,
                                       timeout=aiohttp.ClientTimeout(total=30)) as resp:
                    await resp.read()
                    if resp.status == 200:
                        break
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            if time.perf_counter() - started > 120:
                raise RuntimeError("the restarted broker answered no query within 120 s")
            await asyncio.sleep(0.02)
    result.rate = time.perf_counter() - started
    result.extra = {"rss_mb_loaded": rss_loaded, "rss_mb_after_restart": fresh.rss_mb()}
    return result, fresh


"""``python -m benchmarks``: start the broker and the baseline, run the scenarios, report."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.suite import servers
from benchmarks.suite.catalogue import build_scenarios, million_scenarios
from benchmarks.suite.datasets import DatasetLoader
from benchmarks.suite.federation import FED_TENANT, LOCAL_TENANT, query_spec, start_federation
from benchmarks.suite.notify import run_notifications
from benchmarks.suite.openloop import OpenLoopResult, run_open_loop
from benchmarks.suite.report import ScenarioResult, render_json, render_markdown
from benchmarks.suite.scenarios import BenchContext, Scenario, Skip, select
from benchmarks.suite.spec import RequestSpec
from benchmarks.suite.special import (
    auth_scenario,
    fanout_scenario,
    probe_scenario,
    restart_scenario,
)
from benchmarks.suite.wrk import WrkError, WrkResult, run_wrk, wrk_command, wrk_path

RESULTS = Path(__file__).resolve().parents[1] / "results"
# Failures of the system under test or of the network: reported, the run goes on.
EXPECTED_FAILURES = (Skip, WrkError, aiohttp.ClientError, TimeoutError, OSError,
                     RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark the NGSI-LD broker against a bare aiohttp baseline.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="short run: 3 s per scenario, the 1k data set only")
    parser.add_argument("--smoke", action="store_true",
                        help="CI smoke pass: ~1 s per scenario, small data set, no thresholds")
    parser.add_argument("--scenario", action="append", default=[], metavar="NAME",
                        help="run the scenarios whose name contains NAME (repeatable)")
    parser.add_argument("--url", help="benchmark this running broker instead of starting one")
    parser.add_argument("--workers", type=int, default=1,
                        help="broker processes sharing the port (needs the broker's --reuse-port)")
    parser.add_argument("--store", help="store URL of the started broker "
                        "(default: a fresh embedded SQLite in a temporary directory)")
    parser.add_argument("--duration", type=float,
                        help="seconds per load run (default 10, --quick 3, --smoke 1)")
    parser.add_argument("--repeat", type=int,
                        help="interleaved broker/baseline closed-loop runs per scenario, "
                        "median kept; the duration is split between them (default 3, smoke 1)")
    parser.add_argument("--server-cpus", default="0", help="CPUs of the broker and baseline")
    parser.add_argument("--client-cpus", default="1", help="CPUs of the load generators")
    parser.add_argument("--output", type=Path, default=RESULTS, help="directory of the reports")
    parser.add_argument("--million", action="store_true",
                        help="a store of 1,000,000 entities: restart time and RSS (long)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--broker-arg", action="append", default=[], metavar="ARG",
                        help="an option for the broker started (repeatable), e.g. "
                        "--broker-arg=--temporal --broker-arg=off")
    return parser


@dataclass
class Plan:
    """What to run, derived from the options."""

    sizes: list[int]
    duration: float
    pool: int
    scenarios: list[Scenario]
    repeat: int = 1
    #: timed requests per latency probe
    samples: int = 50


def median_run(runs: Sequence[WrkResult]) -> WrkResult:
    """The run with the median rate (the lower middle one for an even count)."""
    if not runs:
        raise ValueError("no wrk runs")
    return sorted(runs, key=lambda r: r.rate)[(len(runs) - 1) // 2]


def make_plan(args: argparse.Namespace) -> Plan:
    """Data-set sizes, durations and the selected scenarios."""
    subscriptions, fan_rate = 10_000, 500.0
    if args.smoke:
        sizes, duration, pool, samples = [500], 1.0, 100, 5
        subscriptions, fan_rate = 200, 50.0
    elif args.quick:
        sizes, duration, pool, samples = [1000], 3.0, 200, 20
    else:
        sizes, duration, pool, samples = [1000, 10_000, 100_000], 10.0, 1000, 50
    if args.duration is not None:
        duration = args.duration
    repeat = args.repeat if args.repeat is not None else (1 if args.smoke else 3)
    if repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    if getattr(args, "million", False):
        size = 2000 if args.smoke else 1_000_000
        return Plan([size], duration, pool, select(million_scenarios(size), args.scenario),
                    repeat, samples)
    catalogue = build_scenarios(sizes, subscriptions=subscriptions, fan_rate=fan_rate)
    return Plan(sizes, duration, pool, select(catalogue, args.scenario), repeat, samples)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


class Bench:
    """One run: the processes, the shared context, the results."""

    def __init__(self, args: argparse.Namespace, plan: Plan, workdir: Path) -> None:
        self.args = args
        self.plan = plan
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:8]
        self.server_cpus, self.client_cpus, self.pinning = servers.usable_cpus(
            args.server_cpus, args.client_cpus)
        self.broker: servers.ServerGroup | None = None
        self.baseline: servers.ServerGroup | None = None
        self.base_url = ""
        self.baseline_url = ""
        self.meta: dict[str, Any] = {}
        self.wrk_exe = wrk_path()
        self.wrk_runs = 0

    async def start(self) -> None:
        if self.client_cpus is not None:
            os.sched_setaffinity(0, {int(c) for c in self.client_cpus.split(",")})
        port = servers.free_port()
        self.baseline_url = f"http://127.0.0.1:{port}"
        # the baseline on the broker's kind of event loop: the ratio is the broker's code
        loop = servers.event_loop_of(self.args.broker_arg)
        self.baseline = servers.start_group(
            "baseline", [servers.baseline_command(port, self.server_cpus, loop)],
            self.baseline_url, self.workdir / "baseline.log")
        if self.args.url:
            self.base_url = self.args.url.rstrip("/").removesuffix("/ngsi-ld/v1")
            store = "(external broker)"
        else:
            store = self.args.store or f"sqlite:///{self.workdir / 'broker.db'}"
            port = servers.free_port()
            self.base_url = f"http://127.0.0.1:{port}"
            self.broker = servers.start_group(
                "broker",
                servers.broker_commands(port, store, self.args.workers, self.server_cpus,
                                        self.args.broker_arg),
                self.base_url, self.workdir / "broker.log")
        await servers.wait_ready(self.broker, self.base_url + "/version")
        await servers.wait_ready(self.baseline, self.baseline_url + "/")
        version: Any = None
        async with aiohttp.ClientSession() as session, \
                session.get(self.base_url + "/version") as resp:
            if resp.status == 200:
                version = orjson.loads(await resp.read())
        self.meta = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "pinning": self.pinning,
            "broker": self.base_url + (f" ({version.get('name')} {version.get('version')})"
                                       if isinstance(version, dict) else ""),
            "store": store,
            "workers": self.args.workers,
            "mode": "smoke" if self.args.smoke else "quick" if self.args.quick else "full",
            "duration_s": self.plan.duration,
            "repeat": self.plan.repeat,
            "notes": [],
        }
        if self.args.workers > 1 and store.startswith("memory"):
            self.meta["notes"].append("memory store with several workers: each has its own data")

    def stop(self) -> None:
        for group in (self.broker, self.baseline):
            if group is not None:
                group.stop()

    def server_pids(self) -> list[int]:
        return [pid for group in (self.broker, self.baseline) if group for pid in group.pids]

    async def wrk(self, url: str, spec: RequestSpec, name: str, connections: int,
                  extra_headers: dict[str, str] | None = None,
                  duration: float | None = None) -> WrkResult:
        await servers.wait_quiet(self.server_pids())
        # Each wrk run restarts its Lua counters: a fresh run id keeps __UID__ unique.
        self.wrk_runs += 1
        paths_file, body_file = spec.write_files(self.workdir / "requests", name)
        command = wrk_command(
            url, method=spec.method, paths_file=paths_file, body_file=body_file,
            count=spec.count, run_id=f"{self.run_id}w{self.wrk_runs}", connections=connections,
            duration_s=duration or self.plan.duration,
            headers={**spec.headers, **(extra_headers or {})},
            cpus=self.client_cpus, wrk=self.wrk_exe)
        return await run_wrk(command)

    async def ceiling(self) -> None:
        spec = RequestSpec("GET", ("/",))
        result = await self.wrk(self.baseline_url, spec, "ceiling", 32, {"X-Bench-Size": "2"})
        self.meta["generator_ceiling"] = (
            f"{result.rate:,.0f} req/s (wrk against the baseline, 2-byte body)")

    async def probe(self, ctx: BenchContext, spec: RequestSpec) -> tuple[int, int]:
        """Send the scenario's first request: (status, response body size); Skip on 4xx/5xx."""
        path, body = spec.render(0, f"{self.run_id}-probe")
        async with ctx.session.request(spec.method, self.base_url + path, data=body,
                                       headers=spec.headers) as resp:
            payload = await resp.read()
            if resp.status >= 400:
                raise Skip(f"feature not available (HTTP {resp.status} on probe)")
            return resp.status, len(payload)

    async def run_wrk_scenario(self, ctx: BenchContext, scenario: Scenario) -> ScenarioResult:
        result = ScenarioResult(scenario.name, description=scenario.description,
                                unit=scenario.unit)
        if scenario.probe:
            async with ctx.session.get(self.base_url + scenario.probe,
                                       headers={"Accept": "application/json"}) as resp:
                await resp.read()
                if resp.status >= 400:
                    raise Skip(f"feature not available (HTTP {resp.status} on probe)")
        spec = await scenario.build(ctx)
        status, size = await self.probe(ctx, spec)
        duration = max(self.plan.duration, scenario.min_duration)
        # Broker and baseline runs interleaved, the median kept: both see the same
        # machine, so the ratio survives noise from other work on a shared host.
        segment = max(duration / self.plan.repeat, min(duration, 2.0))
        closed_runs, base_runs = [], []
        for _ in range(self.plan.repeat):
            closed_runs.append(await self.wrk(
                self.base_url, spec, scenario.name, scenario.connections, duration=segment))
            base_runs.append(await self.wrk(
                self.baseline_url, spec, scenario.name, scenario.connections,
                {"X-Bench-Size": str(size), "X-Bench-Status": str(status)}, duration=segment))
        closed, base = median_run(closed_runs), median_run(base_runs)
        closed.socket_errors = sum(r.socket_errors for r in closed_runs)
        closed.status_errors = sum(r.status_errors for r in closed_runs)
        # Open loop at half the saturation rate: latency without the server's queue.
        open_rate = closed.rate / 2
        opened = OpenLoopResult(open_rate)
        if open_rate > 0:
            await servers.wait_quiet(self.server_pids())
            opened = await run_open_loop(self.base_url, spec, rate=open_rate,
                                         duration_s=duration, run_id=self.run_id)
        summary = opened.summary()
        ctx.rates[scenario.name] = closed.rate
        result.rate = closed.rate * scenario.per_request
        result.requests_per_s = closed.rate
        result.baseline_rate = base.rate * scenario.per_request
        result.closed_p50_ms = closed.latency_ms.get("p50")
        result.closed_p99_ms = closed.latency_ms.get("p99")
        result.open_rate = open_rate
        result.p50_ms, result.p99_ms = summary["p50"], summary["p99"]
        result.errors = closed.errors + opened.errors
        result.response_bytes = size
        result.extra = {"open_loop_achieved_rate": opened.achieved_rate,
                        "closed_requests": closed.requests}
        return result

    async def run_federation_scenario(self, ctx: BenchContext,
                                      scenario: Scenario) -> ScenarioResult:
        """The hub's rate over two sources against the same query answered locally
        (``federation.py``): both closed-loop runs interleaved, medians kept."""
        size = int(scenario.settings["size"])
        federation = await start_federation(ctx.session, self.base_url, size, self.workdir,
                                            self.client_cpus)
        try:
            remote_spec, local_spec = query_spec(FED_TENANT), query_spec(LOCAL_TENANT)
            status, _ = await self.probe(ctx, remote_spec)
            if status != 200:
                raise Skip(f"the hub answered HTTP {status} to the federated query")
            duration = max(self.plan.duration, scenario.min_duration)
            segment = max(duration / self.plan.repeat, min(duration, 2.0))
            remote_runs, local_runs = [], []
            for _ in range(self.plan.repeat):
                remote_runs.append(await self.wrk(self.base_url, remote_spec, scenario.name,
                                                  scenario.connections, duration=segment))
                local_runs.append(await self.wrk(self.base_url, local_spec,
                                                 scenario.name + "-local",
                                                 scenario.connections, duration=segment))
        finally:
            federation.stop()
        remote, local = median_run(remote_runs), median_run(local_runs)
        result = ScenarioResult(scenario.name, description=scenario.description,
                                unit=scenario.unit)
        result.rate = result.requests_per_s = remote.rate
        result.baseline_rate = local.rate
        result.closed_p50_ms = remote.latency_ms.get("p50")
        result.closed_p99_ms = remote.latency_ms.get("p99")
        result.p50_ms, result.p99_ms = result.closed_p50_ms, result.closed_p99_ms
        result.errors = sum(r.errors for r in remote_runs)
        result.extra = {"baseline": "the same query answered locally by the hub",
                        "local_p50_ms": local.latency_ms.get("p50"),
                        "entities_per_source": size}
        return result

    async def run_notify_scenario(self, ctx: BenchContext, scenario: Scenario) -> ScenarioResult:
        update_rate = ctx.rates.get("update-attr")
        rate = max(1.0, update_rate / 2) if update_rate else (50.0 if self.args.smoke else 100.0)

        async def saturate(spec: RequestSpec) -> float:
            closed = await self.wrk(self.base_url, spec, scenario.name + "-saturation", 16,
                                    duration=max(1.0, self.plan.duration / 2))
            return closed.rate

        async def settle() -> None:
            await servers.wait_quiet(self.server_pids())

        measured = await run_notifications(ctx, rate=rate, duration_s=self.plan.duration,
                                           grace_s=2.0 if self.args.smoke else 5.0,
                                           saturate=saturate, settle=settle)
        rate = measured.rate
        summary = measured.summary()
        return ScenarioResult(
            scenario.name, description=scenario.description, unit=scenario.unit,
            rate=len(measured.latencies_ms) / measured.duration_s if measured.duration_s else 0,
            open_rate=rate, p50_ms=summary["p50"], p99_ms=summary["p99"],
            errors=measured.update_errors, lost=measured.lost,
            extra={"updates_sent": measured.sent,
                   "saturation_updates_per_s": measured.saturation})

    async def run_one(self, ctx: BenchContext, scenario: Scenario) -> ScenarioResult:
        print(f"-- {scenario.name}: {scenario.description}", file=sys.stderr, flush=True)
        try:
            if scenario.kind == "notify":
                result = await self.run_notify_scenario(ctx, scenario)
            elif scenario.kind == "probe":
                result = await probe_scenario(ctx, scenario, self.plan.samples)
            elif scenario.kind == "fanout":
                result = await fanout_scenario(ctx, scenario, duration_s=self.plan.duration,
                                               grace_s=2.0 if self.args.smoke else 5.0)
            elif scenario.kind == "federation":
                result = await self.run_federation_scenario(ctx, scenario)
            elif scenario.kind == "auth":
                if self.broker is None:
                    raise Skip("starts brokers of its own: not with --url")
                result = await auth_scenario(ctx, scenario, self.workdir, self.server_cpus,
                                             smoke=self.args.smoke)
            elif scenario.kind == "restart":
                if self.broker is None:
                    raise Skip("needs the broker this run started (not --url)")
                result, self.broker = await restart_scenario(
                    ctx, scenario, self.broker, self.workdir / "broker.log")
            else:
                result = await self.run_wrk_scenario(ctx, scenario)
        except Skip as exc:
            result = ScenarioResult(scenario.name, status="skipped", reason=str(exc),
                                    description=scenario.description, unit=scenario.unit)
        except EXPECTED_FAILURES as exc:
            result = ScenarioResult(scenario.name, status="error",
                                    reason=f"{type(exc).__name__}: {exc}"[:300],
                                    description=scenario.description, unit=scenario.unit)
        if self.broker is not None:
            result.rss_mb = self.broker.rss_mb()
            result.extra["broker_alive"] = all(p.poll() is None for p in self.broker.processes)
        if scenario.target is not None:
            result.target = scenario.target.text
            if result.status == "ok" and not self.args.smoke:  # smoke: no thresholds
                result.target_met = target_met(scenario, result)
        print(f"   {result.status} {result.reason}".rstrip(), file=sys.stderr, flush=True)
        return result

    async def run(self) -> list[ScenarioResult]:
        await self.ceiling()
        results = []
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            loader = DatasetLoader(self.base_url)
            ctx = BenchContext(self.base_url, self.run_id, session, loader, pool=self.plan.pool)
            if self.broker is not None and not self.args.store:
                ctx.store_file = self.workdir / "broker.db"
            for scenario in self.plan.scenarios:
                if self.broker is not None:
                    try:
                        self.broker.check_alive()
                    except RuntimeError as exc:
                        results.append(ScenarioResult(scenario.name, status="error",
                                                      reason=str(exc).splitlines()[0]))
                        continue
                results.append(await self.run_one(ctx, scenario))
            if loader.loaded:
                rate = loader.loaded / loader.load_seconds if loader.load_seconds else 0
                self.meta["dataset_load"] = (
                    f"{loader.loaded:,} entities by batch upsert in {loader.load_seconds:.1f} s "
                    f"({rate:,.0f} entities/s)")
            self.meta["notes"].extend(ctx.notes)
        return results


def target_met(scenario: Scenario, result: ScenarioResult) -> bool | None:
    """Whether ``result`` meets its scenario's target (None: not measured)."""
    target = scenario.target
    if target is None:
        return None
    verdicts: list[bool | None] = []
    if scenario.kind in ("notify", "fanout", "probe"):
        verdicts.append(target.latency_met(result.p50_ms, result.p99_ms, result.lost))
    if target.min_rate is not None or target.min_ratio is not None or target.max_rate is not None:
        verdicts.append(target.met(result.rate, result.ratio))
    if target.max_rss_mb is not None:
        verdicts.append(None if result.rss_mb is None else result.rss_mb < target.max_rss_mb)
    if False in verdicts:
        return False
    return None if not verdicts or None in verdicts else True


def write_reports(output: Path, results: list[ScenarioResult], meta: dict[str, Any]) -> str:
    """Write Markdown and JSON (timestamped and ``latest``); return the Markdown."""
    output.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(results, meta)
    data = render_json(results, meta)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for stem in (f"run-{stamp}", "latest"):
        (output / f"{stem}.md").write_text(markdown)
        (output / f"{stem}.json").write_bytes(data)
    return markdown


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    plan = make_plan(args)
    if args.list:
        for scenario in plan.scenarios:
            print(f"{scenario.name:24} {scenario.description}")
        return 0
    if not plan.scenarios:
        print(f"no scenario matches {args.scenario}", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="ngsi-ld-bench-") as tmp:
            bench = Bench(args, plan, Path(tmp))
            try:
                asyncio.run(bench.start())
                results = asyncio.run(bench.run())
            finally:
                bench.stop()
    except (WrkError, RuntimeError) as exc:
        print(f"benchmarks: {exc}", file=sys.stderr)
        return 2
    print(write_reports(args.output, results, bench.meta))
    return 0

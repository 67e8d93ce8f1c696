"""``python -m benchmarks.bound``: how fast the write scenarios could be served with the
broker's store work and next to no Python of its own, beside the broker and the baseline.

The suite's runner (``benchmarks.suite.runner.Bench``) starts the baseline and the
broker pinned as ``python -m benchmarks`` does; this command adds one bound
application (``bound_app``) per variant on the same core, each on a store file of its
own, and runs every scenario's closed loop (wrk, the suite's templates and settings)
against the broker, the baseline and each bound in turn, ``--rounds`` times, keeping
the median rate of each.  The table gives each one's rate and ratio to the baseline,
and the share of the target's time per request that the bound leaves to the broker's
own code: ``1 - target / bound`` (a ratio target: ``1 - T x baseline / bound``); at
or below zero, no broker code can reach the target with that store work.

    python -m benchmarks.bound --rounds 3 [--quick] [--no-history] [--variant no-geo-index]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.bound_app import VARIANT_FLAGS
from benchmarks.suite import servers
from benchmarks.suite.datasets import DatasetLoader
from benchmarks.suite.report import ScenarioResult, render_json
from benchmarks.suite.runner import RESULTS, Bench, make_plan, median_run
from benchmarks.suite.scenarios import BenchContext, Scenario
from benchmarks.suite.wrk import WrkError, WrkResult

SCENARIOS = ("create-entity", "update-attr", "streetlight-create", "streetlight-batch-upsert")
VARIANTS = ("full", *VARIANT_FLAGS)
DESCRIPTION = ("How fast the write scenarios could be served with the broker's store work "
               "and next to no Python of its own, beside the broker and the baseline.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bound",
                                     description=DESCRIPTION)
    parser.add_argument("--rounds", type=int, help="runs of each server a scenario, "
                        "alternated, median kept (default 3, smoke 1)")
    parser.add_argument("--quick", action="store_true", help="2 s a run, a pool of 200")
    parser.add_argument("--smoke", action="store_true",
                        help="one round of 1 s runs, a pool of 100 (CI)")
    parser.add_argument("--duration", type=float,
                        help="seconds a run (default 4, quick 2, smoke 1)")
    parser.add_argument("--variant", action="append", choices=VARIANTS, default=[],
                        help="bound variants to run besides full (repeatable; default all)")
    for flag in VARIANT_FLAGS:  # --no-history ...: the same as --variant no-history
        parser.add_argument(f"--{flag}", action="append_const", const=flag, dest="variant",
                            help=f"run the bound variant {flag} (besides full)")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, default=[],
                        help="scenarios to run (repeatable; default the four)")
    parser.add_argument("--server-cpus", default="0", help="CPUs of the servers")
    parser.add_argument("--client-cpus", default="1", help="CPUs of wrk")
    parser.add_argument("--output", type=Path, default=RESULTS, help="directory of the reports")
    return parser


def suite_args(args: argparse.Namespace) -> argparse.Namespace:
    """What ``Bench`` and ``make_plan`` read, for the broker this command starts."""
    duration = args.duration or (1.0 if args.smoke else 2.0 if args.quick else 4.0)
    return argparse.Namespace(
        quick=args.quick, smoke=args.smoke, duration=duration,
        repeat=args.rounds or (1 if args.smoke else 3), million=False,
        scenario=list(args.scenario or SCENARIOS), url=None, store=None, workers=1,
        broker_arg=[], server_cpus=args.server_cpus, client_cpus=args.client_cpus)


def bound_command(port: int, store: Path, pool: int, variant: str, cpus: str | None,
                  event_loop: str) -> list[str]:
    """The command starting the bound application of ``variant``."""
    flags = [] if variant == "full" else [f"--{variant}"]
    return servers.pinned([sys.executable, "-m", "benchmarks.bound_app", "--port", str(port),
                           "--store", str(store), "--pool", str(pool),
                           "--event-loop", event_loop, *flags], cpus)


def left_share(scenario: Scenario, bound: float | None, baseline: float | None) -> float | None:
    """The share of the target's time a request (or entity) that the store work
    measured by ``bound`` leaves to the broker's own code (None: not measured)."""
    target = scenario.target
    if target is None or not bound:
        return None
    needed = target.min_rate or 0.0
    if target.min_ratio is not None and baseline:
        needed = max(needed, target.min_ratio * baseline)
    return 1 - needed / bound if needed else None


def left_share_cpu(scenario: Scenario, bound_us: float | None,
                   baseline_us: float | None) -> float | None:
    """:func:`left_share` from CPU time a request (or entity) instead of rates: the
    target's CPU budget (``baseline / T``, or ``1 / rate``) less the bound's, as a share
    of the budget.  Steadier than rates on a shared machine (servers pinned to one core:
    their threads' CPU time is the core's time)."""
    target = scenario.target
    if target is None or not bound_us:
        return None
    budgets = []
    if target.min_rate:
        budgets.append(1e6 / target.min_rate)
    if target.min_ratio and baseline_us:
        budgets.append(baseline_us / target.min_ratio)
    return 1 - bound_us / min(budgets) if budgets else None


class BoundBench(Bench):
    """The suite's run (baseline and broker started and pinned) with the bounds beside."""

    def __init__(self, args: argparse.Namespace, workdir: Path, variants: Sequence[str]) -> None:
        super().__init__(args, make_plan(args), workdir)
        self.variants = list(variants)
        self.bounds: dict[str, servers.ServerGroup] = {}

    async def start(self) -> None:
        await super().start()
        loop = servers.event_loop_of(self.args.broker_arg)
        for variant in self.variants:
            port = servers.free_port()
            self.bounds[variant] = servers.start_group(
                f"bound {variant}",
                [bound_command(port, self.workdir / f"bound-{variant}.db", self.plan.pool,
                               variant, self.server_cpus, loop)],
                f"http://127.0.0.1:{port}", self.workdir / f"bound-{variant}.log")
        for group in self.bounds.values():  # each prepares its rows with the broker first
            await servers.wait_ready(group, group.url + "/version", timeout_s=600)
        self.meta["bound_variants"] = self.variants

    def stop(self) -> None:
        super().stop()
        for group in self.bounds.values():
            group.stop()

    def server_pids(self) -> list[int]:
        return super().server_pids() + [p for g in self.bounds.values() for p in g.pids]

    async def measure(self, ctx: BenchContext, scenario: Scenario) -> ScenarioResult:
        """The scenario against every server, ``repeat`` rounds alternated."""
        print(f"-- {scenario.name}", file=sys.stderr, flush=True)
        spec = await scenario.build(ctx)
        status, size = await self.probe(ctx, spec)
        notes = []
        path, body = spec.render(0, f"{self.run_id}-probe")
        for variant, group in self.bounds.items():  # the bound answers as the broker did
            async with ctx.session.request(spec.method, group.url + path, data=body,
                                           headers=spec.headers) as resp:
                await resp.read()
                if resp.status != status:
                    notes.append(f"bound {variant} answered {resp.status}, the broker {status}")
        urls = {"broker": self.base_url, "baseline": self.baseline_url,
                **{variant: group.url for variant, group in self.bounds.items()}}
        groups = {"broker": self.broker, "baseline": self.baseline, **self.bounds}
        runs: dict[str, list[WrkResult]] = {name: [] for name in urls}
        cpu: dict[str, list[float]] = {name: [] for name in urls}
        sized = {"X-Bench-Size": str(size), "X-Bench-Status": str(status)}
        for _ in range(self.plan.repeat):
            for name, url in urls.items():
                before = _cpu(groups[name])
                run = await self.wrk(url, spec, scenario.name, scenario.connections,
                                     sized if name == "baseline" else None,
                                     duration=self.plan.duration)
                runs[name].append(run)
                if run.requests:  # the server's CPU a request (or entity), all threads
                    cpu[name].append(1e6 * (_cpu(groups[name]) - before)
                                     / (run.requests * scenario.per_request))
        rates = {name: median_run(r).rate * scenario.per_request for name, r in runs.items()}
        result = ScenarioResult(scenario.name, description=scenario.description,
                                unit=scenario.unit, rate=rates["broker"],
                                baseline_rate=rates["baseline"],
                                target=scenario.target.text if scenario.target else "")
        result.errors = sum(r.errors for rs in runs.values() for r in rs)
        cpu_us = {n: statistics.median(c) if c else None for n, c in cpu.items()}
        result.extra = {
            "rates": rates,
            "all_rates": {n: [x.rate * scenario.per_request for x in r] for n, r in runs.items()},
            "cpu_us": cpu_us,
            "all_cpu_us": cpu,
            "errors": {n: sum(x.errors for x in r) for n, r in runs.items()},
            "left_share_cpu": {n: left_share_cpu(scenario, cpu_us[n], cpu_us["baseline"])
                               for n in (*self.bounds, "broker")},
            "left_share": {n: left_share(scenario, rates[n], rates["baseline"])
                           for n in (*self.bounds, "broker")},
            "notes": notes}
        return result

    async def run_all(self) -> list[ScenarioResult]:
        await self.ceiling()
        results = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
            ctx = BenchContext(self.base_url, self.run_id, session,
                               DatasetLoader(self.base_url), pool=self.plan.pool)
            for scenario in self.plan.scenarios:
                results.append(await self.measure(ctx, scenario))
        return results


def _cpu(group: servers.ServerGroup | None) -> float:
    """CPU seconds the group's processes used so far (user and system, every thread)."""
    return 0.0 if group is None else servers.total_cpu_seconds(group.pids)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render_table(results: Sequence[ScenarioResult], variants: Sequence[str]) -> str:
    """The Markdown table: rates, ratios, and the share of the target left to the broker."""
    head = ["scenario", "target", "baseline", "broker (ratio)",
            *[f"bound {v} (ratio)" for v in variants],
            "left to the broker's code (full): by rate, by CPU",
            "CPU µs a request (entity): baseline, broker, bound full"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in results:
        rates: dict[str, float] = result.extra["rates"]
        base = rates["baseline"]
        cells = [result.name, result.target, f"{base:,.0f}",
                 f"{rates['broker']:,.0f} ({_pct(rates['broker'] / base if base else None)})"]
        cells += [f"{rates[v]:,.0f} ({_pct(rates[v] / base if base else None)}, left "
                  f"{_pct(result.extra['left_share'][v])})" for v in variants]
        cpu = result.extra["cpu_us"]
        cells += [f"{_pct(result.extra['left_share'].get('full'))}, "
                  f"{_pct(result.extra['left_share_cpu'].get('full'))}",
                  f"{_us(cpu['baseline'])}, {_us(cpu['broker'])}, {_us(cpu.get('full'))}"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r.name}: {n}" for r in results for n in r.extra["notes"]]
    errors = [f"- {r.name}: errors {r.extra['errors']}" for r in results if r.errors]
    return "\n".join(lines + notes + errors) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    variants = list(dict.fromkeys(["full", *args.variant] if args.variant else VARIANTS))
    try:
        with tempfile.TemporaryDirectory(prefix="ngsi-ld-bound-") as tmp:
            bench = BoundBench(suite_args(args), Path(tmp), variants)
            try:
                asyncio.run(bench.start())
                results = asyncio.run(bench.run_all())
            finally:
                bench.stop()
    except (WrkError, RuntimeError, OSError) as exc:
        print(f"benchmarks.bound: {exc}", file=sys.stderr)
        return 2
    meta: dict[str, Any] = dict(bench.meta, rounds=bench.plan.repeat)
    table = render_table(results, variants)
    header = (f"# Bound of the write scenarios, {meta.get('date')}\n\n{meta.get('machine')}; "
              f"{meta.get('pinning')}; {bench.plan.repeat} rounds of {bench.plan.duration:g} s "
              f"a server, medians; generator ceiling {meta.get('generator_ceiling')}\n\n")
    args.output.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for stem in (f"bound-{stamp}", "bound-latest"):
        (args.output / f"{stem}.md").write_text(header + table)
        (args.output / f"{stem}.json").write_bytes(render_json(results, meta))
    print(header + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

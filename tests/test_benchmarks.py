"""The benchmark suite's pure parts and its clients against local fake servers.

No timing is asserted: only parsing, statistics, request rendering, report
rendering, scenario selection and that the load clients count what they see.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.suite import (
    RequestSpec,
    ScenarioResult,
    Target,
    WrkError,
    build_parser,
    build_scenarios,
    make_plan,
    parse_wrk_output,
    percentile,
    render_json,
    render_markdown,
    render_template,
    select,
    summarize,
    wrk_command,
)
from benchmarks.suite.datasets import (
    LAT,
    LON,
    DatasetLoader,
    dataset_entity,
    near_paths,
    query_paths,
)
from benchmarks.suite.fanout import run_fanout
from benchmarks.suite.latency import count_probe, run_probe
from benchmarks.suite.notify import notified_values, run_notifications
from benchmarks.suite.openloop import raw_request, response_length, run_open_loop
from benchmarks.suite.runner import target_met
from benchmarks.suite.scenarios import BenchContext, Skip, streetlight_body
from benchmarks.suite.servers import baseline_command, broker_commands, event_loop_of, free_port
from benchmarks.suite.wrk import LUA_SCRIPT, parse_duration_ms
from broker.app import create_app
from broker.config import Settings

# --- wrk output ---------------------------------------------------------------------


def wrk_text(requests: int, seconds: float, rate: float, latencies: dict[str, str],
             socket: tuple[int, int, int, int] | None = None, non_2xx: int | None = None) -> str:
    """A report laid out as wrk 4.1 prints it with --latency."""
    lines = [
        "Running 10s test @ http://127.0.0.1:8080",
        "  1 threads and 32 connections",
        "  Thread Stats   Avg      Stdev     Max   +/- Stdev",
        "    Latency     5.21ms    1.02ms  30.11ms   91.00%",
        "    Req/Sec     6.12k   300.00     7.00k    70.00%",
        "  Latency Distribution",
        *(f"  {pct:>4}%   {value:>8}" for pct, value in latencies.items()),
        f"  {requests} requests in {seconds:.2f}s, 12.34MB read",
    ]
    if socket:
        connect, read, write, timeout = socket
        lines.append(f"  Socket errors: connect {connect}, read {read}, write {write}, "
                     f"timeout {timeout}")
    if non_2xx is not None:
        lines.append(f"  Non-2xx or 3xx responses: {non_2xx}")
    lines += [f"Requests/sec: {rate:>10.2f}", "Transfer/sec:      1.23MB", ""]
    return "\n".join(lines)


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@given(
    requests=st.integers(0, 10**9),
    seconds=st.floats(0.01, 1000, allow_nan=False),
    rate=st.floats(0, 10**6, allow_nan=False),
    values=st.lists(
        st.tuples(st.floats(0, 999, allow_nan=False), st.sampled_from(["us", "ms", "s"])),
        min_size=4, max_size=4),
    socket=st.none() | st.tuples(*[st.integers(0, 10**6)] * 4),
    non_2xx=st.none() | st.integers(0, 10**6),
)
def test_parse_wrk_output_recovers_every_figure(
    requests: int, seconds: float, rate: float, values: list[tuple[float, str]],
    socket: tuple[int, int, int, int] | None, non_2xx: int | None,
) -> None:
    latencies = {pct: f"{v:.2f}{unit}" for pct, (v, unit) in zip(("50", "75", "90", "99"), values,
                                                                  strict=True)}
    parsed = parse_wrk_output(wrk_text(requests, seconds, rate, latencies, socket, non_2xx))
    assert parsed.requests == requests
    assert parsed.duration_s == pytest.approx(round(seconds, 2))
    assert parsed.rate == pytest.approx(round(rate, 2))
    for (pct, (value, unit)) in zip(("p50", "p75", "p90", "p99"), values, strict=True):
        assert parsed.latency_ms[pct] == pytest.approx(round(value, 2) * UNIT_MS[unit])
    assert parsed.socket_errors == (sum(socket) if socket else 0)
    assert parsed.status_errors == (non_2xx or 0)
    assert parsed.errors == parsed.socket_errors + parsed.status_errors


def test_parse_wrk_output_without_totals_is_an_error() -> None:
    with pytest.raises(WrkError, match="no totals"):
        parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.parametrize("text", ["", "12", "1.5xs", "ms"])
def test_bad_wrk_duration_is_an_error(text: str) -> None:
    with pytest.raises(WrkError):
        parse_duration_ms(text)


def test_wrk_command_pins_and_passes_the_script_arguments(tmp_path: Path) -> None:
    paths = tmp_path / "p"
    command = wrk_command("http://127.0.0.1:9", method="PATCH", paths_file=paths, body_file=None,
                          count=7, run_id="r1", connections=16, duration_s=2.4,
                          headers={"Accept": "application/json"}, cpus="1")
    assert command[:3] == ["taskset", "-c", "1"]
    assert command[command.index("-c", 3) + 1] == "16"
    assert command[command.index("-d") + 1] == "2s"
    assert "Accept: application/json" in command
    assert command[command.index("--") + 1:] == ["PATCH", str(paths), "-", "7", "r1"]
    unpinned = wrk_command("http://x", method="GET", paths_file=paths, body_file=paths, count=1,
                           run_id="r", connections=1, duration_s=1, headers={})
    assert unpinned[0] == "wrk"
    assert unpinned[-3] == str(paths)


# --- statistics ---------------------------------------------------------------------

samples = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300)


@given(samples, st.floats(0, 100))
def test_percentile_is_the_nearest_rank(values: list[float], q: float) -> None:
    p = percentile(values, q)
    assert p in values
    at_or_below = sum(v <= p for v in values)
    below = sum(v < p for v in values)
    assert at_or_below >= q / 100 * len(values) - 1e-9
    assert below < max(1, q / 100 * len(values)) + 1e-9


@given(samples, st.floats(0, 100), st.floats(0, 100))
def test_percentile_grows_with_q(values: list[float], q1: float, q2: float) -> None:
    low, high = sorted((q1, q2))
    assert percentile(values, low) <= percentile(values, high)
    assert percentile(values, 100) == max(values)
    assert percentile(values, 0) == min(values)


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@given(samples)
def test_summarize_orders_its_figures(values: list[float]) -> None:
    summary = summarize(values)
    assert summary["p50"] <= summary["p90"] <= summary["p99"] <= summary["max"]  # type: ignore[operator]
    assert summarize([]) == {"p50": None, "p90": None, "p99": None, "max": None}


# --- request templates ----------------------------------------------------------------


@given(st.integers(1, 10**6), st.integers(1, 1000), st.text(alphabet="abc-0123", max_size=8))
def test_spec_rotates_over_paths_and_count(counter: int, count: int, uid: str) -> None:
    spec = RequestSpec("PATCH", ("/a/__N__", "/b/__UID__"), '{"v":__I__,"n":__N__}', count=count)
    path, body = spec.render(counter, uid)
    expected = f"/a/{counter % count}" if counter % 2 == 0 else f"/b/{uid}"
    assert path == expected
    assert orjson.loads(body or b"") == {"v": counter, "n": counter % count}


def test_render_template_leaves_other_text_alone() -> None:
    assert render_template("__ID__ __N__ __UID____I__", 3, "u", 9) == "__ID__ 3 u9"


def test_spec_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        RequestSpec("GET", ())
    with pytest.raises(ValueError):
        RequestSpec("GET", ("/x",), count=0)
    with pytest.raises(ValueError):
        RequestSpec("GET", ("/x\n/y",))


class Recorder:
    """A local server recording what it is sent."""

    def __init__(self, status: int = 200, body: bytes = b"{}") -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        self.status = status
        self.body = body

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.path_qs, await request.read()))
        return web.Response(status=self.status, body=self.body if self.status != 204 else None)

    async def __aenter__(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed")
async def test_lua_script_sends_what_the_spec_renders(tmp_path: Path) -> None:
    spec = RequestSpec("POST", ("/e/__N__?q=%22x%22", "/f/__UID__"),
                       '{"id":"__UID__","i":__I__,"n":__N__}', count=3)
    paths_file, body_file = spec.write_files(tmp_path, "t")
    recorder = Recorder()
    async with recorder as url:
        command = wrk_command(url, method=spec.method, paths_file=paths_file,
                              body_file=body_file, count=spec.count, run_id="run",
                              connections=1, duration_s=1, headers={})
        process = await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        await process.communicate()
    assert len(recorder.seen) > 5
    # wrk may render a request at start-up that it never sends: start at the first seen.
    first = orjson.loads(recorder.seen[0][2])["i"]
    assert first in (1, 2)
    for counter, (method, path, body) in enumerate(recorder.seen[:20], start=first):
        want_path, want_body = spec.render(counter, f"run-0-{counter}")
        assert (method, path, body) == ("POST", want_path, want_body)


# --- open-loop client -----------------------------------------------------------------


def test_response_length_handles_lengths_chunks_and_no_body() -> None:
    full = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    assert response_length(full) == (200, len(full))
    assert response_length(full[:-1]) is None
    assert response_length(full + b"HTTP/1.1") == (200, len(full))
    empty = b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n"
    assert response_length(empty) == (204, len(empty))
    chunked = b"HTTP/1.1 404 NF\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert response_length(chunked) == (404, len(chunked))
    assert response_length(chunked[:-2]) is None
    with pytest.raises(ValueError):
        response_length(b"garbage\r\n\r\n")


def test_raw_request_carries_headers_and_body() -> None:
    spec = RequestSpec("PATCH", ("/x/__N__",), '{"a":1}', count=2, headers={"X-A": "b"})
    raw = raw_request(spec, "h:1", 3, "u")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"PATCH /x/1 HTTP/1.1"
    assert b"X-A: b" in head and b"Content-Length: 7" in head
    assert body == b'{"a":1}'


@pytest.mark.parametrize("status", [200, 204, 404])
async def test_open_loop_sends_every_request_and_counts_errors(status: int) -> None:
    recorder = Recorder(status=status)
    spec = RequestSpec("PATCH", ("/e/__N__",), '{"i":__I__}', count=4)
    async with recorder as url:
        result = await run_open_loop(url, spec, rate=200, duration_s=0.25, run_id="r",
                                     connections=4)
    assert result.sent == 50
    assert len(result.latencies_ms) == 50 and all(v >= 0 for v in result.latencies_ms)
    assert result.status_errors == (50 if status >= 400 else 0)
    assert result.socket_errors == 0 and result.unfinished == 0
    assert sorted(orjson.loads(b)["i"] for _, _, b in recorder.seen) == list(range(1, 51))


# --- notifications --------------------------------------------------------------------


def test_notified_values_reads_normalized_and_key_values() -> None:
    payload = {"data": [
        {"id": "a", "temperature": {"type": "Property", "value": 7}},
        {"id": "b", "https://example.org/temperature": 8},
        {"id": "c", "temperature": [{"type": "Property", "value": 9.0}]},
        {"id": "d", "temperature": {"value": True}},
        {"id": "e"}, "junk",
    ]}
    assert notified_values(payload) == [7, 8, 9]
    assert notified_values(["not", "a", "notification"]) == []
    assert notified_values({"data": None}) == []


class FakeBroker:
    """Enough of a broker for the notification scenario: upsert, subscribe, PATCH."""

    def __init__(self, subscriptions: bool = True, drop_every: int = 0) -> None:
        self.subscriptions = subscriptions
        self.drop_every = drop_every
        self.endpoint: str | None = None
        self.patches = 0
        self.deleted = False

    def app(self) -> web.Application:
        async def upsert(request: web.Request) -> web.Response:
            return web.Response(status=201)

        async def subscribe(request: web.Request) -> web.Response:
            if not self.subscriptions:
                return web.Response(status=404)
            body = orjson.loads(await request.read())
            self.endpoint = body["notification"]["endpoint"]["uri"]
            return web.Response(status=201, headers={"Location": "/ngsi-ld/v1/subscriptions/s"})

        async def unsubscribe(request: web.Request) -> web.Response:
            self.deleted = True
            return web.Response(status=204)

        async def patch(request: web.Request) -> web.Response:
            body = orjson.loads(await request.read())
            self.patches += 1
            if self.endpoint and not (self.drop_every and self.patches % self.drop_every == 0):
                notification = {"type": "Notification", "data": [
                    {"id": request.match_info["id"], **body}]}
                async with aiohttp.ClientSession() as session, \
                        session.post(self.endpoint, data=orjson.dumps(notification)) as resp:
                    await resp.read()
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/ngsi-ld/v1/entityOperations/upsert", upsert)
        app.router.add_post("/ngsi-ld/v1/subscriptions", subscribe)
        app.router.add_delete("/ngsi-ld/v1/subscriptions/s", unsubscribe)
        app.router.add_patch("/ngsi-ld/v1/entities/{id}/attrs", patch)
        return app


async def _notify_against(fake: FakeBroker) -> Any:
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:
            ctx = BenchContext(f"http://127.0.0.1:{port}", "t", session, loader=None)  # type: ignore[arg-type]
            return await run_notifications(ctx, rate=100, duration_s=0.3, grace_s=1.0)
    finally:
        await runner.cleanup()


async def test_notifications_are_timed_and_none_lost() -> None:
    fake = FakeBroker()
    result = await _notify_against(fake)
    assert result.sent == 30 == fake.patches
    assert len(result.latencies_ms) == 30 and result.lost == 0
    assert fake.deleted


async def test_dropped_notifications_are_counted_lost() -> None:
    result = await _notify_against(FakeBroker(drop_every=3))
    assert result.sent == 30
    assert result.lost == 10


async def test_broker_without_subscriptions_is_skipped() -> None:
    with pytest.raises(Skip, match=r"feature not available \(HTTP 404 on probe\)"):
        await _notify_against(FakeBroker(subscriptions=False))


# --- scenarios, plans, report ---------------------------------------------------------


def _names(patterns: list[str]) -> list[str]:
    return [s.name for s in select(build_scenarios([1000, 100_000]), patterns)]


def test_select_by_substring_glob_or_all() -> None:
    every = _names([])
    assert len(every) == len(set(every))
    assert _names(["get-entity"]) == ["get-entity-json", "get-entity-ldjson"]
    assert _names(["geo"]) == ["geo-near-1km-100k", "geo-within-100k"]
    assert _names(["query*1k"]) == ["query-type-q-1k"]
    assert _names(["create", "notif"]) == ["create-entity", "streetlight-create", "notifications",
                                           "notifications-10k-subscriptions"]
    assert _names(["no-such-scenario"]) == []


def _plan(*argv: str) -> Any:
    args: argparse.Namespace = build_parser().parse_args(list(argv))
    return make_plan(args)


def test_plans_scale_with_the_mode() -> None:
    full, quick, smoke = _plan(), _plan("--quick"), _plan("--quick", "--smoke")
    assert full.sizes == [1000, 10_000, 100_000] and quick.sizes == [1000]
    assert smoke.duration < quick.duration < full.duration
    assert _plan("--duration", "2.5").duration == 2.5
    assert [s.name for s in _plan("--scenario", "batch").scenarios] == [
        "streetlight-batch-upsert", "batch-upsert-100", "batch-upsert-1000"]
    # --million: the restart and the query over a million entities, nothing else
    assert [s.name for s in _plan("--million").scenarios] == [
        "restart-1000k", "query-type-q-1000k"]


def test_workers_share_the_port_only_when_several() -> None:
    one = broker_commands(1234, "memory:", 1, None)
    three = broker_commands(1234, "memory:", 3, "0")
    assert len(one) == 1 and "--reuse-port" not in one[0]
    assert len(three) == 3
    assert all(c[:3] == ["taskset", "-c", "0"] and c[-2:] == ["--reuse-port", "true"]
               for c in three)


@given(st.floats(0, 1e5), st.floats(0.01, 1e5))
def test_target_checks_rate_and_ratio(rate: float, baseline: float) -> None:
    target = Target(2500, 0.5)
    assert target.met(rate, rate / baseline) == (rate >= 2500 and rate / baseline >= 0.5)
    assert Target().met(rate, None) is True
    assert target.met(None, None) is None


def test_report_shows_figures_ratio_and_skips() -> None:
    ok = ScenarioResult("get-entity-json", rate=3000.0, baseline_rate=6000.0, p50_ms=1.234,
                        p99_ms=45.67, errors=2, rss_mb=61.25, target=">= 5,000 req/s",
                        target_met=False)
    skipped = ScenarioResult("query-type-q-1k", status="skipped",
                             reason="feature not available (HTTP 405 on probe)")
    notify = ScenarioResult("notifications", unit="notifications/s", rate=10.0, lost=3)
    markdown = render_markdown([ok, skipped, notify], {"date": "2026-11-22", "machine": "m",
                                                       "notes": ["n1"]})
    rows = {line.split("|")[1].strip(): line for line in markdown.splitlines()
            if line.startswith("| ") and not line.startswith("| Scenario")}
    assert "3,000 req/s" in rows["get-entity-json"] and "50%" in rows["get-entity-json"]
    assert "1.23" in rows["get-entity-json"] and "45.7" in rows["get-entity-json"]
    assert "61.2" in rows["get-entity-json"] and "MISSED" in rows["get-entity-json"]
    assert "skipped: feature not available (HTTP 405 on probe)" in rows["query-type-q-1k"]
    assert "(3 lost)" in rows["notifications"]
    assert "- machine: m" in markdown and "note: n1" in markdown
    data = orjson.loads(render_json([ok, skipped], {"date": "d"}))
    assert data["results"][0]["ratio"] == pytest.approx(0.5)
    assert data["results"][1]["ratio"] is None
    assert data["meta"] == {"date": "d"}


@given(st.integers(1, 10**9), st.integers(1, 10**9))
def test_each_streetlight_report_carries_a_new_reading(i: int, j: int) -> None:
    # the batch upsert's template: request i reports powerConsumption i, the rest of
    # the Smart Data Models example as it is (a replacement of what is stored is not
    # what the scenario measures)
    template = streetlight_body("urn:ngsi-ld:Streetlight:b:__N__", "__I__")
    plain = orjson.loads(streetlight_body("urn:ngsi-ld:Streetlight:b:3"))
    sent = orjson.loads(render_template(template, 3, "u", i))
    assert sent["powerConsumption"] == {**plain["powerConsumption"], "value": i}
    assert {k: v for k, v in sent.items() if k != "powerConsumption"} == {
        k: v for k, v in plain.items() if k != "powerConsumption"}
    same = render_template(template, 3, "u", i) == render_template(template, 3, "u", j)
    assert same == (i == j)


# --- data sets ------------------------------------------------------------------------


@given(st.integers(0, 10**6))
def test_dataset_entities_are_deterministic_and_in_hong_kong(i: int) -> None:
    entity = dataset_entity(i)
    assert entity == dataset_entity(i)
    assert entity["id"].endswith(f":{i}")
    lon, lat = entity["location"]["value"]["coordinates"]
    assert LON[0] <= lon <= LON[1] and LAT[0] <= lat <= LAT[1]


def test_query_paths_are_encoded_and_limited() -> None:
    for path in (*query_paths(), *near_paths()):
        assert " " not in path and '"' not in path and "limit=20" in path


def test_query_paths_outnumber_the_answer_cache() -> None:
    from broker.service.caches import AnswerCache

    assert len(set(query_paths())) > AnswerCache().size  # rotation: an LRU never hits


def test_lua_script_is_shipped() -> None:
    assert LUA_SCRIPT.is_file()


def test_cpu_seconds_counts_work_and_unknown_pids() -> None:
    import os

    from benchmarks.suite.servers import cpu_seconds

    before = cpu_seconds(os.getpid())
    deadline = before + 0.05 if before is not None else 0
    total = 0
    while (cpu_seconds(os.getpid()) or 0) < deadline:
        total += sum(range(1000))
    after = cpu_seconds(os.getpid())
    assert before is not None and after is not None and after > before
    assert cpu_seconds(2**22 + 12345) is None


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=9))
def test_median_run_keeps_the_middle_rate(rates: list[float]) -> None:
    from benchmarks.suite.runner import median_run
    from benchmarks.suite.wrk import WrkResult

    runs = [WrkResult(requests=i, duration_s=1.0, rate=r) for i, r in enumerate(rates)]
    chosen = median_run(runs)
    assert chosen in runs
    assert sum(r < chosen.rate for r in rates) <= (len(rates) - 1) // 2
    assert sum(r > chosen.rate for r in rates) <= len(rates) // 2


def test_repeat_defaults_and_validation() -> None:
    assert _plan().repeat == 3 and _plan("--smoke").repeat == 1
    assert _plan("--repeat", "5").repeat == 5
    with pytest.raises(SystemExit):
        _plan("--repeat", "0")


# --- issue #19 scenarios: latency probes, many subscriptions, targets ---------------------


@given(st.floats(0, 200), st.floats(0, 200), st.integers(0, 3))
def test_latency_targets_check_p50_p99_and_losses(p50: float, p99: float, lost: int) -> None:
    target = Target(max_p50_ms=5, max_p99_ms=100, max_lost=0)
    assert target.latency_met(p50, p99, lost) == (p50 < 5 and p99 < 100 and lost == 0)
    assert target.latency_met(None, None, None) is None
    assert Target(max_p50_ms=20).latency_met(p50, None, None) == (p50 < 20)


def test_target_met_combines_what_the_scenario_measures() -> None:
    by_name = {s.name: s for s in build_scenarios([100_000])}
    probe = by_name["count-q-100k"]
    assert target_met(probe, ScenarioResult(probe.name, p50_ms=4.0, p99_ms=30.0)) is True
    assert target_met(probe, ScenarioResult(probe.name, p50_ms=6.0, p99_ms=6.0)) is False
    query = by_name["query-type-q-100k"]
    fast = ScenarioResult(query.name, rate=3300.0, baseline_rate=9000.0)
    assert target_met(query, fast) is True
    slow = ScenarioResult(query.name, rate=3300.0, baseline_rate=10000.0)
    assert target_met(query, slow) is False  # 33% of the baseline
    fan = by_name["notifications-10k-subscriptions"]
    assert target_met(fan, ScenarioResult(fan.name, p50_ms=3, p99_ms=80, lost=0)) is True
    assert target_met(fan, ScenarioResult(fan.name, p50_ms=3, p99_ms=80, lost=1)) is False
    restart, rss = (s for s in _plan("--million").scenarios)
    assert target_met(restart, ScenarioResult(restart.name, unit="s", rate=4.2)) is True
    assert target_met(restart, ScenarioResult(restart.name, unit="s", rate=5.5)) is False
    assert target_met(rss, ScenarioResult(rss.name, rss_mb=380.0)) is True
    assert target_met(rss, ScenarioResult(rss.name, rss_mb=None)) is None


@pytest.fixture
async def this_broker(unused_tcp_port: int) -> AsyncIterator[BenchContext]:
    """A benchmark context against this broker (memory store), served on a local port."""
    settings = Settings(store="memory:", outbound_allow="127.0.0.0/8")  # a local receiver
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    base_url = f"http://127.0.0.1:{unused_tcp_port}"
    try:
        async with aiohttp.ClientSession() as session:
            yield BenchContext(base_url, "t", session, DatasetLoader(base_url))
    finally:
        await runner.cleanup()


async def test_fanout_against_this_broker_notifies_each_update_once(
    this_broker: BenchContext,
) -> None:
    result = await run_fanout(this_broker, subscriptions=60, rate=50, duration_s=0.4,
                              grace_s=3.0)
    # every update matched exactly one of the five live subscriptions, no noise one
    assert result.sent == 20 and result.update_errors == 0
    assert result.lost == 0 and len(result.latencies_ms) == 20
    assert result.spurious == 0


async def test_probe_times_the_read_after_each_write(this_broker: BenchContext) -> None:
    await this_broker.loader.ensure(200)
    result = await run_probe(this_broker, count_probe(200), samples=5)
    assert len(result.latencies_ms) == 5 and result.errors == 0
    expected = sum(1 for i in range(200) if dataset_entity(i)["type"] == "Streetlight"
                   and dataset_entity(i)["lanternHeight"]["value"] == 10)
    assert result.count_header == str(expected)


@pytest.mark.parametrize(("args", "env", "expected"), [
    (None, None, "uvloop"),
    (["--event-loop", "asyncio"], None, "asyncio"),
    (["--temporal", "off", "--event-loop=asyncio"], None, "asyncio"),
    (None, "asyncio", "asyncio"),
    (["--event-loop", "uvloop"], "asyncio", "uvloop"),
])
def test_the_baseline_runs_on_the_brokers_event_loop(
        args: list[str] | None, env: str | None, expected: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if env is None:
        monkeypatch.delenv("NGSI_LD_EVENT_LOOP", raising=False)
    else:
        monkeypatch.setenv("NGSI_LD_EVENT_LOOP", env)
    kind = event_loop_of(args)
    assert kind == expected
    command = baseline_command(18100, None, kind)
    assert command[command.index("--event-loop") + 1] == expected


@pytest.mark.parametrize("kind", ["uvloop", "asyncio"])
async def test_the_baseline_answers_on_either_event_loop(kind: str) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *baseline_command(port, None, kind), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.post(f"http://127.0.0.1:{port}/any/path", data=b"{}",
                                            headers={"X-Bench-Size": "7"}) as resp:
                        assert resp.status == 200
                        assert await resp.read() == b'"xxxxx"'
                        break
                except aiohttp.ClientConnectionError:
                    assert process.returncode is None, await process.stderr.read()  # type: ignore[union-attr]
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("the baseline never answered")
    finally:
        process.terminate()
        await process.wait()

"""The bound application (``benchmarks/bound_app.py``) does the broker's store work and
not less: the same requests of each write scenario, sent to the bound and to the broker
(both in process, each on a store file the broker prepared the same way), leave the same
rows in the same tables, per entity, with documents and packs of the same sizes; each
variant leaves out exactly the rows it names.  And the command runs end to end.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.bound import left_share, left_share_cpu
from benchmarks.bound_app import Features, build_parser, features_of, make_app
from benchmarks.bound_rows import cut, prepare
from benchmarks.suite.datasets import DatasetLoader
from benchmarks.suite.scenarios import (
    BenchContext,
    Scenario,
    Target,
    build_create,
    build_streetlight_batch,
    build_streetlight_create,
    build_update,
    no_spec,
)
from benchmarks.suite.spec import RequestSpec
from broker.app import create_app
from broker.config import Settings
from storage.sqlite.pack_codec import decode as decode_packs

POOL = 12
#: requests of each scenario: the PATCHes go twice round the pool, the batches create
#: the ten id sets and replace some
REQUESTS = 24
#: per-entity tables and their id column
PER_ENTITY = {"entity_types": "id", "attr_values": "id", "geo_rows": "id",
              "temporal_entities": "entity_id", "temporal_types": "entity_id",
              "temporal_packs": "entity_id", "temporal_series": "entity_id"}
#: the tables each variant leaves without the served requests' rows
MISSING = {"full": (), "no-value-index": (), "no-attr-index": ("attr_values", "cells"),
           "no-geo-index": ("geo_rows", "geo_rtree", "geo_rtree_rowid", "cells"),
           "no-history": ("temporal_entities", "temporal_types", "temporal_packs",
                          "temporal_instances", "temporal_series", "pack_dicts")}


async def _specs(session: aiohttp.ClientSession, base: str, path: Path) -> list[RequestSpec]:
    """The four scenarios' request streams, their setup already done by ``prepare``."""
    ctx = BenchContext(base, "t", session, DatasetLoader(base), pool=POOL)
    ctx.prepared |= {"pool", "idle-subscription", "streetlight-context"}
    with closing(sqlite3.connect(path)) as conn:
        (ctx.streetlight_link,) = conn.execute("SELECT url FROM contexts").fetchone()
    return [await build(ctx) for build in (build_create, build_update,
                                           build_streetlight_create, build_streetlight_batch)]


async def _send(app: web.Application, path: Path) -> list[int]:
    """The scenarios' requests to ``app`` (a few at a time: writes grouped as under load)."""
    server = TestServer(app)
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    statuses: list[int] = []
    try:
        async with aiohttp.ClientSession() as session:
            for spec in await _specs(session, base, path):
                async def one(i: int, spec: RequestSpec = spec) -> int:
                    url, body = spec.render(i, f"testw1-0-{i}")
                    async with session.request(spec.method, base + url, data=body,
                                               headers=spec.headers) as resp:
                        await resp.read()
                        return resp.status
                for first in range(1, REQUESTS + 1, 6):
                    statuses += await asyncio.gather(*(one(i) for i in range(first, first + 6)))
    finally:
        await server.close()
    return statuses


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name NOT IN ('geo_rtree_node', 'geo_rtree_parent') ORDER BY name")]


def _bodies(conn: sqlite3.Connection) -> list[tuple[bytes, bytes]]:
    """Every pack's body as stored and as decoded (compressed packs: zstd frames)."""
    stored = [bytes(b) for (b,) in conn.execute("SELECT body FROM temporal_packs ORDER BY rowid")]
    return list(zip(stored, decode_packs(conn, stored), strict=True))


def _pack_sizes(conn: sqlite3.Connection) -> dict[str, int]:
    """Per entity, the length of its packs' JSON (the stored size depends on the
    dictionary each file trained on its own packs: storage/sqlite/pack_codec.py)."""
    sizes: dict[str, int] = {}
    rows = conn.execute("SELECT entity_id, body FROM temporal_packs ORDER BY rowid").fetchall()
    for (entity_id, _), body in zip(rows, decode_packs(conn, [bytes(b) for _, b in rows]),
                                    strict=True):
        sizes[entity_id] = sizes.get(entity_id, 0) + len(body)
    return sizes


def _picture(path: Path) -> dict[str, Any]:
    """What the comparison looks at in a store file."""
    with closing(sqlite3.connect(path)) as conn:
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in _tables(conn)}
        # the Points' cells: the value rows that are BLOBs but the marker (schema 11)
        counts["cells"] = conn.execute("SELECT COUNT(*) FROM attr_values WHERE"
                                       " typeof(val) = 'blob' AND val > x''").fetchone()[0]
        per_entity = {t: dict(conn.execute(f"SELECT {c}, COUNT(*) FROM {t} GROUP BY {c}"))
                      for t, c in PER_ENTITY.items()}
        per_entity["temporal_instances"] = dict(conn.execute(
            "SELECT s.entity_id, COUNT(*) FROM temporal_instances i JOIN temporal_series s"
            " ON s.sid = i.sid GROUP BY s.entity_id"))
        return {
            "counts": counts, "per_entity": per_entity,
            "stats": conn.execute("SELECT * FROM discovery_stats ORDER BY 1, 2, 3, 4").fetchall(),
            "docs": dict(conn.execute("SELECT id, length(doc) FROM entities")),
            "packs": _pack_sizes(conn),
            "frames": sum(decoded != stored for stored, decoded in _bodies(conn)),
            "indexes": {name for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index'")},
        }


_BROKER: dict[str, Any] = {}


async def _broker_side(tmp: Path) -> dict[str, Any]:
    """The broker's file after its preparation, and after the requests (computed once)."""
    if not _BROKER:
        path = tmp / "broker.db"
        await prepare(path, POOL)
        _BROKER["prepared"] = _picture(path)
        app = create_app(Settings(store=f"sqlite:///{path}", outbound_allow="127.0.0.0/8"))
        _BROKER["statuses"] = await _send(app, path)
        _BROKER["served"] = _picture(path)
    return _BROKER


def _near(a: dict[str, int], b: dict[str, int]) -> list[str]:
    assert a.keys() == b.keys()
    return [k for k in a if abs(a[k] - b[k]) > 0.1 * b[k]]


@pytest.mark.parametrize("variant", list(MISSING))
async def test_the_bound_writes_the_brokers_rows(variant: str, tmp_path: Path,
                                                 tmp_path_factory: pytest.TempPathFactory
                                                 ) -> None:
    broker = await _broker_side(tmp_path_factory.mktemp("broker"))
    path = tmp_path / "bound.db"
    flags = [] if variant == "full" else [variant]
    statuses = await _send(make_app(path, POOL, features_of(flags)), path)
    assert statuses == broker["statuses"]
    assert set(statuses) >= {201, 204}
    bound, served, prepared = _picture(path), broker["served"], broker["prepared"]
    missing = MISSING[variant]
    for table, count in served["counts"].items():
        if table in missing:  # none of the served requests' rows, and there were some
            assert bound["counts"][table] == prepared["counts"][table] <= count, table
            assert table.startswith("geo_") or prepared["counts"][table] < count, table
        else:
            assert bound["counts"][table] == count, table
    for table, rows in served["per_entity"].items():
        if table not in missing:
            assert bound["per_entity"][table] == rows, table
    assert bound["stats"] == served["stats"]
    assert _near(bound["docs"], served["docs"]) == []
    if variant != "no-history":
        assert _near(bound["packs"], served["packs"]) == []
        # both compress once their writer has trained its dictionary (a transaction's
        # packs more or less: the requests group differently under concurrency)
        assert served["frames"] > 0
        assert abs(bound["frames"] - served["frames"]) <= 0.1 * served["frames"]
    assert ("attr_values_value" in bound["indexes"]) == (variant != "no-value-index")
    assert bound["indexes"] - {"attr_values_value"} == served["indexes"] - {"attr_values_value"}


async def test_an_id_taken_or_unknown_is_refused_as_the_broker_does(tmp_path: Path) -> None:
    path = tmp_path / "bound.db"
    server = TestServer(make_app(path, POOL, Features()))
    await server.start_server()
    base = str(server.make_url("/ngsi-ld/v1/entities"))
    body = b'{"id":"urn:ngsi-ld:BenchCreate:x1","type":"BenchCreate"}'
    try:
        async with aiohttp.ClientSession() as session:
            statuses = []
            for method, url, data in (("POST", base, body), ("POST", base, body),
                                      ("PATCH", base + "/urn:ngsi-ld:BenchEntity:x/attrs",
                                       b'{"temperature":{"type":"Property","value":1}}'),
                                      ("POST", base, b'{"id":"urn:ngsi-ld:Other:1"}')):
                async with session.request(method, url, data=data) as resp:
                    statuses.append(resp.status)
    finally:
        await server.close()
    assert statuses == [201, 409, 404, 400]


@given(st.lists(st.binary(min_size=1, max_size=6), min_size=1, max_size=3),
       st.lists(st.binary(max_size=8), min_size=4, max_size=4),
       st.lists(st.binary(max_size=6), min_size=3, max_size=3))
def test_a_template_puts_the_values_where_its_needles_were(
        needles: list[bytes], gaps: list[bytes], values: list[bytes]) -> None:
    sample = gaps[0] + b"".join(n + g for n, g in zip(needles, gaps[1:], strict=False))
    try:
        template = cut(sample, *needles)
    except ValueError:  # a needle not found exactly once (in the rest of the sample)
        return
    assert template.render(*needles) == sample
    rendered = template.render(*values[:len(needles)])
    assert len(rendered) == len(sample) + sum(
        len(v) - len(n) for v, n in zip(values, needles, strict=False))


def test_cut_refuses_a_needle_not_there_once() -> None:
    with pytest.raises(ValueError):
        cut(b"abcabc", b"abc")
    with pytest.raises(ValueError):
        cut(b"abc", b"x")


@pytest.mark.parametrize(("target", "bound", "baseline", "left"), [
    (Target(min_ratio=0.35), 10_000.0, 20_000.0, 0.3),
    (Target(10_000), 12_500.0, 1.0, 0.2),
    (Target(10_000), 5_000.0, 1.0, -1.0),
    (Target(), 5_000.0, 1.0, None),
])
def test_the_share_left_to_the_broker(target: Target, bound: float, baseline: float,
                                      left: float | None) -> None:
    scenario = Scenario("s", "", no_spec, target=target)
    share = left_share(scenario, bound, baseline)
    assert share == pytest.approx(left) if left is not None else share is None
    # the same from CPU time: a core's microseconds a request are 1e6 / its rate
    share = left_share_cpu(scenario, 1e6 / bound, 1e6 / baseline)
    assert share == pytest.approx(left) if left is not None else share is None


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed")
@pytest.mark.parametrize(("environ", "loop", "scheduling"), [
    ({}, Settings().event_loop, Settings().thread_scheduling),
    ({"NGSI_LD_THREAD_SCHEDULING": "normal", "NGSI_LD_EVENT_LOOP": "asyncio"}, "asyncio",
     "normal"),
    ({"NGSI_LD_THREAD_SCHEDULING": "batch"}, Settings().event_loop, "batch"),
])
def test_the_bound_serves_as_the_broker_would_by_default(
        environ: dict[str, str], loop: str, scheduling: str) -> None:
    """Without flags, the bound takes the broker's defaults and environment: its event
    loop and thread scheduling are those of a broker started beside it."""
    args = build_parser(environ).parse_args(["--store", "bound.db"])
    assert (args.event_loop, args.thread_scheduling) == (loop, scheduling)
    flagged = build_parser(environ).parse_args(
        ["--store", "bound.db", "--thread-scheduling", "normal", "--event-loop", "uvloop"])
    assert (flagged.event_loop, flagged.thread_scheduling) == ("uvloop", "normal")


def test_the_bound_command_runs_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bound", "--smoke", "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
        cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    report = orjson.loads((tmp_path / "bound-latest.json").read_bytes())
    rows = {row["name"]: row for row in report["results"]}
    assert set(rows) == {"create-entity", "update-attr", "streetlight-create",
                         "streetlight-batch-upsert"}
    for row in rows.values():
        assert set(row["extra"]["rates"]) == {"broker", "baseline", "full", "no-history",
                                              "no-value-index", "no-geo-index", "no-attr-index"}
        assert row["extra"]["notes"] == []  # each bound answered the probe as the broker
        assert set(row["extra"]["cpu_us"]) == set(row["extra"]["rates"])
    table = (tmp_path / "bound-latest.md").read_text()
    assert all(f"| {name} |" in table for name in rows)

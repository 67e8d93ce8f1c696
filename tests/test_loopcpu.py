"""``python -m benchmarks.loopcpu``: its requests are answered as a client's would be.

The tool hands requests it builds itself to the application (no socket); its
figures mean something only if the broker treats them as real ones: the writes
answered 204/201, committed, and readable afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from benchmarks import loopcpu
from broker.app import create_app
from broker.config import Settings


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[web.Application]:
    app = create_app(Settings(store=f"sqlite:///{tmp_path / 'b.db'}"))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await loopcpu._prepare(app)
        yield app
    finally:
        await runner.cleanup()


async def _entity(app: web.Application, entity_id: str) -> tuple[int, object]:
    request = loopcpu._request("GET", f"{loopcpu.ENTITIES}/{entity_id}", b"")
    response = await app._handle(request)
    assert isinstance(response, web.Response)
    body = response.body
    return response.status, orjson.loads(body) if isinstance(body, bytes) else None


async def test_the_updates_it_sends_are_committed(app: web.Application) -> None:
    requests = loopcpu._requests(loopcpu.SCENARIOS["update-attr"], 5000, 40, "t")
    assert await loopcpu._send(app, requests) == 0
    status, entity = await _entity(app, "urn:ngsi-ld:BenchEntity:17")
    assert status == 200
    assert isinstance(entity, dict)
    # updates 5000..5039 go to the entities 0..39 of the pool: 17 got 5017
    assert entity["temperature"]["value"] == 5017


async def test_the_creations_it_sends_are_created(app: web.Application) -> None:
    requests = loopcpu._requests(loopcpu.SCENARIOS["create-entity"], 0, 20, "t")
    assert await loopcpu._send(app, requests) == 0
    status, entity = await _entity(app, "urn:ngsi-ld:BenchCreate:t-19")
    assert status == 200
    assert isinstance(entity, dict) and entity["status"]["value"] == "ok"


async def test_a_bad_request_counts_as_an_error(app: web.Application) -> None:
    bad = loopcpu._request("PATCH", f"{loopcpu.ENTITIES}/urn:ngsi-ld:BenchEntity:1/attrs",
                           b"{not json")
    assert await loopcpu._send(app, [bad]) == 1

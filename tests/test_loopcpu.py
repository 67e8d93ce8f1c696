"""``python -m benchmarks.loopcpu``: its requests are answered as a client's would be.

The tool hands requests it builds itself to the application (no socket); its
figures mean something only if the broker treats them as real ones: the writes
answered 204/201, committed, and readable afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from benchmarks import loopcpu
from broker.app import create_app
from broker.config import Settings


@pytest.fixture
async def prepared(tmp_path: Path) -> AsyncIterator[tuple[web.Application, str]]:
    """The application as the tool prepares it, and the Link of the hosted @context."""
    app = create_app(Settings(store=f"sqlite:///{tmp_path / 'b.db'}"))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        yield app, await loopcpu._prepare(app)
    finally:
        await runner.cleanup()


async def _entity(app: web.Application, entity_id: str) -> tuple[int, object]:
    request = loopcpu._request("GET", f"{loopcpu.ENTITIES}/{entity_id}", b"")
    response = await app._handle(request)
    assert isinstance(response, web.Response)
    body = response.body
    return response.status, orjson.loads(body) if isinstance(body, bytes) else None


async def _sent_then_read(prepared: tuple[web.Application, str], scenario: str, first: int,
                          count: int, entity_id: str) -> dict[str, Any]:
    """Send ``count`` requests of ``scenario`` (all answered without error), then GET one entity."""
    app, link = prepared
    requests = loopcpu._requests(loopcpu.SCENARIOS[scenario], first, count, "t", link)
    assert await loopcpu._send(app, requests) == 0
    status, entity = await _entity(app, entity_id)
    assert status == 200 and isinstance(entity, dict)
    return entity


async def test_the_updates_it_sends_are_committed(
        prepared: tuple[web.Application, str]) -> None:
    entity = await _sent_then_read(prepared, "update-attr", 5000, 40,
                                   "urn:ngsi-ld:BenchEntity:17")
    # updates 5000..5039 go to the entities 0..39 of the pool: 17 got 5017
    assert entity["temperature"]["value"] == 5017


async def test_the_creations_it_sends_are_created(prepared: tuple[web.Application, str]) -> None:
    entity = await _sent_then_read(prepared, "create-entity", 0, 20,
                                   "urn:ngsi-ld:BenchCreate:t-19")
    assert entity["status"]["value"] == "ok"


async def test_the_streetlights_it_sends_are_created_with_their_context(
        prepared: tuple[web.Application, str]) -> None:
    entity = await _sent_then_read(prepared, "streetlight-create", 0, 5,
                                   "urn:ngsi-ld:Streetlight:bench:t-4")
    # read without the Link: its terms expanded by the hosted @context, not the default one
    assert "https://smartdatamodels.org/dataModel.Streetlighting/powerState" in entity


async def test_the_batches_it_sends_create_then_replace_their_streetlights(
        prepared: tuple[web.Application, str]) -> None:
    # requests 3 and 13 carry the same 100 ids: the second replaces them
    entity = await _sent_then_read(prepared, "streetlight-batch-upsert", 3, 11,
                                   "urn:ngsi-ld:Streetlight:benchbatch:3:99")
    assert "https://smartdatamodels.org/dataModel.Streetlighting/powerState" in entity
    # each request reports a new reading (its number), as the suite's scenario does
    power = entity["https://smartdatamodels.org/dataModel.Streetlighting/powerConsumption"]
    assert power["value"] == 13
    assert loopcpu.PER_REQUEST["streetlight-batch-upsert"] == loopcpu.BATCH == 100


async def test_a_bad_request_counts_as_an_error(prepared: tuple[web.Application, str]) -> None:
    app, _ = prepared
    bad = loopcpu._request("PATCH", f"{loopcpu.ENTITIES}/urn:ngsi-ld:BenchEntity:1/attrs",
                           b"{not json")
    assert await loopcpu._send(app, [bad]) == 1

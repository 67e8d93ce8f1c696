"""``Cache-Control: no-cache`` (RFC 9111 5.2.1.4): no kept answer serves the request.

The broker keeps whole answers of reads while the store's data is unchanged
(Query Entities on the general path and on the direct lane, the discovery
reads, Retrieve Entity).  A request saying ``no-cache`` is answered afresh on
each of them; ``GET /metrics`` counts the requests served from kept answers, so
a client sees it: the same request repeated without the directive moves the
counter (each test checks that first, so it can fail), with it the counter
stays.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from broker.app import create_app
from broker.config import Settings
from broker.routes.query import PLANS
from ngsi_ld.headers import no_cache

E = "/ngsi-ld/v1/entities"
CAR = {"id": "urn:ngsi-ld:Car:1", "type": "Car", "speed": {"type": "Property", "value": 1}}
NO_CACHE = {"Cache-Control": "no-cache"}
#: what differs between two answers of the same request
PER_ANSWER = {"X-Request-Id", "Date"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(
            create_app(Settings(store=f"sqlite:///{tmp_path / 'b.db'}")))) as client:
        assert (await client.post(E, json=CAR)).status == 201
        yield client


async def _served(client: TestClient, name: str) -> int:
    """``ngsi_ld_<name>_total`` of ``GET /metrics``."""
    text = await (await client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith(f"ngsi_ld_{name}_total "):
            return int(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


async def _kept_then_fresh(client: TestClient, url: str, counter: str,
                           headers: dict[str, str] | None = None, kept: int = 2) -> None:
    """``url`` read three times without the directive (the counter moves by ``kept``),
    then three times with it (the counter stays); every answer the same (but the ``id`` a
    discovery answer is given each time it is made, 5.2.24)."""
    answers = []
    for fresh in (False, True):
        before = await _served(client, counter)
        for _ in range(3):
            response = await client.get(url, headers={**(headers or {}),
                                                      **(NO_CACHE if fresh else {})})
            assert response.status == 200
            body = await response.json()
            if isinstance(body, dict):
                body.pop("id", None)
            answers.append((body,
                            {k: v for k, v in response.headers.items()
                             if k.title() not in PER_ANSWER}))
        moved = await _served(client, counter) - before
        assert moved == (0 if fresh else kept), (fresh, moved)
    assert all(answer == answers[0] for answer in answers)


@pytest.mark.parametrize(("value", "expected"), [
    (None, False), ("", False), ("no-cache", True), ("No-Cache", True),
    ("max-age=0, no-cache", True), ("no-store", False), ("max-age=0", False),
    ("no-cache=\"x\"", True), ("  no-cache  ", True), ("no-cachex", False),
])
def test_the_directive_is_read(value: str | None, expected: bool) -> None:
    assert no_cache(value) is expected


async def test_a_query_of_the_direct_lane(client: TestClient) -> None:
    plans = client.app[PLANS]
    await _kept_then_fresh(client, f"{E}?type=Car&limit=10", "kept_query_answers_served")
    assert plans.hits == 5  # every read but the first was the lane's, fresh ones too


async def test_a_query_of_the_general_path(client: TestClient) -> None:
    # GeoJSON is off the direct lane's shape: the general path answers, its answer cache
    plans = client.app[PLANS]
    await _kept_then_fresh(client, f"{E}?type=Car", "kept_query_answers_served",
                           {"Accept": "application/geo+json"})
    assert plans.hits == 0


async def test_the_directive_among_others_and_repeated(client: TestClient) -> None:
    url = f"{E}?type=Car&limit=5"
    assert (await client.get(url)).status == 200
    before = await _served(client, "kept_query_answers_served")
    for value in ("max-age=0, NO-CACHE", "max-age=0"):  # the second: two field lines
        headers = [("Cache-Control", value)] + ([("Cache-Control", "no-cache")]
                                               if value == "max-age=0" else [])
        response = await client.get(url, headers=headers)
        assert response.status == 200
    assert await _served(client, "kept_query_answers_served") == before
    assert (await client.get(url, headers={"Cache-Control": "max-age=0"})).status == 200
    assert await _served(client, "kept_query_answers_served") == before + 1


async def test_the_discovery_reads(client: TestClient) -> None:
    await _kept_then_fresh(client, "/ngsi-ld/v1/types", "kept_discovery_answers_served")
    await _kept_then_fresh(client, "/ngsi-ld/v1/attributes?details=true",
                           "kept_discovery_answers_served")


async def test_a_retrieval(client: TestClient) -> None:
    # the first read fills the render cache, the second is kept, the third served kept
    await _kept_then_fresh(client, f"{E}/urn:ngsi-ld:Car:1", "kept_retrievals_served",
                           kept=1)

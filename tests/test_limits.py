"""Denial-of-service limits as a client meets them (docs/security.md, "Limits").

Each test is one finding of issue 17: a pattern that took seconds and gigabytes
to compile, an offset that overflowed the store, a slow upload held for ever and
an abandoned one counted as a server error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from broker.app import create_app
from broker.config import Settings

E = "/ngsi-ld/v1/entities"
BAD_DATA = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    c = TestClient(TestServer(create_app(Settings(store="memory:", body_timeout=0.5))))
    await c.start_server()
    yield c
    await c.close()


async def _problem(reply: object) -> dict[str, object]:
    body = await reply.json()  # type: ignore[attr-defined]
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize("params", [
    {"idPattern": "(.*){999999}"},
    {"type": "T", "q": 'name~="(.*){999997}"'},
    {"type": "T", "q": 'name~="((.*){999}){999}"'},
])
async def test_a_pattern_too_large_is_refused_while_the_broker_keeps_answering(
    client: TestClient, params: dict[str, str],
) -> None:
    async def version() -> int:
        return (await client.get("/version")).status

    bad = [client.get(E, params=params) for _ in range(3)]
    good = [version() for _ in range(20)]
    replies = await asyncio.wait_for(asyncio.gather(*bad, *good), timeout=30)
    for reply in replies[:3]:
        assert reply.status == 400
        assert (await _problem(reply))["type"] == BAD_DATA
    assert replies[3:] == [200] * 20


@pytest.mark.parametrize("name", ["offset", "limit"])
async def test_huge_integers_answer_400_before_the_store(client: TestClient, name: str) -> None:
    huge = "9223372036854775808"
    reply = await client.get(E, params={"type": "T", name: huge})
    assert reply.status == 400 and (await _problem(reply))["type"] == BAD_DATA
    reply = await client.post(f"/ngsi-ld/v1/entityOperations/query?{name}={huge}",
                              json={"type": "Query", "entities": [{"type": "T"}]})
    assert reply.status == 400 and (await _problem(reply))["type"] == BAD_DATA
    reply = await client.get("/ngsi-ld/v1/subscriptions", params={name: huge})
    assert reply.status == 400


async def test_sqlite_answers_400_to_a_huge_offset(tmp_path: object) -> None:
    settings = Settings(store=f"sqlite:///{tmp_path}/b.db")
    c = TestClient(TestServer(create_app(settings)))
    await c.start_server()
    try:
        reply = await c.get(E, params={"type": "T", "offset": "9223372036854775808"})
        assert reply.status == 400
        reply = await c.get(E, params={"type": "T", "offset": "2147483647"})
        assert reply.status == 200 and await reply.json() == []
    finally:
        await c.close()


async def _raw(client: TestClient) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(client.host, client.port)


HEAD = (b"POST /ngsi-ld/v1/entities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n")


async def test_a_slow_upload_is_answered_408_and_closed(client: TestClient) -> None:
    reader, writer = await _raw(client)
    writer.write(HEAD + b'{"id": "ur')  # 10 of the 1000 bytes announced
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)  # read() ends at the close
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"InvalidRequest" in answer
    writer.close()


@pytest.mark.parametrize("cancellation", [False, True])
async def test_a_client_that_goes_away_is_logged_at_info_and_not_counted_as_an_error(
    caplog: pytest.LogCaptureFixture, cancellation: bool,
) -> None:
    # as served by the command line (aiohttp's default: handlers are not cancelled when
    # their client goes away) and as by aiohttp's test server (they are)
    caplog.set_level(logging.INFO, logger="broker")
    runner = web.AppRunner(create_app(Settings(store="memory:")), access_log=None,
                           handler_cancellation=cancellation)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = TestClient(TestServer(web.Application()))  # only for its session
    session = client.session
    for _ in range(3):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HEAD + b'{"id": "ur')
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        await writer.wait_closed()
    for _ in range(100):
        async with session.get(f"http://127.0.0.1:{port}/metrics") as reply:
            metrics = await reply.text()
        if "ngsi_ld_client_disconnects_total 3" in metrics:
            break
        await asyncio.sleep(0.02)
    await client.close()
    await runner.cleanup()
    assert "ngsi_ld_client_disconnects_total 3" in metrics
    assert 'status="500"' not in metrics
    assert "client went away" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert 'status="499"' in metrics  # counted apart, under nginx's "client closed"

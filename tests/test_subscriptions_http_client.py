"""The lean HTTP/1.1 notification client (subscriptions.http_client) against real local servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from subscriptions.delivery import Delivery, DeliveryError, HttpSender
from subscriptions.http_client import HttpPool, ResponseError

BODY = b'{"id":"urn:ngsi-ld:Notification:1","data":[]}'


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[web.Request], list[bytes]]]:
    requests: list[web.Request] = []
    bodies: list[bytes] = []

    async def notify(request: web.Request) -> web.StreamResponse:
        requests.append(request)
        bodies.append(await request.read())
        if request.path == "/chunked":
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(b"accepted, ")
            await response.write(b"thanks")
            await response.write_eof()
            return response
        if request.path == "/empty":
            return web.Response(status=204)
        if request.path == "/refused":
            return web.Response(status=500, text="no")
        if request.path == "/close":
            return web.Response(text="bye", headers={"Connection": "close"})
        if request.path == "/slow":
            await asyncio.sleep(1)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", notify)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", requests, bodies
    await runner.cleanup()


async def raw_server(answer: Callable[[bytes], list[bytes]]) -> tuple[asyncio.Server, str]:
    """A TCP server writing ``answer(request head)`` chunks, then closing if told (b"")."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), 0)
            await reader.readexactly(length)
            for part in answer(head):
                if part == b"":
                    writer.close()
                    return
                writer.write(part)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def test_posts_the_body_and_headers_and_reuses_one_connection(receiver) -> None:
    base, requests, bodies = receiver
    pool = HttpPool()
    for n in range(5):
        status = await pool.post(f"{base}/notify?n={n}", {"Content-Type": "application/json",
                                 "Link": '<http://ctx>; rel="ctx"', "X-Tenant": "t1"}, BODY, 5)
        assert status == 200
    await pool.close()
    assert bodies == [BODY] * 5
    assert [r.query["n"] for r in requests] == ["0", "1", "2", "3", "4"]
    first = requests[0]
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["Link"] == '<http://ctx>; rel="ctx"' and first.headers["X-Tenant"] == "t1"
    assert first.headers["Host"] == base.removeprefix("http://")
    # one TCP connection served every request (keep-alive)
    assert len({r.transport.get_extra_info("peername") for r in requests}) == 1  # type: ignore


async def test_credentials_in_the_url_are_sent_as_basic_auth_not_as_host(receiver) -> None:
    base, requests, _ = receiver
    pool = HttpPool()
    host = base.removeprefix("http://")
    assert await pool.post(f"http://qu%40ntum:s3cr%3At@{host}/auth", {}, BODY, 5) == 200
    await pool.close()
    assert requests[0].headers["Host"] == host
    assert requests[0].headers["Authorization"] == "Basic cXVAbnR1bTpzM2NyOnQ="  # qu@ntum:s3cr:t


async def test_status_and_framing_of_the_answers(receiver) -> None:
    base, requests, _ = receiver
    pool = HttpPool()
    assert await pool.post(f"{base}/chunked", {}, BODY, 5) == 200
    assert await pool.post(f"{base}/empty", {}, BODY, 5) == 204
    assert await pool.post(f"{base}/refused", {}, BODY, 5) == 500
    assert await pool.post(f"{base}/close", {}, BODY, 5) == 200  # then a new connection
    assert await pool.post(f"{base}/after", {}, BODY, 5) == 200
    await pool.close()
    assert len(requests) == 5


async def test_many_notifications_at_once_each_get_their_answer(receiver) -> None:
    base, _, bodies = receiver
    pool = HttpPool()
    statuses = await asyncio.gather(*(pool.post(f"{base}/n", {}, b"%d" % n, 5)
                                      for n in range(50)))
    await pool.close()
    assert statuses == [200] * 50 and sorted(int(b) for b in bodies) == list(range(50))


async def test_interim_answers_trailers_and_close_delimited_bodies() -> None:
    answers = {
        b"/interim": [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 201 Created\r\n"
                      b"Content-Length: 2\r\n\r\nok"],
        b"/trailers": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                       b"3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n"],
        b"/old": [b"HTTP/1.0 202 Accepted\r\n\r\nwhatever the body", b""],
        b"/split": [b"HTTP/1.1 200 OK\r\nContent-", b"Length: 4\r\n\r\nab", b"cd"],
    }
    server, base = await raw_server(lambda head: answers[head.split(b" ")[1]])
    pool = HttpPool()
    try:
        for path, status in (("/interim", 201), ("/trailers", 200), ("/old", 202),
                             ("/split", 200), ("/interim", 201)):
            assert await pool.post(base + path, {}, BODY, 5) == status
    finally:
        await pool.close()
        server.close()


async def test_an_idle_connection_closed_by_the_server_is_replaced_once() -> None:
    served: list[int] = []

    def answer(head: bytes) -> list[bytes]:
        served.append(1)  # answer, then close: the pool still holds the connection
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b""]

    server, base = await raw_server(answer)
    pool = HttpPool()
    try:
        assert await pool.post(base + "/a", {}, BODY, 5) == 200
        await asyncio.sleep(0.05)
        assert await pool.post(base + "/b", {}, BODY, 5) == 200
        assert len(served) == 2
    finally:
        await pool.close()
        server.close()


async def test_garbage_an_early_close_and_a_silent_endpoint_are_errors() -> None:
    answers = {b"/garbage": [b"SPDY/9 what\r\n\r\n"], b"/cut": [b"HTTP/1.1 200 OK\r\n", b""],
               b"/short": [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", b""],
               b"/silent": []}
    server, base = await raw_server(lambda head: answers[head.split(b" ")[1]])
    pool = HttpPool()
    try:
        with pytest.raises(ResponseError):
            await pool.post(base + "/garbage", {}, BODY, 5)
        for path in ("/cut", "/short"):
            with pytest.raises(ConnectionError):
                await pool.post(base + path, {}, BODY, 5)
        with pytest.raises(TimeoutError):
            await pool.post(base + "/silent", {}, BODY, 0.2)
        with pytest.raises(ValueError):
            await pool.post("http:///nohost", {}, BODY, 1)
    finally:
        await pool.close()
        server.close()


async def test_the_sender_maps_every_failure_to_a_delivery_error(receiver) -> None:
    base, _, _ = receiver
    sender = HttpSender()
    try:
        await sender.send(f"{base}/fine", {"Content-Type": "application/json"}, BODY, 5)
        with pytest.raises(DeliveryError, match="HTTP 500"):
            await sender.send(f"{base}/refused", {}, BODY, 5)
        with pytest.raises(DeliveryError, match="did not answer within"):
            await sender.send(f"{base}/slow", {}, BODY, 0.2)
        with pytest.raises(DeliveryError, match=r"ConnectionRefusedError|OSError"):
            await sender.send("http://127.0.0.1:9/nobody", {}, BODY, 2)
        # https:// goes through the aiohttp session; its failures map the same way
        with pytest.raises(DeliveryError, match=r"https://127\.0\.0\.1:9/nobody: Client"):
            await sender.send("https://127.0.0.1:9/nobody", {}, BODY, 2)
        with pytest.raises(DeliveryError, match=r"https://.*: Client"):  # plain HTTP answers
            await sender.send(base.replace("http://", "https://") + "/tls", {}, BODY, 2)
    finally:
        await sender.close()


# Strict framing (issue 14): each malformed answer fails the attempt and drops the
# connection; the next notification opens a new one.
MALFORMED = {
    b"/negative-length": [b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n"],
    b"/conflicting-lengths": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                              b"Content-Length: 3\r\n\r\nokk"],
    b"/negative-chunk": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"-5\r\nhello\r\n0\r\n\r\n"],
    b"/chunked-substring": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: notchunked\r\n\r\n"
                            b"0\r\n\r\n"],
}


@pytest.mark.parametrize("path", sorted(MALFORMED))
async def test_a_malformed_answer_drops_the_connection_and_fails(path: bytes) -> None:
    peers: list[object] = []

    def answer(head: bytes) -> list[bytes]:
        wanted = head.split(b" ")[1]
        if wanted == b"/fine":
            return [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
        return MALFORMED[wanted]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername"))
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            for part in answer(head):
                writer.write(part)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    pool = HttpPool()
    sender = HttpSender()
    try:
        assert await pool.post(base + "/fine", {}, BODY, 5) == 200
        with pytest.raises(ResponseError):
            await pool.post(base + path.decode(), {}, BODY, 5)
        # the connection that carried the malformed answer is not reused
        assert await pool.post(base + "/fine", {}, BODY, 5) == 200
        assert len(peers) == 2
        with pytest.raises(DeliveryError, match="ResponseError"):  # the attempt failed
            await sender.send(base + path.decode(), {}, BODY, 5)
    finally:
        await pool.close()
        await sender.close()
        server.close()


async def test_a_failed_attempt_is_counted_and_recorded() -> None:
    def answer(head: bytes) -> list[bytes]:
        return MALFORMED[b"/negative-length"]

    server, base = await raw_server(answer)
    delivery = Delivery(retries=1, backoff=0.01)
    try:
        with pytest.raises(DeliveryError, match="malformed answer"):
            await delivery.send({"uri": base + "/negative-length"}, {}, {"id": "n"})
    finally:
        await delivery.close()
        server.close()


async def test_a_header_that_would_inject_another_is_not_sent(receiver) -> None:
    base, requests, _ = receiver
    sender = HttpSender()
    try:
        with pytest.raises(DeliveryError, match="cannot be sent"):
            await sender.send(f"{base}/x", {"X-Info": "a\r\nX-Injected: 1"}, BODY, 5)
        with pytest.raises(DeliveryError, match="cannot be sent"):
            await sender.send(f"{base}/x", {"Bad Name": "a"}, BODY, 5)
    finally:
        await sender.close()
    assert requests == []

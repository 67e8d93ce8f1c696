"""Open-loop load: requests fired at a fixed rate, latency measured from the
scheduled send time, so a slow server cannot hide its queue (no coordinated omission).

wrk only knows the closed loop and Debian has no wrk2, so this is a small HTTP/1.1
client on asyncio protocols: a pool of keep-alive connections, requests due are
handed to idle connections or queued, a response is complete at Content-Length
(or the last chunk).  It is several times cheaper than aiohttp's client, which
matters when the generator has a single core.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from benchmarks.suite.spec import RequestSpec
from benchmarks.suite.stats import summarize


@dataclass
class OpenLoopResult:
    """Latencies (ms) of the requests that completed, and what went wrong."""

    target_rate: float
    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    status_errors: int = 0
    socket_errors: int = 0
    unfinished: int = 0
    duration_s: float = 0.0

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors + self.unfinished

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.duration_s if self.duration_s else 0.0

    def summary(self) -> dict[str, float | None]:
        return summarize(self.latencies_ms)


def response_length(buffer: bytes | bytearray) -> tuple[int, int] | None:
    """(status, total bytes) of the first complete HTTP/1.1 response in ``buffer``.

    None while incomplete.  Handles Content-Length, chunked bodies and bodiless
    statuses (1xx, 204, 304).
    """
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {lines[0]!r}")
    status = int(parts[1])
    body_start = end + 4
    if status in (204, 304) or status < 200:
        return status, body_start
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        total = body_start + int(headers["content-length"])
        return (status, total) if len(buffer) >= total else None
    if "chunked" in headers.get("transfer-encoding", "").lower():
        last = buffer.find(b"\r\n0\r\n\r\n", body_start - 2)
        return (status, last + 7) if last >= 0 else None
    raise ValueError("response without Content-Length or chunked encoding")


class _Connection(asyncio.Protocol):
    def __init__(self, on_done: Callable[[_Connection, int | None], None]) -> None:
        self.on_done = on_done
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.scheduled = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, request: bytes, scheduled: float) -> None:
        assert self.transport is not None
        self.busy = True
        self.scheduled = scheduled
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            done = response_length(self.buffer)
        except ValueError:
            self.on_done(self, None)
            return
        if done is not None:
            del self.buffer[: done[1]]
            self.busy = False
            self.on_done(self, done[0])

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.busy:
            self.busy = False
            self.on_done(self, None)


def raw_request(spec: RequestSpec, host: str, counter: int, uid: str) -> bytes:
    """Request number ``counter`` of ``spec`` as HTTP/1.1 bytes."""
    path, body = spec.render(counter, uid)
    lines = [f"{spec.method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in spec.headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def run_open_loop(
    base_url: str,
    spec: RequestSpec,
    *,
    rate: float,
    duration_s: float,
    run_id: str,
    connections: int = 64,
    timeout_s: float = 10.0,
    on_start: Callable[[float], None] | None = None,
) -> OpenLoopResult:
    """Send ``spec``'s requests at ``rate`` per second for ``duration_s`` seconds.

    Request ``i`` (from 1) is due at ``start + (i - 1) / rate``; its latency runs from
    then to the last byte of its response, waiting for a free connection included.
    ``on_start`` receives ``start`` (a ``time.perf_counter()`` value).
    """
    result = OpenLoopResult(target_rate=rate)
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    loop = asyncio.get_running_loop()
    idle: list[_Connection] = []
    queue: deque[tuple[bytes, float]] = deque()
    outstanding = 0

    def on_done(conn: _Connection, status: int | None) -> None:
        nonlocal outstanding
        outstanding -= 1
        if status is None:
            result.socket_errors += 1
            if conn.transport is not None:
                conn.transport.close()
            return
        if status >= 400:
            result.status_errors += 1
        result.latencies_ms.append((time.perf_counter() - conn.scheduled) * 1000)
        if queue:
            request, scheduled = queue.popleft()
            outstanding += 1
            conn.send(request, scheduled)
        else:
            idle.append(conn)

    pool = []
    for _ in range(connections):
        _, protocol = await loop.create_connection(lambda: _Connection(on_done), host, port)
        pool.append(protocol)
    idle.extend(pool)
    total = max(1, int(rate * duration_s))
    hostport = f"{host}:{port}"
    start = time.perf_counter()
    if on_start is not None:
        on_start(start)
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * rate) + 1)
        while sent < due:
            scheduled = start + sent / rate
            sent += 1
            request = raw_request(spec, hostport, sent, f"{run_id}-o-{sent}")
            while idle and idle[-1].transport is None:
                idle.pop()
            if idle:
                outstanding += 1
                idle.pop().send(request, scheduled)
            else:
                queue.append((request, scheduled))
        await asyncio.sleep(max(0.0, min(0.001, start + sent / rate - time.perf_counter())))
    result.sent = sent
    result.duration_s = time.perf_counter() - start
    deadline = time.perf_counter() + timeout_s
    while (outstanding or queue) and time.perf_counter() < deadline:
        if queue and not any(c.transport is not None for c in pool):
            break  # every connection died: the rest can never be sent
        await asyncio.sleep(0.005)
    result.unfinished = outstanding + len(queue)
    for conn in pool:
        if conn.transport is not None:
            conn.transport.close()
    return result

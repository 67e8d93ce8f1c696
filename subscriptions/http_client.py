"""A lean HTTP/1.1 client for notifications to plain ``http://`` endpoints.

A notification is one POST whose answer only matters by its status.  aiohttp's
client spends ~370 µs of CPU per POST on this machine (more than the broker
spends on the PATCH that caused it); this client writes the request in one
``write`` and reads the status line, the headers and the body framing, about
a tenth of that.  It keeps a pool of keep-alive connections per host and port
(one pool for the whole broker); ``https://`` and MQTT go through the other senders.

What it does with the answer (RFC 9112):

* the status code of the status line; 1xx interim answers are skipped;
* the body is read and discarded: ``Content-Length``, ``chunked``, or up to the
  close of the connection when neither is given; 204 and 304 have none;
* the connection goes back to the pool unless the server said
  ``Connection: close``, answered HTTP/1.0 without keep-alive, or ended the
  body by closing;
* a pooled connection the server closed while idle fails before any answer
  byte: the request is sent again once, on a new connection;
* ``user:password@`` in the URL is sent as Basic authentication, as aiohttp does.
"""

from __future__ import annotations

import asyncio
from base64 import b64encode
from urllib.parse import unquote, urlsplit

MAX_HEAD = 64 * 1024
#: idle connections kept per host and port
MAX_IDLE = 64


class ResponseError(Exception):
    """The endpoint's answer was not valid HTTP/1.1, or the connection ended early."""


class _Answer(asyncio.Protocol):
    """One connection: sends a request, parses the answer's framing."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None
        self._status = 0
        self._keep = True
        self._length: int | None = None  # bytes of body still expected
        self._chunked = False
        self._to_close = False  # body ends with the connection
        self._head_done = False
        self.received = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received = True
        self._buffer += data
        try:
            self._parse()
        except ResponseError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        if self._waiter is not None and self._head_done and self._to_close:
            self._keep = False
            self._done()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None:
            if self._head_done and self._to_close:
                self._keep = False
                self._done()
            else:
                self._fail(ConnectionResetError("the endpoint closed the connection"))

    # requests
    def send(self, raw: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._buffer.clear()
        self._head_done = self._chunked = self._to_close = self.received = False
        self._length = None
        self._keep = True
        self.transport.write(raw)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        return self._keep and not self.closed

    # parsing
    def _parse(self) -> None:
        while self._waiter is not None:
            if not self._head_done:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buffer) > MAX_HEAD:
                        raise ResponseError("the answer's header is too large")
                    return
                head = bytes(self._buffer[:end]).decode("latin-1")
                del self._buffer[:end + 4]
                if not self._head(head):
                    continue  # a 1xx interim answer: the final one follows
            if self._chunked:
                if not self._chunks():
                    return
            elif self._length is not None:
                if len(self._buffer) < self._length:
                    return
                del self._buffer[:self._length]
            elif self._to_close:
                self._buffer.clear()
                return
            self._done()
            return

    def _head(self, head: str) -> bool:
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ResponseError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(parts[1])
        if 100 <= status < 200:
            return False
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ResponseError(f"malformed header line {line[:80]!r}")
            fields[name.strip().lower()] = value.strip()
        connection = fields.get("connection", "").lower()
        self._keep = "close" not in connection and (
            parts[0] == "HTTP/1.1" or "keep-alive" in connection)
        self._status = status
        self._head_done = True
        if status in (204, 304):
            self._length = 0
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            self._chunked = True
        elif "content-length" in fields:
            try:
                self._length = int(fields["content-length"])
            except ValueError:
                raise ResponseError("a Content-Length that is not a number") from None
        else:
            self._to_close = True
        return True

    def _chunks(self) -> bool:
        while True:
            end = self._buffer.find(b"\r\n")
            if end < 0:
                return False
            size_text = bytes(self._buffer[:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ResponseError("a malformed chunk size") from None
            if size == 0:  # the last chunk, then optional trailer lines and an empty line
                rest = end + 2
                if self._buffer[rest:rest + 2] == b"\r\n":
                    del self._buffer[:rest + 2]
                    return True
                if len(self._buffer) < rest + 2:
                    return False
                trailer_end = self._buffer.find(b"\r\n\r\n", rest)
                if trailer_end < 0:
                    return False
                del self._buffer[:trailer_end + 4]
                return True
            if len(self._buffer) < end + 2 + size + 2:
                return False
            del self._buffer[:end + 2 + size + 2]

    def _done(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self._status)

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        self._keep = False
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()


class HttpPool:
    """Keep-alive connections per (host, port); ``post`` returns the answer's status."""

    def __init__(self, max_idle: int = MAX_IDLE) -> None:
        self.max_idle = max_idle
        self._idle: dict[tuple[str, int], list[_Answer]] = {}
        self._targets: dict[str, tuple[str, int, bytes]] = {}

    def _target(self, uri: str) -> tuple[str, int, bytes]:
        found = self._targets.get(uri)
        if found is None:
            parts = urlsplit(uri)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(f"not an http:// URL with a host: {uri!r}")
            port = parts.port or 80
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            netloc = parts.netloc.rpartition("@")[2]  # never send credentials as Host
            line = f"POST {path} HTTP/1.1\r\nHost: {netloc}\r\n"
            if parts.username is not None:  # user:password@ in the URL: Basic auth (RFC 7617)
                pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
                line += f"Authorization: Basic {b64encode(pair.encode()).decode()}\r\n"
            if len(self._targets) > 4096:
                self._targets.clear()
            found = self._targets[uri] = (parts.hostname, port, line.encode("latin-1"))
        return found

    async def post(self, uri: str, headers: dict[str, str], body: bytes, timeout: float) -> int:
        """POST ``body`` to ``uri`` (http only); the final status code."""
        host, port, line = self._target(uri)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        raw = b"".join((line, head.encode("latin-1"),
                        b"Content-Length: %d\r\n\r\n" % len(body), body))
        async with asyncio.timeout(timeout):
            answer = await self._connection(host, port)
            try:
                status = await self._exchange(answer, raw)
            except (ConnectionError, ResponseError):
                if not answer.reused or answer.received:
                    raise
                # the server closed the idle connection before this request: once more
                answer = await self._connection(host, port, fresh=True)
                status = await self._exchange(answer, raw)
        self._release(host, port, answer)
        return status

    @staticmethod
    async def _exchange(answer: _Answer, raw: bytes) -> int:
        try:
            return await answer.send(raw)
        except BaseException:  # an error, a timeout, a cancellation: never reused
            answer.close()
            raise

    async def _connection(self, host: str, port: int, *, fresh: bool = False) -> _Answer:
        idle = self._idle.get((host, port))
        while idle and not fresh:
            answer = idle.pop()
            if not answer.closed:
                answer.reused = True
                return answer
        loop = asyncio.get_running_loop()
        _, answer = await loop.create_connection(_Answer, host, port)
        return answer

    def _release(self, host: str, port: int, answer: _Answer) -> None:
        if not answer.reusable:
            answer.close()
            return
        idle = self._idle.setdefault((host, port), [])
        if len(idle) >= self.max_idle:
            answer.close()
            return
        idle.append(answer)

    async def close(self) -> None:
        for idle in self._idle.values():
            for answer in idle:
                answer.close()
        self._idle.clear()


__all__ = ["HttpPool", "ResponseError"]

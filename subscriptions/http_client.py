"""A lean HTTP/1.1 client for notifications to plain ``http://`` endpoints, framed by h11.

A notification is one POST whose answer only matters by its status.  aiohttp's
client spends ~370 µs of CPU per POST on this machine (more than the broker
spends on the PATCH that caused it); this client keeps a pool of keep-alive
connections per host and port (one pool for the whole broker), writes each
request in one ``write`` and lets h11 (a well-kept HTTP/1.1 state machine
without I/O) frame the answer.  ``https://`` and MQTT go through the other senders.

The rules (RFC 9112, as h11 enforces them):

* the status code of the final answer; 1xx interim answers are skipped;
* the body is read and discarded: ``Content-Length``, ``chunked``, or up to the
  close of the connection when neither is given; 204 and 304 have none;
* framing is strict: a ``Content-Length`` that is not a non-negative integer,
  several that disagree, a chunk size that is not hexadecimal, or a
  ``Transfer-Encoding`` other than exactly ``chunked`` is a
  :class:`ResponseError`: the connection is dropped and the attempt failed;
* the connection goes back to the pool only when h11 says both sides are done
  and the connection may be kept (not after ``Connection: close``, an HTTP/1.0
  answer without keep-alive, or a body ended by closing);
* the endpoint closing the connection before a complete answer is a
  ConnectionResetError; a pooled connection the server closed while idle
  fails before any answer byte: the request is sent again once, on a new
  connection;
* ``user:password@`` in the URL is sent as Basic authentication, as aiohttp does.
"""

from __future__ import annotations

import asyncio
from base64 import b64encode
from urllib.parse import unquote, urlsplit

import h11

__all__ = ["HttpPool", "ResponseError"]

MAX_HEAD = 64 * 1024
#: idle connections kept per host and port
MAX_IDLE = 64

_Headers = list[tuple[str, str]]


class ResponseError(Exception):
    """The endpoint's answer was not valid HTTP/1.1."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, follows the answer's events."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        #: some byte of an answer arrived (a retry would then not be safe)
        self.received = False
        self._http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self._waiter: asyncio.Future[int] | None = None
        self._status = 0
        self._eof = False
        self._keep = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received = True
        self._feed(data)

    def eof_received(self) -> bool:
        self._end()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._end()

    # requests
    def send(self, target: bytes, headers: _Headers, body: bytes) -> asyncio.Future[int]:
        """Write one POST; the future answers the final status code."""
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._status = 0
        self._keep = False
        http = self._http
        try:
            raw = http.send(h11.Request(method="POST", target=target, headers=headers))
            raw += http.send(h11.Data(data=body)) + http.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:  # a header the endpoint's URL or subscription gave
            self._fail(ResponseError(f"the request cannot be sent: {exc}"))
            return self._waiter
        self.transport.write(raw)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        return self._keep and not self.closed

    # answers
    def _end(self) -> None:
        if not self._eof:
            self._eof = True
            self._feed(b"")

    def _feed(self, data: bytes) -> None:
        if self._waiter is None:
            return  # nothing asked: bytes or a close while idle end the connection's use
        try:
            self._http.receive_data(data)
            self._events()
        except h11.RemoteProtocolError as exc:
            if not data:  # the close came before the answer was complete
                self._fail(ConnectionResetError(f"the endpoint closed the connection: {exc}"))
            else:
                self._fail(ResponseError(f"a malformed answer: {exc}"))

    def _events(self) -> None:
        while self._waiter is not None:
            event = self._http.next_event()
            if event is h11.NEED_DATA:
                if self._eof:
                    self._fail(ConnectionResetError("the endpoint closed the connection"))
                return
            if isinstance(event, h11.Response):
                self._status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                self._done()
                return
            elif isinstance(event, h11.ConnectionClosed):
                self._fail(ConnectionResetError("the endpoint closed the connection"))
                return
            # InformationalResponse (1xx) and Data: read on

    def _done(self) -> None:
        http = self._http
        if http.our_state is h11.DONE and http.their_state is h11.DONE:
            http.start_next_cycle()
            self._keep = True
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
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._targets: dict[str, tuple[str, int, bytes, _Headers]] = {}

    def _target(self, uri: str) -> tuple[str, int, bytes, _Headers]:
        found = self._targets.get(uri)
        if found is None:
            parts = urlsplit(uri)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(f"not an http:// URL with a host: {uri!r}")
            port = parts.port or 80
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            netloc = parts.netloc.rpartition("@")[2]  # never send credentials as Host
            fixed = [("Host", netloc)]
            if parts.username is not None:  # user:password@ in the URL: Basic auth (RFC 7617)
                pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
                fixed.append(("Authorization", f"Basic {b64encode(pair.encode()).decode()}"))
            if len(self._targets) > 4096:
                self._targets.clear()
            found = self._targets[uri] = (parts.hostname, port, path.encode("latin-1"), fixed)
        return found

    async def post(self, uri: str, headers: dict[str, str], body: bytes, timeout: float) -> int:
        """POST ``body`` to ``uri`` (http only); the final status code."""
        host, port, target, fixed = self._target(uri)
        fields = [*fixed, *headers.items(), ("Content-Length", str(len(body)))]
        async with asyncio.timeout(timeout):
            connection = await self._connection(host, port)
            try:
                status = await self._exchange(connection, target, fields, body)
            except (ConnectionError, ResponseError):
                if not connection.reused or connection.received:
                    raise
                # the server closed the idle connection before this request: once more
                connection = await self._connection(host, port, fresh=True)
                status = await self._exchange(connection, target, fields, body)
        self._release(host, port, connection)
        return status

    @staticmethod
    async def _exchange(connection: _Connection, target: bytes, fields: _Headers,
                        body: bytes) -> int:
        try:
            return await connection.send(target, fields, body)
        except BaseException:  # an error, a timeout, a cancellation: never reused
            connection.close()
            raise

    async def _connection(self, host: str, port: int, *, fresh: bool = False) -> _Connection:
        idle = self._idle.get((host, port))
        while idle and not fresh:
            connection = idle.pop()
            if not connection.closed:
                connection.reused = True
                return connection
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, host, port)
        return connection

    def _release(self, host: str, port: int, connection: _Connection) -> None:
        if not connection.reusable:
            connection.close()
            return
        idle = self._idle.setdefault((host, port), [])
        if len(idle) >= self.max_idle:
            connection.close()
            return
        idle.append(connection)

    async def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()

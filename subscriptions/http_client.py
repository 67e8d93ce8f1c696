"""A lean HTTP/1.1 client for notifications to plain ``http://`` endpoints, framed by h11.

A notification is one POST whose answer only matters by its status.  aiohttp's
client spends ~370 µs of CPU per POST on this machine (more than the broker
spends on the PATCH that caused it); this client keeps a pool of keep-alive
connections per host and port (one pool for the whole broker), writes each
request in one ``write`` and lets h11 (a well-kept HTTP/1.1 state machine
without I/O) frame the answer.  ``https://`` and MQTT go through the other senders.

The request is written here, not by h11: serialising it through h11 cost
~30 µs of the ~140 µs a notification took.  h11 is told that a POST went out
(a request event prepared once): how a POST's answer is framed depends on the
answer alone (RFC 9112 6.3), so h11 then frames it as if it had written the
request.  The header names and values written are checked as h11 would check
them (a token name, no CR, LF or NUL in a value): a subscription's
``receiverInfo`` cannot inject a header.

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
* ``user:password@`` in the URL is sent as Basic authentication, as aiohttp does;
* with an outbound policy (:class:`~subscriptions.ports.Outbound`), a new
  connection goes to one of the addresses the policy allowed for the host, never
  to a name resolved again (no DNS-rebinding gap); ``Host`` keeps the name.
"""

from __future__ import annotations

import asyncio
import re
from base64 import b64encode
from typing import cast
from urllib.parse import unquote, urlsplit

import h11

from subscriptions.ports import Outbound

__all__ = ["HttpPool", "ResponseError"]

MAX_HEAD = 64 * 1024
#: idle connections kept per host and port
MAX_IDLE = 64

#: what h11 is told was sent: a POST (its answer's framing depends on nothing else)
_POSTED = h11.Request(method="POST", target=b"/", headers=[("Host", "-"), ("Content-Length", "0")])
_END = h11.EndOfMessage()
#: RFC 9110 5.1 and 5.5: a field name is a token; a value has no CR, LF or NUL
_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_UNSAFE = re.compile(r"[\r\n\x00]")


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
        # a stream transport: uvloop's implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

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
    def send(self, raw: bytes) -> asyncio.Future[int]:
        """Write one POST (its bytes); the future answers the final status code."""
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._status = 0
        self._keep = False
        self._http.send(_POSTED)
        self._http.send(_END)
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

    def __init__(self, max_idle: int = MAX_IDLE, outbound: Outbound | None = None) -> None:
        self.max_idle = max_idle
        self.outbound = outbound
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._targets: dict[str, tuple[str, int, bytes]] = {}
        #: header fields already found safe (subscriptions send the same ones again)
        self._checked: set[tuple[str, str]] = set()

    def _target(self, uri: str) -> tuple[str, int, bytes]:
        found = self._targets.get(uri)
        if found is None:
            parts = urlsplit(uri)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(f"not an http:// URL with a host: {uri!r}")
            port = parts.port or 80
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            netloc = parts.netloc.rpartition("@")[2]  # never send credentials as Host
            if _UNSAFE.search(path) or " " in path or _UNSAFE.search(netloc):
                raise ValueError(f"not a URL a request line can carry: {uri!r}")
            line = f"POST {path} HTTP/1.1\r\nHost: {netloc}\r\n"
            if parts.username is not None:  # user:password@ in the URL: Basic auth (RFC 7617)
                pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
                line += f"Authorization: Basic {b64encode(pair.encode()).decode()}\r\n"
            if len(self._targets) > 4096:
                self._targets.clear()
            found = self._targets[uri] = (parts.hostname, port, line.encode("latin-1"))
        return found

    async def post(self, uri: str, headers: dict[str, str], body: bytes, timeout: float) -> int:
        """POST ``body`` to ``uri`` (http only); the final status code.

        ValueError for a URL or a header that cannot be sent as it is.
        """
        host, port, line = self._target(uri)
        checked = self._checked
        for field in headers.items():
            if field not in checked:
                name, value = field
                if not _NAME.fullmatch(name) or _UNSAFE.search(value):
                    raise ValueError(f"a header that cannot be sent: {name!r}")
                if len(checked) > 4096:
                    checked.clear()
                checked.add(field)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        raw = b"".join((line, head.encode("latin-1"),
                        b"Content-Length: %d\r\n\r\n" % len(body), body))
        async with asyncio.timeout(timeout):
            connection = await self._connection(host, port)
            try:
                status = await self._exchange(connection, raw)
            except (ConnectionError, ResponseError):
                if not connection.reused or connection.received:
                    raise
                # the server closed the idle connection before this request: once more
                connection = await self._connection(host, port, fresh=True)
                status = await self._exchange(connection, raw)
        self._release(host, port, connection)
        return status

    @staticmethod
    async def _exchange(connection: _Connection, raw: bytes) -> int:
        try:
            return await connection.send(raw)
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
        if self.outbound is None:
            _, connection = await loop.create_connection(_Connection, host, port)
            return connection
        addresses = await self.outbound.addresses(host, port)
        for address in addresses[:-1]:
            try:
                _, connection = await loop.create_connection(_Connection, address, port)
                return connection
            except OSError:
                continue  # the next address the name resolved to
        _, connection = await loop.create_connection(_Connection, addresses[-1], port)
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

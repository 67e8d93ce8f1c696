"""The forwarding client: one pooled aiohttp session, concurrent requests, each bounded.

Design (docs/federation.md, "The forwarding client"):

- **one session** for the process, created on first use inside the running
  loop and closed with the application; redirects are not followed (a source
  answering 3xx is an error, not a hop to a host nobody registered);
- **deadline per request**: the whole exchange (connect, send, read) is
  bounded by the request's timeout; a slow or dead source costs exactly that
  and becomes an :class:`Incoming` with ``timed_out``, never an exception;
- **concurrency**: the requests of one operation run together, at most
  ``concurrency`` at a time, so one query over many registrations cannot open
  a socket per registration at once;
- **size cap**: an answer is read up to ``max_bytes`` (6317_02_02 pins 16 MiB);
  more is ``too_big`` and its body is dropped;
- **policy**: :func:`broker.federation.policy.refusal` decides whether a URL
  may be called at all, before any connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from broker.federation.policy import refusal
from broker.outbound import OutboundPolicy

__all__ = ["MAX_ANSWER_BYTES", "ForwardingClient", "Incoming", "Outgoing", "header"]

log = logging.getLogger("broker.federation")

#: the largest answer a source may give (6317_02_02)
MAX_ANSWER_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One request to one source."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None = None
    #: seconds the whole exchange may take
    timeout: float = 5.0


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in a source's answer headers, whatever its case."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A source's answer; ``status`` None when there was none (timeout, refused, unreachable)."""

    status: int | None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    timed_out: bool = False
    too_big: bool = False
    #: why there was no usable answer (for the log and the warning text)
    reason: str = ""


class ForwardingClient:
    """Sends forwarded requests on one pooled session (see the module docstring)."""

    def __init__(self, *, outbound: OutboundPolicy | None = None,
                 max_bytes: int = MAX_ANSWER_BYTES, concurrency: int = 16,
                 connections: int = 256) -> None:
        #: the outbound request policy (None: every address may be called)
        self.outbound = outbound
        self.max_bytes = max_bytes
        self.concurrency = concurrency
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # names resolve through the policy: the connection goes to the address checked
            connector = aiohttp.TCPConnector(
                limit=self._connections, limit_per_host=64, keepalive_timeout=30,
                resolver=None if self.outbound is None else self.outbound.resolver())
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=True,
                # the deadline is ours (asyncio.timeout); aiohttp's default 5 min is not
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def close(self) -> None:
        """Close the pooled connections (at application cleanup)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, request: Outgoing) -> Incoming:
        """``request`` sent and answered within its timeout; never raises for the source's sake."""
        refused = refusal(request.url)
        if refused is not None:
            return Incoming(None, reason=refused)
        try:
            if self.outbound is not None:  # IP literals never reach the resolver
                self.outbound.check_literal(urlsplit(request.url).hostname or "")
            async with asyncio.timeout(request.timeout):
                return await self._exchange(request)
        except TimeoutError:
            return Incoming(None, timed_out=True, reason="no answer in time")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            log.info("forwarded %s %s failed: %s", request.method, request.url, exc)
            return Incoming(None, reason=f"{type(exc).__name__}: {exc}")

    async def _exchange(self, request: Outgoing) -> Incoming:
        async with self._pool().request(
            request.method, request.url, headers=list(request.headers), data=request.body,
            allow_redirects=False,
        ) as response:
            headers = {k: v for k, v in response.headers.items()}
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(65536):
                size += len(chunk)
                if size > self.max_bytes:
                    return Incoming(response.status, b"", headers, too_big=True,
                                    reason=f"answer larger than {self.max_bytes} bytes")
                chunks.append(chunk)
            return Incoming(response.status, b"".join(chunks), headers)

    async def send_all(self, requests: Sequence[Outgoing]) -> list[Incoming]:
        """Every request sent concurrently (at most ``concurrency`` at once), answers in order."""
        if not requests:
            return []
        if len(requests) == 1:
            return [await self.send(requests[0])]
        gate = asyncio.Semaphore(self.concurrency)

        async def bounded(request: Outgoing) -> Incoming:
            async with gate:
                return await self.send(request)

        return list(await asyncio.gather(*(bounded(r) for r in requests)))

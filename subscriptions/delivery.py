"""Sending notifications: HTTP(S) with one pooled session, MQTT(S) with aiomqtt,
and a bounded queue with one worker per subscription.

A :class:`Channel` keeps one subscription's notifications in order; its worker
only runs while it has work, so a slow or dead endpoint delays nothing but its
own subscription.  Retries and backoff are module-level defaults (the broker
may override them on :class:`Delivery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import orjson

from subscriptions.http_client import HttpPool, ResponseError
from subscriptions.ports import Outbound

log = logging.getLogger("broker.subscriptions")

#: seconds to wait for an endpoint when the subscription gives no ``endpoint.timeout``
DEFAULT_TIMEOUT = 10.0
#: further attempts after a failed one, before the notification counts as failed
RETRIES = 2
#: seconds before the first retry; doubled for each further one, up to BACKOFF_MAX
BACKOFF = 0.1
BACKOFF_MAX = 5.0
#: notifications waiting per subscription; beyond that they are counted as dropped
QUEUE_SIZE = 10_000
#: most entities one notification carries when changes queued for a subscription are sent
#: together (1: one notification per change)
BATCH_MAX = 50
#: the User-Agent of notifications sent over plain HTTP
USER_AGENT = "ngsi-ld-broker"
#: connections of the shared HTTP session (0 = unlimited); per host there is no limit
HTTP_CONNECTIONS = 1000


class DeliveryError(Exception):
    """A notification could not be delivered; the message says why."""


class HttpSender:
    """POSTs notifications: ``http://`` with the lean keep-alive pool of ``http_client``,
    ``https://`` with one pooled aiohttp session."""

    def __init__(self, outbound: Outbound | None = None) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self.outbound = outbound
        self.pool = HttpPool(outbound=outbound)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # with a policy, aiohttp connects to the addresses its resolver allowed
            resolver = self.outbound.resolver() if self.outbound is not None else None
            connector = aiohttp.TCPConnector(limit=HTTP_CONNECTIONS, limit_per_host=0,
                                             resolver=resolver)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def send(self, uri: str, headers: dict[str, str], body: bytes, timeout: float) -> None:
        """POST ``body``; DeliveryError unless the endpoint answers 2xx within ``timeout``."""
        try:
            if uri.startswith("http://"):
                if not any(name.lower() == "user-agent" for name in headers):
                    headers = {**headers, "User-Agent": USER_AGENT}
                status = await self.pool.post(uri, headers, body, timeout)
            else:
                status = await self._post_tls(uri, headers, body, timeout)
        except TimeoutError:  # before OSError, of which it is a subclass
            raise DeliveryError(f"{uri} did not answer within {timeout} s") from None
        except (aiohttp.ClientError, OSError, ResponseError, ValueError) as exc:
            raise DeliveryError(f"{uri}: {type(exc).__name__}: {exc}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"{uri} answered HTTP {status}")

    async def _post_tls(self, uri: str, headers: dict[str, str], body: bytes,
                        timeout: float) -> int:
        client_timeout = self._timeouts.get(timeout)
        if client_timeout is None:
            client_timeout = self._timeouts[timeout] = aiohttp.ClientTimeout(total=timeout)
        if self.outbound is not None:  # IP literals skip the resolver
            self.outbound.check_literal(urlsplit(uri).hostname or "")
        # a redirect is not followed: it would go where no policy looked (and 3xx is no 2xx)
        async with self.session().post(
            uri, data=body, headers=headers, timeout=client_timeout, allow_redirects=False
        ) as response:
            await response.read()
            return response.status

    async def close(self) -> None:
        await self.pool.close()
        if self._session is not None:
            await self._session.close()


class _PinnedName(ssl.SSLContext):
    """A default client TLS context that checks the certificate against ``name``,
    whatever address the connection was made to (paho passes the host it connects to)."""

    def __new__(cls, name: str) -> _PinnedName:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.load_default_certs()

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        kwargs["server_hostname"] = self.name
        return super().wrap_socket(*args, **kwargs)


class MqttSender:
    """Publishes notifications to MQTT brokers; one connection per broker and settings."""

    def __init__(self, outbound: Outbound | None = None) -> None:
        self._clients: dict[tuple[Any, ...], tuple[Any, contextlib.AsyncExitStack]] = {}
        self._locks: dict[tuple[Any, ...], asyncio.Lock] = {}
        self.outbound = outbound

    async def _client(self, key: tuple[Any, ...], timeout: float) -> Any:
        import aiomqtt

        found = self._clients.get(key)
        if found is not None:
            return found[0]
        scheme, host, port, user, password, version = key
        protocol = aiomqtt.ProtocolVersion.V5 if version == "mqtt5.0" else \
            aiomqtt.ProtocolVersion.V311
        port = port or (8883 if scheme == "mqtts" else 1883)
        tls = _PinnedName(host) if scheme == "mqtts" else None
        # with a policy: connect to an address it checked (each in turn), not to a name
        addresses = [host] if self.outbound is None else \
            await self.outbound.addresses(host, port)
        for n, address in enumerate(addresses):
            client = aiomqtt.Client(
                address, port, username=user,
                password=password, protocol=protocol, timeout=timeout, tls_context=tls,
            )
            stack = contextlib.AsyncExitStack()
            try:
                await asyncio.wait_for(stack.enter_async_context(client), timeout)
                break
            except (OSError, aiomqtt.MqttError):
                if n == len(addresses) - 1:
                    raise
        self._clients[key] = (client, stack)
        return client

    async def send(self, uri: str, metadata: dict[str, str], body: dict[str, Any],
                   notifier_info: dict[str, str], timeout: float) -> None:
        """Publish ``{"metadata": headers, "body": notification}`` on the URI's topic."""
        parts = urlsplit(uri)
        version = notifier_info.get("MQTT-Version", "mqtt3.1.1")
        qos = int(notifier_info.get("MQTT-QoS", "0"))
        key = (parts.scheme, parts.hostname, parts.port,
               unquote(parts.username) if parts.username else None,
               unquote(parts.password) if parts.password else None, version)
        topic = unquote(parts.path.lstrip("/"))
        payload = orjson.dumps({"metadata": metadata, "body": body})
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                client = await self._client(key, timeout)
            await client.publish(topic, payload, qos=qos, timeout=timeout)
        except Exception as exc:  # aiomqtt.MqttError, OSError, TimeoutError...
            await self._drop(key)
            raise DeliveryError(f"{uri}: {type(exc).__name__}: {exc}") from None

    async def _drop(self, key: tuple[Any, ...]) -> None:
        found = self._clients.pop(key, None)
        if found is not None:
            with contextlib.suppress(Exception):
                await found[1].aclose()

    async def close(self) -> None:
        for key in list(self._clients):
            await self._drop(key)


class Channel:
    """One subscription's queue of pending notifications and its worker.

    ``handle`` is awaited for each item in order; the worker task exists only
    while items are pending.  ``merge(a, b)``, if given, may fold the next queued
    item into the current one (returning the combination, or None to keep them apart):
    a subscriber that falls behind then gets fewer, fuller notifications, in order.
    """

    def __init__(self, handle: Callable[[Any], Awaitable[None]], size: int = QUEUE_SIZE,
                 merge: Callable[[Any, Any], Any] | None = None) -> None:
        self._handle = handle
        self._merge = merge
        self._items: deque[Any] = deque()
        self._size = size
        self._task: asyncio.Task[None] | None = None
        #: the item being handled (popped from the queue, not done yet)
        self._current: Any = None

    def __len__(self) -> int:
        return len(self._items) + (self._current is not None)

    def snapshot(self) -> list[Any]:
        """What is pending, in order: the item being handled, then the queue."""
        head = [] if self._current is None else [self._current]
        return head + list(self._items)

    def offer(self, item: Any) -> bool:
        """Queue ``item``; False (nothing queued) when the queue is full."""
        if len(self._items) >= self._size:
            return False
        self._items.append(item)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return True

    async def _run(self) -> None:
        while self._items:
            item = self._items.popleft()
            while self._merge is not None and self._items:
                merged = self._merge(item, self._items[0])
                if merged is None:
                    break
                item = merged
                self._items.popleft()
            self._current = item
            try:
                await self._handle(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification handler failed")
            self._current = None

    async def drain(self) -> None:
        """Wait until every queued item has been handled."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        self._items.clear()
        self._current = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Delivery:
    """Delivers one notification to its endpoint, with retries and backoff."""

    def __init__(self, *, retries: int = RETRIES, backoff: float = BACKOFF,
                 default_timeout: float = DEFAULT_TIMEOUT,
                 outbound: Outbound | None = None) -> None:
        self.retries = retries
        self.backoff = backoff
        self.default_timeout = default_timeout
        self.http = HttpSender(outbound)
        self.mqtt = MqttSender(outbound)

    async def send(self, endpoint: dict[str, Any], headers: dict[str, str],
                   body: dict[str, Any]) -> None:
        """Send once, retrying up to ``retries`` times; DeliveryError if every attempt failed."""
        uri = endpoint["uri"]
        timeout = endpoint["timeout"] / 1000 if "timeout" in endpoint else self.default_timeout
        raw = orjson.dumps(body)
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                if uri.startswith("mqtt"):
                    info = {i["key"]: i["value"] for i in endpoint.get("notifierInfo", ())}
                    await self.mqtt.send(uri, headers, body, info, timeout)
                else:
                    await self.http.send(uri, headers, raw, timeout)
                return
            except DeliveryError as exc:
                if attempt == self.retries:
                    raise
                log.info("notification to %s failed (%s); retrying in %.2f s", uri, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    async def close(self) -> None:
        await self.http.close()
        await self.mqtt.close()


__all__ = ["BACKOFF", "BATCH_MAX", "DEFAULT_TIMEOUT", "QUEUE_SIZE", "RETRIES", "Channel",
           "Delivery", "DeliveryError", "HttpSender", "MqttSender"]

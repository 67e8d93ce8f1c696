"""Resolving @context references into compiled contexts, without blocking.

Where a context document comes from, first match wins:

1. the bundled ETSI core contexts (never fetched);
2. contexts this broker hosts (clause 5.13: kinds Hosted and ImplicitlyCreated),
   recognised by their path ``/ngsi-ld/v1/jsonldContexts/{id}``, served locally;
3. the in-memory document cache, then the store's persisted copies (kind Cached),
   so a restart does not refetch;
4. the pre-load directory (``--context-dir``) for offline sites;
5. an HTTP(S) fetch with a timeout, a size limit and a redirect limit, to the
   addresses the outbound policy allows (``broker.outbound``, checked at every
   redirect); contexts that import contexts are followed for a bounded number of
   rounds, and one request may bring in a bounded number of remote contexts.
   A failed fetch is remembered for a short time (``failure_ttl``): retries
   within it are answered at once instead of waiting for the timeout again.

A document that cannot be had (no answer in time, refused connection, an
HTTP error, too large) answers 504 LdContextNotAvailable; one that is had but
is not a JSON-LD context (not JSON, no ``@context`` member) answers 400
BadRequestData, as clause 5.5.6 of v1.9.1 distinguishes the two.  The compiled
result (term maps, see ``ngsi_ld.jsonld``) is cached by context value.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yarl

from broker.outbound import OutboundPolicy, Refused
from ngsi_ld.errors import BadRequestData, InvalidRequest, LdContextNotAvailable
from ngsi_ld.jsonld import (
    ActiveContext,
    ContextCache,
    MissingContext,
    bundled_document,
    cache_key,
    compile_context,
    core_context_url,
    is_core_url,
    referenced_urls,
)
from ngsi_ld.timeutil import now_iso
from storage.base import ContextRecord, Store

log = logging.getLogger("broker.contexts")

HOSTED_PATH = "/ngsi-ld/v1/jsonldContexts/"
_HOSTED_RE = re.compile(r"^https?://[^/]+" + re.escape(HOSTED_PATH) + r"([A-Za-z0-9_.:-]+)$")
MAX_IMPORT_ROUNDS = 8
MAX_REDIRECTS = 3
MAX_DOCUMENTS = 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: what a client is told about any remote @context that could not be retrieved
_UNAVAILABLE = "@context {url} could not be retrieved"


class _Unavailable(Exception):
    """Why a download failed, for the log (the client hears only _UNAVAILABLE)."""


class ContextResolver:
    """Turns request context values into ActiveContexts; owns the context caches."""

    def __init__(
        self,
        store: Store,
        *,
        core_version: str = "1.8",
        base_url: str = "http://localhost:1026",
        timeout: float = 5.0,
        max_size: int = 1024 * 1024,
        cache_size: int = 512,
        preload_dir: str = "",
        session: Callable[[], aiohttp.ClientSession] | None = None,
        outbound: OutboundPolicy | None = None,
        failure_ttl: float = 10.0,
        max_remote: int = 32,
    ) -> None:
        self.store = store
        self.core_url = core_context_url(core_version)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_size = max_size
        self.compiled = ContextCache(cache_size)
        #: when the core context became available: the createdAt of its listing
        self.started_at = now_iso()
        self._documents: dict[str, Any] = {}
        #: (tenant, context key) -> URL of its ImplicitlyCreated record
        self._implicit: dict[tuple[str, bytes], str] = {}
        self._preloaded: dict[str, Path] = {}
        self._preload_dir = preload_dir
        self._session_factory = session
        self._own_session: aiohttp.ClientSession | None = None
        self._inflight: dict[str, asyncio.Future[tuple[Any, bool]]] = {}
        self._compile_thread: concurrent.futures.ThreadPoolExecutor | None = None
        #: where remote contexts may be fetched from (default: public addresses only)
        self.outbound = outbound if outbound is not None else OutboundPolicy()
        #: seconds a failed fetch is remembered; URL -> when it may be tried again
        self.failure_ttl = failure_ttl
        self._failed: dict[str, float] = {}
        #: most distinct remote context URLs one context value may bring in
        self.max_remote = max_remote

    async def start(self) -> None:
        """Index the pre-load directory (``index.json``: URL -> file name)."""
        if not self._preload_dir:
            return
        directory = Path(self._preload_dir)
        index = directory / "index.json"
        try:
            mapping = orjson.loads(await asyncio.to_thread(index.read_bytes))
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("context directory %s has no usable index.json: %s", directory, exc)
            return
        for url, name in mapping.items():
            self._preloaded[url] = directory / name
        log.info("%d pre-loaded @context URLs from %s", len(self._preloaded), directory)

    async def close(self) -> None:
        if self._own_session is not None:
            await self._own_session.close()
        if self._compile_thread is not None:
            self._compile_thread.shutdown(wait=False)
            self._compile_thread = None

    def _compiler(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._compile_thread is None:
            self._compile_thread = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="context-compiler"
            )
        return self._compile_thread

    # -- resolution ---------------------------------------------------------------
    def still_active(self, context: Any, ctx: ActiveContext) -> bool:
        """True while ``context`` compiles to ``ctx``: the cached compilation is that one
        (a context document invalidated or evicted since makes it False)."""
        return self.kept(context) is ctx

    def kept(self, context: Any) -> ActiveContext | None:
        """The compiled context of ``context`` if it is kept (what :meth:`active` answers
        at once), else None: a write on a short path reads it without a coroutine."""
        return self.compiled.get(cache_key(context, self.core_url))

    @property
    def generation(self) -> int:
        """Changes whenever a compiled context is dropped or replaced: while it holds,
        :meth:`still_active` stays True for what it answered True for."""
        return self.compiled.removals

    async def active(self, context: Any) -> ActiveContext:
        """The compiled context for a request's context value (None: core only).

        Remote documents fetched for it are remembered (in memory and in the store)
        only once the whole context compiled: a request refused (too many remote
        contexts, one unavailable, one invalid) leaves no trace in the caches.
        """
        key = cache_key(context, self.core_url)
        cached = self.compiled.get(key)
        if cached is not None:
            return cached
        documents: dict[str, Any] = {}
        fresh: dict[str, Any] = {}
        remote: set[str] = set()
        for _ in range(MAX_IMPORT_ROUNDS):
            missing = sorted(referenced_urls(context, documents))
            if not missing:
                break
            remote.update(u for u in missing if bundled_document(u, self.core_url) is None)
            if len(remote) > self.max_remote:  # refused before fetching them all
                raise BadRequestData(
                    f"the @context names more than {self.max_remote} remote contexts"
                )
            fetched = await asyncio.gather(*(self.document(url, fresh) for url in missing))
            documents.update(zip(missing, fetched, strict=True))
        else:
            raise LdContextNotAvailable(
                f"@context imports nest deeper than {MAX_IMPORT_ROUNDS} levels"
            )
        try:
            # pyld takes ~20 ms per 1,000 terms: off the event loop, one compilation
            # at a time (pyld's caches are not thread-safe)
            active = await asyncio.get_running_loop().run_in_executor(
                self._compiler(), compile_context, context, documents, self.core_url
            )
        except MissingContext as exc:  # a URL the rounds above could not foresee
            raise LdContextNotAvailable(f"@context {exc} could not be resolved") from None
        for url, document in fresh.items():
            await self._remember(url, document)
        self.compiled.put(key, active)
        return active

    async def document(self, url: str, fresh: dict[str, Any] | None = None) -> Any:
        """The JSON document behind a context URL, from the first source that has it.

        A document fetched from the network is added to ``fresh`` (the caller
        remembers it with :meth:`_remember` once it is sure to keep it); without
        ``fresh`` it is remembered at once.
        """
        bundled = bundled_document(url, self.core_url)
        if bundled is not None:
            return bundled
        if url in self._documents:
            return self._documents[url]
        failed = self._failed.get(url)
        if failed is not None:
            if failed > time.monotonic():  # negative cache: no new fetch for a while
                raise LdContextNotAvailable(_UNAVAILABLE.format(url=url))
            del self._failed[url]
        future = self._inflight.get(url)
        if future is None:  # nobody is fetching it yet
            future = asyncio.get_running_loop().create_future()
            self._inflight[url] = future
            try:
                future.set_result(await self._load(url))
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning
                raise
            finally:
                del self._inflight[url]
        document, fetched = await asyncio.shield(future)
        if not fetched:
            self._keep(url, document)
        elif fresh is not None:
            fresh[url] = document
        else:
            await self._remember(url, document)
        return document

    def _keep(self, url: str, document: Any) -> None:
        if len(self._documents) >= MAX_DOCUMENTS:
            self._documents.pop(next(iter(self._documents)))
        self._documents[url] = document

    async def _remember(self, url: str, document: Any) -> None:
        """Keep a fetched document in memory and in the store (kind Cached, 5.13)."""
        if url in self._documents:
            return
        self._keep(url, document)
        await self.store.put_context(
            ContextRecord(
                url=url,
                kind="Cached",
                document=document,
                created_at=now_iso(),
                extra={"localId": self._local_id(url)},
            )
        )

    async def _load(self, url: str) -> tuple[Any, bool]:
        """(document, fetched from the network?)"""
        hosted = _HOSTED_RE.match(url)
        if hosted:
            record = await self.store.get_context(self.hosted_url(hosted.group(1)))
            if record is not None and record.kind != "Cached":
                return record.document, False
        record = await self.store.get_context(url)
        if record is not None:
            return record.document, False
        path = self._preloaded.get(url)
        if path is not None:
            try:
                document = orjson.loads(await asyncio.to_thread(path.read_bytes))
                return self._check(url, document), False
            except (OSError, orjson.JSONDecodeError) as exc:
                log.warning("pre-loaded @context %s unreadable (%s); fetching", url, exc)
        try:
            return await self.fetch(url), True
        except LdContextNotAvailable:
            if self.failure_ttl > 0:
                if len(self._failed) >= MAX_DOCUMENTS:
                    self._failed.pop(next(iter(self._failed)))
                self._failed[url] = time.monotonic() + self.failure_ttl
            raise

    async def fetch(self, url: str) -> Any:
        """GET a remote context (http and https only) within the configured limits.

        Every hop (the URL and each redirect) is checked against the outbound
        policy and connects only to the addresses it allowed.  Whatever went wrong
        (refused by the policy, no answer in time, a refused connection, an HTTP
        error, too large), the client is told one thing, that the context is not
        available: the difference, which would let a client scan ports through the
        broker, goes to the log only.
        """
        try:
            raw = await self._download(url)
        except _Unavailable as exc:
            log.info("@context %s could not be retrieved: %s", url, exc)
            raise LdContextNotAvailable(_UNAVAILABLE.format(url=url)) from None
        try:
            return self._check(url, orjson.loads(raw))
        except orjson.JSONDecodeError:
            raise BadRequestData(f"@context {url} is not JSON") from None

    async def _download(self, url: str) -> bytearray:
        session = self._session()
        target = url
        try:
            async with asyncio.timeout(self.timeout):
                for _ in range(MAX_REDIRECTS + 1):
                    if not target.startswith(("http://", "https://")):
                        raise _Unavailable(f"{target!r}: only http and https URLs are fetched")
                    # IP literals skip the resolver, which checks every name
                    self.outbound.check_literal(yarl.URL(target).host or "")
                    async with session.get(
                        target, allow_redirects=False,
                        headers={"Accept": "application/ld+json, application/json;q=0.9"},
                    ) as response:
                        if response.status in _REDIRECTS and "Location" in response.headers:
                            target = str(response.url.join(yarl.URL(response.headers["Location"])))
                            continue
                        if response.status != 200:
                            raise _Unavailable(f"answered HTTP {response.status}")
                        raw = bytearray()
                        async for chunk in response.content.iter_chunked(65536):
                            raw += chunk
                            if len(raw) > self.max_size:
                                raise _Unavailable(f"larger than {self.max_size} bytes")
                        return raw
                raise _Unavailable(f"more than {MAX_REDIRECTS} redirects")
        except TimeoutError:
            raise _Unavailable(f"no answer within {self.timeout} s") from None
        except Refused as exc:
            raise _Unavailable(f"refused by the outbound policy: {exc.reason}") from None
        except aiohttp.ClientConnectorError as exc:
            cause = exc.os_error
            if isinstance(cause, Refused):
                raise _Unavailable(f"refused by the outbound policy: {cause.reason}") from None
            raise _Unavailable(str(exc) or type(exc).__name__) from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise _Unavailable(str(exc) or type(exc).__name__) from None

    @staticmethod
    def _check(url: str, document: Any) -> Any:
        # 5.5.6: a remote @context that was retrieved but is invalid is BadRequestData
        if not isinstance(document, dict) or "@context" not in document:
            raise BadRequestData(f"{url} is not a JSON-LD context (no @context member)")
        return document

    def _session(self) -> aiohttp.ClientSession:
        if self._session_factory is not None:
            return self._session_factory()
        if self._own_session is None or self._own_session.closed:
            # the policy's resolver: aiohttp connects to the addresses it allowed
            connector = aiohttp.TCPConnector(resolver=self.outbound.resolver())
            self._own_session = aiohttp.ClientSession(connector=connector)
        return self._own_session

    # -- hosting (clause 5.13) ---------------------------------------------------------
    def hosted_url(self, local_id: str) -> str:
        return f"{self.base_url}{HOSTED_PATH}{local_id}"

    @staticmethod
    def _local_id(url: str) -> str:
        return hashlib.sha256(url.encode()).hexdigest()[:32]

    async def response_url(self, context: Any, tenant: str = "") -> str:
        """The single URL to put in a response's Link header for a request context.

        An inline context is stored as ImplicitlyCreated (5.13.1) for ``tenant``, the
        tenant of the request that brought it: like a Hosted one, it is listed, served
        and deleted through that tenant only (5.5.10), while its URL resolves for any
        request that names it.  The local id is a hash of the context and the tenant,
        so two tenants sending the same inline context get a record each.
        """
        if context is None:
            return self.core_url
        if isinstance(context, str):
            return context
        key = cache_key(context, self.core_url)
        url = self._implicit.get((tenant, key))
        if url is None:
            # the default tenant's ids are the context's hash alone, as before tenants
            # owned implicit contexts: URLs handed out earlier keep resolving
            seed = key if not tenant else tenant.encode() + b"\0" + key
            local_id = hashlib.sha256(seed).hexdigest()[:32]
            url = self.hosted_url(local_id)
            if await self.store.get_context(url) is None:
                extra: dict[str, Any] = {"localId": local_id}
                if tenant:
                    extra["tenant"] = tenant
                await self.store.put_context(
                    ContextRecord(
                        url=url,
                        kind="ImplicitlyCreated",
                        document={"@context": context},
                        created_at=now_iso(),
                        extra=extra,
                    )
                )
            self._implicit[(tenant, key)] = url
        return url

    def body_context(self, context: Any) -> Any:
        """The @context member of an application/ld+json response (6.3.5).

        The context the request gave, as it gave it (a URL stays a string), or
        the core context when it gave none: the core context applies implicitly
        to every NGSI-LD document, so it is not appended (as Orion-LD answers).
        """
        return self.core_url if context is None else context

    async def add_hosted(self, document: Any, tenant: str = "") -> ContextRecord:
        """5.13.2 Add @context: store a client's context; it is served from the broker.

        The record remembers the tenant that added it: its management (serve,
        list, delete) is private to that tenant, its URL resolves for everyone.
        """
        if not isinstance(document, dict) or "@context" not in document:
            raise InvalidRequest("the body must be a JSON object with an @context member")
        if set(document) != {"@context"}:
            raise BadRequestData("the body must be a JSON object with @context as only member")
        value = document["@context"]
        if not isinstance(value, dict | list | str):
            raise BadRequestData("@context must be an object, an array or a URL")
        local_id = uuid.uuid4().hex
        # compile now: a context the broker cannot use is refused before it is stored
        await self.active(value)
        extra: dict[str, Any] = {"localId": local_id}
        if tenant:
            extra["tenant"] = tenant
        record = ContextRecord(
            url=self.hosted_url(local_id),
            kind="Hosted",
            document=document,
            created_at=now_iso(),
            extra=extra,
        )
        await self.store.put_context(record)
        return record

    def core_record(self, url: str | None = None) -> ContextRecord:
        """The core context (bundled, never fetched) as the Cached entry it is listed as."""
        url = url or self.core_url
        return ContextRecord(
            url=url,
            kind="Cached",
            document=bundled_document(url, self.core_url),
            created_at=self.started_at,
            extra={"localId": self._local_id(url), "core": True},
        )

    async def find(self, context_id: str) -> ContextRecord | None:
        """A stored context by local id, or by original URL for Cached ones; the core
        context by its URL (any bundled version) or local id."""
        if is_core_url(context_id):
            return self.core_record(context_id)
        if context_id == self._local_id(self.core_url):
            return self.core_record()
        record = await self.store.get_context(self.hosted_url(context_id))
        if record is not None:
            return record
        record = await self.store.get_context(context_id)
        if record is not None:
            return record
        for candidate in await self.store.list_contexts():
            if candidate.extra.get("localId") == context_id:
                return candidate
        return None

    async def forget(self, record: ContextRecord) -> None:
        """Remove a stored context and everything compiled from it."""
        await self.store.delete_context(record.url)
        self.invalidate(record.url)

    def invalidate(self, url: str) -> None:
        """Drop what this process remembers of ``url`` (changed here or by another process)."""
        self._documents.pop(url, None)
        self.compiled.invalidate(url)
        if url in self._implicit.values():
            self._implicit = {k: v for k, v in self._implicit.items() if v != url}

    async def reload(self, record: ContextRecord) -> ContextRecord:
        """5.13.5 with reload=true: download a Cached context again and replace it.

        5.13.5.4: a download that fails or brings an invalid @context raises
        LdContextNotAvailable and leaves the stored one as it was.
        """
        try:
            document = await self.fetch(record.url)
        except BadRequestData as exc:
            raise LdContextNotAvailable(f"reloading {record.url}: {exc.detail}") from None
        fresh = ContextRecord(
            url=record.url,
            kind="Cached",
            document=document,
            created_at=now_iso(),
            extra=dict(record.extra),
        )
        await self.store.put_context(fresh)
        self.invalidate(record.url)
        self._documents[record.url] = document
        return fresh

"""The service's caches, none of which is ever stale: rendered entities, answers, parses.

:class:`RenderCache` is a bounded LRU of rendered entities.
The key holds the tenant, the entity id, the stored version of the entity (a
number every write changes, read from the database in the same transaction as
the rows, see ``storage.versioned``), the view (format, sysAttrs, lang,
attrs/pick/omit, datasetId, media type) and the ActiveContext itself.  A write
changes the version, so an old rendering is simply never asked for again and
ages out; nothing needs invalidating, also when several broker processes share
one SQLite file.  The ActiveContext is held by identity: the resolver compiles
each distinct @context once, and a new compilation is a new key.

:class:`AnswerCache` keeps whole answers of GET queries while the store's
``data_version`` holds; :class:`KnownVersions` keeps the version of each entity
read while it holds, so that retrieving an entity nobody wrote since needs no
store read at all (the rendering comes from the RenderCache).

:class:`Parsers` keeps the ASTs of repeated q texts and type selectors (they
are immutable) and the resolved queries of repeated selector parameters.
Errors are never cached: a bad q is parsed, and refused, every time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from functools import lru_cache

from broker.service.reply import Reply
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.query import QExpr, parse_q, parse_type_expr
from ngsi_ld.query.model import EntityQuery
from ngsi_ld.query.typeexpr import TypeExpr

#: default budget of the cache, bytes of rendered JSON (the RSS target is 200 MB)
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
#: larger renderings are not kept (one would push out too many others)
MAX_ITEM_BYTES = 256 * 1024
#: answers kept by the GET query cache (AnswerCache), and the largest body it keeps
CACHE_ENTRIES = 256
CACHE_MAX_BODY = 256 * 1024
#: per-entry bookkeeping counted on top of the body (key tuple, dict slot)
_ENTRY_OVERHEAD = 200
#: the rendering of an entity a pick reduced to nothing: left out of a query's
#: answer (4.21)
EMPTY = b"{}"


class RenderCache:
    """Rendered entity JSON by ``key``, least recently used first out, bounded in bytes."""

    __slots__ = ("_entries", "_size", "hits", "max_bytes", "misses")

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        # Called from a reader thread too: a plain lookup, no reordering.
        return key in self._entries

    @property
    def size(self) -> int:
        """Bytes held (bodies plus a fixed overhead per entry)."""
        return self._size

    def get(self, key: Hashable) -> bytes | None:
        """The rendering for ``key`` (now the most recently used), or None."""
        body = self._entries.get(key)
        if body is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return body

    def get_many(self, keys: list[Hashable]) -> list[bytes | None]:
        """:meth:`get` of each of ``keys``, in one call (a query's page)."""
        entries = self._entries
        get, touch = entries.get, entries.move_to_end
        found: list[bytes | None] = []
        hits = 0
        for key in keys:
            body = get(key)
            if body is not None:
                touch(key)
                hits += 1
            found.append(body)
        self.hits += hits
        self.misses += len(keys) - hits
        return found

    def put(self, key: Hashable, body: bytes) -> None:
        """Keep ``body`` for ``key``, dropping the least recently used over the budget."""
        cost = len(body) + _ENTRY_OVERHEAD
        if len(body) > MAX_ITEM_BYTES or cost > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._size -= len(old) + _ENTRY_OVERHEAD
        # orjson's bytes keep the capacity of its output buffer.  Measured on 16 MB
        # of Streetlight renderings: 68 MB of RSS as returned, 19 MB as exact copies.
        self._entries[key] = exact(body)
        self._size += cost
        while self._size > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._size -= len(dropped) + _ENTRY_OVERHEAD

    def clear(self) -> None:
        """Forget every rendering."""
        self._entries.clear()
        self._size = 0


class AnswerCache:
    """Whole answers of repeated reads, valid while the store's data_version holds.

    Dashboards and benchmarks repeat the same queries; an answer is reused only
    if nothing was written since it was computed (the version is read before the
    query runs) and the request's @context compiles to the same ActiveContext.
    The key is the caller's: everything of the request that decides the answer.
    """

    def __init__(self, size: int = CACHE_ENTRIES) -> None:
        self.size = size
        # key -> (data version, ActiveContext, reply)
        self._entries: OrderedDict[Hashable, tuple[Hashable, ActiveContext, Reply]] = \
            OrderedDict()
        #: requests answered from a kept reply (``GET /metrics``: observable by clients)
        self.hits = 0

    async def serve(
        self,
        key: Hashable,
        version: Hashable | None,
        ctx: ActiveContext,
        compute: Callable[[], Awaitable[Reply]],
        *,
        fresh: bool = False,
    ) -> Reply:
        """The reply kept for ``key`` if ``version`` (read before ``compute`` runs) still
        holds, else ``compute()``'s, kept for the next time; with no version (the store
        cannot tell) always computed.  ``fresh`` (the request's ``Cache-Control:
        no-cache``, RFC 9111 5.2.1.4) computes it in any case: the new reply replaces
        the kept one, as a validated response would."""
        if version is None:
            return await compute()
        kept = None if fresh else self.get(key, version, ctx)
        if kept is not None:
            return kept
        reply = await compute()
        self.put(key, version, ctx, reply)
        return reply

    def get(self, key: Hashable, version: Hashable, ctx: ActiveContext) -> Reply | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != version or entry[1] is not ctx:
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[2]

    def put(self, key: Hashable, version: Hashable, ctx: ActiveContext, reply: Reply, *,
            copy: bool = True) -> None:
        """Keep ``reply`` (a copy, unless ``copy`` is False: the caller changes it no more)."""
        body = reply.body
        if body is None or len(body) > CACHE_MAX_BODY:
            return
        entries = self._entries
        if key in entries:
            entries.move_to_end(key)
        entries[key] = (version, ctx, reply.frozen() if copy else reply)
        while len(entries) > self.size:
            entries.popitem(last=False)


class KnownVersions:
    """Entity versions as read under a store ``data_version`` (bounded).

    ``get`` answers only while the data_version is the one the version was read
    under: no commit since, by this process or another one on the same store,
    so the version is still the entity's.  The data_version is taken before the
    read, so a commit racing with the read only makes the entry unusable.
    """

    __slots__ = ("_entries", "hits", "size")

    def __init__(self, size: int = 16384) -> None:
        self.size = size
        self._entries: dict[tuple[str, str], tuple[Hashable, int]] = {}
        self.hits = 0

    def get(self, tenant: str, entity_id: str, data_version: Hashable) -> int | None:
        entry = self._entries.get((tenant, entity_id))
        if entry is None or entry[0] != data_version:
            return None
        self.hits += 1
        return entry[1]

    def put(self, tenant: str, entity_id: str, data_version: Hashable, version: int) -> None:
        entries = self._entries
        if len(entries) >= self.size and (tenant, entity_id) not in entries:
            entries.pop(next(iter(entries)))
        entries[tenant, entity_id] = (data_version, version)


class Parsers:
    """Parses of repeated query texts (``ngsi_ld.query.selectors.Parsers``), bounded."""

    def __init__(self, queries: int = 1024) -> None:
        self._q = lru_cache(maxsize=1024)(parse_q)
        self._type_expr = lru_cache(maxsize=256)(parse_type_expr)
        #: resolved queries by (ActiveContext, selector parameters)
        self._queries: OrderedDict[Hashable, EntityQuery] = OrderedDict()
        self._size = queries

    def q(self, text: str, linked: bool = False) -> QExpr:
        """The AST of a q text, parsed once while it is kept."""
        return self._q(text, linked)

    def type_expr(self, text: str) -> TypeExpr:
        """The AST of a type selector, parsed once while it is kept."""
        return self._type_expr(text)

    def query(self, key: Hashable, parse: Callable[[], EntityQuery]) -> EntityQuery:
        """The query kept for ``key``, else ``parse()``'s, kept (errors are raised, not kept)."""
        query = self._queries.get(key)
        if query is not None:
            self._queries.move_to_end(key)
            return query
        query = parse()
        self._queries[key] = query
        if len(self._queries) > self._size:
            self._queries.popitem(last=False)
        return query


class Caches:
    """Every cache of one service, built together."""

    def __init__(self) -> None:
        #: rendered entities by (tenant, id, version, view, context)
        self.renders = RenderCache()
        #: entity versions valid while the store's data_version holds
        self.versions = KnownVersions()
        #: answers of GET /entities
        self.answers = AnswerCache()
        #: answers of the discovery reads (types, attributes)
        self.summaries = AnswerCache(size=64)
        self.parsers = Parsers()


def exact(body: bytes) -> bytes:
    """A copy of ``body`` that occupies its length only (see :meth:`RenderCache.put`)."""
    return bytes(memoryview(body))


def join_array(parts: list[bytes]) -> bytes:
    """The JSON array of already encoded JSON values."""
    if len(parts) < 2:
        return b"[" + (parts[0] if parts else b"") + b"]"
    # one copy of the (large) middle parts: only the ends are copied twice
    return b",".join([b"[" + parts[0], *parts[1:-1], parts[-1] + b"]"])


def with_context(body_context: bytes, rendered: bytes) -> bytes:
    """``{"@context": ..., **entity}`` for an encoded entity object (clause 6.3.5, JSON-LD)."""
    if rendered == b"{}":
        return b'{"@context":' + body_context + b"}"
    return b'{"@context":' + body_context + b"," + rendered[1:]


__all__ = [
    "DEFAULT_MAX_BYTES", "EMPTY", "AnswerCache", "Caches", "KnownVersions", "Parsers",
    "RenderCache",
    "exact",
    "join_array", "with_context",
]

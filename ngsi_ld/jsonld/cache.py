"""A bounded LRU cache of compiled contexts, keyed by the context value and core URL."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson

from ngsi_ld.errors import BadRequestData
from ngsi_ld.jsonld.active import ActiveContext
from ngsi_ld.jsonld.compile import compile_context


def cache_key(context_value: Any, core_url: str) -> bytes:
    """The canonical key of a context value under a core context (orjson, sorted keys)."""
    if context_value is None or isinstance(context_value, str):
        return _link_key(context_value, core_url)  # a Link header's URL, or none
    try:
        return orjson.dumps([core_url, context_value], option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise BadRequestData(f"invalid @context: not JSON ({exc})") from None


# Every request resolves its context: the key of no context, or of the URL of a
# Link header (the same few again and again), is encoded once.
@lru_cache(maxsize=1024)
def _link_key(context_value: str | None, core_url: str) -> bytes:
    return orjson.dumps([core_url, context_value], option=orjson.OPT_SORT_KEYS)


class ContextCache:
    """Compiled ``ActiveContext``s, least recently used dropped past ``maxsize``.

    Not thread-safe: use it from the event loop.
    """

    def __init__(self, maxsize: int = 256) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._entries: OrderedDict[bytes, ActiveContext] = OrderedDict()
        #: how many times a cached compilation was dropped or replaced: while it holds,
        #: every compilation looked up since is still the one cached under its key
        self.removals = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> ActiveContext | None:
        """The context cached under ``key`` (see ``cache_key``), or None."""
        ctx = self._entries.get(key)
        if ctx is not None:
            self._entries.move_to_end(key)
        return ctx

    def put(self, key: bytes, ctx: ActiveContext) -> None:
        """Cache ``ctx`` under ``key``, evicting the least recently used entry if full."""
        if self._entries.get(key, ctx) is not ctx:
            self.removals += 1
        self._entries[key] = ctx
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
            self.removals += 1

    def get_or_compile(
        self, context_value: Any, documents: Mapping[str, Any], core_url: str
    ) -> ActiveContext:
        """The cached compilation of ``context_value``, compiling (and caching) it if needed.

        Raises what ``compile_context`` raises (``MissingContext``, ``BadRequestData``).
        """
        key = cache_key(context_value, core_url)
        ctx = self.get(key)
        if ctx is None:
            ctx = compile_context(context_value, documents, core_url)
            self.put(key, ctx)
        return ctx

    def invalidate(self, url: str) -> int:
        """Drop every compiled context that used the document at ``url``; returns how many."""
        stale = [key for key, ctx in self._entries.items() if url in ctx.depends_on]
        for key in stale:
            del self._entries[key]
        self.removals += len(stale)
        return len(stale)

    def clear(self) -> None:
        """Drop every compiled context."""
        self.removals += len(self._entries)
        self._entries.clear()

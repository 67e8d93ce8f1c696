"""Whole answers of Retrieve Entity kept by the request as sent (issue 19: GET per core).

A retrieval that ``retrieve_entity`` answered from the render cache (the plain
view of an entity version known under the store's current ``data_version``)
depends on nothing but the request line and headers, the store's data (its
``data_version``: every commit, by any process on the store, changes it), the
compiled @context the request resolved to, and whether context sources serve
the tenant.  The adapter keeps such an answer under the request target and
every header as sent, and answers the same request again from it while those
hold: no option parsing, no negotiation, no @context or tenant resolution.
What runs before the adapter (authentication, the edge's headers) still runs.

The key holding every header errs on the safe side: a header that would change
the answer cannot be left out of it, and one that would not (a request id)
only costs a miss.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from broker.service.core import Call, Service
from ngsi_ld.jsonld import ActiveContext

__all__ = ["HotAnswers"]

T = TypeVar("T")

#: tenant, data_version, request @context, its compilation, resolver generation, answer
_Entry = tuple[str, Hashable, Any, ActiveContext, int, T]


class HotAnswers(Generic[T]):
    """Answers (``T``, the adapter's own form) of reusable reads, bounded, oldest dropped."""

    __slots__ = ("_entries", "hits", "max_body", "size")

    def __init__(self, size: int = 4096, max_body: int = 16 * 1024) -> None:
        self.size = size
        #: larger answers are not kept: at most ``size * max_body`` bytes held
        self.max_body = max_body
        # key -> (tenant, data_version, request @context, its compilation, the resolver's
        # generation it was checked under, answer)
        self._entries: dict[Hashable, _Entry[T]] = {}
        self.hits = 0

    def get(self, service: Service, key: Hashable) -> T | None:
        """The answer kept for ``key`` if nothing it depends on changed since, else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        tenant, version, context, ctx, generation, answer = entry
        if service.store.data_version(tenant) != version or service.sources.serves(tenant):
            return None
        resolver = service.resolver
        if resolver.generation != generation:
            # a compiled @context was dropped or replaced since: this one, perhaps
            if not resolver.still_active(context, ctx):
                return None
            self._entries[key] = (tenant, version, context, ctx, resolver.generation, answer)
        self.hits += 1
        return answer

    def put(self, service: Service, key: Hashable, call: Call, answer: T,
            body_size: int) -> None:
        """Keep ``answer`` (of a body of ``body_size`` bytes) for ``key`` if the operation
        said ``call`` may be reused."""
        reusable = call.reusable
        ctx = call.active
        if (reusable is None or ctx is None or call.warnings
                or call.snapshot_used is not None or body_size > self.max_body):
            return
        tenant, version, context = reusable
        resolver = service.resolver
        # the compilation may have been dropped while the answer was made: checked now,
        # then only when the resolver's generation moves
        if not resolver.still_active(context, ctx):
            return
        entries = self._entries
        if len(entries) >= self.size and key not in entries:
            entries.pop(next(iter(entries)))
        entries[key] = (tenant, version, context, ctx, resolver.generation, answer)

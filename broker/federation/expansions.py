"""Sources' entities as expanded before, by their content (4.3.6: the hub's own work).

A page of a distributed query validates and expands every entity of the page
the sources answered (``wire.expand_raw``): the largest part of a hub's work on
a page of plain entities.  That is a function of the entity's JSON as the
source sent it and of the @context it is written in, nothing else; a dashboard
paging through sources whose entities did not change sends the same entities
again and again.  :class:`Expansions` keeps the expanded form of the entities
seen last, keyed by that JSON (its bytes, as ``orjson`` writes the parsed
object: the same members in the same order) and the compiled @context (by
identity: a new compilation is a new key), and hands out a new copy each
time, decoded from the kept JSON, so no answer shares an object with another.
An entity whose expanded form does not come back the same through JSON (a
value JSON cannot carry as it is) is not kept.  It is not an answer: what the
source answers is asked on every request, only the parse of an entity already
seen is saved (as the render cache saves the rendering of an entity version
stored here).
"""

from __future__ import annotations

from collections.abc import Hashable

import orjson

from broker.federation.wire import RawEntity, expand_raw
from ngsi_ld.model import Entity

__all__ = ["Expansions"]


class Expansions:
    """Expanded entities by (content, @context), the oldest dropped first; bounded in
    count and by the size of an entity kept."""

    __slots__ = ("_entries", "hits", "max_bytes", "misses", "size")

    def __init__(self, size: int = 4096, max_bytes: int = 16 * 1024) -> None:
        self.size = size
        #: a larger entity is expanded every time: at most ``size * max_bytes`` held
        self.max_bytes = max_bytes
        self._entries: dict[Hashable, bytes] = {}
        self.hits = 0
        self.misses = 0

    def expand(self, raw: RawEntity) -> Entity:
        """``expand_raw(raw)``, from the kept expansion of the same content if any
        (InvalidAnswer as ``expand_raw``: an invalid entity is never kept)."""
        sent = orjson.dumps(raw.item)
        key = (sent, raw.ctx)
        kept = self._entries.get(key)
        if kept is not None:
            self.hits += 1
            entity: Entity = orjson.loads(kept)
            return entity
        self.misses += 1
        entity = expand_raw(raw)
        if len(sent) <= self.max_bytes:
            try:
                encoded = orjson.dumps(entity)
            except TypeError:  # not JSON: expanded every time
                return entity
            if orjson.loads(encoded) == entity:
                entries = self._entries
                if len(entries) >= self.size:
                    del entries[next(iter(entries))]
                entries[key] = encoded
        return entity

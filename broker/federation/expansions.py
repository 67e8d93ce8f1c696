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

Beside an expansion kept, the renderings of the entity shown to clients (by
View and client @context, at most ``render_views`` of them) are kept when the
page's render offers them (``broker.service.source_renders``): a later page
showing the same content the same way stands the kept bytes in for the entity,
neither decoded nor rendered.  They go with the expansion they belong to.

What is held is bounded in bytes as well as in count (``budget``: the JSON
each entry is kept by, its expansion and its renderings; an expanded entity is
longer than the JSON it came from, the IRIs being longer than the terms), the
oldest entries dropped first to make room.
"""

from __future__ import annotations

import orjson

from broker.federation.wire import RawEntity, expand_raw
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity

__all__ = ["Expansions", "Key"]

#: what the expansion and the renderings of a source's entity are kept by
#: (:meth:`Expansions.key`)
Key = tuple[bytes, ActiveContext]


class Expansions:
    """Expanded entities by (content, @context), the oldest dropped first; bounded in
    count, in bytes and by the size of an entity kept; with their renderings kept
    beside them."""

    __slots__ = ("_entries", "_renders", "budget", "held", "hits", "max_bytes", "misses",
                 "render_views", "rendered_hits", "size")

    def __init__(self, size: int = 4096, max_bytes: int = 16 * 1024,
                 render_views: int = 4, budget: int = 32 * 1024 * 1024) -> None:
        self.size = size
        #: a larger entity (as the source sent it) is expanded every time
        self.max_bytes = max_bytes
        #: the bytes held at most (keys, expansions and renderings), and held now
        self.budget = budget
        self.held = 0
        #: renderings kept an entity (View and client @context); 0: none
        self.render_views = render_views
        self._entries: dict[Key, bytes] = {}
        #: content key -> (View key, client @context) -> (the entity's id, its rendering)
        self._renders: dict[Key, dict[tuple[int, ActiveContext], tuple[str, bytes]]] = {}
        self.hits = 0
        self.misses = 0
        self.rendered_hits = 0

    @staticmethod
    def key(raw: RawEntity) -> Key:
        """What an expansion (and a rendering) of ``raw`` is kept by: the JSON the source
        sent (as orjson writes the parsed object, ``RawEntity.sent``) and its compiled
        @context."""
        return (raw.sent, raw.ctx)

    def expand(self, raw: RawEntity, key: Key | None = None) -> Entity:
        """``expand_raw(raw)``, from the kept expansion of the same content if any
        (InvalidAnswer as ``expand_raw``: an invalid entity is never kept); ``key`` is
        :meth:`key` of ``raw`` when the caller has it."""
        if key is None:
            key = self.key(raw)
        kept = self._entries.get(key)
        if kept is not None:
            self.hits += 1
            entity: Entity = orjson.loads(kept)
            return entity
        self.misses += 1
        entity = expand_raw(raw)
        sent = key[0]
        if len(sent) <= self.max_bytes:
            try:
                encoded = orjson.dumps(entity)
            except TypeError:  # not JSON: expanded every time
                return entity
            cost = len(sent) + len(encoded)
            if cost <= self.budget and orjson.loads(encoded) == entity:
                entries = self._entries
                while entries and (len(entries) >= self.size or self.held + cost > self.budget):
                    self._drop(next(iter(entries)))
                entries[key] = encoded
                self.held += cost
        return entity

    def _drop(self, key: Key) -> None:
        """Forget the expansion kept by ``key`` and its renderings."""
        self.held -= len(key[0]) + len(self._entries.pop(key))
        for _, body in self._renders.pop(key, {}).values():
            self.held -= len(body)

    def rendered(self, key: Key, view_key: int,
                 ctx: ActiveContext) -> tuple[str, bytes] | None:
        """The kept rendering of the content ``key`` for the View and client @context:
        (the entity's id, its JSON), or None."""
        views = self._renders.get(key)
        if views is None:
            return None
        found = views.get((view_key, ctx))
        if found is not None:
            self.rendered_hits += 1
        return found

    def keep_rendering(self, key: Key, view_key: int, ctx: ActiveContext,
                       entity_id: str, body: bytes) -> None:
        """Keep the rendering of the content ``key`` (whose expansion is kept: else not)."""
        if key not in self._entries or len(body) > self.max_bytes:
            return
        views = self._renders.setdefault(key, {})
        if len(views) >= self.render_views or (view_key, ctx) in views:
            return
        entries = self._entries
        while self.held + len(body) > self.budget:
            oldest = next(iter(entries))
            if oldest == key:
                return  # the rest is this entity's own: its rendering is not kept
            self._drop(oldest)
        views[(view_key, ctx)] = (entity_id, body)
        self.held += len(body)

"""Sources' answers as read before, by their bytes (4.3.6: the hub's own work).

A page of a distributed query reads two answers of every source: the ids of the
window (``pick=id``) and the entities of the page.  A dashboard paging through
sources whose entities did not change gets the same bytes again and again, and
reading them (decoding the JSON, checking that every item is an object with an
id, writing each entity's JSON again for :meth:`Expansions.key
<broker.federation.expansions.Expansions.key>`) was about a sixth of a hub's
work on a page.  :class:`ParsedAnswers` keeps what that reading gives, by the
answer's bytes: a function of the bytes alone, so the same bytes give the same
reading.

Only what cannot be changed is kept: the ids (``str``), each entity's JSON
(``bytes``, as ``orjson`` writes the parsed object) and the text of an inline
``@context``.  Each request builds its own :class:`~broker.federation.wire.
RawEntity` from them, whose ``item`` is decoded from that JSON when (and each
time a new one is) asked for: no answer shares a mutable object with another.
Nothing else is kept: the answer's headers are read and its @context resolved
anew for every request, and an answer that is not valid is not kept (it fails
again, as it did).

What is held is bounded in count and in bytes (the body and each entity's
JSON), the oldest answers dropped first.
"""

from __future__ import annotations

__all__ = ["EntitiesReading", "ParsedAnswers"]

#: an answer's entities as read: (id, the entity's JSON without its ``@context``, the
#: text of its inline ``@context`` or None), in the answer's order
EntitiesReading = tuple[tuple[str, bytes, str | None], ...]


class ParsedAnswers:
    """Readings of sources' answers by their bytes, the oldest dropped first; bounded in
    count, in bytes and by the size of an answer kept."""

    __slots__ = ("_kept", "budget", "held", "hits", "max_bytes", "misses", "size")

    def __init__(self, size: int = 256, max_bytes: int = 1024 * 1024,
                 budget: int = 16 * 1024 * 1024) -> None:
        #: answers kept at most
        self.size = size
        #: a larger answer is read every time
        self.max_bytes = max_bytes
        #: the bytes held at most (bodies and the entities' JSON), and held now
        self.budget = budget
        self.held = 0
        #: (how it was read, body) -> (its reading, the bytes it holds); how: _IDS, or
        #: _MANY / _ONE for entities (an array read as entities, or as one entity)
        self._kept: dict[tuple[int, bytes], tuple[EntitiesReading | tuple[str, ...], int]] = {}
        self.hits = 0
        self.misses = 0

    def _get(self, how: int, body: bytes) -> EntitiesReading | tuple[str, ...] | None:
        found = self._kept.get((how, body))
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        return found[0]

    def _keep(self, how: int, body: bytes, reading: EntitiesReading | tuple[str, ...],
              cost: int) -> None:
        if len(body) > self.max_bytes or cost > self.budget:
            return
        kept = self._kept
        while kept and (len(kept) >= self.size or self.held + cost > self.budget):
            self.held -= kept.pop(next(iter(kept)))[1]
        kept[(how, body)] = (reading, cost)
        self.held += cost

    def entities(self, body: bytes, many: bool) -> EntitiesReading | None:
        """The entities read before from ``body`` (read as ``many`` says), or None."""
        return self._get(_MANY if many else _ONE, body)  # type: ignore[return-value]

    def keep_entities(self, body: bytes, many: bool, reading: EntitiesReading) -> None:
        """Keep the entities read from ``body`` (a valid answer)."""
        self._keep(_MANY if many else _ONE, body, reading,
                   len(body) + sum(len(sent) for _, sent, _ in reading))

    def ids(self, body: bytes) -> tuple[str, ...] | None:
        """The ids read before from the ``pick=id`` answer ``body``, or None."""
        return self._get(_IDS, body)  # type: ignore[return-value]

    def keep_ids(self, body: bytes, ids: tuple[str, ...]) -> None:
        """Keep the ids read from the ``pick=id`` answer ``body`` (valid, no inline
        @context)."""
        self._keep(_IDS, body, ids, len(body))


_IDS, _MANY, _ONE = 0, 1, 2

"""Change events for the explorer's open pages: one bounded, coalescing buffer per page.

A page that is connected holds one :class:`PageFeed`, subscribed to the
broker's ChangeBus for its tenant only while it is connected; with no page
open the explorer costs the write path nothing (the bus skips writes nobody
listens to).  The listener runs inside every write, so it only files the
event: by entity id, the latest event replacing an earlier one still
waiting (a page wants each entity's current state, not every step).

A slow or gone browser cannot slow writes: the buffer holds at most
``limit`` entities; past that it is emptied and the page is told to reload
(``overflowed``), so memory stays bounded and no write ever waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

from broker.events import ChangeBus
from ngsi_ld.changes import ChangeEvent
from ngsi_ld.model import Entity

#: entities a page's buffer holds before it gives up and asks the page to reload
DEFAULT_LIMIT = 5000


class PageFeed:
    """The pending change events of one connected page (see the module docstring)."""

    def __init__(self, bus: ChangeBus, tenant: str, limit: int = DEFAULT_LIMIT) -> None:
        self.tenant = tenant
        self.limit = limit
        self.pending: dict[str, ChangeEvent] = {}
        self.overflowed = False
        self.closed = False
        self._ready = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = bus.subscribe(self._on_change,
                                                                     self._concerns)

    def _concerns(self, tenant: str, entity_id: str, types: Collection[str],
                  before: Entity | None, after: Entity | None) -> bool:
        return tenant == self.tenant

    def _on_change(self, event: ChangeEvent) -> None:
        if event.tenant != self.tenant:
            return
        pending = self.pending
        pending.pop(event.entity_id, None)  # re-inserted last: events keep their order
        pending[event.entity_id] = event
        if len(pending) > self.limit:
            pending.clear()
            self.overflowed = True
        self._ready.set()

    async def next(self) -> tuple[list[ChangeEvent], bool]:
        """Wait for events: (the latest event of each changed entity, whether some were lost).

        Returns ([], False) once the feed is closed.
        """
        while not self.closed and not self.pending and not self.overflowed:
            self._ready.clear()
            await self._ready.wait()
        events, overflowed = list(self.pending.values()), self.overflowed
        self.pending = {}
        self.overflowed = False
        return events, overflowed

    def close(self) -> None:
        """Stop listening (the page is gone, or the broker stops)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.closed = True
        self.pending = {}
        self._ready.set()


class LiveFeeds:
    """Every open page's feed, so that shutdown can end them all."""

    def __init__(self, bus: ChangeBus) -> None:
        self.bus = bus
        self.open: set[PageFeed] = set()

    def connect(self, tenant: str, limit: int = DEFAULT_LIMIT) -> PageFeed:
        feed = PageFeed(self.bus, tenant, limit)
        self.open.add(feed)
        return feed

    def disconnect(self, feed: PageFeed) -> None:
        feed.close()
        self.open.discard(feed)

    def close_all(self) -> None:
        for feed in list(self.open):
            self.disconnect(feed)

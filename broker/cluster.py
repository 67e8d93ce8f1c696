"""One broker process among several on a shared store: it follows the others' changes.

When several processes serve one store (``--workers N``, or ``--cluster true``
on each; docs/scaling.md), each runs a :class:`ClusterNode`.  The node reads
the store's change feed (:class:`~storage.sharing.SharedStore`): what
the OTHER processes changed since the last read, in commit order, and

* publishes every entity change on this process's change bus, where the
  subscriptions it owns match it exactly as they match local writes (each
  subscription has one owner, so each notification is sent once), with the
  mark of its commit: a subscription created after that mark ignores it
  (subscriptions.ownership, "marks");
* hands every record change to the handler of its collection (the
  subscription manager reloads a subscription created, updated or deleted
  elsewhere);
* drops every cached @context whose stored document changed or was deleted.

Reading is cheap when nothing happened: the store's ``data_version`` (for
SQLite, the WAL index header in shared memory) is compared before any query.
The node also trims feed items older than ``RETENTION`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from broker.events import ChangeBus
from broker.tasks import stop
from storage.sharing import CONTEXT, ENTITY, RECORD, FeedItem, SharedStore

log = logging.getLogger("broker.cluster")

#: seconds a feed item is kept; a process further behind than this misses changes (logged)
RETENTION = 120.0
#: seconds between trims of the feed
TRIM_EVERY = 30.0
#: feed items read at a time
READ_BATCH = 1000

RecordHandler = Callable[[str, str], Awaitable[None]]


def process_id() -> str:
    """A name for this process, unique among the processes sharing a store."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class ClusterNode:
    """Follows the change feed of a shared store (see the module docstring)."""

    def __init__(
        self,
        store: SharedStore,
        bus: ChangeBus,
        invalidate_context: Callable[[str], None],
        *,
        origin: str,
        poll_interval: float = 0.01,
    ) -> None:
        self.store = store
        self.bus = bus
        self.invalidate_context = invalidate_context
        self.origin = origin
        self.poll_interval = poll_interval
        self.position = 0
        #: feed items handled (other processes' changes)
        self.received = 0
        self._records: dict[str, RecordHandler] = {}
        self._task: asyncio.Task[None] | None = None
        self._seen: Any = None

    def on_record(self, collection: str, handler: RecordHandler) -> None:
        """Call ``handler(tenant, record_id)`` for every change to ``collection`` elsewhere."""
        self._records[collection] = handler

    async def begin(self) -> None:
        """Take the feed's current end as the starting point (before loading any state)."""
        self.position = await self.store.feed_head()

    def start(self) -> None:
        """Follow the feed from the starting point, in the background."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop(task)

    async def catch_up(self) -> int:
        """Handle everything the feed holds now; how many items."""
        handled = 0
        while True:
            items, position, missed = await self.store.read_feed(self.position, READ_BATCH)
            if missed:
                log.warning("%d changes of other processes were trimmed before this process "
                            "read them (it fell more than %.0f s behind)", missed, RETENTION)
            self.position = position
            for item in items:
                await self._handle(item)
            handled += len(items)
            if len(items) < READ_BATCH:
                return handled

    async def _run(self) -> None:
        version = getattr(self.store, "data_version", None)
        next_trim = time.monotonic() + TRIM_EVERY
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                seen = version("") if version is not None else None
                if seen is None or seen != self._seen:
                    self._seen = seen
                    await self.catch_up()
                if time.monotonic() >= next_trim:
                    next_trim = time.monotonic() + TRIM_EVERY
                    await self.store.trim_feed(time.time() - RETENTION)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the change feed could not be read; retrying")
                self._seen = None
                await asyncio.sleep(1.0)

    async def _handle(self, item: FeedItem) -> None:
        self.received += 1
        try:
            if item.kind == ENTITY:
                self.bus.publish_change(item.tenant, item.key, item.before, item.after,
                                        item.mark or None)
            elif item.kind == RECORD:
                handler = self._records.get(item.collection)
                if handler is not None:
                    await handler(item.tenant, item.key)
            elif item.kind == CONTEXT:
                self.invalidate_context(item.key)
        except Exception:
            log.exception("change %d (%s %s) of another process could not be handled",
                          item.seq, item.kind, item.key)


__all__ = ["RETENTION", "ClusterNode", "process_id"]

"""The SharedStore capability of the SQLite store (storage/sharing.py, docs/scaling.md).

Several broker processes on one file: :meth:`SharedMixin.share` names this
process, and from then on every change is also appended to the feed in its own
transaction (``_announce``).  The feed, the leases, the fenced record writes and
the marks are those of :mod:`storage.sqlite.feed`, run on the store's threads:
lease changes and fenced writes on the writer, feed and lease reads on a reader.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from ..sharing import RECORD, FeedItem, Fence
from . import feed

T = TypeVar("T")


class SharedMixin:
    """The feed and lease methods of ``SqliteStore`` (see the module docstring)."""

    _origin: str | None

    if TYPE_CHECKING:

        def _write(self, run: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]: ...

        def _read(self, run: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]: ...

    def share(self, origin: str) -> None:
        """Append every change to the feed under ``origin`` (before ``open``)."""
        self._origin = origin

    def _announce(
        self, conn: sqlite3.Connection, tenant: str, kind: str, key: str, collection: str = ""
    ) -> None:
        if self._origin is not None:
            feed.append(conn, self._origin, tenant, kind, key, collection=collection)

    # -- the feed ----------------------------------------------------------------------
    async def feed_head(self) -> int:
        """The position after the last item of the feed."""
        return await self._read(feed.head)

    async def feed_mark(self) -> int:
        """The feed's head: ``seq`` is the commit order (storage/sqlite/feed.py)."""
        return await self._read(feed.head)

    async def read_feed(self, after: int, limit: int = 1000) -> tuple[list[FeedItem], int, int]:
        """Items other processes appended after ``after`` (see sqlite_feed.read)."""
        origin = self._origin or ""
        return await self._read(lambda conn: feed.read(conn, after, origin, limit))

    async def trim_feed(self, older_than: float) -> int:
        """Delete the feed items written before ``older_than``."""
        return await self._write(lambda conn: feed.trim(conn, older_than))

    # -- leases ------------------------------------------------------------------------
    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Hold the lease ``name`` if it is free, expired or ours."""
        return await self._write(lambda conn: feed.acquire(conn, name, owner, ttl))

    async def renew_leases(self, owner: str, ttl: float) -> list[str]:
        """Extend the leases ``owner`` holds; their names."""
        return await self._write(lambda conn: feed.renew(conn, owner, ttl))

    async def release_leases(self, owner: str, names: list[str] | None = None) -> None:
        """Give up leases of ``owner`` (None: all)."""
        await self._write(lambda conn: feed.release(conn, owner, names))

    async def drop_lease(self, name: str) -> None:
        """Remove the lease ``name`` whoever holds it."""
        await self._write(lambda conn: feed.drop(conn, name))

    async def lease_holders(self, prefix: str) -> dict[str, str]:
        """Unexpired leases under ``prefix``: name -> owner."""
        return await self._read(lambda conn: feed.holders(conn, prefix))

    async def lease_epoch(self, name: str, owner: str) -> int | None:
        """The epoch of the lease ``name`` if ``owner`` holds it, else None."""
        return await self._read(lambda conn: feed.epoch(conn, name, owner))

    async def put_fenced(self, tenant: str, collection: str, record_id: str,
                         document: dict[str, Any], lease: Fence) -> bool:
        """Replace an existing record while ``lease`` is held with its epoch (one
        conditional UPDATE); False, and nothing written, otherwise."""
        encoded = orjson.dumps(document)

        def run(conn: sqlite3.Connection) -> bool:
            done = feed.put_fenced(conn, tenant, collection, record_id, encoded, lease)
            if done:
                self._announce(conn, tenant, RECORD, record_id, collection)
            return done

        return await self._write(run)


__all__ = ["SharedMixin"]

"""Storage backends behind one async interface (:class:`Store`).

``open_store(url)`` picks the backend from a URL:

* ``memory:`` — :class:`MemoryStore`, nothing persisted;
* ``sqlite:///abs/path/file.db`` or ``sqlite:relative/path.db`` — :class:`SqliteStore`,
  the embedded default (parent directories are created when it opens);
* ``mongodb://...`` or ``mongodb+srv://...`` — :class:`MongoStore`, the production
  backend (PyMongo's asyncio API; see docs/mongodb.md).

The store returned is not open yet: call ``await store.open()`` once at start-up
and ``await store.close()`` at shutdown.
"""

from __future__ import annotations

from pathlib import Path

from .base import (
    DEFAULT_TENANT,
    AttributeSummary,
    Change,
    ContextRecord,
    Entity,
    Mutation,
    Outcome,
    Store,
    TypeSummary,
)
from .memory import MemoryStore
from .sqlite.store import SqliteStore


def open_store(url: str, *, bulk: bool = False) -> Store:
    """The (unopened) store a storage URL names; ValueError for a URL it cannot serve.
    ``bulk``: for a process that loads data in large batches (the embedded store takes
    a larger page cache)."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("the storage URL is empty; use memory:, sqlite:PATH or mongodb://...")
    url = url.strip()
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(
            f"storage URL {url!r} has no scheme; use memory:, sqlite:PATH or mongodb://"
        )
    if scheme == "memory":
        if rest not in ("", "//"):
            raise ValueError(f"storage URL {url!r}: memory: takes no path")
        return MemoryStore()
    if scheme == "sqlite":
        return SqliteStore(_sqlite_path(url, rest), bulk=bulk)
    if scheme in ("mongodb", "mongodb+srv"):
        try:
            from .mongo.store import MongoStore
        except ImportError as exc:  # pymongo is an extra: the embedded store needs nothing
            raise ValueError(
                f"the MongoDB backend needs pymongo ({exc}); "
                "install it with: pip install 'ngsi-ld-broker[mongodb]'"
            ) from None
        return MongoStore(url)
    raise ValueError(
        f"unknown storage URL scheme {scheme!r} in {url!r}; use memory:, sqlite:PATH or mongodb://"
    )


def _sqlite_path(url: str, rest: str) -> Path:
    if rest.startswith("///"):
        path = "/" + rest[3:].lstrip("/")  # sqlite:///abs/path.db
    elif rest.startswith("//"):
        raise ValueError(
            f"storage URL {url!r}: use sqlite:///absolute/path.db or sqlite:relative/path.db"
        )
    else:
        path = rest
    if path in ("", "/") or path.endswith("/"):
        raise ValueError(f"storage URL {url!r} names no database file")
    if path == ":memory:":
        raise ValueError(f"storage URL {url!r}: for a store in memory use memory:")
    return Path(path).expanduser()


__all__ = [
    "DEFAULT_TENANT",
    "AttributeSummary",
    "Change",
    "ContextRecord",
    "Entity",
    "MemoryStore",
    "MongoStore",
    "Mutation",
    "Outcome",
    "SqliteStore",
    "Store",
    "TypeSummary",
    "open_store",
]


def __getattr__(name: str) -> object:
    # MongoStore imports pymongo, an optional dependency: load it only when asked for
    if name == "MongoStore":
        from .mongo.store import MongoStore

        return MongoStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

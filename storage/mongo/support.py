"""Connection settings, fault translation and per-entity locks of the MongoDB backend.

Faults: every call to MongoDB runs inside :func:`faults`, which turns what the
driver raises into the NGSI-LD error a client should see — an unreachable or
lost server is ServiceUnavailable (503, the request may be retried), a query
over ``maxTimeMS`` is TooComplexQuery, a document BSON cannot hold is
BadRequestData.  The driver reconnects by itself, so the next request after the
server returns succeeds without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from bson.errors import InvalidDocument
from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)

from ngsi_ld.errors import BadRequestData, InternalError, ServiceUnavailable, TooComplexQuery

from ..base import DEFAULT_TENANT

log = logging.getLogger("storage.mongo")

#: Orion-LD's default database name
DEFAULT_DATABASE = "orion"
#: a request fails after this long without a server (the driver's default is 30 s)
DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 5000
_BAD_DB_CHARS = re.compile(r'[/\\. "$*<>:|?\x00]')
#: operation failures that mean "cannot talk to the server now" (auth, not primary...)
_UNAVAILABLE_CODES = frozenset({6, 7, 13, 18, 89, 91, 189, 10107, 11600, 11602, 13435, 13436})


#: write errors caused by the data: geometry the 2dsphere index rejects, too deep, too large
_REFUSED_DATA_CODES = frozenset({10334, 15, 16755, 17280})


@dataclass(frozen=True, slots=True)
class MongoSettings:
    """What :class:`~storage.mongo.MongoStore` connects with."""

    url: str
    database: str
    client_options: dict[str, Any]
    max_time_ms: int | None = None


def redact(url: str) -> str:
    """The URL without its password, for log lines."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


def parse_settings(
    url: str,
    *,
    database: str | None = None,
    max_pool_size: int | None = None,
    min_pool_size: int | None = None,
    server_selection_timeout_ms: int | None = None,
    connect_timeout_ms: int | None = None,
    socket_timeout_ms: int | None = None,
    retry_writes: bool | None = None,
    max_time_ms: int | None = None,
) -> MongoSettings:
    """Settings from a ``mongodb://`` / ``mongodb+srv://`` URL and keyword overrides.

    The database is the URL path (``mongodb://host/orion``), else ``orion``.  The
    driver reads the URL's options (``maxPoolSize``, ``retryWrites``...); keywords
    given here override them.  ``serverSelectionTimeoutMS`` defaults to 5000 ms.
    ValueError for a URL that is not a MongoDB URL or names an invalid database.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mongodb", "mongodb+srv"):
        raise ValueError(f"storage URL {redact(url)!r} is not a mongodb:// or mongodb+srv:// URL")
    if not parts.netloc.rpartition("@")[2]:
        raise ValueError(f"storage URL {redact(url)!r} names no host")
    name = database or unquote(parts.path.lstrip("/")) or DEFAULT_DATABASE
    check_database_name(name)
    query = {key.lower() for key, _ in parse_qsl(parts.query)}
    options: dict[str, Any] = {"appname": "ngsi-ld-broker"}
    if server_selection_timeout_ms is not None:
        options["serverSelectionTimeoutMS"] = server_selection_timeout_ms
    elif "serverselectiontimeoutms" not in query:
        options["serverSelectionTimeoutMS"] = DEFAULT_SERVER_SELECTION_TIMEOUT_MS
    for key, value in (
        ("maxPoolSize", max_pool_size),
        ("minPoolSize", min_pool_size),
        ("connectTimeoutMS", connect_timeout_ms),
        ("socketTimeoutMS", socket_timeout_ms),
        ("retryWrites", retry_writes),
    ):
        if value is not None:
            options[key] = value
    return MongoSettings(url, name, options, max_time_ms)


def check_database_name(name: str) -> None:
    """ValueError unless MongoDB accepts ``name`` as a database name (tenants included)."""
    if not name or _BAD_DB_CHARS.search(name) or len(name.encode()) > 63:
        raise ValueError(
            f'invalid MongoDB database name {name!r}: 1 to 63 bytes, none of / \\ . space " $ * '
            "< > : | ?"
        )


def database_name(base: str, tenant: str) -> str:
    """``<db>`` for the default tenant, ``<db>-<tenant>`` for the others (as Orion-LD)."""
    if tenant == DEFAULT_TENANT:
        return base
    name = f"{base}-{tenant}"
    try:
        check_database_name(name)
    except ValueError:
        raise BadRequestData(
            f"tenant {tenant!r} cannot be a MongoDB database name ({name!r}): use letters, "
            "digits, '_' or '-', at most 62 bytes with the database name"
        ) from None
    return name


@contextlib.contextmanager
def faults(what: str) -> Iterator[None]:
    """Turn driver errors raised inside into the NGSI-LD errors a client sees."""
    try:
        yield
    except ConnectionFailure as exc:
        log.warning("MongoDB unreachable during %s: %s", what, exc)
        raise ServiceUnavailable(f"the MongoDB store is unreachable ({what}); retry later") from exc
    except ExecutionTimeout as exc:
        raise TooComplexQuery(f"the query ran out of time in MongoDB ({what})") from exc
    except (InvalidDocument, OverflowError) as exc:
        raise BadRequestData(f"the data cannot be stored in MongoDB: {exc}") from exc
    except WriteConcernError as exc:
        raise ServiceUnavailable(f"MongoDB did not confirm the write ({what}): {exc}") from exc
    except OperationFailure as exc:
        if exc.code in _REFUSED_DATA_CODES:
            raise BadRequestData(f"MongoDB refused the data: {exc.details or exc}") from exc
        if exc.code in _UNAVAILABLE_CODES:
            log.warning("MongoDB refused %s: %s", what, exc)
            raise ServiceUnavailable(f"the MongoDB store refused {what}; retry later") from exc
        log.error("MongoDB failed %s: %s", what, exc)
        raise InternalError(f"the MongoDB store failed {what}") from exc
    except PyMongoError as exc:
        if exc.timeout:
            raise ServiceUnavailable(f"the MongoDB store timed out ({what})") from exc
        log.error("MongoDB failed %s: %s", what, exc)
        raise InternalError(f"the MongoDB store failed {what}") from exc


class KeyLocks:
    """asyncio locks by key, created on demand and dropped when nobody holds or waits."""

    def __init__(self) -> None:
        self._locks: dict[Any, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, keys: Iterable[Any]) -> AsyncIterator[None]:
        """Hold the locks of ``keys`` (taken in sorted order: no deadlock between callers)."""
        wanted = sorted(set(keys))
        for key in wanted:
            lock, users = self._locks.get(key, (asyncio.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        taken: list[asyncio.Lock] = []
        try:
            for key in wanted:
                lock = self._locks[key][0]
                await lock.acquire()
                taken.append(lock)
            yield
        finally:
            for lock in taken:
                lock.release()
            for key in wanted:
                lock, users = self._locks[key]
                if users <= 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


__all__ = [
    "DEFAULT_DATABASE",
    "KeyLocks",
    "MongoSettings",
    "check_database_name",
    "database_name",
    "faults",
    "parse_settings",
    "redact",
]

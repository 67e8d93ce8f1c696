"""The MongoDB store (docs/mongodb.md): :class:`MongoStore`, loaded only when asked for.

- ``store`` — the Store on PyMongo's asyncio API;
- ``schema``, ``keys`` — entities as MongoDB documents, field names encoded reversibly;
- ``filters``, ``geo`` — an EntityQuery compiled to a MongoDB filter;
- ``batch`` — ``modify_many`` as bulk writes; ``records`` — records and contexts;
- ``discovery`` — entity types and attributes by aggregation; ``support`` — URLs, faults.

pymongo is an optional dependency: importing this package does not import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import MongoStore

__all__ = ["MongoStore"]


def __getattr__(name: str) -> object:
    if name == "MongoStore":
        from .store import MongoStore

        return MongoStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Entities read together with their version, for caches of rendered entities.

A store that can say which version of an entity it holds (a number that every
write changes, read in the same transaction as the rows) offers
:class:`VersionedReads`; the HTTP layer then renders only the entities its
cache does not hold yet, and the store decodes only those.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import orjson

from ngsi_ld.query import EntityQuery

from .base import Entity

#: ``wanted(entity_id, version)``: True when the caller needs the document itself.
Wanted = Callable[[str, int], bool]


class Versioned:
    """One stored entity: its id, its version and, when read, its document."""

    __slots__ = ("_entity", "entity_id", "raw", "version")

    def __init__(
        self, entity_id: str, version: int, *, raw: bytes | None = None,
        entity: Entity | None = None,
    ) -> None:
        self.entity_id = entity_id
        self.version = version
        #: the stored document, orjson-encoded (None when the caller did not want it)
        self.raw = raw
        self._entity = entity

    @property
    def has_document(self) -> bool:
        """Whether the document was read (see :attr:`entity`)."""
        return self._entity is not None or self.raw is not None

    @property
    def entity(self) -> Entity:
        """The decoded document (decoded once); LookupError if it was not read."""
        if self._entity is None:
            if self.raw is None:
                raise LookupError(f"the document of {self.entity_id} was not read")
            self._entity = orjson.loads(self.raw)
        return self._entity

    def __repr__(self) -> str:
        return f"Versioned({self.entity_id!r}, {self.version})"


@runtime_checkable
class VersionedReads(Protocol):
    """Reads that return versions, so that unchanged entities need not be decoded."""

    async def read_versioned(self, tenant: str, entity_id: str) -> Versioned | None:
        """The entity with its version, or None."""

    async def query_versioned(
        self,
        tenant: str,
        query: EntityQuery,
        wanted: Wanted,
        *,
        offset: int = 0,
        limit: int | None = None,
        count: bool = False,
    ) -> tuple[list[Versioned], int | None]:
        """As ``Store.query_entities``; documents only where ``wanted`` says so."""


_KINDS: dict[type, bool] = {}


def versioned(store: object) -> VersionedReads | None:
    """``store`` if it offers versioned reads, else None (answered once per class)."""
    kind = type(store)
    offers = _KINDS.get(kind)
    if offers is None:
        # isinstance on a runtime-checkable Protocol is slow: once per class only
        offers = _KINDS[kind] = isinstance(store, VersionedReads)
    return store if offers else None  # type: ignore[return-value]


__all__ = ["Versioned", "VersionedReads", "Wanted", "versioned"]

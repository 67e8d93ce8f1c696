"""What a write of a NEW entity stores, computed before the store is reached (issue 18).

A first load creates most of its entities: what the store writes for them (the
encoded document, the index rows, the discovery counters' change, the packed
history's material) depends on the entity alone, not on the store's state.  The
loader's worker processes compute it (:func:`storage.sqlite.prepared.prepare_creation`,
pure, without a connection) and the writing process hands it to the store with
the batch (:class:`PreparedWrites`): an entity that is absent from the store,
and written once in the batch, is stored from this material; any other goes the
usual way, through its mutation.  The result is the same rows either way.

Both are named tuples: a batch of them crosses the process boundary as a pickle,
which rebuilds a named tuple in a quarter of the time of a frozen dataclass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

from ngsi_ld.temporal import EntityRecord

from .base import Entity, Mutation, Outcome, Recorder
from .chain import WriteChain
from .discovery import StatKey

__all__ = ["PreparedCreation", "PreparedHistory", "PreparedWrites"]


class PreparedHistory(NamedTuple):
    """The history a creation records, but its instance numbers (the store gives them)."""

    at: str  # the write's time (the recorder's)
    record: EntityRecord
    #: the pack's body, its instances numbered by their position (``history_packs``)
    body: bytes
    size: int  # its instances
    tmin: int  # the earliest instance time (µs)
    #: the signature of its attribute names (``storage.sqlite.pack_signature``; None:
    #: unknown, the pack may hold any)
    sig: int | None = None


class PreparedCreation(NamedTuple):
    """The rows of one entity written where there was none (see the module docstring)."""

    entity_id: str
    doc: bytes  # the entity as stored
    created: str | None
    modified: str | None
    expires: int | None  # its earliest expiry (ms), clause 4.22
    types: tuple[str, ...]
    attrs: tuple[str, ...]  # its attribute names (empty: it has none)
    #: its rows of the attribute values index, flat: attribute, value, vocab, attribute,
    #: value, vocab... (the id is the entity's): one object to pickle and read back,
    #: not a tuple a row
    values: tuple[Any, ...]
    #: (id, attribute, minx, maxx, miny, maxy) of its geometries, in index order
    boxes: tuple[tuple[str, str, float, float, float, float], ...]
    stats: tuple[tuple[StatKey, int], ...]  # the discovery counters' change
    #: its packed history (None: none prepared; a recorded write goes the usual way)
    history: PreparedHistory | None = None


@runtime_checkable
class PreparedWrites(Protocol):
    """A store that takes prepared creations with a batch (the embedded store)."""

    #: the pure function that prepares a creation for this kind of store: (the entity,
    #: its encoding if known, the time of its recorded history or None); picklable
    prepare: Callable[[Entity, bytes | None, str | None], PreparedCreation]

    async def modify_prepared(
        self, tenant: str, mutations: Sequence[tuple[str, Mutation]],
        prepared: Mapping[str, PreparedCreation], *, record: Recorder | None = None,
        chain: WriteChain | None = None,
    ) -> list[Outcome]:
        """``modify_many``, where an entity of ``prepared`` that the store does not hold
        and that is written once is stored from its prepared rows (its mutation is not
        called: it must create exactly what it was prepared from).  The outcome of such
        a creation carries no change (its entity is not decoded).  With ``chain``: the
        next write of it, not written unless the one before it was
        (:mod:`storage.chain`; writes are taken in the order submitted)."""
        ...

"""Writes that are committed in order, each only if the one before it was (the loader's).

The loader hands a store batch N+1 before batch N is settled (two writes in
flight, ``broker.loader.command``), and moves its resume point past a batch
once written.  Were N+1 committed although N failed, the loader, which settles
the writes in flight before it stops, would move its resume point past N+1: the
resumed load would never write N.
A :class:`WriteChain` prevents that: a store whose writer runs writes one after
the other, in the order submitted (the embedded store's one writer thread,
:meth:`storage.sqlite.threads.Worker.chained`), gives each write of the chain a
:class:`ChainLink` when it is submitted, and checks it at the moment the write
would start, on the writer: a write whose predecessor failed, or whose
predecessor's transaction was rolled back, raises :class:`BrokenChain` and writes
nothing, and so does every later write of the chain.

A link's state changes on the writer thread only: submitted, ran (its write is
done, in the transaction still open), then committed or failed when that
transaction ends.  A write that raised stays "submitted", which a successor
takes for a failure: the writer takes writes in the order submitted, so the
predecessor has always started before its successor does.
"""

from __future__ import annotations

from ngsi_ld.errors import ServiceUnavailable

__all__ = ["BrokenChain", "ChainLink", "WriteChain"]

_SUBMITTED, _RAN, _COMMITTED, _FAILED = range(4)


class BrokenChain(ServiceUnavailable):
    """A write of a chain not started: the write before it failed (nothing written)."""


class ChainLink:
    """One write of a :class:`WriteChain`, as the store's writer sees it."""

    __slots__ = ("_before", "_state")

    def __init__(self, before: ChainLink | None) -> None:
        self._before = before
        self._state = _SUBMITTED

    def start(self) -> None:
        """On the writer, as the write starts: :class:`BrokenChain` unless the write
        before it (if any) committed, or ran in the transaction this one joins."""
        before, self._before = self._before, None  # (the chain is not kept whole)
        if before is not None and before._state not in (_RAN, _COMMITTED):
            self._state = _FAILED
            raise BrokenChain("not written: the write before it in its chain failed")

    def ran(self) -> None:
        """On the writer: the write is done, in the transaction still open."""
        self._state = _RAN

    def ended(self, committed: bool) -> None:
        """On the writer: the transaction in which the write ran ended (``committed``:
        by a COMMIT that succeeded, else rolled back)."""
        self._state = _COMMITTED if committed and self._state == _RAN else _FAILED


class WriteChain:
    """Writes each committed only if the one submitted before it was (see the module)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: ChainLink | None = None

    def link(self) -> ChainLink:
        """The link of the write submitted now (the caller submits it at once, in order)."""
        link = self._last = ChainLink(self._last)
        return link

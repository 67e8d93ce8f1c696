"""At most a few batch writes between their parse and the end of their write (issue 19).

A batch's entities, once parsed, are some sixty containers each (its
attributes' instance lists, their dicts) that the cyclic collector tracks until
the write ends; its JSON as decoded, a dozen more.  The store's writer takes
one batch after the other, while the event loop, about twice as fast, parses
every batch the clients send: with 16 connections sending batches of 100
Streetlights, six or more parsed batches waited for the writer, tens of
thousands of live containers that every young collection walked
(benchmarks/README.md).  Decoded only when its write is next, a batch waits as
the bytes it was sent, which the collector does not track.

So a batch holds a :meth:`BatchGate.slot` from the decoding of its body to the
end of its local write; the store says how many slots are worth having
(``Store.batches_in_flight``: for one writer thread, the batch being written and
the next one).  Its bytes are read before (a client sending slowly holds no
slot).  What may wait on others, a distributed batch's forwarding to its Context
Sources (which might be this very broker), runs outside the slot
(:meth:`Slot.outside`).  A @context not yet cached is fetched holding the slot
(within the resolver's timeout; the document is kept, a failure remembered a while).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["BatchGate", "Slot"]

_T = TypeVar("_T")


class BatchGate:
    """``size`` slots for batch writes (None: no bound, every slot given at once)."""

    __slots__ = ("_semaphore",)

    def __init__(self, size: int | None) -> None:
        self._semaphore = None if size is None else asyncio.Semaphore(size)

    def slot(self) -> Slot:
        """One slot, taken by ``async with`` (waits while every slot is taken)."""
        return Slot(self._semaphore)


class Slot:
    """One batch's slot of a :class:`BatchGate`."""

    __slots__ = ("_held", "_semaphore")

    def __init__(self, semaphore: asyncio.Semaphore | None) -> None:
        self._semaphore = semaphore
        self._held = False

    async def __aenter__(self) -> Slot:
        if self._semaphore is not None:
            await self._semaphore.acquire()
            self._held = True
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._release()

    async def outside(self, awaitable: Awaitable[_T]) -> _T:
        """``await awaitable`` with the slot given back meanwhile, taken again after."""
        semaphore = self._semaphore
        if semaphore is None:
            return await awaitable
        self._release()
        try:
            return await awaitable
        finally:
            await semaphore.acquire()  # cancelled here: not held, not given back
            self._held = True

    def _release(self) -> None:
        if self._held:
            self._held = False
            assert self._semaphore is not None
            self._semaphore.release()

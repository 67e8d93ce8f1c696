"""The Unicode collation table of Entity ordering (clause 4.23.3), loaded once, off the loop.

The table (the DUCET of ``pyuca``) takes about a second and 10 MB to load, so it
is read in a worker thread on the first request that names a ``collation``, and
kept for the life of the process.  Requests without a collation never load it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pyuca

from ngsi_ld.query.collation import Collator, parse_collation, sort_key

_LOCK = threading.Lock()
_collator: Collator | None = None


def _load() -> Collator:
    global _collator
    with _LOCK:
        if _collator is None:
            _collator = pyuca.Collator()
        return _collator


async def string_key(tag: str | None) -> Callable[[str], Any] | None:
    """The sort key of strings under the collation ``tag``; None (code points) without one."""
    if tag is None:
        return None
    collation = parse_collation(tag)
    collator = _collator if _collator is not None else await asyncio.to_thread(_load)
    return sort_key(collator, collation)


__all__ = ["string_key"]

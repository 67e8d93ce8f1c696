"""The signature of a pack's attribute names (schema 12, :mod:`.history_packs`).

A pack's ``sig`` has bit ``crc32(name) % 63`` set for each attribute name of its
instances, so that a read of some attributes tells, without decoding a pack, that it
holds none of them (``sig & signature(asked) == 0``); a false positive only settles a
pack that did not need it.  63 bits: the value is a positive SQLite INTEGER.  The bit
of a name is computed once (a dict lookup on the write path, a few names a pack).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

__all__ = ["bit", "signature"]

#: bits of a signature: 63, so that it is a positive SQLite INTEGER
_SIGNATURE_BITS = 63

#: the bit of each attribute name seen (bounded: cleared when full)
_BITS: dict[str, int] = {}
_BITS_MAX = 4096


def bit(name: str) -> int:
    """The bit of the attribute name ``name``."""
    found = _BITS.get(name)
    if found is None:
        if len(_BITS) >= _BITS_MAX:
            _BITS.clear()
        found = _BITS[name] = 1 << (zlib.crc32(name.encode()) % _SIGNATURE_BITS)
    return found


def signature(names: Iterable[str]) -> int:
    """The signature of the attribute names ``names``: the bits a pack holding an
    instance of one of them has set (see the module docstring)."""
    sig = 0
    for name in names:
        sig |= bit(name)
    return sig

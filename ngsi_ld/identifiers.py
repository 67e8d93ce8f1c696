"""What a name and a URI may look like: terms, IRIs, entity ids (clauses 4.5.1, 4.6.2).

An entity id "shall be a URI that identifies the Entity" (4.5.1).  RFC 3986
admits no whitespace, controls or markup delimiters in a URI; RFC 3987 widens
the repertoire to the non-ASCII characters of an IRI (``ucschar``), which still
includes characters that render as nothing: format and bidi controls, variation
selectors, fillers.  An id holding one of them shows as a different id in logs,
user interfaces and audit trails, so it identifies nothing a person can read
back: such characters are refused in every URI, as are the code points RFC 3987
leaves out of ``ucschar`` (private use, noncharacters, the tag plane).

An entity id, and the object of a Relationship that names one, is also refused
when its scheme is one a browser runs as code (``javascript:``, ``vbscript:``):
such a URI is a program, it identifies no Entity (4.5.1), and every user
interface that renders ids as links would run it.  Other names (attribute
names, types) are left alone: there ``scheme:rest`` may be a compact IRI
whose prefix a user @context defines.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["is_entity_id", "is_iri", "is_term"]

#: URI schemes whose URIs are scripts (RFC 3986 admits them; 4.5.1 wants an Entity named)
_SCRIPT_SCHEMES = ("javascript:", "vbscript:")
_TERM = re.compile(r"[^\W\d][\w.\-]*")
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`\x00-\x1f\x7f]+")

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties) that are letters or
# marks rather than format characters: they render as nothing.
_IGNORABLE = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F),
    (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
# Visible-blank characters that are neither whitespace nor ignorable.
_BLANK = frozenset({0x2800})  # BRAILLE PATTERN BLANK


def is_term(name: object) -> bool:
    """True for a JSON-LD term usable as a name (NCName-like: no colon, not digit-first)."""
    return isinstance(name, str) and _TERM.fullmatch(name) is not None


def is_iri(value: object) -> bool:
    """True for an absolute URI or compact IRI (``scheme:rest``) a person can read back.

    No whitespace, controls or markup delimiters; non-ASCII characters only if
    they are visible (see the module docstring).
    """
    if not isinstance(value, str) or _IRI.fullmatch(value) is None:
        return False
    return value.isascii() or all(_visible(c) for c in value if not c.isascii())


def is_entity_id(value: object) -> bool:
    """True for a URI that may name an Entity: :func:`is_iri`, and not a script URI."""
    if value.__class__ is str and len(value) <= _KEPT:
        return _entity_id(value)
    return _is_entity_id(value)


#: the longest id whose answer is kept: the ids of a batch and the objects of its
#: Relationships recur (the same devices, groups, models), each checked ~1 µs
_KEPT = 256


def _is_entity_id(value: object) -> bool:
    return is_iri(value) and not str(value)[:11].lower().startswith(_SCRIPT_SCHEMES)


_entity_id = lru_cache(maxsize=8192)(_is_entity_id)


def _visible(char: str) -> bool:
    # Categories C* (controls, format, surrogates, private use, unassigned and
    # noncharacters) and Z* (separators) never belong in an identifier.
    if unicodedata.category(char)[0] in "CZ":
        return False
    code = ord(char)
    if code in _BLANK:
        return False
    return not any(low <= code <= high for low, high in _IGNORABLE)

"""Helpers every storage backend shares: scan validation, id patterns, copies.

The backends must agree exactly on what a scan selects, so the checks and the
matching rules live here once.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import orjson

from ngsi_ld.errors import BadRequestData, InternalError, NgsiLdError
from ngsi_ld.model import Entity

log = logging.getLogger(__name__)

_Json = TypeVar("_Json")

# Characters with a meaning in a Python regular expression.
_REGEX_SPECIAL = frozenset(".^$*+?{}[]\\|()")
# Quantifiers that make the character before them optional.
_OPTIONAL_QUANTIFIERS = frozenset("*?{")


def copy_entity(entity: _Json) -> _Json:
    """A deep copy of a JSON-compatible entity or record (an orjson round trip)."""
    copied: _Json = orjson.loads(orjson.dumps(entity))
    return copied


def check_page(offset: int, limit: int | None) -> None:
    """BadRequestData unless offset is an integer >= 0 and limit None or an integer >= 0."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise BadRequestData(f"offset must be a non-negative integer, got {offset!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise BadRequestData(f"limit must be a non-negative integer, got {limit!r}")


def literal_prefix(pattern: str) -> str:
    """The literal text every match of an anchored ``pattern`` starts with ("" if none).

    Only patterns that start with ``^`` and contain no ``|`` qualify (an
    alternative could match anywhere).  The prefix stops at the first special
    character; a character made optional by a following quantifier is dropped.
    """
    if not pattern.startswith("^") or "|" in pattern:
        return ""
    prefix: list[str] = []
    for char in pattern[1:]:
        if char in _REGEX_SPECIAL:
            if char in _OPTIONAL_QUANTIFIERS and prefix:
                prefix.pop()
            break
        prefix.append(char)
    return "".join(prefix)


def is_prefix_only(pattern: str) -> bool:
    """Whether ``pattern`` matches exactly the strings starting with ``literal_prefix``:
    ``^literal``, optionally followed by ``.*`` (then ``$`` allowed); the key range
    of the prefix then needs no regular expression after it."""
    prefix = literal_prefix(pattern)
    if not prefix:
        return False
    rest = pattern[1 + len(prefix):]
    return rest in ("", ".*", ".*$")  # the prefix holds no special character


def required_literal(pattern: str) -> str:
    """A literal text every match of ``pattern`` contains ("" if none is known).

    The longest run of plain characters outside groups and classes, less a
    character a quantifier makes optional.  Patterns with ``|`` or with inline
    flags, lookarounds and other ``(?`` constructs give "" (a flag such as
    ``(?i)`` would change what the run matches).  Returning too little is always
    safe: the result only pre-selects candidates for the full match.
    """
    if "|" in pattern or "(?" in pattern:
        return ""
    best = ""
    run: list[str] = []
    depth = 0
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char in _REGEX_SPECIAL or depth:
            if char in _OPTIONAL_QUANTIFIERS and run:
                run.pop()
            if len(run) > len(best):
                best = "".join(run)
            run = []
            if char == "\\":
                i = _escape_end(pattern, i)  # an escape is not taken as a literal
            elif char == "(":
                depth += 1
            elif char == ")":
                depth = max(0, depth - 1)
            elif char == "[":
                i = _class_end(pattern, i)  # a class's characters are not literals
            elif char == "{":
                i = pattern.find("}", i)  # nor a repetition's
            if i < 0:
                return best
        else:
            run.append(char)
        i += 1
    return max(best, "".join(run), key=len)


#: escapes longer than one character: \\xhh, \\uhhhh, \\Uhhhhhhhh
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def _escape_end(pattern: str, start: int) -> int:
    """The index of the last character of the escape that starts at ``start`` (a backslash).

    Octal escapes and backreferences (``\\111``, ``\\1``) take their digits,
    ``\\x``/``\\u``/``\\U`` their hex digits and ``\\N{...}`` its name: none of
    them may leave a character behind that looks like a literal.
    """
    i = start + 1
    if i >= len(pattern):
        return i
    char = pattern[i]
    if char.isdigit():
        end = i
        while end + 1 < len(pattern) and end - i < 2 and pattern[end + 1].isdigit():
            end += 1
        return end
    if char in _HEX_ESCAPES:
        return min(i + _HEX_ESCAPES[char], len(pattern) - 1)
    if char == "N" and pattern.startswith("{", i + 1):
        close = pattern.find("}", i)
        return close if close >= 0 else len(pattern) - 1
    return i


def _class_end(pattern: str, start: int) -> int:
    """The index of the ``]`` closing the class opened at ``start`` (-1 if none)."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1  # a "]" first in the class is one of its characters
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
        elif pattern[i] == "]":
            return i
        else:
            i += 1
    return -1


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``."""
    if not prefix or prefix[-1] == "\U0010ffff":
        return None
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def page(items: list[Any], offset: int, limit: int | None) -> list[Any]:
    """The slice ``[offset, offset + limit)`` of ``items``."""
    if limit is None:
        return items[offset:]
    return items[offset : offset + limit]


def entity_types(entity: Entity) -> set[str]:
    """The set of types of an entity in the internal form."""
    types = entity.get("type")
    if isinstance(types, str):
        return {types}
    if isinstance(types, list):
        return {t for t in types if isinstance(t, str)}
    return set()


def entity_attr_names(entity: Entity) -> set[str]:
    """The set of attribute names of an entity in the internal form."""
    attrs = entity.get("attrs")
    if isinstance(attrs, dict):
        return set(attrs)
    return set()


def as_ngsi_error(entity_id: str, exc: Exception) -> NgsiLdError:
    """The error reported for one failed mutation of a batch.

    A mutation refuses a change with an NgsiLdError; anything else is a bug,
    logged here and reported as an InternalError.
    """
    if isinstance(exc, NgsiLdError):
        return exc
    log.error("mutation of entity %s failed", entity_id, exc_info=exc)
    return InternalError(f"the update of entity {entity_id} failed unexpectedly")

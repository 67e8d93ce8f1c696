"""Bounded regular expressions for ``~=``, ``!~=`` (clause 4.9) and ``idPattern``.

Patterns come from clients, so a pattern with catastrophic backtracking must
not hang the broker: matching uses the ``regex`` package with a time-out per
match.  A pattern that does not compile is :class:`BadRequestData`; a match that
runs out of time is :class:`TooComplexQuery` (403: the query is valid but too
expensive for this broker), never a hang.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import regex

from ngsi_ld.errors import BadRequestData, TooComplexQuery

#: longest pattern accepted, in characters
MAX_PATTERN_LENGTH = 1024
#: seconds one match may take before the query is refused
MATCH_TIMEOUT = 0.2


@lru_cache(maxsize=512)
def _compile(pattern: str) -> Any:
    return regex.compile(pattern, flags=regex.V0)


def compile_pattern(pattern: str, what: str = "regular expression") -> Any:
    """The compiled pattern; BadRequestData if it is too long or invalid."""
    if not isinstance(pattern, str):
        raise BadRequestData(f"{what} must be a string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise BadRequestData(f"{what} longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return _compile(pattern)
    except (regex.error, ValueError, OverflowError) as exc:
        raise BadRequestData(f"invalid {what} {pattern!r}: {exc}") from None


def search(pattern: str, text: str) -> bool:
    """True if ``pattern`` matches somewhere in ``text``; TooComplexQuery on time-out."""
    compiled = compile_pattern(pattern)
    try:
        return compiled.search(text, timeout=MATCH_TIMEOUT) is not None
    except TimeoutError:
        raise TooComplexQuery(
            f"regular expression {pattern!r} took more than {MATCH_TIMEOUT} s to match"
        ) from None

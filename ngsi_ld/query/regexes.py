"""Bounded regular expressions for ``~=``, ``!~=`` (clause 4.9) and ``idPattern``.

Patterns come from clients, so neither compiling nor matching one may hang the
broker or hold its memory:

* a pattern is compiled by RE2 (``google-re2``), whose matching takes time
  linear in the text and whose compiled program is bounded (``MAX_PROGRAM_MEMORY``
  bytes, repetition counts up to 1,000): ``(.*){999999}`` is refused at once
  instead of taking seconds and gigabytes to compile;
* a pattern RE2 cannot express (look-around, back-references: not POSIX, which
  clause 4.9 and Table 5.2.8-1 name, but clients send them) falls back to the
  ``regex`` package, after a bound on what it would compile to
  (``MAX_FALLBACK_WEIGHT``, repetition counts multiplied through their nesting)
  and with a time-out per match (``MATCH_TIMEOUT``);
* compiled patterns are cached, the cache bounded in bytes (``CACHE_BYTES``,
  each entry counted at its engine's memory budget), not in entries.

A pattern that does not compile or is too large is :class:`BadRequestData`; a
fallback match that runs out of time is :class:`TooComplexQuery` (403: the query
is valid but too expensive for this broker), never a hang.
"""

from __future__ import annotations

import re._parser as sre_parse  # the standard library's parser: syntax only, no compiling
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import re2
import regex

from ngsi_ld.errors import BadRequestData, TooComplexQuery

__all__ = ["CACHE_BYTES", "MATCH_TIMEOUT", "MAX_PATTERN_LENGTH", "MAX_PROGRAM_MEMORY",
           "Compiled", "cache_size", "compile_pattern", "search"]

#: longest pattern accepted, in characters
MAX_PATTERN_LENGTH = 1024
#: seconds one match of a fallback (``regex``) pattern may take before the query is refused
MATCH_TIMEOUT = 0.2
#: bytes RE2 may use for one pattern (its program and its DFA cache)
MAX_PROGRAM_MEMORY = 128 * 1024
#: what a fallback pattern may weigh: its nodes, each multiplied by enclosing repetitions
MAX_FALLBACK_WEIGHT = 5_000
#: bytes a fallback pattern is counted at, per unit of weight (the regex package's nodes)
_FALLBACK_BYTES_PER_WEIGHT = 64
#: bytes the compiled patterns kept for reuse may take together
CACHE_BYTES = 32 * 1024 * 1024

_OPTIONS = re2.Options()
_OPTIONS.max_mem = MAX_PROGRAM_MEMORY
_OPTIONS.log_errors = False
#: RE2 errors that mean "a feature RE2 lacks", not "a broken or too large pattern"
_UNSUPPORTED = (b"invalid perl operator", b"invalid escape sequence", b"invalid named capture",
                b"bad repetition operator")  # the last: possessive quantifiers (a*+)
_REPEATS = frozenset({sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, sre_parse.POSSESSIVE_REPEAT})


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled client pattern: the engine's object and what it is counted at."""

    pattern: str
    engine: Any  # re2._Regexp or regex.Pattern
    linear: bool  # RE2: no time-out needed
    cost: int  # bytes, for the cache budget

    def search(self, text: str) -> bool:
        """True if the pattern matches somewhere in ``text``; TooComplexQuery on time-out."""
        if self.linear:
            return self.engine.search(text) is not None
        try:
            return self.engine.search(text, timeout=MATCH_TIMEOUT) is not None
        except TimeoutError:
            raise TooComplexQuery(
                f"regular expression {self.pattern!r} took more than {MATCH_TIMEOUT} s to match"
            ) from None


class _Cache:
    """Least recently used compiled patterns, at most ``limit`` bytes of them.

    Thread-safe: the SQLite store matches ``idPattern`` on its own threads.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[str, Compiled] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, pattern: str) -> Compiled | None:
        with self._lock:
            found = self._items.get(pattern)
            if found is not None:
                self._items.move_to_end(pattern)
            return found

    def put(self, compiled: Compiled) -> None:
        with self._lock:
            if compiled.pattern in self._items or compiled.cost > self.limit:
                return
            self._items[compiled.pattern] = compiled
            self.size += compiled.cost
            while self.size > self.limit:
                _, dropped = self._items.popitem(last=False)
                self.size -= dropped.cost

    def __len__(self) -> int:
        return len(self._items)


_CACHE = _Cache(CACHE_BYTES)


def cache_size() -> tuple[int, int]:
    """(patterns, bytes) the compiled-pattern cache holds now."""
    return len(_CACHE), _CACHE.size


def _weight(items: Any, depth: int = 0) -> int:
    """Nodes of a parsed pattern, repetitions multiplied through (an upper bound)."""
    total = 0
    for op, av in items:
        if op in _REPEATS:
            low, high, sub = av
            count = high if high != sre_parse.MAXREPEAT else max(low, 1)
            total += 1 + count * _weight(sub, depth + 1)
        elif op is sre_parse.SUBPATTERN:
            total += 1 + _weight(av[-1], depth + 1)
        elif op is sre_parse.BRANCH:
            total += 1 + sum(_weight(branch, depth + 1) for branch in av[1])
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            total += 1 + _weight(av[1], depth + 1)
        elif op is sre_parse.ATOMIC_GROUP:
            total += 1 + _weight(av, depth + 1)
        elif op is sre_parse.GROUPREF_EXISTS:
            total += 1 + sum(_weight(b, depth + 1) for b in av[1:] if b is not None)
        else:
            total += 1
        if total > MAX_FALLBACK_WEIGHT:
            return total  # enough to refuse: no need to walk the rest
    return total


def _fallback(pattern: str, what: str) -> Compiled:
    """A pattern RE2 cannot express, compiled by ``regex`` once its size is known bounded."""
    try:
        weight = _weight(sre_parse.parse(pattern))
    except (sre_parse.error, OverflowError, RecursionError, ValueError) as exc:
        raise BadRequestData(f"invalid {what} {pattern!r}: {exc}") from None
    if weight > MAX_FALLBACK_WEIGHT:
        raise BadRequestData(f"{what} {pattern!r} is too large once its repetitions are "
                             "counted")
    try:
        engine = regex.compile(pattern, flags=regex.V0)
    except (regex.error, ValueError, OverflowError) as exc:
        raise BadRequestData(f"invalid {what} {pattern!r}: {exc}") from None
    cost = 2 * len(pattern) + weight * _FALLBACK_BYTES_PER_WEIGHT
    return Compiled(pattern, engine, False, cost)


def compile_pattern(pattern: str, what: str = "regular expression") -> Compiled:
    """The compiled pattern; BadRequestData if it is too long, too large or invalid."""
    if not isinstance(pattern, str):
        raise BadRequestData(f"{what} must be a string")
    found = _CACHE.get(pattern)
    if found is not None:
        return found
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise BadRequestData(f"{what} longer than {MAX_PATTERN_LENGTH} characters")
    try:
        compiled = Compiled(pattern, re2.compile(pattern, _OPTIONS), True,
                            2 * len(pattern) + MAX_PROGRAM_MEMORY)
    except re2.error as exc:
        message = exc.args[0] if exc.args else b""
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        if not isinstance(message, bytes) or not message.startswith(_UNSUPPORTED):
            raise BadRequestData(f"invalid {what} {pattern!r}: {text}") from None
        compiled = _fallback(pattern, what)
    except (ValueError, TypeError) as exc:  # e.g. a lone surrogate RE2 cannot encode
        raise BadRequestData(f"invalid {what} {pattern!r}: {exc}") from None
    _CACHE.put(compiled)
    return compiled


def search(pattern: str, text: str) -> bool:
    """True if ``pattern`` matches somewhere in ``text``; TooComplexQuery on time-out."""
    return compile_pattern(pattern).search(text)

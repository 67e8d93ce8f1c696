"""A small parser of ``;`` (and), ``|`` / ``,`` (or) and parentheses over leaf tokens.

Shared by entity type expressions (clause 4.17) and scopeQ (clause 4.19); the
q language (clause 4.9) has its own parser because its terms are richer.
``;`` binds tighter than ``|`` and ``,``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from ngsi_ld.errors import BadRequestData

T = TypeVar("T")

MAX_LENGTH = 8192
MAX_DEPTH = 32
_SPECIAL = frozenset(";|,()")


def parse_logic(
    text: str,
    what: str,
    leaf: Callable[[str, int], T],
    and_: Callable[[tuple[T, ...]], T],
    or_: Callable[[tuple[T, ...]], T],
) -> T:
    """Parse ``text``; ``leaf(token, position)`` builds (and validates) each leaf.

    Errors are BadRequestData ``"invalid <what> at position N: ..."``.
    """
    if not isinstance(text, str):
        raise BadRequestData(f"{what} must be a string")
    if len(text) > MAX_LENGTH:
        raise BadRequestData(f"invalid {what}: longer than {MAX_LENGTH} characters")
    tokens = _tokenize(text)
    state: _State[T] = _State(text, what, tokens, leaf, and_, or_)
    if not tokens:
        raise state.fail("empty expression", 0)
    result = state.parse_or(0)
    if state.index < len(tokens):
        token, pos = tokens[state.index]
        raise state.fail(f"unexpected {token!r}", pos)
    return result


def _tokenize(text: str) -> list[tuple[str, int]]:
    tokens: list[tuple[str, int]] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char.isspace():
            pos += 1
        elif char in _SPECIAL:
            tokens.append((char, pos))
            pos += 1
        else:
            start = pos
            while pos < len(text) and text[pos] not in _SPECIAL and not text[pos].isspace():
                pos += 1
            tokens.append((text[start:pos], start))
    return tokens


class _State(Generic[T]):
    def __init__(
        self,
        text: str,
        what: str,
        tokens: Sequence[tuple[str, int]],
        leaf: Callable[[str, int], T],
        and_: Callable[[tuple[T, ...]], T],
        or_: Callable[[tuple[T, ...]], T],
    ) -> None:
        self.text, self.what, self.tokens = text, what, tokens
        self.leaf, self.and_, self.or_ = leaf, and_, or_
        self.index = 0

    def fail(self, message: str, pos: int) -> BadRequestData:
        return BadRequestData(f"invalid {self.what} at position {pos}: {message}")

    def current(self) -> tuple[str, int]:
        if self.index < len(self.tokens):
            return self.tokens[self.index]
        return "", len(self.text)

    def parse_or(self, depth: int) -> T:
        terms = [self.parse_and(depth)]
        while self.current()[0] in ("|", ","):
            self.index += 1
            terms.append(self.parse_and(depth))
        return terms[0] if len(terms) == 1 else self.or_(tuple(terms))

    def parse_and(self, depth: int) -> T:
        terms = [self.parse_primary(depth)]
        while self.current()[0] == ";":
            self.index += 1
            terms.append(self.parse_primary(depth))
        return terms[0] if len(terms) == 1 else self.and_(tuple(terms))

    def parse_primary(self, depth: int) -> T:
        token, pos = self.current()
        if token == "(":
            if depth >= MAX_DEPTH:
                raise self.fail(f"parentheses nested deeper than {MAX_DEPTH}", pos)
            self.index += 1
            inner = self.parse_or(depth + 1)
            closing, at = self.current()
            if closing != ")":
                raise self.fail("expected ')'", at)
            self.index += 1
            return inner
        if token == "" or token in _SPECIAL:
            found = repr(token) if token else "the end"
            raise self.fail(f"expected a name, found {found}", pos)
        self.index += 1
        return self.leaf(token, pos)

"""The NGSI-LD Attribute Projection Language of ``pick`` and ``omit`` (ETSI GS CIM 009 clause 4.21).

Grammar (clause 4.21)::

    orOp             = "|" / ","
    ProjectionTerm   = AttrName *1(LinkedEntityTerm) *(orOp ProjectionTerm)
    LinkedEntityTerm = "{" ProjectionTerm "}"

``pick=id,locatedAt{name}`` keeps ``id`` and ``locatedAt`` of the entity and,
when Linked Entity retrieval (clause 4.5.23) is requested, only ``name`` of the
entity ``locatedAt`` links to.  In ``omit`` a term with a linked selection names
what to remove from the Linked Entity, not the Relationship itself:
``omit=type,locatedAt{name}`` removes ``type`` and keeps ``locatedAt``.

Names are terms or IRIs (the characters of the q language's attribute names);
whitespace around a name is ignored.  Input is bounded (:data:`MAX_LENGTH`,
:data:`MAX_DEPTH`) so parsing never recurses without limit; errors are
:class:`BadRequestData`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from ngsi_ld.errors import BadRequestData

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "Projection", "parse_projection"]

MAX_LENGTH = 8192
#: nested linked selections a projection may hold (deeper than any joinLevel allowed)
MAX_DEPTH = 32

_NAME = re.compile(r"[\w\-:/#@%+.~]+")
_SPACE = re.compile(r"[ \t]*")


@dataclass(frozen=True, slots=True)
class Projection:
    """One level of a projection: the members it names and, per Relationship name,
    the projection of the Linked Entity (hashable, so it can key a cache)."""

    #: members named without a linked selection
    names: frozenset[str] = frozenset()
    #: (Relationship name, projection of the entity it links to), sorted by name
    linked: tuple[tuple[str, Projection], ...] = ()

    @property
    def picked(self) -> frozenset[str]:
        """The members ``pick`` keeps: the names and the heads of linked selections."""
        if not self.linked:
            return self.names
        return self.names | {name for name, _ in self.linked}

    @property
    def depth(self) -> int:
        """Linked Entity hops the projection reaches (0: none)."""
        return max((1 + sub.depth for _, sub in self.linked), default=0)

    def nested(self, name: str) -> Projection | None:
        """The projection of the entity the ``name`` Relationship links to, or None."""
        for head, sub in self.linked:
            if head == name:
                return sub
        return None

    def renamed(self, rename: Callable[[str], str]) -> Projection:
        """The same projection with every name passed through ``rename`` (e.g. expanded)."""
        linked: dict[str, Projection] = {}
        for head, sub in self.linked:
            _merge(linked, rename(head), sub.renamed(rename))
        return Projection(frozenset(rename(n) for n in self.names), _sorted(linked))


def parse_projection(text: str, what: str = "projection") -> Projection:
    """Parse a ``pick``/``omit`` value; BadRequestData naming the position if invalid."""
    if len(text) > MAX_LENGTH:
        raise BadRequestData(f"{what} longer than {MAX_LENGTH} characters")
    parser = _Parser(text, what)
    projection = parser.terms(0)
    if parser.pos != len(text):
        parser.fail("unexpected '}'" if text[parser.pos] == "}" else "invalid character")
    return projection


def _merge(linked: dict[str, Projection], head: str, sub: Projection) -> None:
    known = linked.get(head)
    if known is None:
        linked[head] = sub
        return
    both = dict(known.linked)
    for name, deeper in sub.linked:
        _merge(both, name, deeper)
    linked[head] = Projection(known.names | sub.names, _sorted(both))


def _sorted(linked: dict[str, Projection]) -> tuple[tuple[str, Projection], ...]:
    return tuple(sorted(linked.items(), key=lambda item: item[0]))


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.pos = 0

    def fail(self, message: str) -> NoReturn:
        raise BadRequestData(f"invalid {self.what} {self.text!r}: {message} at {self.pos}")

    def skip_space(self) -> None:
        match = _SPACE.match(self.text, self.pos)
        if match is not None:
            self.pos = match.end()

    def terms(self, depth: int) -> Projection:
        """ProjectionTerm *(orOp ProjectionTerm), up to a "}" or the end."""
        if depth > MAX_DEPTH:
            self.fail(f"linked selections nest deeper than {MAX_DEPTH}")
        names: set[str] = set()
        linked: dict[str, Projection] = {}
        while True:
            self.skip_space()
            match = _NAME.match(self.text, self.pos)
            if match is None:
                self.fail("an attribute name is expected")
            name = match.group()
            self.pos = match.end()
            self.skip_space()
            if self.text.startswith("{", self.pos):
                self.pos += 1
                _merge(linked, name, self.terms(depth + 1))
                if not self.text.startswith("}", self.pos):
                    self.fail("'}' is expected")
                self.pos += 1
                self.skip_space()
            else:
                names.add(name)
            if self.pos < len(self.text) and self.text[self.pos] in ",|":
                self.pos += 1
                continue
            return Projection(frozenset(names), _sorted(linked))

"""The NGSI-LD Attribute Projection Language of ``pick`` and ``omit`` (ETSI GS CIM 009 4.21).

Grammar (ABNF of 4.21)::

    ProjectionTerm   = AttrName *1(LinkedEntityTerm) *(orOp ProjectionTerm)
    LinkedEntityTerm = "{" ProjectionTerm "}"
    orOp             = "|" / ","

An element is an Entity member (``id``, ``type``, ``scope``) or an Attribute name
(a term, or an IRI such as ``https://example.org/speed``); ``rel{a,b}`` projects
the Linked Entity reached through ``rel`` (clause 4.5.23, only meaningful with
Linked Entity retrieval).  Whitespace around elements is ignored.  Anything
else (``id;name``, ``a,,b``, ``a{{b}``, ``a{}``) is BadRequestData.

``pick=id,locatedAt{name}`` keeps ``id`` and ``locatedAt`` of the entity and
only ``name`` of the entity ``locatedAt`` links to (:attr:`Projection.picked`).
In ``omit`` a term with a linked selection names what to remove from the Linked
Entity, not the Relationship: ``omit=type,locatedAt{name}`` removes ``type`` and
keeps ``locatedAt`` (:attr:`Projection.omitted`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ngsi_ld.errors import BadRequestData

_TERM = re.compile(r"[^\W\d][\w\-]*")
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s,|{}();\"'<>\\]+")
#: projections nested deeper than this are refused (no Linked Entity retrieval goes deeper)
MAX_DEPTH = 16
MAX_LENGTH = 8192


@dataclass(frozen=True)
class Projection:
    """The names a projection lists, and the projections of the Linked Entities it names.

    Hashable (a View keyed on it is a cache key), although ``linked`` is a dict.
    """

    names: tuple[str, ...]
    linked: dict[str, Projection] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.names, tuple(sorted(self.linked.items(), key=lambda i: i[0]))))

    @property
    def depth(self) -> int:
        """How many Linked Entity hops the projection reaches (0 when flat)."""
        return 1 + max(p.depth for p in self.linked.values()) if self.linked else 0

    @property
    def picked(self) -> frozenset[str]:
        """The members a ``pick`` keeps: every name, Relationships with a selection too."""
        return frozenset(self.names)

    @property
    def omitted(self) -> frozenset[str]:
        """The members an ``omit`` removes: the names without a linked selection."""
        return frozenset(n for n in self.names if n not in self.linked)

    def nested(self, name: str) -> Projection | None:
        """The projection of the entity the ``name`` Relationship links to, or None."""
        return self.linked.get(name)

    def renamed(self, rename: Callable[[str], str]) -> Projection:
        """The same projection with every name passed through ``rename`` (e.g. expanded)."""
        return Projection(
            tuple(dict.fromkeys(rename(n) for n in self.names)),
            {rename(name): sub.renamed(rename) for name, sub in self.linked.items()},
        )


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text, self.what, self.pos = text, what, 0

    def fail(self, message: str) -> BadRequestData:
        return BadRequestData(f"invalid {self.what} at position {self.pos}: {message}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def terms(self, depth: int) -> Projection:
        names: list[str] = []
        linked: dict[str, Projection] = {}
        while True:
            self.skip_ws()
            match = _IRI.match(self.text, self.pos) or _TERM.match(self.text, self.pos)
            if match is None:
                found = self.text[self.pos:self.pos + 1]
                raise self.fail(f"expected a name, found {found!r}" if found else
                                "expected a name")
            name = match.group()
            self.pos = match.end()
            names.append(name)
            self.skip_ws()
            if self.text.startswith("{", self.pos):
                if depth >= MAX_DEPTH:
                    raise self.fail(f"nested deeper than {MAX_DEPTH}")
                self.pos += 1
                linked[name] = _merged(linked.get(name), self.terms(depth + 1))
                self.skip_ws()
                if not self.text.startswith("}", self.pos):
                    raise self.fail("expected '}'")
                self.pos += 1
                self.skip_ws()
            if self.pos < len(self.text) and self.text[self.pos] in ",|":
                self.pos += 1
                continue
            return Projection(tuple(dict.fromkeys(names)), linked)


def _merged(known: Projection | None, more: Projection) -> Projection:
    """``a{b},a{c}``: one selection of ``a`` holding both."""
    if known is None:
        return more
    linked = dict(known.linked)
    for name, sub in more.linked.items():
        linked[name] = _merged(linked.get(name), sub)
    return Projection(tuple(dict.fromkeys((*known.names, *more.names))), linked)


# 4.21 NGSI-LD Attribute Projection Language
def parse_projection(text: str, what: str = "pick") -> Projection:
    """Parse a ``pick`` or ``omit`` value; BadRequestData (with the position) if invalid."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH:
        raise BadRequestData(f"invalid {what}: a string of at most {MAX_LENGTH} characters")
    parser = _Parser(text, what)
    projection = parser.terms(0)
    if parser.pos != len(text):
        raise parser.fail(f"unexpected {text[parser.pos]!r}")
    return projection


__all__ = ["MAX_DEPTH", "MAX_LENGTH", "Projection", "parse_projection"]

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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ngsi_ld.errors import BadRequestData

_TERM = re.compile(r"[^\W\d][\w\-]*")
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s,|{}();\"'<>\\]+")
#: projections nested deeper than this are refused (no Linked Entity retrieval goes deeper)
MAX_DEPTH = 16
MAX_LENGTH = 8192


@dataclass(frozen=True)
class Projection:
    """The names a projection lists, and the projections of the Linked Entities it names."""

    names: tuple[str, ...]
    linked: dict[str, Projection] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        """How many Linked Entity hops the projection reaches (0 when flat)."""
        return 1 + max(p.depth for p in self.linked.values()) if self.linked else 0


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
                linked[name] = self.terms(depth + 1)
                self.skip_ws()
                if not self.text.startswith("}", self.pos):
                    raise self.fail("expected '}'")
                self.pos += 1
                self.skip_ws()
            if self.pos < len(self.text) and self.text[self.pos] in ",|":
                self.pos += 1
                continue
            return Projection(tuple(dict.fromkeys(names)), linked)


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


__all__ = ["MAX_DEPTH", "Projection", "parse_projection"]

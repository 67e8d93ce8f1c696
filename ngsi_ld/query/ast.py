"""The immutable AST of the NGSI-LD Query Language (ETSI GS CIM 009 clause 4.9).

A q expression is a tree of :class:`And` / :class:`Or` nodes whose leaves are
:class:`Exists` (``attr`` / ``!attr``) and :class:`Comparison` terms.  Every
node is a frozen dataclass, so two parses of the same text compare equal and
nodes can be used as cache keys.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# 4.9: the members of an attribute a query term may address after the attribute path
MEMBERS = frozenset({"observedAt", "createdAt", "modifiedAt", "unitCode", "datasetId"})
#: members whose values are compared as time instants
TIME_MEMBERS = frozenset({"observedAt", "createdAt", "modifiedAt"})


@dataclass(frozen=True, slots=True)
class Hop:
    """``rel{`` or ``rel{Type,Type:``: a Relationship followed to its Linked Entities
    (4.9 EXAMPLE 13/14), optionally only those of the hinted Entity Types."""

    relationship: str
    types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AttrPath:
    """``attr.sub.member[key.key]``: an attribute, its sub-attributes and a target inside.

    ``names`` are the attribute then sub-attribute names (terms until
    :func:`resolve_names` expands them); ``member`` is one of :data:`MEMBERS` or
    None for the main value; ``keys`` walk into a JSON value (never expanded).
    ``via`` are the Relationships followed first (``rel{attr}``): the path is then
    one of a Linked Entity, which the evaluators do not read; the query route
    resolves such terms before (``ngsi_ld.query.linked``).
    """

    names: tuple[str, ...]
    member: str | None = None
    keys: tuple[str, ...] = ()
    via: tuple[Hop, ...] = ()


# -- values -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Number:
    value: int | float


@dataclass(frozen=True, slots=True)
class Text:
    """A quoted string.  ``vocab_iri`` is its expansion as a vocabulary term, if known.

    A VocabProperty stores its ``vocab`` expanded, so ``category=="commercial"``
    must also match the IRI the @context maps ``commercial`` to; the expansion is
    not part of the syntax and is ignored by equality.
    """

    value: str
    vocab_iri: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Boolean:
    value: bool


@dataclass(frozen=True, slots=True)
class Uri:
    """An unquoted URI such as ``urn:ngsi-ld:Building:1``, or an unquoted term such as
    ``Male`` (4.9 EXAMPLE 12); compared as a string."""

    value: str


@dataclass(frozen=True, slots=True)
class DateTime:
    """An ISO 8601 date-time, compared as a time instant (naive means UTC)."""

    text: str

    @property
    def instant(self) -> dt.datetime:
        return parse_instant(self.text)


@dataclass(frozen=True, slots=True)
class Date:
    text: str

    @property
    def date(self) -> dt.date:
        return dt.date.fromisoformat(self.text)


@dataclass(frozen=True, slots=True)
class Time:
    """A time of day, compared as seconds since midnight UTC."""

    text: str

    @property
    def seconds(self) -> float:
        return parse_time_seconds(self.text)


Scalar = Number | Text | Boolean | Uri | DateTime | Date | Time
Comparable = Number | Text | DateTime | Date | Time


@dataclass(frozen=True, slots=True)
class Range:
    """``low..high``, both ends included."""

    low: Comparable
    high: Comparable


@dataclass(frozen=True, slots=True)
class ValueList:
    """``a,b,c``: equal to any of them (``==``) or to none of them (``!=``)."""

    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Pattern:
    """A regular expression for ``~=`` / ``!~=`` (searched anywhere in the string)."""

    pattern: str


QValue = Scalar | Range | ValueList | Pattern

# -- expressions ----------------------------------------------------------------------

#: comparison operators, in the order the tokenizer must try them (longest first)
OPERATORS = ("!~=", "==", "!=", ">=", "<=", "~=", ">", "<")


@dataclass(frozen=True, slots=True)
class Comparison:
    """``path op value``; ``op`` is one of :data:`OPERATORS`."""

    path: AttrPath
    op: str
    value: QValue


@dataclass(frozen=True, slots=True)
class Exists:
    """``attr`` (present) or ``!attr`` (absent, ``negated``)."""

    path: AttrPath
    negated: bool = False


@dataclass(frozen=True, slots=True)
class And:
    """``a;b;...`` (at least two terms)."""

    terms: tuple[QExpr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """``a|b|...`` (at least two terms)."""

    terms: tuple[QExpr, ...]


QExpr = Comparison | Exists | And | Or


# -- time helpers (pure) ----------------------------------------------------------------


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 date-time (or date) as an aware UTC datetime; ValueError if invalid."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def parse_time_seconds(text: str) -> float:
    """An ISO 8601 time of day as seconds since midnight UTC; ValueError if invalid."""
    value = dt.time.fromisoformat(text)
    seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
    offset = value.utcoffset()
    if offset is not None:
        seconds = (seconds - offset.total_seconds()) % 86400
    return seconds

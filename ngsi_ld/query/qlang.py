"""Parser and printer of the NGSI-LD Query Language (ETSI GS CIM 009 clause 4.9).

Grammar accepted (a superset of the clause 4.9 ABNF)::

    Query      = Or
    Or         = And *("|" And)
    And        = Primary *(";" Primary)          ; ";" binds tighter than "|"
    Primary    = "(" Query ")" / "!" Attribute / Attribute [Operator Value]
    Attribute  = name *("." name) ["." member] *("[" key *("." key) "]")
    Value      = Range / ValueList / Scalar / Pattern   ; by operator
    Scalar     = Number / quotedStr / true / false / dateTime / date / time / URI / term

* ``member`` is one of observedAt, createdAt, modifiedAt, unitCode, datasetId.
* Names are terms (Unicode letters, digits, ``_``, ``-``) or IRIs (``https://ex.org/temp``,
  ``ex:temp``).  Inside an IRI a ``.`` separates only when what follows starts
  another IRI (``scheme:``) or is a member name; after a term every ``.`` does.
* Compound keys may be written ``attr[a.b]`` or ``attr[a][b]`` (same AST).
* Quoted strings use ``\\`` to escape the next character (``\\"``, ``\\\\``).
* An unquoted ``term`` (letters, digits, ``_``, ``-``; 4.9 EXAMPLE 12 writes
  ``gender==Male``) is compared as a string, like a URI: ``expandValues`` may
  expand it with the @context.
* The regex after ``~=`` / ``!~=`` is a quoted string, or unquoted text that
  runs to the next ``;`` or ``|`` outside parentheses and brackets.
* Whitespace between tokens is ignored.

Input is bounded (:data:`MAX_LENGTH` characters, :data:`MAX_DEPTH` nested
parentheses), so parsing never recurses without limit.  Errors are
:class:`BadRequestData` naming the 0-based position.
"""

from __future__ import annotations

import math
import re

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query.ast import (
    MEMBERS,
    OPERATORS,
    And,
    AttrPath,
    Boolean,
    Comparison,
    Date,
    DateTime,
    Exists,
    Hop,
    Number,
    Or,
    Pattern,
    QExpr,
    QValue,
    Range,
    Scalar,
    Text,
    Time,
    Uri,
    ValueList,
    parse_instant,
    parse_time_seconds,
)
from ngsi_ld.query.qformat import format_path, format_q
from ngsi_ld.query.regexes import compile_pattern

MAX_LENGTH = 8192
MAX_DEPTH = 32

_NAME_CHARS = re.compile(r"[\w\-:/#@%+.]+")
_TERM = re.compile(r"[\w\-]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-]*:(?!\d)")
# 4.9 EXAMPLE 14: Entity Type hints before the path of a Linked Entity (``{Device:humidity}``)
_TYPE_HINT = re.compile(r"[^\W\d][\w\-]*(?:\s*,\s*[^\W\d][\w\-]*)*:(?=[^\W\d])")
_KEY = re.compile(r"[^\[\].;|()=!<>~\"',\s]+")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?", re.ASCII
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?", re.ASCII)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", re.ASCII)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s;|(),\"]+")
_WORD = re.compile(r"[A-Za-z]+")
# an unquoted term such as Male in gender==Male&expandValues=gender (4.9 EXAMPLE 12)
_BARE = re.compile(r"[^\W\d][\w\-]*")
_VALUE_END = frozenset(";|),")


class _Parser:
    def __init__(self, text: str, linked: bool = False) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0
        self.linked = linked

    # -- helpers -------------------------------------------------------------------
    def fail(self, message: str, pos: int | None = None) -> BadRequestData:
        at = self.pos if pos is None else pos
        return BadRequestData(f"invalid q at position {at}: {message}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def match(self, pattern: re.Pattern[str]) -> str | None:
        m = pattern.match(self.text, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m.group()

    # -- expressions -----------------------------------------------------------------
    def parse(self) -> QExpr:
        if not self.text.strip():
            raise self.fail("empty query", 0)
        expr = self.parse_or()
        if self.peek():
            char = self.text[self.pos]
            if char == ")":
                raise self.fail("unbalanced ')'")
            raise self.fail(f"expected ';', '|' or the end, found {char!r}")
        return expr

    def parse_or(self) -> QExpr:
        terms = [self.parse_and()]
        while self.peek() == "|":
            self.pos += 1
            terms.append(self.parse_and())
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def parse_and(self) -> QExpr:
        terms = [self.parse_primary()]
        while self.peek() == ";":
            self.pos += 1
            terms.append(self.parse_primary())
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def parse_primary(self) -> QExpr:
        char = self.peek()
        if char == "(":
            if self.depth >= MAX_DEPTH:
                raise self.fail(f"parentheses nested deeper than {MAX_DEPTH}")
            self.depth += 1
            self.pos += 1
            expr = self.parse_or()
            if self.peek() != ")":
                raise self.fail("expected ')'")
            self.pos += 1
            self.depth -= 1
            return expr
        if char == "!":
            self.pos += 1
            self.skip_ws()
            return Exists(self.parse_attribute(), negated=True)
        path = self.parse_attribute()
        self.skip_ws()
        op = next((o for o in OPERATORS if self.text.startswith(o, self.pos)), None)
        if op is None:
            if self.peek() in ("", ";", "|", ")"):
                return Exists(path)
            raise self.fail("expected an operator")
        self.pos += len(op)
        self.skip_ws()
        return Comparison(path, op, self.parse_operand(op))

    # -- attribute paths --------------------------------------------------------------
    def parse_attribute(self) -> AttrPath:
        start = self.pos
        raw = self.match(_NAME_CHARS)
        if raw is None:
            raise self.fail("expected an attribute name")
        names = _split_path(raw)
        for name in names:
            if not name:
                raise self.fail("empty attribute name", start)
            valid = _SCHEME.match(name) if ":" in name else _TERM.fullmatch(name)
            if not valid:
                raise self.fail(f"invalid attribute name {name!r}", start)
        member = names[-1] if len(names) > 1 and names[-1] in MEMBERS else None
        if member is not None:
            names = names[:-1]
        keys: list[str] = []
        while self.pos < len(self.text) and self.text[self.pos] == "[":
            if member is not None:
                raise self.fail(f"{member} has no compound keys")
            self.pos += 1
            while True:
                key = self.match(_KEY)
                if key is None:
                    raise self.fail("expected a key inside '[...]'")
                keys.append(key)
                if self.pos < len(self.text) and self.text[self.pos] == ".":
                    self.pos += 1
                    continue
                break
            if self.pos >= len(self.text) or self.text[self.pos] != "]":
                raise self.fail("expected ']'")
            self.pos += 1
        if self.linked and self.pos < len(self.text) and self.text[self.pos] == "{":
            return self.parse_linked(names, member, keys, start)
        return AttrPath(tuple(names), member, tuple(keys))

    def parse_linked(self, names: list[str], member: str | None, keys: list[str],
                     start: int) -> AttrPath:
        """``rel{[Type,Type:]path}``: the path of the entity ``rel`` links to (4.9)."""
        if len(names) != 1 or member is not None or keys:
            raise self.fail("'{' follows the name of a Relationship only", start)
        if self.depth >= MAX_DEPTH:
            raise self.fail(f"Linked Entity paths nested deeper than {MAX_DEPTH}")
        self.pos += 1
        self.skip_ws()
        hint = self.match(_TYPE_HINT)
        types = () if hint is None else tuple(t.strip() for t in hint[:-1].split(","))
        self.depth += 1
        inner = self.parse_attribute()
        self.depth -= 1
        self.skip_ws()
        if not self.text.startswith("}", self.pos):
            raise self.fail("expected '}'")
        self.pos += 1
        hop = Hop(names[0], types)
        return AttrPath(inner.names, inner.member, inner.keys, (hop, *inner.via))

    # -- values -------------------------------------------------------------------------
    def parse_operand(self, op: str) -> QValue:
        if op in ("~=", "!~="):
            return self.parse_pattern()
        start = self.pos
        first = self.parse_scalar()
        if op not in ("==", "!="):
            if isinstance(first, Boolean | Uri):
                raise self.fail("expected a number, a string or a date/time", start)
            self.expect_value_end()
            return first
        if self.text.startswith("..", self.pos):
            self.pos += 2
            self.skip_ws()
            high_start = self.pos
            high = self.parse_scalar()
            if isinstance(first, Boolean | Uri):
                raise self.fail("a range needs numbers, strings or dates", start)
            if isinstance(high, Boolean | Uri):
                raise self.fail("a range needs numbers, strings or dates", high_start)
            self.expect_value_end()
            return Range(first, high)
        values: list[Scalar] = [first]
        while self.peek() == ",":
            self.pos += 1
            self.skip_ws()
            values.append(self.parse_scalar())
        self.expect_value_end()
        return first if len(values) == 1 else ValueList(tuple(values))

    def expect_value_end(self) -> None:
        char = self.peek()
        if char and char not in _VALUE_END:
            raise self.fail(f"unexpected {char!r} after the value")
        if char == ",":
            raise self.fail("a value list is only allowed with == and !=")

    def parse_scalar(self) -> Scalar:
        start = self.pos
        if start >= len(self.text):
            raise self.fail("expected a value")
        if self.text[start] == '"':
            return Text(self.parse_quoted())
        for pattern, kind in ((_DATETIME, "datetime"), (_DATE, "date"), (_TIME, "time")):
            m = pattern.match(self.text, start)
            if m and not self._continues_number(m.end()):
                self.pos = m.end()
                return self._temporal(kind, m.group(), start)
        number = self.match(_NUMBER)
        if number is not None:
            return self._number(number, start)
        word = _WORD.match(self.text, start)
        if word and word.group() in ("true", "false") and not _URI.match(self.text, start):
            self.pos = word.end()
            return Boolean(word.group() == "true")
        uri = self.match(_URI) or self.match(_BARE)
        if uri is not None:
            return Uri(uri)
        raise self.fail("expected a value (number, quoted string, boolean, date/time or URI)")

    def _number(self, text: str, start: int) -> Number:
        if len(text) > 64:
            raise self.fail("number longer than 64 characters", start)
        value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        if not math.isfinite(value):
            raise self.fail(f"number {text} out of range", start)
        return Number(value)

    def _continues_number(self, end: int) -> bool:
        return end < len(self.text) and (self.text[end].isalnum() or self.text[end] == ":")

    def _temporal(self, kind: str, text: str, start: int) -> Scalar:
        try:
            if kind == "datetime":
                parse_instant(text)
                return DateTime(text)
            if kind == "date":
                Date(text).date  # noqa: B018 - validates
                return Date(text)
            parse_time_seconds(text)
            return Time(text)
        except ValueError:
            raise self.fail(f"invalid {kind} {text!r}", start) from None

    def parse_quoted(self) -> str:
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\\":
                if self.pos + 1 >= len(text):
                    break
                chars.append(text[self.pos + 1])
                self.pos += 2
                continue
            if char == '"':
                self.pos += 1
                return "".join(chars)
            chars.append(char)
            self.pos += 1
        raise self.fail("unterminated string", start)

    def parse_pattern(self) -> Pattern:
        start = self.pos
        if self.peek() == '"':
            pattern = self.parse_quoted()
            self.expect_value_end()
        else:
            pattern = self._unquoted_pattern()
        if not pattern:
            raise self.fail("empty regular expression", start)
        try:
            compile_pattern(pattern)
        except BadRequestData as exc:
            raise self.fail(exc.detail, start) from None
        return Pattern(pattern)

    def _unquoted_pattern(self) -> str:
        text, start, depth, in_class = self.text, self.pos, 0, False
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            if in_class:
                in_class = char != "]"
            elif char == "[":
                in_class = True
            elif char == "(":
                depth += 1
            elif char == ")":
                if depth == 0:
                    break
                depth -= 1
            elif char in ";|" and depth == 0:
                break
            self.pos += 1
        self.pos = min(self.pos, len(text))
        return text[start : self.pos]


def _split_path(raw: str) -> list[str]:
    """Split ``a.b.observedAt`` into names; dots inside IRIs do not split (see module doc)."""
    names: list[str] = []
    current = 0
    index = raw.find(".")
    while index != -1:
        segment = raw[current:index]
        rest = raw[index + 1 :]
        if ":" not in segment or _SCHEME.match(rest) or rest in MEMBERS or not segment:
            names.append(segment)
            current = index + 1
        index = raw.find(".", index + 1)
    names.append(raw[current:])
    return names


# 4.9 NGSI-LD Query Language
def parse_q(text: str, linked: bool = False) -> QExpr:
    """Parse a q expression into its AST; BadRequestData (with the position) if invalid.

    ``linked``: Linked Entity paths (``rel{attr}``, ``rel{Type:attr}``) are allowed;
    only a caller that resolves them (Query Entities) asks for them.
    """
    if not isinstance(text, str):
        raise BadRequestData("q must be a string")
    if len(text) > MAX_LENGTH:
        raise BadRequestData(f"invalid q: longer than {MAX_LENGTH} characters")
    return _Parser(text, linked).parse()


__all__ = ["MAX_DEPTH", "MAX_LENGTH", "format_path", "format_q", "parse_q"]

"""Printing q ASTs back to the q syntax (ETSI GS CIM 009 clause 4.9).

The printer is the inverse of :func:`ngsi_ld.query.parse_q`: the text it
produces parses back to an equal AST.  Strings and patterns are always quoted;
nested ``;``/``|`` groups are always parenthesised.
"""

from __future__ import annotations

from ngsi_ld.query.ast import (
    And,
    AttrPath,
    Boolean,
    Comparison,
    Date,
    DateTime,
    Exists,
    Number,
    Or,
    QExpr,
    QValue,
    Range,
    Text,
    Time,
    Uri,
    ValueList,
)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_value(value: QValue) -> str:
    """The q syntax of one value."""
    if isinstance(value, Number):
        return repr(value.value)
    if isinstance(value, Text):
        return _quote(value.value)
    if isinstance(value, Boolean):
        return "true" if value.value else "false"
    if isinstance(value, Uri):
        return value.value
    if isinstance(value, DateTime | Date | Time):
        return value.text
    if isinstance(value, Range):
        return format_value(value.low) + ".." + format_value(value.high)
    if isinstance(value, ValueList):
        return ",".join(format_value(v) for v in value.values)
    return _quote(value.pattern)


def format_path(path: AttrPath) -> str:
    """The q syntax of an attribute path."""
    text = ".".join(path.names)
    if path.member:
        text += "." + path.member
    if path.keys:
        text += "[" + ".".join(path.keys) + "]"
    for hop in reversed(path.via):
        hint = ",".join(hop.types) + ":" if hop.types else ""
        text = f"{hop.relationship}{{{hint}{text}}}"
    return text


def format_q(expr: QExpr) -> str:
    """Print an AST back to q syntax; ``parse_q(format_q(e)) == e``."""
    if isinstance(expr, Exists):
        return ("!" if expr.negated else "") + format_path(expr.path)
    if isinstance(expr, Comparison):
        return format_path(expr.path) + expr.op + format_value(expr.value)
    sep = ";" if isinstance(expr, And) else "|"
    return sep.join(
        f"({format_q(t)})" if isinstance(t, And | Or) else format_q(t) for t in expr.terms
    )


__all__ = ["format_path", "format_q", "format_value"]

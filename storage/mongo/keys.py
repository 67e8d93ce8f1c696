"""A reversible encoding of field names for MongoDB documents.

Attribute names are IRIs (``https://smartdatamodels.org/name``): they contain
dots, which MongoDB reads as path separators, and a JSON value may hold keys
that start with ``$`` (reserved for operators) or contain NUL.  Every key of a
stored document goes through :func:`encode_key`:

* ``%`` becomes ``%25`` (so that the escape character itself is unambiguous);
* ``.`` becomes ``%2E``;
* a leading ``$`` becomes ``%24`` (a ``$`` elsewhere is allowed and kept);
* NUL becomes ``%00``;
* the empty name becomes ``%`` (a lone ``%`` cannot come from any other name).

Any other character is kept, so most names (``type``, ``value``, a term) are
stored unchanged and stay readable.  :func:`decode_key` undoes it exactly.
A dotted MongoDB path is then the encoded names joined with ``.``.
"""

from __future__ import annotations

import re
from typing import Any

_ESCAPES = {"%": "%25", ".": "%2E", "\x00": "%00"}
_UNESCAPES = {"%25": "%", "%2E": ".", "%24": "$", "%00": "\x00"}
_ENCODED = re.compile(r"%25|%2E|%24|%00")
_NEEDS_ESCAPE = re.compile(r"[%.\x00]")
EMPTY = "%"


def encode_key(name: str) -> str:
    """The MongoDB field name for ``name``: no ``.``, no NUL, no leading ``$``, never empty."""
    if not name:
        return EMPTY
    encoded = _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group()], name)
    if encoded.startswith("$"):
        encoded = "%24" + encoded[1:]
    return encoded


def decode_key(field: str) -> str:
    """The name :func:`encode_key` turned into ``field``."""
    if field == EMPTY:
        return ""
    if "%" not in field:
        return field
    return _ENCODED.sub(lambda m: _UNESCAPES[m.group()], field)


def encode_doc(value: Any) -> Any:
    """A copy of a JSON value with every object key encoded, at any depth."""
    if isinstance(value, dict):
        return {encode_key(k): encode_doc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encode_doc(v) for v in value]
    return value


def decode_doc(value: Any) -> Any:
    """The JSON value :func:`encode_doc` encoded (a new copy)."""
    if isinstance(value, dict):
        return {decode_key(k): decode_doc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_doc(v) for v in value]
    return value


def field_path(*names: str) -> str:
    """The dotted MongoDB path of nested names (each one encoded)."""
    return ".".join(encode_key(name) for name in names)


__all__ = ["decode_doc", "decode_key", "encode_doc", "encode_key", "field_path"]

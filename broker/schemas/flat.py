"""Schemas checked attribute by attribute: the same verdicts as the whole schema, faster.

A Smart Data Models schema is, once its remote ``$ref`` are dropped, a
conjunction of ``properties`` maps and ``required`` lists (directly or in
``allOf`` parts) plus annotations.  For such a schema, an object is valid
exactly when every required name is present and each present attribute is
valid against every subschema given for its name: so each attribute can be
checked on its own, by a validator compiled once for its subschemas, and a
value already found valid for a name ("ok", "on", 10, an address, a list of
references...) need not be checked again.  That takes most of the cost of
validation off a create (``benchmarks/validation.py``).

Schemas with any other keyword that constrains the object as a whole
(``additionalProperties``, ``patternProperties``, ``if``, ``oneOf``...) are not
flattened: :func:`flatten` answers None and the whole schema is used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

#: keywords that say nothing about which objects are valid
ANNOTATIONS = frozenset({
    "$schema", "$id", "$comment", "$defs", "definitions", "$schemaVersion", "title",
    "description", "examples", "default", "modelTags", "derivedFrom", "license",
    "deprecated", "readOnly", "writeOnly", "$anchor",
})
#: values remembered as valid, per attribute name (then forgotten all at once)
CACHE_LIMIT = 4096
_SCALARS = (str, int, float, bool, type(None))


@dataclass(slots=True)
class FlatSchema:
    """``required`` names and one validator per attribute name (see the module docstring)."""

    required: tuple[str, ...]
    validators: dict[str, Validator]
    _valid: dict[tuple[str, type, Any], bool] = field(default_factory=dict)

    def iter_errors(self, doc: Mapping[str, Any]) -> Iterator[ValidationError]:
        """The errors of ``doc``, with paths as the whole schema would give them."""
        for name in self.required:
            if name not in doc:
                yield ValidationError(f"{name!r} is a required property", validator="required",
                                      validator_value=list(self.required), instance=doc)
        for name, value in doc.items():
            validator = self.validators.get(name)
            if validator is None:
                continue
            key = _key(name, value)
            if key is not None and key in self._valid:
                continue
            errors = list(validator.iter_errors(value))
            if not errors:
                if key is not None:
                    if len(self._valid) >= CACHE_LIMIT:
                        self._valid.clear()
                    self._valid[key] = True
                continue
            for error in errors:
                error.path.appendleft(name)
                yield error


def _key(name: str, value: Any) -> tuple[str, type, Any] | None:
    """What a verdict is remembered by: the value itself, or its JSON for objects and arrays."""
    if isinstance(value, _SCALARS):
        return (name, type(value), value)  # the type tells True from 1
    try:
        return (name, dict, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    except (TypeError, orjson.JSONEncodeError):
        return None


def flatten(schema: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, list[Any]]] | None:
    """(required names, name -> subschemas) when ``schema`` is such a conjunction, else None."""
    required: list[str] = []
    properties: dict[str, list[Any]] = {}
    if not _collect(schema, required, properties, top=True):
        return None
    return tuple(dict.fromkeys(required)), properties


def _collect(part: Any, required: list[str], properties: dict[str, list[Any]], *,
             top: bool) -> bool:
    if part is True or part == {}:
        return True
    if not isinstance(part, dict):
        return False
    for key, value in part.items():
        if key in ANNOTATIONS:
            continue
        if key == "type" and value == "object" and top:
            continue
        if key == "required" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            required.extend(value)
        elif key == "properties" and isinstance(value, dict):
            for name, subschema in value.items():
                properties.setdefault(name, []).append(subschema)
        elif key == "allOf" and isinstance(value, list):
            if not all(_collect(item, required, properties, top=False) for item in value):
                return False
        else:
            return False  # a keyword about the object as a whole: not flattened
    return True

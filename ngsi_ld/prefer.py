"""The ``Prefer`` header (IETF RFC 7240) as NGSI-LD reads it (ETSI GS CIM 009 clause 6.3.6).

Two preferences matter: ``ngsi-ld=<major.minor>`` asks for a payload in an
earlier version (4.3.6.8, answered with ``Preference-Applied``), and
``body=json`` moves the @context of a GeoJSON answer to the Link header.
``prefer`` below is the header's value, repeated headers joined with ", ".
"""

from __future__ import annotations

import re
from functools import lru_cache

from ngsi_ld.versions import NATIVE, Version, conformant, format_version, parse_version

__all__ = [
    "PREFERENCE_APPLIED", "parse_prefer", "preferred_version", "prefers_json_body",
    "requested_version", "version_applied",
]

PREFERENCE_APPLIED = "Preference-Applied"
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def parse_prefer(value: str) -> dict[str, str]:
    """The preferences of a ``Prefer`` value: lower-case name -> value ("" without one);
    parameters are dropped and the first of a repeated name counts."""
    return dict(_preferences(value))


@lru_cache(maxsize=64)
def _preferences(value: str) -> tuple[tuple[str, str], ...]:
    # one linear pass: preferences split at "," and parameters at ";" outside quotes
    found: dict[str, str] = {}
    for preference in _split_outside_quotes(value, ","):
        head = _split_outside_quotes(preference, ";")[0]
        name, eq, word = head.partition("=")
        name, word = name.strip(), word.strip()
        if not _TOKEN_RE.fullmatch(name):
            continue  # not RFC 7240: a preference that cannot be read is ignored
        if len(word) >= 2 and word[0] == word[-1] == '"':
            word = re.sub(r"\\(.)", r"\1", word[1:-1])
        found.setdefault(name.lower(), word if eq else "")
    return tuple(found.items())


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    start, quoted, escaped = 0, False, False
    for i, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    return parts


def requested_version(prefer: str | None) -> Version | None:
    """The version of a ``ngsi-ld=<major.minor>`` preference (6.3.6), or None."""
    if prefer is None:
        return None
    value = parse_prefer(prefer).get("ngsi-ld")
    return None if value is None else parse_version(value)


def preferred_version(prefer: str | None) -> Version | None:
    """The earlier version a payload is to be amended to (4.3.6.8), or None."""
    version = requested_version(prefer)
    return version if version is not None and version < NATIVE else None


def version_applied(prefer: str | None) -> dict[str, str]:
    """``Preference-Applied: ngsi-ld=<version>`` for a version preference (5.7.1.4): the
    version the payload conforms to; no header without one."""
    version = requested_version(prefer)
    if version is None:
        return {}
    return {PREFERENCE_APPLIED: f"ngsi-ld={format_version(conformant(version))}"}


def prefers_json_body(prefer: str | None) -> bool:
    """True when the preferences hold ``body=json`` (RFC 7240)."""
    return prefer is not None and parse_prefer(prefer).get("body", "").lower() == "json"

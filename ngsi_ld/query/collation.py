"""The ``collation`` of Entity ordering (ETSI GS CIM 009 clause 4.23.3).

A collation is a BCP 47 language tag with the Unicode ``-u-`` extension of
IETF RFC 6067 (``und``, ``de-u-co-phonebk``, ``und-u-ks-level1``).  Strings are
then compared with the Unicode Collation Algorithm on the root collation table
(DUCET, from which ICU's root collation derives): accents and case rank after
the base letter, so "á" sorts between "a" and "b".  Locale tailorings (such as the
German phonebook) are not available; their tag is accepted and the root order,
the language-agnostic one of 4.23.1, is used.  The ``ks`` key sets the strength
(``level1``: base letters only, ``level2``: and accents, ``level3``: and case,
the default; ``identic``: and the code points), ``kn-true`` compares digit runs
as numbers.

The collation table itself is a :class:`Collator` the caller loads (it is a
large file): this module only parses tags and builds sort keys with it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ngsi_ld.errors import BadRequestData

# RFC 5646 (BCP 47) language tag, "langtag" production, and the private use "x-..." tag
_LANGTAG = re.compile(
    r"""
    (?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})   # language (+ extlang)
    (?:-[a-z]{4})?                                        # script
    (?:-(?:[a-z]{2}|[0-9]{3}))?                           # region
    (?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*              # variants
    (?:-[0-9a-wyz](?:-[a-z0-9]{2,8})+)*                   # extensions
    (?:-x(?:-[a-z0-9]{1,8})+)?                            # private use
    |x(?:-[a-z0-9]{1,8})+
    """,
    re.VERBOSE | re.ASCII,
)
_STRENGTHS = {"level1": 1, "level2": 2, "level3": 3, "level4": 3, "identic": 4}
_DIGITS = re.compile(r"\d+")


class Collator(Protocol):
    """The Unicode Collation Algorithm over a collation table (e.g. ``pyuca.Collator``)."""

    def collation_elements(self, normalized_string: str) -> Sequence[Sequence[int]]: ...


@dataclass(frozen=True, slots=True)
class Collation:
    """A parsed collation tag: its strength (1 to 4) and numeric ordering."""

    tag: str
    strength: int = 3
    numeric: bool = False


def _unicode_keywords(subtags: list[str]) -> dict[str, str]:
    """The keywords of the ``-u-`` extension (RFC 6067): key -> value ("" if none)."""
    keywords: dict[str, str] = {}
    if "u" not in subtags:
        return keywords
    key = None
    for subtag in subtags[subtags.index("u") + 1:]:
        if len(subtag) == 1:  # the next extension singleton ends the -u- extension
            break
        if len(subtag) == 2:
            key = subtag
            keywords[key] = ""
        elif key is not None:
            keywords[key] = f"{keywords[key]}-{subtag}" if keywords[key] else subtag
    return keywords


# 4.23.3 the collation parameter (IETF RFC 6067)
def parse_collation(tag: str) -> Collation:
    """The collation a tag asks for; BadRequestData if it is not a BCP 47 language tag."""
    if not isinstance(tag, str) or len(tag) > 128 or not _LANGTAG.fullmatch(tag.lower()):
        raise BadRequestData(f"invalid collation {str(tag)[:100]!r}: not a BCP 47 language tag")
    keywords = _unicode_keywords(tag.lower().split("-"))
    strength = keywords.get("ks", "level3") or "level3"
    if strength not in _STRENGTHS:
        raise BadRequestData(f"invalid collation {tag!r}: unknown strength ks-{strength}")
    numeric = keywords.get("kn", "false") in ("", "true")
    return Collation(tag, _STRENGTHS[strength], numeric)


def sort_key(collator: Collator, collation: Collation) -> Callable[[str], Any]:
    """A function from a string to its sort key under ``collation``."""

    def key(text: str) -> tuple[int, ...]:
        normalized = unicodedata.normalize("NFD", text)
        if collation.numeric:
            # digit runs weigh as their number: the number of digits first, then the digits
            normalized = _DIGITS.sub(
                lambda m: f"{len(m.group().lstrip('0')):04d}{m.group().lstrip('0')}", normalized
            )
        elements = collator.collation_elements(normalized)
        levels = min(collation.strength, 3)
        weights: list[int] = []
        for level in range(levels):
            if level:
                weights.append(0)  # a level separator, below every weight
            weights.extend(element[level] for element in elements if element[level])
        if collation.strength == 4:
            weights.append(0)
            weights.extend(ord(char) for char in normalized)
        return tuple(weights)

    return key


__all__ = ["Collation", "Collator", "parse_collation", "sort_key"]

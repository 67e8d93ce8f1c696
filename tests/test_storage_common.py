"""What the stores derive from an idPattern to pre-select candidate ids.

The property: every id the pattern matches (``search`` semantics, clause 4.9
regular expressions) starts with ``literal_prefix`` and contains
``required_literal``; the pre-selection never drops a match.
"""

from __future__ import annotations

import re
import warnings

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query.regexes import search
from storage.helpers import is_prefix_only, literal_prefix, required_literal

PIECES = st.sampled_from([
    "a", "b", "c", ":", "urn", "-", "1", ".", "*", "+", "?", "{0,2}", "{2}", "^", "$",
    "[ab]", "[^a]", "[]a]", "[a-c]", "\\d", "\\.", "\\]", "(", ")", "(ab)", "(?i)", "|",
    "[[:alpha:]]", "(?:a)", "\\", "[", "{",
])


@settings(max_examples=400)
@pytest.mark.filterwarnings("ignore::FutureWarning")
@given(st.lists(PIECES, max_size=8).map("".join), st.data())
def test_every_match_contains_the_literals(pattern: str, data: st.DataObject) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "possible nested set"
            re.compile(pattern)
    except re.error:
        assume(False)
    text = data.draw(st.from_regex(pattern, fullmatch=False))
    try:
        matched = search(pattern, text)
    except BadRequestData:  # refused by the API (re and regex disagree): nothing to pre-select
        return
    if not matched:  # re and regex may disagree on exotic syntax
        return
    assert required_literal(pattern) in text
    assert text.startswith(literal_prefix(pattern))


@settings(max_examples=300)
@pytest.mark.filterwarnings("ignore::FutureWarning")
@given(st.lists(PIECES, max_size=6).map(lambda p: "^" + "".join(p)),
       st.text(alphabet="abc:urn-1.[]", max_size=12))
def test_a_prefix_only_pattern_matches_exactly_its_prefix(pattern: str, text: str) -> None:
    if not is_prefix_only(pattern):
        return
    assert search(pattern, text) == text.startswith(literal_prefix(pattern))


@pytest.mark.parametrize(("pattern", "expected"), [
    ("^urn:ngsi-ld:Device:", True), ("^urn:ngsi-ld:Device:.*", True), ("^urn:x.*$", True),
    ("^urn:x$", False), ("^urn:x?", False), ("urn:x", False), ("^urn:x.+", False),
    ("^urn:x.*y", False), ("^", False),
])
def test_is_prefix_only(pattern: str, expected: bool) -> None:
    assert is_prefix_only(pattern) is expected


@pytest.mark.parametrize(("pattern", "literal"), [
    ("urn:ngsi-ld:Streetlight:hk:9.*", "urn:ngsi-ld:Streetlight:hk:9"),
    (".*:99.*", ":99"),
    ("abc?d", "ab"),
    ("a[xyz]bcd", "bcd"),
    ("[]ab]cd", "cd"),
    ("[^]ab]cd", "cd"),
    ("(abcd)?ef", "ef"),
    ("x{0,3}yz", "yz"),
    ("ab\\.cd", "ab"),
    ("(?i)abc", ""),
    ("ab|cd", ""),
    ("[unclosed", ""),
    # escapes of several characters leave none of theirs behind (\111 is "I")
    ("\\111", ""),
    ("ab\\x41cdx", "cdx"),
    ("(a)\\1bbb", "bbb"),
    ("\\N{LATIN SMALL LETTER A}bc", "bc"),
])
def test_required_literal(pattern: str, literal: str) -> None:
    assert required_literal(pattern) == literal

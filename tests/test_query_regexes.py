"""Bounded regular expressions (q ~= and idPattern)."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData, TooComplexQuery
from ngsi_ld.query.regexes import (
    CACHE_BYTES,
    MAX_PATTERN_LENGTH,
    cache_size,
    compile_pattern,
    search,
)


def test_search_finds_anywhere() -> None:
    assert search("Car:[0-9]+$", "urn:ngsi-ld:Car:12")
    assert not search("^Car", "urn:ngsi-ld:Car:12")


def test_invalid_and_oversized_patterns() -> None:
    with pytest.raises(BadRequestData, match="invalid idPattern"):
        compile_pattern("a(b", "idPattern")
    with pytest.raises(BadRequestData, match="longer than"):
        compile_pattern("a" * (MAX_PATTERN_LENGTH + 1))


def test_catastrophic_backtracking_times_out_in_the_fallback_engine() -> None:
    assert not search("(a|aa)+$", "a" * 50 + "!")  # RE2: linear time, an answer
    with pytest.raises(TooComplexQuery, match="took more than"):
        search("(?=a)(a|aa)+$", "a" * 50 + "!")  # look-ahead: regex, with a time-out


@pytest.mark.parametrize("pattern", [
    "(.*){999999}", "(.*){999997}", "((.*){999}){999}", "(a{1000}){1000}", "x{1001}",
    r"((a{100}){100}){100}\1", r"(?=a)((b{90}){90})", "(" * 200 + "a" + ")" * 200 + "{999}",
])
def test_patterns_too_large_to_compile_are_refused_at_once(pattern: str) -> None:
    with pytest.raises(BadRequestData):
        compile_pattern(pattern, "idPattern")


@pytest.mark.parametrize(("pattern", "text", "found"), [
    (r"^urn:ngsi-ld:Room:\d+$", "urn:ngsi-ld:Room:12", True),
    ("(?i)room", "urn:ngsi-ld:ROOM:1", True),
    (r"(a)\1", "xaay", True),  # a back-reference: the fallback engine
    (r"(?<=Room:)1$", "urn:ngsi-ld:Room:1", True),
    ("^(?!urn)", "urn:x", False),
    (r"\p{L}+:é", "urn:é", True),
    ("urn:a*+b", "urn:aab", True),  # possessive: the fallback engine
    ("urn:a*+a", "urn:aa", False),
])
def test_both_engines_answer_searches(pattern: str, text: str, found: bool) -> None:
    assert search(pattern, text) is found


PIECES = st.sampled_from([
    "(", ")", "(.*)", ".*", "a", "a|b", "[a-z]", "\\d", "{999}", "{1000}", "{2,}", "+", "*",
    "?", "(?=a)", "(?!b)", "\\1", "(?<=x)", "{99999}", "((a{100}){100})", "(?:x|y)",
])


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, min_size=1, max_size=30).map("".join))
def test_adversarial_patterns_keep_memory_and_time_bounded(pattern: str) -> None:
    """Whatever a client sends, compiling it is quick or refused, and the cache stays
    within its byte budget (the patterns of the issue took seconds and gigabytes)."""
    before = _rss()
    try:
        compiled = compile_pattern(pattern)
        with contextlib.suppress(TooComplexQuery):
            compiled.search("a" * 40 + "!")
    except BadRequestData:
        pass
    _, size = cache_size()
    assert size <= CACHE_BYTES
    assert _rss() - before < 64 * 1024 * 1024  # no compiled pattern takes a large heap


def _rss() -> int:
    """Resident memory of this process in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

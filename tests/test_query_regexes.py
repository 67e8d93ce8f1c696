"""Bounded regular expressions (q ~= and idPattern)."""

from __future__ import annotations

import pytest

from ngsi_ld.errors import BadRequestData, TooComplexQuery
from ngsi_ld.query.regexes import MAX_PATTERN_LENGTH, compile_pattern, search


def test_search_finds_anywhere() -> None:
    assert search("Car:[0-9]+$", "urn:ngsi-ld:Car:12")
    assert not search("^Car", "urn:ngsi-ld:Car:12")


def test_invalid_and_oversized_patterns() -> None:
    with pytest.raises(BadRequestData, match="invalid idPattern"):
        compile_pattern("a(b", "idPattern")
    with pytest.raises(BadRequestData, match="longer than"):
        compile_pattern("a" * (MAX_PATTERN_LENGTH + 1))


def test_catastrophic_backtracking_times_out() -> None:
    with pytest.raises(TooComplexQuery, match="took more than"):
        search("(a|aa)+$", "a" * 50 + "!")

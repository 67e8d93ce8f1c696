"""ContextCache: compile once, bounded LRU, invalidation by document URL."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.jsonld import ContextCache, MissingContext, cache_key, core_context_url

CORE = core_context_url("1.8")
A = "https://example.org/a.jsonld"
B = "https://example.org/b.jsonld"
DOCS: dict[str, Any] = {
    A: {"@context": {"speed": "https://example.org/speed"}},
    B: {"@context": [A, {"brand": "http://schema.org/brand"}]},
}


def test_the_same_context_compiles_once() -> None:
    cache = ContextCache(8)
    first = cache.get_or_compile(A, DOCS, CORE)
    assert cache.get_or_compile(A, DOCS, CORE) is first
    assert first.expand_term("speed") == "https://example.org/speed"
    assert len(cache) == 1


def test_key_ignores_object_key_order_but_not_the_core() -> None:
    one = {"a": "https://example.org/a", "b": "https://example.org/b"}
    two = {"b": "https://example.org/b", "a": "https://example.org/a"}
    assert cache_key(one, CORE) == cache_key(two, CORE)
    assert cache_key(one, CORE) != cache_key(one, core_context_url("1.6"))
    cache = ContextCache(8)
    assert cache.get_or_compile(one, {}, CORE) is cache.get_or_compile(two, {}, CORE)
    older = cache.get_or_compile(one, {}, core_context_url("1.3"))
    assert older.core_url == core_context_url("1.3")
    assert len(cache) == 2


def test_least_recently_used_is_dropped() -> None:
    cache = ContextCache(2)
    a = cache.get_or_compile({"x": "https://example.org/x"}, {}, CORE)
    cache.get_or_compile({"y": "https://example.org/y"}, {}, CORE)
    assert cache.get_or_compile({"x": "https://example.org/x"}, {}, CORE) is a  # now most recent
    cache.get_or_compile({"z": "https://example.org/z"}, {}, CORE)
    assert len(cache) == 2
    assert cache.get(cache_key({"y": "https://example.org/y"}, CORE)) is None
    assert cache.get(cache_key({"x": "https://example.org/x"}, CORE)) is a


def test_invalidate_drops_every_context_built_from_the_url() -> None:
    cache = ContextCache(8)
    via_a = cache.get_or_compile(A, DOCS, CORE)
    via_b = cache.get_or_compile(B, DOCS, CORE)
    inline = cache.get_or_compile({"q": "https://example.org/q"}, DOCS, CORE)
    assert cache.invalidate(A) == 2  # B imports A
    assert cache.get(cache_key(A, CORE)) is None
    assert cache.get(cache_key(B, CORE)) is None
    assert cache.get(cache_key({"q": "https://example.org/q"}, CORE)) is inline
    reloaded = {**DOCS, A: {"@context": {"speed": "https://example.org/v2/speed"}}}
    fresh = cache.get_or_compile(B, reloaded, CORE)
    assert fresh is not via_b and fresh is not via_a
    assert fresh.expand_term("speed") == "https://example.org/v2/speed"


def test_missing_documents_are_not_cached() -> None:
    cache = ContextCache(8)
    with pytest.raises(MissingContext):
        cache.get_or_compile(B, {B: DOCS[B]}, CORE)
    assert len(cache) == 0
    assert cache.get_or_compile(B, DOCS, CORE).expand_term("speed") == "https://example.org/speed"


def test_non_json_context_value_is_bad_request_data() -> None:
    with pytest.raises(BadRequestData):
        cache_key({1: "x"}, CORE)


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ContextCache(0)


@settings(deadline=None, max_examples=30)
@given(st.lists(st.integers(0, 5), max_size=20), st.integers(1, 4))
def test_never_holds_more_than_maxsize(sequence: list[int], maxsize: int) -> None:
    cache = ContextCache(maxsize)
    for n in sequence:
        ctx = cache.get_or_compile({f"t{n}": f"https://example.org/{n}"}, {}, CORE)
        assert ctx.expand_term(f"t{n}") == f"https://example.org/{n}"
        assert len(cache) <= maxsize
    recent = list(dict.fromkeys(reversed(sequence)))[:maxsize]
    for n in recent:
        assert cache.get(cache_key({f"t{n}": f"https://example.org/{n}"}, CORE)) is not None


def test_removals_count_what_was_dropped_or_replaced() -> None:
    cache = ContextCache(2)
    cache.get_or_compile(A, DOCS, CORE)
    cache.get_or_compile(B, DOCS, CORE)
    assert cache.removals == 0  # new keys drop nothing
    cache.get_or_compile({"x": "https://example.org/x"}, {}, CORE)
    assert cache.removals == 1  # A, least recently used, evicted
    cache.put(cache_key(B, CORE), cache.get_or_compile({"y": "https://example.org/y"}, {}, CORE))
    assert cache.removals == 3  # the eviction of x, then B's compilation replaced
    assert cache.invalidate("https://example.org/none") == 0
    assert cache.removals == 3
    cache.clear()
    assert cache.removals == 5


_OPS = st.one_of(
    st.tuples(st.just("compile"), st.integers(0, 4)),
    st.tuples(st.just("import"), st.sampled_from([A, B])),
    st.tuples(st.just("invalidate"), st.sampled_from([A, B])),
    st.tuples(st.just("replace"), st.integers(0, 4)),
    st.tuples(st.just("clear"), st.just(0)),
)


@settings(deadline=None, max_examples=60)
@given(st.lists(_OPS, max_size=12), st.lists(_OPS, max_size=12), st.integers(1, 4))
def test_while_the_removals_hold_every_compilation_seen_is_still_cached(
        before: list[tuple[str, Any]], after: list[tuple[str, Any]], maxsize: int) -> None:
    """What a kept answer relies on (broker.service.hot): an unchanged count of removals
    means every compilation looked up since is still the one cached under its key."""
    cache = ContextCache(maxsize)

    def value(op: tuple[str, Any]) -> Any:
        return op[1] if op[0] == "import" else {f"t{op[1]}": f"https://example.org/{op[1]}"}

    def apply(op: tuple[str, Any]) -> None:
        kind, arg = op
        if kind in ("compile", "import"):
            cache.get_or_compile(value(op), DOCS, CORE)
        elif kind == "invalidate":
            cache.invalidate(arg)
        elif kind == "replace":
            other = ContextCache(1).get_or_compile(value(op), DOCS, CORE)
            cache.put(cache_key(value(op), CORE), other)
        else:
            cache.clear()

    for op in before:
        apply(op)
    seen = {}
    for op in before:
        if op[0] in ("compile", "import", "replace"):
            key = cache_key(value(op), CORE)
            ctx = cache.get(key)
            if ctx is not None:
                seen[key] = ctx
    removals = cache.removals
    for op in after:
        apply(op)
    if cache.removals == removals:
        for key, ctx in seen.items():
            assert cache.get(key) is ctx

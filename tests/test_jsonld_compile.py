"""compile_context / referenced_urls: the effective context, missing documents, bad contexts."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.jsonld import (
    UNVERSIONED_CORE_URL,
    MissingContext,
    compile_context,
    core_context_url,
    referenced_urls,
)

CORE = core_context_url("1.8")
NGSI = "https://uri.etsi.org/ngsi-ld/"
DEFAULT = NGSI + "default-context/"
A = "https://example.org/a.jsonld"
B = "https://example.org/b.jsonld"
C = "https://example.org/c.jsonld"

DOCS: dict[str, Any] = {
    A: {"@context": [B, {"speed": "https://example.org/speed"}]},
    B: {"@context": {"@version": 1.1, "@import": C, "brand": "http://schema.org/brand"}},
    C: {"@context": {"Car": "https://example.org/Car", "ex": "https://example.org/ns/"}},
}


def test_core_only() -> None:
    ctx = compile_context(None, {}, CORE)
    assert ctx.expand_term("location") == NGSI + "location"
    assert ctx.expand_term("temperature") == DEFAULT + "temperature"
    assert ctx.vocab == DEFAULT
    assert ctx.response_context == CORE
    assert ctx.user_context is None
    assert ctx.depends_on == frozenset()


def test_urls_are_followed_through_arrays_and_imports() -> None:
    ctx = compile_context(A, DOCS, CORE)
    assert ctx.expand_term("speed") == "https://example.org/speed"
    assert ctx.expand_term("brand") == "http://schema.org/brand"
    assert ctx.expand_term("Car") == "https://example.org/Car"
    assert ctx.expand_term("ex:wheel") == "https://example.org/ns/wheel"
    assert ctx.depends_on == frozenset({A, B, C})
    assert ctx.response_context == [A, CORE]


def test_missing_documents_are_reported_one_round_at_a_time() -> None:
    supplied: dict[str, Any] = {}
    rounds = []
    while True:
        missing = referenced_urls(A, supplied)
        if not missing:
            break
        rounds.append(missing)
        with pytest.raises(MissingContext) as caught:
            compile_context(A, supplied, CORE)
        assert caught.value.url in missing
        supplied.update({url: DOCS[url] for url in missing})
    assert rounds == [{A}, {B}, {C}]
    assert compile_context(A, supplied, CORE).expand_term("Car") == "https://example.org/Car"


def test_referenced_urls_never_lists_core_urls_and_survives_cycles() -> None:
    docs = {A: {"@context": [B, CORE]}, B: {"@context": [A, UNVERSIONED_CORE_URL]}}
    assert referenced_urls([A, CORE], docs) == set()
    assert referenced_urls({"@import": C, "t": {"@id": "x:t", "@context": B}}, {}) == {B, C}


def test_core_terms_cannot_be_overridden() -> None:
    user = {"location": "https://example.org/myLocation", "value": "https://example.org/v"}
    ctx = compile_context(user, {}, CORE)
    assert ctx.expand_term("location") == NGSI + "location"
    assert ctx.expand_term("value") == NGSI + "hasValue"


def test_a_user_context_naming_the_core_gets_it_applied_last() -> None:
    # Core first then a redefinition: with the core applied last this is no error.
    user = [CORE, {"location": "https://example.org/myLocation", "x": "https://example.org/x"}]
    ctx = compile_context(user, {}, CORE)
    assert ctx.expand_term("location") == NGSI + "location"
    assert ctx.expand_term("x") == "https://example.org/x"
    assert ctx.response_context == [{"location": "https://example.org/myLocation",
                                     "x": "https://example.org/x"}, CORE]  # fmt: skip
    assert compile_context(UNVERSIONED_CORE_URL, {}, CORE).response_context == CORE


def test_a_protected_user_term_still_gives_way_to_the_core() -> None:
    user = {"@version": 1.1, "@protected": True, "location": "https://example.org/loc"}
    ctx = compile_context(user, {}, CORE)
    assert ctx.expand_term("location") == NGSI + "location"


def test_term_definitions_keep_coercion_and_container() -> None:
    user = {
        "ex": "https://example.org/",
        "sensor": {"@id": "ex:sensor", "@type": "@id"},
        "names": {"@id": "ex:names", "@container": "@language"},
        "payload": {"@id": "ex:payload", "@type": "@json"},
    }
    ctx = compile_context(user, {}, CORE)
    assert ctx.definitions["sensor"].type == "@id"
    assert ctx.definitions["sensor"].iri == "https://example.org/sensor"
    assert ctx.definitions["names"].container == ("@language",)
    assert ctx.definitions["payload"].type == "@json"
    assert ctx.definitions["ex"].prefix
    assert ctx.definitions["observedAt"].type == NGSI + "DateTime"
    assert ctx.definitions["objectType"].type == "@vocab"


def test_core_version_is_the_configured_one() -> None:
    # "json" (JsonProperty) exists in core 1.8 but not in 1.3.
    assert compile_context(None, {}, CORE).expand_term("json") == NGSI + "hasJSON"
    old = compile_context(None, {}, core_context_url("1.3"))
    assert old.expand_term("json") == DEFAULT + "json"
    assert old.response_context == core_context_url("1.3")


@pytest.mark.parametrize(
    ("context", "documents", "fragment"),
    [
        ({"speed": 42}, {}, "speed"),
        ([A, 3], {A: {"@context": {}}}, "int"),
        (A, {A: ["not", "an", "object"]}, A),
        ({"@version": 2.0}, {}, "version"),
        ({"bad": {"@id": "x", "@unknown": True}}, {}, "@unknown"),
        ([[A]], {A: {"@context": {}}}, "@context"),
    ],
)
def test_invalid_contexts_are_bad_request_data(
    context: Any, documents: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(BadRequestData) as caught:
        compile_context(context, documents, CORE)
    assert fragment.lower() in caught.value.detail.lower()


def test_unknown_core_url_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        compile_context(None, {}, "https://example.org/not-core.jsonld")


@settings(deadline=None, max_examples=40)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-zA-Z]{0,8}", fullmatch=True),
        st.builds("https://example.org/{}".format, st.from_regex(r"[a-z]{1,8}", fullmatch=True)),
        max_size=6,
    )
)
def test_inline_terms_expand_unless_core_defines_them(terms: dict[str, str]) -> None:
    core = compile_context(None, {}, CORE)
    ctx = compile_context(terms, {}, CORE)
    for term, iri in terms.items():
        expected = core.expand_term(term) if term in core.definitions else iri
        assert ctx.expand_term(term) == expected


def test_a_document_naming_the_core_gets_it_applied_last() -> None:
    docs = {A: {"@context": [CORE, {"location": "https://example.org/loc", "speed": "ex:speed",
                                    "ex": "https://example.org/"}]}}  # fmt: skip
    ctx = compile_context(A, docs, CORE)
    assert ctx.expand_term("location") == NGSI + "location"
    assert ctx.expand_term("speed") == "https://example.org/speed"


@pytest.mark.parametrize("empty", [[], {}, None, [CORE]])
def test_a_document_with_an_empty_context_adds_no_terms(empty: Any) -> None:
    ctx = compile_context(A, {A: {"@context": empty}}, CORE)
    core = compile_context(None, {}, CORE)
    assert ctx.definitions == core.definitions and ctx.expand_term("speed") == core.expand_term(
        "speed")


def test_bad_term_in_a_document_names_the_document() -> None:
    with pytest.raises(BadRequestData) as caught:
        compile_context(A, {A: {"@context": {"speed": ["x"]}}}, CORE)
    assert A in caught.value.detail and "speed" in caught.value.detail


def test_relative_context_urls_are_bad_request_data() -> None:
    with pytest.raises(BadRequestData, match=r"relative\.jsonld"):
        compile_context("relative.jsonld", {"relative.jsonld": {"@context": {}}}, CORE)


def test_relative_urls_in_a_document_resolve_against_its_url() -> None:
    docs: dict[str, Any] = {A: {"@context": ["sub/other.jsonld"]}}
    other = "https://example.org/sub/other.jsonld"
    assert referenced_urls(A, docs) == {other}
    with pytest.raises(MissingContext) as caught:
        compile_context(A, docs, CORE)
    assert caught.value.url == other
    docs[other] = {"@context": {"wheel": "https://example.org/wheel"}}
    assert referenced_urls(A, docs) == set()
    assert compile_context(A, docs, CORE).expand_term("wheel") == "https://example.org/wheel"


@pytest.mark.parametrize("context", ["relative.jsonld", [A, 7], 3.5])
def test_referenced_urls_refuses_what_is_not_a_context(context: Any) -> None:
    with pytest.raises(BadRequestData):
        referenced_urls(context, {})

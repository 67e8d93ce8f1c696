"""The bundled core contexts: served by URL, never fetched."""

from __future__ import annotations

import pytest

from ngsi_ld.jsonld import (
    CORE_CONTEXT_URLS,
    UNVERSIONED_CORE_URL,
    bundled_document,
    core_context_url,
    is_core_url,
)


@pytest.mark.parametrize("version", ["1.3", "1.6", "1.7", "1.8", "1.9"])
def test_every_bundled_version_is_served_by_its_official_url(version: str) -> None:
    url = core_context_url(version)
    assert url == f"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v{version}.jsonld"
    assert CORE_CONTEXT_URLS[version] == url
    document = bundled_document(url)
    assert document is not None
    context = document["@context"]
    assert context["@vocab"] == "https://uri.etsi.org/ngsi-ld/default-context/"
    assert context["ngsi-ld"] == "https://uri.etsi.org/ngsi-ld/"


def test_core_1_8_is_protected() -> None:
    document = bundled_document(core_context_url("1.8"))
    assert document is not None
    assert document["@context"]["@protected"] is True


def test_unversioned_url_means_the_configured_core() -> None:
    for version in ("1.6", "1.9"):
        configured = core_context_url(version)
        assert bundled_document(UNVERSIONED_CORE_URL, configured) == bundled_document(configured)
    assert bundled_document(UNVERSIONED_CORE_URL) == bundled_document(core_context_url("1.8"))


def test_other_urls_are_not_bundled() -> None:
    assert bundled_document("https://example.org/context.jsonld") is None
    assert not is_core_url("https://example.org/context.jsonld")
    assert is_core_url(UNVERSIONED_CORE_URL)
    assert is_core_url(core_context_url("1.3"))


def test_each_call_returns_a_fresh_document() -> None:
    url = core_context_url("1.8")
    first = bundled_document(url)
    assert first is not None
    first["@context"]["location"] = "https://example.org/hijacked"
    second = bundled_document(url)
    assert second is not None
    assert second["@context"]["location"] == "ngsi-ld:location"


def test_unknown_version_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match=r"2\.0"):
        core_context_url("2.0")

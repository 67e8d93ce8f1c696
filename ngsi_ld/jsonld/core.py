"""The bundled ETSI NGSI-LD core contexts, served by URL without network I/O.

The core context documents ship in the ``contexts`` package directory; they are
read once (as bytes) and parsed afresh for every caller, so nobody can mutate a
shared copy.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import orjson

# Annex B: the core @context is published under this URL pattern, one per version.
_URL_PATTERN = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v{}.jsonld"

CORE_CONTEXT_URLS: dict[str, str] = {
    version: _URL_PATTERN.format(version) for version in ("1.3", "1.6", "1.7", "1.8", "1.9")
}
"""Core context version ("1.8") -> its official URL."""

DEFAULT_CORE_VERSION = "1.8"

UNVERSIONED_CORE_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
"""The version-less core URL many clients send; it means the configured core version."""

_FILE_BY_URL: dict[str, str] = {
    url: f"ngsi-ld-core-context-v{version}.jsonld" for version, url in CORE_CONTEXT_URLS.items()
}


def core_context_url(version: str = DEFAULT_CORE_VERSION) -> str:
    """The official URL of the core context ``version`` (e.g. ``"1.8"``).

    Raises ``ValueError`` for a version that is not bundled (a configuration error).
    """
    try:
        return CORE_CONTEXT_URLS[version]
    except KeyError:
        known = ", ".join(CORE_CONTEXT_URLS)
        raise ValueError(
            f"unknown NGSI-LD core context version {version!r} (known: {known})"
        ) from None


def is_core_url(url: str) -> bool:
    """True if ``url`` names a core context (any bundled version, or the unversioned URL)."""
    return url in _FILE_BY_URL or url == UNVERSIONED_CORE_URL


@cache
def _raw(filename: str) -> bytes:
    return resources.files("contexts").joinpath(filename).read_bytes()


def bundled_document(url: str, core_url: str | None = None) -> dict[str, Any] | None:
    """The parsed core context document served at ``url``, or None if not bundled.

    The unversioned core URL maps to ``core_url`` (the configured core context),
    or to the default version when ``core_url`` is not given.  Each call returns
    a new dict.
    """
    if url == UNVERSIONED_CORE_URL:
        url = core_url if core_url in _FILE_BY_URL else CORE_CONTEXT_URLS[DEFAULT_CORE_VERSION]
    filename = _FILE_BY_URL.get(url)
    if filename is None:
        return None
    document: dict[str, Any] = orjson.loads(_raw(filename))
    return document

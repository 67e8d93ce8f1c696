"""JSON-LD @context handling for NGSI-LD (ETSI GS CIM 009 5.5.7 Core @context, JSON-LD 1.1).

``compile_context`` turns a request's @context (plus the always-applied core
context) into an ``ActiveContext`` once; its ``expand_entity`` /
``compact_entity`` then rename entity names with dict lookups only.  Remote
documents are supplied by the caller (``MissingContext`` / ``referenced_urls``
say which are still needed); core contexts are bundled.
"""

from ngsi_ld.jsonld.active import ActiveContext, TermDefinition
from ngsi_ld.jsonld.cache import ContextCache, cache_key
from ngsi_ld.jsonld.compile import MissingContext, compile_context, referenced_urls
from ngsi_ld.jsonld.core import (
    CORE_CONTEXT_URLS,
    DEFAULT_CORE_VERSION,
    UNVERSIONED_CORE_URL,
    bundled_document,
    core_context_url,
    is_core_url,
)

__all__ = [
    "CORE_CONTEXT_URLS",
    "DEFAULT_CORE_VERSION",
    "UNVERSIONED_CORE_URL",
    "ActiveContext",
    "ContextCache",
    "MissingContext",
    "TermDefinition",
    "bundled_document",
    "cache_key",
    "compile_context",
    "core_context_url",
    "is_core_url",
    "referenced_urls",
]

"""Compile a request's @context into an ``ActiveContext`` (pure; pyld, no network).

The effective context is the user's context followed by the configured core
context, so core terms always win (the core context is @protected from v1.8 and
Orion-LD applies it last in the same way).  Core context URLs that a user
context names itself are dropped from it: the core context applies once, last.

Remote contexts are never fetched here: the caller supplies every document by
URL.  When one is missing, ``MissingContext`` tells the async caller which URL
to fetch before trying again; ``referenced_urls`` lists all the missing ones
reachable so far, so the caller can fetch them in rounds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

import orjson
from pyld import jsonld
from pyld.context_resolver import ContextResolver

from ngsi_ld.errors import BadRequestData
from ngsi_ld.jsonld.active import ActiveContext, TermDefinition
from ngsi_ld.jsonld.core import bundled_document, is_core_url

_ABSOLUTE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


class MissingContext(Exception):
    """A remote @context document the compilation needs was not supplied."""

    def __init__(self, url: str) -> None:
        super().__init__(f"@context document not supplied: {url}")
        self.url = url


# --------------------------------------------------------------- references


def referenced_urls(context_value: Any, documents: Mapping[str, Any]) -> set[str]:
    """The remote context URLs reachable from ``context_value`` that are not in ``documents``.

    Follows URLs, arrays, ``@import`` and scoped contexts inside the documents
    already supplied (a relative URL in a document is resolved against the
    document's URL, as JSON-LD does); bundled core context URLs are never reported.
    Raises ``BadRequestData`` if ``context_value`` is not a URL, an object, or a
    list of those.
    """
    _validate_shape(context_value)
    missing: set[str] = set()
    _walk(context_value, documents, missing, set(), "")
    return missing


def _walk(
    value: Any, documents: Mapping[str, Any], missing: set[str], seen: set[str], base: str
) -> None:
    if isinstance(value, str):
        url = urljoin(base, value) if base else value
        if url in seen or is_core_url(url):
            return
        seen.add(url)
        if url not in documents:
            missing.add(url)
            return
        document = documents[url]
        if isinstance(document, dict):
            _walk(document.get("@context"), documents, missing, seen, url)
    elif isinstance(value, list):
        for item in value:
            _walk(item, documents, missing, seen, base)
    elif isinstance(value, dict):
        imported = value.get("@import")
        if isinstance(imported, str):
            _walk(imported, documents, missing, seen, base)
        for definition in value.values():
            if isinstance(definition, dict) and "@context" in definition:
                _walk(definition["@context"], documents, missing, seen, base)


# ------------------------------------------------------------------ compile


def _strip_core(value: Any) -> Any:
    """``value`` without the core context URLs it names (the core context applies last)."""
    if isinstance(value, str):
        return None if is_core_url(value) else value
    if isinstance(value, list):
        return [item for item in value if not (isinstance(item, str) and is_core_url(item))]
    return value


def _validate_shape(value: Any) -> None:
    """JSON-LD 1.1: a @context is a URL, an object, or an array of those."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, str) and not _ABSOLUTE_URL.match(item):
            raise BadRequestData(f"invalid @context: '{item}' is not an absolute URL")
        if item is not None and not isinstance(item, str | dict):
            raise BadRequestData(
                f"invalid @context: an entry must be a URL string or a JSON object, "
                f"got {type(item).__name__}"
            )


def _check_terms(value: Any, where: str) -> None:
    """JSON-LD 1.1 4.1.2: every term definition is a string, an object or null."""
    contexts = value if isinstance(value, list) else [value]
    for context in contexts:
        if not isinstance(context, dict):
            continue
        for term, definition in context.items():
            if term.startswith("@") or definition is None:
                continue
            if not isinstance(definition, str | dict):
                raise BadRequestData(
                    f"invalid @context{where}: the definition of term '{term}' must be "
                    f"a string or an object, got {type(definition).__name__}"
                )


class _Loader:
    """pyld document loader serving only the documents the caller supplied."""

    def __init__(self, documents: Mapping[str, Any], core_url: str) -> None:
        self.documents = documents
        self.core_url = core_url
        self.used: set[str] = set()
        self.missing: str | None = None

    def __call__(self, url: str, options: Any = None) -> dict[str, Any]:
        document = bundled_document(url, self.core_url)
        if document is None:
            if url not in self.documents:
                self.missing = url
                raise MissingContext(url)
            self.used.add(url)
            try:
                document = orjson.loads(orjson.dumps(self.documents[url]))
            except (TypeError, orjson.JSONEncodeError) as exc:
                raise BadRequestData(f"@context document {url} is not JSON: {exc}") from None
            if isinstance(document, dict) and "@context" in document:
                document["@context"] = _strip_core(document["@context"])
                if document["@context"] is None or document["@context"] == []:
                    document["@context"] = {}  # empty: pyld fails on an empty array here
                _check_terms(document["@context"], f" at {url}")
        return {"contextUrl": None, "documentUrl": url, "document": document}


def compile_context(
    context_value: Any, documents: Mapping[str, Any], core_url: str
) -> ActiveContext:
    """Compile ``context_value`` (None, a URL, an object, or a list of those) plus the core.

    ``documents`` maps remote URLs to their parsed JSON documents.  Raises
    ``MissingContext`` if a needed document is not supplied, ``BadRequestData``
    if the context is not a valid JSON-LD context.
    """
    if bundled_document(core_url) is None:
        raise ValueError(f"{core_url!r} is not a bundled NGSI-LD core context URL")
    _validate_shape(context_value)
    user_part = _strip_core(context_value)
    _check_terms(user_part, "")
    loader = _Loader(documents, core_url)
    processor = jsonld.JsonLdProcessor()
    options: dict[str, Any] = {
        "base": "",
        "documentLoader": loader,
        "contextResolver": ContextResolver({}, loader),
    }
    try:
        active = processor._get_initial_context(options)
        if user_part is not None and user_part != []:
            active = processor.process_context(active, user_part, options)
        # 5.5.7 Core @context: always applied, last, overriding any user redefinition
        # of its terms (even a user term the user's context marked @protected).
        active = processor._process_context(active, core_url, options, override_protected=True)
        inverse = processor._get_inverse_context(active)
        compacted: dict[str, str] = {}
        for iri in inverse:
            if iri.startswith("@"):
                continue
            try:
                compacted[iri] = processor._compact_iri(active, iri, None, vocab=True)
            except jsonld.JsonLdError:
                continue  # an IRI confusable with a compact IRI: keep it as is at call time
    except MissingContext:
        raise
    except jsonld.JsonLdError as exc:
        if loader.missing is not None:
            raise MissingContext(loader.missing) from None
        cause = exc.__cause__
        if isinstance(cause, BadRequestData | MissingContext):
            raise cause from None
        raise BadRequestData(f"invalid @context: {_describe(exc)}") from None
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        # pyld lets a few malformed inputs (a relative URL inside a document...) escape raw.
        raise BadRequestData(f"invalid @context: {exc}") from None
    except RecursionError:
        raise BadRequestData("invalid @context: definitions are nested too deeply") from None
    definitions = {term: _definition(mapping) for term, mapping in active["mappings"].items()}
    return ActiveContext(
        definitions=definitions,
        vocab=active.get("@vocab"),
        compacted=compacted,
        user_context=context_value,
        core_url=core_url,
        response_context=_response_context(user_part, core_url),
        depends_on=frozenset(loader.used),
    )


def _definition(mapping: Any) -> TermDefinition:
    if mapping is None or mapping.get("@id") is None:
        return TermDefinition(None, None, (), False)
    container = mapping.get("@container") or ()
    return TermDefinition(
        mapping["@id"],
        mapping.get("@type"),
        tuple(container),
        bool(mapping.get("_prefix")),
    )


def _response_context(user_part: Any, core_url: str) -> Any:
    if user_part is None or user_part == []:
        return core_url
    if isinstance(user_part, list):
        return [*user_part, core_url]
    return [user_part, core_url]


def _describe(exc: jsonld.JsonLdError) -> str:
    code = getattr(exc, "code", None)
    message = str(exc.args[0]) if exc.args else type(exc).__name__
    details = getattr(exc, "details", None)
    where = ""
    if isinstance(details, dict):
        for key in ("term", "url", "iri", "keyword"):
            if key in details:
                where = f" ({key}: {details[key]!r})"
                break
    return f"{message}{where}" + (f" [{code}]" if code else "")

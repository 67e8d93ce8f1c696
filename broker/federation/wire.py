"""What travels on the wire: forwarded requests built, and sources' answers read (4.3.6).

Forwarded requests are written in the client's terms (names compacted with
its @context, which travels as the Link header): the ETSI context source mock
and every NGSI-LD source expect compacted names, never IRIs.

Answers are read defensively: JSON required, an entity or an array of entities
as the operation says, each validated and expanded with the @context the
answer names (the Link of a JSON answer, or the inline ``@context`` of a
JSON-LD one, 436_06_03).  Anything else is :class:`InvalidAnswer`, which the
caller turns into a 111 warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import orjson

from broker.federation.client import Outgoing, header
from broker.federation.parsed import ParsedAnswers
from broker.service.ports import ContextResolving
from ngsi_ld.entity import parse_entity
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.federation import Outbound, SourceRequest
from ngsi_ld.headers import parse_link_context
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity
from ngsi_ld.params import Params
from ngsi_ld.query import EntityQuery, GeoQuery, TypeAnd, TypeExpr, TypeName, resolve_names
from ngsi_ld.query.qformat import format_q
from ngsi_ld.query.scope import ScopeAnd, ScopeExpr, ScopeOr, ScopeTerm

__all__ = [
    "API", "READ_PASSED", "InvalidAnswer", "RawEntity", "base_url", "compact_type_expr",
    "expand_raw", "filter_params", "purge_request", "query_string", "raw_entities", "raw_ids",
    "read_entities", "read_request", "restrict_body", "write_method",
]

API = "/ngsi-ld/v1"
#: query parameters of the client's read passed on to the sources as written (5724_02_01)
READ_PASSED = ("q", "scopeQ", "georel", "geometry", "coordinates", "geoproperty",
               "datasetId", "lang", "csf")

#: Table 4.20-1 write operations -> the HTTP method of their binding (6.x)
_WRITE_METHODS = {
    "createEntity": "POST", "appendAttrs": "POST", "updateEntity": "PATCH",
    "updateAttrs": "PATCH", "mergeEntity": "PATCH", "replaceEntity": "PUT",
    "replaceAttrs": "PUT", "deleteAttrs": "DELETE", "deleteEntity": "DELETE",
    # 6.18 to 6.22: the temporal writes
    "upsertTemporal": "POST", "appendAttrsTemporal": "POST", "deleteAttrsTemporal": "DELETE",
    "updateAttrInstanceTemporal": "PATCH", "deleteAttrInstanceTemporal": "DELETE",
    "deleteTemporal": "DELETE",
}


class InvalidAnswer(Exception):
    """A source answered something that is not the NGSI-LD payload asked for (111)."""


#: what ``urllib.parse.quote_plus`` leaves as it is in ASCII text (its always-safe
#: characters), and the characters replaced apart ("%" first, " " last)
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~% ")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.~-]")


def _quote_plus(text: str) -> str:
    """``quote_plus(text)``: for ASCII text by a ``str.replace`` for each character to
    escape (done in C) rather than a Python call for each byte, as ``quote_plus`` does
    (a forwarded query names 50 ids and more, each with ``:``)."""
    if not text.isascii():
        return quote_plus(text)
    if _UNSAFE.search(text) is None:
        return text
    if "%" in text:  # first: the escapes written after bring their own "%"
        text = text.replace("%", "%25")
    for char in set(text) - _SAFE:
        text = text.replace(char, f"%{ord(char):02X}")
    return text.replace(" ", "+")  # last: after any "+" of the text was escaped


def query_string(pairs: Iterable[tuple[str, str]]) -> str:
    """``urllib.parse.urlencode(pairs)`` of str pairs, the same text, faster."""
    return "&".join(f"{_quote_plus(name)}={_quote_plus(value)}" for name, value in pairs)


def base_url(endpoint: str) -> str:
    """The registration's endpoint without a trailing ``/`` or ``/ngsi-ld/v1`` (5.2.9)."""
    url = endpoint.rstrip("/")
    if url.endswith(API):
        url = url[: -len(API)]
    return url


def compact_type_expr(expr: TypeExpr, ctx: ActiveContext) -> str:
    """A type selector in the client's terms (``;`` AND, ``|`` OR, 4.17)."""
    if isinstance(expr, TypeName):
        return ctx.compact_iri(expr.name)
    sep = ";" if isinstance(expr, TypeAnd) else "|"
    inner = [compact_type_expr(term, ctx) for term in expr.terms]
    return sep.join(f"({text})" if not isinstance(term, TypeName) else text
                    for term, text in zip(expr.terms, inner, strict=True))


def _scope_text(expr: ScopeExpr) -> str:
    if isinstance(expr, ScopeTerm):
        return expr.pattern
    sep = ";" if isinstance(expr, ScopeAnd) else "|"
    return sep.join(f"({_scope_text(t)})" if isinstance(t, ScopeAnd | ScopeOr)
                    else _scope_text(t) for t in expr.terms)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _geo_params(geo: GeoQuery, ctx: ActiveContext) -> list[tuple[str, str]]:
    georel = geo.georel
    if geo.max_distance is not None:
        georel += f";maxDistance=={_number(geo.max_distance)}"
    if geo.min_distance is not None:
        georel += f";minDistance=={_number(geo.min_distance)}"
    return [("georel", georel), ("geometry", geo.geometry),
            ("coordinates", orjson.dumps(geo.coordinates).decode()),
            ("geoproperty", ctx.compact_iri(geo.geoproperty))]


def filter_params(query: EntityQuery, params: Params,
                  ctx: ActiveContext) -> tuple[tuple[tuple[str, str], ...], bool]:
    """The filters of ``query`` the request's parameters do not carry (a Query body's, a
    Snapshot's: 5.7.2.4, 5.16.1.4), written as query parameters in the client's terms so
    the sources filter; and whether one of them cannot be written (the merged answer is
    then filtered here)."""
    out: list[tuple[str, str]] = []
    unsent = False
    if query.q is not None and "q" not in params:
        try:
            out.append(("q", format_q(resolve_names(query.q, ctx.compact_iri))))
        except (TypeError, ValueError, AttributeError):
            unsent = True
    if query.scope_q is not None and "scopeQ" not in params:
        out.append(("scopeQ", _scope_text(query.scope_q)))
    if query.geo_q is not None and "georel" not in params:
        try:
            out += _geo_params(query.geo_q, ctx)
        except (TypeError, ValueError):
            unsent = True
    return tuple(out), unsent


def entity_selectors(request: SourceRequest, ctx: ActiveContext) -> list[tuple[str, str]]:
    """The query parameters naming the entities ``request`` asks a source for (type, id,
    idPattern), in the client's terms."""
    selectors: list[tuple[str, str]] = []
    if request.type_expr is not None:
        selectors.append(("type", compact_type_expr(request.type_expr, ctx)))
    if request.ids:
        selectors.append(("id", ",".join(request.ids)))
    if request.id_pattern is not None:
        selectors.append(("idPattern", request.id_pattern))
    return selectors


def read_request(
    request: SourceRequest,
    outbound: Outbound,
    ctx: ActiveContext,
    params: Params,
    *,
    timeout: float,
    offset: int = 0,
    limit: int | None = None,
    count: bool = False,
    ids_only: bool = False,
) -> Outgoing:
    """The GET (or POST query) that asks one source what ``request`` plans; ``ids_only``
    asks for the ids of the matches only (``pick=id``, 4.21), never with ``attrs``."""
    base = base_url(request.registration.endpoint) + API
    query: list[tuple[str, str]] = []
    if request.attrs is not None:
        query.append(("attrs", ",".join(ctx.compact_iri(a) for a in request.attrs)))
    if ids_only:
        query.append(("pick", "id"))
    else:
        # the merge compares modifiedAt (4.5.5), so the sources' system attributes are asked
        query.append(("options", "sysAttrs"))
    if request.local_only:
        query.append(("local", "true"))  # 4.3.6.4
    if request.operation == "retrieveEntity" and request.ids and len(request.ids) == 1:
        for name in ("lang", "datasetId"):
            if name in params:
                query.append((name, str(params.get(name))))
        url = f"{base}/entities/{quote(request.ids[0], safe=':')}?{urlencode(query)}"
        return Outgoing("GET", url, outbound.headers, None, timeout)
    if request.operation == "queryBatch":
        return _query_post(request, outbound, ctx, params, base, query, timeout, offset, limit,
                           count)
    selectors = entity_selectors(request, ctx)
    selectors += [(name, str(params.get(name))) for name in READ_PASSED if name in params
                  and name != "csf"]
    paging = [("offset", str(offset))] if offset else []
    if limit is not None:
        paging.append(("limit", str(limit)))
    if count:
        paging.append(("count", "true"))
    url = f"{base}/entities?{query_string(selectors + query + paging)}"
    return Outgoing("GET", url, outbound.headers, None, timeout)


def purge_request(request: SourceRequest, outbound: Outbound, ctx: ActiveContext,
                  params: Params, *, timeout: float) -> Outgoing:
    """5.6.21 Purge Entities forwarded: ``DELETE /entities`` with the client's selectors
    as it wrote them (the source purges what it holds of them; D017_01_exc)."""
    base = base_url(request.registration.endpoint) + API
    query: list[tuple[str, str]] = []
    if "type" not in params and request.type_expr is not None:
        query.append(("type", compact_type_expr(request.type_expr, ctx)))
    query += [(name, str(params.get(name)))
              for name in ("type", "id", "idPattern", *READ_PASSED, "keep", "drop")
              if name in params and name != "csf"]
    if request.local_only:
        query.append(("local", "true"))
    return Outgoing("DELETE", f"{base}/entities?{urlencode(query)}", outbound.headers, None,
                    timeout)


def _query_post(request: SourceRequest, outbound: Outbound, ctx: ActiveContext,
                params: Params, base: str, query: list[tuple[str, str]],
                timeout: float, offset: int, limit: int | None, count: bool) -> Outgoing:
    """5.7.2 by POST /entityOperations/query: the selectors in a Query body (5.2.23)."""
    selector: dict[str, Any] = {}
    if request.type_expr is not None:
        selector["type"] = compact_type_expr(request.type_expr, ctx)
    if request.id_pattern is not None:
        selector["idPattern"] = request.id_pattern
    selectors = [{**selector, "id": i} for i in request.ids] if request.ids else [selector]
    body: dict[str, Any] = {"type": "Query", "entities": selectors}
    if request.attrs is not None:
        body["attrs"] = [ctx.compact_iri(a) for a in request.attrs]
    if "q" in params:
        body["q"] = params.get("q")
    if "scopeQ" in params:
        body["scopeQ"] = params.get("scopeQ")
    if "georel" in params:
        body["geoQ"] = {name: params.get(name) for name in ("georel", "geometry", "geoproperty")
                        if name in params}
        try:
            body["geoQ"]["coordinates"] = orjson.loads(str(params.get("coordinates")))
        except orjson.JSONDecodeError:
            body["geoQ"]["coordinates"] = params.get("coordinates")
    if outbound.inline_context and outbound.context_url is not None:
        body["@context"] = outbound.context_url
    paging = [("offset", str(offset))] if offset else []
    if limit is not None:
        paging.append(("limit", str(limit)))
    if count:
        paging.append(("count", "true"))
    url = f"{base}/entityOperations/query?{query_string(query + paging)}"
    return Outgoing("POST", url, outbound.headers, orjson.dumps(body), timeout)


def write_method(operation: str) -> str:
    """The HTTP method of a Table 4.20-1 write operation."""
    return _WRITE_METHODS[operation]


def restrict_body(body: Any, attrs: Iterable[str] | None, ctx: ActiveContext) -> Any:
    """The part of an entity or fragment body that writes ``attrs`` (expanded; None: all).

    The ``@context`` member is taken out: the forwarded request names its
    @context in its Link header (or its body, 4.3.6.6, as the caller decides).
    """
    if not isinstance(body, dict):
        return body
    keep = None if attrs is None else frozenset(attrs)
    out = {}
    for key, value in body.items():
        if key == "@context":
            continue
        if keep is None or key in ("id", "@id", "type", "@type", "scope") \
                or ctx.expand_term(key) in keep:
            out[key] = value
    return out


def _decode(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidAnswer(f"not JSON: {exc}") from None


class RawEntity:
    """An entity as a source answered it (JSON, checked to be an object with an id) and
    the @context it is written in: expanded only if it is used (:func:`expand_raw`).

    ``item`` is the decoded JSON; ``sent`` that JSON as ``orjson`` writes the parsed
    object (what :meth:`Expansions.key <broker.federation.expansions.Expansions.key>`
    keys it by).  Either may be given and the other is made from it when first asked
    for: an answer read before (:class:`~broker.federation.parsed.ParsedAnswers`)
    gives ``sent`` only, and ``item`` is then decoded for this entity alone, shared
    with no other answer.  A class with slots: one is made for every entity a source
    answers, and a frozen dataclass's construction cost about twice as much."""

    __slots__ = ("_item", "_sent", "ctx", "id")

    def __init__(self, id: str, item: dict[str, Any] | None, ctx: ActiveContext,
                 sent: bytes | None = None) -> None:
        if item is None and sent is None:
            raise ValueError("a RawEntity needs its item or its JSON")
        self.id = id
        self._item = item
        self.ctx = ctx
        self._sent = sent

    @property
    def item(self) -> dict[str, Any]:
        """The entity's JSON, decoded (once for this object)."""
        item = self._item
        if item is None:
            item = self._item = orjson.loads(self._sent)  # type: ignore[arg-type]
        return item

    @property
    def sent(self) -> bytes:
        """The entity's JSON as orjson writes the parsed object (made once)."""
        sent = self._sent
        if sent is None:
            sent = self._sent = orjson.dumps(self._item)
        return sent

    def __repr__(self) -> str:
        return f"RawEntity({self.id!r}, ctx={self.ctx!r})"


def expand_raw(raw: RawEntity) -> Entity:
    """The entity validated and expanded (InvalidAnswer if it is not valid NGSI-LD)."""
    try:
        return raw.ctx.expand_entity(parse_entity(raw.item))
    except NgsiLdError as exc:
        raise InvalidAnswer(f"entity {raw.id} is not valid: {exc}") from None


async def raw_entities(body: bytes, headers: Mapping[str, str], resolver: ContextResolving,
                       asked_context: str | None, *, many: bool,
                       parsed: ParsedAnswers | None = None) -> list[RawEntity]:
    """The entities of a source's answer with their @context (InvalidAnswer if not JSON
    entities).  The @context is the answer's own: inline for ``application/ld+json``
    (per entity), else the Link header, else the one the request sent.  ``parsed``:
    the answers read before, by their bytes (the body is then decoded only if new)."""
    kept = parsed.entities(body, many) if parsed is not None else None
    # (id, the decoded entity or None, its JSON or None, its inline @context's JSON)
    entries: Iterable[tuple[str, dict[str, Any] | None, bytes | None, str | None]]
    if kept is not None:
        entries = ((entity_id, None, sent, inline) for entity_id, sent, inline in kept)
    else:
        items = _read_entities(body, many)
        if parsed is not None:
            sent = [orjson.dumps(item) for _, item, _ in items]
            parsed.keep_entities(body, many, tuple(
                (entity_id, json, inline)
                for (entity_id, _, inline), json in zip(items, sent, strict=True)))
            entries = ((entity_id, item, json, inline)
                       for (entity_id, item, inline), json in zip(items, sent, strict=True))
        else:
            entries = ((entity_id, item, None, inline) for entity_id, item, inline in items)
    content_type = header(headers, "Content-Type") or ""
    link = header(headers, "Link")
    try:
        linked = parse_link_context(link) if link else None
    except NgsiLdError:
        linked = None
    default = linked if linked is not None else asked_context
    own = "ld+json" in content_type or linked is None  # an inline @context is used
    contexts: dict[tuple[bool, str | None], ActiveContext] = {}
    out: list[RawEntity] = []
    for entity_id, item, json, inline in entries:
        # the @context of the entity: (True, the inline one's JSON) or (False, the default)
        key = (True, inline) if inline is not None and own else (False, default)
        ctx = contexts.get(key)
        if ctx is None:
            context: Any = orjson.loads(key[1]) if key[0] else key[1]  # type: ignore[arg-type]
            try:
                ctx = contexts[key] = await resolver.active(context)
            except NgsiLdError as exc:
                raise InvalidAnswer(f"its @context cannot be used: {exc}") from None
        out.append(RawEntity(entity_id, item, ctx, json))
    return out


def _read_entities(body: bytes, many: bool) -> list[tuple[str, dict[str, Any], str | None]]:
    """The entities of an answer: (id, the entity without its ``@context`` member, that
    member's JSON or None) each (InvalidAnswer if the answer is not JSON objects with an
    id)."""
    data = _decode(body)
    # a query answered by one entity object rather than an array of one is read as such
    # (lenient in what is accepted: the ETSI context source mock answers so, D010_03)
    items = data if many and isinstance(data, list) else [data]
    out: list[tuple[str, dict[str, Any], str | None]] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise InvalidAnswer("an entity must be a JSON object with an id")
        inline: str | None = None
        if "@context" in item:
            item = dict(item)
            inline = orjson.dumps(item.pop("@context")).decode()
        out.append((item["id"], item, inline))
    return out


async def raw_ids(body: bytes, headers: Mapping[str, str], resolver: ContextResolving,
                  asked_context: str | None,
                  parsed: ParsedAnswers | None = None) -> list[str]:
    """The ids of a source's answer to a query with ``pick=id`` (4.21), in its order,
    checked as :func:`raw_entities` checks the entities of any answer (InvalidAnswer if
    not JSON objects with an id, or if the answer's @context cannot be used), without
    an object made for each: a page far into a distributed query reads hundreds.
    ``parsed``: the answers read before, by their bytes (the body is then decoded only
    if new)."""
    kept = parsed.ids(body) if parsed is not None else None
    if kept is not None:
        ids = list(kept)
    else:
        data = _decode(body)
        items = data if isinstance(data, list) else [data]
        try:  # of JSON values, only an object has members: a list or a scalar is a TypeError
            ids = [item["id"] for item in items]
        except (TypeError, KeyError):
            raise InvalidAnswer("an entity must be a JSON object with an id") from None
        if not all(type(i) is str for i in ids):
            raise InvalidAnswer("an entity must be a JSON object with an id")
        if any("@context" in item for item in items):  # JSON-LD: an @context an entity
            return [raw.id for raw in await raw_entities(body, headers, resolver,
                                                         asked_context, many=True,
                                                         parsed=parsed)]
        if parsed is not None:
            parsed.keep_ids(body, tuple(ids))
    if ids:  # the answer's @context is resolved as for its entities
        link = header(headers, "Link")
        try:
            linked = parse_link_context(link) if link else None
        except NgsiLdError:
            linked = None
        try:
            await resolver.active(linked if linked is not None else asked_context)
        except NgsiLdError as exc:
            raise InvalidAnswer(f"its @context cannot be used: {exc}") from None
    return ids


async def read_entities(body: bytes, headers: Mapping[str, str], resolver: ContextResolving,
                        asked_context: str | None, *, many: bool) -> list[Entity]:
    """The entities of a source's answer, validated and expanded (InvalidAnswer if not)."""
    raws = await raw_entities(body, headers, resolver, asked_context, many=many)
    return [expand_raw(raw) for raw in raws]

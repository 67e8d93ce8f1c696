"""The entity selectors of a query request (ETSI GS CIM 009 clause 5.7.2, Table 6.4.3.2-1).

:func:`query_of_params` turns the URI parameters of ``GET /entities`` (and of
a purge, 5.6.21) into one :class:`~ngsi_ld.query.EntityQuery` with its names
expanded; :func:`check_local_scope` is the rule that a query names a type,
attrs, q or a geo-query unless it is ``local``.  Parsing goes through a
:class:`Parsers`, so that the caller may cache the parse of repeated texts
(the q and type ASTs are immutable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ngsi_ld.errors import BadRequestData
from ngsi_ld.identifiers import is_iri
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.params import Params, comma_list, flag
from ngsi_ld.query.ast import QExpr
from ngsi_ld.query.geo import GeoQuery, parse_geo_query
from ngsi_ld.query.model import EntityQuery
from ngsi_ld.query.qlang import parse_q
from ngsi_ld.query.resolve import expand_values, resolve_names
from ngsi_ld.query.scope import parse_scope_q
from ngsi_ld.query.typeexpr import TypeExpr, parse_type_expr

__all__ = [
    "NOT_ATTRIBUTES", "PLAIN_PARSERS", "SELECTORS", "WILDCARD", "Parsers", "check_local_scope",
    "geo_of", "query_of_params", "resolve", "type_selector", "uri_list",
]

#: ``type=*``: every Entity Type (Table 6.4.3.2-1)
WILDCARD = "*"
NOT_ATTRIBUTES = frozenset({"id", "type"})
_GEO_PARAMS = ("georel", "geometry", "coordinates")
#: the parameters that make up an EntityQuery (query_of_params reads nothing else)
SELECTORS = frozenset((
    "id", "idPattern", "type", "attrs", "q", "scopeQ", *_GEO_PARAMS, "geoproperty",
    "datasetId", "lang", "local", "expandValues", "csf",
))


class Parsers(Protocol):
    """Parsers of the query languages whose texts repeat from request to request."""

    def q(self, text: str, linked: bool = False) -> QExpr:
        """The AST of a q text (``linked``: Linked Entity terms allowed, 4.9)."""
        ...

    def type_expr(self, text: str) -> TypeExpr:
        """The AST of a type selector (4.17)."""
        ...


class _Plain:
    """Parsers that parse every time."""

    def q(self, text: str, linked: bool = False) -> QExpr:
        return parse_q(text, linked)

    def type_expr(self, text: str) -> TypeExpr:
        return parse_type_expr(text)


PLAIN_PARSERS: Parsers = _Plain()


def uri_list(values: list[str] | None, what: str = "id") -> list[str] | None:
    """``values`` if each is an absolute URI, else BadRequestData."""
    if values is None:
        return None
    for value in values:
        if not is_iri(value):
            raise BadRequestData(f"{what} {value!r} is not an absolute URI")
    return values


def geo_of(params: Mapping[str, Any] | Params, where: str) -> GeoQuery | None:
    """4.10: georel, geometry and coordinates come together (geoproperty is optional)."""
    given = [name for name in _GEO_PARAMS if params.get(name) is not None]
    if not given:
        if params.get("geoproperty") is not None:
            raise BadRequestData(f"geoproperty in {where} needs georel, geometry and coordinates")
        return None
    missing = [name for name in _GEO_PARAMS if params.get(name) is None]
    if missing:
        raise BadRequestData(f"a geo-query in {where} also needs {', '.join(missing)}")
    geoproperty = params.get("geoproperty") or "location"
    georel: Any = params.get("georel")
    geometry: Any = params.get("geometry")
    coordinates: Any = params.get("coordinates")
    return parse_geo_query(georel, geometry, coordinates, geoproperty)


def type_selector(text: str | None, parsers: Parsers = PLAIN_PARSERS) -> TypeExpr | None:
    """The type expression of a ``type`` selector; ``*`` (every type, Table 6.4.3.2-1) is None."""
    if text is None or text == WILDCARD:
        return None
    return parsers.type_expr(text)


def check_local_scope(params: Params, wildcard: bool, query: EntityQuery) -> None:
    """Table 6.4.3.2-1: a query names a type, attrs, q or a geo-query unless it is local;
    ``type=*`` implies ``local=true`` and contradicts an explicit ``local=false``."""
    local = flag(params, "local")
    if wildcard and "local" in params and not local:
        raise BadRequestData("type=* implies local=true; it cannot be combined with local=false")
    if not (local or wildcard or query.has_required_selector):
        raise BadRequestData(
            "a query needs at least one of type, attrs, q or a geo-query (or local=true)"
        )


def resolve(ctx: ActiveContext, query: EntityQuery) -> EntityQuery:
    """``query`` with its names expanded by ``ctx``."""
    return resolve_names(query, ctx.expand_term, ctx.expand_term)


def query_of_params(params: Params, ctx: ActiveContext,
                    parsers: Parsers = PLAIN_PARSERS) -> EntityQuery:
    """The selectors of GET /entities (5.7.2) and of a purge, names expanded."""
    type_text = params.get("type")
    q_text, scope_text = params.get("q"), params.get("scopeQ")
    # 4.9: q may filter on Linked Entity attributes (resolved with join, before the query)
    q = None if q_text is None else parsers.q(q_text, True)
    csf = params.get("csf")
    if csf is not None:
        # 4.9: a context source filter is a query on registrations; none are matched
        # here, but a filter that is not valid is refused (5.7.2.4)
        parsers.q(csf)
    expand = comma_list(params, "expandValues")
    if q is not None and expand is not None:
        q = expand_values(q, expand, ctx.expand_term)
    attrs = comma_list(params, "attrs")
    if attrs is not None and not NOT_ATTRIBUTES.isdisjoint(attrs):
        # 4.5.x: id and type are Entity members, never Attribute names
        raise BadRequestData("attrs lists Attribute names; id and type are not Attributes")
    query = EntityQuery(
        ids=uri_list(comma_list(params, "id")),
        id_pattern=params.get("idPattern"),
        type_expr=type_selector(type_text, parsers),
        attrs=attrs,
        q=q,
        scope_q=None if scope_text is None else parse_scope_q(scope_text),
        geo_q=geo_of(params, "the query"),
        dataset_ids=comma_list(params, "datasetId"),
        lang=params.get("lang"),
    )
    check_local_scope(params, type_text == WILDCARD, query)
    return resolve(ctx, query)

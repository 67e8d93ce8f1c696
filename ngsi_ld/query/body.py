"""The body of Query Entities by POST (ETSI GS CIM 009 clause 5.2.23, Query).

One EntityQuery per EntitySelector of ``entities`` (OR-ed), the other members
shared by all of them, and the view members (attrs, pick, omit, datasetId,
lang, join, joinLevel, containedBy) in the body instead of the URL; a
Snapshot's queries are the same object (5.16).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ngsi_ld.errors import BadRequestData
from ngsi_ld.linking import parse_join
from ngsi_ld.params import Params
from ngsi_ld.projection import parse_projection
from ngsi_ld.query.model import EntityQuery
from ngsi_ld.query.resolve import expand_values
from ngsi_ld.query.scope import parse_scope_q
from ngsi_ld.query.selectors import (
    PLAIN_PARSERS,
    WILDCARD,
    Parsers,
    check_local_scope,
    geo_of,
    type_selector,
    uri_list,
)

__all__ = ["check_body_scope", "post_queries"]


def _strings(body: Mapping[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(
        isinstance(v, str) and v for v in value
    ):
        raise BadRequestData(f"{name} must be a non-empty array of strings")
    return value


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequestData(f"{name} must be a string")
    return value


def _selectors(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    entities = body.get("entities")
    if entities is None:
        return [{}]
    if not isinstance(entities, list) or not entities:
        raise BadRequestData("entities must be a non-empty array of EntitySelector")
    for selector in entities:
        if not isinstance(selector, dict):
            raise BadRequestData("every member of entities must be an EntitySelector object")
        unknown = set(selector) - {"id", "idPattern", "type"}
        if unknown:
            raise BadRequestData(f"unknown EntitySelector member(s): {', '.join(sorted(unknown))}")
        # Table 5.2.33-1: type is mandatory, id and idPattern narrow it down
        if selector.get("type") is None:
            raise BadRequestData("an EntitySelector needs a type (\"*\" for every type)")
    return entities


def _selector_ids(selector: Mapping[str, Any]) -> list[str] | None:
    """Table 5.2.33-1: id is one URI or an array of URIs."""
    value = selector.get("id")
    if value is None:
        return None
    ids = [value] if isinstance(value, str) else value
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise BadRequestData("the id of an EntitySelector must be a URI or an array of URIs")
    return uri_list(ids)


def post_queries(
    body: Any, expand: Callable[[str], str] | None = None, parsers: Parsers = PLAIN_PARSERS,
) -> tuple[list[EntityQuery], dict[str, Any]]:
    """The Query body (5.2.23): one EntityQuery per EntitySelector, and the view members.

    ``expand`` expands the values of the attributes ``expandValues`` names (4.9).
    """
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a Query object")
    if body.get("type") != "Query":
        raise BadRequestData('the body must be a Query: its type must be "Query"')
    if "temporalQ" in body:
        # Table 5.2.23-1: temporalQ is only for Query Temporal Evolution of Entities (5.7.4)
        raise BadRequestData("temporalQ is only allowed when querying temporal evolution")
    geo_q = body.get("geoQ")
    if geo_q is not None and not isinstance(geo_q, dict):
        raise BadRequestData("geoQ must be a GeoQuery object")
    q_text, scope_text = _text(body, "q"), _text(body, "scopeQ")
    q = None if q_text is None else parsers.q(q_text, True)  # rel{attr}: resolved later
    expand_names = _strings(body, "expandValues")
    if q is not None and expand_names is not None and expand is not None:
        q = expand_values(q, expand_names, expand)
    common = EntityQuery(
        attrs=_strings(body, "attrs"),
        q=q,
        scope_q=None if scope_text is None else parse_scope_q(scope_text),
        geo_q=None if geo_q is None else geo_of(geo_q, "geoQ"),
        dataset_ids=_strings(body, "datasetId"),
        lang=_text(body, "lang"),
    )
    queries = []
    # Selectors naming ids with the same type are one query on their ids: clients
    # fetch sets of entities this way, hundreds of selectors at a time.
    by_type: dict[str | None, list[str]] = {}
    for selector in _selectors(body):
        ids = _selector_ids(selector)
        pattern, types = _text(selector, "idPattern"), _text(selector, "type")
        if ids is not None:  # 5.2.33: the id takes precedence over idPattern
            by_type.setdefault(types, []).extend(ids)
            continue
        queries.append(replace(common, id_pattern=pattern, type_expr=type_selector(types, parsers)))
    for types, ids in by_type.items():
        queries.append(replace(
            common, ids=list(dict.fromkeys(ids)), type_expr=type_selector(types, parsers),
        ))
    view: dict[str, Any] = {name: _strings(body, name) for name in ("attrs", "datasetId")}
    for name in ("pick", "omit"):  # 4.21 projections, as a string or an array of terms
        terms = _strings(body, name) if not isinstance(body.get(name), str) else [body[name]]
        view[name] = None if terms is None else parse_projection(",".join(terms), name)
    view["lang"] = body.get("lang")
    # 5.2.23: join, joinLevel and containedBy (4.5.23)
    view["join"] = parse_join(body.get("join"), body.get("joinLevel"), body.get("containedBy"),
                              body=True)
    return queries, view


def check_body_scope(params: Params, body: Mapping[str, Any],
                     queries: list[EntityQuery]) -> None:
    """As a GET (Table 6.4.3.2-1): a selector typed "*" or local=true may select everything."""
    wildcard = any(
        isinstance(selector, dict) and selector.get("type") == WILDCARD
        for selector in body.get("entities") or []
    )
    for query in queries:
        check_local_scope(params, wildcard, query)

"""Clause 5.7.2 Query Entities, POST form: ``POST /entityOperations/query``.

The body is a Query (5.2.23): one EntityQuery per EntitySelector of
``entities`` (OR-ed), the other members shared by all of them, and the view
members (attrs, pick, omit, datasetId, lang, join, joinLevel, containedBy) in
the body instead of the URL.
The answer is the GET's (:func:`broker.routes.query.answer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from broker.app import add_route, broker_of
from broker.http import negotiate, read_body
from broker.routes.common import READ_MEDIA, make_view
from broker.routes.query import answer, cached_q, cached_type_expr, geo_of, resolve, uri_list
from ngsi_ld.errors import BadRequestData
from ngsi_ld.linking import parse_join
from ngsi_ld.projection import parse_projection
from ngsi_ld.query import EntityQuery, parse_scope_q

QUERY = "/ngsi-ld/v1/entityOperations/query"


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
        if not any(selector.get(k) is not None for k in ("id", "idPattern", "type")):
            raise BadRequestData("an EntitySelector needs id, idPattern or type")
    return entities


def post_queries(body: Any) -> tuple[list[EntityQuery], dict[str, Any]]:
    """The Query body (5.2.23): one EntityQuery per EntitySelector, and the view members."""
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a Query object")
    if body.get("type") != "Query":
        raise BadRequestData('the body must be a Query: its type must be "Query"')
    geo_q = body.get("geoQ")
    if geo_q is not None and not isinstance(geo_q, dict):
        raise BadRequestData("geoQ must be a GeoQuery object")
    q_text, scope_text = _text(body, "q"), _text(body, "scopeQ")
    common = EntityQuery(
        attrs=_strings(body, "attrs"),
        q=None if q_text is None else cached_q(q_text),
        scope_q=None if scope_text is None else parse_scope_q(scope_text),
        geo_q=None if geo_q is None else geo_of(geo_q, "geoQ"),
        dataset_ids=_strings(body, "datasetId"),
        lang=_text(body, "lang"),
    )
    queries = []
    # Selectors naming an id with the same type are one query on their ids: clients
    # fetch sets of entities this way, hundreds of selectors at a time.
    by_type: dict[str | None, list[str]] = {}
    for selector in _selectors(body):
        entity_id, pattern, types = (_text(selector, k) for k in ("id", "idPattern", "type"))
        if entity_id is not None:  # 5.2.33: the id takes precedence over idPattern
            by_type.setdefault(types, []).append(entity_id)
            continue
        queries.append(replace(
            common, id_pattern=pattern,
            type_expr=None if types is None else cached_type_expr(types),
        ))
    for types, ids in by_type.items():
        queries.append(replace(
            common, ids=uri_list(list(dict.fromkeys(ids))),
            type_expr=None if types is None else cached_type_expr(types),
        ))
    if not any(query.has_selector for query in queries):
        raise BadRequestData("a Query needs entities, attrs, q, scopeQ or geoQ")
    view: dict[str, Any] = {name: _strings(body, name) for name in ("attrs", "datasetId")}
    for name in ("pick", "omit"):  # 4.21 projections, as a string or an array of terms
        terms = _strings(body, name) if not isinstance(body.get(name), str) else [body[name]]
        view[name] = None if terms is None else parse_projection(",".join(terms), name)
    view["lang"] = body.get("lang")
    # 5.2.23: join, joinLevel and containedBy (4.5.23)
    view["join"] = parse_join(body.get("join"), body.get("joinLevel"), body.get("containedBy"),
                              body=True)
    return queries, view


# 5.7.2 Query Entities (POST /entityOperations/query, the body is a Query 5.2.23)
async def query_post(request: web.Request) -> web.Response:
    broker = broker_of(request)
    media = negotiate(request.headers.get("Accept"), READ_MEDIA)
    body = await read_body(request, broker.settings.max_body_size)
    ctx = await broker.resolver.active(body.context)
    queries, members = post_queries(body.data)
    view = make_view(
        request, ctx, media, attrs=members["attrs"], pick=members["pick"],
        omit=members["omit"], dataset_ids=members["datasetId"], lang=members["lang"],
        join=members["join"],
    )
    tenant = await broker.tenant(request)
    resolved = [resolve(ctx, query) for query in queries]
    return await answer(broker, request, tenant, resolved, view, ctx, body.context)


def setup(app: web.Application) -> None:
    add_route(app, "POST", QUERY, query_post, "queryEntitiesPost")


__all__ = ["QUERY", "post_queries", "setup"]

"""Request options parsed on plain mappings (ngsi_ld.params, view, paging, selectors, bodies).

The same errors as over HTTP, without a request object: what the service and
the temporal and distributed operations build on.
"""

from __future__ import annotations

import pytest

from ngsi_ld.bodies import GEO_JSON, JSON, LD_JSON, context_in_body, item_context, request_context
from ngsi_ld.errors import BadRequestData, InvalidRequest, TooManyResults
from ngsi_ld.headers import negotiate, parse_link_context, tenant_name
from ngsi_ld.jsonld import compile_context, core_context_url
from ngsi_ld.paging import entity_page_links, page_of
from ngsi_ld.params import QueryParams, comma_list, flag, non_negative, options_of
from ngsi_ld.prefer import preferred_version, version_applied
from ngsi_ld.query.body import post_queries
from ngsi_ld.query.selectors import query_of_params
from ngsi_ld.view import view_of

CTX = compile_context(None, {}, core_context_url("1.8"))
CORE = "https://uri.etsi.org/ngsi-ld/default-context/"


def test_params_read_like_a_query_string() -> None:
    params = QueryParams([("attrs", "a,b"), ("attrs", "c"), ("count", "true"), ("limit", "5")])
    assert comma_list(params, "attrs") == ["a", "b", "c"]
    assert comma_list(params, "missing") is None
    assert flag(params, "count") and not flag(params, "details")
    assert non_negative(params, "limit") == 5
    with pytest.raises(BadRequestData, match="empty"):
        comma_list(QueryParams({"attrs": " , "}), "attrs")
    with pytest.raises(BadRequestData, match="true or false"):
        flag(QueryParams({"count": "yes"}), "count")
    with pytest.raises(BadRequestData, match="non-negative"):
        non_negative(QueryParams({"offset": "-1"}), "offset")
    with pytest.raises(BadRequestData, match="unknown option"):
        options_of(QueryParams({"options": "keyValues,bogus"}), frozenset({"keyValues"}))
    assert QueryParams({"a": "1", "b": "2"}).without("a").items() == [("b", "2")]


def test_paging() -> None:
    assert page_of(QueryParams(), False, 20, 1000) == (0, 20)
    assert page_of(QueryParams({"offset": "4", "limit": "2"}), False, 20, 1000) == (4, 2)
    with pytest.raises(TooManyResults):
        page_of(QueryParams({"limit": "2000"}), False, 20, 1000)
    with pytest.raises(BadRequestData, match="limit=0"):
        page_of(QueryParams({"limit": "0"}), False, 20, 1000)
    links = entity_page_links("/e/", QueryParams({"type": "T", "limit": "1"}), 1, 1, True, JSON)
    assert links == ['</e?limit=1&offset=0&type=T>; rel="prev"; type="application/json"',
                     '</e?limit=1&offset=2&type=T>; rel="next"; type="application/json"']


def test_views_from_params() -> None:
    view = view_of(QueryParams({"options": "keyValues,sysAttrs", "attrs": "temperature"}),
                   CTX, JSON)
    assert view.fmt == "keyValues" and view.sys_attrs and view.attrs == {CORE + "temperature"}
    with pytest.raises(InvalidRequest):  # 6.3.20: an invalid options value
        view_of(QueryParams({"options": "nope"}), CTX, JSON)
    with pytest.raises(BadRequestData, match="conflicting"):
        view_of(QueryParams({"options": "keyValues,concise"}), CTX, JSON)
    with pytest.raises(BadRequestData, match="GeoJSON"):
        view_of(QueryParams({"geometryProperty": "where"}), CTX, JSON)
    assert view_of(QueryParams(), CTX, GEO_JSON, "ngsi-ld=1.5").version == (1, 5)
    assert preferred_version("ngsi-ld=1.9") is None
    assert version_applied("ngsi-ld=1.5") == {"Preference-Applied": "ngsi-ld=1.5"}


def test_views_are_shared_by_equal_options_and_keyed_by_what_renders() -> None:
    """The same options (whatever the other parameters) give the same View; a
    rendering key is equal exactly when the renderings are; refusals are raised
    again at every request, never remembered."""
    first = view_of(QueryParams({"options": "keyValues", "type": "T"}), CTX, JSON)
    again = view_of(QueryParams({"type": "U", "options": "keyValues"}), CTX, JSON)
    assert again is first
    other = [
        view_of(QueryParams({"options": "concise"}), CTX, JSON),
        view_of(QueryParams({"options": "keyValues"}), CTX, LD_JSON),
        view_of(QueryParams({"options": "keyValues"}), CTX, JSON, "ngsi-ld=1.5"),
        view_of(QueryParams({"options": "keyValues", "attrs": "a"}), CTX, JSON),
    ]
    assert all(view is not first for view in other)
    assert len({first.key, *(view.key for view in other)}) == 5
    # a View made afresh for the same rendering (e.g. a retrieval's) shares the key
    assert view_of(QueryParams({"options": "keyValues"}), CTX, JSON, must_match=True).key \
        == first.key
    for _ in range(2):
        with pytest.raises(InvalidRequest):
            view_of(QueryParams({"options": "nope", "type": "T"}), CTX, JSON)


def test_query_selectors_from_params() -> None:
    query = query_of_params(QueryParams({"type": "Room", "q": "temperature>20"}), CTX)
    assert query.type_expr is not None and query.q is not None
    with pytest.raises(BadRequestData, match="at least one of type"):
        query_of_params(QueryParams({"limit": "1"}), CTX)
    with pytest.raises(BadRequestData, match="local=false"):
        query_of_params(QueryParams({"type": "*", "local": "false"}), CTX)
    with pytest.raises(BadRequestData, match="not an absolute URI"):
        query_of_params(QueryParams({"id": "nope", "type": "T"}), CTX)
    queries, members = post_queries({"type": "Query", "entities": [{"type": "Room"}],
                                     "attrs": ["temperature"]})
    assert len(queries) == 1 and members["attrs"] == ["temperature"]
    with pytest.raises(BadRequestData, match="Query"):
        post_queries({"type": "Entity"})


def test_context_placement_rules() -> None:
    data = {"@context": "http://ctx", "id": "x"}
    assert request_context(data, LD_JSON, None) == "http://ctx" and "@context" not in data
    with pytest.raises(BadRequestData, match="requires @context"):
        request_context({"id": "x"}, LD_JSON, None)
    with pytest.raises(BadRequestData, match="not allowed"):
        request_context({"@context": "http://c"}, LD_JSON, "http://link")
    with pytest.raises(BadRequestData, match="requires Content-Type"):
        request_context({"@context": "http://c"}, JSON, None)
    assert request_context({"id": "x"}, JSON, "http://link") == "http://link"
    assert request_context([{"@context": "c"}], JSON, None, item_contexts=True) is None
    assert item_context(LD_JSON, {"@context": "c"}) == (True, "c")
    assert item_context(JSON, {"id": "x"}) == (False, None)
    assert context_in_body(LD_JSON, None) and not context_in_body(JSON, None)
    assert context_in_body(GEO_JSON, None) and not context_in_body(GEO_JSON, "body=json")


def test_headers() -> None:
    assert negotiate(None, (JSON, LD_JSON)) == JSON
    assert negotiate("application/ld+json", (JSON, LD_JSON)) == LD_JSON
    assert parse_link_context(
        '<http://c>; rel="http://www.w3.org/ns/json-ld#context"') == "http://c"
    assert tenant_name(None, "ACME", True) == "acme"
    with pytest.raises(BadRequestData, match="invalid tenant"):
        tenant_name("no way", None, True)

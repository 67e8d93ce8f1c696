"""Pagination of query answers (ETSI GS CIM 009 clauses 4.12, 6.3.10 and 6.3.13).

``offset`` and ``limit`` select a page; ``limit`` defaults to the broker's page
size and may not exceed its maximum (403 TooManyResults); ``limit=0`` only
counts (with ``count=true``).  The previous and next pages are announced as
Link headers naming the same resource with the page's ``limit`` and ``offset``.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote, urlencode

from ngsi_ld.errors import BadRequestData, TooManyResults
from ngsi_ld.params import Params, non_negative

__all__ = ["entity_page_links", "page_of", "subscription_page_links"]


def page_of(params: Params, count: bool, default_size: int, max_size: int) -> tuple[int, int]:
    """(offset, limit) of a query (6.3.10)."""
    offset = non_negative(params, "offset") or 0
    limit = non_negative(params, "limit")
    if limit is None:
        limit = default_size
    if limit > max_size:
        raise TooManyResults(f"limit {limit} exceeds the maximum page size {max_size}")
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true")
    return offset, limit


#: characters a link keeps as they are: RFC 3986 allows them in a query component, and
#: none of them separates parameters (``&``, ``=`` and ``+`` are encoded)
_QUERY_SAFE = ":/@!$'()*,;?"


# 4.12 and 6.3.10: the previous and next pages as Link headers.  The link names the
# resource (its path without a trailing slash) with the request's parameters sorted by
# name and limit/offset of the page, and the media type of the answer
def entity_page_links(path: str, params: Params, offset: int, limit: int, more: bool,
                      media_type: str) -> list[str]:
    """``Link`` values of the pages before and after this one of an entity query."""
    if not (more or offset > 0) or limit <= 0:
        return []
    before, between, after = _link_template(
        path, tuple((k, v) for k, v in params.items() if k != "offset" and k != "limit"))
    links = []
    if offset > 0:
        links.append(f'<{before}{limit}{between}{max(0, offset - limit)}{after}>; rel="prev";'
                     f' type="{media_type}"')
    if more:
        links.append(f'<{before}{limit}{between}{offset + limit}{after}>; rel="next";'
                     f' type="{media_type}"')
    return links


@lru_cache(maxsize=1024)
def _link_template(path: str, rest: tuple[tuple[str, str], ...]) -> tuple[str, str, str]:
    """The link of a page of the query ``rest`` (its parameters but limit and offset) as
    three pieces around the limit and the offset: ``limit=`` and ``offset=`` take the
    same places among the sorted parameters whatever their values (the names decide)."""
    pieces = sorted([*(f"{quote(k, safe=_QUERY_SAFE)}={quote(v, safe=_QUERY_SAFE)}"
                       for k, v in rest), "limit=\x00", "offset=\x01"])
    head, tail = "&".join(pieces).split("limit=\x00")  # quoted: no other NUL
    middle, end = tail.split("offset=\x01")
    return f"{path.rstrip('/') or '/'}?{head}limit=", middle + "offset=", end


def subscription_page_links(path: str, params: Params, offset: int, limit: int, total: int,
                            media_type: str) -> list[str]:
    """6.3.13: ``Link`` values of the pages before and after this one of a list.

    The other query parameters are kept in their order, ``limit`` and ``offset`` last.
    """
    if limit <= 0:
        return []
    rest = [(k, v) for k, v in params.items() if k not in ("limit", "offset")]

    def link(at: int, rel: str) -> str:
        query = urlencode([*rest, ("limit", str(limit)), ("offset", str(at))])
        return f'<{path}?{query}>; rel="{rel}"; type="{media_type}"'

    links = []
    if offset > 0:
        links.append(link(max(0, offset - limit), "prev"))
    if offset + limit < total:
        links.append(link(offset + limit, "next"))
    return links

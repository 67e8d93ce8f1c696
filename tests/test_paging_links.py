"""The Link headers of a query's pages (4.12, 6.3.10): the request's parameters, sorted
(``name=value`` as encoded), with the limit and offset of the page
(``ngsi_ld.paging.entity_page_links``)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.paging import entity_page_links
from ngsi_ld.params import QueryParams

# names that sort just before, after and around limit and offset, and characters a
# link must encode
names = st.sampled_from(["type", "q", "limit", "offset", "lim", "limitx", "offset2", "o",
                         "l", "a=b", "id&x", "z", "count"])
values = st.sampled_from(["", "on", "a b", "x&y", "=", "é", "%", "1+2", 'p=="on";h>=3'])
LINK = re.compile(r'^<(?P<url>[^>]*)>; rel="(?P<rel>prev|next)"; type="application/json"$')


@given(pairs=st.lists(st.tuples(names, values), max_size=5), offset=st.integers(0, 60),
       limit=st.integers(1, 30), more=st.booleans(),
       path=st.sampled_from(["/ngsi-ld/v1/entities", "/ngsi-ld/v1/entities/"]))
def test_a_page_link_is_the_sorted_parameters_with_its_limit_and_offset(
    pairs: list[tuple[str, str]], offset: int, limit: int, more: bool, path: str,
) -> None:
    links = entity_page_links(path, QueryParams(pairs), offset, limit, more, "application/json")
    wanted = {"prev": offset > 0, "next": more}
    assert [m["rel"] for m in map(LINK.match, links) if m] == [r for r, w in wanted.items() if w]
    rest = [(k, v) for k, v in pairs if k not in ("limit", "offset")]
    for link in links:
        match = LINK.match(link)
        assert match is not None
        url = urlsplit(match["url"])
        assert url.path == "/ngsi-ld/v1/entities"
        at = max(0, offset - limit) if match["rel"] == "prev" else offset + limit
        pieces = url.query.split("&")  # in order, as encoded
        assert pieces == sorted(pieces)
        assert sorted(parse_qsl(url.query, keep_blank_values=True)) == sorted(
            [*rest, ("limit", str(limit)), ("offset", str(at))])

from __future__ import annotations

import contextlib

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st

from broker.http import (
    GEO_JSON,
    JSON,
    LD_JSON,
    _preferences,
    link_header,
    negotiate,
    parse_link_context,
    preferences,
    requested_version,
    version_applied,
)
from ngsi_ld.errors import BadRequestData, NotAcceptable

OFFERED = (JSON, LD_JSON, GEO_JSON)
CTX = "https://example.org/ctx.jsonld"


@pytest.mark.parametrize(
    "accept,expected",
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/ld+json", LD_JSON),
        ("application/geo+json", GEO_JSON),
        ("application/ld+json;q=0.2, application/json", JSON),
        ("application/*;q=0.5, application/ld+json;q=0.9", LD_JSON),
        ("text/html, */*;q=0.1", JSON),
        ("application/json;q=0, application/ld+json", LD_JSON),
        # 6.3.4: equal weights select in the order of the list, not of the header
        ("application/ld+json, application/json", JSON),
        ("application/geo+json, application/json", JSON),
        ("application/geo+json, application/ld+json", LD_JSON),
        # RFC 9110 12.5.1: the most specific range decides; a wildcard cannot undo q=0
        ("application/json;q=0, */*", LD_JSON),
        ("*/*;q=0.9, application/ld+json;q=0.8", JSON),
        ("application/json;q=0.1, application/ld+json;q=0.9", LD_JSON),
        # a weight that is not a number leaves the default weight
        ("application/ld+json;q=notanumber", LD_JSON),
        ("application/ld+json;Q=0.5, application/geo+json;q=0.4", LD_JSON),
    ],
)
def test_negotiate(accept: str | None, expected: str) -> None:
    assert negotiate(accept, OFFERED) == expected


@pytest.mark.parametrize(
    "accept",
    ["text/html", "application/xml", "application/json;q=0", "*/*;q=0", "application/*;q=0"],
)
def test_negotiate_refuses_with_406(accept: str) -> None:
    with pytest.raises(NotAcceptable):
        negotiate(accept, OFFERED)


def test_link_header_round_trip() -> None:
    assert parse_link_context(link_header(CTX)) == CTX
    assert parse_link_context(None) is None
    other = '<https://example.org/next>; rel="next"'
    assert parse_link_context(other) is None
    assert parse_link_context(other + ", " + link_header(CTX)) == CTX


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "<https://example.org/x",
        '<file:///etc/passwd>; rel="http://www.w3.org/ns/json-ld#context"',
        link_header(CTX) + ", " + link_header(CTX + "2"),
    ],
)
def test_malformed_link_header_is_bad_request(header: str) -> None:
    for _ in range(2):  # refused again: a refusal is not remembered as an answer
        with pytest.raises(BadRequestData):
            parse_link_context(header)


@given(st.text(max_size=200))
def test_link_parser_never_fails_otherwise(text: str) -> None:
    with contextlib.suppress(BadRequestData):
        parse_link_context(text)


@given(st.text(max_size=200))
def test_negotiation_never_fails_otherwise(text: str) -> None:
    with contextlib.suppress(NotAcceptable):
        assert negotiate(text, OFFERED) in OFFERED


# -- Prefer (IETF RFC 7240; 6.3.6 body=json and ngsi-ld=<version>) ----------------------
@pytest.mark.parametrize("header, expected", [
    ("ngsi-ld=1.0", {"ngsi-ld": "1.0"}),
    ("NGSI-LD=1.0", {"ngsi-ld": "1.0"}),  # names are case-insensitive
    ('ngsi-ld="1.0"', {"ngsi-ld": "1.0"}),  # a quoted value
    ("ngsi-ld=1.0;q=0.1", {"ngsi-ld": "1.0"}),  # parameters do not change the preference
    ("respond-async, ngsi-ld=1.0", {"respond-async": "", "ngsi-ld": "1.0"}),
    ('return=minimal; foo="a,b", body=json', {"return": "minimal", "body": "json"}),
    ("ngsi-ld=1.5, ngsi-ld=1.0", {"ngsi-ld": "1.5"}),  # the first of a repeated name
    ("@@@, body=json", {"body": "json"}),  # what cannot be read is ignored
    ('a="x\\"y"', {"a": 'x"y'}),
])
def test_preferences(header: str, expected: dict[str, str]) -> None:
    assert dict(_preferences(header)) == expected


@given(st.text(alphabet=' ,;="\\abc-1.', max_size=3000))
def test_preferences_never_fail(text: str) -> None:
    _preferences(text)  # linear: no pathological input


def test_prefer_header_of_a_request() -> None:
    request = make_mocked_request("GET", "/", headers={"Prefer": "NGSI-LD=1.5"})
    assert preferences(request) == {"ngsi-ld": "1.5"}
    assert requested_version(request) == (1, 5)
    assert version_applied(request) == {"Preference-Applied": "ngsi-ld=1.5"}
    later = make_mocked_request("GET", "/", headers={"Prefer": "ngsi-ld=3.2"})
    assert version_applied(later) == {"Preference-Applied": "ngsi-ld=1.9"}
    for headers in ({}, {"Prefer": "respond-async"}, {"Prefer": "ngsi-ld=latest"}):
        request = make_mocked_request("GET", "/", headers=headers)
        assert requested_version(request) is None and version_applied(request) == {}

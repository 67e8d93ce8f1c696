"""Via and loop detection (6.3.18), NGSILD-Warning (6.3.17) and the headers of forwarded
requests (4.3.6.5, 4.3.6.6, 4.14)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import InvalidRequest
from ngsi_ld.federation import (
    Hop,
    LoopDetected,
    Registration,
    WarnCode,
    append_via,
    forward_headers,
    guard_loop,
    link_header,
    parse_registration,
    parse_via,
    source_warning,
    visited,
    warning,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ME = "urn:ngsi-ld:ContextSource:hub"
CTX = "https://example.org/ctx.jsonld"


def registration(**members: Any) -> Registration:
    raw = {"id": "urn:r:1", "type": "ContextSourceRegistration", "endpoint": "http://cs.org:1026",
           "information": [{"entities": [{"type": "Vehicle"}]}], **members}
    return parse_registration(raw, lambda t: t, NOW)


def test_via_is_read_hop_by_hop_across_fields() -> None:
    hops = parse_via(["1.1 urn:ngsi-ld:ContextSource:a, HTTP/1.1 b.example.org:8080 (aiohttp)",
                      "2 urn:ngsi-ld:ContextSource:c"])
    assert hops == (Hop("1.1", "urn:ngsi-ld:ContextSource:a"),
                    Hop("HTTP/1.1", "b.example.org:8080", "(aiohttp)"),
                    Hop("2", "urn:ngsi-ld:ContextSource:c"))
    assert visited(hops) == {"urn:ngsi-ld:ContextSource:a", "b.example.org:8080",
                             "urn:ngsi-ld:ContextSource:c"}
    assert parse_via([]) == () and parse_via(["", " , ,"]) == ()


@pytest.mark.parametrize("value", ["1.1", "evil", "1.1 a b", "1.1 a,, x", "1.1 a (open",
                                   "1.1 a\r\nX: y", "/1.1 a"])
def test_a_malformed_via_is_refused(value: str) -> None:
    # a hop read wrongly could hide a loop
    with pytest.raises(InvalidRequest, match="Via"):
        parse_via([value])


def test_the_forwarded_via_appends_this_broker() -> None:
    # D018_03: the forwarded Via carries the ones before
    hops = parse_via(["1.1 urn:ngsi-ld:ContextSource:a"])
    assert append_via(hops, ME) == f"1.1 urn:ngsi-ld:ContextSource:a, 1.1 {ME}"
    assert append_via((), ME) == f"1.1 {ME}"
    assert visited(parse_via([append_via(hops, ME)])) == {"urn:ngsi-ld:ContextSource:a", ME}


@given(st.lists(st.tuples(st.sampled_from(["1.1", "HTTP/1.1", "2"]),
                          st.from_regex(r"[a-z][a-z0-9:.\-]{0,20}", fullmatch=True),
                          st.one_of(st.none(), st.from_regex(r"\([a-z ]{0,10}\)",
                                                             fullmatch=True))),
                max_size=5))
def test_via_round_trips(hops: list[tuple[str, str, str | None]]) -> None:
    chain = tuple(Hop(*hop) for hop in hops)
    assert parse_via([append_via(chain, ME)]) == (*chain, Hop("1.1", ME))


def test_a_request_back_at_this_broker() -> None:
    back = parse_via([f"1.1 {ME}"])
    # not visited yet: forward as planned
    assert guard_loop(ME, parse_via(["1.1 urn:ngsi-ld:ContextSource:other"]), [True])
    # D018_01: the single redirect source leads back here: 508
    with pytest.raises(LoopDetected) as caught:
        guard_loop(ME, back, [True])
    assert caught.value.status == 508
    assert caught.value.to_problem()["type"] == "https://uri.etsi.org/ngsi-ld/errors/LoopDetected"
    # inclusive sources, or several: answer from local data, forward nothing
    assert guard_loop(ME, back, [False]) is False
    assert guard_loop(ME, back, [True, True]) is False
    assert guard_loop(ME, back, []) is False


def test_warnings() -> None:
    assert warning(WarnCode.PERSISTENT, ME, 'say "hi"\\') == f'299 {ME} "say \\"hi\\"\\\\"'
    source = registration()
    # 6317_01_01: an error answer
    assert source_warning(source, ME, status=403).startswith(f"299 {ME} ")  # type: ignore[union-attr]
    # 6317_01_02 and 6317_02_02: an answer that is not NGSI-LD (or too big)
    assert source_warning(source, ME, status=200, invalid=True).startswith("111 ")  # type: ignore[union-attr]
    # no answer in time (or cooling down)
    assert source_warning(source, ME, timed_out=True).startswith("199 ")  # type: ignore[union-attr]
    assert source_warning(source, ME).startswith("199 ")  # type: ignore[union-attr]
    # 6317_01_03: a 404 is not abnormal; a good answer neither
    assert source_warning(source, ME, status=404) is None
    assert source_warning(source, ME, status=200) is None
    assert "urn:r:1 at http://cs.org:1026" in source_warning(source, ME, status=500)  # type: ignore[operator]


def headers_of(reg: Registration, *, incoming: dict[str, str] | None = None,
               has_body: bool = False, context: str | None = CTX) -> dict[str, str]:
    outbound = forward_headers(reg, via=f"1.1 {ME}", context_url=context,
                               incoming=incoming or {}, has_body=has_body)
    return dict(outbound.headers)


def test_a_forward_carries_via_accept_and_the_context_link() -> None:
    sent = headers_of(registration())
    assert sent == {"Via": f"1.1 {ME}", "Accept": "application/json", "Link": link_header(CTX)}
    assert link_header(CTX) == (f'<{CTX}>; rel="http://www.w3.org/ns/json-ld#context"; '
                                'type="application/ld+json"')
    sent = headers_of(registration(), has_body=True, context=None)
    assert sent["Content-Type"] == "application/json" and "Link" not in sent


def test_the_tenant_of_the_registration_never_the_requester() -> None:
    # 414_01_03: a registration without tenant targets the source's default tenant
    assert "NGSILD-Tenant" not in headers_of(registration(), incoming={"NGSILD-Tenant": "a"})
    assert headers_of(registration(tenant="district"))["NGSILD-Tenant"] == "district"


def test_context_source_info_travels_as_headers() -> None:
    # 436_05_01
    sent = headers_of(registration(contextSourceInfo=[
        {"key": "Authorization", "value": "Bearer test-token"},
        {"key": "X-Custom-Info", "value": "fixed"}]))
    assert sent["Authorization"] == "Bearer test-token" and sent["X-Custom-Info"] == "fixed"


def test_urn_ngsi_ld_request_copies_the_triggering_header() -> None:
    # 436_05_02: copied when present, nothing otherwise
    reg = registration(contextSourceInfo=[{"key": "user", "value": "urn:ngsi-ld:request"}])
    assert headers_of(reg, incoming={"user": "abcd"})["user"] == "abcd"
    assert "user" not in headers_of(reg)


def test_tenant_and_connection_headers_cannot_be_overridden() -> None:
    # 436_05_03
    reg = registration(contextSourceInfo=[
        {"key": "NGSILD-Tenant", "value": "hacker"}, {"key": "Via", "value": "1.1 evil"},
        {"key": "Content-Length", "value": "0"}, {"key": "Host", "value": "evil.org"}])
    sent = forward_headers(reg, via=f"1.1 {ME}", context_url=CTX, incoming={}, has_body=True)
    names = [name.lower() for name, _ in sent.headers]
    assert "ngsild-tenant" not in names and "host" not in names
    assert names.count("via") == 1 and dict(sent.headers)["Via"] == f"1.1 {ME}"
    assert "content-length" not in names


def test_processed_context_source_info() -> None:
    # 436_06_01: contentType ld+json: the @context goes in the body
    inline = forward_headers(
        registration(contextSourceInfo=[{"key": "contentType", "value": "application/ld+json"}]),
        via="1.1 x", context_url=CTX, incoming={}, has_body=True)
    assert inline.inline_context and inline.context_url == CTX
    assert dict(inline.headers)["Content-Type"] == "application/ld+json"
    assert "Link" not in dict(inline.headers)
    # 436_06_02: jsonldContext: JSON with the registered context in the Link header
    other = "https://example.org/other.jsonld"
    recompact = forward_headers(
        registration(contextSourceInfo=[{"key": "jsonldContext", "value": other},
                                        {"key": "contentType", "value": "application/ld+json"}]),
        via="1.1 x", context_url=CTX, incoming={}, has_body=True)
    sent = dict(recompact.headers)
    assert not recompact.inline_context and recompact.context_url == other
    assert sent["Content-Type"] == "application/json" and other in sent["Link"]
    assert "jsonldContext" not in sent and "contentType" not in sent
    # 436_06_03: accept
    sent = headers_of(registration(contextSourceInfo=[{"key": "accept",
                                                       "value": "application/ld+json"}]))
    assert sent["Accept"] == "application/ld+json" and "accept" not in sent

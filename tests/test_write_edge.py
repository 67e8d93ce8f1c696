"""The write routes' lean edge (issue 19): what a client sees of a create or an update.

The body's media type is read through aiohttp's cached parse of the header
(``broker.http.media_type``), a created entity is stamped without a copy, the
Location of an id that needs no percent-encoding is not walked, and a 201 or 204
without an inline @context skips the link look-up: each is checked here against
what the slower way answers, for good and bad requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from hypothesis import given
from hypothesis import strategies as st

from broker.app import create_app
from broker.config import Settings
from broker.events import ChangeBus
from broker.http import media_type
from broker.service.entities import _quoted
from ngsi_ld.operations import stamp_entity

E = "/ngsi-ld/v1/entities"
JSON = {"Content-Type": "application/json"}
CAR = {"id": "urn:ngsi-ld:Car:1", "type": "Car",
       "speed": {"type": "Property", "value": 1, "unitCode": "KMH"},
       "location": {"type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": [1.5, 2.5]}}}
INLINE = {"Car": "https://example.org/Car", "speed": "https://example.org/speed"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(
            create_app(Settings(store=f"sqlite:///{tmp_path / 'b.db'}")))) as client:
        yield client


async def _send(client: TestClient, method: str, path: str, body: Any,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with client.request(method, path, data=data, headers=headers or JSON) as resp:
        raw = await resp.read()
        return resp.status, dict(resp.headers), orjson.loads(raw) if raw else None


# -- the media type -------------------------------------------------------------------

@given(st.one_of(st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                    max_size=60),
                 st.sampled_from(["application/json", "Application/JSON; charset=utf-8",
                                  "application/ld+json;profile=x", "application/merge-patch+json",
                                  " text/plain ; q=1", "application/", "/json"])))
def test_the_media_type_is_what_aiohttp_reads_of_any_content_type(raw: str | None) -> None:
    headers = {} if raw is None else {"Content-Type": raw}
    request = make_mocked_request("POST", E, headers=headers)
    assert media_type(request) == request.content_type


@pytest.mark.parametrize(("content_type", "status"), [
    ("application/json", 201), ("Application/JSON; charset=utf-8", 201),
    ("application/json;charset=UTF-8", 201), ("text/plain", 415), ("application/xml", 415),
    ("application/merge-patch+json", 415),  # a create is not a PATCH (6.3.4)
])
async def test_create_answers_by_the_body_media_type(client: TestClient, content_type: str,
                                                     status: int) -> None:
    code, headers, body = await _send(client, "POST", E, CAR, {"Content-Type": content_type})
    assert code == status
    if status == 415:
        assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/UnsupportedMediaType"
        assert headers["Content-Type"] == "application/json"
    else:
        assert headers["Location"] == f"{E}/urn:ngsi-ld:Car:1"


async def test_a_write_without_content_type_is_415_and_writes_nothing(client: TestClient) -> None:
    async with client.post(E, data=orjson.dumps(CAR)) as resp:  # bytes: no Content-Type
        assert resp.status == 415
        assert (await resp.json())["type"].endswith("/UnsupportedMediaType")
    async with client.get(f"{E}/urn:ngsi-ld:Car:1") as resp:
        assert resp.status == 404


# -- the Location of a created entity -----------------------------------------------

@given(st.text(max_size=40))
def test_an_id_is_quoted_as_quote_does(entity_id: str) -> None:
    assert _quoted(entity_id) == quote(entity_id, safe=":")


@pytest.mark.parametrize("entity_id", [
    "urn:ngsi-ld:Car:1", "urn:ngsi-ld:Car:a~b.c_d-e", "urn:ngsi-ld:Car:x%2Fy",
    "urn:ngsi-ld:Car:caf\u00e9", "https://example.org/cars/7?x=1",
])
async def test_the_location_of_a_created_entity_finds_it(client: TestClient,
                                                         entity_id: str) -> None:
    code, headers, _ = await _send(client, "POST", E, {**CAR, "id": entity_id})
    assert code == 201
    assert headers["Location"] == f"{E}/{quote(entity_id, safe=':')}"
    async with client.get(headers["Location"]) as resp:
        assert resp.status == 200
        assert (await resp.json())["id"] == entity_id


# -- a created entity, stamped in place -----------------------------------------------

async def test_a_created_entity_reads_back_as_sent_with_its_stamps(client: TestClient) -> None:
    code, headers, _ = await _send(client, "POST", E, CAR)
    assert code == 201 and "Link" not in headers
    async with client.get(f"{E}/urn:ngsi-ld:Car:1?options=sysAttrs") as resp:
        got = await resp.json()
    stamps = {got["createdAt"], got["modifiedAt"], got["speed"]["createdAt"],
              got["speed"]["modifiedAt"], got["location"]["modifiedAt"]}
    assert len(stamps) == 1  # one write, one time
    assert got["speed"]["value"] == 1 and got["speed"]["unitCode"] == "KMH"
    assert got["location"]["value"] == CAR["location"]["value"]
    # the same body again: 409, and the first write is what stays
    code, _, body = await _send(client, "POST", E, {**CAR, "speed": {"type": "Property",
                                                                     "value": 2}})
    assert code == 409 and body["type"].endswith("/AlreadyExists")
    async with client.get(f"{E}/urn:ngsi-ld:Car:1") as resp:
        assert (await resp.json())["speed"]["value"] == 1


def test_stamping_in_place_gives_what_stamping_a_copy_gives() -> None:
    entity: dict[str, Any] = {
        "id": "urn:ngsi-ld:Car:1", "type": ["https://example.org/Car"],
        "attrs": {"https://example.org/speed": [
            {"type": "Property", "value": {"a": [1, 2]}, "datasetId": "urn:d:1"},
            {"type": "Property", "value": 3,
             "sub": {"https://example.org/acc": {"type": "Property", "value": 0.5}}}]}}
    copied = stamp_entity(orjson.loads(orjson.dumps(entity)), "2026-01-01T00:00:00.000Z")
    owned = stamp_entity(orjson.loads(orjson.dumps(entity)), "2026-01-01T00:00:00.000Z",
                         owned=True)
    assert owned == copied


# -- 201 and 204 with and without an inline @context -----------------------------------

async def test_writes_with_an_inline_context_link_it_and_others_do_not(
        client: TestClient) -> None:
    ld = {"Content-Type": "application/ld+json"}
    code, headers, _ = await _send(client, "POST", E, {**CAR, "@context": INLINE}, ld)
    assert code == 201 and headers["Link"].startswith("<")
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in headers["Link"]
    url = f"{E}/urn:ngsi-ld:Car:1"
    update = {"speed": {"type": "Property", "value": 5}}
    code, headers, _ = await _send(client, "PATCH", url + "/attrs", {**update, "@context": INLINE},
                                   ld)
    assert code == 204 and "Link" in headers
    core = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
    code, headers, _ = await _send(client, "PATCH", url + "/attrs", {**update, "@context": core},
                                   ld)
    assert code == 204 and "Link" not in headers
    code, headers, _ = await _send(client, "PATCH", url + "/attrs/speed",
                                   {"type": "Property", "value": 6})
    assert code == 204 and "Link" not in headers
    async with client.get(url, headers={"Link": f'<{core}>; rel="http://www.w3.org/ns/'
                                                'json-ld#context"'}) as resp:
        got = await resp.json()
    # the PATCH of the inline context wrote example.org's speed, the last one the core's
    assert got["https://example.org/speed"]["value"] == 5
    assert got["speed"]["value"] == 6


async def test_a_patch_of_bad_bodies_answers_as_before(client: TestClient) -> None:
    await _send(client, "POST", E, CAR)
    url = f"{E}/urn:ngsi-ld:Car:1/attrs"
    for body, status, kind in [
        (b"", 400, "InvalidRequest"), (b"{", 400, "InvalidRequest"),
        (b"[1]", 400, "InvalidRequest"),
        (orjson.dumps({"speed": {"type": "Bogus", "value": 1}}), 400, "BadRequestData"),
        (orjson.dumps({"speed": 1, "@context": INLINE}), 400, "BadRequestData"),
    ]:
        code, headers, answer = await _send(client, "PATCH", url, body)
        assert code == status, body
        assert answer["type"].endswith("/" + kind), body
        assert headers["Content-Type"] == "application/json"
    code, _, answer = await _send(client, "PATCH", f"{E}/urn:ngsi-ld:Car:404/attrs",
                                  {"speed": 2})
    assert code == 404 and answer["type"].endswith("/ResourceNotFound")


# -- the change bus ----------------------------------------------------------------------

_TYPES = st.lists(st.sampled_from(["A", "B", "C"]), max_size=3, unique=True)


@given(_TYPES, _TYPES, st.booleans(), st.booleans())
def test_the_bus_asks_with_the_types_before_and_after(old: list[str], new: list[str],
                                                       exists_before: bool,
                                                       exists_after: bool) -> None:
    bus = ChangeBus()
    asked: list[set[str]] = []

    def concerns(tenant: str, entity_id: str, types: Any, before: Any, after: Any) -> bool:
        asked.append(set(types))
        return False

    bus.subscribe(lambda event: None, concerns)
    before = {"id": "urn:x:1", "type": old, "attrs": {}} if exists_before else None
    after = {"id": "urn:x:1", "type": new, "attrs": {}} if exists_after else None
    bus.publish_change("", "urn:x:1", before, after)
    expected = set(old if exists_before else ()) | set(new if exists_after else ())
    assert asked == [expected]
    assert bus.skipped == 1 and bus.published == 0

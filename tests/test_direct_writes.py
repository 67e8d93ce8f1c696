"""Writes of the common shape on the short path (broker.service.direct_writes).

The short path must answer what the general path answers: a Hypothesis property
sends the same requests (Create Entity, Update and Append Entity Attributes,
Partial Attribute Update; good ones and bad ones, of the shape and off it) to a
broker with the short path and to one without, and compares every answer
(status, headers, body), the changes published to the subscriptions, and what
the stores hold at the end.  The other tests check which requests take the
short path (counted) and that a notification still goes out.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from notify_receiver import Receiver

from broker.app import create_app
from broker.config import Settings
from broker.routes.entities import DIRECT
from broker.state import BROKER
from ngsi_ld.model import Change

E = "/ngsi-ld/v1/entities"
BASE = "http://broker.example:1026"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
JSON = "application/json"
LD = "application/ld+json"
#: what differs between two answers of the same request
PER_ANSWER = {"X-Request-Id", "Date"}  # (titled)
#: what differs between two writes of the same entity: the time they were made
STAMPS = {"createdAt", "modifiedAt", "https://uri.etsi.org/ngsi-ld/createdAt",
          "https://uri.etsi.org/ngsi-ld/modifiedAt"}


def _link(url: str) -> str:
    return f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def _unstamped(value: Any) -> Any:
    """``value`` without the times of its writes (createdAt, modifiedAt), at any depth."""
    if isinstance(value, dict):
        return {k: _unstamped(v) for k, v in value.items() if k not in STAMPS}
    if isinstance(value, (list, tuple)):
        return [_unstamped(v) for v in value]
    return value


# -- the property: the same answers, changes and stores either way -----------------------

_ids = st.sampled_from(["urn:ngsi-ld:Lamp:1", "urn:ngsi-ld:Lamp:2", "urn:ngsi-ld:Lamp:9",
                        "not-a-uri"])
_attr_bodies: st.SearchStrategy[Any] = st.sampled_from([
    {"p": {"type": "Property", "value": 3}},
    {"p": {"type": "Property", "value": 4, "unitCode": "CEL"},
     "s": {"type": "Property", "value": "on"}},
    {"rel": {"type": "Relationship", "object": "urn:ngsi-ld:Car:1"}},
    {"velocity": {"type": "Property", "value": 7}},
    {"p": {"type": "Property", "value": None}},
    {"p": {"type": "Property"}},
    {"p": {"type": "Relationship", "object": "nope"}},
    {"p": {"type": "Property", "value": 1}, "id": "urn:ngsi-ld:Other:1"},
    {"@context": CORE, "p": {"type": "Property", "value": 5}},
    {"@context": {"velocity": "https://uri.etsi.org/ngsi-ld/default-context/v"},
     "velocity": {"type": "Property", "value": 2}},
    {"scope": {"type": "Property", "value": "/a"}},
    {}, [], "text", None,
    # the shapes above again, other values: an update reads them through a template
    {"p": {"type": "Property", "value": "urn:ngsi-ld:null"}},
    {"p": {"type": "Property", "value": ["urn:ngsi-ld:null"]}},
    {"p": {"type": "Property", "value": 5, "unitCode": "urn:ngsi-ld:null"},
     "s": {"type": "Property", "value": "off"}},
    {"p": {"type": "Property", "value": 5, "unitCode": ""},
     "s": {"type": "Property", "value": "off"}},
    {"rel": {"type": "Relationship", "object": "urn:ngsi-ld:null"}},
    {"rel": {"type": "Relationship", "object": "urn:ngsi-ld:Car:2"}},
    {"p": "urn:ngsi-ld:null"}, {"p": 6},
    *({"p": {"type": "Property", "value": 5, "q": {"type": "Property", "value": v}}}
      for v in (1, "urn:ngsi-ld:null", ["urn:ngsi-ld:null"])),
])
_fragment_bodies: st.SearchStrategy[Any] = st.sampled_from([
    {"type": "Property", "value": 8}, {"value": 9}, {"type": "Property", "value": None},
    {"type": "Relationship", "object": "urn:ngsi-ld:Car:2"}, {"type": "Bogus"}, [], 3,
    {"@context": CORE, "value": 10},
])


@st.composite
def _entity_bodies(draw: st.DrawFn) -> Any:
    body = draw(_attr_bodies)
    if isinstance(body, dict) and draw(st.integers(0, 5)):
        body = dict(body)
        body["id"] = draw(_ids)
        if draw(st.integers(0, 5)):
            body["type"] = draw(st.sampled_from(["Lamp", "Car", ""]))
    return body


_writes = st.one_of(
    st.tuples(st.just("POST"), st.just(E), _entity_bodies()),
    st.tuples(st.just("PATCH"), _ids.map(lambda i: f"{E}/{i}/attrs"), _attr_bodies),
    st.tuples(st.just("POST"), _ids.map(lambda i: f"{E}/{i}/attrs"), _attr_bodies),
    st.tuples(st.just("PATCH"), st.tuples(_ids, st.sampled_from(["p", "s", "velocity", "scope"]))
              .map(lambda t: f"{E}/{t[0]}/attrs/{t[1]}"), _fragment_bodies),
)
_good_headers = st.fixed_dictionaries({"Content-Type": st.sampled_from([JSON, JSON, LD])},
                                      optional={
    "Link": st.sampled_from([_link(CORE), "hosted"]),
    "NGSILD-Tenant": st.sampled_from(["t1", "T1"]),
})
_any_headers = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["application/json; charset=utf-8", "text/plain",
                                     "application/merge-patch+json", LD]),
    "Link": st.just("<garbage"),
    "NGSILD-Tenant": st.sampled_from(["new", "t1", "bad tenant!"]),
    "Fiware-Service": st.sampled_from(["t1", "other"]),  # with NGSILD-Tenant: one or two
    "Prefer": st.just("ngsi-ld=1.8"),
    "NGSILD-Snapshot": st.just("urn:ngsi-ld:Snapshot:none"),
    "NGSILD-EntityMap": st.just("urn:ngsi-ld:EntityMap:none"),
})
_queries = st.sampled_from(["", "", "", "?options=keyValues", "?type=Lamp", "?type=Car",
                            "?options=noOverwrite", "?bogus=1"])
_requests = st.tuples(_writes, st.one_of(_good_headers, _good_headers, _any_headers), _queries,
                      st.sampled_from(["json", "json", "json", "raw"]))


async def _broker(tmp: str, name: str, short: bool) -> tuple[TestClient, str]:
    """A client of a broker with (``short``) or without the short path, and the URL of an
    @context it hosts (the same in every broker: the hash of the context)."""
    app = create_app(Settings(store=f"sqlite:///{Path(tmp) / name}", public_url=BASE))
    app[DIRECT].enabled = short
    client = TestClient(TestServer(app))
    await client.start_server()
    car = {"id": "urn:ngsi-ld:Car:1", "type": "Car", "@context": {
        "velocity": "https://uri.etsi.org/ngsi-ld/default-context/p"}}
    created = await client.post(E, data=orjson.dumps(car), headers={"Content-Type": LD})
    assert created.status == 201
    for tenant in ({}, {"NGSILD-Tenant": "t1"}):
        lamp = {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp",
                "p": {"type": "Property", "value": 1}}
        assert (await client.post(E, json=lamp, headers=tenant)).status == 201
    # one entity in t1 alone: a write to the wrong tenant is another answer
    lamp2 = {"id": "urn:ngsi-ld:Lamp:2", "type": "Lamp", "p": {"type": "Property", "value": 2}}
    assert (await client.post(E, json=lamp2, headers={"NGSILD-Tenant": "t1"})).status == 201
    return client, created.headers["Link"]


async def _answer(client: TestClient, method: str, path: str, headers: dict[str, str],
                  data: bytes) -> tuple[Any, ...]:
    response = await client.request(method, path, data=data, headers=headers)
    kept = tuple(sorted((k, v) for k, v in response.headers.items()
                        if k.title() not in PER_ANSWER))
    return response.status, kept, await response.read()


async def _stored(client: TestClient) -> list[Any]:
    held = []
    for tenant in ({}, {"NGSILD-Tenant": "t1"}, {"NGSILD-Tenant": "new"}):
        got = await client.get(f"{E}?type=Lamp,Car&options=sysAttrs", headers=tenant)
        body = await got.json()
        held.append((got.status, _unstamped(sorted(body, key=str) if got.status == 200
                                             else body)))
    return held


def _of_shape(query: str, headers: dict[str, str]) -> bool:
    """Whether a request takes the short path: no query, a JSON or JSON-LD body, no Prefer,
    Snapshot or Entity map header, the default tenant (named "" or not) or one known (t1)
    named alone."""
    names = {headers[h].lower() for h in ("NGSILD-Tenant", "Fiware-Service") if h in headers}
    return (not query and headers.get("Content-Type") in (JSON, LD)
            and not {"Prefer", "NGSILD-Snapshot", "NGSILD-EntityMap"} & set(headers)
            and names <= {"t1", ""})


async def _same_writes(requests: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        general, hosted = await _broker(tmp, "general.db", short=False)
        short, hosted_too = await _broker(tmp, "short.db", short=True)
        assert hosted == hosted_too
        changes: dict[str, list[Any]] = {"general": [], "short": []}
        for name, client in (("general", general), ("short", short)):
            def listen(tenant: str, change: Change, seen: list[Any] = changes[name]) -> None:
                seen.append(_unstamped((tenant, change.entity_id, change.before,
                                        change.after)))
            client.app[BROKER].service.on_commit(listen)
        try:
            for (method, path, body), headers, query, encoding in requests:
                if headers.get("Link") == "hosted":
                    headers = {**headers, "Link": hosted}
                data = orjson.dumps(body) if encoding == "json" else b"{" + orjson.dumps(body)
                target = path + query
                before = short.app[DIRECT].served
                expected = await _answer(general, method, target, headers, data)
                got = await _answer(short, method, target, headers, data)
                assert got == expected, (method, target, headers, body)
                assert short.app[DIRECT].served == before + _of_shape(query, headers), \
                    (method, target, headers)
            assert changes["short"] == changes["general"]
            assert await _stored(short) == await _stored(general)
            assert general.app[DIRECT].served == 0
        finally:
            await general.close()
            await short.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # each example: two brokers
@given(st.lists(_requests, min_size=1, max_size=10))
def test_the_short_path_answers_as_the_general_path(requests: list[tuple[Any, ...]]) -> None:
    asyncio.run(_same_writes(requests))


def test_updates_of_one_shape_answer_as_the_general_path() -> None:
    """A stream of updates of one shape (read through its template on the short path),
    deletions by the NGSI-LD Null among them, at the top and in a sub-attribute."""
    null = "urn:ngsi-ld:null"
    values: list[Any] = [1, null, 2, [null], "x", {"@none": null}, 3]
    bodies: list[Any] = [{"p": {"type": "Property", "value": v}} for v in values]
    bodies += [{"p": {"type": "Property", "value": 1, "q": {"type": "Property", "value": v}}}
               for v in values]
    bodies += [{"rel": {"type": "Relationship", "object": v}}
               for v in ("urn:ngsi-ld:Car:1", null, "urn:ngsi-ld:Car:2", "bad")]
    asyncio.run(_same_writes([(("PATCH", f"{E}/urn:ngsi-ld:Lamp:1/attrs", body),
                               {"Content-Type": JSON}, "", "json") for body in bodies]))


#: a PATCH of /attrs as most are sent (broker.routes.usual_update), or with one thing more
_usual_headers = st.sampled_from([
    {"Content-Type": JSON}, {"Content-Type": JSON}, {"Content-Type": JSON},
    {"Content-Type": JSON, "Link": _link(CORE)}, {"Content-Type": JSON, "Link": "hosted"},
    {"Content-Type": JSON, "Link": "<garbage"}, {"Content-Type": LD},
    {"Content-Type": JSON, "NGSILD-Tenant": "t1"}, {"Content-Type": JSON, "NGSILD-Tenant": "t1"},
    {"Content-Type": JSON, "NGSILD-Tenant": ""}, {"Content-Type": JSON, "Fiware-Service": "t1"},
    {"Content-Type": JSON, "Fiware-Service": "t1"}, {"Content-Type": JSON, "Prefer": "x=1"},
    {"Content-Type": JSON, "NGSILD-Snapshot": "urn:ngsi-ld:Snapshot:none"},
    {"Content-Type": JSON, "NGSILD-EntityMap": "urn:ngsi-ld:EntityMap:none"},
    {"Content-Type": "application/json; charset=utf-8"}, {"Content-Type": "Application/JSON"},
    {"Content-Type": "application/merge-patch+json"}, {}])
_usual_bodies = st.one_of(_attr_bodies, st.sampled_from([
    {"@context": CORE, "p": {"type": "Property", "value": 5}},
    {"p": {"type": "Property", "value": 6}}, {"p": {"type": "Property", "value": "x"}},
    {"rel": {"type": "Relationship", "object": "urn:ngsi-ld:Car:3"}}]))
_usual_updates = st.tuples(
    st.tuples(st.just("PATCH"), _ids.map(lambda i: f"{E}/{i}/attrs"), _usual_bodies),
    _usual_headers, st.sampled_from(["", "", "", "?type=Lamp", "?bogus=1"]),
    st.sampled_from(["json", "json", "json", "raw"]))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # each example: two brokers
@given(st.lists(_usual_updates, min_size=1, max_size=12))
def test_usual_updates_answer_as_the_general_path(requests: list[tuple[Any, ...]]) -> None:
    """The usual PATCH of /attrs (its own short path) and the same with one header or
    parameter more, bad bodies and entity ids among them."""
    asyncio.run(_same_writes(requests))


# -- which requests take the short path --------------------------------------------------

@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    app = create_app(Settings(store=f"sqlite:///{tmp_path / 'b.db'}", public_url=BASE,
                              outbound_allow="127.0.0.0/8"))
    async with TestClient(TestServer(app)) as client:
        yield client


LAMP = {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp", "p": {"type": "Property", "value": 1}}


async def test_the_common_writes_take_the_short_path(client: TestClient) -> None:
    direct = client.app[DIRECT]
    created = await client.post(E, json=LAMP)
    assert created.status == 201
    assert created.headers["Location"] == f"{E}/urn:ngsi-ld:Lamp:1"
    assert direct.served == 1
    one = f"{E}/urn:ngsi-ld:Lamp:1"
    assert (await client.patch(one + "/attrs", json={"p": {"type": "Property",
                                                          "value": 2}})).status == 204
    assert (await client.post(one + "/attrs", json={"s": {"type": "Property",
                                                         "value": "on"}})).status == 204
    assert (await client.patch(one + "/attrs/p", json={"value": 3})).status == 204
    assert direct.served == 4
    got = await (await client.get(one + "?options=keyValues")).json()
    assert got == {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp", "p": 3, "s": "on"}


async def test_bodies_still_arriving_take_the_short_path(client: TestClient) -> None:
    """Bodies larger than what arrives with the headers are read once they have (the
    short path's coroutine for them), with the same answers."""
    direct = client.app[DIRECT]
    big = "x" * 300_000
    body = {**LAMP, "text": {"type": "Property", "value": big}}
    created = await client.post(E, data=orjson.dumps(body),
                                headers={"Content-Type": JSON})
    assert created.status == 201
    one = f"{E}/urn:ngsi-ld:Lamp:1"
    patched = await client.patch(one + "/attrs", data=orjson.dumps(
        {"text": {"type": "Property", "value": big + "y"}}), headers={"Content-Type": JSON})
    assert patched.status == 204
    attr = await client.patch(one + "/attrs/p", data=orjson.dumps({"value": big}),
                              headers={"Content-Type": JSON})
    assert attr.status == 204
    assert direct.served == 3
    got = await (await client.get(one + "?options=keyValues")).json()
    assert got == {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp", "p": big, "text": big + "y"}


async def test_an_unknown_tenant_is_created_on_the_general_path(client: TestClient) -> None:
    direct = client.app[DIRECT]
    tenant = {"NGSILD-Tenant": "fresh"}
    assert (await client.post(E, json=LAMP, headers=tenant)).status == 201
    assert direct.served == 0  # created there: known from now on
    lamp2 = {**LAMP, "id": "urn:ngsi-ld:Lamp:2"}
    assert (await client.post(E, json=lamp2, headers=tenant)).status == 201
    assert direct.served == 1
    missing = await client.patch(f"{E}/urn:ngsi-ld:Lamp:1/attrs/p", json={"value": 2},
                                 headers={"NGSILD-Tenant": "nowhere"})
    assert missing.status == 404
    assert (await missing.json())["type"].endswith("/NonexistentTenant")
    assert direct.served == 1


async def test_bad_writes_are_the_same_problems(client: TestClient) -> None:
    direct = client.app[DIRECT]
    assert (await client.post(E, json=LAMP)).status == 201
    conflict = await client.post(E, json=LAMP)
    assert conflict.status == 409
    assert (await conflict.json())["type"].endswith("/AlreadyExists")
    absent = await client.patch(f"{E}/urn:ngsi-ld:Lamp:7/attrs/p", json={"value": 2})
    assert absent.status == 404
    assert (await absent.json())["type"].endswith("/ResourceNotFound")
    bad = await client.post(E, data=b"{", headers={"Content-Type": JSON})
    assert bad.status == 400
    assert (await bad.json())["type"].endswith("/InvalidRequest")
    assert direct.served == 4


async def test_a_notification_goes_out_from_the_short_path(client: TestClient) -> None:
    receiver = await Receiver().start()
    try:
        subscription = {"type": "Subscription", "entities": [{"type": "Lamp"}],
                        "watchedAttributes": ["p"],
                        "notification": {"endpoint": {"uri": receiver.url()}}}
        subscribed = await client.post("/ngsi-ld/v1/subscriptions", json=subscription)
        assert subscribed.status == 201
        assert (await client.post(E, json=LAMP)).status == 201
        patched = await client.patch(f"{E}/urn:ngsi-ld:Lamp:1/attrs/p", json={"value": 5})
        assert patched.status == 204
        assert client.app[DIRECT].served == 2
        received = await receiver.wait_entities(2)
        values = [entity["p"]["value"] for entity, _ in received]
        assert values == [1, 5]
    finally:
        await receiver.close()

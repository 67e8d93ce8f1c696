"""Routing by the path's shape (broker.shaperoutes): what aiohttp's own walk finds.

A Hypothesis property resolves the same requests (paths under /ngsi-ld/v1/entities
of every shape, odd segments among them: empty, encoded, with braces; every
method) through the broker's router and through the router of a broker built
without the shape index, and compares the route found, its path variables, or the
404/405 and its allowed methods.  An HTTP test checks the answers users see.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.app import create_app
from broker.config import Settings
from broker.routes import entities
from broker.shaperoutes import ShapeIndex

E = "/ngsi-ld/v1/entities"


def _app(indexed: bool) -> web.Application:
    if indexed:
        app = create_app(Settings(store="memory:"))
    else:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(entities, "index_shapes", lambda app, prefix: None)
            app = create_app(Settings(store="memory:"))
    app.router.freeze()
    return app


@pytest.fixture(scope="module")
def apps() -> Iterator[tuple[web.Application, web.Application]]:
    yield _app(True), _app(False)


def test_the_broker_routes_entities_through_a_shape_index(
        apps: tuple[web.Application, web.Application]) -> None:
    indexed, plain = apps
    assert any(isinstance(r, ShapeIndex) for r in indexed.router.resources())
    assert not any(isinstance(r, ShapeIndex) for r in plain.router.resources())


async def _found(app: web.Application, method: str, path: str) -> Any:
    """What the router finds: the route's method and path, and the variables; or the
    error's status and allowed methods."""
    match = await app.router.resolve(make_mocked_request(method, path, app=app))
    error = match.http_exception
    if error is not None:
        return error.status, sorted(getattr(error, "allowed_methods", ()))
    route = match.route
    resource = route.resource
    return route.method, None if resource is None else resource.canonical, dict(match)


_segment = st.sampled_from(["", "attrs", "urn:ngsi-ld:T:1", "x.y", "a%2Fb", "a%25b",
                            "{x}", "a}", "temperature", "attrs%20", "..", "."])
_method = st.sampled_from(["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS", "HEAD",
                           "TRACE"])


@settings(max_examples=400, deadline=None)
@given(method=_method, segments=st.lists(_segment, max_size=5),
       tail=st.sampled_from(["", "/", "?type=T"]))
async def test_the_shape_index_finds_what_the_walk_finds(
        apps: tuple[web.Application, web.Application], method: str, segments: list[str],
        tail: str) -> None:
    path = "/".join([E, *segments]) + tail
    indexed, plain = apps
    assert await _found(indexed, method, path) == await _found(plain, method, path)


@pytest.mark.parametrize("method,path", [
    ("POST", E), ("POST", E + "/"), ("GET", E), ("GET", E + "/urn:ngsi-ld:T:1"),
    ("PATCH", E + "/urn:ngsi-ld:T:1/attrs"), ("PATCH", E + "/urn:ngsi-ld:T:1/attrs/"),
    ("PATCH", E + "/urn:ngsi-ld:T:1/attrs/p"), ("PUT", E + "/urn:ngsi-ld:T:1/attrs/p/"),
    ("DELETE", E + "/urn:ngsi-ld:T:1/attrs/p"), ("PATCH", E + "//attrs"),
    ("PATCH", E + "/urn:ngsi-ld:T:1/attrs/p/q"), ("POST", E + "/urn:ngsi-ld:T:1/other"),
    ("DELETE", E + "/urn:ngsi-ld:T:1/attrs"), ("PUT", E), ("PATCH", E + "/"),
    ("OPTIONS", E + "/urn:ngsi-ld:T:1/attrs"),
])
async def test_answers_are_those_of_the_walk(method: str, path: str) -> None:
    """Status, Allow and the ProblemDetails of an app with and without the index."""
    answers = []
    for indexed in (True, False):
        client = TestClient(TestServer(_app(indexed)))
        await client.start_server()
        try:
            response = await client.request(method, path, data=b'{"p": {"value": 1}}',
                                            headers={"Content-Type": "application/json"})
            body = await response.read()
            answers.append((response.status, response.headers.get("Allow"),
                            response.headers.get("Content-Type"), body))
        finally:
            await client.close()
    assert answers[0] == answers[1]

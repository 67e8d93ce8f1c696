"""Malformed and unusual attribute values through the write paths whose modules
``setup.py`` compiles (``COMPILED``, docs/compiled.md: the parse, stamping, index rows)
or was measured compiling (the templates of the loop's parse ``ngsi_ld.shapes``,
``shape_slots``, the GeoJSON and identifier checks, the embedded store's writer
``storage.sqlite.attribute_walk``, ``history_rows``, ``history_sql``).

A compiled module trusts its annotations and raises ``TypeError`` where Python went
on: a 500 for the user.  Whatever the values (integers beyond 64 bits, floats,
booleans, nested arrays and objects, Points with bad coordinates, stamps and
datasetIds of the wrong type), each request answers what the in-memory store's
broker answers (the writer's modules are the embedded store's alone), never a 500,
and the entity reads back the same (the history: its status; the two stores may record
an upsert of the same values as an instance more or less, not this test's matter).
The suite runs this on the pure and on the compiled build (``compiled modules
(setup.py): N`` in its header).
"""

from __future__ import annotations

import asyncio
import tempfile
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.app import create_app
from broker.config import Settings

V1 = "/ngsi-ld/v1"
CTX = {"@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"}
LD = {"Content-Type": "application/ld+json"}
_STAMPS = st.sampled_from(["2026-12-06T10:00:00Z", "2026-12-06T10:00:00.123456Z",
                           "2026-12-06T12:00:00+02:00"])
_BAD_STAMPS = st.sampled_from(["2026-12-06", "yesterday", ""])
_SCALARS = st.one_of(
    st.integers(), st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.text(max_size=6))
_REFUSED = st.sampled_from([None, "urn:ngsi-ld:null", {}, []])
_NESTED = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["type", "coordinates", "value", "@value", "x"]), inner,
                    min_size=1, max_size=3)), max_leaves=6)
_JSON = st.recursive(st.one_of(_SCALARS, _REFUSED), lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["type", "coordinates", "value", "@value", "x"]), inner,
                    max_size=3)), max_leaves=6)
_POINTS = st.builds(lambda coordinates: {"type": "Point", "coordinates": coordinates},
                    st.one_of(st.lists(st.floats(-90, 90), min_size=2, max_size=2),
                              st.lists(st.integers(-90, 90), min_size=2, max_size=3)))
_BAD_POINTS = st.builds(lambda coordinates: {"type": "Point", "coordinates": coordinates},
                        st.one_of(st.lists(st.floats(-200, 200), min_size=2, max_size=2),
                                  st.lists(_SCALARS, max_size=3), _JSON))


@st.composite
def attributes(draw: st.DrawFn, clean: bool, depth: int = 0) -> Any:
    """An attribute as a body may hold it: a well-formed one with unusual values
    (``clean``), or anything, malformed included."""
    values = st.one_of(_SCALARS, _NESTED) if clean else st.one_of(_SCALARS, _JSON)
    kinds = ["Property"] * 3 + ["Relationship", "GeoProperty"] + ([] if clean else ["odd"] * 2)
    kind = draw(st.sampled_from(kinds))
    if kind == "odd":  # not an attribute, or of no known type
        return draw(st.one_of(values, st.builds(lambda t, v: {"type": t, "value": v},
                                                values, values)))
    if kind == "Relationship":
        attr: dict[str, Any] = {"type": kind, "object": draw(
            st.sampled_from(["urn:ngsi-ld:Thing:1", ["urn:ngsi-ld:Thing:1", "urn:x:2"]])
            if clean else values)}
    elif kind == "GeoProperty":
        attr = {"type": kind, "value": draw(_POINTS if clean else st.one_of(_BAD_POINTS,
                                                                             values))}
    else:
        attr = {"type": kind, "value": draw(values)}
    members = [("observedAt", _STAMPS if clean else st.one_of(_STAMPS, _BAD_STAMPS, _SCALARS)),
               ("datasetId", st.just("urn:ngsi-ld:ds:1") if clean else _SCALARS),
               ("unitCode", st.just("CEL") if clean else _SCALARS)]
    if depth == 0:
        members.append(("sub", attributes(clean, depth=1)))
    for member, drawn in members:
        if draw(st.integers(0, 4)) == 0:
            attr[member] = draw(drawn)
    return attr


_NAMES = st.sampled_from(["level", "location", "owner", "status"])


def bodies(clean: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(_NAMES, attributes(clean), min_size=1, max_size=3)


def _entity(eid: str, attrs: dict[str, Any]) -> dict[str, Any]:
    return {"id": eid, "type": "Lamp", **attrs, **CTX}


async def _answers(store: str, first: dict[str, Any], second: dict[str, Any],
                   patch: dict[str, Any]) -> list[Any]:
    """Every answer of a run of writes and reads: statuses, and the bodies of the reads."""
    client = TestClient(TestServer(create_app(Settings(store=store))))
    await client.start_server()
    out: list[Any] = []
    try:
        ids = ["urn:ngsi-ld:Lamp:1", "urn:ngsi-ld:Lamp:2"]
        for eid in ids:  # the second of a shape goes through its template
            response = await client.post(f"{V1}/entities", json=_entity(eid, first), headers=LD)
            out.append(("create", response.status))
        # the found entities replaced by the writer's walk, twice (learnt, then known)
        for attrs in (second, first):
            response = await client.post(f"{V1}/entityOperations/upsert", headers=LD,
                                         json=[_entity(eid, attrs) for eid in ids])
            out.append(("upsert", response.status, await response.text()))
        for eid in ids:  # one attribute: the PATCH lane learnt, then taken
            response = await client.patch(f"{V1}/entities/{eid}/attrs", json=patch)
            out.append(("patch", response.status))
        for eid in ids:
            for path in ("entities", "temporal/entities"):
                response = await client.get(f"{V1}/{path}/{eid}")
                body = _unnumbered(_plain(await response.json()))
                # the history: its status only; the stores may record a write of the same
                # values differently (an instance more or less), which is not this test's
                out.append((path, response.status, body if path == "entities" else None))
    finally:
        await client.close()
    return out


def _unnumbered(answer: Any) -> Any:
    """An answer without its instanceIds, and an attribute's instances in one order:
    each store numbers its history's instances its own way, and orders instances of the
    same time (of different datasetIds) its own way."""
    if isinstance(answer, dict):
        return {key: sorted((_unnumbered(item) for item in value), key=orjson.dumps)
                if isinstance(value, list) and key not in ("id", "type") else value
                for key, value in answer.items()}
    return answer


def _plain(answer: Any) -> Any:
    if isinstance(answer, dict):
        return {key: _plain(value) for key, value in answer.items() if key != "instanceId"}
    if isinstance(answer, list):
        return [_plain(item) for item in answer]
    return answer


def _no_server_error(answers: list[Any]) -> None:
    for answer in answers:
        assert answer[1] < 500, answer


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.booleans())
def test_unusual_values_answer_as_the_memory_store_does_and_never_a_500(
        data: st.DataObject, clean: bool) -> None:
    first, second = data.draw(bodies(clean)), data.draw(bodies(clean))
    patch = data.draw(st.dictionaries(_NAMES, attributes(clean), min_size=1, max_size=1))

    async def both() -> tuple[list[Any], list[Any]]:
        with tempfile.TemporaryDirectory() as tmp:
            embedded = await _answers(f"sqlite://{tmp}/t.db", first, second, patch)
        return embedded, await _answers("memory:", first, second, patch)

    embedded, memory = asyncio.run(both())
    _no_server_error(embedded)
    _no_server_error(memory)
    assert embedded == memory

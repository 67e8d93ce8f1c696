"""Purge Entities (ngsi_ld.purge): the checks of 5.6.21.4 and the keep/drop projection."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData, ResourceNotFound
from ngsi_ld.purge import check_purge, purge_mutation, q_attribute_names
from ngsi_ld.query import parse_q

T0, T1 = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"


def _check(query: str) -> tuple[list[str], list[str]]:
    params = dict(part.split("=", 1) for part in query.split("&"))
    q = params.get("q")
    return check_purge(params, None if q is None else parse_q(q))


@pytest.mark.parametrize("query", [
    "type=T", "attrs=speed", "attrs=createdAt,speed", "q=speed>1", "q=modifiedAt>1|speed>1",
    "q=speed.createdAt>1", "georel=near;maxDistance==1&geometry=Point&coordinates=[1,2]",
    "local=true", "id=urn:a:1&type=T", "type=T&keep=speed", "type=T&drop=a,b",
])
def test_qualifying_purges(query: str) -> None:
    _check(query)


@pytest.mark.parametrize("query", [
    "id=urn:a:1", "idPattern=.*", "attrs=createdAt", "q=modifiedAt>1", "q=createdAt>1;deletedAt>1",
    "scopeQ=/a", "lang=en", "local=false", "datasetId=urn:d:1",
    "type=T&keep=a&drop=b", "type=T&keep=", "type=T&attrs=owner{name}", "type=T&keep=owner{name}",
])
def test_refused_purges(query: str) -> None:
    with pytest.raises(BadRequestData):
        _check(query)


def test_keep_and_drop_names() -> None:
    assert _check("type=T&keep=a, b") == (["a", "b"], [])
    assert _check("type=T&drop=c") == ([], ["c"])


def test_q_attribute_names() -> None:
    assert q_attribute_names(parse_q("a.b==1|(c;d.createdAt>1)")) == ["a", "c", "d"]


def _entity(names: set[str]) -> dict[str, Any]:
    attrs = {n: [{"type": "Property", "value": 1}] for n in sorted(names)}
    return {"id": "urn:a:1", "type": ["T"], "createdAt": T0, "modifiedAt": T0, "attrs": attrs}


NAMES = st.sets(st.sampled_from(["a", "b", "c", "d"]))


@given(NAMES, NAMES)
def test_keep_and_drop_partition_the_attributes(present: set[str], listed: set[str]) -> None:
    kept = purge_mutation("urn:a:1", listed, None, T1)(_entity(present))
    dropped = purge_mutation("urn:a:1", None, listed, T1)(_entity(present))
    assert kept is not None and dropped is not None
    assert set(kept["attrs"]) == present & listed
    assert set(dropped["attrs"]) == present - listed
    for after, changed in ((kept, present - listed), (dropped, present & listed)):
        assert after["modifiedAt"] == (T1 if changed else T0)


def test_without_keep_or_drop_the_entity_is_deleted() -> None:
    assert purge_mutation("urn:a:1", None, None, T1)(_entity({"a"})) is None
    for keep, drop in ((None, None), ({"a"}, None)):
        with pytest.raises(ResourceNotFound):
            purge_mutation("urn:a:1", keep, drop, T1)(None)

"""A batch upsert or create that owns its entities (``owned=True``, as the batch service
parses them) writes exactly what the copying way writes, on its first call and on a retry."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.batch import batch_create_mutation, batch_upsert_mutation
from ngsi_ld.entity import parse_entity
from ngsi_ld.instances import clone

_NOW = "2026-01-02T00:00:00Z"
_BEFORE = "2026-01-01T00:00:00Z"


def _entity(values: list[int], sub: bool) -> Any:
    body: dict[str, Any] = {"id": "urn:ngsi-ld:T:1", "type": "T"}
    for number, value in enumerate(values):
        attr: dict[str, Any] = {"type": "Property", "value": value}
        if sub:
            attr["accuracy"] = {"type": "Property", "value": value / 2}
        body[f"a{number}"] = attr
    return parse_entity(body)


_VALUES = st.lists(st.integers(0, 3), min_size=1, max_size=4)


@given(_VALUES, _VALUES, st.booleans(), st.sampled_from(["replace", "update"]))
def test_an_owned_upsert_writes_what_a_copied_one_writes(old: list[int], new: list[int],
                                                         sub: bool, mode: str) -> None:
    current = parse_entity({"id": "urn:ngsi-ld:T:1", "type": "T"}, now=_BEFORE)
    current["attrs"] = _entity(old, sub)["attrs"]
    expected_existing = batch_upsert_mutation(_entity(new, sub), _NOW, mode)(clone(current))
    expected_absent = batch_upsert_mutation(_entity(new, sub), _NOW, mode)(None)
    for state, expected in ((current, expected_existing), (None, expected_absent)):
        mutation = batch_upsert_mutation(_entity(new, sub), _NOW, mode, owned=True)
        first = mutation(clone(state) if state else None)
        assert first == expected
        retry = mutation(clone(state) if state else None)  # a writer running it again
        assert retry == expected and retry is not first


@given(_VALUES, st.booleans())
def test_an_owned_create_writes_what_a_copied_one_writes(values: list[int], sub: bool) -> None:
    expected = batch_create_mutation(_entity(values, sub), _NOW)(None)
    mutation = batch_create_mutation(_entity(values, sub), _NOW, owned=True)
    assert mutation(None) == expected
    assert mutation(None) == expected

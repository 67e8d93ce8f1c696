"""A batch upsert or create that owns its entities (``owned=True``, as the batch service
parses them) writes exactly what the copying way writes, on its first call and on a retry;
the upsert's one-object mutation is what the operations' own mutations compose to."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from test_storage_query import entities

from ngsi_ld.batch import REPLACEMENT, batch_create_mutation, batch_upsert_mutation
from ngsi_ld.entity import parse_entity
from ngsi_ld.instances import clone, touch
from ngsi_ld.model import KEEPS_CURRENT, Entity, Mutation
from ngsi_ld.operations import UpdateResult, apply_append, create_entity, replace_entity
from ngsi_ld.shapes import same_json

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


def _composed(new: Entity, now: str, mode: str, owned: bool) -> Mutation:
    """The upsert as the operations' own mutations make it (the closures it was built of)."""
    entity_id = new["id"]
    replace = replace_entity(entity_id, new, now, check_nulls=False)
    once = [replace_entity(entity_id, new, now, check_nulls=False, owned=True)] if owned else []

    def mutation(current: Entity | None) -> Entity | None:
        first = once.pop() if once else None
        if current is None:
            return create_entity(new, now, check_nulls=False, owned=first is not None)(None)
        if mode == "replace":
            return (first or replace)(current)
        entity = clone(current)
        if apply_append(entity, new, now, UpdateResult(), no_overwrite=False):
            return touch(entity, now)
        return current

    return mutation


@given(entities(), entities(), st.sampled_from(["replace", "update"]), st.booleans(),
       st.data())
def test_the_upsert_is_the_composition_of_the_operations(
        stored: list[dict[str, Any]], fragments: list[dict[str, Any]], mode: str,
        owned: bool, data: st.DataObject) -> None:
    states = {e["id"]: batch_create_mutation(e, _BEFORE)(None) for e in stored}
    for fragment in fragments:
        if data.draw(st.booleans()):  # a fragment without type (allowed in update mode)
            fragment.pop("type")
        current = states.get(fragment["id"])
        mutation = batch_upsert_mutation(clone(fragment), _NOW, mode, owned=owned)
        composed = _composed(clone(fragment), _NOW, mode, owned)
        assert getattr(mutation, KEEPS_CURRENT, False)
        for _ in range(2):  # the first call, then a writer's retry
            given_state = clone(current) if current is not None else None
            made = mutation(given_state)
            assert same_json(made, composed(clone(current) if current is not None else None))
            if current is not None:  # it only read the entity it was given
                assert same_json(given_state, current)


def test_an_upsert_hands_over_only_its_first_replacement_of_an_owned_entity() -> None:
    now = "2026-12-05T10:00:00Z"
    stored = {"id": "urn:x:1", "type": ["https://example.org/T"], "attrs": {}}
    new = {"id": "urn:x:1", "type": ["https://example.org/T"], "attrs": {}}
    replacing = getattr(batch_upsert_mutation(new, now, owned=True), REPLACEMENT)
    assert replacing(None) is None  # absent: created by the call
    assert replacing(stored) == ("urn:x:1", new, now)
    assert replacing(stored) is None  # handed over once: no longer owned
    for mutation in (batch_upsert_mutation(dict(new), now),  # not owned
                     batch_upsert_mutation(dict(new), now, "update", owned=True)):
        assert getattr(mutation, REPLACEMENT)(stored) is None

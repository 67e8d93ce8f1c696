"""The instance rows of the SQLite history: what a temporal read gives back, and the
same rows whichever way a write's history is encoded.

``history_sql.encode`` packs an Instance into integer times, a number column and
orjson blobs; ``decode`` is what every temporal read of the embedded store
returns.  Whatever the spelling of the stamps (shortest form or not, with or
without fractions, an offset), the kind or the value, the round trip keeps them.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.temporal import Instance, history_of_write
from storage.sqlite.history_packs import pack
from storage.sqlite.history_rows import PACK_FROM, EncodedHistory, encode_write, encoded
from storage.sqlite.history_sql import (
    KINDS,
    check_internal,
    decode,
    encode,
    encode_internal,
    least_checked,
)

_STAMPS = st.sampled_from([
    "2026-12-04T10:00:00.000Z", "2026-12-04T10:00:00Z", "2026-12-04T10:00:00.5Z",
    "2026-12-04T10:00:00.123456Z", "2026-12-04T12:00:00+02:00", "2020-08-01T12:03:00.000Z",
])
_VALUES = st.one_of(
    st.integers(min_value=-(2**60), max_value=2**60), st.floats(allow_nan=False),
    st.booleans(), st.text(max_size=8), st.none(),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.dictionaries(st.sampled_from(["type", "coordinates", "x"]),
                    st.integers(min_value=-(2**62), max_value=2**62), max_size=2),
)
_MEMBERS = st.dictionaries(st.sampled_from(["unitCode", "expiresAt", "sub"]),
                           st.text(max_size=5), max_size=2)


@st.composite
def instances(draw: Any) -> Instance:
    stamp = st.one_of(st.none(), _STAMPS)
    return Instance(
        attribute="https://example.org/a", instance_id="urn:ngsi-ld:Instance:7",
        kind=draw(st.sampled_from(KINDS)), value=draw(_VALUES),
        dataset_id=draw(st.one_of(st.none(), st.just("urn:ds:1"))),
        observed_at=draw(stamp), created_at=draw(_STAMPS), modified_at=draw(stamp),
        deleted_at=draw(stamp), members=draw(_MEMBERS),
    )


@given(instances())
def test_an_instance_row_reads_back_as_the_instance_written(inst: Instance) -> None:
    row = encode(inst, 7)
    back = decode(inst.attribute, inst.dataset_id, row)
    assert back.instance_id == inst.instance_id
    assert (back.kind, back.dataset_id, dict(back.members)) == (
        inst.kind, inst.dataset_id, dict(inst.members))
    assert back.value == inst.value and type(back.value) is type(inst.value)
    assert (back.observed_at, back.modified_at, back.deleted_at) == (
        inst.observed_at, inst.modified_at, inst.deleted_at)
    assert back.created_at == inst.created_at


def test_the_row_time_is_the_observation_else_the_modification() -> None:
    observed = Instance("a", "urn:ngsi-ld:Instance:1", "Property", 1,
                        observed_at="2026-12-04T10:00:00Z",
                        created_at="2026-12-04T09:00:00.000Z",
                        modified_at="2026-12-04T11:00:00.000Z")
    written = Instance("a", "urn:ngsi-ld:Instance:2", "Property", "on",
                       created_at="2026-12-04T09:00:00.000Z",
                       modified_at="2026-12-04T11:00:00.000Z")
    t_observed, _, flags_observed = encode(observed, 1)[:3]
    t_written, _, flags_written = encode(written, 2)[:3]
    assert flags_observed & 1 and not flags_written & 1
    assert t_observed < t_written  # 10:00 observed, 11:00 written


# -- the rows of a write, encoded from the entities or from its Instances ----------------
_STAMP = st.sampled_from(["2026-12-04T10:00:00.123Z", "2026-12-04T10:00:01Z"])
def _instances(kinds: list[str]) -> Any:
    return st.fixed_dictionaries(
        {"type": st.sampled_from(kinds),
         "value": st.one_of(st.integers(-3, 3), st.text(max_size=3)),
         "createdAt": _STAMP, "modifiedAt": _STAMP},
        optional={"observedAt": _STAMP, "unitCode": st.just("CEL"),
                  "datasetId": st.just("urn:ds:1")},
    )


def _entities(kinds: list[str]) -> Any:
    names = st.sampled_from(["https://example.org/a", "https://example.org/b",
                             "https://example.org/c"])
    return st.fixed_dictionaries(
        {"id": st.just("urn:ngsi-ld:T:1"), "type": st.just(["https://example.org/T"]),
         "createdAt": _STAMP, "modifiedAt": _STAMP,
         "attrs": st.dictionaries(names, st.lists(_instances(kinds), min_size=1, max_size=2),
                                  max_size=3)},
        optional={"scope": st.lists(st.sampled_from(["/a", "/b"]), min_size=1, max_size=2)},
    )


# what was stored is valid; what a mutation made may not be (a kind no parse allows)
_STORED = _entities(["Property", "Relationship", "VocabProperty"])
_WRITTEN = _entities(["Property", "Relationship", "VocabProperty", "Bogus"])


@given(st.one_of(st.none(), _STORED), st.one_of(st.none(), _WRITTEN))
def test_a_write_encoded_from_the_entities_gives_the_rows_of_its_instances(
    before: dict[str, Any] | None, after: dict[str, Any] | None,
) -> None:
    """The batch path (no Instances) records what ``history_of_write`` records."""
    now = "2026-12-04T11:00:00.789Z"
    numbers = itertools.count(1)
    try:
        history = history_of_write(before, after, now,
                                   lambda: f"urn:ngsi-ld:Instance:{next(numbers)}")
        expected: Any = None if history is None else encoded(history)
    except BadRequestData as exc:  # an instance of no known kind, or without its member
        expected = repr(exc)
    direct = itertools.count(1)
    try:
        got: Any = encode_write(before, after, now, lambda: next(direct))
    except BadRequestData as exc:
        got = repr(exc)
    assert rows_of(got) == rows_of(expected)


def rows_of(history: Any) -> Any:
    """The record and every instance row (the raw ones of a packed write encoded now),
    by number."""
    if not isinstance(history, EncodedHistory):
        return history
    return history.entity, sorted(history.encode(), key=lambda row: row[2][1])


_ANY_STAMP = st.one_of(_STAMPS, st.sampled_from(["yesterday", "2026-13-01T00:00:00Z", ""]))


@given(st.fixed_dictionaries(
    {"type": st.sampled_from(["Property", "Relationship", "Bogus"]), "value": st.just(1)},
    optional={"observedAt": _ANY_STAMP, "createdAt": _ANY_STAMP, "modifiedAt": _ANY_STAMP,
              "deletedAt": _ANY_STAMP}))
def test_a_packed_instance_is_checked_and_timed_as_its_encoding(inst: dict[str, Any]) -> None:
    """``check_internal`` (a packed write's instances, their stamps cached together) raises
    what the encoding raises and gives the time its row is kept under."""
    def outcome(f: Any) -> Any:
        try:
            return f()
        except BadRequestData as exc:
            return repr(exc)
    encoded_t = outcome(lambda: encode_internal("https://example.org/a", inst, 1)[0])
    for _ in range(2):  # the second time from the cache
        assert outcome(lambda: check_internal("https://example.org/a", inst)) == encoded_t


_CHECKED = st.fixed_dictionaries(
    {"type": st.sampled_from(["Property", "Property", "Relationship", "Bogus"]),
     "value": st.just(1)},
    optional={"observedAt": _ANY_STAMP, "createdAt": _ANY_STAMP, "modifiedAt": _ANY_STAMP,
              "deletedAt": _ANY_STAMP})


@settings(max_examples=300)
@given(st.lists(_CHECKED, max_size=6), st.booleans())
def test_the_least_of_a_writes_checks_is_the_least_check(
    insts: list[dict[str, Any]], shared: bool,
) -> None:
    """``least_checked`` (a packed write's instances, the stamps of the instance before
    not read again) raises what the first failing ``check_internal`` raises, in order,
    and gives the least time; also when the instances share their stamp objects, as
    those of one write do."""
    if shared and insts:  # one write's stamps: the same objects from instance to instance
        insts = [{**inst, **{k: insts[0][k] for k in ("observedAt", "createdAt",
                                                       "modifiedAt", "deletedAt")
                             if k in insts[0]}} for inst in insts]
    items = [(f"https://example.org/a{n}", inst) for n, inst in enumerate(insts)]

    def outcome(f: Any) -> Any:
        try:
            return f()
        except BadRequestData as exc:
            return repr(exc)

    def usual() -> Any:
        times = [check_internal(name, inst) for name, inst in items]
        return min(times) if times else None
    assert outcome(lambda: least_checked(items)) == outcome(usual)


@settings(max_examples=400)
@given(st.one_of(st.none(), _STORED), st.one_of(st.none(), _WRITTEN))
def test_a_pack_taken_ready_is_the_pack_of_the_numbered_instances(
    before: dict[str, Any] | None, after: dict[str, Any] | None,
) -> None:
    """A write given consecutive numbers at once (``block``) stores the pack row, and
    takes the numbers, that the instances numbered one by one give; or raises alike."""
    now = "2026-12-04T11:00:00.789Z"

    def outcome(block: bool) -> Any:
        numbers = itertools.count(5)

        def take(count: int) -> int:
            first = next(numbers)
            for _ in range(count - 1):
                next(numbers)
            return first
        try:
            written = encode_write(before, after, now, numbers.__next__,
                                   block=take if block else None)
        except BadRequestData as exc:
            return repr(exc)
        if written is None or written.size() < PACK_FROM:
            return rows_of(written), next(numbers)
        row, names = pack("t", "urn:ngsi-ld:T:1", written)
        return written.entity, row, set(names), next(numbers)

    assert outcome(True) == outcome(False)

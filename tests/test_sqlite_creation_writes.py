"""The writer's short ways for a creation (storage.sqlite.writes.write_all) store what
the usual ways store: a file of creations whose history was encoded without the walk an
update takes holds, table by table, what one encoded from the walk's changes holds,
instance numbers and outcomes included; the discovery
counters written in multi-row statements are those the JSON array statement wrote;
the broker's own millisecond stamps read without the general parse are the instants
it reads."""

from __future__ import annotations

import copy
import re
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import AlreadyExists, NgsiLdError
from ngsi_ld.temporal import recorder_at
from ngsi_ld.temporal.history import attribute_changes
from ngsi_ld.temporal.instants import format_micros, from_datetime, millis_micros, to_micros
from ngsi_ld.timeutil import parse_datetime
from storage.discovery import StatKey
from storage.sqlite import names, sql, stats, writes
from storage.sqlite.attribute_walk import walk
from storage.sqlite.history import SqliteHistory
from storage.sqlite.history_rows import encode_write
from storage.sqlite.history_sql import _shortest
from storage.sqlite.pack_signature import signature
from tests.test_loader_prepared import tables

TENANT = "t"
NOW = "2026-12-05T03:00:00.123Z"
_STAMP = st.sampled_from([NOW, "2026-12-05T03:00:00Z", "2026-12-05T03:00:00.000Z",
                          "2026-12-05T02:59:59.5Z", "2026-12-05T05:00:00+02:00"])
_ODD_STAMP = st.sampled_from(["yesterday", "2026-13-01T00:00:00.000Z", ""])


def _instance() -> Any:
    return st.fixed_dictionaries(
        {"type": st.sampled_from(["Property", "Relationship", "GeoProperty", "VocabProperty",
                                  "LanguageProperty", "Bogus"]),
         "value": st.one_of(st.integers(-3, 3), st.text(max_size=3),
                            st.just({"type": "Point", "coordinates": [1.0, 2.0]})),
         "createdAt": _STAMP, "modifiedAt": _STAMP},
        optional={"observedAt": st.one_of(_STAMP, _ODD_STAMP),
                  "object": st.just("urn:x:1"), "vocab": st.just("v"),
                  "languageMap": st.just({"en": "a"}), "datasetId": st.sampled_from(
                      ["urn:ds:1", "urn:ds:2"]), "unitCode": st.just("CEL")},
    )


def _usual(kind: str, value: Any, stamps: dict[str, str]) -> dict[str, Any]:
    """An instance as a write stores it: its kind's main member, its stamps."""
    member = {"Relationship": "object", "VocabProperty": "vocab",
              "LanguageProperty": "languageMap"}.get(kind, "value")
    return {"type": kind, member: value, **stamps}


_usual_instance = st.builds(
    _usual, st.sampled_from(["Property", "Relationship", "GeoProperty", "VocabProperty",
                             "LanguageProperty"]),
    st.one_of(st.integers(-3, 3), st.text(max_size=3), st.just({"en": "a"}),
              st.just({"type": "Point", "coordinates": [1.0, 2.0]})),
    st.fixed_dictionaries({"createdAt": _STAMP, "modifiedAt": _STAMP},
                          optional={"observedAt": _STAMP, "datasetId": st.just("urn:ds:1")}))
_attribute = st.one_of(
    st.lists(_usual_instance, min_size=1, max_size=1), st.lists(_usual_instance, max_size=3),
    st.lists(_instance(), min_size=1, max_size=1), st.lists(_instance(), max_size=3),
    st.sampled_from(["text", 3, [3], {"type": "Property"}]))
_usual_entity = st.fixed_dictionaries(
    {"type": st.just(["https://x/T"]), "createdAt": st.just(NOW), "modifiedAt": st.just(NOW),
     "attrs": st.dictionaries(st.sampled_from(["https://x/a", "https://x/b", "https://x/c"]),
                              st.lists(_usual_instance, min_size=1, max_size=2),
                              min_size=2, max_size=3)})
_odd_entity = st.fixed_dictionaries(
    {"type": st.sampled_from([["https://x/T"], ["https://x/T", "https://x/U"]]),
     "createdAt": _STAMP, "modifiedAt": _STAMP,
     "attrs": st.one_of(
         st.dictionaries(st.sampled_from(["https://x/a", "https://x/b", "https://x/c",
                                          "https://x/d"]), _attribute, max_size=4),
         st.just("attrs"))},
    optional={"scope": st.sampled_from([["/a"], [], "/b"])},
)
_entity = st.one_of(_usual_entity, _odd_entity)


def _open(path: Path) -> tuple[sqlite3.Connection, SqliteHistory]:
    conn = sql.connect(path, readonly=False)
    conn.execute("BEGIN IMMEDIATE")
    sql.create_schema(conn)
    history = SqliteHistory(lambda run: None, lambda run: None)
    history.open(conn)
    conn.execute("COMMIT")
    return conn, history


def write_transaction(conn: sqlite3.Connection, history: SqliteHistory,
                      items: list[Any]) -> list[Any]:
    """``items`` written in one transaction, framed as the writer thread frames it;
    ``write_all``'s results."""
    conn.execute("BEGIN IMMEDIATE")
    sql.begin_versions(conn)
    stats.begin(conn)
    names.begin(conn)
    results = writes.write_all(conn, TENANT, items, history, None)
    stats.flush(conn)
    conn.execute("COMMIT")
    names.committed(conn)
    sql.end_versions(conn, committed=True)
    stats.end(conn)
    names.end(conn)
    return results


def _creation(entity: dict[str, Any]) -> Any:
    def mutation(current: Any) -> Any:
        if current is not None:
            raise AlreadyExists("exists")
        return copy.deepcopy(entity)
    return mutation


def _write(path: Path, batches: list[list[tuple[str, dict[str, Any]]]]) -> list[Any]:
    """Each batch written in its transaction as the writer writes single creates; what
    each write gave (its error's type for a refused one)."""
    conn, history = _open(path)
    outcomes: list[Any] = []
    try:
        for batch in batches:
            items = [(i, _creation(e), recorder_at(NOW)) for i, e in batch]
            results = write_transaction(conn, history, items)
            outcomes.extend(type(value).__name__ if not ok else value.after is not None
                            for ok, value in results)
    finally:
        conn.close()
    return outcomes


_batches = st.lists(st.lists(st.tuples(st.sampled_from(["urn:e:1", "urn:e:2", "urn:e:3",
                                                       "urn:e:4"]), _entity),
                             min_size=1, max_size=4), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_batches)
def test_a_file_of_creations_written_the_short_way_is_the_one_written_the_usual_way(
        batches: list[list[tuple[str, dict[str, Any]]]]) -> None:
    for batch in batches:
        for entity_id, entity in batch:
            entity["id"] = entity_id
    with tempfile.TemporaryDirectory() as tmp:
        short = _write(Path(tmp) / "short.db", batches)
        with pytest.MonkeyPatch.context() as patch:  # a creation's changes from the walk
            patch.setattr(writes, "encode_write",
                          lambda before, after, now, iids, changes=None, block=None, doc=None:
                          encode_write(before, after, now, iids,
                                       walk(before, after)[1] if before is None else changes,
                                       block, doc=doc))
            usual = _write(Path(tmp) / "usual.db", batches)
        assert short == usual
        assert tables(Path(tmp) / "short.db") == tables(Path(tmp) / "usual.db")


def numbering() -> tuple[list[int], Callable[[], int], Callable[[int], int]]:
    """Instance numbers from 1 as the writer takes them: the numbers taken, the one-number
    taker (``iids``) and the block taker (``block(count)``: the first of ``count``)."""
    numbers = iter(range(1, 1000))
    taken: list[int] = []

    def iids() -> int:
        taken.append(next(numbers))
        return taken[-1]

    def block(count: int) -> int:
        first = iids()
        for _ in range(count - 1):
            iids()
        return first

    return taken, iids, block


def _encoded(entity: dict[str, Any], *, general: bool) -> Any:
    """What :func:`encode_write` records of the creation of ``entity`` (numbered from 1),
    and the numbers it took; or its error.  ``general``: from the changes of the general
    way (``attribute_changes``) rather than its own walk of a usual creation."""
    taken, iids, block = numbering()
    try:
        changes = list(attribute_changes(None, entity)) if general else None
        return encode_write(None, entity, NOW, iids, changes, block), taken
    except NgsiLdError as exc:
        return exc.__class__, exc.to_problem()


#: creations of one instance an attribute (the usual ones), now and then of an odd kind, a
#: kind without its main member or an odd stamp
_single_entity = st.fixed_dictionaries(
    {"type": st.just(["https://x/T"]), "createdAt": st.just(NOW), "modifiedAt": st.just(NOW),
     "attrs": st.dictionaries(st.sampled_from(["https://x/a", "https://x/b", "https://x/c"]),
                              st.lists(st.one_of(_usual_instance, _instance()), min_size=1,
                                       max_size=1), min_size=1, max_size=3)},
    optional={"scope": st.sampled_from([["/a"], []])})


@settings(max_examples=300)
@given(st.one_of(_entity, _single_entity))
def test_a_creations_history_in_one_walk_is_what_the_general_way_encodes(
        entity: dict[str, Any]) -> None:
    entity["id"] = "urn:e:1"
    sent = copy.deepcopy(entity)
    assert _encoded(entity, general=False) == _encoded(entity, general=True)
    assert entity == sent  # nothing stamped or changed in place


def test_a_usual_creations_history_is_one_pack_of_its_instances_with_their_least_time(
        ) -> None:
    entity = {"id": "urn:e:1", "type": ["https://x/T"], "createdAt": NOW, "modifiedAt": NOW,
              "attrs": {"https://x/a": [_usual("Property", 1, {"createdAt": NOW,
                                                                "modifiedAt": NOW})],
                        "https://x/b": [_usual("Property", 2, {
                            "createdAt": NOW, "modifiedAt": NOW,
                            "observedAt": "2026-12-05T02:00:00Z"})]}}
    history, taken = _encoded(entity, general=False)
    assert history.prepared is not None and taken == [1, 2] and not history.rows
    body, count, first, least, sig, names = history.prepared
    assert orjson.loads(body) == [[name, inst[0]] for name, inst in entity["attrs"].items()]
    assert (count, first, least) == (2, 1, to_micros("2026-12-05T02:00:00Z"))
    assert sig == signature(["https://x/a", "https://x/b"])  # schema 12
    assert names == ("https://x/a", "https://x/b")  # schema 14


# -- the discovery counters ----------------------------------------------------------
_JSON_ADD = (  # how the counters were written before: the rows as a JSON array
    "INSERT INTO discovery_stats (tenant, type, attr, kind, n) SELECT ?, * FROM ("
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
    " json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each(?))"
    " WHERE true ON CONFLICT (tenant, type, attr, kind) DO UPDATE SET n = n + excluded.n"
)
_keys = st.tuples(st.sampled_from(["", "T", "U"]), st.sampled_from(["", "a", "b", "c"]),
                  st.sampled_from(["", "Property", "Relationship"]))
_delta = st.one_of(st.dictionaries(_keys, st.integers(-3, 3), max_size=40),
                   st.builds(lambda n: {(f"T{i}", "a", "Property"): 1 for i in range(n)},
                             st.integers(0, 140)))


def _counters(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return sorted(conn.execute("SELECT * FROM discovery_stats"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["t", "u"]), _delta), max_size=4))
def test_the_counters_written_in_row_statements_are_those_the_json_statement_wrote(
        deltas: list[tuple[str, dict[StatKey, int]]]) -> None:
    now, before = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    for conn in (now, before):
        stats.create(conn, rebuild=False)
    for tenant, delta in deltas:
        stats._write(now, tenant, delta)
        if delta:
            before.execute(_JSON_ADD, (tenant, orjson.dumps(
                [[*key, n] for key, n in delta.items()]).decode()))
            dropped = [list(key) for key, n in delta.items() if n < 0]
            if dropped:
                before.execute(stats._DROP, (tenant, orjson.dumps(dropped).decode()))
    assert _counters(now) == _counters(before)


# -- the broker's own stamps -----------------------------------------------------------
_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


@st.composite
def _millis_texts(draw: Any) -> str:
    """Texts of the stamps' shape: real instants, and any digits in their places."""
    if draw(st.booleans()):
        micros = draw(st.integers(-62135596800000, 253402300799999)) * 1000
        return format_micros(micros) if micros % 1000000 else format_micros(micros)[:-1] \
            + ".000Z"
    parts = [draw(st.text(alphabet="0123456789", min_size=n, max_size=n))
             for n in (4, 2, 2, 2, 2, 2, 3)]
    return "{}-{}-{}T{}:{}:{}.{}Z".format(*parts)


@settings(max_examples=500)
@given(st.one_of(_millis_texts(), st.sampled_from(
    ["2026-12-05T03:00:00Z", "2026-12-05T03:00:00.1234Z", "2026-12-05t03:00:00.123Z",
     "2026-12-05T03:00:00.123+00:00", "\uff12026-12-05T03:00:00.123Z", ""])))
def test_a_stamp_read_the_short_way_is_the_instant_the_general_parse_reads(text: str) -> None:
    quick = millis_micros(text)
    try:
        expected: int | None = from_datetime(parse_datetime(text))
    except NgsiLdError:
        expected = None
    if quick is not None:
        assert quick == expected
        assert _shortest(text) == (expected, format_micros(expected) == text)
    elif _FORM.fullmatch(text):
        assert expected is None  # of the stamps' form, not read the short way: refused
    if expected is not None:
        assert to_micros(text) == expected

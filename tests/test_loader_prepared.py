"""The loader's prepared creations (storage.prepared): a file whose new entities are
stored from rows a worker prepared holds exactly what the usual write leaves, table by
table, with history or without, among entities that exist already or come twice."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.loader import command, sinks
from broker.loader.command import main
from broker.loader.pipeline import WorkerPool
from broker.loader.prepare import CreationRows, prepare_batch
from broker.loader.sinks import StoreSink
from broker.loader.sources import Decoder
from broker.smartdatamodels import DIRECTORY
from storage.prepared import PreparedWrites
from storage.sqlite.history_packs import unpack
from storage.sqlite.store import SqliteStore

NOW = "2026-12-05T03:00:00.000000Z"
LATER = "2026-12-05T03:00:01.000000Z"
#: the tables whose rows hold numbers of names or of geometries (resolved when compared)
_RESOLVED = {"names", "entity_types", "attr_values", "geo_rows"}


def tables(db: Path, versions: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the file, its rows sorted; names and boxes by what they number;
    without the version numbers of the writer's transactions unless ``versions``; a
    history pack by the instance rows it holds (``history_packs.unpack``: its body an
    entity's document or an array of instances, schema 9, reads the same)."""
    conn = sqlite3.connect(db)
    try:
        found = {}
        listed = [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE"
            " 'CREATE VIRTUAL%' AND name NOT LIKE 'geo_rtree%'")]
        for name in listed:
            if name in _RESOLVED:
                continue
            column = ", rowid" if name == "entities" else ""  # the order rows were put in
            found[name] = sorted(conn.execute(f"SELECT *{column} FROM {name}"), key=repr)
        if not versions:  # how many batches one transaction took: the writer's timing
            found["entities"] = [row[:5] + row[6:] for row in found["entities"]]
            found["meta"] = [row for row in found["meta"] if row[0] != "entity_version"]
        if "temporal_packs" in found:
            found["temporal_packs"] = sorted(
                ((*row[:5], unpack(row[5], row[2])) for row in found["temporal_packs"]),
                key=repr)
        found["names"] = sorted(conn.execute("SELECT tenant, name FROM names"))
        found["entity_types"] = sorted(conn.execute(
            "SELECT n.name, t.id FROM entity_types t JOIN names n ON n.nid = t.type"))
        found["attr_values"] = sorted(conn.execute(
            "SELECT n.name, v.id, v.val, typeof(v.val), v.vocab FROM attr_values v"
            " JOIN names n ON n.nid = v.attr"), key=repr)
        found["geo"] = sorted(conn.execute(
            "SELECT g.tenant, g.id, g.attr, r.minx, r.maxx, r.miny, r.maxy FROM geo_rows g"
            " JOIN geo_rtree r ON r.id = g.rid"))
        return found
    finally:
        conn.close()


async def _load(db: Path, batches: list[list[dict[str, Any]]], *, prepared: bool,
                temporal: bool) -> None:
    """Each batch written as a load writes it, its creations prepared as a worker
    prepares them (``prepared``) or not."""
    sink = StoreSink(f"sqlite:{db}", temporal=temporal, preload_dir=str(DIRECTORY))
    rows = CreationRows(SqliteStore.prepare, temporal) if prepared else None
    await sink.open()
    try:
        number = 0
        for stamp, batch in zip((NOW, LATER) * len(batches), batches, strict=False):
            items = []
            for item in batch:
                number += 1
                items.append((number, orjson.dumps(item)))
            ready = await prepare_batch(sink.expander, None, Decoder("jsonl"), items,
                                        stamp, "replace", encode=True, rows=rows)
            assert all((r.prepared is not None) == prepared for r in ready.ready)
            await sink.write(ready)
    finally:
        await sink.close()


def both(tmp: Path, batches: list[list[dict[str, Any]]], temporal: bool) -> None:
    with_rows, usual = tmp / "prepared.db", tmp / "usual.db"
    for db in (with_rows, usual):
        db.unlink(missing_ok=True)
    asyncio.run(_load(with_rows, batches, prepared=True, temporal=temporal))
    asyncio.run(_load(usual, batches, prepared=False, temporal=temporal))
    assert tables(with_rows) == tables(usual)


_values = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False),
                    st.text(max_size=6), st.booleans(),
                    st.lists(st.integers(0, 9), max_size=3))
_point = st.tuples(st.floats(-179, 179), st.floats(-89, 89)).map(
    lambda c: {"type": "GeoProperty", "value": {"type": "Point", "coordinates": list(c)}})
_attribute = st.one_of(
    _values.map(lambda v: {"type": "Property", "value": v}),
    st.tuples(_values, st.sampled_from(["urn:ds:a", "urn:ds:b"])).map(
        lambda t: [{"type": "Property", "value": t[0]},
                   {"type": "Property", "value": 1, "datasetId": t[1]}]),
    st.integers(0, 5).map(lambda n: {"type": "Relationship",
                                      "object": f"urn:ngsi-ld:Thing:{n}"}),
    _point,
    st.text(max_size=5).map(lambda s: {"type": "LanguageProperty",
                                       "languageMap": {"en": s, "fr": "x"}}),
)
_entity = st.builds(
    lambda n, kind, attrs, scope: {
        "id": f"urn:ngsi-ld:Thing:{n}", "type": kind, **attrs, **scope,
        "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"},
    st.integers(0, 12), st.sampled_from(["Thing", "Device", "https://example.org/Other"]),
    st.dictionaries(st.sampled_from(["temperature", "name", "place", "refPlace",
                                     "https://example.org/p"]), _attribute, max_size=4)
    .flatmap(lambda attrs: st.sampled_from([{}, {"location": None}]).flatmap(
        lambda geo: _point.map(lambda p: {**attrs, "location": p}) if geo
        else st.just(attrs))),
    st.sampled_from([{}, {}, {}, {"scope": "/a/b"}]),
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batches=st.lists(st.lists(_entity, max_size=8), min_size=1, max_size=3),
       temporal=st.booleans())
def test_prepared_creations_leave_every_table_as_the_usual_write(
        tmp_path: Path, batches: list[list[dict[str, Any]]], temporal: bool) -> None:
    both(tmp_path, batches, temporal)


def test_a_first_load_then_a_second_of_the_same_entities_is_stored_the_same(
        tmp_path: Path) -> None:
    lights = [{"id": f"urn:ngsi-ld:Streetlight:{n}", "type": "Streetlight",
               "powerState": {"type": "Property", "value": "on"},
               "lanternHeight": {"type": "Property", "value": n, "unitCode": "MTR",
                                 "observedAt": "2026-12-04T10:00:00Z"},
               "location": {"type": "GeoProperty",
                            "value": {"type": "Point", "coordinates": [114.1, 22.3 + n / 100]}},
               "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:{n}"},
               "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"}
              for n in range(40)]
    assert isinstance(SqliteStore(tmp_path / "x.db"), PreparedWrites)
    # a first load, then the same entities again (existing: the usual path) with new ones
    both(tmp_path, [lights[:20], lights[10:40], lights[:5] + lights[:5]], temporal=True)


@pytest.mark.usefixtures("started_workers")
def test_a_load_with_worker_processes_leaves_the_same_file_with_prepared_rows_or_without(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the same file twice, the second load over the first's store (existing entities
    # take the usual path); every batch stamped at one time so that both loads compare
    things = [{"id": f"urn:ngsi-ld:Thing:{n}", "type": "Thing",
               "temperature": {"type": "Property", "value": n / 3},
               "name": {"type": "Property", "value": f"thing {n}"},
               "location": {"type": "GeoProperty",
                            "value": {"type": "Point", "coordinates": [n / 10, 45.0]}},
               "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"}
              for n in range(60)]
    source = tmp_path / "things.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(t) for t in things[:40] + things[30:]))
    monkeypatch.setattr(sinks, "now_iso", lambda: NOW)
    # "writer": no worker ever starts, the writer prepares every batch itself
    for name, prepared in (("prepared", True), ("usual", False), ("writer", True)):
        monkeypatch.setattr(command, "StoreSink", partial(StoreSink, prepared_rows=prepared))
        if name == "writer":
            monkeypatch.setattr(WorkerPool, "started", property(lambda _: False))
        out, err = io.StringIO(), io.StringIO()
        code = main(["--no-progress", str(source), "--store", f"sqlite:{tmp_path / name}.db",
                     "--batch-size", "7", "--jobs", "2", "--state-dir",
                     str(tmp_path / f"state-{name}")], out=out, err=err)
        assert code == 0, err.getvalue()
    # two batches may go in one transaction (the next is handed over before the one
    # before is settled): the versions numbering transactions may differ
    usual = tables(tmp_path / "usual.db", versions=False)
    assert tables(tmp_path / "prepared.db", versions=False) == usual
    assert tables(tmp_path / "writer.db", versions=False) == usual
    assert len(usual["entities"]) == 60

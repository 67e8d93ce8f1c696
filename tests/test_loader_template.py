"""CSV rows made by their compiled mapping (broker.loader.template) come out exactly as the
usual parse/expand/stamp makes them: the same records refused with the same reasons, the
same entities and prepared rows, and the same store file, table by table."""

from __future__ import annotations

import asyncio
import csv
import io
import pickle
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.loader.command import main
from broker.loader.expander import Expander
from broker.loader.mapping import CsvMapping, parse_mapping
from broker.loader.prepare import CreationRows, PreparedBatch, prepare_batch
from broker.loader.sinks import StoreSink
from broker.loader.sources import Decoder
from broker.loader.template import compile_template
from broker.smartdatamodels import DIRECTORY
from storage import MemoryStore
from storage.sqlite.store import SqliteStore
from tests.test_loader_prepared import NOW, tables

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
HEADER = ("key", "a", "b", "c", "lon", "lat", "when")

#: cells of every sort: good and bad numbers, datetimes with and without a zone, URIs and
#: not, the NGSI-LD Null, JSON objects, integers beyond 64 bits, empty cells
_any_cell = st.one_of(
    st.sampled_from(["", "12", "12.0", "-3.5e2", "1e400", "nan", "x", " 7 ", "true", "off",
                     "2026-12-04T10:00:00Z", "2026-12-04T10:00:00+02:00", "2026-12-04T10:00:00",
                     "2026-12-04", "urn:ngsi-ld:Thing:1", "urn:ngsi-ld:null", "not a uri",
                     '{"a": 1}', '{"@type": "DateTime", "@value": "x"}', "[1, 2]", "null",
                     "99999999999999999999999", "114.2", "22.3", "200", "-91", "%d %s",
                     # date-times the converter takes but NGSI-LD may not (the template
                     # checks them as the usual way does, once per distinct cell)
                     "2026-12-04T10:00:00+05:30:15", "0001-01-01T00:00:00Z",
                     "2026-12-04T10:00:00.123456789Z", " 2026-12-04T10:00:00Z "]),
    st.text(max_size=5),
    st.integers(-10**3, 10**3).map(str),
)
#: the cells each column mostly holds (the attributes below mostly read them so)
_good = {
    "key": st.integers(0, 9).map(str),
    "a": st.one_of(st.integers(-50, 50).map(str), st.floats(-1e3, 1e3).map(repr),
                   st.sampled_from(["1e3", "0.1", "7", "", "-0.0"])),
    "b": st.sampled_from(["urn:ngsi-ld:Thing:1", "urn:ngsi-ld:Device:x", "", "https://a.b/c"]),
    "c": st.sampled_from(["2026-12-04T10:00:00Z", "2026-12-04T10:00:00.250+00:00", "true",
                          "no", "hello", "", "ünïcode %"]),
    "lon": st.sampled_from(["114.1", "-180", "180.0", "0", ""]),
    "lat": st.sampled_from(["22.3", "-90", "45", ""]),
    "when": st.sampled_from(["2026-12-04T10:00:00Z", "2026-12-04T10:00:00.5+00:00"]),
}
_row = st.one_of(
    st.tuples(*(_good[c] for c in HEADER)).map(list),
    st.tuples(*(_good[c] for c in HEADER)).map(list),
    st.tuples(*(_good[c] for c in HEADER), st.integers(0, 6), _any_cell).map(
        lambda t: [*t[:t[-2]], t[-1], *t[t[-2] + 1:7]]),  # one cell of any sort
    st.lists(_any_cell, min_size=5, max_size=8),  # short, long or anything
)
_aligned = st.one_of(
    st.fixed_dictionaries({"column": st.just("a"), "datatype": st.sampled_from(
        ["number", "integer", "string", "json"])}, optional={"unitCode": st.just("CEL")}),
    st.fixed_dictionaries({"column": st.just("b"), "kind": st.just("Relationship")},
                          optional={"template": st.just("urn:ngsi-ld:Device:{key}")}),
    st.fixed_dictionaries({"column": st.just("c"), "datatype": st.sampled_from(
        ["datetime", "boolean", "string"])}),
)
_attribute = st.one_of(_aligned, _aligned, st.fixed_dictionaries(
    {"column": st.sampled_from(["a", "b", "c", "key"]),
     "kind": st.sampled_from(["Property", "Property", "Relationship"]),
     "datatype": st.sampled_from(["string", "number", "integer", "boolean", "datetime",
                                  "json"])},
    optional={"unitCode": st.sampled_from(["GQ", "CEL"]),
              "template": st.sampled_from(["urn:ngsi-ld:Device:{a}", "{b}", "x{c}"])}))
_names = st.sampled_from(["temperature", "name", "refThing", "https://example.org/p",
                          "dateObserved", "speed"])
_mapping = st.builds(
    lambda attrs, location, observed, context, kind, ident: {
        "type": kind, "id": ident, "attributes": attrs, **location, **observed, **context},
    st.one_of(st.dictionaries(_names, _attribute, max_size=5),
              st.dictionaries(st.sampled_from(["location", "bad name!", "name"]), _attribute,
                              max_size=2)),
    st.sampled_from([{}, {"location": {"longitude": "lon", "latitude": "lat"}}]),
    st.sampled_from([{}, {}, {"observedAt": "when"}, {"observedAt": "c"}]),
    st.sampled_from([{}, {"@context": CORE}]),
    st.sampled_from(["Thing", "Thing", "https://example.org/Other", "id"]),
    st.sampled_from(["urn:ngsi-ld:Thing:{key}", "urn:ngsi-ld:Thing:{key}", "{key}",
                     "urn:ngsi-ld:Thing:{a}:{key}"]),
)
_rows = st.lists(_row, max_size=12)


def _record(cells: list[str]) -> str:
    """The text of one CSV record (an item of a CSV source)."""
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue()


async def _prepare(mapping: CsvMapping, rows: list[list[str]], *, compiled: bool,
                   temporal: bool) -> PreparedBatch:
    store = MemoryStore()
    await store.open()
    expander = Expander(store, str(DIRECTORY))
    await expander.resolver.start()
    try:
        return await prepare_batch(
            expander, None, Decoder("csv", mapping=mapping, header=HEADER),
            [(number, _record(cells)) for number, cells in enumerate(rows, 1)], NOW, "replace",
            encode=True,
            rows=CreationRows(SqliteStore.prepare, temporal), compiled=compiled)
    finally:
        await expander.resolver.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_mapping, rows=_rows, temporal=st.booleans())
def test_compiled_rows_are_refused_and_made_as_the_usual_way(
        document: dict[str, Any], rows: list[list[str]], temporal: bool) -> None:
    mapping = parse_mapping(document)
    fast = asyncio.run(_prepare(mapping, rows, compiled=True, temporal=temporal))
    usual = asyncio.run(_prepare(mapping, rows, compiled=False, temporal=temporal))
    assert fast.refused == usual.refused
    assert fast.ready == usual.ready


def test_the_benchmark_mapping_compiles_and_a_bad_cell_is_refused_with_its_reason() -> None:
    mapping = parse_mapping({
        "type": "Thing", "id": "urn:ngsi-ld:Thing:{key}", "@context": CORE,
        "location": {"longitude": "lon", "latitude": "lat"}, "observedAt": "when",
        "attributes": {"temperature": {"column": "a", "datatype": "number"},
                       "refThing": {"column": "b", "kind": "Relationship"}}})
    rows = [["1", "20.5", "urn:ngsi-ld:Thing:9", "", "114.1", "22.3", "2026-12-04T10:00:00Z"],
            ["2", "warm", "urn:ngsi-ld:Thing:9", "", "114.1", "22.3", "2026-12-04T10:00:00Z"],
            ["3", "21", "not a uri", "", "", "", "2026-12-04T10:00:00Z"]]
    batch = asyncio.run(_prepare(mapping, rows, compiled=True, temporal=True))
    assert [r.number for r in batch.ready] == [1]
    assert [(r.number, r.reason) for r in batch.refused] == [
        (2, "column a: 'warm' is not a number"),
        (3, "Attribute 'refThing': object must be a URI or a non-empty list of URIs")]


def test_mappings_the_template_leaves_to_the_usual_way() -> None:
    ctx = asyncio.run(Expander(MemoryStore(), str(DIRECTORY)).context(None))
    base = {"type": "Thing", "id": "urn:ngsi-ld:Thing:{key}"}
    assert compile_template(parse_mapping(base), HEADER, ctx) is not None
    for other in ({"location": {"geojson": "a"}}, {"attributes": {"location": "a"}},
                  {"type": "id"}, {"attributes": {"bad name!": "a"}}):
        assert compile_template(parse_mapping({**base, **other}), HEADER, ctx) is None


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(document=_mapping, rows=_rows, temporal=st.booleans())
def test_a_csv_load_leaves_the_same_file_with_the_compiled_mapping_or_without(
        tmp_path: Path, document: dict[str, Any], rows: list[list[str]],
        temporal: bool) -> None:
    mapping = parse_mapping(document)
    files = {}
    for name, compiled in (("compiled", True), ("usual", False)):
        db = tmp_path / f"{name}.db"
        db.unlink(missing_ok=True)
        asyncio.run(_write(db, mapping, rows, compiled=compiled, temporal=temporal))
        files[name] = tables(db)
    assert files["compiled"] == files["usual"]


async def _write(db: Path, mapping: CsvMapping, rows: list[list[str]], *, compiled: bool,
                 temporal: bool) -> None:
    """The rows written in two batches (the second over the first: existing entities take
    the usual upsert), as a worker prepares and the writer writes them."""
    sink = StoreSink(f"sqlite:{db}", temporal=temporal, preload_dir=str(DIRECTORY))
    await sink.open()
    try:
        decoder = Decoder("csv", mapping=mapping, header=HEADER)
        numbered = [(number, _record(cells))
                    for number, cells in enumerate(rows + rows[:3], 1)]
        for part in (numbered[:len(rows)], numbered[len(rows):]):
            if part:
                await sink.write(await prepare_batch(
                    sink.expander, None, decoder, part, NOW, "replace", encode=True,
                    rows=CreationRows(SqliteStore.prepare, temporal), compiled=compiled))
    finally:
        await sink.close()


@pytest.mark.usefixtures("started_workers")
def test_a_csv_file_loads_with_worker_processes_its_bad_rows_reported(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_bytes(orjson.dumps({
        "type": "Thing", "id": "urn:ngsi-ld:Thing:{key}",
        "location": {"longitude": "lon", "latitude": "lat"},
        "attributes": {"temperature": {"column": "a", "datatype": "number", "unitCode": "CEL"},
                       "name": "b"}}))
    lines = ["key,a,b,lon,lat"] + [f"{n},{n / 4},thing {n},114.{n},22.{n}" for n in range(30)]
    lines[8] = "7,hot,thing 7,114.7,22.7"
    lines[12] = "11,3,thing 11,500,22"
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    out, err = io.StringIO(), io.StringIO()
    code = main(["--no-progress", str(tmp_path / "rows.csv"), "--mapping",
                 str(tmp_path / "m.json"), "--store", f"sqlite:{tmp_path / 'x.db'}",
                 "--batch-size", "7", "--jobs", "2", "--state-dir", str(tmp_path / "state")],
                out=out, err=err)
    assert code != 0 or "rejected" in out.getvalue() + err.getvalue()
    report = out.getvalue() + err.getvalue()
    assert "column a: 'hot' is not a number" in report
    assert "(500, 22) is not a longitude and a latitude" in report
    assert len(tables(tmp_path / "x.db")["entities"]) == 28


def test_a_prepared_batch_crosses_to_the_writer_unchanged() -> None:
    # Ready and the history's EntityRecord pickle as calls of their class: every field kept
    mapping = parse_mapping({"type": "Thing", "id": "urn:ngsi-ld:Thing:{key}",
                             "attributes": {"temperature": {"column": "a", "datatype": "number"},
                                            "name": "b", "note": "c", "more": "lon"}})
    rows = [[str(n), str(n), "b", "c", "d", "", ""] for n in range(12)] + [["x", "hot"]]
    batch = asyncio.run(_prepare(mapping, rows, compiled=True, temporal=True))
    assert batch.ready[0].prepared is not None and batch.ready[0].prepared.history is not None
    copy = pickle.loads(pickle.dumps(batch, pickle.HIGHEST_PROTOCOL))
    assert copy == batch and copy.ready and copy.refused
    assert copy.ready[0].prepared.history.record == batch.ready[0].prepared.history.record

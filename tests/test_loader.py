"""ngsi-ld-broker load: files of each format into a store or a broker; rejects; resume."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import io
import threading
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.loader import command, open_source, parse_mapping
from broker.loader.command import main
from broker.loader.mapping import MappingError
from broker.loader.sources import csv_text
from broker.smartdatamodels import DIRECTORY, context_url
from conformance.process import BrokerProcess
from ngsi_ld.query import EntityQuery
from ngsi_ld.temporal import TemporalQuery
from storage import open_store


def entity(number: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Streetlight:{number}", "type": "Streetlight",
            "powerState": {"type": "Property", "value": "on"},
            "status": {"type": "Property", "value": "ok"},
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [114.1, 22.3]}}, **extra}


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--no-progress", *args], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def stored(db: Path, tenant: str = "") -> dict[str, dict[str, Any]]:
    async def read() -> dict[str, dict[str, Any]]:
        store = open_store(f"sqlite:{db}")
        await store.open()
        try:
            entities, _ = await store.query_entities(tenant, EntityQuery())
            return {e["id"]: e for e in entities}
        finally:
            await store.close()

    return asyncio.run(read())


def write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(i) + b"\n" for i in items))
    return path


def test_json_lines_into_the_embedded_store(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "lights.jsonl", [entity(i) for i in range(25)])
    db = tmp_path / "b.db"
    code, out, err = run(str(source), "--store", f"sqlite:{db}", "--batch-size", "10",
                         "--state-dir", str(tmp_path / "state"))
    assert code == 0, err
    assert "loaded 25 entities" in out and "rejected 0" in out
    assert len(stored(db)) == 25


def histories(db: Path, ids: list[str]) -> tuple[list[str], dict[str, Any]]:
    """The temporal entities' ids and the recorded instances of ``ids``."""

    async def read() -> tuple[list[str], dict[str, Any]]:
        store = open_store(f"sqlite:{db}")
        await store.open()
        try:
            assert store.history is not None
            records = await store.history.temporal_entities("")
            found = await store.history.read_history(
                "", ids, None, TemporalQuery(timeproperty="modifiedAt"))
            return sorted(r.entity_id for r in records), found
        finally:
            await store.close()

    return asyncio.run(read())


def test_a_load_records_the_history_of_each_entity_unless_temporal_is_off(
        tmp_path: Path) -> None:
    lights = [entity(i, lanternHeight={"type": "Property", "value": i, "unitCode": "MTR"})
              for i in range(3)]
    # the second load of the first light replaces it: its history gains the new value
    again = entity(0, lanternHeight={"type": "Property", "value": 99, "unitCode": "MTR"})
    source = write_jsonl(tmp_path / "lights.jsonl", lights)
    update = write_jsonl(tmp_path / "again.jsonl", [again])
    ids = [e["id"] for e in lights]
    db = tmp_path / "on.db"
    for path in (source, update):
        code, _, err = run(str(path), "--store", f"sqlite:{db}", "--state-dir",
                           str(tmp_path / "state"))
        assert code == 0, err
    recorded, found = histories(db, ids)
    assert recorded == sorted(ids)
    height = "https://uri.etsi.org/ngsi-ld/default-context/lanternHeight"
    first = sorted((i.value, i.members.get("unitCode")) for i in found[ids[0]]
                   if i.attribute == height)
    assert first == [(0, "MTR"), (99, "MTR")]
    for number, entity_id in enumerate(ids[1:], start=1):
        by_name = {i.attribute: i for i in found[entity_id]}
        assert by_name[height].value == number
        assert by_name[height].created_at == stored(db)[entity_id]["attrs"][height][0][
            "createdAt"]
        assert {"powerState", "status", "location"} <= {a.rsplit("/", 1)[-1] for a in by_name}
    off = tmp_path / "off.db"
    code, _, err = run(str(source), "--store", f"sqlite:{off}", "--temporal", "off",
                       "--state-dir", str(tmp_path / "state-off"))
    assert code == 0, err
    assert len(stored(off)) == 3
    assert histories(off, ids) == ([], {})


def _unstamped(value: Any) -> Any:
    """``value`` without the system times a write stamps (they differ between writes)."""
    if isinstance(value, dict):
        return {k: _unstamped(v) for k, v in value.items() if k not in ("createdAt", "modifiedAt")}
    if isinstance(value, list):
        return [_unstamped(v) for v in value]
    return value


def test_a_load_into_the_store_leaves_what_a_batch_upsert_through_the_broker_leaves(
        tmp_path: Path) -> None:
    lights = [entity(i, lanternHeight={"type": "Property", "value": i, "unitCode": "MTR",
                                       "observedAt": "2026-12-04T10:00:00Z"},
                     refDevice={"type": "Relationship", "object": f"urn:ngsi-ld:Device:{i}"},
                     luminosity=[{"type": "Property", "value": 10 * i},
                                 {"type": "Property", "value": 5, "datasetId": "urn:ds:night"}],
                     status={"type": "Property", "value": "ok",
                             "reason": {"type": "Property", "value": "checked"}})
              for i in range(6)]
    again = [entity(0, lanternHeight={"type": "Property", "value": 99}), entity(5)]
    files = [write_jsonl(tmp_path / "lights.jsonl", lights),
             write_jsonl(tmp_path / "again.jsonl", again)]
    direct, served = tmp_path / "direct.db", tmp_path / "served.db"
    for path in files:
        code, _, err = run(str(path), "--store", f"sqlite:{direct}", "--batch-size", "4",
                           "--state-dir", str(tmp_path / "s1"))
        assert code == 0, err
    with BrokerProcess(f"sqlite:{served}") as broker:
        for path in files:
            code, _, err = run(str(path), "--url", broker.url, "--batch-size", "4",
                               "--state-dir", str(tmp_path / "s2"))
            assert code == 0, err
    assert _unstamped(stored(direct)) == _unstamped(stored(served))
    ids = [e["id"] for e in lights]

    def recorded(db: Path) -> tuple[list[str], dict[str, list[Any]]]:
        names, found = histories(db, ids)
        return names, {entity_id: sorted(
            (orjson.dumps([i.attribute, i.kind, i.value, i.dataset_id, i.observed_at,
                           _unstamped(dict(i.members)), i.deleted_at is None]))
            for i in instances) for entity_id, instances in found.items()}

    assert recorded(direct) == recorded(served)
    assert len(recorded(direct)[1][ids[0]]) > len(recorded(direct)[1][ids[1]])


def test_every_rejected_record_is_reported_with_its_reason(tmp_path: Path) -> None:
    items: list[Any] = [entity(1), "not an entity", {"id": "no-uri", "type": "T"}, entity(4)]
    source = write_jsonl(tmp_path / "mixed.jsonl", items)
    (tmp_path / "mixed.jsonl").write_bytes(source.read_bytes() + b"{broken\n")
    db = tmp_path / "b.db"
    rejects = tmp_path / "rejects.jsonl"
    code, out, err = run(str(source), "--store", f"sqlite:{db}", "--rejects", str(rejects),
                         "--state-dir", str(tmp_path / "state"))
    assert code == 1
    assert "loaded 2 entities" in out and "rejected 3" in out
    assert f"{source}:2: rejected: an entity is a JSON object" in err
    assert f"{source}:3 no-uri: rejected:" in err
    assert f"{source}:5: rejected: not JSON" in err
    reported = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert sorted(r["record"] for r in reported) == [2, 3, 5]
    assert sorted(stored(db)) == ["urn:ngsi-ld:Streetlight:1", "urn:ngsi-ld:Streetlight:4"]


def test_schema_violations_are_reported_and_the_rest_loaded(tmp_path: Path) -> None:
    bad = entity(2, powerState={"type": "Property", "value": "dazzling"})
    source = write_jsonl(tmp_path / "lights.jsonl", [entity(1), bad, entity(3)])
    db = tmp_path / "b.db"
    rejects = tmp_path / "rejects.jsonl"
    code, _, err = run(str(source), "--store", f"sqlite:{db}", "--model-schemas",
                         str(DIRECTORY), "--rejects", str(rejects),
                         "--state-dir", str(tmp_path / "state"))
    assert code == 1
    assert "urn:ngsi-ld:Streetlight:2: rejected:" in err and "powerState" in err
    (report,) = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert report["violations"][0]["attribute"] == "powerState"
    assert sorted(stored(db)) == ["urn:ngsi-ld:Streetlight:1", "urn:ngsi-ld:Streetlight:3"]


def test_geojson_features_become_entities(tmp_path: Path) -> None:
    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "urn:ngsi-ld:Kiosk:1",
         "geometry": {"type": "Point", "coordinates": [114.15, 22.28]},
         "properties": {"name": "Central", "open": True}},
        {"type": "Feature", "geometry": None, "properties": {"name": "no id"}},
    ]}
    source = tmp_path / "kiosks.geojson"
    source.write_bytes(orjson.dumps(collection))
    db = tmp_path / "b.db"
    code, _, err = run(str(source), "--store", f"sqlite:{db}", "--type", "Kiosk",
                       "--state-dir", str(tmp_path / "state"))
    assert code == 1
    assert f"{source}:2: rejected: the Feature has no id" in err
    kiosk = stored(db)["urn:ngsi-ld:Kiosk:1"]
    assert kiosk["type"] == ["https://uri.etsi.org/ngsi-ld/default-context/Kiosk"]
    location = kiosk["attrs"]["https://uri.etsi.org/ngsi-ld/location"][0]
    assert location["value"] == {"type": "Point", "coordinates": [114.15, 22.28]}


MAPPING = {
    "type": "AirQualityObserved",
    "id": "urn:ngsi-ld:AirQualityObserved:{station}",
    "@context": context_url("AirQualityObserved"),
    "location": {"longitude": "lon", "latitude": "lat"},
    "attributes": {
        "no2": {"column": "no2", "datatype": "number", "unitCode": "GQ"},
        "dateObserved": {"column": "time", "datatype": "datetime"},
        "refDevice": {"column": "sensor", "kind": "Relationship",
                      "template": "urn:ngsi-ld:Device:{sensor}"},
    },
}


def test_csv_with_a_mapping_file(tmp_path: Path) -> None:
    (tmp_path / "map.json").write_bytes(orjson.dumps(MAPPING))
    source = tmp_path / "air.csv"
    source.write_text(csv_text(["station", "lon", "lat", "no2", "time", "sensor"], [
        ["central", "114.158", "22.282", "41", "2026-12-01T08:00:00Z", "s1"],
        ["mongkok", "114.17", "22.32", "many", "2026-12-01T08:00:00Z", "s2"],
        ["", "114.17", "22.32", "3", "2026-12-01T08:00:00Z", "s3"],
    ]))
    db = tmp_path / "b.db"
    code, _, err = run(str(source), "--mapping", str(tmp_path / "map.json"), "--store",
                       f"sqlite:{db}", "--model-schemas", str(DIRECTORY),
                       "--state-dir", str(tmp_path / "state"))
    assert code == 1
    assert f"{source}:2: rejected: column no2: 'many' is not a number" in err
    assert f"{source}:3: rejected: column station is empty" in err
    (only,) = stored(db).values()
    no2 = only["attrs"]["https://smartdatamodels.org/dataModel.Environment/no2"][0]
    assert (no2["value"], no2["unitCode"]) == (41, "GQ")


def test_a_mapping_that_names_missing_columns_stops_the_load(tmp_path: Path) -> None:
    (tmp_path / "map.json").write_bytes(orjson.dumps(MAPPING))
    source = tmp_path / "air.csv"
    source.write_text("station,lon\nx,1\n")
    code, _, err = run(str(source), "--mapping", str(tmp_path / "map.json"), "--store",
                       f"sqlite:{tmp_path / 'b.db'}")
    assert code == 2
    assert "the mapping names columns the file lacks: lat, no2, sensor, time" in err


@pytest.mark.parametrize("bad, message", [
    ({"type": "T"}, "'id'"),
    ({"type": "T", "id": "urn:x"}, "at least one {column}"),
    ({"type": "T", "id": "urn:{a}", "location": {"longitude": "x"}}, "both longitude"),
    ({"type": "T", "id": "urn:{a}", "attributes": {"a": {"column": "a", "kind": "X"}}}, "kind"),
])
def test_bad_mapping_files_are_explained(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(MappingError, match=message):
        parse_mapping(bad)


cells = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(cells.filter(lambda s: s != ""), st.integers(-10**9, 10**9),
                          st.booleans(), cells), min_size=1, max_size=8, unique_by=lambda r: r[0]))
def test_csv_values_survive_the_mapping(rows: list[tuple[str, int, bool, str]]) -> None:
    """Any text (commas, quotes, newlines, unicode), integers and booleans read back as written."""
    mapping = parse_mapping({
        "type": "T", "id": "urn:ngsi-ld:T:{key}",
        "attributes": {"label": "label", "count": {"column": "count", "datatype": "integer"},
                       "flag": {"column": "flag", "datatype": "boolean"}},
    })
    text = csv_text(["key", "count", "flag", "label"],
                    [[k, str(n), str(b).lower(), label] for k, n, b, label in rows])
    path = Path(f"/tmp/ngsi-ld-csv-roundtrip-{abs(hash(text))}.csv")
    path.write_text(text, encoding="utf-8", newline="")
    try:
        read = [r.entity for r in open_source(path, mapping=mapping).records]
    finally:
        path.unlink()
    for (key, count, flag, label), got in zip(rows, read, strict=True):
        assert got is not None
        assert got["id"] == f"urn:ngsi-ld:T:{key}"
        assert got["count"]["value"] == count and got["flag"]["value"] is flag
        assert got.get("label", {}).get("value", "") == label


def test_an_interrupted_load_resumes_after_the_last_written_batch(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "lights.jsonl", [entity(i) for i in range(30)])
    state = tmp_path / "state"
    with BrokerProcess("memory:") as broker:
        url = broker.url
        # The broker goes away after the first batch: the load stops with a resume point.
        calls = 0
        original = command.Loader._settle

        async def settle_then_stop(self: Any, *args: Any) -> None:
            nonlocal calls
            await original(self, *args)
            calls += 1
            if calls == 2:
                broker.stop()

        command.Loader._settle = settle_then_stop  # type: ignore[method-assign]
        try:
            code, out, err = run(str(source), "--url", url, "--batch-size", "10",
                                 "--state-dir", str(state))
        finally:
            command.Loader._settle = original  # type: ignore[method-assign]
        assert code == 2, err
        assert "interrupted: run the same command to resume" in out
    with BrokerProcess("memory:", port=int(url.rsplit(":", 1)[1])):
        code, out, err = run(str(source), "--url", url, "--batch-size", "10",
                             "--state-dir", str(state))
        assert code == 0, err
        assert "resuming after record" in err
        loaded = int(out.split("loaded ")[1].split(" ")[0])
        assert 0 < loaded < 30
        assert not list(state.iterdir())  # finished: no resume point left


def test_loading_into_a_running_broker(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "lights.jsonl",
                         [entity(1), entity(2, powerState={"type": "Property", "value": 3}),
                          {"id": "urn:ngsi-ld:X:1", "type": "X", "a": {"type": "Bad"}}])
    with BrokerProcess("memory:") as broker:
        code, out, err = run(str(source), "--url", broker.url, "--tenant", "city",
                             "--state-dir", str(tmp_path / "state"))
        assert code == 1
        assert "loaded 2 entities" in out
        assert "urn:ngsi-ld:X:1: rejected:" in err
        request = urllib.request.Request(broker.url + "/ngsi-ld/v1/entities?type=Streetlight",
                                         headers={"NGSILD-Tenant": "city"})
        with urllib.request.urlopen(request) as resp:
            assert len(orjson.loads(resp.read())) == 2


def test_the_readme_csv_example_loads_with_its_one_bad_row_reported(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "examples"
    db = tmp_path / "b.db"
    code, out, err = run(str(docs / "air-quality.csv"), "--mapping",
                         str(docs / "air-quality.mapping.json"), "--store", f"sqlite:{db}",
                         "--model-schemas", str(DIRECTORY), "--state-dir", str(tmp_path / "s"))
    assert code == 1
    assert "loaded 3 entities" in out
    assert "air-quality.csv:3: rejected: column no2: 'not measured' is not a number" in err
    assert len(stored(db)) == 3


def test_loading_into_a_broker_with_auth_on_needs_a_key(tmp_path: Path) -> None:
    key = "loader-key-for-the-test"
    keys = tmp_path / "keys.json"
    keys.write_bytes(orjson.dumps({"keys": [{"name": "loader", "roles": ["city:writer"],
                                             "sha256": hashlib.sha256(key.encode()).hexdigest()}]}))
    source = write_jsonl(tmp_path / "lights.jsonl", [entity(1), entity(2)])
    extra = ["--auth", "api-keys", "--api-keys", str(keys),
             "--public-tenant", "city", "--public-tenant", "opendata"]
    with BrokerProcess("memory:", extra=extra) as broker:
        code, out, err = run(str(source), "--url", broker.url, "--tenant", "city",
                             "--state-dir", str(tmp_path / "state"))
        assert code == 2 and "HTTP 401" in err  # no key: the load cannot run
        code, out, err = run(str(source), "--url", broker.url, "--tenant", "city", "--token",
                             key, "--state-dir", str(tmp_path / "state2"))
        assert code == 0 and "loaded 2 entities" in out, err
        # city is public (the flag repeated): anyone reads it, nobody anonymous writes it
        request = urllib.request.Request(broker.url + "/ngsi-ld/v1/entities?type=Streetlight",
                                         headers={"NGSILD-Tenant": "City"})
        with urllib.request.urlopen(request) as resp:
            assert len(orjson.loads(resp.read())) == 2


def test_remote_contexts_on_loopback_need_the_outbound_allow_option(tmp_path: Path) -> None:
    (tmp_path / "ctx.jsonld").write_text('{"@context": {"glow": "https://example.org/glow"}}')

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ctx.jsonld"
        record = {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp", "@context": url,
                  "glow": {"type": "Property", "value": 1}}
        source = write_jsonl(tmp_path / "lamps.jsonl", [record])
        refused, _, _ = run(str(source), "--store", f"sqlite:{tmp_path / 'a.db'}")
        assert refused == 1 and stored(tmp_path / "a.db") == {}
        allowed, _, _ = run(str(source), "--store", f"sqlite:{tmp_path / 'b.db'}",
                            "--outbound-allow", "127.0.0.0/8")
        assert allowed == 0
        assert "https://example.org/glow" in stored(tmp_path / "b.db")["urn:ngsi-ld:Lamp:1"][
            "attrs"]
    finally:
        server.shutdown()


@pytest.mark.parametrize(("target", "given", "size"), [
    (["--store", "sqlite:x.db"], [], 4000),  # one store transaction: larger is cheaper a row
    (["--url", "http://localhost:1026"], [], 1000),  # a broker's usual batch limit
    (["--store", "sqlite:x.db"], ["--batch-size", "10"], 10),
])
def test_the_default_batch_depends_on_the_target(target: list[str], given: list[str],
                                                 size: int) -> None:
    args = command.build_parser().parse_args(["f.jsonl", *target, *given])
    sink, name = command.make_sink(args)
    assert command.Loader(sink, name, args).size == size

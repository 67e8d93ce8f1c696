"""--model-schemas: writes that break a type's JSON Schema answer 400 with every violation."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.app import BROKER, create_app
from broker.config import Settings, load_settings
from broker.schemas import ModelSchemas, SchemaLoadError
from broker.schemas.models import _path
from broker.smartdatamodels import DIRECTORY, context_url
from ngsi_ld.entity import parse_entity
from ngsi_ld.jsonld import compile_context, core_context_url

ENTITIES = "/ngsi-ld/v1/entities"
BAD_DATA = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


def streetlight(number: int = 1, **attrs: Any) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Streetlight:{number}",
        "type": "Streetlight",
        "powerState": {"type": "Property", "value": "on"},
        "status": {"type": "Property", "value": "ok"},
        "lanternHeight": {"type": "Property", "value": 10},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [114.17, 22.3]}},
        "refDevice": {"type": "Relationship", "object": ["urn:ngsi-ld:Device:1"]},
    }
    entity.update(attrs)
    return entity


@pytest.fixture
async def validating_client() -> AsyncIterator[TestClient]:
    settings = Settings(store="memory:", model_schemas=str(DIRECTORY), context_dir=str(DIRECTORY))
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    yield client
    await client.close()


async def post(client: TestClient, path: str, body: Any, **headers: str) -> tuple[int, Any]:
    async with client.post(path, data=orjson.dumps(body),
                           headers={"Content-Type": "application/json", **headers}) as resp:
        text = await resp.read()
        return resp.status, orjson.loads(text) if text else None


async def test_a_conforming_entity_is_created(validating_client: TestClient) -> None:
    status, _ = await post(validating_client, ENTITIES, streetlight())
    assert status == 201


async def test_the_embedded_store_reads_through_the_schema_check(tmp_path: Path) -> None:
    """On SQLite (versioned reads, which the check keeps): what was written is read back,
    by id and by query, and a violating write changes nothing."""
    settings = Settings(store=f"sqlite:///{tmp_path}/broker.db", model_schemas=str(DIRECTORY),
                        context_dir=str(DIRECTORY))
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        assert (await post(client, ENTITIES, streetlight(7)))[0] == 201
        bad = {"powerState": {"type": "Property", "value": "dazzling"}}
        status, _ = await post(client, f"{ENTITIES}/urn:ngsi-ld:Streetlight:7/attrs", bad)
        assert status == 400
        for path in (f"{ENTITIES}/urn:ngsi-ld:Streetlight:7", f"{ENTITIES}?type=Streetlight"):
            for _ in range(2):  # the second answer may come from what the first kept
                async with client.get(path) as resp:
                    assert resp.status == 200
                    body = orjson.loads(await resp.read())
                found = body if isinstance(body, dict) else body[0]
                assert found["id"] == "urn:ngsi-ld:Streetlight:7"
                assert found["powerState"]["value"] == "on"
    finally:
        await client.close()


async def test_a_violating_create_lists_each_violation_with_its_path(
    validating_client: TestClient,
) -> None:
    entity = streetlight(
        powerState={"type": "Property", "value": "dazzling"},
        lanternHeight={"type": "Property", "value": "tall"},
    )
    status, problem = await post(validating_client, ENTITIES, entity)
    assert status == 400
    assert problem["type"] == BAD_DATA
    assert {v["attribute"] for v in problem["violations"]} == {"powerState", "lanternHeight"}
    assert "powerState" in problem["detail"] and "lanternHeight" in problem["detail"]
    async with validating_client.get(ENTITIES + "/urn:ngsi-ld:Streetlight:1") as resp:
        assert resp.status == 404  # nothing written


async def test_nested_paths_and_list_items_are_named(validating_client: TestClient) -> None:
    entity = streetlight(refDevice={"type": "Relationship", "object": ["urn:ngsi-ld:Device:1",
                                                                      "urn:ngsi-ld:Device:1"]})
    status, problem = await post(validating_client, ENTITIES, entity)
    assert status == 400
    assert [v["attribute"] for v in problem["violations"]] == ["refDevice"]
    assert "unique" in problem["violations"][0]["message"]


async def test_a_missing_required_attribute_is_named(validating_client: TestClient) -> None:
    observed = {"id": "urn:ngsi-ld:AirQualityObserved:1", "type": "AirQualityObserved",
                "no2": {"type": "Property", "value": 20}}
    status, problem = await post(validating_client, ENTITIES, observed)
    assert status == 400
    assert {v["attribute"] for v in problem["violations"]} == {"dateObserved", "location"}


async def test_an_update_that_breaks_the_schema_is_refused(validating_client: TestClient) -> None:
    assert (await post(validating_client, ENTITIES, streetlight()))[0] == 201
    path = ENTITIES + "/urn:ngsi-ld:Streetlight:1/attrs"
    async with validating_client.patch(
        path, data=orjson.dumps({"powerState": {"type": "Property", "value": "exploded"}}),
        headers={"Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["violations"][0]["attribute"] == "powerState"
    async with validating_client.get(ENTITIES + "/urn:ngsi-ld:Streetlight:1",
                                     params={"options": "keyValues"}) as resp:
        assert (await resp.json())["powerState"] == "on"


async def test_batch_upsert_reports_violating_entities_and_writes_the_rest(
    validating_client: TestClient,
) -> None:
    good = streetlight(1)
    bad = streetlight(2, status={"type": "Property", "value": "melted"})
    status, result = await post(validating_client, "/ngsi-ld/v1/entityOperations/upsert",
                                [good, bad])
    assert status == 207
    assert result["success"] == ["urn:ngsi-ld:Streetlight:1"]
    (error,) = result["errors"]
    assert error["entityId"] == "urn:ngsi-ld:Streetlight:2"
    assert error["error"]["violations"][0]["attribute"] == "status"


async def test_types_without_a_schema_are_not_checked(validating_client: TestClient) -> None:
    other = {"id": "urn:ngsi-ld:Thing:1", "type": "Thing",
             "powerState": {"type": "Property", "value": "anything"}}
    assert (await post(validating_client, ENTITIES, other))[0] == 201


async def test_names_are_matched_through_the_data_models_context(
    validating_client: TestClient,
) -> None:
    # with the Smart Data Models context, Streetlight and powerState are its IRIs
    link = f'<{context_url("Streetlight")}>; rel="http://www.w3.org/ns/json-ld#context"'
    entity = streetlight(powerState={"type": "Property", "value": "dazzling"})
    status, problem = await post(validating_client, ENTITIES, entity, Link=link)
    assert status == 400
    assert [v["attribute"] for v in problem["violations"]] == ["powerState"]


def test_violations_of_an_entity_in_the_internal_form() -> None:
    schemas = ModelSchemas.load(DIRECTORY)
    core = compile_context(None, {}, core_context_url())
    entity = core.expand_entity(parse_entity(streetlight()))
    assert schemas.violations(entity) == []
    del entity["attrs"][core.expand_term("location")]
    assert [str(v) for v in schemas.violations(entity)] == [
        "location: 'location' is a required property"
    ]


def test_a_directory_without_schemas_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaLoadError, match="no schema"):
        ModelSchemas.load(tmp_path)
    (tmp_path / "Thing.schema.json").write_text('{"type": "object", "properties": 3}')
    with pytest.raises(SchemaLoadError, match="not a valid JSON Schema"):
        ModelSchemas.load(tmp_path)


def test_flat_layout_and_local_refs(tmp_path: Path) -> None:
    (tmp_path / "common.json").write_text(orjson.dumps({
        "$id": "https://example.org/common.json",
        "$defs": {"level": {"type": "integer", "minimum": 0}},
    }).decode())
    (tmp_path / "Tank.schema.json").write_text(orjson.dumps({
        "$id": "https://example.org/Tank/schema.json",
        "properties": {"level": {"$ref": "https://example.org/common.json#/$defs/level"}},
    }).decode())
    schemas = ModelSchemas.load(tmp_path)
    core = compile_context(None, {}, core_context_url())
    tank = core.expand_entity({"id": "urn:ngsi-ld:Tank:1", "type": ["Tank"],
                               "attrs": {"level": [{"type": "Property", "value": -1}]}})
    assert [v.path for v in schemas.violations(tank)] == ["level"]


def test_the_option_is_a_flag_and_an_environment_variable() -> None:
    assert load_settings(["--model-schemas", "/x"], {}).model_schemas == "/x"
    assert load_settings([], {"NGSI_LD_MODEL_SCHEMAS": "/y"}).model_schemas == "/y"
    assert load_settings([], {}).model_schemas == ""


def test_an_unusable_directory_stops_the_broker_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(SchemaLoadError):
        create_app(Settings(store="memory:", model_schemas=str(tmp_path / "missing")))


@functools.cache
def bundled() -> ModelSchemas:
    return ModelSchemas.load(DIRECTORY)


values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 300) | st.floats(-1e3, 1e3)
    | st.sampled_from(["ok", "on", "off", "low", "defectiveLamp", "sidewalk", "group", "x y",
                       "urn:ngsi-ld:Device:1", "2026-12-01T00:00:00Z", ""]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["streetAddress", "addressLocality", "type"]), children, max_size=2),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["status", "powerState", "lanternHeight", "refDevice", "address",
                     "locationCategory", "controllingMethod", "circuit", "powerConsumption",
                     "dateLastLampChange", "location", "unknownAttribute"]),
    values, max_size=8))
def test_attribute_by_attribute_checks_agree_with_the_whole_schema(doc: dict[str, Any]) -> None:
    (schema,) = bundled().for_types(["https://uri.etsi.org/ngsi-ld/default-context/Streetlight"])
    assert schema.flat is not None
    doc = {"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight", **doc}

    def verdicts(checks: Any) -> set[tuple[str, str]]:
        return {(_path(e), e.message) for e in checks.iter_errors(doc)}

    for _ in range(2):  # the second time, from the remembered verdicts
        assert verdicts(schema.flat) == verdicts(schema.validator)


async def test_expiry_removes_a_required_attribute_all_the_same(
    validating_client: TestClient,
) -> None:
    # 4.22: the broker removes what expired; a model schema binds clients' writes only
    broker = validating_client.server.app[BROKER]
    swept = asyncio.Event()
    broker.events.subscribe(lambda event: swept.set())
    transient = {"type": "Property", "value": "ok", "expiresAt": "2020-01-01T00:00:00Z"}
    status, _ = await post(validating_client, ENTITIES, streetlight(status=transient))
    assert status == 201
    while True:  # the creation's event, then the sweep's
        await asyncio.wait_for(swept.wait(), 30)
        swept.clear()
        stored = await broker.store.get_entity("", "urn:ngsi-ld:Streetlight:1")
        assert stored is not None
        if not any(name.endswith("status") for name in stored["attrs"]):
            break

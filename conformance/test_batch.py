"""5.6.7-5.6.10 and 5.6.20 batch entity operations, with the BatchOperationResult of 5.2.16."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.client import Client, Reply
from conformance.data import (
    BAD_DATA,
    BATCH,
    EXISTS,
    INVALID,
    NOT_FOUND,
    absent,
    create,
    eid,
    entity,
    is_problem,
    prop,
    rel,
    stored,
)


def _things(uid: str, count: int, **attrs: Any) -> list[dict[str, Any]]:
    return [entity(eid("Thing", uid, n), temperature=prop(n), **attrs) for n in range(count)]


def _errors(reply: Reply) -> dict[str, dict[str, Any]]:
    """entityId -> ProblemDetails of a 207 BatchOperationResult, checking its shape."""
    assert reply.status == 207, (reply.status, reply.raw)
    result = reply.json
    assert isinstance(result["success"], list) and isinstance(result["errors"], list)
    out: dict[str, dict[str, Any]] = {}
    for error in result["errors"]:
        problem = error["error"]
        assert problem["type"].startswith("https://uri.etsi.org/ngsi-ld/errors/")
        out[error["entityId"]] = problem
    return out


# 5.6.7 Batch Entity Creation

@pytest.mark.clause("5.6.7")
def test_batch_create_all_new_is_201_with_ids(client: Client, uid: str) -> None:
    batch = _things(uid, 3)
    reply = client.post(BATCH + "/create", batch)
    assert reply.status == 201
    assert sorted(reply.json) == sorted(e["id"] for e in batch)
    for sent in batch:
        assert stored(client, sent["id"]) == sent


@pytest.mark.clause("5.6.7")
def test_batch_create_with_existing_is_207(client: Client, uid: str) -> None:
    batch = _things(uid, 3)
    create(client, entity(batch[1]["id"], a=prop("old")))
    reply = client.post(BATCH + "/create", batch)
    errors = _errors(reply)
    assert sorted(reply.json["success"]) == sorted([batch[0]["id"], batch[2]["id"]])
    assert list(errors) == [batch[1]["id"]]
    assert errors[batch[1]["id"]]["type"] == EXISTS
    assert errors[batch[1]["id"]].get("status", 409) == 409
    assert stored(client, batch[1]["id"]) == entity(batch[1]["id"], a=prop("old"))
    assert stored(client, batch[2]["id"]) == batch[2]


@pytest.mark.clause("5.6.7")
def test_batch_create_invalid_entity_is_not_half_written(client: Client, uid: str) -> None:
    batch = _things(uid, 3)
    batch[1]["broken"] = {"type": "Property"}  # no value
    batch[1]["fine"] = prop(1)
    reply = client.post(BATCH + "/create", batch)
    errors = _errors(reply)
    assert list(errors) == [batch[1]["id"]]
    assert errors[batch[1]["id"]]["type"] == BAD_DATA
    assert absent(client, batch[1]["id"])
    assert stored(client, batch[0]["id"]) == batch[0]


@pytest.mark.clause("5.6.7")
def test_batch_create_entity_without_id(client: Client, uid: str) -> None:
    batch = _things(uid, 2)
    reply = client.post(BATCH + "/create", [batch[0], {"type": "Thing"}, batch[1]])
    assert reply.status in (207, 400)
    if reply.status == 207:
        assert sorted(reply.json["success"]) == sorted(e["id"] for e in batch)
        assert len(reply.json["errors"]) == 1
    else:
        assert is_problem(reply, 400, BAD_DATA, INVALID)
        assert absent(client, batch[0]["id"])


@pytest.mark.clause("5.5.11")
def test_batch_create_duplicate_ids_first_wins(client: Client, uid: str) -> None:
    first, second = _things(uid, 2)
    # 5.5.11: instances are processed in array order, so a repeated create meets an
    # existing entity
    again = entity(first["id"], temperature=prop("second"))
    reply = client.post(BATCH + "/create", [first, second, again])
    errors = _errors(reply)
    assert sorted(reply.json["success"]) == sorted([first["id"], second["id"]])
    assert errors[first["id"]]["type"] == EXISTS
    assert stored(client, first["id"]) == first


@pytest.mark.clause("5.6.7")
@pytest.mark.parametrize("body", [{"id": "urn:ngsi-ld:Thing:x", "type": "Thing"}, "text", 5])
def test_batch_body_must_be_an_array(client: Client, body: Any) -> None:
    for op in ("create", "upsert", "update", "delete", "merge"):
        reply = client.post(f"{BATCH}/{op}", body)
        assert is_problem(reply, 400, BAD_DATA, INVALID), op


@pytest.mark.clause("broker")
def test_batch_over_1000_entities_is_400(client: Client, uid: str) -> None:
    batch = [entity(eid("Big", uid, n), "Big") for n in range(1001)]
    reply = client.post(BATCH + "/create", batch)
    assert is_problem(reply, 400, BAD_DATA, INVALID)
    assert "1000" in reply.json["detail"]
    assert absent(client, batch[0]["id"])
    # exactly 1000 is fine
    assert client.post(BATCH + "/create", batch[:1000]).status == 201


@pytest.mark.clause("5.6.7")
def test_empty_batch(client: Client) -> None:
    reply = client.post(BATCH + "/create", [])
    assert reply.status in (201, 400)
    if reply.status == 201:
        assert reply.json == []


# 5.6.8 Batch Entity Upsert

@pytest.mark.clause("5.6.8")
def test_upsert_new_is_201_existing_is_204(client: Client, uid: str) -> None:
    batch = _things(uid, 2)
    reply = client.post(BATCH + "/upsert", batch)
    assert reply.status == 201 and sorted(reply.json) == sorted(e["id"] for e in batch)
    changed = [entity(e["id"], humidity=prop(1)) for e in batch]
    reply = client.post(BATCH + "/upsert", changed)
    assert reply.status == 204
    # options=replace is the default: the old attributes are gone
    assert stored(client, batch[0]["id"]) == changed[0]


@pytest.mark.clause("5.6.8")
def test_upsert_mixed_lists_only_created(client: Client, uid: str) -> None:
    old, new = _things(uid, 2)
    create(client, old)
    reply = client.post(BATCH + "/upsert", [entity(old["id"], a=prop(1)), new])
    assert reply.status == 201 and reply.json == [new["id"]]
    assert stored(client, new["id"]) == new


@pytest.mark.clause("5.6.8")
def test_upsert_options_update_keeps_other_attributes(client: Client, uid: str) -> None:
    (old,) = _things(uid, 1, owner=rel("urn:ngsi-ld:Person:alice"))
    create(client, old)
    reply = client.post(BATCH + "/upsert?options=update", [entity(old["id"], temperature=prop(9),
                                                                  humidity=prop(3))])
    assert reply.status == 204
    got = stored(client, old["id"])
    assert got["temperature"] == prop(9) and got["humidity"] == prop(3)
    assert got["owner"] == old["owner"]


@pytest.mark.clause("5.6.8")
def test_upsert_options_replace_drops_other_attributes(client: Client, uid: str) -> None:
    (old,) = _things(uid, 1, owner=rel("urn:ngsi-ld:Person:alice"))
    create(client, old)
    reply = client.post(BATCH + "/upsert?options=replace", [entity(old["id"], humidity=prop(3))])
    assert reply.status == 204
    assert stored(client, old["id"]) == entity(old["id"], humidity=prop(3))


@pytest.mark.clause("5.6.8")
def test_upsert_with_invalid_entity_is_207(client: Client, uid: str) -> None:
    good, bad = _things(uid, 2)
    create(client, bad)
    broken = entity(bad["id"], temperature=prop(100), loc={"type": "GeoProperty",
                                                            "value": {"type": "Point",
                                                                      "coordinates": [0, 95]}})
    errors = _errors(client.post(BATCH + "/upsert", [good, broken]))
    assert list(errors) == [bad["id"]] and errors[bad["id"]]["type"] == BAD_DATA
    assert stored(client, bad["id"]) == bad  # not half-written
    assert stored(client, good["id"]) == good


# 5.6.9 Batch Entity Update

@pytest.mark.clause("5.6.9")
def test_batch_update(client: Client, uid: str) -> None:
    batch = _things(uid, 2, owner=rel("urn:ngsi-ld:Person:alice"))
    assert client.post(BATCH + "/create", batch).status == 201
    reply = client.post(BATCH + "/update", [entity(e["id"], temperature=prop(50),
                                                   humidity=prop(1)) for e in batch])
    assert reply.status == 204
    got = stored(client, batch[1]["id"])
    assert got["temperature"] == prop(50) and got["humidity"] == prop(1)
    assert got["owner"] == batch[1]["owner"]


@pytest.mark.clause("5.6.9")
def test_batch_update_no_overwrite(client: Client, uid: str) -> None:
    (thing,) = _things(uid, 1)
    create(client, thing)
    reply = client.post(BATCH + "/update?options=noOverwrite",
                        [entity(thing["id"], temperature=prop(50), humidity=prop(1))])
    # the kept attribute is reported (5.6.3 would list it in notUpdated): 207
    errors = _errors(reply)
    assert reply.json["success"] == [] and errors[thing["id"]]["type"] == BAD_DATA
    assert "temperature" in errors[thing["id"]]["detail"]
    got = stored(client, thing["id"])
    assert got["temperature"] == thing["temperature"] and got["humidity"] == prop(1)
    new_only = client.post(BATCH + "/update?options=noOverwrite",
                           [entity(thing["id"], pressure=prop(3))])
    assert new_only.status == 204


@pytest.mark.clause("5.6.9")
def test_batch_update_options_update_and_replace(client: Client, uid: str) -> None:
    # Orion-LD users send them (FIWARE tutorials, ngsi-go "update entities --replace")
    one, two = _things(uid, 2, humidity=prop(1))
    assert client.post(BATCH + "/create", [one, two]).status == 201
    reply = client.post(BATCH + "/update?options=update", [entity(one["id"], temperature=prop(9))])
    assert reply.status == 204
    assert stored(client, one["id"]) == {**one, "temperature": prop(9)}
    reply = client.post(BATCH + "/update?options=replace",
                        [entity(two["id"], pressure=prop(5))])
    assert reply.status == 204
    assert stored(client, two["id"]) == entity(two["id"], pressure=prop(5))
    missing = eid("Nothing", uid)
    errors = _errors(client.post(BATCH + "/update?options=replace",
                                 [entity(missing, pressure=prop(5))]))
    assert errors[missing]["type"] == NOT_FOUND and absent(client, missing)
    for options in ("update,replace", "noOverwrite,replace"):
        reply = client.post(f"{BATCH}/update?options={options}", [entity(one["id"], a=prop(1))])
        assert is_problem(reply, 400, BAD_DATA, INVALID)


@pytest.mark.clause("5.6.9")
def test_batch_update_missing_entity_is_207(client: Client, uid: str) -> None:
    (thing,) = _things(uid, 1)
    create(client, thing)
    missing = eid("Nothing", uid)
    reply = client.post(BATCH + "/update", [entity(thing["id"], temperature=prop(7)),
                                            entity(missing, temperature=prop(7))])
    errors = _errors(reply)
    assert reply.json["success"] == [thing["id"]]
    assert list(errors) == [missing] and errors[missing]["type"] == NOT_FOUND
    assert absent(client, missing)
    assert stored(client, thing["id"])["temperature"] == prop(7)


# 5.6.10 Batch Entity Delete

@pytest.mark.clause("5.6.10")
def test_batch_delete(client: Client, uid: str) -> None:
    batch = _things(uid, 3)
    assert client.post(BATCH + "/create", batch).status == 201
    reply = client.post(BATCH + "/delete", [e["id"] for e in batch[:2]])
    assert reply.status == 204
    assert absent(client, batch[0]["id"]) and absent(client, batch[1]["id"])
    assert stored(client, batch[2]["id"]) == batch[2]


@pytest.mark.clause("5.6.10")
def test_batch_delete_missing_is_207(client: Client, uid: str) -> None:
    (thing,) = _things(uid, 1)
    create(client, thing)
    missing = eid("Nothing", uid)
    reply = client.post(BATCH + "/delete", [thing["id"], missing])
    errors = _errors(reply)
    assert reply.json["success"] == [thing["id"]]
    assert list(errors) == [missing] and errors[missing]["type"] == NOT_FOUND
    assert absent(client, thing["id"])


@pytest.mark.clause("5.6.10")
def test_batch_delete_the_same_id_twice(client: Client, uid: str) -> None:
    (thing,) = _things(uid, 1)
    create(client, thing)
    reply = client.post(BATCH + "/delete", [thing["id"], thing["id"]])
    errors = _errors(reply)
    assert reply.json["success"] == [thing["id"]] and errors[thing["id"]]["type"] == NOT_FOUND


@pytest.mark.clause("5.6.10")
def test_batch_delete_as_json_ld_needs_no_context(client: Client, uid: str) -> None:
    # ngsildclient posts the array of ids as application/ld+json
    batch = _things(uid, 2)
    assert client.post(BATCH + "/create", batch).status == 201
    reply = client.post(BATCH + "/delete", [e["id"] for e in batch],
                        content_type="application/ld+json")
    assert reply.status == 204
    assert all(absent(client, e["id"]) for e in batch)


@pytest.mark.clause("5.6.10")
def test_batch_delete_invalid_ids(client: Client, uid: str) -> None:
    (thing,) = _things(uid, 1)
    create(client, thing)
    reply = client.post(BATCH + "/delete", [thing["id"], "not a uri", 5])
    assert reply.status in (207, 400)
    if reply.status == 207:
        assert reply.json["success"] == [thing["id"]] and len(reply.json["errors"]) == 2
    else:
        assert is_problem(reply, 400, BAD_DATA, INVALID)
        assert stored(client, thing["id"]) == thing


# 5.6.20 Batch Entity Merge

@pytest.mark.clause("5.6.20")
def test_batch_merge(client: Client, uid: str) -> None:
    batch = _things(uid, 2, status=prop("ok", quality=prop(1)))
    assert client.post(BATCH + "/create", batch).status == 201
    reply = client.post(BATCH + "/merge", [entity(e["id"], status=prop("bad"), humidity=prop(2))
                                           for e in batch])
    assert reply.status == 204
    got = stored(client, batch[0]["id"])
    assert got["status"] == prop("bad", quality=prop(1))
    assert got["humidity"] == prop(2) and got["temperature"] == batch[0]["temperature"]


@pytest.mark.clause("5.6.20")
def test_batch_merge_missing_is_207(client: Client, uid: str) -> None:
    (thing,) = _things(uid, 1)
    create(client, thing)
    missing = eid("Nothing", uid)
    reply = client.post(BATCH + "/merge", [entity(thing["id"], humidity=prop(2)),
                                           entity(missing, humidity=prop(2))])
    errors = _errors(reply)
    assert reply.json["success"] == [thing["id"]]
    assert list(errors) == [missing] and errors[missing]["type"] == NOT_FOUND
    assert absent(client, missing)


@pytest.mark.clause("broker")
@pytest.mark.parametrize("op", ["upsert", "update", "merge", "delete"])
def test_other_batches_over_1000_are_400(client: Client, uid: str, op: str) -> None:
    (thing,) = _things(uid, 1)
    create(client, thing)
    if op == "delete":
        body: list[Any] = [thing["id"]] * 1001
    else:
        body = [entity(thing["id"], temperature=prop("changed"))] * 1001
    reply = client.post(f"{BATCH}/{op}", body)
    assert is_problem(reply, 400, BAD_DATA, INVALID)
    assert stored(client, thing["id"]) == thing


@pytest.mark.clause("6.3.5")
def test_batch_ld_json_entities_carry_their_own_context(client: Client, uid: str) -> None:
    one, two = (entity(eid("Car", uid, n), "Car", speed=prop(n)) for n in range(2))
    one["@context"] = {"speed": "https://example.org/one/speed"}
    two["@context"] = [{"speed": "https://example.org/two/speed"},
                       "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"]
    reply = client.post(BATCH + "/create", [one, two], content_type="application/ld+json")
    assert reply.status == 201
    assert "https://example.org/one/speed" in stored(client, one["id"])
    assert "https://example.org/two/speed" in stored(client, two["id"])


@pytest.mark.clause("6.3.5")
def test_batch_context_rules_apply_to_each_element(client: Client, uid: str) -> None:
    good, bad = (entity(eid("Car", uid, n), "Car", speed=prop(n)) for n in range(2))
    # application/json: an element with @context fails alone
    reply = client.post(BATCH + "/create", [good, {**bad, "@context": {"speed": "x:s"}}])
    assert _errors(reply)[bad["id"]]["type"] == BAD_DATA
    assert reply.json["success"] == [good["id"]] and absent(client, bad["id"])
    # application/ld+json: an element without @context fails alone
    third = entity(eid("Car", uid, 3), "Car", speed=prop(3))
    fourth = {**entity(eid("Car", uid, 4), "Car"), "@context": {"speed": "https://example.org/s"}}
    reply = client.post(BATCH + "/upsert", [third, fourth], content_type="application/ld+json")
    assert _errors(reply)[third["id"]]["type"] == BAD_DATA
    assert reply.json["success"] == [fourth["id"]] and absent(client, third["id"])


@pytest.mark.clause("5.6.7")
@pytest.mark.parametrize("op", ["create", "upsert", "update", "merge", "delete"])
def test_a_null_element_fails_the_whole_batch(client: Client, uid: str, op: str) -> None:
    (thing,) = _things(uid, 1)
    body = [thing["id"] if op == "delete" else thing, None]
    if op != "create":
        create(client, thing)
    reply = client.post(f"{BATCH}/{op}", body)
    assert is_problem(reply, 400, BAD_DATA)
    if op == "create":
        assert absent(client, thing["id"])
    else:
        assert stored(client, thing["id"]) == thing


@pytest.mark.clause("5.6.20")
def test_batch_merge_null_deletes(client: Client, uid: str) -> None:
    (thing,) = _things(uid, 1, humidity=prop(3))
    create(client, thing)
    reply = client.post(BATCH + "/merge", [entity(thing["id"], humidity=prop("urn:ngsi-ld:null"))])
    assert reply.status == 204
    assert "humidity" not in stored(client, thing["id"])


@pytest.mark.clause("5.6.8")
@pytest.mark.parametrize("path", ["/upsert?options=bogus", "/update?options=bogus"])
def test_batch_unknown_option_is_400(client: Client, uid: str, path: str) -> None:
    (thing,) = _things(uid, 1)
    create(client, thing)
    reply = client.post(BATCH + path, [entity(thing["id"], a=prop(1))])
    assert is_problem(reply, 400, BAD_DATA, INVALID)
    assert stored(client, thing["id"]) == thing


@pytest.mark.clause("5.6.8")
def test_upsert_recreates_a_deleted_entity(client: Client, uid: str) -> None:
    (thing,) = _things(uid, 1)
    create(client, thing)
    assert client.post(BATCH + "/delete", [thing["id"]]).status == 204
    reply = client.post(BATCH + "/upsert", [entity(thing["id"], b=prop(2))])
    assert reply.status == 201 and reply.json == [thing["id"]]
    assert stored(client, thing["id"]) == entity(thing["id"], b=prop(2))

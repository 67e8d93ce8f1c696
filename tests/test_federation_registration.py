"""Context Source Registrations: validation (5.9.2), update (5.9.3), retrieval view (5.10.1)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.federation import (
    DeliveryStatus,
    Mode,
    apply_fragment,
    parse_registration,
    registration_from_record,
    registration_record,
    render_registration,
)
from ngsi_ld.jsonld import compile_context, core_context_url

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SUITE = "https://ngsi-ld-test-suite/context#"
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"


def expand(term: str) -> str:
    return term if ":" in term else SUITE + term


def compact(iri: str) -> str:
    return iri[len(SUITE):] if iri.startswith(SUITE) else iri


def identity(name: str) -> str:
    return name


#: data/csourceRegistrations/context-source-registration.jsonld of the ETSI suite
ETSI = {
    "id": "urn:ngsi-ld:ContextSourceRegistration:1",
    "type": "ContextSourceRegistration",
    "information": [
        {
            "entities": [{"id": "urn:ngsi-ld:Vehicle:A456", "type": "Vehicle"}],
            "propertyNames": ["brandName", "speed"],
            "relationshipNames": ["isParked"],
        },
        {
            "entities": [
                {"idPattern": ".*downtown$", "type": "OffStreetParking"},
                {"idPattern": ".*47$", "type": "OffStreetParking"},
            ],
            "propertyNames": ["availableSpotNumber", "totalSpotNumber"],
            "relationshipNames": ["isNextToBuilding"],
        },
    ],
    "endpoint": "http://my.csource.org:1026",
}


def payload(**members: Any) -> dict[str, Any]:
    out = copy.deepcopy(ETSI)
    out.update(members)
    return {k: v for k, v in out.items() if v is not ...}


def parse(**members: Any) -> Any:
    return parse_registration(payload(**members), expand, NOW)


def test_the_etsi_registration_is_shown_back_as_written_with_its_defaults() -> None:
    registration = parse()
    assert registration.mode is Mode.INCLUSIVE and registration.operations is None
    # expectations/context-source-registration.json: what a retrieval answers
    assert render_registration(registration, compact) == {**ETSI, "mode": "inclusive",
                                                          "operations": ["federationOps"]}


def test_names_are_stored_expanded_and_shown_expanded_without_a_context() -> None:
    registration = parse()
    info = registration.information[0]
    assert info.entities is not None and info.entities[0].types == (SUITE + "Vehicle",)
    assert info.attributes == {SUITE + "brandName", SUITE + "speed", SUITE + "isParked"}
    shown = render_registration(registration, identity)
    assert shown["information"][0]["entities"][0]["type"] == SUITE + "Vehicle"
    assert shown["information"][1]["relationshipNames"] == [SUITE + "isNextToBuilding"]


def test_a_real_context_expands_and_compacts_the_default_vocabulary() -> None:
    # 033_05: a registration sent without a context uses the core context's @vocab
    core = compile_context(None, {}, core_context_url("1.8"))
    registration = parse_registration(
        {"id": "urn:x:r", "type": "ContextSourceRegistration", "endpoint": "http://s.org",
         "information": [{"entities": [{"type": "Building"}]}]},
        core.expand_term, NOW)
    assert registration.information[0].entities[0].types == (DEFAULT + "Building",)  # type: ignore[index]
    shown = render_registration(registration, core.compact_iri)
    assert shown["information"][0]["entities"][0]["type"] == "Building"


def test_an_array_of_types_stays_an_array() -> None:
    registration = parse(information=[{"entities": [{"type": ["Car", "Truck"]}]}])
    shown = render_registration(registration, compact)
    assert shown["information"] == [{"entities": [{"type": ["Car", "Truck"]}]}]


def test_a_missing_id_takes_the_one_the_broker_gives() -> None:
    with pytest.raises(BadRequestData, match="needs an id"):
        parse(id=...)
    made = parse_registration(payload(id=...), expand, NOW, default_id="urn:ngsi-ld:CSR:7")
    assert made.id == "urn:ngsi-ld:CSR:7"


@pytest.mark.parametrize("members, fragment", [
    ({"information": ...}, "needs information"),       # invalid-structure.jsonld
    ({"information": None}, "information cannot be null"),  # invalid.jsonld
    ({"endpoint": ...}, "needs endpoint"),
    ({"type": ...}, "needs type"),
    ({"type": "Registration"}, "type must be"),
    ({"id": "not a uri"}, "must be a URI"),
    ({"information": []}, "non-empty array"),
    ({"information": [{}]}, "needs entities, propertyNames or relationshipNames"),
    ({"information": [{"entities": [{"id": "urn:x:1"}]}]}, "needs a type"),
    ({"information": [{"entities": [{"type": "A", "idPattern": "(("}]}]}, "idPattern"),
    ({"information": [{"entities": [{"type": "A", "name": "x"}]}]}, "unknown members"),
    ({"information": [{"propertyNames": []}]}, "non-empty array"),
    ({"information": [{"propertyNames": ["a b"]}]}, "not an attribute name"),
    ({"endpoint": "ftp://my.csource.org"}, "http"),
    ({"endpoint": "my.csource.org:1026"}, "http"),
    ({"endpoint": "http://h:99999"}, "http"),
    ({"endpoint": "http://h/?x=1"}, "query"),
    ({"mode": "proxy"}, "mode must be"),
    ({"operations": []}, "non-empty array"),
    ({"operations": ["retrieveEverything"]}, "not an operation"),
    ({"scope": "Madrid"}, "scope"),
    ({"location": {"type": "Point", "coordinates": [200, 0]}}, "longitude"),
    ({"observationInterval": {"endAt": "2020-01-01T00:00:00Z"}}, "needs startAt"),
    ({"observationInterval": {"startAt": "2021-01-01T00:00:00Z",
                              "endAt": "2020-01-01T00:00:00Z"}}, "after startAt"),
    ({"managementInterval": {"startAt": "yesterday"}}, "DateTime"),
    ({"tenant": "a\nb"}, "NGSILD-Tenant"),
    ({"datasetId": ["not a uri"]}, "datasetId"),
    ({"registrationName": ""}, "non-empty string"),
    ({"refreshRate": 5}, "non-empty string"),
    ({"csourceProperty": None}, "cannot be null"),
])
def test_invalid_members_are_bad_request_data(members: dict[str, Any], fragment: str) -> None:
    with pytest.raises(BadRequestData, match=fragment):
        parse(**members)


@pytest.mark.parametrize("expires", [
    "2018-11-29T14:53:15Z",     # in the past (5.9.2.4)
    " 2035-11-29T14:53:15Z",    # past-expiration.jsonld: a leading space
    "2026-13-45T00:00:00Z",     # digit-shaped but impossible (422_08_04)
    "tomorrow",
])
def test_expires_at_must_be_a_future_date_time(expires: str) -> None:
    with pytest.raises(BadRequestData, match="expiresAt"):
        parse(expiresAt=expires)


def test_expires_at_is_kept_as_written() -> None:
    # 033_01_04 compares the retrieval with the payload as sent
    registration = parse(expiresAt="2035-11-29T14:53:15Z")
    assert render_registration(registration, compact)["expiresAt"] == "2035-11-29T14:53:15Z"
    assert not registration.expired(NOW)
    assert registration.expired(datetime(2036, 1, 1, tzinfo=UTC))


# 5234_01: Table 5.2.34-1
@pytest.mark.parametrize("management, ok", [
    ({"cacheDuration": "PT5M", "cooldown": 500, "timeout": 3000, "localOnly": True}, True),
    ({}, True),
    ("yes", False),
    ({"cacheDuration": "bogus"}, False),
    ({"cooldown": 0}, False),
    ({"timeout": -5}, False),
    ({"timeout": True}, False),
    ({"localOnly": "yes"}, False),
    ({"retries": 3}, False),
])
def test_management(management: Any, ok: bool) -> None:
    if ok:
        registration = parse(management=management)
        assert render_registration(registration, compact)["management"] == management
    else:
        with pytest.raises(BadRequestData, match="management"):
            parse(management=management)


def test_management_drives_timeout_cooldown_and_local_only() -> None:
    registration = parse(management={"timeout": 3000, "cooldown": 500, "localOnly": True})
    assert (registration.timeout_ms, registration.cooldown_ms) == (3000, 500)
    assert registration.acts_locally
    # 436_04 writes localOnly at the top of the registration
    assert parse(localOnly=True).acts_locally
    assert not parse().acts_locally
    with pytest.raises(BadRequestData, match="localOnly"):
        parse(localOnly="true")


# 033_12: Table 5.2.22-1, and what an HTTP header can carry
@pytest.mark.parametrize("pairs, ok", [
    ([{"key": "X-Auth-Token", "value": "abc"}], True),
    ([], True),
    ([{"key": "X-Custom", "value": 123}], False),
    ([{"key": "X-Custom", "value": ["a"]}], False),
    ([{"key": "X-Custom"}], False),
    ([{"key": 5, "value": "v"}], False),
    ([{"key": "X-Custom", "value": "v", "extra": 1}], False),
    ([{"key": "X Custom", "value": "v"}], False),
    ([{"key": "X-Custom", "value": "a\r\nInjected: yes"}], False),
    ([{"key": "contentType", "value": "application/ld+json"}], True),
    ([{"key": "contentType", "value": "text/plain"}], False),
    ([{"key": "accept", "value": "application/geo+json"}], True),
    ([{"key": "accept", "value": "text/html"}], False),
    ([{"key": "jsonldContext", "value": "https://example.org/ctx.jsonld"}], True),
    ([{"key": "jsonldContext", "value": "ctx.jsonld"}], False),
    ({"key": "X", "value": "v"}, False),
])
def test_context_source_info(pairs: Any, ok: bool) -> None:
    if ok:
        shown = render_registration(parse(contextSourceInfo=pairs), compact)
        assert shown["contextSourceInfo"] == pairs
    else:
        with pytest.raises(BadRequestData, match="contextSourceInfo"):
            parse(contextSourceInfo=pairs)


def test_exclusive_registrations_name_attributes_of_entities_by_id() -> None:
    speed = {"entities": [{"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle"}],
             "propertyNames": ["speed"]}
    assert parse(mode="exclusive", information=[speed]).mode is Mode.EXCLUSIVE
    # D012_01_exc: two entities by id in one RegistrationInfo
    two = {**speed, "entities": [{"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle"},
                                 {"id": "urn:ngsi-ld:Vehicle:2", "type": "Vehicle"}]}
    assert parse(mode="exclusive", information=[two]).mode is Mode.EXCLUSIVE
    # 436_03_01, 436_03_02, 436_03_03
    with pytest.raises(BadRequestData, match="names its attributes"):
        parse(mode="exclusive", information=[{"entities": speed["entities"]}])
    with pytest.raises(BadRequestData, match="by id"):
        parse(mode="exclusive", information=[{**speed, "entities": [{"type": "Vehicle"}]}])
    with pytest.raises(BadRequestData, match="by id"):
        parse(mode="exclusive", information=[
            {**speed, "entities": [{"idPattern": "urn:ngsi-ld:Vehicle:*", "type": "Vehicle"}]}])
    with pytest.raises(BadRequestData, match="by id"):
        parse(mode="exclusive", information=[{"propertyNames": ["speed"]}])


def test_auxiliary_registrations_only_serve_reads() -> None:
    # 5922_01_01 and 4.3.6.2
    with pytest.raises(BadRequestData, match="updateEntity"):
        parse(mode="auxiliary", operations=["updateEntity"])
    with pytest.raises(BadRequestData, match="redirectionOps"):
        parse(mode="auxiliary", operations=["retrieveOps", "redirectionOps"])
    assert parse(mode="auxiliary", operations=["retrieveOps"]).supports("queryEntity")
    assert parse(mode="auxiliary").supports("retrieveEntity")  # the default federationOps


def test_operations_are_shown_as_written_and_expanded_for_matching() -> None:
    # 033_01_02 compares the operations as sent
    written = ["queryEntity", "queryTemporal", "updateOps"]
    registration = parse(mode="redirect", operations=written)
    assert render_registration(registration, compact)["operations"] == written
    assert registration.supports("updateAttrs") and registration.supports("queryTemporal")
    assert not registration.supports("createEntity")
    assert parse(operations=["redirectionOps"]).supports("createEntity")
    assert not parse(operations=["redirectionOps"]).supports("createBatch")
    assert parse(operations=["updateAttrsTemporal"]).supports("updateAttrInstanceTemporal")


def test_additional_members_are_context_source_properties() -> None:
    registration = parse(csourceProperty1="aValue",
                         sourceType={"type": "Property", "value": "sensor"})
    assert registration.properties == {SUITE + "csourceProperty1": "aValue",
                                       SUITE + "sourceType": {"type": "Property",
                                                              "value": "sensor"}}
    shown = render_registration(registration, compact)
    assert shown["csourceProperty1"] == "aValue"


def test_every_member_round_trips_through_the_retrieval_view() -> None:
    members = {
        "registrationName": "district", "description": "lampposts of Central",
        "mode": "redirect", "operations": ["retrieveOps", "createEntity"],
        "contextSourceAlias": "urn:ngsi-ld:ContextSource:central", "tenant": "city",
        "scope": ["/HK/Central", "/HK"], "location": {"type": "Point", "coordinates": [114, 22]},
        "observationSpace": {"type": "Point", "coordinates": [114, 22]},
        "operationSpace": {"type": "Point", "coordinates": [114, 22]},
        "observationInterval": {"startAt": "2020-08-01T22:07:00Z"},
        "managementInterval": {"startAt": "2020-08-01T22:07:00Z",
                               "endAt": "2021-08-01T21:07:00Z"},
        "expiresAt": "2035-11-29T14:53:15Z", "refreshRate": "PT1M",
        "management": {"timeout": 500}, "localOnly": False,
        "contextSourceInfo": [{"key": "Authorization", "value": "Bearer x"}],
        "datasetId": ["@none", "urn:ngsi-ld:Dataset:a"], "extra": {"nested": [1, 2]},
    }
    written = payload(**members)
    assert render_registration(parse_registration(written, expand, NOW), compact) == written
    assert render_registration(parse(scope="/HK"), compact)["scope"] == "/HK"


def test_read_only_members_sent_by_a_client_are_ignored() -> None:
    registration = parse(status="failed", timesSent=42, createdAt="2000-01-01T00:00:00Z")
    assert registration.delivery == DeliveryStatus()
    shown = render_registration(registration, compact)
    assert "status" not in shown and "timesSent" not in shown and "createdAt" not in shown


def test_status_members_appear_once_a_distributed_operation_used_the_registration() -> None:
    registration = parse()
    used = registration.with_delivery(
        registration.delivery.succeeded("2026-01-01T00:00:00.000Z")
        .failed("2026-01-01T00:00:01.000Z"))
    shown = render_registration(used, compact)
    assert (shown["status"], shown["timesSent"], shown["timesFailed"]) == ("failed", 2, 1)
    assert shown["lastSuccess"] == "2026-01-01T00:00:00.000Z"
    assert shown["lastFailure"] == "2026-01-01T00:00:01.000Z"


def test_system_timestamps_are_shown_with_sys_attrs_only() -> None:
    registration = parse()
    assert registration.created_at == registration.modified_at == "2026-01-01T00:00:00.000Z"
    assert "createdAt" not in render_registration(registration, compact)
    shown = render_registration(registration, compact, sys_attrs=True)
    assert shown["createdAt"] == shown["modifiedAt"] == "2026-01-01T00:00:00.000Z"


def test_the_record_reads_back_as_the_same_registration() -> None:
    registration = parse(mode="auxiliary", csourceProperty1="aValue",
                         management={"cooldown": 10}).with_delivery(
        DeliveryStatus(times_sent=3, times_failed=1, last_failure="2026-01-01T00:00:00Z",
                       status="failed"))
    record = orjson.loads(orjson.dumps(registration_record(registration)))
    assert registration_from_record(record) == registration


def test_a_damaged_record_is_refused() -> None:
    record = registration_record(parse())
    record["mode"] = "sideways"
    with pytest.raises(BadRequestData):
        registration_from_record(record)


# 5.9.3 Update Context Source Registration
LATER = datetime(2026, 2, 1, tzinfo=UTC)


def test_a_fragment_replaces_members() -> None:
    # 034_01: the endpoint changes, the rest stays
    registration = parse(expiresAt="2035-11-29T14:53:15Z")
    updated = apply_fragment(registration, {"endpoint": "http://my.new.csource.org:1026"},
                             expand, LATER)
    assert updated.endpoint == "http://my.new.csource.org:1026"
    assert updated.information == registration.information
    assert updated.created_at == registration.created_at
    assert updated.modified_at == "2026-02-01T00:00:00.000Z"


def test_null_removes_an_optional_member_and_a_property() -> None:
    registration = parse(expiresAt="2035-11-29T14:53:15Z", mode="redirect", extra="x", keep=1)
    updated = apply_fragment(registration, {"expiresAt": None, "mode": None, "extra": None},
                             expand, LATER)
    assert updated.expires_at is None and updated.mode is Mode.INCLUSIVE
    assert updated.properties == {SUITE + "keep": 1}


@pytest.mark.parametrize("fragment, detail", [
    ({"type": "building"}, "type must be"),               # 034_02_02
    ({"information": None}, "information cannot be null"),  # 034_02_03
    ({"endpoint": None}, "mandatory"),
    ({"id": "urn:ngsi-ld:ContextSourceRegistration:other"}, "cannot be changed"),
    ({}, "at least one member"),
    ({"@context": ["https://example.org/ctx.jsonld"]}, "at least one member"),
    ([{"endpoint": "http://h"}], "JSON object"),
    ({"expiresAt": "2026-01-15T00:00:00Z"}, "in the past"),
    ({"mode": "auxiliary", "operations": ["createEntity"]}, "only serves reads"),
    ({"mode": "exclusive"}, "exclusive"),
])
def test_invalid_fragments(fragment: Any, detail: str) -> None:
    with pytest.raises(BadRequestData, match=detail):
        apply_fragment(parse(), fragment, expand, LATER)


def test_a_fragment_may_repeat_the_id_and_type() -> None:
    # 034_02 sends the whole registration, id included, as the fragment
    fragment = {**payload(), "endpoint": "http://other.org"}
    assert apply_fragment(parse(), fragment, expand, LATER).endpoint == "http://other.org"


def test_an_update_checks_the_rules_between_members_again() -> None:
    auxiliary = parse(mode="auxiliary")
    with pytest.raises(BadRequestData, match="only serves reads"):
        apply_fragment(auxiliary, {"operations": ["updateOps"]}, expand, LATER)


# -- properties ----------------------------------------------------------------------------

names = st.sampled_from(["speed", "brandName", "isParked", "https://example.org/p"])
entity_infos = st.builds(
    dict,
    type=st.one_of(st.sampled_from(["Vehicle", "Building"]),
                   st.lists(st.sampled_from(["Car", "Bus"]), min_size=1, max_size=2)),
    **{"id": st.sampled_from(["urn:x:1", "urn:x:2"])},
) | st.builds(dict, type=st.just("Vehicle"), idPattern=st.sampled_from([".*", "^urn:"]))
infos = st.fixed_dictionaries(
    {},
    optional={
        "entities": st.lists(entity_infos, min_size=1, max_size=2),
        "propertyNames": st.lists(names, min_size=1, max_size=2, unique=True),
        "relationshipNames": st.lists(names, min_size=1, max_size=2, unique=True),
    },
).filter(bool)
registrations = st.fixed_dictionaries(
    {"id": st.just("urn:x:r"), "type": st.just("ContextSourceRegistration"),
     "endpoint": st.sampled_from(["http://a.org", "https://b.org:8443/ngsi"]),
     "information": st.lists(infos, min_size=1, max_size=3)},
    optional={
        "mode": st.sampled_from(["inclusive", "redirect"]),
        "operations": st.lists(st.sampled_from(["retrieveOps", "createEntity", "updateOps",
                                                "federationOps"]), min_size=1, max_size=3),
        "tenant": st.sampled_from(["t1", "city"]),
        "scope": st.sampled_from(["/a", ["/a/b", "/c"]]),
        "custom": st.integers() | st.text(max_size=5),
        "management": st.fixed_dictionaries({}, optional={"timeout": st.integers(1, 10_000)}),
    },
)


@settings(max_examples=200)
@given(registrations)
def test_whatever_is_accepted_is_shown_back_and_stored_unchanged(raw: dict[str, Any]) -> None:
    registration = parse_registration(raw, expand, NOW)
    shown = render_registration(registration, compact)
    assert {k: v for k, v in shown.items() if k not in ("mode", "operations")} == {
        k: v for k, v in raw.items() if k not in ("mode", "operations")}
    assert shown["mode"] == raw.get("mode", "inclusive")
    assert shown["operations"] == raw.get("operations", ["federationOps"])
    assert registration_from_record(registration_record(registration)) == registration
    # a fragment repeating every member changes nothing but modifiedAt
    again = apply_fragment(registration, raw, expand, NOW)
    assert again == registration

"""Query Context Source Registrations (5.10.2): the ETSI 037 and 51024 cases, and properties."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.federation import (
    Registration,
    parse_registration,
    registration_query,
    trigger_reason,
)
from ngsi_ld.jsonld import ActiveContext, compile_context, core_context_url

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SUITE = "https://ngsi-ld-test-suite/context#"
#: the terms of the ETSI suite's context that these cases use
CONTEXT = {term: SUITE + term for term in (
    "Vehicle", "Building", "OffStreetParking", "brandName", "speed", "isParked", "name",
    "subCategory", "locatedAt", "availableSpotNumber", "totalSpotNumber", "isNextToBuilding",
    "csourceProperty1", "csourceProperty2", "sourceType")}


@pytest.fixture(scope="module")
def ctx() -> ActiveContext:
    return compile_context(CONTEXT, {}, core_context_url("1.8"))


def registration(ctx: ActiveContext, rid: str, **members: Any) -> Registration:
    raw = {"id": rid, "type": "ContextSourceRegistration", "endpoint": "http://my.csource.org:1026",
           "information": [{"entities": [{"type": "Building"}]}], **members}
    return parse_registration(raw, ctx.expand_term, NOW)


@pytest.fixture(scope="module")
def registrations(ctx: ActiveContext) -> dict[str, Registration]:
    return {
        # context-source-registration.jsonld
        "vehicles": registration(ctx, "urn:r:vehicles", information=[
            {"entities": [{"id": "urn:ngsi-ld:Vehicle:A456", "type": "Vehicle"}],
             "propertyNames": ["brandName", "speed"], "relationshipNames": ["isParked"]},
            {"entities": [{"idPattern": ".*downtown$", "type": "OffStreetParking"},
                          {"idPattern": ".*47$", "type": "OffStreetParking"}],
             "propertyNames": ["availableSpotNumber", "totalSpotNumber"],
             "relationshipNames": ["isNextToBuilding"]}]),
        # context-source-registration-detailed-information.jsonld
        "detailed": registration(ctx, "urn:r:detailed", information=[
            {"entities": [{"type": "Building"}], "propertyNames": ["name", "subCategory"],
             "relationshipNames": ["locatedAt"]}]),
        # context-source-registration-csourceProperty.jsonld
        "properties": registration(ctx, "urn:r:properties", csourceProperty1="aValue",
                                   csourceProperty2="anotherValue"),
        # context-source-registration-location.jsonld
        "located": registration(ctx, "urn:r:located",
                                location={"type": "Point", "coordinates": [-8.521, 41.2]}),
        # context-source-registration-with-only-properties-information.jsonld
        "anything": registration(ctx, "urn:r:anything",
                                 information=[{"propertyNames": ["name", "subCategory"]}]),
        # observationInterval.jsonld and managementInterval.jsonld
        "observed": registration(ctx, "urn:r:observed", observationInterval={
            "startAt": "2020-08-01T22:07:00Z", "endAt": "2021-08-01T21:07:00Z"}),
        "managed": registration(ctx, "urn:r:managed", managementInterval={
            "startAt": "2020-08-01T22:07:00Z", "endAt": "2021-08-01T21:07:00Z"}),
        # 51024_01
        "madrid": registration(ctx, "urn:r:madrid", endpoint="http://csf-a.example.com",
                               scope="/Madrid/Centro",
                               location={"type": "Point", "coordinates": [8.68, 49.41]}),
        "berlin": registration(ctx, "urn:r:berlin", endpoint="http://csf-b.example.com",
                               scope="/Berlin"),
    }


def selected(ctx: ActiveContext, registrations: dict[str, Registration], *,
             among: tuple[str, ...] | None = None, **params: str) -> list[str]:
    query = registration_query(params, ctx.expand_term)
    names = among or tuple(registrations)
    return [name for name in names if query.matches(registrations[name], NOW)]


def test_037_01_entity_types_and_attribute_names(ctx: ActiveContext, registrations: Any) -> None:
    among = ("vehicles", "detailed")
    assert selected(ctx, registrations, among=among, type="Building") == ["detailed"]
    assert selected(ctx, registrations, among=among, attrs="name") == ["detailed"]


def test_037_02_a_query_must_select_something(ctx: ActiveContext) -> None:
    with pytest.raises(BadRequestData, match="needs type, attrs"):
        registration_query({}, ctx.expand_term)
    with pytest.raises(BadRequestData):
        registration_query({"limit": "1"}, ctx.expand_term)


@pytest.mark.parametrize("params, detail", [
    ({"id": "invalidUri"}, "not a URI"),                 # 037_03_01
    ({"q": "(invalidQuery"}, "q"),                       # 037_03_02
    ({"type": "Building", "georel": "within"}, "also needs geometry, coordinates"),  # 037_03_03
    ({"type": "Building", "timerel": "before"}, "needs timeAt"),  # 037_03_04
    ({"type": "Building", "timerel": "during", "timeAt": "2020-01-01T00:00:00Z"}, "timerel"),
    ({"type": "Building", "timerel": "between", "timeAt": "2020-01-01T00:00:00Z"},
     "needs endTimeAt"),
    ({"type": "Building", "timeAt": "2020-01-01T00:00:00Z"}, "needs timerel"),
    ({"type": "Building", "timerel": "after", "timeAt": "2020-01-01T00:00:00Z",
      "timeproperty": "observationAt"}, "timeproperty"),
    ({"type": "Building", "geoproperty": "location"}, "needs georel"),
    ({"type": "Building", "idPattern": "(("}, "idPattern"),
    ({"csf": "(("}, "csf|q|position"),
    ({"type": "Building", "scopeQ": "Madrid"}, "scope"),
    ({"id": "urn:x:1,"}, "comma-separated"),
])
def test_037_03_invalid_parameters(ctx: ActiveContext, params: dict[str, str],
                                   detail: str) -> None:
    with pytest.raises(BadRequestData, match=detail):
        registration_query(params, ctx.expand_term)


def test_037_04_names_resolve_with_the_default_context(registrations: Any) -> None:
    core = compile_context(None, {}, core_context_url("1.8"))
    query = registration_query({"id": "urn:x:1", "type": SUITE + "Building"}, core.expand_term)
    assert query.matches(registrations["detailed"], NOW)
    assert not registration_query({"type": "Building"}, core.expand_term).matches(
        registrations["detailed"], NOW)


def test_037_05_entity_info_patterns_and_registrations_without_entities(
        ctx: ActiveContext, registrations: Any) -> None:
    found = selected(ctx, registrations, among=("vehicles", "anything", "detailed"),
                     type="OffStreetParking", idPattern=".*downtown$")
    assert found == ["vehicles", "anything"]


def test_037_06_type_and_attributes_hold_on_one_registration_info(
        ctx: ActiveContext, registrations: Any) -> None:
    assert selected(ctx, registrations, among=("vehicles", "detailed"),
                    type="Building", attrs="name,locatedAt") == ["detailed"]
    # brandName is registered, but for vehicles: not for buildings
    assert selected(ctx, registrations, among=("vehicles",), type="Building",
                    attrs="brandName") == []
    assert selected(ctx, registrations, among=("vehicles",), type="Vehicle",
                    attrs="brandName") == ["vehicles"]


@pytest.mark.parametrize("georel, geometry, coordinates, geoproperty", [
    ("near;maxDistance==2000", "Point", "[-8.503,41.202]", None),   # 037_07_01
    ("within", "Polygon", "[[[-13.503,47.202],[6.541,52.961],[20.37,44.653],[9.46,32.57],"
                          "[-15.23,21.37],[-13.503,47.202]]]", "location"),  # 037_07_02
])
def test_037_07_geo_queries_on_the_location(ctx: ActiveContext, registrations: Any, georel: str,
                                            geometry: str, coordinates: str,
                                            geoproperty: str | None) -> None:
    params = {"type": "Building", "georel": georel, "geometry": geometry,
              "coordinates": coordinates}
    if geoproperty:
        params["geoproperty"] = geoproperty
    assert selected(ctx, registrations, among=("located", "detailed", "berlin"),
                    **params) == ["located"]
    far = {**params, "georel": "near;maxDistance==10", "geometry": "Point",
           "coordinates": "[-8.503,41.202]"}
    assert selected(ctx, registrations, among=("located",), **far) == []
    other = {**params, "geoproperty": "observationSpace"}
    assert selected(ctx, registrations, among=("located",), **other) == []


def test_037_08_without_a_temporal_query_only_latest_information(
        ctx: ActiveContext, registrations: Any) -> None:
    assert selected(ctx, registrations, among=("detailed", "observed", "managed"),
                    type="Building") == ["detailed"]


@pytest.mark.parametrize("timeproperty, expected", [
    (None, "observed"), ("observedAt", "observed"),
    ("createdAt", "managed"), ("modifiedAt", "managed"), ("deletedAt", "managed"),
])
def test_037_09_the_temporal_query_meets_the_interval(
        ctx: ActiveContext, registrations: Any, timeproperty: str | None, expected: str) -> None:
    params = {"type": "Building", "timerel": "before", "timeAt": "2021-08-01T22:00:00Z"}
    if timeproperty:
        params["timeproperty"] = timeproperty
    among = ("observed", "managed", "detailed")
    assert selected(ctx, registrations, among=among, **params) == [expected]
    before = {**params, "timeAt": "2020-08-01T22:07:00Z"}  # the interval starts then
    assert selected(ctx, registrations, among=among, **before) == []
    after = {**params, "timerel": "after", "timeAt": "2021-08-01T21:07:00Z"}
    assert selected(ctx, registrations, among=among, **after) == []
    between = {**params, "timerel": "between", "timeAt": "2019-01-01T00:00:00Z",
               "endTimeAt": "2020-09-01T00:00:00Z"}
    assert selected(ctx, registrations, among=among, **between) == [expected]


def test_037_10_entity_ids_and_the_query_on_properties(ctx: ActiveContext,
                                                        registrations: Any) -> None:
    among = ("vehicles", "detailed", "properties")
    assert selected(ctx, registrations, among=among,
                    id="urn:ngsi-ld:Building:1,urn:ngsi-ld:Building:2") == ["detailed",
                                                                             "properties"]
    assert selected(ctx, registrations, among=among, id="urn:ngsi-ld:Vehicle:A456") == [
        "vehicles", "detailed", "properties"]
    assert selected(ctx, registrations, among=among, id="urn:ngsi-ld:OffStreetParking:47") == [
        "vehicles", "detailed", "properties"]
    assert selected(ctx, registrations, among=among, q='csourceProperty1=="aValue"') == [
        "properties"]
    assert selected(ctx, registrations, among=among, q='csourceProperty1=="other"') == []


def test_51024_csf_scope_and_geo_on_the_registration(ctx: ActiveContext,
                                                      registrations: Any) -> None:
    among = ("madrid", "berlin")
    assert selected(ctx, registrations, among=among, type="Building",
                    csf='endpoint=="http://csf-a.example.com"') == ["madrid"]
    assert selected(ctx, registrations, among=among, type="Building",
                    scopeQ="/Madrid/#") == ["madrid"]
    assert selected(ctx, registrations, among=among, type="Building",
                    georel="near;maxDistance==2000", geometry="Point",
                    coordinates="[8.68,49.41]") == ["madrid"]


def test_an_expired_registration_is_never_selected(ctx: ActiveContext) -> None:
    short = registration(ctx, "urn:r:short", expiresAt="2026-01-01T00:01:00Z")
    query = registration_query({"type": "Building"}, ctx.expand_term)
    assert query.matches(short, NOW)
    assert not query.matches(short, datetime(2026, 1, 1, 0, 1, tzinfo=UTC))


# -- properties ---------------------------------------------------------------------------------

TYPES = ("Vehicle", "Building", "OffStreetParking")
IDS = ("urn:ngsi-ld:Vehicle:A456", "urn:ngsi-ld:Building:1", "urn:ngsi-ld:X:downtown")
entity = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={"id": st.sampled_from(IDS), "idPattern": st.sampled_from([".*", "downtown$"])})
info = st.fixed_dictionaries({}, optional={
    "entities": st.lists(entity, min_size=1, max_size=3),
    "propertyNames": st.lists(st.sampled_from(["name", "speed"]), min_size=1, unique=True),
}).filter(bool)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(infos=st.lists(info, min_size=1, max_size=3), pick=st.data())
def test_a_query_for_what_an_info_registers_selects_the_registration(
        infos: list[dict[str, Any]], pick: st.DataObject) -> None:
    ctx = compile_context(CONTEXT, {}, core_context_url("1.8"))
    reg = registration(ctx, "urn:r:any", information=infos)
    chosen = pick.draw(st.sampled_from(infos))
    params: dict[str, str] = {}
    if "entities" in chosen:
        target = pick.draw(st.sampled_from(chosen["entities"]))
        params["type"] = target["type"]
        if "id" in target:
            params["id"] = target["id"]
    if "propertyNames" in chosen:
        params["attrs"] = chosen["propertyNames"][0]
    if not params:
        params["attrs"] = "name"
    assert registration_query(params, ctx.expand_term).matches(reg, NOW)
    # a query no information can answer (entities of two types at once, where each
    # EntityInfo has one; an attribute none registers) never selects it
    assert not registration_query({"type": "Building;Vehicle", "attrs": "unregistered"},
                                  ctx.expand_term).matches(reg, NOW)


def test_registration_subscriptions_are_told_why(ctx: ActiveContext) -> None:
    # 047_02 / 047_09: newly matching, updated, no longer matching
    queries = [registration_query({"type": "Building"}, ctx.expand_term),
               registration_query({"type": "Vehicle"}, ctx.expand_term)]
    building = registration(ctx, "urn:r:s")
    elsewhere = registration(ctx, "urn:r:s", information=[{"entities": [{"type": "Parking"}]}])
    assert trigger_reason(queries, None, building, NOW) == "newlyMatching"
    assert trigger_reason(queries, elsewhere, building, NOW) == "newlyMatching"
    assert trigger_reason(queries, building, building, NOW) == "updated"
    assert trigger_reason(queries, building, elsewhere, NOW) == "noLongerMatching"
    assert trigger_reason(queries, building, None, NOW) == "noLongerMatching"
    assert trigger_reason(queries, elsewhere, None, NOW) is None
    assert trigger_reason(queries, None, elsewhere, NOW) is None


def test_a_notification_carries_the_relevant_information(ctx: ActiveContext,
                                                         registrations: Any) -> None:
    # 047_03: only the matching RegistrationInfo elements
    query = registration_query({"type": "OffStreetParking"}, ctx.expand_term)
    relevant = query.relevant(registrations["vehicles"])
    assert relevant.information == registrations["vehicles"].information[1:]
    assert query.relevant(registrations["detailed"]) == registrations["detailed"]

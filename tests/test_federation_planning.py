"""Which registrations a distributed operation goes to, and what each source is asked
(4.3.6, 5.12), on the setups of the ETSI DistributedOperations tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import Conflict
from ngsi_ld.federation import (
    QUERY,
    RETRIEVE,
    Registration,
    Selection,
    conflict_probes,
    group_batch,
    local_conflict,
    parse_registration,
    plan_reads,
    plan_retrieve,
    plan_write,
    registration_conflict,
    write_outcome,
)
from ngsi_ld.federation.writes import PartResult
from ngsi_ld.query import TypeName, TypeOr, parse_geo_query, parse_q, parse_scope_q

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EX = "https://example.org/"
VEHICLE, BUILDING = EX + "Vehicle", EX + "Building"
SPEED, BRAND, PARKED = EX + "speed", EX + "brandName", EX + "isParked"
CAR = "urn:ngsi-ld:Vehicle:1"


def expand(term: str) -> str:
    return term if ":" in term else EX + term


def reg(rid: str, *, entities: list[dict[str, Any]] | None = None,
        attrs: list[str] | None = None, **members: Any) -> Registration:
    info: dict[str, Any] = {}
    if entities is not None:
        info["entities"] = entities
    if attrs is not None:
        info["propertyNames"] = attrs
    raw = {"id": rid, "type": "ContextSourceRegistration", "endpoint": f"http://{rid[6:]}.org",
           "information": [info or {"entities": [{"type": "Vehicle"}]}], **members}
    return parse_registration(raw, expand, NOW)


def vehicles(rid: str = "urn:r:inc", **members: Any) -> Registration:
    """context-source-registration-vehicle-complete.jsonld: every Vehicle."""
    return reg(rid, entities=[{"type": "Vehicle"}], **members)


def exclusive_speed(rid: str = "urn:r:exc", entity: str = CAR, **members: Any) -> Registration:
    """vehicle-speed-with-redirection-ops.jsonld made exclusive for one entity."""
    return reg(rid, entities=[{"id": entity, "type": "Vehicle"}], attrs=["speed"],
               mode="exclusive", operations=members.pop("operations", ["redirectionOps"]),
               **members)


def query(**fields: Any) -> Selection:
    return Selection(**fields)


def test_an_inclusive_query_goes_to_the_source_with_the_request_type() -> None:
    # D011_01_01_inc: GET /entities?type=Vehicle forwarded as it is
    plan = plan_reads([vehicles()], query(type_expr=TypeName(VEHICLE)), QUERY, now=NOW)
    (request,) = plan.requests
    assert (request.operation, request.type_expr, request.ids, request.attrs) == (
        "queryEntity", TypeName(VEHICLE), None, None)
    assert not request.auxiliary and not request.local_only
    assert plan.claims == ()


def test_an_exclusive_query_asks_for_the_registered_entity_and_attributes() -> None:
    # D011_01_exc: the forward is ?type=Vehicle&id=<id>&attrs=speed
    plan = plan_reads([exclusive_speed()], query(type_expr=TypeName(VEHICLE)), QUERY, now=NOW)
    (request,) = plan.requests
    assert (request.ids, request.attrs, request.type_expr) == ((CAR,), (SPEED,), TypeName(VEHICLE))
    local = {"id": CAR, "type": [VEHICLE], "attrs": {
        SPEED: [{"type": "Property", "value": 1}], BRAND: [{"type": "Property", "value": "b"}]}}
    # the broker's own speed of this car is not part of the answer; the source's is
    assert plan.visible(local)["attrs"].keys() == {BRAND}  # type: ignore[index]
    assert plan.visible(local, "urn:r:exc") is local
    assert plan.visible({**local, "id": "urn:ngsi-ld:Vehicle:2"})["attrs"].keys() == {  # type: ignore[index]
        SPEED, BRAND}


def test_a_retrieve_takes_the_operation_the_source_supports() -> None:
    # D010_03_inc: retrieveEntity, else a query by id and the registered type, else queryBatch
    for ops, expected in ((["retrieveEntity"], "retrieveEntity"),
                          (["queryEntity"], "queryEntity"),
                          (["queryBatch"], "queryBatch")):
        (request,) = plan_retrieve(CAR, [vehicles(operations=ops)], now=NOW).requests
        assert (request.operation, request.ids, request.type_expr) == (
            expected, (CAR,), TypeName(VEHICLE))


def test_a_source_not_taking_reads_is_not_asked() -> None:
    # 436_01_01: operations updateOps, no forwarded retrieve
    assert plan_retrieve(CAR, [vehicles(operations=["updateOps"])], now=NOW).requests == ()
    # a query is never sent to a source that only retrieves
    assert plan_reads([vehicles(operations=["retrieveEntity"])],
                      query(type_expr=TypeName(VEHICLE)), QUERY, now=NOW).requests == ()


def test_the_request_is_narrowed_to_the_registered_attributes() -> None:
    # 436_01_02: the registration covers speed only: attrs=speed, never brandName
    registration = reg("urn:r:speed", entities=[{"id": CAR, "type": "Vehicle"}], attrs=["speed"])
    (request,) = plan_retrieve(CAR, [registration], now=NOW).requests
    assert request.attrs == (SPEED,)
    wanted = Selection(attrs=frozenset({SPEED, BRAND}))
    (request,) = plan_retrieve(CAR, [registration], wanted, now=NOW).requests
    assert request.attrs == (SPEED,)
    assert plan_retrieve(CAR, [registration], Selection(attrs=frozenset({BRAND})),
                         now=NOW).requests == ()


def test_local_only_registrations_ask_for_local_data() -> None:
    # 436_04 (top-level localOnly) and 5.2.34 management.localOnly
    for members in ({"localOnly": True}, {"management": {"localOnly": True}}):
        (request,) = plan_retrieve(CAR, [vehicles(**members)], now=NOW).requests
        assert request.local_only


def test_every_redirect_source_is_asked_and_local_data_is_not_used() -> None:
    # D010_01_red: two redirect registrations for one entity
    regs = [reg(rid, entities=[{"id": CAR, "type": "Vehicle"}], mode="redirect",
                operations=["redirectionOps"]) for rid in ("urn:r:broker1", "urn:r:broker2")]
    plan = plan_retrieve(CAR, regs, now=NOW)
    assert [r.registration.id for r in plan.requests] == ["urn:r:broker1", "urn:r:broker2"]
    local = {"id": CAR, "type": [VEHICLE], "attrs": {BRAND: [{"type": "Property", "value": 1}]}}
    assert plan.visible(local) is None
    assert plan.visible(local, "urn:r:broker2") is local
    assert plan.visible({"id": CAR, "type": [VEHICLE], "attrs": {}}, "urn:r:broker1") is not None


def test_auxiliary_sources_are_marked() -> None:
    (request,) = plan_retrieve(CAR, [vehicles(mode="auxiliary")], now=NOW).requests
    assert request.auxiliary


@pytest.mark.parametrize("registration, selection", [
    # 6.3.18 Table 6.3.18-2: a source the request already went through
    (vehicles(contextSourceAlias="urn:ngsi-ld:ContextSource:b"), Selection()),
    # 5.2.9: a temporal registration for a latest-state request
    (vehicles(observationInterval={"startAt": "2020-01-01T00:00:00Z"}), Selection()),
    # 5724_01_02: csf gates the registrations considered
    (vehicles(sourceType={"type": "Property", "value": "sensor"}),
     Selection(csf=parse_q(f'{EX}sourceType=="archive"'))),
    # the scope of the source rules the query out
    (vehicles(scope="/Berlin"), Selection(scope_q=parse_scope_q("/Madrid/#"))),
    # the source holds entities far from the query point
    (vehicles(location={"type": "Point", "coordinates": [13.4, 52.5]}),
     Selection(geo_q=parse_geo_query("near;maxDistance==1000", "Point", "[2.35,48.85]"))),
    # other datasetIds
    (vehicles(datasetId=["urn:ngsi-ld:Dataset:a"]), Selection(dataset_ids=("urn:d:b",))),
    # an expired registration
    (vehicles(expiresAt="2026-01-01T00:00:01Z"), Selection()),
    # another type
    (vehicles(), Selection(type_expr=TypeName(BUILDING))),
    # an entity the registration does not name
    (reg("urn:r:one", entities=[{"id": "urn:x:2", "type": "Vehicle"}]), Selection()),
])
def test_registrations_that_cannot_hold_the_data_are_not_asked(
        registration: Registration, selection: Selection) -> None:
    later = datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)
    plan = plan_retrieve(CAR, [registration], selection, now=later,
                         visited={"urn:ngsi-ld:ContextSource:b"})
    assert plan.requests == ()


@pytest.mark.parametrize("registration, selection", [
    (vehicles(sourceType={"type": "Property", "value": "sensor"}),   # 5724_01_01
     Selection(csf=parse_q(f'{EX}sourceType=="sensor"'))),
    (vehicles(scope="/Madrid/Centro"), Selection(scope_q=parse_scope_q("/Madrid/#"))),
    (vehicles(), Selection(scope_q=parse_scope_q("/Madrid/#"))),    # no scope: may hold any
    (vehicles(), Selection(geo_q=parse_geo_query("near;maxDistance==1", "Point", "[2,48]"))),
    (vehicles(location={"type": "Point", "coordinates": [2.35, 48.85]}),
     Selection(geo_q=parse_geo_query("near;maxDistance==1000", "Point", "[2.351,48.851]"))),
    (vehicles(location={"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [5, 5], [0, 0]]]}),
     Selection(geo_q=parse_geo_query("within", "Polygon",
                                     "[[[1,1],[2,1],[2,2],[1,1]]]"))),
    (vehicles(datasetId=["@none", "urn:d:b"]), Selection(dataset_ids=("urn:d:b",))),
    (vehicles(contextSourceAlias="urn:ngsi-ld:ContextSource:c"), Selection()),
])
def test_registrations_that_may_hold_the_data_are_asked(
        registration: Registration, selection: Selection) -> None:
    plan = plan_retrieve(CAR, [registration], selection, now=NOW,
                         visited={"urn:ngsi-ld:ContextSource:b"})
    assert len(plan.requests) == 1


def test_pattern_registrations_pass_their_patterns_on() -> None:
    parkings = reg("urn:r:p", entities=[{"idPattern": ".*downtown$", "type": "Parking"},
                                        {"idPattern": ".*47$", "type": "Parking"}])
    (request,) = plan_reads([parkings], Selection(type_expr=TypeName(EX + "Parking")), QUERY,
                            now=NOW).requests
    assert request.id_pattern == "(?:.*downtown$)|(?:.*47$)"
    (request,) = plan_reads([parkings], Selection(attrs=frozenset({SPEED})), QUERY,
                            now=NOW).requests
    assert request.type_expr == TypeName(EX + "Parking")


def test_one_request_per_registration_information() -> None:
    both = parse_registration({
        "id": "urn:r:both", "type": "ContextSourceRegistration", "endpoint": "http://b.org",
        "information": [{"entities": [{"type": "Vehicle"}], "propertyNames": ["speed"]},
                        {"entities": [{"type": "Building"}]}]}, expand, NOW)
    selection = Selection(type_expr=TypeOr((TypeName(VEHICLE), TypeName(BUILDING))))
    requests = plan_reads([both], selection, QUERY, now=NOW).requests
    assert [r.attrs for r in requests] == [(SPEED,), None]


# -- writes (5.6.x.4) ------------------------------------------------------------------------


def test_inclusive_writes_are_done_locally_and_forwarded_if_supported() -> None:
    # D001_03_01_inc (redirectionOps includes createEntity) and 5614_01_02 (retrieveOps does not)
    plan = plan_write("createEntity", CAR, [vehicles(operations=["redirectionOps"])],
                      attrs=[BRAND], types=[VEHICLE], now=NOW)
    assert plan.local and plan.local_attrs == (BRAND,)
    assert [(f.registration.id, f.attrs) for f in plan.forwards] == [("urn:r:inc", (BRAND,))]
    plan = plan_write("createEntity", CAR, [vehicles(operations=["retrieveOps"])],
                      attrs=[BRAND], types=[VEHICLE], now=NOW)
    assert plan.local and plan.forwards == () and plan.refusals == ()


def test_an_exclusive_attribute_goes_to_its_source_only() -> None:
    # D004_01_exc / D003_01_exc: speed forwarded, never written locally
    plan = plan_write("updateAttrs", CAR, [exclusive_speed(), vehicles(
        operations=["redirectionOps"])], attrs=[SPEED, BRAND], now=NOW)
    assert plan.local_attrs == (BRAND,)
    assert {(f.registration.id, f.attrs) for f in plan.forwards} == {
        ("urn:r:exc", (SPEED,)), ("urn:r:inc", (BRAND,))}


def test_a_proxied_registration_without_the_operation_is_a_conflict() -> None:
    # D001_02_exc: the whole entity is speed, its source does not create: 409, nothing local
    plan = plan_write("createEntity", CAR, [exclusive_speed(operations=["queryEntity"])],
                      attrs=[SPEED], types=[VEHICLE], now=NOW)
    assert not plan.local and plan.forwards == ()
    (refusal,) = plan.refusals
    assert isinstance(refusal.error(), Conflict) and refusal.attrs == (SPEED,)
    # 5614_01_01: a redirect registration of the whole entity without createEntity
    redirect = vehicles(mode="redirect", operations=["retrieveOps"])
    plan = plan_write("createEntity", CAR, [redirect], attrs=[BRAND], types=[VEHICLE], now=NOW)
    assert (plan.local, plan.forwards, len(plan.refusals)) == (False, (), 1)


def test_redirected_writes_go_to_every_redirect_source_and_not_locally() -> None:
    # D002_01_red, D003_01_red: creation and appends
    regs = [reg(rid, entities=[{"id": CAR, "type": "Vehicle"}], mode="redirect",
                operations=["redirectionOps"]) for rid in ("urn:r:broker1", "urn:r:broker2")]
    for attrs in ([BRAND, PARKED], []):
        plan = plan_write("createEntity", CAR, regs, attrs=attrs, types=[VEHICLE], now=NOW)
        assert not plan.local
        assert [f.registration.id for f in plan.forwards] == ["urn:r:broker1", "urn:r:broker2"]


def test_deleting_an_entity() -> None:
    # D002_01_exc: forwarded to the exclusive source, deleted locally as well
    plan = plan_write("deleteEntity", CAR, [exclusive_speed()], now=NOW)
    assert plan.local and [f.attrs for f in plan.forwards] == [None]
    # D002_02_exc: the source does not delete: a refused part next to the local one (207)
    plan = plan_write("deleteEntity", CAR, [exclusive_speed(operations=["queryEntity"])],
                      now=NOW)
    assert plan.local and plan.forwards == () and len(plan.refusals) == 1 and plan.parts == 2
    # D002_01_red: the broker holds none of a redirected entity
    plan = plan_write("deleteEntity", CAR, [vehicles(mode="redirect",
                                                     operations=["redirectionOps"])], now=NOW)
    assert not plan.local and len(plan.forwards) == 1


def test_auxiliary_registrations_never_take_writes() -> None:
    # 436_02_01
    plan = plan_write("createEntity", CAR, [vehicles(mode="auxiliary")], attrs=[BRAND],
                      types=[VEHICLE], now=NOW)
    assert plan.local and plan.forwards == () and plan.refusals == ()


def test_a_type_only_registration_of_another_type_is_not_concerned() -> None:
    plan = plan_write("createEntity", CAR, [reg("urn:r:b", entities=[{"type": "Building"}],
                                                operations=["redirectionOps"])],
                      attrs=[BRAND], types=[VEHICLE], now=NOW)
    assert plan.forwards == ()


def test_a_batch_sends_one_request_per_source() -> None:
    # D012_01_exc: two entities, one exclusive source: one batch request
    cars = ["urn:ngsi-ld:Vehicle:1", "urn:ngsi-ld:Vehicle:2"]
    exclusive = reg("urn:r:exc", entities=[{"id": c, "type": "Vehicle"} for c in cars],
                    attrs=["speed"], mode="exclusive", operations=["createBatch"])
    plans = [plan_write("createBatch", c, [exclusive], attrs=[SPEED], types=[VEHICLE], now=NOW)
             for c in [*cars, "urn:ngsi-ld:Vehicle:3"]]
    (batch,) = group_batch(plans)
    assert batch.registration.id == "urn:r:exc"
    assert batch.items == ((0, (SPEED,)), (1, (SPEED,)))


def test_the_outcome_of_a_distributed_write() -> None:
    problem = {"type": "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists", "status": 409}
    assert write_outcome([PartResult(None), PartResult("urn:r:a")]).status == 0
    # a single part: its own error
    assert write_outcome([PartResult("urn:r:a", problem)]).status == 409
    # D001_03_01: local 409, source 201
    outcome = write_outcome([PartResult("urn:r:a"), PartResult(None, problem)])
    assert outcome.status == 207 and [p.registration_id for p in outcome.errors] == [None]
    # D001_03_02: both failed, both listed, the local part first
    outcome = write_outcome([PartResult("urn:r:a", problem), PartResult(None, problem)])
    assert outcome.status == 207 and [p.registration_id for p in outcome.errors] == [None,
                                                                                      "urn:r:a"]


# -- conflicts (4.3.6.3, 5.9.2.4) -----------------------------------------------------------


def test_exclusive_registrations_do_not_overlap_other_proxied_ones() -> None:
    # 436_03_04: a second exclusive or redirect registration for the same entity and attribute
    first = exclusive_speed("urn:r:first")
    assert isinstance(registration_conflict(exclusive_speed("urn:r:second"), [first]), Conflict)
    redirect = reg("urn:r:second", entities=[{"id": CAR, "type": "Vehicle"}], attrs=["speed"],
                   mode="redirect")
    assert isinstance(registration_conflict(redirect, [first]), Conflict)
    # the other way round too, and for a redirect of the whole type
    assert isinstance(registration_conflict(first, [redirect]), Conflict)
    assert isinstance(registration_conflict(first, [vehicles("urn:r:t", mode="redirect")]),
                      Conflict)
    # 436_03_05: redirect registrations may overlap each other
    assert registration_conflict(redirect, [reg("urn:r:third", mode="redirect",
                                                entities=[{"id": CAR, "type": "Vehicle"}])]) is None
    # other attributes, other entities, inclusive ones and the registration itself are fine
    assert registration_conflict(exclusive_speed("urn:r:2", "urn:x:other"), [first]) is None
    brand = reg("urn:r:b", entities=[{"id": CAR, "type": "Vehicle"}], attrs=["brandName"],
                mode="exclusive")
    assert registration_conflict(brand, [first]) is None
    assert registration_conflict(first, [vehicles(), first]) is None


def test_proxied_registrations_over_local_data_conflict() -> None:
    entity = {"id": CAR, "type": [VEHICLE], "attrs": {SPEED: [{"type": "Property", "value": 1}]}}
    # 5922_01_03: exclusive over an attribute the entity holds
    assert isinstance(local_conflict(exclusive_speed(), [entity]), Conflict)
    brand = reg("urn:r:b", entities=[{"id": CAR, "type": "Vehicle"}], attrs=["brandName"],
                mode="exclusive")
    assert local_conflict(brand, [entity]) is None
    # 5922_01_02: a redirect matching an existing entity
    redirect = reg("urn:r:r", entities=[{"id": CAR, "type": "Vehicle"}], mode="redirect")
    assert isinstance(local_conflict(redirect, [entity]), Conflict)
    assert local_conflict(vehicles(), [entity]) is None
    probes = conflict_probes(exclusive_speed())
    assert [(p.ids, p.attrs) for p in probes] == [((CAR,), (SPEED,))]
    assert conflict_probes(vehicles()) == []
    (probe,) = conflict_probes(vehicles(mode="redirect"))
    assert probe.type_expr == TypeName(VEHICLE) and probe.attrs is None


# -- the property: an exclusive registration's attributes go nowhere else -------------------

ATTRS = [SPEED, BRAND, PARKED, EX + "fuel"]
other_regs = st.lists(st.builds(
    lambda i, mode_ops, attrs: reg(f"urn:r:other{i}", entities=[{"type": "Vehicle"}],
                                   attrs=attrs, mode=mode_ops[0], operations=mode_ops[1]),
    st.integers(0, 1000),
    st.sampled_from([("inclusive", ["redirectionOps"]), ("inclusive", ["retrieveOps"]),
                     ("auxiliary", ["retrieveOps"]), ("auxiliary", ["federationOps"])]),
    st.one_of(st.none(), st.lists(st.sampled_from(["speed", "brandName", "fuel"]), min_size=1,
                                  unique=True)),
), max_size=4, unique_by=lambda r: r.id)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(others=other_regs, attrs=st.lists(st.sampled_from(ATTRS), min_size=1, unique=True),
       supported=st.booleans(), operation=st.sampled_from(["updateAttrs", "appendAttrs",
                                                           "createEntity", "replaceAttrs"]))
def test_an_exclusive_attribute_is_never_written_elsewhere(
        others: list[Registration], attrs: list[str], supported: bool, operation: str) -> None:
    exclusive = exclusive_speed(operations=["redirectionOps"] if supported else ["queryEntity"])
    plan = plan_write(operation, CAR, [*others, exclusive], attrs=attrs, now=NOW)
    assert SPEED not in (plan.local_attrs or ())
    for forward in plan.forwards:
        if forward.registration.id != exclusive.id:
            assert SPEED not in (forward.attrs or ())
    owner = [f for f in (*plan.forwards, *plan.refusals) if f.registration.id == exclusive.id]
    assert (SPEED in attrs) == bool(owner)
    # and every other attribute is still written by someone
    for attr in set(attrs) - {SPEED}:
        assert attr in (plan.local_attrs or ())


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(others=other_regs, attrs=st.one_of(st.none(), st.lists(st.sampled_from(ATTRS),
                                                             min_size=1, unique=True)))
def test_an_exclusive_attribute_is_read_from_its_source_only(
        others: list[Registration], attrs: list[str] | None) -> None:
    exclusive = exclusive_speed()
    selection = Selection(attrs=None if attrs is None else frozenset(attrs))
    plan = plan_retrieve(CAR, [*others, exclusive], selection, now=NOW)
    entity = {"id": CAR, "type": [VEHICLE],
              "attrs": {name: [{"type": "Property", "value": 1}] for name in ATTRS}}
    for source in ["@none", *(r.id for r in others)]:
        shown = plan.visible(entity, source)
        assert shown is not None and SPEED not in shown["attrs"]
    assert plan.visible(entity, exclusive.id) is entity
    asked = [r for r in plan.requests if r.registration.id == exclusive.id]
    assert bool(asked) == (attrs is None or SPEED in attrs)
    assert RETRIEVE[0] == "retrieveEntity"

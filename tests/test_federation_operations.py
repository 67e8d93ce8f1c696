"""The operations of clause 4.20 and ISO 8601 durations."""

from __future__ import annotations

import pytest

from ngsi_ld.errors import BadRequestData
from ngsi_ld.federation import GROUPS, OPERATIONS, duration_seconds, is_duration
from ngsi_ld.federation import supported_operations as supported
from ngsi_ld.federation.operations import CONSUMPTION, PROVISION, writes


def test_the_default_is_federation_ops() -> None:
    assert supported(None) == GROUPS["federationOps"]
    assert {"retrieveEntity", "queryEntity", "queryBatch", "createSubscription"} <= supported(None)
    assert not supported(None) & PROVISION


def test_groups_expand_to_table_4_20_2() -> None:
    assert supported(["retrieveOps"]) == {"retrieveEntity", "queryEntity"}
    assert supported(["updateOps"]) == {"updateEntity", "updateAttrs", "replaceEntity",
                                        "replaceAttrs"}
    # the ETSI D001/D002 notes: redirectionOps includes createEntity and deleteEntity...
    assert {"createEntity", "deleteEntity", "retrieveEntity", "purgeEntity"} <= supported(
        ["redirectionOps"])
    # ...but no batch operation (the batch fixtures list them next to it)
    assert not supported(["redirectionOps"]) & {"createBatch", "upsertBatch", "deleteBatch"}
    assert supported(["associationOps"]) == GROUPS["federationOps"] - {
        "retrieveEntityMap", "updateEntityMap", "deleteEntityMap", "createEntityMapQueryEntity"}
    assert supported(["queryEntity", "retrieveOps", "createBatch"]) == {
        "queryEntity", "retrieveEntity", "createBatch"}
    assert all(group <= OPERATIONS for group in GROUPS.values())


def test_unknown_names_are_refused_and_old_names_read() -> None:
    with pytest.raises(BadRequestData, match="retrieveEverything"):
        supported(["retrieveEverything"])
    assert supported(["updateAttrsTemporal"]) == {"updateAttrInstanceTemporal"}


def test_writes_are_the_provision_operations_and_the_groups_holding_one() -> None:
    assert writes(["retrieveOps", "federationOps", "queryTemporal"]) == []
    assert writes(["updateOps", "retrieveOps", "deleteTemporal", "redirectionOps"]) == [
        "updateOps", "deleteTemporal", "redirectionOps"]
    assert not CONSUMPTION & PROVISION


@pytest.mark.parametrize("text, seconds", [
    ("PT5M", 300), ("PT0.5S", 0.5), ("PT1H30M", 5400), ("P1D", 86400), ("P1W", 604800),
    ("P1Y", 365 * 86400), ("P1M", 30 * 86400), ("P1DT1S", 86401), ("PT1,5S", 1.5),
    ("P0D", 0),
])
def test_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds
    assert is_duration(text)


@pytest.mark.parametrize("text", ["bogus", "P", "PT", "5M", "PT1.5M30S", "P1H", "PT-1S", "",
                                  " PT1S", 5, None])
def test_invalid_durations(text: object) -> None:
    with pytest.raises(BadRequestData, match="duration"):
        duration_seconds(text, what="cacheDuration duration")
    assert not is_duration(text)


def test_the_broker_operations_have_their_table_4_20_names() -> None:
    from ngsi_ld.federation.operations import TABLE_4_20, table_operation
    from ngsi_ld.parameters import OPERATIONS as BROKER

    assert set(TABLE_4_20) <= set(BROKER)
    assert set(TABLE_4_20.values()) <= OPERATIONS
    assert table_operation("updateAttributes") == "updateEntity"  # PATCH .../attrs
    assert table_operation("updateAttribute") == "updateAttrs"    # PATCH .../attrs/{attrId}
    assert table_operation("queryEntitiesPost") == "queryBatch"
    assert table_operation("retrieveTypes", details=True) == "retrieveEntityTypeDetails"
    assert table_operation("retrieveAttributes", details=True) == "retrieveAttrTypeDetails"
    assert table_operation("retrieveType", details=True) == "retrieveEntityTypeInfo"
    assert table_operation("addContext") is None

"""ngsi_ld.snapshots: the Snapshot document (5.2.41), its updates (5.16.4), purges (5.16.7)."""

from __future__ import annotations

from typing import Any

import pytest

from ngsi_ld.errors import BadRequestData
from ngsi_ld.snapshots import apply_fragment, new_snapshot, purge_query, selected_by

T0 = "2026-01-01T00:00:00.000Z"
QUERY = {"type": "Query", "entities": [{"type": "Vehicle"}], "q": "speed>50"}


def test_a_new_snapshot_is_preparing_with_the_default_priority() -> None:
    snapshot = new_snapshot({"type": "Snapshot", "snapshotQueries": [QUERY]}, "urn:s:1", T0)
    assert snapshot == {"id": "urn:s:1", "type": "Snapshot", "snapshotQueries": [QUERY],
                        "snapshotPriority": 5, "snapshotStatus": "preparing",
                        "createdAt": T0, "lastUsedAt": T0}


@pytest.mark.parametrize("body", [
    {"type": "Snapshot"},
    {"type": "Snapshot", "snapshotQueries": []},
    {"type": "Snapshot", "snapshotQueries": [{"entities": [{"type": "V"}]}]},
    {"type": "Snapshot", "snapshotQueries": [{**QUERY, "temporalQ": {"timerel": "after"}}]},
    {"type": "Snapshot", "snapshotQueries": [QUERY], "snapshotPriority": "high"},
    {"type": "Snapshot", "snapshotQueries": [QUERY], "snapshotStatus": "success"},
    {"type": "Subscription", "snapshotQueries": [QUERY]},
    [QUERY],
])
def test_invalid_snapshots(body: Any) -> None:
    with pytest.raises(BadRequestData):
        new_snapshot(body, "urn:s:1", T0)


def test_only_the_priority_and_expiry_can_change() -> None:
    snapshot = new_snapshot({"snapshotQueries": [QUERY]}, "urn:s:1", T0)
    assert apply_fragment(snapshot, {"snapshotPriority": 2})["snapshotPriority"] == 2
    for fragment in ({"snapshotQueries": []}, {"snapshotStatus": "failed"}, {"id": "urn:s:2"},
                     {"snapshotPriority": 2.5}):
        with pytest.raises(BadRequestData):
            apply_fragment(snapshot, fragment)


def test_a_purge_selects_on_snapshot_members_only() -> None:
    low = {**new_snapshot({"snapshotQueries": [QUERY]}, "urn:s:1", T0), "snapshotPriority": 2}
    high = {**low, "id": "urn:s:2", "snapshotPriority": 9}
    query = purge_query("snapshotPriority<5")
    assert [s["id"] for s in (low, high) if selected_by(query, s)] == ["urn:s:1"]
    for text in (None, "", "speed>50", "snapshotPriority<"):
        with pytest.raises(BadRequestData):
            purge_query(text)

"""The storage contract, temporal part: what every backend's history must do.

Not collected by itself: tests/test_storage_contract.py (memory, SQLite) and
tests/test_mongo_contract.py (MongoDB) subclass :class:`TemporalContract` with a
``store`` fixture.  The pure package is the oracle: what a store reads back and
aggregates must be what :func:`ngsi_ld.temporal.select`, :func:`paginate` and
:func:`aggregate` make of every recorded instance.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngsi_ld.temporal import (
    SCOPE,
    Aggregation,
    History,
    InstanceIds,
    TemporalQuery,
    aggregate,
    format_micros,
    history_of_write,
    paginate,
    parse_duration,
    recorder_at,
    select,
    temporal_history,
    to_micros,
)
from storage import Entity, Store
from storage.temporal import TemporalHistory

P = "https://example.org/p"
Q = "https://example.org/q"
T = "https://example.org/T"
DAY = "2026-01-01T00:00:00Z"
START = to_micros(DAY)


def fresh_tenant() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def history(store: Store) -> TemporalHistory:
    found = store.history
    assert found is not None, "this backend keeps a temporal history"
    return found


def reading(entity_id: str, value: Any, minute: int, name: str = P,
            dataset_id: str | None = None) -> Entity:
    inst: dict[str, Any] = {"type": "Property", "value": value,
                            "observedAt": format_micros(START + minute * 60_000_000),
                            "createdAt": DAY, "modifiedAt": DAY}
    if dataset_id is not None:
        inst["datasetId"] = dataset_id
    return {"id": entity_id, "type": [T], "createdAt": DAY, "modifiedAt": DAY,
            "attrs": {name: [inst]}}


def recorder(now: str = DAY, *, standard: bool = True) -> Any:
    """The broker's recorder (``recorder_at``: SQLite encodes its rows without Instances),
    or (``standard=False``) a plain function giving the same Histories."""
    if standard:
        return recorder_at(now)

    def record(before: Entity | None, after: Entity | None, new_id: InstanceIds) -> History | None:
        return history_of_write(before, after, now, new_id)

    return record


async def write(store: Store, tenant: str, entity: Entity | None, entity_id: str,
                standard: bool = True) -> None:
    await store.modify(tenant, entity_id, lambda current: entity,
                       record=recorder(standard=standard))


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return bool(a == b)


class TemporalContract:
    """The temporal history every backend keeps (docs/temporal.md 3.6)."""

    @pytest.mark.parametrize("standard", [True, False])
    async def test_writes_record_instances_and_deletions(self, store: Store,
                                                         standard: bool) -> None:
        tenant = fresh_tenant()
        for minute, value in enumerate([1, 2.5, "x"]):
            await write(store, tenant, reading("urn:e:1", value, minute), "urn:e:1", standard)
        await write(store, tenant, None, "urn:e:1", standard)  # deleted: its history stays
        (record,) = await history(store).temporal_entities(tenant)
        assert record.entity_id == "urn:e:1" and record.types == (T,)
        assert record.deleted_at == DAY
        found = (await history(store).read_history(
            tenant, ["urn:e:1"], None, TemporalQuery(timeproperty="deletedAt")))["urn:e:1"]
        values = sorted((i.observed_at or "", repr(i.value)) for i in found)
        assert [v for _, v in values] == ["'urn:ngsi-ld:null'", "1", "2.5", "'x'"]
        assert all(isinstance(i.value, int) for i in found if i.value == 1)
        deletion = [i for i in found if i.is_deletion]
        assert len(deletion) == 1 and deletion[0].deleted_at == DAY

    async def test_a_refused_write_records_nothing(self, store: Store) -> None:
        tenant = fresh_tenant()
        await write(store, tenant, reading("urn:e:1", 1, 0), "urn:e:1")

        def refuse(current: Entity | None) -> Entity | None:
            raise ValueError("refused")

        outcomes = await store.modify_many(
            tenant, [("urn:e:1", refuse), ("urn:e:2", lambda c: reading("urn:e:2", 5, 1))],
            record=recorder())
        assert outcomes[0].error is not None and outcomes[1].change is not None
        found = await history(store).read_history(tenant, ["urn:e:1", "urn:e:2"], None,
                                                  TemporalQuery())
        assert [i.value for i in found["urn:e:1"]] == [1]
        assert [i.value for i in found["urn:e:2"]] == [5]

    async def test_posted_history_is_written_with_the_entity_or_not_at_all(
        self, store: Store
    ) -> None:
        # the temporal POST (5.6.11): its instances and the current Entity in one write
        tenant = fresh_tenant()
        h = history(store)
        body = {"id": "urn:e:1", "type": [T], "attrs": {P: [
            {"type": "Property", "value": 7, "observedAt": "2020-08-01T12:03:00Z"}]}}

        def refuse(current: Entity | None) -> Entity | None:
            raise ValueError("refused")

        posted = temporal_history(body, DAY, h.new_instance_id)
        with pytest.raises(ValueError, match="refused"):
            await store.modify(tenant, "urn:e:1", refuse, posted=(posted,))
        assert await h.temporal_entities(tenant, ids=["urn:e:1"]) == []
        assert await store.get_entity(tenant, "urn:e:1") is None
        await store.modify(tenant, "urn:e:1", lambda c: reading("urn:e:1", 7, 3),
                           posted=(posted,))
        found = await h.read_history(tenant, ["urn:e:1"], None, TemporalQuery())
        assert [i.value for i in found["urn:e:1"]] == [7]  # posted, not recorded again
        assert await store.get_entity(tenant, "urn:e:1") is not None

    @pytest.mark.parametrize("standard", [True, False])
    async def test_a_batch_writing_one_entity_twice_records_both_writes(
        self, store: Store, standard: bool
    ) -> None:
        tenant = fresh_tenant()
        outcomes = await store.modify_many(tenant, [
            ("urn:e:1", lambda c: reading("urn:e:1", 1, 0)),
            ("urn:e:2", lambda c: {**reading("urn:e:2", 2, 0), "type": ["urn:U"]}),
            ("urn:e:1", lambda c: {**reading("urn:e:1", 3, 1, name=Q), "type": [T, "urn:U"]}),
        ], record=recorder(standard=standard))
        assert all(o.change is not None for o in outcomes)
        h = history(store)
        records = {r.entity_id: r for r in await h.temporal_entities(tenant)}
        assert set(records["urn:e:1"].types) == {T, "urn:U"}
        assert records["urn:e:2"].types == ("urn:U",)
        assert [r.entity_id for r in await h.temporal_entities(tenant, types=["urn:U"])] \
            == ["urn:e:1", "urn:e:2"]
        found = await h.read_history(tenant, ["urn:e:1"], None,
                                     TemporalQuery(timeproperty="modifiedAt"))
        # P written then removed (a deletion record), Q added
        assert sorted((i.attribute, repr(i.value)) for i in found["urn:e:1"]) == [
            (P, "'urn:ngsi-ld:null'"), (P, "1"), (Q, "3")]

    async def test_types_and_ids_select_records(self, store: Store) -> None:
        tenant = fresh_tenant()
        await write(store, tenant, reading("urn:e:1", 1, 0), "urn:e:1")
        other = {**reading("urn:e:2", 1, 0), "type": ["urn:U"]}
        await write(store, tenant, other, "urn:e:2")
        h = history(store)
        assert [r.entity_id for r in await h.temporal_entities(tenant, types=[T])] == ["urn:e:1"]
        assert [r.entity_id for r in await h.temporal_entities(tenant, ids=["urn:e:2", "x"])] \
            == ["urn:e:2"]
        assert await h.temporal_entities(fresh_tenant()) == []

    async def test_upsert_replaces_by_observed_at_and_keeps_the_instance_id(
        self, store: Store
    ) -> None:
        tenant = fresh_tenant()
        h = history(store)
        body = {"id": "urn:e:1", "type": [T], "attrs": {P: [
            {"type": "Property", "value": 120, "observedAt": "2020-08-01T12:03:00Z"},
            {"type": "Property", "value": 80, "observedAt": "2020-08-01T12:05:00Z"}]}}
        await h.add_history(tenant, [temporal_history(body, DAY, h.new_instance_id)])
        first = (await h.read_history(tenant, ["urn:e:1"], None, TemporalQuery()))["urn:e:1"]
        fix = {"id": "urn:e:1", "attrs": {P: [
            {"type": "Property", "value": 121, "observedAt": "2020-08-01T12:03:00.000Z"}]}}
        await h.add_history(tenant, [temporal_history(fix, DAY, h.new_instance_id)])
        after = (await h.read_history(tenant, ["urn:e:1"], None, TemporalQuery()))["urn:e:1"]
        by_time = {to_micros(i.observed_at or ""): i for i in after}
        assert len(after) == 2
        old = next(i for i in first if i.value == 120)
        new = by_time[to_micros("2020-08-01T12:03:00Z")]
        assert new.value == 121 and new.instance_id == old.instance_id

    async def test_one_request_with_two_instances_of_one_key_keeps_the_later(
        self, store: Store
    ) -> None:
        """5.6.11: instances of one key are one observation, in one request as across two
        (found by tests/test_store_agreement.py: SQLite and MongoDB kept both)."""
        tenant = fresh_tenant()
        h = history(store)
        at = "2020-08-01T12:03:00Z"
        body = {"id": "urn:e:1", "type": [T], "attrs": {P: [
            {"type": "Property", "value": 1, "observedAt": at},
            {"type": "Property", "value": 5, "observedAt": "2020-08-01T12:04:00Z"},
            {"type": "Property", "value": 2, "observedAt": "2020-08-01T12:03:00.000Z"}]}}
        for _ in range(2):  # into an empty history, then onto the stored instances
            await h.add_history(tenant, [temporal_history(body, DAY, h.new_instance_id)])
            found = (await h.read_history(tenant, ["urn:e:1"], None, TemporalQuery()))["urn:e:1"]
            observed = sorted((to_micros(i.observed_at or ""), i.value) for i in found)
            assert [value for _, value in observed] == [2, 5]

    async def test_of_several_stored_instances_of_one_key_the_newest_is_replaced(
        self, store: Store
    ) -> None:
        """5.6.11 onto two ordinary writes observed at one instant (a merge keeps the
        attribute's observedAt): the newest is corrected, the older stays (found by
        tests/test_store_agreement.py: SQLite replaced the older, MongoDB either)."""
        tenant = fresh_tenant()
        h = history(store)
        for value in (1, 2):
            await write(store, tenant, reading("urn:e:1", value, 3), "urn:e:1")
        stored = (await h.read_history(tenant, ["urn:e:1"], None, TemporalQuery()))["urn:e:1"]
        newest = next(i for i in stored if i.value == 2)
        body = {"id": "urn:e:1", "type": [T], "attrs": {P: [
            {"type": "Property", "value": 9, "observedAt": newest.observed_at}]}}
        await h.add_history(tenant, [temporal_history(body, DAY, h.new_instance_id)])
        found = (await h.read_history(tenant, ["urn:e:1"], None, TemporalQuery()))["urn:e:1"]
        assert sorted(i.value for i in found) == [1, 9], found
        assert next(i for i in found if i.value == 9).instance_id == newest.instance_id

    async def test_instances_are_found_patched_and_deleted_by_id(self, store: Store) -> None:
        tenant = fresh_tenant()
        h = history(store)
        for minute in range(3):
            await write(store, tenant, reading("urn:e:1", minute, minute), "urn:e:1")
        found = (await h.read_history(tenant, ["urn:e:1"], None, TemporalQuery()))["urn:e:1"]
        target = found[1]
        assert await h.history_instance(tenant, "urn:e:1", P, target.instance_id) == target
        assert await h.history_instance(tenant, "urn:e:1", Q, target.instance_id) is None
        assert await h.history_instance(tenant, "urn:e:1", P, "urn:other:1") is None
        assert await h.replace_history_instance(tenant, "urn:e:1", replace(target, value=42))
        assert (await h.history_instance(tenant, "urn:e:1", P, target.instance_id)).value == 42
        assert await h.delete_history_instance(tenant, "urn:e:1", P, target.instance_id)
        assert not await h.delete_history_instance(tenant, "urn:e:1", P, target.instance_id)
        left = (await h.read_history(tenant, ["urn:e:1"], None, TemporalQuery()))["urn:e:1"]
        assert sorted(i.value for i in left) == [0, 2]

    async def test_attribute_deletion_by_dataset_and_entity_deletion(self, store: Store) -> None:
        tenant = fresh_tenant()
        h = history(store)
        entity = reading("urn:e:1", 1, 0)
        entity["attrs"][P].append({"type": "Property", "value": 2, "datasetId": "urn:d:1",
                                   "observedAt": DAY})
        entity["attrs"][Q] = [{"type": "Property", "value": 3, "observedAt": DAY}]
        await write(store, tenant, entity, "urn:e:1")
        assert await h.delete_history_attribute(tenant, "urn:e:1", P, None, False) == 1
        left = (await h.read_history(tenant, ["urn:e:1"], [P], TemporalQuery()))["urn:e:1"]
        assert [(i.attribute, i.dataset_id) for i in left] == [(P, "urn:d:1")]
        assert await h.delete_history_attribute(tenant, "urn:e:1", P, None, True) == 1
        assert await h.delete_history(tenant, "urn:e:1")
        assert not await h.delete_history(tenant, "urn:e:1")
        assert await h.temporal_entities(tenant) == []

    async def test_retention_drops_old_instances(self, store: Store) -> None:
        tenant = fresh_tenant()
        for minute in range(5):
            await write(store, tenant, reading("urn:e:1", minute, minute), "urn:e:1")
        removed = await history(store).drop_history_before(START + 2 * 60_000_000)
        # how many the sweep itself removed: MongoDB's TTL index may have been first
        assert removed in (0, 2)
        left = (await history(store).read_history(tenant, ["urn:e:1"], None,
                                                  TemporalQuery()))["urn:e:1"]
        assert sorted(i.value for i in left) == [2, 3, 4]

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(
        points=st.lists(st.tuples(
            st.integers(0, 3),  # entity
            st.sampled_from([P, Q]),
            st.integers(0, 600),  # minute
            st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False),
                      st.booleans(), st.text(max_size=3)),
            st.sampled_from([None, "urn:d:1"]),
        ), min_size=1, max_size=40),
        methods=st.lists(st.sampled_from(["totalCount", "distinctCount", "sum", "avg", "min",
                                          "max", "stddev", "sumsq"]),
                         min_size=1, max_size=4, unique=True),
        period=st.sampled_from(["PT7M", "PT1H", "PT0S", "P1D"]),
        window=st.sampled_from([("between", 30, 400), ("after", 0, None), ("after", 90, None),
                                ("before", 300, None)]),
        numeric=st.booleans(),
    )
    async def test_aggregation_matches_the_oracle(
        self, store: Store, points: list[tuple[int, str, int, Any, str | None]],
        methods: list[Any], period: str, window: tuple[str, int, int | None], numeric: bool,
    ) -> None:
        tenant = fresh_tenant()
        ids = sorted({f"urn:e:{n}" for n, *_ in points})
        for n, name, minute, value, dataset_id in points:
            if numeric and (isinstance(value, bool) or not isinstance(value, int | float)):
                value = minute
            entity_id = f"urn:e:{n}"
            await write(store, tenant, reading(entity_id, value, minute, name, dataset_id),
                        entity_id)
        timerel, at, end = window
        query = TemporalQuery(timerel, START + at * 60_000_000,  # type: ignore[arg-type]
                              None if end is None else START + end * 60_000_000)
        aggregation = Aggregation(tuple(methods), parse_duration(period))
        h = history(store)
        everything = await h.read_history(tenant, ids, None, query)
        stored = await h.aggregate_history(tenant, ids, None, query, aggregation)
        sql_case = (numeric and timerel != "before" and period != "PT0S"
                    and "distinctCount" not in methods)
        if store.kind in ("sqlite", "mongodb") and sql_case:
            assert stored is not None, "the store aggregates numbers itself"
        for entity_id in ids:
            expected = aggregate(select(everything.get(entity_id, []), query), aggregation, query)
            if stored is None:
                continue  # the store left it to the service: nothing to compare
            got = stored.get(entity_id, {})
            assert set(got) == set(expected)
            for name, series in expected.items():
                key = lambda s: (s.dataset_id or "", s.kind)  # noqa: E731
                for want, have in zip(sorted(series, key=key), sorted(got[name], key=key),
                                      strict=True):
                    for method in methods:
                        rows, got_rows = want.results[method], have.results[method]
                        assert len(rows) == len(got_rows)
                        for (v, lo, hi), (gv, glo, ghi) in zip(rows, got_rows, strict=True):
                            assert (lo, hi) == (glo, ghi) and close(v, gv), (method, v, gv)

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(
        minutes=st.lists(st.integers(0, 100), min_size=1, max_size=30, unique=True),
        last_n=st.none() | st.integers(1, 15),
        window=st.sampled_from([None, ("after", 20, None), ("before", 60, None),
                                ("between", 10, 70)]),
        limit=st.integers(1, 8),
    )
    async def test_cut_reads_page_as_full_reads(
        self, store: Store, minutes: list[int], last_n: int | None,
        window: tuple[str, int, int | None] | None, limit: int,
    ) -> None:
        tenant = fresh_tenant()
        for minute in minutes:
            await write(store, tenant, reading("urn:e:1", minute, minute), "urn:e:1")
        if window is None:
            query = TemporalQuery(last_n=last_n)
        else:
            timerel, at, end = window
            query = TemporalQuery(timerel, START + at * 60_000_000,  # type: ignore[arg-type]
                                  None if end is None else START + end * 60_000_000,
                                  last_n=last_n)
        h = history(store)
        full = await h.read_history(tenant, ["urn:e:1"], None, query)
        cut = await h.read_history(tenant, ["urn:e:1"], None, query, per_series=limit + 1)
        whole = paginate([select(full.get("urn:e:1", []), query)], query, limit)
        part = paginate([select(cut.get("urn:e:1", []), query)], query, limit)
        assert whole == part

    @pytest.mark.parametrize("per_series", [None, 2, 3])
    async def test_last_n_of_instances_of_one_instant_are_the_newest(
        self, store: Store, per_series: int | None
    ) -> None:
        """lastN over instances observed at one instant (a merge keeps the attribute's
        observedAt): ties keep the order the instances came in (``select``), so the
        last N are the newest recorded (found by tests/test_store_agreement.py)."""
        tenant = fresh_tenant()
        for value in (1, 2, 3):
            await write(store, tenant, reading("urn:e:1", value, 3), "urn:e:1")
        query = TemporalQuery(last_n=2)
        found = await history(store).read_history(tenant, ["urn:e:1"], None, query,
                                                  per_series=per_series)
        page = paginate([select(found.get("urn:e:1", []), query)], query, 5)
        assert [i.value for i in page.entities[0][P]] == [2, 3]

    async def test_aggregations_follow_corrections_and_retention(self, store: Store) -> None:
        tenant = fresh_tenant()
        h = history(store)
        for minute in range(0, 180, 20):
            await write(store, tenant, reading("urn:e:1", minute, minute), "urn:e:1")
        found = (await h.read_history(tenant, ["urn:e:1"], None, TemporalQuery()))["urn:e:1"]
        by_value = {i.value: i for i in found}
        await h.replace_history_instance(tenant, "urn:e:1", replace(by_value[20], value=1000))
        await h.delete_history_instance(tenant, "urn:e:1", P, by_value[160].instance_id)
        at = format_micros(START + 80 * 60_000_000)
        fix = {"id": "urn:e:1", "attrs": {P: [{"type": "Property", "value": -5,
                                               "observedAt": at}]}}
        await h.add_history(tenant, [temporal_history(fix, DAY, h.new_instance_id)])
        await h.drop_history_before(START + 30 * 60_000_000)
        query = TemporalQuery("after", START)
        aggregation = Aggregation(("totalCount", "sum", "min", "max"), parse_duration("PT1H"))
        stored = await h.aggregate_history(tenant, ["urn:e:1"], None, query, aggregation)
        everything = await h.read_history(tenant, ["urn:e:1"], None, query)
        expected = aggregate(select(everything["urn:e:1"], query), aggregation, query)
        assert sorted(i.value for i in everything["urn:e:1"]) == [-5, 40, 60, 100, 120, 140]
        if stored is not None:
            assert {k: v[0].results for k, v in stored["urn:e:1"].items()} == \
                {k: v[0].results for k, v in expected.items()}

    async def test_scope_is_read_whatever_the_attributes(self, store: Store) -> None:
        tenant = fresh_tenant()
        entity = {**reading("urn:e:1", 1, 0), "scope": ["/a"]}
        await write(store, tenant, entity, "urn:e:1")
        found = (await history(store).read_history(tenant, ["urn:e:1"], [Q],
                                                   TemporalQuery()))["urn:e:1"]
        assert [i.attribute for i in found] == [SCOPE]
        assert found[0].value == ["/a"]


__all__ = ["TemporalContract"]

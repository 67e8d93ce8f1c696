"""The storage contract: what every backend behind ``storage.Store`` must do.

Not collected by itself: ``tests/test_storage_contract.py`` subclasses
:class:`StorageContract` and provides a ``store`` fixture (an open, empty store)
parametrised over the backends.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import (
    AlreadyExists,
    BadRequestData,
    InternalError,
    ResourceNotFound,
)
from ngsi_ld.expiry import expiry_millis
from ngsi_ld.operations import keeps_current
from ngsi_ld.query import (
    EntityQuery,
    QExpr,
    TypeName,
    TypeOr,
    parse_geo_query,
    parse_q,
    resolve_names,
)
from storage import (
    DEFAULT_TENANT,
    ContextRecord,
    Entity,
    Mutation,
    Store,
)


@dataclass(slots=True)
class EntityScan:
    """A selection of entities by ids, types (any of) and an id pattern, paged.

    Stores have no scan operation of their own: a scan is an EntityQuery with
    a count (what reading a whole tenant, as snapshots do, relies on).
    """

    ids: Sequence[str] | None = None
    types: Sequence[str] | None = None
    id_pattern: str | None = None
    offset: int = 0
    limit: int | None = None


async def scan_entities(store: Store, tenant: str, scan: EntityScan) -> tuple[list[Entity], int]:
    """The entities ``scan`` selects, sorted by id (the page asked for), and their total."""
    if (scan.ids is not None and not scan.ids) or (scan.types is not None and not scan.types):
        return [], 0  # an empty list selects nothing
    type_expr = None
    if scan.types is not None:
        names = tuple(TypeName(t) for t in scan.types)
        type_expr = names[0] if len(names) == 1 else TypeOr(names)
    query = EntityQuery(ids=None if scan.ids is None else list(scan.ids), type_expr=type_expr,
                        id_pattern=scan.id_pattern)
    found, total = await store.query_entities(tenant, query, offset=scan.offset,
                                              limit=scan.limit, count=True)
    return found, total or 0


T = "https://example.org/T"
U = "https://example.org/U"
V = "https://example.org/V"
P = "https://example.org/p"
NOW = "2026-11-22T00:00:00.000Z"
P_HEIGHT = "https://example.org/height"
P_STATE = "https://example.org/state"
LOC = "https://example.org/loc"


def entity(entity_id: str, types: list[str] | None = None, **values: Any) -> Entity:
    """An entity in the internal form, one Property per keyword (name -> value)."""
    return {
        "id": entity_id,
        "type": types or [T],
        "createdAt": NOW,
        "modifiedAt": NOW,
        "attrs": {
            f"https://example.org/{name}": [{"type": "Property", "value": value}]
            for name, value in values.items()
        },
    }


def example_q(text: str) -> QExpr:
    """A q expression whose names are under https://example.org/ (as ``entity`` makes them)."""
    return resolve_names(parse_q(text), lambda name: "https://example.org/" + name)


def create(new: Entity) -> Mutation:
    """The mutation of entity creation: refuses an id already taken."""

    def mutation(current: Entity | None) -> Entity | None:
        if current is not None:
            raise AlreadyExists(f"entity {new['id']} already exists")
        return new

    return mutation


def add_attr(name: str, value: Any) -> Mutation:
    """The mutation that adds (or replaces) one Property of an existing entity."""

    def mutation(current: Entity | None) -> Entity | None:
        if current is None:
            raise ResourceNotFound("no such entity")
        current["attrs"][f"https://example.org/{name}"] = [{"type": "Property", "value": value}]
        return current

    return mutation


def put(new: Entity | None) -> Mutation:
    """The mutation that stores ``new`` whatever is there (None: deletes, if anything)."""
    return lambda current: new


def delete(current: Entity | None) -> Entity | None:
    """The mutation of entity deletion."""
    if current is None:
        raise ResourceNotFound("no such entity")
    return None


def fresh_tenant() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


async def load(store: Store, items: list[Entity]) -> str:
    """A fresh tenant holding ``items`` (written in one batch)."""
    tenant = fresh_tenant()
    await store.modify_many(tenant, [(e["id"], put(e)) for e in items])
    return tenant


ALPHABET = "ab:1"
ids_strategy = st.lists(
    st.text(alphabet=ALPHABET, min_size=1, max_size=5).map(lambda s: "urn:" + s),
    unique=True,
    max_size=12,
)
PATTERN_PIECES = [
    "^",
    "urn:",
    "a",
    "b",
    "b*",
    "a?",
    ".",
    "|",
    "[ab]",
    ":",
    "1+",
    "$",
    "(a|1)",
    "\\d",
]


class StorageContract:
    """Tests every backend must pass; subclasses provide the ``store`` fixture."""

    # -- create / read / update / delete through modify ---------------------------
    async def test_create_get_update_delete(self, store: Store) -> None:
        e = entity("urn:ngsi-ld:T:1", p=1)
        change = await store.modify(DEFAULT_TENANT, e["id"], create(e))
        assert change.entity_id == e["id"]
        assert change.before is None and change.after == e
        assert await store.get_entity(DEFAULT_TENANT, e["id"]) == e

        change = await store.modify(DEFAULT_TENANT, e["id"], add_attr("q", "x"))
        assert change.before == e
        assert change.after is not None and set(change.after["attrs"]) == {
            P,
            "https://example.org/q",
        }
        assert await store.get_entity(DEFAULT_TENANT, e["id"]) == change.after

        change = await store.modify(DEFAULT_TENANT, e["id"], delete)
        assert change.after is None and change.before is not None
        assert await store.get_entity(DEFAULT_TENANT, e["id"]) is None
        assert await scan_entities(store, DEFAULT_TENANT, EntityScan()) == ([], 0)

    async def test_a_mutation_that_only_reads_gets_the_stored_state(self, store: Store) -> None:
        # Marked with keeps_current, a mutation may be handed the store's own decoded
        # state: it must see the stored entity, and before/after must stay apart.
        e = entity("urn:ngsi-ld:T:1", p=1)
        await store.modify(DEFAULT_TENANT, e["id"], create(e))
        seen: list[Entity | None] = []

        def renamed(current: Entity | None) -> Entity | None:
            seen.append(current)
            assert current is not None
            return {**current, "attrs": {"https://example.org/q": current["attrs"][P]}}

        change = await store.modify(DEFAULT_TENANT, e["id"], keeps_current(renamed))
        assert seen == [e] and change.before == e
        assert change.after is not None and list(change.after["attrs"]) == [
            "https://example.org/q"
        ]
        assert await store.get_entity(DEFAULT_TENANT, e["id"]) == change.after

    async def test_get_unknown_entity_is_none(self, store: Store) -> None:
        assert await store.get_entity(DEFAULT_TENANT, "urn:ngsi-ld:T:none") is None
        assert await store.get_entity("nosuchtenant", "urn:ngsi-ld:T:none") is None

    async def test_mutation_returning_none_on_absent_entity_writes_nothing(
        self, store: Store
    ) -> None:
        change = await store.modify(DEFAULT_TENANT, "urn:x", lambda current: None)
        assert (change.before, change.after) == (None, None)
        assert await scan_entities(store, DEFAULT_TENANT, EntityScan()) == ([], 0)

    async def test_refusal_leaves_entity_untouched(self, store: Store) -> None:
        first = entity("urn:ngsi-ld:T:1", p=1)
        await store.modify(DEFAULT_TENANT, first["id"], create(first))
        with pytest.raises(AlreadyExists):
            await store.modify(DEFAULT_TENANT, first["id"], create(entity(first["id"], p=2)))
        assert await store.get_entity(DEFAULT_TENANT, first["id"]) == first

    @pytest.mark.parametrize("error", [BadRequestData("bad value"), RuntimeError("bug")])
    async def test_mutation_raising_midway_writes_nothing(
        self, store: Store, error: Exception
    ) -> None:
        original = entity("urn:ngsi-ld:T:1", p=1)
        await store.modify(DEFAULT_TENANT, original["id"], create(original))

        def half_done(current: Entity | None) -> Entity | None:
            assert current is not None
            current["attrs"][P][0]["value"] = 99  # edits what it was given, then fails
            current["attrs"].clear()
            raise error

        with pytest.raises(type(error)):
            await store.modify(DEFAULT_TENANT, original["id"], half_done)
        assert await store.get_entity(DEFAULT_TENANT, original["id"]) == original

    async def test_result_that_is_not_json_writes_nothing(self, store: Store) -> None:
        tenant = fresh_tenant()

        def unserialisable(current: Entity | None) -> Entity | None:
            return {
                "id": "urn:x",
                "type": [T],
                "attrs": {P: [{"type": "Property", "value": object()}]},
            }

        with pytest.raises(TypeError):
            await store.modify(tenant, "urn:x", unserialisable)
        assert await store.get_entity(tenant, "urn:x") is None
        assert not await store.tenant_exists(tenant)

    async def test_returned_entities_are_copies(self, store: Store) -> None:
        e = entity("urn:ngsi-ld:T:1", p=1)
        change = await store.modify(DEFAULT_TENANT, e["id"], create(e))
        assert change.after is not None
        change.after["attrs"].clear()
        got = await store.get_entity(DEFAULT_TENANT, e["id"])
        assert got is not None and P in got["attrs"]
        got["attrs"].clear()
        scanned, _ = await scan_entities(store, DEFAULT_TENANT, EntityScan())
        scanned[0]["type"].append(U)
        assert await store.get_entity(DEFAULT_TENANT, e["id"]) == entity(e["id"], p=1)

    # -- batches --------------------------------------------------------------------
    async def test_modify_many_mixed_outcomes(self, store: Store) -> None:
        existing = entity("urn:ngsi-ld:T:0", p=0)
        await store.modify(DEFAULT_TENANT, existing["id"], create(existing))

        def invalid(current: Entity | None) -> Entity | None:
            raise BadRequestData("attribute p is not valid")

        def buggy(current: Entity | None) -> Entity | None:
            raise KeyError("oops")

        new = [entity(f"urn:ngsi-ld:T:{i}", p=i) for i in (1, 2, 3)]
        outcomes = await store.modify_many(
            DEFAULT_TENANT,
            [
                (new[0]["id"], create(new[0])),
                (existing["id"], create(entity(existing["id"], p=5))),
                (new[1]["id"], create(new[1])),
                ("urn:ngsi-ld:T:bad", invalid),
                ("urn:ngsi-ld:T:bug", buggy),
                (new[2]["id"], create(new[2])),
            ],
        )
        assert [o.entity_id for o in outcomes] == [
            new[0]["id"],
            existing["id"],
            new[1]["id"],
            "urn:ngsi-ld:T:bad",
            "urn:ngsi-ld:T:bug",
            new[2]["id"],
        ]
        errors = [type(o.error) if o.error else None for o in outcomes]
        assert errors == [None, AlreadyExists, None, BadRequestData, InternalError, None]
        for o in outcomes:
            assert (o.change is None) == (o.error is not None)
        assert await store.get_entity(DEFAULT_TENANT, existing["id"]) == existing
        for e in new:
            assert await store.get_entity(DEFAULT_TENANT, e["id"]) == e
        found, total = await scan_entities(store, DEFAULT_TENANT, EntityScan())
        assert total == 4 and [e["id"] for e in found] == sorted(
            [existing["id"]] + [e["id"] for e in new]
        )

    async def test_modify_many_all_failing_writes_nothing(self, store: Store) -> None:
        tenant = fresh_tenant()

        def unserialisable(current: Entity | None) -> Entity | None:
            return {"id": "urn:y", "type": [T], "attrs": {P: [{"type": "Property", "value": {1}}]}}

        outcomes = await store.modify_many(tenant, [("urn:x", delete), ("urn:y", unserialisable)])
        assert [type(o.error) for o in outcomes] == [ResourceNotFound, InternalError]
        assert await scan_entities(store, tenant, EntityScan()) == ([], 0)
        assert not await store.tenant_exists(tenant)

    async def test_modify_many_same_entity_twice_sees_first(self, store: Store) -> None:
        e = entity("urn:ngsi-ld:T:1", p=1)
        outcomes = await store.modify_many(
            DEFAULT_TENANT, [(e["id"], create(e)), (e["id"], add_attr("q", 2))]
        )
        assert all(o.error is None for o in outcomes)
        got = await store.get_entity(DEFAULT_TENANT, e["id"])
        assert got is not None and set(got["attrs"]) == {P, "https://example.org/q"}

    async def test_modify_many_empty(self, store: Store) -> None:
        assert await store.modify_many(DEFAULT_TENANT, []) == []

    # -- tenants ----------------------------------------------------------------------
    async def test_tenants_are_separate_namespaces(self, store: Store) -> None:
        a, b = fresh_tenant(), fresh_tenant()
        await store.ensure_tenant(a)
        await store.ensure_tenant(b)
        await store.modify(a, "urn:same", create(entity("urn:same", p="in a")))
        await store.modify(b, "urn:same", create(entity("urn:same", [U], p="in b")))
        got_a = await store.get_entity(a, "urn:same")
        got_b = await store.get_entity(b, "urn:same")
        assert got_a is not None and got_a["attrs"][P][0]["value"] == "in a"
        assert got_b is not None and got_b["attrs"][P][0]["value"] == "in b"
        assert await store.get_entity(DEFAULT_TENANT, "urn:same") is None
        assert await scan_entities(store, a, EntityScan(types=[U])) == ([], 0)
        await store.modify(a, "urn:same", delete)
        assert await store.get_entity(b, "urn:same") == got_b

    async def test_tenant_lifecycle(self, store: Store) -> None:
        name = fresh_tenant()
        assert await store.tenant_exists(DEFAULT_TENANT)
        assert not await store.tenant_exists(name)
        assert name not in await store.list_tenants()
        await store.ensure_tenant(name)
        await store.ensure_tenant(name)
        assert await store.tenant_exists(name)
        tenants = await store.list_tenants()
        assert tenants.count(name) == 1 and DEFAULT_TENANT not in tenants

    async def test_storing_an_entity_creates_its_tenant(self, store: Store) -> None:
        name = fresh_tenant()
        await store.modify(name, "urn:x", create(entity("urn:x")))
        assert await store.tenant_exists(name)
        assert name in await store.list_tenants()

    async def test_failed_write_does_not_create_tenant(self, store: Store) -> None:
        name = fresh_tenant()
        with pytest.raises(ResourceNotFound):
            await store.modify(name, "urn:x", delete)
        assert not await store.tenant_exists(name)

    # -- scans ----------------------------------------------------------------------
    async def _populate(self, store: Store, tenant: str) -> list[Entity]:
        entities = [
            entity(f"urn:ngsi-ld:{kind}:{n:02d}", [T] if kind == "A" else [T, U], n=n)
            for kind in ("A", "B")
            for n in range(12)
        ] + [entity("urn:other:1", [U])]
        outcomes = await store.modify_many(tenant, [(e["id"], create(e)) for e in entities])
        assert all(o.error is None for o in outcomes)
        return sorted(entities, key=lambda e: e["id"])

    async def test_scan_all_sorted_with_count(self, store: Store) -> None:
        expected = await self._populate(store, DEFAULT_TENANT)
        assert await scan_entities(store, DEFAULT_TENANT, EntityScan()) == (expected, len(expected))

    async def test_scan_by_ids_types_and_pattern(self, store: Store) -> None:
        everything = await self._populate(store, DEFAULT_TENANT)
        wanted = ["urn:ngsi-ld:B:03", "urn:other:1", "urn:ngsi-ld:A:07", "urn:missing"]
        found, total = await scan_entities(store, DEFAULT_TENANT, EntityScan(ids=wanted))
        assert [e["id"] for e in found] == sorted(wanted[:3]) and total == 3

        found, total = await scan_entities(store, DEFAULT_TENANT, EntityScan(types=[U]))
        assert [e["id"] for e in found] == [e["id"] for e in everything if U in e["type"]]
        assert total == 13
        found, total = await scan_entities(store, DEFAULT_TENANT, EntityScan(types=[T, U]))
        assert total == len(everything)
        assert await scan_entities(store, DEFAULT_TENANT, EntityScan(types=["urn:none"])) == ([], 0)

        found, total = await scan_entities(store,
            DEFAULT_TENANT, EntityScan(id_pattern=r"^urn:ngsi-ld:A:0\d$")
        )
        assert [e["id"] for e in found] == [f"urn:ngsi-ld:A:{n:02d}" for n in range(10)]
        found, total = await scan_entities(store, DEFAULT_TENANT, EntityScan(id_pattern="1$"))
        assert [e["id"] for e in found] == [
            "urn:ngsi-ld:A:01",
            "urn:ngsi-ld:A:11",
            "urn:ngsi-ld:B:01",
            "urn:ngsi-ld:B:11",
            "urn:other:1",
        ]

        found, total = await scan_entities(store,
            DEFAULT_TENANT, EntityScan(ids=wanted, types=[U], id_pattern="ngsi")
        )
        assert [e["id"] for e in found] == ["urn:ngsi-ld:B:03"] and total == 1

    @pytest.mark.parametrize(
        ("pattern", "expected"),
        [
            (r"^urn:ngsi-ld:AB*:0[0-2]", ["A:00", "A:01", "A:02"]),
            (r"^urn:ngsi-ld:C?B:1", ["B:10", "B:11"]),
            (r"^urn:ngsi-ld:A{0}B:05", ["B:05"]),
            (r"^urn:ngsi-ld:X|B:09", ["B:09"]),
            (r"^urn:ngsi-ld:A:0[5-6]$", ["A:05", "A:06"]),
            (r"^urn:ngsi-ld:A\:03", ["A:03"]),
            (r"(?i)^URN:NGSI-LD:B:00", ["B:00"]),
        ],
    )
    async def test_scan_anchored_patterns(
        self, store: Store, pattern: str, expected: list[str]
    ) -> None:
        await self._populate(store, DEFAULT_TENANT)
        found, total = await scan_entities(store, DEFAULT_TENANT, EntityScan(id_pattern=pattern))
        assert [e["id"] for e in found] == ["urn:ngsi-ld:" + i for i in expected]
        assert total == len(expected)

    async def test_scan_paging_is_stable(self, store: Store) -> None:
        everything = await self._populate(store, DEFAULT_TENANT)
        for scan in (EntityScan(), EntityScan(types=[U]), EntityScan(id_pattern=":B:|other")):
            _, total = await scan_entities(store, DEFAULT_TENANT, scan)
            pages: list[Entity] = []
            for offset in range(0, total + 5, 5):
                scan.offset, scan.limit = offset, 5
                found, page_total = await scan_entities(store, DEFAULT_TENANT, scan)
                assert page_total == total and len(found) <= 5
                pages += found
            scan.offset, scan.limit = 0, None
            assert pages == (await scan_entities(store, DEFAULT_TENANT, scan))[0]
            assert len(pages) == total
        assert await scan_entities(store, DEFAULT_TENANT, EntityScan(limit=0)) == (
            [],
            len(everything),
        )
        found, _ = await scan_entities(store, DEFAULT_TENANT, EntityScan(offset=len(everything)))
        assert found == []

    @pytest.mark.parametrize(
        "scan",
        [EntityScan(id_pattern="(unclosed"), EntityScan(offset=-1), EntityScan(limit=-5)],
    )
    async def test_invalid_scan_is_bad_request(self, store: Store, scan: EntityScan) -> None:
        with pytest.raises(BadRequestData) as info:
            await scan_entities(store, DEFAULT_TENANT, scan)
        assert info.value.detail

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        ids=ids_strategy,
        typed=st.lists(st.booleans(), min_size=12, max_size=12),
        want_ids=st.none()
        | st.lists(st.text(alphabet=ALPHABET, max_size=4).map(lambda s: "urn:" + s)),
        want_types=st.none() | st.lists(st.sampled_from([T, U, "urn:none"]), max_size=2),
        pieces=st.none()
        | st.tuples(
            st.sampled_from(["", "^", "^urn:"]),
            st.lists(st.sampled_from(PATTERN_PIECES), max_size=4),
        ).map(lambda t: [t[0], *t[1]]),
        offset=st.integers(0, 6),
        limit=st.none() | st.integers(0, 6),
    )
    async def test_scan_matches_reference_model(
        self,
        store: Store,
        ids: list[str],
        typed: list[bool],
        want_ids: list[str] | None,
        want_types: list[str] | None,
        pieces: list[str] | None,
        offset: int,
        limit: int | None,
    ) -> None:
        pattern = None if pieces is None else "".join(pieces)
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error:
                pattern = None
        tenant = fresh_tenant()
        entities = {i: entity(i, [T, U] if typed[n] else [T]) for n, i in enumerate(ids)}
        await store.modify_many(tenant, [(i, create(e)) for i, e in entities.items()])
        expected = sorted(
            i
            for i, e in entities.items()
            if (want_ids is None or i in want_ids)
            and (want_types is None or set(e["type"]) & set(want_types))
            and (pattern is None or re.search(pattern, i))
        )
        scan = EntityScan(want_ids, want_types, pattern, offset, limit)
        found, total = await scan_entities(store, tenant, scan)
        window = expected[offset:] if limit is None else expected[offset : offset + limit]
        assert total == len(expected)
        assert found == [entities[i] for i in window]

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        writes=st.lists(
            st.tuples(
                st.integers(0, 5),
                st.none() | st.lists(st.sampled_from([T, U, V]), min_size=1, max_size=3),
            ),
            max_size=25,
        ),
        batched=st.booleans(),
    )
    async def test_scans_by_type_follow_every_write(
        self, store: Store, writes: list[tuple[int, list[str] | None]], batched: bool
    ) -> None:
        tenant = fresh_tenant()
        model: dict[str, list[str]] = {}
        mutations: list[tuple[str, Mutation]] = []
        for n, types in writes:
            entity_id = f"urn:ngsi-ld:E:{n}"
            new = None if types is None else entity(entity_id, types, n=len(mutations))
            mutations.append((entity_id, put(new)))
            if types is None:
                model.pop(entity_id, None)
            else:
                model[entity_id] = types
        if batched:
            await store.modify_many(tenant, mutations)
        else:
            for entity_id, mutation in mutations:
                await store.modify(tenant, entity_id, mutation)
        for wanted in ([T], [U], [V], [T, V], [T, U, V]):
            found, total = await scan_entities(store, tenant, EntityScan(types=wanted))
            expected = sorted(i for i, types in model.items() if set(types) & set(wanted))
            assert [e["id"] for e in found] == expected and total == len(expected)
        found, total = await scan_entities(store, tenant, EntityScan())
        assert [e["id"] for e in found] == sorted(model) and total == len(model)

    # -- queries (clauses 4.9, 4.10, 5.7.2) -------------------------------------------
    async def _city(self, store: Store) -> str:
        """Ten entities of types T or U with numbers, strings and points; a fresh tenant."""
        tenant = fresh_tenant()
        items = []
        for n in range(10):
            e = entity(
                f"urn:c:{n}", [T] if n % 2 else [T, U], height=n, state="on" if n % 3 else "off"
            )
            e["attrs"][LOC] = [
                {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [n / 10, 0.0]}}
            ]
            items.append((e["id"], create(e)))
        await store.modify_many(tenant, items)
        return tenant

    async def _ids(self, store: Store, tenant: str, query: EntityQuery, **page: Any) -> list[str]:
        found, _ = await store.query_entities(tenant, query, **page)
        return [e["id"] for e in found]

    async def test_query_by_type_and_q(self, store: Store) -> None:
        tenant = await self._city(store)
        query = EntityQuery(type_expr=TypeName(U), q=example_q('height>=4;state=="on"'))
        found, total = await store.query_entities(tenant, query, count=True)
        assert [e["id"] for e in found] == ["urn:c:4", "urn:c:8"] and total == 2
        assert found[0] == await store.get_entity(tenant, "urn:c:4")

    async def test_query_paging_count_and_limit_zero(self, store: Store) -> None:
        tenant = await self._city(store)
        query = EntityQuery(type_expr=TypeName(T))
        everything = await self._ids(store, tenant, query)
        assert everything == sorted(f"urn:c:{n}" for n in range(10))
        pages = [await self._ids(store, tenant, query, offset=o, limit=3) for o in range(0, 10, 3)]
        assert [i for p in pages for i in p] == everything
        assert await store.query_entities(tenant, query, limit=0, count=True) == ([], 10)
        assert await store.query_entities(tenant, query, limit=0) == ([], None)

    async def test_query_ids_pattern_attrs_and_tenants(self, store: Store) -> None:
        tenant = await self._city(store)
        assert await self._ids(store, tenant, EntityQuery(ids=["urn:c:7", "urn:c:2", "x:no"])) == [
            "urn:c:2",
            "urn:c:7",
        ]
        assert await self._ids(store, tenant, EntityQuery(id_pattern="^urn:c:[0-2]$")) == [
            "urn:c:0",
            "urn:c:1",
            "urn:c:2",
        ]
        assert await self._ids(store, tenant, EntityQuery(attrs=["https://example.org/none"])) == []
        assert await self._ids(store, fresh_tenant(), EntityQuery(type_expr=TypeName(T))) == []

    async def test_query_geo_near(self, store: Store) -> None:
        tenant = await self._city(store)
        near = parse_geo_query("near;maxDistance==12000", "Point", [0.5, 0.0], LOC)
        assert await self._ids(store, tenant, EntityQuery(geo_q=near)) == [
            "urn:c:4",
            "urn:c:5",
            "urn:c:6",
        ]

    async def test_query_language_property_in_any_language(self, store: Store) -> None:
        # 4.9: name[*]=="..." matches a languageMap holding the string in any language
        barn = entity("urn:l:barn")
        barn["attrs"]["https://example.org/name"] = [{"type": "LanguageProperty", "languageMap": {
            "en": "Big Red Barn", "de": ["Grosse Rote Scheune", "Scheune"]}}]
        odd = entity("urn:l:odd", name={"*": "Big Red Barn"})  # a compound value, key "*"
        tenant = await load(store, [barn, odd, entity("urn:l:other", name="Big Red Barn")])

        async def ids(text: str) -> list[str]:
            return await self._ids(store, tenant, EntityQuery(q=example_q(text)))

        assert await ids('name[*]=="Big Red Barn"') == ["urn:l:barn", "urn:l:odd"]
        assert await ids('name[*]=="Scheune"') == ["urn:l:barn"]
        assert await ids('name[de]=="Big Red Barn"') == []
        assert await ids('name[*]!="Scheune"') == ["urn:l:odd"]
        assert await ids("name[*]") == ["urn:l:barn", "urn:l:odd"]
        assert await ids('name=="Big Red Barn"') == ["urn:l:barn", "urn:l:other"]

    async def test_relationship_objects_only_compare_for_equality(self, store: Store) -> None:
        linked = entity("urn:r:1")
        linked["attrs"]["https://example.org/owner"] = [
            {"type": "Relationship", "object": "urn:b", "observedAt": NOW}]
        listed = entity("urn:r:2")
        listed["attrs"]["https://example.org/owner"] = [
            {"type": "ListRelationship", "objectList": ["urn:b"]}]
        tenant = await load(store, [linked, listed, entity("urn:r:3", owner="urn:b")])

        async def ids(text: str) -> list[str]:
            return await self._ids(store, tenant, EntityQuery(q=example_q(text)))

        assert await ids('owner>"urn:a"') == ["urn:r:3"]
        assert await ids('owner~="urn"') == ["urn:r:3"]
        assert await ids('owner=="urn:b"') == ["urn:r:1", "urn:r:2", "urn:r:3"]
        assert await ids("owner==urn:b") == ["urn:r:1", "urn:r:2", "urn:r:3"]
        assert await ids("owner.observedAt>2020-01-01T00:00:00Z") == ["urn:r:1"]

    async def test_dataset_ids_do_not_narrow_attrs(self, store: Store) -> None:
        # 4.5.5: datasetId chooses the instances shown; q still looks at those only
        tenant = await load(store, [entity("urn:d:1", p=1), entity("urn:d:2")])
        query = EntityQuery(attrs=[P], dataset_ids=["urn:ngsi-ld:Dataset:x"])
        assert await self._ids(store, tenant, query) == ["urn:d:1"]
        query = EntityQuery(q=example_q("p==1"), dataset_ids=["urn:ngsi-ld:Dataset:x"])
        assert await self._ids(store, tenant, query) == []

    async def test_query_near_a_line(self, store: Store) -> None:
        tenant = await self._city(store)
        line = parse_geo_query("near;maxDistance==12000", "LineString", [[0.5, 0], [0.5, 1]], LOC)
        assert await self._ids(store, tenant, EntityQuery(geo_q=line)) == [
            "urn:c:4",
            "urn:c:5",
            "urn:c:6",
        ]

    async def test_query_follows_updates_and_deletes(self, store: Store) -> None:
        tenant = await self._city(store)
        await store.modify(tenant, "urn:c:4", add_attr("height", 100))
        await store.modify(tenant, "urn:c:8", delete)
        query = EntityQuery(q=example_q("height>=8"))
        assert await self._ids(store, tenant, query) == ["urn:c:4", "urn:c:9"]

    async def test_discovery(self, store: Store) -> None:
        tenant = await self._city(store)
        assert await store.type_names(tenant) == [T, U]
        assert await store.attribute_names(tenant) == sorted([P_HEIGHT, P_STATE, LOC])
        (u,) = await store.type_summaries(tenant, [U])
        assert u.entity_count == 5 and u.attributes[LOC] == {"GeoProperty"}
        (height,) = await store.attribute_summaries(tenant, [P_HEIGHT])
        assert height.instance_count == 10 and height.type_names == {T, U}

    # -- transient entities (clause 4.22) ---------------------------------------------
    async def test_expiries_follow_every_write(self, store: Store) -> None:
        early, late = "2030-01-01T00:00:00Z", "2031-01-01T00:00:00.500Z"
        assert await store.next_expiry() is None
        assert await store.due_expiries(expiry_millis(late) or 0, 10) == []
        tenant = fresh_tenant()
        whole = {**entity("urn:a", p=1), "expiresAt": late}
        part = entity("urn:b", p=1, q=2)
        part["attrs"][P][0]["sub"] = {P_STATE: {"type": "Property", "value": 1,
                                                "expiresAt": early}}
        durable = entity("urn:c", p=1)
        await store.modify(DEFAULT_TENANT, whole["id"], create(whole))
        outcomes = await store.modify_many(tenant, [(part["id"], put(part)),
                                                    (durable["id"], put(durable))])
        assert all(o.error is None for o in outcomes)
        at_early, at_late = expiry_millis(early), expiry_millis(late)
        assert at_early is not None and at_late is not None
        assert await store.next_expiry() == at_early
        assert await store.due_expiries(at_early - 1, 10) == []
        assert await store.due_expiries(at_late, 10) == [(tenant, "urn:b"),
                                                         (DEFAULT_TENANT, "urn:a")]
        assert await store.due_expiries(at_late, 1) == [(tenant, "urn:b")]
        # a write without the expiry takes the entity out; so does a deletion
        await store.modify(tenant, "urn:b", put(entity("urn:b", p=2)))
        assert await store.due_expiries(at_late, 10) == [(DEFAULT_TENANT, "urn:a")]
        assert await store.next_expiry() == at_late
        await store.modify(DEFAULT_TENANT, "urn:a", delete)
        assert await store.next_expiry() is None

    # -- contexts (clause 5.13) -------------------------------------------------------
    async def test_contexts(self, store: Store) -> None:
        hosted = ContextRecord(
            url="urn:ctx:1",
            kind="Hosted",
            document={"@context": {"p": "https://example.org/p", "n": {"@id": "x:n"}}},
            created_at=NOW,
            extra={"numberOfHits": 0},
        )
        cached = ContextRecord("https://example.org/ctx.jsonld", "Cached", {"@context": []}, NOW)
        assert await store.get_context(hosted.url) is None
        await store.put_context(hosted)
        await store.put_context(cached)
        assert await store.get_context(hosted.url) == hosted
        assert sorted(r.url for r in await store.list_contexts()) == sorted(
            [hosted.url, cached.url]
        )

        hosted.extra = {"numberOfHits": 3, "lastUsage": NOW}
        await store.put_context(hosted)
        got = await store.get_context(hosted.url)
        assert got is not None and got.extra == {"numberOfHits": 3, "lastUsage": NOW}

        assert await store.delete_context(hosted.url) is True
        assert await store.delete_context(hosted.url) is False
        assert await store.get_context(hosted.url) is None
        assert [r.url for r in await store.list_contexts()] == [cached.url]

    # -- records -------------------------------------------------------------------------
    async def test_records_are_per_tenant_and_collection(self, store: Store) -> None:
        sub_id = "urn:ngsi-ld:Subscription:1"
        sub: dict[str, Any] = {"id": sub_id, "q": "p>1", "nested": {"a": [1, 2]}}
        assert await store.get_record("", "subscriptions", sub_id) is None
        await store.put_record("", "subscriptions", sub_id, sub)
        await store.put_record("city", "subscriptions", sub_id, {**sub, "q": "p>2"})
        await store.put_record("", "registrations", "urn:r:1", {"id": "urn:r:1"})
        assert await store.get_record("", "subscriptions", sub_id) == sub
        assert await store.get_record("city", "subscriptions", sub_id) == {**sub, "q": "p>2"}
        assert await store.list_records("", "registrations") == [{"id": "urn:r:1"}]
        await store.put_record("", "subscriptions", "urn:a", {"id": "urn:a"})
        assert [d["id"] for d in await store.list_records("", "subscriptions")] == [
            "urn:a",
            sub_id,
        ]
        assert [(t, d["id"]) for t, d in await store.all_records("subscriptions")] == [
            ("", "urn:a"),
            ("", sub_id),
            ("city", sub_id),
        ]

    async def test_records_replace_delete_and_copy(self, store: Store) -> None:
        doc = {"id": "urn:s:1", "timesSent": 0}
        await store.put_record("", "subscriptions", "urn:s:1", doc)
        doc["timesSent"] = 99  # the store kept its own copy
        got = await store.get_record("", "subscriptions", "urn:s:1")
        assert got == {"id": "urn:s:1", "timesSent": 0}
        assert got is not None
        got["timesSent"] = 5
        await store.put_record("", "subscriptions", "urn:s:1", got)
        assert await store.get_record("", "subscriptions", "urn:s:1") == got
        assert await store.delete_record("", "subscriptions", "urn:s:1") is True
        assert await store.delete_record("", "subscriptions", "urn:s:1") is False
        assert await store.list_records("", "subscriptions") == []

    # -- concurrency ------------------------------------------------------------------
    async def test_concurrent_modifies_lose_nothing(self, store: Store) -> None:
        e = entity("urn:ngsi-ld:T:hot")
        await store.modify(DEFAULT_TENANT, e["id"], create(e))
        await asyncio.gather(
            *(store.modify(DEFAULT_TENANT, e["id"], add_attr(f"a{n}", n)) for n in range(50))
        )
        got = await store.get_entity(DEFAULT_TENANT, e["id"])
        assert got is not None
        assert got["attrs"] == {
            f"https://example.org/a{n}": [{"type": "Property", "value": n}] for n in range(50)
        }

    async def test_concurrent_creates_of_one_id_one_wins(self, store: Store) -> None:
        results = await asyncio.gather(
            *(
                store.modify(DEFAULT_TENANT, "urn:race", create(entity("urn:race", n=n)))
                for n in range(20)
            ),
            return_exceptions=True,
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        assert len(winners) == 1
        assert all(isinstance(r, AlreadyExists) for r in results if r not in winners)
        assert await store.get_entity(DEFAULT_TENANT, "urn:race") == winners[0].after

    async def test_health(self, store: Store) -> None:
        details = await store.health()
        assert details["kind"] == store.kind


__all__ = ["StorageContract", "add_attr", "create", "delete", "entity", "fresh_tenant", "put"]

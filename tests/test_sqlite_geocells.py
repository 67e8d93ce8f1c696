"""The Points' cells (storage/sqlite/geocells.py, schema 11): every geo-query answers
what ``ngsi_ld.query.matches`` selects.

Properties: the ranges covering a box hold the cell of every point inside it; the
SQLite store answers random geo-queries (every georel, near the antimeridian and the
poles, out-of-range coordinates, other geometries and GeometryCollections, another
geoproperty, counts and pages, two tenants) as the in-memory evaluation does, after
creations, replacements, PATCHes of the location, deletions and a restart of the
store; a file of schema 9 (its Points boxes of the R*Tree, their rows markers) is
rebuilt on open and answers the same.
"""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from itertools import pairwise
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from storage_contract import put

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query import EntityQuery, matches, parse_geo_query, resolve_names
from storage import SqliteStore
from storage.sqlite import index as sqlite_index
from storage.sqlite.geocells import RANGES, cover, in_domain, point_cell, quantized_box

NS = "https://example.org/"
LOC, OTHER = NS + "loc", NS + "where"
IDS = [f"urn:x:{n}" for n in range(8)]
# places where the quantization and the query boxes meet edges: the antimeridian,
# the poles, the origin, the edges of the domain, a city
ANCHORS = [(0.0, 0.0), (179.9995, 10.0), (-179.9995, -10.0), (180.0, 0.0), (-180.0, 90.0),
           (12.5, 89.9995), (-60.0, -89.9995), (114.16, 22.28), (2.35, 48.85)]


def expand(name: str) -> str:
    return NS + name


# -- cover ---------------------------------------------------------------------------------
coordinate = st.floats(-400, 400) | st.sampled_from([-180.0, 180.0, -90.0, 90.0, 0.0])
extent = st.floats(0, 1) | st.sampled_from([0.0, 1e-9, 1e-6, 1e-3, 0.5, 30.0, 400.0])


@settings(max_examples=400, deadline=None)
@given(x=coordinate, y=coordinate, w=extent, h=extent, fx=st.floats(0, 1), fy=st.floats(0, 1))
def test_the_ranges_of_a_box_hold_the_cell_of_every_point_inside(
    x: float, y: float, w: float, h: float, fx: float, fy: float
) -> None:
    ranges, box = cover(x, y, x + w, y + h), quantized_box(x, y, x + w, y + h)
    assert len(ranges) <= RANGES
    assert all(first <= last for first, last in ranges)
    assert all(a[1] < b[0] for a, b in pairwise(ranges))  # in order
    px, py = min(x + fx * w, x + w), min(y + fy * h, y + h)
    for point in ((px, py), (x, y), (x + w, y + h), (x, y + h), (x + w, y)):
        if in_domain(*point):
            cell = point_cell(*point)
            assert any(first <= cell <= last for first, last in ranges), point
            # and its coordinates' bytes, which SQLite tests, in the box's
            assert box is not None, point
            assert box[0] <= cell[8:12] <= box[1] and box[2] <= cell[12:] <= box[3], point


def test_a_box_that_misses_the_domain_has_no_ranges() -> None:
    assert cover(181, 0, 200, 10) == cover(0, 91, 10, 95) == []
    assert cover(float("nan"), 0, 1, 1) == []
    assert quantized_box(181, 0, 200, 10) is None
    assert cover(-180, -90, 180, 90) == [(bytes(16), b"\xff" * 16)]


# -- random entities, geometries and geo-queries ------------------------------------------
offset = st.sampled_from([0.0, 1e-7, 1e-4, 0.002, 0.05, 1.0, 30.0])


@st.composite
def near_anchor(draw: st.DrawFn) -> list[Any]:
    x, y = draw(st.sampled_from(ANCHORS))
    dx, dy = draw(offset) * draw(st.sampled_from([-1, 1])), draw(offset) * draw(
        st.sampled_from([-1, 1]))
    return [x + dx, y + dy]


position = near_anchor() | st.tuples(st.floats(-200, 200), st.floats(-100, 100)).map(list)


@st.composite
def square(draw: st.DrawFn) -> list[Any]:
    x, y = draw(near_anchor())
    side = draw(st.sampled_from([1e-4, 0.01, 0.5, 5.0]))
    return [[[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]]


geometries = st.one_of(
    position.map(lambda p: {"type": "Point", "coordinates": p}),
    position.map(lambda p: {"type": "Point", "coordinates": [*p, 12.5]}),  # altitude
    st.sampled_from([[True, 1.0], [1.0, "2"], [1.0], [], [[1.0, 2.0]], [1e300, 0.0]]).map(
        lambda c: {"type": "Point", "coordinates": c}),  # malformed
    st.lists(position, min_size=2, max_size=3).map(
        lambda ps: {"type": "LineString", "coordinates": ps}),
    st.lists(position, min_size=1, max_size=3).map(
        lambda ps: {"type": "MultiPoint", "coordinates": ps}),
    square().map(lambda c: {"type": "Polygon", "coordinates": c}),
    st.lists(position, min_size=1, max_size=2).map(lambda ps: {
        "type": "GeometryCollection",
        "geometries": [{"type": "Point", "coordinates": p} for p in ps]}),
)
geo_instances = st.one_of(
    st.builds(lambda g: {"type": "GeoProperty", "value": g}, geometries),
    st.builds(lambda g: {"type": "Property", "value": g}, geometries),
    st.builds(lambda g: {"type": "Relationship", "object": IDS[0], "value": g}, geometries),
    st.just({"type": "Property", "value": 3}),
)


@st.composite
def geo_attribute(draw: st.DrawFn) -> list[dict[str, Any]]:
    first = draw(geo_instances)
    more = draw(st.lists(geo_instances, max_size=1))
    return [first, *({**i, "datasetId": f"urn:ds:{n}"} for n, i in enumerate(more))]


@st.composite
def entities(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for entity_id in draw(st.lists(st.sampled_from(IDS), unique=True, max_size=7)):
        attrs = draw(st.dictionaries(st.sampled_from([LOC, OTHER]), geo_attribute(),
                                     max_size=2))
        out.append({"id": entity_id, "type": [NS + "T"], "attrs": attrs})
    return out


@st.composite
def geo_queries(draw: st.DrawFn) -> EntityQuery:
    x, y = draw(near_anchor())
    kind = draw(st.sampled_from(["near", "near-min", "within", "intersects", "contains",
                                 "disjoint", "equals", "overlaps"]))
    point = [x, y]
    polygon = draw(square())
    if kind == "near":
        georel = f"near;maxDistance=={draw(st.sampled_from([1, 50, 500, 50_000, 3e6]))}"
        geometry, coordinates = draw(st.sampled_from([("Point", point),
                                                      ("Polygon", polygon)]))
    elif kind == "near-min":
        georel, geometry, coordinates = "near;minDistance==500", "Point", point
    else:
        georel = kind
        geometry, coordinates = draw(st.sampled_from([
            ("Point", point), ("Polygon", polygon),
            ("LineString", [point, [x + 0.01, y + 0.01]]),
            ("MultiPoint", [point, [x + 1e-4, y]]),
        ]))
    geoproperty = draw(st.sampled_from(["loc", "where"]))
    try:
        geo_q = parse_geo_query(georel, geometry, coordinates, geoproperty)
    except BadRequestData:
        assume(False)
        raise
    return resolve_names(EntityQuery(geo_q=geo_q), expand, expand)


def _relocated(entity: dict[str, Any], instances: list[dict[str, Any]] | None) -> Any:
    """The PATCH of the location of ``entity``: its new instances (None: removed)."""
    def mutation(current: Any) -> Any:
        if current is None:
            return None
        attrs = dict(current["attrs"])
        if instances is None:
            attrs.pop(LOC, None)
        else:
            attrs[LOC] = instances
        return {**current, "attrs": attrs}
    return mutation


async def _answers(store: SqliteStore, tenant: str, query: EntityQuery,
                   items: list[dict[str, Any]], offset: int, limit: int | None) -> None:
    expected = sorted((e for e in items if matches(e, query)), key=lambda e: e["id"])
    found, total = await store.query_entities(tenant, query, count=True)
    assert found == expected
    assert total == len(expected)
    page, _ = await store.query_entities(tenant, query, offset=offset, limit=limit)
    assert page == (expected[offset:] if limit is None else expected[offset:offset + limit])


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first=entities(), second=entities(), others=entities(), query=geo_queries(),
       moved=st.dictionaries(st.sampled_from(IDS), st.none() | geo_attribute(), max_size=3),
       offset=st.integers(0, 2), limit=st.none() | st.integers(0, 3))
async def test_geo_queries_answer_what_matches_selects_after_every_write(
    tmp_path: Path, first: list[dict[str, Any]], second: list[dict[str, Any]],
    others: list[dict[str, Any]], query: EntityQuery,
    moved: dict[str, list[dict[str, Any]] | None], offset: int, limit: int | None,
) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.db"
    store = SqliteStore(path)
    await store.open()
    try:
        # a second tenant with entities of the same ids: never in the first's answers
        await store.modify_many("other", [(e["id"], put(e)) for e in others])
        await store.modify_many("", [(e["id"], put(e)) for e in first])
        await _answers(store, "", query, first, offset, limit)
        # replacements and deletions: the second set where the first was
        replaced = {e["id"]: e for e in second}
        await store.modify_many("", [(e["id"], put(replaced.get(e["id"]))) for e in first])
        await store.modify_many("", [(e["id"], put(e)) for e in second])
        current = {e["id"]: e for e in second}
        # PATCHes of the location, one entity at a time
        for entity_id, instances in moved.items():
            if entity_id not in current:
                continue
            mutation = _relocated(current[entity_id], instances)
            await store.modify("", entity_id, mutation)
            current[entity_id] = mutation(current[entity_id])
        await _answers(store, "", query, list(current.values()), offset, limit)
    finally:
        await store.close()
    # a restart: the same answers from the file
    store = SqliteStore(path)
    await store.open()
    try:
        await _answers(store, "", query, list(current.values()), offset, limit)
        await _answers(store, "other", query, others, offset, limit)
    finally:
        await store.close()


def _as_schema_9(path: Path) -> None:
    """Rewrite the index of a file as schema 9 kept it: each Point a box of the R*Tree
    (a row of geo_rows), its attr_values row the marker."""
    with closing(sqlite3.connect(path)) as conn, conn:
        cells = conn.execute(
            "SELECT n.tenant, n.name, v.id, v.val FROM attr_values v JOIN names n"
            " ON n.nid = v.attr WHERE typeof(v.val) = 'blob' AND v.val > x''").fetchall()
        assert cells  # the file has some to rewrite
        conn.execute("DELETE FROM attr_values WHERE typeof(val) = 'blob' AND val > x''")
        for tenant, name, entity_id, _ in cells:
            nid = conn.execute("SELECT nid FROM names WHERE tenant = ? AND name = ?",
                               (tenant, name)).fetchone()[0]
            conn.execute("INSERT OR IGNORE INTO attr_values VALUES (?, ?, ?, 0)",
                         (nid, entity_id, sqlite_index.MARKER))
        for tenant, name, entity_id, cell in cells:
            rid = conn.execute("INSERT INTO geo_rows (tenant, id, attr) VALUES (?, ?, ?)",
                               (tenant, entity_id, name)).lastrowid
            x, y = _decoded(bytes(cell))
            conn.execute("INSERT INTO geo_rtree VALUES (?, ?, ?, ?, ?)", (rid, x, x, y, y))
        conn.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")


def _decoded(cell: bytes) -> tuple[float, float]:
    """A point of the cell (its lower corner), for the boxes of :func:`_as_schema_9`."""
    qx, qy = int.from_bytes(cell[8:12], "big"), int.from_bytes(cell[12:], "big")
    return qx * 360.0 / 2**32 - 180.0, qy * 180.0 / 2**32 - 90.0


async def test_a_file_of_schema_9_is_rebuilt_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    items = [{"id": f"urn:x:{n}", "type": [NS + "T"], "attrs": {LOC: [{
        "type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.35 + n / 1000,
                                                                          48.85]}}]}}
        for n in range(20)]
    store = SqliteStore(path)
    await store.open()
    await store.modify_many("", [(e["id"], put(e)) for e in items])
    await store.close()
    _as_schema_9(path)
    store = SqliteStore(path)
    await store.open()
    try:
        query = resolve_names(EntityQuery(geo_q=parse_geo_query(
            "near;maxDistance==400", "Point", [2.355, 48.85], "loc")), expand, expand)
        expected = sorted((e for e in items if matches(e, query)), key=lambda e: e["id"])
        assert 0 < len(expected) < len(items)
        assert (await store.query_entities("", query))[0] == expected
        # the Points are cells again, none left in the R*Tree; a deletion leaves no row
        await store.modify_many("", [(items[0]["id"], put(None))])
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT COUNT(*) FROM geo_rows").fetchone() == (0,)
            assert conn.execute("SELECT COUNT(*) FROM attr_values WHERE typeof(val) = 'blob'"
                                " AND val > x''").fetchone() == (len(items) - 1,)
            assert conn.execute("SELECT COUNT(*) FROM attr_values WHERE id = ?",
                                (items[0]["id"],)).fetchone() == (0,)
    finally:
        await store.close()

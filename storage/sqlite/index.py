"""The query indexes of the SQLite store: attribute values and an R*Tree of geometries.

Kept in step with every entity write (``sqlite_bulk``; :func:`sync` for one
entity), on the writer thread.  ``entity_types`` holds an entity's types; it
and ``attr_values`` are keyed by the number of the name in ``sqlite_names``
(which carries the tenant) and the id:

* ``attr_values`` holds, per entity and top-level attribute, every number and
  string a q term without sub-attribute, member or key compares against
  (clause 4.9; the same targets as ``ngsi_ld.query.evaluate``).  ``val`` has no
  type affinity, so numbers stay numbers and strings strings (in SQLite every
  number sorts before every string, every string before every BLOB); ``vocab``
  marks VocabProperty IRIs.  An attribute with no such value (a GeoProperty, a
  JSON object, a boolean) has one row whose ``val`` is :data:`MARKER`, the empty
  BLOB, which no condition on values selects: so the entities having an
  attribute are its range of ``attr_values``, id by id (schema 7; before, a
  table ``entity_attrs`` repeated the attribute names of every entity, and a
  new Streetlight dirtied its 21 ranges in one more B-tree: about a quarter of
  the pages of a COMMIT of single creates, benchmarks/README.md).
* ``geo_rows`` / ``geo_rtree`` hold the bounding box of every attribute instance
  whose value is a GeoJSON geometry (clause 4.10), keyed by tenant, entity and
  attribute: a geo-query reads the boxes that intersect ``bbox_for(query)``.
  Except a Point of the lon/lat domain: its ``attr_values`` row is its cell
  (``sqlite_geocells``, schema 11), not the marker, and it has no box.

On the read side, :class:`Stream` is one index range read as ids in id order
(the entities of a type, having an attribute, or whose attribute values satisfy
a condition) and :func:`stream_size` an estimate of its length, with which
``sqlite_query`` chooses the streams to merge.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson

from ngsi_ld.instances import MAIN_MEMBER

from ..base import Entity
from ..helpers import entity_types
from . import names as sqlite_names
from .attribute_walk import changed_names as changed_names  # sync, the loader's rows
from .geocells import in_domain, point_cell

SCHEMA = """
CREATE TABLE IF NOT EXISTS entity_types (
    type INTEGER NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (type, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attr_values (
    attr INTEGER NOT NULL,
    id TEXT NOT NULL,
    val NOT NULL,
    vocab INTEGER NOT NULL,
    PRIMARY KEY (attr, id, val, vocab)
) WITHOUT ROWID;
-- The ids whose attribute has one value, in id order: an equality term of q reads
-- only its matches (a count over lanternHeight==10 at 100k: 1 ms instead of 33 ms).
CREATE INDEX IF NOT EXISTS attr_values_value ON attr_values (attr, val, id);
CREATE TABLE IF NOT EXISTS geo_rows (
    rid INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    attr TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS geo_rows_entity ON geo_rows (tenant, id);
CREATE VIRTUAL TABLE IF NOT EXISTS geo_rtree USING rtree (id, minx, maxx, miny, maxy);
"""
#: the index tables keyed by a number of ``sqlite_names`` (the layout since schema 6)
KEYED_TABLES = ("entity_types", "attr_values")
#: the table of attribute names of schema 6, folded into ``attr_values`` since schema 7
FOLDED_TABLE = "entity_attrs"
#: the ``val`` of the row of an attribute that has no value to index (see the module)
MARKER = b""

_GEOMETRIES = frozenset(
    ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
)
_INT64 = (-(2**63), 2**63 - 1)

ValueRow = tuple[str, Any, int]  # (attribute, value, vocab flag)
Box = tuple[str, float, float, float, float]  # (attribute, minx, maxx, miny, maxy)


def sql_number(value: int | float) -> int | float:
    """A JSON number as SQLite can bind it (integers beyond 64 bits become floats)."""
    if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
        return float(value)
    return value


def _attributes(
    entity: Entity | None, names: set[str] | None = None
) -> dict[str, list[Any]]:
    doc: Any = entity  # read as it is: compiled, the TypedDict's .get() checks its type
    attrs = doc.get("attrs") if doc is not None else None
    if not isinstance(attrs, dict):
        return {}
    return {
        n: (i if isinstance(i, list) else [i])
        for n, i in attrs.items() if names is None or n in names
    }


def _targets(instance: dict[str, Any]) -> list[Any]:
    kind = instance.get("type")
    if kind == "LanguageProperty":
        lang_map = instance.get("languageMap")
        if not isinstance(lang_map, dict):
            return []
        return [s for v in lang_map.values() for s in (v if isinstance(v, list) else [v])]
    member = MAIN_MEMBER.get(kind if isinstance(kind, str) else "", "value")
    if member not in instance:
        return []
    value = instance[member]
    out = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict) and "@value" in item:
            item = item["@value"]
        out.append(item)
    return out


def value_rows(entity: Entity | None, names: set[str] | None = None) -> set[ValueRow]:
    """The ``attr_values`` rows of an entity (numbers and strings of top-level attributes,
    :data:`MARKER` for an attribute that has none), of the attributes in ``names`` when
    given."""
    rows: set[ValueRow] = set()
    for name, instances in _attributes(entity, names).items():
        if len(instances) == 1:
            # the usual attribute: one instance whose main member is a string or a
            # number, one row (what _add_rows gives it, told by class checks alone)
            instance = instances[0]
            kind = instance.get("type") if instance.__class__ is dict else None
            if kind.__class__ is str and kind != "LanguageProperty":
                member = MAIN_MEMBER.get(kind, "value")
                value = instance.get(member)
                if member != "value" and instance.get("value").__class__ is dict:
                    _add_rows(rows, name, instances)  # maybe a Point: its cell
                    continue
                if value.__class__ is str:
                    rows.add((name, value, 1 if kind == "VocabProperty" else 0))
                    continue
                if value.__class__ is int or value.__class__ is float:
                    rows.add((name, sql_number(value), 0))
                    continue
        _add_rows(rows, name, instances)
    return rows


def _add_rows(rows: set[ValueRow], name: str, instances: list[Any]) -> None:
    """Add the value rows of attribute ``name`` to ``rows`` (:func:`value_rows`)."""
    found = len(rows)
    for instance in instances:
        if not isinstance(instance, dict):
            continue
        vocab = 1 if instance.get("type") == "VocabProperty" else 0
        for value in _targets(instance):
            if isinstance(value, str):
                rows.add((name, value, vocab))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                rows.add((name, sql_number(value), 0))
        # what geo_boxes reads: a Point of the domain is the cell of this row instead
        geometry = instance.get("value")
        if isinstance(geometry, dict):
            cell = _point_cell(geometry)
            if cell is not None:
                rows.add((name, cell, 0))
    if len(rows) == found:  # nothing to index: the attribute's presence alone
        rows.add((name, MARKER, 0))


def usual_update(before: Entity, after: Entity,
                 names: set[str]) -> tuple[list[ValueRow], list[ValueRow]] | None:
    """The ``attr_values`` rows an update of the attributes ``names`` deletes and
    inserts, when each of them has, before and after, one instance of the same kind
    whose main member is a string or a number and no object ``value``; None for any
    other update.

    What ``value_rows(before, names) - value_rows(after, names)`` and the converse
    give such an update, told without the sets; it moves no box (no geometry either
    side) and, the entity's types kept, no discovery counter (the same kinds).  The
    usual PATCH of a value or two (issue 19).
    """
    old_doc: Any = before  # read as they are (compiled, a TypedDict's .get() checks)
    new_doc: Any = after
    old, new = old_doc.get("attrs"), new_doc.get("attrs")
    if old.__class__ is not dict or new.__class__ is not dict:
        return None
    out: list[ValueRow] = []
    into: list[ValueRow] = []
    for name in names:
        was, now = _usual_row(name, old.get(name)), _usual_row(name, new.get(name))
        if was is None or now is None or was[0] != now[0]:
            return None
        if was[1] != now[1]:  # compared as the sets would: 1 and 1.0 are one row
            out.append(was[1])
            into.append(now[1])
    return out, into


def _usual_row(name: str, instances: Any) -> tuple[str, ValueRow] | None:
    """The kind and the one value row of an attribute in the form :func:`usual_update`
    takes, else None."""
    if instances.__class__ is not list or len(instances) != 1:
        return None
    instance = instances[0]
    if instance.__class__ is not dict:
        return None
    kind = instance.get("type")
    if kind.__class__ is not str or kind == "LanguageProperty":
        return None
    member = MAIN_MEMBER.get(kind, "value")
    if member != "value" and instance.get("value").__class__ is dict:
        return None  # what geo_boxes reads: maybe a geometry
    value = instance.get(member)
    if value.__class__ is str:
        return kind, (name, value, 1 if kind == "VocabProperty" else 0)
    if value.__class__ is int or value.__class__ is float:
        return kind, (name, sql_number(value), 0)
    return None


#: the classes of a JSON number (bool, an int subclass, is not one)
_NUMBER = frozenset((int, float))


def _extent(coords: Any, box: list[float]) -> bool:
    """Grow ``box`` [minx, maxx, miny, maxy] by every position in ``coords``; False if malformed."""
    if not isinstance(coords, list) or not coords:
        return False
    if _is_position(coords):
        if len(coords) < 2:
            return False
        x, y = float(coords[0]), float(coords[1])
        box[0], box[1] = min(box[0], x), max(box[1], x)
        box[2], box[3] = min(box[2], y), max(box[3], y)
        return True
    return all(_extent(c, box) for c in coords)


def _is_position(coords: list[Any]) -> bool:
    """Whether ``coords`` is a GeoJSON position (numbers only, booleans excluded)."""
    # the usual Point's (x, y) told by two class checks before the general test
    if len(coords) == 2 and coords[0].__class__ in _NUMBER and coords[1].__class__ in _NUMBER:
        return True
    return all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords)


def _domain_point(value: dict[str, Any]) -> tuple[float, float] | None:
    """(x, y) of a geometry that is a Point of the lon/lat domain (indexed by its cell,
    not boxed); None for any other value."""
    if value.get("type") != "Point":
        return None
    coords = value.get("coordinates")
    if not isinstance(coords, list) or len(coords) < 2 or not _is_position(coords):
        return None
    x, y = float(coords[0]), float(coords[1])  # as _extent reads them
    return (x, y) if in_domain(x, y) else None


def _point_cell(value: dict[str, Any]) -> bytes | None:
    """The cell (:func:`.geocells.point_cell`) of a :func:`_domain_point`; None for any
    other value."""
    point = _domain_point(value)
    return None if point is None else point_cell(point[0], point[1])


def geo_boxes(entity: Entity | None, names: set[str] | None = None) -> list[Box]:
    """The bounding box of every attribute instance whose value is a GeoJSON geometry
    (of the attributes in ``names`` when given), but a Point of the lon/lat domain:
    its cell is its value row (:func:`value_rows`)."""
    boxes: list[Box] = []
    for name, instances in _attributes(entity, names).items():
        for instance in instances:
            value = instance.get("value") if isinstance(instance, dict) else None
            if not isinstance(value, dict):
                continue
            kind = value.get("type")
            # any JSON object is a Property value: its "type" may be a list or object
            if kind.__class__ is not str or kind not in _GEOMETRIES:
                continue
            if _domain_point(value) is not None:  # its cell is its value row
                continue
            box = [float("inf"), float("-inf"), float("inf"), float("-inf")]
            if _extent(value.get("coordinates"), box):
                boxes.append((name, box[0], box[1], box[2], box[3]))
    return sorted(set(boxes))


def creation_rows(entity: Entity) -> tuple[list[Any], list[Box]]:
    """:func:`value_rows` and :func:`geo_boxes` of the entity created as ``entity`` (what
    the write of an entity where there was none indexes): the rows flat (attribute,
    value, vocab, attribute...), the boxes sorted.  One pass where every attribute is in
    its usual form (:func:`_usual_rows`), the general functions otherwise."""
    doc: Any = entity  # read as it is (compiled, a TypedDict's .get() checks its type)
    attrs = doc.get("attrs")
    if attrs.__class__ is dict:
        usual = _usual_rows(attrs)
        if usual is not None:
            return usual
    return list(chain.from_iterable(value_rows(entity))), geo_boxes(entity)


#: the instance kinds :func:`_usual_rows` takes, and the member each indexes
_USUAL_MEMBER = {"Property": "value", "GeoProperty": "value", "Relationship": "object"}


def _usual_rows(attrs: dict[str, Any]) -> tuple[list[Any], list[Box]] | None:
    """:func:`creation_rows` of an entity's ``attrs`` in one pass, where each attribute
    is in its usual form: one instance, a Property, GeoProperty or Relationship whose
    value is a string, a number or a JSON object; None otherwise."""
    rows: list[Any] = []
    boxes: list[Box] = []
    for name, instances in attrs.items():
        if instances.__class__ is not list or len(instances) != 1:
            return None
        instance = instances[0]
        if instance.__class__ is not dict:
            return None
        member = _USUAL_MEMBER.get(instance.get("type"))  # type: ignore[arg-type]
        if member is None or (member == "object" and "value" in instance):
            return None  # (geo_boxes reads any instance's "value")
        value = instance.get(member, MARKER)  # (no value: the marker row)
        if value.__class__ is dict:
            kind = value.get("type")
            if kind.__class__ is str and kind in _GEOMETRIES and member == "value":
                cell = _point_cell(value)
                if cell is not None:  # a Point of the domain: its cell, no box
                    rows += (name, cell, 0)
                    continue
                box = [float("inf"), float("-inf"), float("inf"), float("-inf")]
                if _extent(value.get("coordinates"), box):
                    boxes.append((name, box[0], box[1], box[2], box[3]))
            value = value.get("@value", MARKER)
        cls = value.__class__
        if cls is str or cls is float:
            rows += (name, value, 0)
        elif cls is int:
            rows += (name, sql_number(value), 0)
        elif cls is bytes or cls is bool or cls is dict or value is None:
            rows += (name, MARKER, 0)  # (MARKER itself is bytes)
        else:
            return None  # a list: its items
    boxes.sort()
    return rows, boxes


def sync(
    conn: sqlite3.Connection,
    tenant: str,
    entity_id: str,
    before: Entity | None,
    after: Entity | None,
    names: set[str] | None = None,
) -> None:
    """Bring the value and geometry indexes of one entity from ``before`` to ``after``
    (None: absent); the type and attribute indexes are ``sqlite_bulk``'s.

    ``names``: :func:`changed_names` of the two, when the caller has it already.
    """
    if names is None:
        names = changed_names(before, after)
    if not names:
        return
    old, new = value_rows(before, names), value_rows(after, names)
    nids = sqlite_names.ids(conn, tenant, {a for a, _, _ in old ^ new})
    if old - new:
        conn.executemany(
            "DELETE FROM attr_values WHERE attr = ? AND id = ? AND val = ? AND vocab = ?",
            [(nids[a], entity_id, v, k) for a, v, k in old - new],
        )
    if new - old:
        conn.executemany(
            "INSERT OR IGNORE INTO attr_values (attr, id, val, vocab) VALUES (?, ?, ?, ?)",
            [(nids[a], entity_id, v, k) for a, v, k in new - old],
        )
    if geo_boxes(before, names) == geo_boxes(after, names):
        return  # the other attributes' boxes did not change either
    # The geometries of an entity are rewritten together.
    old_boxes, new_boxes = geo_boxes(before), geo_boxes(after)
    if old_boxes:
        conn.execute(
            "DELETE FROM geo_rtree WHERE id IN"
            " (SELECT rid FROM geo_rows WHERE tenant = ? AND id = ?)",
            (tenant, entity_id),
        )
        conn.execute("DELETE FROM geo_rows WHERE tenant = ? AND id = ?", (tenant, entity_id))
    for attr, minx, maxx, miny, maxy in new_boxes:
        cursor = conn.execute(
            "INSERT INTO geo_rows (tenant, id, attr) VALUES (?, ?, ?)", (tenant, entity_id, attr)
        )
        conn.execute(
            "INSERT INTO geo_rtree (id, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)",
            (cursor.lastrowid, minx, maxx, miny, maxy),
        )


def text_keyed(conn: sqlite3.Connection) -> bool:
    """Whether the file has the index tables of schema 5 and below (keyed by the
    tenant and the name as text), which :func:`create` replaces."""
    columns = {info[1] for info in conn.execute("PRAGMA table_info(entity_types)")}
    return "tenant" in columns


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?",
                        (name,)).fetchone() is not None


def create(conn: sqlite3.Connection, rebuild: bool) -> None:
    """Create the index tables; ``rebuild`` fills them from the stored entities.

    Index tables of the text-keyed layout are dropped and rebuilt whatever
    ``rebuild`` says (a file written before schema 6), as are those of a file
    that has the ``entity_attrs`` table (schema 6).
    """
    if text_keyed(conn):
        for table in (*KEYED_TABLES, FOLDED_TABLE):
            conn.execute(f"DROP TABLE IF EXISTS {table}")  # its indexes go with it
        rebuild = True
    elif _has_table(conn, FOLDED_TABLE):
        # a file of schema 6: its attribute names go into attr_values (markers)
        conn.execute(f"DROP TABLE {FOLDED_TABLE}")
        rebuild = True
    sqlite_names.create(conn)
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    if not rebuild:
        return
    for table in (*KEYED_TABLES, "geo_rtree", "geo_rows"):
        conn.execute(f"DELETE FROM {table}")
    tenants = [t for (t,) in conn.execute("SELECT DISTINCT tenant FROM entities").fetchall()]
    for tenant in tenants:
        _rebuild_tenant(conn, tenant)


def _rebuild_tenant(conn: sqlite3.Connection, tenant: str) -> None:
    types: list[tuple[str, str]] = []
    values: list[tuple[str, str, Any, int]] = []
    rows = conn.execute("SELECT id, doc FROM entities WHERE tenant = ?", (tenant,)).fetchall()
    for entity_id, doc in rows:
        entity = orjson.loads(doc)
        types.extend((t, entity_id) for t in entity_types(entity))
        values.extend((a, entity_id, v, k) for a, v, k in value_rows(entity))
        for attr, minx, maxx, miny, maxy in geo_boxes(entity):
            cursor = conn.execute(
                "INSERT INTO geo_rows (tenant, id, attr) VALUES (?, ?, ?)",
                (tenant, entity_id, attr),
            )
            conn.execute(
                "INSERT INTO geo_rtree (id, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)",
                (cursor.lastrowid, minx, maxx, miny, maxy),
            )
    nids = sqlite_names.ids(conn, tenant, {n for n, _ in types} | {v[0] for v in values})
    conn.executemany("INSERT OR IGNORE INTO entity_types (type, id) VALUES (?, ?)",
                     sorted((nids[n], i) for n, i in types))
    conn.executemany(
        "INSERT OR IGNORE INTO attr_values (attr, id, val, vocab) VALUES (?, ?, ?, ?)",
        [(nids[n], i, v, k) for n, i, v, k in values],
    )


# -- the indexes as id streams (read side) ---------------------------------------------
_KEY_COLUMN = {"entity_types": "type", "attr_values": "attr"}
#: seconds a size estimate is trusted; a stale one only costs speed, never a wrong answer
SIZE_TTL = 30.0
#: sizes are counted up to this (a bounded count); beyond it streams count as equal
SIZE_CAP = 20_000
_sizes: dict[tuple[int, str, str, str], tuple[float, int]] = {}


@dataclass(frozen=True, slots=True)
class Stream:
    """The ids of one index range, in id order: the entities of a type, having an
    attribute, or whose attribute has a value satisfying ``cond``.

    ``cond`` is a condition on the ``attr_values`` row written with the alias ``v``
    (``v.val``, ``v.vocab``), ``params`` its parameters; without one, the stream
    is the entities having the attribute.  ``entity_types`` holds one row per
    id; ``attr_values`` may hold several.
    """

    table: str
    key: str
    cond: str = ""
    params: tuple[Any, ...] = ()
    #: an equality on a string that also matches a VocabProperty by its expansion
    #: (``cond`` tests both): the expansion, and the stream of the string alone, which
    #: the value index answers in id order; used when no value is that expansion
    vocab: str | None = None
    plain: Stream | None = None

    def _where(self, alias: str, tenant: str, params: list[Any]) -> str:
        params += (tenant, self.key)
        where = f"{alias}.{_KEY_COLUMN[self.table]} = {sqlite_names.NID}"
        if self.cond:
            params.extend(self.params)
            where += " AND " + self.cond.replace("v.", f"{alias}.")
        return where

    def select(self, alias: str, tenant: str, params: list[Any], after: object = None) -> str:
        """``SELECT alias.id`` of the range of ``tenant`` (ids in order); with ``after``
        (a placeholder appended to ``params``), only the ids greater than it."""
        where = self._where(alias, tenant, params)
        if after is not None:
            params.append(after)
            where += f" AND {alias}.id > ?"
        return f"SELECT {alias}.id FROM {self.table} {alias} WHERE {where}"

    def exists(self, outer: str, tenant: str, params: list[Any]) -> str:
        """``EXISTS`` of the row of ``outer.id`` in the range (a lookup, not a scan)."""
        return (
            f"EXISTS (SELECT 1 FROM {self.table} x WHERE {self._where('x', tenant, params)}"
            f" AND x.id = {outer}.id)"
        )


def vocab_used(conn: sqlite3.Connection, tenant: str, attr: str, iri: str) -> bool:
    """Whether some entity's ``attr`` is a VocabProperty whose value expands to ``iri``."""
    return conn.execute(
        f"SELECT 1 FROM attr_values WHERE attr = {sqlite_names.NID} AND val = ? AND vocab = 1"
        " LIMIT 1", (tenant, attr, iri)).fetchone() is not None


def distinct_keys(conn: sqlite3.Connection, table: str, tenant: str) -> list[str]:
    """The distinct keys (types, attribute names) of an index table, sorted: the
    tenant's names of the dictionary that key at least one row (one seek each)."""
    column = _KEY_COLUMN[table]
    rows = conn.execute(
        f"SELECT n.name FROM names n WHERE n.tenant = ? AND EXISTS"
        f" (SELECT 1 FROM {table} WHERE {column} = n.nid) ORDER BY n.name",
        (tenant,),
    ).fetchall()
    return [key for (key,) in rows]


def stream_size(conn: sqlite3.Connection, tenant: str, stream: Stream) -> int:
    """The rows a scan of ``stream`` reads (its key's range, up to ``SIZE_CAP``).

    Counted once per ``SIZE_TTL`` seconds and connection: it only guides the plan.
    """
    key = (id(conn), tenant, stream.table, stream.key)
    now = time.monotonic()
    known = _sizes.get(key)
    if known is not None and now - known[0] < SIZE_TTL:
        return known[1]
    column = _KEY_COLUMN[stream.table]
    (size,) = conn.execute(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {stream.table}"
        f" WHERE {column} = {sqlite_names.NID} LIMIT ?)",
        (tenant, stream.key, SIZE_CAP),
    ).fetchone()
    if len(_sizes) > 4096:
        _sizes.clear()
    _sizes[key] = (now, size)
    return int(size)

"""The SQLite query indexes keyed by the numbers of the name dictionary (sqlite_names).

A name keeps its number for the life of the file (VACUUM, entity replaced or
deleted); a file of the text-keyed layout (schema 5 and below) is rebuilt on
open; several stores, connections and processes sharing one file agree on the
numbers, also when a write that added a name was rolled back.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from storage_contract import fresh_tenant, load

from ngsi_ld.query import EntityQuery, matches, parse_q, parse_type_expr, resolve_names
from storage import SqliteStore
from storage.sqlite import names as sqlite_names
from storage.sqlite import sql

NS = "https://example.org/"
REPO = Path(__file__).resolve().parent.parent


def expand(name: str) -> str:
    return NS + name


def entity(n: int, kind: str, **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:x:{n:03d}", "type": [NS + kind],
            "attrs": {NS + k: [{"type": "Property", "value": v}] for k, v in attrs.items()}}


def put(new: dict[str, Any] | None) -> Any:
    return lambda old: new


def query(types: str | None = None, q: str | None = None,
          attrs: list[str] | None = None) -> EntityQuery:
    return resolve_names(EntityQuery(
        type_expr=None if types is None else parse_type_expr(types),
        q=None if q is None else parse_q(q), attrs=attrs), expand, expand)


QUERIES = [query("T", 's=="on";a>=2'), query("T|U"), query(q="a>3"), query(q="!b"),
           query("T", "a==1..4"), query(attrs=["b"]), query("U", 's~=".*n"')]


async def _answers(store: SqliteStore, tenant: str) -> list[tuple[list[str], int | None]]:
    out = []
    for item in QUERIES:
        found, total = await store.query_entities(tenant, item, limit=7, count=True)
        out.append(([e["id"] for e in found], total))
    out.append((await store.type_names(tenant), None))
    out.append((await store.attribute_names(tenant), None))
    return out


def _expected(items: list[dict[str, Any]]) -> list[tuple[list[str], int | None]]:
    out: list[tuple[list[str], int | None]] = []
    for item in QUERIES:
        ids = sorted(e["id"] for e in items if matches(e, item))
        out.append((ids[:7], len(ids)))
    out.append((sorted({t for e in items for t in e["type"]}), None))
    out.append((sorted({a for e in items for a in e["attrs"]}), None))
    return out


def _items(count: int) -> list[dict[str, Any]]:
    return [
        entity(n, "T" if n % 3 else "U", a=n % 6, s="on" if n % 2 else "off",
               **({"b": n} if n % 5 == 0 else {}))
        for n in range(count)
    ]


def _to_schema_6(path: Path) -> None:
    """Rewrite the index tables of ``path`` as schema 6 had them: the attribute names
    of every entity in ``entity_attrs``, no marker rows in ``attr_values``."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE entity_attrs (attr INTEGER NOT NULL, id TEXT NOT NULL,"
                     " PRIMARY KEY (attr, id)) WITHOUT ROWID")
        conn.execute("INSERT INTO entity_attrs SELECT DISTINCT attr, id FROM attr_values")
        conn.execute("DELETE FROM attr_values WHERE typeof(val) = 'blob'")
        conn.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")


def _to_text_keyed(path: Path) -> None:
    """Rewrite the index tables of ``path`` as schema 5 had them (text keys), as a
    file written before the dictionary was."""
    _to_schema_6(path)
    with sqlite3.connect(path) as conn:
        for table, column in (("entity_types", "type"), ("entity_attrs", "attr")):
            rows = conn.execute(
                f"SELECT n.tenant, n.name, t.id FROM {table} t JOIN names n ON n.nid = t.{column}"
            ).fetchall()
            conn.execute(f"DROP TABLE {table}")
            conn.execute(
                f"CREATE TABLE {table} (tenant TEXT NOT NULL, {column} TEXT NOT NULL,"
                f" id TEXT NOT NULL, PRIMARY KEY (tenant, {column}, id)) WITHOUT ROWID")
            conn.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)", rows)
        values = conn.execute(
            "SELECT n.tenant, n.name, v.id, v.val, v.vocab FROM attr_values v"
            " JOIN names n ON n.nid = v.attr").fetchall()
        conn.execute("DROP TABLE attr_values")
        conn.execute(
            "CREATE TABLE attr_values (tenant TEXT NOT NULL, attr TEXT NOT NULL,"
            " id TEXT NOT NULL, val NOT NULL, vocab INTEGER NOT NULL,"
            " PRIMARY KEY (tenant, attr, id, val, vocab)) WITHOUT ROWID")
        conn.execute("CREATE INDEX attr_values_value ON attr_values (tenant, attr, val, id)")
        conn.executemany("INSERT INTO attr_values VALUES (?, ?, ?, ?, ?)", values)
        conn.execute("DROP TABLE names")
        conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")


async def test_a_file_of_the_text_keyed_layout_is_rebuilt_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    items = _items(40)
    store = SqliteStore(path)
    await store.open()
    tenant = await load(store, items)
    other = await load(store, [entity(1, "T", a=99), entity(900, "V", c=1)])
    await store.close()
    _to_text_keyed(path)
    with sqlite3.connect(path) as conn:
        assert "tenant" in {c[1] for c in conn.execute("PRAGMA table_info(attr_values)")}
    reopened = SqliteStore(path)
    await reopened.open()
    try:
        assert await _answers(reopened, tenant) == _expected(items)
        assert await _answers(reopened, other) == _expected(
            [entity(1, "T", a=99), entity(900, "V", c=1)])
        # and it is written to in the new layout
        await reopened.modify(tenant, "urn:x:500", put(entity(500, "T", a=3, s="on")))
        items.append(entity(500, "T", a=3, s="on"))
        assert await _answers(reopened, tenant) == _expected(items)
    finally:
        await reopened.close()
    with sqlite3.connect(path) as conn:
        assert "tenant" not in {c[1] for c in conn.execute("PRAGMA table_info(attr_values)")}
        (version,) = conn.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert int(version) == sql.SCHEMA_VERSION


async def test_a_file_of_schema_6_gets_its_attribute_names_folded_on_open(
        tmp_path: Path) -> None:
    path = tmp_path / "six.db"
    # c is a JSON object and d a boolean: attributes with no value to index
    items = [*_items(40), {**entity(700, "V", a=1), "attrs": {
        NS + "c": [{"type": "Property", "value": {"x": 1}}],
        NS + "d": [{"type": "Property", "value": True}]}}]
    store = SqliteStore(path)
    await store.open()
    tenant = await load(store, items)
    await store.close()
    _to_schema_6(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM attr_values WHERE typeof(val) = 'blob'"
                            ).fetchone() == (0,)
    reopened = SqliteStore(path)
    await reopened.open()
    try:
        assert await _answers(reopened, tenant) == _expected(items)
        for item in (query(q="c"), query(attrs=["d"]), query("V", "!c"), query(q="c;!b")):
            found, total = await reopened.query_entities(tenant, item, count=True)
            ids = sorted(e["id"] for e in items if matches(e, item))
            assert ([e["id"] for e in found], total) == (ids, len(ids))
    finally:
        await reopened.close()
    with sqlite3.connect(path) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_schema")}
        assert "entity_attrs" not in tables
        markers = conn.execute(
            "SELECT n.name, v.id FROM attr_values v JOIN names n ON n.nid = v.attr"
            " WHERE typeof(v.val) = 'blob'").fetchall()
        assert sorted(markers) == [(NS + "c", "urn:x:700"), (NS + "d", "urn:x:700")]
        (version,) = conn.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert int(version) == sql.SCHEMA_VERSION == 14


async def test_numbers_survive_vacuum_replace_and_delete(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    store = SqliteStore(path, readers=1)
    await store.open()
    try:
        items = _items(30)
        tenant = await load(store, items)
        with sqlite3.connect(path) as conn:
            before = conn.execute("SELECT nid, tenant, name FROM names ORDER BY nid").fetchall()
        # every entity of type U deleted, then written again (new rows, same names)
        gone = [e for e in items if e["type"] == [NS + "U"]]
        await store.modify_many(tenant, [(e["id"], put(None)) for e in gone])
        kept = [e for e in items if e not in gone]
        assert await _answers(store, tenant) == _expected(kept)
        with sqlite3.connect(path) as conn:
            conn.execute("VACUUM")
        await store.modify_many(tenant, [(e["id"], put(e)) for e in gone])
        # replaced in place: other values, one attribute less
        replaced = {**items[4], "attrs": {NS + "a": [{"type": "Property", "value": 5}]}}
        await store.modify(tenant, replaced["id"], put(replaced))
        items[4] = replaced
        assert await _answers(store, tenant) == _expected(items)
        with sqlite3.connect(path) as conn:
            after = conn.execute("SELECT nid, tenant, name FROM names ORDER BY nid").fetchall()
        assert after == before
    finally:
        await store.close()


async def test_two_stores_on_one_file_share_the_dictionary(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    first, second = SqliteStore(path, readers=1), SqliteStore(path, readers=1)
    await first.open()
    await second.open()
    try:
        tenant = fresh_tenant()
        written: list[dict[str, Any]] = []
        # each store in turn adds names the other has not seen, and reads them back
        for n, (writer, reader) in enumerate([(first, second), (second, first)] * 3):
            new = entity(n, ["T", "U"][n % 2], **{f"x{n}": n, "a": n, "s": "on"})
            await writer.modify(tenant, new["id"], put(new))
            written.append(new)
            for store in (writer, reader):
                assert await _answers(store, tenant) == _expected(written)
                found, _ = await store.query_entities(tenant, query(q=f"x{n}=={n}"))
                assert [e["id"] for e in found] == [new["id"]]
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT tenant, name, COUNT(*) FROM names GROUP BY 1, 2")
            assert all(count == 1 for _, _, count in rows)
    finally:
        await first.close()
        await second.close()


_CHILD = textwrap.dedent("""
    import asyncio, sys
    from storage import SqliteStore

    async def main(path, tenant):
        store = SqliteStore(path)
        await store.open()
        try:
            for n in range(3):
                doc = {"id": f"urn:x:c{n}", "type": ["https://example.org/C"],
                       "attrs": {f"https://example.org/child{n}": [
                           {"type": "Property", "value": n}]}}
                await store.modify(tenant, doc["id"], lambda old, doc=doc: doc)
        finally:
            await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


async def test_names_written_by_another_process_are_found(tmp_path: Path) -> None:
    path = tmp_path / "proc.db"
    store = SqliteStore(path, readers=1)
    await store.open()
    try:
        tenant = await load(store, _items(10))
        child_query = query("C", "child1==1")
        found, _ = await store.query_entities(tenant, child_query)  # planned: no such name
        assert found == []
        child = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", _CHILD, str(path), tenant],
            cwd=REPO, capture_output=True, text=True, timeout=120)
        assert child.returncode == 0, child.stderr
        found, total = await store.query_entities(tenant, child_query, count=True)
        assert [e["id"] for e in found] == ["urn:x:c1"] and total == 1
        assert NS + "C" in await store.type_names(tenant)
        # this process's writer adds a name after the child's: its own number
        await store.modify(tenant, "urn:x:700", put(entity(700, "C", child9=9)))
        found, _ = await store.query_entities(tenant, query("C", "child9==9"))
        assert [e["id"] for e in found] == ["urn:x:700"]
        found, _ = await store.query_entities(tenant, query(q="child2==2"))
        assert [e["id"] for e in found] == ["urn:x:c2"]
    finally:
        await store.close()


def test_a_number_of_a_rolled_back_write_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    one, two = sql.connect(path, readonly=False), sql.connect(path, readonly=False)
    one.execute("BEGIN IMMEDIATE")
    sql.create_schema(one)
    one.execute("COMMIT")
    # one learns "kept" in a committed transaction, "lost" in a job rolled back
    one.execute("BEGIN IMMEDIATE")
    sqlite_names.begin(one)
    kept = sqlite_names.ids(one, "", ["kept"])["kept"]
    one.execute("SAVEPOINT job")
    lost = sqlite_names.ids(one, "", ["lost"])["lost"]
    one.execute("ROLLBACK TO job")
    sqlite_names.rolled_back(one)
    one.execute("RELEASE job")
    one.execute("COMMIT")
    sqlite_names.committed(one)
    sqlite_names.end(one)
    # the other connection takes the number "lost" had, for another name
    two.execute("BEGIN IMMEDIATE")
    assert sqlite_names.ids(two, "", ["other"])["other"] == lost
    two.execute("COMMIT")
    one.execute("BEGIN IMMEDIATE")
    sqlite_names.begin(one)
    again = sqlite_names.ids(one, "", ["kept", "lost"])
    one.execute("COMMIT")
    sqlite_names.committed(one)
    sqlite_names.end(one)
    assert again["kept"] == kept and again["lost"] not in (kept, lost)
    rows = dict(one.execute("SELECT name, nid FROM names").fetchall())
    assert rows == {"kept": kept, "other": lost, "lost": again["lost"]}
    one.close()
    two.close()


async def test_a_tenant_sees_only_its_names(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db")
    await store.open()
    try:
        mine = await load(store, [entity(1, "T", a=1)])
        theirs = await load(store, [entity(1, "U", b=1), entity(2, "T", a=2)])
        assert await store.type_names(mine) == [NS + "T"]
        assert await store.attribute_names(mine) == [NS + "a"]
        found, total = await store.query_entities(mine, query("T", "a>=1"), count=True)
        assert [e["id"] for e in found] == ["urn:x:001"] and total == 1
        found, total = await store.query_entities(theirs, query("T", "a>=1"), count=True)
        assert [e["id"] for e in found] == ["urn:x:002"] and total == 1
        # driven by the type index, the entity joined in the tenant of the query
        # (urn:x:001 is in both tenants)
        for tenant, expected in ((mine, [entity(1, "T", a=1)]),
                                 (theirs, [entity(1, "U", b=1)])):
            for item in (query("T|U", attrs=["a", "b"]), query(q='a>=1|b>=1'),
                         query("T|U", "a>=1|b>=1")):
                found, total = await store.query_entities(tenant, item, limit=1, count=True)
                assert [(e["id"], e["type"]) for e in found] == [
                    (e["id"], e["type"]) for e in expected]
        # a plan driven by the type index and joined to entities (``?1``: the tenant)
        for tenant, expected_id in ((mine, "urn:x:001"), (theirs, "urn:x:002")):
            found, total = await store.query_entities(
                tenant, query("T", "a>=1", attrs=["a"]), count=True)
            assert [(e["id"], e["type"]) for e in found] == [(expected_id, [NS + "T"])]
            assert total == 1
    finally:
        await store.close()

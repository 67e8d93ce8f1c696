"""SQLite specifics: persistence, WAL, durability under SIGKILL, group commit, threads."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from storage_contract import EntityScan, add_attr, create, entity, scan_entities

from ngsi_ld.errors import AlreadyExists, BadRequestData, ServiceUnavailable
from ngsi_ld.model import Change
from ngsi_ld.query import EntityQuery
from ngsi_ld.temporal import History, TemporalQuery, history_of_write
from storage import DEFAULT_TENANT, ContextRecord, Mutation, SqliteStore
from storage.sqlite.sql import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent
U = "https://example.org/U"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "broker.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def slow(mutation: Mutation, seconds: float) -> Mutation:
    """``mutation``, taking ``seconds`` of the writer thread's time."""

    def run(current: dict | None) -> dict | None:
        time.sleep(seconds)
        return mutation(current)

    return run


async def test_data_persists_across_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "broker.db"
    first = SqliteStore(path)
    await first.open()
    e = entity("urn:ngsi-ld:T:1", p=1)
    await first.modify("tenant1", e["id"], create(e))
    await first.modify(DEFAULT_TENANT, "urn:ngsi-ld:T:2", create(entity("urn:ngsi-ld:T:2")))
    record = ContextRecord("urn:ctx", "Hosted", {"@context": {"p": "x:p"}}, "2026-01-01T00:00:00Z")
    await first.put_context(record)
    await first.close()

    second = SqliteStore(path)
    await second.open()
    try:
        assert await second.get_entity("tenant1", e["id"]) == e
        assert await second.get_entity(DEFAULT_TENANT, e["id"]) is None
        assert await second.list_tenants() == ["tenant1"]
        assert await second.tenant_exists("tenant1")
        assert await second.get_context("urn:ctx") == record
        _, total = await scan_entities(second, DEFAULT_TENANT, EntityScan())
        assert total == 1
    finally:
        await second.close()


async def test_wal_mode_and_synchronous_normal(store: SqliteStore) -> None:
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # synchronous is per connection: ask the writer's own connection.
    level = await store._write(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])
    assert level == 1  # NORMAL


async def test_index_tables_follow_every_write(store: SqliteStore) -> None:
    e = entity("urn:ngsi-ld:T:1", p=1, q=2)
    await store.modify("t", e["id"], create(e))

    def retype(current: dict | None) -> dict | None:
        assert current is not None
        current["type"] = [U]
        del current["attrs"]["https://example.org/q"]
        current["attrs"]["https://example.org/r"] = [{"type": "Property", "value": 3}]
        return current

    def index(table: str) -> list[tuple[str, str, str]]:
        # (tenant, name, id): the key of a row is the number of a name (sqlite_names);
        # the attributes of an entity are its keys in attr_values (values or a marker)
        with sqlite3.connect(store.path) as conn:
            column = {"entity_types": "type", "attr_values": "attr"}[table]
            return sorted(conn.execute(
                f"SELECT DISTINCT n.tenant, n.name, t.id FROM {table} t"
                f" JOIN names n ON n.nid = t.{column}"
            ).fetchall())

    await store.modify("t", e["id"], retype)
    assert index("entity_types") == [("t", U, e["id"])]
    assert index("attr_values") == [
        ("t", "https://example.org/p", e["id"]),
        ("t", "https://example.org/r", e["id"]),
    ]
    await store.modify("t", e["id"], lambda current: None)
    assert index("entity_types") == [] and index("attr_values") == []


async def test_group_commit_groups_concurrent_writes(store: SqliteStore) -> None:
    commits, jobs = store.commit_count, store.job_count
    head = entity("urn:ngsi-ld:T:head")
    first = asyncio.ensure_future(store.modify("t", head["id"], slow(create(head), 0.1)))
    await asyncio.sleep(0.01)  # the writer is now busy with the slow job

    def refused(current: dict | None) -> dict | None:
        raise BadRequestData("refused")

    mutations = [
        (f"urn:ngsi-ld:T:{n}", refused if n % 3 == 0 else create(entity(f"urn:ngsi-ld:T:{n}")))
        for n in range(99)
    ]

    def half_written(current: dict | None) -> dict | None:
        # The tenant row is written before the document fails to serialise.
        return {"id": "urn:ghost", "type": [U], "attrs": {"x": object()}}

    results = await asyncio.gather(
        first,
        *(store.modify("t", i, m) for i, m in mutations),
        store.modify("ghost", "urn:ghost", half_written),
        return_exceptions=True,
    )
    assert store.job_count - jobs == 101
    assert store.commit_count - commits <= 3  # 101 writes, at most a few transactions
    assert isinstance(results[-1], TypeError)
    assert not await store.tenant_exists("ghost")
    # Each write of the group stood alone: the refused ones left nothing, the others all landed.
    for (entity_id, _), result in zip(mutations, results[1:-1], strict=True):
        stored = await store.get_entity("t", entity_id)
        if int(entity_id.rsplit(":", 1)[1]) % 3 == 0:
            assert isinstance(result, BadRequestData) and stored is None
        else:
            assert stored is not None and stored["id"] == entity_id


async def test_grouped_writes_of_one_entity_apply_in_order(store: SqliteStore) -> None:
    # the single writes queued together run as one batch (storage/sqlite/writes.py):
    # each must see the one before it, as if they had run one by one
    commits = store.commit_count
    head = entity("urn:ngsi-ld:T:head")
    first = asyncio.ensure_future(store.modify("t", head["id"], slow(create(head), 0.1)))
    await asyncio.sleep(0.01)
    e = entity("urn:ngsi-ld:T:1", p=1)

    def refused(current: dict | None) -> dict | None:
        raise BadRequestData("refused")

    def recorder(before: dict | None, after: dict | None, new_id: Any) -> History | None:
        return history_of_write(before, after, "2026-01-02T00:00:00Z", new_id)

    results = await asyncio.gather(
        first,
        store.modify("t", e["id"], create(e), record=recorder),
        store.modify("t", e["id"], add_attr("q", 2), record=recorder),
        store.modify("t", e["id"], refused, record=recorder),
        store.modify("t", e["id"], add_attr("q", 3), record=recorder),
        store.modify("t", e["id"], create(e), record=recorder),
        return_exceptions=True,
    )
    assert store.commit_count - commits <= 2
    created, second, _, fourth = results[1:5]
    assert isinstance(created, Change) and created.before is None
    assert isinstance(second, Change) and second.before == e
    assert isinstance(results[3], BadRequestData) and isinstance(results[5], AlreadyExists)
    assert isinstance(fourth, Change) and fourth.before == second.after
    stored = await store.get_entity("t", e["id"])
    assert stored is not None
    assert stored["attrs"]["https://example.org/q"][0]["value"] == 3
    found = await store.history.read_history("t", [e["id"]], None,
                                              TemporalQuery(timeproperty="modifiedAt"))
    assert sorted(repr(i.value) for i in found[e["id"]]) == ["1", "2", "3"]
    assert [x["id"] for x in (await store.query_entities(
        "t", EntityQuery(attrs=["https://example.org/q"])))[0]] == [e["id"]]


async def test_event_loop_keeps_running_during_a_big_batch(store: SqliteStore) -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    batch = [
        (f"urn:ngsi-ld:T:{n}", slow(create(entity(f"urn:ngsi-ld:T:{n}")), 0.002))
        for n in range(150)
    ]
    outcomes = await store.modify_many(DEFAULT_TENANT, batch)
    during = ticks - before
    stop.set()
    await task
    assert all(o.error is None for o in outcomes)
    assert during >= 10  # a blocked loop would not have ticked at all


async def test_reads_are_served_while_the_writer_is_busy(store: SqliteStore) -> None:
    e = entity("urn:ngsi-ld:T:1", p=1)
    await store.modify(DEFAULT_TENANT, e["id"], create(e))
    write = asyncio.ensure_future(
        store.modify(DEFAULT_TENANT, e["id"], slow(add_attr("q", 2), 0.3))
    )
    await asyncio.sleep(0.02)
    assert await store.get_entity(DEFAULT_TENANT, e["id"]) == e  # last committed state
    assert not write.done()
    await write
    got = await store.get_entity(DEFAULT_TENANT, e["id"])
    assert got is not None and "https://example.org/q" in got["attrs"]


async def test_cancelled_caller_does_not_stop_the_store(store: SqliteStore) -> None:
    e = entity("urn:ngsi-ld:T:1", p=1)
    write = asyncio.ensure_future(store.modify(DEFAULT_TENANT, e["id"], slow(create(e), 0.1)))
    await asyncio.sleep(0.02)
    write.cancel()
    with pytest.raises(asyncio.CancelledError):
        await write
    # The write was already under way: it completes, and the store keeps working.
    await store.modify(DEFAULT_TENANT, "urn:ngsi-ld:T:2", create(entity("urn:ngsi-ld:T:2")))
    assert await store.get_entity(DEFAULT_TENANT, e["id"]) == e


async def test_closed_store_is_unavailable(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "x.db")
    with pytest.raises(ServiceUnavailable):
        await s.get_entity(DEFAULT_TENANT, "urn:x")
    await s.open()
    await s.close()
    with pytest.raises(ServiceUnavailable):
        await s.modify(DEFAULT_TENANT, "urn:x", create(entity("urn:x")))
    with pytest.raises(ServiceUnavailable):
        await scan_entities(s, DEFAULT_TENANT, EntityScan())


async def test_open_failure_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    s = SqliteStore(tmp_path / "file" / "broker.db")
    with pytest.raises(ServiceUnavailable, match="cannot open"):
        await s.open()



async def test_a_file_of_a_later_schema_is_not_opened_nor_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "broker.db"
    s = SqliteStore(path)
    await s.open()
    await s.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                     (str(SCHEMA_VERSION + 1),))
    later = SqliteStore(path)
    with pytest.raises(ServiceUnavailable, match="later version of the broker"):
        await later.open()
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == str(SCHEMA_VERSION + 1)


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, sys.argv[2])
    from storage import SqliteStore

    async def writer(store, worker):
        n = 0
        while True:
            entity_id = f"urn:ngsi-ld:T:{worker}-{n}"
            doc = {"id": entity_id, "type": ["https://example.org/T"], "attrs": {}}
            await store.modify("", entity_id, lambda current, doc=doc: doc)
            print("done", entity_id, flush=True)
            n += 1

    async def main():
        store = SqliteStore(sys.argv[1])
        await store.open()
        await asyncio.gather(*(writer(store, w) for w in range(8)))

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(path), str(ROOT), stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    acknowledged: list[str] = []
    try:
        while len(acknowledged) < 300:
            line = await asyncio.wait_for(child.stdout.readline(), timeout=30)
            assert line, "the child process stopped early"
            acknowledged.append(line.decode().split()[1])
    finally:
        child.send_signal(signal.SIGKILL)
    rest = await child.stdout.read()
    await child.wait()
    assert child.returncode == -signal.SIGKILL
    # Lines still in the pipe were acknowledged too; a line cut short was not.
    acknowledged += [line.split()[1] for line in rest.decode().split("\n")[:-1]]

    reopened = SqliteStore(path)
    await reopened.open()
    try:
        found, total = await scan_entities(reopened, DEFAULT_TENANT, EntityScan(ids=acknowledged))
        assert [e["id"] for e in found] == sorted(acknowledged)
        assert total == len(acknowledged) == len(set(acknowledged))
    finally:
        await reopened.close()


# -- versions (entities.version), the key of the render caches -----------------------
async def _version(store: SqliteStore, entity_id: str, tenant: str = DEFAULT_TENANT) -> int | None:
    found = await store.read_versioned(tenant, entity_id)
    return None if found is None else found.version


async def test_every_write_gives_a_new_version(store: SqliteStore) -> None:
    e = entity("urn:ngsi-ld:T:v1", p=1)
    await store.modify(DEFAULT_TENANT, e["id"], create(e))
    seen = [await _version(store, e["id"])]
    for n in range(3):
        await store.modify(DEFAULT_TENANT, e["id"], add_attr("q", n))
        seen.append(await _version(store, e["id"]))
    await store.modify(DEFAULT_TENANT, e["id"], lambda current: None)
    assert await _version(store, e["id"]) is None
    await store.modify(DEFAULT_TENANT, e["id"], create(e))  # the same id again
    seen.append(await _version(store, e["id"]))
    assert len(set(seen)) == len(seen)
    found = await store.read_versioned(DEFAULT_TENANT, e["id"])
    assert found is not None and found.entity == e


async def test_versions_differ_across_processes_sharing_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    one, two = SqliteStore(path), SqliteStore(path)
    await one.open()
    await two.open()
    try:
        e = entity("urn:ngsi-ld:T:v2", p=1)
        await one.modify(DEFAULT_TENANT, e["id"], create(e))
        first = await _version(two, e["id"])
        await two.modify(DEFAULT_TENANT, e["id"], add_attr("q", 1))
        second = await _version(one, e["id"])
        seen = await one.read_versioned(DEFAULT_TENANT, e["id"])  # the other's write
        assert seen is not None and "https://example.org/q" in seen.entity["attrs"]
        await one.modify(DEFAULT_TENANT, e["id"], add_attr("q", 2))
        assert len({first, second, await _version(two, e["id"])}) == 3
    finally:
        await one.close()
        await two.close()


async def test_query_versioned_reads_documents_only_where_wanted(store: SqliteStore) -> None:
    from ngsi_ld.query import EntityQuery, TypeName

    for n in range(5):
        e = entity(f"urn:ngsi-ld:T:w{n}", p=n)
        await store.modify(DEFAULT_TENANT, e["id"], create(e))
    query = EntityQuery(type_expr=TypeName(entity("x")["type"][0]))
    every, _ = await store.query_entities(DEFAULT_TENANT, query)
    items, total = await store.query_versioned(
        DEFAULT_TENANT, query, lambda i, v: i.endswith(("1", "3")), limit=4, count=True
    )
    assert total == 5 and [i.entity_id for i in items] == [e["id"] for e in every[:4]]
    assert [i.has_document for i in items] == [False, True, False, True]
    assert [i.entity for i in items if i.has_document] == [every[1], every[3]]
    with pytest.raises(LookupError):
        _ = items[0].entity


async def test_a_schema_2_file_gains_versions(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    first = SqliteStore(path)
    await first.open()
    e = entity("urn:ngsi-ld:T:old", p=1)
    await first.modify(DEFAULT_TENANT, e["id"], create(e))
    await first.close()
    conn = sqlite3.connect(path)  # make it look like a file written before the version column
    conn.executescript(
        "ALTER TABLE entities DROP COLUMN version;"
        "DELETE FROM meta WHERE key = 'entity_version';"
        "UPDATE meta SET value = '2' WHERE key = 'schema_version';"
    )
    conn.close()
    second = SqliteStore(path)
    await second.open()
    try:
        assert await _version(second, e["id"]) == 0
        assert await second.get_entity(DEFAULT_TENANT, e["id"]) == e
        await second.modify(DEFAULT_TENANT, e["id"], add_attr("q", 1))
        assert (await _version(second, e["id"]) or 0) > 0
    finally:
        await second.close()


# -- the WAL index (``-shm``) read by data_version -------------------------------------
# SQLite's unix VFS: the "dead man switch" byte of the WAL index.  A process that can
# lock it exclusively takes itself for the first opener and resets the index.
PROBE_WAL_INDEX = textwrap.dedent(
    """
    import fcntl, os, sys
    if not os.path.exists(sys.argv[1] + "-shm"):
        sys.exit(print("free"))
    with open(sys.argv[1] + "-shm", "r+b") as shm:
        try:
            fcntl.lockf(shm, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
            print("free")
        except OSError:
            print("held")
    """
)

OTHER_PROCESS_WRITES = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', 'x')")
    conn.close()
    """
)


async def _run(script: str, path: Path) -> str:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(path), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    assert child.returncode == 0
    return out.decode().strip()


async def test_reading_the_data_version_keeps_the_wal_index_owned(tmp_path: Path) -> None:
    """Another process opening the file must not reset the index under a running broker.

    Closing any descriptor of ``-shm`` drops the process's SQLite locks on it (POSIX);
    a worker then died of SIGBUS when a second worker started.
    """
    path = tmp_path / "owned.db"
    store = SqliteStore(path)
    await store.open()
    try:
        assert await _run(PROBE_WAL_INDEX, path) == "held"
        for _ in range(3):
            before = store.data_version(DEFAULT_TENANT)
            assert before is not None
            assert await _run(PROBE_WAL_INDEX, path) == "held"
            await _run(OTHER_PROCESS_WRITES, path)  # opens, commits and closes
            assert store.data_version(DEFAULT_TENANT) != before  # a commit it did not make
        e = entity("urn:ngsi-ld:T:wal", p=1)
        await store.modify(DEFAULT_TENANT, e["id"], create(e))
        assert await store.get_entity(DEFAULT_TENANT, e["id"]) == e
    finally:
        await store.close()
    assert await _run(PROBE_WAL_INDEX, path) == "free"  # close() lets go of it (or removes it)


async def test_closing_one_of_two_stores_on_a_file_keeps_the_other_owning_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "two.db"
    one, two = SqliteStore(path), SqliteStore(path)
    await one.open()
    await two.open()
    try:
        assert one.data_version(DEFAULT_TENANT) is not None
        assert two.data_version(DEFAULT_TENANT) is not None
        await one.close()  # its descriptor of -shm is the other's too: not closed yet
        assert await _run(PROBE_WAL_INDEX, path) == "held"
        before = two.data_version(DEFAULT_TENANT)
        await _run(OTHER_PROCESS_WRITES, path)
        assert two.data_version(DEFAULT_TENANT) != before
    finally:
        await one.close()
        await two.close()
    assert await _run(PROBE_WAL_INDEX, path) == "free"

"""storage.sqlite.threads: the writer takes the jobs that arrive while it lingers; the
results of the threads go back to the event loop, each to its caller."""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from storage_contract import create, entity

from ngsi_ld.errors import BadRequestData, ServiceUnavailable
from ngsi_ld.query import EntityQuery
from storage import SqliteStore, open_store
from storage.chain import BrokenChain, WriteChain
from storage.discovery import StatKey, add_stats, entity_stats
from storage.sqlite import sql, threads
from storage.sqlite.store import BULK_CACHE_KIB
from storage.sqlite.threads import LINGER_FROM, LINGER_STEPS, Inbox, Worker, _take_batch


class Arrivals:
    """A job queue whose jobs arrive during the writer's waits: ``script[n]`` the jobs
    that have arrived once it has waited ``n`` times (what ``time.sleep`` counts)."""

    def __init__(self, first: Any, script: dict[int, list[Any]]) -> None:
        self.first = first
        self.script = script
        self.waits = 0
        self.ready: list[Any] = list(script.get(0, []))

    def get(self) -> Any:
        return self.first

    def get_nowait(self) -> Any:
        if not self.ready:
            raise queue.Empty
        return self.ready.pop(0)

    def sleep(self, seconds: float) -> None:
        assert seconds == threads.LINGER_STEP
        self.waits += 1
        self.ready.extend(self.script.get(self.waits, []))


@pytest.fixture
def arrivals(monkeypatch: pytest.MonkeyPatch) -> Any:
    def make(script: dict[int, list[Any]]) -> Arrivals:
        jobs = Arrivals("job0", script)
        monkeypatch.setattr(threads.time, "sleep", jobs.sleep)
        return jobs
    return make


def test_a_lingering_writer_takes_what_arrives_until_its_batch_is_as_large_as_before(
        arrivals: Any) -> None:
    jobs = arrivals({0: ["job1"], 1: ["job2", "job3"], 2: ["job4"], 3: ["job5"]})
    batch, stopping = _take_batch(jobs, expect=5)
    assert batch == ["job0", "job1", "job2", "job3", "job4"] and not stopping
    assert jobs.waits == 2  # five jobs, as many as the batch before: no third wait


def test_a_lingering_writer_stops_when_a_wait_brought_nothing(arrivals: Any) -> None:
    jobs = arrivals({1: ["job1"], 3: ["job2"]})
    assert _take_batch(jobs, expect=10) == (["job0", "job1"], False)
    assert jobs.waits == 2


def test_a_writer_not_lingering_takes_only_what_is_queued(arrivals: Any) -> None:
    jobs = arrivals({0: ["job1"], 1: ["job2"]})
    assert _take_batch(jobs) == (["job0", "job1"], False)
    assert jobs.waits == 0


def test_lingering_is_bounded(arrivals: Any) -> None:
    jobs = arrivals({n: [f"job{n + 1}"] for n in range(1, 100)})
    batch, _ = _take_batch(jobs, expect=100)
    assert jobs.waits == LINGER_STEPS and len(batch) == LINGER_STEPS + 1


def test_a_stop_that_arrives_while_lingering_ends_the_batch(arrivals: Any) -> None:
    jobs = arrivals({1: ["job1", threads._STOP, "job2"]})
    assert _take_batch(jobs, expect=10) == (["job0", "job1"], True)


async def test_concurrent_writes_after_a_large_batch_all_land(tmp_path: Path) -> None:
    # the writer lingers after a batch of LINGER_FROM or more: the next ones still land
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    try:
        for round_ in range(3):
            ids = [f"urn:ngsi-ld:T:{round_}-{n}" for n in range(2 * LINGER_FROM)]
            await asyncio.gather(*(store.modify("t", i, create(entity(i))) for i in ids))
            await store.modify("t", f"urn:ngsi-ld:T:{round_}-lone", create(
                entity(f"urn:ngsi-ld:T:{round_}-lone")))
            for i in [*ids, f"urn:ngsi-ld:T:{round_}-lone"]:
                assert (await store.get_entity("t", i)) is not None
    finally:
        await store.close()


@pytest.fixture
async def readers(tmp_path: Path) -> AsyncIterator[Worker]:
    writer = Worker(tmp_path / "r.db", writer=True)
    await writer.start()  # makes the file and the schema
    readers = Worker(tmp_path / "r.db", writer=False, threads=2)
    await readers.start()
    yield readers
    await readers.stop()
    await writer.stop()


def fails(n: int) -> Any:
    def run(conn: Any) -> int:
        raise ValueError(n)
    return run


async def test_every_caller_gets_its_own_result_or_exception(readers: Worker) -> None:
    held = threading.Event()
    # the first job holds its thread until all are queued: the rest come in batches
    first = readers.submit(lambda conn: held.wait(5))
    futures = [readers.submit(fails(n) if n % 3 == 0 else lambda conn, n=n: n)
               for n in range(40)]
    held.set()
    assert await first is True
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    for n, outcome in enumerate(outcomes):
        if n % 3 == 0:
            assert isinstance(outcome, ValueError) and outcome.args == (n,)
        else:
            assert outcome == n


async def test_a_cancelled_caller_leaves_the_others_their_results(readers: Worker) -> None:
    held = threading.Event()
    first = readers.submit(lambda conn: held.wait(5))
    second = readers.submit(lambda conn: held.wait(5))  # both threads busy
    waiting = [asyncio.ensure_future(readers.submit(lambda conn, n=n: n)) for n in range(6)]
    await asyncio.sleep(0)
    waiting[2].cancel()
    held.set()
    assert await first is True and await second is True
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert isinstance(outcomes[2], asyncio.CancelledError)
    assert [o for n, o in enumerate(outcomes) if n != 2] == [0, 1, 3, 4, 5]
    assert await readers.submit(lambda conn: "still serving") == "still serving"


async def test_batches_posted_while_the_loop_is_busy_wake_it_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    wakes: list[Any] = []
    real = loop.call_soon_threadsafe

    def counted(callback: Any, *args: Any) -> Any:
        wakes.append(callback)
        return real(callback, *args)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    inbox = Inbox(loop)
    futures = [loop.create_future() for _ in range(5)]
    futures[3].cancel()  # its caller went away: skipped, the others still settled
    error = KeyError("x")
    batches = [[(futures[0], True, 0), (futures[1], False, error)],
               [(futures[2], True, 2), (futures[3], True, 3)], [(futures[4], True, 4)]]
    for batch in batches:  # from other threads; the loop does not run until all posted
        post = threading.Thread(target=inbox.post, args=(batch,))
        post.start()
        post.join()
    assert len(wakes) == 1
    await asyncio.sleep(0)
    assert [f.result() for f in (futures[0], futures[2], futures[4])] == [0, 2, 4]
    assert futures[1].exception() is error and futures[3].cancelled()
    inbox.post([(loop.create_future(), True, 5)])  # empty again: the next post wakes it
    assert len(wakes) == 2
    await asyncio.sleep(0)


def test_a_post_to_a_closed_loop_is_dropped() -> None:
    loop = asyncio.new_event_loop()
    future = loop.create_future()
    loop.close()
    inbox = Inbox(loop)
    inbox.post([(future, True, 1)])  # nobody waits: no error
    inbox.post([(future, True, 2)])  # nor the next time
    assert not future.done()


async def test_a_failing_read_in_a_batch_leaves_the_others_their_results(
        readers: Worker) -> None:
    held = threading.Event()
    busy = [readers.submit(lambda conn: held.wait(5)) for _ in range(2)]  # both threads
    one = readers.submit(lambda conn: conn.execute("SELECT 1").fetchone()[0])
    broken = readers.submit(lambda conn: conn.execute("SELECT * FROM no_such_table"))
    after = [readers.submit(lambda conn, n=n: conn.execute("SELECT ?", (n,)).fetchone()[0])
             for n in range(3)]
    held.set()
    assert await asyncio.gather(*busy) == [True, True]
    assert await one == 1
    with pytest.raises(ServiceUnavailable):
        await broken
    assert await asyncio.gather(*after) == [0, 1, 2]


async def test_batched_reads_see_every_write_committed_before_them(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        for round_ in range(3):
            ids = [f"urn:ngsi-ld:T:{round_}-{n}" for n in range(4)]
            await asyncio.gather(*(store.modify("t", i, create(entity(i))) for i in ids))
            # many reads queued at once: batches of one transaction each
            found = await asyncio.gather(*(store.get_entity("t", i) for i in ids * 5))
            assert all(f is not None for f in found)
            page, _ = await store.query_entities("t", EntityQuery(), limit=100)
            assert len(page) == 4 * (round_ + 1)
    finally:
        await store.close()


async def _stored_counters(store: SqliteStore, tenant: str) -> dict[StatKey, int]:
    """Every row of the tenant's discovery counters, also those at zero or below."""
    rows = await store._read(lambda conn: conn.execute(
        "SELECT type, attr, kind, n FROM discovery_stats WHERE tenant = ?", (tenant,)
    ).fetchall())
    return {(t, a, k): n for t, a, k, n in rows}


async def test_one_transaction_of_many_jobs_counts_and_numbers_only_what_it_kept(
        tmp_path: Path) -> None:
    # The version range and the discovery counters are taken and written once per
    # transaction: a transaction of many jobs, some failing, must leave the counters of
    # exactly the entities stored, and a distinct version to each write, above those
    # of every transaction before.
    store = SqliteStore(tmp_path / "t.db")
    await store.open()
    try:
        old = [entity(f"urn:ngsi-ld:Old:{n}", ["https://example.org/Old"], speed=n)
               for n in range(3)]
        await asyncio.gather(*(store.modify("t", e["id"], create(e)) for e in old))
        earlier = await store.read_versioned("t", old[0]["id"])
        assert earlier is not None
        commits = store.commit_count
        started, held = threading.Event(), threading.Event()

        def hold(conn: Any) -> bool:
            started.set()
            return held.wait(5)

        first = store._write(hold)
        assert await asyncio.to_thread(started.wait, 5)  # the writer is in that job

        def written_then_failed(conn: Any) -> None:  # its rows and counters rolled back
            sql.write_entity(conn, "t", "urn:ngsi-ld:T:lost", None, entity(
                "urn:ngsi-ld:T:lost", ["https://example.org/Lost"], lost=1))
            raise ValueError("after writing")

        def refused(current: Any) -> Any:
            raise BadRequestData("refused")

        new = [entity(f"urn:ngsi-ld:T:{n}", speed=n, name="x") for n in range(6)]
        jobs = [
            *(asyncio.ensure_future(store.modify("t", e["id"], create(e))) for e in new[:3]),
            asyncio.ensure_future(store._write(written_then_failed)),
            asyncio.ensure_future(store.modify("t", "urn:ngsi-ld:T:refused", refused)),
            *(asyncio.ensure_future(store.modify("t", e["id"], lambda current: None))
              for e in old),
            *(asyncio.ensure_future(store.modify("t", e["id"], create(e))) for e in new[3:]),
        ]
        for _ in range(5):  # every write submitted while the writer is held
            await asyncio.sleep(0)
        held.set()
        assert await first is True
        results = await asyncio.gather(*jobs, return_exceptions=True)
        assert store.commit_count - commits == 2  # the held job's, then one for the rest
        assert isinstance(results[3], ValueError)
        assert isinstance(results[4], BadRequestData)
        assert not any(isinstance(r, BaseException)
                       for n, r in enumerate(results) if n not in (3, 4))

        expected: dict[StatKey, int] = {}
        for e in new:
            add_stats(expected, entity_stats(e))
        assert await _stored_counters(store, "t") == expected  # the deleted types' rows gone
        versions = [await store.read_versioned("t", e["id"]) for e in new]
        numbers = [v.version for v in versions if v is not None]
        assert len(set(numbers)) == len(new) and min(numbers) > earlier.version
        assert await store.get_entity("t", "urn:ngsi-ld:T:lost") is None
        later = entity("urn:ngsi-ld:T:later")
        await store.modify("t", later["id"], create(later))
        after = await store.read_versioned("t", later["id"])
        assert after is not None and after.version > max(numbers)
    finally:
        await store.close()


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[Worker]:
    worker = Worker(tmp_path / "w.db", writer=True)
    await worker.start()
    await worker.submit(lambda conn: conn.execute("CREATE TABLE rows (x INTEGER)"))
    yield worker
    await worker.stop()


def _rows(conn: Any) -> list[int]:
    return [x for (x,) in conn.execute("SELECT x FROM rows ORDER BY x")]


def _insert_then(x: int, error: Exception | None = None) -> Any:
    def run(conn: Any) -> int:
        conn.execute("INSERT INTO rows (x) VALUES (?)", (x,))
        if error is not None:
            raise error
        return x
    return run


async def _held(writer: Worker) -> tuple[Any, threading.Event]:
    """A job that holds the writer until the event is set: what is submitted meanwhile
    is queued, and taken as one batch."""
    started, held = threading.Event(), threading.Event()

    def hold(conn: Any) -> bool:
        started.set()
        return held.wait(5)

    first = writer.submit(hold)
    assert await asyncio.to_thread(started.wait, 5)
    return first, held


async def test_a_lone_write_that_fails_leaves_nothing_and_the_next_lands(
        writer: Worker) -> None:
    # a transaction of one job runs without a SAVEPOINT: its failure rolls back all
    commits = writer.batch_count
    with pytest.raises(KeyError):
        await writer.submit(_insert_then(1, KeyError("refused")))
    assert writer.batch_count == commits  # nothing committed
    assert await writer.submit(_insert_then(2)) == 2
    assert await writer.submit(_rows) == [2]


async def test_a_lone_group_that_fails_runs_each_job_alone(writer: Worker) -> None:
    def broken_group(conn: Any, items: list[Any]) -> list[tuple[bool, Any]]:
        for x in items:
            conn.execute("INSERT INTO rows (x) VALUES (?)", (x + 100,))
        raise RuntimeError("the group function failed")

    first, held = await _held(writer)
    jobs = [writer.submit(_insert_then(x, ValueError(x) if x == 2 else None),
                          group=broken_group, key="k", item=x) for x in range(4)]
    held.set()
    assert await first is True
    outcomes = await asyncio.gather(*jobs, return_exceptions=True)
    assert outcomes[:2] == [0, 1] and outcomes[3] == 3
    assert isinstance(outcomes[2], ValueError)
    assert await writer.submit(_rows) == [0, 1, 3]  # nothing of the group, nor of job 2


async def test_writes_of_a_chain_land_in_order_in_one_transaction_or_several(
        writer: Worker) -> None:
    chain = WriteChain()
    first, held = await _held(writer)
    queued = [writer.submit(writer.chained(_insert_then(x), chain)) for x in (1, 2)]
    held.set()
    assert await first is True and await asyncio.gather(*queued) == [1, 2]  # one batch
    assert await writer.submit(writer.chained(_insert_then(3), chain)) == 3  # the next
    assert await writer.submit(_rows) == [1, 2, 3]


async def test_a_write_after_a_failed_one_of_its_chain_is_not_written(writer: Worker) -> None:
    # queued in the same transaction behind the failed write (its SAVEPOINT rolled back):
    # the chain's next writes refuse to start, a write of no chain among them lands
    chain = WriteChain()
    first, held = await _held(writer)
    failed = writer.submit(writer.chained(_insert_then(1, KeyError("refused")), chain))
    after = writer.submit(writer.chained(_insert_then(2), chain))
    other = writer.submit(_insert_then(3))
    held.set()
    assert await first is True
    with pytest.raises(KeyError):
        await failed
    with pytest.raises(BrokenChain):
        await after
    assert await other == 3
    with pytest.raises(BrokenChain):  # and every later one of the chain
        await writer.submit(writer.chained(_insert_then(4), chain))
    assert await writer.submit(_rows) == [3]


async def test_a_write_whose_predecessors_transaction_rolled_back_is_not_written(
        writer: Worker) -> None:
    # the chain's write ran, then its transaction failed (another write's SQLite error);
    # the next write, queued while that transaction was open, refuses to start
    chain = WriteChain()
    failing, fail = threading.Event(), threading.Event()

    def sqlite_fails(conn: Any) -> None:
        failing.set()
        fail.wait(5)
        raise sqlite3.OperationalError("disk I/O error")

    first, held = await _held(writer)
    ran = writer.submit(writer.chained(_insert_then(1), chain))
    broken = writer.submit(sqlite_fails)
    held.set()
    assert await asyncio.to_thread(failing.wait, 5)
    after = writer.submit(writer.chained(_insert_then(2), chain))
    fail.set()
    assert await first is True
    for lost in (ran, broken):
        with pytest.raises(ServiceUnavailable):
            await lost
    with pytest.raises(BrokenChain):
        await after
    assert await writer.submit(_rows) == []


async def test_a_batch_of_queries_asks_data_version_once_and_sees_later_commits(
        tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "q.db", readers=1)
    await store.open()
    try:
        asked: list[str] = []
        await store._read(lambda conn: conn.set_trace_callback(
            lambda statement: asked.append(statement) if "data_version" in statement else None))
        ids = [f"urn:ngsi-ld:T:{n}" for n in range(3)]
        for round_, entity_id in enumerate(ids, 1):
            await store.modify("t", entity_id, create(entity(entity_id)))
            started, held = threading.Event(), threading.Event()

            def hold(conn: Any, started: Any = started, held: Any = held) -> bool:
                started.set()
                return held.wait(5)

            first = store._read(hold)
            assert await asyncio.to_thread(started.wait, 5)
            asked.clear()
            pages = [asyncio.ensure_future(store.query_entities("t", EntityQuery(), limit=100))
                     for _ in range(4)]
            for _ in range(5):
                await asyncio.sleep(0)
            held.set()
            assert await first is True
            for page, _ in await asyncio.gather(*pages):  # each sees every commit before it
                assert len(page) == round_
            assert len(asked) == 1  # one batch, one read transaction, one data_version
    finally:
        await store.close()


@pytest.mark.parametrize("bulk", [False, True])
async def test_a_store_opened_for_a_bulk_load_has_the_larger_writer_cache(
        tmp_path: Path, bulk: bool) -> None:
    store = open_store(f"sqlite:{tmp_path / 'b.db'}", bulk=bulk)
    assert isinstance(store, SqliteStore)
    await store.open()
    try:
        cache = await store._write(lambda conn: conn.execute("PRAGMA cache_size").fetchone()[0])
        reader = await store._read(lambda conn: conn.execute("PRAGMA cache_size").fetchone()[0])
    finally:
        await store.close()
    assert cache == (-BULK_CACHE_KIB if bulk else reader)  # readers keep SQLite's default
    assert reader == sqlite3.connect(":memory:").execute("PRAGMA cache_size").fetchone()[0]

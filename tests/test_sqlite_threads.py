"""storage.sqlite.threads: the writer takes the jobs that arrive while it lingers; the
results of the threads go back to the event loop, each to its caller."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from storage_contract import create, entity

from ngsi_ld.errors import ServiceUnavailable
from ngsi_ld.query import EntityQuery
from storage import SqliteStore
from storage.sqlite import threads
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

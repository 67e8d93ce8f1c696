"""storage.sqlite.threads: the writer takes the jobs that arrive while it lingers."""

from __future__ import annotations

import asyncio
import queue
from pathlib import Path
from typing import Any

import pytest
from storage_contract import create, entity

from storage import SqliteStore
from storage.sqlite import threads
from storage.sqlite.threads import LINGER_FROM, LINGER_STEPS, _take_batch


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

"""storage.sqlite.threads: the writer takes the jobs that arrive while it lingers."""

from __future__ import annotations

import queue
from typing import Any

import pytest

from storage.sqlite import threads
from storage.sqlite.threads import LINGER_STEPS, _take_batch


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


def test_a_lingering_writer_takes_what_arrives_while_jobs_keep_coming(arrivals: Any) -> None:
    jobs = arrivals({0: ["job1"], 1: ["job2", "job3"], 2: ["job4"]})
    batch, stopping = _take_batch(jobs, linger=True)
    assert batch == ["job0", "job1", "job2", "job3", "job4"] and not stopping
    assert jobs.waits == 3  # the third wait brought nothing: the batch is complete


def test_a_writer_not_lingering_takes_only_what_is_queued(arrivals: Any) -> None:
    jobs = arrivals({0: ["job1"], 1: ["job2"]})
    assert _take_batch(jobs) == (["job0", "job1"], False)
    assert jobs.waits == 0


def test_lingering_is_bounded(arrivals: Any) -> None:
    jobs = arrivals({n: [f"job{n + 1}"] for n in range(1, 100)})
    batch, _ = _take_batch(jobs, linger=True)
    assert jobs.waits == LINGER_STEPS and len(batch) == LINGER_STEPS + 1


def test_a_stop_that_arrives_while_lingering_ends_the_batch(arrivals: Any) -> None:
    jobs = arrivals({1: ["job1", threads._STOP, "job2"]})
    assert _take_batch(jobs, linger=True) == (["job0", "job1"], True)

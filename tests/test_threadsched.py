"""``--thread-scheduling``: the served broker's threads under SCHED_BATCH, or left alone.

Each policy change is made on a thread of its own (a policy is a thread's, inherited by
the threads it starts), so the test process keeps the one it was started with.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from broker.cli import main
from broker.config import load_settings
from broker.threadsched import THREAD_SCHEDULING, apply
from conformance.process import BrokerProcess

BATCH = getattr(os, "SCHED_BATCH", None)
needs_batch = pytest.mark.skipif(BATCH is None, reason="no SCHED_BATCH on this system")


def _on_a_thread(work: Callable[[], Any]) -> Any:
    """``work()`` on a new thread (its policy changes stay there); what it gave."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(work()))
    thread.start()
    thread.join()
    return out[0]


def _policies_after(kind: str, start: int | None = None) -> tuple[bool, int, int]:
    """On a thread first set to ``start`` (``SCHED_OTHER`` if None: the policy of this
    process may be another, its tests' brokers started under it): ``apply(kind)``, that
    thread's policy after it and the policy of a thread it then starts."""

    def work() -> tuple[bool, int, int]:
        os.sched_setscheduler(0, os.SCHED_OTHER if start is None else start,
                              os.sched_param(0))
        changed = apply(kind)
        child = _on_a_thread(lambda: os.sched_getscheduler(0))
        return changed, os.sched_getscheduler(0), child

    result: tuple[bool, int, int] = _on_a_thread(work)
    return result


@needs_batch
def test_batch_is_set_and_inherited_by_the_threads_started_after() -> None:
    before = os.sched_getscheduler(0)
    assert _policies_after("batch") == (True, BATCH, BATCH)
    assert os.sched_getscheduler(0) == before  # the calling thread's alone


@needs_batch
def test_normal_changes_nothing() -> None:
    assert _policies_after("normal") == (False, os.SCHED_OTHER, os.SCHED_OTHER)
    assert _policies_after("normal", start=BATCH) == (False, BATCH, BATCH)


@needs_batch
def test_an_operators_policy_is_kept() -> None:
    assert _policies_after("batch", start=BATCH) == (False, BATCH, BATCH)
    idle = os.SCHED_IDLE  # settable without privilege, as SCHED_BATCH
    assert _policies_after("batch", start=idle) == (False, idle, idle)


@needs_batch
def test_a_broker_that_cannot_start_leaves_the_policy_as_it_was() -> None:
    def work() -> int:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        with pytest.raises(SystemExit):
            main(["--store", "postgres://nowhere/x", "--port", "0"])
        return os.sched_getscheduler(0)

    assert _on_a_thread(work) == os.SCHED_OTHER


def test_the_option() -> None:
    assert THREAD_SCHEDULING == ("batch", "normal")
    assert load_settings([]).thread_scheduling == "batch"
    assert load_settings(["--thread-scheduling", " Normal"]).thread_scheduling == "normal"
    assert load_settings([], {"NGSI_LD_THREAD_SCHEDULING": "normal"}).thread_scheduling \
        == "normal"
    with pytest.raises(SystemExit):
        load_settings(["--thread-scheduling", "fifo"])


def _thread_policies(pid: int) -> dict[int, int]:
    """Each thread of process ``pid``: its policy."""
    return {int(tid): os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


@needs_batch
@pytest.mark.parametrize("kind", ["batch", "normal"])
async def test_the_served_brokers_threads(kind: str, tmp_path: Path) -> None:
    with BrokerProcess(f"sqlite:///{tmp_path / 'b.db'}",
                       extra=("--thread-scheduling", kind)) as broker:
        async with aiohttp.ClientSession() as session, \
                session.post(broker.url + "/ngsi-ld/v1/entities",
                             headers={"Content-Type": "application/json"},
                             json={"id": "urn:ngsi-ld:Room:1", "type": "Room"}) as r:
            assert r.status == 201
        assert broker.process is not None
        pid = broker.process.pid
        policies = _thread_policies(pid)
    started_with = os.sched_getscheduler(0)  # what this process passes on
    if kind == "batch":
        # the event loop's thread and those started after it: the store's writer, its
        # readers and checkpointer at least (a native thread a library starts while
        # modules are imported keeps the policy it began with)
        assert policies[pid] == BATCH
        assert sum(policy == BATCH for policy in policies.values()) >= 5
    else:
        assert set(policies.values()) == {started_with}

"""Pending notifications survive a restart (subscriptions/pending.py): at least once.

A broker process is killed (SIGKILL: no shutdown hook) while notifications wait
behind a hung endpoint; the broker started again on the same store sends them.
The queue depth is a gauge of /metrics.
"""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from mongo_standin import OneServer
from notify_receiver import Receiver
from subscriptions_harness import Harness, RecordMemoryStore, room

from conformance.process import BrokerProcess
from storage.mongo import MongoStore
from subscriptions.live import Job
from subscriptions.pending import COLLECTION, JOBS, Journal, decode_job, encode_job, load
from subscriptions.repository import StoreRepository

SUBS = "/ngsi-ld/v1/subscriptions"
#: seconds the receiver keeps a notification hanging (the receiver's close waits for it)
HANG = 6.0


def _post(url: str, path: str, body: dict[str, Any], method: str = "POST") -> int:
    request = urllib.request.Request(url + path, data=orjson.dumps(body), method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return int(reply.status)


def _metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as reply:
        return str(reply.read().decode())


async def test_a_killed_broker_resumes_its_queued_notifications(tmp_path: Path) -> None:
    receiver = await Receiver().start()
    receiver.delays["slow"] = HANG  # the endpoint hangs: notifications queue up
    store = f"sqlite:///{tmp_path}/b.db"
    broker = await asyncio.to_thread(BrokerProcess(store).start)
    try:
        sub = {"type": "Subscription", "entities": [{"type": "Room"}],
               "notification": {"endpoint": {"uri": receiver.url("slow"), "timeout": 60000}}}
        assert await asyncio.to_thread(_post, broker.url, SUBS, sub) == 201
        for n in range(3):
            entity = room(n)
            assert await asyncio.to_thread(_post, broker.url, "/ngsi-ld/v1/entities",
                                           entity) == 201
        await receiver.wait_for(1, "slow")  # the first one is in flight, the others wait
        for _ in range(100):
            metrics = await asyncio.to_thread(_metrics, broker.url)
            if "ngsi_ld_notifications_pending 0" not in metrics:
                break
            await asyncio.sleep(0.05)
        assert "ngsi_ld_notifications_pending" in metrics
        assert "ngsi_ld_notifications_pending 0\n" not in metrics
        await asyncio.sleep(1.5)  # past the write-behind interval
        await asyncio.to_thread(broker.kill)
        receiver.delays.clear()
        before = len(receiver.at("slow"))
        again = await asyncio.to_thread(BrokerProcess(store, port=broker.port).start)
        try:
            await receiver.wait_for(before + 1, "slow", timeout=20)
            rooms = {f"urn:ngsi-ld:Room:{n}" for n in range(3)}
            for _ in range(200):
                resent = {entity["id"] for entity, r in receiver.entities("slow")
                          if receiver.received.index(r) >= before}
                if resent == rooms:
                    break
                await asyncio.sleep(0.05)
            # the one in flight at the kill and the queued ones: all sent (again)
            assert resent == rooms
            for _ in range(100):  # drained: the gauge falls to 0
                if "ngsi_ld_notifications_pending 0" in await asyncio.to_thread(
                        _metrics, again.url):
                    break
                await asyncio.sleep(0.05)
            assert "ngsi_ld_notifications_pending 0" in await asyncio.to_thread(
                _metrics, again.url)
        finally:
            await asyncio.to_thread(again.stop)
    finally:
        await asyncio.to_thread(broker.stop)
        await receiver.close()


async def test_a_write_acknowledged_just_before_a_kill_is_notified_after_the_restart(
        tmp_path: Path) -> None:
    """No wait after the write's answer: its notification was stored before the answer."""
    receiver = await Receiver().start()
    receiver.delays["down"] = HANG  # the subscriber does not answer
    store = f"sqlite:///{tmp_path}/b.db"
    broker = await asyncio.to_thread(BrokerProcess(store).start)
    try:
        sub = {"type": "Subscription", "entities": [{"type": "Room"}],
               "watchedAttributes": ["temperature"],
               "notification": {"endpoint": {"uri": receiver.url("down"), "timeout": 60000}}}
        assert await asyncio.to_thread(_post, broker.url, SUBS, sub) == 201
        entity = room(7)
        assert await asyncio.to_thread(_post, broker.url, "/ngsi-ld/v1/entities",
                                       entity) == 201
        patch = {"temperature": {"type": "Property", "value": 99.5}}
        assert await asyncio.to_thread(
            _post, broker.url, f"/ngsi-ld/v1/entities/{entity['id']}/attrs", patch,
            "PATCH") == 204
        await asyncio.to_thread(broker.kill)  # at once: no write-behind tick in between
        receiver.delays.clear()
        before = len(receiver.at("down"))
        again = await asyncio.to_thread(BrokerProcess(store, port=broker.port).start)
        try:
            for _ in range(400):
                values = [e["temperature"]["value"] for e, r in receiver.entities("down")
                          if receiver.received.index(r) >= before and "temperature" in e]
                if 99.5 in values:
                    break
                await asyncio.sleep(0.05)
            assert 99.5 in values  # the patched value, notified by the restarted broker
        finally:
            await asyncio.to_thread(again.stop)
    finally:
        await asyncio.to_thread(broker.stop)
        await receiver.close()


async def test_in_a_cluster_the_process_taking_a_subscription_over_resumes_its_queue(
        tmp_path: Path) -> None:
    """--cluster: the owner stores what it queued before answering; when it dies, the
    process that takes the subscription's lease over sends it."""
    receiver = await Receiver().start()
    receiver.delays["down"] = HANG
    store = f"sqlite:///{tmp_path}/shared.db"
    extra = ("--cluster", "true", "--cluster-lease-ttl", "1")
    owner = await asyncio.to_thread(BrokerProcess(store, extra=extra).start)
    other = await asyncio.to_thread(BrokerProcess(store, extra=extra).start)
    try:
        sub = {"type": "Subscription", "entities": [{"type": "Room"}],
               "notification": {"endpoint": {"uri": receiver.url("down"), "timeout": 60000}}}
        # created through the first process, which holds its lease and delivers it
        assert await asyncio.to_thread(_post, owner.url, SUBS, sub) == 201
        for n in range(2):
            assert await asyncio.to_thread(_post, owner.url, "/ngsi-ld/v1/entities",
                                           room(n)) == 201
        await asyncio.to_thread(owner.kill)
        receiver.delays.clear()
        rooms = {"urn:ngsi-ld:Room:0", "urn:ngsi-ld:Room:1"}
        for _ in range(400):  # the lease expires (1 s), the other process claims it
            if rooms <= {entity["id"] for entity, _ in receiver.entities("down")}:
                break
            await asyncio.sleep(0.05)
        assert rooms <= {entity["id"] for entity, _ in receiver.entities("down")}
    finally:
        await asyncio.to_thread(owner.stop)
        await asyncio.to_thread(other.stop)
        await receiver.close()


async def test_a_graceful_restart_resumes_them_and_a_drained_queue_leaves_no_record() -> None:
    store = RecordMemoryStore()
    h = await Harness(store).start()
    try:
        h.receiver.delays["notify"] = HANG
        await h.subscribe({"entities": [{"type": "Room"}],
                           "notification": {"endpoint": {"uri": h.receiver.url(),
                                                         "timeout": 60000}}})
        await h.create(room(1))
        await h.receiver.wait_for(1)
        await h.create(room(2))
        await h.stop()  # the queue is in the store, the in-flight notification included
        assert [c for c, _, _ in store.records if c == COLLECTION] == [COLLECTION] * 2
        h.receiver.delays.clear()
        await h.start()
        got = await h.receiver.wait_entities(3, timeout=10)
        assert {e["id"] for e, _ in got} == {"urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:2"}
        for _ in range(100):
            if not [c for c, _, _ in store.records if c == COLLECTION]:
                break
            await asyncio.sleep(0.05)
        assert not [c for c, _, _ in store.records if c == COLLECTION]
    finally:
        await h.close()


@pytest.mark.parametrize("job", [
    Job(entities=[{"id": "urn:x:1", "type": ["T"], "attrs": {}}]),
])
def test_jobs_survive_their_json_form(job: Job) -> None:
    assert decode_job(orjson.loads(orjson.dumps(encode_job(job)))) == job


async def test_mongodb_keeps_pending_notifications_through_the_same_interface() -> None:
    server = OneServer()

    async def mongo() -> MongoStore:
        return MongoStore("mongodb://h/orion", client_factory=server.factory)

    first = await mongo()
    await first.open()
    sub_doc = {"id": "urn:s:1", "type": "Subscription", "entities": [{"type": "T"}],
               "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}}
    await first.put_record("t", "subscriptions", "urn:s:1", sub_doc)
    pending_jobs = [Job(entities=[{"id": f"urn:x:{n}", "type": ["T"], "attrs": {}}])
                    for n in range(3)]
    journal = Journal(StoreRepository(first, COLLECTION), JOBS)
    for job in pending_jobs:
        journal.note("t", "urn:s:1", job)
    await journal.settled()
    await first.close()
    again = await mongo()  # another process on the same database
    await again.open()
    stored = await load(StoreRepository(again, COLLECTION), JOBS)
    assert [(t, s, [job for _, job in jobs]) for t, s, jobs in stored] == [
        ("t", "urn:s:1", pending_jobs)]  # in the order they were queued
    journal = Journal(StoreRepository(again, COLLECTION), JOBS)
    journal.adopt("t", stored[0][2])
    journal.done("t", [record_id for record_id, _ in stored[0][2]])
    await journal.flush()
    assert await load(StoreRepository(again, COLLECTION), JOBS) == []
    await again.close()

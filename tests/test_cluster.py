"""Several broker processes on one SQLite file (docs/scaling.md, broker.cluster).

Each test starts real broker subprocesses with ``--cluster true`` on one store,
on different ports so that a test chooses which process a request reaches (with
``--workers`` the kernel chooses; that is tested at the end).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.client import Client, entity_path
from conformance.process import BrokerProcess
from conformance.receiver import NotificationReceiver

pytestmark = pytest.mark.slow

SUBS = "/ngsi-ld/v1/subscriptions"
TTL = "1"  # lease seconds: a dead process's subscriptions move within ~1.5 s


def lamp(n: int, power: int = 0) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Lamp:{n}", "type": "Lamp",
            "power": {"type": "Property", "value": power}}


def subscription(sub_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": sub_id, "type": "Subscription", "entities": [{"type": "Lamp"}],
            "notification": {"endpoint": {"uri": url}}, **extra}


def set_power(client: Client, n: int, power: int) -> None:
    reply = client.patch(entity_path(f"urn:ngsi-ld:Lamp:{n}") + "/attrs",
                         {"power": {"type": "Property", "value": power}})
    assert reply.status == 204, reply.json


def powers(receiver: NotificationReceiver, path: str) -> list[int]:
    return [item["power"]["value"] for n in receiver.at(path) for item in n.body["data"]]


def settle(seconds: float = 0.6) -> None:
    """Long enough for any duplicate notification to arrive (poll 20 ms, delivery ms)."""
    time.sleep(seconds)


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    server = NotificationReceiver()
    yield server
    server.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Client, Client, list[BrokerProcess]]]:
    store = f"sqlite:///{tmp_path}/shared.db"
    extra = ("--cluster", "true", "--cluster-lease-ttl", TTL)
    brokers = [BrokerProcess(store, extra=extra).start()]
    brokers.append(BrokerProcess(store, extra=extra).start())
    try:
        yield Client(brokers[0].url), Client(brokers[1].url), brokers
    finally:
        for broker in brokers:
            broker.stop()


def test_a_write_through_either_process_notifies_once(pair, receiver) -> None:
    a, b, _ = pair
    assert a.post("/ngsi-ld/v1/entities", lamp(1)).status == 201
    for n, client in enumerate((a, b)):
        sub = subscription(f"urn:ngsi-ld:Subscription:{n}", receiver.url(f"s{n}"))
        assert client.post(SUBS, sub).status == 201
    for power in range(1, 21):
        set_power(a if power % 2 else b, 1, power)
    for n in range(2):
        receiver.wait(f"s{n}", 1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
            len(powers(receiver, f"s{n}")) < 20 for n in range(2)):
        time.sleep(0.05)
    settle()
    for n in range(2):  # every change once, none twice, whichever process wrote it
        assert sorted(powers(receiver, f"s{n}")) == list(range(1, 21))


def test_a_read_through_one_process_sees_a_write_through_the_other(pair) -> None:
    a, b, _ = pair
    assert a.post("/ngsi-ld/v1/entities", lamp(5, 1)).status == 201
    for power in range(2, 6):
        for _ in range(2):  # the second read of B is answered from what B knows
            assert b.get(entity_path("urn:ngsi-ld:Lamp:5")).json["power"]["value"] == power - 1
        set_power(a, 5, power)


def test_subscription_changes_are_visible_through_every_process(pair, receiver) -> None:
    a, b, _ = pair
    sub_id = "urn:ngsi-ld:Subscription:crud"
    assert a.post(SUBS, subscription(sub_id, receiver.url("first"))).status == 201
    # read-your-writes across processes: no waiting for the feed
    reply = b.get(f"{SUBS}/{sub_id}")
    assert reply.status == 200 and reply.json["notification"]["endpoint"]["uri"].endswith("first")
    assert [s["id"] for s in b.get(SUBS).json] == [sub_id]
    # an update through B changes what the owner (A) sends
    patch = {"notification": {"endpoint": {"uri": receiver.url("second")}}}
    assert b.patch(f"{SUBS}/{sub_id}", patch).status == 204
    settle(0.3)
    assert a.get(f"{SUBS}/{sub_id}").json["notification"]["endpoint"]["uri"].endswith("second")
    assert b.post("/ngsi-ld/v1/entities", lamp(2, 7)).status == 201
    receiver.wait("second", 1)
    assert receiver.at("first") == []
    # a delete through B stops the notifications A was sending
    assert b.delete(f"{SUBS}/{sub_id}").status == 204
    settle(0.3)
    assert a.get(f"{SUBS}/{sub_id}").status == 404
    assert a.get(SUBS).json == []
    set_power(a, 2, 8)
    settle()
    assert powers(receiver, "second") == [7]


def test_each_periodic_subscription_has_one_timer_which_moves_when_its_process_dies(
        pair, receiver) -> None:
    a, b, brokers = pair
    assert a.post("/ngsi-ld/v1/entities", lamp(3, 1)).status == 201
    sub = subscription("urn:ngsi-ld:Subscription:tick", receiver.url("tick"), timeInterval=1)
    assert a.post(SUBS, sub).status == 201
    receiver.wait("tick", 1, timeout=5)
    start = len(receiver.at("tick"))
    time.sleep(4.2)
    ticks = len(receiver.at("tick")) - start
    assert 3 <= ticks <= 5, ticks  # one timer (two would give 8)
    brokers[0].kill()  # the creator held the lease; it dies without releasing it
    before = len(receiver.at("tick"))
    time.sleep(5)
    after = len(receiver.at("tick")) - before
    assert 2 <= after <= 5, after  # B took the lease over within ~TTL and ticks alone
    assert b.get(f"{SUBS}/urn:ngsi-ld:Subscription:tick").status == 200


def test_a_process_that_stops_hands_its_subscriptions_over(pair, receiver) -> None:
    a, b, brokers = pair
    assert b.post("/ngsi-ld/v1/entities", lamp(4)).status == 201
    assert a.post(SUBS, subscription("urn:ngsi-ld:Subscription:h", receiver.url("h"))).status \
        == 201
    brokers[0].stop()  # a clean stop releases the lease at once
    time.sleep(float(TTL))  # B's next lease round (every TTL / 3) claims it
    set_power(b, 4, 9)
    receiver.wait("h", 1, timeout=5)
    settle()
    assert powers(receiver, "h") == [9]


def test_hosted_contexts_deleted_in_one_process_are_forgotten_by_the_other(pair) -> None:
    a, b, brokers = pair
    reply = a.post("/ngsi-ld/v1/jsonldContexts",
                   {"@context": {"brightness": "https://example.org/brightness"}})
    assert reply.status == 201
    context_id = reply.headers["location"].rsplit("/", 1)[1]
    url = f"{brokers[0].url}/ngsi-ld/v1/jsonldContexts/{context_id}"  # A's hosted URL
    entity = {"id": "urn:ngsi-ld:Lamp:ctx", "type": "Lamp",
              "brightness": {"type": "Property", "value": 3}}
    link = {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; '
                    'type="application/ld+json"'}
    assert b.post("/ngsi-ld/v1/entities", entity, headers=link).status == 201
    read = b.get(entity_path("urn:ngsi-ld:Lamp:ctx"), headers=link)
    assert read.status == 200 and "brightness" in read.json  # B compiled and cached it
    assert a.delete(f"/ngsi-ld/v1/jsonldContexts/{context_id}").status == 204
    settle(0.3)
    assert b.get(f"/ngsi-ld/v1/jsonldContexts/{context_id}").status == 404
    again = b.get(entity_path("urn:ngsi-ld:Lamp:ctx"), headers=link)
    assert again.status == 504, again.json  # B no longer uses the deleted context
    assert again.json["type"].endswith("LdContextNotAvailable")


def test_workers_share_the_port_and_the_store(tmp_path: Path, receiver) -> None:
    store = f"sqlite:///{tmp_path}/workers.db"
    with BrokerProcess(store, extra=("--workers", "2")) as broker:
        client = Client(broker.url)
        pids: set[int] = set()
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:  # a new connection each time:
            try:  # the kernel spreads them
                pids.add(client.get("/health").json["process"]["pid"])
            except ConnectionError:  # a handshake under way as a listener joins the port
                time.sleep(0.05)
        assert len(pids) == 2, pids  # both workers answer on the one port
        sub = subscription("urn:ngsi-ld:Subscription:w", receiver.url("w"))
        assert client.post(SUBS, sub).status == 201
        for n in range(30):
            assert client.post("/ngsi-ld/v1/entities", lamp(100 + n, n)).status == 201
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(powers(receiver, "w")) < 30:
            time.sleep(0.05)
        settle()
        # 30 entities created through both workers, each notified once by the one owner
        assert sorted(powers(receiver, "w")) == list(range(30))
        assert client.get("/ngsi-ld/v1/entities?type=Lamp&count=true&limit=0").headers[
            "ngsild-results-count"] == "30"


def _worker_pids(client: Client, want: int, timeout: float = 30) -> set[int]:
    """The pids of the workers answering on the port, once ``want`` of them were seen."""
    pids: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(pids) < want and time.monotonic() < deadline:
        try:
            pids.add(client.get("/health").json["process"]["pid"])
        except ConnectionError:
            time.sleep(0.05)
    return pids


def test_a_worker_that_dies_is_replaced_while_the_other_keeps_serving(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/restart.db"
    with BrokerProcess(store, extra=("--workers", "2")) as broker:
        client = Client(broker.url)
        first = _worker_pids(client, 2)
        assert len(first) == 2, first
        for n in range(10):
            assert client.post("/ngsi-ld/v1/entities", lamp(n, n)).status == 201
        time.sleep(5.5)  # past the supervisor's start-up grace: a death now is a crash
        victim, survivor = sorted(first)
        os.kill(victim, signal.SIGKILL)
        # The replacement opens the store while the survivor serves and writes: the
        # survivor keeps its hold on the WAL index (a reset under it was a SIGBUS).
        written = 10
        deadline = time.monotonic() + 30
        seen: set[int] = set()
        while time.monotonic() < deadline and not (seen - first):
            try:
                assert client.post("/ngsi-ld/v1/entities", lamp(written)).status == 201
                written += 1
                seen.add(client.get("/health").json["process"]["pid"])
            except ConnectionError:
                time.sleep(0.05)
        assert seen - first, "no replacement worker answered"
        for n in range(written, written + 20):
            assert client.post("/ngsi-ld/v1/entities", lamp(n, n)).status == 201
        os.kill(survivor, 0)  # the survivor is still running
        assert victim not in _worker_pids(client, 2)
        reply = client.get("/ngsi-ld/v1/entities?type=Lamp&count=true&limit=0")
        assert reply.headers["ngsild-results-count"] == str(written + 20)


def test_registrations_and_their_subscriptions_span_the_processes(pair, receiver) -> None:
    a, b, _ = pair
    regs, csubs = "/ngsi-ld/v1/csourceRegistrations", "/ngsi-ld/v1/csourceSubscriptions"
    sub = {"id": "urn:ngsi-ld:Subscription:cs", "type": "Subscription",
           "entities": [{"type": "Lamp"}],
           "notification": {"endpoint": {"uri": receiver.url("cs")}}}
    assert b.post(csubs, sub).status == 201
    registration = {"id": "urn:ngsi-ld:ContextSourceRegistration:c",
                    "type": "ContextSourceRegistration",
                    "information": [{"entities": [{"type": "Lamp"}]}],
                    "endpoint": "http://source:1026"}
    settle(0.3)  # B's subscription reached A through the feed
    assert a.post(regs, registration).status == 201
    settle()
    assert b.get(f"{regs}/{registration['id']}").status == 200
    assert a.get(f"{csubs}/{sub['id']}").status == 200
    assert b.delete(f"{regs}/{registration['id']}").status == 204
    settle()
    assert a.get(f"{regs}/{registration['id']}").status == 404
    reasons = [n.body["triggerReason"] for n in receiver.at("cs")]
    assert reasons == ["newlyMatching", "noLongerMatching"]  # each once

"""Brokers on the memory store, on SQLite and on MongoDB, given the same subscriptions
and the same random sequence of writes, notify their subscribers alike.

What a subscriber receives depends on the store: the state of an entity before a write
(as the store read it) decides which ``notificationTrigger`` kinds a write is
(entityCreated, entityUpdated, entityDeleted, attributeCreated, attributeUpdated,
attributeDeleted), whether a ``watchedAttributes`` one changed, the ``previousValue``s
of ``showChanges``, whether a ``q``, ``geoQ`` or ``scopeQ`` matched before or after;
the state after is what is notified (``attributes``, ``format``, ``sysAttrs``,
``datasetId``), and ``join`` reads the linked entities from the store.

The writes are those of tests/agreement_brokers.py (every kind, batches, temporal writes,
two tenants); the rules here create random subscriptions on all three brokers (each
broker's notifications go to a receiver of its own, at a path per subscription), PATCH,
expire and DELETE them, read them back (one by one and listed, status and ``timesSent``
included), restart the SQLite and MongoDB brokers on what they stored (subscriptions and
counters loaded back), and let attributes and entities expire (4.22: each store's
sweeper removes them).  After every write each
broker's subscription manager is drained (every notification queued by the write has
been answered by the receiver), and the three must have sent the same notifications:
per subscription, the same entities.  Normalised: the subscription ids each broker
minted are mapped to the rule's own number, the endpoint to its path, the times a store
sets (createdAt, modifiedAt, deletedAt, notifiedAt...) are left out, and the entities
of a write are compared as a multiset: how changes that queue up behind a delivery are
grouped into notifications depends on timing, not on the store (subscriptions.manager).
(So the order in which one write's changes of one entity were notified, a batch naming
it twice, is not compared.)
"""
from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from agreement_brokers import (
    ENTITIES,
    EXAMPLES,
    IDS,
    TIME_KEYS,
    WritingBrokers,
    ids,
    names,
    values,
)
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule
from notify_receiver import Receiver

from broker.config import Settings
from broker.routes.subscriptions import MANAGER
from broker.state import BROKER

SUBSCRIPTIONS = "/ngsi-ld/v1/subscriptions"
TRIGGERS = ["entityCreated", "entityUpdated", "entityDeleted", "attributeCreated",
            "attributeUpdated", "attributeDeleted"]
#: at most this many subscriptions at once (more cost more than they find)
MOST = 4
#: times set by a broker's clock, which differ between two brokers
CLOCK_KEYS = TIME_KEYS | {"deletedAt", "notifiedAt", "lastNotification", "lastSuccess",
                          "lastFailure"}
QUERIES = ["a>0", "b==%22x%22|c", "a.unit", "!a", "c==%22urn:ngsi-ld:Lamp:1%22",
           "a.datasetId==%22urn:ngsi-ld:Dataset:1%22", "a==-3..0;b!=true", "b[en]==%22x%22"]
AROUND = [[[114.1, 22.2], [114.3, 22.2], [114.3, 22.4], [114.1, 22.4], [114.1, 22.2]]]

names_list = st.lists(names, min_size=1, max_size=3, unique=True)


@st.composite
def geo_queries(draw: st.DrawFn) -> dict[str, Any]:
    """5.2.13 GeoQuery: near a point of tests/agreement_brokers.POINTS or within a
    polygon around two of them, on one of the attribute names."""
    where: dict[str, Any] = draw(st.sampled_from([
        {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": [114.17, 22.3]},
        {"georel": "near;minDistance==5000", "geometry": "Point", "coordinates": [114.17, 22.3]},
        {"georel": "within", "geometry": "Polygon", "coordinates": AROUND},
    ]))
    return {**where, "geoproperty": draw(names)}


@st.composite
def selections(draw: st.DrawFn) -> dict[str, Any]:
    """5.2.33 EntitySelector: a type, maybe an id or an idPattern."""
    selector: dict[str, Any] = {
        "type": draw(st.sampled_from(["Lamp", "Post", "Lamp|Post", "Lamp|Post"]))}
    which = draw(st.integers(0, 5))
    if which == 1:
        selector["id"] = draw(st.sampled_from(IDS))
    elif which == 2:
        selector["idPattern"] = draw(st.sampled_from([".*:[12]$", ".*:0$"]))
    return selector


@st.composite
def notification_params(draw: st.DrawFn) -> dict[str, Any]:
    """5.2.14 NotificationParams, the endpoint left for each broker to fill in."""
    params: dict[str, Any] = {}
    if draw(st.integers(0, 2)) == 0:
        params["attributes"] = draw(names_list)
    if draw(st.booleans()):
        params["format"] = draw(st.sampled_from(["normalized", "concise", "keyValues"]))
    for flag in ("showChanges", "sysAttrs"):
        if draw(st.booleans()):
            params[flag] = draw(st.booleans())
    if draw(st.integers(0, 4)) == 0:
        params["join"] = draw(st.sampled_from(["flat", "inline"]))
    return params


@st.composite
def subscriptions(draw: st.DrawFn) -> dict[str, Any]:
    """5.2.12 Subscription: what it selects, what it watches, what it notifies."""
    body: dict[str, Any] = {"type": "Subscription"}
    if draw(st.integers(0, 4)) > 0:
        body["entities"] = draw(st.lists(selections(), min_size=1, max_size=2))
    if "entities" not in body or draw(st.integers(0, 2)) == 0:
        body["watchedAttributes"] = draw(names_list)
    triggers = draw(st.integers(0, 2))
    if triggers == 1:  # the default is attributeCreated and attributeUpdated
        body["notificationTrigger"] = TRIGGERS
    elif triggers == 2:
        body["notificationTrigger"] = draw(st.lists(st.sampled_from(TRIGGERS), min_size=1,
                                                    max_size=6, unique=True))
    if draw(st.integers(0, 3)) == 0:
        body["q"] = draw(st.sampled_from(QUERIES))
    if draw(st.integers(0, 5)) == 0:
        body["geoQ"] = draw(geo_queries())
    if draw(st.integers(0, 7)) == 0:
        body["scopeQ"] = draw(st.sampled_from(["/HK/#", "/SZ", "/HK/Kowloon"]))
    if draw(st.integers(0, 7)) == 0:
        body["datasetId"] = [draw(st.sampled_from(["urn:ngsi-ld:Dataset:1", "@none"]))]
    body["notification"] = draw(notification_params())
    return body


fragments = st.one_of(
    st.builds(lambda q: {"q": q}, st.sampled_from(QUERIES)),
    st.builds(lambda w: {"watchedAttributes": w}, names_list),
    st.builds(lambda t: {"notificationTrigger": t},
              st.lists(st.sampled_from(TRIGGERS), min_size=1, max_size=3, unique=True)),
    st.builds(lambda active: {"isActive": active}, st.booleans()),
    st.builds(lambda n: {"notification": n}, notification_params()),
    st.builds(lambda e: {"entities": e}, st.lists(selections(), min_size=1, max_size=2)),
    st.builds(lambda g: {"geoQ": g}, geo_queries()),
    st.just({"expiresAt": "2099-01-01T00:00:00Z"}),
)


def notified(node: Any) -> Any:
    """A notified entity or a subscription read back: the clock's times left out, the
    lists sorted (their order is unspecified)."""
    if isinstance(node, dict):
        return {k: notified(v) for k, v in node.items() if k not in CLOCK_KEYS}
    if isinstance(node, list):
        items = [notified(v) for v in node]
        return sorted(items, key=lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    return node


class NotifiedBrokers(WritingBrokers):
    """The writes of :class:`WritingBrokers` on brokers with subscriptions; after each
    write the three sent the same notifications."""

    def __init__(self) -> None:
        super().__init__()
        self.receivers = [self._run(Receiver().start()) for _ in self.clients]
        #: per subscription (the rule's number): its tenant and each broker's id of it
        self.subscribed: dict[int, tuple[str, list[str]]] = {}
        self.made = 0
        #: per receiver, how many notifications were compared already
        self.seen = [0] * len(self.receivers)

    def configure(self, store: str) -> Settings:
        # the receivers are on loopback, which the outbound policy refuses by default;
        # no retries: a receiver that does not answer is a failure to see, not to hide
        return Settings(store=store, outbound_allow="127.0.0.0/8", notification_retries=0)

    def teardown(self) -> None:
        for receiver in self.receivers:
            self._run(receiver.close())
        super().teardown()

    # -- after every write ------------------------------------------------------------

    def agree(self, method: str, path: str, body: Any,
              answers: list[tuple[int, Any]]) -> None:
        super().agree(method, path, body, answers)
        self.notified_alike(method, path, body)

    async def _settle(self) -> None:
        """Every notification the writes queued has been answered by its receiver."""
        for client in self.clients:
            assert isinstance(client.server, TestServer)
            manager = client.server.app[MANAGER]
            await manager.drain()
            assert manager.queued() == 0

    def notified_alike(self, method: str, path: str, body: Any) -> None:
        self._run(self._settle())
        got = []
        for n, receiver in enumerate(self.receivers):
            fresh = receiver.received[self.seen[n]:]
            self.seen[n] = len(receiver.received)
            per_rule: dict[str, list[Any]] = {}
            for note in fresh:
                number = int(note.path.removeprefix("s"))
                tenant, sub_ids = self.subscribed[number]
                assert note.body["subscriptionId"] == sub_ids[n], (note.path, note.body)
                assert note.body["type"] == "Notification", note.body
                assert note.headers.get("NGSILD-Tenant", "") == tenant, note.headers
                # as the endpoint accepts (5.2.15)
                assert note.headers["Content-Type"].startswith("application/json"), note.headers
                per_rule.setdefault(note.path, []).extend(note.body["data"])
            got.append({rule: notified(data) for rule, data in per_rule.items()})
        mine, *others = got
        for backend, theirs in zip(("sqlite", "mongodb"), others, strict=True):
            assert mine == theirs, (backend, method, path, body, self.tenant, mine, theirs)

    @rule(entity_id=ids, name=names, value=values, whole=st.booleans())
    def transient(self, entity_id: str, name: str, value: Any, whole: bool) -> None:
        """4.22 Transient entities and attributes: an attribute (or the whole entity,
        merged with an ``expiresAt``) expires in a moment; each broker's sweeper removes
        it through its store (``Store.due_expiries``) and its subscribers are told of
        the deletion as of any other."""
        soon = datetime.now(UTC) + timedelta(seconds=0.3)
        at = soon.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        attr = {"type": "Property", "value": value}
        if whole:
            self.write("PATCH", f"{ENTITIES}/{entity_id}", {name: attr, "expiresAt": at})
        else:
            self.write("PATCH", f"{ENTITIES}/{entity_id}", {name: {**attr, "expiresAt": at}})
        time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()))
        self._run(self._swept(int(soon.timestamp() * 1000)))
        self.notified_alike("sweep", f"{ENTITIES}/{entity_id}", None)
        self.read(f"{ENTITIES}/{entity_id}")

    async def _swept(self, due: int) -> None:
        """Each broker's sweeper removed what expired at ``due`` (ms since the epoch)."""
        for _ in range(100):
            waiting = False
            for client in self.clients:
                assert isinstance(client.server, TestServer)
                store = client.server.app[BROKER].service.store
                waiting = waiting or bool(await store.due_expiries(due, 1))
            if not waiting:
                # the sweeper publishes the change once the store wrote it: its turn
                await asyncio.sleep(0.05)
                return
            await asyncio.sleep(0.05)
        raise AssertionError("what expired was not swept within 5 s")

    # -- subscriptions ----------------------------------------------------------------

    def _bodies(self, body: dict[str, Any], number: int) -> list[dict[str, Any]]:
        """``body`` for each broker, its notification endpoint that broker's receiver."""
        bodies = []
        for receiver in self.receivers:
            notification = {**body.get("notification", {}),
                            "endpoint": {"uri": receiver.url(f"s{number}"),
                                         "accept": "application/json"}}
            bodies.append({**body, "notification": notification})
        return bodies

    @initialize(bodies=st.lists(subscriptions(), min_size=2, max_size=MOST - 1))
    def subscribe_first(self, bodies: list[dict[str, Any]]) -> None:
        """Subscriptions from the start, so that every write may notify."""
        for body in bodies:
            self.subscribe(body)

    @rule(body=subscriptions())
    def subscribe(self, body: dict[str, Any]) -> None:
        """5.8.1 Create Subscription."""
        if len(self.subscribed) >= MOST:
            return
        number = self.made
        self.made += 1
        requests = [("POST", SUBSCRIPTIONS, each) for each in self._bodies(body, number)]
        answers = self._run(self._each(requests))
        statuses = {status for status, _ in answers}
        assert len(statuses) == 1, (body, answers)
        if statuses != {201}:
            return  # refused by all three
        listed = self._run(self._all("GET", f"{SUBSCRIPTIONS}?limit=100"))
        sub_ids = []
        for (_, subs), known in zip(listed, self._known(), strict=True):
            new = [sub["id"] for sub in subs if sub["id"] not in known]
            assert len(new) == 1, (subs, known)
            sub_ids.append(new[0])
        self.subscribed[number] = (self.tenant, sub_ids)

    def _known(self) -> list[set[str]]:
        """Each broker's ids of the subscriptions of the tenant now written."""
        return [{ids[n] for tenant, ids in self.subscribed.values() if tenant == self.tenant}
                for n in range(len(self.clients))]

    def _on_each(self, number: int, method: str, body: Any = None) -> list[tuple[int, Any]]:
        """A request about subscription ``number`` to each broker, in its tenant."""
        tenant, sub_ids = self.subscribed[number]
        written, self.tenant = self.tenant, tenant
        try:
            answers: list[tuple[int, Any]] = self._run(self._each(
                [(method, f"{SUBSCRIPTIONS}/{sub_id}", body) for sub_id in sub_ids]))
            return answers
        finally:
            self.tenant = written

    def _chosen(self, which: int) -> int | None:
        numbers = sorted(self.subscribed)
        return numbers[which % len(numbers)] if numbers else None

    @rule(which=st.integers(0, MOST), fragment=fragments)
    def patch_subscription(self, which: int, fragment: dict[str, Any]) -> None:
        """5.8.2 Update Subscription."""
        number = self._chosen(which)
        if number is None:
            return
        answers = self._on_each(number, "PATCH", body=fragment)
        assert len({status for status, _ in answers}) == 1, (fragment, answers)
        self.the_same_subscription(which)

    @rule(which=st.integers(0, MOST))
    def expire(self, which: int) -> None:
        """5.2.12 expiresAt: a subscription that expires (in half a second, the same
        instant on the three) is expired alike, notifies nothing more, and reads alike
        (after a restart too)."""
        number = self._chosen(which)
        if number is None:
            return
        soon = datetime.now(UTC) + timedelta(seconds=0.5)
        at = soon.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        answers = self._on_each(number, "PATCH", body={"expiresAt": at})
        assert [status for status, _ in answers] == [204] * len(answers), answers
        time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
        self.the_same_subscription(which)

    @rule(which=st.integers(0, MOST))
    def unsubscribe(self, which: int) -> None:
        """5.8.5 Delete Subscription: nothing is notified to it any more."""
        number = self._chosen(which)
        if number is None:
            return
        answers = self._on_each(number, "DELETE")
        assert [status for status, _ in answers] == [204] * len(answers), answers
        del self.subscribed[number]

    def _normal_subscription(self, number: int, doc: Any) -> Any:
        """A subscription read back: its id the rule's number, its endpoint a path."""
        if not isinstance(doc, dict):
            return doc
        doc = dict(doc)
        doc["id"] = number
        notification = dict(doc.get("notification", {}))
        endpoint = dict(notification.get("endpoint", {}))
        endpoint["uri"] = str(endpoint.get("uri", "")).rsplit("/", 1)[-1]
        notification["endpoint"] = endpoint
        doc["notification"] = notification
        return notified(doc)

    @rule(which=st.integers(0, MOST))
    def the_same_subscription(self, which: int) -> None:
        """5.8.3 Retrieve Subscription (its status and counters too)."""
        number = self._chosen(which)
        if number is None:
            return
        (mine, reply), *others = self._on_each(number, "GET")
        for backend, (theirs, other) in zip(("sqlite", "mongodb"), others, strict=True):
            assert mine == theirs == 200, (backend, reply, other)
            assert self._normal_subscription(number, reply) == \
                self._normal_subscription(number, other), (backend, reply, other)

    @rule()
    def restart(self) -> None:
        """The SQLite and MongoDB brokers restarted: the subscriptions they load from
        their store (5.8: a subscription lasts until deleted or expired) read as the
        memory broker's, which kept them in memory, and notify as before."""
        self._run(self._settle())
        self.restart_stored()
        written = self.tenant
        try:
            for tenant in {tenant for tenant, _ in self.subscribed.values()}:
                self.tenant = tenant
                self.the_same_subscriptions()
        finally:
            self.tenant = written
        for which in range(len(self.subscribed)):
            self.the_same_subscription(which)

    @rule()
    def the_same_subscriptions(self) -> None:
        """5.8.4 Query Subscriptions of the tenant now written."""
        answers = self._run(self._all("GET", f"{SUBSCRIPTIONS}?limit=100"))
        normal = []
        for n, (status, subs) in enumerate(answers):
            assert status == 200, subs
            numbers = {ids[n]: number for number, (tenant, ids) in self.subscribed.items()
                       if tenant == self.tenant}
            normal.append(sorted((self._normal_subscription(numbers[sub["id"]], sub)
                                  for sub in subs), key=lambda doc: doc["id"]))
        mine, *others = normal
        for backend, theirs in zip(("sqlite", "mongodb"), others, strict=True):
            assert mine == theirs, (backend, mine, theirs)


def test_a_batch_naming_one_entity_twice_notifies_alike() -> None:
    """One sequence pinned: a batch whose second entry of an entity repeats the first's
    change notifies nothing more (the change is against the first entry's result).  A
    MongoDB batch taking the state before the batch for it (a bug planted by hand,
    benchmarks/README.md, session 27) notified the attribute created twice; the random
    sequences found it in one run of two."""
    machine = NotifiedBrokers()
    try:
        machine.create_all(kinds=["Lamp"] * (2 * len(IDS)),
                           attrs=[{"b": {"type": "Property", "value": 1}}] * (2 * len(IDS)))
        machine.subscribe_first(bodies=[
            {"type": "Subscription", "watchedAttributes": ["a"],
             "notification": {"attributes": ["a"]}},
            {"type": "Subscription", "entities": [{"type": "Lamp"}],
             "notification": {"attributes": ["a", "b"], "showChanges": True}}])
        link = {"a": {"type": "Relationship", "object": IDS[0]}}
        machine.batch_naming_one_twice(IDS[0], "Lamp", link, link, "merge")
        machine.batch_naming_one_twice(IDS[1], "Lamp", {"b": {"type": "Property", "value": 2}},
                                       {"b": {"type": "Property", "value": 3}}, "update")
    finally:
        machine.teardown()


def test_the_brokers_of_every_store_notify_alike() -> None:
    machine = NotifiedBrokers.TestCase
    machine.settings = settings(
        max_examples=max(EXAMPLES // 2, 1), stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine().runTest()


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

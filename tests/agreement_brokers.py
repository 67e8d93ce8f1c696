"""Three brokers driven alike: on the memory store (the reference), on SQLite and on
MongoDB, given the same random sequence of writes over HTTP.

The plumbing and the writes of the agreement tests (tests/test_store_agreement.py,
where they must read alike, and tests/test_notification_agreement.py, where their
subscribers must be notified alike): :class:`WritingBrokers` starts the three brokers,
sends each request to all three and checks that they answered alike; its rules are the
writes (creates, PATCHes, merges, also deleting with urn:ngsi-ld:null, appends,
replacements, attribute and entity deletes, batch operations, temporal writes, instance
edits, the tenant switched), on a few entity ids so that the operations meet.  A
subclass adds what it compares.

MongoDB is the in-memory stand-in of tests/mongo_standin.py (not MongoDB: its filters
are mongomock's), or a real server when ``NGSI_LD_TEST_MONGODB_URL`` is set.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule
from mongo_standin import StandInClient

from broker.app import create_app
from broker.config import Settings
from storage import MongoStore, Store

ENTITIES = "/ngsi-ld/v1/entities"
#: sequences tried (``NGSI_LD_AGREEMENT_EXAMPLES=500`` searches further)
EXAMPLES = int(os.environ.get("NGSI_LD_AGREEMENT_EXAMPLES", "25"))
MONGODB_URL = os.environ.get("NGSI_LD_TEST_MONGODB_URL")
IDS = [f"urn:ngsi-ld:Lamp:{n}" for n in range(4)]
NAMES = ["a", "b", "c"]
#: attributes whose history is read back (temporal values, the times left out)
TIME_KEYS = {"modifiedAt", "createdAt", "instanceId"}
#: times a write may give as observedAt (the history's time axis, the same in both)
OBSERVED = [f"2026-01-0{day}T0{hour}:00:00Z" for day in (1, 2) for hour in (1, 2)]

ids = st.sampled_from(IDS)
names = st.sampled_from(NAMES)
types = st.sampled_from(["Lamp", "Post"])
#: plain values mostly; now and then a float, a JSON object or an array
values = st.one_of(st.integers(-3, 3), st.sampled_from(["x", "y"]), st.booleans(),
                   st.sampled_from([0.5, 2.0, -1.25, {"x": 1}, [1, "x"], {"y": [2]}]))
DATASETS = ["urn:ngsi-ld:Dataset:1", "urn:ngsi-ld:Dataset:2"]


POINTS = [[114.17, 22.3], [114.18, 22.31], [113.0, 22.0]]


@st.composite
def attributes(draw: st.DrawFn) -> dict[str, Any]:
    """An attribute: a Property (maybe of a dataset, observed, with a sub-attribute),
    a Relationship, a LanguageProperty or a GeoProperty."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return {"type": "Relationship", "object": draw(st.sampled_from(IDS))}
    if kind == 1:
        return {"type": "LanguageProperty",
                "languageMap": {"en": draw(st.sampled_from(["x", "y"])), "zh": "燈"}}
    if kind == 2:
        return {"type": "GeoProperty",
                "value": {"type": "Point", "coordinates": draw(st.sampled_from(POINTS))}}
    attr: dict[str, Any] = {"type": "Property", "value": draw(values)}
    if draw(st.integers(0, 4)) == 0:
        attr["datasetId"] = draw(st.sampled_from(DATASETS))
    if draw(st.integers(0, 2)) == 0:
        attr["observedAt"] = draw(st.sampled_from(OBSERVED))
    if draw(st.integers(0, 4)) == 0:
        attr["unit"] = {"type": "Property", "value": draw(values)}
    return attr


fragments = st.dictionaries(names, attributes(), min_size=1, max_size=3)
scopes = st.sampled_from(["/HK/Kowloon", "/HK/Central", "/SZ"])


def without_times(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _scope_history(v) if k == "scope" else without_times(v)
                for k, v in node.items() if k not in TIME_KEYS}
    if isinstance(node, list):
        items = [without_times(v) for v in node]
        # instances of one time may come in either order from two stores
        return sorted(items, key=lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    return node


def _scope_history(node: Any) -> Any:
    """The Scope of an entity, or its history in a temporal answer: there each instance
    is observed at the system time of its write, which differs between two brokers."""
    if isinstance(node, list) and all(isinstance(v, dict) for v in node):
        node = [{k: v for k, v in inst.items() if k != "observedAt"} for inst in node]
    return without_times(node)


def as_is(node: Any) -> Any:
    """An answer whose order is specified (orderBy): only the times left out."""
    if isinstance(node, dict):
        return {k: as_is(v) for k, v in node.items() if k not in TIME_KEYS}
    if isinstance(node, list):
        return [as_is(v) for v in node]
    return node


def discovered(node: Any) -> Any:
    """A discovery answer: lists sorted, the ids minted for a list left out."""
    if isinstance(node, dict):
        return {k: discovered(v) for k, v in node.items()
                if not (k == "id" and str(v).startswith(("urn:ngsi-ld:EntityTypeList:",
                                                         "urn:ngsi-ld:AttributeList:")))}
    return without_times(node)


def _instance_at(body: Any, name: str, position: int) -> str | None:
    """The instanceId at ``position`` (wrapped) among the instances of attribute ``name``
    in a temporal Entity, ordered by their content without the times; None if none."""
    instances = body.get(name) if isinstance(body, dict) else None
    if isinstance(instances, dict):
        instances = [instances]
    if not instances:
        return None
    ordered = sorted(instances, key=lambda v: orjson.dumps(without_times(v),
                                                          option=orjson.OPT_SORT_KEYS))
    chosen = ordered[position % len(ordered)].get("instanceId")
    return chosen if isinstance(chosen, str) else None


def _mongo_store(database: str, standin: StandInClient) -> MongoStore:
    """The MongoDB store of ``database`` (on the stand-in ``standin`` unless a server is
    given): a second one on the same finds what the first wrote."""
    if MONGODB_URL is not None:
        return MongoStore(MONGODB_URL, database=database)
    return MongoStore("mongodb://stand-in/agreement", database=database,
                      client_factory=lambda *_, **__: standin)


class WritingBrokers(RuleBasedStateMachine):
    """The memory broker is the reference; the SQLite and MongoDB brokers are checked.

    Subclasses add the comparisons (rules, invariants, or :meth:`agree` extended: it
    is called after every write).
    """

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        # one directory a sequence, removed by teardown
        self.tmp = Path(tempfile.mkdtemp(prefix="agreement-"))
        #: the tenant the steps now write and read ('' is the default tenant)
        self.tenant = ""
        self.database = f"ngsild_test_{uuid.uuid4().hex[:12]}"
        self.standin = StandInClient()
        self.mongo = _mongo_store(self.database, self.standin)
        self.clients = [
            self._run(self._start(self.configure("memory:"))),
            self._run(self._start(self.configure(self._sqlite))),
            self._run(self._start(self.configure("mongodb://agreement"), self.mongo)),
        ]

    @property
    def _sqlite(self) -> str:
        return f"sqlite:///{self.tmp}/broker.db"

    def restart_stored(self) -> None:
        """Stop the SQLite and MongoDB brokers and start them again on what they stored
        (the memory broker, whose store is gone with it, goes on)."""
        for n in (1, 2):
            self._run(self.clients[n].close())
        self.clients[1] = self._run(self._start(self.configure(self._sqlite)))
        self.mongo = _mongo_store(self.database, self.standin)
        self.clients[2] = self._run(self._start(self.configure("mongodb://agreement"),
                                                self.mongo))

    def configure(self, store: str) -> Settings:
        """The settings of the broker on ``store`` (a subclass may add some)."""
        return Settings(store=store)

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    @staticmethod
    async def _start(config: Settings, store: Store | None = None) -> TestClient:
        client = TestClient(TestServer(create_app(config, store)))
        await client.start_server()
        return client

    def teardown(self) -> None:
        if MONGODB_URL is not None:
            self._run(self.mongo.drop_databases())
        for client in self.clients:
            self._run(client.close())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    async def _each(self, requests: list[tuple[str, str, Any]]) -> list[tuple[int, Any]]:
        """Each broker's answer to its own request (method, path, body), in turn."""
        answers = []
        for client, (method, path, body) in zip(self.clients, requests, strict=True):
            data = None if body is None else orjson.dumps(body)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            if self.tenant:
                headers["NGSILD-Tenant"] = self.tenant
            async with client.request(method, path, data=data, headers=headers) as resp:
                raw = await resp.read()
                answers.append((resp.status, orjson.loads(raw) if raw else None))
        return answers

    async def _all(self, method: str, path: str, body: Any = None) -> list[tuple[int, Any]]:
        return await self._each([(method, path, body)] * len(self.clients))

    def write(self, method: str, path: str, body: Any = None) -> None:
        self.agree(method, path, body, self._run(self._all(method, path, body)))

    def agree(self, method: str, path: str, body: Any,
              answers: list[tuple[int, Any]]) -> None:
        """The SQLite and MongoDB brokers answered a write as the memory broker did."""
        (mine, reply), *others = answers
        for backend, (theirs, other) in zip(("sqlite", "mongodb"), others, strict=True):
            assert mine == theirs, (backend, method, path, body, reply, other)
            if mine == 207:  # a batch's result: the same entities failed and succeeded
                assert reply == other, (backend, method, path, body)

    def read(self, path: str, normal: Callable[[Any], Any] = without_times) -> None:
        (mine, reply), *others = self._run(self._all("GET", path))
        for backend, (theirs, other) in zip(("sqlite", "mongodb"), others, strict=True):
            assert mine == theirs, (backend, self.tenant, path, reply, other)
            assert normal(reply) == normal(other), (backend, self.tenant, path, reply, other)

    # -- writes ---------------------------------------------------------------------------

    @initialize(kinds=st.lists(types, min_size=2 * len(IDS), max_size=2 * len(IDS)),
                attrs=st.lists(fragments, min_size=2 * len(IDS), max_size=2 * len(IDS)))
    def create_all(self, kinds: list[str], attrs: list[dict[str, Any]]) -> None:
        """Every id exists at first, in the default tenant and in the second one, so that
        the first writes meet an entity wherever they go."""
        for tenant, start in (("second", len(IDS)), ("", 0)):
            self.tenant = tenant
            chosen = zip(kinds[start:start + len(IDS)], attrs[start:start + len(IDS)],
                         strict=True)
            for entity_id, (kind, fragment) in zip(IDS, chosen, strict=True):
                self.create(entity_id, kind, fragment)

    @rule(entity_id=ids, name=names, value=values)
    def patch_usual(self, entity_id: str, name: str, value: Any) -> None:
        """The usual PATCH of an IoT Agent: one attribute, one plain value."""
        self.write("PATCH", f"{ENTITIES}/{entity_id}/attrs",
                   {name: {"type": "Property", "value": value}})

    @rule(entity_id=ids, kind=types, attrs=fragments, scope=st.none() | scopes)
    def create(self, entity_id: str, kind: str, attrs: dict[str, Any],
               scope: str | None = None) -> None:
        body = {"id": entity_id, "type": kind, **attrs}
        if scope is not None:
            body["scope"] = scope
        self.write("POST", ENTITIES, body)

    @rule(entity_id=ids, name=names, attr=attributes())
    def patch_one(self, entity_id: str, name: str, attr: dict[str, Any]) -> None:
        self.write("PATCH", f"{ENTITIES}/{entity_id}/attrs/{name}", attr)

    @rule(entity_id=ids, attrs=fragments)
    def patch_several(self, entity_id: str, attrs: dict[str, Any]) -> None:
        self.write("PATCH", f"{ENTITIES}/{entity_id}/attrs", attrs)

    @rule(entity_id=ids, attrs=fragments)
    def merge(self, entity_id: str, attrs: dict[str, Any]) -> None:
        self.write("PATCH", f"{ENTITIES}/{entity_id}", attrs)

    @rule(entity_id=ids, gone=st.lists(names, min_size=1, max_size=2, unique=True),
          attrs=fragments, plain=st.booleans())
    def merge_null(self, entity_id: str, gone: list[str], attrs: dict[str, Any],
                   plain: bool) -> None:
        """5.6.17 Merge Entity: an attribute whose value is "urn:ngsi-ld:null" is
        deleted (given as the value, or as the attribute in short: 4.5.20)."""
        nulls: dict[str, Any] = {
            name: "urn:ngsi-ld:null" if plain else {"type": "Property",
                                                   "value": "urn:ngsi-ld:null"}
            for name in gone}
        self.write("PATCH", f"{ENTITIES}/{entity_id}", {**attrs, **nulls})

    @rule(entity_id=ids, attrs=fragments, keep=st.booleans())
    def append(self, entity_id: str, attrs: dict[str, Any], keep: bool) -> None:
        options = "?options=noOverwrite" if keep else ""
        self.write("POST", f"{ENTITIES}/{entity_id}/attrs{options}", attrs)

    @rule(entity_id=ids, kind=types, attrs=fragments)
    def replace(self, entity_id: str, kind: str, attrs: dict[str, Any]) -> None:
        self.write("PUT", f"{ENTITIES}/{entity_id}", {"type": kind, **attrs})

    @rule(entity_id=ids, name=names)
    def delete_attr(self, entity_id: str, name: str) -> None:
        self.write("DELETE", f"{ENTITIES}/{entity_id}/attrs/{name}")

    @rule(entity_id=ids)
    def delete(self, entity_id: str) -> None:
        self.write("DELETE", f"{ENTITIES}/{entity_id}")

    @rule(batch=st.lists(st.tuples(ids, types, fragments), min_size=1, max_size=3,
                         unique_by=lambda item: item[0]),
          mode=st.sampled_from(["update", "replace"]))
    def upsert(self, batch: list[tuple[str, str, dict[str, Any]]], mode: str) -> None:
        body = [{"id": entity_id, "type": kind, **attrs} for entity_id, kind, attrs in batch]
        self.write("POST", f"/ngsi-ld/v1/entityOperations/upsert?options={mode}", body)

    @rule(batch=st.lists(st.tuples(ids, types, fragments), min_size=1, max_size=3),
          operation=st.sampled_from(["create", "update", "update?options=noOverwrite"]))
    def batch(self, batch: list[tuple[str, str, dict[str, Any]]], operation: str) -> None:
        body = [{"id": entity_id, "type": kind, **attrs} for entity_id, kind, attrs in batch]
        self.write("POST", f"/ngsi-ld/v1/entityOperations/{operation}", body)

    @rule(chosen=st.lists(ids, min_size=1, max_size=2))
    def batch_delete(self, chosen: list[str]) -> None:
        self.write("POST", "/ngsi-ld/v1/entityOperations/delete", chosen)

    @rule(entity_id=ids, name=names,
          readings=st.lists(st.tuples(st.integers(-3, 3), st.sampled_from(OBSERVED)),
                            min_size=1, max_size=3))
    def add_history(self, entity_id: str, name: str, readings: list[tuple[int, str]]) -> None:
        """5.6.12 Add Attributes to a Temporal Representation: instances of past times."""
        instances = [{"type": "Property", "value": value, "observedAt": at}
                     for value, at in readings]
        self.write("POST", f"/ngsi-ld/v1/temporal/entities/{entity_id}/attrs",
                   {name: instances})

    @rule(entity_id=ids, name=names, attr=attributes())
    def replace_attr(self, entity_id: str, name: str, attr: dict[str, Any]) -> None:
        """5.6.19 Replace Attribute."""
        self.write("PUT", f"{ENTITIES}/{entity_id}/attrs/{name}", attr)

    @rule(batch=st.lists(st.tuples(ids, fragments), min_size=1, max_size=3))
    def batch_merge(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        body = [{"id": entity_id, **attrs} for entity_id, attrs in batch]
        self.write("POST", "/ngsi-ld/v1/entityOperations/merge", body)

    @rule(entity_id=ids, kind=types, first=fragments, second=fragments,
          operation=st.sampled_from(["merge", "update"]))
    def batch_naming_one_twice(self, entity_id: str, kind: str, first: dict[str, Any],
                               second: dict[str, Any], operation: str) -> None:
        """A batch naming one entity twice: its second entry applies to the first's
        result, and is notified against it (the other batch rules name one entity twice
        too seldom: a store taking the state before the batch for the second entry's
        was found only by hundreds of sequences)."""
        typed = {"type": kind} if operation == "update" else {}
        body = [{"id": entity_id, **typed, **first}, {"id": entity_id, **typed, **second}]
        self.write("POST", f"/ngsi-ld/v1/entityOperations/{operation}", body)

    @rule(entity_id=ids, name=names, every=st.booleans())
    def delete_history_attr(self, entity_id: str, name: str, every: bool) -> None:
        """5.6.13 Delete Attribute from a Temporal Representation."""
        options = "?deleteAll=true" if every else ""
        self.write("DELETE", f"/ngsi-ld/v1/temporal/entities/{entity_id}/attrs/{name}{options}")

    @rule(entity_id=ids)
    def delete_history(self, entity_id: str) -> None:
        self.write("DELETE", f"/ngsi-ld/v1/temporal/entities/{entity_id}")

    @rule(tenant=st.sampled_from(["", "", "second"]))
    def switch_tenant(self, tenant: str) -> None:
        """6.3.14: the following steps write and read the tenant named by NGSILD-Tenant
        (the default tenant twice as often): a tenant's entities, history and discovery
        are its own on every store."""
        self.tenant = tenant

    @rule(entity_id=ids, name=names, position=st.integers(0, 4), value=values,
          observed=st.none() | st.sampled_from(OBSERVED), remove=st.booleans())
    def edit_instance(self, entity_id: str, name: str, position: int, value: Any,
                      observed: str | None, remove: bool) -> None:
        """5.6.14 Partial Update of an Attribute instance, 5.6.15 Delete Attribute instance.

        The instanceIds of the three stores differ, so the instance is picked by its
        position in each broker's own history of the attribute, ordered by content (the
        times left out: instances alike in all else are alike in every read).
        """
        path = f"/ngsi-ld/v1/temporal/entities/{entity_id}/attrs/{name}"
        history = self._run(self._all(
            "GET", f"/ngsi-ld/v1/temporal/entities/{entity_id}?attrs={name}"))
        picked = [_instance_at(body, name, position) if status == 200 else None
                  for status, body in history]
        if len({chosen is None for chosen in picked}) != 1:
            return  # the histories differ: a read rule shows how
        chosen_ids = [chosen or "urn:ngsi-ld:Instance:none" for chosen in picked]
        method = "DELETE" if remove else "PATCH"
        body: dict[str, Any] | None = None
        if not remove:
            body = {"value": value} if observed is None else {"value": value,
                                                              "observedAt": observed}
        requests = [(method, f"{path}/{chosen}", body) for chosen in chosen_ids]
        self.agree(method, f"{path}/<instance {position}>", body,
                   self._run(self._each(requests)))

    @rule(entity_id=ids, name=names, dataset=st.none() | st.sampled_from(DATASETS),
          every=st.booleans())
    def delete_attr_instances(self, entity_id: str, name: str, dataset: str | None,
                              every: bool) -> None:
        """5.6.5 Delete Attribute: of a datasetId, or every instance (deleteAll)."""
        options = [] if dataset is None else [f"datasetId={dataset}"]
        if every:
            options.append("deleteAll=true")
        self.write("DELETE", f"{ENTITIES}/{entity_id}/attrs/{name}?{'&'.join(options)}")

    @rule(batch=st.lists(st.tuples(ids, types, fragments), min_size=1, max_size=3),
          options=st.sampled_from(["replace", "update", "update,noOverwrite"]))
    def batch_update_mode(self, batch: list[tuple[str, str, dict[str, Any]]],
                          options: str) -> None:
        """5.6.9 Batch Entity Update replacing the entities' attributes, or updating them
        with noOverwrite beside update."""
        body = [{"id": entity_id, "type": kind, **attrs} for entity_id, kind, attrs in batch]
        self.write("POST", f"/ngsi-ld/v1/entityOperations/update?options={options}", body)

    @rule(entity_id=ids, kind=types, attrs=fragments)
    def temporal_upsert(self, entity_id: str, kind: str, attrs: dict[str, Any]) -> None:
        """5.6.11 Create or Update Temporal Representation of an Entity."""
        body = {"id": entity_id, "type": kind,
                **{name: [attr] for name, attr in attrs.items()}}
        self.write("POST", "/ngsi-ld/v1/temporal/entities", body)

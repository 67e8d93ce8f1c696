"""Brokers on the memory store, on SQLite and on MongoDB, given the same random sequence
of writes over HTTP, answer every read alike.

MongoDB is the in-memory stand-in of tests/mongo_standin.py (not MongoDB: its filters
are mongomock's), or a real server when ``NGSI_LD_TEST_MONGODB_URL`` is set.

A Hypothesis state machine drives them through creates, PATCHes (one attribute, several,
merge), appends (with and without ``noOverwrite``), replacements, attribute deletes (of
a datasetId, every instance) and entity deletes, batch operations (update with
``replace`` or ``noOverwrite``, upsert with ``update`` or ``replace``), temporal
creations and additions, temporal instance PATCH and DELETE and temporal deletes, on a
few entity ids in two tenants so that the operations meet.  After each step all
answered with the same status, and all give the same entity (by id, by query on type,
id, idPattern, q, scopeQ, geometry, ordered and paged, counted, in other
representations), the same discovery answers (types and attributes) and the same
history of an attribute: plain, within a time window, the last N, as temporalValues and
aggregated (values and observedAt: the system times of two brokers differ).  The SQLite
and MongoDB stores take shorter lanes than the memory store for many writes (a PATCH of
one attribute, creations prepared at once, packed history, answers kept between
writes): this is where a lane that writes or reads something else than the general
path shows.
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
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
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


def _without_times(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _scope_history(v) if k == "scope" else _without_times(v)
                for k, v in node.items() if k not in TIME_KEYS}
    if isinstance(node, list):
        items = [_without_times(v) for v in node]
        # instances of one time may come in either order from two stores
        return sorted(items, key=lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    return node


def _scope_history(node: Any) -> Any:
    """The Scope of an entity, or its history in a temporal answer: there each instance
    is observed at the system time of its write, which differs between two brokers."""
    if isinstance(node, list) and all(isinstance(v, dict) for v in node):
        node = [{k: v for k, v in inst.items() if k != "observedAt"} for inst in node]
    return _without_times(node)


def _as_is(node: Any) -> Any:
    """An answer whose order is specified (orderBy): only the times left out."""
    if isinstance(node, dict):
        return {k: _as_is(v) for k, v in node.items() if k not in TIME_KEYS}
    if isinstance(node, list):
        return [_as_is(v) for v in node]
    return node


def _discovered(node: Any) -> Any:
    """A discovery answer: lists sorted, the ids minted for a list left out."""
    if isinstance(node, dict):
        return {k: _discovered(v) for k, v in node.items()
                if not (k == "id" and str(v).startswith(("urn:ngsi-ld:EntityTypeList:",
                                                         "urn:ngsi-ld:AttributeList:")))}
    return _without_times(node)


def _instance_at(body: Any, name: str, position: int) -> str | None:
    """The instanceId at ``position`` (wrapped) among the instances of attribute ``name``
    in a temporal Entity, ordered by their content without the times; None if none."""
    instances = body.get(name) if isinstance(body, dict) else None
    if isinstance(instances, dict):
        instances = [instances]
    if not instances:
        return None
    ordered = sorted(instances, key=lambda v: orjson.dumps(_without_times(v),
                                                          option=orjson.OPT_SORT_KEYS))
    chosen = ordered[position % len(ordered)].get("instanceId")
    return chosen if isinstance(chosen, str) else None


def _mongo_store() -> MongoStore:
    if MONGODB_URL is not None:
        return MongoStore(MONGODB_URL, database=f"ngsild_test_{uuid.uuid4().hex[:12]}")
    return MongoStore("mongodb://stand-in/agreement", client_factory=StandInClient)


class Brokers(RuleBasedStateMachine):
    """The memory broker is the reference; the SQLite and MongoDB brokers are checked."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        # one directory a sequence, removed by teardown
        self.tmp = Path(tempfile.mkdtemp(prefix="agreement-"))
        #: the tenant the steps now write and read ('' is the default tenant)
        self.tenant = ""
        self.mongo = _mongo_store()
        self.clients = [
            self._run(self._start(Settings(store="memory:"))),
            self._run(self._start(Settings(store=f"sqlite:///{self.tmp}/broker.db"))),
            self._run(self._start(Settings(store="mongodb://agreement"), self.mongo)),
        ]

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

    def read(self, path: str, normal: Callable[[Any], Any] = _without_times) -> None:
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

    # -- reads ----------------------------------------------------------------------------

    @invariant()
    def the_same_entities(self) -> None:
        self.read(f"{ENTITIES}?type=Lamp,Post&limit=100&count=true")
        self.read(f"{ENTITIES}?type=Lamp&q=a>0|b==%22x%22&limit=100")

    @rule(entity_id=ids)
    def the_same_entity(self, entity_id: str) -> None:
        self.read(f"{ENTITIES}/{entity_id}")

    @rule(entity_id=ids, name=names)
    def the_same_history(self, entity_id: str, name: str) -> None:
        self.read(f"/ngsi-ld/v1/temporal/entities/{entity_id}?attrs={name}")

    @rule(name=names)
    def the_same_histories(self, name: str) -> None:
        self.read(f"/ngsi-ld/v1/temporal/entities?type=Lamp,Post&attrs={name}&limit=100"
                  "&timerel=before&timeAt=2030-01-01T00:00:00Z")

    @rule(name=names, period=st.sampled_from(["PT1H", "P1D"]))
    def the_same_aggregates(self, name: str, period: str) -> None:
        self.read(
            f"/ngsi-ld/v1/temporal/entities?type=Lamp,Post&attrs={name}&limit=100"
            "&options=aggregatedValues&aggrMethods=totalCount,distinctCount,sum,avg,min,max"
            f"&aggrPeriodDuration={period}&timerel=before&timeAt=2026-02-01T00:00:00Z"
        )

    @rule(scope=st.sampled_from(["/HK/%23", "/HK/Kowloon", "/SZ,/HK/Central"]))
    def the_same_scopes(self, scope: str) -> None:
        self.read(f"{ENTITIES}?type=Lamp,Post&scopeQ={scope}&limit=100")

    @rule(name=names, distance=st.sampled_from([100, 2000, 200000]))
    def the_same_places(self, name: str, distance: int) -> None:
        self.read(f"{ENTITIES}?type=Lamp,Post&geoproperty={name}&georel=near;maxDistance=="
                  f"{distance}&geometry=Point&coordinates=[114.17,22.3]&limit=100")

    @rule(query=st.sampled_from(["a.unit==1", "b[en]==%22x%22", "c~=%22x%22", "!a",
                                 "a==-3..0;b!=true", "c==%22urn:ngsi-ld:Lamp:1%22",
                                 "a.unit>0|b.unit", "c.observedAt>=2026-01-01T02:00:00Z",
                                 "a.datasetId==%22urn:ngsi-ld:Dataset:1%22", "b.unit!=1",
                                 "a<=1;(b==%22y%22|c)", "a[x]==1", "b[y]", "c>0.5",
                                 "a==%22x%22,%22y%22", "b.datasetId"]))
    def the_same_q(self, query: str) -> None:
        self.read(f"{ENTITIES}?type=Lamp,Post&q={query}&limit=100&count=true")

    @rule(entity_id=ids, name=names)
    def the_same_picks(self, entity_id: str, name: str) -> None:
        self.read(f"{ENTITIES}/{entity_id}?pick=id,{name}&options=sysAttrs")
        self.read(f"{ENTITIES}?type=Lamp,Post&omit={name}&limit=100")

    @rule(name=names, shape=st.sampled_from(["keyValues", "concise"]))
    def the_same_shapes(self, name: str, shape: str) -> None:
        self.read(f"{ENTITIES}?type=Lamp,Post&attrs={name}&options={shape}&limit=100")
        self.read(f"{ENTITIES}?type=Lamp,Post&datasetId=urn:ngsi-ld:Dataset:1&limit=100")

    @rule(kind=types, name=names)
    def the_same_discovery(self, kind: str, name: str) -> None:
        """5.7.5-5.7.10: types and attributes (lists sorted: their order is unspecified;
        the ids of the lists are minted per answer)."""
        for path in ("types", "types?details=true", f"types/{kind}", "attributes",
                     "attributes?details=true", f"attributes/{name}"):
            self.read(f"/ngsi-ld/v1/{path}", _discovered)

    @rule(limit=st.integers(0, 3), offset=st.integers(0, 4),
          order=st.sampled_from(["id", "a,id", "type,id", "b,id"]),
          name=names)
    def the_same_pages(self, limit: int, offset: int, order: str, name: str) -> None:
        """Table 6.4.3.2-1 orderBy, limit, offset, count (limit=0 only counts)."""
        self.read(f"{ENTITIES}?type=Lamp,Post&orderBy={order}&limit={limit}&offset={offset}"
                  "&count=true", _as_is)
        self.read(f"{ENTITIES}?type=Lamp,Post&attrs={name}&orderBy=id&limit=100", _as_is)
        # without orderBy every store pages in id order (keyset paging on SQLite)
        self.read(f"{ENTITIES}?type=Lamp,Post&limit={limit}&offset={offset}&count=true",
                  _as_is)

    @rule(entity_id=ids, name=names,
          when=st.sampled_from(["timerel=before&timeAt=2026-01-01T02:00:00Z",
                                "timerel=after&timeAt=2026-01-01T02:00:00Z",
                                "timerel=between&timeAt=2026-01-01T01:30:00Z"
                                "&endTimeAt=2026-01-02T01:30:00Z"]),
          last=st.none() | st.integers(1, 3), values_only=st.booleans())
    def the_same_windows(self, entity_id: str, name: str, when: str, last: int | None,
                         values_only: bool) -> None:
        """Temporal reads within a time window, the last N, as temporalValues."""
        params = f"attrs={name}&{when}"
        if last is not None:
            params += f"&lastN={last}"
        if values_only:
            params += "&options=temporalValues"
        self.read(f"/ngsi-ld/v1/temporal/entities/{entity_id}?{params}")
        self.read(f"/ngsi-ld/v1/temporal/entities?type=Lamp,Post&{params}&limit=100")

    @rule(select=st.sampled_from([f"id={IDS[1]},{IDS[3]}", "idPattern=.*:[12]$",
                                  f"type=Post&id={IDS[0]},{IDS[2]}",
                                  "type=Lamp&idPattern=.*:[03]$"]),
          query=st.none() | st.sampled_from(["a>0", "b==%22x%22|c", "a.unit"]))
    def the_same_selections(self, select: str, query: str | None) -> None:
        """Entities and histories chosen by id, idPattern and type, maybe filtered by q."""
        if "type=" not in select:
            select += "&type=Lamp,Post"
        if query is not None:
            select += f"&q={query}"
        self.read(f"{ENTITIES}?{select}&limit=100&count=true")
        self.read(f"/ngsi-ld/v1/temporal/entities?{select}&limit=100"
                  "&timerel=after&timeAt=2026-01-01T01:30:00Z")

    @rule(name=names, method=st.sampled_from(["totalCount", "distinctCount", "sum", "min",
                                              "max", "avg"]),
          when=st.sampled_from(["timerel=after&timeAt=2026-01-01T01:30:00Z",
                                "timerel=between&timeAt=2026-01-01T00:00:00Z"
                                "&endTimeAt=2026-01-02T01:30:00Z"]))
    def the_same_aggregate(self, name: str, method: str, when: str) -> None:
        """One aggregation method at a time, over a window."""
        self.read(f"/ngsi-ld/v1/temporal/entities?type=Lamp,Post&attrs={name}&limit=100"
                  f"&options=aggregatedValues&aggrMethods={method}&aggrPeriodDuration=P1D"
                  f"&{when}")


def test_the_brokers_of_every_store_agree() -> None:
    machine = Brokers.TestCase
    machine.settings = settings(
        max_examples=EXAMPLES, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine().runTest()


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

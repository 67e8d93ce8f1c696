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

import pytest
from agreement_brokers import (
    ENTITIES,
    EXAMPLES,
    IDS,
    WritingBrokers,
    as_is,
    discovered,
    ids,
    names,
    types,
)
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule


class Brokers(WritingBrokers):
    """The writes of :class:`WritingBrokers`; after each, the reads agree."""

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
            self.read(f"/ngsi-ld/v1/{path}", discovered)

    @rule(limit=st.integers(0, 3), offset=st.integers(0, 4),
          order=st.sampled_from(["id", "a,id", "type,id", "b,id"]),
          name=names)
    def the_same_pages(self, limit: int, offset: int, order: str, name: str) -> None:
        """Table 6.4.3.2-1 orderBy, limit, offset, count (limit=0 only counts)."""
        self.read(f"{ENTITIES}?type=Lamp,Post&orderBy={order}&limit={limit}&offset={offset}"
                  "&count=true", as_is)
        self.read(f"{ENTITIES}?type=Lamp,Post&attrs={name}&orderBy=id&limit=100", as_is)
        # without orderBy every store pages in id order (keyset paging on SQLite)
        self.read(f"{ENTITIES}?type=Lamp,Post&limit={limit}&offset={offset}&count=true",
                  as_is)

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

"""The bound application: the least Python the broker's store work needs, served.

For the four write scenarios of the suite (create-entity, update-attr,
streetlight-create, streetlight-batch-upsert) it answers the scenario's requests with
the broker's status codes after writing **the rows the broker writes** for them
(``bound_rows``: documents, packs and index rows the broker itself stored for the
scenario's bodies, the id and the reading substituted by bytes operations), in a
store the broker's own code made and opened: ``storage.sqlite.SqliteStore`` (schema,
pragmas, checkpointer), its writer thread taking the queued writes as one transaction
(group commit, one call for consecutive single writes as the broker's writes are
grouped), results handed back through its ``Inbox``.  It parses no JSON, checks
nothing the store does not need, keeps no Python objects of entities: what it costs
above the baseline is aiohttp's request reading plus this store work.

Options price the schema's features: ``--no-history`` (no ``temporal_*`` rows),
``--no-value-index`` (no ``attr_values_value`` index), ``--no-geo-index`` (no
``geo_rows`` nor R*Tree rows, the Points' value rows markers, not cells),
``--no-attr-index`` (no ``attr_values`` rows).

    python -m benchmarks.bound_app --port 18200 --store /tmp/bound.db [--pool 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from benchmarks.bound_rows import POWER_MARK, TEMPERATURE_MARK, Creation, Samples, prepare
from broker.config import EVENT_LOOPS, load_settings
from broker.serving import new_loop
from broker.threadsched import THREAD_SCHEDULING
from broker.threadsched import apply as apply_thread_scheduling
from storage import SqliteStore
from storage.sqlite import stats
from storage.sqlite.bulk import _INSERT_VALUE, _UPSERT_ENTITY
from storage.sqlite.history_batch import _PUT_RECORD
from storage.sqlite.history_memo import Memo
from storage.sqlite.history_packs import add as add_packs
from storage.sqlite.history_sql import _COLUMNS, max_iid, note_iid, series_id
from storage.sqlite.inserts import insert_rows
from storage.sqlite.sql import next_version

ENTITIES = "/ngsi-ld/v1/entities"
UPSERT = "/ngsi-ld/v1/entityOperations/upsert"
_READ_DOCS = ("SELECT id, doc FROM entities WHERE tenant = '' AND id IN"
              " (SELECT value FROM json_each(?))")
_READ_DOC = "SELECT doc FROM entities WHERE tenant = '' AND id = ?"
_READ_RECORDS = ("SELECT entity_id, types, created, modified, deleted FROM temporal_entities"
                 " WHERE tenant = '' AND entity_id IN (SELECT value FROM json_each(?))")
_PUT_TYPE = "INSERT OR IGNORE INTO temporal_types (tenant, type, entity_id) VALUES (?, ?, ?)"
_PUT_INSTANCE = (f"INSERT INTO temporal_instances (sid, {_COLUMNS})"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_DELETE_VALUE = "DELETE FROM attr_values WHERE attr = ? AND id = ? AND val = ? AND vocab = ?"
_row_key = itemgetter(0, 1)


@dataclass(frozen=True)
class Features:
    """The schema's features the bound writes rows for (all: the broker's store work)."""

    history: bool = True
    value_index: bool = True
    geo: bool = True
    attrs: bool = True


def _read_docs(conn: Any, ids: list[str]) -> dict[str, bytes]:
    """The stored documents of ``ids`` (absent ones left out), read as the broker does:
    one id by the key, several in one statement."""
    if len(ids) == 1:
        row = conn.execute(_READ_DOC, ids).fetchone()
        return {} if row is None else {ids[0]: row[0]}
    return dict(conn.execute(_READ_DOCS, (orjson.dumps(ids).decode(),)))


def _after(doc: bytes, mark: bytes) -> bytes:
    """The number right after ``mark`` in a stored document (up to the next comma)."""
    start = doc.find(mark) + len(mark)
    return doc[start:doc.index(b",", start)]


class BoundWriter:
    """The writer thread's work: the scenarios' rows, statement by statement as the
    broker's writer issues them (its own statement texts, imported)."""

    def __init__(self, samples: Samples, features: Features) -> None:
        self.samples = samples
        self.features = features
        # the instance numbers reserved in meta and the packs' compression, as the broker's
        self.memo = Memo()
        self.next_iid = 0
        self.sids: dict[str, int] = {}  # the broker's memo of series ids

    def open(self, conn: Any) -> None:
        """On the writer, once: the next instance number; the variant's index dropped."""
        self.next_iid = max_iid(conn) + 1
        if not self.features.value_index:
            conn.execute("DROP INDEX IF EXISTS attr_values_value")

    def _iids(self, conn: Any, count: int) -> int:
        first = self.next_iid
        self.next_iid += count
        note_iid(conn, self.next_iid - 1, self.memo)
        return first

    def creates(self, conn: Any, items: list[tuple[Creation, str]]) -> list[tuple[bool, int]]:
        """New entities (one transaction's): 201 each, 409 for an id taken."""
        self.memo.check(conn)
        ids = [entity_id for _, entity_id in items]
        taken = set(_read_docs(conn, ids))
        made, results = [], []
        for creation, entity_id in items:
            if entity_id in taken:
                results.append((True, 409))
                continue
            taken.add(entity_id)
            made.append((creation, entity_id))
            results.append((True, 201))
        if made:
            self.write_creations(conn, made, orjson.dumps([i for _, i in made]).decode())
        return results

    def write_creations(self, conn: Any, made: list[tuple[Creation, str]],
                        listed: str) -> None:
        """Every row of the new entities ``made`` (``listed``: their ids, JSON)."""
        features = self.features
        docs = [c.doc.render(entity_id.encode()) for c, entity_id in made]
        now = time.time_ns() // 1000
        if features.history:
            conn.execute(_READ_RECORDS, (listed,)).fetchall()
            conn.executemany(_PUT_RECORD, [("", entity_id, *c.record)
                                           for c, entity_id in made])
            conn.executemany(_PUT_TYPE, [("", t, entity_id) for c, entity_id in made
                                         for t in c.record_types])
            first = self._iids(conn, sum(c.iids for c, _ in made))
            packs = []
            for (c, entity_id), doc in zip(made, docs, strict=True):
                packs.append(("", entity_id, first, now, c.sig, doc))
                first += c.iids
            add_packs(conn, packs, self.memo.packs)  # compressed as the broker's
        insert_rows(conn, _UPSERT_ENTITY, [
            ("", entity_id, doc, c.created_at, c.modified_at, next_version(conn), c.expires_at)
            for (c, entity_id), doc in zip(made, docs, strict=True)])
        insert_rows(conn, "INSERT OR IGNORE INTO entity_types (type, id) VALUES (?, ?)",
                    [(t, entity_id) for c, entity_id in made for t in c.types])
        if features.attrs:
            insert_rows(conn, _INSERT_VALUE, sorted(
                [(attr, entity_id, val, vocab) for c, entity_id in made
                 for attr, val, vocab in (c.values if features.geo
                                          else c.values_without_cells)], key=_row_key))
        if features.geo and any(c.boxes for c, _ in made):
            (rid,) = conn.execute("SELECT COALESCE(MAX(rid), 0) FROM geo_rows").fetchone()
            rows, boxes = [], []
            for c, entity_id in made:
                for attr, box in c.boxes:
                    rid += 1
                    rows.append((rid, "", entity_id, attr))
                    boxes.append((rid, *box))
            insert_rows(conn, "INSERT INTO geo_rows (rid, tenant, id, attr) VALUES (?, ?, ?, ?)",
                        rows)
            insert_rows(conn, "INSERT INTO geo_rtree (id, minx, maxx, miny, maxy)"
                        " VALUES (?, ?, ?, ?, ?)", boxes)
        for c, _ in made:  # summed by the writer's transaction, written at its end
            stats.add(conn, "", c.stats)

    def updates(self, conn: Any, items: list[tuple[str, bytes]]) -> list[tuple[bool, int]]:
        """The PATCH of one attribute of existing entities: 204 each, 404 if absent."""
        update = self.samples.update
        self.memo.check(conn)
        docs = _read_docs(conn, [entity_id for entity_id, _ in items])
        now = time.time_ns() // 1000
        results, instances, entities, deleted, inserted = [], [], [], [], []
        for entity_id, value in items:
            old = docs.get(entity_id)
            if old is None:
                results.append((True, 404))
                continue
            results.append((True, 204))
            doc = update.doc.render(entity_id.encode(), TEMPERATURE_MARK + value + b",")
            if self.features.history:
                sid = self.sids.get(entity_id)
                if sid is None:
                    sid = self.sids[entity_id] = series_id(conn, "", entity_id,
                                                           update.attribute, None)
                flags, cre, deleted_at, val, ext = update.instance
                instances.append((sid, now, self._iids(conn, 1), flags, cre, now,
                                  deleted_at, float(orjson.loads(value)), val, ext))
            entities.append(("", entity_id, doc, update.created_at, update.modified_at,
                             next_version(conn), None))
            before = _after(old, TEMPERATURE_MARK)
            if self.features.attrs and before != value:
                deleted.append((update.attr, entity_id, orjson.loads(before), 0))
                inserted.append((update.attr, entity_id, orjson.loads(value), 0))
        if instances:
            conn.executemany(_PUT_INSTANCE, instances)
        insert_rows(conn, _UPSERT_ENTITY, entities)
        if deleted:
            conn.executemany(_DELETE_VALUE, deleted)
            insert_rows(conn, _INSERT_VALUE, sorted(inserted, key=_row_key))
        return results

    def upsert(self, conn: Any, ids: list[str], reading: bytes) -> list[str]:
        """A batch of Streetlights reporting ``reading``: the ids created (the others
        replaced)."""
        self.memo.check(conn)
        docs = _read_docs(conn, ids)
        created = [entity_id for entity_id in ids if entity_id not in docs]
        if created:  # the first request of an id set
            creation = self.samples.batch_creation
            self.write_creations(conn, [(creation, entity_id) for entity_id in created],
                                 orjson.dumps(created).decode())
        replacement = self.samples.replacement
        replaced = [entity_id for entity_id in ids if entity_id in docs]
        now = time.time_ns() // 1000
        value = POWER_MARK + reading + b","
        number = orjson.loads(reading)
        history = self.features.history and bool(replaced)
        first = self._iids(conn, replacement.iids * len(replaced)) if history else 0
        packs, entities, deleted, inserted = [], [], [], []
        for entity_id in replaced:
            doc = replacement.doc.render(entity_id.encode(), value)
            if history:
                packs.append(("", entity_id, first, now, replacement.sig, doc))
                first += replacement.iids
            entities.append(("", entity_id, doc, replacement.created_at,
                             replacement.modified_at, next_version(conn), None))
            before = _after(docs[entity_id], POWER_MARK)
            if self.features.attrs and before != reading:
                deleted.append((replacement.attr, entity_id, orjson.loads(before), 0))
                inserted.append((replacement.attr, entity_id, number, 0))
        if packs:
            add_packs(conn, packs, self.memo.packs)  # compressed as the broker's
        insert_rows(conn, _UPSERT_ENTITY, entities)
        if deleted:
            conn.executemany(_DELETE_VALUE, deleted)
            insert_rows(conn, _INSERT_VALUE, sorted(inserted, key=_row_key))
        return created


def _single(group: Any, item: Any, conn: Any) -> Any:
    """A lone job: its group function on one item."""
    return group(conn, [item])[0][1]


_PROBLEM = {404: b'{"type":"https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"}',
            409: b'{"type":"https://uri.etsi.org/ngsi-ld/errors/AlreadyExists"}'}


def _bad(reason: str) -> web.Response:
    return web.Response(status=400, text=reason, content_type="application/json")


def make_app(path: Path, pool: int, features: Features) -> web.Application:
    """The bound application on the store file ``path`` (prepared at start-up)."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    state: dict[str, Any] = {}

    async def start(app: web.Application) -> None:
        samples = await prepare(path, pool)
        store = SqliteStore(path)
        await store.open()
        writer = BoundWriter(samples, features)
        # the store's own writer thread, the broker's: group commit, its Inbox
        worker = store._writer
        worker.rollback_listeners.append(writer.memo.forget)
        await worker.submit(writer.open)
        state.update(store=store, writer=writer, worker=worker)

    async def stop(app: web.Application) -> None:
        if "store" in state:
            await state["store"].close()

    async def create(request: web.Request) -> web.Response:
        body = await request.read()
        start = body.find(b'"id":"') + 6
        end = body.find(b'"', start)
        writer: BoundWriter = state["writer"]
        creation = writer.samples.creations.get(body[start:end].rpartition(b":")[0])
        if start < 6 or creation is None:
            return _bad("not a request of the create scenarios")
        item = (creation, body[start:end].decode())
        status = await state["worker"].submit(partial(_single, writer.creates, item),
                                              group=writer.creates, key="create", item=item)
        if status != 201:
            return web.Response(status=status, body=_PROBLEM[status],
                                content_type="application/json")
        return web.Response(status=201, headers={"Location": f"{ENTITIES}/{item[1]}"})

    async def update(request: web.Request) -> web.Response:
        body = await request.read()
        start = body.rfind(b'"value":') + 8
        end = body.find(b"}", start)
        if start < 8 or end < 0:
            return _bad("not a request of update-attr")
        writer: BoundWriter = state["writer"]
        item = (request.match_info["id"], body[start:end])
        status = await state["worker"].submit(partial(_single, writer.updates, item),
                                              group=writer.updates, key="update", item=item)
        if status != 204:
            return web.Response(status=status, body=_PROBLEM[status],
                                content_type="application/json")
        return web.Response(status=204)

    async def upsert(request: web.Request) -> web.Response:
        body = await request.read()
        ids = [part[:part.find(b'"')].decode() for part in body.split(b'"id":"')[1:]]
        start = body.find(b'"value":', body.find(b'"powerConsumption":')) + 8
        end = body.find(b"}", start)
        if not ids or start < 8 or end < 0:
            return _bad("not a request of streetlight-batch-upsert")
        writer: BoundWriter = state["writer"]
        created = await state["worker"].submit(partial(writer.upsert, ids=ids,
                                                       reading=body[start:end]))
        if created:
            return web.Response(status=201, body=orjson.dumps(created),
                                content_type="application/json")
        return web.Response(status=204)

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"name": "bound", "features": features.__dict__})

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post(ENTITIES, create)
    app.router.add_patch(ENTITIES + "/{id}/attrs", update)
    app.router.add_post(UPSERT, upsert)
    app.router.add_get("/ngsi-ld/v1/version", version)
    app.router.add_get("/version", version)
    return app


VARIANT_FLAGS = {"no-history": "history", "no-value-index": "value_index",
                 "no-geo-index": "geo", "no-attr-index": "attrs"}


def features_of(flags: Sequence[str]) -> Features:
    """The features left by the ``--no-...`` flags given (their names without dashes)."""
    return Features(**{VARIANT_FLAGS[flag]: False for flag in flags})


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The bound application's command line; ``environ``: the environment its
    defaults are read from as the broker reads its own (None: this process's)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18200)
    parser.add_argument("--store", type=Path, required=True, help="a new store file")
    parser.add_argument("--pool", type=int, default=1000,
                        help="entities update-attr rotates over (the suite's pool)")
    # the broker's defaults and environment (NGSI_LD_EVENT_LOOP, ...): the bound serves
    # as a broker started the same way would
    broker = load_settings([], environ)
    parser.add_argument("--event-loop", choices=EVENT_LOOPS, default=broker.event_loop)
    parser.add_argument("--thread-scheduling", choices=THREAD_SCHEDULING,
                        default=broker.thread_scheduling,
                        help="as the broker's option (its default): the bound's loop and "
                             "store threads share a core as the broker's do")
    for flag in VARIANT_FLAGS:
        parser.add_argument(f"--{flag}", action="append_const", const=flag, dest="flags",
                            default=[])
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    apply_thread_scheduling(args.thread_scheduling)  # before any thread starts
    loop = new_loop(args.event_loop)
    asyncio.set_event_loop(loop)
    web.run_app(make_app(args.store, args.pool, features_of(args.flags)), host=args.host,
                port=args.port, print=None, access_log=None, loop=loop)


if __name__ == "__main__":
    main()

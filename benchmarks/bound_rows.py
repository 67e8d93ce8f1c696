"""The bound's rows: what the broker stores for the write scenarios' requests.

:func:`prepare` starts the broker in process on the bound's own store file, sends it
the suite's setup and a few requests of each write scenario (the suite's builders and
request templates, ``benchmarks.suite.scenarios``), stops it, and reads back what it
stored: each document and history pack cut into byte templates around the entity id
and the reading, the index rows, the geo boxes, the history records and the instance
numbers a write takes.  The bound application (``bound_app``) then writes those rows,
the id and the reading substituted by bytes operations, so its store work is the
broker's (``tests/test_bound.py`` compares the two files).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp.test_utils import TestServer

from benchmarks.suite.datasets import DatasetLoader
from benchmarks.suite.scenarios import (
    BenchContext,
    build_create,
    build_streetlight_batch,
    build_streetlight_create,
    build_update,
)
from benchmarks.suite.spec import RequestSpec
from broker.app import create_app
from broker.config import Settings
from storage.discovery import StatKey, stats_delta
from storage.sqlite.index import MARKER
from storage.sqlite.pack_codec import decode as decode_packs

#: ids of the samples: as long as wrk's ``__UID__`` (``run_id`` "w" run "-" thread "-" n)
PREP_UIDS = ("b0undpr3w1-0-90001", "b0undpr3w1-0-90002")
#: the request counters of the batch samples: set 1 created, then replaced with this reading
BATCH_CREATE, BATCH_REPLACE = 1, 10_001
#: where the reading sits in a Streetlight's document, and its value in a PATCH body
POWER_MARK = b'Streetlighting/powerConsumption":[{"type":"Property","value":'
TEMPERATURE_MARK = b'default-context/temperature":[{"type":"Property","value":'


@dataclass(frozen=True)
class Template:
    """A document cut around the bytes that change from one request to the next."""

    parts: tuple[bytes, ...]

    def render(self, *values: bytes) -> bytes:
        """The document with ``values`` put back between the parts, in order."""
        out = [self.parts[0]]
        for value, part in zip(values, self.parts[1:], strict=True):
            out += (value, part)
        return b"".join(out)


def cut(sample: bytes, *needles: bytes) -> Template:
    """``sample`` cut at each of ``needles``, each found exactly once and in order."""
    parts: list[bytes] = []
    rest = sample
    for needle in needles:
        if rest.count(needle) != 1:
            raise ValueError(f"{needle!r} is not in the sample exactly once")
        head, _, rest = rest.partition(needle)
        parts.append(head)
    parts.append(rest)
    return Template(tuple(parts))


@dataclass(frozen=True)
class Creation:
    """Every row the broker writes for a new entity, its id cut out."""

    doc: Template
    created_at: str
    modified_at: str
    expires_at: int | None
    types: list[int]  # entity_types: name numbers
    values: list[tuple[int, Any, int]]  # attr_values: (attr, val, vocab)
    boxes: list[tuple[str, tuple[float, float, float, float]]]  # geo: (attr, box)
    record: tuple[bytes, str | None, str | None, str | None]  # temporal_entities
    record_types: list[str]  # temporal_types (the pack's body is the document, schema 9)
    iids: int  # instance numbers a creation takes
    stats: dict[StatKey, int]  # what it adds to the discovery counters
    sig: int | None  # its pack's signature of attribute names (schema 12)

    @cached_property
    def values_without_cells(self) -> list[tuple[int, Any, int]]:
        """``values`` as the broker would write them without the Points' cells
        (``--no-geo-index``): each cell (a non-empty BLOB, storage/sqlite/geocells.py)
        the marker of its attribute."""
        return [(a, MARKER if isinstance(v, bytes) else v, k) for a, v, k in self.values]


@dataclass(frozen=True)
class Update:
    """The rows of the PATCH of one attribute: its document, its history instance."""

    doc: Template  # cut at the id and at the value
    attr: int  # the attribute's name number (attr_values)
    instance: tuple[Any, ...]  # temporal_instances: (flags, cre, del, val, ext)
    attribute: str  # the history series' attribute
    created_at: str
    modified_at: str


@dataclass(frozen=True)
class Replacement:
    """The rows of a Streetlight replaced by a batch upsert with a new reading."""

    doc: Template  # cut at the id and at the reading
    attr: int  # powerConsumption's name number
    iids: int  # instance numbers a replacement takes
    created_at: str
    modified_at: str
    sig: int | None  # its pack's signature of attribute names (schema 12)


@dataclass(frozen=True)
class Samples:
    """What the bound writes, per scenario."""

    creations: dict[bytes, Creation]  # by the id prefix (up to its last ':')
    update: Update
    replacement: Replacement
    batch_creation: Creation  # the first request of an id set creates its entities


def _sample_ids(spec: RequestSpec, counters: Sequence[int], uids: Sequence[str]) -> list[str]:
    ids = []
    for counter, uid in zip(counters, uids, strict=True):
        _, body = spec.render(counter, uid)
        assert body is not None
        ids.append(orjson.loads(body)["id"])
    return ids


async def prepare(path: Path, pool: int) -> Samples:
    """Let the broker write the scenarios' setup and samples into ``path``; read them."""
    server = TestServer(create_app(Settings(store=f"sqlite:///{path}",
                                            outbound_allow="127.0.0.0/8")))
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as session:
            ctx = BenchContext(base, "bound", session, DatasetLoader(base), pool=pool)

            async def send(build: Callable[[BenchContext], Awaitable[RequestSpec]],
                           counters: Sequence[int], uids: Sequence[str]) -> RequestSpec:
                spec = await build(ctx)
                for counter, uid in zip(counters, uids, strict=True):
                    url_path, body = spec.render(counter, uid)
                    async with session.request(spec.method, base + url_path, data=body,
                                               headers=spec.headers) as resp:
                        if resp.status >= 300:
                            raise RuntimeError(f"the broker answered {resp.status} to "
                                               f"{url_path}: {await resp.text()}")
                return spec

            create = await send(build_create, (1, 2), PREP_UIDS)
            street = await send(build_streetlight_create, (1, 2), PREP_UIDS)
            patched = pool - 1  # its value (the pool's number) is told from the id
            await send(build_update, (patched,), ("-",))
            batch = await send(build_streetlight_batch, (BATCH_CREATE,), ("-",))
            _, body = batch.render(BATCH_CREATE, "-")
            assert body is not None
            batch_ids = [e["id"] for e in orjson.loads(body)[:2]]
            with closing(sqlite3.connect(path)) as conn:  # before the replacement below
                batch_creation = read_creation(conn, *batch_ids)
            await send(build_streetlight_batch, (BATCH_REPLACE,), ("-",))
    finally:
        await server.close()
    with closing(sqlite3.connect(path)) as conn:
        creations = {}
        for spec in (create, street):
            first, second = _sample_ids(spec, (1, 2), PREP_UIDS)
            creations[first.rpartition(":")[0].encode()] = read_creation(conn, first, second)
        return Samples(creations, read_update(conn, f"urn:ngsi-ld:BenchEntity:{patched}",
                                              str(patched)),
                       read_replacement(conn, *batch_ids), batch_creation)


def _doc(conn: sqlite3.Connection, entity_id: str) -> tuple[bytes, str, str, int | None]:
    row = conn.execute("SELECT doc, created_at, modified_at, expires_at FROM entities"
                       " WHERE tenant = '' AND id = ?", (entity_id,)).fetchone()
    if row is None:
        raise RuntimeError(f"the broker did not store {entity_id}")
    return bytes(row[0]), row[1], row[2], row[3]


def _first_iid(conn: sqlite3.Connection, entity_id: str) -> int:
    return int(conn.execute("SELECT MAX(iid) FROM temporal_packs WHERE tenant = '' AND"
                            " entity_id = ?", (entity_id,)).fetchone()[0])


def _last_sig(conn: sqlite3.Connection, entity_id: str) -> int | None:
    """The signature of the latest pack of ``entity_id`` (schema 12)."""
    (sig,) = conn.execute("SELECT sig FROM temporal_packs WHERE tenant = '' AND"
                          " entity_id = ? ORDER BY iid DESC LIMIT 1", (entity_id,)).fetchone()
    return None if sig is None else int(sig)


def read_creation(conn: sqlite3.Connection, entity_id: str, next_id: str) -> Creation:
    """The rows of the created ``entity_id`` (``next_id``: the creation after it)."""
    doc, created, modified, expires = _doc(conn, entity_id)
    key = (entity_id,)
    types = [r[0] for r in conn.execute("SELECT type FROM entity_types WHERE id = ?", key)]
    values = conn.execute("SELECT attr, val, vocab FROM attr_values WHERE id = ?"
                          " ORDER BY attr, val", key).fetchall()
    boxes = [(attr, (minx, maxx, miny, maxy)) for attr, minx, maxx, miny, maxy in conn.execute(
        "SELECT g.attr, r.minx, r.maxx, r.miny, r.maxy FROM geo_rows g JOIN geo_rtree r"
        " ON r.id = g.rid WHERE g.tenant = '' AND g.id = ? ORDER BY g.rid", key)]
    record = conn.execute("SELECT types, created, modified, deleted FROM temporal_entities"
                          " WHERE tenant = '' AND entity_id = ?", key).fetchone()
    record_types = [r[0] for r in conn.execute(
        "SELECT type FROM temporal_types WHERE tenant = '' AND entity_id = ?", key)]
    (stored,) = conn.execute("SELECT body FROM temporal_packs WHERE tenant = '' AND"
                             " entity_id = ?", key).fetchone()
    (body,) = decode_packs(conn, [bytes(stored)])
    if body != doc:
        raise RuntimeError("the broker's pack of a creation is not its document: the bound "
                           "writes them as schema 9 does (storage/sqlite/history_packs.py)")
    return Creation(
        cut(doc, entity_id.encode()), created, modified, expires, types,
        [tuple(v) for v in values], boxes, (bytes(record[0]), *record[1:]), record_types,
        _first_iid(conn, next_id) - _first_iid(conn, entity_id),
        stats_delta(None, orjson.loads(doc)), _last_sig(conn, entity_id))


def read_update(conn: sqlite3.Connection, entity_id: str, value: str) -> Update:
    """The rows of ``entity_id`` after the PATCH of its temperature to ``value``."""
    doc, created, modified, _ = _doc(conn, entity_id)
    attribute = "https://uri.etsi.org/ngsi-ld/default-context/temperature"
    (attr,) = conn.execute("SELECT nid FROM names WHERE tenant = '' AND name = ?",
                           (attribute,)).fetchone()
    row = conn.execute(
        "SELECT i.flags, i.cre, i.del, i.val, i.ext FROM temporal_instances i JOIN"
        " temporal_series s ON s.sid = i.sid WHERE s.tenant = '' AND s.entity_id = ?"
        " ORDER BY i.iid DESC", (entity_id,)).fetchone()
    return Update(cut(doc, entity_id.encode(), TEMPERATURE_MARK + value.encode() + b","),
                  int(attr), tuple(row), attribute, created, modified)


def read_replacement(conn: sqlite3.Connection, entity_id: str, next_id: str) -> Replacement:
    """The rows of ``entity_id`` replaced with the reading :data:`BATCH_REPLACE`."""
    doc, created, modified, _ = _doc(conn, entity_id)
    (attr,) = conn.execute(
        "SELECT nid FROM names WHERE tenant = '' AND name = ?",
        ("https://smartdatamodels.org/dataModel.Streetlighting/powerConsumption",)).fetchone()
    reading = POWER_MARK + str(BATCH_REPLACE).encode() + b","
    return Replacement(cut(doc, entity_id.encode(), reading), int(attr),
                       _first_iid(conn, next_id) - _first_iid(conn, entity_id), created, modified,
                       _last_sig(conn, entity_id))

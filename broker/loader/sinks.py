"""Where loaded entities go: a running broker by URL, or straight into a store.

Both prepare batches of raw items (``prepare``: decoded, expanded, checked;
into a store in worker processes where the load is large enough,
``broker.loader.pipeline``), then write them in order (``write``) and answer
the records they rejected, each with its reason; a batch either comes back
(its records written or rejected) or raises :class:`LoadAborted` (broker
unreachable, server error, store failed, a worker process killed), in which
case nothing of it counts as written and the resume point stays before it.
Where two writes are in flight (into the embedded store), the second is not
written if the first failed (``storage.chain``): a resumed load writes each
batch once.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import orjson

from broker.loader.expander import Expander
from broker.loader.pipeline import WorkerPool, WorkerSetup
from broker.loader.prepare import (
    CreationRows,
    PreparedBatch,
    ReadyMutation,
    Refused,
    prepare_batch,
)
from broker.loader.sources import Decoder, Record
from broker.schemas import ModelSchemas, SchemaViolation
from ngsi_ld.errors import NgsiLdError, ServiceUnavailable
from ngsi_ld.jsonld import core_context_url
from ngsi_ld.temporal import recorder_at
from ngsi_ld.timeutil import now_iso
from storage import MemoryStore, open_store
from storage.chain import WriteChain
from storage.prepared import PreparedWrites

UPSERT = "/ngsi-ld/v1/entityOperations/upsert"


class LoadAborted(Exception):
    """The target failed as a whole: stop, keep the resume point."""


@dataclass(slots=True)
class Reject:
    """A record that was not loaded, and why."""

    record: Record
    reason: str
    violations: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, source: str) -> dict[str, Any]:
        out: dict[str, Any] = {"file": source, "record": self.record.number,
                               "id": self.record.entity_id, "reason": self.reason}
        if self.violations:
            out["violations"] = self.violations
        return out


class Sink(Protocol):
    """Where a load writes: batches prepared (``prepare``, at once) then written in order."""

    async def begin(self, parallel: bool) -> tuple[int, int]:
        """Ready to prepare a file's batches (``parallel``: in worker processes, if the sink
        has them); how many batches to prepare ahead of the one being written, and how
        many writes may be in flight (more than one only where the sink writes them one
        after the other, in the order handed over, and none whose predecessor failed)."""
        ...

    async def open(self, parallel: bool = False) -> None:
        """Ready to write (``parallel``: some file's batches will be prepared in worker
        processes, if the sink has them: they are started first)."""
        ...

    def prepare(self, decoder: Decoder, items: list[tuple[int, Any]],
                parallel: bool) -> Awaitable[PreparedBatch]:
        """Start preparing one batch (``parallel``: in a worker process if the sink has
        them); the awaitable is cancelled if the load stops."""
        ...

    async def write(self, batch: PreparedBatch) -> list[Reject]: ...
    async def close(self) -> None: ...


def preload_directory(directories: Sequence[str | Path]) -> str:
    """One ``--context-dir`` serving the contexts of several (their index.json merged).

    ``ContextResolver`` reads one directory; the index may name files by absolute
    path, so a small index in a temporary directory covers them all.
    """
    index: dict[str, str] = {}
    for directory in directories:
        base = Path(directory)
        try:
            entries = json.loads((base / "index.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(entries, dict):
            index.update({url: str((base / name).resolve()) for url, name in entries.items()})
    merged = Path(tempfile.mkdtemp(prefix="ngsi-ld-load-contexts-"))
    (merged / "index.json").write_text(json.dumps(index))
    return str(merged)


def _rejected(record: Record, exc: NgsiLdError) -> Reject:
    violations = exc.violations if isinstance(exc, SchemaViolation) else []
    return Reject(record, exc.detail, [v.to_json() for v in violations])


def _refused(refused: Refused) -> Reject:
    return Reject(Record.named(refused.number, refused.entity_id), refused.reason,
                  refused.violations)


def in_order(rejects: list[Reject]) -> list[Reject]:
    """Rejects by record number (those refused before the sink, then by it, interleaved)."""
    return sorted(rejects, key=lambda reject: reject.record.number)


class StoreSink:
    """Batches written with ``modify_many`` into a store (``sqlite:...``, ``mongodb://...``).

    ``temporal``: record the history of each write, as the broker's batch upsert does
    with ``--temporal`` on (the store must keep one: every backend does).  ``workers``:
    processes preparing batches (``broker.loader.pipeline``) when ``prepare`` is asked
    for ``parallel``; 0: this process prepares them all.
    """

    def __init__(self, url: str, *, tenant: str = "", mode: str = "replace",
                 schemas: ModelSchemas | None = None, preload_dir: str = "",
                 outbound_allow: str = "", temporal: bool = True, workers: int = 0,
                 schemas_path: str | None = None, prepared_rows: bool = True) -> None:
        # schemas are checked by each entity's mutation (prepare.ReadyMutation), as
        # broker.schemas.validating would: most of the check runs where it is prepared
        self.store = open_store(url, bulk=True)
        self.schemas = schemas
        self.expander = Expander(self.store, preload_dir, outbound_allow=outbound_allow)
        self.tenant, self.mode, self.temporal = tenant, mode, temporal
        self.workers = workers
        #: the store, if it takes prepared creations (storage.prepared: the embedded
        #: store, whose one writer thread also takes writes in the order submitted)
        self._prepared_store = self.store if isinstance(self.store, PreparedWrites) else None
        # the workers prepare the rows of the entities the store will create, if it can
        # take them: the writer then only writes them
        rows = (CreationRows(self._prepared_store.prepare, temporal)
                if prepared_rows and self._prepared_store is not None else None)
        self._setup = WorkerSetup(preload_dir, outbound_allow, schemas_path, mode, rows=rows)
        self._pool: WorkerPool | None = None
        #: the batches written into the embedded store, each committed only if the one
        #: before it was (two are in flight, ``begin``; storage.chain)
        self._chain = WriteChain()
        #: CPU seconds of each worker process (by pid) as of its last batch
        self.worker_cpu: dict[int, float] = {}
        #: batches of a parallel load prepared here while no worker had started yet
        self.before_workers = 0

    async def begin(self, parallel: bool) -> tuple[int, int]:
        if not (parallel and self._pool is not None):
            # one batch at a time: preparing the next while the store writes one made
            # the two threads fight for the GIL (10 to 20% more CPU, slower, measured)
            return 0, 1
        # a worker busy with one batch and one waiting each: the writer never waits; the
        # embedded store's one writer thread takes writes in the order submitted, so the
        # next batch waits there while the loader settles the one before (and is not
        # written if that one failed: self._chain)
        return 2 * self.workers, 2 if self._prepared_store is not None else 1

    async def open(self, parallel: bool = False) -> None:
        if parallel and self.workers:
            # first: before the store starts its threads, so that the workers can be
            # forks of this process (ready at once, pipeline.WorkerPool.start)
            self._pool = WorkerPool(self.workers)
            await self._pool.start()
        try:
            await self.store.open()
            await self.expander.resolver.start()
            if self.tenant:
                await self.store.ensure_tenant(self.tenant)
            if self._pool is not None:  # they find the store's @context records as we do
                await self._pool.set_up(replace(
                    self._setup, contexts=tuple(await self.store.list_contexts())))
        except BaseException:  # the workers do not outlive a store that did not open
            if self._pool is not None:
                pool, self._pool = self._pool, None
                await pool.close()
            raise

    def prepare(self, decoder: Decoder, items: list[tuple[int, Any]],
                parallel: bool) -> Awaitable[PreparedBatch]:
        now = now_iso()  # taken in file order: batches are stamped in the order written
        # until a worker has started, batches are prepared here: the writer would
        # otherwise wait idle for the workers' start-up
        if parallel and self._pool is not None:
            if self._pool.started:
                return self._pool.submit(decoder, items, now)
            self.before_workers += 1
        return asyncio.ensure_future(prepare_batch(self.expander, self.schemas,
                                                   decoder, items, now, self.mode))

    async def write(self, batch: PreparedBatch) -> list[Reject]:
        if batch.worker is not None:
            self.worker_cpu[batch.worker[0]] = batch.worker[1]
        rejects = [_refused(refused) for refused in batch.refused]
        if batch.ready:
            mutations = [(ready.entity_id, ReadyMutation(ready, batch.now, self.mode,
                                                         self.schemas))
                         for ready in batch.ready]
            recorder = recorder_at(batch.now) if self.temporal and self.store.history else None
            prepared = {ready.entity_id: ready.prepared for ready in batch.ready
                        if ready.prepared is not None}
            try:
                if self._prepared_store is not None:  # its batches are one chain
                    outcomes = await self._prepared_store.modify_prepared(
                        self.tenant, mutations, prepared, record=recorder, chain=self._chain)
                else:
                    outcomes = await self.store.modify_many(self.tenant, mutations,
                                                            record=recorder)
            except ServiceUnavailable as exc:  # the store failed (or one before it did)
                raise LoadAborted(exc.detail) from None
            rejects.extend(_rejected(Record.named(ready.number, ready.entity_id), outcome.error)
                           for ready, outcome in zip(batch.ready, outcomes, strict=True)
                           if outcome.error is not None)
            if batch.refused:
                rejects = in_order(rejects)
        return rejects

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
        await self.expander.resolver.close()
        await self.store.close()


class HttpSink:
    """Batches sent to ``POST /ngsi-ld/v1/entityOperations/upsert`` of any NGSI-LD broker.

    With schemas, records are checked here first (expanded with a local resolver)
    and only those that conform are sent.
    """

    def __init__(self, url: str, *, tenant: str = "", mode: str = "replace",
                 schemas: ModelSchemas | None = None, preload_dir: str = "",
                 timeout: float = 120.0, token: str = "", outbound_allow: str = "") -> None:
        self.url = url.rstrip("/") + UPSERT + ("?options=update" if mode == "update" else "")
        self.headers = {"NGSILD-Tenant": tenant} if tenant else {}
        if token:  # a broker with --auth on: a bearer token or an API key (docs/security.md)
            self.headers["Authorization"] = f"Bearer {token}"
        self.schemas = schemas
        self.expander = Expander(MemoryStore(), preload_dir, outbound_allow=outbound_allow) \
            if schemas else None
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session: aiohttp.ClientSession | None = None

    async def begin(self, parallel: bool) -> tuple[int, int]:
        # one batch decoded while the broker answers the one before; one request at a
        # time (a broker may apply two in any order)
        return 1, 1

    def prepare(self, decoder: Decoder, items: list[tuple[int, Any]],
                parallel: bool) -> Awaitable[PreparedBatch]:
        return asyncio.ensure_future(self._decode(decoder, items))

    async def _decode(self, decoder: Decoder, items: list[tuple[int, Any]]) -> PreparedBatch:
        batch = PreparedBatch(items[-1][0] if items else 0, len(items), now_iso())
        for number, raw in items:
            record = decoder(number, raw)
            if record.error is not None:
                batch.refused.append(Refused(number, None, record.error))
            else:
                batch.records.append(record)
        return batch

    async def open(self, parallel: bool = False) -> None:
        self.session = aiohttp.ClientSession(timeout=self.timeout)
        if self.expander is not None:
            await self.expander.resolver.start()

    async def _precheck(self, records: Sequence[Record]) -> tuple[list[Record], list[Reject]]:
        if self.expander is None or self.schemas is None:
            return list(records), []
        keep, rejects = [], []
        for record in records:
            try:
                found = self.schemas.violations(await self.expander.expand(record))
            except NgsiLdError as exc:
                rejects.append(_rejected(record, exc))
                continue
            if found:
                rejects.append(_rejected(record, SchemaViolation(str(record.entity_id), found)))
            else:
                keep.append(record)
        return keep, rejects

    async def write(self, batch: PreparedBatch) -> list[Reject]:
        refused = [_refused(refused) for refused in batch.refused]
        rejects = await self._send(batch.records)
        return in_order(refused + rejects) if refused else rejects

    async def _send(self, records: Sequence[Record]) -> list[Reject]:
        assert self.session is not None, "open() first"
        records, rejects = await self._precheck(records)
        if not records:
            return rejects
        entities = [r.entity for r in records]
        linked = any("@context" in e for e in entities if e)
        if linked:  # application/ld+json: every entity carries its @context
            core = core_context_url()
            entities = [e if "@context" in e else {**e, "@context": core} for e in entities if e]
        headers = {"Content-Type": "application/ld+json" if linked else "application/json",
                   **self.headers}
        try:
            async with self.session.post(self.url, data=orjson.dumps(entities),
                                         headers=headers) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LoadAborted(f"{self.url}: {exc or type(exc).__name__}") from None
        return rejects + _batch_result(records, status, body, self.url)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.expander is not None:
            await self.expander.resolver.close()


def _batch_result(records: Sequence[Record], status: int, body: bytes, url: str) -> list[Reject]:
    """The rejects of one batch answer (201/204 all written, 207 some, 4xx all refused)."""
    if status in (200, 201, 204):
        return []
    try:
        answer = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        answer = None
    if status == 207 and isinstance(answer, dict):
        pending: dict[str | None, list[Record]] = {}
        for record in records:
            pending.setdefault(record.entity_id, []).append(record)
        rejects = []
        for error in answer.get("errors", ()):
            problem = error.get("error") or {}
            candidates = pending.get(error.get("entityId"))
            if candidates:
                rejects.append(Reject(candidates.pop(0), str(problem.get("detail", problem)),
                                      list(problem.get("violations", ()))))
        return rejects
    if 400 <= status < 500 and status not in (401, 403, 404, 408, 413, 429):
        detail = (answer.get("detail") if isinstance(answer, dict)
                  else body[:200].decode("utf-8", "replace"))
        return [Reject(r, f"the broker refused the batch ({status}): {detail}") for r in records]
    raise LoadAborted(f"{url} answered HTTP {status}: {body[:300].decode('utf-8', 'replace')}")

"""Where loaded entities go: a running broker by URL, or straight into a store.

Both take batches of records and answer the records they rejected, each with
its reason; a batch either comes back (its records written or rejected) or
raises :class:`LoadAborted` (broker unreachable, server error), in which case
nothing of it counts as written and the resume point stays before it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import orjson

from broker.contexts import ContextResolver
from broker.loader.sources import Record
from broker.outbound import OutboundPolicy
from broker.schemas import ModelSchemas, SchemaViolation, validating
from ngsi_ld.batch import batch_upsert_mutation
from ngsi_ld.entity import parse_entity
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.jsonld import ActiveContext, core_context_url
from ngsi_ld.model import Entity
from ngsi_ld.temporal import recorder_at
from ngsi_ld.timeutil import now_iso
from storage import MemoryStore, Store, open_store

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
    async def open(self) -> None: ...
    async def write(self, records: Sequence[Record]) -> list[Reject]: ...
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


class Expander:
    """Validates and expands records as the broker would (contexts offline first)."""

    def __init__(self, store: Store, preload_dir: str, core_version: str = "1.8",
                 outbound_allow: str = "") -> None:
        # remote @contexts named by the records: only where the outbound policy allows
        self.resolver = ContextResolver(store, core_version=core_version, preload_dir=preload_dir,
                                        outbound=OutboundPolicy.parse(outbound_allow))
        # a file's records mostly share one @context URL: skip the resolver's key for it
        self._by_url: dict[str | None, ActiveContext] = {}

    async def expand(self, record: Record) -> Entity:
        """The internal form of the record's entity; NgsiLdError when it is not valid."""
        entity = dict(record.entity or {})
        context = entity.pop("@context", None)
        if context is None or isinstance(context, str):
            ctx = self._by_url.get(context)
            if ctx is None:
                ctx = self._by_url[context] = await self.resolver.active(context)
        else:
            ctx = await self.resolver.active(context)
        return ctx.expand_entity(parse_entity(entity))


class StoreSink:
    """Batches written with ``modify_many`` into a store (``sqlite:...``, ``mongodb://...``).

    ``temporal``: record the history of each write, as the broker's batch upsert does
    with ``--temporal`` on (the store must keep one: every backend does).
    """

    def __init__(self, url: str, *, tenant: str = "", mode: str = "replace",
                 schemas: ModelSchemas | None = None, preload_dir: str = "",
                 outbound_allow: str = "", temporal: bool = True) -> None:
        self.store = validating(open_store(url), schemas)
        self.expander = Expander(self.store, preload_dir, outbound_allow=outbound_allow)
        self.tenant, self.mode, self.temporal = tenant, mode, temporal

    async def open(self) -> None:
        await self.store.open()
        await self.expander.resolver.start()
        if self.tenant:
            await self.store.ensure_tenant(self.tenant)

    async def write(self, records: Sequence[Record]) -> list[Reject]:
        rejects: list[Reject] = []
        mutations, written = [], []
        now = now_iso()
        for record in records:
            try:
                entity = await self.expander.expand(record)
            except NgsiLdError as exc:
                rejects.append(_rejected(record, exc))
                continue
            mutations.append((entity["id"], batch_upsert_mutation(entity, now, self.mode)))
            written.append(record)
        if mutations:
            recorder = recorder_at(now) if self.temporal and self.store.history else None
            outcomes = await self.store.modify_many(self.tenant, mutations, record=recorder)
            rejects.extend(_rejected(record, outcome.error)
                           for record, outcome in zip(written, outcomes, strict=True)
                           if outcome.error is not None)
        return rejects

    async def close(self) -> None:
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

    async def open(self) -> None:
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

    async def write(self, records: Sequence[Record]) -> list[Reject]:
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

"""``ngsi-ld-broker load FILE...``: load open-data files into a broker or a store.

Reads each file (``broker.loader.sources``), sends its records in batches to
a running broker (``--url``, batch upsert) or writes them straight into a store
(``--store``), shows a progress bar, reports every rejected record with its
reason (on stderr, and as JSON lines with ``--rejects FILE``), and prints a
summary.  An interrupted load resumes after the last batch written
(``broker.loader.resume``).  Into a store, ``--jobs`` processes share the work:
worker processes prepare the batches (``broker.loader.pipeline``) and this one
writes them.  Exit status: 0 all loaded, 1 some records rejected,
2 the load could not be done (bad arguments, target unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections import deque
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from tqdm import tqdm

from broker.loader.mapping import MappingError, parse_mapping
from broker.loader.pipeline import GC_GEN0_THRESHOLD, WorkerStopped
from broker.loader.prepare import PreparedBatch
from broker.loader.resume import DEFAULT_DIRECTORY, ResumePoint
from broker.loader.sinks import HttpSink, LoadAborted, Reject, Sink, StoreSink, preload_directory
from broker.loader.sources import FORMATS, Source, SourceError, open_source
from broker.schemas import ModelSchemas, SchemaLoadError
from broker.smartdatamodels import DIRECTORY as SMART_DATA_MODELS

#: default --jobs: the CPUs this process may use, at most 4 (one writer feeds about 3)
DEFAULT_JOBS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                          else os.cpu_count() or 1))
#: entities per batch by default: a broker's batch upsert (the usual limit of one, as
#: this broker's --max-batch-size), or one transaction of the store (larger: its pages of
#: the B-trees' upper levels are written once for more rows, the writer's CPU a row at
#: 100k CSV rows 98 -> 85 µs with the bulk page cache, benchmarks/README.md)
URL_BATCH_SIZE, STORE_BATCH_SIZE = 1000, 4000
#: files of at most this many batches are prepared in-process: a worker costs a fork and a
#: process to stop (~0.5 s to start where it is spawned, ``broker.loader.pipeline``)
SMALL_FILE_BATCHES = 2
#: a batch handed to the sink and its write (its rejects, once written)
Written = tuple[PreparedBatch, asyncio.Future[list[Reject]]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ngsi-ld-broker load",
        description="Load NGSI-LD JSON / JSON lines, GeoJSON FeatureCollections or CSV files "
        "(with a mapping file) into a running NGSI-LD broker or straight into a store.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="base URL of a running NGSI-LD broker "
                        "(default http://localhost:1026 unless --store is given)")
    target.add_argument("--store", help="store URL to write into directly "
                        "(sqlite:PATH, mongodb://...): no broker needed")
    parser.add_argument("--tenant", default="", help="NGSI-LD tenant (default: the default one)")
    parser.add_argument("--token", default=os.environ.get("NGSI_LD_TOKEN", ""),
                        help="bearer token or API key for a broker with --auth on "
                        "(default: the NGSI_LD_TOKEN environment variable)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"entities per batch upsert (default {URL_BATCH_SIZE} with --url, "
                        f"{STORE_BATCH_SIZE} with --store)")
    parser.add_argument("--temporal", choices=("on", "off"), default="on",
                        help="with --store: record each entity's history as the broker's "
                        "batch upsert does with its --temporal on (default on)")
    parser.add_argument("--update", action="store_true",
                        help="upsert with options=update: keep attributes the file does not have")
    parser.add_argument("--format", choices=FORMATS, help="file format (default: by extension)")
    parser.add_argument("--mapping", type=Path, help="mapping file of CSV files (JSON)")
    parser.add_argument("--type", dest="entity_type", help="entity type of GeoJSON features "
                        "that name none")
    parser.add_argument("--context", help="@context URL for entities that carry none")
    parser.add_argument("--context-dir", action="append", default=[],
                        help="pre-loaded @context directory (index.json); the bundled Smart "
                        "Data Models contexts are always available")
    parser.add_argument("--outbound-allow", default="", metavar="CIDR,...",
                        help="networks remote @contexts may be fetched from although loopback "
                        "or private (the broker's --outbound-allow; default none)")
    parser.add_argument("--model-schemas", help="JSON Schemas per entity type: records that "
                        "break one are reported, the rest loaded")
    parser.add_argument("--rejects", type=Path, help="write every rejected record as JSON lines")
    parser.add_argument("--restart", action="store_true",
                        help="ignore the resume point of an interrupted load")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_DIRECTORY,
                        help=f"where resume points are kept (default {DEFAULT_DIRECTORY})")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help="with --store: processes sharing the load; with 2 or more, "
                        "jobs-1 worker processes decode, expand and check batches while "
                        "this one writes them; 1: all in this process (default: the CPUs "
                        f"available, at most 4: {DEFAULT_JOBS} here; files of at most "
                        f"{SMALL_FILE_BATCHES} batches are always loaded in-process)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


@dataclass(slots=True)
class Summary:
    files: int = 0
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    skipped: int = 0  # written by an earlier, interrupted load
    seconds: float = 0.0

    def text(self) -> str:
        rate = self.loaded / self.seconds if self.seconds > 0 else 0.0
        parts = [f"loaded {self.loaded:,} entities from {self.files} file(s) in "
                 f"{self.seconds:.1f} s ({rate:,.0f} entities/s)",
                 f"rejected {self.rejected:,}"]
        if self.skipped:
            parts.append(f"resumed past {self.skipped:,} written before")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one file is loaded: where it resumes, and whether in worker processes."""

    source: Source
    point: ResumePoint
    done: int  # records written by an earlier, interrupted load
    parallel: bool


class Loader:
    """One run of the command: files in order, batches in order, one sink."""

    def __init__(self, sink: Sink, target: str, args: argparse.Namespace,
                 err: IO[str] = sys.stderr) -> None:
        self.sink, self.target, self.args, self.err = sink, target, args, err
        self.size: int = args.batch_size or (STORE_BATCH_SIZE if args.store else URL_BATCH_SIZE)
        self.summary = Summary()
        self.rejects_out: IO[bytes] | None = None

    async def run(self, sources: Sequence[Source]) -> Summary:
        started = time.perf_counter()
        plans = [self._plan(source) for source in sources]
        # the sink starts its worker processes first if a file is to be prepared in them
        await self.sink.open(any(plan.parallel for plan in plans))
        try:
            for plan in plans:
                await self._load(plan)
        finally:
            await self.sink.close()
            self.summary.seconds = time.perf_counter() - started
        return self.summary

    def _plan(self, source: Source) -> _Plan:
        point = ResumePoint.of(source.path, self.target, self.args.state_dir)
        done = 0 if self.args.restart else point.load()
        # a small file is prepared here: starting a worker would cost more than it saves
        parallel = source.total is None or source.total - done > SMALL_FILE_BATCHES * self.size
        return _Plan(source, point, done, parallel)

    async def _load(self, plan: _Plan) -> None:
        source, point, done, parallel = plan.source, plan.point, plan.done, plan.parallel
        self.summary.files += 1
        if done:
            print(f"{source.path}: resuming after record {done:,} (an earlier load stopped "
                  "there; --restart loads it all again)", file=self.err)
        bar = tqdm(total=source.total, unit=" entities", desc=source.path.name,
                   disable=self.args.no_progress, file=self.err, initial=done)
        size = self.size
        ahead, in_flight = await self.sink.begin(parallel)
        pending: deque[Awaitable[PreparedBatch]] = deque()
        # handed to the sink, oldest first: where it writes in order, the next batch goes
        # to it before the one before is settled (reports, resume point), so the store
        # does not wait for that
        writing: deque[Written] = deque()
        try:
            for items in self._batches(source, done, size):
                pending.append(self.sink.prepare(source.decoder, items, parallel))
                if len(pending) > ahead:
                    await self._write(source, point, bar, pending.popleft(), writing, in_flight)
            while pending:
                await self._write(source, point, bar, pending.popleft(), writing, in_flight)
            while writing:
                await self._settle(source, point, bar, writing.popleft())
        finally:
            for left in pending:  # interrupted: batches not written do not count
                if isinstance(left, asyncio.Future):
                    left.cancel()
            # those handed to the sink are written anyway: settled, so that the resume
            # point moves past them.  The first that fails ends it and the rest are
            # cancelled; a write after a failed one fails too, nothing of it written,
            # even where the store had it queued already (sinks.StoreSink): the resume
            # point stays before the failed one, and a resumed load writes each once
            try:
                while writing:
                    await self._settle(source, point, bar, writing.popleft())
            except Exception:  # the load stops with the error that interrupted it
                for _, write in writing:
                    write.cancel()
            bar.close()
        point.clear()

    def _batches(self, source: Source, done: int, size: int) -> Iterator[list[tuple[int, Any]]]:
        """The raw items after the resume point, ``size`` at a time, in file order."""
        batch: list[tuple[int, Any]] = []
        for number, raw in source.items:
            if number <= done:
                self.summary.skipped += 1
                continue
            self.summary.read += 1
            batch.append((number, raw))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    async def _write(self, source: Source, point: ResumePoint, bar: tqdm[Any],
                     prepared: Awaitable[PreparedBatch], writing: deque[Written],
                     in_flight: int) -> None:
        """Hand one prepared batch to the sink (``writing``: those handed before, in order),
        then settle the oldest until fewer than ``in_flight`` are left."""
        try:
            batch = await prepared
        except WorkerStopped as exc:
            raise LoadAborted(str(exc)) from None
        writing.append((batch, asyncio.ensure_future(self.sink.write(batch))))
        await asyncio.sleep(0)  # its write starts (reaches the store) before we go on
        while len(writing) >= in_flight:
            await self._settle(source, point, bar, writing.popleft())

    async def _settle(self, source: Source, point: ResumePoint, bar: tqdm[Any],
                      written: Written) -> None:
        """Wait for one batch's write, report its rejects, then move the resume point past it.

        Batches are settled in file order, so the resume point only ever moves past
        records whose batch is written (or refused).
        """
        batch, write = written
        rejects = await write
        for reject in rejects:
            self._report(source, reject, bar)
        self.summary.loaded += batch.count - len(rejects)
        point.save(batch.last)
        bar.update(batch.count)

    def _report(self, source: Source, reject: Reject, bar: tqdm[Any] | None = None) -> None:
        self.summary.rejected += 1
        name = f" {reject.record.entity_id}" if reject.record.entity_id else ""
        line = f"{source.path}:{reject.record.number}{name}: rejected: {reject.reason}"
        if bar is not None and not self.args.no_progress:
            bar.write(line, file=self.err)
        else:
            print(line, file=self.err)
        if self.rejects_out is not None:
            self.rejects_out.write(orjson.dumps(reject.to_json(str(source.path))) + b"\n")


def sources_of(args: argparse.Namespace) -> list[Source]:
    """The files the arguments name, opened (SourceError: one cannot be read)."""
    mapping = None
    if args.mapping is not None:
        try:
            mapping = parse_mapping(orjson.loads(args.mapping.read_bytes()))
        except (OSError, orjson.JSONDecodeError) as exc:
            raise SourceError(f"{args.mapping}: {exc}") from None
        except MappingError as exc:
            raise SourceError(f"{args.mapping}: {exc}") from None
    return [open_source(path, fmt=args.format, mapping=mapping, entity_type=args.entity_type,
                        context=args.context) for path in args.files]


def make_sink(args: argparse.Namespace) -> tuple[Sink, str]:
    """The sink the arguments name, and a name of its target (for resume points)."""
    schemas = ModelSchemas.load(args.model_schemas) if args.model_schemas else None
    workers = args.jobs - 1 if args.jobs > 1 else 0
    preload = preload_directory([SMART_DATA_MODELS, *args.context_dir])
    mode = "update" if args.update else "replace"
    if args.store:
        return (StoreSink(args.store, tenant=args.tenant, mode=mode, schemas=schemas,
                          preload_dir=preload, outbound_allow=args.outbound_allow,
                          temporal=args.temporal == "on", workers=workers,
                          schemas_path=args.model_schemas),
                f"{args.store}#{args.tenant}")
    url = args.url or "http://localhost:1026"
    return (HttpSink(url, tenant=args.tenant, mode=mode, schemas=schemas, preload_dir=preload,
                     token=args.token, outbound_allow=args.outbound_allow),
            f"{url}#{args.tenant}")


def tune_gc() -> None:
    """As the broker does (broker.cli): entities are thousands of short-lived dicts that
    reference counting frees; at Python's default the cyclic collector took ~15% of a
    load.  The worker processes do the same (``broker.loader.pipeline``)."""
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def main(argv: Sequence[str] | None = None, out: IO[str] = sys.stdout,
         err: IO[str] = sys.stderr) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size is not None and args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    try:
        sources = sources_of(args)
        sink, target = make_sink(args)
    except (SourceError, SchemaLoadError, ValueError) as exc:
        print(f"ngsi-ld-broker load: {exc}", file=err)
        return 2
    loader = Loader(sink, target, args, err)
    tune_gc()
    try:
        if args.rejects is not None:
            with args.rejects.open("wb") as rejects:
                loader.rejects_out = rejects
                summary = asyncio.run(loader.run(sources))
        else:
            summary = asyncio.run(loader.run(sources))
    except (LoadAborted, SourceError, OSError) as exc:
        print(f"ngsi-ld-broker load: stopped: {exc}", file=err)
        print(loader.summary.text() + " (interrupted: run the same command to resume)", file=out)
        return 2
    except KeyboardInterrupt:
        print(loader.summary.text() + " (interrupted: run the same command to resume)", file=out)
        return 2
    print(summary.text(), file=out)
    return 1 if summary.rejected else 0

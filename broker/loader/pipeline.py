"""Worker processes that prepare a load's batches while the writer writes.

Into the embedded store, the store's own work (one transaction per batch, on
its writer thread) and the rest (decoding, JSON-LD expansion, schema checks,
stamping: ``broker.loader.prepare``) each take a large share of a CPU; the
worker processes do the rest, so the process that writes does little besides
the store's work and both run on their own cores.  The writer hands batches
out in turn as it reads them and takes the results back in file order
(``Loader``), a bounded number ahead, so memory stays small and the writer
never waits while a worker has something ready.

A worker is ``python -m broker.loader.worker`` (``serve``): pickled frames on its stdin
(the setup, then one batch per frame) and its stdout (an empty frame once it is
set up, then one prepared batch per frame, in the order asked); it stops at the
end of its stdin.  Until a worker has started (importing the broker's modules
takes it a second or so), the writer prepares the batches itself.  It shares
nothing with the writer (no fork of a process with threads, no main module
imported again), and it ignores Ctrl-C: the writer stops the load (no batch
half-written: a batch is one transaction), then the workers (``close``).

Each worker has its own context resolver over a memory store seeded with the
target store's @context records (hosted and cached contexts are found as in
the writer); a remote context a worker fetches (where ``--outbound-allow``
allows it) is cached in that worker only.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import signal
import struct
import sys
import time
import traceback
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from broker.loader.expander import Expander
from broker.loader.prepare import CreationRows, PreparedBatch, prepare_batch
from broker.loader.sources import Decoder
from broker.schemas import ModelSchemas
from storage import ContextRecord, MemoryStore

#: young-generation collections every this many container allocations (broker.cli's value)
GC_GEN0_THRESHOLD = 50_000
_HEADER = struct.Struct("!Q")  # the length of the pickled frame that follows
WORKER_MODULE = "broker.loader.worker"
#: where ``broker`` is imported from: the workers import the same code
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True, slots=True)
class WorkerSetup:
    """What every worker needs to prepare batches as the writer's own Expander would."""

    preload_dir: str
    outbound_allow: str = ""
    schemas: str | None = None  # --model-schemas
    mode: str = "replace"
    contexts: Sequence[ContextRecord] = field(default_factory=tuple)  # the target store's
    #: the rows of each creation, prepared for the target store (None: not prepared)
    rows: CreationRows | None = None


class WorkerStopped(Exception):
    """A worker process failed or went away: the load stops (it can be resumed)."""


@dataclass(slots=True)
class _Failure:
    """What a worker answers instead of a batch when preparing it raised."""

    text: str


class _Process:
    """One worker process and the batches it was given, answered in that order."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.waiting: deque[asyncio.Future[PreparedBatch]] = deque()
        self.started = False  # its setup is done (its first frame, empty, came back)
        self.reader = asyncio.ensure_future(self._read())

    def send(self, message: object) -> None:
        assert self.process.stdin is not None
        body = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        self.process.stdin.write(_HEADER.pack(len(body)) + body)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        stdout = self.process.stdout
        try:
            await stdout.readexactly(_HEADER.size)  # the empty frame: started
            self.started = True
            while True:
                (size,) = _HEADER.unpack(await stdout.readexactly(_HEADER.size))
                answer = pickle.loads(await stdout.readexactly(size))
                future = self.waiting.popleft()
                if future.cancelled():
                    continue
                if isinstance(answer, _Failure):
                    future.set_exception(WorkerStopped(f"a worker process failed: {answer.text}"))
                else:
                    future.set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        code = await self.process.wait()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(WorkerStopped(f"a worker process stopped (exit status "
                                                   f"{code})"))

    async def stop(self) -> None:
        """End its input; it finishes the batch in hand and exits."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
        await self.reader


class WorkerPool:
    """``processes`` workers preparing batches (``submit``); ``close`` stops them."""

    def __init__(self, processes: int, setup: WorkerSetup) -> None:
        self.processes, self.setup = processes, setup
        self._workers: list[_Process] = []
        self._turn = 0

    async def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [_SOURCE_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])}
        for _ in range(self.processes):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", WORKER_MODULE, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, env=env)
            worker = _Process(process)
            worker.send(self.setup)
            self._workers.append(worker)

    @property
    def started(self) -> bool:
        """Whether a worker has started (its imports and setup take a second or so: the
        writer prepares batches itself until then)."""
        return any(worker.started for worker in self._workers)

    def submit(self, decoder: Decoder, items: Sequence[tuple[int, Any]],
               now: str) -> asyncio.Future[PreparedBatch]:
        """Hand one batch to the next worker in turn; its prepared batch, when ready."""
        worker = self._workers[self._turn % len(self._workers)]
        self._turn += 1
        future: asyncio.Future[PreparedBatch] = asyncio.get_running_loop().create_future()
        if worker.reader.done():
            future.set_exception(WorkerStopped("a worker process stopped"))
            return future
        worker.waiting.append(future)
        worker.send((decoder, list(items), now))
        return future

    async def close(self) -> None:
        """Stop the workers: those busy finish their batch first (its result is dropped)."""
        workers, self._workers = self._workers, []
        await asyncio.gather(*(worker.stop() for worker in workers))


# -- in the worker process ------------------------------------------------------------------
class _Worker:
    """The state of one worker process, built from the setup (its first frame)."""

    def __init__(self, setup: WorkerSetup) -> None:
        self.mode = setup.mode
        self.schemas = ModelSchemas.load(setup.schemas) if setup.schemas else None
        self.store = MemoryStore()
        self.expander = Expander(self.store, setup.preload_dir,
                                 outbound_allow=setup.outbound_allow)
        self.contexts = setup.contexts
        self.rows = setup.rows

    async def open(self) -> None:
        await self.store.open()
        for record in self.contexts:
            await self.store.put_context(record)
        await self.expander.resolver.start()

    async def prepare(self, decoder: Decoder, items: Sequence[tuple[int, Any]],
                      now: str) -> PreparedBatch:
        batch = await prepare_batch(self.expander, self.schemas, decoder, items, now,
                                    self.mode, encode=True, rows=self.rows)
        batch.worker = (os.getpid(), time.process_time())  # for the benchmark
        return batch

    async def close(self) -> None:
        await self.expander.resolver.close()


def _frame(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None  # the writer closed our input: the load is over
    (size,) = _HEADER.unpack(header)
    return pickle.loads(stream.read(size))


async def _serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    setup = _frame(requests)
    if not isinstance(setup, WorkerSetup):
        return
    worker = _Worker(setup)
    await worker.open()
    answers.write(_HEADER.pack(0))  # started: an empty frame
    answers.flush()
    try:
        while (request := _frame(requests)) is not None:
            try:
                answer: object = await worker.prepare(*request)
            except Exception:  # a bug, not a bad record: the writer stops the load with it
                answer = _Failure(traceback.format_exc(limit=-3))
            body = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
            answers.write(_HEADER.pack(len(body)) + body)
            answers.flush()
    finally:
        await worker.close()


def serve() -> None:
    """The worker process's main: answer batches until the writer ends our input."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the writer stops the load, then us
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])  # as the writer (tune_gc)
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print cannot break a frame
    asyncio.run(_serve(sys.stdin.buffer, answers))

"""Worker processes that prepare a load's batches while the writer writes.

Into the embedded store, the store's own work (one transaction per batch, on
its writer thread) and the rest (decoding, JSON-LD expansion, schema checks,
stamping: ``broker.loader.prepare``) each take a large share of a CPU; the
worker processes do the rest, so the process that writes does little besides
the store's work and both run on their own cores.  The writer hands batches
out in turn as it reads them and takes the results back in file order
(``Loader``), a bounded number ahead, so memory stays small and the writer
never waits while a worker has something ready.

A worker talks over two pipes (``serve``): pickled frames in (the setup, then
one batch per frame) and out (an empty frame once it is set up, then one
prepared batch per frame, in the order asked); it stops at the end of its
input.  Where this process has no other thread yet (the load starts them when
it opens the store, so the workers are started first), a worker is a fork of
it: it has the broker's modules already, and answers within milliseconds.
Otherwise (a thread running, or no ``fork``) it is ``python -m
broker.loader.worker``, which takes a second or so to import the broker's
modules; until a worker has started, the writer prepares the batches itself.
A worker shares nothing with the writer after it started (no fork of a
process with threads, no main module imported again), and it ignores Ctrl-C:
the writer stops the load (no batch half-written: a batch is one
transaction), then the workers (``close``).

Each worker has its own context resolver over a memory store seeded with the
target store's @context records (hosted and cached contexts are found as in
the writer), sent in the setup once the writer has opened the store; a remote
context a worker fetches (where ``--outbound-allow`` allows it) is cached in
that worker only.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import signal
import struct
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

from broker.loader.expander import Expander
from broker.loader.prepare import CreationRows, PreparedBatch, prepare_batch
from broker.loader.sources import Decoder
from broker.schemas import ModelSchemas
from storage import ContextRecord, MemoryStore

#: young-generation collections every this many container allocations (broker.cli's value)
GC_GEN0_THRESHOLD = 50_000
_HEADER = struct.Struct("!Q")  # the length of the pickled frame that follows
WORKER_MODULE = "broker.loader.worker"
#: where ``broker`` is imported from: spawned workers import the same code
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


class _Forked:
    """A worker forked from this process (``_fork``): what ``_Process`` uses of an
    ``asyncio.subprocess.Process``, its exit watched through a pidfd."""

    def __init__(self, pid: int, stdin: asyncio.WriteTransport, answers: int) -> None:
        self.pid, self.stdin, self.answers = pid, stdin, answers
        self.returncode: int | None = None
        self._pidfd = os.pidfd_open(pid)
        self._exited = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_reader(self._pidfd, self._reap)

    @classmethod
    async def connect(cls, pid: int, to_worker: int, from_worker: int) -> _Forked:
        """The worker ``pid``, its input written through ``to_worker`` and its output
        read from ``from_worker`` (pipe ends this process owns from now on)."""
        loop = asyncio.get_running_loop()
        stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(to_worker, "wb"))
        return cls(pid, stdin, from_worker)

    def _reap(self) -> None:  # the pidfd is readable: the worker has exited
        asyncio.get_running_loop().remove_reader(self._pidfd)
        _, status = os.waitpid(self.pid, 0)
        os.close(self._pidfd)
        self.returncode = os.waitstatus_to_exitcode(status)
        self._exited.set_result(self.returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def kill(self) -> None:
        if self.returncode is None:  # (a pidfd: never another process that took its pid)
            with suppress(ProcessLookupError):  # it has just exited
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)


async def _fork(count: int) -> list[_Forked]:
    """``count`` workers forked from this process (which runs no other thread), all
    forked before any is connected to the event loop: each closes the pipe ends of
    those forked before it, so that each sees the end of its input when we close it."""
    forked: list[tuple[int, int, int]] = []  # pid, its input's end and its output's, ours
    for _ in range(count):
        requests, to_worker = os.pipe()
        from_worker, answers = os.pipe()
        # Ctrl-C held back until the worker ignores it (it would run this process's handler)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            pid = os.fork()
            if pid == 0:
                _forked_main(requests, answers,
                             [to_worker, from_worker, *(fd for f in forked for fd in f[1:])])
        finally:  # (never reached in the worker: it exits in _forked_main)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(requests)
        os.close(answers)
        forked.append((pid, to_worker, from_worker))
    return [await _Forked.connect(*worker) for worker in forked]


class _Frames(asyncio.Protocol):
    """The frames a worker answers, read from its output pipe: each handed whole to
    ``received``, ``ended`` called at the end of the pipe.

    A prepared batch is megabytes that arrive in chunks of up to 256 KiB: they are kept
    in a list and joined once (an ``asyncio.StreamReader`` grows a buffer chunk by
    chunk and pauses and resumes the pipe at every chunk past its limit)."""

    def __init__(self, received: Callable[[memoryview], None],
                 ended: Callable[[], None]) -> None:
        self._received, self._ended = received, ended
        self._chunks: list[bytes] = []
        self._have = 0  # bytes in _chunks
        self._size = -1  # the length of the frame being read (-1: its header not read yet)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._have += len(data)
        while self._have >= (_HEADER.size if self._size < 0 else self._size):
            buffer = b"".join(self._chunks)
            if self._size < 0:
                (self._size,) = _HEADER.unpack_from(buffer)
                rest = buffer[_HEADER.size:]
            else:
                self._received(memoryview(buffer)[:self._size])
                rest, self._size = buffer[self._size:], -1
            self._chunks, self._have = [rest], len(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended()


class _Process:
    """One worker process and the batches it was given, answered in that order."""

    def __init__(self, process: asyncio.subprocess.Process | _Forked) -> None:
        self.process = process
        self.waiting: deque[asyncio.Future[PreparedBatch]] = deque()
        self.started = False  # its setup is done (its first frame, empty, came back)
        self.answered = asyncio.Event()  # started, or stopped before it could
        self._ended = asyncio.get_running_loop().create_future()  # its output ended
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, process: asyncio.subprocess.Process | _Forked,
                      answers: int) -> _Process:
        """``process``, its answers read from the pipe end ``answers`` (ours from now on)."""
        worker = cls(process)
        await asyncio.get_running_loop().connect_read_pipe(
            lambda: _Frames(worker._answer, worker._end), os.fdopen(answers, "rb"))
        return worker

    def send(self, message: object) -> None:
        assert self.process.stdin is not None
        body = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        self.process.stdin.write(_HEADER.pack(len(body)) + body)

    def _answer(self, frame: memoryview) -> None:
        if not self.started:  # the empty frame: started
            self.started = True
            self.answered.set()
            return
        answer = pickle.loads(frame)
        future = self.waiting.popleft()
        if future.cancelled():
            return
        if isinstance(answer, _Failure):
            future.set_exception(WorkerStopped(f"a worker process failed: {answer.text}"))
        else:
            future.set_result(answer)

    def _end(self) -> None:
        if not self._ended.done():
            self._ended.set_result(None)

    async def _read(self) -> None:
        """Once its output has ended: the batches it did not answer fail."""
        await self._ended
        self.answered.set()
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
    """``processes`` workers preparing batches (``submit``) once ``set_up``; ``close``
    stops them."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._workers: list[_Process] = []
        self._turn = 0
        self.forked = False  # its workers are forks of this process (``start``)

    async def start(self) -> None:
        """Start the worker processes: forks of this one if it runs no other thread
        (and has ``fork`` and pidfds: Linux), else ``python -m broker.loader.worker``."""
        self.forked = threading.active_count() == 1 and hasattr(os, "pidfd_open")
        if self.forked:
            self._workers = [await _Process.connect(forked, forked.answers)
                             for forked in await _fork(self.processes)]
            return
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [_SOURCE_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])}
        for _ in range(self.processes):
            answers, stdout = os.pipe()
            try:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", WORKER_MODULE, stdin=asyncio.subprocess.PIPE,
                    stdout=stdout, env=env)
            except BaseException:
                os.close(answers)
                raise
            finally:
                os.close(stdout)  # the worker's end
            self._workers.append(await _Process.connect(process, answers))

    async def set_up(self, setup: WorkerSetup) -> None:
        """Send every worker what it prepares batches with (its first frame); forked
        workers answer within milliseconds: waited for, so that they take every batch."""
        for worker in self._workers:
            worker.send(setup)
        if self.forked:
            await asyncio.gather(*(worker.answered.wait() for worker in self._workers))

    @property
    def started(self) -> bool:
        """Whether a worker has started (set up; a spawned one imports the broker's
        modules first, a second or so: the writer prepares batches itself until then)."""
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
    """``python -m broker.loader.worker``'s main: answer the batches of our stdin on our
    stdout until the writer ends our input."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the writer stops the load, then us
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print cannot break a frame
    _work(sys.stdin.buffer, answers)


def _forked_main(requests: int, answers: int, inherited: Sequence[int]) -> NoReturn:
    """A forked worker's main (``_fork``): never returns to the writer's code it was
    forked in; ``inherited``: the writer's pipe ends, closed here."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the writer stops the load, then us
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.set_wakeup_fd(-1)  # the writer's event loop's, if it had one
        gc.freeze()  # the writer's objects, inherited: never collected (nor touched) here
        for fd in inherited:
            os.close(fd)
        _work(os.fdopen(requests, "rb"), os.fdopen(answers, "wb"))
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)  # nothing of the writer's (buffers, exit handlers) runs here


def _work(requests: IO[bytes], answers: IO[bytes]) -> None:
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])  # as the writer (tune_gc)
    asyncio.run(_serve(requests, answers))

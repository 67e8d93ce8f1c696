"""Fixtures shared by the test modules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from notify_receiver import Receiver

from broker.app import create_app
from broker.config import Settings
from broker.loader.pipeline import WorkerPool, WorkerSetup
from storage import SqliteStore


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    """A client of a broker on a throw-away memory store (modules may define their own)."""
    c = TestClient(TestServer(create_app(Settings(store="memory:", outbound_allow="127.0.0.0/8"))))
    await c.start_server()
    yield c
    await c.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A started notification receiver (tests/notify_receiver.py; modules may define their own)."""
    server = await Receiver().start()
    yield server
    await server.close()


@pytest.fixture
def started_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A parallel load's workers all started before its first batch: every batch goes to
    them (the writer prepares batches itself until one has started: a small file might
    be prepared here whole)."""
    set_up = WorkerPool.set_up

    async def set_up_and_wait(self: WorkerPool, setup: WorkerSetup) -> None:
        await set_up(self, setup)
        while not all(worker.started for worker in self._workers):
            await asyncio.sleep(0.01)

    monkeypatch.setattr(WorkerPool, "set_up", set_up_and_wait)


@pytest.fixture
async def one_reader_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An open SQLite store whose reads all go through one connection, so that what a
    reading connection keeps (storage/sqlite/known.py) is seen by every read."""
    backend = SqliteStore(tmp_path / "one-reader.db", readers=1)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()

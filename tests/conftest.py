"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from notify_receiver import Receiver

from broker.app import create_app
from broker.config import Settings


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

"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from broker.app import create_app
from broker.config import Settings


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    """A client of a broker on a throw-away memory store (modules may define their own)."""
    c = TestClient(TestServer(create_app(Settings(store="memory:", outbound_allow="127.0.0.0/8"))))
    await c.start_server()
    yield c
    await c.close()

"""Runs the storage contract (tests/storage_contract.py) against every backend.

Backends here: ``memory`` and ``sqlite`` (a temporary file).  The MongoDB backend
runs the same contract in tests/test_mongo_contract.py: always on the in-memory
stand-in of the PyMongo API, and on a real server when ``NGSI_LD_TEST_MONGODB_URL``
is set (skipped with that reason otherwise).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from storage_contract import StorageContract
from storage_contract_temporal import TemporalContract

from storage import MemoryStore, MongoStore, SqliteStore, Store, open_store

BACKENDS = ["memory", "sqlite"]


def _open_backend(name: str, tmp_path: Path) -> Store:
    if name == "memory":
        return open_store("memory:")
    if name == "sqlite":
        return open_store(f"sqlite://{tmp_path.resolve()}/contract.db")
    raise ValueError(name)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An open, empty store of each backend."""
    backend = _open_backend(request.param, tmp_path)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


class TestStorageContract(StorageContract):
    """The contract, once per backend."""


# -- open_store ------------------------------------------------------------------------
def test_open_store_mongodb() -> None:
    assert isinstance(open_store("mongodb://localhost/ngsi"), MongoStore)


def test_open_store_memory() -> None:
    assert isinstance(open_store("memory:"), MemoryStore)
    assert open_store("memory:").kind == "memory"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///var/lib/broker/data.db", Path("/var/lib/broker/data.db")),
        ("sqlite:////var/lib/broker/data.db", Path("/var/lib/broker/data.db")),
        ("sqlite:data/broker.db", Path("data/broker.db")),
        ("sqlite:broker.db", Path("broker.db")),
    ],
)
def test_open_store_sqlite_paths(url: str, expected: Path) -> None:
    store = open_store(url)
    assert isinstance(store, SqliteStore) and store.path == expected


async def test_open_store_sqlite_creates_parent_directories(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "broker.db"
    store = open_store(f"sqlite://{target}")
    await store.open()
    try:
        assert target.exists()
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mongodb://h/bad.name", "invalid MongoDB database name"),
        ("postgres://localhost/x", "unknown storage URL scheme"),
        ("", "empty"),
        ("just-a-path.db", "no scheme"),
        ("sqlite:", "no database file"),
        ("sqlite://host/x.db", "sqlite:///absolute"),
        ("sqlite::memory:", "memory:"),
        ("memory:/somewhere", "takes no path"),
    ],
)
def test_open_store_rejects(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


class TestTemporalContract(TemporalContract):
    """The temporal part of the contract, once per backend."""

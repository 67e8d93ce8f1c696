"""The storage contract (tests/storage_contract.py) on the MongoDB backend.

* ``mongodb-stand-in``: always; the backend over the in-memory stand-in of the
  PyMongo collection API (tests/mongo_standin.py).  It exercises the
  backend's code paths, not MongoDB.
* ``mongodb-real``: only when ``NGSI_LD_TEST_MONGODB_URL`` names a server
  (``mongodb://localhost:27017``); each test gets a database of its own, dropped after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from mongo_standin import StandInClient
from storage_contract import StorageContract
from storage_contract_temporal import TemporalContract

from storage.mongo import MongoStore

MONGODB_URL = os.environ.get("NGSI_LD_TEST_MONGODB_URL")
REAL = pytest.param(
    "mongodb-real",
    marks=pytest.mark.skipif(
        MONGODB_URL is None,
        reason="no MongoDB server: set NGSI_LD_TEST_MONGODB_URL=mongodb://host:27017 to run",
    ),
)


@pytest.fixture(params=["mongodb-stand-in", REAL])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MongoStore]:
    """An open, empty MongoDB store: on the stand-in, or on a real server."""
    if request.param == "mongodb-stand-in":
        backend = MongoStore("mongodb://stand-in/contract", client_factory=StandInClient)
    else:
        assert MONGODB_URL is not None
        backend = MongoStore(MONGODB_URL, database=f"ngsild_test_{uuid.uuid4().hex[:12]}")
    await backend.open()
    try:
        yield backend
    finally:
        if request.param == "mongodb-real":
            await backend.drop_databases()
        await backend.close()


class TestMongoContract(StorageContract):
    """The contract, on the stand-in and (when configured) on a real MongoDB."""


class TestMongoTemporalContract(TemporalContract):
    """The temporal part of the contract, on the stand-in and (when configured) MongoDB."""

"""Settings, fault translation and locks of the MongoDB backend (mongo_support.py)."""

from __future__ import annotations

import pytest
from pymongo.errors import (
    AutoReconnect,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from ngsi_ld.errors import (
    BadRequestData,
    InternalError,
    NgsiLdError,
    ServiceUnavailable,
    TooComplexQuery,
)
from storage.mongo.support import (
    KeyLocks,
    database_name,
    faults,
    parse_settings,
    redact,
)


def test_settings_from_url_and_keywords() -> None:
    settings = parse_settings("mongodb://u:secret@h1:27017,h2/ngsi?replicaSet=rs0&maxPoolSize=5")
    assert settings.database == "ngsi"
    assert settings.client_options["serverSelectionTimeoutMS"] == 5000
    assert "maxPoolSize" not in settings.client_options  # the driver reads it from the URL
    settings = parse_settings(
        "mongodb+srv://cluster.example.org/?serverSelectionTimeoutMS=900",
        max_pool_size=50,
        retry_writes=False,
        socket_timeout_ms=1000,
    )
    assert settings.database == "orion"
    assert settings.client_options == {
        "appname": "ngsi-ld-broker",
        "maxPoolSize": 50,
        "retryWrites": False,
        "socketTimeoutMS": 1000,
    }
    assert redact("mongodb://u:secret@h/x") == "mongodb://u:***@h/x"


@pytest.mark.parametrize(
    "url", ["mysql://h/x", "mongodb:///x", "mongodb://h/bad.name", "mongodb://h/" + "x" * 64]
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_settings(url)


def test_tenant_databases() -> None:
    assert database_name("orion", "") == "orion"
    assert database_name("orion", "smart_city-1") == "orion-smart_city-1"
    with pytest.raises(BadRequestData, match="tenant"):
        database_name("orion", "a.b")
    with pytest.raises(BadRequestData):
        database_name("orion", "x" * 60)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ServerSelectionTimeoutError("no primary"), ServiceUnavailable),
        (AutoReconnect("connection reset"), ServiceUnavailable),
        (NetworkTimeout("timed out"), ServiceUnavailable),
        (OperationFailure("auth failed", code=18), ServiceUnavailable),
        (OperationFailure("not primary", code=10107), ServiceUnavailable),
        (ExecutionTimeout("operation exceeded time limit", code=50), TooComplexQuery),
        (OperationFailure("Can't extract geo keys", code=16755), BadRequestData),
        (OverflowError("MongoDB can only handle up to 8-byte ints"), BadRequestData),
        (OperationFailure("unknown operator", code=2), InternalError),
    ],
)
def test_driver_errors_become_ngsi_ld_errors(raised: Exception, expected: type) -> None:
    with pytest.raises(NgsiLdError) as info, faults("a test"):
        raise raised
    assert type(info.value) is expected
    assert "a test" in info.value.detail or expected is BadRequestData
    assert info.value.__cause__ is raised


def test_other_errors_pass_through() -> None:
    with pytest.raises(KeyError), faults("a test"):
        raise KeyError("not a driver error")


async def test_key_locks_are_released() -> None:
    locks = KeyLocks()
    async with locks.hold(["a", "b"]):
        assert len(locks) == 2
    assert len(locks) == 0
    async with locks.hold(["b", "a", "b"]):
        assert len(locks) == 2
    assert len(locks) == 0

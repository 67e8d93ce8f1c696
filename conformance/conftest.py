"""Conformance fixtures: a broker under test and a client for it.

``pytest conformance --broker-url http://host:1026`` runs the cases against any
NGSI-LD broker; without the option this broker is started on a free port with a
throw-away store.  ``--junitxml=report.xml`` writes a report in which every case
carries its spec clause as a property.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator

import pytest

from conformance.client import Client
from conformance.contexts_server import ContextServer
from conformance.process import BrokerProcess
from conformance.receiver import NotificationReceiver
from conformance.subscribing import sub_path


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ngsi-ld conformance")
    group.addoption(
        "--broker-url",
        default=os.environ.get("NGSI_LD_BROKER_URL"),
        help="base URL of the broker under test (default: start this broker)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clause(id): the ETSI GS CIM 009 clause a case checks")


@pytest.fixture(autouse=True)
def _record_clause(request: pytest.FixtureRequest, record_property) -> None:  # type: ignore[no-untyped-def]
    for marker in request.node.iter_markers("clause"):
        record_property("clause", marker.args[0])


@pytest.fixture(scope="session")
def broker_url(pytestconfig: pytest.Config) -> Iterator[str]:
    given = pytestconfig.getoption("--broker-url")
    if given:
        yield given.rstrip("/")
        return
    with tempfile.TemporaryDirectory() as tmp, BrokerProcess(f"sqlite:///{tmp}/c.db") as proc:
        yield proc.url


@pytest.fixture(scope="session")
def client(broker_url: str) -> Client:
    return Client(broker_url)


@pytest.fixture(scope="session")
def context_server() -> Iterator[ContextServer]:
    """Serves @contexts on 127.0.0.1 (the broker under test must reach this host)."""
    server = ContextServer(os.environ.get("NGSI_LD_CONFORMANCE_HOST", "127.0.0.1"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[NotificationReceiver]:
    """Receives the notifications of the subscription cases (see conformance.receiver)."""
    server = NotificationReceiver()
    yield server
    server.close()


@pytest.fixture
def subs(client: Client) -> Iterator[list[str]]:
    """Subscription ids a case created; deleted afterwards (the broker may keep data)."""
    created: list[str] = []
    yield created
    for sub_id in created:
        client.delete(sub_path(sub_id))


@pytest.fixture
def uid() -> str:
    """A unique suffix so cases can run again against a broker that keeps data."""
    return uuid.uuid4().hex[:12]

"""``--event-loop``: the broker serves the same on uvloop (the default) and asyncio's loop.

The command line's broker, each loop: concurrent writes to several entities all
committed, each entity's notifications in the order of its writes, errors still
ProblemDetails, and a SIGTERM stops it cleanly with what it committed kept.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import orjson
import pytest

from broker.config import load_settings
from broker.serving import new_loop
from conformance.process import BrokerProcess
from tests.notify_receiver import Receiver

E = "/ngsi-ld/v1/entities"
JSON = {"Content-Type": "application/json"}
ENTITIES = 4
WRITES = 12


def test_the_loop_is_the_one_asked_for() -> None:
    uvloop = pytest.importorskip("uvloop")
    for kind, expected in (("uvloop", uvloop.Loop), ("asyncio", asyncio.BaseEventLoop)):
        loop = new_loop(kind)
        try:
            assert isinstance(loop, expected)
        finally:
            loop.close()
    loop = new_loop("asyncio")
    try:
        assert not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_an_unknown_loop_is_refused() -> None:
    assert load_settings(["--event-loop", "AsyncIO"]).event_loop == "asyncio"
    with pytest.raises(SystemExit):
        load_settings(["--event-loop", "tokio"])


async def _writes(session: aiohttp.ClientSession, url: str, n: int) -> list[int]:
    statuses = []
    for value in range(1, WRITES + 1):
        async with session.patch(f"{url}{E}/urn:ngsi-ld:Room:{n}/attrs", headers=JSON,
                                 data=orjson.dumps({"temperature": {"type": "Property",
                                                                    "value": value}})) as r:
            statuses.append(r.status)
    return statuses


@pytest.mark.parametrize("kind", ["uvloop", "asyncio"])
async def test_concurrent_writes_committed_and_notified_in_order(
        kind: str, tmp_path: Path, receiver: Receiver) -> None:
    store = f"sqlite:///{tmp_path / 'b.db'}"
    broker = BrokerProcess(store, extra=("--event-loop", kind)).start()
    try:
        async with aiohttp.ClientSession() as session:
            url = broker.url
            for n in range(ENTITIES):
                async with session.post(url + E, headers=JSON, data=orjson.dumps({
                        "id": f"urn:ngsi-ld:Room:{n}", "type": "Room",
                        "temperature": {"type": "Property", "value": 0}})) as r:
                    assert r.status == 201
            async with session.post(url + "/ngsi-ld/v1/subscriptions", headers=JSON,
                                    data=orjson.dumps({
                                        "type": "Subscription", "entities": [{"type": "Room"}],
                                        "watchedAttributes": ["temperature"],
                                        "notification": {
                                            "attributes": ["temperature"],
                                            "endpoint": {"uri": receiver.url()}}})) as r:
                assert r.status == 201
            # every entity written 12 times, one after the other; the entities at once
            answers = await asyncio.gather(*(_writes(session, url, n)
                                             for n in range(ENTITIES)))
            assert answers == [[204] * WRITES] * ENTITIES
            async with session.patch(f"{url}{E}/urn:ngsi-ld:Room:0/attrs", headers=JSON,
                                     data=b"{not json") as r:
                assert r.status == 400
                assert (await r.json())["type"].endswith("/InvalidRequest")
            await receiver.wait_entities(ENTITIES * WRITES)
            for n in range(ENTITIES):
                seen = [entity["temperature"]["value"]
                        for entity, _ in receiver.entities()
                        if entity["id"] == f"urn:ngsi-ld:Room:{n}"]
                assert seen == list(range(1, WRITES + 1))
    finally:
        broker.stop()
    assert broker.process is not None and broker.process.returncode == 0
    # what was committed before the SIGTERM is there after a restart
    with BrokerProcess(store, extra=("--event-loop", kind)) as again:
        async with aiohttp.ClientSession() as session, \
                session.get(f"{again.url}{E}/urn:ngsi-ld:Room:3") as r:
            assert (await r.json())["temperature"]["value"] == WRITES

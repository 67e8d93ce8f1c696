"""Steps shared by the tests of two brokers on one store (test_mongo_cluster.py,
test_cluster_fencing.py): a lamp's power set through one broker, the powers a
receiver was notified of, and waiting for asynchronous feeds and deliveries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp.test_utils import TestClient
from notify_receiver import Receiver

ENTITIES = "/ngsi-ld/v1/entities"
LD = {"Content-Type": "application/ld+json"}
CTX = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"


async def set_power(broker: TestClient, n: int, power: int) -> None:
    """PATCH the power of ``urn:ngsi-ld:Lamp:{n}`` through ``broker``."""
    reply = await broker.patch(f"{ENTITIES}/urn:ngsi-ld:Lamp:{n}/attrs", headers=LD,
                               json={"power": {"type": "Property", "value": power},
                                     "@context": CTX})
    assert reply.status == 204, await reply.text()


def powers(receiver: Receiver, path: str) -> list[int]:
    """The powers notified to ``receiver`` at ``path``, in arrival order."""
    return [item["power"]["value"] for body in receiver.bodies(path) for item in body["data"]]


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until ``check()`` is true (feeds and deliveries are asynchronous); no
    timing is asserted: the assertion after it tells."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check() and loop.time() < deadline:
        await asyncio.sleep(0.02)


async def settle() -> None:
    """Long enough for a notification that should not come to arrive, if one were sent."""
    await asyncio.sleep(0.5)

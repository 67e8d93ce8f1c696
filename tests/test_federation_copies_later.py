"""Subscriptions covering sources registered later (5.8.1.4, 5.8.5.4): a subscription made
while its tenant had no registration gets its copy at a source registered afterwards, the
copy's notifications reach its subscriber, and the copy goes with the registration."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from notify_receiver import Receiver
from test_federation_copies_restart import (
    API,
    JSON,
    LAMP,
    copies_at,
    free_port,
    hub_on,
    source_holding,
    subscribe_lamps,
)

from broker.app import BROKER
from broker.federation.subscriptions import COPIES


async def stored_copies(store: Any, count: int) -> dict[str, Any]:
    """The hub's one record of copies once it names ``count`` copies (it is written when
    the source answered), or what it is after a while."""
    record: dict[str, Any] = {}
    for _ in range(200):
        ((_, record),) = await store.all_records(COPIES)
        if len(record["copies"]) == count:
            break
        await asyncio.sleep(0.02)
    return record


async def test_a_source_registered_later_gets_the_copy_and_loses_it(tmp_path: Path) -> None:
    receiver = await Receiver().start()
    source = await source_holding(
        {"id": LAMP, "type": "Lamp", "power": {"type": "Property", "value": 1}})
    hub = await hub_on(tmp_path / "hub.db", free_port())
    try:
        sub_id = (await subscribe_lamps(hub, receiver)).rsplit("/", 1)[-1]
        # a registration of other types brings no copy
        other = await hub.post(API + "/csourceRegistrations", headers=JSON, json={
            "type": "ContextSourceRegistration", "endpoint": str(source.make_url("")),
            "information": [{"entities": [{"type": "Bench"}]}]})
        assert other.status == 201
        registered = await hub.post(API + "/csourceRegistrations", headers=JSON, json={
            "type": "ContextSourceRegistration", "endpoint": str(source.make_url("")),
            "information": [{"entities": [{"type": "Lamp"}]}]})
        assert registered.status == 201, await registered.text()
        (copy,) = await copies_at(source, 1)
        assert copy["id"] != sub_id and copy["q"] == "power>5"
        # the copy is stored with its subscription (it survives a restart)
        store = hub.server.app[BROKER].service.store
        record = await stored_copies(store, 1)
        assert record["id"] == sub_id and [c["id"] for c in record["copies"].values()] == [
            copy["id"]]
        # the source's change reaches the hub's subscriber under the hub's subscription
        patched = await source.patch(f"{API}/entities/{LAMP}/attrs", headers=JSON,
                                     json={"power": {"type": "Property", "value": 9}})
        assert patched.status == 204
        (first, *_) = await receiver.wait_for(1, timeout=10)
        assert first.body["subscriptionId"] == sub_id
        assert first.body["data"][0]["power"]["value"] == 9
        # the registration goes: so does the copy at the source
        assert (await hub.delete(registered.headers["Location"])).status == 204
        assert await copies_at(source, 0) == []
        assert (await stored_copies(store, 0))["copies"] == {}
    finally:
        await hub.close()
        await source.close()
        await receiver.close()

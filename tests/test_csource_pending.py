"""Pending notifications of registration subscriptions survive a restart (5.11 with
subscriptions/pending.py): a registration change answered just before a kill -9 is
notified by the broker started again on the same store, at least once."""

from __future__ import annotations

import asyncio
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st
from notify_receiver import Receiver

from conformance.process import BrokerProcess
from ngsi_ld.federation import parse_registration
from subscriptions.csource_model import CSOURCE_JOBS, CsourceJob

SUBS = "/ngsi-ld/v1/csourceSubscriptions"
REGS = "/ngsi-ld/v1/csourceRegistrations"
REG = "urn:ngsi-ld:ContextSourceRegistration:pending"
#: seconds the receiver keeps a notification hanging
HANG = 6.0


def _send(url: str, path: str, body: dict[str, Any] | None, method: str = "POST") -> int:
    request = urllib.request.Request(
        url + path, data=None if body is None else orjson.dumps(body), method=method,
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return int(reply.status)


async def _notified(receiver: Receiver, since: int, reason: str) -> list[Any]:
    """The notifications received after the first ``since`` with ``reason``, once one came."""
    found: list[Any] = []
    for _ in range(400):
        found = [b for b in receiver.bodies("down")[since:] if b.get("triggerReason") == reason]
        if found:
            break
        await asyncio.sleep(0.05)
    return found


async def test_a_registration_answered_just_before_a_kill_is_notified_after_the_restart(
        tmp_path: Path) -> None:
    receiver = await Receiver().start()
    receiver.delays["down"] = HANG  # the subscriber does not answer: nothing is delivered
    store = f"sqlite:///{tmp_path}/b.db"
    broker = await asyncio.to_thread(BrokerProcess(store).start)
    try:
        sub = {"type": "Subscription", "entities": [{"type": "Lamp"}],
               "notification": {"endpoint": {"uri": receiver.url("down"), "timeout": 60000}}}
        assert await asyncio.to_thread(_send, broker.url, SUBS, sub) == 201
        registration = {"id": REG, "type": "ContextSourceRegistration",
                        "endpoint": "http://127.0.0.1:9",
                        "information": [{"entities": [{"type": "Lamp"}]}]}
        assert await asyncio.to_thread(_send, broker.url, REGS, registration) == 201
        await asyncio.to_thread(broker.kill)  # at once: no write-behind tick in between
        receiver.delays.clear()
        before = len(receiver.at("down"))
        again = await asyncio.to_thread(BrokerProcess(store, port=broker.port).start)
        try:
            (notification, *_) = await _notified(receiver, before, "newlyMatching")
            assert notification["type"] == "ContextSourceNotification"
            assert [r["id"] for r in notification["data"]] == [REG]
            # the same for a deletion: answered, killed, notified after the restart
            receiver.delays["down"] = HANG
            assert await asyncio.to_thread(_send, again.url, f"{REGS}/{REG}", None,
                                           "DELETE") == 204
            await asyncio.to_thread(again.kill)
            receiver.delays.clear()
            before = len(receiver.at("down"))
            third = await asyncio.to_thread(BrokerProcess(store, port=broker.port).start)
            try:
                (gone, *_) = await _notified(receiver, before, "noLongerMatching")
                assert [r["id"] for r in gone["data"]] == [REG]
            finally:
                await asyncio.to_thread(third.stop)
        finally:
            await asyncio.to_thread(again.stop)
    finally:
        await asyncio.to_thread(broker.stop)
        await receiver.close()


NAMES = st.sampled_from(["Lamp", "Bench", "https://example.org/Bin"])


@given(reason=st.sampled_from(["newlyMatching", "updated", "noLongerMatching"]),
       types=st.lists(NAMES, min_size=1, max_size=3, unique=True),
       timeout=st.none() | st.integers(min_value=1, max_value=10_000))
def test_csource_jobs_survive_their_json_form(reason: str, types: list[str],
                                              timeout: int | None) -> None:
    body: dict[str, Any] = {"type": "ContextSourceRegistration", "endpoint": "http://s:1026",
                            "information": [{"entities": [{"type": t} for t in types]}]}
    if timeout is not None:
        body["management"] = {"timeout": timeout}
    registration = parse_registration(body, lambda n: n if ":" in n else "urn:x:" + n,
                                      datetime.now(UTC), default_id=REG)
    job = CsourceJob(reason, [registration])
    back = CSOURCE_JOBS.decode(orjson.loads(orjson.dumps(CSOURCE_JOBS.encode(job))))
    assert back == job

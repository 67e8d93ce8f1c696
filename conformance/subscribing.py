"""Helpers the subscription conformance cases share (5.8, 5.11): paths and payloads.

The ``receiver`` and ``subs`` fixtures are in :mod:`conformance.conftest`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from conformance.client import Client

SUBS = "/ngsi-ld/v1/subscriptions"


def sub_path(sub_id: str) -> str:
    return f"{SUBS}/{quote(sub_id, safe=':')}"


def subscribe(client: Client, subs: list[str], body: dict[str, Any], **kw: Any) -> str:
    """Create a subscription (201 expected); its id is deleted after the case."""
    reply = client.post(SUBS, {"type": "Subscription", **body}, **kw)
    assert reply.status == 201, (reply.status, reply.raw)
    location = reply.header("Location")
    assert location is not None
    sub_id = location.rsplit("/", 1)[1]
    subs.append(sub_id)
    return sub_id


def on_type(kind: str, uri: str, **extra: Any) -> dict[str, Any]:
    """A subscription to the entities of type ``kind``, notified at ``uri``."""
    notification = {"endpoint": {"uri": uri}, **extra.pop("notification", {})}
    return {"entities": [{"type": kind}], "notification": notification, **extra}
